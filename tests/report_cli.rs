//! `tcplab report DIR`: a run's reports rendered again from its folder, and one line for a
//! folder that is not a run's. Needs no privilege: the folder is made by the library.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use etherparse::PacketBuilder;
use tcplab::capture::{Captured, Direction, Frame};
use tcplab::report::Report;

fn tcplab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcplab"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// A run's folder as `tcplab run --out` leaves it: a pcap, `report.json`, `report.html`.
fn run_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let frames: Vec<Frame> = (0..3u64)
        .map(|i| {
            let mut data = Vec::new();
            PacketBuilder::ethernet2([2; 6], [4; 6])
                .ipv4([10, 0, 0, 208], [10, 0, 0, 58], 64)
                .tcp(40000, 1235, 7, 64240)
                .syn()
                .write(&mut data, &[])
                .unwrap();
            Frame {
                at: Duration::from_secs(1_700_000_000 + i),
                direction: Direction::Out,
                original_len: data.len(),
                data,
            }
        })
        .collect();
    let captured = Captured {
        host: "client-1".into(),
        interface: "eth0".into(),
        frames,
        drops: 0,
    };
    let pcap = dir.path().join("client-1.pcap");
    captured.write_pcap(&pcap).unwrap();
    let mut trace = tcplab::Trace::new(&captured);
    trace.pcap = Some(pcap);
    let traces = [trace];
    Report::of_traces(
        "syns",
        "three SYNs",
        &traces,
        Duration::from_secs(1_700_000_000),
    )
    .save(&traces, dir.path(), None)
    .unwrap();
    dir
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn report_renders_a_saved_run_again() {
    let dir = run_folder();
    let d = dir.path().to_str().unwrap();
    let out = tcplab(&["report", d]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("10.0.0.208:40000 > 10.0.0.58:1235 (TCP)"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("|-SYN") && l.contains("->")),
        "the ladder: {stdout}"
    );
    assert!(stdout.contains("[TCP Retransmission]"), "{stdout}");
    let out = tcplab(&["report", d, "--json"]);
    assert!(
        text(&out.stdout) == std::fs::read_to_string(dir.path().join("report.json")).unwrap(),
        "the same JSON, read back"
    );
    let out = tcplab(&["report", d, "--html", "-"]);
    assert!(
        text(&out.stdout) == std::fs::read_to_string(dir.path().join("report.html")).unwrap(),
        "the same page, from the folder"
    );
    let other = tempfile::tempdir().unwrap();
    let page = other.path().join("again.html");
    let p = page.to_str().unwrap();
    let out = tcplab(&["report", d, "--html", p]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(&format!(
        "file://{}",
        dir.path().join("client-1.pcap").display()
    )));
    // Never over a file.
    let out = tcplab(&["report", d, "--html", p]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("already exists"), "{err}");
}

fn refused(dir: &Path) -> String {
    let out = tcplab(&["report", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn report_refuses_a_folder_that_is_not_a_run_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    assert!(refused(dir.path()).contains("cannot read"));
    std::fs::write(dir.path().join("report.json"), "[1, 2").unwrap();
    assert!(refused(dir.path()).contains("not a tcplab report"));
    let dir = run_folder();
    std::fs::remove_file(dir.path().join("client-1.pcap")).unwrap();
    std::fs::write(dir.path().join("client-1.pcap"), b"not a pcap").unwrap();
    assert!(refused(dir.path()).contains("client-1.pcap"));
}
