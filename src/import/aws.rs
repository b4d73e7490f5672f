//! A VPC as the AWS CLI describes it, imported as a topology: the JSON that `aws ec2
//! describe-vpcs`, `describe-subnets`, `describe-security-groups`, `describe-network-acls`,
//! `describe-route-tables` and `describe-instances` print, in separate files or one folder.
//!
//! Each file is recognised by its top-level key (`Vpcs`, `Subnets`, `SecurityGroups`,
//! `NetworkAcls`, `RouteTables`, `Reservations`); fields tcplab does not use are ignored, and
//! the same key in several files (paginated calls) adds up. The mapping:
//!
//! - the VPC's primary CIDR is `[vpc] cidr`; each subnet inside it a `[[vpc.subnet]]`;
//! - each instance not terminated a `[[host]]` with its private address, subnet and groups;
//! - each security group a `[[security_group]]` (named after its Name tag, else its
//!   GroupName), each IPv4 range and group reference of a permission one rule; the default
//!   egress rule (all traffic to 0.0.0.0/0) is `egress` left out, as in tcplab;
//! - each network ACL a `[[vpc.network_acl]]` with its numbered entries (the final `*` deny,
//!   number 32767, is tcplab's implicit deny); subnets without an association get the VPC's
//!   default ACL;
//! - each route table a `[[vpc.route_table]]`: the `local` route is implicit, routes via an
//!   imported instance or its network interface are `instance:NAME`, routes in state
//!   `blackhole` are `blackhole`, and routes to targets tcplab has no model for (internet,
//!   NAT, virtual private, transit, carrier and local gateways, peering connections,
//!   endpoints, other network interfaces) get the stand-in [`STAND_IN`]; subnets without an
//!   association get the main table.
//!
//! IPv6 ranges, prefix lists, secondary CIDRs, protocols other than TCP, UDP and ICMP, and
//! ICMP types are not modelled: each is left out (or, for ICMP types, widened to all ICMP)
//! and listed in [`Imported::unmodelled`].

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use super::names::Names;
use super::{ImportError, Imported, Origins, Unmodelled};
use crate::spec::{HostSpec, RouteTarget, SubnetSpec, Topology, Vpc};

/// The route target that stands in for a gateway tcplab has no model of: packets to it are
/// answered with ICMP host unreachable, so a connection leaving the VPC fails at once, and is
/// never mistaken for the timeout of a rule dropping it.
pub const STAND_IN: RouteTarget = RouteTarget::Unreachable;

/// The most files one import reads (each at most [`crate::spec::MAX_FILE_SIZE`]).
pub const MAX_FILES: usize = 100;

/// Each top-level key an import needs, and the command that prints it.
pub const COMMANDS: [(&str, &str); 6] = [
    ("Vpcs", "describe-vpcs"),
    ("Subnets", "describe-subnets"),
    ("SecurityGroups", "describe-security-groups"),
    ("NetworkAcls", "describe-network-acls"),
    ("RouteTables", "describe-route-tables"),
    ("Reservations", "describe-instances"),
];

/// The AWS number of the last entry of a network ACL, its `*` deny.
const FINAL_DENY: i64 = 32767;

mod acls;
mod groups;
mod routes;
mod shapes;
mod values;

use shapes::{AwsAcl, AwsGroup, AwsInstance, AwsSubnet, AwsTable, AwsVpc, Output, name_tag};
use values::parse_cidr;

/// Resources read from the files, each with the index of the file it came from.
#[derive(Debug, Default)]
struct Input {
    files: Vec<String>,
    seen: [bool; 6],
    vpcs: Vec<(usize, AwsVpc)>,
    subnets: Vec<(usize, AwsSubnet)>,
    groups: Vec<(usize, AwsGroup)>,
    acls: Vec<(usize, AwsAcl)>,
    tables: Vec<(usize, AwsTable)>,
    instances: Vec<(usize, AwsInstance)>,
}

