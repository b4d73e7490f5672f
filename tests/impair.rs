//! Link impairments applied in a lab: measured on the captures, changed mid-run, removed with
//! the lab.

mod common;

use std::process::Command;
use std::time::Duration;

use common::hygiene::{referenced_net_namespaces, root_namespace_state};
use common::{WAIT, privileged};
use tcplab::lab::{Lab, LabError, delays_in_user_space};
use tcplab::spec::{HostSpec, Impair, Impairment, LinkImpair, Topology};
use tcplab::trace::{ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, Kind, Trace};

fn two_hosts(b: HostSpec) -> Option<Lab> {
    if !privileged() {
        return None;
    }
    let topo = Topology::default().host(HostSpec::new("a")).host(b);
    Some(Lab::build(&topo).unwrap_or_else(|e| panic!("{e}")))
}

fn ping(lab: &Lab, count: u32) -> bool {
    let mut c = Command::new("ping");
    c.args(["-c", &count.to_string(), "-i", "0.2", "-W", "1", "b"]);
    let outcome = lab.host("a").unwrap().run(c, WAIT).unwrap();
    outcome.status.success()
}

/// The times of the ICMP echo messages of `icmp_type` on a capture.
fn echoes(t: &Trace, icmp_type: u8) -> Vec<Duration> {
    t.packets
        .iter()
        .filter(|p| matches!(&p.kind, Kind::Icmp(i) if i.icmp_type == icmp_type))
        .map(|p| p.at)
        .collect()
}

fn trace<'a>(traces: &'a [Trace], host: &str) -> &'a Trace {
    traces.iter().find(|t| t.host == host).unwrap()
}

/// The tables of the fabric, as `nft` lists them.
fn fabric_tables(lab: &Lab) -> String {
    let mut c = Command::new("nft");
    c.args(["list", "tables"]);
    let outcome = lab.fabric().spawn(c).unwrap().wait(WAIT).unwrap();
    assert!(outcome.status.success(), "{}", outcome.transcript());
    outcome.stdout().collect::<Vec<_>>().join("\n")
}

fn loss(percent: f64) -> Impair {
    Impair {
        ingress: Some(LinkImpair {
            loss: Some(percent),
            ..LinkImpair::default()
        }),
        ..Impair::default()
    }
}

#[test]
fn full_loss_on_a_link_hides_packets_from_the_receiver_only_until_removed() {
    let Some(lab) = two_hosts(HostSpec::new("b")) else {
        return;
    };
    lab.impair("b", &loss(100.0), Some("the test")).unwrap();
    assert!(fabric_tables(&lab).contains("tcplab-impair-b-r1"));
    let rec = lab.start_captures().unwrap();
    assert!(!ping(&lab, 2), "every echo request to b is lost");
    let traces = rec.stop(None).unwrap();
    assert_eq!(echoes(trace(&traces, "a"), ICMP_ECHO_REQUEST).len(), 2);
    assert!(
        echoes(trace(&traces, "b"), ICMP_ECHO_REQUEST).is_empty(),
        "b's capture shows none: the link lost them before b"
    );

    lab.impair("b", &Impair::default(), None).unwrap();
    assert!(!fabric_tables(&lab).contains("tcplab-impair"), "removed");
    assert_eq!(lab.impairment("b").unwrap(), Impairment::default());
    let rec = lab.start_captures().unwrap();
    assert!(ping(&lab, 2), "the link carries everything again");
    let traces = rec.stop(None).unwrap();
    assert_eq!(echoes(trace(&traces, "b"), ICMP_ECHO_REQUEST).len(), 2);
}

#[test]
fn an_exact_drop_loses_the_first_packets_and_no_more() {
    let b = HostSpec::new("b").impair(Impair {
        ingress: Some(LinkImpair {
            drop: Some(tcplab::spec::DropFirst {
                first: 2,
                matching: tcplab::spec::DropMatch::Icmp,
                port: None,
            }),
            ..LinkImpair::default()
        }),
        ..Impair::default()
    });
    let Some(lab) = two_hosts(b) else { return };
    let rec = lab.start_captures().unwrap();
    // ping exits 0 when any reply came: the 2 first requests are lost, the 3 others answered.
    assert!(ping(&lab, 5));
    let traces = rec.stop(None).unwrap();
    assert_eq!(echoes(trace(&traces, "a"), ICMP_ECHO_REQUEST).len(), 5);
    assert_eq!(echoes(trace(&traces, "b"), ICMP_ECHO_REQUEST).len(), 3);
    assert_eq!(echoes(trace(&traces, "a"), ICMP_ECHO_REPLY).len(), 3);
}

