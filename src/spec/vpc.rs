//! A VPC beyond one subnet (`[vpc]`): subnets, each its own broadcast domain, joined by the
//! VPC router; a route table per subnet; network ACLs at each subnet's boundary. As written,
//! then resolved: names checked, tables and ACLs attached to their subnets, ACL entries in
//! the order AWS evaluates them.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::model::{PortRange, Protocol};
use super::resolve::{FieldPath, ValidationError, at, invalid};

/// A VPC: its CIDR, its subnets, route tables and network ACLs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vpc {
    /// The VPC's CIDR; every subnet sits inside it.
    pub cidr: Ipv4Net,
    /// Deliver broadcast and multicast inside each subnet (an AWS VPC does not).
    #[serde(default)]
    pub broadcast: bool,
    /// The subnets (`[[vpc.subnet]]`).
    #[serde(default, rename = "subnet")]
    pub subnets: Vec<SubnetSpec>,
    /// Route tables (`[[vpc.route_table]]`).
    #[serde(default, rename = "route_table")]
    pub route_tables: Vec<RouteTable>,
    /// Network ACLs (`[[vpc.network_acl]]`).
    #[serde(default, rename = "network_acl")]
    pub network_acls: Vec<NetworkAcl>,
}

/// A subnet of a VPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetSpec {
    /// Its name, which hosts' `subnet` refers to; like a host's name.
    pub name: String,
    /// Its CIDR, inside the VPC's.
    pub cidr: Ipv4Net,
    /// Its route table; without one, only the VPC's `local` route (every subnet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_table: Option<String>,
    /// Its network ACL; without one, AWS's default ACL: everything allowed both ways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_acl: Option<String>,
}

/// A route table: routes besides the implicit `local` route of the VPC's CIDR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTable {
    /// Its name, which subnets' `route_table` refers to.
    pub name: String,
    /// Its routes; the most specific destination wins.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// A route: a destination and where it goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The destination CIDR.
    pub destination: Ipv4Net,
    /// Where packets to it go.
    pub target: RouteTarget,
}

/// Where a route sends packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    /// `instance:NAME`: a host of the VPC acting as an appliance (it forwards).
    Instance(String),
    /// `blackhole`: dropped silently, as AWS does when a route's target is gone.
    Blackhole,
    /// `unreachable`: answered with ICMP host unreachable (an on-premises router would).
    Unreachable,
    /// `prohibit`: answered with ICMP administratively prohibited.
    Prohibit,
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteTarget::Instance(h) => write!(f, "instance:{h}"),
            RouteTarget::Blackhole => f.write_str("blackhole"),
            RouteTarget::Unreachable => f.write_str("unreachable"),
            RouteTarget::Prohibit => f.write_str("prohibit"),
        }
    }
}

impl FromStr for RouteTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "blackhole" => Ok(RouteTarget::Blackhole),
            "unreachable" => Ok(RouteTarget::Unreachable),
            "prohibit" => Ok(RouteTarget::Prohibit),
            _ => match s.strip_prefix("instance:") {
                Some(h) if !h.is_empty() => Ok(RouteTarget::Instance(h.to_string())),
                _ => Err(format!(
                    "`{s}` is not a route target: use `instance:HOST`, `blackhole`, `unreachable` or `prohibit`"
                )),
            },
        }
    }
}

impl Serialize for RouteTarget {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RouteTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A network ACL: stateless, numbered entries each way, the lowest matching number wins,
/// and what no entry matches is denied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkAcl {
    /// Its name, which subnets' `network_acl` refers to.
    pub name: String,
    /// Entries for traffic entering the subnet.
    #[serde(default)]
    pub inbound: Vec<AclEntry>,
    /// Entries for traffic leaving the subnet.
    #[serde(default)]
    pub outbound: Vec<AclEntry>,
}

/// One numbered entry of a network ACL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclEntry {
    /// Its number, 1 to 32766: entries are evaluated in ascending order.
    pub rule: i64,
    /// `allow` or `deny`.
    pub action: AclAction,
    /// `tcp`, `udp`, `icmp` or `all`.
    pub protocol: Protocol,
    /// For tcp and udp: the ports (destination ports), e.g. `1234` or `"1024-65535"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortRange>,
    /// The other end: the source for inbound entries, the destination for outbound ones.
    pub cidr: Ipv4Net,
}

/// What a network ACL entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AclAction {
    /// Lets the packet through.
    Allow,
    /// Drops it silently.
    Deny,
}

