//! A VPC's rules: network ACLs in the VPC router, where traffic leaves one subnet and enters
//! another (stateless: each direction of a connection needs its own entry), and, in the
//! fabric, the VPC's refusal to deliver broadcast and multicast.

use ipnet::Ipv4Net;

use super::origin::AclDirection;
use super::ruleset::{BaseChain, Chain, Family, Hook, Match, Reject, Rule, Table, Verdict};
use super::{Build, Origin, TABLE};
use crate::spec::{AclAction, AclEntry, Resolved};

/// The router's table of network ACLs, if a subnet has one.
pub(crate) fn router_tables(r: &Resolved, build: Build) -> Vec<Table> {
    let Some(vpc) = &r.vpc else {
        return Vec::new();
    };
    // Every subnet's outbound jump before any inbound one: AWS checks the source subnet's
    // outbound ACL before the destination's inbound ACL.
    let mut forward = Vec::new();
    let mut inbound_jumps = Vec::new();
    let mut chains = Vec::new();
    let mut prerouting = Vec::new();
    for s in &vpc.subnets {
        // Routes as the router will choose them, most specific first, so that the packets a
        // route drops or answers are stopped (and traced) by a rule that names it; what goes
        // on is left to the kernel's routing.
        let name = format!("route-{}", s.name);
        prerouting.push(Rule::new(
            vec![Match::InputInterface(s.name.clone())],
            Verdict::Jump(name.clone()),
        ));
        chains.push(route_chain(name, r, s));
        let Some(acl) = &s.acl else { continue };
        // Leaving the subnet: the packet came in on the router's link to it.
        let out = format!("acl-out-{}", s.name);
        forward.push(Rule::new(
            vec![Match::InputInterface(s.name.clone())],
            Verdict::Jump(out.clone()),
        ));
        chains.push(acl_chain(
            out,
            &acl.name,
            &s.name,
            AclDirection::Outbound,
            &acl.outbound,
        ));
        let inbound = format!("acl-in-{}", s.name);
        inbound_jumps.push(Rule::new(
            vec![Match::OutputInterface(s.name.clone())],
            Verdict::Jump(inbound.clone()),
        ));
        chains.push(acl_chain(
            inbound,
            &acl.name,
            &s.name,
            AclDirection::Inbound,
            &acl.inbound,
        ));
    }
    forward.extend(inbound_jumps);
    chains.insert(
        0,
        Chain {
            name: "prerouting".into(),
            base: Some(BaseChain {
                hook: Hook::Prerouting,
                device: None,
                priority: 0,
                policy_drop: false,
            }),
            rules: build.base_rules(prerouting),
        },
    );
    if !forward.is_empty() {
        chains.insert(
            1,
            Chain {
                name: "forward".into(),
                base: Some(BaseChain {
                    hook: Hook::Forward,
                    device: None,
                    priority: 0,
                    policy_drop: false,
                }),
                rules: build.base_rules(forward),
            },
        );
    }
    vec![Table {
        family: Family::Inet,
        name: build.table(TABLE),
        chains,
    }]
}

