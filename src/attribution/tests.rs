//! Passages grouped from synthetic trace events, their fates, and their packets on synthetic
//! captures. The rule book is labelled and loaded as the lab does it, with handles given here.

use std::time::Duration;

use etherparse::PacketBuilder;

use super::*;
use crate::capture::{Captured, Direction, Frame};
use crate::firewall::{Chain, Family, Loaded, Rule, Table, Verdict};
use crate::spec::Action;

const CLIENT: [u8; 4] = [10, 0, 0, 208];
const SERVER: [u8; 4] = [10, 0, 0, 58];

fn hosts() -> Vec<HostAt> {
    vec![
        HostAt {
            name: "server".into(),
            address: SERVER.into(),
        },
        HostAt {
            name: "client".into(),
            address: CLIENT.into(),
        },
    ]
}

fn group_rule(group: &str, host: &str, direction: GroupDirection, number: usize) -> Origin {
    Origin::GroupRule {
        group: group.into(),
        host: host.into(),
        direction,
        number,
        rule: format!("tcp/8080 rule {number}"),
    }
}

fn deny(host: &str, groups: &[&str], direction: GroupDirection) -> Origin {
    Origin::GroupDeny {
        host: host.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        direction,
    }
}

fn firewall(number: usize, action: Action) -> Origin {
    Origin::Firewall {
        number,
        on: "fabric".into(),
        chain: None,
        action,
        rule: format!("{action} tcp/1234"),
    }
}

/// A table of regular chains holding one rule per origin: the handles are given in order
/// from 1, chain by chain, as `(chain, handle)` pairs tell the tests.
fn table(family: Family, name: &str, chains: &[(&str, Vec<Origin>)]) -> Table {
    Table {
        family,
        name: name.into(),
        chains: chains
            .iter()
            .map(|(chain, origins)| Chain {
                name: chain.to_string(),
                base: None,
                rules: origins
                    .iter()
                    .map(|o| Rule::new(Vec::new(), Verdict::Drop).from(o.clone()))
                    .collect(),
            })
            .collect(),
    }
}

/// Labels and "loads" `tables` into `place` as revision `revision`; the kernel's handles
/// count from 1 over every rule of a table.
fn load(book: &mut RuleBook, place: Placement, revision: usize, mut tables: Vec<Table>) {
    book.label(revision, &mut tables);
    let mut loaded = Vec::new();
    for t in &tables {
        let mut handle = 0;
        for c in &t.chains {
            for r in &c.rules {
                handle += 1;
                loaded.push(Loaded {
                    family: t.family,
                    table: t.name.clone(),
                    chain: c.name.clone(),
                    handle,
                    comment: r.comment.clone(),
                });
            }
        }
    }
    book.loaded(place, &tables, loaded);
}

/// The fabric's security groups: `forward` (established: handle 1), `sg-out-client`
/// (egress rule 1 of client-sg: 2, deny: 3), `sg-in-server` (web-sg's rule 1: 4, the deny
/// of base-sg and web-sg: 5), and a port table whose handle 1 rejects.
fn book() -> RuleBook {
    let mut book = RuleBook::new(true);
    load(
        &mut book,
        Placement::Fabric,
        0,
        vec![
            table(
                Family::Inet,
                "tcplab",
                &[
                    ("forward", vec![Origin::Established]),
                    (
                        "sg-out-client",
                        vec![
                            group_rule("client-sg", "client", GroupDirection::Egress, 1),
                            deny("client", &["client-sg"], GroupDirection::Egress),
                        ],
                    ),
                    (
                        "sg-in-server",
                        vec![
                            group_rule("web-sg", "server", GroupDirection::Ingress, 1),
                            deny("server", &["base-sg", "web-sg"], GroupDirection::Ingress),
                        ],
                    ),
                ],
            ),
            table(
                Family::Netdev,
                "tcplab-ports",
                &[("from-client", vec![firewall(2, Action::RejectTcpReset)])],
            ),
        ],
    );
    book
}

