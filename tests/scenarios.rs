//! One test per file in fixtures/scenarios: adding a scenario file adds a test.

mod common;

use std::path::{Path, PathBuf};

use common::artifacts::Artifacts;
use common::privileged;
use rstest::rstest;
use tcplab::scenario::{RunOptions, Scenario, run};

#[rstest]
fn scenario(#[files("fixtures/scenarios/*.toml")] path: PathBuf) {
    let scenario = Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    if !privileged() {
        return;
    }
    let artifacts = Artifacts::new(&scenario.name);
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tcp-server"))
        .parent()
        .map(Path::to_path_buf);
    let result = run(
        &scenario,
        RunOptions {
            out_dir: Some(artifacts.path().to_path_buf()),
            bin_dir,
            events: None,
            interrupt: None,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        result.verdict.passed(),
        "{}: {}\n{}",
        scenario.name,
        scenario.description,
        result.verdict
    );
}

#[test]
fn a_step_that_cannot_finish_fails_the_run_within_its_time_limit() {
    if !privileged() {
        return;
    }
    let text = r#"
description = "waits for a line that never comes"
time_limit = 2
[[host]]
name = "a"
[[step]]
action = "start"
host = "a"
name = "server"
command = ["tcp-server", "0.0.0.0", "1234"]
wait_for = "Listening on"
[[step]]
action = "wait-for"
name = "server"
line = "a line tcp-server never prints"
[[expect]]
kind = "output"
program = "server"
line = "Listening on"
"#;
    let scenario = Scenario::from_toml(text, "inline.toml", None, "inline").unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tcp-server"))
        .parent()
        .map(Path::to_path_buf);
    let started = std::time::Instant::now();
    let result = run(
        &scenario,
        RunOptions {
            bin_dir,
            ..RunOptions::default()
        },
    )
    .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the time limit holds"
    );
    assert!(!result.verdict.passed());
    let report = result.verdict.to_string();
    assert!(
        report
            .contains("FAIL step 2 (wait until server prints \"a line tcp-server never prints\")"),
        "{report}"
    );
    // The server still running at the end was stopped, and its output kept for the checks.
    assert!(
        report.contains("ok   server printed \"Listening on\""),
        "{report}"
    );
}
