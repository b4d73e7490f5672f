//! Expectations about what the wire and the programs showed, evaluated on traces and
//! outcomes. A failure names the expectation, says what was expected and what was seen (with
//! times), and shows the packets of every capture that concern it and where the pcaps are.

mod dropped;
mod link;
mod schedule;
mod source;
mod udp;
mod want;
mod words;

use std::fmt::{self, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use crate::error_class::ErrorClass;
use crate::proc::Outcome;
/// Who did something in a connection, for [`reset_by`].
pub use crate::trace::Side;
use crate::trace::{Flow, Kind, Trace};
use crate::units::fmt_secs;
pub use dropped::RuleName;
pub use schedule::{ExpectedSyn, SynSchedule, SynSysctls, Tolerance};
pub use source::SourceLine;
pub use want::{
    Expect, ProgramName, allowed_by, answered, class, datagrams, datagrams_from, dropped_by, exit,
    handshake, handshake_rtt, hops, no_answer, no_datagrams, no_flow, no_ip_packets, output,
    reset_by, retransmissions, sent, syn_retransmissions, took,
};
pub(crate) use want::{FlowWant, Want};

/// Something that must be true of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    /// On `host`'s capture, the SYNs of the (single) flow to `server` follow `schedule`: the
    /// original and its retransmissions, same ISN and four-tuple, each on time. With
    /// `program`, the program that connects, the first SYN must also leave within the
    /// tolerance of its start: a client that waited (for ARP, say) fails as a late start.
    SynSchedule {
        /// The host whose capture is checked.
        host: String,
        /// The server's address and port.
        server: SocketAddrV4,
        /// The host whose sysctls time the SYNs (the client; `host` may be its bridge port).
        sender: String,
        /// The client's own connect timeout, if it has one.
        app_timeout: Option<Duration>,
        /// How far each SYN may be from its predicted time.
        tolerance: Tolerance,
        /// The connecting program's name, to check the first SYN against its start.
        program: Option<String>,
    },
    /// `host`'s capture holds no packet of any flow to `server`.
    NoFlow {
        /// The host whose capture is checked.
        host: String,
        /// The server's address and port.
        server: SocketAddrV4,
    },
    /// `host`'s capture holds no IP packet at all (ARP aside).
    NoIpPackets {
        /// The host whose capture is checked.
        host: String,
    },
    /// On `host`'s capture, a flow to `server` completed its three-way handshake.
    Handshake {
        /// The host whose capture is checked.
        host: String,
        /// The server's address and port.
        server: SocketAddrV4,
    },
    /// On `host`'s capture, a flow to `server` was reset by `by`.
    ResetBy {
        /// The host whose capture is checked.
        host: String,
        /// The server's address and port.
        server: SocketAddrV4,
        /// The side that sent the RST.
        by: Side,
    },
    /// On `host`'s capture, nothing answered the SYNs to `server`: no SYN-ACK, RST or ICMP.
    NoAnswer {
        /// The host whose capture is checked.
        host: String,
        /// The server's address and port.
        server: SocketAddrV4,
    },
    /// On `host`'s capture, an ICMP error of this type and code quotes a packet to `server`:
    /// of a TCP flow, or a UDP datagram.
    IcmpError {
        /// The host whose capture is checked.
        host: String,
        /// The server's address and port.
        server: SocketAddrV4,
        /// ICMP type (3 is destination unreachable).
        icmp_type: u8,
        /// ICMP code within the type.
        code: u8,
    },
    /// `text` is in the client's payload to `server` on every one of `hosts`, in flows with
    /// the same four-tuple.
    Payload {
        /// The text to find.
        text: String,
        /// The server's address and port.
        server: SocketAddrV4,
        /// The hosts whose captures must all hold it.
        hosts: Vec<String>,
    },
    /// `text` is in the server's payload to the client, in a connection to `server`, on every
    /// one of `hosts`, in flows with the same four-tuple.
    Answer {
        /// The text to find.
        text: String,
        /// The server's address and port.
        server: SocketAddrV4,
        /// The hosts whose captures must all hold it.
        hosts: Vec<String>,
    },
    /// The program named `program` ran for `expected`, within `tolerance` ("curl gave up
    /// after 3 s").
    Took {
        /// The program's name from its `start`/`run` step.
        program: String,
        /// How long it should have run.
        expected: Duration,
        /// How far the run time may be from `expected`.
        tolerance: Tolerance,
    },
    /// The program named `program` ended with class `class`.
    Class {
        /// The program's name from its `start`/`run` step.
        program: String,
        /// The class it must have ended with.
        class: ErrorClass,
    },
    /// The program named `program` exited with `code` (for tools that are not tcplab's).
    Exit {
        /// The program's name from its `start`/`run` step.
        program: String,
        /// The exit code it must have returned.
        code: i32,
    },
    /// The program named `program` printed a line containing `line`.
    Output {
        /// The program's name from its `start`/`run` step.
        program: String,
        /// Text one line of its output must contain.
        line: String,
    },
    /// On `host`'s capture, the server side of a flow to `server` advertised a zero window
    /// and the client kept probing it.
    ZeroWindow {
        /// The host whose capture is checked.
        host: String,
        /// The server's address and port.
        server: SocketAddrV4,
    },
    /// On `host`'s capture, the first answered connection to `server` got its SYN-ACK `rtt`
    /// after its first SYN (within `tolerance`); with `syns`, after that many SYNs. With a
    /// delay on the link it is the round trip; with SYNs lost, it includes the retransmission
    /// timer.
    HandshakeRtt {
        /// The host whose capture is checked.
        host: String,
        /// The server's address and port.
        server: SocketAddrV4,
        /// The time from the first SYN to the SYN-ACK.
        rtt: Duration,
        /// How far it may be off.
        tolerance: Tolerance,
        /// How many SYNs the client sent before the SYN-ACK, if checked.
        syns: Option<usize>,
    },
    /// On `host`'s capture, `from` sent data again in a connection to `server`: a segment
    /// starting below the highest sequence number it had sent.
    Retransmissions {
        /// The host whose capture is checked.
        host: String,
        /// The server's address and port.
        server: SocketAddrV4,
        /// The side that resent.
        from: Side,
    },
    /// On `host`'s capture, UDP datagrams between a client and `server`: sent by `from` (the
    /// client: to the server; the server: its answers), exactly `count` of them or at least
    /// one, each containing `text` when given.
    Datagrams {
        /// The host whose capture is checked.
        host: String,
        /// The server's address and port.
        server: SocketAddrV4,
        /// Who sent them.
        from: Side,
        /// How many, if checked (else at least one).
        count: Option<usize>,
        /// Text each one's payload must contain.
        text: Option<String>,
    },
    /// `host`'s capture holds no UDP datagram to or from `server`.
    NoDatagrams {
        /// The host whose capture is checked.
        host: String,
        /// The server's address and port.
        server: SocketAddrV4,
    },
    /// On `host`'s capture, ARP asked for `target` and nobody answered.
    UnansweredArp {
        /// The host whose capture is checked.
        host: String,
        /// The address ARP asked for.
        target: Ipv4Addr,
    },
    /// Rules of the lab stopped packets to `server` (from `from`), and every packet they
    /// stopped was stopped by the rule(s) `by` names.
    DroppedBy {
        /// The server's address and port.
        server: SocketAddrV4,
        /// Only packets from this address.
        from: Option<Ipv4Addr>,
        /// The security group, firewall rule or host firewall.
        by: RuleName,
    },
    /// The client's packets of a connection to `server` crossed `hops` routers between the
    /// captures of `from` and `to`: each router takes one off their TTL.
    Hops {
        /// The server's address and port.
        server: SocketAddrV4,
        /// The capture nearer the client.
        from: String,
        /// The capture nearer the server.
        to: String,
        /// Routers crossed.
        hops: u8,
    },
    /// Packets to `server` (from `from`) were let through by a rule `by` names: a security
    /// group's, or `established` (the groups' connection tracking).
    AllowedBy {
        /// The server's address and port.
        server: SocketAddrV4,
        /// Only packets from this address.
        from: Option<Ipv4Addr>,
        /// The security group, or `established`.
        by: RuleName,
    },
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expectation::SynSchedule { host, server, .. } => {
                write!(
                    f,
                    "{host}: SYNs to {server} follow the retransmission schedule"
                )
            }
            Expectation::NoFlow { host, server } => {
                write!(f, "{host}: no packet of a connection to {server}")
            }
            Expectation::NoIpPackets { host } => write!(f, "{host}: no IP packet at all"),
            Expectation::Handshake { host, server } => {
                write!(f, "{host}: three-way handshake with {server}")
            }
            Expectation::ResetBy { host, server, by } => {
                let who = words::side(*by);
                write!(f, "{host}: connection to {server} reset by {who}")
            }
            Expectation::NoAnswer { host, server } => {
                write!(
                    f,
                    "{host}: no SYN-ACK, RST or ICMP error for SYNs to {server}"
                )
            }
            Expectation::IcmpError {
                host,
                server,
                icmp_type,
                code,
            } => write!(
                f,
                "{host}: {} quoting a packet to {server}",
                words::icmp_numbered(*icmp_type, *code)
            ),
            Expectation::Payload {
                text,
                server,
                hosts,
            } => write!(
                f,
                "\"{text}\" sent to {server}, seen on {} with the same four-tuple",
                hosts.join(" and ")
            ),
            Expectation::Answer {
                text,
                server,
                hosts,
            } => write!(
                f,
                "\"{text}\" answered by {server}, seen on {} with the same four-tuple",
                hosts.join(" and ")
            ),
            Expectation::Took {
                program, expected, ..
            } => write!(f, "{program} ran for {}", secs(*expected)),
            Expectation::Class { program, class } => write!(f, "{program} ended with {class}"),
            Expectation::Exit { program, code } => write!(f, "{program} exited with {code}"),
            Expectation::Output { program, line } => write!(f, "{program} printed \"{line}\""),
            Expectation::ZeroWindow { host, server } => write!(
                f,
                "{host}: {server} advertised a zero window and the client probed it"
            ),
            Expectation::UnansweredArp { host, target } => {
                write!(f, "{host}: ARP asked for {target}, nobody answered")
            }
            Expectation::Datagrams {
                host,
                server,
                from,
                count,
                text,
            } => {
                let what = match count {
                    Some(n) => words::count(*n, "UDP datagram"),
                    None => "UDP datagrams".to_string(),
                };
                let way = match from {
                    Side::Client => "to",
                    Side::Server => "from",
                };
                let containing = text
                    .as_ref()
                    .map(|x| format!(" containing \"{x}\""))
                    .unwrap_or_default();
                write!(f, "{host}: {what}{containing} {way} {server}")
            }
            Expectation::NoDatagrams { host, server } => {
                write!(f, "{host}: no UDP datagram to or from {server}")
            }
            Expectation::HandshakeRtt {
                host,
                server,
                rtt,
                syns,
                ..
            } => {
                write!(
                    f,
                    "{host}: SYN-ACK from {server} {} after the first SYN",
                    secs(*rtt)
                )?;
                match syns {
                    Some(n) => write!(f, ", after {}", words::count(*n, "SYN")),
                    None => Ok(()),
                }
            }
            Expectation::Retransmissions { host, server, from } => write!(
                f,
                "{host}: data retransmitted by {} in a connection to {server}",
                words::side(*from)
            ),
            Expectation::DroppedBy { server, from, by } => {
                let from = from.map(|a| format!(" from {a}")).unwrap_or_default();
                write!(f, "packets to {server}{from} stopped by {by}")
            }
            Expectation::AllowedBy { server, from, by } => {
                let from = from.map(|a| format!(" from {a}")).unwrap_or_default();
                write!(f, "packets to {server}{from} let through by {by}")
            }
            Expectation::Hops {
                server,
                from,
                to,
                hops,
            } => {
                let routers = if *hops == 1 { "router" } else { "routers" };
                write!(
                    f,
                    "packets to {server} crossed {hops} {routers} between {from} and {to}"
                )
            }
        }
    }
}

