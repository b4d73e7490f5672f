//! Every kind of failure, on crafted captures: its detail reads "expected X, saw Y" in words,
//! with no Rust value's debug form in it; and a failure's line starts where it was written.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use etherparse::PacketBuilder;
use etherparse::icmpv4::DestUnreachableHeader;

use super::*;
use crate::capture::{Captured, Direction, Frame};
use crate::proc::{Line, Stream};

const CLIENT: [u8; 4] = [10, 0, 0, 208];
const SERVER: [u8; 4] = [10, 0, 0, 58];
const PORT: u16 = 1235;

fn server() -> SocketAddrV4 {
    SocketAddrV4::new(SERVER.into(), PORT)
}

/// A TCP segment between the client (port `cport`) and the server.
#[derive(Clone, Copy)]
struct Seg {
    from_client: bool,
    cport: u16,
    seq: u32,
    syn: bool,
    ack: bool,
    rst: bool,
    window: u16,
    payload: &'static [u8],
}

const SYN: Seg = Seg {
    from_client: true,
    cport: 40000,
    seq: 7,
    syn: true,
    ack: false,
    rst: false,
    window: 64240,
    payload: b"",
};

fn tcp(s: Seg) -> Vec<u8> {
    let (src, dst, sport, dport) = if s.from_client {
        (CLIENT, SERVER, s.cport, PORT)
    } else {
        (SERVER, CLIENT, PORT, s.cport)
    };
    let mut b = PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, s.seq, s.window);
    if s.syn {
        b = b.syn();
    }
    if s.rst {
        b = b.rst();
    }
    if s.ack {
        b = b.ack(1);
    }
    let mut out = Vec::new();
    b.write(&mut out, s.payload).unwrap();
    out
}

fn syn_ack() -> Vec<u8> {
    tcp(Seg {
        from_client: false,
        ack: true,
        ..SYN
    })
}

fn rst_from_server() -> Vec<u8> {
    tcp(Seg {
        from_client: false,
        syn: false,
        rst: true,
        ack: true,
        ..SYN
    })
}

/// An ICMP destination unreachable with `code`, quoting a SYN.
fn icmp_error(code: DestUnreachableHeader) -> Vec<u8> {
    let syn = tcp(SYN);
    let mut out = Vec::new();
    PacketBuilder::ethernet2([4; 6], [2; 6])
        .ipv4(SERVER, CLIENT, 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(code))
        .write(&mut out, &syn[14..14 + 28])
        .unwrap();
    out
}

fn arp_reply() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&[4; 6]);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 2]);
    f.extend_from_slice(&[4; 6]);
    f.extend_from_slice(&SERVER);
    f.extend_from_slice(&[2; 6]);
    f.extend_from_slice(&CLIENT);
    f
}

fn arp_request() -> Vec<u8> {
    let mut f = arp_reply();
    f[21] = 1;
    f[28..32].copy_from_slice(&CLIENT);
    f[38..42].copy_from_slice(&SERVER);
    f
}

/// A capture of `host`, a frame a second.
pub(super) fn capture(host: &str, frames: Vec<Vec<u8>>, drops: u64) -> Trace {
    Trace::new(&Captured {
        host: host.into(),
        interface: "eth0".into(),
        frames: frames
            .into_iter()
            .enumerate()
            .map(|(i, data)| Frame {
                at: Duration::from_secs(10 + i as u64),
                direction: Direction::Out,
                original_len: data.len(),
                data,
            })
            .collect(),
        drops,
    })
}

fn outcome(code: Option<i32>, signal: i32, lines: &[&str]) -> Outcome {
    Outcome {
        program: "tcp-client 10.0.0.58 1235".into(),
        status: ExitStatus::from_raw(code.map_or(signal, |c| c << 8)),
        started_at: Duration::from_secs(10),
        duration: Duration::from_millis(1500),
        lines: lines
            .iter()
            .map(|t| Line {
                at: Duration::from_millis(5),
                stream: Stream::Stdout,
                text: t.to_string(),
            })
            .collect(),
        cut: None,
    }
}

