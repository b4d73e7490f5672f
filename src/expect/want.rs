//! Expectations as a test writes them: hosts and programs by name, servers as `"HOST:PORT"`,
//! schedules left to be derived. A [`crate::session::Session`] turns them into
//! [`Expectation`]s against its lab and evidence when it checks.

use std::time::Duration;

use super::{Expectation, SourceLine, Tolerance};
use crate::error_class::ErrorClass;
use crate::trace::Side;

/// Something that names a program of a session: its handle, or its name.
pub trait ProgramName {
    /// The program's name in the session (and in reports).
    fn program_name(&self) -> &str;
}

impl ProgramName for str {
    fn program_name(&self) -> &str {
        self
    }
}

impl ProgramName for String {
    fn program_name(&self) -> &str {
        self
    }
}

impl<T: ProgramName + ?Sized> ProgramName for &T {
    fn program_name(&self) -> &str {
        (**self).program_name()
    }
}

/// An expectation to check at the end of a session. Build one with the functions of
/// [`crate::expect`] ([`exit`], [`syn_retransmissions`], [`no_flow`]...): each one keeps the
/// line of the test that called it, so that a failure starts with `tests/foo.rs:31: FAIL`.
#[derive(Debug, Clone)]
pub struct Expect(pub(crate) Want, pub(crate) Option<SourceLine>);

