//! The topology as a person writes it (TOML) or builds it in Rust: a subnet, hosts, security
//! groups with AWS semantics, and firewall rules.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The article's subnet.
pub const DEFAULT_SUBNET: &str = "10.0.0.0/24";

/// A topology as written in TOML or built in Rust: the subnet, the hosts, the security groups
/// and the firewall rules. [`Topology::resolve`] checks it and assigns addresses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// The subnet every host sits on.
    #[serde(default = "default_subnet")]
    pub subnet: Ipv4Net,
    /// The hosts, each a network namespace with `eth0` on the subnet (`[[host]]`).
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostSpec>,
    /// Security groups, attached to hosts by name (`[[security_group]]`).
    #[serde(default, rename = "security_group")]
    pub security_groups: Vec<SecurityGroup>,
    /// Firewall rules (`[[firewall]]`).
    #[serde(default, rename = "firewall")]
    pub firewalls: Vec<FirewallRule>,
    /// A private DNS domain (the article's `tcp-ip-sandbox.jch`): each host also resolves as
    /// `NAME.DOMAIN` inside the lab.
    #[serde(default)]
    pub domain: Option<String>,
    /// A VPC of several subnets (`[vpc]`), instead of the single `subnet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<super::vpc::Vpc>,
}

pub(crate) fn default_subnet() -> Ipv4Net {
    DEFAULT_SUBNET.parse().expect("valid default subnet")
}

impl Default for Topology {
    fn default() -> Self {
        Topology {
            subnet: default_subnet(),
            hosts: Vec::new(),
            security_groups: Vec::new(),
            firewalls: Vec::new(),
            domain: None,
            vpc: None,
        }
    }
}

impl Topology {
    /// An empty topology on `subnet`.
    pub fn new(subnet: Ipv4Net) -> Self {
        Topology {
            subnet,
            ..Topology::default()
        }
    }

    /// Sets the lab's private DNS domain (see [`Topology::domain`]).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Adds a host.
    pub fn host(mut self, host: HostSpec) -> Self {
        self.hosts.push(host);
        self
    }

    /// Adds a security group.
    pub fn security_group(mut self, group: SecurityGroup) -> Self {
        self.security_groups.push(group);
        self
    }

    /// Adds a firewall rule.
    pub fn firewall(mut self, rule: FirewallRule) -> Self {
        self.firewalls.push(rule);
        self
    }
}

/// A host: its name, its address (assigned if absent), and its security groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Lowercase letters, digits and dashes, starting with a letter; at most
    /// [`MAX_HOST_NAME`](crate::spec::MAX_HOST_NAME) bytes.
    pub name: String,
    /// Assigned from the subnet when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
    /// The security groups it is in; none means nothing filters its traffic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    /// In a topology with a `[vpc]`: the subnet it sits in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// Impairments of its link: delay, loss, rate... (see [`Impair`](super::Impair)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impair: Option<super::Impair>,
}

impl HostSpec {
    /// A host named `name`, its address assigned from the subnet.
    pub fn new(name: impl Into<String>) -> Self {
        HostSpec {
            name: name.into(),
            address: None,
            security_groups: Vec::new(),
            subnet: None,
            impair: None,
        }
    }

    /// Impairs the host's link.
    pub fn impair(mut self, impair: super::Impair) -> Self {
        self.impair = Some(impair);
        self
    }

    /// Puts the host in the VPC subnet named `subnet`.
    pub fn subnet(mut self, subnet: impl Into<String>) -> Self {
        self.subnet = Some(subnet.into());
        self
    }

    /// Gives the host this address instead of the next free one.
    pub fn address(mut self, address: Ipv4Addr) -> Self {
        self.address = Some(address);
        self
    }

    /// Puts the host in the security group `group`.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.security_groups.push(group.into());
        self
    }
}

/// A stateful allow-list enforced between the hosts, never answering: what it does not allow
/// is silently dropped, and replies to allowed traffic always pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroup {
    /// Its name, which hosts' `security_groups` and rules' `group` refer to.
    pub name: String,
    /// What it is for, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// What it allows in; nothing else gets in.
    #[serde(default)]
    pub ingress: Vec<SgRule>,
    /// `None` (the key left out) is AWS's default rule allowing all egress; `Some(vec![])`
    /// allows none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<SgRule>>,
}

impl SecurityGroup {
    /// A group named `name` that allows nothing in and everything out (AWS's default).
    pub fn new(name: impl Into<String>) -> Self {
        SecurityGroup {
            name: name.into(),
            description: String::new(),
            ingress: Vec::new(),
            egress: None,
        }
    }

    /// Allows `rule` in.
    pub fn ingress(mut self, rule: SgRule) -> Self {
        self.ingress.push(rule);
        self
    }

    /// Allows `rule` out; the first call replaces the default allow-all egress.
    pub fn egress(mut self, rule: SgRule) -> Self {
        self.egress.get_or_insert_with(Vec::new).push(rule);
        self
    }
}

