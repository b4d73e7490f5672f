//! Where each rule of a lab comes from: the security group rule, the groups' implicit deny,
//! the groups' connection tracking, or the firewall rule of the topology or a scenario step.
//! Every rule tcplab loads carries its origin, so a traced packet is tied to it without
//! guessing.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::spec::{
    AclAction, AclEntry, Action, Allow, HostChain, Placement, Resolved, ResolvedFirewall,
};

/// Which way a security group rule looks, from the instance's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupDirection {
    /// Traffic to the instance.
    Ingress,
    /// Traffic from the instance.
    Egress,
}

impl fmt::Display for GroupDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GroupDirection::Ingress => "ingress",
            GroupDirection::Egress => "egress",
        })
    }
}

/// Which way a network ACL entry looks, from the subnet's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AclDirection {
    /// Traffic entering the subnet.
    Inbound,
    /// Traffic leaving the subnet.
    Outbound,
}

impl fmt::Display for AclDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AclDirection::Inbound => "inbound",
            AclDirection::Outbound => "outbound",
        })
    }
}

/// The element of the topology or scenario that made a rule of the lab.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Origin {
    /// Security groups are stateful: packets of a connection they let through, both ways,
    /// pass whatever the rules say.
    Established,
    /// A security group rule that lets the packet through.
    GroupRule {
        /// The group.
        group: String,
        /// The instance the group is on.
        host: String,
        /// Ingress or egress.
        direction: GroupDirection,
        /// The rule's number in the group's list, from 1.
        number: usize,
        /// The rule, e.g. `tcp/1234 from 10.0.0.0/16`.
        rule: String,
    },
    /// No rule of the instance's security groups allows the packet: their implicit deny.
    GroupDeny {
        /// The instance.
        host: String,
        /// Its groups.
        groups: Vec<String>,
        /// Ingress or egress.
        direction: GroupDirection,
    },
    /// A firewall rule.
    Firewall {
        /// Its number in the list it came from, from 1.
        number: usize,
        /// `fabric`, or the host it is on.
        on: String,
        /// On a host: `input` or `output`.
        chain: Option<String>,
        /// What it does.
        action: Action,
        /// The rule, e.g. `drop tcp/1234 to 10.0.0.58`.
        rule: String,
    },
    /// A network ACL entry, or its final implicit deny (`number` is `None`, AWS's `*`).
    AclEntry {
        /// The ACL.
        acl: String,
        /// The subnet it guards.
        subnet: String,
        /// Inbound or outbound.
        direction: AclDirection,
        /// The entry's number; `None` for the final `*` deny.
        number: Option<i64>,
        /// Allow or deny.
        action: AclAction,
        /// The entry, e.g. `tcp/1024-65535 to 10.0.0.0/16`.
        rule: String,
    },
    /// A VPC delivers no broadcast or multicast.
    NoBroadcast,
    /// A route of a subnet's route table that drops what it carries (`blackhole`).
    Route {
        /// The subnet whose table it is.
        subnet: String,
        /// The table's name; `None` when the subnet has only the `local` route.
        table: Option<String>,
        /// The route's destination.
        destination: String,
        /// Its target, e.g. `blackhole`.
        target: String,
    },
    /// A link impairment of a host: an exact drop of the first packets that match.
    Impairment {
        /// The host whose link it is.
        host: String,
        /// Which way: what the host sends (egress) or receives (ingress).
        direction: crate::spec::LinkDirection,
        /// What it does, e.g. `drop the first tcp SYN packet`.
        what: String,
    },
    /// An address of a subnet that no instance holds (or the VPC router's own): AWS drops
    /// what is sent there, without an answer.
    NoInstance {
        /// The subnet.
        subnet: String,
        /// The address, or the subnet's CIDR for any address nobody holds.
        address: String,
    },
    /// No route of the subnet's table covers the destination: AWS drops the packet.
    NoRoute {
        /// The subnet whose table it is.
        subnet: String,
        /// The table's name; `None` when the subnet has only the `local` route.
        table: Option<String>,
    },
}

impl Origin {
    /// Whether the rule answers the packets it stops (with a reset or an ICMP error) rather
    /// than dropping them silently.
    pub fn rejects(&self) -> bool {
        match self {
            Origin::Firewall { action, .. } => *action != Action::Drop,
            Origin::Route { target, .. } => target == "unreachable" || target == "prohibit",
            _ => false,
        }
    }

    /// The name a `dropped-by` expectation gives it: `security-group:NAME` (each group of a
    /// deny), `firewall:N`, `firewall:HOST` for a rule on a host, or `established`.
    pub fn names(&self) -> Vec<String> {
        match self {
            Origin::Established => vec!["established".into()],
            Origin::GroupRule { group, .. } => vec![format!("security-group:{group}")],
            Origin::GroupDeny { groups, .. } => groups
                .iter()
                .map(|g| format!("security-group:{g}"))
                .collect(),
            Origin::Firewall { number, on, .. } => {
                let mut names = vec![format!("firewall:{number}")];
                if on != "fabric" {
                    names.push(format!("firewall:{on}"));
                }
                names
            }
            Origin::AclEntry { acl, .. } => vec![format!("network-acl:{acl}")],
            Origin::Impairment { host, .. } => vec![format!("impairment:{host}")],
            Origin::NoBroadcast => vec!["vpc:broadcast".into()],
            Origin::NoInstance { subnet, .. } => vec![format!("vpc:{subnet}")],
            Origin::Route { subnet, table, .. } | Origin::NoRoute { subnet, table } => {
                let mut names = vec![format!("route-table:{subnet}")];
                if let Some(t) = table {
                    names.push(format!("route-table:{t}"));
                }
                names
            }
        }
    }