/// What a run left to check: one trace per capture, the programs' outcomes, the time all
/// reports count from (since the Unix epoch), and the SYN sysctls of the hosts that sent SYNs
/// a schedule is checked for.
pub struct Evidence<'a> {
    /// One trace per capture.
    pub traces: &'a [Trace],
    /// Each program's name and how it ended.
    pub outcomes: &'a [(String, Outcome)],
    /// The time all reports count from, since the Unix epoch.
    pub origin: Duration,
    /// The SYN sysctls of each host that sent SYNs a schedule is checked for.
    pub syn_sysctls: &'a [(String, SynSysctls)],
    /// Which rule let each packet through, dropped or rejected it.
    pub attribution: &'a crate::attribution::Attribution,
}

/// One expectation's result.
#[derive(Debug, Clone)]
pub struct Check {
    /// The expectation, in words.
    pub expectation: String,
    /// Whether it held.
    pub held: bool,
    /// What was seen, in a sentence or a few lines: on failure, "expected X, saw Y".
    pub detail: String,
    /// Where the expectation was written (a scenario's `[[expect]]`, a test's line), if known.
    pub at: Option<SourceLine>,
    /// Servers whose flows to show when the check failed.
    servers: Vec<SocketAddrV4>,
}

/// All checks of a run.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// In report order: checks made before, one per capture (it dropped nothing), then one
    /// per expectation.
    pub checks: Vec<Check>,
    report: String,
}

