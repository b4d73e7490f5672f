//! Property-based fuzzing of everything tcplab reads from outside: topology and scenario files
//! (arbitrary bytes, arbitrary TOML over the files' own keys, and the catalog's files with one
//! value replaced) and captured frames (arbitrary bytes and mangled real packets). Each must
//! end in a value or a clean error, never a panic; errors in a file must name a place in it.
//!
//! Case counts are bounded so the whole file runs in a few seconds in `cargo test`; set
//! PROPTEST_CASES to run longer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etherparse::PacketBuilder;
use proptest::prelude::*;
use proptest::test_runner::Config;
use tcplab::capture::{Captured, Direction, Frame};
use tcplab::scenario::Scenario;
use tcplab::spec::{SpecError, Topology};
use tcplab::trace::{Trace, decode, describe};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios")
}

fn config(cases: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(cases),
        // Shrinking a failure is worth a few seconds; an endless one is not.
        max_shrink_iters: 2_000,
        failure_persistence: None,
        ..Config::default()
    }
}

/// An error about a file must be `FILE:LINE:COLUMN: ...` with a line and column inside the
/// text (a line one past the end is where an unclosed table or string is reported).
fn assert_located(err: &SpecError, file: &str, text: &str) -> Result<(), TestCaseError> {
    match err {
        SpecError::Invalid {
            file: f,
            line,
            column,
            message,
        } => {
            prop_assert_eq!(f, file);
            let lines = text.split('\n').count();
            prop_assert!(
                *line >= 1 && *line <= lines + 1,
                "line {} of {}",
                line,
                lines
            );
            prop_assert!(*column >= 1, "column {}", column);
            prop_assert!(!message.is_empty());
            prop_assert!(!message.contains('\n'), "one line: {}", message);
            Ok(())
        }
        // Only a scenario's `topology` file is read from disk; its own errors are its own.
        SpecError::Read { .. }
        | SpecError::NotAFile { .. }
        | SpecError::TooLarge { .. }
        | SpecError::NotText { .. } => Ok(()),
    }
}

fn load_topology(text: &str) -> Result<(), TestCaseError> {
    if let Err(e) = Topology::from_toml(text, "fuzz.toml") {
        assert_located(&e, "fuzz.toml", text)?;
    }
    Ok(())
}

fn load_scenario(text: &str) -> Result<(), TestCaseError> {
    let dir = scenarios_dir();
    if let Err(e) = Scenario::from_toml(text, "fuzz.toml", Some(&dir), "fuzz") {
        if let SpecError::Invalid { file, .. } = &e
            && file != "fuzz.toml"
        {
            // An error inside the referenced topology file.
            return Ok(());
        }
        assert_located(&e, "fuzz.toml", text)?;
    }
    Ok(())
}

/// Values that have broken or might break a parser or a conversion.
fn hostile_number() -> impl Strategy<Value = toml::Value> {
    use toml::Value::{Float, Integer};
    prop_oneof![
        Just(Float(f64::NAN)),
        Just(Float(f64::INFINITY)),
        Just(Float(f64::NEG_INFINITY)),
        Just(Float(1e20)),
        Just(Float(-0.1)),
        Just(Float(-0.0)),
        Just(Float(f64::MIN_POSITIVE)),
        Just(Float(f64::MAX)),
        Just(Integer(i64::MAX)),
        Just(Integer(i64::MIN)),
        Just(Integer(-1)),
        Just(Integer(0)),
        Just(Integer(65_536)),
        Just(Integer(4_294_967_296)),
        (0i64..100_000).prop_map(Integer),
        any::<f64>().prop_map(Float),
        any::<i64>().prop_map(Integer),
    ]
}

/// Words the files use, so that generated TOML reaches validation, not only the parser.
const WORDS: &[&str] = &[
    "server",
    "client-1",
    "a",
    "fabric",
    "lo",
    "br0",
    "server-sg",
    "tcp",
    "udp",
    "icmp",
    "all",
    "drop",
    "reject-tcp-reset",
    "reject-port-unreachable",
    "input",
    "output",
    "10.0.0.0/24",
    "10.0.0.58",
    "0.0.0.0/0",
    "127.0.0.0/24",
    "224.0.0.0/24",
    "10.0.0.0/31",
    "10.0.0.0/32",
    "100.64.0.0/10",
    "1000-2000",
    "2000-1000",
    "server:1235",
    "server:0",
    ":",
    "start",
    "run",
    "wait-for",
    "wait",
    "stop",
    "kill",
    "ping",
    "firewall",
    "security-group",
    "class",
    "exit",
    "output",
    "syn-schedule",
    "no-flow",
    "handshake",
    "reset-by",
    "icmp",
    "payload",
    "zero-window",
    "unanswered-arp",
    "connect-timeout",
    "tcp-client",
    "tcp-server",
    "-t",
    "NaN",
    "-5",
    "1e20",
    "../topologies/article.toml",
    "/dev/zero",
    "\u{1b}[2J",
    "",
];

