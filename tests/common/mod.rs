//! Shared by the lab tests: privilege handling, the article's lab, and the apps' commands.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tcplab::lab::{Lab, check_privileges};
use tcplab::spec::Topology;

/// How long any single step may take before a test gives up on it.
pub const WAIT: Duration = Duration::from_secs(30);

pub const SKIP_VAR: &str = "TCPLAB_SKIP_PRIVILEGED";

/// Whether lab tests can run here. Without privileges a test fails with how to run it, unless
/// the user asked to skip them with TCPLAB_SKIP_PRIVILEGED=1.
pub fn privileged() -> bool {
    match check_privileges() {
        Ok(()) => true,
        Err(e) if std::env::var_os(SKIP_VAR).is_some_and(|v| v == "1") => {
            eprintln!("skipped: {e} ({SKIP_VAR}=1)");
            false
        }
        Err(e) => panic!(
            "{e}\nRun the tests as root: `sudo -E cargo xtask test`. To skip the lab tests instead, set {SKIP_VAR}=1."
        ),
    }
}

pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

pub fn article_topology() -> Topology {
    Topology::from_file(fixture("topologies/article.toml"))
        .expect("article.toml is valid")
        .0
}

/// The article's lab, or `None` when the user asked to skip lab tests.
pub fn article_lab() -> Option<Lab> {
    lab_of(&article_topology())
}

pub fn lab_of(topology: &Topology) -> Option<Lab> {
    if !privileged() {
        return None;
    }
    Some(Lab::build(topology).unwrap_or_else(|e| panic!("cannot build the lab: {e}")))
}

pub fn tcp_server(address: &str, port: u16, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcp-server"));
    cmd.arg(address).arg(port.to_string()).args(extra);
    cmd
}

pub fn tcp_client(address: &str, port: u16, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcp-client"));
    cmd.arg(address).arg(port.to_string()).args(extra);
    if !extra.contains(&"--pause-sec") {
        cmd.args(["--pause-sec", "0"]);
    }
    cmd
}

/// Runs `cmd` in `host` of `lab` to its end.
pub fn run_in(lab: &Lab, host: &str, cmd: Command) -> tcplab::proc::Outcome {
    lab.host(host)
        .unwrap()
        .run(cmd, WAIT)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Starts the sandbox server on `host`, listening on every address, and waits until it listens.
pub fn start_server(lab: &Lab, host: &str, port: u16) -> tcplab::proc::Proc {
    let p = lab
        .host(host)
        .unwrap()
        .spawn(tcp_server("0.0.0.0", port, &[]))
        .unwrap();
    p.wait_for_line("Listening on", WAIT).unwrap();
    p
}

/// Run options that find tcplab's apps where cargo built them, writing to `out_dir` if given.
pub fn run_options(out_dir: Option<&std::path::Path>) -> tcplab::scenario::RunOptions {
    tcplab::scenario::RunOptions {
        out_dir: out_dir.map(std::path::Path::to_path_buf),
        bin_dir: std::path::Path::new(env!("CARGO_BIN_EXE_tcp-server"))
            .parent()
            .map(std::path::Path::to_path_buf),
        ..tcplab::scenario::RunOptions::default()
    }
}

pub fn ping(target: &str) -> Command {
    let mut cmd = Command::new("ping");
    cmd.args(["-c", "1", "-W", "2", target]);
    cmd
}
pub mod artifacts;
pub mod hygiene;