#[test]
fn a_delay_shows_in_the_round_trip_on_the_captures() {
    let Some(lab) = two_hosts(HostSpec::new("b")) else {
        return;
    };
    let delay = Duration::from_millis(200);
    let impair = Impair {
        ingress: Some(LinkImpair {
            delay: Some(delay.as_secs_f64()),
            ..LinkImpair::default()
        }),
        ..Impair::default()
    };
    lab.impair("b", &impair, None).unwrap();
    // netem where the kernel has it, tcplab's delay line in user space where it has not.
    assert_eq!(lab.delay_line().is_some(), delays_in_user_space().unwrap());
    let rec = lab.start_captures().unwrap();
    assert!(ping(&lab, 3));
    let traces = rec.stop(None).unwrap();
    let a = trace(&traces, "a");
    let (out, back) = (echoes(a, ICMP_ECHO_REQUEST), echoes(a, ICMP_ECHO_REPLY));
    assert_eq!((out.len(), back.len()), (3, 3));
    for (sent, answered) in out.iter().zip(&back) {
        let rtt = *answered - *sent;
        assert!(
            rtt >= delay && rtt < delay + Duration::from_millis(100),
            "round trip {rtt:?} on a's capture, the link delays by {delay:?}"
        );
    }
    // b's own capture sees each request after the delay and answers at once.
    let b = trace(&traces, "b");
    let rtt = echoes(b, ICMP_ECHO_REPLY)[0] - echoes(b, ICMP_ECHO_REQUEST)[0];
    assert!(rtt < Duration::from_millis(50), "{rtt:?}");
}

#[test]
fn settings_out_of_bounds_are_refused_before_anything_changes() {
    let Some(lab) = two_hosts(HostSpec::new("b")) else {
        return;
    };
    let e = lab.impair("b", &loss(150.0), None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid topology: impair.ingress.loss: 150 is not a percentage: give loss as a number from 0 to 100"
    );
    assert_eq!(lab.impairment("b").unwrap(), Impairment::default());
    let e = lab.impair("nobody", &loss(1.0), None).unwrap_err();
    assert!(e.to_string().starts_with("no host named `nobody`"), "{e}");
}

#[test]
fn an_impaired_lab_leaves_nothing_behind() {
    if !privileged() {
        return;
    }
    let before = root_namespace_state();
    let b = HostSpec::new("b").impair(Impair {
        loss: Some(1.0),
        ..Impair::default()
    });
    let lab = Lab::build(&Topology::default().host(HostSpec::new("a")).host(b))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(fabric_tables(&lab).contains("tcplab-impair-b-r0"));
    let inodes: Vec<u64> = std::iter::once(lab.fabric().inode())
        .chain(lab.hosts().iter().map(|h| h.ns().inode()))
        .collect();
    drop(lab);
    let live = referenced_net_namespaces();
    assert!(
        inodes.iter().all(|i| !live.contains(i)),
        "namespaces outlived the lab"
    );
    assert_eq!(root_namespace_state(), before);
}

