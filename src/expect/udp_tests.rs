//! UDP expectations on crafted captures: datagrams counted (a fragmented one once), their
//! text, none at all, and ICMP errors quoting a datagram; failures in words, with the UDP
//! packets shown under the failure.

use etherparse::PacketBuilder;
use etherparse::icmpv4::DestUnreachableHeader;

use super::*;

const CLIENT: [u8; 4] = [10, 0, 0, 208];
const SERVER: [u8; 4] = [10, 0, 0, 58];
const PORT: u16 = 1234;
const CPORT: u16 = 51234;

fn server() -> SocketAddrV4 {
    SocketAddrV4::new(SERVER.into(), PORT)
}

/// A whole datagram, from the client to the server or back.
fn udp(from_client: bool, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sport, dport) = if from_client {
        (CLIENT, SERVER, CPORT, PORT)
    } else {
        (SERVER, CLIENT, PORT, CPORT)
    };
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// A datagram from the client as IP cuts it on a 1500-byte MTU: frames of at most 1480
/// bytes of IP payload, the first holding the UDP header.
fn fragments(payload: &[u8]) -> Vec<Vec<u8>> {
    let whole = udp(true, payload);
    let ip_payload = &whole[14 + 20..];
    let mut frames = Vec::new();
    for (n, chunk) in ip_payload.chunks(1480).enumerate() {
        let offset = n * 1480;
        let more = offset + chunk.len() < ip_payload.len();
        let mut f = whole[..14 + 20].to_vec();
        let total = u16::try_from(20 + chunk.len()).unwrap();
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f[18..20].copy_from_slice(&7u16.to_be_bytes()); // identification
        let flags = u16::try_from(offset / 8).unwrap() | if more { 0x2000 } else { 0 };
        f[20..22].copy_from_slice(&flags.to_be_bytes());
        f[24..26].copy_from_slice(&[0, 0]);
        let sum = checksum(&f[14..34]);
        f[24..26].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(chunk);
        frames.push(f);
    }
    frames
}

fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP destination unreachable from `from`, quoting the client's datagram.
fn icmp_about_datagram(from: [u8; 4], code: DestUnreachableHeader) -> Vec<u8> {
    let datagram = udp(true, b"Message #1");
    let mut out = Vec::new();
    PacketBuilder::ethernet2([4; 6], [2; 6])
        .ipv4(from, CLIENT, 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(code))
        .write(&mut out, &datagram[14..14 + 28])
        .unwrap();
    out
}

/// A capture of `host` with no drop, a frame a second.
fn capture(host: &str, frames: Vec<Vec<u8>>) -> Trace {
    super::failure_tests::capture(host, frames, 0)
}

fn verdict(e: Expectation, traces: &[Trace]) -> Verdict {
    evaluate(
        &[e],
        &Evidence {
            traces,
            outcomes: &[],
            origin: Duration::from_secs(10),
            syn_sysctls: &[],
            attribution: &Default::default(),
        },
    )
}

fn detail(e: Expectation, traces: &[Trace]) -> (bool, String) {
    let v = verdict(e, traces);
    let c = v.checks.last().unwrap();
    (c.held, c.detail.clone())
}

fn datagrams(from: Side, count: Option<usize>, text: Option<&str>) -> Expectation {
    Expectation::Datagrams {
        host: "client-1".into(),
        server: server(),
        from,
        count,
        text: text.map(str::to_string),
    }
}

fn exchange() -> Vec<Trace> {
    vec![capture(
        "client-1",
        vec![
            udp(true, b"\"Message #1 from client Alice\""),
            udp(false, b"\"Response to message\""),
            udp(true, b"\"Message #2 from client Alice\""),
            udp(false, b"\"Response to message\""),
        ],
    )]
}

