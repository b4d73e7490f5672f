use std::net::Ipv4Addr;

use super::*;
use crate::spec::bounds;

const ARTICLE: &str = include_str!("../../fixtures/topologies/article.toml");

fn error_of(text: &str) -> String {
    Topology::from_toml(text, "t.toml").unwrap_err().to_string()
}

#[test]
fn article_resolves() {
    let (_, r) = Topology::from_toml(ARTICLE, "article.toml").unwrap();
    let addr = |n: &str| r.hosts.iter().find(|h| h.name == n).unwrap().address;
    assert_eq!(addr("server"), Ipv4Addr::new(10, 0, 0, 58));
    assert_eq!(addr("client-1"), Ipv4Addr::new(10, 0, 0, 208));
    assert_eq!(addr("client-2"), Ipv4Addr::new(10, 0, 0, 4));
    assert_eq!(addr("client-3"), Ipv4Addr::new(10, 0, 0, 5));
    let server = &r.hosts[0];
    assert_eq!(server.ingress.len(), 3);
    assert_eq!(server.egress.as_ref().unwrap().len(), 2);
    assert!(server.ingress.iter().any(|a| a.protocol == Protocol::Tcp
        && a.ports == Some(PortRange::single(1234))
        && a.peers == ["10.0.0.0/16".parse().unwrap()]));
}

#[test]
fn article_built_in_rust_equals_the_file() {
    let vpc: ipnet::Ipv4Net = "10.0.0.0/16".parse().unwrap();
    let any: ipnet::Ipv4Net = "0.0.0.0/0".parse().unwrap();
    let topo = Topology::new("10.0.0.0/24".parse().unwrap())
        .domain("tcp-ip-sandbox.jch")
        .host(
            HostSpec::new("server")
                .address(Ipv4Addr::new(10, 0, 0, 58))
                .group("server-sg"),
        )
        .host(
            HostSpec::new("client-1")
                .address(Ipv4Addr::new(10, 0, 0, 208))
                .group("client-sg"),
        )
        .host(HostSpec::new("client-2").group("client-sg"))
        .host(HostSpec::new("client-3").group("client-sg"))
        .security_group(
            SecurityGroup::new("server-sg")
                .ingress(SgRule::icmp().cidr(vpc))
                .ingress(SgRule::tcp(1234).cidr(vpc))
                .ingress(SgRule::udp(1234).cidr(vpc))
                .egress(SgRule::icmp().cidr(vpc))
                .egress(SgRule::tcp(443).cidr(any)),
        )
        .security_group(
            SecurityGroup::new("client-sg")
                .ingress(SgRule::icmp().cidr(vpc))
                .egress(SgRule::icmp().cidr(vpc))
                .egress(SgRule::tcp(1234).cidr(vpc))
                .egress(SgRule::udp(1234).cidr(vpc))
                .egress(SgRule::tcp(443).cidr(any)),
        );
    let (_, from_file) = Topology::from_toml(ARTICLE, "article.toml").unwrap();
    assert_eq!(topo.resolve().unwrap(), from_file);
}

#[test]
fn group_references_become_member_addresses() {
    let text = r#"
[[host]]
name = "a"
address = "10.0.0.10"
security_groups = ["web"]
[[host]]
name = "b"
address = "10.0.0.11"
security_groups = ["web"]
[[host]]
name = "c"
security_groups = ["db"]
[[security_group]]
name = "web"
[[security_group]]
name = "db"
ingress = [{ protocol = "tcp", ports = "5432-5433", group = "web" }]
egress = []
"#;
    let (_, r) = Topology::from_toml(text, "t.toml").unwrap();
    let c = &r.hosts[2];
    assert_eq!(
        c.ingress[0].peers,
        [
            "10.0.0.10/32".parse().unwrap(),
            "10.0.0.11/32".parse().unwrap()
        ]
    );
    assert_eq!(
        c.ingress[0].ports,
        Some(PortRange {
            first: 5432,
            last: 5433
        })
    );
    assert_eq!(c.egress, Some(vec![]), "egress = [] allows nothing");
    assert_eq!(
        r.hosts[0].egress, None,
        "no egress key keeps AWS's allow-all"
    );
    assert!(
        r.hosts[0].ingress.is_empty(),
        "no ingress rule allows nothing in"
    );
}

