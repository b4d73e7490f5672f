//! Link impairments of a host's link (delay, jitter, loss, duplication, reordering,
//! corruption, rate, and an exact "drop the first N packets"), as written and as checked.
//!
//! A host's `impair` table gives settings for both directions at once, or an `egress` table
//! (what the host sends) and an `ingress` table (what it receives), never both kinds: a
//! setting given twice would need a rule for which wins.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::bounds::show;
use super::model::PortRange;
use super::resolve::{FieldPath, ValidationError, invalid};

/// The longest delay or jitter, in seconds.
pub const MAX_DELAY: f64 = 60.0;
/// The most packets a `drop` may drop.
pub const MAX_DROP_FIRST: u64 = 1_000_000;
/// The lowest rate, in bits per second (netem counts bytes per second).
pub const MIN_RATE: u64 = 8;
/// The highest rate, in bits per second: netem's 32-bit rate field holds bytes per second.
pub const MAX_RATE: u64 = 32_000_000_000;

/// Impairments of a host's link as written: settings for both directions, or one table per
/// direction (`egress`: what the host sends; `ingress`: what it receives).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Impair {
    /// Seconds each packet is held, both directions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<f64>,
    /// Seconds the delay varies by, up or down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<f64>,
    /// Percent of packets lost at random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Percent of packets sent twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
    /// Percent of packets sent at once, ahead of the delayed others (needs a delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<f64>,
    /// Percent of packets with a bit flipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<f64>,
    /// The link's rate, e.g. `"1mbit"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    /// Drops exactly the first N packets that match (not at random).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<DropFirst>,
    /// What the host sends (instead of the settings above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<LinkImpair>,
    /// What the host receives (instead of the settings above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<LinkImpair>,
}

/// Impairments of one direction of a link, as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkImpair {
    /// Seconds each packet is held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<f64>,
    /// Seconds the delay varies by, up or down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<f64>,
    /// Percent of packets lost at random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Percent of packets sent twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
    /// Percent of packets sent at once, ahead of the delayed others (needs a delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<f64>,
    /// Percent of packets with a bit flipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<f64>,
    /// The link's rate, e.g. `"1mbit"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    /// Drops exactly the first N packets that match (not at random).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<DropFirst>,
}

/// Drops exactly the first `first` packets that match, in one direction of a link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropFirst {
    /// How many packets, 1 to [`MAX_DROP_FIRST`].
    pub first: i64,
    /// Which packets: `syn` (TCP SYN without ACK), `psh` (TCP with PSH: data), `tcp`, `udp`,
    /// `icmp` or `all` (default).
    #[serde(default, rename = "match")]
    pub matching: DropMatch,
    /// Destination port or range (`syn`, `psh`, `tcp` and `udp` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortRange>,
}

/// The packets a [`DropFirst`] counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DropMatch {
    /// A TCP SYN without ACK: a connection's opening packet and its retransmissions.
    Syn,
    /// A TCP segment with PSH: Linux sets it on the segment that ends each write, so it is
    /// always data (never a bare ACK or a SYN); the first one is a connection's first data.
    Psh,
    /// Any TCP packet.
    Tcp,
    /// Any UDP datagram.
    Udp,
    /// Any ICMP message.
    Icmp,
    /// Every IPv4 packet.
    #[default]
    All,
}

impl fmt::Display for DropMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropMatch::Syn => "tcp SYN",
            DropMatch::Psh => "tcp PSH",
            DropMatch::Tcp => "tcp",
            DropMatch::Udp => "udp",
            DropMatch::Icmp => "icmp",
            DropMatch::All => "IPv4",
        })
    }
}

/// Which way a packet crosses a host's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkDirection {
    /// From the host.
    Egress,
    /// To the host.
    Ingress,
}

impl fmt::Display for LinkDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkDirection::Egress => "egress",
            LinkDirection::Ingress => "ingress",
        })
    }
}

/// One direction's impairments, checked.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Netem {
    /// How long each packet is held.
    pub delay: Duration,
    /// How much the delay varies, up or down.
    pub jitter: Duration,
    /// Percent duplicated.
    pub duplicate: f64,
    /// Percent reordered (sent without the delay).
    pub reorder: f64,
    /// Percent corrupted.
    pub corrupt: f64,
    /// Bits per second; `None`: no limit.
    pub rate: Option<u64>,
}

impl Netem {
    /// Whether it changes anything (no qdisc is needed when it does not).
    pub fn is_none(&self) -> bool {
        *self == Netem::default()
    }
}

