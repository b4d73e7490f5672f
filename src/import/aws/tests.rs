//! The AWS mapping, item by item, against the fixture VPC in fixtures/aws (written from the
//! AWS CLI's documented output shapes) and variants of it.

use serde_json::{Value, json};

use super::*;
use ipnet::Ipv4Net;

use crate::spec::{AclAction, Protocol, Route, RouteTarget, SecurityGroup, SgRule};

const FIXTURES: [(&str, &str); 6] = [
    ("vpcs.json", include_str!("../../../fixtures/aws/vpcs.json")),
    (
        "subnets.json",
        include_str!("../../../fixtures/aws/subnets.json"),
    ),
    (
        "security-groups.json",
        include_str!("../../../fixtures/aws/security-groups.json"),
    ),
    (
        "network-acls.json",
        include_str!("../../../fixtures/aws/network-acls.json"),
    ),
    (
        "route-tables.json",
        include_str!("../../../fixtures/aws/route-tables.json"),
    ),
    (
        "instances.json",
        include_str!("../../../fixtures/aws/instances.json"),
    ),
];

/// The fixture files as JSON values, to change before importing.
fn fixture() -> Vec<(String, Value)> {
    FIXTURES
        .iter()
        .map(|(n, t)| (n.to_string(), serde_json::from_str(t).unwrap()))
        .collect()
}

fn texts(files: &[(String, Value)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(n, v)| (n.clone(), v.to_string()))
        .collect()
}

fn import_values(files: &[(String, Value)]) -> Result<Imported, ImportError> {
    import_texts(&texts(files), None)
}

fn imported() -> Imported {
    import_values(&fixture()).unwrap()
}

/// The fixture with `change` applied to the file holding `key`.
fn with(key: &str, change: impl FnOnce(&mut Value)) -> Vec<(String, Value)> {
    let mut files = fixture();
    let file = files
        .iter_mut()
        .find(|(_, v)| v.get(key).is_some())
        .unwrap();
    change(&mut file.1);
    files
}

fn err(files: &[(String, Value)]) -> String {
    import_values(files).unwrap_err().to_string()
}

fn gaps(i: &Imported) -> Vec<String> {
    i.unmodelled.iter().map(ToString::to_string).collect()
}

fn has_gap(i: &Imported, parts: &[&str]) -> bool {
    gaps(i).iter().any(|g| parts.iter().all(|p| g.contains(p)))
}

fn vpc(i: &Imported) -> &Vpc {
    i.topology.vpc.as_ref().unwrap()
}

fn group<'a>(i: &'a Imported, name: &str) -> &'a SecurityGroup {
    i.topology
        .security_groups
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no group {name}"))
}

#[test]
fn the_vpc_and_its_subnets() {
    let i = imported();
    let v = vpc(&i);
    assert_eq!(v.cidr.to_string(), "10.0.0.0/16");
    assert!(!v.broadcast);
    let subnets: Vec<(&str, String)> = v
        .subnets
        .iter()
        .map(|s| (s.name.as_str(), s.cidr.to_string()))
        .collect();
    assert_eq!(
        subnets,
        [
            ("public-a", "10.0.1.0/24".to_string()),
            ("private-a", "10.0.2.0/24".to_string())
        ]
    );
    assert!(
        i.source.contains("vpc-0a1b2c3d4e5f60718") && i.source.contains("shop-vpc"),
        "{}",
        i.source
    );
}

