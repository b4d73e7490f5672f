//! Ladder (sequence) diagrams: one per conversation, a column per capture point, an arrow per
//! packet from where it was first seen to where it was last seen, in the order the packets
//! went. The same packet is recognised on each capture by what it holds (its headers and
//! payload as tcpdump describes them) and its rank among packets that hold the same, so a SYN
//! and its retransmissions line up capture by capture.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::lab::LabReport;
use crate::trace::{ICMP_DEST_UNREACHABLE, Kind, Trace, describe};

/// Arrows kept per ladder: a bulk transfer's ladder shows its beginning, and says how many
/// packets it leaves out (all of them are in the packet lists and the pcaps).
pub const MAX_ARROWS: usize = 5000;

/// Arrows a terminal ladder draws; a longer conversation is summed up in a line.
const TERMINAL_ARROWS: usize = 40;

/// How much earlier a packet may be timed at a capture further on its way (seconds): captures
/// are timed by one clock, but not at the same instant of the packet's passage.
const SAME_PACKET: f64 = 0.001;

/// Widest terminal ladder drawn, in columns.
const TERMINAL_WIDTH: usize = 130;

/// One conversation as a ladder diagram.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ladder {
    /// The conversation: `10.0.0.208:41000 > 10.0.0.58:1235 (TCP)`.
    pub title: String,
    /// The capture points, from the client's side to the server's: e.g. `client-1`,
    /// `fabric:client-1`, `fabric:server`, `server`.
    pub columns: Vec<String>,
    /// The packets, in the order they were first seen.
    pub arrows: Vec<Arrow>,
    /// Packets left out after [`MAX_ARROWS`].
    pub omitted: usize,
}

/// One packet on a ladder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Arrow {
    /// When it was first seen, on the run's clock (seconds).
    pub at_s: f64,
    /// Whether it goes from the client's side to the server's (left to right).
    pub rightward: bool,
    /// Short: `SYN`, `SYN, ACK`, `PSH, ACK Len=5`, `ICMP host unreachable`.
    pub label: String,
    /// The packet as tcpdump describes it.
    pub info: String,
    /// Where it was seen, in the order it went.
    pub seen: Vec<Hop>,
    /// Wireshark marks it `[TCP Retransmission]`.
    pub retransmission: bool,
    /// It went no further: what stopped it, when a traced rule did.
    pub stopped: Option<String>,
    /// Where the rule that stopped it sits: `fabric`, `router` (the VPC router: network
    /// ACLs, routes) or a host.
    #[serde(default)]
    pub stopped_in: Option<String>,
}

/// The name of the ladder column that stands for the VPC router, which no capture sees.
pub const ROUTER_COLUMN: &str = "VPC router";

impl Arrow {
    /// The column where the arrow ends: the VPC router's when a rule there stopped it,
    /// else the last column it was seen at.
    pub fn end_column(&self, columns: &[String]) -> Option<usize> {
        if self.stopped_in.as_deref() == Some("router")
            && let Some(r) = columns.iter().position(|c| c == ROUTER_COLUMN)
        {
            return Some(r);
        }
        self.seen.last().map(|h| h.column)
    }
}

/// A packet seen at one capture point.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Hop {
    /// The ladder's column.
    pub column: usize,
    /// The capture (index among the run's captures).
    pub capture: usize,
    /// The packet's index in that capture.
    pub packet: usize,
    /// When, on the run's clock (seconds).
    pub at_s: f64,
}

/// What a conversation is keyed by: its protocol and its two ends, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Conversation {
    protocol: &'static str,
    ends: (SocketAddrV4, SocketAddrV4),
}

fn ordered(a: SocketAddrV4, b: SocketAddrV4) -> (SocketAddrV4, SocketAddrV4) {
    if a <= b { (a, b) } else { (b, a) }
}

fn conversation(kind: &Kind) -> Option<Conversation> {
    let ip = |a: Ipv4Addr| SocketAddrV4::new(a, 0);
    match kind {
        Kind::Tcp(t) => Some(Conversation {
            protocol: "TCP",
            ends: ordered(t.src, t.dst),
        }),
        Kind::Udp(u) => Some(Conversation {
            protocol: "UDP",
            ends: ordered(u.src, u.dst),
        }),
        Kind::Icmp(i) => match i.quoted {
            // An error belongs to the conversation whose packet it quotes.
            Some(q) if i.icmp_type == ICMP_DEST_UNREACHABLE => Some(Conversation {
                protocol: match q.protocol {
                    6 => "TCP",
                    17 => "UDP",
                    _ => return None,
                },
                ends: ordered(q.src, q.dst),
            }),
            _ => Some(Conversation {
                protocol: "ICMP",
                ends: ordered(ip(i.src), ip(i.dst)),
            }),
        },
        _ => None,
    }
}