const KEYS: &[&str] = &[
    "subnet",
    "host",
    "name",
    "address",
    "security_groups",
    "security_group",
    "description",
    "ingress",
    "egress",
    "protocol",
    "ports",
    "cidr",
    "group",
    "firewall",
    "on",
    "chain",
    "action",
    "port",
    "source",
    "destination",
    "topology",
    "sysctls",
    "capture_bridge_ports",
    "time_limit",
    "step",
    "command",
    "wait_for",
    "timeout",
    "line",
    "target",
    "count",
    "rules",
    "expect",
    "kind",
    "program",
    "class",
    "code",
    "server",
    "sender",
    "app_timeout",
    "tolerance",
    "absolute",
    "relative",
    "by",
    "type",
    "text",
    "hosts",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(WORDS).prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

fn leaf() -> impl Strategy<Value = toml::Value> {
    prop_oneof![
        3 => word().prop_map(toml::Value::String),
        2 => hostile_number(),
        1 => any::<bool>().prop_map(toml::Value::Boolean),
    ]
}

/// TOML values over the files' own keys and words, nested a few levels.
fn value() -> BoxedStrategy<toml::Value> {
    leaf()
        .prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(toml::Value::Array),
                table(inner).prop_map(toml::Value::Table),
            ]
        })
        .boxed()
}

fn table(inner: BoxedStrategy<toml::Value>) -> impl Strategy<Value = toml::Table> {
    proptest::collection::vec(
        (
            proptest::sample::select(KEYS).prop_map(str::to_string),
            inner,
        ),
        0..7,
    )
    .prop_map(|pairs| pairs.into_iter().collect())
}

fn document() -> impl Strategy<Value = String> {
    table(value()).prop_filter_map("serialisable", |t| toml::to_string(&t).ok())
}

/// A table from the keys given a value (`None` leaves the key out).
fn tbl(pairs: Vec<(&str, Option<toml::Value>)>) -> toml::Value {
    toml::Value::Table(
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect(),
    )
}

fn s(text: &str) -> toml::Value {
    toml::Value::String(text.to_string())
}

fn pick(words: &'static [&'static str]) -> impl Strategy<Value = toml::Value> + Clone {
    proptest::sample::select(words).prop_map(s)
}

/// A required key: mostly a plausible value, now and then one of any type.
fn req(v: impl Strategy<Value = toml::Value>) -> impl Strategy<Value = Option<toml::Value>> {
    prop_oneof![39 => v, 1 => leaf()].prop_map(Some)
}

/// An optional key: left out half the time.
fn opt(v: impl Strategy<Value = toml::Value>) -> impl Strategy<Value = Option<toml::Value>> {
    proptest::option::of(prop_oneof![39 => v, 1 => leaf()])
}

/// Mostly a valid word, sometimes a hostile one: most documents should get past serde and
/// the first checks, so that every later check is reached too.
fn either(
    valid: &'static [&'static str],
    hostile: &'static [&'static str],
) -> impl Strategy<Value = toml::Value> + Clone {
    prop_oneof![39 => pick(valid), 1 => pick(hostile)]
}

/// Mostly a number in `valid`, sometimes a hostile one.
fn number(valid: std::ops::Range<i64>) -> impl Strategy<Value = toml::Value> {
    prop_oneof![
        19 => valid.prop_map(toml::Value::Integer),
        1 => hostile_number(),
    ]
}

fn host_name() -> impl Strategy<Value = toml::Value> + Clone {
    either(
        &["server", "client-1", "client-2", "a", "b"],
        &["fabric", "lo", "Bad_Name", "", "br0", "\u{1b}[2J"],
    )
}