impl fmt::Display for AclAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AclAction::Allow => "allow",
            AclAction::Deny => "deny",
        })
    }
}

/// Highest entry number AWS accepts.
pub const MAX_ACL_RULE: i64 = 32766;

/// A subnet ready to build.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedSubnet {
    /// Its name.
    pub name: String,
    /// Its CIDR.
    pub cidr: Ipv4Net,
    /// The VPC router's address in it: the first address after the network's, as in AWS.
    pub router: Ipv4Addr,
    /// Its route table's name, if it has one.
    pub route_table: Option<String>,
    /// Its routes besides `local`.
    pub routes: Vec<ResolvedRoute>,
    /// Its network ACL, entries sorted by number; `None` is AWS's default ACL (allow all).
    pub acl: Option<ResolvedAcl>,
}

/// A route with its target's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRoute {
    /// The destination.
    pub destination: Ipv4Net,
    /// The target as written.
    pub target: RouteTarget,
    /// For an instance target: its address, and the index of its subnet.
    pub via: Option<(Ipv4Addr, usize)>,
}

/// A network ACL with its entries in evaluation order.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedAcl {
    /// Its name.
    pub name: String,
    /// Inbound entries, by ascending number.
    pub inbound: Vec<AclEntry>,
    /// Outbound entries, by ascending number.
    pub outbound: Vec<AclEntry>,
}

/// A VPC ready to build.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedVpc {
    /// The VPC's CIDR.
    pub cidr: Ipv4Net,
    /// Whether broadcast and multicast are delivered.
    pub broadcast: bool,
    /// The subnets.
    pub subnets: Vec<ResolvedSubnet>,
}