/// A subnet's routes, most specific first: a route that carries the packet returns it to
/// the kernel's routing; a blackhole, or no route at all, drops it here.
fn route_chain(name: String, r: &Resolved, s: &crate::spec::ResolvedSubnet) -> Chain {
    use crate::spec::RouteTarget;
    let vpc = r.vpc.as_ref().expect("routes exist only in a VPC");
    let route_origin = |net: Ipv4Net, target: &RouteTarget| Origin::Route {
        subnet: s.name.clone(),
        table: s.route_table.clone(),
        destination: net.to_string(),
        target: target.to_string(),
    };
    // The router keeps nothing for itself: what is sent to its own addresses is dropped,
    // as AWS's router neither answers pings nor accepts connections.
    let mut rules: Vec<Rule> = vpc
        .subnets
        .iter()
        .map(|o| {
            Rule::new(
                vec![Match::DestinationNet(Ipv4Net::from(o.router))],
                Verdict::Drop,
            )
            .from(Origin::NoInstance {
                subnet: o.name.clone(),
                address: o.router.to_string(),
            })
        })
        .collect();
    // The table's routes, most specific first; at equal length the table's own route wins
    // over `local` (a route to a subnet's CIDR through an appliance replaces it).
    let mut routes: Vec<(Ipv4Net, Option<&crate::spec::ResolvedRoute>)> = s
        .routes
        .iter()
        .map(|route| (route.destination, Some(route)))
        .collect();
    routes.extend(
        vpc.subnets
            .iter()
            .filter(|o| !s.routes.iter().any(|route| route.destination == o.cidr))
            .map(|o| (o.cidr, None)),
    );
    routes.sort_by_key(|(net, route)| (std::cmp::Reverse(net.prefix_len()), route.is_none()));
    for (net, route) in routes {
        let matches = vec![Match::DestinationNet(net)];
        match route {
            Some(route) => rules.push(match route.target {
                RouteTarget::Blackhole => {
                    Rule::new(matches, Verdict::Drop).from(route_origin(net, &route.target))
                }
                RouteTarget::Unreachable => {
                    Rule::new(matches, Verdict::Reject(Reject::HostUnreachable))
                        .from(route_origin(net, &route.target))
                }
                RouteTarget::Prohibit => {
                    Rule::new(matches, Verdict::Reject(Reject::AdminProhibited))
                        .from(route_origin(net, &route.target))
                }
                RouteTarget::Instance(_) => Rule::new(matches, Verdict::Return),
            }),
            None => {
                // `local`: a subnet of the VPC. Only its instances' addresses are delivered;
                // AWS drops what is sent to an address nobody holds, without an answer (the
                // router would otherwise give up on ARP and answer host unreachable).
                let subnet = vpc.subnets.iter().find(|o| o.cidr == net);
                for h in r.hosts.iter().filter(|h| net.contains(&h.address)) {
                    rules.push(Rule::new(
                        vec![Match::DestinationNet(Ipv4Net::from(h.address))],
                        Verdict::Return,
                    ));
                }
                rules.push(Rule::new(matches, Verdict::Drop).from(Origin::NoInstance {
                    subnet: subnet.map(|o| o.name.clone()).unwrap_or_default(),
                    address: net.to_string(),
                }));
            }
        }
    }
    rules.push(Rule::new(Vec::new(), Verdict::Drop).from(Origin::NoRoute {
        subnet: s.name.clone(),
        table: s.route_table.clone(),
    }));
    Chain {
        name,
        base: None,
        rules,
    }
}

/// Entries in ascending order, the first match decides; what none matches is denied.
fn acl_chain(
    name: String,
    acl: &str,
    subnet: &str,
    direction: AclDirection,
    entries: &[AclEntry],
) -> Chain {
    let peer: fn(Ipv4Net) -> Match = match direction {
        AclDirection::Inbound => Match::SourceNet,
        AclDirection::Outbound => Match::DestinationNet,
    };
    let mut rules: Vec<Rule> = entries
        .iter()
        .map(|e| {
            let mut matches = Vec::new();
            if e.cidr.prefix_len() > 0 {
                matches.push(peer(e.cidr));
            }
            matches.extend(Rule::protocol_matches(e.protocol, e.ports));
            let verdict = match e.action {
                AclAction::Allow => Verdict::Return,
                AclAction::Deny => Verdict::Drop,
            };
            Rule::new(matches, verdict).from(Origin::acl_entry(acl, subnet, direction, Some(e)))
        })
        .collect();
    rules.push(
        Rule::new(Vec::new(), Verdict::Drop).from(Origin::acl_entry(acl, subnet, direction, None)),
    );
    Chain {
        name,
        base: None,
        rules,
    }
}

