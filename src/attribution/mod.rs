//! Which rule of the lab let each packet through, dropped it or rejected it. The lab's rules
//! mark packets for nftables tracing; each packet's way through a ruleset (a passage: the
//! events one hook of one namespace sent for it) ends in a verdict, and the rule behind the
//! verdict is found in the lab's rule book by table, chain and handle, so it is never
//! guessed. Each passage is then tied to the packet on the captures by its headers, in order
//! among packets with the same headers (a SYN and its retransmissions, say).

mod key;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::firewall::{GroupDirection, Origin};
use crate::lab::rules::{RuleAt, RuleBook};
use crate::ruletrace::{Decision, RuleEvent, RuleEvents, Step};
use crate::spec::Placement;
use crate::trace::{Kind, Trace};
pub(crate) use key::PacketKey;

/// What the lab's rules did to the packets of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Attribution {
    /// Whether the lab's rules traced packets at all (without, nothing is attributed).
    pub traced: bool,
    /// Each packet's passage through a ruleset of the lab, in the order the kernel told them.
    pub passages: Vec<Passage>,
    /// Where trace events were lost (the kernel's queue overflowed): what is attributed there
    /// may be incomplete.
    pub lost: Vec<String>,
    /// One line per flow that a rule stopped or a security group rule let through.
    pub flows: Vec<String>,
}

/// One packet's way through one ruleset of the lab.
#[derive(Debug, Clone, Serialize)]
pub struct Passage {
    /// `fabric`, or the host whose firewall it met.
    pub place: String,
    /// The packet, e.g. `10.0.0.208:54844 > 10.0.0.58:1235 SYN`.
    pub packet: String,
    /// What the rules did.
    pub fate: Fate,
    /// The ruleset in force: `the topology`, or the change that made it (e.g. `step 4`).
    pub ruleset: String,
    /// Where the packet is on the captures, earliest first.
    pub seen: Vec<Seen>,
    #[serde(skip)]
    key: PacketKey,
    /// The hook the passage went through: its table without the revision, and base chain.
    /// A packet meets several hooks of one namespace (the fabric's port, then its forward
    /// hook); each takes it from the captures once.
    #[serde(skip)]
    hook: (String, String),
}

impl Passage {
    /// What kind of packet: `SYN`, `SYN-ACK`, `RST`, `FIN`, `TCP segment`, `UDP datagram`
    /// or `ICMP message`.
    pub fn kind(&self) -> &'static str {
        self.key.what()
    }

    /// What the rules did, with the ruleset when a step had changed it: `dropped by
    /// security group web-sg (on server): ... (rules of step 5)`.
    pub fn verdict(&self) -> String {
        if self.ruleset == TOPOLOGY || matches!(self.fate, Fate::Passed | Fate::Established) {
            self.fate.to_string()
        } else {
            format!("{} (rules of {})", self.fate, self.ruleset)
        }
    }
}

/// The name of the ruleset a lab starts with.
pub(crate) const TOPOLOGY: &str = "the topology";

/// A packet on a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Seen {
    /// Index of the capture among the run's traces.
    pub capture: usize,
    /// Index of the packet in that capture.
    pub packet: usize,
    /// Its time, since the Unix epoch.
    #[serde(skip)]
    pub at: Duration,
}

/// What a ruleset did to a packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Fate {
    /// A rule dropped it silently.
    Dropped {
        /// The rule.
        by: Origin,
        /// Why, in words.
        because: String,
    },
    /// A rule stopped it and answered (a reset, an ICMP error).
    Rejected {
        /// The rule.
        by: Origin,
        /// Why, in words.
        because: String,
    },
    /// It belongs to a connection the security groups let through, so it passed whatever
    /// their rules say.
    Established,
    /// Security group rules let it through.
    Allowed {
        /// The rules, in the order the packet met them.
        by: Vec<Origin>,
    },
    /// No rule matched it: the chain let it through.
    Passed,
    /// A rule tcplab did not make decided (a program in the lab changed the rules).
    Foreign {
        /// The rule's table, chain and handle, as `nft -a list ruleset` shows them.
        rule: String,
        /// Whether it dropped the packet.
        dropped: bool,
    },
}

impl Fate {
    /// Whether the packet went no further.
    pub fn stopped(&self) -> bool {
        matches!(
            self,
            Fate::Dropped { .. } | Fate::Rejected { .. } | Fate::Foreign { dropped: true, .. }
        )
    }