/// The IPv4 and TCP headers of a segment from the client to the server.
fn tcp(dport: u16, seq: u32, syn: bool) -> (Vec<u8>, Vec<u8>) {
    let builder = PacketBuilder::ipv4(CLIENT, SERVER, 64).tcp(40000, dport, seq, 64240);
    let builder = if syn { builder.syn() } else { builder.ack(1) };
    let mut out = Vec::new();
    builder.write(&mut out, b"").unwrap();
    let (ip, transport) = out.split_at(20);
    (ip.to_vec(), transport.to_vec())
}

/// An event of the fabric's `inet` table `tcplab`; `headers` only on a passage's first.
struct Ev {
    place: Placement,
    family: Option<Family>,
    table: &'static str,
    id: u32,
}

impl Ev {
    fn fabric(id: u32) -> Ev {
        Ev {
            place: Placement::Fabric,
            family: Some(Family::Inet),
            table: "tcplab",
            id,
        }
    }

    fn event(
        &self,
        chain: &str,
        handle: Option<u64>,
        step: Step,
        decision: Decision,
        headers: Option<&(Vec<u8>, Vec<u8>)>,
    ) -> RuleEvent {
        RuleEvent {
            place: self.place,
            family: self.family,
            table: self.table.into(),
            chain: chain.into(),
            handle,
            step,
            decision: Some(decision),
            id: self.id,
            network: headers.map(|h| h.0.clone()).unwrap_or_default(),
            transport: headers.map(|h| h.1.clone()).unwrap_or_default(),
        }
    }

    fn rule(&self, chain: &str, handle: u64, decision: Decision) -> RuleEvent {
        self.event(chain, Some(handle), Step::Rule, decision, None)
    }

    /// The first event of a passage: a jump from the forward chain, with the headers.
    fn start(&self, headers: &(Vec<u8>, Vec<u8>)) -> RuleEvent {
        self.event(
            "forward",
            Some(10),
            Step::Rule,
            Decision::Jump,
            Some(headers),
        )
    }

    fn policy(&self, chain: &str, decision: Decision) -> RuleEvent {
        self.event(chain, None, Step::Policy, decision, None)
    }
}

fn run(book: &RuleBook, events: Vec<RuleEvent>) -> Attribution {
    attribute(
        RuleEvents {
            events,
            lost: Vec::new(),
        },
        book,
        &hosts(),
        &[],
    )
}

#[test]
fn interleaved_passages_are_told_apart_by_place_and_id() {
    let book = book();
    let to_web = tcp(8080, 100, true);
    let to_other = tcp(8081, 200, true);
    let (a, b) = (Ev::fabric(7), Ev::fabric(9));
    // The same id in a host's namespace is another packet.
    let elsewhere = Ev {
        place: Placement::Host(0),
        ..Ev::fabric(7)
    };
    let events = vec![
        a.start(&to_other),
        b.start(&to_web),
        elsewhere.event("input", None, Step::Policy, Decision::Accept, Some(&to_web)),
        b.rule("sg-in-server", 4, Decision::Return),
        a.rule("sg-in-server", 5, Decision::Drop),
        b.policy("forward", Decision::Accept),
    ];
    let at = run(&book, events);
    let summary: Vec<(String, String, String)> = at
        .passages
        .iter()
        .map(|p| (p.place.clone(), p.packet.clone(), p.fate.to_string()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "server".to_string(),
                "10.0.0.208:40000 > 10.0.0.58:8080 SYN".to_string(),
                "passed: no rule matched".to_string()
            ),
            (
                "fabric".to_string(),
                "10.0.0.208:40000 > 10.0.0.58:8081 SYN".to_string(),
                "dropped by security groups base-sg, web-sg (on server): no ingress rule allows tcp/8081 from 10.0.0.208".to_string()
            ),
            (
                "fabric".to_string(),
                "10.0.0.208:40000 > 10.0.0.58:8080 SYN".to_string(),
                "allowed by security group web-sg (on server): ingress rule 1 allows tcp/8080 rule 1".to_string()
            ),
        ]
    );
    assert!(at.lost.is_empty());
}