#[test]
fn a_lost_syn_through_the_rust_api() {
    use tcplab::expect;
    let client = HostSpec::new("a").impair(Impair {
        egress: Some(LinkImpair {
            drop: Some(tcplab::spec::DropFirst {
                first: 1,
                matching: tcplab::spec::DropMatch::Syn,
                port: None,
            }),
            ..LinkImpair::default()
        }),
        ..Impair::default()
    });
    if !privileged() {
        return;
    }
    let lab = Lab::build(&Topology::default().host(client).host(HostSpec::new("b")))
        .unwrap_or_else(|e| panic!("{e}"));
    let run = lab.record().unwrap();
    let _server = run
        .spawn_command("b", common::tcp_server("0.0.0.0", 1234, &[]))
        .unwrap();
    run.wait_listening("b", 1234, WAIT).unwrap();
    let b = lab.host("b").unwrap().address().to_string();
    let client = run
        .run(
            "a",
            [
                env!("CARGO_BIN_EXE_tcp-client"),
                &b,
                "1234",
                "-c",
                "1",
                "--pause-sec",
                "0",
            ],
        )
        .unwrap();
    run.check([
        expect::class(&client, tcplab::ErrorClass::Ok),
        expect::handshake_rtt("a", "b:1234", Duration::from_secs(1)).syns(2),
        expect::handshake_rtt("b", "b:1234", Duration::ZERO)
            .syns(1)
            .tolerance(expect::Tolerance {
                absolute: Duration::from_millis(50),
                relative: 0.0,
            }),
        expect::dropped_by("b:1234", "impairment:a"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
}

fn ingress(link: LinkImpair) -> Impair {
    Impair {
        ingress: Some(link),
        ..Impair::default()
    }
}

#[test]
fn a_rate_spaces_packets_by_their_time_on_the_wire() {
    let Some(lab) = two_hosts(HostSpec::new("b")) else {
        return;
    };
    // 1500-byte IP packets (1514-byte frames) at 800 kbit/s: 15.14 ms each.
    lab.impair(
        "b",
        &ingress(LinkImpair {
            rate: Some("800kbit".into()),
            ..LinkImpair::default()
        }),
        None,
    )
    .unwrap();
    let rec = lab.start_captures().unwrap();
    let mut c = Command::new("ping");
    // Sent 5 ms apart, faster than the link carries them. With a deadline (-w) ping waits
    // for every reply, not only twice the longest round trip.
    c.args(["-c", "5", "-i", "0.005", "-s", "1472", "-w", "5", "b"]);
    let outcome = lab.host("a").unwrap().run(c, WAIT).unwrap();
    assert!(outcome.status.success(), "{}", outcome.transcript());
    let traces = rec.stop(None).unwrap();
    let sent = echoes(trace(&traces, "a"), ICMP_ECHO_REQUEST);
    let got = echoes(trace(&traces, "b"), ICMP_ECHO_REQUEST);
    // ping sends on until 5 replies are in: each request b got is one a sent.
    assert!(
        got.len() >= 5 && sent.len() >= got.len(),
        "{sent:?} {got:?}"
    );
    for pair in got.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_micros(14_500),
            "b received requests {gap:?} apart; the link carries one per 15.1 ms"
        );
    }
}

#[test]
fn corruption_spoils_every_packet_the_link_carries() {
    let Some(lab) = two_hosts(HostSpec::new("b")) else {
        return;
    };
    lab.impair(
        "b",
        &ingress(LinkImpair {
            corrupt: Some(100.0),
            ..LinkImpair::default()
        }),
        None,
    )
    .unwrap();
    let rec = lab.start_captures().unwrap();
    let mut c = Command::new("ping");
    c.args(["-c", "3", "-i", "0.2", "-W", "1", "-p", "00", "b"]);
    let outcome = lab.host("a").unwrap().run(c, WAIT).unwrap();
    let traces = rec.stop(None).unwrap();
    assert!(!outcome.status.success(), "no request arrives intact");
    // Each request reaches b's link with one bit flipped: where it falls decides whether b's
    // capture still reads it as an echo request, so only the frames are counted.
    let a_requests = echoes(trace(&traces, "a"), ICMP_ECHO_REQUEST).len();
    assert_eq!(a_requests, 3);
    let b = trace(&traces, "b");
    // Delivered, not lost: the three requests reach b, which answers none of them.
    let received = b
        .packets
        .iter()
        .filter(|p| {
            p.direction == tcplab::capture::Direction::In && !matches!(p.kind, Kind::Arp(_))
        })
        .count();
    assert_eq!(received, 3, "b received {received} IPv4 packets");
    assert!(
        echoes(b, ICMP_ECHO_REPLY).is_empty(),
        "b answered a spoiled request"
    );
    assert!(echoes(trace(&traces, "a"), ICMP_ECHO_REPLY).is_empty());
}

#[test]
fn duplicates_need_netem_and_are_refused_in_one_line_without_it() {
    let Some(lab) = two_hosts(HostSpec::new("b")) else {
        return;
    };
    let dup = ingress(LinkImpair {
        duplicate: Some(100.0),
        ..LinkImpair::default()
    });
    if delays_in_user_space().unwrap() {
        let e = lab.impair("b", &dup, None).unwrap_err();
        assert!(
            matches!(
                e,
                LabError::KernelFeature {
                    feature: "sch_netem",
                    ..
                }
            ),
            "{e}"
        );
        let line = e.to_string();
        assert!(!line.contains('\n') && line.contains("duplicate"), "{line}");
        assert_eq!(lab.impairment("b").unwrap(), Impairment::default());
        return;
    }
    lab.impair("b", &dup, None).unwrap();
    let rec = lab.start_captures().unwrap();
    assert!(ping(&lab, 2));
    let traces = rec.stop(None).unwrap();
    assert_eq!(echoes(trace(&traces, "b"), ICMP_ECHO_REQUEST).len(), 4);
}

#[test]
fn a_lab_delayed_in_user_space_cannot_be_pinned_and_leaves_nothing_behind() {
    if !privileged() {
        return;
    }
    let before = root_namespace_state();
    let b = HostSpec::new("b").impair(Impair {
        delay: Some(0.05),
        ..Impair::default()
    });
    let mut lab = Lab::build(&Topology::default().host(HostSpec::new("a")).host(b))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ping(&lab, 1));
    let inodes: Vec<u64> = std::iter::once(lab.fabric().inode())
        .chain(lab.hosts().iter().map(|h| h.ns().inode()))
        .collect();
    if delays_in_user_space().unwrap() {
        assert_eq!(lab.delay_line(), Some(Ok(())));
        let name = format!("tcplab-test-pin-{}", std::process::id());
        let e = lab.pin(&name).unwrap_err();
        assert!(e.to_string().contains("cannot outlive"), "{e}");
        assert!(
            !std::path::Path::new("/run/netns")
                .join(format!("{name}-fabric"))
                .exists()
        );
    } else {
        assert_eq!(lab.delay_line(), None);
    }
    drop(lab);
    let live = referenced_net_namespaces();
    assert!(
        inodes.iter().all(|i| !live.contains(i)),
        "namespaces outlived the lab (a delay line's socket holds its namespace)"
    );
    assert_eq!(root_namespace_state(), before);
}