#[derive(Debug, Clone)]
pub(crate) enum Want {
    /// Already in its final form.
    Ready(Expectation),
    /// SYNs from `host` to `target` on schedule until `program` gave up (the one program the
    /// session ran on `host` unless named).
    SynRetransmissions {
        host: String,
        target: String,
        program: Option<String>,
        tolerance: Tolerance,
    },
    Flow {
        host: String,
        target: String,
        kind: FlowWant,
    },
    Payload {
        text: String,
        target: String,
        hosts: Vec<String>,
        from: Side,
    },
    DroppedBy {
        target: String,
        by: String,
        from: Option<String>,
        allowed: bool,
    },
    Hops {
        target: String,
        from: String,
        to: String,
        hops: u8,
    },
    Datagrams {
        host: String,
        target: String,
        from: Side,
        count: Option<usize>,
        text: Option<String>,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum FlowWant {
    None,
    Handshake,
    NoAnswer,
    ResetBy(Side),
    NoDatagrams,
    HandshakeRtt {
        rtt: Duration,
        tolerance: Tolerance,
        syns: Option<usize>,
    },
    Retransmissions(Side),
}

impl Expect {
    /// Compares times with `tolerance` instead of the default (0.1 s + 5%): for
    /// [`syn_retransmissions`], [`handshake_rtt`] and [`took`].
    pub fn tolerance(mut self, tolerance: Tolerance) -> Expect {
        match &mut self.0 {
            Want::SynRetransmissions { tolerance: t, .. }
            | Want::Flow {
                kind: FlowWant::HandshakeRtt { tolerance: t, .. },
                ..
            }
            | Want::Ready(Expectation::Took { tolerance: t, .. }) => *t = tolerance,
            _ => {}
        }
        self
    }

    /// For [`handshake_rtt`]: the SYN-ACK came after exactly `n` SYNs (2: the first was lost
    /// and its retransmission was answered).
    pub fn syns(mut self, n: usize) -> Expect {
        if let Want::Flow {
            kind: FlowWant::HandshakeRtt { syns, .. },
            ..
        } = &mut self.0
        {
            *syns = Some(n);
        }
        self
    }

    /// For [`datagrams`] and [`datagrams_from`]: exactly `n` datagrams (by default, at
    /// least one).
    pub fn count(mut self, n: usize) -> Expect {
        if let Want::Datagrams { count, .. } = &mut self.0 {
            *count = Some(n);
        }
        self
    }

    /// For [`datagrams`] and [`datagrams_from`]: each datagram counted contains `text`
    /// (in the part of its payload the capture holds: the first fragment's, for a datagram IP
    /// cut into fragments).
    pub fn containing(mut self, text: &str) -> Expect {
        if let Want::Datagrams { text: t, .. } = &mut self.0 {
            *t = Some(text.to_string());
        }
        self
    }

    /// For [`dropped_by`] and [`allowed_by`]: only packets from `host` (a host's name or an address).
    pub fn from(mut self, host: &str) -> Expect {
        if let Want::DroppedBy { from, .. } = &mut self.0 {
            *from = Some(host.to_string());
        }
        self
    }

    /// For [`syn_retransmissions`]: the program that connects, when its host ran several.
    pub fn by(mut self, program: impl ProgramName) -> Expect {
        if let Want::SynRetransmissions { program: p, .. } = &mut self.0 {
            *p = Some(program.program_name().to_string());
        }
        self
    }
}

impl Expect {
    /// `want`, written where the builder that makes it was called.
    #[track_caller]
    fn new(want: Want) -> Expect {
        Expect(want, Some(SourceLine::of(std::panic::Location::caller())))
    }
}

/// An expectation made by hand has no line of its own (`.into()` would name the standard
/// library's): its report line starts without one.
impl From<Expectation> for Expect {
    fn from(e: Expectation) -> Expect {
        Expect(Want::Ready(e), None)
    }
}

/// The client's packets of a connection to `target` crossed `hops` routers between the
/// captures of `from` (near the client) and `to` (near the server): each router takes one off
/// their TTL. `hops("server:1234", "client-1", "server", 1)` across a VPC's subnets.
#[track_caller]
pub fn hops(target: &str, from: &str, to: &str, hops: u8) -> Expect {
    Expect::new(Want::Hops {
        target: target.to_string(),
        from: from.to_string(),
        to: to.to_string(),
        hops,
    })
}

/// The program exited with `code` (any program: curl's 28, your own tool's 3).
#[track_caller]
pub fn exit(program: impl ProgramName, code: i32) -> Expect {
    Expect::new(Want::Ready(Expectation::Exit {
        program: program.program_name().to_string(),
        code,
    }))
}

/// One of tcplab's own apps ended with the error class `class`.
#[track_caller]
pub fn class(program: impl ProgramName, class: ErrorClass) -> Expect {
    Expect::new(Want::Ready(Expectation::Class {
        program: program.program_name().to_string(),
        class,
    }))
}

/// The program ran for `duration`, within the tolerance (default 0.1 s + 5%): "curl gave
/// up after its 3 s connect timeout".
#[track_caller]
pub fn took(program: impl ProgramName, duration: Duration) -> Expect {
    Expect::new(Want::Ready(Expectation::Took {
        program: program.program_name().to_string(),
        expected: duration,
        tolerance: Tolerance::default(),
    }))
}

/// The program printed a line containing `line`.
#[track_caller]
pub fn output(program: impl ProgramName, line: &str) -> Expect {
    Expect::new(Want::Ready(Expectation::Output {
        program: program.program_name().to_string(),
        line: line.to_string(),
    }))
}

/// On `host`'s capture, the SYNs to `target` (`"server:8080"` or `"10.0.0.58:8080"`) went
/// out and were retransmitted on the kernel's schedule (from `host`'s own sysctls) until the
/// program that connected gave up, the first one right when it started.
#[track_caller]
pub fn syn_retransmissions(host: &str, target: &str) -> Expect {
    Expect::new(Want::SynRetransmissions {
        host: host.to_string(),
        target: target.to_string(),
        program: None,
        tolerance: Tolerance::default(),
    })
}

#[track_caller]
fn flow(host: &str, target: &str, kind: FlowWant) -> Expect {
    Expect::new(Want::Flow {
        host: host.to_string(),
        target: target.to_string(),
        kind,
    })
}

/// `host`'s capture holds no packet of any connection to `target`: what a security group
/// that drops leaves on the server.
#[track_caller]
pub fn no_flow(host: &str, target: &str) -> Expect {
    flow(host, target, FlowWant::None)
}

/// On `host`'s capture, a connection to `target` completed its three-way handshake.
#[track_caller]
pub fn handshake(host: &str, target: &str) -> Expect {
    flow(host, target, FlowWant::Handshake)
}

/// On `host`'s capture, the first answered connection to `target` got its SYN-ACK `rtt`
/// after its first SYN, within the tolerance (default 0.1 s + 5%; see [`Expect::tolerance`]):
/// the round trip a delay on the link makes. [`Expect::syns`] also checks how many SYNs went
/// before the SYN-ACK.
///
/// ```
/// use std::time::Duration;
/// use tcplab::expect::{Tolerance, handshake_rtt};
/// let e = handshake_rtt("client-1", "server:1234", Duration::from_millis(200)).tolerance(
///     Tolerance { absolute: Duration::from_millis(20), relative: 0.05 },
/// );
/// # let _ = e;
/// ```
#[track_caller]
pub fn handshake_rtt(host: &str, target: &str, rtt: Duration) -> Expect {
    flow(
        host,
        target,
        FlowWant::HandshakeRtt {
            rtt,
            tolerance: Tolerance::default(),
            syns: None,
        },
    )
}

/// On `host`'s capture, `from` sent data again in a connection to `target` (a segment
/// starting below the highest sequence number it had sent): what a lossy link causes.
#[track_caller]
pub fn retransmissions(host: &str, target: &str, from: Side) -> Expect {
    flow(host, target, FlowWant::Retransmissions(from))
}

#[track_caller]
fn udp(host: &str, target: &str, from: Side) -> Expect {
    Expect::new(Want::Datagrams {
        host: host.to_string(),
        target: target.to_string(),
        from,
        count: None,
        text: None,
    })
}

/// On `host`'s capture, UDP datagrams went to `target` (`"server:1234"`): at least one, or
/// exactly [`Expect::count`], each [`Expect::containing`] a text when asked.
///
/// ```
/// use tcplab::expect::datagrams;
/// let e = datagrams("server", "server:1234").count(2).containing("Message #1");
/// # let _ = e;
/// ```
#[track_caller]
pub fn datagrams(host: &str, target: &str) -> Expect {
    udp(host, target, Side::Client)
}

/// On `host`'s capture, UDP datagrams came from `target` to its clients: its answers.
#[track_caller]
pub fn datagrams_from(host: &str, target: &str) -> Expect {
    udp(host, target, Side::Server)
}

/// `host`'s capture holds no UDP datagram to or from `target`: what a security group that
/// drops leaves on the server.
#[track_caller]
pub fn no_datagrams(host: &str, target: &str) -> Expect {
    flow(host, target, FlowWant::NoDatagrams)
}

/// On `host`'s capture, nothing answered the SYNs to `target`: no SYN-ACK, RST or ICMP.
#[track_caller]
pub fn no_answer(host: &str, target: &str) -> Expect {
    flow(host, target, FlowWant::NoAnswer)
}

/// On `host`'s capture, a connection to `target` was reset by `by`: the side whose address
/// the RST carries. A firewall that resets on the server's behalf forges the server's
/// address, so its RST is `Side::Server`, as the client sees it.
#[track_caller]
pub fn reset_by(host: &str, target: &str, by: Side) -> Expect {
    flow(host, target, FlowWant::ResetBy(by))
}

/// `text` went from a client to `target`, seen on each of `hosts` in one connection.
#[track_caller]
pub fn sent(text: &str, target: &str, hosts: &[&str]) -> Expect {
    payload(text, target, hosts, Side::Client)
}

/// `target` answered `text` to its client, seen on each of `hosts` in one connection.
#[track_caller]
pub fn answered(text: &str, target: &str, hosts: &[&str]) -> Expect {
    payload(text, target, hosts, Side::Server)
}

#[track_caller]
fn payload(text: &str, target: &str, hosts: &[&str], from: Side) -> Expect {
    Expect::new(Want::Payload {
        text: text.to_string(),
        target: target.to_string(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        from,
    })
}

/// Rules of the lab stopped packets to `target` (`"server:8080"`), and each one they
/// stopped was stopped by `by`: `"security-group:NAME"`, `"firewall:N"` (the N-th firewall
/// rule, from 1) or `"firewall:HOST"` (any firewall rule on that host). Narrow it to one
/// client with [`Expect::from`].
///
/// ```
/// use tcplab::expect::dropped_by;
/// let e = dropped_by("server:1235", "security-group:server-sg").from("client-1");
/// # let _ = e;
/// ```
#[track_caller]
pub fn dropped_by(target: &str, by: &str) -> Expect {
    Expect::new(Want::DroppedBy {
        target: target.to_string(),
        by: by.to_string(),
        from: None,
        allowed: false,
    })
}

/// Packets to `target` were let through by a rule `by` names: `"security-group:NAME"`, or
/// `"established"` (the security groups' connection tracking, which passes the packets of a
/// connection they allowed whatever their rules say now).
#[track_caller]
pub fn allowed_by(target: &str, by: &str) -> Expect {
    Expect::new(Want::DroppedBy {
        target: target.to_string(),
        by: by.to_string(),
        from: None,
        allowed: true,
    })
}

/// `host`'s capture holds no IP packet at all (ARP aside).
#[track_caller]
pub fn no_ip_packets(host: &str) -> Expect {
    Expect::new(Want::Ready(Expectation::NoIpPackets {
        host: host.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_keep_the_line_that_called_them() {
        let here = |e: &Expect| e.1.clone().expect("a builder keeps its caller's line");
        let exit = exit("curl", 0);
        assert_eq!(here(&exit), SourceLine::new(file!(), line!() - 1));
        // Through a helper of the module and chained options, still the caller's line.
        let flow = no_flow("server", "server:1235");
        assert_eq!(here(&flow), SourceLine::new(file!(), line!() - 1));
        let schedule = syn_retransmissions("client-1", "x:1").tolerance(Tolerance::default());
        assert_eq!(here(&schedule), SourceLine::new(file!(), line!() - 1));
        let dropped = dropped_by("server:1235", "firewall:1").from("client-1");
        assert_eq!(here(&dropped), SourceLine::new(file!(), line!() - 1));
        let udp = datagrams("server", "server:1234").count(2).containing("x");
        assert_eq!(here(&udp), SourceLine::new(file!(), line!() - 1));
        let none = no_datagrams("server", "server:1235");
        assert_eq!(here(&none), SourceLine::new(file!(), line!() - 1));
        assert!(
            here(&exit).file.ends_with("src/expect/want.rs"),
            "{}",
            here(&exit)
        );
        let by_hand: Expect = Expectation::NoIpPackets { host: "a".into() }.into();
        assert_eq!(by_hand.1, None);
    }
}
