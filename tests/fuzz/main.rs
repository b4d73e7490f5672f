//! Property-based fuzzing of everything tcplab reads from outside: topology and scenario files
//! (arbitrary bytes, arbitrary TOML over the files' own keys, files shaped as the formats say
//! with hostile values, the catalog's files with values replaced), captured frames (arbitrary,
//! mangled, and conversations judged by the expectations) and the apps' arguments. Each must
//! end in a value or a clean error, never a panic; errors in a file must name a place in it.
//!
//! Case counts are bounded so that all of it runs in a few seconds in `cargo test`; set
//! PROPTEST_CASES to run longer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::Config;
use tcplab::scenario::Scenario;
use tcplab::spec::{SpecError, Topology};
use tcplab::trace::{decode, describe};

mod documents;
mod frames;

use documents::*;
use frames::*;

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
        use tcplab::expect::{Evidence, Expectation, SynSysctls, Tolerance, evaluate};
        use tcplab::trace::Side;
        let trace = trace_of(frames);
        let host = "fuzz".to_string();
        let server = SocketAddrV4::new(SERVER.into(), 1234);
        let expectations = vec![
            Expectation::SynSchedule {
                host: host.clone(),
                server,
                sender: host.clone(),
                app_timeout: app_timeout.map(Duration::from_millis),
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
        let syn_sysctls = [(host.clone(), SynSysctls { linear_timeouts: linear, syn_retries: retries })];
        let verdict = evaluate(
            &expectations,
            &Evidence { traces: &traces, outcomes: &[], origin: Duration::ZERO, syn_sysctls: &syn_sysctls, attribution: &Default::default() },
        );
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
        app in pick(&["tcp-client", "tcp-server", "tcp-eager-producer", "tcp-hesitant-consumer", "udp-server", "udp-client"]),
        args in proptest::collection::vec(
            prop_oneof![
                pick(&[
                    "10.0.0.58", "1234", "-t", "-r", "-c", "-d", "-w", "-n", "-a", "-p",
                    "--pause-sec", "--connect-timeout-sec=2", "--connected", "3.5", "0", "-5", "NaN", "inf",
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

proptest! {
    #![proptest_config(config(1_000))]

    /// Any text the UDP apps send is ASCII JSON that reads back as the very text (Python's
    /// `json.loads` reads the same escapes), and any datagram is decoded or refused without
    /// panicking.
    #[test]
    fn udp_text_and_datagrams_survive_anything(text in any::<String>(), datagram in proptest::collection::vec(any::<u8>(), 0..5000)) {
        let json = tcplab::apps::pyjson::dumps(&text);
        prop_assert!(json.is_ascii(), "{}", json);
        prop_assert_eq!(serde_json::from_str::<String>(&json).ok(), Some(text.clone()));
        if let Ok(d) = tcplab::wire::Message::text(json.clone()).encode_datagram() {
            prop_assert!(d.len() >= tcplab::wire::DATAGRAM_LEN);
            prop_assert_eq!(tcplab::wire::Message::decode_datagram(&d).ok().map(|m| m.payload), Some(json));
        }
        let _ = tcplab::wire::Message::decode_datagram(&datagram);
    }
}