/// A round trip from `from` to `to` by ping, in seconds, on `from`'s capture.
fn ping_rtt(lab: &Lab, from: &str, to: &str) -> f64 {
    let rec = lab.start_captures().unwrap();
    let address = lab.host(to).unwrap().address().to_string();
    let mut c = Command::new("ping");
    c.args(["-c", "1", "-W", "3", &address]);
    let outcome = lab.host(from).unwrap().run(c, WAIT).unwrap();
    assert!(outcome.status.success(), "{}", outcome.transcript());
    let traces = rec.stop(None).unwrap();
    let t = trace(&traces, from);
    (echoes(t, ICMP_ECHO_REPLY)[0] - echoes(t, ICMP_ECHO_REQUEST)[0]).as_secs_f64()
}

#[test]
fn in_a_vpc_a_packet_crossing_two_bridges_is_delayed_once() {
    if !privileged() {
        return;
    }
    let lab =
        Lab::from_file(common::fixture("topologies/vpc.toml")).unwrap_or_else(|e| panic!("{e}"));
    lab.impair(
        "server",
        &ingress(LinkImpair {
            delay: Some(0.2),
            ..LinkImpair::default()
        }),
        None,
    )
    .unwrap();
    // client-1 is in the other subnet: its request crosses its own bridge, the router, then
    // the server's bridge.
    let rtt = ping_rtt(&lab, "client-1", "server");
    assert!(
        (0.2..0.3).contains(&rtt),
        "round trip {rtt} s; the delay is 0.2 s"
    );
}

#[test]
fn a_syn_held_past_its_retransmission_reaches_the_server_twice() {
    // The article's security groups put conntrack in the fabric: a held SYN and its
    // retransmission must not clash there (netem holds them past conntrack).
    let Some(lab) = common::article_lab() else {
        return;
    };
    lab.impair(
        "server",
        &ingress(LinkImpair {
            delay: Some(1.5),
            ..LinkImpair::default()
        }),
        None,
    )
    .unwrap();
    let _server = common::start_server(&lab, "server", 1234);
    let rec = lab.start_captures().unwrap();
    let outcome = common::run_in(
        &lab,
        "client-1",
        common::tcp_client(
            "10.0.0.58",
            1234,
            &["-c", "1", "--pause-sec", "0", "-t", "6"],
        ),
    );
    let traces = rec.stop(None).unwrap();
    assert!(outcome.status.success(), "{}", outcome.transcript());
    let syns = |host: &str| {
        trace(&traces, host)
            .packets
            .iter()
            .filter(|p| matches!(&p.kind, Kind::Tcp(t) if t.flags.syn && !t.flags.ack))
            .count()
    };
    assert_eq!((syns("client-1"), syns("server")), (2, 2));
    assert_eq!(lab.delay_line().is_some(), delays_in_user_space().unwrap());
    if let Some(line) = lab.delay_line() {
        assert_eq!(line, Ok(()));
    }
}