#[test]
fn datagrams_are_counted_each_way_with_their_text() {
    let t = exchange();
    for (e, saw) in [
        (
            datagrams(Side::Client, None, None),
            "2 datagrams to 10.0.0.58:1234",
        ),
        (
            datagrams(Side::Client, Some(2), Some("from client Alice")),
            "2 datagrams to 10.0.0.58:1234",
        ),
        (
            datagrams(Side::Server, Some(2), Some("Response")),
            "2 datagrams from 10.0.0.58:1234",
        ),
        (
            datagrams(Side::Client, Some(1), Some("Message #2")),
            "2 datagrams to 10.0.0.58:1234, 1 containing it",
        ),
    ] {
        assert_eq!(detail(e.clone(), &t), (true, saw.to_string()), "{e}");
    }
    assert_eq!(
        datagrams(Side::Server, Some(2), Some("Response")).to_string(),
        "client-1: 2 UDP datagrams containing \"Response\" from 10.0.0.58:1234"
    );
    assert_eq!(
        datagrams(Side::Client, None, None).to_string(),
        "client-1: UDP datagrams to 10.0.0.58:1234"
    );
}

#[test]
fn datagram_failures_say_what_was_seen() {
    let t = exchange();
    let cases = [
        (
            datagrams(Side::Client, Some(3), None),
            &t,
            "expected 3 datagrams to 10.0.0.58:1234, saw 2 datagrams to 10.0.0.58:1234",
        ),
        (
            datagrams(Side::Server, None, Some("Message #9")),
            &t,
            "expected datagrams containing \"Message #9\" from 10.0.0.58:1234, saw 2 datagrams from 10.0.0.58:1234, 0 containing it",
        ),
    ];
    for (e, traces, wanted) in cases {
        assert_eq!(
            detail(e.clone(), traces),
            (false, wanted.to_string()),
            "{e}"
        );
    }
    // Nothing of it: what else went to the server is said.
    let only_sent = vec![capture("client-1", vec![udp(true, b"x")])];
    assert_eq!(
        detail(datagrams(Side::Server, Some(1), None), &only_sent),
        (
            false,
            "expected 1 datagram from 10.0.0.58:1234, saw none (1 datagram to it)".to_string()
        )
    );
    // None from the server, as a dropped datagram leaves it; two errors said once, counted.
    let refused = vec![capture(
        "client-1",
        vec![
            udp(true, b"x"),
            icmp_about_datagram(SERVER, DestUnreachableHeader::Port),
            udp(true, b"x"),
            icmp_about_datagram(SERVER, DestUnreachableHeader::Port),
        ],
    )];
    assert_eq!(
        detail(datagrams(Side::Server, Some(0), None), &refused),
        (
            true,
            "none (2 datagrams to it, 2 × ICMP destination unreachable (port unreachable))"
                .to_string()
        )
    );
    assert_eq!(
        datagrams(Side::Server, Some(0), None).to_string(),
        "client-1: no UDP datagram from 10.0.0.58:1234"
    );
    assert_eq!(
        detail(datagrams(Side::Client, Some(0), None), &refused),
        (
            false,
            "expected no datagram to 10.0.0.58:1234, saw 2 datagrams to 10.0.0.58:1234".to_string()
        )
    );
    let empty = vec![capture("client-1", vec![])];
    assert_eq!(
        detail(datagrams(Side::Client, None, None), &empty),
        (
            false,
            "expected datagrams to 10.0.0.58:1234, saw none (no UDP datagram to or from 10.0.0.58:1234)"
                .to_string()
        )
    );
}

#[test]
fn no_datagrams_holds_on_silence_and_fails_on_either_way() {
    let none = Expectation::NoDatagrams {
        host: "client-1".into(),
        server: server(),
    };
    assert_eq!(
        none.to_string(),
        "client-1: no UDP datagram to or from 10.0.0.58:1234"
    );
    // Other ports and TCP to the server are not its datagrams.
    let mut other = udp(true, b"x");
    other[14 + 20 + 2..14 + 20 + 4].copy_from_slice(&1235u16.to_be_bytes());
    let quiet = vec![capture("client-1", vec![other])];
    assert_eq!(
        detail(none.clone(), &quiet),
        (true, "none seen".to_string())
    );
    assert_eq!(
        detail(none.clone(), &exchange()),
        (
            false,
            "expected no UDP datagram to or from 10.0.0.58:1234, saw 2 datagrams to it, 2 datagrams from it"
                .to_string()
        )
    );
    let answered = vec![capture(
        "client-1",
        vec![
            udp(true, b"x"),
            icmp_about_datagram(SERVER, DestUnreachableHeader::Port),
        ],
    )];
    assert_eq!(
        detail(none, &answered),
        (
            false,
            "expected no UDP datagram to or from 10.0.0.58:1234, saw 1 datagram to it, ICMP destination unreachable (port unreachable)"
                .to_string()
        )
    );
}