#[test]
fn a_rule_tcplab_did_not_make_is_foreign() {
    let book = book();
    let h = tcp(8081, 1, true);
    let (a, b) = (Ev::fabric(1), Ev::fabric(2));
    // A handle the book does not hold (a program added a rule to the chain), and a table of
    // the `ip` family named like tcplab's, whose handles coincide with tcplab's own.
    let ip_table = Ev {
        family: None,
        ..Ev::fabric(3)
    };
    let at = run(
        &book,
        vec![
            a.start(&h),
            a.rule("sg-in-server", 99, Decision::Drop),
            b.start(&h),
            b.rule("sg-in-server", 98, Decision::Accept),
            ip_table.start(&h),
            ip_table.rule("sg-in-server", 5, Decision::Drop),
        ],
    );
    let fates: Vec<&Fate> = at.passages.iter().map(|p| &p.fate).collect();
    assert_eq!(
        fates,
        [
            &Fate::Foreign {
                rule: "table tcplab chain sg-in-server handle 99".into(),
                dropped: true
            },
            &Fate::Foreign {
                rule: "table tcplab chain sg-in-server handle 98".into(),
                dropped: false
            },
            &Fate::Foreign {
                rule: "table tcplab chain sg-in-server handle 5".into(),
                dropped: true
            },
        ]
    );
    assert!(at.passages[0].fate.stopped());
    assert!(!at.passages[1].fate.stopped());
    assert_eq!(at.passages[0].fate.stopped_by(), None);
}

#[test]
fn a_chain_dropping_by_policy_is_foreign_and_stops_the_packet() {
    let book = book();
    let h = tcp(8080, 1, true);
    let evil = Ev {
        place: Placement::Host(0),
        table: "evil",
        ..Ev::fabric(4)
    };
    let at = run(
        &book,
        vec![evil.event("input", None, Step::Policy, Decision::Drop, Some(&h))],
    );
    assert_eq!(
        at.passages[0].fate,
        Fate::Foreign {
            rule: "table evil chain input policy drop".into(),
            dropped: true
        }
    );
    assert_eq!(
        at.flows,
        [
            "10.0.0.208:40000 > 10.0.0.58:8080: 1 SYN reached server; dropped by a rule tcplab did not make (table evil chain input policy drop)"
        ]
    );
}

#[test]
fn a_group_deny_names_the_service_and_the_peer() {
    let book = book();
    let to_ssh = tcp(22, 5, true);
    let (a, b) = (Ev::fabric(1), Ev::fabric(2));
    let at = run(
        &book,
        vec![
            a.start(&to_ssh),
            a.rule("sg-out-client", 3, Decision::Drop),
            b.start(&to_ssh),
            b.rule("sg-in-server", 5, Decision::Drop),
        ],
    );
    let egress = &at.passages[0];
    assert_eq!(
        egress.fate,
        Fate::Dropped {
            by: deny("client", &["client-sg"], GroupDirection::Egress),
            because:
                "security group client-sg (on client): no egress rule allows tcp/22 to 10.0.0.58"
                    .into()
        }
    );
    let Fate::Dropped { because, by } = &at.passages[1].fate else {
        panic!("{:?}", at.passages[1].fate)
    };
    assert_eq!(
        because,
        "security groups base-sg, web-sg (on server): no ingress rule allows tcp/22 from 10.0.0.208"
    );
    assert_eq!(
        by.names(),
        ["security-group:base-sg", "security-group:web-sg"]
    );
    assert_eq!(at.passages[1].ruleset, TOPOLOGY);
    assert_eq!(at.passages[1].kind(), "SYN");
}

#[test]
fn a_policy_accept_after_return_rules_is_allowed_by_them_egress_first() {
    let book = book();
    let h = tcp(8080, 1, true);
    let a = Ev::fabric(1);
    // Ingress met before egress on purpose: the fate still lists the sender's egress first,
    // as the packet meets it in AWS.
    let at = run(
        &book,
        vec![
            a.start(&h),
            a.rule("sg-in-server", 4, Decision::Return),
            a.event("sg-in-server", None, Step::Return, Decision::Continue, None),
            a.rule("forward", 11, Decision::Jump),
            a.rule("sg-out-client", 2, Decision::Return),
            a.policy("forward", Decision::Accept),
        ],
    );
    assert_eq!(at.passages.len(), 1, "{:?}", at.passages);
    assert_eq!(
        at.passages[0].fate,
        Fate::Allowed {
            by: vec![
                group_rule("client-sg", "client", GroupDirection::Egress, 1),
                group_rule("web-sg", "server", GroupDirection::Ingress, 1),
            ]
        }
    );
    assert!(!at.passages[0].fate.stopped());
    assert_eq!(
        at.flows,
        [
            "10.0.0.208:40000 > 10.0.0.58:8080: SYN allowed by security group client-sg (on client): egress rule 1 allows tcp/8080 rule 1; security group web-sg (on server): ingress rule 1 allows tcp/8080 rule 1"
        ]
    );
}