fn net() -> impl Strategy<Value = toml::Value> + Clone {
    either(
        &["10.0.0.0/24", "10.0.0.0/16", "100.64.0.0/24", "0.0.0.0/0"],
        &[
            "10.0.0.0/30",
            "10.0.0.0/31",
            "127.0.0.0/24",
            "169.254.0.0/24",
            "224.0.0.0/24",
            "8.8.8.0/24",
            "10.0.0.0/33",
        ],
    )
}

fn address() -> impl Strategy<Value = toml::Value> + Clone {
    either(
        &["10.0.0.58", "10.0.0.4", "10.0.0.9"],
        &["10.0.0.0", "10.0.0.255", "192.168.0.1", "10.0.0"],
    )
}

fn group_name() -> impl Strategy<Value = toml::Value> + Clone {
    either(&["g", "server-sg", "client-sg"], &["nope", ""])
}

fn protocol() -> impl Strategy<Value = toml::Value> + Clone {
    either(&["tcp", "udp", "icmp", "all"], &["sctp"])
}

fn port() -> impl Strategy<Value = toml::Value> + Clone {
    prop_oneof![
        6 => (1i64..65_536).prop_map(toml::Value::Integer),
        2 => either(&["1234", "1000-2000"], &["2000-1000", "0", "70000", "-1", "x", "1-"]),
        1 => (-2i64..70_000).prop_map(toml::Value::Integer),
    ]
}

fn sg_rule() -> impl Strategy<Value = toml::Value> {
    (
        req(protocol()),
        opt(port()),
        any::<bool>(),
        req(net()),
        req(group_name()),
    )
        .prop_map(|(protocol, ports, by_group, cidr, group)| {
            let (cidr, group) = if by_group {
                (None, group)
            } else {
                (cidr, None)
            };
            tbl(vec![
                ("protocol", protocol),
                ("ports", ports),
                ("cidr", cidr),
                ("group", group),
            ])
        })
}

fn rules() -> impl Strategy<Value = toml::Value> {
    proptest::collection::vec(sg_rule(), 0..4).prop_map(toml::Value::Array)
}

fn endpoint() -> impl Strategy<Value = toml::Value> + Clone {
    prop_oneof![host_name(), net(), address()]
}

fn firewall_rule() -> impl Strategy<Value = toml::Value> {
    (
        req(either(&["fabric", "server", "client-1", "a"], &["nope"])),
        opt(either(&["input", "output"], &["forward"])),
        req(either(
            &[
                "drop",
                "reject-tcp-reset",
                "reject-host-unreachable",
                "reject-port-unreachable",
                "reject-admin-prohibited",
            ],
            &["accept"],
        )),
        opt(protocol()),
        opt(port()),
        opt(endpoint()),
        opt(endpoint()),
    )
        .prop_map(|(on, chain, action, protocol, port, source, destination)| {
            tbl(vec![
                ("on", on),
                ("chain", chain),
                ("action", action),
                ("protocol", protocol),
                ("port", port),
                ("source", source),
                ("destination", destination),
            ])
        })
}

/// Topology tables shaped as the format says, with plausible and hostile values.
fn topology_parts() -> impl Strategy<Value = Vec<(&'static str, Option<toml::Value>)>> {
    let host = (
        req(host_name()),
        opt(address()),
        proptest::option::of(proptest::collection::vec(group_name(), 0..3)),
    )
        .prop_map(|(name, address, groups)| {
            tbl(vec![
                ("name", name),
                ("address", address),
                ("security_groups", groups.map(toml::Value::Array)),
            ])
        });
    let group = (
        req(either(&["g", "server-sg", "client-sg"], &[""])),
        rules(),
        proptest::option::of(rules()),
    )
        .prop_map(|(name, ingress, egress)| {
            tbl(vec![
                ("name", name),
                ("ingress", Some(ingress)),
                ("egress", egress),
            ])
        });
    let subnet = either(
        &[
            "10.0.0.0/24",
            "10.0.0.0/16",
            "100.64.0.0/24",
            "192.168.7.0/29",
        ],
        &["0.0.0.0/0", "127.0.0.0/24", "10.0.0.0/31", "224.0.0.0/24"],
    );
    (
        opt(subnet),
        proptest::collection::vec(host, 1..5),
        proptest::collection::vec(group, 0..4),
        proptest::collection::vec(firewall_rule(), 0..3),
    )
        .prop_map(|(subnet, hosts, groups, firewalls)| {
            vec![
                ("subnet", subnet),
                ("host", Some(toml::Value::Array(hosts))),
                ("security_group", Some(toml::Value::Array(groups))),
                ("firewall", Some(toml::Value::Array(firewalls))),
            ]
        })
}