impl Verdict {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.held)
    }

    /// Panics with the full report unless every check held.
    #[track_caller]
    pub fn assert(&self) {
        if !self.passed() {
            panic!("{self}");
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report)
    }
}

impl Check {
    /// A check that failed before any expectation could be evaluated (e.g. a scenario step).
    pub fn failed(what: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            expectation: what.into(),
            held: false,
            detail: detail.into(),
            at: None,
            servers: Vec::new(),
        }
    }

    /// The same check, said to be written at `at`.
    pub fn written_at(mut self, at: Option<SourceLine>) -> Check {
        self.at = at;
        self
    }
}

/// The SYN sysctls of each host that sends the SYNs of a schedule in `expectations`, read
/// through `lookup(host, key)` (a value, or `None` when it cannot be read): the evidence a
/// run gathers for them. A host whose sysctls cannot be read gives a failed check instead.
pub fn read_syn_sysctls(
    expectations: &[Expectation],
    lookup: impl Fn(&str, &str) -> Option<String>,
) -> (Vec<(String, SynSysctls)>, Vec<Check>) {
    let mut senders: Vec<&str> = Vec::new();
    for e in expectations {
        if let Expectation::SynSchedule { sender, .. } = e
            && !senders.contains(&sender.as_str())
        {
            senders.push(sender);
        }
    }
    let (mut read, mut failed) = (Vec::new(), Vec::new());
    for sender in senders {
        match SynSysctls::read(|key| lookup(sender, key)) {
            Ok(s) => read.push((sender.to_string(), s)),
            Err(e) => failed.push(Check::failed(
                format!("read the SYN sysctls of {sender}"),
                e,
            )),
        }
    }
    (read, failed)
}

/// Evaluates `expectations`, plus one check per capture that it dropped nothing.
pub fn evaluate(expectations: &[Expectation], evidence: &Evidence) -> Verdict {
    evaluate_after(Vec::new(), expectations, &[], evidence)
}