#[test]
fn established_packets_are_told_apart_from_allowed_ones() {
    let book = book();
    let ack = tcp(8080, 2, false);
    let a = Ev::fabric(1);
    let at = run(
        &book,
        vec![a.event("forward", Some(1), Step::Rule, Decision::Accept, Some(&ack))],
    );
    assert_eq!(at.passages[0].fate, Fate::Established);
    assert_eq!(at.passages[0].kind(), "TCP segment");
    // Established packets alone make no line: nothing stopped or allowed the flow.
    assert!(at.flows.is_empty(), "{:?}", at.flows);
}

#[test]
fn a_reject_rule_rejects() {
    let book = book();
    let h = tcp(1234, 1, true);
    let port = Ev {
        family: Some(Family::Netdev),
        table: "tcplab-ports",
        ..Ev::fabric(1)
    };
    let at = run(
        &book,
        vec![port.event("from-client", Some(1), Step::Rule, Decision::Drop, Some(&h))],
    );
    assert_eq!(
        at.passages[0].fate,
        Fate::Rejected {
            by: firewall(2, Action::RejectTcpReset),
            because: "firewall #2 (fabric): reject-tcp-reset tcp/1234".into()
        }
    );
}

#[test]
fn a_passage_that_lost_its_end_is_not_merged_with_the_next_packet() {
    let book = book();
    let first = tcp(8081, 1, true);
    let second = tcp(8080, 2, true);
    let a = Ev::fabric(1);
    // The first packet's terminal event was lost; the kernel reuses the id for the next.
    let at = run(
        &book,
        vec![
            a.start(&first),
            a.start(&second),
            a.rule("sg-in-server", 4, Decision::Return),
            a.policy("forward", Decision::Accept),
        ],
    );
    assert_eq!(at.passages.len(), 1);
    assert_eq!(
        at.passages[0].packet,
        "10.0.0.208:40000 > 10.0.0.58:8080 SYN"
    );
    assert!(matches!(at.passages[0].fate, Fate::Allowed { .. }));
}

#[test]
fn the_same_rule_in_a_later_revision_names_the_change() {
    let mut book = book();
    let revision = book.next_revision(Some("step 4"));
    assert_eq!(revision, 1);
    load(
        &mut book,
        Placement::Fabric,
        revision,
        vec![table(
            Family::Inet,
            "tcplab-r1",
            &[
                ("forward", vec![Origin::Established]),
                (
                    "sg-out-client",
                    vec![
                        group_rule("client-sg", "client", GroupDirection::Egress, 1),
                        deny("client", &["client-sg"], GroupDirection::Egress),
                    ],
                ),
                (
                    "sg-in-server",
                    vec![
                        group_rule("web-sg", "server", GroupDirection::Ingress, 1),
                        deny("server", &["base-sg", "web-sg"], GroupDirection::Ingress),
                    ],
                ),
            ],
        )],
    );
    let h = tcp(8081, 1, true);
    let before = Ev::fabric(1);
    let after = Ev {
        table: "tcplab-r1",
        ..Ev::fabric(2)
    };
    let established = Ev {
        table: "tcplab-r1",
        ..Ev::fabric(3)
    };
    let at = run(
        &book,
        vec![
            before.start(&h),
            before.rule("sg-in-server", 5, Decision::Drop),
            after.start(&h),
            after.rule("sg-in-server", 5, Decision::Drop),
            established.event(
                "forward",
                Some(1),
                Step::Rule,
                Decision::Accept,
                Some(&tcp(8080, 9, false)),
            ),
        ],
    );
    let p = &at.passages;
    assert_eq!(p[0].fate, p[1].fate, "the same rule text");
    assert_eq!(p[0].ruleset, "the topology");
    assert_eq!(p[1].ruleset, "step 4");
    assert!(!p[0].verdict().contains("rules of"), "{}", p[0].verdict());
    assert!(
        p[1].verdict().ends_with("(rules of step 4)"),
        "{}",
        p[1].verdict()
    );
    assert_eq!(p[2].fate, Fate::Established);
    assert_eq!(p[2].ruleset, "step 4");
    assert_eq!(
        at.flows,
        [
            "10.0.0.208:40000 > 10.0.0.58:8081: 1 SYN entered the fabric at client's port; dropped by security groups base-sg, web-sg (on server): no ingress rule allows tcp/8081 from 10.0.0.208; server never saw it; 1 SYN entered the fabric at client's port; dropped by security groups base-sg, web-sg (on server): no ingress rule allows tcp/8081 from 10.0.0.208 (rules of step 4); server never saw it"
        ]
    );
}