#[test]
fn instances_become_hosts_with_addresses_subnets_and_groups() {
    let i = imported();
    let hosts: Vec<(&str, String, &str, Vec<&str>)> = i
        .topology
        .hosts
        .iter()
        .map(|h| {
            (
                h.name.as_str(),
                h.address.unwrap().to_string(),
                h.subnet.as_deref().unwrap(),
                h.security_groups.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        hosts,
        [
            ("web", "10.0.1.10".into(), "public-a", vec!["web-sg"]),
            (
                "app-server",
                "10.0.2.20".into(),
                "private-a",
                vec!["app-sg"]
            ),
            // No Name tag: named after its id.
            (
                "i-0c3c3c3c3c3c3",
                "10.0.2.30".into(),
                "private-a",
                vec!["database", "default"]
            ),
        ]
    );
    // The terminated instance is skipped, and said so.
    assert!(
        i.notes
            .iter()
            .any(|n| n.contains("i-0d4d4d4d4d4d4d4d4 (terminated)")),
        "{:?}",
        i.notes
    );
    assert!(
        i.notes
            .iter()
            .any(|n| n.contains("stopped in AWS: i-0c3c3c3c3c3c3c3c3 (stopped)")),
        "{:?}",
        i.notes
    );
    assert!(has_gap(
        &i,
        &["i-0a1a1a1a1a1a1a1a1", "public address 203.0.113.10"]
    ));
}

#[test]
fn security_group_rules_cidrs_and_group_references() {
    let i = imported();
    let web = group(&i, "web-sg");
    assert_eq!(web.description, "web tier: HTTPS from anywhere");
    assert_eq!(
        web.ingress,
        [SgRule::tcp(443).cidr("0.0.0.0/0".parse().unwrap())]
    );
    // The default egress rule is tcplab's default: egress left out.
    assert_eq!(web.egress, None);
    let app = group(&i, "app-sg");
    assert_eq!(
        app.ingress,
        [
            SgRule::tcp(8080).group("web-sg"),
            SgRule::icmp().cidr("10.0.0.0/16".parse().unwrap()),
        ]
    );
    // Named by its Name tag, not its GroupName; its egress is not the default.
    let db = group(&i, "database");
    assert_eq!(db.ingress, [SgRule::tcp(5432).group("app-sg")]);
    assert_eq!(
        db.egress,
        Some(vec![SgRule::tcp(443).cidr("0.0.0.0/0".parse().unwrap())])
    );
    // A group referring to itself.
    let default = group(&i, "default");
    assert_eq!(
        default.ingress,
        [SgRule::new(Protocol::All).group("default")]
    );
    assert!(has_gap(
        &i,
        &[
            "sg-0a11a11a11a11a11a",
            "ingress tcp 443 from IPv6 ::/0",
            "left out"
        ]
    ));
    assert!(has_gap(
        &i,
        &[
            "sg-0c33c33c33c33c33c",
            "prefix list pl-0f0f0f0f0f0f0f0f0",
            "left out"
        ]
    ));
}

#[test]
fn network_acls_entries_and_associations() {
    let i = imported();
    let v = vpc(&i);
    let names: Vec<&str> = v.network_acls.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["acl-0e0e0e0e0e0", "private-nacl"]);
    let default = &v.network_acls[0];
    // The final `*` deny is tcplab's implicit one; the IPv6 entry is listed.
    assert_eq!(default.inbound.len(), 1);
    assert_eq!(default.outbound.len(), 1);
    assert!(has_gap(
        &i,
        &[
            "acl-0e0e0e0e0e0e0e0e0",
            "outbound entry 101",
            "IPv6 ::/0",
            "left out"
        ]
    ));
    let private = &v.network_acls[1];
    let inbound: Vec<(i64, AclAction, Protocol, Option<String>, String)> = private
        .inbound
        .iter()
        .map(|e| {
            (
                e.rule,
                e.action,
                e.protocol,
                e.ports.map(|p| p.to_string()),
                e.cidr.to_string(),
            )
        })
        .collect();
    assert_eq!(
        inbound,
        [
            (
                100,
                AclAction::Allow,
                Protocol::Tcp,
                Some("8080".into()),
                "10.0.1.0/24".into()
            ),
            (
                110,
                AclAction::Allow,
                Protocol::Tcp,
                Some("5432".into()),
                "10.0.2.0/24".into()
            ),
            // The ephemeral ports for return traffic.
            (
                120,
                AclAction::Allow,
                Protocol::Tcp,
                Some("1024-65535".into()),
                "0.0.0.0/0".into()
            ),
            // ICMP echo only in AWS: widened to all ICMP, and said so.
            (
                130,
                AclAction::Allow,
                Protocol::Icmp,
                None,
                "10.0.0.0/16".into()
            ),
        ]
    );
    assert!(has_gap(
        &i,
        &[
            "acl-0f1f1f1f1f1f1f1f1",
            "inbound entry 130 allow icmp type 8",
            "widened"
        ]
    ));
    let outbound: Vec<(i64, AclAction, Protocol)> = private
        .outbound
        .iter()
        .map(|e| (e.rule, e.action, e.protocol))
        .collect();
    assert_eq!(
        outbound,
        [
            (100, AclAction::Allow, Protocol::Tcp),
            (105, AclAction::Deny, Protocol::Udp),
            (110, AclAction::Allow, Protocol::Tcp)
        ]
    );
    let acl_of: Vec<Option<&str>> = v.subnets.iter().map(|s| s.network_acl.as_deref()).collect();
    assert_eq!(acl_of, [Some("acl-0e0e0e0e0e0"), Some("private-nacl")]);
}

#[test]
fn route_tables_routes_stand_ins_and_associations() {
    let i = imported();
    let v = vpc(&i);
    let public = &v.route_tables[0];
    assert_eq!(public.name, "public-rt");
    // The local route is implicit; the internet gateway gets the stand-in, listed.
    assert_eq!(
        public.routes,
        [Route {
            destination: "0.0.0.0/0".parse().unwrap(),
            target: RouteTarget::Unreachable
        }]
    );
    assert!(has_gap(
        &i,
        &[
            "rtb-0aa0aa0aa0aa0aa0a",
            "internet gateway igw-0c0ffee0c0ffee0c0",
            "stand-in `unreachable`"
        ]
    ));
    let private = &v.route_tables[1];
    assert_eq!(
        private.routes,
        [
            Route {
                destination: "0.0.0.0/0".parse().unwrap(),
                target: RouteTarget::Blackhole
            },
            Route {
                destination: "172.16.0.0/12".parse().unwrap(),
                target: RouteTarget::Instance("web".into())
            },
        ]
    );
    assert!(has_gap(
        &i,
        &[
            "rtb-0bb0bb0bb0bb0bb0b",
            "prefix list pl-6da54004",
            "VPC endpoint",
            "left out"
        ]
    ));
    // The public subnet has no association: the main table.
    let table_of: Vec<Option<&str>> = v.subnets.iter().map(|s| s.route_table.as_deref()).collect();
    assert_eq!(table_of, [Some("public-rt"), Some("private-rt")]);
}

#[test]
fn every_gateway_kind_gets_the_stand_in_and_a_line() {
    let kinds = [
        ("GatewayId", "igw-1", "internet gateway igw-1"),
        ("GatewayId", "vgw-1", "virtual private gateway vgw-1"),
        ("NatGatewayId", "nat-1", "NAT gateway nat-1"),
        ("TransitGatewayId", "tgw-1", "transit gateway tgw-1"),
        (
            "VpcPeeringConnectionId",
            "pcx-1",
            "peering connection pcx-1",
        ),
        ("CarrierGatewayId", "cagw-1", "carrier gateway cagw-1"),
        ("LocalGatewayId", "lgw-1", "local gateway lgw-1"),
        (
            "NetworkInterfaceId",
            "eni-elsewhere",
            "network interface eni-elsewhere",
        ),
        ("InstanceId", "i-elsewhere", "instance i-elsewhere"),
    ];
    for (field, id, said) in kinds {
        let files = with("RouteTables", |v| {
            v["RouteTables"][1]["Routes"] = json!([
                { "DestinationCidrBlock": "192.168.0.0/16", field: id, "State": "active" }
            ]);
        });
        let i = import_values(&files).unwrap();
        assert_eq!(
            vpc(&i).route_tables[1].routes[0].target,
            STAND_IN,
            "{field}"
        );
        assert!(
            has_gap(&i, &["route to 192.168.0.0/16 via", said, "stand-in"]),
            "{:?}",
            gaps(&i)
        );
    }
}

#[test]
fn a_route_via_an_imported_instances_interface_targets_the_instance() {
    let files = with("RouteTables", |v| {
        v["RouteTables"][1]["Routes"] = json!([
            { "DestinationCidrBlock": "192.168.0.0/16", "NetworkInterfaceId": "eni-0b2b2b2b2b2b2b2b2", "State": "active" }
        ]);
    });
    let i = import_values(&files).unwrap();
    assert_eq!(
        vpc(&i).route_tables[1].routes[0].target,
        RouteTarget::Instance("app-server".into())
    );
}

#[test]
fn ipv6_routes_and_the_vpc_range_are_listed() {
    let files = with("RouteTables", |v| {
        v["RouteTables"][0]["Routes"] = json!([
            { "DestinationIpv6CidrBlock": "::/0", "EgressOnlyInternetGatewayId": "eigw-1", "State": "active" },
            { "DestinationCidrBlock": "10.0.0.0/16", "TransitGatewayId": "tgw-1", "State": "active" }
        ]);
    });
    let i = import_values(&files).unwrap();
    assert!(vpc(&i).route_tables[0].routes.is_empty());
    assert!(has_gap(
        &i,
        &[
            "route to IPv6 ::/0 via egress-only internet gateway eigw-1",
            "left out"
        ]
    ));
    assert!(has_gap(
        &i,
        &["route to 10.0.0.0/16", "implicit local route"]
    ));
}

#[test]
fn protocols_ports_and_icmp_as_aws_writes_them() {
    let cidr = json!([{ "CidrIp": "10.0.0.0/8" }]);
    let perms = json!([
        { "IpProtocol": "6", "FromPort": 0, "ToPort": 65535, "IpRanges": cidr },
        { "IpProtocol": "17", "FromPort": 53, "ToPort": 53, "IpRanges": cidr },
        { "IpProtocol": "1", "FromPort": 3, "ToPort": 4, "IpRanges": cidr },
        { "IpProtocol": "TCP", "FromPort": 0, "ToPort": 1023, "IpRanges": cidr },
        { "IpProtocol": "50", "IpRanges": cidr },
        { "IpProtocol": "58", "FromPort": -1, "ToPort": -1, "IpRanges": cidr },
        { "IpProtocol": "tcp", "FromPort": 0, "ToPort": 0, "IpRanges": cidr },
    ]);
    let files = with("SecurityGroups", |v| {
        v["SecurityGroups"][1]["IpPermissions"] = perms;
        v["SecurityGroups"][1]["IpPermissionsEgress"] = json!([]);
    });
    let i = import_values(&files).unwrap();
    let web = group(&i, "web-sg");
    let net: Ipv4Net = "10.0.0.0/8".parse().unwrap();
    assert_eq!(
        web.ingress,
        [
            SgRule::new(Protocol::Tcp).cidr(net),
            SgRule::udp(53).cidr(net),
            SgRule::icmp().cidr(net),
            SgRule::new(Protocol::Tcp)
                .ports("1-1023".parse().unwrap())
                .cidr(net),
        ]
    );
    // No egress permission at all: nothing goes out.
    assert_eq!(web.egress, Some(vec![]));
    assert!(has_gap(
        &i,
        &["ingress icmp type 3 code 4", "widened to all ICMP"]
    ));
    assert!(has_gap(
        &i,
        &["ingress protocol 50", "left out: protocol 50"]
    ));
    assert!(has_gap(&i, &["ICMPv6"]));
    assert!(has_gap(&i, &["ingress tcp 0 from its peers", "port 0"]));
}

#[test]
fn the_default_egress_rule_beside_others_still_allows_all() {
    let files = with("SecurityGroups", |v| {
        let egress = &mut v["SecurityGroups"][3]["IpPermissionsEgress"];
        egress
            .as_array_mut()
            .unwrap()
            .push(json!({ "IpProtocol": "-1", "IpRanges": [{ "CidrIp": "0.0.0.0/0" }] }));
    });
    assert_eq!(
        group(&import_values(&files).unwrap(), "database").egress,
        None
    );
}

#[test]
fn a_reference_to_a_group_not_imported_is_listed() {
    let files = with("SecurityGroups", |v| {
        v["SecurityGroups"][1]["IpPermissions"][0]["UserIdGroupPairs"] =
            json!([{ "GroupId": "sg-0elsewhere", "UserId": "444455556666" }]);
    });
    let i = import_values(&files).unwrap();
    assert!(has_gap(
        &i,
        &[
            "sg-0a11a11a11a11a11a",
            "group sg-0elsewhere of account 444455556666",
            "left out"
        ]
    ));
}

#[test]
fn names_that_sanitise_alike_are_made_unique() {
    let files = with("Reservations", |v| {
        for (r, tag) in [(0, "App Server"), (1, "app_server")] {
            v["Reservations"][r]["Instances"][0]["Tags"] = json!([{ "Key": "Name", "Value": tag }]);
        }
        v["Reservations"][1]["Instances"][1]["Tags"] =
            json!([{ "Key": "Name", "Value": "APP--SERVER!" }]);
    });
    let i = import_values(&files).unwrap();
    let names: Vec<&str> = i.topology.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["app-server", "app-server-2", "app-server-3"]);
}

