//! TOML for the parsers: free-form documents over the files' own keys and words, files
//! shaped as the formats say with mostly valid and sometimes hostile values, and catalog files
//! with one value replaced.

use proptest::prelude::*;

use super::scenarios_dir;

/// Values that have broken or might break a parser or a conversion.
pub fn hostile_number() -> impl Strategy<Value = toml::Value> {
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
pub const WORDS: &[&str] = &[
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

pub const KEYS: &[&str] = &[
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

pub fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(WORDS).prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

pub fn leaf() -> impl Strategy<Value = toml::Value> {
    prop_oneof![
        3 => word().prop_map(toml::Value::String),
        2 => hostile_number(),
        1 => any::<bool>().prop_map(toml::Value::Boolean),
    ]
}

/// TOML values over the files' own keys and words, nested a few levels.
pub fn value() -> BoxedStrategy<toml::Value> {
    leaf()
        .prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(toml::Value::Array),
                table(inner).prop_map(toml::Value::Table),
            ]
        })
        .boxed()
}

pub fn table(inner: BoxedStrategy<toml::Value>) -> impl Strategy<Value = toml::Table> {
    proptest::collection::vec(
        (
            proptest::sample::select(KEYS).prop_map(str::to_string),
            inner,
        ),
        0..7,
    )
    .prop_map(|pairs| pairs.into_iter().collect())
}

pub fn document() -> impl Strategy<Value = String> {
    table(value()).prop_filter_map("serialisable", |t| toml::to_string(&t).ok())
}

/// A table from the keys given a value (`None` leaves the key out).
pub fn tbl(pairs: Vec<(&str, Option<toml::Value>)>) -> toml::Value {
    toml::Value::Table(
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect(),
    )
}

pub fn s(text: &str) -> toml::Value {
    toml::Value::String(text.to_string())
}

pub fn pick(words: &'static [&'static str]) -> impl Strategy<Value = toml::Value> + Clone {
    proptest::sample::select(words).prop_map(s)
}

/// A required key: mostly a plausible value, now and then one of any type.
pub fn req(v: impl Strategy<Value = toml::Value>) -> impl Strategy<Value = Option<toml::Value>> {
    prop_oneof![39 => v, 1 => leaf()].prop_map(Some)
}

/// An optional key: left out half the time.
pub fn opt(v: impl Strategy<Value = toml::Value>) -> impl Strategy<Value = Option<toml::Value>> {
    proptest::option::of(prop_oneof![39 => v, 1 => leaf()])
}

/// Mostly a valid word, sometimes a hostile one: most documents should get past serde and
/// the first checks, so that every later check is reached too.
pub fn either(
    valid: &'static [&'static str],
    hostile: &'static [&'static str],
) -> impl Strategy<Value = toml::Value> + Clone {
    prop_oneof![39 => pick(valid), 1 => pick(hostile)]
}

/// Mostly a number in `valid`, sometimes a hostile one.
pub fn number(valid: std::ops::Range<i64>) -> impl Strategy<Value = toml::Value> {
    prop_oneof![
        19 => valid.prop_map(toml::Value::Integer),
        1 => hostile_number(),
    ]
}

pub fn host_name() -> impl Strategy<Value = toml::Value> + Clone {
    either(
        &["server", "client-1", "client-2", "a", "b"],
        &["fabric", "lo", "Bad_Name", "", "br0", "\u{1b}[2J"],
    )
}

pub fn net() -> impl Strategy<Value = toml::Value> + Clone {
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

pub fn address() -> impl Strategy<Value = toml::Value> + Clone {
    either(
        &["10.0.0.58", "10.0.0.4", "10.0.0.9"],
        &["10.0.0.0", "10.0.0.255", "192.168.0.1", "10.0.0"],
    )
}

pub fn group_name() -> impl Strategy<Value = toml::Value> + Clone {
    either(&["g", "server-sg", "client-sg"], &["nope", ""])
}

pub fn protocol() -> impl Strategy<Value = toml::Value> + Clone {
    either(&["tcp", "udp", "icmp", "all"], &["sctp"])
}

pub fn port() -> impl Strategy<Value = toml::Value> + Clone {
    prop_oneof![
        6 => (1i64..65_536).prop_map(toml::Value::Integer),
        2 => either(&["1234", "1000-2000"], &["2000-1000", "0", "70000", "-1", "x", "1-"]),
        1 => (-2i64..70_000).prop_map(toml::Value::Integer),
    ]
}

pub fn sg_rule() -> impl Strategy<Value = toml::Value> {
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

pub fn rules() -> impl Strategy<Value = toml::Value> {
    proptest::collection::vec(sg_rule(), 0..4).prop_map(toml::Value::Array)
}

pub fn endpoint() -> impl Strategy<Value = toml::Value> + Clone {
    prop_oneof![host_name(), net(), address()]
}

pub fn firewall_rule() -> impl Strategy<Value = toml::Value> {
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
pub fn topology_parts() -> impl Strategy<Value = Vec<(&'static str, Option<toml::Value>)>> {
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

pub fn topology_document() -> impl Strategy<Value = String> {
    topology_parts().prop_filter_map("serialisable", |parts| toml::to_string(&tbl(parts)).ok())
}

pub const PROGRAMS: &[&str] = &["server", "client", "ping", "c"];

pub fn command() -> impl Strategy<Value = toml::Value> {
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

pub fn step() -> impl Strategy<Value = toml::Value> {
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

pub fn expectation() -> impl Strategy<Value = toml::Value> {
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
pub fn scenario_document() -> impl Strategy<Value = String> {
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
pub fn mutated_catalog_file() -> impl Strategy<Value = String> {
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
