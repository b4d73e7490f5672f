//! A small typed model of the nftables rules tcplab programs: enough for security groups and
//! firewalls, rendered to `nft` syntax for people and to netlink by the driver.

use std::fmt;

use ipnet::Ipv4Net;

use super::Origin;
use crate::spec::{PortRange, Protocol};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 and IPv6 at the IP layer, with conntrack.
    Inet,
    /// A device's ingress, before the bridge and before conntrack; can answer with reject.
    Netdev,
}

/// An nftables table, as tcplab loads it into a namespace; it displays as `nft -f` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub(crate) family: Family,
    pub(crate) name: String,
    pub(crate) chains: Vec<Chain>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Prerouting,
    Forward,
    Input,
    Output,
    Ingress,
    /// A device's egress (netdev family): after the bridge, before the link.
    Egress,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseChain {
    pub hook: Hook,
    /// The device of a netdev ingress chain.
    pub device: Option<String>,
    pub priority: i32,
    pub policy_drop: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    /// `None` for a regular chain, reached only by a jump.
    pub base: Option<BaseChain>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub verdict: Verdict,
    /// What made the rule; the lab writes it into the rule's comment with an id it can find
    /// again from a trace event.
    pub origin: Option<Origin>,
    /// The rule's comment in the kernel.
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// `ct state established,related`
    EstablishedOrRelated,
    SourceNet(Ipv4Net),
    DestinationNet(Ipv4Net),
    /// tcp, udp or icmp; `All` matches nothing and is never emitted.
    L4Proto(Protocol),
    /// Destination port of tcp or udp.
    DestinationPorts(Protocol, PortRange),
    /// The interface the packet came in on (with bridged traffic: the bridge).
    InputInterface(String),
    /// The interface the packet goes out on.
    OutputInterface(String),
    /// A TCP SYN without ACK.
    TcpSyn,
    /// A TCP segment with PSH.
    TcpPsh,
    /// Any IPv4 packet.
    Ipv4,
    /// At random, `n` in a million of the packets that reach this match (`numgen random`).
    Random(u32),
    /// Not a match: marks the packet for tracing, so that this rule's own verdict is traced
    /// (a rule that drops at random cannot be preceded by a rule that marks the same packets).
    Traced,
    /// The first N packets that reach this match (`numgen inc`, a counter per rule that
    /// starts at 0 when the rule is loaded): put last, after the other matches.
    FirstPackets(u32),
}

/// What [`Match::Random`] draws from: its `n` is in a million.
pub const RANDOM_MODULUS: u32 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Return,
    Jump(String),
    Reject(Reject),
    /// Not a verdict: marks the packet for nftables tracing and goes on to the next rule.
    TraceOn,
    /// Hands the packet to the program reading NFQUEUE queue N (the lab's delay line); with
    /// no reader the kernel drops it.
    Queue(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    TcpReset,
    HostUnreachable,
    PortUnreachable,
    AdminProhibited,
}

impl Rule {
    pub fn new(matches: Vec<Match>, verdict: Verdict) -> Self {
        Rule {
            matches,
            verdict,
            origin: None,
            comment: None,
        }
    }

    /// The same rule, made by `origin`.
    pub fn from(mut self, origin: Origin) -> Self {
        self.origin = Some(origin);
        self
    }

    /// Matches for a protocol and optional destination ports, as the nft CLI writes them.
    pub fn protocol_matches(protocol: Protocol, ports: Option<PortRange>) -> Vec<Match> {
        let mut m = Vec::new();
        if protocol != Protocol::All {
            m.push(Match::L4Proto(protocol));
        }
        if let Some(ports) = ports {
            m.push(Match::DestinationPorts(protocol, ports));
        }
        m
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = match self.family {
            Family::Inet => "inet",
            Family::Netdev => "netdev",
        };
        writeln!(f, "table {family} {} {{", self.name)?;
        for chain in &self.chains {
            writeln!(f, "\tchain {} {{", chain.name)?;
            if let Some(base) = &chain.base {
                let hook = match base.hook {
                    Hook::Prerouting => "prerouting",
                    Hook::Forward => "forward",
                    Hook::Input => "input",
                    Hook::Output => "output",
                    Hook::Ingress => "ingress",
                    Hook::Egress => "egress",
                };
                let device = base
                    .device
                    .as_ref()
                    .map(|d| format!(" device \"{d}\""))
                    .unwrap_or_default();
                let policy = if base.policy_drop { "drop" } else { "accept" };
                writeln!(
                    f,
                    "\t\ttype filter hook {hook}{device} priority {}; policy {policy};",
                    base.priority
                )?;
            }
            for rule in &chain.rules {
                writeln!(f, "\t\t{rule}")?;
            }
            writeln!(f, "\t}}")?;
        }
        writeln!(f, "}}")
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.matches {
            write!(f, "{m} ")?;
        }
        write!(f, "{}", self.verdict)?;
        if let Some(c) = &self.comment {
            write!(f, " comment \"{}\"", c.replace('"', "'"))?;
        }
        Ok(())
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::EstablishedOrRelated => write!(f, "ct state established,related"),
            Match::SourceNet(n) => write!(f, "ip saddr {}", net(n)),
            Match::DestinationNet(n) => write!(f, "ip daddr {}", net(n)),
            Match::L4Proto(p) => write!(f, "meta l4proto {p}"),
            Match::DestinationPorts(p, r) => write!(f, "{p} dport {r}"),
            Match::InputInterface(i) => write!(f, "iifname \"{i}\""),
            Match::OutputInterface(i) => write!(f, "oifname \"{i}\""),
            Match::TcpSyn => write!(f, "tcp flags & (syn|ack) == syn"),
            Match::TcpPsh => write!(f, "tcp flags & psh == psh"),
            Match::Ipv4 => write!(f, "meta protocol ip"),
            Match::Random(n) => write!(f, "numgen random mod {RANDOM_MODULUS} < {n}"),
            Match::Traced => write!(f, "meta nftrace set 1"),
            Match::FirstPackets(n) => write!(f, "numgen inc mod {} < {n}", u32::MAX),
        }
    }
}

fn net(n: &Ipv4Net) -> String {
    if n.prefix_len() == 32 {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accept => write!(f, "accept"),
            Verdict::Drop => write!(f, "drop"),
            Verdict::Return => write!(f, "return"),
            Verdict::Jump(chain) => write!(f, "jump {chain}"),
            Verdict::Reject(Reject::TcpReset) => write!(f, "reject with tcp reset"),
            Verdict::Reject(Reject::HostUnreachable) => {
                write!(f, "reject with icmpx host-unreachable")
            }
            Verdict::Reject(Reject::PortUnreachable) => {
                write!(f, "reject with icmpx port-unreachable")
            }
            Verdict::Reject(Reject::AdminProhibited) => {
                write!(f, "reject with icmpx admin-prohibited")
            }
            Verdict::TraceOn => write!(f, "meta nftrace set 1"),
            Verdict::Queue(n) => write!(f, "queue num {n}"),
        }
    }
}
