//! Values as AWS writes them: CIDRs, protocols, ports, and how a rule reads to a person.

use ipnet::Ipv4Net;

use crate::spec::{PortRange, Protocol};

/// A CIDR as AWS writes one; host bits set are cleared (AWS never prints them).
pub(super) fn parse_cidr(text: &str) -> Result<Ipv4Net, String> {
    text.parse::<Ipv4Net>()
        .map(|n| n.trunc())
        .map_err(|_| format!("`{}` is not an IPv4 CIDR", crate::escape::line(text)))
}

pub(super) enum Proto {
    Known(Protocol),
    /// Not modelled, and why.
    Unknown(String),
}

/// An IP protocol as AWS writes it: a name, a number, or `-1` for all.
pub(super) fn parse_protocol(text: &str) -> Proto {
    match text.to_ascii_lowercase().as_str() {
        "-1" | "all" => Proto::Known(Protocol::All),
        "tcp" | "6" => Proto::Known(Protocol::Tcp),
        "udp" | "17" => Proto::Known(Protocol::Udp),
        "icmp" | "1" => Proto::Known(Protocol::Icmp),
        "icmpv6" | "58" => Proto::Unknown("ICMPv6 (tcplab is IPv4 only)".into()),
        other => Proto::Unknown(format!(
            "protocol {} is not modelled (tcp, udp, icmp and all are)",
            crate::escape::line(other)
        )),
    }
}

/// How AWS's FromPort and ToPort map to a tcplab rule's ports.
#[derive(Debug, PartialEq)]
pub(super) enum Ports {
    /// Exactly these ports (`None`: all).
    Exact(Option<PortRange>),
    /// An ICMP type or code, matched as all ICMP.
    IcmpWidened,
    /// Port 0 alone, which no traffic uses.
    PortZero,
}

/// The ports of a rule for `protocol` from AWS's FromPort and ToPort (an ICMP type and code
/// for ICMP, ignored for all protocols); an error for a range AWS never prints.
pub(super) fn ports(
    protocol: Protocol,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Ports, String> {
    match protocol {
        Protocol::All => Ok(Ports::Exact(None)),
        Protocol::Icmp => match (from, to) {
            (None | Some(-1), None | Some(-1)) => Ok(Ports::Exact(None)),
            _ => Ok(Ports::IcmpWidened),
        },
        Protocol::Tcp | Protocol::Udp => match (from, to) {
            (None, None) | (Some(-1), Some(-1)) => Ok(Ports::Exact(None)),
            (Some(f), Some(t)) if (0..=65535).contains(&f) && (f..=65535).contains(&t) => {
                let (f, t) = (f as u16, t as u16);
                Ok(match (f, t) {
                    (_, 0) => Ports::PortZero,
                    (0 | 1, 65535) => Ports::Exact(None),
                    (f, t) => Ports::Exact(Some(PortRange {
                        first: f.max(1),
                        last: t,
                    })),
                })
            }
            (f, t) => Err(format!(
                "ports {} to {} are not a range: give 0 to 65535, the first no larger than the last",
                f.map_or("(none)".into(), |v| v.to_string()),
                t.map_or("(none)".into(), |v| v.to_string()),
            )),
        },
    }
}

/// A protocol and its ports as a person reads them, e.g. `tcp 80-443`.
pub(super) fn describe(protocol: &str, from: Option<i64>, to: Option<i64>) -> String {
    let p = match parse_protocol(protocol) {
        Proto::Known(Protocol::Icmp) => {
            return match (from, to) {
                (Some(f), Some(c)) if f != -1 => format!("icmp type {f} code {c}"),
                (Some(f), _) if f != -1 => format!("icmp type {f}"),
                _ => "icmp".into(),
            };
        }
        Proto::Known(Protocol::All) => return "all traffic".into(),
        Proto::Known(p) => p.to_string(),
        Proto::Unknown(_) => format!("protocol {}", crate::escape::line(protocol)),
    };
    match (from, to) {
        (Some(f), Some(t)) if f == t && f != -1 => format!("{p} {f}"),
        (Some(f), Some(t)) if f != -1 => format!("{p} {f}-{t}"),
        _ => p,
    }
}
