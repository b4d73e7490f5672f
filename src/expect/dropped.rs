//! The `dropped-by` and `allowed-by` expectations: the packets to a server that the lab's
//! rules stopped were all stopped by one security group, firewall rule, or host's firewall;
//! or a security group rule (or connection tracking) let packets to it through.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use super::Evidence;
use crate::attribution::{Fate, Passage};
use crate::firewall::Origin;
use crate::units::fmt_secs;

/// A rule of the lab as an expectation names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleName {
    /// `security-group:NAME`: a rule of the group, or the implicit deny of the instance's
    /// groups when the group is one of them.
    SecurityGroup(String),
    /// `firewall:N`: the N-th firewall rule (from 1) of the topology or of the firewall step
    /// in force.
    Firewall(usize),
    /// `firewall:HOST`: any firewall rule on that host.
    HostFirewall(String),
    /// `established`: the security groups' connection tracking, which lets the packets of
    /// a connection they allowed through whatever their rules say.
    Established,
    /// `network-acl:NAME`: an entry of the network ACL, or its final deny.
    NetworkAcl(String),
    /// `route-table:NAME`: a blackhole route of the table (or of the subnet of that name's
    /// table), or the absence of a route.
    RouteTable(String),
    /// `impairment:HOST`: an exact drop (`drop = { first = N }`) of the host's link.
    Impairment(String),
}

impl RuleName {
    /// Reads `security-group:NAME`, `firewall:N`, `firewall:HOST` or `established`.
    pub fn parse(s: &str) -> Result<RuleName, String> {
        let usage = "should be `security-group:NAME`, `firewall:N` (its number, from 1), `firewall:HOST`, `network-acl:NAME`, `route-table:NAME`, `impairment:HOST` or `established`";
        if s == "established" {
            return Ok(RuleName::Established);
        }
        let (kind, name) = s.split_once(':').ok_or_else(|| format!("`{s}` {usage}"))?;
        if name.is_empty() {
            return Err(format!("`{s}` names nothing: it {usage}"));
        }
        match kind {
            "security-group" => Ok(RuleName::SecurityGroup(name.to_string())),
            "network-acl" => Ok(RuleName::NetworkAcl(name.to_string())),
            "route-table" => Ok(RuleName::RouteTable(name.to_string())),
            "impairment" => Ok(RuleName::Impairment(name.to_string())),
            "firewall" => match name.parse::<usize>() {
                Ok(0) => Err(format!("`{s}`: firewall rules count from 1")),
                Ok(n) => Ok(RuleName::Firewall(n)),
                Err(_) if name.chars().all(|c| c.is_ascii_digit()) => {
                    Err(format!("`{s}`: no firewall has that many rules"))
                }
                Err(_) => Ok(RuleName::HostFirewall(name.to_string())),
            },
            _ => Err(format!("`{s}` {usage}")),
        }
    }

    /// Whether the rule `origin` is one this name stands for.
    pub fn names(&self, origin: &Origin) -> bool {
        match (self, origin) {
            (RuleName::SecurityGroup(g), Origin::GroupRule { group, .. }) => g == group,
            (RuleName::SecurityGroup(g), Origin::GroupDeny { groups, .. }) => groups.contains(g),
            (RuleName::Firewall(n), Origin::Firewall { number, .. }) => n == number,
            (RuleName::HostFirewall(h), Origin::Firewall { on, .. }) => h == on,
            (RuleName::Established, Origin::Established) => true,
            (RuleName::NetworkAcl(a), Origin::AclEntry { acl, .. }) => a == acl,
            (
                RuleName::RouteTable(t),
                Origin::Route { subnet, table, .. } | Origin::NoRoute { subnet, table },
            ) => t == subnet || table.as_ref() == Some(t),
            (RuleName::Impairment(h), Origin::Impairment { host, .. }) => h == host,
            _ => false,
        }
    }
}

impl fmt::Display for RuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleName::SecurityGroup(g) => write!(f, "security-group:{g}"),
            RuleName::Firewall(n) => write!(f, "firewall:{n}"),
            RuleName::HostFirewall(h) => write!(f, "firewall:{h}"),
            RuleName::Established => write!(f, "established"),
            RuleName::NetworkAcl(a) => write!(f, "network-acl:{a}"),
            RuleName::RouteTable(t) => write!(f, "route-table:{t}"),
            RuleName::Impairment(h) => write!(f, "impairment:{h}"),
        }
    }
}