#[test]
fn firewall_endpoints_take_hosts_addresses_and_cidrs() {
    let text = r#"
[[host]]
name = "server"
address = "10.0.0.58"
[[host]]
name = "client"
[[firewall]]
on = "fabric"
action = "reject-tcp-reset"
protocol = "tcp"
port = 1236
source = "client"
destination = "10.0.0.58"
[[firewall]]
on = "server"
chain = "input"
action = "drop"
source = "10.0.0.0/25"
"#;
    let (_, r) = Topology::from_toml(text, "t.toml").unwrap();
    assert_eq!(r.firewalls[0].placement, Placement::Fabric);
    assert_eq!(r.firewalls[0].source, Some("10.0.0.4/32".parse().unwrap()));
    assert_eq!(
        r.firewalls[0].destination,
        Some("10.0.0.58/32".parse().unwrap())
    );
    assert_eq!(r.firewalls[1].placement, Placement::Host(0));
    assert_eq!(r.firewalls[1].protocol, Protocol::All);
}

#[test]
fn typo_in_a_key_names_line_and_key() {
    let e = error_of("[[host]]\nname = \"a\"\nadress = \"10.0.0.9\"\n");
    assert!(e.starts_with("t.toml:3:1: "), "{e}");
    assert!(e.contains("unknown field `adress`"), "{e}");
}

#[test]
fn unknown_group_points_at_its_line() {
    let e = error_of("[[host]]\nname = \"a\"\nsecurity_groups = [\"web\"]\n");
    assert!(e.starts_with("t.toml:3:"), "{e}");
    assert!(
        e.contains("host[0].security_groups[0]: no security group named `web`"),
        "{e}"
    );
}

#[test]
fn duplicate_address_is_refused() {
    let e = error_of(
        "[[host]]\nname = \"a\"\naddress = \"10.0.0.9\"\n[[host]]\nname = \"b\"\naddress = \"10.0.0.9\"\n",
    );
    assert!(e.starts_with("t.toml:6:11: "), "{e}");
    assert!(e.contains("already `a`'s address"), "{e}");
}

#[test]
fn address_outside_the_subnet() {
    let e = error_of("[[host]]\nname = \"a\"\naddress = \"192.168.1.1\"\n");
    assert!(e.contains("outside the subnet 10.0.0.0/24"), "{e}");
    let e = error_of("[[host]]\nname = \"a\"\naddress = \"10.0.0.255\"\n");
    assert!(e.contains("broadcast"), "{e}");
}

#[test]
fn bad_port_and_bad_protocol() {
    let e = error_of(
        "[[host]]\nname = \"a\"\n[[firewall]]\non = \"a\"\naction = \"drop\"\nprotocol = \"tcp\"\nport = 70000\n",
    );
    assert!(e.starts_with("t.toml:7:"), "{e}");
    assert!(e.contains("`70000` is not a port"), "{e}");
    let e = error_of(
        "[[host]]\nname = \"a\"\n[[firewall]]\non = \"a\"\naction = \"drop\"\nprotocol = \"sctp\"\n",
    );
    assert!(e.contains("unknown variant `sctp`"), "{e}");
    let e = error_of(
        "[[host]]\nname = \"a\"\n[[firewall]]\non = \"a\"\naction = \"drop\"\nprotocol = \"icmp\"\nport = 5\n",
    );
    assert!(e.contains("icmp has no ports"), "{e}");
}

#[test]
fn firewall_on_unknown_host_and_tcp_reset_for_udp() {
    let e = error_of("[[host]]\nname = \"a\"\n[[firewall]]\non = \"b\"\naction = \"drop\"\n");
    assert!(
        e.contains("`b` is neither \"fabric\" nor a host (known: a)"),
        "{e}"
    );
    let e = error_of(
        "[[host]]\nname = \"a\"\n[[firewall]]\non = \"fabric\"\naction = \"reject-tcp-reset\"\nprotocol = \"udp\"\n",
    );
    assert!(e.contains("reject-tcp-reset answers TCP only"), "{e}");
}

