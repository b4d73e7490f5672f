//! `tcplab run` interrupted mid-scenario: Ctrl+C (SIGINT) and SIGTERM end it early with a
//! report marked interrupted, valid pcaps and exit 130 or 143; a SIGKILL still leaves pcaps
//! that tcpdump reads, up to the last packet shown.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{WAIT, fixture, privileged};
use nix::sys::signal::Signal;
use tcplab::proc::{Outcome, Proc};

/// A client whose SYNs the security group drops, with a connect timeout far longer than any
/// test waits: only an interrupt ends this run early.
fn long_scenario(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("long.toml");
    std::fs::write(
        &file,
        format!(
            "description = \"a client that keeps trying\"\ntopology = \"{}\"\ntime_limit = 120\n[[step]]\naction = \"run\"\nhost = \"client-1\"\nname = \"client\"\ncommand = [\"tcp-client\", \"10.0.0.58\", \"1235\", \"-t\", \"100\", \"-c\", \"1\"]\n",
            fixture("topologies/article.toml").display()
        ),
    )
    .unwrap();
    file
}

/// Starts the long run, writing to `out`, and returns once its first SYN was shown live
/// (and so is in client-1's pcap).
fn start_long_run(dir: &Path, out: &Path) -> Proc {
    let scenario = long_scenario(dir);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcplab"));
    cmd.args([
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .env("NO_COLOR", "1");
    let p = Proc::spawn(cmd).unwrap();
    p.wait_for(
        |l| l.contains("client-1") && l.contains("Flags [S]"),
        "the client's first SYN",
        WAIT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    p
}

/// Reads a pcap with tcpdump; fails the test if tcpdump does not read it cleanly.
fn tcpdump(pcap: &Path) -> Vec<String> {
    let out = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tcpdump -r {}: {}",
        pcap.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn check_pcaps(out: &Path) {
    let pcaps: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();

    assert!(
        pcaps.len() >= 4,
        "a pcap per host of the article: {pcaps:?}"
    );
    for pcap in &pcaps {
        tcpdump(pcap);
        let mode = std::fs::metadata(pcap).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", pcap.display());
    }
    let syns = tcpdump(&out.join("client-1.pcap"))
        .into_iter()
        .filter(|l| l.contains("10.0.0.58.1235: Flags [S]"))
        .count();
    assert!(syns >= 1, "the SYN shown live is in client-1.pcap");
}

fn interrupted(signal: Signal, code: i32) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = start_long_run(dir.path(), &out);
    p.signal(signal).unwrap();
    let o = p.wait(WAIT).unwrap();
    assert_eq!(o.status.code(), Some(code), "{}", o.transcript());
    // The client had 100 s to go: the run ended because it was interrupted.
    assert!(o.duration < Duration::from_secs(20), "{:?}", o.duration);
    let name = signal.as_str();
    assert!(
        o.stdout()
            .any(|l| l.contains(&format!("interrupted by {name}"))),
        "{}",
        o.transcript()
    );
    assert!(
        o.stdout()
            .any(|l| l.contains("expectations failed") || l.contains("expectation failed")),
        "a report:\n{}",
        o.transcript()
    );
    check_pcaps(&out);
    // The reports of the run so far are beside the pcaps.
    assert!(out.join("report.json").is_file() && out.join("report.html").is_file());
    o
}

#[test]
fn ctrl_c_ends_a_run_with_a_report_valid_pcaps_and_130() {
    if !privileged() {
        return;
    }
    interrupted(Signal::SIGINT, 130);
}

#[test]
fn sigterm_ends_a_run_with_a_report_valid_pcaps_and_143() {
    if !privileged() {
        return;
    }
    interrupted(Signal::SIGTERM, 143);
}

#[test]
fn sigkill_leaves_pcaps_valid_up_to_the_last_packet_shown() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = start_long_run(dir.path(), &out);
    let o = p.kill().unwrap();
    assert_eq!(o.status.code(), None, "killed: {}", o.transcript());
    check_pcaps(&out);
}