    pub(crate) fn acl_entry(
        acl: &str,
        subnet: &str,
        direction: AclDirection,
        entry: Option<&AclEntry>,
    ) -> Origin {
        let (number, action, rule) = match entry {
            Some(e) => {
                let ports = e.ports.map(|p| format!("/{p}")).unwrap_or_default();
                let way = match direction {
                    AclDirection::Inbound => "from",
                    AclDirection::Outbound => "to",
                };
                (
                    Some(e.rule),
                    e.action,
                    format!("{}{ports} {way} {}", e.protocol, e.cidr),
                )
            }
            None => (None, AclAction::Deny, "everything".to_string()),
        };
        Origin::AclEntry {
            acl: acl.to_string(),
            subnet: subnet.to_string(),
            direction,
            number,
            action,
            rule,
        }
    }

    pub(crate) fn group_rule(host: &str, direction: GroupDirection, allow: &Allow) -> Origin {
        let ports = allow.ports.map(|p| format!("/{p}")).unwrap_or_default();
        let way = match direction {
            GroupDirection::Ingress => "from",
            GroupDirection::Egress => "to",
        };
        Origin::GroupRule {
            group: allow.group.clone(),
            host: host.to_string(),
            direction,
            number: allow.number,
            rule: format!("{}{ports} {way} {}", allow.protocol, allow.peer),
        }
    }

    pub(crate) fn firewall(r: &Resolved, f: &ResolvedFirewall) -> Origin {
        let (on, chain) = match f.placement {
            Placement::Fabric | Placement::Router => ("fabric".to_string(), None),
            Placement::Host(i) => (
                r.hosts.get(i).map(|h| h.name.clone()).unwrap_or_default(),
                Some(
                    match f.chain {
                        HostChain::Input => "input",
                        HostChain::Output => "output",
                    }
                    .to_string(),
                ),
            ),
        };
        let mut rule = format!("{} {}", f.action, f.protocol);
        if let Some(p) = f.port {
            rule.push_str(&format!("/{p}"));
        }
        let net = |n: ipnet::Ipv4Net| {
            if n.prefix_len() == 32 {
                n.addr().to_string()
            } else {
                n.to_string()
            }
        };
        if let Some(s) = f.source {
            rule.push_str(&format!(" from {}", net(s)));
        }
        if let Some(d) = f.destination {
            rule.push_str(&format!(" to {}", net(d)));
        }
        Origin::Firewall {
            number: f.number,
            on,
            chain,
            action: f.action,
            rule,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Established => {
                write!(f, "established connection (security groups are stateful)")
            }
            Origin::GroupRule {
                group,
                host,
                direction,
                number,
                rule,
            } => write!(
                f,
                "security group {group} (on {host}): {direction} rule {number} allows {rule}"
            ),
            Origin::GroupDeny {
                host,
                groups,
                direction,
            } => {
                let s = if groups.len() == 1 { "" } else { "s" };
                write!(
                    f,
                    "security group{s} {} (on {host}): no {direction} rule allows it",
                    groups.join(", ")
                )
            }
            Origin::Firewall {
                number,
                on,
                chain,
                rule,
                ..
            } => match chain {
                None => write!(f, "firewall #{number} ({on}): {rule}"),
                Some(chain) => write!(f, "firewall #{number} (on {on}, {chain}): {rule}"),
            },
            Origin::AclEntry {
                acl,
                subnet,
                direction,
                number,
                action,
                rule,
            } => match number {
                Some(n) => write!(
                    f,
                    "network ACL {acl} (subnet {subnet}): {direction} rule {n} {}s {rule}",
                    match action {
                        AclAction::Allow => "allow",
                        AclAction::Deny => "denie",
                    }
                ),
                None => write!(
                    f,
                    "network ACL {acl} (subnet {subnet}): no {direction} rule matches (the final * deny)"
                ),
            },
            Origin::NoBroadcast => write!(f, "the VPC: broadcast and multicast are not delivered"),
            Origin::Impairment {
                host,
                direction,
                what,
            } => write!(f, "impairment of host {host}'s link ({direction}): {what}"),
            Origin::Route {
                subnet,
                table,
                destination,
                target,
            } => {
                let table = table
                    .as_deref()
                    .map_or_else(|| "its table".to_string(), |t| format!("route table {t}"));
                write!(
                    f,
                    "{table} (subnet {subnet}): route to {destination} is {target}"
                )
            }
            Origin::NoInstance { subnet, address } => write!(
                f,
                "the VPC (subnet {subnet}): no instance holds {address}, the router drops it"
            ),
            Origin::NoRoute { subnet, table } => {
                let table = table
                    .as_deref()
                    .map_or_else(|| "its table".to_string(), |t| format!("route table {t}"));
                write!(f, "{table} (subnet {subnet}): no route to the destination")
            }
        }
    }
}
