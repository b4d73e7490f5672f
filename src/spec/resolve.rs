//! Validation: a Topology becomes a Resolved one, with every name checked, every address
//! assigned and every group reference turned into addresses; or an error naming the field.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::bounds::{MAX_ENTRIES, MAX_EXPANDED_PEERS, MAX_HOSTS, count};
use super::model::{
    Action, BRIDGE, FABRIC, FirewallRule, HostChain, PortRange, Protocol, SgRule, Topology,
};
use super::subnet::check_subnet;

/// Where a field sits in the topology, e.g. `host[1].address`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPath(pub Vec<Segment>);

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A key of tcplab's format, e.g. `host`.
    Key(&'static str),
    /// A key the file chose, e.g. a host's name in `[sysctls.server]`.
    Name(String),
    /// An index into an array.
    Index(usize),
}

impl FieldPath {
    /// The path to `key` below this one.
    pub fn key(&self, key: &'static str) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Segment::Key(key));
        p
    }

    /// The path to a key the file chose.
    pub fn name(&self, name: &str) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Segment::Name(name.to_string()));
        p
    }

    /// The path to item `i` of the array at this path.
    pub fn index(&self, i: usize) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Segment::Index(i));
        p
    }
}

pub(crate) fn at(key: &'static str) -> FieldPath {
    FieldPath::default().key(key)
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                // Quoted as TOML quotes a key with dots or other characters in it.
                Segment::Name(n)
                    if n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
                {
                    write!(f, ".{n}")?
                }
                Segment::Name(n) => write!(f, ".{n:?}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A mistake in a topology: the field and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ValidationError {
    /// The field.
    pub path: FieldPath,
    /// What is wrong, and what to change.
    pub message: String,
}

pub(crate) fn invalid(path: FieldPath, message: impl Into<String>) -> ValidationError {
    ValidationError {
        path,
        message: message.into(),
    }
}

/// A topology ready to build: hosts with addresses, rules with addresses instead of names.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The subnet.
    pub subnet: Ipv4Net,
    /// The hosts, with their addresses.
    pub hosts: Vec<ResolvedHost>,
    /// The firewall rules, with addresses.
    pub firewalls: Vec<ResolvedFirewall>,
    /// The lab's private DNS domain, checked.
    pub domain: Option<String>,
    /// The VPC, when the topology has several subnets.
    pub vpc: Option<super::vpc::ResolvedVpc>,
}

/// A host ready to build: its address and what its security groups allow.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedHost {
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: Ipv4Addr,
    /// The host's security groups; none means nothing filters its traffic.
    pub security_groups: Vec<String>,
    /// Allowed inbound traffic (union of its groups); empty with groups means none.
    pub ingress: Vec<Allow>,
    /// Allowed outbound traffic; `None` means all (a group kept AWS's default egress rule).
    pub egress: Option<Vec<Allow>>,
    /// Its subnet: an index into the VPC's subnets (0 without a VPC).
    pub subnet: usize,
    /// The prefix length of its subnet.
    pub prefix_len: u8,
    /// The VPC router's address in its subnet: its default route (none without a VPC).
    pub gateway: Option<Ipv4Addr>,
    /// Impairments of its link, each direction.
    pub impair: super::impair::Impairment,
}

impl ResolvedHost {
    /// Whether a security group filters its traffic.
    pub fn guarded(&self) -> bool {
        !self.security_groups.is_empty()
    }
}

/// Traffic a security group allows: protocol, ports, and the peer's networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    /// The protocol.
    pub protocol: Protocol,
    /// The ports; all when `None`.
    pub ports: Option<PortRange>,
    /// The peers' networks.
    pub peers: Vec<Ipv4Net>,
    /// The security group whose rule this is.
    pub group: String,
    /// The rule's number in the group's ingress or egress list, from 1.
    pub number: usize,
    /// The peer as the rule names it: a CIDR, or `group NAME`.
    pub peer: String,
}

/// Where a firewall rule sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    /// In the network between the hosts, on the sender's bridge port.
    Fabric,
    /// A host, by index into `Resolved::hosts`.
    Host(usize),
    /// The VPC router, where network ACLs sit.
    Router,
}

/// A firewall rule with addresses instead of names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedFirewall {
    /// Its number in the list it came from (the topology's `[[firewall]]` entries, or a
    /// firewall step's rules), from 1.
    pub number: usize,
    /// Where it sits.
    pub placement: Placement,
    /// On a host: the chain.
    pub chain: HostChain,
    /// What it does.
    pub action: Action,
    /// The protocol it matches.
    pub protocol: Protocol,
    /// The destination ports it matches; all when `None`.
    pub port: Option<PortRange>,
    /// The source network it matches; any when `None`.
    pub source: Option<Ipv4Net>,
    /// The destination network it matches; any when `None`.
    pub destination: Option<Ipv4Net>,
}