fn topology_document() -> impl Strategy<Value = String> {
    topology_parts().prop_filter_map("serialisable", |parts| toml::to_string(&tbl(parts)).ok())
}

const PROGRAMS: &[&str] = &["server", "client", "ping", "c"];

fn command() -> impl Strategy<Value = toml::Value> {
    let valid = prop_oneof![
        Just(vec!["tcp-server", "0.0.0.0", "1234"]),
        Just(vec![
            "tcp-client",
            "10.0.0.58",
            "1234",
            "-t",
            "3.5",
            "-c",
            "1"
        ]),
        Just(vec!["tcp-eager-producer", "10.0.0.58", "1234", "-t", "2"]),
        Just(vec!["tcp-hesitant-consumer", "0.0.0.0", "1234"]),
        Just(vec!["sleep", "1"]),
    ];
    let hostile_arg = pick(&[
        "-t",
        "-r",
        "-c",
        "-d",
        "--pause-sec",
        "-5",
        "NaN",
        "inf",
        "1e20",
        "2..1",
        "0",
        "--help",
        "",
        "80",
    ]);
    (
        valid,
        proptest::collection::vec((any::<prop::sample::Index>(), hostile_arg), 0..3),
    )
        .prop_map(|(args, edits)| {
            let mut args: Vec<toml::Value> = args.into_iter().map(s).collect();
            for (at, value) in edits {
                let i = at.index(args.len() + 1);
                if i == args.len() {
                    args.push(value);
                } else {
                    args[i] = value;
                }
            }
            toml::Value::Array(args)
        })
}

fn step() -> impl Strategy<Value = toml::Value> {
    let action = either(
        &[
            "start",
            "run",
            "wait-for",
            "wait",
            "ping",
            "stop",
            "kill",
            "security-group",
            "firewall",
        ],
        &["jump"],
    );
    (
        action,
        req(host_name()),
        req(pick(PROGRAMS)),
        req(command()),
        opt(number(1..30)),
        opt(either(&["x", "Listening on"], &[""])),
        opt(number(1..5)),
        proptest::option::of(rules()),
        proptest::collection::vec(firewall_rule(), 0..2),
    )
        .prop_map(
            |(action, host, name, command, timeout, line, count, ingress, fw)| {
                let a = action.as_str().unwrap_or("").to_string();
                let mut pairs = vec![("action", Some(action))];
                match a.as_str() {
                    "start" | "run" => {
                        pairs.push(("name", name));
                        pairs.push(("host", host));
                        pairs.push(("command", command));
                        if a == "run" {
                            pairs.push(("timeout", timeout));
                        } else {
                            pairs.push(("wait_for", line));
                        }
                    }
                    "wait-for" => {
                        pairs.push(("name", name));
                        pairs.push(("line", line.or(Some(s("x")))));
                    }
                    "ping" => {
                        pairs.push(("host", host));
                        pairs.push(("target", Some(s("server"))));
                        pairs.push(("count", count));
                    }
                    "security-group" => {
                        pairs.push(("group", Some(s("server-sg"))));
                        pairs.push(("ingress", ingress));
                    }
                    "firewall" => pairs.push(("rules", Some(toml::Value::Array(fw)))),
                    _ => pairs.push(("name", name)),
                }
                tbl(pairs)
            },
        )
}

