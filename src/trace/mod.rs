//! Captured frames decoded into packets (ARP, TCP, UDP, ICMP), TCP flows by four-tuple, and a
//! tcpdump-like rendering with Wireshark-style marks.

mod decode;
mod flow;
mod render;

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::Duration;

use crate::capture::{Captured, Direction};
pub use decode::{
    Arp, ICMP_DEST_UNREACHABLE, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, IPPROTO_TCP, IPPROTO_UDP, Icmp,
    Kind, Quoted, Tcp, TcpFlags, Udp, decode,
};
pub use flow::{Flow, FlowKey, Side};
pub use render::describe;

/// One decoded packet of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Kernel timestamp, since the Unix epoch.
    pub at: Duration,
    /// Which way it crossed the interface.
    pub direction: Direction,
    /// Its length on the wire.
    pub len: usize,
    /// What it is.
    pub kind: Kind,
    /// Its IPv4 time to live: each router on the way takes one off.
    pub ttl: Option<u8>,
}

/// Everything one host's interface saw.
#[derive(Debug, Clone)]
pub struct Trace {
    /// The host.
    pub host: String,
    /// The interface.
    pub interface: String,
    /// Every packet, in capture order.
    pub packets: Vec<Packet>,
    /// Packets the kernel dropped before the capture read them: a trace with drops is incomplete.
    pub drops: u64,
    /// Where the pcap of this capture was written, if it was.
    pub pcap: Option<PathBuf>,
    flows: Vec<Flow>,
}

impl Trace {
    /// Decodes a capture; flows are found once, here.
    pub fn new(captured: &Captured) -> Trace {
        let packets: Vec<Packet> = captured
            .frames
            .iter()
            .map(|f| Packet {
                at: f.at,
                direction: f.direction,
                len: f.original_len,
                kind: decode(&f.data),
                ttl: decode::ttl(&f.data),
            })
            .collect();
        let flows = flow::flows(&packets);
        Trace {
            host: captured.host.clone(),
            interface: captured.interface.clone(),
            packets,
            drops: captured.drops,
            pcap: None,
            flows,
        }
    }

    /// Every TCP flow, in the order of its first packet.
    pub fn flows(&self) -> &[Flow] {
        &self.flows
    }

    /// The flows towards `server`, optionally from one client address.
    pub fn flows_to(&self, server: SocketAddrV4) -> impl Iterator<Item = &Flow> {
        self.flows.iter().filter(move |f| f.key.server == server)
    }

    /// The flow with exactly this four-tuple.
    pub fn flow(&self, key: FlowKey) -> Option<&Flow> {
        self.flows.iter().find(|f| f.key == key)
    }

    /// Packets that are IP (ARP and other link-level chatter left out).
    pub fn ip_packets(&self) -> impl Iterator<Item = (usize, &Packet)> {
        self.packets.iter().enumerate().filter(|(_, p)| {
            matches!(
                p.kind,
                Kind::Tcp(_) | Kind::Udp(_) | Kind::Icmp(_) | Kind::OtherIp(_)
            )
        })
    }

    /// Wireshark-style marks of packet `i`, e.g. `[TCP Retransmission]`.
    pub fn marks(&self, i: usize) -> Vec<&'static str> {
        let mut marks = Vec::new();
        if self.flows.iter().any(|f| f.retransmissions.contains(&i)) {
            marks.push("[TCP Retransmission]");
        }
        if let Kind::Tcp(t) = &self.packets[i].kind
            && t.window == 0
            && !t.flags.rst
            && !t.flags.syn
        {
            marks.push("[TCP ZeroWindow]");
        }
        marks
    }

    /// Packet `i` as one tcpdump-like line, timed from `origin` (since the Unix epoch).
    pub fn line(&self, i: usize, origin: Duration) -> String {
        render::line(self, i, origin)
    }
}

#[cfg(test)]
mod tests;