#[test]
fn hostile_text_in_tags_and_descriptions_stays_in_comments_and_strings() {
    let evil = "x\n[[host]]\nname = \"evil\"\r\u{1b}[2J\u{202e}";
    let files = with("Reservations", |v| {
        v["Reservations"][0]["Instances"][0]["Tags"] = json!([{ "Key": "Name", "Value": evil }]);
    });
    let files = {
        let mut files = files;
        let sg = files
            .iter_mut()
            .find(|(_, v)| v.get("SecurityGroups").is_some())
            .unwrap();
        sg.1["SecurityGroups"][1]["Description"] = json!(evil.repeat(1000));
        sg.1["SecurityGroups"][1]["Tags"] =
            json!([{ "Key": "Name", "Value": "x".repeat(100_000) }]);
        files
    };
    let i = import_values(&files).unwrap();
    let text = i.to_toml().unwrap();
    let (topo, resolved) = Topology::from_toml(&text, "imported.toml").unwrap();
    assert_eq!(topo, i.topology);
    assert_eq!(resolved.hosts.len(), 3);
    // The text is in a comment and a string, never a line of its own.
    assert_eq!(
        text.lines().filter(|l| *l == "[[host]]").count(),
        3,
        "{text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("name = \"evil")),
        "{text}"
    );
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
    assert!(text.lines().all(|l| l.len() < 1000), "a line is too long");
}

