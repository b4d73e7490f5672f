//! Which rule stopped or let through each packet, in a lab of several security groups and
//! firewalls, compared with what AWS's semantics say: security groups are stateful, an
//! instance's groups allow the union of their rules and deny the rest, and a packet meets
//! the sender's egress rules before the receiver's ingress rules. Needs root.

mod common;

use std::net::Ipv4Addr;
use std::process::Command;

use common::{WAIT, privileged, start_server, tcp_client};
use tcplab::attribution::{Attribution, Fate, Passage};
use tcplab::firewall::{GroupDirection, Origin};
use tcplab::lab::Lab;
use tcplab::proc::Outcome;
use tcplab::spec::{Action, Topology};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 58);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 208);
const ADMIN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

/// The server has two groups (base-sg: ICMP only; web-sg: 8080 from members of client-sg,
/// 8081-8082 and 9000-9001 from the subnet); the client's group restricts egress to
/// 8080-8082 and 9000-9001; admin's group leaves egress open (AWS's default rule). Fabric
/// firewall #1 drops 8081, #2 resets 8082; the server's input firewall (#3) drops 9000; the
/// client's output firewall (#4) drops 9001.
fn topology(web_ingress: &str) -> String {
    format!(
        r#"
subnet = "10.0.0.0/24"

[[host]]
name = "server"
address = "10.0.0.58"
security_groups = ["base-sg", "web-sg"]

[[host]]
name = "client"
address = "10.0.0.208"
security_groups = ["client-sg"]

[[host]]
name = "admin"
address = "10.0.0.100"
security_groups = ["admin-sg"]

[[security_group]]
name = "base-sg"
ingress = [ {{ protocol = "icmp", cidr = "10.0.0.0/24" }} ]

[[security_group]]
name = "web-sg"
ingress = [ {web_ingress} ]

[[security_group]]
name = "client-sg"
ingress = [ {{ protocol = "icmp", cidr = "10.0.0.0/24" }} ]
egress = [
  {{ protocol = "tcp", ports = "8080-8082", cidr = "10.0.0.0/24" }},
  {{ protocol = "tcp", ports = "9000-9001", cidr = "10.0.0.0/24" }},
]

[[security_group]]
name = "admin-sg"
ingress = []

[[firewall]]
on = "fabric"
action = "drop"
protocol = "tcp"
port = 8081
destination = "server"

[[firewall]]
on = "fabric"
action = "reject-tcp-reset"
protocol = "tcp"
port = 8082
destination = "server"

[[firewall]]
on = "server"
action = "drop"
protocol = "tcp"
port = 9000

[[firewall]]
on = "client"
chain = "output"
action = "drop"
protocol = "tcp"
port = 9001
"#
    )
}

const WEB_BEFORE: &str = r#"{ protocol = "tcp", ports = 8080, group = "client-sg" },
  { protocol = "tcp", ports = "8081-8082", cidr = "10.0.0.0/24" },
  { protocol = "tcp", ports = "9000-9001", cidr = "10.0.0.0/24" }"#;
/// The change: 8080 is no longer allowed; the rest is as before.
const WEB_AFTER: &str = r#"{ protocol = "tcp", ports = "8081-8082", cidr = "10.0.0.0/24" },
  { protocol = "tcp", ports = "9000-9001", cidr = "10.0.0.0/24" }"#;