    /// The rule that stopped the packet.
    pub fn stopped_by(&self) -> Option<&Origin> {
        match self {
            Fate::Dropped { by, .. } | Fate::Rejected { by, .. } => Some(by),
            _ => None,
        }
    }
}

impl fmt::Display for Fate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fate::Dropped { because, .. } => write!(f, "dropped by {because}"),
            Fate::Rejected { because, .. } => write!(f, "rejected by {because}"),
            Fate::Established => write!(f, "passed as part of an established connection"),
            Fate::Allowed { by } => {
                let rules: Vec<String> = by.iter().map(ToString::to_string).collect();
                write!(f, "allowed by {}", rules.join("; "))
            }
            Fate::Passed => write!(f, "passed: no rule matched"),
            Fate::Foreign { rule, dropped } => {
                let what = if *dropped { "dropped" } else { "passed" };
                write!(f, "{what} by a rule tcplab did not make ({rule})")
            }
        }
    }
}

impl Attribution {
    /// The passages seen at packet `packet` of capture `capture`.
    pub fn at(&self, capture: usize, packet: usize) -> impl Iterator<Item = &Passage> {
        self.passages.iter().filter(move |p| {
            p.seen
                .iter()
                .any(|s| s.capture == capture && s.packet == packet)
        })
    }

    /// Passages of the TCP and UDP flows to `address` and `port`, both ways (the packets to
    /// it and its answers), optionally only those with the client `from`.
    pub fn towards(
        &self,
        address: Ipv4Addr,
        port: u16,
        from: Option<Ipv4Addr>,
    ) -> impl Iterator<Item = &Passage> {
        self.passages.iter().filter(move |p| {
            let (dst, dport) = p.key.dst();
            let to_server = dst == address && dport == Some(port);
            let from_server = p.key.src() == address && p.key.src_port() == Some(port);
            (to_server && from.is_none_or(|f| p.key.src() == f))
                || (from_server && from.is_none_or(|f| dst == f))
        })
    }
}

/// A host of the lab, as attribution needs it.
pub(crate) struct HostAt {
    pub name: String,
    pub address: Ipv4Addr,
}

/// Ties `events` to the rules of `book` and the packets of `traces`.
pub(crate) fn attribute(
    events: RuleEvents,
    book: &RuleBook,
    hosts: &[HostAt],
    traces: &[Trace],
) -> Attribution {
    let place_name = |p: Placement| match p {
        Placement::Fabric => "fabric".to_string(),
        Placement::Router => "router".to_string(),
        Placement::Host(i) => hosts.get(i).map_or_else(|| "?".into(), |h| h.name.clone()),
    };
    let mut passages = Vec::new();
    let mut open: HashMap<(Placement, u32), Vec<RuleEvent>> = HashMap::new();
    for event in events.events {
        // The delay line's rules hand packets to tcplab and take nothing from them (see
        // `lab::delayline`): a passage through them would count the packet twice.
        if event.table.starts_with(crate::lab::DELAY_TABLE) {
            continue;
        }
        let terminal = match event.step {
            Step::Policy => true,
            Step::Return => false,
            Step::Rule => matches!(
                event.decision,
                Some(Decision::Accept | Decision::Drop | Decision::Other(_))
            ),
        };
        let id = (event.place, event.id);
        // The kernel sends the packet's headers with the first event of each base chain it
        // meets, and only then: an event with headers starts a passage. One still open under
        // the same id lost its end (the queue overflowed); it is dropped rather than merged
        // with this packet's events, which would tie one packet's headers to another's fate.
        if !event.network.is_empty() {
            open.remove(&id);
        }
        let list = open.entry(id).or_default();
        list.push(event);
        if terminal
            && let Some(list) = open.remove(&id)
            && let Some(p) = passage(&list, book, &place_name)
        {
            passages.push(p);
        }
    }
    let mut matcher = Matcher::new(traces);
    for p in &mut passages {
        p.seen = matcher.find(p, hosts);
    }
    let flows = flows(&passages, hosts, traces);
    Attribution {
        traced: book.trace,
        passages,
        lost: events
            .lost
            .into_iter()
            .map(|(place, _)| place_name(place))
            .collect(),
        flows,
    }
}