/// An exact drop, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedDrop {
    /// How many packets.
    pub first: u64,
    /// Which packets.
    pub matching: DropMatch,
    /// Their destination ports.
    pub port: Option<PortRange>,
}

impl fmt::Display for ResolvedDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == 1 {
            write!(f, "drop the first {} packet", self.matching)?;
        } else {
            write!(f, "drop the first {} {} packets", self.first, self.matching)?;
        }
        if let Some(p) = self.port {
            write!(f, " to port {p}")?;
        }
        Ok(())
    }
}

/// One direction of a link, checked.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkImpairment {
    /// What netem does.
    pub netem: Netem,
    /// Percent of packets lost at random, 0 to 100 (an nftables rule, not netem: see
    /// `lab::impair`).
    pub loss: f64,
    /// The exact drop, if any.
    pub drop: Option<ResolvedDrop>,
}

/// Both directions of a host's link, checked.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Impairment {
    /// What the host sends.
    pub egress: LinkImpairment,
    /// What the host receives.
    pub ingress: LinkImpairment,
}

impl Impairment {
    /// One direction.
    pub fn get(&self, direction: LinkDirection) -> &LinkImpairment {
        match direction {
            LinkDirection::Egress => &self.egress,
            LinkDirection::Ingress => &self.ingress,
        }
    }

    /// Whether the link is left as it is.
    pub fn is_none(&self) -> bool {
        *self == Impairment::default()
    }
}

impl Impair {
    /// Checks the settings; `path` is where the `impair` table sits, for errors.
    pub fn resolve(&self, path: &FieldPath) -> Result<Impairment, ValidationError> {
        let both = LinkImpair {
            delay: self.delay,
            jitter: self.jitter,
            loss: self.loss,
            duplicate: self.duplicate,
            reorder: self.reorder,
            corrupt: self.corrupt,
            rate: self.rate.clone(),
            drop: self.drop.clone(),
        };
        let given = both != LinkImpair::default();
        if given && (self.egress.is_some() || self.ingress.is_some()) {
            let key = if self.egress.is_some() {
                "egress"
            } else {
                "ingress"
            };
            return Err(invalid(
                path.key(key),
                "give settings for both directions or an `egress`/`ingress` table, not both",
            ));
        }
        if given {
            let link = both.resolve(path)?;
            return Ok(Impairment {
                egress: link,
                ingress: link,
            });
        }
        let one = |key: &'static str, l: &Option<LinkImpair>| match l {
            Some(l) => l.resolve(&path.key(key)),
            None => Ok(LinkImpairment::default()),
        };
        Ok(Impairment {
            egress: one("egress", &self.egress)?,
            ingress: one("ingress", &self.ingress)?,
        })
    }
}

impl LinkImpair {
    /// Checks one direction's settings; `path` is its table, for errors.
    pub fn resolve(&self, path: &FieldPath) -> Result<LinkImpairment, ValidationError> {
        let seconds = |key: &'static str, v: Option<f64>| -> Result<Duration, ValidationError> {
            match v {
                None => Ok(Duration::ZERO),
                Some(s) if s.is_finite() && (0.0..=MAX_DELAY).contains(&s) => {
                    Ok(Duration::from_secs_f64(s))
                }
                Some(s) => Err(invalid(
                    path.key(key),
                    format!(
                        "{} is not a {key} tcplab can use: give seconds from 0 to {MAX_DELAY}",
                        show(s)
                    ),
                )),
            }
        };
        let percent = |key: &'static str, v: Option<f64>| -> Result<f64, ValidationError> {
            match v {
                None => Ok(0.0),
                Some(p) if p.is_finite() && (0.0..=100.0).contains(&p) => Ok(p),
                Some(p) => Err(invalid(
                    path.key(key),
                    format!(
                        "{} is not a percentage: give {key} as a number from 0 to 100",
                        show(p)
                    ),
                )),
            }
        };
        let delay = seconds("delay", self.delay)?;
        let jitter = seconds("jitter", self.jitter)?;
        if !jitter.is_zero() && jitter > delay {
            return Err(invalid(
                path.key("jitter"),
                format!(
                    "jitter {} s is more than the delay {} s: jitter varies the delay up and down, so give a `delay` at least as large",
                    crate::units::fmt_secs(jitter.as_secs_f64()),
                    crate::units::fmt_secs(delay.as_secs_f64())
                ),
            ));
        }
        let reorder = percent("reorder", self.reorder)?;
        if reorder > 0.0 && delay.is_zero() {
            return Err(invalid(
                path.key("reorder"),
                "reordering sends some packets at once, ahead of the delayed rest: give a `delay` too",
            ));
        }
        let rate = match &self.rate {
            None => None,
            Some(text) => Some(parse_rate(text).map_err(|m| invalid(path.key("rate"), m))?),
        };
        let drop = match &self.drop {
            None => None,
            Some(d) => Some(d.resolve(&path.key("drop"))?),
        };
        Ok(LinkImpairment {
            loss: percent("loss", self.loss)?,
            netem: Netem {
                delay,
                jitter,
                duplicate: percent("duplicate", self.duplicate)?,
                reorder,
                corrupt: percent("corrupt", self.corrupt)?,
                rate,
            },
            drop,
        })
    }
}