fn expectation() -> impl Strategy<Value = toml::Value> {
    let kind = either(
        &[
            "class",
            "exit",
            "output",
            "syn-schedule",
            "no-flow",
            "no-ip-packets",
            "handshake",
            "reset-by",
            "no-answer",
            "icmp",
            "payload",
            "zero-window",
            "unanswered-arp",
        ],
        &["frobnicate"],
    );
    let server = either(
        &["server:1234", "10.0.0.58:1235", "client-1:1234"],
        &["server:0", "server:70000", "nope:1", "server", ":"],
    );
    (
        kind,
        req(pick(PROGRAMS)),
        req(either(
            &["client-1", "server", "fabric:server"],
            &["nope", "fabric:nope"],
        )),
        req(server),
        req(number(0..256)),
        opt(number(0..5)),
        opt(number(0..2)),
        req(number(0..256)),
    )
        .prop_map(|(kind, program, host, server, a, b, c, d)| {
            let k = kind.as_str().unwrap_or("").to_string();
            let mut pairs = vec![("kind", Some(kind))];
            match k.as_str() {
                "class" => {
                    pairs.push(("program", program));
                    pairs.push(("class", Some(s("connect-timeout"))));
                }
                "exit" => {
                    pairs.push(("program", program));
                    pairs.push(("code", a));
                }
                "output" => {
                    pairs.push(("program", program));
                    pairs.push(("line", Some(s("x"))));
                }
                "syn-schedule" => {
                    pairs.push(("host", host));
                    pairs.push(("server", server));
                    pairs.push(("app_timeout", a));
                    let tolerance = match (b, c) {
                        (Some(b), Some(c)) => {
                            Some(tbl(vec![("absolute", Some(b)), ("relative", Some(c))]))
                        }
                        _ => None,
                    };
                    pairs.push(("tolerance", tolerance));
                }
                "icmp" => {
                    pairs.push(("host", host));
                    pairs.push(("server", server));
                    pairs.push(("type", a));
                    pairs.push(("code", d));
                }
                "no-ip-packets" => pairs.push(("host", host)),
                "unanswered-arp" => {
                    pairs.push(("host", host));
                    pairs.push(("target", Some(s("10.0.0.9"))));
                }
                "payload" => {
                    pairs.push(("text", Some(s("x"))));
                    pairs.push(("server", server));
                    pairs.push(("hosts", Some(toml::Value::Array(vec![s("server")]))));
                }
                "reset-by" => {
                    pairs.push(("host", host));
                    pairs.push(("server", server));
                    pairs.push(("by", Some(s("server"))));
                }
                _ => {
                    pairs.push(("host", host));
                    pairs.push(("server", server));
                }
            }
            tbl(pairs)
        })
}

/// Scenario files shaped as the format says, over the article's topology or their own.
fn scenario_document() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        topology_parts(),
        opt(number(1..60)),
        proptest::collection::vec(step(), 0..6),
        proptest::collection::vec(expectation(), 0..4),
        proptest::option::of((
            host_name(),
            either(
                &["net.ipv4.tcp_syn_retries"],
                &["net.ipv4/../../kernel/x", "kernel.panic", "net..x"],
            ),
            prop_oneof![3 => number(0..8), 1 => leaf()],
        )),
    )
        .prop_filter_map(
            "serialisable",
            |(article, topology, time_limit, steps, expects, sysctl)| {
                let mut pairs = vec![("description", Some(s("fuzz"))), ("time_limit", time_limit)];
                if article {
                    pairs.push(("topology", Some(s("../topologies/article.toml"))));
                } else {
                    pairs.extend(topology);
                }
                pairs.push(("step", Some(toml::Value::Array(steps))));
                pairs.push(("expect", Some(toml::Value::Array(expects))));
                if let Some((host, key, value)) = sysctl {
                    let host = host.as_str().unwrap_or("").to_string();
                    let inner = toml::Value::Table(
                        [(key.as_str().unwrap_or("").to_string(), value)]
                            .into_iter()
                            .collect(),
                    );
                    pairs.push((
                        "sysctls",
                        Some(toml::Value::Table([(host, inner)].into_iter().collect())),
                    ));
                }
                toml::to_string(&tbl(pairs)).ok()
            },
        )
}

