//! The article's scenarios proved on the wire: every host captured, the pcaps read back by
//! tcpdump and tshark, and packet-level expectations with timings.

mod common;

use std::net::SocketAddrV4;
use std::process::Command;
use std::time::Duration;

use common::artifacts::Artifacts;
use common::*;
use tcplab::ErrorClass;
use tcplab::expect::{Evidence, Expectation, Tolerance, Verdict, evaluate, read_syn_sysctls};
use tcplab::lab::Lab;
use tcplab::proc::Outcome;
use tcplab::spec::{Action, FirewallRule, Protocol};
use tcplab::trace::{Kind, Side, Trace};

fn server(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new([10, 0, 0, 58].into(), port)
}

/// Runs `clients` (host, command) to completion while every host is captured.
fn record(
    lab: &Lab,
    artifacts: &Artifacts,
    clients: Vec<(&str, &str, Command)>,
) -> (Vec<Trace>, Vec<(String, Outcome)>, Duration) {
    let recording = lab.start_captures().unwrap();
    let origin = recording.origin();
    let running: Vec<_> = clients
        .into_iter()
        .map(|(name, host, cmd)| {
            (
                name.to_string(),
                lab.host(host).unwrap().spawn(cmd).unwrap(),
            )
        })
        .collect();
    let outcomes = running
        .into_iter()
        .map(|(name, p)| (name, p.wait(WAIT).unwrap()))
        .collect();
    let traces = recording.stop(Some(artifacts.path())).unwrap();
    (traces, outcomes, origin)
}

/// Evaluates `expectations`, with the SYN sysctls of their senders read from `lab` now.
fn verdict(
    lab: &Lab,
    expectations: &[Expectation],
    traces: &[Trace],
    outcomes: &[(String, Outcome)],
    origin: Duration,
) -> Verdict {
    let (syn_sysctls, unread) =
        read_syn_sysctls(expectations, |h, k| lab.host(h).ok()?.sysctl(k).ok());
    assert!(unread.is_empty(), "{unread:?}");
    evaluate(
        expectations,
        &Evidence {
            traces,
            outcomes,
            origin,
            syn_sysctls: &syn_sysctls,
            attribution: &Default::default(),
        },
    )
}

fn trace<'a>(traces: &'a [Trace], host: &str) -> &'a Trace {
    traces.iter().find(|t| t.host == host).unwrap()
}

/// A control for every "nothing on the server" check: the server's capture was live, since it
/// holds client-1's ARP request (ARP is not IP, and nothing in the lab filters it).
fn assert_server_capture_live(traces: &[Trace]) {
    let server = trace(traces, "server");
    assert!(
        server.packets.iter().any(
            |p| matches!(&p.kind, Kind::Arp(a) if a.request && a.sender == std::net::Ipv4Addr::new(10, 0, 0, 208))
        ),
        "the server's capture missed client-1's ARP request: an empty capture would prove nothing"
    );
}