/// The detail of `e`'s check against `traces` and a client that exited with 10 (connect
/// timeout) after printing "hello".
fn detail(e: Expectation, traces: &[Trace]) -> (bool, String) {
    let outcomes = vec![
        ("client".to_string(), outcome(Some(10), 0, &["hello"])),
        ("killed".to_string(), outcome(None, 9, &[])),
    ];
    let v = evaluate(
        &[e],
        &Evidence {
            traces,
            outcomes: &outcomes,
            origin: Duration::from_secs(10),
            syn_sysctls: &[(
                "client-1".into(),
                SynSysctls {
                    linear_timeouts: Some(4),
                    syn_retries: 6,
                },
            )],
            attribution: &Default::default(),
        },
    );
    let c = v.checks.last().unwrap();
    (c.held, c.detail.clone())
}

/// Debug forms of the values failures talk about: none may show.
const RESIDUE: [&str; 14] = [
    "Some(",
    "None",
    "{",
    "}",
    "Tcp",
    "Flags",
    "Side",
    "Client",
    "Server",
    "FlowKey",
    "[(",
    "exit status",
    "signal:",
    "(s)",
];

/// Fails unless `e` fails with a detail in words that says `expected ... saw` and `wanted`.
#[track_caller]
fn fails_in_words(e: Expectation, traces: &[Trace], wanted: &str) {
    let (held, detail) = detail(e.clone(), traces);
    assert!(!held, "{e} should fail: {detail}");
    assert!(detail.contains("expected "), "{e}: {detail}");
    assert!(detail.contains(", saw "), "{e}: {detail}");
    for r in RESIDUE {
        assert!(!detail.contains(r), "{e}: `{r}` in {detail}");
    }
    assert!(
        detail.contains(wanted),
        "{e}: wanted `{wanted}` in: {detail}"
    );
}

fn client_capture(frames: Vec<Vec<u8>>) -> Vec<Trace> {
    vec![capture("client-1", frames, 0)]
}

#[test]
fn flow_failures_say_what_the_connection_showed() {
    let syns = client_capture(vec![tcp(SYN), tcp(SYN)]);
    fails_in_words(
        Expectation::NoFlow {
            host: "client-1".into(),
            server: server(),
        },
        &syns,
        "expected no packet of a connection to 10.0.0.58:1235, saw 2 packets (2 SYNs, no answer)",
    );
    fails_in_words(
        Expectation::NoIpPackets {
            host: "client-1".into(),
        },
        &syns,
        "expected no IP packet, saw 2 IP packets",
    );
    let refused = client_capture(vec![tcp(SYN), rst_from_server()]);
    fails_in_words(
        Expectation::Handshake {
            host: "client-1".into(),
            server: server(),
        },
        &refused,
        "expected a SYN, a SYN-ACK and an ACK, saw 1 SYN, 1 RST from the server",
    );
    fails_in_words(
        Expectation::ResetBy {
            host: "client-1".into(),
            server: server(),
            by: Side::Client,
        },
        &refused,
        "expected a RST from the client, saw 1 RST from the server",
    );
    fails_in_words(
        Expectation::ResetBy {
            host: "client-1".into(),
            server: server(),
            by: Side::Server,
        },
        &syns,
        "expected a RST from the server, saw no RST: 2 SYNs, no answer",
    );
    fails_in_words(
        Expectation::NoAnswer {
            host: "client-1".into(),
            server: server(),
        },
        &client_capture(vec![tcp(SYN), syn_ack()]),
        "expected SYNs to 10.0.0.58:1235 and no answer, saw 1 SYN, 1 SYN-ACK",
    );
    fails_in_words(
        Expectation::NoAnswer {
            host: "client-1".into(),
            server: server(),
        },
        &client_capture(vec![]),
        "saw no packet of a connection to 10.0.0.58:1235",
    );
    fails_in_words(
        Expectation::ZeroWindow {
            host: "client-1".into(),
            server: server(),
        },
        &syns,
        "expected a zero window from the server, then the client probing it, saw no zero window advertised",
    );
}

