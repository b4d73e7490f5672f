//! From expectations as a test writes them to expectations the evidence is checked against:
//! names become addresses of the lab's hosts, and SYN schedules are derived from the sending
//! host's sysctls and the program that connected.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::expect::{Check, Expect, Expectation, FlowWant, Want};
use crate::lab::Lab;
use crate::proc::Outcome;

/// `hosts` pairs each program with its host; a failure is the check that reports it.
pub(super) fn resolve(
    e: Expect,
    lab: &Lab,
    hosts: &[(&str, &str)],
    outcomes: &[(String, Outcome)],
) -> Result<Expectation, Check> {
    let what = describe(&e.0);
    resolve_want(e.0, lab, hosts, outcomes).map_err(|detail| Check::failed(what, detail))
}

fn describe(w: &Want) -> String {
    match w {
        Want::Ready(e) => e.to_string(),
        Want::SynRetransmissions { host, target, .. } => {
            format!("{host}: SYNs to {target} follow the retransmission schedule")
        }
        Want::Flow { host, target, .. } => format!("{host}: connection to {target}"),
        Want::Datagrams { host, target, .. } => format!("{host}: UDP datagrams of {target}"),
        Want::Payload { text, target, .. } => format!("\"{text}\" in a connection to {target}"),
        Want::Hops {
            target, from, to, ..
        } => format!("packets to {target} between {from} and {to}"),
        Want::DroppedBy {
            target,
            by,
            allowed,
            ..
        } => {
            let what = if *allowed { "let through" } else { "stopped" };
            format!("packets to {target} {what} by {by}")
        }
    }
}

fn resolve_want(
    w: Want,
    lab: &Lab,
    hosts: &[(&str, &str)],
    outcomes: &[(String, Outcome)],
) -> Result<Expectation, String> {
    Ok(match w {
        Want::Ready(e) => e,
        Want::Hops {
            target,
            from,
            to,
            hops,
        } => Expectation::Hops {
            server: address(lab, &target)?,
            from,
            to,
            hops,
        },
        Want::DroppedBy {
            target,
            by,
            from,
            allowed,
        } => {
            let server = address(lab, &target)?;
            let by = crate::expect::RuleName::parse(&by)?;
            let from = from
                .map(|f| match lab.host(&f) {
                    Ok(h) => Ok(h.address()),
                    Err(_) => f
                        .parse::<Ipv4Addr>()
                        .map_err(|_| format!("`{f}` is neither a host of the lab nor an address")),
                })
                .transpose()?;
            if allowed {
                Expectation::AllowedBy { server, from, by }
            } else {
                Expectation::DroppedBy { server, from, by }
            }
        }
        Want::SynRetransmissions {
            host,
            target,
            program,
            tolerance,
        } => {
            let sender = host.strip_prefix("fabric:").unwrap_or(&host);
            let program = match program {
                Some(p) => p,
                None => {
                    let on: Vec<&str> = hosts
                        .iter()
                        .filter(|(_, h)| *h == sender)
                        .map(|(p, _)| *p)
                        .collect();
                    match on.as_slice() {
                        [one] => one.to_string(),
                        [] => {
                            return Err(format!(
                                "expected a program that connected from {sender}, saw none run there"
                            ));
                        }
                        many => {
                            return Err(format!(
                                "{sender} ran several programs ({}): say which connected with .by(&program)",
                                many.join(", ")
                            ));
                        }
                    }
                }
            };
            let outcome = outcomes
                .iter()
                .find(|(n, _)| *n == program)
                .map(|(_, o)| o)
                .ok_or_else(|| format!("expected a program named {program}, saw none run"))?;
            lab.host(sender).map_err(|e| e.to_string())?;
            Expectation::SynSchedule {
                sender: sender.to_string(),
                server: address(lab, &target)?,
                // The attempt ends when the program gave up, whatever its option was called.
                app_timeout: Some(outcome.duration),
                tolerance,
                program: Some(program),
                host,
            }
        }
        Want::Flow { host, target, kind } => {
            let server = address(lab, &target)?;
            match kind {
                FlowWant::None => Expectation::NoFlow { host, server },
                FlowWant::Handshake => Expectation::Handshake { host, server },
                FlowWant::NoAnswer => Expectation::NoAnswer { host, server },
                FlowWant::ResetBy(by) => Expectation::ResetBy { host, server, by },
                FlowWant::NoDatagrams => Expectation::NoDatagrams { host, server },
                FlowWant::HandshakeRtt {
                    rtt,
                    tolerance,
                    syns,
                } => Expectation::HandshakeRtt {
                    host,
                    server,
                    rtt,
                    tolerance,
                    syns,
                },
                FlowWant::Retransmissions(from) => {
                    Expectation::Retransmissions { host, server, from }
                }
            }
        }
        Want::Datagrams {
            host,
            target,
            from,
            count,
            text,
        } => Expectation::Datagrams {
            server: address(lab, &target)?,
            host,
            from,
            count,
            text,
        },
        Want::Payload {
            text,
            target,
            hosts,
            from,
        } => {
            let server = address(lab, &target)?;
            match from {
                crate::trace::Side::Client => Expectation::Payload {
                    text,
                    server,
                    hosts,
                },
                crate::trace::Side::Server => Expectation::Answer {
                    text,
                    server,
                    hosts,
                },
            }
        }
    })
}

/// `"server:8080"` or `"10.0.0.58:8080"`.
fn address(lab: &Lab, target: &str) -> Result<SocketAddrV4, String> {
    let (host, port) = target
        .rsplit_once(':')
        .ok_or_else(|| format!("`{target}` should be HOST:PORT, e.g. \"server:8080\""))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{port}` in `{target}` is not a port"))?;
    let ip = match lab.host(host) {
        Ok(h) => h.address(),
        Err(_) => host.parse::<Ipv4Addr>().map_err(|_| {
            let known: Vec<&str> = lab.hosts().iter().map(|h| h.name()).collect();
            format!(
                "`{host}` in `{target}` is neither a host of the lab ({}) nor an address",
                known.join(", ")
            )
        })?,
    };
    Ok(SocketAddrV4::new(ip, port))
}