/// One closed passage: its packet and what its rules did.
fn passage(
    events: &[RuleEvent],
    book: &RuleBook,
    place_name: &impl Fn(Placement) -> String,
) -> Option<Passage> {
    let first = events.first()?;
    let last = events.last()?;
    let key = PacketKey::from_headers(&first.network, &first.transport)?;
    let find = |e: &RuleEvent| {
        let at = RuleAt {
            place: e.place,
            family: e.family?,
            table: e.table.clone(),
            chain: e.chain.clone(),
            handle: e.handle?,
        };
        book.find(&at)
    };
    let foreign = |e: &RuleEvent, dropped| Fate::Foreign {
        rule: format!(
            "table {} chain {} handle {}",
            e.table,
            e.chain,
            e.handle.unwrap_or_default()
        ),
        dropped,
    };
    let mut ruleset = book.revision(revision_of(&first.table)).to_string();
    let fate = match (last.step, last.decision) {
        // tcplab's base chains all accept: a chain that drops by policy is not its own.
        (Step::Policy, Some(Decision::Drop)) => Fate::Foreign {
            rule: format!("table {} chain {} policy drop", last.table, last.chain),
            dropped: true,
        },
        (Step::Rule, Some(Decision::Drop)) => match find(last) {
            Some(entry) => {
                ruleset = book.revision(entry.revision).to_string();
                let because = explain(&entry.origin, &key);
                if entry.origin.rejects() {
                    Fate::Rejected {
                        by: entry.origin.clone(),
                        because,
                    }
                } else {
                    Fate::Dropped {
                        by: entry.origin.clone(),
                        because,
                    }
                }
            }
            None => foreign(last, true),
        },
        (Step::Rule, Some(Decision::Accept)) => match find(last) {
            Some(entry) if entry.origin == Origin::Established => Fate::Established,
            Some(entry) => Fate::Allowed {
                by: vec![entry.origin.clone()],
            },
            None => foreign(last, false),
        },
        _ => {
            let mut by: Vec<Origin> = events
                .iter()
                .filter(|e| e.decision == Some(Decision::Return))
                .filter_map(find)
                .map(|entry| entry.origin.clone())
                .collect();
            // The sender's egress before the receiver's ingress, as the packet goes.
            by.sort_by_key(|o| {
                !matches!(
                    o,
                    Origin::GroupRule {
                        direction: GroupDirection::Egress,
                        ..
                    }
                )
            });
            if by.is_empty() {
                Fate::Passed
            } else {
                Fate::Allowed { by }
            }
        }
    };
    Some(Passage {
        place: place_name(first.place),
        packet: describe(&key),
        fate,
        ruleset,
        seen: Vec::new(),
        key,
        hook: (base_table(&first.table).to_string(), first.chain.clone()),
    })
}

/// The revision a table belongs to, from its name (`tcplab`, `tcplab-r2`).
fn revision_of(table: &str) -> usize {
    table
        .rsplit_once("-r")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

/// A table's name without its revision: `tcplab-r2` is `tcplab`.
fn base_table(table: &str) -> &str {
    match table.rsplit_once("-r") {
        Some((base, n)) if n.parse::<usize>().is_ok() => base,
        _ => table,
    }
}

/// The rule and, for a security group's implicit deny, what no rule allows.
fn explain(origin: &Origin, key: &PacketKey) -> String {
    match origin {
        Origin::GroupDeny {
            host,
            groups,
            direction,
        } => {
            let s = if groups.len() == 1 { "" } else { "s" };
            let peer = match direction {
                GroupDirection::Ingress => format!("from {}", key.src()),
                GroupDirection::Egress => format!("to {}", key.dst().0),
            };
            format!(
                "security group{s} {} (on {host}): no {direction} rule allows {} {peer}",
                groups.join(", "),
                key.service()
            )
        }
        Origin::NoInstance { subnet, .. } => format!(
            "the VPC (subnet {subnet}): no instance holds {}, the router drops it",
            key.dst().0
        ),
        other => other.to_string(),
    }
}

fn describe(key: &PacketKey) -> String {
    match key {
        PacketKey::Tcp { src, dst, .. } => format!("{src} > {dst} {}", key.what()),
        PacketKey::Udp { src, dst, len } => format!("{src} > {dst} UDP, length {len}"),
        PacketKey::Icmp {
            src,
            dst,
            icmp_type,
            code,
        } => format!("{src} > {dst} ICMP type {icmp_type} code {code}"),
    }
}

/// Finds passages' packets on the captures: for each capture, direction and key, the
/// packets in capture order, taken one by one by the passages with that key.
struct Matcher<'a> {
    traces: &'a [Trace],
    index: HashMap<(usize, bool, PacketKey), Vec<usize>>,
    built: Vec<bool>,
    taken: HashMap<Counter, usize>,
}