#[test]
fn the_written_file_loads_resolves_and_keeps_ids_in_comments() {
    let i = imported();
    let text = i.to_toml().unwrap();
    let (topo, resolved) = Topology::from_toml(&text, "imported.toml").unwrap();
    assert_eq!(topo, i.topology);
    assert_eq!(resolved.hosts.len(), 3);
    assert_eq!(resolved.vpc.as_ref().unwrap().subnets.len(), 2);
    let lines: Vec<&str> = text.lines().collect();
    let above = |header: &str, n: usize| -> &str {
        let at = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| **l == header)
            .nth(n)
            .unwrap()
            .0;
        lines[at - 1]
    };
    assert!(above("[[host]]", 0).contains("i-0a1a1a1a1a1a1a1a1"));
    assert!(above("[[host]]", 2).contains("i-0c3c3c3c3c3c3c3c3"));
    assert!(above("[[security_group]]", 3).contains("sg-0c33c33c33c33c33c"));
    assert!(above("[[vpc.subnet]]", 1).contains("subnet-0ddd3333eeee4444f"));
    assert!(above("[[vpc.network_acl]]", 0).contains("default network ACL"));
    assert!(above("[[vpc.route_table]]", 0).contains("main route table"));
    assert!(above("[[vpc.route_table.routes]]", 0).contains("igw-0c0ffee0c0ffee0c0"));
    assert!(above("[[vpc.route_table.routes]]", 1).contains("blackhole"));
    // The header lists what is not modelled, each item once.
    for g in gaps(&i) {
        assert!(text.contains(&format!("#   - {g}")), "{g}");
    }
    assert!(!text.contains("firewall = []"));
    assert!(!text.starts_with("subnet"));
}

