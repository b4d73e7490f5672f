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
    let result = run(&scenario, common::run_options(Some(artifacts.path())))
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
    let started = std::time::Instant::now();
    let result = run(&scenario, common::run_options(None)).unwrap();
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

/// A scenario in a folder of its own, next to a program of the user's.
fn user_scenario(dir: &Path, command: &str) -> Scenario {
    let text = format!(
        r#"
description = "a program of the user's, by a path relative to this file and a variable"
time_limit = 20
[[host]]
name = "a"
[[step]]
action = "run"
host = "a"
name = "tool"
command = {command}
[[expect]]
kind = "exit"
program = "tool"
code = 3
[[expect]]
kind = "output"
program = "tool"
line = "hello from the user's tool"
"#
    );
    let path = dir.join("user.toml");
    std::fs::write(&path, text).unwrap();
    Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn commands_start_from_the_scenario_file_and_take_variables() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    let tool = dir.path().join("bin/tool.sh");
    std::fs::write(
        &tool,
        "#!/bin/sh\necho \"hello from the user's $1\"\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: set before any thread of this test reads the environment; the name is unique.
    unsafe { std::env::set_var("TCPLAB_TEST_WORD", "tool") };
    let scenario = user_scenario(dir.path(), r#"["./bin/tool.sh", "${TCPLAB_TEST_WORD}"]"#);
    if !privileged() {
        return;
    }
    let result = run(&scenario, RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(result.verdict.passed(), "{}", result.verdict);

    let missing = user_scenario(dir.path(), r#"["./bin/absent"]"#);
    let result = run(&missing, RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let report = result.verdict.to_string();
    let tried = dir.path().join("./bin/absent");
    assert!(
        report.contains(&format!("(tried {})", tried.display())),
        "the error names the path it tried:\n{report}"
    );
}

#[test]
fn an_unset_variable_in_a_command_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("user.toml");
    std::fs::write(
        &path,
        "description = \"d\"\n[[host]]\nname = \"a\"\n[[step]]\naction = \"run\"\nhost = \"a\"\nname = \"t\"\ncommand = [\"${TCPLAB_SURELY_UNSET_VARIABLE}\"]\n",
    )
    .unwrap();
    let Err(error) = Scenario::from_file(&path).map(|_| ()) else {
        panic!("an unset variable must be refused");
    };
    let error = error.to_string();
    assert!(
        error.contains("user.toml:8:")
            && error.contains("`${TCPLAB_SURELY_UNSET_VARIABLE}` is not set in the environment"),
        "{error}"
    );
}