/// Checks that packets of the flows to `server` (with `from`), either way, were stopped, all
/// by `by`.
pub(super) fn dropped_by(
    ev: &Evidence,
    server: SocketAddrV4,
    from: Option<Ipv4Addr>,
    by: &RuleName,
) -> (bool, String) {
    let a = ev.attribution;
    if !a.traced {
        return (
            false,
            "expected packets tied to the rules that stopped them, saw none: the lab's rules did not trace packets".into(),
        );
    }
    let lost = if a.lost.is_empty() {
        String::new()
    } else {
        format!(
            " (trace events were lost in {}: this may be incomplete)",
            a.lost.join(", ")
        )
    };
    let towards: Vec<&Passage> = a.towards(*server.ip(), server.port(), from).collect();
    let (mine, others): (Vec<&Passage>, Vec<&Passage>) = towards
        .iter()
        .filter(|p| p.fate.stopped())
        .partition(|p| p.fate.stopped_by().is_some_and(|o| by.names(o)));
    if mine.is_empty() {
        let saw = if others.is_empty() {
            let passed = sums(&towards);
            if passed.is_empty() {
                "no packet to it met a rule of the lab".to_string()
            } else {
                format!("none stopped: {passed}")
            }
        } else {
            sums(&others)
        };
        return (
            false,
            format!("expected packets to {server} stopped by {by}, saw {saw}{lost}"),
        );
    }
    if !others.is_empty() {
        return (
            false,
            format!(
                "expected every stopped packet to {server} stopped by {by}, saw {}; and {}{lost}",
                sums(&mine),
                sums(&others)
            ),
        );
    }
    let first = mine
        .iter()
        .filter_map(|p| p.seen.first())
        .map(|s| s.at)
        .min()
        .map(|t| {
            format!(
                ", the first at {} s",
                fmt_secs(t.saturating_sub(ev.origin).as_secs_f64())
            )
        })
        .unwrap_or_default();
    (true, format!("{}{first}{lost}", sums(&mine)))
}

/// Checks that rules named by `by` let packets to `server` (from `from`) through.
pub(super) fn allowed_by(
    ev: &Evidence,
    server: SocketAddrV4,
    from: Option<Ipv4Addr>,
    by: &RuleName,
) -> (bool, String) {
    let a = ev.attribution;
    if !a.traced {
        return (
            false,
            "expected packets tied to the rules that let them through, saw none: the lab's rules did not trace packets".into(),
        );
    }
    let towards: Vec<&Passage> = a.towards(*server.ip(), server.port(), from).collect();
    let (mine, others): (Vec<&Passage>, Vec<&Passage>) =
        towards.iter().partition(|p| match &p.fate {
            Fate::Allowed { by: rules } => rules.iter().any(|o| by.names(o)),
            Fate::Established => *by == RuleName::Established,
            _ => false,
        });
    if !a.lost.is_empty() {
        return (
            false,
            format!(
                "expected every trace event of the rules, saw events lost in {}: cannot tell which rules let packets to {server} through",
                a.lost.join(", ")
            ),
        );
    }
    if mine.is_empty() {
        let saw = if others.is_empty() {
            "no packet to it met a rule of the lab".to_string()
        } else {
            sums(&others)
        };
        return (
            false,
            format!("expected packets to {server} let through by {by}, saw {saw}"),
        );
    }
    (true, sums(&mine))
}

/// `4 SYNs dropped by ...; 1 RST passed as part of an established connection`: passages
/// counted by packet kind and verdict, in order of first appearance.
fn sums(passages: &[&Passage]) -> String {
    let mut counts: Vec<(&'static str, String, usize)> = Vec::new();
    for p in passages {
        let verdict = p.verdict();
        let what = p.kind();
        match counts
            .iter_mut()
            .find(|(w, v, _)| *w == what && *v == verdict)
        {
            Some((_, _, n)) => *n += 1,
            None => counts.push((what, verdict, 1)),
        }
    }
    counts
        .into_iter()
        .map(|(what, verdict, n)| {
            let what = if n == 1 {
                format!("1 {what}")
            } else {
                format!("{n} {what}s")
            };
            format!("{what} {verdict}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_read_and_refused() {
        assert_eq!(
            RuleName::parse("security-group:web-sg"),
            Ok(RuleName::SecurityGroup("web-sg".into()))
        );
        assert_eq!(RuleName::parse("firewall:2"), Ok(RuleName::Firewall(2)));
        assert_eq!(
            RuleName::parse("firewall:server"),
            Ok(RuleName::HostFirewall("server".into()))
        );
        for bad in [
            "firewall:0",
            "firewall:",
            "sg:web",
            "web-sg",
            "firewall:99999999999999999999999",
        ] {
            let e = RuleName::parse(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }
}