/// The rules a VPC adds to the fabric's forward chain (bridged IPv4), before the security
/// groups: no broadcast or multicast between hosts, unless the VPC allows them.
pub(crate) fn fabric_rules(r: &Resolved) -> Vec<Rule> {
    let Some(vpc) = &r.vpc else {
        return Vec::new();
    };
    if vpc.broadcast {
        return Vec::new();
    }
    let mut nets: Vec<Ipv4Net> = vec![
        Ipv4Net::new(std::net::Ipv4Addr::BROADCAST, 32).expect("a /32"),
        "224.0.0.0/4".parse().expect("the multicast range"),
    ];
    nets.extend(
        vpc.subnets
            .iter()
            .map(|s| Ipv4Net::new(s.cidr.broadcast(), 32).expect("a /32")),
    );
    nets.into_iter()
        .map(|n| Rule::new(vec![Match::DestinationNet(n)], Verdict::Drop).from(Origin::NoBroadcast))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Topology;

    const VPC: &str = include_str!("../../fixtures/topologies/vpc.toml");
    const PLAIN: Build = Build {
        revision: 0,
        trace: false,
    };

    fn rules_of(tables: &[Table], chain: &str) -> Vec<String> {
        tables[0]
            .chains
            .iter()
            .find(|c| c.name == chain)
            .unwrap_or_else(|| panic!("no chain {chain}"))
            .rules
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.comment = None;
                r.to_string()
            })
            .collect()
    }

    #[test]
    fn acl_entries_in_order_then_the_final_deny() {
        let (_, r) = Topology::from_toml(VPC, "vpc.toml").unwrap();
        let tables = router_tables(&r, PLAIN);
        assert_eq!(
            rules_of(&tables, "acl-out-public"),
            [
                "ip daddr 10.0.0.0/16 meta l4proto tcp tcp dport 1024-65535 return",
                "ip daddr 10.0.0.0/16 meta l4proto icmp return",
                "drop",
            ]
        );
        // The private subnet keeps AWS's default ACL: no chain of its own.
        assert!(!tables[0].chains.iter().any(|c| c.name == "acl-in-private"));
    }

    #[test]
    fn routes_most_specific_first_and_no_route_drops() {
        let (_, r) = Topology::from_toml(VPC, "vpc.toml").unwrap();
        let tables = router_tables(&r, PLAIN);
        let rules = rules_of(&tables, "route-private");
        assert_eq!(rules.last().map(String::as_str), Some("drop"));
        let blackhole = rules
            .iter()
            .position(|r| r == "ip daddr 172.16.0.0/16 drop")
            .expect("the blackhole route drops");
        let unreachable = rules
            .iter()
            .position(|r| r == "ip daddr 172.20.0.0/16 reject with icmpx host-unreachable")
            .expect("an unreachable route answers, from a rule that names it");
        // The router's own address, and addresses of a subnet nobody holds, are dropped;
        // an instance's address is delivered.
        assert_eq!(rules[0], "ip daddr 10.0.1.1 drop");
        let host = rules
            .iter()
            .position(|r| r == "ip daddr 10.0.2.208 return")
            .expect("an instance's address is delivered");
        let rest = rules
            .iter()
            .position(|r| r == "ip daddr 10.0.2.0/24 drop")
            .expect("the rest of the subnet is dropped");
        assert!(host < rest);
        assert!(blackhole < rules.len() - 1 && unreachable < rules.len() - 1);
    }

    #[test]
    fn broadcast_dropped_unless_the_vpc_allows_it() {
        let (_, r) = Topology::from_toml(VPC, "vpc.toml").unwrap();
        let dropped: Vec<String> = fabric_rules(&r).iter().map(|r| r.to_string()).collect();
        assert!(
            dropped
                .iter()
                .any(|r| r.starts_with("ip daddr 10.0.2.255 drop")),
            "{dropped:?}"
        );
        assert!(
            dropped
                .iter()
                .any(|r| r.starts_with("ip daddr 224.0.0.0/4 drop")),
            "{dropped:?}"
        );
        let text = VPC.replace(
            "cidr = \"10.0.0.0/16\"\n",
            "cidr = \"10.0.0.0/16\"\nbroadcast = true\n",
        );
        let (_, r) = Topology::from_toml(&text, "t.toml").unwrap();
        assert!(fabric_rules(&r).is_empty());
    }
}