impl DropFirst {
    fn resolve(&self, path: &FieldPath) -> Result<ResolvedDrop, ValidationError> {
        let first = u64::try_from(self.first)
            .ok()
            .filter(|n| (1..=MAX_DROP_FIRST).contains(n))
            .ok_or_else(|| {
                invalid(
                    path.key("first"),
                    format!(
                        "{} is not a number of packets to drop: give 1 to {MAX_DROP_FIRST}",
                        self.first
                    ),
                )
            })?;
        if self.port.is_some()
            && !matches!(
                self.matching,
                DropMatch::Syn | DropMatch::Psh | DropMatch::Tcp | DropMatch::Udp
            )
        {
            return Err(invalid(
                path.key("port"),
                format!(
                    "{} packets have no ports: remove `port`, or match \"syn\", \"psh\", \"tcp\" or \"udp\"",
                    self.matching
                ),
            ));
        }
        Ok(ResolvedDrop {
            first,
            matching: self.matching,
            port: self.port,
        })
    }
}

/// A rate as tc writes it: a number and `bit`, `kbit`, `mbit` or `gbit` (powers of 1000).
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "`{}` is not a rate: give a number and a unit, e.g. \"800kbit\", \"1mbit\" or \"1.5gbit\", from {MIN_RATE}bit to 32gbit",
            crate::escape::text(text)
        )
    };
    let t = text.trim().to_ascii_lowercase();
    let (number, scale) = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)]
        .iter()
        .find_map(|(unit, scale)| t.strip_suffix(unit).map(|n| (n.trim(), *scale)))
        .ok_or_else(bad)?;
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let bits = value * scale;
    if !bits.is_finite() || bits < MIN_RATE as f64 || bits > MAX_RATE as f64 {
        return Err(format!(
            "`{}` is out of range: give a rate from {MIN_RATE}bit to 32gbit",
            crate::escape::text(text)
        ));
    }
    Ok(bits.round() as u64)
}