/// Longest host name: it names the host's port on the bridge, and interface names have 15
/// bytes.
pub const MAX_HOST_NAME: usize = 15;

/// Checks `topo` and resolves it: addresses assigned, names turned into addresses. The same
/// as [`Topology::resolve`].
pub fn resolve(topo: &Topology) -> Result<Resolved, ValidationError> {
    let subnet = match &topo.vpc {
        Some(vpc) => vpc.cidr.trunc(),
        None => topo.subnet.trunc(),
    };
    check_sizes(topo)?;
    if let Some(vpc) = &topo.vpc {
        super::vpc::check(vpc)?;
    }
    let groups = check_groups(topo)?;
    let nets = host_subnets(topo)?;
    let taken = check_hosts(topo, &nets, &groups)?;
    let addresses = assign_addresses(topo, &nets, &taken)?;
    let address_of: HashMap<&str, Ipv4Addr> = topo
        .hosts
        .iter()
        .zip(&addresses)
        .map(|(h, a)| (h.name.as_str(), *a))
        .collect();
    let mut hosts = resolve_hosts(topo, &groups, &addresses)?;
    let vpc = match &topo.vpc {
        Some(v) => {
            let placed: HashMap<&str, (Ipv4Addr, usize)> = topo
                .hosts
                .iter()
                .zip(&addresses)
                .zip(&nets)
                .map(|((h, a), (i, _))| (h.name.as_str(), (*a, *i)))
                .collect();
            Some(super::vpc::resolve(v, &placed)?)
        }
        None => None,
    };
    for (j, (h, (i, net))) in hosts.iter_mut().zip(&nets).enumerate() {
        if let Some(impair) = &topo.hosts[j].impair {
            h.impair = impair.resolve(&at("host").index(j).key("impair"))?;
        }
        h.subnet = *i;
        h.prefix_len = net.prefix_len();
        h.gateway = vpc.as_ref().map(|v| v.subnets[*i].router);
    }
    let firewalls = topo
        .firewalls
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            resolve_firewall(rule, at("firewall").index(i), topo, &address_of).map(|mut f| {
                f.number = i + 1;
                f
            })
        })
        .collect::<Result<_, _>>()?;

    Ok(Resolved {
        subnet,
        hosts,
        firewalls,
        domain: topo.domain.clone(),
        vpc,
    })
}

/// Each host's subnet: its index among the VPC's subnets and its CIDR (the topology's one
/// subnet without a VPC).
fn host_subnets(topo: &Topology) -> Result<Vec<(usize, Ipv4Net)>, ValidationError> {
    topo.hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let path = at("host").index(i).key("subnet");
            match (&topo.vpc, &h.subnet) {
                (None, None) => Ok((0, topo.subnet.trunc())),
                (None, Some(_)) => Err(invalid(
                    path,
                    "a host's `subnet` names a subnet of the [vpc]: add a [vpc] with [[vpc.subnet]], or remove it",
                )),
                (Some(vpc), None) if vpc.subnets.len() == 1 => Ok((0, vpc.subnets[0].cidr)),
                (Some(vpc), None) => Err(invalid(
                    path,
                    format!(
                        "the VPC has several subnets: say which this host sits in{}",
                        known(vpc.subnets.iter().map(|s| s.name.as_str()))
                    ),
                )),
                (Some(vpc), Some(name)) => vpc
                    .subnets
                    .iter()
                    .position(|s| &s.name == name)
                    .map(|j| (j, vpc.subnets[j].cidr))
                    .ok_or_else(|| {
                        invalid(
                            path,
                            format!(
                                "no subnet named `{name}`{}",
                                known(vpc.subnets.iter().map(|s| s.name.as_str()))
                            ),
                        )
                    }),
            }
        })
        .collect()
}

