//! Security groups and firewalls as nftables rulesets: what rules each namespace gets, built
//! from a resolved topology, and the driver that loads them.
//!
//! Where a rule sits decides what each capture shows (see PLATFORM-NOTES): security groups
//! filter in the fabric's `inet` forward hook, with conntrack, where blocked packets vanish
//! before any host sees them; fabric firewalls sit on the ingress of the bridge port facing the
//! sender, the one place in the fabric from which a reject can answer; host firewalls sit in
//! the host's own input and output chains.

mod driver;
mod handles;
mod origin;
mod ruleset;
mod vpc;

use crate::spec::{Action, HostChain, Placement, Resolved, ResolvedFirewall, ResolvedHost};
pub use driver::FirewallError;
pub(crate) use driver::{Loaded, Mode, load};
pub(crate) use handles::c_string;
pub use origin::{AclDirection, GroupDirection, Origin};
pub use ruleset::Table;
pub(crate) use ruleset::{
    BaseChain, Chain, Family, Hook, Match, RANDOM_MODULUS, Reject, Rule, Verdict,
};
pub(crate) use vpc::router_tables;

/// The name of every table tcplab makes (for the topology's rules; a change of the rules
/// mid-run loads them as `tcplab-rN`).
pub const TABLE: &str = "tcplab";
/// The fabric's netdev table for firewall rules on the bridge ports.
pub const PORT_TABLE: &str = "tcplab-ports";

/// Which rules to build: the revision (0 for the topology's, then one more for each change),
/// and whether the rules mark packets for tracing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Build {
    pub revision: usize,
    pub trace: bool,
}

impl Build {
    /// A table's name in this revision. Each revision has tables of its own: rule handles
    /// count from 1 again in a new table, so the table's name tells which rules a traced
    /// packet met.
    pub fn table(&self, base: &str) -> String {
        match self.revision {
            0 => base.to_string(),
            n => format!("{base}-r{n}"),
        }
    }

    fn base_rules(&self, rules: Vec<Rule>) -> Vec<Rule> {
        if !self.trace {
            return rules;
        }
        std::iter::once(Rule::new(Vec::new(), Verdict::TraceOn))
            .chain(rules)
            .collect()
    }
}

/// The fabric's tables: security groups, and firewall rules on each host's bridge port, as
/// a lab of the topology starts with them (without tracing). `port_of` names a host's port on
/// the bridge.
pub fn fabric_tables(r: &Resolved, port_of: impl Fn(&ResolvedHost) -> String) -> Vec<Table> {
    fabric_tables_for(
        r,
        port_of,
        Build {
            revision: 0,
            trace: false,
        },
    )
}

/// Like [`fabric_tables`], for one revision, with or without tracing.
pub(crate) fn fabric_tables_for(
    r: &Resolved,
    port_of: impl Fn(&ResolvedHost) -> String,
    build: Build,
) -> Vec<Table> {
    let mut tables = Vec::new();
    if let Some(t) = security_groups(r, build) {
        tables.push(t);
    }
    let rules: Vec<Rule> = r
        .firewalls
        .iter()
        .filter(|f| f.placement == Placement::Fabric)
        .map(|f| firewall_rule(r, f))
        .collect();
    if !rules.is_empty() {
        let chains = r
            .hosts
            .iter()
            .map(|h| Chain {
                name: format!("from-{}", h.name),
                base: Some(BaseChain {
                    hook: Hook::Ingress,
                    device: Some(port_of(h)),
                    priority: 0,
                    policy_drop: false,
                }),
                rules: build.base_rules(rules.clone()),
            })
            .collect();
        tables.push(Table {
            family: Family::Netdev,
            name: build.table(PORT_TABLE),
            chains,
        });
    }
    tables
}