/// Which packets of one capture, direction and key one place and hook has taken.
type Counter = (usize, bool, PacketKey, String, (String, String));

impl<'a> Matcher<'a> {
    fn new(traces: &'a [Trace]) -> Self {
        Matcher {
            traces,
            index: HashMap::new(),
            built: vec![false; traces.len()],
            taken: HashMap::new(),
        }
    }

    fn build(&mut self, capture: usize) {
        if self.built[capture] {
            return;
        }
        self.built[capture] = true;
        for (i, p) in self.traces[capture].packets.iter().enumerate() {
            if let Some(key) = PacketKey::of(&p.kind) {
                let inbound = p.direction == crate::capture::Direction::In;
                self.index
                    .entry((capture, inbound, key))
                    .or_default()
                    .push(i);
            }
        }
    }

    /// The captures where a passage's packet shows: the sender's port on the bridge and the
    /// sender's own interface for the fabric, the host's interface for a host's firewall.
    fn find(&mut self, p: &Passage, hosts: &[HostAt]) -> Vec<Seen> {
        let sender = hosts.iter().find(|h| h.address == p.key.src());
        let mut wanted: Vec<(String, bool)> = Vec::new();
        if p.place == "router" {
            // The VPC router is not captured: the packet shows where its sender sent it.
            if let Some(s) = sender {
                wanted.push((s.name.clone(), false));
            }
        } else if p.place == "fabric" {
            if let Some(s) = sender {
                wanted.push((crate::lab::port_capture_name(&s.name), true));
                wanted.push((s.name.clone(), false));
            }
        } else {
            let outbound = sender.is_some_and(|s| s.name == p.place);
            wanted.push((p.place.clone(), !outbound));
        }
        let mut seen = Vec::new();
        for (host, inbound) in wanted {
            let Some(capture) = self.traces.iter().position(|t| t.host == host) else {
                continue;
            };
            self.build(capture);
            // Each hook of a namespace sees the packet once: count per place and hook (the
            // same across revisions of the rules, as the packets are).
            let counter = (capture, inbound, p.key, p.place.clone(), p.hook.clone());
            let n = self.taken.entry(counter).or_insert(0);
            if let Some(&packet) = self
                .index
                .get(&(capture, inbound, p.key))
                .and_then(|v| v.get(*n))
            {
                *n += 1;
                seen.push(Seen {
                    capture,
                    packet,
                    at: self.traces[capture].packets[packet].at,
                });
            }
        }
        seen.sort_by_key(|s| s.at);
        seen
    }
}