/// The subnet, the sizes of the lists, at least one host, and the domain.
fn check_sizes(topo: &Topology) -> Result<(), ValidationError> {
    match &topo.vpc {
        None => {
            check_subnet(topo.subnet, topo.hosts.len()).map_err(|m| invalid(at("subnet"), m))?
        }
        Some(_) if topo.subnet != super::model::default_subnet() => {
            return Err(invalid(
                at("subnet"),
                "with a [vpc], each subnet is a [[vpc.subnet]]: remove the top-level `subnet`",
            ));
        }
        Some(vpc) => count(vpc.subnets.len(), MAX_ENTRIES, "subnets")
            .map_err(|m| invalid(at("vpc").key("subnet"), m))?,
    }
    count(topo.hosts.len(), MAX_HOSTS, "hosts").map_err(|m| invalid(at("host"), m))?;
    count(topo.security_groups.len(), MAX_ENTRIES, "security groups")
        .map_err(|m| invalid(at("security_group"), m))?;
    count(topo.firewalls.len(), MAX_ENTRIES, "firewall rules")
        .map_err(|m| invalid(at("firewall"), m))?;
    if topo.hosts.is_empty() {
        return Err(invalid(
            at("host"),
            "no hosts: add at least one [[host]] with a name",
        ));
    }
    if let Some(domain) = &topo.domain {
        check_domain(domain).map_err(|m| invalid(at("domain"), m))?;
    }

    Ok(())
}

/// Host names unique and valid, given addresses inside the subnet and unique, groups that
/// exist. Returns the addresses given, with their hosts.
fn check_hosts<'t>(
    topo: &'t Topology,
    nets: &[(usize, Ipv4Net)],
    groups: &HashMap<&str, &super::model::SecurityGroup>,
) -> Result<HashMap<Ipv4Addr, &'t str>, ValidationError> {
    let mut names = HashSet::new();
    let mut taken: HashMap<Ipv4Addr, &str> = HashMap::new();
    for (i, host) in topo.hosts.iter().enumerate() {
        let path = at("host").index(i);
        check_host_name(&host.name).map_err(|m| invalid(path.key("name"), m))?;
        if !names.insert(host.name.as_str()) {
            return Err(invalid(
                path.key("name"),
                format!(
                    "a host named `{}` already exists: host names must be unique",
                    host.name
                ),
            ));
        }
        if let Some(addr) = host.address {
            let subnet = nets[i].1;
            check_address(subnet, addr).map_err(|m| invalid(path.key("address"), m))?;
            let offset = u32::from(addr).wrapping_sub(u32::from(subnet.network()));
            if topo.vpc.is_some() && (1..=3).contains(&offset) {
                return Err(invalid(
                    path.key("address"),
                    format!(
                        "{addr} is reserved by AWS in {subnet} (the first four addresses: network, VPC router, DNS, future use): pick another"
                    ),
                ));
            }
            if let Some(other) = taken.insert(addr, &host.name) {
                return Err(invalid(
                    path.key("address"),
                    format!("{addr} is already `{other}`'s address: give each host its own"),
                ));
            }
        }
        for (g, group) in host.security_groups.iter().enumerate() {
            if !groups.contains_key(group.as_str()) {
                return Err(invalid(
                    path.key("security_groups").index(g),
                    format!(
                        "no security group named `{group}`{}",
                        known(groups.keys().copied())
                    ),
                ));
            }
        }
    }

    Ok(taken)
}

/// Each host's address: its own, or the next free one after the 3 AWS reserves.
fn assign_addresses(
    topo: &Topology,
    nets: &[(usize, Ipv4Net)],
    taken: &HashMap<Ipv4Addr, &str>,
) -> Result<Vec<Ipv4Addr>, ValidationError> {
    let mut free: HashMap<usize, Box<dyn Iterator<Item = Ipv4Addr> + '_>> = HashMap::new();
    let mut addresses = Vec::with_capacity(topo.hosts.len());
    for (i, host) in topo.hosts.iter().enumerate() {
        let (index, subnet) = nets[i];
        let addr = match host.address {
            Some(a) => a,
            None => free
                .entry(index)
                .or_insert_with(|| {
                    Box::new(subnet.hosts().skip(3).filter(|a| !taken.contains_key(a)))
                })
                .next()
                .ok_or_else(|| {
                    invalid(
                        at("host").index(i).key("address"),
                        format!("{subnet} has no free address left: widen the subnet"),
                    )
                })?,
        };
        addresses.push(addr);
    }
    Ok(addresses)
}

