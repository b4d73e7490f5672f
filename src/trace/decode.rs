//! Frames decoded into the events tcplab reasons about.

use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::{ArpOperation, NetSlice, SlicedPacket, TransportSlice};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Arp(Arp),
    Tcp(Tcp),
    Udp(Udp),
    Icmp(Icmp),
    /// Another IP packet (IGMP, IPv6...): described, not analysed.
    OtherIp(String),
    /// Another ethertype, or a frame that does not decode: described, not analysed.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arp {
    pub request: bool,
    pub sender: Ipv4Addr,
    pub target: Ipv4Addr,
    pub sender_mac: [u8; 6],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tcp {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Udp {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload_len: usize,
}

/// The flow an ICMP error quotes: the packet that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    pub protocol: u8,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmp {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub icmp_type: u8,
    pub code: u8,
    pub quoted: Option<Quoted>,
}

pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_DEST_UNREACHABLE: u8 = 3;
pub const ICMP_ECHO_REQUEST: u8 = 8;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

pub fn decode(frame: &[u8]) -> Kind {
    let packet = match SlicedPacket::from_ethernet(frame) {
        Ok(p) => p,
        Err(e) => return Kind::Other(format!("undecodable frame ({e})")),
    };
    match &packet.net {
        Some(NetSlice::Arp(arp)) => {
            let ip = |b: &[u8]| <[u8; 4]>::try_from(b).map(Ipv4Addr::from).ok();
            match (
                ip(arp.sender_protocol_addr()),
                ip(arp.target_protocol_addr()),
            ) {
                (Some(sender), Some(target)) => Kind::Arp(Arp {
                    request: arp.operation() == ArpOperation::REQUEST,
                    sender,
                    target,
                    sender_mac: arp.sender_hw_addr().try_into().unwrap_or_default(),
                }),
                _ => Kind::Other("ARP for a protocol other than IPv4".into()),
            }
        }
        Some(NetSlice::Ipv4(ip)) => {
            let src = ip.header().source_addr();
            let dst = ip.header().destination_addr();
            match &packet.transport {
                Some(TransportSlice::Tcp(t)) => Kind::Tcp(Tcp {
                    src: SocketAddrV4::new(src, t.source_port()),
                    dst: SocketAddrV4::new(dst, t.destination_port()),
                    seq: t.sequence_number(),
                    ack: t.acknowledgment_number(),
                    flags: TcpFlags {
                        syn: t.syn(),
                        ack: t.ack(),
                        fin: t.fin(),
                        rst: t.rst(),
                        psh: t.psh(),
                    },
                    window: t.window_size(),
                    payload: t.payload().to_vec(),
                }),
                Some(TransportSlice::Udp(u)) => Kind::Udp(Udp {
                    src: SocketAddrV4::new(src, u.source_port()),
                    dst: SocketAddrV4::new(dst, u.destination_port()),
                    payload_len: u.payload().len(),
                }),
                Some(TransportSlice::Icmpv4(i)) => Kind::Icmp(Icmp {
                    src,
                    dst,
                    icmp_type: i.type_u8(),
                    code: i.code_u8(),
                    quoted: if i.type_u8() == ICMP_DEST_UNREACHABLE {
                        quoted(i.payload())
                    } else {
                        None
                    },
                }),
                _ => Kind::OtherIp(format!(
                    "IP {src} > {dst}: protocol {}",
                    ip.payload().ip_number.0
                )),
            }
        }
        Some(NetSlice::Ipv6(ip)) => Kind::OtherIp(format!(
            "IP6 {} > {}",
            ip.header().source_addr(),
            ip.header().destination_addr()
        )),
        None => Kind::Other("non-IP frame".into()),
    }
}

/// The addresses and ports of the IPv4 header (and 8 bytes after it) that an ICMP error quotes.
fn quoted(payload: &[u8]) -> Option<Quoted> {
    let ihl = (*payload.first()? & 0x0f) as usize * 4;
    if payload.len() < ihl + 4 || ihl < 20 {
        return None;
    }
    let addr = |at: usize| {
        Ipv4Addr::new(
            payload[at],
            payload[at + 1],
            payload[at + 2],
            payload[at + 3],
        )
    };
    let port = |at: usize| u16::from_be_bytes([payload[at], payload[at + 1]]);
    Some(Quoted {
        protocol: payload[9],
        src: SocketAddrV4::new(addr(12), port(ihl)),
        dst: SocketAddrV4::new(addr(16), port(ihl + 2)),
    })
}
