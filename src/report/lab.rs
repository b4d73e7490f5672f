//! The lab as a report shows it: subnets, the VPC router, hosts with their addresses, and the
//! rules between them (security groups, firewalls, network ACLs, routes), each already in
//! words so that a report read back from disk needs no topology.

use serde::{Deserialize, Serialize};

use crate::spec::{Allow, Placement, Resolved, ResolvedFirewall};

/// The lab a run was built from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LabReport {
    /// The address space: the subnet, or the VPC's CIDR.
    pub cidr: String,
    /// Whether a VPC router joins several subnets (else one bridge joins the hosts).
    pub vpc: bool,
    /// The subnets: one without a VPC.
    pub subnets: Vec<SubnetReport>,
    /// The hosts.
    pub hosts: Vec<HostReport>,
    /// Firewall rules on the fabric (between the hosts), in words.
    pub fabric_firewall: Vec<String>,
}

/// One subnet.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SubnetReport {
    /// Its name (`subnet` without a VPC).
    pub name: String,
    /// Its CIDR.
    pub cidr: String,
    /// The VPC router's address in it.
    pub router: Option<String>,
    /// Its route table, if it has one.
    pub route_table: Option<String>,
    /// Its routes besides `local`, e.g. `10.1.0.0/16 -> blackhole`.
    pub routes: Vec<String>,
    /// Its network ACL's name (`None`: AWS's default, allow all).
    pub acl: Option<String>,
    /// The ACL's inbound entries, in evaluation order.
    pub acl_inbound: Vec<String>,
    /// The ACL's outbound entries, in evaluation order.
    pub acl_outbound: Vec<String>,
}

/// One host.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HostReport {
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// Its subnet: an index into [`LabReport::subnets`].
    pub subnet: usize,
    /// Its security groups (none: nothing filters its traffic).
    pub security_groups: Vec<String>,
    /// What its groups let in.
    pub ingress: Vec<String>,
    /// What its groups let out; `None`: everything.
    pub egress: Option<Vec<String>>,
    /// Firewall rules on the host itself, in words.
    pub firewall: Vec<String>,
    /// Its link's impairments as the topology sets them (`ingress delay 0.15 s`), if any;
    /// steps may change them (each `impair` step says how).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impair: Option<String>,
}

fn allow(a: &Allow) -> String {
    let ports = a.ports.map(|p| format!("/{p}")).unwrap_or_default();
    format!(
        "{} rule {}: {}{ports} {}",
        a.group, a.number, a.protocol, a.peer
    )
}

fn firewall(f: &ResolvedFirewall) -> String {
    let ports = f.port.map(|p| format!("/{p}")).unwrap_or_default();
    let mut s = format!("#{} {} {}{ports}", f.number, f.action, f.protocol);
    if let Some(src) = f.source {
        s.push_str(&format!(" from {src}"));
    }
    if let Some(dst) = f.destination {
        s.push_str(&format!(" to {dst}"));
    }
    if matches!(f.placement, Placement::Host(_)) {
        s.push_str(&format!(" ({:?})", f.chain).to_lowercase());
    }
    s
}

impl LabReport {
    /// The lab of `resolved`.
    pub fn new(resolved: &Resolved) -> LabReport {
        let subnets = match &resolved.vpc {
            Some(vpc) => vpc
                .subnets
                .iter()
                .map(|s| {
                    let entries = |list: &[crate::spec::AclEntry], dir: &str| {
                        list.iter()
                            .map(|e| {
                                let ports = e.ports.map(|p| format!("/{p}")).unwrap_or_default();
                                format!(
                                    "{} {} {}{ports} {dir} {}",
                                    e.rule, e.action, e.protocol, e.cidr
                                )
                            })
                            .chain(std::iter::once("* deny all".to_string()))
                            .collect()
                    };
                    SubnetReport {
                        name: s.name.clone(),
                        cidr: s.cidr.to_string(),
                        router: Some(s.router.to_string()),
                        route_table: s.route_table.clone(),
                        routes: s
                            .routes
                            .iter()
                            .map(|r| format!("{} -> {}", r.destination, r.target))
                            .collect(),
                        acl: s.acl.as_ref().map(|a| a.name.clone()),
                        acl_inbound: s
                            .acl
                            .as_ref()
                            .map(|a| entries(&a.inbound, "from"))
                            .unwrap_or_default(),
                        acl_outbound: s
                            .acl
                            .as_ref()
                            .map(|a| entries(&a.outbound, "to"))
                            .unwrap_or_default(),
                    }
                })
                .collect(),
            None => vec![SubnetReport {
                name: "subnet".into(),
                cidr: resolved.subnet.to_string(),
                ..SubnetReport::default()
            }],
        };
        let on = |p: Placement| {
            resolved
                .firewalls
                .iter()
                .filter(|f| f.placement == p)
                .map(firewall)
                .collect::<Vec<_>>()
        };
        LabReport {
            cidr: resolved
                .vpc
                .as_ref()
                .map_or(resolved.subnet, |v| v.cidr)
                .to_string(),
            vpc: resolved.vpc.is_some(),
            hosts: resolved
                .hosts
                .iter()
                .enumerate()
                .map(|(i, h)| HostReport {
                    name: h.name.clone(),
                    address: h.address.to_string(),
                    subnet: h.subnet,
                    security_groups: h.security_groups.clone(),
                    ingress: h.ingress.iter().map(allow).collect(),
                    egress: h.egress.as_ref().map(|e| e.iter().map(allow).collect()),
                    firewall: on(Placement::Host(i)),
                    impair: (h.impair != crate::spec::Impairment::default())
                        .then(|| h.impair.to_string()),
                })
                .collect(),
            fabric_firewall: on(Placement::Fabric),
            subnets,
        }
    }

    /// The host with address `address`.
    pub fn host_at(&self, address: &str) -> Option<&HostReport> {
        self.hosts.iter().find(|h| h.address == address)
    }
}