#[test]
fn a_pinned_lab_refuses_a_delay_it_could_not_keep() {
    let Some(mut lab) = two_hosts(HostSpec::new("b")) else {
        return;
    };
    if !delays_in_user_space().unwrap() {
        // netem outlives the process: nothing to refuse.
        return;
    }
    let name = format!("tcplab-test-pinned-{}", std::process::id());
    let pins = lab.pin(&name).unwrap();
    let delay = ingress(LinkImpair {
        delay: Some(0.1),
        ..LinkImpair::default()
    });
    let e = lab.impair("b", &delay, None).unwrap_err();
    for (pin, _) in &pins {
        let del = Command::new("ip")
            .args(["netns", "del", pin])
            .status()
            .unwrap();
        assert!(del.success(), "ip netns del {pin}");
    }
    assert!(e.to_string().contains("pinned"), "{e}");
    assert!(!e.to_string().contains('\n'), "{e}");
    assert_eq!(lab.impairment("b").unwrap(), Impairment::default());
}

#[test]
fn offloaded_packets_are_held_whole_as_netem_holds_them() {
    let Some(lab) = two_hosts(HostSpec::new("b")) else {
        return;
    };
    lab.impair(
        "b",
        &ingress(LinkImpair {
            delay: Some(0.02),
            ..LinkImpair::default()
        }),
        None,
    )
    .unwrap();
    let mut consumer = Command::new(env!("CARGO_BIN_EXE_tcp-hesitant-consumer"));
    consumer.args(["0.0.0.0", "1234", "--read-after-sec", "0"]);
    let consumer = lab.host("b").unwrap().spawn(consumer).unwrap();
    consumer.wait_for_line("Listening on", WAIT).unwrap();
    let rec = lab.start_captures().unwrap();
    let b = lab.host("b").unwrap().address().to_string();
    let mut producer = Command::new(env!("CARGO_BIN_EXE_tcp-eager-producer"));
    producer.args([&b, "1234", "-n", "Alice", "-c", "200", "--pause-sec", "0"]);
    let outcome = lab.host("a").unwrap().run(producer, WAIT).unwrap();
    assert!(outcome.status.success(), "{}", outcome.transcript());
    let traces = rec.stop(None).unwrap();
    // The veths offload segmentation: a's stack hands over packets larger than a frame, and
    // b's capture sees them so unless something cut them on the way.
    let largest = |host: &str| {
        trace(&traces, host)
            .packets
            .iter()
            .filter(|p| p.direction == tcplab::capture::Direction::In)
            .map(|p| p.len)
            .max()
            .unwrap_or(0)
    };
    assert!(
        largest("b") > 1514,
        "b's largest frame: {} bytes",
        largest("b")
    );
}

#[test]
fn a_scenario_that_duplicates_is_refused_before_its_lab_is_built_without_netem() {
    if !privileged() {
        return;
    }
    let text = "description = \"d\"\n[[host]]\nname = \"a\"\n[[host]]\nname = \"b\"\n\n\
                [[step]]\naction = \"run\"\nhost = \"a\"\nname = \"p\"\ncommand = [\"ping\", \"-c\", \"2\", \"-i\", \"0.2\", \"b\"]\n\n\
                [[step]]\naction = \"impair\"\nhost = \"b\"\ningress = { duplicate = 50.0 }\n\n\
                [[expect]]\nkind = \"exit\"\nprogram = \"p\"\ncode = 0\n";
    let scenario = tcplab::scenario::Scenario::from_toml(text, "d.toml", None, "d").unwrap();
    assert_eq!(
        scenario.duplicates_at().as_deref(),
        Some("step 2 (impair b)")
    );
    let before = root_namespace_state();
    let result = tcplab::scenario::run(&scenario, Default::default());
    if delays_in_user_space().unwrap() {
        let e = result.err().expect("refused");
        let line = e.to_string();
        assert!(
            matches!(e, tcplab::scenario::ScenarioError::Unsupported { .. }),
            "{line}"
        );
        assert!(
            line.starts_with("scenario d: step 2 (impair b) duplicates packets"),
            "{line}"
        );
        assert!(!line.contains('\n'), "{line}");
    } else {
        let run = result.unwrap_or_else(|e| panic!("{e}"));
        assert!(run.verdict.passed(), "{}", run.verdict);
    }
    assert_eq!(root_namespace_state(), before);
}