/// The sender's address and port (0 for ICMP).
fn sender(kind: &Kind) -> Option<SocketAddrV4> {
    match kind {
        Kind::Tcp(t) => Some(t.src),
        Kind::Udp(u) => Some(u.src),
        Kind::Icmp(i) => Some(SocketAddrV4::new(i.src, 0)),
        _ => None,
    }
}

/// A packet's short name on an arrow.
pub fn label(kind: &Kind) -> String {
    match kind {
        Kind::Tcp(t) => {
            let mut flags = Vec::new();
            for (on, name) in [
                (t.flags.fin, "FIN"),
                (t.flags.syn, "SYN"),
                (t.flags.rst, "RST"),
                (t.flags.psh, "PSH"),
                (t.flags.ack, "ACK"),
            ] {
                if on {
                    flags.push(name);
                }
            }
            let mut s = flags.join(", ");
            if !t.payload.is_empty() {
                let _ = write!(s, " Len={}", t.payload.len());
            }
            s
        }
        Kind::Udp(u) => format!("UDP Len={}", u.payload_len),
        Kind::Icmp(i) => match (i.icmp_type, i.code) {
            (8, _) => "ICMP echo request".into(),
            (0, _) => "ICMP echo reply".into(),
            (3, 1) => "ICMP host unreachable".into(),
            (3, 3) => "ICMP port unreachable".into(),
            (3, 13) => "ICMP admin prohibited".into(),
            (t, c) => format!("ICMP type {t} code {c}"),
        },
        other => describe(other),
    }
}

/// What stopped a packet, and where the rule sits.
pub(crate) type Stops = HashMap<(usize, usize), (String, String)>;

/// How packets that hold the same (a SYN and its retransmissions) are paired along their way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pairing {
    /// The rules were traced, so every packet a rule stopped is known: a link sends in order,
    /// so a packet continues the earliest one of its kind still on its way (a SYN held by a
    /// delayed link longer than the retransmission timer is not its retransmission).
    InOrder,
    /// Nothing says which packets were stopped: a packet continues the latest one of its kind
    /// seen before it (a SYN lost on the way is not the retransmission the server saw).
    Latest,
}

/// The ladders of a run's `traces`: `stops` maps (capture, packet) to what stopped the packet.
pub(crate) fn ladders(
    traces: &[Trace],
    origin: Duration,
    lab: &LabReport,
    stops: &Stops,
    pairing: Pairing,
) -> Vec<Ladder> {
    // Every packet of each conversation, by capture, in capture order.
    let mut order: Vec<Conversation> = Vec::new();
    let mut members: HashMap<Conversation, Vec<(usize, usize)>> = HashMap::new();
    let mut first_at: HashMap<Conversation, Duration> = HashMap::new();
    for (c, t) in traces.iter().enumerate() {
        for (i, p) in t.packets.iter().enumerate() {
            let Some(conv) = conversation(&p.kind) else {
                continue;
            };
            let list = members.entry(conv).or_insert_with(|| {
                order.push(conv);
                Vec::new()
            });
            list.push((c, i));
            let at = first_at.entry(conv).or_insert(p.at);
            *at = (*at).min(p.at);
        }
    }
    order.sort_by_key(|c| first_at[c]);
    order
        .iter()
        .map(|conv| ladder(conv, &members[conv], traces, origin, lab, stops, pairing))
        .collect()
}