/// Checks the VPC's own parts (before hosts): subnets inside the VPC and apart from each
/// other, names unique, tables and ACLs that exist, entries numbered and unique.
pub(crate) fn check(vpc: &Vpc) -> Result<(), ValidationError> {
    let base = at("vpc");
    super::subnet::check_subnet(vpc.cidr, 0).map_err(|m| invalid(base.key("cidr"), m))?;
    if vpc.subnets.is_empty() {
        return Err(invalid(
            base.key("subnet"),
            "a VPC needs at least one [[vpc.subnet]] with a name and a cidr",
        ));
    }
    let tables: HashSet<&str> = names(&vpc.route_tables, |t| &t.name, base.key("route_table"))?;
    let acls: HashSet<&str> = names(&vpc.network_acls, |a| &a.name, base.key("network_acl"))?;
    names(&vpc.subnets, |s| &s.name, base.key("subnet"))?;
    for (i, s) in vpc.subnets.iter().enumerate() {
        let path = base.key("subnet").index(i);
        super::resolve::check_name(&s.name).map_err(|m| invalid(path.key("name"), m))?;
        super::subnet::check_subnet(s.cidr, 0).map_err(|m| invalid(path.key("cidr"), m))?;
        if !vpc.cidr.contains(&s.cidr) {
            return Err(invalid(
                path.key("cidr"),
                format!("{} is not inside the VPC's {}", s.cidr, vpc.cidr),
            ));
        }
        if s.cidr.prefix_len() > 28 {
            return Err(invalid(
                path.key("cidr"),
                format!(
                    "/{} is smaller than AWS allows: a subnet is /16 to /28",
                    s.cidr.prefix_len()
                ),
            ));
        }
        if let Some(other) = vpc.subnets[..i]
            .iter()
            .find(|o| o.cidr.contains(&s.cidr.network()) || s.cidr.contains(&o.cidr.network()))
        {
            return Err(invalid(
                path.key("cidr"),
                format!(
                    "{} overlaps subnet `{}` ({})",
                    s.cidr, other.name, other.cidr
                ),
            ));
        }
        if let Some(t) = &s.route_table
            && !tables.contains(t.as_str())
        {
            return Err(invalid(
                path.key("route_table"),
                format!("no route table named `{t}`"),
            ));
        }
        if let Some(a) = &s.network_acl
            && !acls.contains(a.as_str())
        {
            return Err(invalid(
                path.key("network_acl"),
                format!("no network ACL named `{a}`"),
            ));
        }
    }
    for (i, acl) in vpc.network_acls.iter().enumerate() {
        let path = base.key("network_acl").index(i);
        for (key, entries) in [("inbound", &acl.inbound), ("outbound", &acl.outbound)] {
            let mut seen = HashSet::new();
            for (j, e) in entries.iter().enumerate() {
                let p = path.key(key).index(j);
                if !(1..=MAX_ACL_RULE).contains(&e.rule) {
                    return Err(invalid(
                        p.key("rule"),
                        format!("{} is not an entry number: use 1 to {MAX_ACL_RULE}", e.rule),
                    ));
                }
                if !seen.insert(e.rule) {
                    return Err(invalid(
                        p.key("rule"),
                        format!(
                            "entry {} is already used in {key}: numbers are unique",
                            e.rule
                        ),
                    ));
                }
                if e.ports.is_some() && !e.protocol.has_ports() {
                    return Err(invalid(
                        p.key("ports"),
                        format!("{} has no ports: remove them", e.protocol),
                    ));
                }
            }
        }
    }
    for (i, t) in vpc.route_tables.iter().enumerate() {
        for (j, r) in t.routes.iter().enumerate() {
            let p = base.key("route_table").index(i).key("routes").index(j);
            if r.destination != r.destination.trunc() {
                return Err(invalid(
                    p.key("destination"),
                    format!(
                        "{} has host bits set: write the network, {}",
                        r.destination,
                        r.destination.trunc()
                    ),
                ));
            }
            if vpc.cidr.contains(&r.destination)
                && r.destination.prefix_len() <= vpc.cidr.prefix_len()
            {
                return Err(invalid(
                    p.key("destination"),
                    format!(
                        "{} is the VPC's own range: the `local` route covers it and cannot be replaced",
                        r.destination
                    ),
                ));
            }
            if vpc.cidr.contains(&r.destination)
                && !vpc.subnets.iter().any(|sub| sub.cidr == r.destination)
            {
                return Err(invalid(
                    p.key("destination"),
                    format!(
                        "{} is inside the VPC: a route there must be exactly a subnet's CIDR (routing a subnet through an appliance), as AWS requires",
                        r.destination
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn names<'a, T>(
    items: &'a [T],
    name: impl Fn(&'a T) -> &'a String,
    path: FieldPath,
) -> Result<HashSet<&'a str>, ValidationError> {
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let n = name(item);
        if !seen.insert(n.as_str()) {
            return Err(invalid(
                path.index(i).key("name"),
                format!("`{n}` is already taken: names must be unique"),
            ));
        }
    }
    Ok(seen)
}

/// The VPC with its tables and ACLs attached to subnets; `address_of` finds an appliance
/// instance's address and subnet.
pub(crate) fn resolve(
    vpc: &Vpc,
    address_of: &HashMap<&str, (Ipv4Addr, usize)>,
) -> Result<ResolvedVpc, ValidationError> {
    let mut subnets = Vec::with_capacity(vpc.subnets.len());
    for s in &vpc.subnets {
        let table = s
            .route_table
            .as_ref()
            .and_then(|t| vpc.route_tables.iter().position(|x| &x.name == t));
        let mut routes = Vec::new();
        if let Some(ti) = table {
            for (j, r) in vpc.route_tables[ti].routes.iter().enumerate() {
                let via = match &r.target {
                    RouteTarget::Instance(h) => {
                        Some(*address_of.get(h.as_str()).ok_or_else(|| {
                            invalid(
                                at("vpc")
                                    .key("route_table")
                                    .index(ti)
                                    .key("routes")
                                    .index(j)
                                    .key("target"),
                                format!("no host named `{h}`"),
                            )
                        })?)
                    }
                    _ => None,
                };
                routes.push(ResolvedRoute {
                    destination: r.destination,
                    target: r.target.clone(),
                    via,
                });
            }
        }
        let acl = s.network_acl.as_ref().and_then(|a| {
            vpc.network_acls.iter().find(|x| &x.name == a).map(|acl| {
                let sorted = |entries: &[AclEntry]| {
                    let mut v = entries.to_vec();
                    v.sort_by_key(|e| e.rule);
                    v
                };
                ResolvedAcl {
                    name: acl.name.clone(),
                    inbound: sorted(&acl.inbound),
                    outbound: sorted(&acl.outbound),
                }
            })
        });
        subnets.push(ResolvedSubnet {
            name: s.name.clone(),
            cidr: s.cidr,
            router: router_address(s.cidr),
            route_table: s.route_table.clone(),
            routes,
            acl,
        });
    }
    Ok(ResolvedVpc {
        cidr: vpc.cidr,
        broadcast: vpc.broadcast,
        subnets,
    })
}

/// The VPC router's address in a subnet: network + 1.
pub fn router_address(cidr: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.network()) + 1)
}
