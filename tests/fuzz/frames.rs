//! Frames for the decoder: real ones from arbitrary fields, mangled ones, and a conversation
//! between the article's client and server; and a trace made of them.

use std::time::Duration;

use etherparse::PacketBuilder;
use proptest::prelude::*;
use tcplab::capture::{Captured, Direction, Frame};
use tcplab::trace::Trace;

/// A real frame (ARP, TCP, UDP, ICMP error quoting a packet) from arbitrary fields.
pub fn real_frame() -> impl Strategy<Value = Vec<u8>> {
    let addr = any::<[u8; 4]>();
    (
        0u8..4,
        addr,
        addr,
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        any::<u8>(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(which, src, dst, sport, dport, seq, a, b, payload)| {
            let base = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(src, dst, 64);
            let mut out = Vec::new();
            let _ = match which {
                0 => base
                    .tcp(sport, dport, seq, u16::from(a))
                    .syn()
                    .write(&mut out, &payload),
                1 => base.udp(sport, dport).write(&mut out, &payload),
                2 => base
                    .icmpv4(etherparse::Icmpv4Type::Unknown {
                        type_u8: a % 4 + 2,
                        code_u8: b,
                        bytes5to8: [0; 4],
                    })
                    .write(&mut out, &payload),
                _ => {
                    let arp = etherparse::ArpPacket::new(
                        etherparse::ArpHardwareId::ETHERNET,
                        etherparse::EtherType::IPV4,
                        etherparse::ArpOperation::REQUEST,
                        &[2; 6],
                        &src,
                        &[0; 6],
                        &dst,
                    )
                    .expect("valid ARP sizes");
                    PacketBuilder::ethernet2([2; 6], [0xff; 6])
                        .arp(arp)
                        .write(&mut out)
                }
            };
            out
        })
}

/// A real frame cut short, grown, or with bytes overwritten.
pub fn mangled_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        real_frame(),
        any::<prop::sample::Index>(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        proptest::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(mut frame, cut, writes, extra)| {
            for (at, byte) in writes {
                let i = at.index(frame.len());
                frame[i] = byte;
            }
            frame.truncate(cut.index(frame.len() + 1));
            frame.extend(extra);
            frame
        })
}

pub fn trace_of(frames: Vec<Vec<u8>>) -> Trace {
    let frames = frames
        .into_iter()
        .enumerate()
        .map(|(i, data)| Frame {
            at: Duration::from_millis(i as u64),
            direction: if i % 2 == 0 {
                Direction::Out
            } else {
                Direction::In
            },
            original_len: data.len(),
            data,
        })
        .collect();
    Trace::new(&Captured {
        host: "fuzz".into(),
        interface: "eth0".into(),
        frames,
        drops: 0,
    })
}

pub const CLIENT: [u8; 4] = [10, 0, 0, 208];
pub const SERVER: [u8; 4] = [10, 0, 0, 58];

/// A frame of a conversation between the article's client and server on port 1234: TCP with
/// any flags, window and payload, ICMP errors quoting the flow, ARP; either direction.
pub fn lab_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..4,
        any::<bool>(),
        prop_oneof![Just(40_000u16), Just(40_001)],
        0u32..4,
        any::<u8>(),
        prop_oneof![Just(0u16), Just(64_240)],
        proptest::collection::vec(any::<u8>(), 0..24),
        0u8..16,
    )
        .prop_map(
            |(which, to_server, client_port, seq, flags, window, payload, code)| {
                let (src, dst, sport, dport) = if to_server {
                    (CLIENT, SERVER, client_port, 1234)
                } else {
                    (SERVER, CLIENT, 1234, client_port)
                };
                let mut out = Vec::new();
                let base = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(src, dst, 64);
                let _ = match which {
                    0 | 1 => {
                        let mut tcp = base.tcp(sport, dport, seq * 1000, window);
                        if flags & 1 != 0 {
                            tcp = tcp.syn();
                        }
                        if flags & 2 != 0 {
                            tcp = tcp.ack(seq * 7);
                        }
                        if flags & 4 != 0 {
                            tcp = tcp.rst();
                        }
                        if flags & 8 != 0 {
                            tcp = tcp.fin();
                        }
                        if flags & 16 != 0 {
                            tcp = tcp.psh();
                        }
                        tcp.write(&mut out, &payload)
                    }
                    2 => {
                        // An ICMP error quoting the client's SYN, as a firewall sends it.
                        let mut quoted = Vec::new();
                        let _ = PacketBuilder::ipv4(CLIENT, SERVER, 64)
                            .tcp(client_port, 1234, 0, 64_240)
                            .syn()
                            .write(&mut quoted, &[]);
                        quoted.truncate(28);
                        base.icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                            etherparse::icmpv4::DestUnreachableHeader::from_values(code, 0)
                                .unwrap_or(etherparse::icmpv4::DestUnreachableHeader::Host),
                        ))
                        .write(&mut out, &quoted)
                    }
                    _ => {
                        let op = if to_server {
                            etherparse::ArpOperation::REQUEST
                        } else {
                            etherparse::ArpOperation::REPLY
                        };
                        let arp = etherparse::ArpPacket::new(
                            etherparse::ArpHardwareId::ETHERNET,
                            etherparse::EtherType::IPV4,
                            op,
                            &[2; 6],
                            &src,
                            &[0; 6],
                            &dst,
                        )
                        .expect("valid ARP sizes");
                        PacketBuilder::ethernet2([2; 6], [0xff; 6])
                            .arp(arp)
                            .write(&mut out)
                    }
                };
                out
            },
        )
}
