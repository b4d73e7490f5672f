//! Network ACLs: numbered entries each way, the final `*` deny implicit.

use std::collections::{HashMap, HashSet};

use super::shapes::AclEntryJson;
use super::values::{Ports, Proto, describe, parse_cidr, parse_protocol, ports};
use super::{FINAL_DENY, Mapper, Names, name_tag, origin};
use crate::import::ImportError;
use crate::spec::{AclAction, AclEntry, MAX_ACL_RULE, NetworkAcl, Protocol};

impl Mapper {
    /// The VPC's network ACLs, and each subnet's ACL name (the default ACL where none is
    /// associated).
    pub(super) fn map_acls(
        &mut self,
        other_vpcs: &mut usize,
    ) -> Result<(Vec<NetworkAcl>, HashMap<String, String>), ImportError> {
        let mut names = Names::default();
        let mut out = Vec::new();
        let mut acl_of = HashMap::new();
        let mut default = None;
        let mut seen = HashSet::new();
        for (file, a) in std::mem::take(&mut self.input.acls) {
            if a.vpc_id != self.vpc.vpc_id {
                *other_vpcs += 1;
                continue;
            }
            if a.network_acl_id.is_empty() {
                return Err(self.invalid(file, "a network ACL without a NetworkAclId".into()));
            }
            if !seen.insert(a.network_acl_id.clone()) {
                continue;
            }
            let id = a.network_acl_id.clone();
            let name = names.claim(name_tag(&a.tags), &id, "acl");
            let mut inbound = Vec::new();
            let mut outbound = Vec::new();
            for e in &a.entries {
                let list = if e.egress {
                    &mut outbound
                } else {
                    &mut inbound
                };
                if let Some(entry) = self.acl_entry(file, &id, e)? {
                    let dir = if e.egress { "outbound" } else { "inbound" };
                    if list.iter().any(|x: &AclEntry| x.rule == entry.rule) {
                        return Err(self.invalid(
                            file,
                            format!(
                                "network ACL {id}: {dir} entry {} appears twice (AWS numbers are unique)",
                                entry.rule
                            ),
                        ));
                    }
                    list.push(entry);
                }
            }
            for assoc in &a.associations {
                if self.subnets.contains_key(&assoc.subnet_id) {
                    acl_of.insert(assoc.subnet_id.clone(), name.clone());
                }
            }
            if a.is_default {
                default = Some(name.clone());
            }
            let mut comment = origin(&id, name_tag(&a.tags));
            if a.is_default {
                comment.push_str(" (the VPC's default network ACL)");
            }
            self.origins.acls.push(comment);
            out.push(NetworkAcl {
                name,
                inbound,
                outbound,
            });
        }
        if let Some(d) = default {
            for id in self.subnets.keys() {
                acl_of.entry(id.clone()).or_insert_with(|| d.clone());
            }
        }
        Ok((out, acl_of))
    }

    /// One ACL entry; `None` when it is the final `*` deny, or is not modelled (listed).
    pub(super) fn acl_entry(
        &mut self,
        file: usize,
        id: &str,
        e: &AclEntryJson,
    ) -> Result<Option<AclEntry>, ImportError> {
        let dir = if e.egress { "outbound" } else { "inbound" };
        let n = e.rule_number;
        let action = match e.rule_action.to_ascii_lowercase().as_str() {
            "allow" => AclAction::Allow,
            "deny" => AclAction::Deny,
            other => {
                return Err(self.invalid(
                    file,
                    format!(
                        "network ACL {id}: {dir} entry {n}: RuleAction `{}` is neither allow nor deny",
                        crate::escape::line(other)
                    ),
                ));
            }
        };
        if n == FINAL_DENY && action == AclAction::Deny {
            // The `*` entry: tcplab's implicit deny.
            return Ok(None);
        }
        if !(1..=MAX_ACL_RULE).contains(&n) {
            return Err(self.invalid(
                file,
                format!(
                    "network ACL {id}: {dir} entry number {n} is not one AWS uses (1 to {MAX_ACL_RULE}, and {FINAL_DENY} for the final deny)"
                ),
            ));
        }
        // ICMP entries carry a type and code where others carry ports.
        let (from, to) = match parse_protocol(&e.protocol) {
            Proto::Known(Protocol::Icmp) => (
                e.icmp_type_code.as_ref().and_then(|c| c.kind),
                e.icmp_type_code.as_ref().and_then(|c| c.code),
            ),
            _ => (
                e.port_range.as_ref().and_then(|p| p.from),
                e.port_range.as_ref().and_then(|p| p.to),
            ),
        };
        let what = |rest: &str| {
            format!(
                "{dir} entry {n} {action} {}{rest}",
                describe(&e.protocol, from, to)
            )
        };
        let cidr = match (&e.cidr_block, &e.ipv6_cidr_block) {
            (Some(c), _) => parse_cidr(c).map_err(|m| {
                self.invalid(
                    file,
                    format!("network ACL {id}: {dir} entry {n}: CidrBlock {m}"),
                )
            })?,
            (None, Some(v6)) => {
                self.gap(
                    id,
                    what(&format!(" IPv6 {v6}")),
                    "left out (tcplab is IPv4 only)",
                );
                return Ok(None);
            }
            (None, None) => {
                return Err(self.invalid(
                    file,
                    format!("network ACL {id}: {dir} entry {n} has no CidrBlock"),
                ));
            }
        };
        let protocol = match parse_protocol(&e.protocol) {
            Proto::Known(p) => p,
            Proto::Unknown(why) => {
                self.gap(
                    id,
                    what(&format!(" {cidr}")),
                    format!(
                        "left out: {why}; it matches none of the TCP, UDP and ICMP traffic a lab sends"
                    ),
                );
                return Ok(None);
            }
        };
        let ports = match ports(protocol, from, to) {
            Ok(Ports::Exact(p)) => p,
            Ok(Ports::IcmpWidened) => {
                self.gap(
                    id,
                    what(&format!(" {cidr}")),
                    "widened to all ICMP (tcplab's entries do not match ICMP types)",
                );
                None
            }
            Ok(Ports::PortZero) => {
                self.gap(
                    id,
                    what(&format!(" {cidr}")),
                    "left out: port 0 is not a port",
                );
                return Ok(None);
            }
            Err(m) => {
                return Err(self.invalid(file, format!("network ACL {id}: {dir} entry {n}: {m}")));
            }
        };
        Ok(Some(AclEntry {
            rule: n,
            action,
            protocol,
            ports,
            cidr,
        }))
    }
}