fn ladder(
    conv: &Conversation,
    packets: &[(usize, usize)],
    traces: &[Trace],
    origin: Duration,
    lab: &LabReport,
    stops: &Stops,
    pairing: Pairing,
) -> Ladder {
    let kind = |(c, i): (usize, usize)| &traces[c].packets[i].kind;
    // The client opened it (its first SYN), else sent its first packet.
    let first = packets
        .iter()
        .copied()
        .filter(|&p| matches!(kind(p), Kind::Tcp(t) if t.flags.syn && !t.flags.ack))
        .chain(packets.iter().copied())
        .min_by_key(|&(c, i)| {
            let syn = matches!(kind((c, i)), Kind::Tcp(t) if t.flags.syn && !t.flags.ack);
            (!syn, traces[c].packets[i].at)
        });
    let client = first
        .and_then(|p| match kind(p) {
            Kind::Icmp(i) => i
                .quoted
                .map(|q| q.src)
                .or(Some(SocketAddrV4::new(i.src, 0))),
            k => sender(k),
        })
        .unwrap_or(conv.ends.0);
    let server = if conv.ends.0 == client {
        conv.ends.1
    } else {
        conv.ends.0
    };
    let host_of = |a: SocketAddrV4| lab.host_at(&a.ip().to_string());
    // Two subnets of a VPC: the router between them is a column too, seen by no capture.
    let across_router = lab.vpc
        && matches!((host_of(client), host_of(server)), (Some(a), Some(b)) if a.subnet != b.subnet);
    let (client_host, server_host) = (
        host_of(client).map(|h| h.name.clone()),
        host_of(server).map(|h| h.name.clone()),
    );
    // Columns: the client's own capture and its port, those of the hosts in between, the
    // server's port and its own capture; a capture that saw none of it is kept for the two
    // ends (the server's empty capture is the story of a drop).
    let rank = |name: &str| -> Option<u8> {
        let is = |h: &Option<String>, fabric: bool| {
            h.as_deref().is_some_and(|h| {
                if fabric {
                    name.strip_prefix("fabric:") == Some(h)
                } else {
                    name == h
                }
            })
        };
        if is(&client_host, false) {
            Some(0)
        } else if is(&client_host, true) {
            Some(1)
        } else if is(&server_host, true) {
            Some(3)
        } else if is(&server_host, false) {
            Some(4)
        } else {
            None
        }
    };
    let mut columns: Vec<(u8, Option<usize>)> = traces
        .iter()
        .enumerate()
        .filter_map(|(c, t)| {
            let holds = packets.iter().any(|&(pc, _)| pc == c);
            match rank(&t.host) {
                Some(r) => Some((2 * r, Some(c))),
                None if holds => Some((4, Some(c))),
                None => None,
            }
        })
        .collect();
    if across_router {
        columns.push((5, None));
    }
    columns.sort();
    // The same packet on each capture: what it holds, seen along its way. Packets that hold
    // the same (a SYN and its retransmissions) are told apart by time (see `Pairing`): a
    // packet at one capture point continues one of its kind seen before it, earlier on its
    // way, that no rule stopped.
    let rightward_of = |kind: &Kind| {
        sender(kind)
            .is_some_and(|s| s.ip() == client.ip() && (s.port() == 0 || s.port() == client.port()))
    };
    let mut arrows: Vec<Arrow> = Vec::new();
    // Per packet kind: the arrows that may go on, as (time last seen, arrow), by time.
    let mut open: HashMap<String, Vec<(f64, usize)>> = HashMap::new();
    for pass in [true, false] {
        // Columns in the packets' way: left to right, then right to left.
        let order: Vec<usize> = if pass {
            (0..columns.len()).collect()
        } else {
            (0..columns.len()).rev().collect()
        };
        open.clear();
        for k in order {
            let Some(c) = columns[k].1 else { continue };
            let mut here: Vec<(f64, usize, String)> = packets
                .iter()
                .filter(|&&(pc, i)| pc == c && rightward_of(&traces[pc].packets[i].kind) == pass)
                .map(|&(pc, i)| {
                    let p = &traces[pc].packets[i];
                    (
                        p.at.as_secs_f64() - origin.as_secs_f64(),
                        i,
                        describe(&p.kind),
                    )
                })
                .collect();
            // Latest first, so that each takes the latest arrow still open before it; or
            // earliest first, each taking the earliest.
            match pairing {
                Pairing::Latest => here.sort_by(|a, b| b.0.total_cmp(&a.0)),
                Pairing::InOrder => here.sort_by(|a, b| a.0.total_cmp(&b.0)),
            }
            // What this column's packets may continue; an arrow continued here is taken out.
            let mut avail = open.clone();
            let mut used: std::collections::HashSet<usize> = std::collections::HashSet::new();
            let mut went_on: Vec<(String, f64, usize)> = Vec::new();
            for (at_s, i, info) in here {
                let hop = Hop {
                    column: k,
                    capture: c,
                    packet: i,
                    at_s,
                };
                let retransmission = traces[c].marks(i).contains(&"[TCP Retransmission]");
                let (stopped, stopped_in) = stops.get(&(c, i)).cloned().unzip();
                let candidates = avail.entry(info.clone()).or_default();
                // Never one seen later on its way than here, give or take the clocks' grain.
                let taken = match pairing {
                    Pairing::Latest => {
                        while candidates
                            .last()
                            .is_some_and(|&(t, _)| t > at_s + SAME_PACKET)
                        {
                            candidates.pop();
                        }
                        candidates.pop()
                    }
                    Pairing::InOrder => candidates
                        .first()
                        .is_some_and(|&(t, _)| t <= at_s + SAME_PACKET)
                        .then(|| candidates.remove(0)),
                };
                let a = match taken {
                    Some((_, a)) => {
                        used.insert(a);
                        let arrow = &mut arrows[a];
                        arrow.seen.push(hop);
                        arrow.at_s = arrow.at_s.min(at_s);
                        arrow.retransmission |= retransmission;
                        if arrow.stopped.is_none() {
                            arrow.stopped = stopped;
                            arrow.stopped_in = stopped_in;
                        }
                        a
                    }
                    None => {
                        arrows.push(Arrow {
                            at_s,
                            rightward: pass,
                            label: label(&traces[c].packets[i].kind),
                            info: info.clone(),
                            seen: vec![hop],
                            retransmission,
                            stopped,
                            stopped_in,
                        });
                        arrows.len() - 1
                    }
                };
                if arrows[a].stopped.is_none() {
                    went_on.push((info, at_s, a));
                }
            }
            // What went on from here may go on further; an arrow not seen here stays open (a
            // capture point it did not pass, such as another host's).
            for list in open.values_mut() {
                list.retain(|(_, a)| !used.contains(a));
            }
            for (info, at_s, a) in went_on {
                open.entry(info).or_default().push((at_s, a));
            }
            for list in open.values_mut() {
                list.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
        }
    }
    for a in &mut arrows {
        // In the order the packet went: left to right, or right to left.
        a.seen.sort_by_key(|h| h.column);
        if !a.rightward {
            a.seen.reverse();
        }
    }
    arrows.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    let omitted = arrows.len().saturating_sub(MAX_ARROWS);
    arrows.truncate(MAX_ARROWS);
    let end = |a: SocketAddrV4| {
        if conv.protocol == "ICMP" {
            a.ip().to_string()
        } else {
            a.to_string()
        }
    };
    Ladder {
        title: format!("{} > {} ({})", end(client), end(server), conv.protocol),
        columns: columns
            .iter()
            .map(|&(_, c)| c.map_or_else(|| ROUTER_COLUMN.to_string(), |c| traces[c].host.clone()))
            .collect(),
        arrows,
        omitted,
    }
}

impl Ladder {
    /// The ladder drawn in text, like `tshark -z flow,tcp,network`, if it fits a terminal;
    /// else a line that says where to see it.
    pub fn text(&self) -> String {
        let mut s = format!("{}\n", self.title);
        let n = self.columns.len();
        let width = self
            .columns
            .iter()
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0)
            .max(14)
            + 2;
        const TIME: usize = 11;
        if n == 0
            || self.arrows.len().saturating_add(self.omitted) > TERMINAL_ARROWS
            || TIME + n * width > TERMINAL_WIDTH
        {
            let _ = writeln!(
                s,
                "  {} packets: too many to draw here (the HTML report draws it)",
                self.arrows.len().saturating_add(self.omitted)
            );
            return s;
        }
        let centre = |k: usize| TIME + k * width + width / 2;
        let mut head: String = " ".repeat(TIME);
        for c in &self.columns {
            let len = c.chars().count();
            let pad = (width - len) / 2;
            let _ = write!(
                head,
                "{}{c}{}",
                " ".repeat(pad),
                " ".repeat(width - len - pad)
            );
        }
        let _ = writeln!(s, "{}", head.trim_end());
        for a in &self.arrows {
            let mut row: Vec<char> = vec![' '; TIME + n * width];
            for (k, ch) in format!("{:>10.6}", a.at_s)
                .chars()
                .take(TIME - 1)
                .enumerate()
            {
                row[k] = ch;
            }
            for k in 0..n {
                row[centre(k)] = '|';
            }
            let (Some(first), Some(last)) = (a.seen.first(), a.end_column(&self.columns)) else {
                continue;
            };
            let at_router = a.stopped.is_some() && Some(last) != a.seen.last().map(|h| h.column);
            let (from, to) = (centre(first.column.min(n - 1)), centre(last.min(n - 1)));
            // A packet seen at one point only, or stopped past it, goes half a column on.
            let half = width / 2 - 1;
            let to = if !at_router && (from == to || a.stopped.is_some()) {
                if a.rightward {
                    (to + half).min(row.len() - 1)
                } else {
                    to.saturating_sub(half).max(TIME)
                }
            } else {
                to
            };
            let (lo, hi) = (from.min(to), from.max(to));
            for ch in row.iter_mut().take(hi).skip(lo + 1) {
                *ch = '-';
            }
            let head_at = if a.rightward { hi } else { lo };
            row[head_at] = match (a.stopped.is_some(), a.rightward) {
                (true, _) => 'X',
                (false, true) => '>',
                (false, false) => '<',
            };
            let label: Vec<char> = a.label.chars().collect();
            if hi > lo + label.len() + 2 {
                let start = lo + 1 + (hi - lo - 1 - label.len()) / 2;
                row[start..start + label.len()].copy_from_slice(&label);
            }
            let mut line: String = row.into_iter().collect();
            line = line.trim_end().to_string();
            if hi <= lo + label.len() + 2 {
                let _ = write!(line, "  {}", a.label);
            }
            if a.retransmission {
                line.push_str("  [TCP Retransmission]");
            }
            if let Some(why) = &a.stopped {
                let _ = write!(line, "  {why}");
            }
            let _ = writeln!(s, "{line}");
        }
        s
    }
}
