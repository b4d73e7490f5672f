//! The shapes the AWS CLI prints (`--output json`, the default), as far as tcplab reads them.
//! Every field has a default: what the CLI leaves out is empty, and what tcplab does not read
//! is ignored.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(
    rename_all = "PascalCase",
    default,
    expecting = "the JSON object an `aws ec2 describe-...` command prints"
)]
pub(super) struct Output {
    pub(super) vpcs: Option<Vec<AwsVpc>>,
    pub(super) subnets: Option<Vec<AwsSubnet>>,
    pub(super) security_groups: Option<Vec<AwsGroup>>,
    pub(super) network_acls: Option<Vec<AwsAcl>>,
    pub(super) route_tables: Option<Vec<AwsTable>>,
    pub(super) reservations: Option<Vec<Reservation>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Tag {
    pub(super) key: String,
    pub(super) value: String,
}

pub(super) fn name_tag(tags: &[Tag]) -> Option<&str> {
    tags.iter()
        .find(|t| t.key == "Name")
        .map(|t| t.value.as_str())
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct AwsVpc {
    pub(super) vpc_id: String,
    pub(super) cidr_block: Option<String>,
    pub(super) cidr_block_association_set: Vec<CidrAssociation>,
    pub(super) ipv6_cidr_block_association_set: Vec<Ipv6Association>,
    pub(super) tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct CidrAssociation {
    pub(super) cidr_block: String,
    pub(super) cidr_block_state: Option<StateName>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Ipv6Association {
    pub(super) ipv6_cidr_block: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct StateName {
    pub(super) state: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct AwsSubnet {
    pub(super) subnet_id: String,
    pub(super) vpc_id: String,
    pub(super) cidr_block: Option<String>,
    pub(super) ipv6_cidr_block_association_set: Vec<Ipv6Association>,
    pub(super) tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct AwsGroup {
    pub(super) group_id: String,
    pub(super) group_name: String,
    pub(super) description: String,
    pub(super) vpc_id: String,
    pub(super) ip_permissions: Vec<Permission>,
    pub(super) ip_permissions_egress: Vec<Permission>,
    pub(super) tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Permission {
    pub(super) ip_protocol: String,
    pub(super) from_port: Option<i64>,
    pub(super) to_port: Option<i64>,
    pub(super) ip_ranges: Vec<IpRange>,
    pub(super) ipv6_ranges: Vec<Ipv6Range>,
    pub(super) prefix_list_ids: Vec<PrefixListId>,
    pub(super) user_id_group_pairs: Vec<GroupPair>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct IpRange {
    pub(super) cidr_ip: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Ipv6Range {
    pub(super) cidr_ipv6: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct PrefixListId {
    pub(super) prefix_list_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct GroupPair {
    pub(super) group_id: String,
    pub(super) user_id: Option<String>,
    pub(super) vpc_peering_connection_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct AwsAcl {
    pub(super) network_acl_id: String,
    pub(super) vpc_id: String,
    pub(super) is_default: bool,
    pub(super) entries: Vec<AclEntryJson>,
    pub(super) associations: Vec<AclAssociation>,
    pub(super) tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct AclEntryJson {
    pub(super) rule_number: i64,
    pub(super) protocol: String,
    pub(super) rule_action: String,
    pub(super) egress: bool,
    pub(super) cidr_block: Option<String>,
    pub(super) ipv6_cidr_block: Option<String>,
    pub(super) port_range: Option<AwsPortRange>,
    pub(super) icmp_type_code: Option<IcmpTypeCode>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct AwsPortRange {
    pub(super) from: Option<i64>,
    pub(super) to: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct IcmpTypeCode {
    #[serde(rename = "Type")]
    pub(super) kind: Option<i64>,
    pub(super) code: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct AclAssociation {
    pub(super) subnet_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct AwsTable {
    pub(super) route_table_id: String,
    pub(super) vpc_id: String,
    pub(super) routes: Vec<AwsRoute>,
    pub(super) associations: Vec<TableAssociation>,
    pub(super) tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct AwsRoute {
    pub(super) destination_cidr_block: Option<String>,
    pub(super) destination_ipv6_cidr_block: Option<String>,
    pub(super) destination_prefix_list_id: Option<String>,
    pub(super) gateway_id: Option<String>,
    pub(super) instance_id: Option<String>,
    pub(super) network_interface_id: Option<String>,
    pub(super) nat_gateway_id: Option<String>,
    pub(super) transit_gateway_id: Option<String>,
    pub(super) vpc_peering_connection_id: Option<String>,
    pub(super) carrier_gateway_id: Option<String>,
    pub(super) local_gateway_id: Option<String>,
    pub(super) egress_only_internet_gateway_id: Option<String>,
    pub(super) core_network_arn: Option<String>,
    pub(super) state: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct TableAssociation {
    pub(super) main: bool,
    pub(super) subnet_id: Option<String>,
    pub(super) gateway_id: Option<String>,
    pub(super) association_state: Option<StateName>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Reservation {
    pub(super) instances: Vec<AwsInstance>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct AwsInstance {
    pub(super) instance_id: String,
    pub(super) private_ip_address: Option<String>,
    pub(super) public_ip_address: Option<String>,
    pub(super) subnet_id: Option<String>,
    pub(super) vpc_id: Option<String>,
    pub(super) security_groups: Vec<GroupIdentifier>,
    pub(super) state: Option<InstanceState>,
    pub(super) network_interfaces: Vec<NetworkInterface>,
    pub(super) tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct GroupIdentifier {
    pub(super) group_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct InstanceState {
    pub(super) name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct NetworkInterface {
    pub(super) network_interface_id: String,
    pub(super) private_ip_addresses: Vec<PrivateAddress>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct PrivateAddress {
    pub(super) private_ip_address: String,
}
