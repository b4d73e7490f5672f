//! The topology as a person writes it (TOML) or builds it in Rust: a subnet, hosts, security
//! groups with AWS semantics, and firewall rules.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The article's subnet.
pub const DEFAULT_SUBNET: &str = "10.0.0.0/24";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// The subnet every host sits on.
    #[serde(default = "default_subnet")]
    pub subnet: Ipv4Net,
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostSpec>,
    #[serde(default, rename = "security_group")]
    pub security_groups: Vec<SecurityGroup>,
    #[serde(default, rename = "firewall")]
    pub firewalls: Vec<FirewallRule>,
    /// A private DNS domain (the article's `tcp-ip-sandbox.jch`): each host also resolves as
    /// `NAME.DOMAIN` inside the lab.
    #[serde(default)]
    pub domain: Option<String>,
}

fn default_subnet() -> Ipv4Net {
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
        }
    }
}

impl Topology {
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

    pub fn host(mut self, host: HostSpec) -> Self {
        self.hosts.push(host);
        self
    }

    pub fn security_group(mut self, group: SecurityGroup) -> Self {
        self.security_groups.push(group);
        self
    }

    pub fn firewall(mut self, rule: FirewallRule) -> Self {
        self.firewalls.push(rule);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    pub name: String,
    /// Assigned from the subnet when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
}

impl HostSpec {
    pub fn new(name: impl Into<String>) -> Self {
        HostSpec {
            name: name.into(),
            address: None,
            security_groups: Vec::new(),
        }
    }

    pub fn address(mut self, address: Ipv4Addr) -> Self {
        self.address = Some(address);
        self
    }

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
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default)]
    pub ingress: Vec<SgRule>,
    /// `None` (the key left out) is AWS's default rule allowing all egress; `Some(vec![])`
    /// allows none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<SgRule>>,
}

impl SecurityGroup {
    pub fn new(name: impl Into<String>) -> Self {
        SecurityGroup {
            name: name.into(),
            description: String::new(),
            ingress: Vec::new(),
            egress: None,
        }
    }

    pub fn ingress(mut self, rule: SgRule) -> Self {
        self.ingress.push(rule);
        self
    }

    pub fn egress(mut self, rule: SgRule) -> Self {
        self.egress.get_or_insert_with(Vec::new).push(rule);
        self
    }
}

/// One allow rule: a protocol, ports for tcp and udp, and the peer as a CIDR or a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgRule {
    pub protocol: Protocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<Ipv4Net>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl SgRule {
    pub fn new(protocol: Protocol) -> Self {
        SgRule {
            protocol,
            ports: None,
            cidr: None,
            group: None,
        }
    }

    pub fn tcp(port: u16) -> Self {
        SgRule::new(Protocol::Tcp).ports(PortRange::single(port))
    }

    pub fn udp(port: u16) -> Self {
        SgRule::new(Protocol::Udp).ports(PortRange::single(port))
    }

    pub fn icmp() -> Self {
        SgRule::new(Protocol::Icmp)
    }

    pub fn ports(mut self, ports: PortRange) -> Self {
        self.ports = Some(ports);
        self
    }

    pub fn cidr(mut self, cidr: Ipv4Net) -> Self {
        self.cidr = Some(cidr);
        self
    }

    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    All,
}

impl Protocol {
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
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn single(port: u16) -> Self {
        PortRange {
            first: port,
            last: port,
        }
    }

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
    pub action: Action,
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

pub const FABRIC: &str = "fabric";

/// The bridge in the fabric that joins the hosts (the subnet).
pub const BRIDGE: &str = "br0";

impl FirewallRule {
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

    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(PortRange::single(port));
        self
    }

    pub fn chain(mut self, chain: HostChain) -> Self {
        self.chain = Some(chain);
        self
    }

    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn destination(mut self, destination: impl Into<String>) -> Self {
        self.destination = Some(destination.into());
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostChain {
    Input,
    Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Drop,
    RejectTcpReset,
    RejectHostUnreachable,
    RejectPortUnreachable,
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
