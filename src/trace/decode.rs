//! Frames decoded into the events tcplab reasons about.

use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::{ArpOperation, NetSlice, SlicedPacket, TransportSlice};

/// What a frame holds, as far as tcplab reasons about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An ARP request or reply.
    Arp(Arp),
    /// A TCP segment over IPv4.
    Tcp(Tcp),
    /// A UDP datagram over IPv4.
    Udp(Udp),
    /// An ICMP message over IPv4.
    Icmp(Icmp),
    /// Another IP packet (IGMP, IPv6...): described, not analysed.
    OtherIp(String),
    /// Another ethertype, or a frame that does not decode: described, not analysed.
    Other(String),
}

/// An ARP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arp {
    /// A request (who has `target`?), else a reply.
    pub request: bool,
    /// The sender's IP address.
    pub sender: Ipv4Addr,
    /// The IP address asked about.
    pub target: Ipv4Addr,
    /// The sender's MAC address.
    pub sender_mac: [u8; 6],
}

/// The TCP flags tcplab reasons about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags {
    /// SYN.
    pub syn: bool,
    /// ACK.
    pub ack: bool,
    /// FIN.
    pub fin: bool,
    /// RST.
    pub rst: bool,
    /// PSH.
    pub psh: bool,
}

/// A TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tcp {
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window size, as sent (unscaled).
    pub window: u16,
    /// Payload bytes, as far as the capture kept them.
    pub payload: Vec<u8>,
}

/// A UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Udp {
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
    /// Payload length, from the UDP header: the whole datagram's, even when this frame is
    /// only its first fragment.
    pub payload_len: usize,
    /// The payload bytes this frame holds: all of them, or the first part of a datagram that
    /// IP cut into fragments.
    pub payload: Vec<u8>,
    /// This frame is the first fragment of a datagram IP cut into fragments (a 4096-byte
    /// datagram of the sandbox's apps on a 1500-byte MTU): it alone carries the UDP header.
    pub first_fragment: bool,
}

/// The flow an ICMP error quotes: the packet that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    /// The quoted packet's IP protocol (6 TCP, 17 UDP).
    pub protocol: u8,
    /// Its source address and port.
    pub src: SocketAddrV4,
    /// Its destination address and port.
    pub dst: SocketAddrV4,
}

/// An ICMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmp {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Type, e.g. [`ICMP_DEST_UNREACHABLE`].
    pub icmp_type: u8,
    /// Code, e.g. 1 for host unreachable.
    pub code: u8,
    /// For an error, the packet it quotes.
    pub quoted: Option<Quoted>,
}

/// ICMP echo reply (ping's answer).
pub const ICMP_ECHO_REPLY: u8 = 0;
/// ICMP destination unreachable.
pub const ICMP_DEST_UNREACHABLE: u8 = 3;
/// ICMP echo request (ping).
pub const ICMP_ECHO_REQUEST: u8 = 8;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// The TTL of an IPv4 packet in an Ethernet frame.
pub fn ttl(frame: &[u8]) -> Option<u8> {
    match SlicedPacket::from_ethernet(frame).ok()?.net? {
        NetSlice::Ipv4(ip) => Some(ip.header().ttl()),
        _ => None,
    }
}

/// Decodes an Ethernet frame; never fails: what does not decode is [`Kind::Other`].
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
                    payload: u.payload().to_vec(),
                    first_fragment: false,
                }),
                // etherparse leaves a fragment's transport undecoded; the first fragment of a
                // UDP datagram still starts with its header, and that is what ties the
                // datagram to its ports.
                None if ip.is_payload_fragmented() && ip.payload().ip_number.0 == IPPROTO_UDP => {
                    let offset = ip.header().fragments_offset().byte_offset();
                    match (offset, ip.payload().payload) {
                        (0, [sp0, sp1, dp0, dp1, l0, l1, _, _, rest @ ..]) => Kind::Udp(Udp {
                            src: SocketAddrV4::new(src, u16::from_be_bytes([*sp0, *sp1])),
                            dst: SocketAddrV4::new(dst, u16::from_be_bytes([*dp0, *dp1])),
                            payload_len: usize::from(u16::from_be_bytes([*l0, *l1]))
                                .saturating_sub(8),
                            payload: rest.to_vec(),
                            first_fragment: true,
                        }),
                        _ => Kind::OtherIp(format!(
                            "IP {src} > {dst}: UDP fragment at offset {offset}"
                        )),
                    }
                }
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