#[test]
fn host_names_are_interface_names() {
    let e = error_of("[[host]]\nname = \"a-very-long-host-name\"\n");
    assert!(e.contains("1 to 15 lowercase letters"), "{e}");
    let e = error_of("[[host]]\nname = \"fabric\"\n");
    assert!(e.contains("pick another"), "{e}");
    let e = error_of("[[host]]\nname = \"br0\"\n");
    assert!(e.contains("taken by an interface of the fabric"), "{e}");
    let e = error_of("[[host]]\nname = \"a\"\n[[host]]\nname = \"a\"\n");
    assert!(e.contains("already exists"), "{e}");
}

#[test]
fn rule_needs_exactly_one_peer() {
    let e = error_of(
        "[[host]]\nname = \"a\"\n[[security_group]]\nname = \"g\"\ningress = [{ protocol = \"tcp\" }]\n",
    );
    assert!(e.contains("`cidr = "), "{e}");
    let e = error_of(
        "[[host]]\nname = \"a\"\n[[security_group]]\nname = \"g\"\ningress = [{ protocol = \"tcp\", cidr = \"10.0.0.0/8\", group = \"g\" }]\n",
    );
    assert!(e.contains("not both"), "{e}");
}

#[test]
fn no_hosts_and_tiny_subnet() {
    assert!(error_of("subnet = \"10.0.0.0/24\"\n").contains("no hosts"));
    assert!(error_of("subnet = \"10.0.0.0/31\"\n[[host]]\nname = \"a\"\n").contains("no room"));
}

#[test]
fn full_subnet_is_reported() {
    let mut text = String::from("subnet = \"10.0.0.0/29\"\n");
    for i in 0..5 {
        text.push_str(&format!("[[host]]\nname = \"h{i}\"\n"));
    }
    assert!(error_of(&text).contains("no free address left"));
}

#[test]
fn missing_file_is_a_read_error() {
    let e = Topology::from_file("/nonexistent/t.toml").unwrap_err();
    assert!(
        e.to_string().starts_with("cannot read /nonexistent/t.toml"),
        "{e}"
    );
}

#[test]
fn absurd_sizes_are_refused() {
    let hosts = |n: usize, extra: &str| {
        let mut text = String::from("subnet = \"10.0.0.0/20\"\n");
        for i in 0..n {
            text.push_str(&format!("[[host]]\nname = \"h{i}\"\n{extra}"));
        }
        text
    };
    assert!(Topology::from_toml(&hosts(bounds::MAX_HOSTS, ""), "t.toml").is_ok());
    let e = error_of(&hosts(bounds::MAX_HOSTS + 1, ""));
    assert!(e.contains("1001 hosts is too many: at most 1000"), "{e}");
    // Every host in a group whose rules each name the group: hosts x rules x hosts peers.
    let rules = vec!["{ protocol = \"tcp\", ports = 1234, group = \"g\" }"; 100].join(", ");
    let mut text = hosts(200, "security_groups = [\"g\"]\n");
    text.push_str(&format!(
        "[[security_group]]\nname = \"g\"\ningress = [{rules}]\n"
    ));
    let e = error_of(&text);
    assert!(e.contains("more than 200000 addresses"), "{e}");
}

#[test]
fn subnets_are_private_and_hold_their_hosts() {
    let one = |subnet: &str| format!("subnet = \"{subnet}\"\n[[host]]\nname = \"a\"\n");
    assert!(Topology::from_toml(&one("100.64.0.0/24"), "t.toml").is_ok());
    assert!(Topology::from_toml(&one("172.16.5.0/24"), "t.toml").is_ok());
    for (subnet, what) in [
        ("0.0.0.0/0", "every IPv4 address"),
        ("127.0.0.0/24", "loopback"),
        ("169.254.0.0/24", "link-local"),
        ("239.1.1.0/24", "multicast"),
        ("1.1.1.0/24", "not a private range"),
    ] {
        let e = error_of(&one(subnet));
        assert!(e.starts_with("t.toml:1:10: subnet: "), "{e}");
        assert!(e.contains(what), "{subnet}: {e}");
    }
}