/// Like [`evaluate`], with checks already made (they come first in the report), and where
/// each expectation was written: `at[i]` for `expectations[i]`, so that its report line
/// starts with `FILE:LINE:` (an expectation past the end of `at`, or `None`, has no place).
pub fn evaluate_after(
    prior: Vec<Check>,
    expectations: &[Expectation],
    at: &[Option<SourceLine>],
    evidence: &Evidence,
) -> Verdict {
    let mut checks = prior;
    checks.extend(evidence.traces.iter().map(|t| {
        let (held, detail) = words::judged(
            t.drops == 0,
            "no frame dropped",
            format!(
                "{} dropped by the kernel",
                words::count(t.drops as usize, "frame")
            ),
        );
        Check {
            expectation: format!("{}: capture on {} dropped no packet", t.host, t.interface),
            held,
            detail,
            at: None,
            servers: Vec::new(),
        }
    }));
    // Like a capture's drops, lost trace events leave the run's evidence incomplete.
    if evidence.attribution.traced {
        let lost = &evidence.attribution.lost;
        let saw = if lost.is_empty() {
            "no event lost".to_string()
        } else {
            format!("events lost in {}", lost.join(", "))
        };
        let (held, detail) = words::judged(lost.is_empty(), "no event lost", saw);
        checks.push(Check {
            expectation: "the rules' trace lost no event".into(),
            held,
            detail,
            at: None,
            servers: Vec::new(),
        });
    }
    checks.extend(
        expectations
            .iter()
            .enumerate()
            .map(|(i, e)| check(e, evidence).written_at(at.get(i).cloned().flatten())),
    );
    let report = render(&checks, evidence);
    Verdict { checks, report }
}

/// The TTL of the client's first packet of a connection to `server`, on both captures.
fn hops_between(from: &Trace, to: &Trace, server: SocketAddrV4, hops: u8) -> (bool, String) {
    let first_ttl = |t: &Trace, key: crate::trace::FlowKey| {
        t.flow(key).and_then(|f| {
            f.packets.iter().find_map(|&i| match &t.packets[i].kind {
                Kind::Tcp(p) if p.src == key.client => t.packets[i].ttl,
                _ => None,
            })
        })
    };
    let seen = from.flows_to(server).find_map(|f| {
        let near = first_ttl(from, f.key)?;
        let far = first_ttl(to, f.key)?;
        Some((near, far))
    });
    let expected = format!(
        "the client's TTL {} lower on {} than on {}",
        hops, to.host, from.host
    );
    match seen {
        Some((near, far)) => {
            let crossed = near.saturating_sub(far);
            words::judged(
                near >= far && crossed == hops,
                expected,
                format!(
                    "TTL {near} on {} and {far} on {}: {} crossed",
                    from.host,
                    to.host,
                    words::count(usize::from(crossed), "router")
                ),
            )
        }
        None => (
            false,
            format!(
                "expected {expected}, saw no connection to {server} on both {} and {}",
                from.host, to.host
            ),
        ),
    }
}