impl fmt::Display for Netem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::units::fmt_secs;
        let mut parts = Vec::new();
        if !self.delay.is_zero() {
            let mut d = format!("delay {} s", fmt_secs(self.delay.as_secs_f64()));
            if !self.jitter.is_zero() {
                d.push_str(&format!(" ± {} s", fmt_secs(self.jitter.as_secs_f64())));
            }
            parts.push(d);
        }
        for (what, p) in [
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            if p > 0.0 {
                parts.push(format!("{what} {p}%"));
            }
        }
        if let Some(r) = self.rate {
            parts.push(format!("rate {r} bit/s"));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

impl fmt::Display for LinkImpairment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.netem.is_none() {
            parts.push(self.netem.to_string());
        }
        if self.loss > 0.0 {
            parts.push(format!("loss {}%", self.loss));
        }
        if let Some(d) = self.drop {
            parts.push(d.to_string());
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// `egress: delay 0.1 s; ingress: loss 2%`, or `none`.
impl fmt::Display for Impairment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let none = LinkImpairment::default();
        let parts: Vec<String> = [
            (LinkDirection::Egress, &self.egress),
            (LinkDirection::Ingress, &self.ingress),
        ]
        .into_iter()
        .filter(|(_, l)| **l != none)
        .map(|(d, l)| format!("{d} {l}"))
        .collect();
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::resolve_helpers::at;

    fn path() -> FieldPath {
        at("host").index(0).key("impair")
    }

    #[test]
    fn rates_read_as_tc_writes_them() {
        assert_eq!(parse_rate("1mbit"), Ok(1_000_000));
        assert_eq!(parse_rate("1.5gbit"), Ok(1_500_000_000));
        assert_eq!(parse_rate("800 kbit"), Ok(800_000));
        assert_eq!(parse_rate("8bit"), Ok(8));
        assert_eq!(parse_rate("32gbit"), Ok(MAX_RATE));
        for bad in [
            "", "mbit", "1", "1mb", "-1mbit", "7bit", "33gbit", "1e3mbit", "nanbit", "1..2mbit",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        assert!(parse_rate("33gbit").unwrap_err().contains("out of range"));
        assert!(parse_rate("0mbit").unwrap_err().contains("out of range"));
        assert!(parse_rate("fast").unwrap_err().contains("is not a rate"));
    }

    #[test]
    fn both_directions_or_one_table_each() {
        let both = Impair {
            delay: Some(0.1),
            ..Impair::default()
        };
        let r = both.resolve(&path()).unwrap();
        assert_eq!(r.egress.netem.delay, Duration::from_millis(100));
        assert_eq!(r.egress, r.ingress);
        let split = Impair {
            ingress: Some(LinkImpair {
                loss: Some(5.0),
                ..LinkImpair::default()
            }),
            ..Impair::default()
        };
        let r = split.resolve(&path()).unwrap();
        assert!(r.egress.netem.is_none());
        assert_eq!(r.ingress.loss, 5.0);
        assert!(r.ingress.netem.is_none(), "loss needs no netem");
        let mixed = Impair {
            delay: Some(0.1),
            egress: Some(LinkImpair::default()),
            ..Impair::default()
        };
        let e = mixed.resolve(&path()).unwrap_err();
        assert_eq!(e.path.to_string(), "host[0].impair.egress");
        assert!(Impair::default().resolve(&path()).unwrap().is_none());
    }

    #[test]
    fn bounds_are_refused_with_the_field() {
        let cases: Vec<(LinkImpair, &str, &str)> = vec![
            (
                LinkImpair {
                    delay: Some(61.0),
                    ..LinkImpair::default()
                },
                "delay",
                "61 is not a delay",
            ),
            (
                LinkImpair {
                    delay: Some(-0.5),
                    ..LinkImpair::default()
                },
                "delay",
                "-0.5 is not",
            ),
            (
                LinkImpair {
                    delay: Some(f64::NAN),
                    ..LinkImpair::default()
                },
                "delay",
                "nan is not",
            ),
            (
                LinkImpair {
                    loss: Some(100.5),
                    ..LinkImpair::default()
                },
                "loss",
                "not a percentage",
            ),
            (
                LinkImpair {
                    corrupt: Some(-1.0),
                    ..LinkImpair::default()
                },
                "corrupt",
                "not a percentage",
            ),
            (
                LinkImpair {
                    duplicate: Some(f64::INFINITY),
                    ..LinkImpair::default()
                },
                "duplicate",
                "inf is not",
            ),
            (
                LinkImpair {
                    jitter: Some(0.2),
                    delay: Some(0.1),
                    ..LinkImpair::default()
                },
                "jitter",
                "jitter 0.2 s is more than the delay 0.1 s",
            ),
            (
                LinkImpair {
                    reorder: Some(10.0),
                    ..LinkImpair::default()
                },
                "reorder",
                "give a `delay` too",
            ),
            (
                LinkImpair {
                    rate: Some("fast".into()),
                    ..LinkImpair::default()
                },
                "rate",
                "is not a rate",
            ),
            (
                LinkImpair {
                    drop: Some(DropFirst {
                        first: 0,
                        matching: DropMatch::Syn,
                        port: None,
                    }),
                    ..LinkImpair::default()
                },
                "drop.first",
                "give 1 to 1000000",
            ),
            (
                LinkImpair {
                    drop: Some(DropFirst {
                        first: 1,
                        matching: DropMatch::Icmp,
                        port: Some(PortRange::single(80)),
                    }),
                    ..LinkImpair::default()
                },
                "drop.port",
                "have no ports",
            ),
        ];
        for (link, key, text) in cases {
            let e = link.resolve(&path()).unwrap_err();
            assert_eq!(e.path.to_string(), format!("host[0].impair.{key}"), "{e}");
            assert!(e.message.contains(text), "{e}");
        }
        let ok = LinkImpair {
            delay: Some(60.0),
            jitter: Some(60.0),
            loss: Some(100.0),
            reorder: Some(0.0),
            ..LinkImpair::default()
        };
        assert!(ok.resolve(&path()).is_ok());
    }
}
