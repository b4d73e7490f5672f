//! Security groups: each IPv4 range and group reference of a permission one rule.

use super::shapes::{AwsGroup, Permission};
use super::values::{Ports, Proto, describe, parse_cidr, parse_protocol, ports};
use super::{Mapper, name_tag, origin};
use crate::import::ImportError;
use crate::spec::{SecurityGroup, SgRule};

impl Mapper {
    pub(super) fn map_groups(
        &mut self,
        groups: Vec<(usize, AwsGroup, String)>,
    ) -> Result<Vec<SecurityGroup>, ImportError> {
        let mut out = Vec::new();
        for (file, g, name) in groups {
            let id = g.group_id.clone();
            let ingress = self.sg_rules(file, &id, "ingress", &g.ip_permissions)?;
            let egress_rules = self.sg_rules(file, &id, "egress", &g.ip_permissions_egress)?;
            // AWS's default egress rule allows everything out: tcplab's `egress` left out. Any
            // other egress rule beside it allows nothing more.
            let egress = if g.ip_permissions_egress.iter().any(allows_all) {
                None
            } else {
                Some(egress_rules)
            };
            let description: String = crate::escape::line(&g.description)
                .chars()
                .take(255)
                .collect();
            let mut comment = origin(&id, name_tag(&g.tags));
            if !g.group_name.is_empty() {
                comment.push_str(&format!(" GroupName {:?}", g.group_name));
            }
            self.origins.groups.push(comment);
            out.push(SecurityGroup {
                name,
                description,
                ingress,
                egress,
            });
        }
        Ok(out)
    }

    /// The rules of a group's permissions in one direction: one per IPv4 range and per group
    /// reference; the rest listed as not modelled.
    pub(super) fn sg_rules(
        &mut self,
        file: usize,
        id: &str,
        direction: &str,
        perms: &[Permission],
    ) -> Result<Vec<SgRule>, ImportError> {
        let mut rules = Vec::new();
        let peer = if direction == "ingress" { "from" } else { "to" };
        for p in perms {
            let what = |rest: &str| {
                format!(
                    "{direction} {} {peer} {rest}",
                    describe(&p.ip_protocol, p.from_port, p.to_port)
                )
            };
            let protocol = match parse_protocol(&p.ip_protocol) {
                Proto::Known(pr) => pr,
                Proto::Unknown(why) => {
                    let n = p.ip_ranges.len()
                        + p.ipv6_ranges.len()
                        + p.prefix_list_ids.len()
                        + p.user_id_group_pairs.len();
                    self.gap(
                        id,
                        what(&format!("{n} peer(s)")),
                        format!("left out: {why}"),
                    );
                    continue;
                }
            };
            let ports = match ports(protocol, p.from_port, p.to_port) {
                Ok(Ports::Exact(ports)) => ports,
                Ok(Ports::IcmpWidened) => {
                    self.gap(
                        id,
                        what("its peers"),
                        "widened to all ICMP (tcplab's rules do not match ICMP types)",
                    );
                    None
                }
                Ok(Ports::PortZero) => {
                    self.gap(id, what("its peers"), "left out: port 0 is not a port");
                    continue;
                }
                Err(m) => {
                    return Err(self.invalid(file, format!("security group {id}: {direction} {m}")));
                }
            };
            let rule = SgRule {
                protocol,
                ports,
                cidr: None,
                group: None,
            };
            for r in &p.ip_ranges {
                let cidr = parse_cidr(&r.cidr_ip).map_err(|m| {
                    self.invalid(file, format!("security group {id}: {direction} CidrIp {m}"))
                })?;
                rules.push(SgRule {
                    cidr: Some(cidr),
                    ..rule.clone()
                });
            }
            for pair in &p.user_id_group_pairs {
                match self.groups.get(&pair.group_id) {
                    Some(name) if pair.vpc_peering_connection_id.is_none() => {
                        rules.push(SgRule {
                            group: Some(name.clone()),
                            ..rule.clone()
                        });
                    }
                    _ => {
                        let account = pair
                            .user_id
                            .as_deref()
                            .map(|u| format!(" of account {u}"))
                            .unwrap_or_default();
                        self.gap(
                            id,
                            what(&format!("group {}{account}", pair.group_id)),
                            "left out: the group is not in this VPC's describe-security-groups output",
                        );
                    }
                }
            }
            for r in &p.ipv6_ranges {
                self.gap(
                    id,
                    what(&format!("IPv6 {}", r.cidr_ipv6)),
                    "left out (tcplab is IPv4 only)",
                );
            }
            for pl in &p.prefix_list_ids {
                self.gap(
                    id,
                    what(&format!("prefix list {}", pl.prefix_list_id)),
                    "left out (prefix lists are not modelled: add its CIDRs as rules by hand)",
                );
            }
        }
        Ok(rules)
    }
}

/// Whether a permission is AWS's default egress rule: all traffic to 0.0.0.0/0.
fn allows_all(p: &Permission) -> bool {
    matches!(p.ip_protocol.as_str(), "-1" | "all")
        && p.ip_ranges.iter().any(|r| r.cidr_ip == "0.0.0.0/0")
}