#[test]
fn domains_are_dns_names() {
    let base = || Topology::new("10.0.0.0/24".parse().unwrap()).host(HostSpec::new("a"));
    assert!(base().domain("tcp-ip-sandbox.jch").resolve().is_ok());
    assert!(base().domain("lab").resolve().is_ok());
    for bad in [
        "",
        "Upper.case",
        "-dash.jch",
        "a..b",
        "spa ce",
        "x\u{1b}[31m",
        &"a".repeat(64),
    ] {
        let e = base().domain(bad).resolve().expect_err(bad);
        assert_eq!(e.path.to_string(), "domain", "{bad}");
        assert!(e.message.contains("is not a domain name"), "{}", e.message);
        assert!(!e.message.contains('\u{1b}'), "escaped: {}", e.message);
    }
}

const VPC: &str = include_str!("../../fixtures/topologies/vpc.toml");

#[test]
fn vpc_resolves_with_subnets_routes_and_acls() {
    let (_, r) = Topology::from_toml(VPC, "vpc.toml").unwrap();
    let vpc = r.vpc.as_ref().unwrap();
    assert_eq!(vpc.subnets.len(), 2);
    assert_eq!(vpc.subnets[0].router, Ipv4Addr::new(10, 0, 1, 1));
    let client2 = r.hosts.iter().find(|h| h.name == "client-2").unwrap();
    assert_eq!(client2.subnet, 1);
    // The first four addresses of a subnet are AWS's: the first handed out is .4.
    assert_eq!(client2.address, Ipv4Addr::new(10, 0, 2, 4));
    assert_eq!(client2.prefix_len, 24);
    assert_eq!(client2.gateway, Some(Ipv4Addr::new(10, 0, 2, 1)));
    let acl = vpc.subnets[0].acl.as_ref().unwrap();
    assert_eq!(
        acl.inbound.iter().map(|e| e.rule).collect::<Vec<_>>(),
        [100, 110]
    );
    assert_eq!(vpc.subnets[1].routes[0].target, RouteTarget::Blackhole);
}

#[test]
fn acl_entries_are_sorted_by_number() {
    let text = VPC.replace(
        "  { rule = 100, action = \"allow\", protocol = \"tcp\", ports = 1234",
        "  { rule = 5, action = \"deny\", protocol = \"all\", cidr = \"10.9.0.0/16\" },\n  { rule = 100, action = \"allow\", protocol = \"tcp\", ports = 1234",
    );
    let (_, r) = Topology::from_toml(&text, "t.toml").unwrap();
    let acl = r.vpc.unwrap().subnets[0].acl.clone().unwrap();
    assert_eq!(acl.inbound[0].rule, 5);
}

#[test]
fn vpc_mistakes_are_refused_with_their_place() {
    let cases: [(&str, &str, &str); 9] = [
        (
            "cidr = \"10.0.2.0/24\"",
            "cidr = \"10.1.2.0/24\"",
            "is not inside the VPC",
        ),
        (
            "cidr = \"10.0.2.0/24\"",
            "cidr = \"10.0.1.128/25\"",
            "overlaps subnet `public`",
        ),
        (
            "route_table = \"private-rt\"",
            "route_table = \"nope\"",
            "no route table named `nope`",
        ),
        (
            "network_acl = \"public-acl\"",
            "network_acl = \"nope\"",
            "no network ACL named `nope`",
        ),
        (
            "rule = 110, action = \"allow\", protocol = \"icmp\"",
            "rule = 100, action = \"allow\", protocol = \"icmp\"",
            "entry 100 is already used",
        ),
        (
            "rule = 110, action = \"allow\", protocol = \"icmp\"",
            "rule = 40000, action = \"allow\", protocol = \"icmp\"",
            "not an entry number",
        ),
        (
            "address = \"10.0.1.58\"",
            "address = \"10.0.1.2\"",
            "reserved by AWS",
        ),
        (
            "subnet = \"public\"",
            "subnet = \"nope\"",
            "no subnet named `nope`",
        ),
        (
            "target = \"blackhole\"",
            "target = \"instance:ghost\"",
            "no host named `ghost`",
        ),
    ];
    for (from, to, want) in cases {
        assert!(VPC.contains(from), "fixture lacks {from}");
        let e = error_of(&VPC.replacen(from, to, 1));
        assert!(e.contains(want), "{to}: {e}");
        assert!(e.starts_with("t.toml:"), "{e}");
    }
    let e = error_of(&format!("subnet = \"10.9.0.0/24\"\n{VPC}"));
    assert!(
        e.contains("with a [vpc], each subnet is a [[vpc.subnet]]"),
        "{e}"
    );
    let e = error_of(&VPC.replace(
        "subnet = \"private\"\naddress = \"10.0.2.208\"",
        "address = \"10.0.2.208\"",
    ));
    assert!(e.contains("say which this host sits in"), "{e}");
    let e = error_of(&VPC.replace("target = \"blackhole\"", "target = \"nat\""));
    assert!(e.contains("is not a route target"), "{e}");
}