fn security_groups(r: &Resolved, build: Build) -> Option<Table> {
    let guarded: Vec<&ResolvedHost> = r.hosts.iter().filter(|h| h.guarded()).collect();
    let vpc_rules = vpc::fabric_rules(r);
    if guarded.is_empty() && vpc_rules.is_empty() {
        return None;
    }
    // In a VPC a packet between subnets crosses two bridges: a host's groups are checked
    // on its own subnet's bridge only, once, as AWS checks them at the instance.
    let on_bridge = |h: &ResolvedHost| -> Vec<Match> {
        match &r.vpc {
            Some(_) => vec![Match::InputInterface(crate::lab::bridge_name(h.subnet))],
            None => Vec::new(),
        }
    };
    // Replies to allowed traffic pass whatever the rules say: AWS groups are stateful.
    let mut forward = vpc_rules;
    if !guarded.is_empty() {
        forward.push(
            Rule::new(vec![Match::EstablishedOrRelated], Verdict::Accept).from(Origin::Established),
        );
    }
    let mut chains = Vec::new();
    // Every sender's egress before any receiver's ingress, whatever the hosts' order: AWS
    // checks the sender's groups first, so a packet both deny is the sender's egress deny.
    for h in &guarded {
        let me = ipnet::Ipv4Net::from(h.address);
        if let Some(egress) = &h.egress {
            let name = format!("sg-out-{}", h.name);
            let mut m = on_bridge(h);
            m.push(Match::SourceNet(me));
            forward.push(Rule::new(m, Verdict::Jump(name.clone())));
            chains.push(allow_chain(name, h, GroupDirection::Egress, egress));
        }
    }
    for h in guarded {
        let me = ipnet::Ipv4Net::from(h.address);
        let name = format!("sg-in-{}", h.name);
        let mut m = on_bridge(h);
        m.push(Match::DestinationNet(me));
        forward.push(Rule::new(m, Verdict::Jump(name.clone())));
        chains.push(allow_chain(name, h, GroupDirection::Ingress, &h.ingress));
    }
    chains.insert(
        0,
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
    Some(Table {
        family: Family::Inet,
        name: build.table(TABLE),
        chains,
    })
}

/// A chain that returns for allowed traffic and drops the rest, silently.
fn allow_chain(
    name: String,
    host: &ResolvedHost,
    direction: GroupDirection,
    allows: &[crate::spec::Allow],
) -> Chain {
    let peer: fn(ipnet::Ipv4Net) -> Match = match direction {
        GroupDirection::Ingress => Match::SourceNet,
        GroupDirection::Egress => Match::DestinationNet,
    };
    let mut rules = Vec::new();
    for allow in allows {
        for net in &allow.peers {
            let mut matches = Vec::new();
            if net.prefix_len() > 0 {
                matches.push(peer(*net));
            }
            matches.extend(Rule::protocol_matches(allow.protocol, allow.ports));
            rules.push(
                Rule::new(matches, Verdict::Return)
                    .from(Origin::group_rule(&host.name, direction, allow)),
            );
        }
    }
    rules.push(
        Rule::new(Vec::new(), Verdict::Drop).from(Origin::GroupDeny {
            host: host.name.clone(),
            groups: host.security_groups.clone(),
            direction,
        }),
    );
    Chain {
        name,
        base: None,
        rules,
    }
}

/// The table of a host's own firewall, if it has rules.
pub(crate) fn host_table(r: &Resolved, host: usize, build: Build) -> Option<Table> {
    let chains: Vec<Chain> = [
        (HostChain::Input, Hook::Input),
        (HostChain::Output, Hook::Output),
    ]
    .into_iter()
    .filter_map(|(which, hook)| {
        let rules: Vec<Rule> = r
            .firewalls
            .iter()
            .filter(|f| f.placement == Placement::Host(host) && f.chain == which)
            .map(|f| firewall_rule(r, f))
            .collect();
        (!rules.is_empty()).then(|| Chain {
            name: match which {
                HostChain::Input => "input".into(),
                HostChain::Output => "output".into(),
            },
            base: Some(BaseChain {
                hook,
                device: None,
                priority: 0,
                policy_drop: false,
            }),
            rules: build.base_rules(rules),
        })
    })
    .collect();
    (!chains.is_empty()).then(|| Table {
        family: Family::Inet,
        name: build.table(TABLE),
        chains,
    })
}

fn firewall_rule(r: &Resolved, f: &ResolvedFirewall) -> Rule {
    let mut matches = Vec::new();
    if let Some(src) = f.source {
        matches.push(Match::SourceNet(src));
    }
    if let Some(dst) = f.destination {
        matches.push(Match::DestinationNet(dst));
    }
    matches.extend(Rule::protocol_matches(f.protocol, f.port));
    let verdict = match f.action {
        Action::Drop => Verdict::Drop,
        Action::RejectTcpReset => Verdict::Reject(Reject::TcpReset),
        Action::RejectHostUnreachable => Verdict::Reject(Reject::HostUnreachable),
        Action::RejectPortUnreachable => Verdict::Reject(Reject::PortUnreachable),
        Action::RejectAdminProhibited => Verdict::Reject(Reject::AdminProhibited),
    };
    Rule::new(matches, verdict).from(Origin::firewall(r, f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Topology;

    const ARTICLE: &str = include_str!("../../fixtures/topologies/article.toml");
    const PLAIN: Build = Build {
        revision: 0,
        trace: false,
    };

    #[test]
    fn article_security_groups_in_nft_syntax() {
        let (_, r) = Topology::from_toml(ARTICLE, "article.toml").unwrap();
        let tables = fabric_tables_for(&r, |h| h.name.clone(), PLAIN);
        assert_eq!(tables.len(), 1, "no firewall rules, so no port table");
        let text = tables[0].to_string();
        for line in [
            "type filter hook forward priority 0; policy accept;",
            "ct state established,related accept",
            "ip saddr 10.0.0.58 jump sg-out-server",
            "ip daddr 10.0.0.58 jump sg-in-server",
            "ip daddr 10.0.0.208 jump sg-in-client-1",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        let server_in = &tables[0]
            .chains
            .iter()
            .find(|c| c.name == "sg-in-server")
            .unwrap();
        let rules: Vec<String> = server_in.rules.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            rules,
            [
                "ip saddr 10.0.0.0/16 meta l4proto icmp return",
                "ip saddr 10.0.0.0/16 meta l4proto tcp tcp dport 1234 return",
                "ip saddr 10.0.0.0/16 meta l4proto udp udp dport 1234 return",
                "drop",
            ]
        );
        let client_out = &tables[0]
            .chains
            .iter()
            .find(|c| c.name == "sg-out-client-1")
            .unwrap();
        assert_eq!(
            client_out.rules[3].to_string(),
            "meta l4proto tcp tcp dport 443 return",
            "0.0.0.0/0 needs no address match"
        );
    }

    #[test]
    fn firewalls_go_to_ports_and_hosts() {
        let text = format!(
            "{ARTICLE}\n[[firewall]]\non = \"fabric\"\naction = \"reject-tcp-reset\"\nprotocol = \"tcp\"\nport = 1236\ndestination = \"server\"\n\n[[firewall]]\non = \"server\"\naction = \"drop\"\nprotocol = \"tcp\"\nport = 1237\n"
        );
        let (_, r) = Topology::from_toml(&text, "t.toml").unwrap();
        let tables = fabric_tables_for(&r, |h| format!("p-{}", h.name), PLAIN);
        let ports = tables.iter().find(|t| t.family == Family::Netdev).unwrap();
        assert_eq!(ports.chains.len(), 4, "one ingress chain per bridge port");
        let rendered = ports.to_string();
        assert!(
            rendered.contains("hook ingress device \"p-client-1\""),
            "{rendered}"
        );
        assert!(
            rendered.contains(
                "ip daddr 10.0.0.58 meta l4proto tcp tcp dport 1236 reject with tcp reset"
            ),
            "{rendered}"
        );
        let host = host_table(&r, 0, PLAIN).unwrap().to_string();
        assert!(host.contains("hook input priority 0"), "{host}");
        assert!(
            host.contains("meta l4proto tcp tcp dport 1237 drop"),
            "{host}"
        );
        assert!(host_table(&r, 1, PLAIN).is_none());
    }
}