#[test]
fn icmp_failures_name_the_messages() {
    let expected = Expectation::IcmpError {
        host: "client-1".into(),
        server: server(),
        icmp_type: 3,
        code: 3,
    };
    fails_in_words(
        expected.clone(),
        &client_capture(vec![tcp(SYN), icmp_error(DestUnreachableHeader::Host)]),
        "expected ICMP destination unreachable (port unreachable), saw ICMP destination unreachable (host unreachable)",
    );
    fails_in_words(
        expected.clone(),
        &client_capture(vec![tcp(SYN)]),
        "saw no ICMP error about it (1 SYN, no answer)",
    );
    assert_eq!(
        expected.to_string(),
        "client-1: ICMP destination unreachable (port unreachable; type 3, code 3) quoting a packet to 10.0.0.58:1235"
    );
    let (held, detail) = detail(
        expected,
        &client_capture(vec![tcp(SYN), icmp_error(DestUnreachableHeader::Port)]),
    );
    assert!(held, "{detail}");
    assert_eq!(detail, "ICMP destination unreachable (port unreachable)");
}

#[test]
fn payload_failures_show_connections_as_addresses() {
    let hello = |cport| {
        tcp(Seg {
            syn: false,
            ack: true,
            cport,
            payload: b"hello",
            ..SYN
        })
    };
    let on = |host, cport| capture(host, vec![tcp(Seg { cport, ..SYN }), hello(cport)], 0);
    fails_in_words(
        Expectation::Payload {
            text: "bye".into(),
            server: server(),
            hosts: vec!["client-1".into()],
        },
        &[on("client-1", 40000)],
        "expected \"bye\" in the client's payload to 10.0.0.58:1235, saw 1 connection to 10.0.0.58:1235 on client-1, without it",
    );
    fails_in_words(
        Expectation::Answer {
            text: "hello".into(),
            server: server(),
            hosts: vec!["client-1".into()],
        },
        &[on("client-1", 40000)],
        "expected \"hello\" in the server's payload from 10.0.0.58:1235",
    );
    fails_in_words(
        Expectation::Payload {
            text: "hello".into(),
            server: server(),
            hosts: vec!["client-1".into(), "server".into()],
        },
        &[on("client-1", 40000), on("server", 40001)],
        "expected \"hello\" in one connection seen on every host, saw it in different connections: \
         10.0.0.208:40000 > 10.0.0.58:1235 on client-1; 10.0.0.208:40001 > 10.0.0.58:1235 on server",
    );
}

#[test]
fn arp_failures_count_requests_and_replies() {
    fails_in_words(
        Expectation::UnansweredArp {
            host: "client-1".into(),
            target: SERVER.into(),
        },
        &client_capture(vec![arp_request(), arp_request(), arp_reply()]),
        "expected ARP requests for 10.0.0.58 and no reply, saw 2 requests and 1 reply",
    );
}

#[test]
fn program_failures_say_how_it_ended() {
    let none: &[Trace] = &[];
    fails_in_words(
        Expectation::Exit {
            program: "client".into(),
            code: 0,
        },
        none,
        "expected exit code 0, saw exit code 10",
    );
    fails_in_words(
        Expectation::Exit {
            program: "killed".into(),
            code: 0,
        },
        none,
        "expected exit code 0, saw killed by signal 9 (SIGKILL)",
    );
    fails_in_words(
        Expectation::Class {
            program: "client".into(),
            class: ErrorClass::ConnectionRefused,
        },
        none,
        "expected connection-refused, saw connect-timeout after 1.500 s",
    );
    fails_in_words(
        Expectation::Took {
            program: "client".into(),
            expected: Duration::from_secs(3),
            tolerance: Tolerance::default(),
        },
        none,
        "expected a run of 3.000 s (±0.250 s), saw it run for 1.500 s",
    );
    fails_in_words(
        Expectation::Output {
            program: "client".into(),
            line: "bye".into(),
        },
        none,
        "expected a line containing \"bye\", saw 1 line, none with it",
    );
    fails_in_words(
        Expectation::Output {
            program: "nobody".into(),
            line: "bye".into(),
        },
        none,
        "expected a program named nobody, saw none (programs: client, killed)",
    );
}

