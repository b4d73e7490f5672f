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
use serde::Deserialize;

use super::names::Names;
use super::{ImportError, Imported, Origins, Unmodelled};
use crate::spec::{
    AclAction, AclEntry, HostSpec, MAX_ACL_RULE, NetworkAcl, PortRange, Protocol, Route,
    RouteTable, RouteTarget, SecurityGroup, SgRule, SubnetSpec, Topology, Vpc,
};

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

// The shapes the AWS CLI prints (`--output json`, the default), as far as tcplab reads them.
// Every field has a default: what the CLI leaves out is empty, and what tcplab does not read
// is ignored.

#[derive(Debug, Default, Deserialize)]
#[serde(
    rename_all = "PascalCase",
    default,
    expecting = "the JSON object an `aws ec2 describe-...` command prints"
)]
struct Output {
    vpcs: Option<Vec<AwsVpc>>,
    subnets: Option<Vec<AwsSubnet>>,
    security_groups: Option<Vec<AwsGroup>>,
    network_acls: Option<Vec<AwsAcl>>,
    route_tables: Option<Vec<AwsTable>>,
    reservations: Option<Vec<Reservation>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Tag {
    key: String,
    value: String,
}

fn name_tag(tags: &[Tag]) -> Option<&str> {
    tags.iter()
        .find(|t| t.key == "Name")
        .map(|t| t.value.as_str())
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct AwsVpc {
    vpc_id: String,
    cidr_block: Option<String>,
    cidr_block_association_set: Vec<CidrAssociation>,
    ipv6_cidr_block_association_set: Vec<Ipv6Association>,
    tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CidrAssociation {
    cidr_block: String,
    cidr_block_state: Option<StateName>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Ipv6Association {
    ipv6_cidr_block: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct StateName {
    state: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct AwsSubnet {
    subnet_id: String,
    vpc_id: String,
    cidr_block: Option<String>,
    ipv6_cidr_block_association_set: Vec<Ipv6Association>,
    tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct AwsGroup {
    group_id: String,
    group_name: String,
    description: String,
    vpc_id: String,
    ip_permissions: Vec<Permission>,
    ip_permissions_egress: Vec<Permission>,
    tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Permission {
    ip_protocol: String,
    from_port: Option<i64>,
    to_port: Option<i64>,
    ip_ranges: Vec<IpRange>,
    ipv6_ranges: Vec<Ipv6Range>,
    prefix_list_ids: Vec<PrefixListId>,
    user_id_group_pairs: Vec<GroupPair>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpRange {
    cidr_ip: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Ipv6Range {
    cidr_ipv6: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct PrefixListId {
    prefix_list_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct GroupPair {
    group_id: String,
    user_id: Option<String>,
    vpc_peering_connection_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct AwsAcl {
    network_acl_id: String,
    vpc_id: String,
    is_default: bool,
    entries: Vec<AclEntryJson>,
    associations: Vec<AclAssociation>,
    tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct AclEntryJson {
    rule_number: i64,
    protocol: String,
    rule_action: String,
    egress: bool,
    cidr_block: Option<String>,
    ipv6_cidr_block: Option<String>,
    port_range: Option<AwsPortRange>,
    icmp_type_code: Option<IcmpTypeCode>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct AwsPortRange {
    from: Option<i64>,
    to: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IcmpTypeCode {
    #[serde(rename = "Type")]
    kind: Option<i64>,
    code: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct AclAssociation {
    subnet_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct AwsTable {
    route_table_id: String,
    vpc_id: String,
    routes: Vec<AwsRoute>,
    associations: Vec<TableAssociation>,
    tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct AwsRoute {
    destination_cidr_block: Option<String>,
    destination_ipv6_cidr_block: Option<String>,
    destination_prefix_list_id: Option<String>,
    gateway_id: Option<String>,
    instance_id: Option<String>,
    network_interface_id: Option<String>,
    nat_gateway_id: Option<String>,
    transit_gateway_id: Option<String>,
    vpc_peering_connection_id: Option<String>,
    carrier_gateway_id: Option<String>,
    local_gateway_id: Option<String>,
    egress_only_internet_gateway_id: Option<String>,
    core_network_arn: Option<String>,
    state: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct TableAssociation {
    main: bool,
    subnet_id: Option<String>,
    gateway_id: Option<String>,
    association_state: Option<StateName>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Reservation {
    instances: Vec<AwsInstance>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct AwsInstance {
    instance_id: String,
    private_ip_address: Option<String>,
    public_ip_address: Option<String>,
    subnet_id: Option<String>,
    vpc_id: Option<String>,
    security_groups: Vec<GroupIdentifier>,
    state: Option<InstanceState>,
    network_interfaces: Vec<NetworkInterface>,
    tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct GroupIdentifier {
    group_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct InstanceState {
    name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct NetworkInterface {
    network_interface_id: String,
    private_ip_addresses: Vec<PrivateAddress>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct PrivateAddress {
    private_ip_address: String,
}

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
        let groups_in = self.take_groups(&mut other_vpcs);
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
    fn take_groups(&mut self, other_vpcs: &mut usize) -> Vec<(usize, AwsGroup, String)> {
        let mut names = Names::default();
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for (file, g) in std::mem::take(&mut self.input.groups) {
            if g.vpc_id != self.vpc.vpc_id {
                *other_vpcs += 1;
                continue;
            }
            if !seen.insert(g.group_id.clone()) {
                continue;
            }
            let preferred = name_tag(&g.tags).or(Some(g.group_name.as_str()));
            let name = names.claim(preferred, &g.group_id, "sg");
            self.groups.insert(g.group_id.clone(), name.clone());
            out.push((file, g, name));
        }
        out
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

    fn map_groups(
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
    fn sg_rules(
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

    /// The VPC's network ACLs, and each subnet's ACL name (the default ACL where none is
    /// associated).
    fn map_acls(
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
    fn acl_entry(
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

    /// The VPC's route tables, and each subnet's table name (the main table where none is
    /// associated).
    fn map_tables(
        &mut self,
        other_vpcs: &mut usize,
    ) -> Result<(Vec<RouteTable>, HashMap<String, String>), ImportError> {
        let mut names = Names::default();
        let mut out = Vec::new();
        let mut table_of = HashMap::new();
        let mut main = None;
        let mut seen = HashSet::new();
        for (file, t) in std::mem::take(&mut self.input.tables) {
            if t.vpc_id != self.vpc.vpc_id {
                *other_vpcs += 1;
                continue;
            }
            if !seen.insert(t.route_table_id.clone()) {
                continue;
            }
            let id = t.route_table_id.clone();
            let name = names.claim(name_tag(&t.tags), &id, "rtb");
            let mut routes = Vec::new();
            for r in &t.routes {
                if let Some((route, comment)) = self.route(file, &id, r)? {
                    if routes
                        .iter()
                        .any(|x: &Route| x.destination == route.destination)
                    {
                        return Err(self.invalid(
                            file,
                            format!(
                                "route table {id}: two routes to {} (AWS allows one)",
                                route.destination
                            ),
                        ));
                    }
                    self.origins.routes.push(comment);
                    routes.push(route);
                }
            }
            let mut is_main = false;
            for a in &t.associations {
                if a.association_state
                    .as_ref()
                    .is_some_and(|s| matches!(s.state.as_str(), "disassociated" | "failed"))
                {
                    continue;
                }
                if a.main {
                    is_main = true;
                    main = Some(name.clone());
                } else if let Some(s) = &a.subnet_id {
                    if self.subnets.contains_key(s) {
                        table_of.insert(s.clone(), name.clone());
                    }
                } else if let Some(g) = &a.gateway_id {
                    self.gap(
                        &id,
                        format!("edge association with gateway {g}"),
                        "left out: gateways are not modelled",
                    );
                }
            }
            let mut comment = origin(&id, name_tag(&t.tags));
            if is_main {
                comment.push_str(" (the VPC's main route table)");
            }
            self.origins.tables.push(comment);
            out.push(RouteTable { name, routes });
        }
        if let Some(m) = main {
            for id in self.subnets.keys() {
                table_of.entry(id.clone()).or_insert_with(|| m.clone());
            }
        }
        Ok((out, table_of))
    }

    /// One route and the comment above it; `None` for the `local` route, and for a route
    /// tcplab cannot model (listed).
    fn route(
        &mut self,
        file: usize,
        id: &str,
        r: &AwsRoute,
    ) -> Result<Option<(Route, String)>, ImportError> {
        if r.gateway_id.as_deref() == Some("local") {
            return Ok(None);
        }
        let target = target_of(r);
        let destination = match (
            &r.destination_cidr_block,
            &r.destination_ipv6_cidr_block,
            &r.destination_prefix_list_id,
        ) {
            (Some(c), _, _) => parse_cidr(c)
                .map_err(|m| self.invalid(file, format!("route table {id}: destination {m}")))?,
            (None, Some(v6), _) => {
                self.gap(
                    id,
                    format!("route to IPv6 {v6} via {target}"),
                    "left out (tcplab is IPv4 only)",
                );
                return Ok(None);
            }
            (None, None, Some(pl)) => {
                self.gap(
                    id,
                    format!("route to prefix list {pl} via {target}"),
                    "left out (prefix lists are not modelled)",
                );
                return Ok(None);
            }
            (None, None, None) => {
                return Err(self.invalid(
                    file,
                    format!("route table {id}: a route without a destination"),
                ));
            }
        };
        if self.cidr.contains(&destination) && destination.prefix_len() <= self.cidr.prefix_len() {
            self.gap(
                id,
                format!("route to {destination} via {target}"),
                "left out: the VPC's own range is the implicit local route",
            );
            return Ok(None);
        }
        if r.state.as_deref() == Some("blackhole") {
            return Ok(Some((
                Route {
                    destination,
                    target: RouteTarget::Blackhole,
                },
                format!("{target}: state blackhole (its target is gone)"),
            )));
        }
        let host = [&r.instance_id, &r.network_interface_id]
            .into_iter()
            .flatten()
            .find_map(|i| self.hosts.get(i))
            .cloned();
        if let Some(h) = host {
            return Ok(Some((
                Route {
                    destination,
                    target: RouteTarget::Instance(h),
                },
                target,
            )));
        }
        self.gap(
            id,
            format!("route to {destination} via {target}"),
            format!("stand-in `{STAND_IN}` (no model of this target)"),
        );
        Ok(Some((
            Route {
                destination,
                target: STAND_IN,
            },
            format!("{target}: not modelled, stand-in `{STAND_IN}`"),
        )))
    }
}

/// A route's target as AWS names it, e.g. `internet gateway igw-0123`.
fn target_of(r: &AwsRoute) -> String {
    let kinds: [(&Option<String>, &str); 10] = [
        (&r.instance_id, "instance"),
        (&r.network_interface_id, "network interface"),
        (&r.nat_gateway_id, "NAT gateway"),
        (&r.transit_gateway_id, "transit gateway"),
        (&r.vpc_peering_connection_id, "peering connection"),
        (&r.carrier_gateway_id, "carrier gateway"),
        (&r.local_gateway_id, "local gateway"),
        (
            &r.egress_only_internet_gateway_id,
            "egress-only internet gateway",
        ),
        (&r.core_network_arn, "core network"),
        (&r.gateway_id, "gateway"),
    ];
    for (id, kind) in kinds {
        if let Some(id) = id {
            let kind = match id.split('-').next() {
                Some("igw") => "internet gateway",
                Some("vgw") => "virtual private gateway",
                Some("vpce") => "VPC endpoint",
                _ => kind,
            };
            return format!("{kind} {}", crate::escape::line(id));
        }
    }
    "no target".into()
}

/// The comment naming where an item came from: its id and its Name tag.
fn origin(id: &str, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{id} (Name {n:?})"),
        None => id.to_string(),
    }
}

/// Whether a permission is AWS's default egress rule: all traffic to 0.0.0.0/0.
fn allows_all(p: &Permission) -> bool {
    matches!(p.ip_protocol.as_str(), "-1" | "all")
        && p.ip_ranges.iter().any(|r| r.cidr_ip == "0.0.0.0/0")
}

/// A CIDR as AWS writes one; host bits set are cleared (AWS never prints them).
fn parse_cidr(text: &str) -> Result<Ipv4Net, String> {
    text.parse::<Ipv4Net>()
        .map(|n| n.trunc())
        .map_err(|_| format!("`{}` is not an IPv4 CIDR", crate::escape::line(text)))
}

enum Proto {
    Known(Protocol),
    /// Not modelled, and why.
    Unknown(String),
}

/// An IP protocol as AWS writes it: a name, a number, or `-1` for all.
fn parse_protocol(text: &str) -> Proto {
    match text.to_ascii_lowercase().as_str() {
        "-1" | "all" => Proto::Known(Protocol::All),
        "tcp" | "6" => Proto::Known(Protocol::Tcp),
        "udp" | "17" => Proto::Known(Protocol::Udp),
        "icmp" | "1" => Proto::Known(Protocol::Icmp),
        "icmpv6" | "58" => Proto::Unknown("ICMPv6 (tcplab is IPv4 only)".into()),
        other => Proto::Unknown(format!(
            "protocol {} is not modelled (tcp, udp, icmp and all are)",
            crate::escape::line(other)
        )),
    }
}

/// How AWS's FromPort and ToPort map to a tcplab rule's ports.
#[derive(Debug, PartialEq)]
enum Ports {
    /// Exactly these ports (`None`: all).
    Exact(Option<PortRange>),
    /// An ICMP type or code, matched as all ICMP.
    IcmpWidened,
    /// Port 0 alone, which no traffic uses.
    PortZero,
}

/// The ports of a rule for `protocol` from AWS's FromPort and ToPort (an ICMP type and code
/// for ICMP, ignored for all protocols); an error for a range AWS never prints.
fn ports(protocol: Protocol, from: Option<i64>, to: Option<i64>) -> Result<Ports, String> {
    match protocol {
        Protocol::All => Ok(Ports::Exact(None)),
        Protocol::Icmp => match (from, to) {
            (None | Some(-1), None | Some(-1)) => Ok(Ports::Exact(None)),
            _ => Ok(Ports::IcmpWidened),
        },
        Protocol::Tcp | Protocol::Udp => match (from, to) {
            (None, None) | (Some(-1), Some(-1)) => Ok(Ports::Exact(None)),
            (Some(f), Some(t)) if (0..=65535).contains(&f) && (f..=65535).contains(&t) => {
                let (f, t) = (f as u16, t as u16);
                Ok(match (f, t) {
                    (_, 0) => Ports::PortZero,
                    (0 | 1, 65535) => Ports::Exact(None),
                    (f, t) => Ports::Exact(Some(PortRange {
                        first: f.max(1),
                        last: t,
                    })),
                })
            }
            (f, t) => Err(format!(
                "ports {} to {} are not a range: give 0 to 65535, the first no larger than the last",
                f.map_or("(none)".into(), |v| v.to_string()),
                t.map_or("(none)".into(), |v| v.to_string()),
            )),
        },
    }
}

/// A protocol and its ports as a person reads them, e.g. `tcp 80-443`.
fn describe(protocol: &str, from: Option<i64>, to: Option<i64>) -> String {
    let p = match parse_protocol(protocol) {
        Proto::Known(Protocol::Icmp) => {
            return match (from, to) {
                (Some(f), Some(c)) if f != -1 => format!("icmp type {f} code {c}"),
                (Some(f), _) if f != -1 => format!("icmp type {f}"),
                _ => "icmp".into(),
            };
        }
        Proto::Known(Protocol::All) => return "all traffic".into(),
        Proto::Known(p) => p.to_string(),
        Proto::Unknown(_) => format!("protocol {}", crate::escape::line(protocol)),
    };
    match (from, to) {
        (Some(f), Some(t)) if f == t && f != -1 => format!("{p} {f}"),
        (Some(f), Some(t)) if f != -1 => format!("{p} {f}-{t}"),
        _ => p,
    }
}

#[cfg(test)]
mod tests;