impl Input {
    /// Adds one file's text, named `file` in errors.
    fn add(&mut self, file: &str, text: &str) -> Result<(), ImportError> {
        // serde would read a JSON array as a struct's fields in order: anything but an object
        // is refused here, with what it is.
        let first = text.trim_start().chars().next();
        if first != Some('{') {
            return Err(ImportError::Invalid {
                file: file.to_string(),
                message: format!(
                    "{}, not the JSON object an `aws ec2 describe-...` command prints (run it with `--output json`)",
                    match first {
                        None => "empty".to_string(),
                        Some('[') => "a JSON array".to_string(),
                        Some(c) => format!("starts with `{}`", crate::escape::line(&c.to_string())),
                    }
                ),
            });
        }
        let out: Output = serde_json::from_str(text).map_err(|e| json_error(file, &e))?;
        let index = self.files.len();
        self.files.push(file.to_string());
        let mut any = false;
        fn take<T>(
            seen: &mut bool,
            any: &mut bool,
            to: &mut Vec<(usize, T)>,
            from: Option<Vec<T>>,
            index: usize,
        ) {
            if let Some(items) = from {
                *seen = true;
                *any = true;
                to.extend(items.into_iter().map(|i| (index, i)));
            }
        }
        let [v, s, g, a, t, r] = &mut self.seen;
        take(v, &mut any, &mut self.vpcs, out.vpcs, index);
        take(s, &mut any, &mut self.subnets, out.subnets, index);
        take(g, &mut any, &mut self.groups, out.security_groups, index);
        take(a, &mut any, &mut self.acls, out.network_acls, index);
        take(t, &mut any, &mut self.tables, out.route_tables, index);
        if let Some(rs) = out.reservations {
            *r = true;
            any = true;
            for res in rs {
                self.instances
                    .extend(res.instances.into_iter().map(|i| (index, i)));
            }
        }
        if !any {
            return Err(ImportError::Invalid {
                file: file.to_string(),
                message: format!(
                    "not the output of an `aws ec2 describe-...` command: no top-level {}",
                    key_list()
                ),
            });
        }
        Ok(())
    }

    fn file(&self, index: usize) -> String {
        self.files[index].clone()
    }
}

fn key_list() -> String {
    let keys: Vec<&str> = COMMANDS.iter().map(|(k, _)| *k).collect();
    format!(
        "{} or {}",
        keys[..keys.len() - 1].join(", "),
        keys[keys.len() - 1]
    )
}

fn json_error(file: &str, e: &serde_json::Error) -> ImportError {
    let full = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&position).unwrap_or(&full).to_string();
    if e.line() == 0 {
        return ImportError::Invalid {
            file: file.to_string(),
            message,
        };
    }
    ImportError::Json {
        file: file.to_string(),
        line: e.line(),
        // serde_json counts a position at the end of a line as column 0.
        column: e.column().max(1),
        message,
    }
}

/// Imports the VPC described by the JSON files at `paths` (files, or folders whose `.json`
/// files are read). `vpc` chooses the VPC by id when the files describe several.
pub fn import<P: AsRef<Path>>(paths: &[P], vpc: Option<&str>) -> Result<Imported, ImportError> {
    let mut files: Vec<PathBuf> = Vec::new();
    for p in paths {
        let p = p.as_ref();
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                let found = json_files(p)?;
                if found.is_empty() {
                    return Err(ImportError::Input(format!(
                        "{}: no .json file in the folder: save there what each `aws ec2 describe-...` command prints",
                        p.display()
                    )));
                }
                files.extend(found);
            }
            Ok(m) if !m.is_file() => {
                return Err(ImportError::NotAFile {
                    path: p.to_path_buf(),
                });
            }
            // Missing or unreadable: read_text says which.
            _ => files.push(p.to_path_buf()),
        }
        if files.len() > MAX_FILES {
            return Err(ImportError::Input(format!(
                "more than {MAX_FILES} files: give the output of each `aws ec2 describe-...` command once"
            )));
        }
    }
    let mut texts = Vec::with_capacity(files.len());
    for f in &files {
        let text = crate::spec::read_text(f).map_err(|e| match e {
            crate::spec::SpecError::NotAFile { path } => ImportError::NotAFile { path },
            e => ImportError::Read(e),
        })?;
        texts.push((f.display().to_string(), text));
    }
    import_texts(&texts, vpc)
}

