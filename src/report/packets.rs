//! A capture as Wireshark's packet list shows it: its columns (No., Time, Source, Destination,
//! Protocol, Length, Info), relative sequence numbers, and its default colouring rules.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::SocketAddrV4;
use std::time::Duration;

use serde::Serialize;

use crate::trace::{Kind, Trace};

/// One row of a packet list, serialised as an array (the HTML report holds thousands).
#[derive(Debug, Serialize)]
pub(crate) struct Row(
    /// No., from 1.
    pub usize,
    /// Time on the run's clock, formatted.
    pub String,
    /// Source.
    pub String,
    /// Destination.
    pub String,
    /// Protocol.
    pub &'static str,
    /// Length on the wire.
    pub usize,
    /// Info.
    pub String,
    /// The colouring rule that matches, as a CSS class (empty: none).
    pub &'static str,
);

/// Wireshark's default colouring rule for a packet, first match wins, as in its
/// `colorfilters`: Bad TCP (an analysis flag, such as a retransmission or a zero window), ICMP
/// errors, ARP, ICMP, TCP RST, TCP SYN/FIN, TCP, UDP.
fn colour(kind: &Kind, marked: bool) -> &'static str {
    match kind {
        Kind::Tcp(_) if marked => "bad-tcp",
        Kind::Icmp(i) if matches!(i.icmp_type, 3 | 4 | 5 | 11) => "icmp-error",
        Kind::Arp(_) => "arp",
        Kind::Icmp(_) => "icmp",
        Kind::Tcp(t) if t.flags.rst => "tcp-rst",
        Kind::Tcp(t) if t.flags.syn || t.flags.fin => "tcp-synfin",
        Kind::Tcp(_) => "tcp",
        Kind::Udp(_) => "udp",
        _ => "",
    }
}

fn mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Every packet of `trace` as a row, timed from `origin` (since the Unix epoch).
pub(crate) fn rows(trace: &Trace, origin: Duration) -> Vec<Row> {
    // Sequence numbers relative to the first seen each way, as Wireshark shows them.
    let mut base: HashMap<(SocketAddrV4, SocketAddrV4), u32> = HashMap::new();
    trace
        .packets
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let marks = trace.marks(i);
            let time = format!("{:.6}", p.at.saturating_sub(origin).as_secs_f64());
            let (source, destination, protocol, info) = match &p.kind {
                Kind::Tcp(t) => {
                    let seq0 = *base.entry((t.src, t.dst)).or_insert(t.seq);
                    let mut info = String::new();
                    for m in &marks {
                        let _ = write!(info, "{m} ");
                    }
                    let label = super::ladder::label(&p.kind);
                    let flags = label.split(" Len=").next().unwrap_or_default();
                    let _ = write!(
                        info,
                        "{} \u{2192} {} [{flags}] Seq={}",
                        t.src.port(),
                        t.dst.port(),
                        t.seq.wrapping_sub(seq0)
                    );
                    if t.flags.ack {
                        match base.get(&(t.dst, t.src)) {
                            Some(&ack0) => {
                                let _ = write!(info, " Ack={}", t.ack.wrapping_sub(ack0));
                            }
                            None => {
                                let _ = write!(info, " Ack={}", t.ack);
                            }
                        }
                    }
                    let _ = write!(info, " Win={} Len={}", t.window, t.payload.len());
                    (t.src.ip().to_string(), t.dst.ip().to_string(), "TCP", info)
                }
                Kind::Udp(u) => (
                    u.src.ip().to_string(),
                    u.dst.ip().to_string(),
                    "UDP",
                    format!(
                        "{} \u{2192} {} Len={}",
                        u.src.port(),
                        u.dst.port(),
                        u.payload_len
                    ),
                ),
                Kind::Icmp(icmp) => {
                    let info = match (icmp.icmp_type, icmp.code) {
                        (8, _) => "Echo (ping) request".to_string(),
                        (0, _) => "Echo (ping) reply".to_string(),
                        (3, 1) => "Destination unreachable (Host unreachable)".to_string(),
                        (3, 3) => "Destination unreachable (Port unreachable)".to_string(),
                        (3, 13) => {
                            "Destination unreachable (Communication administratively filtered)"
                                .to_string()
                        }
                        (t, c) => format!("Type {t}, code {c}"),
                    };
                    (icmp.src.to_string(), icmp.dst.to_string(), "ICMP", info)
                }
                Kind::Arp(a) if a.request => (
                    mac(&a.sender_mac),
                    "Broadcast".to_string(),
                    "ARP",
                    format!("Who has {}? Tell {}", a.target, a.sender),
                ),
                Kind::Arp(a) => (
                    mac(&a.sender_mac),
                    a.target.to_string(),
                    "ARP",
                    format!("{} is at {}", a.sender, mac(&a.sender_mac)),
                ),
                Kind::OtherIp(what) => (String::new(), String::new(), "IP", what.clone()),
                Kind::Other(what) => (String::new(), String::new(), "", what.clone()),
            };
            Row(
                i + 1,
                time,
                source,
                destination,
                protocol,
                p.len,
                info,
                colour(&p.kind, !marks.is_empty()),
            )
        })
        .collect()
}