/// Each host with the rules of its groups, groups named in rules turned into addresses.
fn resolve_hosts(
    topo: &Topology,
    groups: &HashMap<&str, &super::model::SecurityGroup>,
    addresses: &[Ipv4Addr],
) -> Result<Vec<ResolvedHost>, ValidationError> {
    // Each group's members, found once: a rule naming a group stands for their addresses.
    let mut members: HashMap<&str, Vec<Ipv4Net>> = HashMap::new();
    for (h, addr) in topo.hosts.iter().zip(addresses) {
        let mine: HashSet<&str> = h.security_groups.iter().map(String::as_str).collect();
        for g in mine {
            members.entry(g).or_default().push(Ipv4Net::from(*addr));
        }
    }
    // Every host gets its groups' rules with groups turned into addresses: a file could make
    // that product huge (many hosts, many rules naming a big group), so it has a budget.
    let mut budget = MAX_EXPANDED_PEERS;
    let mut allows = |group: &str, rules: &[SgRule]| -> Result<Vec<Allow>, ValidationError> {
        let mut out = Vec::with_capacity(rules.len());
        for (i, r) in rules.iter().enumerate() {
            let peers = match (&r.cidr, &r.group) {
                (Some(c), _) => vec![c.trunc()],
                (None, Some(g)) => {
                    let m = members.get(g.as_str()).map_or(&[][..], Vec::as_slice);
                    if m.len() > budget {
                        return Err(invalid(
                            at("security_group"),
                            format!(
                                "the security groups' rules stand for more than {MAX_EXPANDED_PEERS} addresses over all hosts: use CIDRs instead of groups, or fewer rules"
                            ),
                        ));
                    }
                    m.to_vec()
                }
                (None, None) => unreachable!("checked in check_groups"),
            };
            budget = budget.saturating_sub(peers.len().max(1));
            out.push(Allow {
                protocol: r.protocol,
                ports: r.ports,
                peers,
                group: group.to_string(),
                number: i + 1,
                peer: match (&r.cidr, &r.group) {
                    (Some(c), _) => c.trunc().to_string(),
                    (_, Some(g)) => format!("group {g}"),
                    (None, None) => String::new(),
                },
            });
        }
        Ok(out)
    };

    let mut hosts = Vec::with_capacity(topo.hosts.len());
    for (h, addr) in topo.hosts.iter().zip(addresses) {
        let sgs: Vec<_> = h
            .security_groups
            .iter()
            .map(|g| groups[g.as_str()])
            .collect();
        let mut ingress = Vec::new();
        for g in &sgs {
            ingress.extend(allows(&g.name, &g.ingress)?);
        }
        let egress = if sgs.iter().any(|g| g.egress.is_none()) || sgs.is_empty() {
            None
        } else {
            let mut egress = Vec::new();
            for g in &sgs {
                egress.extend(allows(&g.name, g.egress.as_deref().unwrap_or_default())?);
            }
            Some(egress)
        };
        hosts.push(ResolvedHost {
            name: h.name.clone(),
            address: *addr,
            security_groups: h.security_groups.clone(),
            ingress,
            egress,
            subnet: 0,
            prefix_len: 0,
            gateway: None,
            impair: Default::default(),
        });
    }

    Ok(hosts)
}

/// A DNS name of dot-separated labels: 1 to 63 lowercase letters, digits and dashes each, not
/// starting or ending with a dash, 253 bytes at most.
fn check_domain(domain: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if domain.len() <= 253 && domain.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a domain name: use dot-separated labels of lowercase letters, digits and dashes, e.g. \"tcp-ip-sandbox.jch\"",
            crate::escape::text(domain)
        ))
    }
}

fn check_groups(
    topo: &Topology,
) -> Result<HashMap<&str, &super::model::SecurityGroup>, ValidationError> {
    let mut groups = HashMap::new();
    for (i, g) in topo.security_groups.iter().enumerate() {
        let path = at("security_group").index(i);
        if g.name.trim().is_empty() {
            return Err(invalid(path.key("name"), "a security group needs a name"));
        }
        if groups.insert(g.name.as_str(), g).is_some() {
            return Err(invalid(
                path.key("name"),
                format!("a security group named `{}` already exists", g.name),
            ));
        }
    }
    for (i, g) in topo.security_groups.iter().enumerate() {
        let path = at("security_group").index(i);
        let lists = [("ingress", Some(&g.ingress)), ("egress", g.egress.as_ref())];
        for (key, rules) in lists {
            count(rules.map_or(0, Vec::len), MAX_ENTRIES, "rules")
                .map_err(|m| invalid(path.key(key), m))?;
            for (r, rule) in rules.into_iter().flatten().enumerate() {
                let path = path.key(key).index(r);
                match (&rule.cidr, &rule.group) {
                    (Some(_), Some(_)) => {
                        return Err(invalid(path, "give either `cidr` or `group`, not both"));
                    }
                    (None, None) => {
                        return Err(invalid(
                            path,
                            "say who this rule allows: `cidr = \"10.0.0.0/16\"` or `group = \"NAME\"`",
                        ));
                    }
                    (None, Some(other)) if !groups.contains_key(other.as_str()) => {
                        return Err(invalid(
                            path.key("group"),
                            format!(
                                "no security group named `{other}`{}",
                                known(groups.keys().copied())
                            ),
                        ));
                    }
                    _ => {}
                }
                check_ports(rule.protocol, rule.ports)
                    .map_err(|m| invalid(path.key("ports"), m))?;
            }
        }
    }
    Ok(groups)
}