/// The tables of the machine's own namespace, read with `nft list tables` (reading only).
fn root_tables() -> String {
    let out = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .expect("nft runs");
    assert!(out.status.success(), "nft list tables: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run(lab: &Lab, host: &str, port: u16, extra: &[&str]) -> Outcome {
    lab.host(host)
        .unwrap()
        .run(tcp_client("10.0.0.58", port, extra), WAIT)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn ended_with(o: &Outcome, class: &str) {
    assert!(
        o.lines
            .iter()
            .any(|l| l.text.starts_with(&format!("error: {class}"))),
        "expected {class}:\n{}",
        o.transcript()
    );
}

fn towards(a: &Attribution, port: u16, from: Ipv4Addr) -> Vec<&Passage> {
    a.towards(SERVER, port, Some(from)).collect()
}

fn stopped(ps: &[&Passage]) -> Vec<Passage> {
    ps.iter()
        .filter(|p| p.fate.stopped())
        .map(|p| (*p).clone())
        .collect()
}

fn dump(a: &Attribution) -> String {
    a.passages
        .iter()
        .map(|p| {
            format!(
                "{} {} {} [{}] {:?}",
                p.place, p.packet, p.fate, p.ruleset, p.seen
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn capture(traces: &[tcplab::Trace], name: &str) -> usize {
    traces
        .iter()
        .position(|t| t.host == name)
        .unwrap_or_else(|| panic!("no capture {name}"))
}

#[test]
fn each_packet_is_tied_to_the_rule_aws_would_name() {
    if !privileged() {
        return;
    }
    let before = root_tables();
    assert!(!before.contains("tcplab"), "{before}");
    let (_, resolved) = Topology::from_toml(&topology(WEB_BEFORE), "attribution.toml").unwrap();
    let (_, changed) = Topology::from_toml(&topology(WEB_AFTER), "attribution.toml").unwrap();
    let lab = Lab::from_resolved(resolved).unwrap_or_else(|e| panic!("{e}"));
    let during = root_tables();
    assert!(!during.contains("tcplab"), "{during}");

    let recording = lab.start_captures_with(true, |_, _| None).unwrap();
    let _web = start_server(&lab, "server", 8080);
    let _other = start_server(&lab, "server", 9000);
    // Alice's connection to 8080 stays up across the change of the groups.
    let alice = lab
        .host("client")
        .unwrap()
        .spawn(tcp_client(
            "10.0.0.58",
            8080,
            &["-n", "Alice", "-c", "100000", "--pause-sec", "0.1"],
        ))
        .unwrap();
    alice
        .wait_for_line("Response to message: Message #2 from client Alice", WAIT)
        .unwrap();
    let admin_before = run(&lab, "admin", 8080, &["-c", "1", "-t", "1"]);
    let egress = run(&lab, "client", 7000, &["-c", "1", "-t", "1"]);
    let fabric_drop = run(&lab, "client", 8081, &["-c", "1", "-t", "1"]);
    let fabric_reject = run(&lab, "client", 8082, &["-c", "1", "-t", "1"]);
    let host_input = run(&lab, "admin", 9000, &["-c", "1", "-t", "1"]);
    let host_output = run(&lab, "client", 9001, &["-c", "1", "-t", "1"]);
    lab.update_rules_for(&changed, Some("step 9")).unwrap();
    let admin_after = run(&lab, "admin", 8080, &["-c", "1", "-t", "1"]);
    // A message Alice sends after the change: she sends the next one only once the last
    // is answered, so message #k+2 leaves after the change when k were answered by now.
    let answered = alice
        .lines()
        .iter()
        .filter(|l| l.text.starts_with("Response to message"))
        .count();
    alice
        .wait_for_line(
            &format!(
                "Response to message: Message #{} from client Alice",
                answered + 2
            ),
            WAIT,
        )
        .unwrap();
    let alice = alice.stop(std::time::Duration::from_secs(2)).unwrap();
    let recorded = recording.finish(None).unwrap();
    let a = &recorded.attribution;
    let traces = &recorded.traces;
    let all = dump(a);
    assert!(a.traced && a.lost.is_empty(), "{:?}", a.lost);

    // Allowed: the client's egress rule, then web-sg's rule naming client-sg as its peer.
    assert!(
        !alice.lines.iter().any(|l| l.text.starts_with("error:")),
        "{}",
        alice.transcript()
    );
    let to_web = towards(a, 8080, CLIENT);
    // In the fabric each packet meets the firewalls' port chain (no rule matches: passed),
    // then the security groups; only her SYN is let through by a rule.
    let allowed: Vec<&&Passage> = to_web
        .iter()
        .filter(|p| matches!(p.fate, Fate::Allowed { .. }))
        .collect();
    assert_eq!(allowed.len(), 1, "{all}");
    assert_eq!(allowed[0].kind(), "SYN");
    let Fate::Allowed { by } = &allowed[0].fate else {
        unreachable!()
    };
    let rules: Vec<(&str, GroupDirection, usize)> = by
        .iter()
        .map(|o| match o {
            Origin::GroupRule {
                group,
                direction,
                number,
                ..
            } => (group.as_str(), *direction, *number),
            other => panic!("not a group rule: {other}"),
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("client-sg", GroupDirection::Egress, 1),
            ("web-sg", GroupDirection::Ingress, 1)
        ],
        "{all}"
    );
    assert!(by[1].to_string().contains("client-sg"), "{}", by[1]);
    // Every later packet of hers passed as established, before the change and after it
    // (when no rule of web-sg allows 8080 any more): AWS tracks the connection.
    assert!(stopped(&to_web).is_empty(), "{all}");
    let established: Vec<&&Passage> = to_web
        .iter()
        .filter(|p| p.place == "fabric" && p.kind() != "SYN" && p.fate != Fate::Passed)
        .collect();
    assert!(
        established.len() >= 8 && established.iter().all(|p| p.fate == Fate::Established),
        "{all}"
    );
    assert!(
        established.iter().any(|p| p.ruleset == "step 9")
            && established.iter().any(|p| p.ruleset == "the topology"),
        "{all}"
    );

    // Ingress deny: admin is not in client-sg, and no rule of either of the server's groups
    // allows 8080 from it: both groups are named, as their union is what denies.
    ended_with(&admin_before, "connect-timeout");
    ended_with(&admin_after, "connect-timeout");
    let denied = stopped(&towards(a, 8080, ADMIN));
    let deny = Origin::GroupDeny {
        host: "server".into(),
        groups: vec!["base-sg".into(), "web-sg".into()],
        direction: GroupDirection::Ingress,
    };
    assert!(!denied.is_empty(), "{all}");
    for p in &denied {
        assert_eq!(p.place, "fabric");
        assert_eq!(
            p.fate,
            Fate::Dropped {
                by: deny.clone(),
                because: "security groups base-sg, web-sg (on server): no ingress rule allows tcp/8080 from 10.0.0.100".into()
            }
        );
        // On admin's port of the bridge, never on the server.
        assert!(
            p.seen
                .iter()
                .any(|s| s.capture == capture(traces, "fabric:admin")),
            "{all}"
        );
        assert!(
            p.seen
                .iter()
                .all(|s| s.capture != capture(traces, "server")),
            "{all}"
        );
    }
    // The same rule text before and after the change, each with the ruleset in force.
    let (old, new): (Vec<&Passage>, Vec<&Passage>) =
        denied.iter().partition(|p| p.ruleset == "the topology");
    assert!(!old.is_empty() && !new.is_empty(), "{all}");
    assert!(new.iter().all(|p| p.ruleset == "step 9"), "{all}");
    assert!(
        new[0].verdict().ends_with("(rules of step 9)") && !old[0].verdict().contains("rules of"),
        "{} / {}",
        old[0].verdict(),
        new[0].verdict()
    );
    let last_old = old
        .iter()
        .filter_map(|p| p.seen.first())
        .map(|s| s.at)
        .max();
    let first_new = new
        .iter()
        .filter_map(|p| p.seen.first())
        .map(|s| s.at)
        .min();
    assert!(last_old < first_new, "{all}");

    // Egress deny: the sender's group, direction egress; the server's groups never met it.
    ended_with(&egress, "connect-timeout");
    let out = stopped(&towards(a, 7000, CLIENT));
    assert!(!out.is_empty(), "{all}");
    for p in &out {
        assert_eq!(
            p.fate,
            Fate::Dropped {
                by: Origin::GroupDeny {
                    host: "client".into(),
                    groups: vec!["client-sg".into()],
                    direction: GroupDirection::Egress,
                },
                because: "security group client-sg (on client): no egress rule allows tcp/7000 to 10.0.0.58".into()
            }
        );
    }

    // A fabric firewall that drops, one that rejects: Dropped and Rejected, by number.
    ended_with(&fabric_drop, "connect-timeout");
    ended_with(&fabric_reject, "connection-refused");
    let fw = |port, from| -> Vec<(bool, usize, String)> {
        stopped(&towards(a, port, from))
            .iter()
            .map(|p| match &p.fate {
                Fate::Dropped {
                    by: Origin::Firewall { number, on, .. },
                    ..
                } => (false, *number, on.clone()),
                Fate::Rejected {
                    by: Origin::Firewall { number, on, .. },
                    ..
                } => (true, *number, on.clone()),
                other => panic!("{other}\n{all}"),
            })
            .collect()
    };
    let drops = fw(8081, CLIENT);
    assert!(!drops.is_empty(), "{all}");
    assert!(
        drops.iter().all(|d| *d == (false, 1, "fabric".into())),
        "{all}"
    );
    assert_eq!(fw(8082, CLIENT), [(true, 2, "fabric".to_string())], "{all}");
    // Both SYNs to 8081 entered at client's port and each carries its own drop once.
    let port = capture(traces, "fabric:client");
    let marked: Vec<usize> = towards(a, 8081, CLIENT)
        .iter()
        .filter(|p| p.fate.stopped())
        .flat_map(|p| {
            p.seen
                .iter()
                .filter(|s| s.capture == port)
                .map(|s| s.packet)
        })
        .collect();
    let mut unique = marked.clone();
    unique.dedup();
    assert_eq!(marked.len(), drops.len(), "{all}");
    assert_eq!(unique, marked, "one capture per drop: {all}");

    // The server's input firewall: the security groups let it through, the server's own
    // rule dropped it after its capture saw it.
    ended_with(&host_input, "connect-timeout");
    let to_9000 = towards(a, 9000, ADMIN);
    let inside = stopped(&to_9000);
    assert!(!inside.is_empty(), "{all}");
    for p in &inside {
        assert_eq!(p.place, "server");
        assert!(
            matches!(&p.fate, Fate::Dropped { by: Origin::Firewall { number: 3, on, chain: Some(c), action: Action::Drop, .. }, .. } if on == "server" && c == "input"),
            "{all}"
        );
        assert!(
            p.seen
                .iter()
                .any(|s| s.capture == capture(traces, "server")),
            "{all}"
        );
    }
    assert!(
        to_9000
            .iter()
            .any(|p| p.place == "fabric" && matches!(p.fate, Fate::Allowed { .. })),
        "{all}"
    );

    // The client's output firewall: the packet never reached the wire.
    ended_with(&host_output, "connect-timeout");
    let left = stopped(&towards(a, 9001, CLIENT));
    assert!(!left.is_empty(), "{all}");
    for p in &left {
        assert_eq!(p.place, "client");
        assert!(p.seen.is_empty(), "{all}");
        assert!(
            matches!(&p.fate, Fate::Dropped { by: Origin::Firewall { number: 4, chain: Some(c), .. }, .. } if c == "output"),
            "{all}"
        );
    }
    let on_wire = traces[capture(traces, "client")]
        .packets
        .iter()
        .filter(|p| matches!(&p.kind, tcplab::trace::Kind::Tcp(t) if t.dst.port() == 9001))
        .count();
    assert_eq!(on_wire, 0);
    assert!(
        a.flows.iter().any(|f| f.contains(":9001")
            && f.contains("out of client")
            && f.contains("firewall #4")),
        "{:?}",
        a.flows
    );

    drop(lab);
    let after = root_tables();
    assert!(!after.contains("tcplab"), "{after}");
}