#[test]
fn impairments_read_from_a_host() {
    let text = "[[host]]\nname = \"a\"\nimpair = { delay = 0.1, jitter = 0.01, loss = 5.0, rate = \"1mbit\" }\n\n[[host]]\nname = \"b\"\n[host.impair.ingress]\ndelay = 0.2\ndrop = { first = 2, match = \"syn\", port = 80 }\n";
    let (_, r) = Topology::from_toml(text, "t.toml").unwrap();
    let a = &r.hosts[0].impair;
    assert_eq!(
        a.egress, a.ingress,
        "top-level settings are both directions'"
    );
    assert_eq!(a.egress.netem.delay, std::time::Duration::from_millis(100));
    assert_eq!(a.egress.loss, 5.0);
    assert_eq!(a.egress.netem.rate, Some(1_000_000));
    let b = &r.hosts[1].impair;
    assert!(b.egress.netem.is_none() && b.egress.drop.is_none());
    let d = b.ingress.drop.unwrap();
    assert_eq!((d.first, d.matching), (2, DropMatch::Syn));
    assert_eq!(d.port, Some(PortRange::single(80)));
}

#[test]
fn impairments_out_of_bounds_point_at_their_place() {
    // (the table, the text the error points at, the field, what it says)
    for (impair, point, path, says) in [
        ("{ delay = 61 }", "61", "delay", "61 is not a delay"),
        ("{ delay = -1 }", "-1", "delay", "give seconds from 0 to 60"),
        ("{ delay = nan }", "nan", "delay", "nan is not a delay"),
        ("{ loss = 101 }", "101", "loss", "101 is not a percentage"),
        (
            "{ duplicate = -0.5 }",
            "-0.5",
            "duplicate",
            "not a percentage",
        ),
        (
            "{ corrupt = inf }",
            "inf",
            "corrupt",
            "inf is not a percentage",
        ),
        ("{ reorder = 5 }", "5", "reorder", "give a `delay` too"),
        (
            "{ delay = 0.1, jitter = 0.2 }",
            "0.2",
            "jitter",
            "at least as large",
        ),
        ("{ rate = \"fast\" }", "\"fast", "rate", "is not a rate"),
        ("{ rate = \"99gbit\" }", "\"99", "rate", "is out of range"),
        (
            "{ drop = { first = 0 } }",
            "0",
            "drop.first",
            "give 1 to 1000000",
        ),
        (
            "{ drop = { first = 1, match = \"icmp\", port = 1 } }",
            "1 }",
            "drop.port",
            "have no ports",
        ),
        (
            "{ loss = 1, egress = { loss = 2 } }",
            "egress",
            "egress",
            "not both",
        ),
        (
            "{ egress = { delay = 100 } }",
            "100",
            "egress.delay",
            "100 is not a delay",
        ),
    ] {
        let line = format!("impair = {impair}");
        let column = line.rfind(point).unwrap() + 1;
        let e = error_of(&format!("[[host]]\nname = \"a\"\n{line}\n"));
        let at = format!("t.toml:3:{column}: host[0].impair.{path}: ");
        assert!(e.starts_with(&at), "{impair}: {e} (expected {at})");
        assert!(e.contains(says), "{impair}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    for (impair, says) in [
        ("{ delay = \"1s\" }", "invalid type"),
        ("{ dlay = 1 }", "unknown field `dlay`"),
        (
            "{ drop = { first = 1, match = \"fin\" } }",
            "unknown variant `fin`",
        ),
    ] {
        let e = error_of(&format!("[[host]]\nname = \"a\"\nimpair = {impair}\n"));
        assert!(e.starts_with("t.toml:3:"), "{impair}: {e}");
        assert!(e.contains(says), "{impair}: {e}");
    }
}