fn resolve_firewall(
    rule: &FirewallRule,
    path: FieldPath,
    topo: &Topology,
    address_of: &HashMap<&str, Ipv4Addr>,
) -> Result<ResolvedFirewall, ValidationError> {
    let placement = if rule.on == FABRIC {
        if rule.chain.is_some() {
            return Err(invalid(
                path.key("chain"),
                "`chain` is for a rule on a host; a fabric rule sees traffic between the hosts",
            ));
        }
        Placement::Fabric
    } else {
        let index = topo
            .hosts
            .iter()
            .position(|h| h.name == rule.on)
            .ok_or_else(|| {
                invalid(
                    path.key("on"),
                    format!(
                        "`{}` is neither \"fabric\" nor a host{}",
                        rule.on,
                        known(topo.hosts.iter().map(|h| h.name.as_str()))
                    ),
                )
            })?;
        Placement::Host(index)
    };
    if rule.action == Action::RejectTcpReset && rule.protocol != Protocol::Tcp {
        return Err(invalid(
            path.key("action"),
            "reject-tcp-reset answers TCP only: add `protocol = \"tcp\"` or reject with an ICMP error",
        ));
    }
    check_ports(rule.protocol, rule.port).map_err(|m| invalid(path.key("port"), m))?;
    let endpoint =
        |key: &'static str, value: &Option<String>| -> Result<Option<Ipv4Net>, ValidationError> {
            let Some(text) = value else { return Ok(None) };
            if let Some(addr) = address_of.get(text.as_str()) {
                return Ok(Some(Ipv4Net::from(*addr)));
            }
            if let Ok(net) = text.parse::<Ipv4Net>() {
                return Ok(Some(net.trunc()));
            }
            if let Ok(addr) = text.parse::<Ipv4Addr>() {
                return Ok(Some(Ipv4Net::from(addr)));
            }
            Err(invalid(
                path.key(key),
                format!("`{text}` is neither a host, an address nor a CIDR like 10.0.0.0/24"),
            ))
        };
    Ok(ResolvedFirewall {
        number: 0,
        placement,
        chain: rule.chain.unwrap_or(HostChain::Input),
        action: rule.action,
        protocol: rule.protocol,
        port: rule.port,
        source: endpoint("source", &rule.source)?,
        destination: endpoint("destination", &rule.destination)?,
    })
}

fn check_ports(protocol: Protocol, ports: Option<PortRange>) -> Result<(), String> {
    if ports.is_some() && !protocol.has_ports() {
        return Err(format!(
            "{protocol} has no ports: remove the ports, or use protocol \"tcp\" or \"udp\""
        ));
    }
    Ok(())
}

/// A host's or a subnet's name.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    check_host_name(name)
}

fn check_host_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_HOST_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(format!(
            "`{name}` is not a host name: use 1 to {MAX_HOST_NAME} lowercase letters, digits and dashes, starting with a letter (it names the host's interface on the bridge)"
        ));
    }
    if name == FABRIC {
        return Err("`fabric` is the name of the network between the hosts: pick another".into());
    }
    if name == "router" {
        return Err("`router` is the name of the VPC router: pick another".into());
    }
    // A host's name also names its port in the fabric, which already has these.
    if name == "lo" || name == BRIDGE {
        return Err(format!(
            "`{name}` is taken by an interface of the fabric: pick another"
        ));
    }
    Ok(())
}

fn check_address(subnet: Ipv4Net, addr: Ipv4Addr) -> Result<(), String> {
    if !subnet.contains(&addr) {
        return Err(format!(
            "{addr} is outside the subnet {subnet}: pick an address inside it"
        ));
    }
    if addr == subnet.network() || addr == subnet.broadcast() {
        return Err(format!(
            "{addr} is the subnet's {} address: pick a host address of {subnet}",
            if addr == subnet.network() {
                "network"
            } else {
                "broadcast"
            }
        ));
    }
    Ok(())
}

fn known<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = names.collect();
    if names.is_empty() {
        return String::new();
    }
    names.sort_unstable();
    format!(" (known: {})", names.join(", "))
}