#[test]
fn a_fragmented_datagram_counts_once_by_its_first_fragment() {
    // The sandbox's apps pad each datagram to 4096 bytes: three fragments on the wire.
    let mut payload = b"\"Message #1 from client Alice\"".to_vec();
    payload.resize(4096, 0);
    let frames = fragments(&payload);
    assert_eq!(frames.len(), 3);
    let t = vec![capture("client-1", frames)];
    assert_eq!(
        detail(
            datagrams(Side::Client, Some(1), Some("Message #1 from client Alice")),
            &t
        ),
        (true, "1 datagram to 10.0.0.58:1234".to_string())
    );
    let lines: Vec<String> = (0..3).map(|i| t[0].line(i, Duration::ZERO)).collect();
    assert!(
        lines[0].ends_with(
            "IP 10.0.0.208.51234 > 10.0.0.58.1234: UDP, length 4096 (first fragment, 1472 bytes)"
        ),
        "{lines:?}"
    );
    assert!(
        lines[1].ends_with("IP 10.0.0.208 > 10.0.0.58: UDP fragment at offset 1480"),
        "{lines:?}"
    );
    assert!(
        lines[2].ends_with("IP 10.0.0.208 > 10.0.0.58: UDP fragment at offset 2960"),
        "{lines:?}"
    );
}

#[test]
fn icmp_errors_quoting_a_datagram_are_found() {
    let port_unreachable = Expectation::IcmpError {
        host: "client-1".into(),
        server: server(),
        icmp_type: 3,
        code: 3,
    };
    assert_eq!(
        port_unreachable.to_string(),
        "client-1: ICMP destination unreachable (port unreachable; type 3, code 3) quoting a packet to 10.0.0.58:1234"
    );
    let answered = vec![capture(
        "client-1",
        vec![
            udp(true, b"x"),
            icmp_about_datagram(SERVER, DestUnreachableHeader::Port),
        ],
    )];
    assert_eq!(
        detail(port_unreachable.clone(), &answered),
        (
            true,
            "ICMP destination unreachable (port unreachable)".to_string()
        )
    );
    // From a firewall in between: the error comes from another address, quoting the same.
    let firewall = vec![capture(
        "client-1",
        vec![
            udp(true, b"x"),
            icmp_about_datagram([10, 0, 0, 1], DestUnreachableHeader::Port),
        ],
    )];
    assert!(detail(port_unreachable.clone(), &firewall).0);
    let silence = vec![capture("client-1", vec![udp(true, b"x"), udp(true, b"x")])];
    assert_eq!(
        detail(port_unreachable.clone(), &silence),
        (
            false,
            "expected ICMP destination unreachable (port unreachable), saw no ICMP error about it (2 datagrams to it)"
                .to_string()
        )
    );
    let other_code = vec![capture(
        "client-1",
        vec![
            udp(true, b"x"),
            icmp_about_datagram(SERVER, DestUnreachableHeader::Host),
        ],
    )];
    assert_eq!(
        detail(port_unreachable, &other_code),
        (
            false,
            "expected ICMP destination unreachable (port unreachable), saw ICMP destination unreachable (host unreachable)"
                .to_string()
        )
    );
}

#[test]
fn a_failed_udp_expectation_shows_its_datagrams_and_errors() {
    let traces = vec![capture(
        "client-1",
        vec![
            udp(true, b"x"),
            icmp_about_datagram(SERVER, DestUnreachableHeader::Port),
        ],
    )];
    let report = verdict(datagrams(Side::Server, None, None), &traces).to_string();
    assert!(
        report.contains("IP 10.0.0.208.51234 > 10.0.0.58.1234: UDP, length 1"),
        "{report}"
    );
    assert!(
        report.contains("ICMP 10.0.0.58 udp port 1234 unreachable"),
        "{report}"
    );
}
