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