fn frame(syn_seq: u32, ms: u64, direction: Direction) -> Frame {
    let mut data = Vec::new();
    PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(CLIENT, SERVER, 64)
        .tcp(40000, 8081, syn_seq, 64240)
        .syn()
        .write(&mut data, b"")
        .unwrap();
    Frame {
        at: Duration::from_millis(ms),
        direction,
        original_len: data.len(),
        data,
    }
}

fn trace(host: &str, frames: Vec<Frame>) -> Trace {
    Trace::new(&Captured {
        host: host.into(),
        interface: "eth0".into(),
        frames,
        drops: 0,
    })
}

#[test]
fn a_packet_meeting_two_hooks_of_the_fabric_is_one_packet_on_the_captures() {
    let book = book();
    let h = tcp(8081, 1, true);
    // A SYN and its retransmission: each meets the port's netdev chain (no rule matches,
    // policy accept), then the forward hook, where the security group drops it.
    let port = |id| Ev {
        family: Some(Family::Netdev),
        table: "tcplab-ports",
        ..Ev::fabric(id)
    };
    let mut events = Vec::new();
    for id in [1, 2] {
        events.push(port(id).event(
            "from-client",
            None,
            Step::Policy,
            Decision::Accept,
            Some(&h),
        ));
        events.push(Ev::fabric(id).start(&h));
        events.push(Ev::fabric(id).rule("sg-in-server", 5, Decision::Drop));
    }
    let traces = vec![
        trace(
            "client",
            vec![frame(1, 0, Direction::Out), frame(1, 1000, Direction::Out)],
        ),
        trace("server", Vec::new()),
        trace(
            "fabric:client",
            vec![frame(1, 1, Direction::In), frame(1, 1001, Direction::In)],
        ),
    ];
    let at = attribute(
        RuleEvents {
            events,
            lost: Vec::new(),
        },
        &book,
        &hosts(),
        &traces,
    );
    let seen: Vec<(String, Vec<(usize, usize)>)> = at
        .passages
        .iter()
        .map(|p| {
            (
                p.fate.to_string(),
                p.seen.iter().map(|s| (s.capture, s.packet)).collect(),
            )
        })
        .collect();
    let dropped = "dropped by security groups base-sg, web-sg (on server): no ingress rule allows tcp/8081 from 10.0.0.208".to_string();
    let passed = "passed: no rule matched".to_string();
    assert_eq!(
        seen,
        [
            (passed.clone(), vec![(0, 0), (2, 0)]),
            (dropped.clone(), vec![(0, 0), (2, 0)]),
            (passed, vec![(0, 1), (2, 1)]),
            (dropped, vec![(0, 1), (2, 1)]),
        ]
    );
    // The report's marks: each captured SYN carries its own drop once.
    for packet in [0, 1] {
        assert_eq!(
            at.at(2, packet).filter(|p| p.fate.stopped()).count(),
            1,
            "packet {packet}"
        );
    }
    assert_eq!(
        at.flows,
        [
            "10.0.0.208:40000 > 10.0.0.58:8081: 2 SYNs entered the fabric at client's port; dropped by security groups base-sg, web-sg (on server): no ingress rule allows tcp/8081 from 10.0.0.208; server never saw them"
        ]
    );
}