/// Frame numbers tshark's TCP analysis flags as retransmissions.
fn tshark_retransmissions(pcap: &std::path::Path) -> usize {
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(pcap)
        .args([
            "-Y",
            "tcp.analysis.retransmission",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .output()
        .expect("tshark is installed (cargo xtask test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn tcpdump_lines(pcap: &std::path::Path) -> Vec<String> {
    let out = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(pcap)
        .output()
        .expect("tcpdump is installed (cargo xtask test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn connect_timeout_shows_syn_retransmissions_and_an_empty_server_capture() {
    let Some(lab) = article_lab() else { return };
    let artifacts = Artifacts::new("connect-timeout");
    // Something listens on 1235: only the security group stands in the way.
    let _srv = start_server(&lab, "server", 1235);
    let (traces, outcomes, origin) = record(
        &lab,
        &artifacts,
        vec![(
            "client",
            "client-1",
            tcp_client("10.0.0.58", 1235, &["-t", "3.5", "-c", "1"]),
        )],
    );
    let app_timeout = Some(Duration::from_secs_f64(3.5));
    let v = verdict(
        &lab,
        &[
            Expectation::Class {
                program: "client".into(),
                class: ErrorClass::ConnectTimeout,
            },
            Expectation::SynSchedule {
                host: "client-1".into(),
                server: server(1235),
                sender: "client-1".into(),
                app_timeout,
                tolerance: Tolerance::default(),
                program: Some("client".into()),
            },
            Expectation::NoAnswer {
                host: "client-1".into(),
                server: server(1235),
            },
            Expectation::NoFlow {
                host: "server".into(),
                server: server(1235),
            },
            Expectation::NoIpPackets {
                host: "server".into(),
            },
        ],
        &traces,
        &outcomes,
        origin,
    );
    v.assert();
    assert_server_capture_live(&traces);

    let client = trace(&traces, "client-1");
    let flow = client.flows_to(server(1235)).next().unwrap();
    let retransmissions = flow.syns.len() - 1;
    assert!(retransmissions >= 3, "{v}");
    let pcap = client.pcap.as_ref().unwrap();
    assert_eq!(
        tshark_retransmissions(pcap),
        retransmissions,
        "tshark and tcplab disagree on the retransmissions in {}",
        pcap.display()
    );
    let dumped = tcpdump_lines(pcap);
    assert_eq!(
        dumped
            .iter()
            .filter(|l| l.contains("10.0.0.58.1235: Flags [S]"))
            .count(),
        flow.syns.len(),
        "{dumped:#?}"
    );
    let marked: Vec<String> = flow.syns.iter().map(|&i| client.line(i, origin)).collect();
    assert!(!marked[0].contains("[TCP Retransmission]"), "{marked:#?}");
    assert!(
        marked[1..]
            .iter()
            .all(|l| l.contains("[TCP Retransmission]")),
        "{marked:#?}"
    );
}

#[test]
fn allowed_connections_carry_the_messages_on_both_sides() {
    let Some(lab) = article_lab() else { return };
    let artifacts = Artifacts::new("allowed");
    let srv = start_server(&lab, "server", 1234);
    let (traces, outcomes, origin) = record(
        &lab,
        &artifacts,
        vec![
            (
                "alice",
                "client-1",
                tcp_client("10.0.0.58", 1234, &["-n", "Alice", "-c", "2"]),
            ),
            (
                "bob",
                "client-2",
                tcp_client("10.0.0.58", 1234, &["-n", "Bob", "-c", "2"]),
            ),
        ],
    );
    let mut expectations = Vec::new();
    for (program, host, name) in [("alice", "client-1", "Alice"), ("bob", "client-2", "Bob")] {
        expectations.extend([
            Expectation::Class {
                program: program.into(),
                class: ErrorClass::Ok,
            },
            Expectation::Handshake {
                host: host.into(),
                server: server(1234),
            },
            Expectation::Handshake {
                host: "server".into(),
                server: server(1234),
            },
            Expectation::Payload {
                text: format!("Message #1 from client {name}"),
                server: server(1234),
                hosts: vec![host.into(), "server".into()],
            },
        ]);
    }
    verdict(&lab, &expectations, &traces, &outcomes, origin).assert();
    srv.wait_for_line("Message #2 from client Bob", WAIT)
        .unwrap();
    let dumped = tcpdump_lines(trace(&traces, "server").pcap.as_ref().unwrap());
    assert!(
        dumped
            .iter()
            .any(|l| l.contains("10.0.0.208") && l.contains("> 10.0.0.58.1234: Flags [S]")),
        "{dumped:#?}"
    );
}

#[test]
fn no_listener_is_a_reset_from_the_server_on_both_sides() {
    let Some(lab) = article_lab() else { return };
    let artifacts = Artifacts::new("refused");
    let (traces, outcomes, origin) = record(
        &lab,
        &artifacts,
        vec![(
            "client",
            "client-1",
            tcp_client("10.0.0.58", 1234, &["-c", "1"]),
        )],
    );
    verdict(
        &lab,
        &[
            Expectation::Class {
                program: "client".into(),
                class: ErrorClass::ConnectionRefused,
            },
            Expectation::ResetBy {
                host: "client-1".into(),
                server: server(1234),
                by: Side::Server,
            },
            Expectation::ResetBy {
                host: "server".into(),
                server: server(1234),
                by: Side::Server,
            },
        ],
        &traces,
        &outcomes,
        origin,
    )
    .assert();
}

#[test]
fn fabric_reset_reaches_the_client_while_the_server_sees_nothing() {
    let topo = article_topology().firewall(
        FirewallRule::new("fabric", Action::RejectTcpReset, Protocol::Tcp)
            .port(1234)
            .destination("server"),
    );
    let Some(lab) = lab_of(&topo) else { return };
    let artifacts = Artifacts::new("fabric-reset");
    let _srv = start_server(&lab, "server", 1234);
    let (traces, outcomes, origin) = record(
        &lab,
        &artifacts,
        vec![(
            "client",
            "client-1",
            tcp_client("10.0.0.58", 1234, &["-c", "1"]),
        )],
    );
    verdict(
        &lab,
        &[
            Expectation::Class {
                program: "client".into(),
                class: ErrorClass::ConnectionRefused,
            },
            Expectation::ResetBy {
                host: "client-1".into(),
                server: server(1234),
                by: Side::Server,
            },
            Expectation::NoFlow {
                host: "server".into(),
                server: server(1234),
            },
            Expectation::NoIpPackets {
                host: "server".into(),
            },
        ],
        &traces,
        &outcomes,
        origin,
    )
    .assert();
    assert_server_capture_live(&traces);
}

#[test]
fn fabric_icmp_reject_is_host_unreachable() {
    let topo = article_topology().firewall(
        FirewallRule::new("fabric", Action::RejectHostUnreachable, Protocol::Tcp)
            .port(1234)
            .destination("server"),
    );
    let Some(lab) = lab_of(&topo) else { return };
    let artifacts = Artifacts::new("fabric-icmp");
    let (traces, outcomes, origin) = record(
        &lab,
        &artifacts,
        vec![(
            "client",
            "client-1",
            tcp_client("10.0.0.58", 1234, &["-c", "1"]),
        )],
    );
    verdict(
        &lab,
        &[
            Expectation::Class {
                program: "client".into(),
                class: ErrorClass::HostUnreachable,
            },
            Expectation::IcmpError {
                host: "client-1".into(),
                server: server(1234),
                icmp_type: 3,
                code: 1,
            },
            Expectation::NoIpPackets {
                host: "server".into(),
            },
        ],
        &traces,
        &outcomes,
        origin,
    )
    .assert();
    assert_server_capture_live(&traces);
}

#[test]
fn host_firewall_drop_shows_the_syns_on_both_sides() {
    let topo = article_topology()
        .firewall(FirewallRule::new("server", Action::Drop, Protocol::Tcp).port(1234));
    let Some(lab) = lab_of(&topo) else { return };
    let artifacts = Artifacts::new("host-drop");
    let _srv = start_server(&lab, "server", 1234);
    let (traces, outcomes, origin) = record(
        &lab,
        &artifacts,
        vec![(
            "client",
            "client-1",
            tcp_client("10.0.0.58", 1234, &["-t", "2.5", "-c", "1"]),
        )],
    );
    let app_timeout = Some(Duration::from_secs_f64(2.5));
    let mut expectations = vec![Expectation::Class {
        program: "client".into(),
        class: ErrorClass::ConnectTimeout,
    }];
    // The discrepancy to look for: the SYNs arrive at the server, and nothing goes back.
    for host in ["client-1", "server"] {
        expectations.push(Expectation::SynSchedule {
            host: host.into(),
            server: server(1234),
            sender: "client-1".into(),
            app_timeout,
            tolerance: Tolerance::default(),
            program: Some("client".into()),
        });
        expectations.push(Expectation::NoAnswer {
            host: host.into(),
            server: server(1234),
        });
    }
    verdict(&lab, &expectations, &traces, &outcomes, origin).assert();
}

#[test]
fn a_late_syn_fails_with_expected_and_observed_times() {
    let Some(lab) = article_lab() else { return };
    let artifacts = Artifacts::new("timing-failure");
    let (traces, outcomes, origin) = record(
        &lab,
        &artifacts,
        vec![(
            "client",
            "client-1",
            tcp_client("10.0.0.58", 1235, &["-t", "2.5", "-c", "1"]),
        )],
    );
    // A wrong model on purpose: the sysctl changes after the run, so the evidence says the
    // interval doubles from the start (SYNs at 0, 1, 3 s) while the run sent them at 0, 1, 2 s.
    let client = lab.host("client-1").unwrap();
    if client.sysctl("net.ipv4.tcp_syn_linear_timeouts").is_ok() {
        client
            .set_sysctl("net.ipv4.tcp_syn_linear_timeouts", "0")
            .unwrap();
    }
    let v = verdict(
        &lab,
        &[Expectation::SynSchedule {
            host: "client-1".into(),
            server: server(1235),
            sender: "client-1".into(),
            app_timeout: Some(Duration::from_secs(4)),
            tolerance: Tolerance::default(),
            program: Some("client".into()),
        }],
        &traces,
        &outcomes,
        origin,
    );
    assert!(!v.passed(), "a wrong schedule must fail:\n{v}");
    let report = v.to_string();
    assert!(
        report.contains("expected SYN #3 at 3.000 s (±0.250 s), saw it at 2.0"),
        "{report}"
    );
    assert!(
        report.contains("FAIL client-1: SYNs to 10.0.0.58:1235"),
        "{report}"
    );
    assert!(
        report.contains("[TCP Retransmission]"),
        "the report lists the packets:\n{report}"
    );
    assert!(
        report.contains(".pcap"),
        "the report names the pcaps:\n{report}"
    );
}

#[test]
fn stopping_right_after_the_last_packet_loses_nothing() {
    let Some(lab) = article_lab() else { return };
    let artifacts = Artifacts::new("tail");
    let _srv = start_server(&lab, "server", 1234);
    // The captures stop as soon as the client has exited: its last message, the answer and
    // its FIN must all be in both captures.
    let (traces, outcomes, origin) = record(
        &lab,
        &artifacts,
        vec![(
            "client",
            "client-1",
            tcp_client("10.0.0.58", 1234, &["-n", "Alice", "-c", "50"]),
        )],
    );
    verdict(
        &lab,
        &[
            Expectation::Class {
                program: "client".into(),
                class: ErrorClass::Ok,
            },
            Expectation::Payload {
                text: "Message #50 from client Alice".into(),
                server: server(1234),
                hosts: vec!["client-1".into(), "server".into()],
            },
        ],
        &traces,
        &outcomes,
        origin,
    )
    .assert();
    for host in ["client-1", "server"] {
        let t = trace(&traces, host);
        let flow = t.flows_to(server(1234)).next().unwrap();
        assert!(
            flow.fins.iter().any(|(_, side)| *side == Side::Client),
            "{host}: the client's FIN is missing"
        );
        let answers = String::from_utf8_lossy(&flow.payload(t, Side::Server))
            .matches("Response to message")
            .count();
        assert_eq!(answers, 50, "{host}: all 50 answers captured");
    }
}

#[test]
fn a_late_start_is_its_own_failure() {
    let Some(lab) = article_lab() else { return };
    let artifacts = Artifacts::new("late-start");
    // The client waits 1.2 s before it connects: the delay under test, not a synchronisation.
    let mut late = Command::new("sh");
    late.arg("-c").arg(format!(
        "sleep 1.2; exec {} 10.0.0.58 1235 -t 3.5 -c 1 --pause-sec 0",
        env!("CARGO_BIN_EXE_tcp-client")
    ));
    let (traces, outcomes, origin) = record(&lab, &artifacts, vec![("client", "client-1", late)]);
    let app_timeout = Some(Duration::from_secs_f64(3.5));
    let v = verdict(
        &lab,
        &[Expectation::SynSchedule {
            host: "client-1".into(),
            server: server(1235),
            sender: "client-1".into(),
            app_timeout,
            tolerance: Tolerance::default(),
            program: Some("client".into()),
        }],
        &traces,
        &outcomes,
        origin,
    );
    assert!(
        !v.passed(),
        "a client that started 1.2 s late must fail:\n{v}"
    );
    let detail = &v.checks.last().unwrap().detail;
    assert!(
        detail.starts_with(
            "late start: expected the first SYN within 0.100 s of client's start, saw it 1."
        ),
        "the late start comes first: {detail}"
    );
    assert!(
        detail.contains("before it: ARP who-has 10.0.0.58 at 1.") && detail.contains(", answered"),
        "what came before the first SYN: {detail}"
    );
    assert!(!detail.contains("saw none"), "{detail}");
}