#[test]
fn schedule_and_capture_failures_read_the_same_way() {
    let schedule = |host: &str| Expectation::SynSchedule {
        host: host.into(),
        server: server(),
        sender: "client-1".into(),
        app_timeout: Some(Duration::from_secs_f64(3.5)),
        tolerance: Tolerance::default(),
        program: None,
    };
    fails_in_words(
        schedule("client-1"),
        &client_capture(vec![]),
        "expected SYNs to 10.0.0.58:1235, saw none on client-1",
    );
    fails_in_words(
        schedule("client-1"),
        &client_capture(vec![
            tcp(SYN),
            tcp(Seg {
                cport: 40001,
                ..SYN
            }),
        ]),
        "expected one connection to 10.0.0.58:1235, saw 2 on client-1",
    );
    fails_in_words(
        schedule("client-1"),
        &client_capture(vec![tcp(SYN), tcp(Seg { seq: 9, ..SYN })]),
        "expected every SYN to carry the first one's ISN 7, saw ISN 9 at 1.000 s",
    );
    fails_in_words(
        schedule("server"),
        &client_capture(vec![]),
        "expected a capture of server, saw none (captures: client-1)",
    );
    let (held, detail) = {
        let traces = [capture("client-1", vec![], 3)];
        let v = evaluate(
            &[],
            &Evidence {
                traces: &traces,
                outcomes: &[],
                origin: Duration::ZERO,
                syn_sysctls: &[],
                attribution: &Default::default(),
            },
        );
        (v.checks[0].held, v.checks[0].detail.clone())
    };
    assert!(!held);
    assert_eq!(
        detail,
        "expected no frame dropped, saw 3 frames dropped by the kernel"
    );
}

#[test]
fn a_failure_starts_with_where_it_was_written() {
    let traces = client_capture(vec![tcp(SYN)]);
    let expectations = [
        Expectation::NoFlow {
            host: "client-1".into(),
            server: server(),
        },
        Expectation::NoAnswer {
            host: "client-1".into(),
            server: server(),
        },
        Expectation::NoIpPackets {
            host: "client-1".into(),
        },
    ];
    let at = [
        Some(SourceLine::new("s.toml", 12)),
        Some(SourceLine::new("s.toml", 17)),
    ];
    let v = evaluate_after(
        Vec::new(),
        &expectations,
        &at,
        &Evidence {
            traces: &traces,
            outcomes: &[],
            origin: Duration::ZERO,
            syn_sysctls: &[],
            attribution: &Default::default(),
        },
    );
    let report = v.to_string();
    let lines: Vec<&str> = report.lines().collect();
    assert!(
        lines[0].starts_with("s.toml:12: FAIL client-1: no packet of a connection to 10.0.0.58:1235: expected no packet"),
        "{report}"
    );
    assert!(
        lines[1].starts_with(
            "FAIL client-1: no IP packet at all: expected no IP packet, saw 1 IP packet"
        ),
        "an expectation past the places given has none: {report}"
    );
    assert!(
        report.contains("\nok   client-1: no SYN-ACK, RST or ICMP error for SYNs to 10.0.0.58:1235: 1 SYN, no answer\n"),
        "{report}"
    );
    assert_eq!(v.checks[1].at, Some(SourceLine::new("s.toml", 12)));
    assert_eq!(v.checks[3].at, None);
}

#[test]
fn packets_of_a_connection_are_told_by_what_they_carry() {
    let data = tcp(Seg {
        syn: false,
        ack: true,
        payload: b"hi",
        ..SYN
    });
    let ack = tcp(Seg {
        syn: false,
        ack: true,
        ..SYN
    });
    fails_in_words(
        Expectation::NoFlow {
            host: "client-1".into(),
            server: server(),
        },
        &client_capture(vec![tcp(SYN), syn_ack(), ack, data]),
        "saw 4 packets (1 SYN, 1 SYN-ACK, 1 packet with data, 1 ACK or FIN)",
    );
}