/// The `.json` files of a folder (not of its subfolders), by name.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>, ImportError> {
    let folder_error = |source| ImportError::Folder {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(folder_error)? {
        let entry = entry.map_err(folder_error)?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            found.push(path);
            if found.len() > MAX_FILES {
                break;
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Imports a VPC from texts already read: `(name, JSON)` pairs, the name used in errors.
pub fn import_texts(
    texts: &[(String, String)],
    vpc: Option<&str>,
) -> Result<Imported, ImportError> {
    let mut input = Input::default();
    for (name, text) in texts {
        input.add(name, text)?;
    }
    let missing: Vec<&str> = COMMANDS
        .iter()
        .zip(input.seen)
        .filter(|(_, seen)| !seen)
        .map(|((_, c), _)| *c)
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::Input(format!(
            "no output of `aws ec2 {}` among the files: run {} with `--output json` and give the file{} too",
            missing.join("`, `aws ec2 "),
            if missing.len() == 1 { "it" } else { "them" },
            if missing.len() == 1 { "" } else { "s" },
        )));
    }
    Mapper::new(input, vpc)?.map()
}

/// The state of one import: names given, ids mapped to names, what is not modelled.
struct Mapper {
    input: Input,
    vpc: AwsVpc,
    cidr: Ipv4Net,
    unmodelled: Vec<Unmodelled>,
    notes: Vec<String>,
    origins: Origins,
    /// Subnet id to (name, CIDR).
    subnets: HashMap<String, (String, Ipv4Net)>,
    /// Group id to name.
    groups: HashMap<String, String>,
    /// Instance id, and network interface id, to host name.
    hosts: HashMap<String, String>,
}

impl Mapper {
    fn new(input: Input, choice: Option<&str>) -> Result<Mapper, ImportError> {
        let mut ids = Vec::new();
        let mut vpcs: Vec<&(usize, AwsVpc)> = Vec::new();
        for v in &input.vpcs {
            if !ids.contains(&v.1.vpc_id) {
                ids.push(v.1.vpc_id.clone());
                vpcs.push(v);
            }
        }
        let (vpc_file, vpc) = match choice {
            Some(id) => vpcs
                .iter()
                .find(|v| v.1.vpc_id == id)
                .map(|v| (v.0, v.1.clone()))
                .ok_or_else(|| {
                    ImportError::Input(format!(
                        "no VPC `{id}` in the describe-vpcs output (it lists: {})",
                        if ids.is_empty() {
                            "none".into()
                        } else {
                            ids.join(", ")
                        }
                    ))
                })?,
            None => match vpcs.as_slice() {
                [one] => (one.0, one.1.clone()),
                [] => {
                    return Err(ImportError::Input(
                        "the describe-vpcs output lists no VPC: describe the VPC to import".into(),
                    ));
                }
                _ => {
                    return Err(ImportError::Input(format!(
                        "the files describe {} VPCs ({}): choose one with --vpc ID",
                        ids.len(),
                        ids.join(", ")
                    )));
                }
            },
        };
        let file = input.file(vpc_file);
        if vpc.vpc_id.is_empty() {
            return Err(ImportError::Invalid {
                file,
                message: "a VPC without a VpcId".into(),
            });
        }
        let cidr_text = vpc
            .cidr_block
            .as_deref()
            .ok_or_else(|| ImportError::Invalid {
                file: file.clone(),
                message: format!("VPC {} has no CidrBlock", vpc.vpc_id),
            })?;
        let cidr = parse_cidr(cidr_text).map_err(|m| ImportError::Invalid {
            file,
            message: format!("VPC {}: CidrBlock {m}", vpc.vpc_id),
        })?;
        Ok(Mapper {
            input,
            vpc,
            cidr,
            unmodelled: Vec::new(),
            notes: Vec::new(),
            origins: Origins::default(),
            subnets: HashMap::new(),
            groups: HashMap::new(),
            hosts: HashMap::new(),
        })
    }

    fn gap(&mut self, resource: &str, what: impl Into<String>, handling: impl Into<String>) {
        self.unmodelled.push(Unmodelled {
            resource: resource.to_string(),
            what: what.into(),
            handling: handling.into(),
        });
    }

    fn invalid(&self, file: usize, message: String) -> ImportError {
        ImportError::Invalid {
            file: self.input.file(file),
            message,
        }
    }

    fn map(mut self) -> Result<Imported, ImportError> {
        let vpc_id = self.vpc.vpc_id.clone();
        self.vpc_cidrs();
        let mut other_vpcs = 0usize;
        let subnets = self.map_subnets(&mut other_vpcs)?;
        let groups_in = self.take_groups(&mut other_vpcs)?;
        let hosts = self.map_instances(&mut other_vpcs)?;
        let groups = self.map_groups(groups_in)?;
        let (acls, acl_of) = self.map_acls(&mut other_vpcs)?;
        let (tables, table_of) = self.map_tables(&mut other_vpcs)?;
        let subnets = subnets
            .into_iter()
            .map(|(id, mut s)| {
                s.route_table = table_of.get(&id).cloned();
                s.network_acl = acl_of.get(&id).cloned();
                s
            })
            .collect();
        if other_vpcs > 0 {
            self.notes.push(format!(
                "Left out {other_vpcs} resource{} of other VPCs.",
                if other_vpcs == 1 { "" } else { "s" }
            ));
        }
        if hosts.is_empty() {
            return Err(ImportError::Input(format!(
                "VPC {vpc_id} has no instance tcplab can import (not terminated, with a private address in an imported subnet): a lab needs at least one host"
            )));
        }
        let topology = Topology {
            hosts,
            security_groups: groups,
            vpc: Some(Vpc {
                cidr: self.cidr,
                broadcast: false,
                subnets,
                route_tables: tables,
                network_acls: acls,
            }),
            ..Topology::default()
        };
        topology.resolve()?;
        let name = name_tag(&self.vpc.tags)
            .map(|n| format!(" \"{n}\""))
            .unwrap_or_default();
        Ok(Imported {
            topology,
            source: format!("AWS VPC {vpc_id}{name} ({})", self.cidr),
            unmodelled: self.unmodelled,
            notes: self.notes,
            origins: self.origins,
        })
    }

    /// Lists the VPC's secondary and IPv6 CIDRs, which tcplab does not model.
    fn vpc_cidrs(&mut self) {
        let id = self.vpc.vpc_id.clone();
        let secondary: Vec<String> = self
            .vpc
            .cidr_block_association_set
            .iter()
            .filter(|a| {
                parse_cidr(&a.cidr_block).ok() != Some(self.cidr)
                    && !a.cidr_block_state.as_ref().is_some_and(|s| {
                        matches!(
                            s.state.as_str(),
                            "disassociated" | "disassociating" | "failed"
                        )
                    })
            })
            .map(|a| a.cidr_block.clone())
            .collect();
        for c in secondary {
            self.gap(
                &id,
                format!("secondary CIDR {c}"),
                "left out, with its subnets (a lab's VPC has one CIDR)",
            );
        }
        let v6: Vec<String> = self
            .vpc
            .ipv6_cidr_block_association_set
            .iter()
            .map(|a| a.ipv6_cidr_block.clone())
            .collect();
        for c in v6 {
            self.gap(
                &id,
                format!("IPv6 CIDR {c}"),
                "left out (tcplab is IPv4 only)",
            );
        }
    }

    /// The VPC's subnets, by id, in the order given; route tables and ACLs attached later.
    fn map_subnets(
        &mut self,
        other_vpcs: &mut usize,
    ) -> Result<Vec<(String, SubnetSpec)>, ImportError> {
        let mut names = Names::default();
        let mut out = Vec::new();
        let subnets = std::mem::take(&mut self.input.subnets);
        let mut seen = HashSet::new();
        for (file, s) in subnets {
            if s.vpc_id != self.vpc.vpc_id {
                *other_vpcs += 1;
                continue;
            }
            if s.subnet_id.is_empty() {
                return Err(self.invalid(file, "a subnet without a SubnetId".into()));
            }
            if !seen.insert(s.subnet_id.clone()) {
                continue;
            }
            let id = &s.subnet_id;
            let cidr = s
                .cidr_block
                .as_deref()
                .ok_or_else(|| format!("subnet {id} has no CidrBlock"))
                .and_then(|c| parse_cidr(c).map_err(|m| format!("subnet {id}: CidrBlock {m}")))
                .map_err(|m| self.invalid(file, m))?;
            for a in &s.ipv6_cidr_block_association_set {
                self.gap(
                    id,
                    format!("IPv6 CIDR {}", a.ipv6_cidr_block),
                    "left out (tcplab is IPv4 only)",
                );
            }
            if !self.cidr.contains(&cidr) || cidr.prefix_len() > 28 {
                self.gap(
                    id,
                    format!(
                        "subnet {cidr}, outside the VPC's primary CIDR {}",
                        self.cidr
                    ),
                    "left out, with its instances",
                );
                continue;
            }
            let name = names.claim(name_tag(&s.tags), id, "subnet");
            self.origins.subnets.push(origin(id, name_tag(&s.tags)));
            self.subnets.insert(id.clone(), (name.clone(), cidr));
            out.push((
                id.clone(),
                SubnetSpec {
                    name,
                    cidr,
                    route_table: None,
                    network_acl: None,
                },
            ));
        }
        Ok(out)
    }

    /// The VPC's security groups, named (group references need every name before any rule).
    fn take_groups(
        &mut self,
        other_vpcs: &mut usize,
    ) -> Result<Vec<(usize, AwsGroup, String)>, ImportError> {
        let mut names = Names::default();
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for (file, g) in std::mem::take(&mut self.input.groups) {
            if g.vpc_id != self.vpc.vpc_id {
                *other_vpcs += 1;
                continue;
            }
            if g.group_id.is_empty() {
                return Err(self.invalid(file, "a security group without a GroupId".into()));
            }
            if !seen.insert(g.group_id.clone()) {
                continue;
            }
            let preferred = name_tag(&g.tags).or(Some(g.group_name.as_str()));
            let name = names.claim(preferred, &g.group_id, "sg");
            self.groups.insert(g.group_id.clone(), name.clone());
            out.push((file, g, name));
        }
        Ok(out)
    }

    /// The VPC's instances but terminated ones, in imported subnets, as hosts.
    fn map_instances(&mut self, other_vpcs: &mut usize) -> Result<Vec<HostSpec>, ImportError> {
        let mut names = Names::default();
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut terminated = Vec::new();
        let mut stopped = Vec::new();
        for (file, i) in std::mem::take(&mut self.input.instances) {
            let id = i.instance_id.clone();
            if id.is_empty() {
                return Err(self.invalid(file, "an instance without an InstanceId".into()));
            }
            // A terminated instance has no VPC any more: it is skipped, and said so, unless it
            // was in another VPC.
            let vpc_id = i.vpc_id.as_deref().filter(|v| !v.is_empty());
            let state = i.state.as_ref().map_or("", |s| s.name.as_str());
            let in_vpc = match (vpc_id, &i.subnet_id) {
                (Some(v), _) => v == self.vpc.vpc_id,
                (None, Some(s)) => self.subnets.contains_key(s),
                (None, None) => matches!(state, "terminated" | "shutting-down"),
            };
            if !in_vpc {
                *other_vpcs += 1;
                continue;
            }
            if !seen.insert(id.clone()) {
                continue;
            }
            if matches!(state, "terminated" | "shutting-down") {
                terminated.push(format!("{id} ({state})"));
                continue;
            }
            // Still in the VPC with its address and groups, so imported; a lab runs it.
            if matches!(state, "stopped" | "stopping") {
                stopped.push(format!("{id} ({state})"));
            }
            let Some((subnet, cidr)) = i
                .subnet_id
                .as_ref()
                .and_then(|s| self.subnets.get(s))
                .cloned()
            else {
                self.gap(
                    &id,
                    format!(
                        "instance in subnet {}",
                        i.subnet_id.as_deref().unwrap_or("(none)")
                    ),
                    "left out: its subnet is not imported",
                );
                continue;
            };
            let Some(text) = i.private_ip_address.as_deref() else {
                self.gap(&id, "instance without a private address", "left out");
                continue;
            };
            let address: Ipv4Addr = text.parse().map_err(|_| {
                self.invalid(
                    file,
                    format!("instance {id}: PrivateIpAddress `{text}` is not an IPv4 address"),
                )
            })?;
            if !cidr.contains(&address) {
                return Err(self.invalid(
                    file,
                    format!(
                        "instance {id}: PrivateIpAddress {address} is outside its subnet {} ({cidr})",
                        i.subnet_id.as_deref().unwrap_or_default()
                    ),
                ));
            }
            let mut host_groups = Vec::new();
            for g in &i.security_groups {
                match self.groups.get(&g.group_id) {
                    Some(n) if !host_groups.contains(n) => host_groups.push(n.clone()),
                    Some(_) => {}
                    None => self.gap(
                        &id,
                        format!("security group {}", g.group_id),
                        "left out: not in the describe-security-groups output of this VPC",
                    ),
                }
            }
            let name = names.claim(name_tag(&i.tags), &id, "i");
            for (n, nic) in i.network_interfaces.iter().enumerate() {
                if !nic.network_interface_id.is_empty() {
                    self.hosts
                        .insert(nic.network_interface_id.clone(), name.clone());
                }
                if n > 0 {
                    self.gap(
                        &id,
                        format!("network interface {}", nic.network_interface_id),
                        "left out: a host has one interface (the primary one is imported)",
                    );
                }
                for a in &nic.private_ip_addresses {
                    if a.private_ip_address != text && n == 0 {
                        self.gap(
                            &id,
                            format!("secondary private address {}", a.private_ip_address),
                            "left out: a host has one address",
                        );
                    }
                }
            }
            if let Some(public) = &i.public_ip_address {
                self.gap(
                    &id,
                    format!("public address {public}"),
                    "left out: a lab has no Internet",
                );
            }
            self.hosts.insert(id.clone(), name.clone());
            self.origins.hosts.push(origin(&id, name_tag(&i.tags)));
            out.push(HostSpec {
                name,
                address: Some(address),
                security_groups: host_groups,
                subnet: Some(subnet),
                impair: None,
            });
        }
        if !stopped.is_empty() {
            self.notes.push(format!(
                "Imported as running hosts, though stopped in AWS: {}.",
                stopped.join(", ")
            ));
        }
        if !terminated.is_empty() {
            self.notes.push(format!(
                "Skipped {} terminated instance{}: {}.",
                terminated.len(),
                if terminated.len() == 1 { "" } else { "s" },
                terminated.join(", ")
            ));
        }
        Ok(out)
    }
}

/// The comment naming where an item came from: its id and its Name tag.
pub(super) fn origin(id: &str, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{id} (Name {n:?})"),
        None => id.to_string(),
    }
}

#[cfg(test)]
mod tests;