fn trace<'a>(evidence: &'a Evidence, host: &str) -> Result<&'a Trace, String> {
    evidence
        .traces
        .iter()
        .find(|t| t.host == host)
        .ok_or_else(|| {
            let known: Vec<&str> = evidence.traces.iter().map(|t| t.host.as_str()).collect();
            format!(
                "expected a capture of {host}, saw none (captures: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )
        })
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn check(e: &Expectation, ev: &Evidence) -> Check {
    let (held, detail, servers) = match evaluate_one(e, ev) {
        Ok((held, detail)) => (held, detail, servers_of(e)),
        Err(detail) => (false, detail, servers_of(e)),
    };
    Check {
        expectation: e.to_string(),
        held,
        detail,
        at: None,
        servers,
    }
}

fn servers_of(e: &Expectation) -> Vec<SocketAddrV4> {
    match e {
        Expectation::SynSchedule { server, .. }
        | Expectation::NoFlow { server, .. }
        | Expectation::Handshake { server, .. }
        | Expectation::ResetBy { server, .. }
        | Expectation::NoAnswer { server, .. }
        | Expectation::IcmpError { server, .. }
        | Expectation::Payload { server, .. }
        | Expectation::Answer { server, .. }
        | Expectation::ZeroWindow { server, .. }
        | Expectation::HandshakeRtt { server, .. }
        | Expectation::Retransmissions { server, .. }
        | Expectation::Datagrams { server, .. }
        | Expectation::NoDatagrams { server, .. }
        | Expectation::DroppedBy { server, .. }
        | Expectation::AllowedBy { server, .. }
        | Expectation::Hops { server, .. } => vec![*server],
        Expectation::NoIpPackets { .. }
        | Expectation::Class { .. }
        | Expectation::Exit { .. }
        | Expectation::Took { .. }
        | Expectation::Output { .. }
        | Expectation::UnansweredArp { .. } => Vec::new(),
    }
}

fn evaluate_one(e: &Expectation, ev: &Evidence) -> Result<(bool, String), String> {
    Ok(match e {
        Expectation::SynSchedule {
            host,
            server,
            sender,
            app_timeout,
            tolerance,
            program,
        } => syn_schedule_of(
            ev,
            host,
            *server,
            sender,
            *app_timeout,
            *tolerance,
            program.as_deref(),
        )?,
        Expectation::NoFlow { host, server } => {
            let t = trace(ev, host)?;
            let n: usize = t.flows_to(*server).map(|f| f.packets.len()).sum();
            let saw = if n == 0 {
                "none seen".to_string()
            } else {
                format!(
                    "{} ({})",
                    words::count(n, "packet"),
                    words::flows_seen(t, *server)
                )
            };
            words::judged(
                n == 0,
                format_args!("no packet of a connection to {server}"),
                saw,
            )
        }
        Expectation::NoIpPackets { host } => {
            let t = trace(ev, host)?;
            let n = t.ip_packets().count();
            words::judged(n == 0, "no IP packet", words::count(n, "IP packet"))
        }
        Expectation::Handshake { host, server } => {
            let t = trace(ev, host)?;
            let done = t.flows_to(*server).any(|f| f.handshake_completed(t));
            if done {
                (true, "SYN, SYN-ACK and ACK seen".to_string())
            } else {
                words::judged(
                    false,
                    "a SYN, a SYN-ACK and an ACK",
                    words::flows_seen(t, *server),
                )
            }
        }
        Expectation::ResetBy { host, server, by } => {
            let t = trace(ev, host)?;
            let resets: Vec<Side> = t
                .flows_to(*server)
                .flat_map(|f| f.resets.iter().map(|(_, s)| *s))
                .collect();
            let from = |s: Side| resets.iter().filter(|&&r| r == s).count();
            let saw = if resets.is_empty() {
                format!("no RST: {}", words::flows_seen(t, *server))
            } else {
                [Side::Client, Side::Server]
                    .into_iter()
                    .filter(|&s| from(s) > 0)
                    .map(|s| format!("{} from {}", words::count(from(s), "RST"), words::side(s)))
                    .collect::<Vec<_>>()
                    .join(" and ")
            };
            words::judged(
                resets.contains(by),
                format_args!("a RST from {}", words::side(*by)),
                saw,
            )
        }
        Expectation::NoAnswer { host, server } => unanswered(trace(ev, host)?, *server),
        Expectation::HandshakeRtt {
            host,
            server,
            rtt,
            tolerance,
            syns,
        } => link::handshake_rtt(trace(ev, host)?, *server, *rtt, *tolerance, *syns),
        Expectation::Retransmissions { host, server, from } => {
            link::retransmissions(trace(ev, host)?, *server, *from)
        }
        Expectation::IcmpError {
            host,
            server,
            icmp_type,
            code,
        } => icmp_error(trace(ev, host)?, *server, *icmp_type, *code),
        Expectation::Payload {
            text,
            server,
            hosts,
        } => payload(ev, text, *server, hosts, Side::Client)?,
        Expectation::Answer {
            text,
            server,
            hosts,
        } => payload(ev, text, *server, hosts, Side::Server)?,
        Expectation::ZeroWindow { host, server } => {
            zero_window(trace(ev, host)?, *server, ev.origin)
        }
        Expectation::UnansweredArp { host, target } => unanswered_arp(trace(ev, host)?, *target),
        Expectation::Datagrams {
            host,
            server,
            from,
            count,
            text,
        } => udp::datagrams(trace(ev, host)?, *server, *from, *count, text.as_deref()),
        Expectation::NoDatagrams { host, server } => udp::none(trace(ev, host)?, *server),
        Expectation::DroppedBy { server, from, by } => dropped::dropped_by(ev, *server, *from, by),
        Expectation::AllowedBy { server, from, by } => dropped::allowed_by(ev, *server, *from, by),
        Expectation::Hops {
            server,
            from,
            to,
            hops,
        } => hops_between(trace(ev, from)?, trace(ev, to)?, *server, *hops),
        Expectation::Took {
            program,
            expected,
            tolerance,
        } => {
            let took = outcome(ev, program)?.duration;
            if tolerance.allows(*expected, took) {
                (true, format!("ran for {}", secs(took)))
            } else {
                words::judged(
                    false,
                    format_args!(
                        "a run of {} (±{})",
                        secs(*expected),
                        secs(tolerance.margin(*expected))
                    ),
                    format_args!("it run for {}", secs(took)),
                )
            }
        }
        Expectation::Exit { program, code } => {
            let outcome = outcome(ev, program)?;
            words::judged(
                outcome.status.code() == Some(*code),
                format_args!("exit code {code}"),
                words::ended(outcome.status),
            )
        }
        Expectation::Output { program, line } => {
            let outcome = outcome(ev, program)?;
            match outcome
                .lines
                .iter()
                .find(|l| l.text.contains(line.as_str()))
            {
                Some(l) => (true, format!("at {}: {}", secs(l.at), l.text)),
                None => words::judged(
                    false,
                    format_args!("a line containing \"{line}\""),
                    match outcome.lines.len() {
                        0 => "no output".to_string(),
                        n => format!("{}, none with it", words::count_as(n, "line", "lines")),
                    },
                ),
            }
        }
        Expectation::Class { program, class } => class_of(outcome(ev, program)?, *class),
    })
}

/// The SYN schedule of the single flow to `server` on `host`'s capture, from the sender's
/// sysctls in the evidence and, with `program`, its start.
fn syn_schedule_of(
    ev: &Evidence,
    host: &str,
    server: SocketAddrV4,
    sender: &str,
    app_timeout: Option<Duration>,
    tolerance: Tolerance,
    program: Option<&str>,
) -> Result<(bool, String), String> {
    let t = trace(ev, host)?;
    let schedule = &ev
        .syn_sysctls
        .iter()
        .find(|(h, _)| h == sender)
        .map(|(_, s)| s.schedule(app_timeout))
        .ok_or_else(|| format!("expected the SYN sysctls of {sender}, saw them unread"))?;
    let start = match program {
        Some(p) => Some((p, outcome(ev, p)?.started_at)),
        None => None,
    };
    let flows: Vec<&Flow> = t.flows_to(server).filter(|f| !f.syns.is_empty()).collect();
    Ok(match flows.as_slice() {
        [flow] => syn_schedule(t, flow, schedule, tolerance, start, ev.origin),
        [] => (
            false,
            format!(
                "expected SYNs to {server}, saw none on {host} ({})",
                words::flows_seen(t, server)
            ),
        ),
        many => (
            false,
            format!(
                "expected one connection to {server}, saw {} on {host}",
                many.len()
            ),
        ),
    })
}

/// SYNs to `server` went out and nothing answered them: no SYN-ACK, RST or ICMP error.
fn unanswered(t: &Trace, server: SocketAddrV4) -> (bool, String) {
    let flows: Vec<&Flow> = t.flows_to(server).collect();
    let syns: usize = flows.iter().map(|f| f.syns.len()).sum();
    let answers: usize = flows
        .iter()
        .map(|f| {
            f.syn_acks.len()
                + f.resets.iter().filter(|(_, s)| *s == Side::Server).count()
                + f.icmp_errors.len()
        })
        .sum();
    words::judged(
        syns > 0 && answers == 0,
        format_args!("SYNs to {server} and no answer"),
        words::flows_seen(t, server),
    )
}

/// An ICMP error of this type and code quoting a packet to `server`: of a TCP flow, or a UDP
/// datagram.
fn icmp_error(t: &Trace, server: SocketAddrV4, icmp_type: u8, code: u8) -> (bool, String) {
    let mut seen: Vec<(u8, u8)> = t
        .flows_to(server)
        .flat_map(|f| f.icmp_errors.iter())
        .filter_map(|&i| match &t.packets[i].kind {
            Kind::Icmp(icmp) => Some((icmp.icmp_type, icmp.code)),
            _ => None,
        })
        .collect();
    seen.extend(udp::icmp_errors(t, server));
    let mut named: Vec<String> = Vec::new();
    for &(ty, c) in &seen {
        let n = words::icmp(ty, c);
        if !named.contains(&n) {
            named.push(n);
        }
    }
    // What went to the server instead: its UDP datagrams when no TCP flow was seen.
    let saw = if named.is_empty() && t.flows_to(server).next().is_none() && udp::any(t, server) {
        format!("no ICMP error about it ({})", udp::seen(t, server))
    } else if named.is_empty() {
        format!("no ICMP error about it ({})", words::flows_seen(t, server))
    } else {
        named.join(" and ")
    };
    words::judged(
        seen.contains(&(icmp_type, code)),
        words::icmp(icmp_type, code),
        saw,
    )
}

/// The server side advertised a zero window and the client kept probing it.
fn zero_window(t: &Trace, server: SocketAddrV4, origin: Duration) -> (bool, String) {
    let expected = "a zero window from the server, then the client probing it";
    let mut found = words::judged(false, expected, "no zero window advertised");
    for f in t.flows_to(server) {
        let zero = f.packets.iter().copied().find(|&i| {
            matches!(&t.packets[i].kind, Kind::Tcp(tcp)
                if tcp.src == f.key.server && tcp.window == 0 && !tcp.flags.rst)
        });
        if let Some(z) = zero {
            let probes = f
                .packets
                .iter()
                .filter(|&&i| {
                    i > z && matches!(&t.packets[i].kind, Kind::Tcp(tcp) if tcp.src == f.key.client)
                })
                .count();
            found = words::judged(
                probes > 0,
                expected,
                format!(
                    "a zero window at {}, {} after it",
                    secs(t.packets[z].at.saturating_sub(origin)),
                    words::count(probes, "client packet")
                ),
            );
            if probes > 0 {
                break;
            }
        }
    }
    found
}

/// ARP asked for `target` and nobody answered.
fn unanswered_arp(t: &Trace, target: Ipv4Addr) -> (bool, String) {
    let (asked, answered) = t.packets.iter().fold((0, 0), |(q, a), p| match &p.kind {
        Kind::Arp(arp) if arp.request && arp.target == target => (q + 1, a),
        Kind::Arp(arp) if !arp.request && arp.sender == target => (q, a + 1),
        _ => (q, a),
    });
    words::judged(
        asked > 0 && answered == 0,
        format_args!("ARP requests for {target} and no reply"),
        format_args!(
            "{} and {}",
            words::count(asked, "request"),
            words::count_as(answered, "reply", "replies")
        ),
    )
}

/// One of tcplab's apps ended with `class` (another program's exit code is no class).
fn class_of(outcome: &Outcome, class: ErrorClass) -> (bool, String) {
    let got = outcome.class();
    let err = outcome.stderr().last().unwrap_or("").to_string();
    let after = secs(outcome.duration);
    let saw = match got {
        Some(c) => format!(
            "{c} after {after}{}",
            if err.is_empty() {
                String::new()
            } else {
                format!(": {err}")
            }
        ),
        None if !crate::error_class::is_app(
            outcome.program.split(' ').next().unwrap_or_default(),
        ) =>
        {
            format!(
                "{} after {after}; `{}` is not one of tcplab's apps, so its exit code is no class: expect its exit code instead",
                words::ended(outcome.status),
                outcome.program.split(' ').next().unwrap_or_default()
            )
        }
        None => format!("{} after {after}", words::ended(outcome.status)),
    };
    if got == Some(class) {
        (true, format!("ended with {saw}"))
    } else {
        words::judged(false, class, saw)
    }
}

fn outcome<'a>(ev: &'a Evidence, program: &str) -> Result<&'a Outcome, String> {
    ev.outcomes
        .iter()
        .find(|(name, _)| name == program)
        .map(|(_, o)| o)
        .ok_or_else(|| {
            let known: Vec<&str> = ev.outcomes.iter().map(|(n, _)| n.as_str()).collect();
            format!(
                "expected a program named {program}, saw none ({})",
                if known.is_empty() {
                    "no program ran".to_string()
                } else {
                    format!("programs: {}", known.join(", "))
                }
            )
        })
}

