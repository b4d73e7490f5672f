use std::time::Duration;

use etherparse::PacketBuilder;
use etherparse::icmpv4::DestUnreachableHeader;

use super::*;
use crate::capture::{Captured, Frame};

const CLIENT: [u8; 4] = [10, 0, 0, 208];
const SERVER: [u8; 4] = [10, 0, 0, 58];

struct Seg {
    from_client: bool,
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    rst: bool,
    payload: &'static [u8],
}

fn tcp(s: Seg) -> Vec<u8> {
    let (src, dst, sport, dport) = if s.from_client {
        (CLIENT, SERVER, 40000, 1234)
    } else {
        (SERVER, CLIENT, 1234, 40000)
    };
    let mut b = PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, s.seq, 64240);
    if s.syn {
        b = b.syn();
    }
    if s.rst {
        b = b.rst();
    }
    if let Some(ack) = s.ack {
        b = b.ack(ack);
    }
    let mut out = Vec::new();
    b.write(&mut out, s.payload).unwrap();
    out
}

fn seg(from_client: bool, seq: u32) -> Seg {
    Seg {
        from_client,
        seq,
        ack: None,
        syn: false,
        rst: false,
        payload: b"",
    }
}

fn trace(frames: Vec<Vec<u8>>) -> Trace {
    let frames = frames
        .into_iter()
        .enumerate()
        .map(|(i, data)| Frame {
            at: Duration::from_secs(i as u64),
            direction: Direction::Out,
            original_len: data.len(),
            data,
        })
        .collect();
    Trace::new(&Captured {
        host: "client-1".into(),
        interface: "eth0".into(),
        frames,
        drops: 0,
    })
}

fn key() -> FlowKey {
    FlowKey {
        client: SocketAddrV4::new(CLIENT.into(), 40000),
        server: SocketAddrV4::new(SERVER.into(), 1234),
    }
}

#[test]
fn repeated_syns_are_retransmissions() {
    let syn = || {
        tcp(Seg {
            syn: true,
            ..seg(true, 100)
        })
    };
    let t = trace(vec![syn(), syn(), syn()]);
    let flow = t.flow(key()).unwrap();
    assert_eq!(flow.syns, [0, 1, 2]);
    assert_eq!(flow.retransmissions.len(), 2);
    assert!(!flow.retransmissions.contains(&0));
    assert_eq!(
        t.line(1, Duration::ZERO),
        "  1.000000 client-1        Out IP 10.0.0.208.40000 > 10.0.0.58.1234: Flags [S], seq 100, win 64240, length 0 [TCP Retransmission]"
    );
}

#[test]
fn handshake_and_payload() {
    let t = trace(vec![
        tcp(Seg {
            syn: true,
            ..seg(true, 100)
        }),
        tcp(Seg {
            syn: true,
            ack: Some(101),
            ..seg(false, 500)
        }),
        tcp(Seg {
            ack: Some(501),
            ..seg(true, 101)
        }),
        tcp(Seg {
            ack: Some(501),
            payload: b"\x00\x1c\x00\x01Message #1 from client Alice",
            ..seg(true, 101)
        }),
    ]);
    let flow = t.flow(key()).unwrap();
    assert!(flow.handshake_completed(&t));
    assert!(flow.retransmissions.is_empty());
    assert_eq!(
        &flow.payload(&t, Side::Client)[4..],
        b"Message #1 from client Alice"
    );
    assert!(flow.payload(&t, Side::Server).is_empty());
    assert!(
        t.line(3, Duration::ZERO)
            .ends_with("length 32 \"....Message #1 from client Alice\"")
    );
}

#[test]
fn syn_ack_without_the_final_ack_is_no_handshake() {
    let t = trace(vec![
        tcp(Seg {
            syn: true,
            ..seg(true, 100)
        }),
        tcp(Seg {
            syn: true,
            ack: Some(101),
            ..seg(false, 500)
        }),
    ]);
    assert!(!t.flow(key()).unwrap().handshake_completed(&t));
}

#[test]
fn reset_is_attributed_to_its_sender() {
    let t = trace(vec![
        tcp(Seg {
            syn: true,
            ..seg(true, 100)
        }),
        tcp(Seg {
            rst: true,
            ack: Some(101),
            ..seg(false, 0)
        }),
    ]);
    let flow = t.flow(key()).unwrap();
    assert_eq!(flow.resets, [(1, Side::Server)]);
    assert!(
        t.line(1, Duration::ZERO)
            .contains("Flags [R.], seq 0, ack 101")
    );
}

#[test]
fn icmp_error_is_tied_to_the_flow_it_quotes() {
    let syn = tcp(Seg {
        syn: true,
        ..seg(true, 100)
    });
    // The quoted part: the SYN's IP header and the first 8 bytes of its TCP header.
    let quoted = &syn[14..14 + 20 + 8];
    let mut icmp = Vec::new();
    PacketBuilder::ethernet2([4; 6], [2; 6])
        .ipv4(SERVER, CLIENT, 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            DestUnreachableHeader::Host,
        ))
        .write(&mut icmp, quoted)
        .unwrap();
    let t = trace(vec![syn, icmp]);
    let flow = t.flow(key()).unwrap();
    assert_eq!(flow.icmp_errors, [1]);
    assert!(
        t.line(1, Duration::ZERO)
            .ends_with("IP 10.0.0.58 > 10.0.0.208: ICMP host 10.0.0.58 unreachable"),
        "{}",
        t.line(1, Duration::ZERO)
    );
}

#[test]
fn a_new_syn_after_a_reset_starts_a_new_flow() {
    let t = trace(vec![
        tcp(Seg {
            syn: true,
            ..seg(true, 100)
        }),
        tcp(Seg {
            rst: true,
            ack: Some(101),
            ..seg(false, 0)
        }),
        tcp(Seg {
            syn: true,
            ..seg(true, 9000)
        }),
    ]);
    assert_eq!(t.flows().len(), 2);
    assert!(t.flows()[1].retransmissions.is_empty());
}

#[test]
fn garbage_is_described_not_fatal() {
    let t = trace(vec![vec![1, 2, 3]]);
    assert!(matches!(t.packets[0].kind, Kind::Other(_)));
    assert!(t.flows().is_empty());
}