/// One allow rule: a protocol, ports for tcp and udp, and the peer as a CIDR or a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgRule {
    /// `tcp`, `udp`, `icmp` or `all`.
    pub protocol: Protocol,
    /// The ports (tcp and udp only); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortRange>,
    /// The peers, as a CIDR (or use `group`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<Ipv4Net>,
    /// The peers, as the hosts in a security group (or use `cidr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl SgRule {
    /// A rule for `protocol`, all ports, no peer yet.
    pub fn new(protocol: Protocol) -> Self {
        SgRule {
            protocol,
            ports: None,
            cidr: None,
            group: None,
        }
    }

    /// TCP to `port`, with no peer yet: add [`SgRule::cidr`] or [`SgRule::group`].
    pub fn tcp(port: u16) -> Self {
        SgRule::new(Protocol::Tcp).ports(PortRange::single(port))
    }

    /// UDP to `port`, with no peer yet: add [`SgRule::cidr`] or [`SgRule::group`].
    pub fn udp(port: u16) -> Self {
        SgRule::new(Protocol::Udp).ports(PortRange::single(port))
    }

    /// ICMP, with no peer yet: add [`SgRule::cidr`] or [`SgRule::group`].
    pub fn icmp() -> Self {
        SgRule::new(Protocol::Icmp)
    }

    /// Limits the rule to `ports`.
    pub fn ports(mut self, ports: PortRange) -> Self {
        self.ports = Some(ports);
        self
    }

    /// Limits the rule to peers in `cidr`.
    pub fn cidr(mut self, cidr: Ipv4Net) -> Self {
        self.cidr = Some(cidr);
        self
    }

    /// Limits the rule to the hosts in security group `group`.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }
}

/// An IP protocol, as security groups and firewall rules name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP.
    Icmp,
    /// Every protocol.
    All,
}

impl Protocol {
    /// Whether rules for it may name ports (TCP and UDP).
    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::All => "all",
        })
    }
}

/// A port or an inclusive range, written `1234` or `"1000-2000"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// The first port.
    pub first: u16,
    /// The last port, included.
    pub last: u16,
}

impl PortRange {
    /// Just `port`.
    pub fn single(port: u16) -> Self {
        PortRange {
            first: port,
            last: port,
        }
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let port = |p: &str| -> Result<u16, String> {
            match p.trim().parse::<u16>() {
                Ok(0) | Err(_) => Err(format!(
                    "`{s}` is not a port (1-65535) or a range like \"1000-2000\""
                )),
                Ok(n) => Ok(n),
            }
        };
        let range = match s.split_once('-') {
            Some((a, b)) => PortRange {
                first: port(a)?,
                last: port(b)?,
            },
            None => PortRange::single(port(s)?),
        };
        if range.first > range.last {
            return Err(format!("port range `{s}` runs backwards"));
        }
        Ok(range)
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.first == self.last {
            s.serialize_u16(self.first)
        } else {
            s.serialize_str(&self.to_string())
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Number(n) => n.to_string(),
            Raw::Text(t) => t,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A firewall rule: unlike a security group it may answer (reject), and it sits either in the
/// network between the hosts or on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallRule {
    /// `"fabric"` (in the network, before the packet reaches any host) or a host's name.
    pub on: String,
    /// On a host: the chain, `input` (default) or `output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<HostChain>,
    /// What it does to the packets it matches.
    pub action: Action,
    /// The protocol it matches (`all` by default).
    #[serde(default = "all_protocols")]
    pub protocol: Protocol,
    /// Destination port or range (tcp and udp only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortRange>,
    /// A CIDR or a host's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A CIDR or a host's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

fn all_protocols() -> Protocol {
    Protocol::All
}

/// The name of the network between the hosts, in a firewall rule's `on`.
pub const FABRIC: &str = "fabric";

/// The bridge in the fabric that joins the hosts (the subnet).
pub const BRIDGE: &str = "br0";

impl FirewallRule {
    /// A rule on `on` (`"fabric"` or a host's name) that does `action` to `protocol`.
    pub fn new(on: impl Into<String>, action: Action, protocol: Protocol) -> Self {
        FirewallRule {
            on: on.into(),
            chain: None,
            action,
            protocol,
            port: None,
            source: None,
            destination: None,
        }
    }

    /// Limits the rule to destination port `port`.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(PortRange::single(port));
        self
    }

    /// On a host: the chain, input or output.
    pub fn chain(mut self, chain: HostChain) -> Self {
        self.chain = Some(chain);
        self
    }

    /// Limits the rule to a source: a CIDR or a host's name.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Limits the rule to a destination: a CIDR or a host's name.
    pub fn destination(mut self, destination: impl Into<String>) -> Self {
        self.destination = Some(destination.into());
        self
    }
}

/// A host firewall's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostChain {
    /// Packets to the host.
    Input,
    /// Packets from the host.
    Output,
}

/// What a firewall rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Drops silently: the sender times out.
    Drop,
    /// Answers a TCP packet with a reset: connection refused.
    RejectTcpReset,
    /// Answers with ICMP host unreachable.
    RejectHostUnreachable,
    /// Answers with ICMP port unreachable.
    RejectPortUnreachable,
    /// Answers with ICMP administratively prohibited.
    RejectAdminProhibited,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Drop => "drop",
            Action::RejectTcpReset => "reject-tcp-reset",
            Action::RejectHostUnreachable => "reject-host-unreachable",
            Action::RejectPortUnreachable => "reject-port-unreachable",
            Action::RejectAdminProhibited => "reject-admin-prohibited",
        })
    }
}