/// `text` in the payload `side` sent, in connections to `server`, with one four-tuple on
/// every host.
fn payload(
    ev: &Evidence,
    text: &str,
    server: SocketAddrV4,
    hosts: &[String],
    side: Side,
) -> Result<(bool, String), String> {
    let whose = match side {
        Side::Client => "the client's payload to",
        Side::Server => "the server's payload from",
    };
    let tuple =
        |k: &crate::trace::FlowKey| format!("{}:{} > {}", k.client.ip(), k.client.port(), k.server);
    let mut tuples = Vec::new();
    for host in hosts {
        let t = trace(ev, host)?;
        let flows: Vec<_> = t.flows_to(server).collect();
        let found: Vec<_> = flows
            .iter()
            .filter(|f| contains(&f.payload(t, side), text.as_bytes()))
            .map(|f| f.key)
            .collect();
        if found.is_empty() {
            let saw = match flows.len() {
                0 => format!("no connection to {server} on {host}"),
                1 => format!("1 connection to {server} on {host}, without it"),
                n => format!("{n} connections to {server} on {host}, none with it"),
            };
            return Ok(words::judged(
                false,
                format_args!("\"{text}\" in {whose} {server}"),
                saw,
            ));
        }
        tuples.push((host.clone(), found));
    }
    let Some((_, first)) = tuples.first() else {
        return Ok(words::judged(false, "hosts to look on", "none named"));
    };
    let common = first
        .iter()
        .find(|k| tuples.iter().all(|(_, ks)| ks.contains(k)));
    Ok(match common {
        Some(k) => (true, format!("in {}", tuple(k))),
        None => words::judged(
            false,
            format_args!("\"{text}\" in one connection seen on every host"),
            format_args!(
                "it in different connections: {}",
                tuples
                    .iter()
                    .map(|(host, keys)| format!(
                        "{} on {host}",
                        keys.iter().map(tuple).collect::<Vec<_>>().join(" and ")
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ),
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The program that connects, and when it started (since the Unix epoch).
type Start<'a> = Option<(&'a str, Duration)>;

fn syn_schedule(
    t: &Trace,
    flow: &Flow,
    schedule: &SynSchedule,
    tol: Tolerance,
    start: Start,
    origin: Duration,
) -> (bool, String) {
    let first = t.packets[flow.syns[0]].at;
    let late = start.and_then(|(program, at)| {
        let lead = first.saturating_sub(at);
        (lead > tol.margin(Duration::ZERO)).then(|| late_start(t, program, at, first, tol))
    });
    let isn = |i: usize| match &t.packets[i].kind {
        Kind::Tcp(tcp) => tcp.seq,
        _ => 0,
    };
    let seen: Vec<Duration> = flow.syns.iter().map(|&i| t.packets[i].at - first).collect();
    let expected = schedule.send_times(tol);
    let mut problems = Vec::new();
    if let Some(&other) = flow.syns.iter().find(|&&i| isn(i) != isn(flow.syns[0])) {
        problems.push(format!(
            "expected every SYN to carry the first one's ISN {}, saw ISN {} at {}: not a retransmission",
            isn(flow.syns[0]),
            isn(other),
            secs(t.packets[other].at - first)
        ));
    }
    for (n, exp) in expected.iter().enumerate() {
        match seen.get(n) {
            Some(&s) if !tol.allows(exp.at, s) => problems.push(format!(
                "expected SYN #{} at {} (±{}), saw it at {}",
                n + 1,
                secs(exp.at),
                secs(tol.margin(exp.at)),
                secs(s)
            )),
            // After a late start, SYNs missing at the end are its consequence, not news.
            None if exp.required && late.is_none() => problems.push(format!(
                "expected SYN #{} at {}, saw none",
                n + 1,
                secs(exp.at)
            )),
            _ => {}
        }
    }
    for (n, s) in seen.iter().enumerate().skip(expected.len()) {
        problems.push(format!(
            "expected no SYN after {} (the attempt ends at {}), saw SYN #{} at {}",
            secs(expected.last().map_or(Duration::ZERO, |e| e.at)),
            secs(schedule.ends_at()),
            n + 1,
            secs(*s)
        ));
    }
    let expected_text: Vec<String> = expected
        .iter()
        .map(|e| {
            format!(
                "{}{}",
                fmt_secs(e.at.as_secs_f64()),
                if e.required { "" } else { "?" }
            )
        })
        .collect();
    let seen_text: Vec<String> = seen
        .iter()
        .map(|s| format!("{:.3}", s.as_secs_f64()))
        .collect();
    let when = match start {
        Some((program, at)) => format!(
            "first SYN at {} on the run's clock, {} after {program} started",
            secs(first.saturating_sub(origin)),
            secs(first.saturating_sub(at))
        ),
        None => format!(
            "first SYN at {} on the run's clock",
            secs(first.saturating_sub(origin))
        ),
    };
    let summary = format!(
        "{when}; expected SYNs at [{}] s after the first, saw [{}] s",
        expected_text.join(", "),
        seen_text.join(", ")
    );
    if let Some(late) = late {
        problems.insert(0, late);
    }
    if problems.is_empty() {
        (true, summary)
    } else {
        (false, format!("{}; {summary}", problems.join("; ")))
    }
}

/// A first SYN that left later than its program's start allows: what the host did before it.
fn late_start(
    t: &Trace,
    program: &str,
    started: Duration,
    first: Duration,
    tol: Tolerance,
) -> String {
    /// Enough to show an ARP exchange and its retries; more is in the capture below.
    const SHOWN: usize = 6;
    let before: Vec<usize> = (0..t.packets.len())
        .filter(|&i| (started..first).contains(&t.packets[i].at))
        .collect();
    // A reply shows as the request it answered.
    let is_reply = |i: usize| matches!(&t.packets[i].kind, Kind::Arp(a) if !a.request);
    let mut seen = Vec::new();
    let mut asked = std::collections::HashSet::new();
    let listed: Vec<usize> = before.iter().copied().filter(|&i| !is_reply(i)).collect();
    for &i in listed.iter().take(SHOWN) {
        let p = &t.packets[i];
        let at = secs(p.at - started);
        seen.push(match &p.kind {
            Kind::Arp(arp) if arp.request => {
                // Answered if the reply comes before the next request for the same address.
                let answered = before
                    .iter()
                    .filter(|&&j| j > i)
                    .find_map(|&j| match &t.packets[j].kind {
                        Kind::Arp(r) if r.request && r.target == arp.target => Some(false),
                        Kind::Arp(r) if !r.request && r.sender == arp.target => Some(true),
                        _ => None,
                    })
                    .unwrap_or(false);
                let again = if asked.insert(arp.target) {
                    ""
                } else {
                    " again"
                };
                format!(
                    "ARP who-has {}{again} at {at}, {}",
                    arp.target,
                    if answered { "answered" } else { "unanswered" }
                )
            }
            kind => format!("{} at {at}", crate::trace::describe(kind)),
        });
    }
    if listed.len() > SHOWN {
        seen.push(format!("{} more", listed.len() - SHOWN));
    }
    let before = if seen.is_empty() {
        format!("nothing on {} before it", t.host)
    } else {
        format!("before it: {}", seen.join("; "))
    };
    format!(
        "late start: expected the first SYN within {} of {program}'s start, saw it {} after; {before}",
        secs(tol.margin(Duration::ZERO)),
        secs(first - started)
    )
}

fn render(checks: &[Check], ev: &Evidence) -> String {
    let mut s = String::new();
    // Failures first: the first line of a failed test's message is what went wrong.
    let (failed, held): (Vec<&Check>, Vec<&Check>) = checks.iter().partition(|c| !c.held);
    for c in failed.iter().chain(&held) {
        let mark = if c.held { "ok  " } else { "FAIL" };
        // `FILE:LINE: FAIL ...`, as compilers say where: editors and terminals jump there.
        // Only failures: a passing line needs no finding, and a path on every line is noise.
        let at = match &c.at {
            Some(a) if !c.held => format!("{a}: "),
            _ => String::new(),
        };
        let _ = writeln!(s, "{at}{mark} {}: {}", c.expectation, c.detail);
    }
    if failed.is_empty() {
        return s;
    }
    let mut servers: Vec<SocketAddrV4> = failed.iter().flat_map(|c| c.servers.clone()).collect();
    servers.dedup();
    for t in ev.traces {
        let lines: Vec<String> = t
            .packets
            .iter()
            .enumerate()
            .filter(|(i, p)| {
                servers.is_empty()
                    || matches!(&p.kind, Kind::Arp(_))
                    || t.flows()
                        .iter()
                        .any(|f| servers.contains(&f.key.server) && f.packets.contains(i))
                    || servers.iter().any(|&s| udp::concerns(t, *i, s))
            })
            .map(|(i, _)| format!("  {}", t.line(i, ev.origin)))
            .collect();
        let where_ = t
            .pcap
            .as_ref()
            .map(|p| format!(" ({})", p.display()))
            .unwrap_or_default();
        let _ = writeln!(s, "capture of {} on {}{where_}:", t.host, t.interface);
        if lines.is_empty() {
            let _ = writeln!(s, "  (no packets)");
        }
        for l in lines {
            let _ = writeln!(s, "{l}");
        }
    }
    for (name, o) in ev.outcomes {
        let _ = writeln!(
            s,
            "output of {name} ({}):\n{}",
            words::ended(o.status),
            o.transcript()
        );
    }
    s
}

#[cfg(test)]
mod failure_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod udp_tests;