#[test]
fn the_same_key_in_several_files_adds_up_and_duplicates_count_once() {
    let mut files = fixture();
    let extra = json!({ "Reservations": [{ "Instances": [{
        "InstanceId": "i-0e5e5e5e5e5e5e5e5", "PrivateIpAddress": "10.0.1.50",
        "SubnetId": "subnet-0aaa1111bbbb2222c", "VpcId": "vpc-0a1b2c3d4e5f60718",
        "State": { "Name": "running" }, "SecurityGroups": []
    }]}]});
    files.push(("page2.json".into(), extra));
    // The same file twice (given, and in its folder).
    files.push(("again.json".into(), fixture()[5].1.clone()));
    let i = import_values(&files).unwrap();
    assert_eq!(i.topology.hosts.len(), 4);
}

#[test]
fn several_vpcs_need_a_choice() {
    let files = with("Vpcs", |v| {
        let other = json!({ "VpcId": "vpc-0other", "CidrBlock": "172.31.0.0/16" });
        v["Vpcs"].as_array_mut().unwrap().push(other);
    });
    let e = err(&files);
    assert!(
        e.contains("2 VPCs (vpc-0a1b2c3d4e5f60718, vpc-0other): choose one with --vpc ID"),
        "{e}"
    );
    let i = import_texts(&texts(&files), Some("vpc-0a1b2c3d4e5f60718")).unwrap();
    assert_eq!(i.topology.hosts.len(), 3);
    let e = import_texts(&texts(&files), Some("vpc-nope"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no VPC `vpc-nope`"), "{e}");
    // The other VPC has no instance.
    let e = import_texts(&texts(&files), Some("vpc-0other"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no instance tcplab can import"), "{e}");
}

#[test]
fn resources_of_other_vpcs_are_left_out_and_counted() {
    let files = with("Subnets", |v| {
        let other =
            json!({ "SubnetId": "subnet-x", "VpcId": "vpc-0other", "CidrBlock": "172.31.0.0/20" });
        v["Subnets"].as_array_mut().unwrap().push(other);
    });
    let i = import_values(&files).unwrap();
    assert_eq!(vpc(&i).subnets.len(), 2);
    assert!(
        i.notes
            .iter()
            .any(|n| n.contains("1 resource of other VPCs")),
        "{:?}",
        i.notes
    );
}

#[test]
fn secondary_cidrs_and_their_subnets_are_listed() {
    let files = with("Vpcs", |v| {
        v["Vpcs"][0]["CidrBlockAssociationSet"]
            .as_array_mut()
            .unwrap()
            .push(
                json!({ "CidrBlock": "10.1.0.0/16", "CidrBlockState": { "State": "associated" } }),
            );
    });
    let files = {
        let mut files = files;
        let s = files
            .iter_mut()
            .find(|(_, v)| v.get("Subnets").is_some())
            .unwrap();
        s.1["Subnets"].as_array_mut().unwrap().push(json!({
            "SubnetId": "subnet-0sec", "VpcId": "vpc-0a1b2c3d4e5f60718", "CidrBlock": "10.1.0.0/24"
        }));
        files
    };
    let i = import_values(&files).unwrap();
    assert!(has_gap(
        &i,
        &["vpc-0a1b2c3d4e5f60718", "secondary CIDR 10.1.0.0/16"]
    ));
    assert!(has_gap(
        &i,
        &["subnet-0sec", "outside the VPC's primary CIDR", "left out"]
    ));
}

// Malformed and hostile input: one clear error naming the file and what is wrong.

#[test]
fn truncated_json_names_the_file_and_the_place() {
    let mut t = texts(&fixture());
    let half = t[2].1.len() / 2;
    t[2].1.truncate(half);
    let e = import_texts(&t, None).unwrap_err().to_string();
    assert!(e.starts_with("security-groups.json:1:"), "{e}");
    assert!(e.contains("EOF while parsing"), "{e}");
    assert_eq!(e.lines().count(), 1);
}

#[test]
fn wrong_types_name_the_file_the_place_and_the_type() {
    let files = with("SecurityGroups", |v| {
        v["SecurityGroups"][1]["IpPermissions"][0]["FromPort"] = json!("443");
    });
    let e = err(&files);
    assert!(e.starts_with("security-groups.json:1:"), "{e}");
    assert!(
        e.contains("invalid type: string \"443\", expected i64"),
        "{e}"
    );
    for (bad, said) in [
        ("[1, 2]", "x.json: a JSON array, not the JSON object"),
        ("\"text\"", "x.json: starts with `\"`, not the JSON object"),
        ("", "x.json: empty, not the JSON object"),
        ("Vpcs:\n- a", "x.json: starts with `V`, not the JSON object"),
    ] {
        let e = import_texts(&[("x.json".into(), bad.to_string())], None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(said), "{e}");
        assert!(e.ends_with("(run it with `--output json`)"), "{e}");
    }
    let e = import_texts(&[("x.json".into(), "{\"Vpcs\": 3}".into())], None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "x.json:1:10: invalid type: integer `3`, expected a sequence"
    );
    let files = with("Subnets", |v| v["Subnets"] = json!({ "SubnetId": "x" }));
    assert!(
        err(&files).contains("expected a sequence"),
        "{}",
        err(&files)
    );
}

#[test]
fn huge_numbers_are_refused() {
    for huge in [
        "1e400",
        "99999999999999999999999",
        "-99999999999999999999",
        "1.5",
    ] {
        let text = include_str!("../../../fixtures/aws/network-acls.json").replacen(
            "\"RuleNumber\": 100",
            &format!("\"RuleNumber\": {huge}"),
            1,
        );
        let mut t = texts(&fixture());
        t[3].1 = text;
        let e = import_texts(&t, None).unwrap_err().to_string();
        assert!(e.starts_with("network-acls.json:"), "{huge}: {e}");
    }
    let files = with("SecurityGroups", |v| {
        v["SecurityGroups"][1]["IpPermissions"][0]["ToPort"] = json!(70000);
    });
    let e = err(&files);
    assert!(
        e.contains(
            "security group sg-0a11a11a11a11a11a: ingress ports 443 to 70000 are not a range"
        ),
        "{e}"
    );
}

#[test]
fn rule_numbers_out_of_range_or_twice_are_refused() {
    for n in [0, -5, 32768, 40000] {
        let files = with("NetworkAcls", |v| {
            v["NetworkAcls"][1]["Entries"][0]["RuleNumber"] = json!(n);
        });
        let e = err(&files);
        assert!(
            e.contains(&format!(
                "network ACL acl-0f1f1f1f1f1f1f1f1: inbound entry number {n} is not one AWS uses"
            )),
            "{e}"
        );
    }
    let files = with("NetworkAcls", |v| {
        v["NetworkAcls"][1]["Entries"][1]["RuleNumber"] = json!(100);
    });
    assert!(
        err(&files).contains("inbound entry 100 appears twice"),
        "{}",
        err(&files)
    );
    // The final deny is 32767; an allow numbered so is not AWS's.
    let files = with("NetworkAcls", |v| {
        v["NetworkAcls"][1]["Entries"][0]["RuleNumber"] = json!(32767);
    });
    assert!(err(&files).contains("entry number 32767 is not one AWS uses"));
    let files = with("NetworkAcls", |v| {
        v["NetworkAcls"][1]["Entries"][0]["RuleAction"] = json!("maybe");
    });
    assert!(err(&files).contains("RuleAction `maybe` is neither allow nor deny"));
}

#[test]
fn bad_addresses_and_cidrs_are_refused_with_the_resource() {
    let files = with("Reservations", |v| {
        v["Reservations"][0]["Instances"][0]["PrivateIpAddress"] = json!("10.0.9.9");
    });
    assert!(
        err(&files).contains(
            "instance i-0a1a1a1a1a1a1a1a1: PrivateIpAddress 10.0.9.9 is outside its subnet"
        ),
        "{}",
        err(&files)
    );
    let files = with("Reservations", |v| {
        v["Reservations"][0]["Instances"][0]["PrivateIpAddress"] = json!("ten");
    });
    assert!(err(&files).contains("`ten` is not an IPv4 address"));
    let files = with("Subnets", |v| {
        v["Subnets"][0]["CidrBlock"] = json!("10.0.1.0/33")
    });
    assert!(
        err(&files).contains(
            "subnet subnet-0aaa1111bbbb2222c: CidrBlock `10.0.1.0/33` is not an IPv4 CIDR"
        )
    );
    // An address AWS reserves (its router's) cannot be an instance's: tcplab refuses it.
    let files = with("Reservations", |v| {
        v["Reservations"][0]["Instances"][0]["PrivateIpAddress"] = json!("10.0.1.1");
    });
    let e = err(&files);
    assert!(
        e.starts_with(
            "the imported topology is not one tcplab can build: host[0].address: 10.0.1.1 is reserved by AWS"
        ),
        "{e}"
    );
    // A VPC whose CIDR holds none of the subnets: nothing to import.
    let files = with("Vpcs", |v| v["Vpcs"][0]["CidrBlock"] = json!("8.8.0.0/16"));
    let e = err(&files);
    assert!(e.contains("has no instance tcplab can import"), "{e}");
}

#[test]
fn resources_without_their_id_are_refused() {
    let cases: [(&str, &str, &str); 5] = [
        (
            "Subnets",
            "SubnetId",
            "subnets.json: a subnet without a SubnetId",
        ),
        (
            "SecurityGroups",
            "GroupId",
            "security-groups.json: a security group without a GroupId",
        ),
        (
            "NetworkAcls",
            "NetworkAclId",
            "network-acls.json: a network ACL without a NetworkAclId",
        ),
        (
            "RouteTables",
            "RouteTableId",
            "route-tables.json: a route table without a RouteTableId",
        ),
        ("Vpcs", "VpcId", "vpcs.json: a VPC without a VpcId"),
    ];
    for (key, id, said) in cases {
        let files = with(key, |v| {
            v[key][0].as_object_mut().unwrap().remove(id);
        });
        let e = err(&files);
        assert!(e.contains(said), "{key}: {e}");
    }
    let files = with("Reservations", |v| {
        v["Reservations"][0]["Instances"][0]
            .as_object_mut()
            .unwrap()
            .remove("InstanceId");
    });
    assert_eq!(
        err(&files),
        "instances.json: an instance without an InstanceId"
    );
}

#[test]
fn missing_commands_and_foreign_files_are_named() {
    let mut files = fixture();
    files.retain(|(n, _)| n != "network-acls.json" && n != "vpcs.json");
    let e = err(&files);
    assert!(
        e.contains(
            "no output of `aws ec2 describe-vpcs`, `aws ec2 describe-network-acls` among the files"
        ),
        "{e}"
    );
    let mut files = fixture();
    files.push((
        "package.json".into(),
        json!({ "name": "x", "version": "1.0.0" }),
    ));
    assert_eq!(
        err(&files),
        "package.json: not the output of an `aws ec2 describe-...` command: no top-level Vpcs, Subnets, SecurityGroups, NetworkAcls, RouteTables or Reservations"
    );
}

#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    let deep = format!(
        "{{\"Vpcs\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let e = import_texts(&[("deep.json".into(), deep)], None)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("deep.json:1:"), "{e}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any cut or byte change of a fixture file is imported or refused, never a panic.
    #[test]
    fn mangled_input_never_panics(file in 0usize..6, at in 0usize..10_000, byte in 0u8..128, cut: bool) {
        let mut t: Vec<(String, String)> = FIXTURES.iter().map(|(n, s)| (n.to_string(), s.to_string())).collect();
        let text = t[file].1.clone().into_bytes();
        let at = at % text.len();
        let mut bytes = text;
        if cut { bytes.truncate(at) } else { bytes[at] = byte }
        if let Ok(s) = String::from_utf8(bytes) {
            t[file].1 = s;
            if let Ok(i) = import_texts(&t, None) {
                let text = i.to_toml().unwrap();
                proptest::prop_assert!(Topology::from_toml(&text, "x.toml").is_ok());
            }
        }
    }
}