#[test]
fn losses_name_the_namespace() {
    let at = attribute(
        RuleEvents {
            events: Vec::new(),
            lost: vec![(Placement::Fabric, 1), (Placement::Host(1), 3)],
        },
        &book(),
        &hosts(),
        &[],
    );
    assert_eq!(at.lost, ["fabric", "client"]);
    assert!(at.traced);
}

/// A UDP datagram of `len` payload bytes from `src` to `dst`, as IP cuts it on a 1500-byte
/// MTU: the frames, the first of which alone holds the UDP header.
fn udp_fragments(src: ([u8; 4], u16), dst: ([u8; 4], u16), len: usize) -> Vec<Vec<u8>> {
    let mut whole = Vec::new();
    PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(src.0, dst.0, 64)
        .udp(src.1, dst.1)
        .write(&mut whole, &vec![0; len])
        .unwrap();
    let data = &whole[34..];
    data.chunks(1480)
        .enumerate()
        .map(|(n, chunk)| {
            let mut f = whole[..34].to_vec();
            let more = (n + 1) * 1480 < data.len();
            let total = u16::try_from(20 + chunk.len()).unwrap();
            f[16..18].copy_from_slice(&total.to_be_bytes());
            let flags = u16::try_from(n * 185).unwrap() | if more { 0x2000 } else { 0 };
            f[20..22].copy_from_slice(&flags.to_be_bytes());
            f.extend_from_slice(chunk);
            f
        })
        .collect()
}

#[test]
fn a_fragmented_udp_datagram_is_tied_to_its_first_fragment_and_found_both_ways() {
    let book = book();
    let sent = udp_fragments((CLIENT, 51234), (SERVER, 1234), 4096);
    let answer = udp_fragments((SERVER, 1234), (CLIENT, 51234), 4096);
    // The trace events carry the first fragment's headers: the UDP header's length is the
    // whole datagram's.
    let headers = |f: &Vec<u8>| (f[14..34].to_vec(), f[34..42].to_vec());
    let port = Ev {
        family: Some(Family::Netdev),
        table: "tcplab-ports",
        ..Ev::fabric(1)
    };
    let events = vec![
        port.event(
            "from-client",
            Some(1),
            Step::Rule,
            Decision::Drop,
            Some(&headers(&sent[0])),
        ),
        Ev::fabric(2).event(
            "forward",
            Some(1),
            Step::Rule,
            Decision::Accept,
            Some(&headers(&answer[0])),
        ),
    ];
    let out = |frames: &[Vec<u8>]| {
        frames
            .iter()
            .map(|data| Frame {
                at: Duration::from_millis(1),
                direction: Direction::Out,
                original_len: data.len(),
                data: data.clone(),
            })
            .collect::<Vec<_>>()
    };
    let traces = vec![trace("client", out(&sent)), trace("server", out(&answer))];
    let at = attribute(
        RuleEvents {
            events,
            lost: Vec::new(),
        },
        &book,
        &hosts(),
        &traces,
    );
    assert_eq!(at.passages.len(), 2, "{:?}", at.passages);
    assert_eq!(at.passages[0].kind(), "UDP datagram");
    assert_eq!(
        at.passages[0].packet,
        "10.0.0.208:51234 > 10.0.0.58:1234 UDP, length 4096"
    );
    // On the client's capture, the first of its three fragments.
    let seen: Vec<(usize, usize)> = at.passages[0]
        .seen
        .iter()
        .map(|s| (s.capture, s.packet))
        .collect();
    assert_eq!(seen, [(0, 0)]);
    // The datagram to the server and its answer, for the server and its one client.
    let towards: Vec<&str> = at
        .towards(SERVER.into(), 1234, Some(CLIENT.into()))
        .map(|p| p.packet.as_str())
        .collect();
    assert_eq!(
        towards,
        [
            "10.0.0.208:51234 > 10.0.0.58:1234 UDP, length 4096",
            "10.0.0.58:1234 > 10.0.0.208:51234 UDP, length 4096"
        ]
    );
    assert_eq!(at.towards(SERVER.into(), 1235, None).count(), 0);
    assert_eq!(
        at.flows,
        [
            "10.0.0.208:51234 > 10.0.0.58:1234: 1 UDP datagram entered the fabric at client's port; rejected by firewall #2 (fabric): reject-tcp-reset tcp/1234; no answer reached client; server never saw it"
        ]
    );
}