/// One line per flow that a rule stopped or a security group rule let through.
fn flows(passages: &[Passage], hosts: &[HostAt], traces: &[Trace]) -> Vec<String> {
    // Flows in the order of their first passage; a flow is its (sender, destination) pair.
    let mut order: Vec<(String, String)> = Vec::new();
    let mut by_flow: HashMap<(String, String), Vec<&Passage>> = HashMap::new();
    for p in passages {
        let (src, dst) = match p.key {
            PacketKey::Tcp { src, dst, .. } | PacketKey::Udp { src, dst, .. } => {
                (src.to_string(), dst.to_string())
            }
            PacketKey::Icmp { src, dst, .. } => (src.to_string(), dst.to_string()),
        };
        let flow = (src, dst);
        if !by_flow.contains_key(&flow) {
            order.push(flow.clone());
        }
        by_flow.entry(flow).or_default().push(p);
    }
    let name_of = |a: Ipv4Addr| hosts.iter().find(|h| h.address == a).map(|h| &h.name);
    let mut lines = Vec::new();
    for flow in order {
        let ps = &by_flow[&flow];
        let mut parts: Vec<String> = Vec::new();
        // Stopped packets, by where and by which rule.
        let mut groups: Vec<(String, String, Vec<&Passage>)> = Vec::new();
        for p in ps.iter().filter(|p| p.fate.stopped()) {
            let fate = p.verdict();
            match groups
                .iter_mut()
                .find(|(place, f, _)| *place == p.place && *f == fate)
            {
                Some((_, _, list)) => list.push(p),
                None => groups.push((p.place.clone(), fate, vec![p])),
            }
        }
        for (place, fate, list) in &groups {
            let what = plural(list.len(), list[0].key.what());
            let sender = name_of(list[0].key.src());
            let where_ = match (place.as_str(), sender) {
                ("fabric", Some(s)) => format!("entered the fabric at {s}'s port"),
                ("fabric", None) => "entered the fabric".to_string(),
                ("router", _) => "reached the VPC router".to_string(),
                (host, Some(s)) if s == host => format!("stopped on their way out of {host}"),
                (host, _) => format!("reached {host}"),
            };
            let mut line = format!("{what} {where_}; {fate}");
            if matches!(list[0].fate, Fate::Rejected { .. })
                && let Some(s) = sender
                // A host's own rule answers it without its link: its capture cannot tell.
                && place != s
                && !answered(list[0].key, s, traces)
            {
                // The kernel sends no error about some packets (a fragment of a UDP datagram,
                // whose checksum covers the fragments not there yet): say what the sender saw.
                line.push_str(&format!("; no answer reached {s}"));
            }
            if let Some(dst) = name_of(list[0].key.dst().0)
                && place != dst
            {
                // Stopped between the hosts, these very packets cannot have reached it (a
                // retransmission with the same headers may have).
                let saw = if place == "fabric" || place == "router" {
                    0
                } else {
                    saw_count(list, dst, traces)
                };
                let them = if list.len() == 1 { "it" } else { "them" };
                line.push_str(&match saw {
                    0 => format!("; {dst} never saw {them}"),
                    n if n == list.len() => format!("; {dst} saw {them}"),
                    n => format!("; {dst} saw {n} of them"),
                });
            }
            parts.push(line);
        }
        // Packets security group rules let through, the first of each kind.
        let mut allowed: Vec<String> = Vec::new();
        for p in ps.iter() {
            if let Fate::Allowed { .. } = &p.fate {
                let line = format!("{} {}", p.key.what(), p.verdict());
                if !allowed.contains(&line) {
                    allowed.push(line);
                }
            }
        }
        let established = ps.iter().filter(|p| p.fate == Fate::Established).count();
        if parts.is_empty() && allowed.is_empty() {
            continue;
        }
        parts.extend(allowed);
        if established > 0 {
            parts.push(format!(
                "{} passed as established",
                plural(established, "packet")
            ));
        }
        lines.push(format!("{} > {}: {}", flow.0, flow.1, parts.join("; ")));
    }
    lines
}

/// Whether host `sender`'s capture holds an answer to a packet like `key` that a rule
/// rejected: an ICMP error quoting its flow, or a TCP reset back.
fn answered(key: PacketKey, sender: &str, traces: &[Trace]) -> bool {
    let Some(trace) = traces.iter().find(|t| t.host == sender) else {
        // Not captured: nothing to say.
        return true;
    };
    let (src, dst) = match key {
        PacketKey::Tcp { src, dst, .. } | PacketKey::Udp { src, dst, .. } => (src, dst),
        PacketKey::Icmp { .. } => return true,
    };
    trace.packets.iter().any(|p| match &p.kind {
        Kind::Icmp(i) => i
            .quoted
            .as_ref()
            .is_some_and(|q| q.src == src && q.dst == dst),
        Kind::Tcp(t) => t.flags.rst && t.src == dst && t.dst == src,
        _ => false,
    })
}

/// How many of `list`'s packets host `dst`'s own capture holds.
fn saw_count(list: &[&Passage], dst: &str, traces: &[Trace]) -> usize {
    let Some(trace) = traces.iter().find(|t| t.host == dst) else {
        return 0;
    };
    let keys: Vec<PacketKey> = trace
        .packets
        .iter()
        .filter_map(|p| PacketKey::of(&p.kind))
        .collect();
    let mut left = keys;
    let mut n = 0;
    for p in list {
        if let Some(i) = left.iter().position(|k| *k == p.key) {
            left.swap_remove(i);
            n += 1;
        }
    }
    n
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