/// A catalog file with the value of one `key = value` line replaced by a hostile one.
fn mutated_catalog_file() -> impl Strategy<Value = String> {
    let files: Vec<String> = std::fs::read_dir(scenarios_dir())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let replacement = prop_oneof![
        leaf().prop_map(|v| v.to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("\"".to_string()),
        Just("[\"tcp-client\", \"h\", \"1234\", \"-t\", \"-5\"]".to_string()),
        Just("[\"tcp-client\", \"h\", \"1234\", \"-r\", \"NaN\"]".to_string()),
    ];
    (
        proptest::sample::select(files),
        any::<prop::sample::Index>(),
        replacement,
    )
        .prop_map(|(text, which, replacement)| {
            let lines: Vec<&str> = text.lines().collect();
            let values: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].contains(" = "))
                .collect();
            let target = values[which.index(values.len())];
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| match l.split_once(" = ") {
                    Some((key, _)) if i == target => format!("{key} = {replacement}"),
                    _ => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn topology_parser_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        load_topology(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn topology_parser_survives_any_toml(text in document()) {
        load_topology(&text)?;
    }

    #[test]
    fn scenario_parser_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        load_scenario(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn scenario_parser_survives_any_toml(text in document()) {
        load_scenario(&text)?;
    }

    #[test]
    fn topology_parser_survives_shaped_topologies(text in topology_document()) {
        load_topology(&text)?;
    }

    #[test]
    fn scenario_parser_survives_shaped_scenarios(text in scenario_document()) {
        load_scenario(&text)?;
    }

    #[test]
    fn scenario_parser_survives_a_catalog_file_with_one_hostile_value(text in mutated_catalog_file()) {
        load_scenario(&text)?;
    }
}

/// A real frame (ARP, TCP, UDP, ICMP error quoting a packet) from arbitrary fields.
fn real_frame() -> impl Strategy<Value = Vec<u8>> {
    let addr = any::<[u8; 4]>();
    (
        0u8..4,
        addr,
        addr,
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        any::<u8>(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(which, src, dst, sport, dport, seq, a, b, payload)| {
            let base = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(src, dst, 64);
            let mut out = Vec::new();
            let _ = match which {
                0 => base
                    .tcp(sport, dport, seq, u16::from(a))
                    .syn()
                    .write(&mut out, &payload),
                1 => base.udp(sport, dport).write(&mut out, &payload),
                2 => base
                    .icmpv4(etherparse::Icmpv4Type::Unknown {
                        type_u8: a % 4 + 2,
                        code_u8: b,
                        bytes5to8: [0; 4],
                    })
                    .write(&mut out, &payload),
                _ => {
                    let arp = etherparse::ArpPacket::new(
                        etherparse::ArpHardwareId::ETHERNET,
                        etherparse::EtherType::IPV4,
                        etherparse::ArpOperation::REQUEST,
                        &[2; 6],
                        &src,
                        &[0; 6],
                        &dst,
                    )
                    .expect("valid ARP sizes");
                    PacketBuilder::ethernet2([2; 6], [0xff; 6])
                        .arp(arp)
                        .write(&mut out)
                }
            };
            out
        })
}

/// A real frame cut short, grown, or with bytes overwritten.
fn mangled_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        real_frame(),
        any::<prop::sample::Index>(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        proptest::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(mut frame, cut, writes, extra)| {
            for (at, byte) in writes {
                let i = at.index(frame.len());
                frame[i] = byte;
            }
            frame.truncate(cut.index(frame.len() + 1));
            frame.extend(extra);
            frame
        })
}

fn trace_of(frames: Vec<Vec<u8>>) -> Trace {
    let frames = frames
        .into_iter()
        .enumerate()
        .map(|(i, data)| Frame {
            at: Duration::from_millis(i as u64),
            direction: if i % 2 == 0 {
                Direction::Out
            } else {
                Direction::In
            },
            original_len: data.len(),
            data,
        })
        .collect();
    Trace::new(&Captured {
        host: "fuzz".into(),
        interface: "eth0".into(),
        frames,
        drops: 0,
    })
}

proptest! {
    #![proptest_config(config(1_000))]

    #[test]
    fn decoder_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = describe(&decode(&bytes));
    }

    #[test]
    fn decoder_survives_mangled_frames(frame in mangled_frame()) {
        let _ = describe(&decode(&frame));
    }

    #[test]
    fn traces_of_mangled_frames_render(frames in proptest::collection::vec(mangled_frame(), 0..12)) {
        let trace = trace_of(frames);
        for i in 0..trace.packets.len() {
            let _ = trace.line(i, Duration::ZERO);
        }
        let _ = trace.flows();
    }
}

/// Values put in place of each value of each catalog file, one at a time.
const HOSTILE_VALUES: &[&str] = &[
    "nan",
    "-nan",
    "inf",
    "-inf",
    "1e20",
    "-1",
    "-0.1",
    "0",
    "-0.0",
    "1e-320",
    "9223372036854775807",
    "-9223372036854775808",
    "65536",
    "4294967296",
    "\"\"",
    "\"\\u001b[2J\"",
    "\"0.0.0.0/0\"",
    "\"server:0\"",
    "[]",
    "{}",
    "{ absolute = -0.1, relative = 0.05 }",
    "{ absolute = 0.1, relative = nan }",
];

/// Arguments put in place of each argument of each command of the catalog.
const HOSTILE_ARGS: &[&str] = &["-5", "NaN", "inf", "1e20", "-t", "", "--help", "0"];

/// Every value of every catalog file replaced in turn by every hostile value: deterministic,
/// so a regression shows on the first run rather than by chance.
#[test]
fn every_catalog_value_replaced_by_every_hostile_value() {
    let topologies = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/topologies");
    let files = std::fs::read_dir(scenarios_dir())
        .unwrap()
        .chain(std::fs::read_dir(topologies).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"));
    let mut loads = 0;
    for path in files {
        let load = if path.starts_with(scenarios_dir()) {
            load_scenario
        } else {
            load_topology
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let with = |target: usize, value: &str| -> String {
            let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            let key = lines[target].split_once(" = ").unwrap().0;
            out[target] = format!("{key} = {value}");
            out.join("\n")
        };
        for (i, line) in lines.iter().enumerate() {
            let Some((_, value)) = line.split_once(" = ") else {
                continue;
            };
            for hostile in HOSTILE_VALUES {
                load(&with(i, hostile)).unwrap();
                loads += 1;
            }
            // Each argument of a command, in turn.
            if let Ok(toml::Value::Array(args)) = value.parse::<toml::Value>() {
                for a in 0..args.len() {
                    for hostile in HOSTILE_ARGS {
                        let mut args = args.clone();
                        args[a] = toml::Value::String(hostile.to_string());
                        let value = toml::Value::Array(args).to_string();
                        load(&with(i, &value)).unwrap();
                        loads += 1;
                    }
                }
            }
        }
    }
    assert!(loads > 5_000, "{loads} loads");
}

const CLIENT: [u8; 4] = [10, 0, 0, 208];
const SERVER: [u8; 4] = [10, 0, 0, 58];

/// A frame of a conversation between the article's client and server on port 1234: TCP with
/// any flags, window and payload, ICMP errors quoting the flow, ARP; either direction.
fn lab_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..4,
        any::<bool>(),
        prop_oneof![Just(40_000u16), Just(40_001)],
        0u32..4,
        any::<u8>(),
        prop_oneof![Just(0u16), Just(64_240)],
        proptest::collection::vec(any::<u8>(), 0..24),
        0u8..16,
    )
        .prop_map(
            |(which, to_server, client_port, seq, flags, window, payload, code)| {
                let (src, dst, sport, dport) = if to_server {
                    (CLIENT, SERVER, client_port, 1234)
                } else {
                    (SERVER, CLIENT, 1234, client_port)
                };
                let mut out = Vec::new();
                let base = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(src, dst, 64);
                let _ = match which {
                    0 | 1 => {
                        let mut tcp = base.tcp(sport, dport, seq * 1000, window);
                        if flags & 1 != 0 {
                            tcp = tcp.syn();
                        }
                        if flags & 2 != 0 {
                            tcp = tcp.ack(seq * 7);
                        }
                        if flags & 4 != 0 {
                            tcp = tcp.rst();
                        }
                        if flags & 8 != 0 {
                            tcp = tcp.fin();
                        }
                        if flags & 16 != 0 {
                            tcp = tcp.psh();
                        }
                        tcp.write(&mut out, &payload)
                    }
                    2 => {
                        // An ICMP error quoting the client's SYN, as a firewall sends it.
                        let mut quoted = Vec::new();
                        let _ = PacketBuilder::ipv4(CLIENT, SERVER, 64)
                            .tcp(client_port, 1234, 0, 64_240)
                            .syn()
                            .write(&mut quoted, &[]);
                        quoted.truncate(28);
                        base.icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                            etherparse::icmpv4::DestUnreachableHeader::from_values(code, 0)
                                .unwrap_or(etherparse::icmpv4::DestUnreachableHeader::Host),
                        ))
                        .write(&mut out, &quoted)
                    }
                    _ => {
                        let op = if to_server {
                            etherparse::ArpOperation::REQUEST
                        } else {
                            etherparse::ArpOperation::REPLY
                        };
                        let arp = etherparse::ArpPacket::new(
                            etherparse::ArpHardwareId::ETHERNET,
                            etherparse::EtherType::IPV4,
                            op,
                            &[2; 6],
                            &src,
                            &[0; 6],
                            &dst,
                        )
                        .expect("valid ARP sizes");
                        PacketBuilder::ethernet2([2; 6], [0xff; 6])
                            .arp(arp)
                            .write(&mut out)
                    }
                };
                out
            },
        )
}

proptest! {
    #![proptest_config(config(300))]

    /// Every expectation read from a capture gives a verdict, whatever the capture holds.
    #[test]
    fn expectations_judge_any_conversation(
        frames in proptest::collection::vec(prop_oneof![4 => lab_frame(), 1 => mangled_frame()], 0..16),
        linear in proptest::option::of(0u32..300),
        retries in 0u32..300,
        app_timeout in proptest::option::of(1u64..86_400_000),
        absolute in 0u64..3_600_000,
        relative in 0.0f64..=10.0,
        icmp in (any::<u8>(), any::<u8>()),
    ) {
        use std::net::SocketAddrV4;
        use tcplab::expect::{Evidence, Expectation, SynSchedule, Tolerance, evaluate};
        use tcplab::trace::Side;
        let trace = trace_of(frames);
        let host = "fuzz".to_string();
        let server = SocketAddrV4::new(SERVER.into(), 1234);
        let expectations = vec![
            Expectation::SynSchedule {
                host: host.clone(),
                server,
                schedule: SynSchedule {
                    linear_timeouts: linear,
                    syn_retries: retries,
                    app_timeout: app_timeout.map(Duration::from_millis),
                },
                tolerance: Tolerance {
                    absolute: Duration::from_millis(absolute),
                    relative,
                },
                program: None,
            },
            Expectation::NoFlow { host: host.clone(), server },
            Expectation::NoIpPackets { host: host.clone() },
            Expectation::Handshake { host: host.clone(), server },
            Expectation::ResetBy { host: host.clone(), server, by: Side::Server },
            Expectation::ResetBy { host: host.clone(), server, by: Side::Client },
            Expectation::NoAnswer { host: host.clone(), server },
            Expectation::IcmpError { host: host.clone(), server, icmp_type: icmp.0, code: icmp.1 },
            Expectation::Payload { text: "a".into(), server, hosts: vec![host.clone()] },
            Expectation::Answer { text: "".into(), server, hosts: vec![host.clone(), "other".into()] },
            Expectation::ZeroWindow { host: host.clone(), server },
            Expectation::UnansweredArp { host: host.clone(), target: SERVER.into() },
        ];
        let traces = [trace];
        let verdict = evaluate(&expectations, &Evidence { traces: &traces, outcomes: &[], origin: Duration::ZERO });
        // One check per expectation, after those of the captures themselves (drops).
        for e in &expectations {
            let name = e.to_string();
            prop_assert!(verdict.checks.iter().any(|c| c.expectation == name), "{} has no check", name);
        }
    }
}

proptest! {
    #![proptest_config(config(500))]

    /// The apps' arguments in a scenario are judged without panicking, and a command judged
    /// valid has a connect timeout a `Duration` holds (the live view draws it).
    #[test]
    fn app_commands_are_judged_without_panicking(
        app in pick(&["tcp-client", "tcp-server", "tcp-eager-producer", "tcp-hesitant-consumer"]),
        args in proptest::collection::vec(
            prop_oneof![
                pick(&[
                    "10.0.0.58", "1234", "-t", "-r", "-c", "-d", "-w", "-n", "-a", "-p",
                    "--pause-sec", "--connect-timeout-sec=2", "3.5", "0", "-5", "NaN", "inf",
                    "1e20", "86400", "86401", "2..1", "1..2", "--", "-",
                ]),
                any::<String>().prop_map(toml::Value::String),
            ],
            0..8,
        ),
    ) {
        let argv: Vec<String> = std::iter::once(app)
            .chain(args)
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect();
        if let Err((Some(at), why)) = tcplab::apps::args::check_command(&argv) {
            prop_assert!(at >= 1 && at < argv.len(), "{} for {:?}", at, argv);
            prop_assert!(!why.contains('\n'), "{}", why);
        }
        if tcplab::apps::args::check_command(&argv).is_ok()
            && matches!(argv[0].as_str(), "tcp-client" | "tcp-eager-producer")
            && !argv.iter().any(|a| a.starts_with("--h") || a.starts_with("--v") || a == "-h" || a == "-V")
        {
            let t = tcplab::apps::args::connect_timeout(&argv);
            prop_assert!(
                t.is_some_and(|t| t > Duration::ZERO && t.as_secs_f64() <= tcplab::spec::bounds::MAX_SECONDS),
                "{:?} for {:?}", t, argv
            );
        }
    }
}
