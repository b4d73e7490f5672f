//! What identifies a packet both in a trace event (its raw IPv4 and transport headers) and in
//! a capture (tcplab's decoded packet): addresses, ports, and what tells one segment of a flow
//! from another. Packets with equal keys are told apart by their order.

use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::Ipv4HeaderSlice;

use crate::trace::{IPPROTO_TCP, IPPROTO_UDP, Kind, TcpFlags};

const IPPROTO_ICMP: u8 = 1;

/// The fields of a packet that a trace event and a capture both hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PacketKey {
    Tcp {
        src: SocketAddrV4,
        dst: SocketAddrV4,
        seq: u32,
        ack: u32,
        flags: Flags,
        /// Payload bytes: a data segment and a bare ACK can share everything else.
        len: usize,
    },
    Udp {
        src: SocketAddrV4,
        dst: SocketAddrV4,
        len: usize,
    },
    Icmp {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        icmp_type: u8,
        code: u8,
    },
}

/// TCP flags, comparable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

impl From<TcpFlags> for Flags {
    fn from(f: TcpFlags) -> Flags {
        Flags {
            syn: f.syn,
            ack: f.ack,
            fin: f.fin,
            rst: f.rst,
        }
    }
}

/// Byte offsets of the fixed TCP and UDP header fields (RFC 9293, RFC 768).
mod tcp {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK_FLAG: u8 = 0x10;
}
mod udp {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const HEADER: usize = 8;
}
mod icmp {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl PacketKey {
    /// The key of the packet whose headers a trace event carries; `None` for what is not
    /// IPv4 TCP, UDP or ICMP (ARP, say).
    pub fn from_headers(network: &[u8], transport: &[u8]) -> Option<PacketKey> {
        let ip = Ipv4HeaderSlice::from_slice(network).ok()?;
        let (src, dst) = (ip.source_addr(), ip.destination_addr());
        let t = transport;
        match ip.protocol().0 {
            IPPROTO_TCP => {
                let bits = *t.get(tcp::FLAGS)?;
                let header = usize::from(*t.get(tcp::DATA_OFFSET)? >> 4) * 4;
                let len = usize::from(ip.total_len())
                    .saturating_sub(usize::from(ip.ihl()) * 4)
                    .saturating_sub(header);
                Some(PacketKey::Tcp {
                    src: SocketAddrV4::new(src, be16(t, tcp::SRC_PORT)?),
                    dst: SocketAddrV4::new(dst, be16(t, tcp::DST_PORT)?),
                    seq: be32(t, tcp::SEQ)?,
                    ack: be32(t, tcp::ACK)?,
                    flags: Flags {
                        syn: bits & tcp::SYN != 0,
                        ack: bits & tcp::ACK_FLAG != 0,
                        fin: bits & tcp::FIN != 0,
                        rst: bits & tcp::RST != 0,
                    },
                    len,
                })
            }
            IPPROTO_UDP => Some(PacketKey::Udp {
                src: SocketAddrV4::new(src, be16(t, udp::SRC_PORT)?),
                dst: SocketAddrV4::new(dst, be16(t, udp::DST_PORT)?),
                len: usize::from(be16(t, udp::LENGTH)?).saturating_sub(udp::HEADER),
            }),
            IPPROTO_ICMP => Some(PacketKey::Icmp {
                src,
                dst,
                icmp_type: *t.get(icmp::TYPE)?,
                code: *t.get(icmp::CODE)?,
            }),
            _ => None,
        }
    }

    /// The key of a captured packet.
    pub fn of(kind: &Kind) -> Option<PacketKey> {
        match kind {
            Kind::Tcp(t) => Some(PacketKey::Tcp {
                src: t.src,
                dst: t.dst,
                seq: t.seq,
                ack: t.ack,
                flags: t.flags.into(),
                len: t.payload.len(),
            }),
            Kind::Udp(u) => Some(PacketKey::Udp {
                src: u.src,
                dst: u.dst,
                len: u.payload_len,
            }),
            Kind::Icmp(i) => Some(PacketKey::Icmp {
                src: i.src,
                dst: i.dst,
                icmp_type: i.icmp_type,
                code: i.code,
            }),
            _ => None,
        }
    }

    /// The sender's address.
    pub fn src(&self) -> Ipv4Addr {
        match self {
            PacketKey::Tcp { src, .. } | PacketKey::Udp { src, .. } => *src.ip(),
            PacketKey::Icmp { src, .. } => *src,
        }
    }

    /// The sender's port, for TCP and UDP.
    pub fn src_port(&self) -> Option<u16> {
        match self {
            PacketKey::Tcp { src, .. } | PacketKey::Udp { src, .. } => Some(src.port()),
            PacketKey::Icmp { .. } => None,
        }
    }

    /// The destination: address and, for TCP and UDP, port.
    pub fn dst(&self) -> (Ipv4Addr, Option<u16>) {
        match self {
            PacketKey::Tcp { dst, .. } | PacketKey::Udp { dst, .. } => {
                (*dst.ip(), Some(dst.port()))
            }
            PacketKey::Icmp { dst, .. } => (*dst, None),
        }
    }

    /// `tcp/1235`, `udp/1234` or `icmp`: what a rule would match.
    pub fn service(&self) -> String {
        match self {
            PacketKey::Tcp { dst, .. } => format!("tcp/{}", dst.port()),
            PacketKey::Udp { dst, .. } => format!("udp/{}", dst.port()),
            PacketKey::Icmp { .. } => "icmp".into(),
        }
    }

    /// What kind of packet, for sums: `SYN`, `SYN-ACK`, `RST`, `FIN`, `TCP segment`,
    /// `UDP datagram`, `ICMP message`.
    pub fn what(&self) -> &'static str {
        match self {
            PacketKey::Tcp { flags, .. } if flags.syn && flags.ack => "SYN-ACK",
            PacketKey::Tcp { flags, .. } if flags.syn => "SYN",
            PacketKey::Tcp { flags, .. } if flags.rst => "RST",
            PacketKey::Tcp { flags, .. } if flags.fin => "FIN",
            PacketKey::Tcp { .. } => "TCP segment",
            PacketKey::Udp { .. } => "UDP datagram",
            PacketKey::Icmp { .. } => "ICMP message",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(protocol: u8) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 60, 0, 1, 0x40, 0, 64, protocol, 0, 0];
        h.extend_from_slice(&[10, 0, 0, 208, 10, 0, 0, 58]);
        h
    }

    #[test]
    fn a_syn_from_its_raw_headers() {
        let mut tcp = vec![0xd6, 0x3c, 0x04, 0xd3, 0, 0, 0, 42, 0, 0, 0, 0, 0xa0, 0x02];
        tcp.resize(20, 0);
        let key = PacketKey::from_headers(&ipv4(6), &tcp).unwrap();
        assert_eq!(
            key,
            PacketKey::Tcp {
                src: "10.0.0.208:54844".parse().unwrap(),
                dst: "10.0.0.58:1235".parse().unwrap(),
                seq: 42,
                ack: 0,
                flags: Flags {
                    syn: true,
                    ack: false,
                    fin: false,
                    rst: false
                },
                len: 0,
            }
        );
        assert_eq!(key.what(), "SYN");
        assert_eq!(key.service(), "tcp/1235");
    }

    #[test]
    fn short_or_foreign_headers_have_no_key() {
        assert_eq!(PacketKey::from_headers(&ipv4(6), &[0; 10]), None);
        assert_eq!(PacketKey::from_headers(&[0x45, 0], &[0; 20]), None);
        assert_eq!(PacketKey::from_headers(&ipv4(47), &[0; 20]), None);
    }
}
