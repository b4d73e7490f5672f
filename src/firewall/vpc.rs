//! A VPC's rules: network ACLs in the VPC router, where traffic leaves one subnet and enters
//! another (stateless: each direction of a connection needs its own entry), and, in the
//! fabric, the VPC's refusal to deliver broadcast and multicast.

use ipnet::Ipv4Net;

use super::origin::AclDirection;
use super::ruleset::{BaseChain, Chain, Family, Hook, Match, Rule, Table, Verdict};
use super::{Build, Origin, TABLE};
use crate::spec::{AclAction, AclEntry, Resolved};

/// The router's table of network ACLs, if a subnet has one.
pub(crate) fn router_tables(r: &Resolved, build: Build) -> Vec<Table> {
    let Some(vpc) = &r.vpc else {
        return Vec::new();
    };
    let mut forward = Vec::new();
    let mut chains = Vec::new();
    let mut prerouting = Vec::new();
    for s in &vpc.subnets {
        // Routes as the router will choose them, most specific first, so that the packets a
        // route drops are dropped (and traced) by a rule that names it; what goes on is left
        // to the kernel's routing, which answers for `unreachable` and `prohibit` itself.
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
        forward.push(Rule::new(
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
    let vpc = r.vpc.as_ref().expect("routes exist only in a VPC");
    let mut routes: Vec<(Ipv4Net, Option<&crate::spec::ResolvedRoute>)> =
        vpc.subnets.iter().map(|o| (o.cidr, None)).collect();
    routes.extend(
        s.routes
            .iter()
            .map(|route| (route.destination, Some(route))),
    );
    routes.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
    let mut rules: Vec<Rule> = routes
        .into_iter()
        .map(|(net, route)| {
            let matches = vec![Match::DestinationNet(net)];
            match route {
                Some(route) if route.target == crate::spec::RouteTarget::Blackhole => {
                    Rule::new(matches, Verdict::Drop).from(Origin::Route {
                        subnet: s.name.clone(),
                        table: s.route_table.clone(),
                        destination: net.to_string(),
                        target: route.target.to_string(),
                    })
                }
                _ => Rule::new(matches, Verdict::Return),
            }
        })
        .collect();
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
