use std::path::Path;
use std::time::Duration;

use etherparse::PacketBuilder;

use super::*;
use crate::capture::{Captured, Direction, Frame};

const ORIGIN: Duration = Duration::from_secs(1_700_000_000);

fn syn(seq: u32) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4([10, 0, 0, 208], [10, 0, 0, 58], 64)
        .tcp(40000, 1235, seq, 64240)
        .syn()
        .write(&mut out, &[])
        .unwrap();
    out
}

/// The connect-timeout story: three SYNs (two retransmitted) leave client-1 and enter its
/// port on the bridge; the server's port and the server see nothing.
fn captures() -> Vec<Captured> {
    let frames = |direction| {
        (0..3)
            .map(|i| Frame {
                at: ORIGIN + Duration::from_millis(10 + 1000 * i),
                direction,
                original_len: 74,
                data: syn(7),
            })
            .collect::<Vec<_>>()
    };
    vec![
        Captured {
            host: "client-1".into(),
            interface: "eth0".into(),
            frames: frames(Direction::Out),
            drops: 0,
        },
        Captured {
            host: "fabric:client-1".into(),
            interface: "client-1".into(),
            frames: frames(Direction::In),
            drops: 0,
        },
        Captured {
            host: "server".into(),
            interface: "eth0".into(),
            frames: Vec::new(),
            drops: 0,
        },
    ]
}

fn lab() -> LabReport {
    let host = |name: &str, address: &str| HostReport {
        name: name.into(),
        address: address.into(),
        security_groups: vec![format!("{name}-sg")],
        ..HostReport::default()
    };
    LabReport {
        cidr: "10.0.0.0/24".into(),
        vpc: false,
        subnets: vec![SubnetReport {
            name: "subnet".into(),
            cidr: "10.0.0.0/24".into(),
            ..SubnetReport::default()
        }],
        hosts: vec![host("server", "10.0.0.58"), host("client-1", "10.0.0.208")],
        fabric_firewall: Vec::new(),
    }
}

const STOP: &str = "dropped by security group client-1-sg (on client-1): no egress rule allows tcp/1235 to 10.0.0.58";

/// A report of the story, with its pcaps written in `dir`, and its traces.
fn report_in(dir: &Path) -> (Report, Vec<Trace>) {
    let mut traces = Vec::new();
    let mut captures_report = Vec::new();
    for c in captures() {
        let name = format!("{}.pcap", c.host.replace(':', "-"));
        c.write_pcap(&dir.join(&name)).unwrap();
        let mut t = Trace::new(&c);
        t.pcap = Some(dir.join(&name));
        captures_report.push(CaptureReport {
            host: c.host.clone(),
            interface: c.interface.clone(),
            pcap: Some(dir.join(&name).display().to_string()),
            packets: t.packets.len(),
            dropped: 0,
            lines: (0..t.packets.len()).map(|i| t.line(i, ORIGIN)).collect(),
            directions: t
                .packets
                .iter()
                .map(|p| {
                    if p.direction == Direction::In {
                        'I'
                    } else {
                        'O'
                    }
                })
                .collect(),
        });
        traces.push(t);
    }
    let lab = lab();
    // The rules stopped each SYN at client-1's port: (capture 1, packet i).
    let stops: ladder::Stops = (0..3)
        .map(|i| ((1, i), (STOP.to_string(), "fabric".to_string())))
        .collect();
    let ladders = ladder::ladders(&traces, ORIGIN, &lab, &stops, ladder::Pairing::InOrder);
    let report = Report {
        format: FORMAT,
        scenario: "story <script>alert(1)</script>".into(),
        description: "d </script><!--".into(),
        passed: false,
        wall_time_s: 3.0,
        expectations: vec![CheckReport {
            expectation: "e".into(),
            held: false,
            detail: "x".into(),
            at: Some("s.toml:7".into()),
        }],
        captures: captures_report,
        programs: vec![ProgramReport {
            name: "client".into(),
            command: "tcp-client 10.0.0.58 1235".into(),
            exit_code: Some(3),
            class: Some("connect-timeout".into()),
            started_s: 0.0,
            duration_s: 3.0,
            output: vec![OutputLine {
                at_s: 3.0,
                stream: "stderr".into(),
                text: "error: connect-timeout </script>\x1b[31m".into(),
            }],
        }],
        rules: RulesReport::default(),
        lab,
        ladders,
        origin_unix_ns: ORIGIN.as_nanos() as u64,
    };
    (report, traces)
}

fn report(passed: bool) -> Report {
    Report {
        format: FORMAT,
        scenario: "s".into(),
        description: "d".into(),
        passed,
        wall_time_s: 1.0,
        expectations: vec![CheckReport {
            expectation: "e".into(),
            held: passed,
            detail: "x".into(),
            at: Some("s.toml:7".into()),
        }],
        captures: Vec::new(),
        programs: Vec::new(),
        rules: RulesReport::default(),
        lab: LabReport::default(),
        ladders: Vec::new(),
        origin_unix_ns: 0,
    }
}

#[test]
fn plain_text_has_no_escape_codes() {
    for passed in [true, false] {
        let r = report(passed);
        assert!(!r.text().contains('\x1b'), "{}", r.text());
        assert!(r.styled().contains('\x1b'));
    }
    assert!(report(false).text().contains("  s.toml:7: FAIL e: x"));
    assert!(report(true).text().contains("\n  ok   e: x"));
    assert!(report(false).json().contains("\"at\": \"s.toml:7\""));
}

#[test]
fn the_ladder_lines_up_a_packet_across_captures_and_ends_where_it_was_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (report, _) = report_in(dir.path());
    assert_eq!(report.ladders.len(), 1);
    let l = &report.ladders[0];
    assert_eq!(l.title, "10.0.0.208:40000 > 10.0.0.58:1235 (TCP)");
    // The server's capture saw nothing, and still has its column: the empty side is the story.
    assert_eq!(l.columns, ["client-1", "fabric:client-1", "server"]);
    assert_eq!(l.arrows.len(), 3, "one arrow per SYN, not one per capture");
    for (i, a) in l.arrows.iter().enumerate() {
        assert_eq!(a.label, "SYN");
        assert!(a.rightward);
        assert_eq!(a.retransmission, i > 0, "arrow {i}");
        assert_eq!(a.stopped.as_deref(), Some(STOP));
        let hops: Vec<(usize, usize)> = a.seen.iter().map(|h| (h.capture, h.packet)).collect();
        assert_eq!(hops, [(0, i), (1, i)]);
    }
    let text = l.text();
    let rows: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(rows[0].contains("SYN") && rows[0].contains('X'), "{text}");
    assert!(!rows[0].contains("[TCP Retransmission]"), "{text}");
    assert!(rows[1].contains("[TCP Retransmission]") && rows[1].contains(STOP));
    // The X stands between client-1's port and the server: the SYNs never got further.
    let x = rows[0].find('X').unwrap();
    let header = text.lines().nth(1).unwrap();
    assert!(x > header.find("fabric:client-1").unwrap() && x < header.find("server").unwrap());
}

#[test]
fn a_saved_run_reads_back_and_renders_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (report, traces) = report_in(dir.path());
    let saved = report.save(&traces, dir.path(), None).unwrap();
    assert_eq!(saved.json, dir.path().join(JSON_FILE));
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.report.json(), report.json());
    assert_eq!(loaded.report.text(), report.text());
    for (a, b) in loaded.traces.iter().zip(&traces) {
        assert_eq!(a.packets, b.packets);
    }
    let page = std::fs::read_to_string(&saved.html).unwrap();
    assert_eq!(loaded.report.html(&loaded.traces, Some(dir.path())), page);
    // Saving again never writes over what is there.
    assert!(report.save(&traces, dir.path(), None).is_err());
}

#[test]
fn the_page_is_self_contained_and_text_from_the_run_is_never_markup() {
    let dir = tempfile::tempdir().unwrap();
    let (report, traces) = report_in(dir.path());
    let page = report.html(&traces, Some(dir.path()));
    assert!(!page.contains("<script>alert"), "the name is escaped");
    // One closing tag per script element: the data cannot close its element early.
    assert_eq!(page.matches("</script>").count(), 2);
    assert!(!page.contains("<!--"));
    assert!(!page.contains('\x1b'));
    // The SVG namespace is a name, not an address fetched.
    let fetching = page.replace("http://www.w3.org/2000/svg", "");
    for fetch in ["http://", "https://", "src=\"", "@import", "url("] {
        assert!(
            !fetching.contains(fetch),
            "the page must fetch nothing: {fetch}"
        );
    }
    assert!(page.contains("default-src 'none'"));
    // Pcaps beside the page are linked by name.
    assert!(page.contains("href=\"client-1.pcap\""));
}

#[test]
fn a_hosts_link_impairments_are_in_the_page_and_the_record() {
    let mut report = report(true);
    report.lab = lab();
    report.lab.hosts[0].impair = Some("ingress delay 0.15 s <b>".into());
    let page = report.html(&[], None);
    assert!(
        page.contains("<td>link impairments</td><td>ingress delay 0.15 s &lt;b&gt;</td>"),
        "{page}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["lab"]["hosts"][0]["impair"],
        "ingress delay 0.15 s <b>"
    );
    // A record written before the field existed still reads.
    assert!(json["lab"]["hosts"][1].get("impair").is_none());
    let _: Report = serde_json::from_value(json).unwrap();
}

/// `report.json` with `edit` applied to its JSON value.
fn tampered(edit: impl FnOnce(&mut serde_json::Value)) -> (tempfile::TempDir, LoadError) {
    let dir = tempfile::tempdir().unwrap();
    let (report, traces) = report_in(dir.path());
    let mut value: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
    edit(&mut value);
    std::fs::write(dir.path().join(JSON_FILE), value.to_string()).unwrap();
    drop(traces);
    let err = load(dir.path()).unwrap_err();
    (dir, err)
}

#[test]
fn hostile_run_folders_are_refused_in_one_line() {
    let one_line = |e: &LoadError| {
        let s = e.to_string();
        assert!(!s.contains('\n'), "{s}");
        s
    };
    // No report at all.
    let dir = tempfile::tempdir().unwrap();
    let e = load(dir.path()).unwrap_err();
    assert!(one_line(&e).contains("cannot read"), "{e}");
    // A symlink, and a FIFO that would block a plain open.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "{}").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join(JSON_FILE)).unwrap();
    assert!(matches!(load(dir.path()), Err(LoadError::NotAFile { .. })));
    std::fs::remove_file(dir.path().join(JSON_FILE)).unwrap();
    nix::unistd::mkfifo(
        &dir.path().join(JSON_FILE),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    assert!(matches!(load(dir.path()), Err(LoadError::NotAFile { .. })));
    std::fs::remove_file(dir.path().join(JSON_FILE)).unwrap();
    // Too large (a sparse file: nothing is written).
    let big = std::fs::File::create(dir.path().join(JSON_FILE)).unwrap();
    big.set_len(load::MAX_JSON + 1).unwrap();
    assert!(matches!(load(dir.path()), Err(LoadError::TooLarge { .. })));
    std::fs::remove_file(dir.path().join(JSON_FILE)).unwrap();
    // Not JSON, another format, no format.
    std::fs::write(dir.path().join(JSON_FILE), "{\"format\": 1, ").unwrap();
    assert!(one_line(&load(dir.path()).unwrap_err()).contains("not a tcplab report"));
    let (_d, e) = tampered(|v| v["format"] = 2.into());
    assert!(matches!(e, LoadError::Format { found: 2, .. }), "{e}");
    let (_d, e) = tampered(|v| {
        v.as_object_mut().unwrap().remove("format");
    });
    assert!(one_line(&e).contains("no `format`"), "{e}");
    // A pcap named outside the folder is looked for inside it only.
    let (_d, e) = tampered(|v| v["captures"][0]["pcap"] = "/etc/../etc/passwd".into());
    assert!(
        matches!(&e, LoadError::Read { path, .. } if path.ends_with("passwd") && !path.starts_with("/etc")),
        "{e}"
    );
    let (_d, e) = tampered(|v| v["captures"][0]["pcap"] = "..".into());
    assert!(one_line(&e).contains("not a pcap's name"), "{e}");
    // The packet count must match the pcap.
    let (_d, e) = tampered(|v| v["captures"][0]["packets"] = 99.into());
    assert!(one_line(&e).contains("changed after the run"), "{e}");
}

#[test]
fn hostile_pcaps_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (report, traces) = report_in(dir.path());
    report.save(&traces, dir.path(), None).unwrap();
    let pcap = dir.path().join("client-1.pcap");
    let good = std::fs::read(&pcap).unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    cases.push(("empty", Vec::new()));
    cases.push(("truncated record", good[..good.len() - 5].to_vec()));
    let mut snap = good.clone();
    snap[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    cases.push(("snap length", snap));
    let mut link = good.clone();
    link[20..24].copy_from_slice(&101u32.to_le_bytes());
    cases.push(("link type", link));
    let mut huge = good[..24].to_vec();
    huge.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    cases.push(("record length", huge));
    for (what, bytes) in cases {
        std::fs::remove_file(&pcap).unwrap();
        std::fs::write(&pcap, &bytes).unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(matches!(e, LoadError::Pcap { .. }), "{what}: {e}");
        assert!(!e.to_string().contains('\n'), "{what}: {e}");
    }
}

#[test]
fn hostile_indexes_in_a_report_never_panic_a_renderer() {
    let dir = tempfile::tempdir().unwrap();
    let (mut report, traces) = report_in(dir.path());
    for a in &mut report.ladders[0].arrows {
        for h in &mut a.seen {
            h.column = usize::MAX;
            h.capture = usize::MAX;
            h.at_s = f64::MAX;
        }
        a.at_s = f64::NAN;
        a.label = "\u{1F600}".repeat(300);
    }
    report.ladders[0].columns.clear();
    report.ladders.push(Ladder {
        title: "t".into(),
        columns: vec!["a".into()],
        arrows: vec![Arrow {
            at_s: -1e300,
            rightward: false,
            label: String::new(),
            info: String::new(),
            seen: vec![Hop {
                column: 7,
                capture: 3,
                packet: 9,
                at_s: 0.0,
            }],
            retransmission: true,
            stopped: Some("x".into()),
            stopped_in: Some("router".into()),
        }],
        omitted: usize::MAX,
    });
    report.captures.truncate(1);
    let _ = report.text();
    let _ = report.html(&traces, None);
}

/// Every leaf of a JSON value, as a JSON pointer.
fn leaves(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                leaves(v, format!("{at}/{k}"), out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                leaves(v, format!("{at}/{i}"), out);
            }
            out.push(at);
        }
        _ => out.push(at),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 64,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })]

    /// A report.json with any of its values replaced by a hostile one is read back or refused
    /// in one line, and whatever is read back renders as text and HTML without a panic.
    #[test]
    fn a_tampered_report_is_refused_or_renders(
        picks in proptest::collection::vec((proptest::prelude::any::<usize>(), 0usize..12), 1..4)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (report, traces) = report_in(dir.path());
        report.save(&traces, dir.path(), None).unwrap();
        let mut value: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        let mut paths = Vec::new();
        leaves(&value, String::new(), &mut paths);
        for (which, hostile) in picks {
            let path = &paths[which % paths.len()];
            let replacement = match hostile {
                0 => serde_json::json!(u64::MAX),
                1 => serde_json::json!(-1),
                2 => serde_json::json!(1e308),
                3 => serde_json::json!("\u{1b}[2J</script><!--"),
                4 => serde_json::json!(null),
                5 => serde_json::json!([]),
                6 => serde_json::json!({}),
                7 => serde_json::json!("../../../../etc/passwd"),
                8 => serde_json::json!(usize::MAX as f64),
                9 => serde_json::json!(0),
                10 => serde_json::json!("x".repeat(10_000)),
                _ => serde_json::json!(true),
            };
            if let Some(slot) = value.pointer_mut(path) {
                *slot = replacement;
            }
        }
        std::fs::remove_file(dir.path().join(JSON_FILE)).unwrap();
        std::fs::write(dir.path().join(JSON_FILE), value.to_string()).unwrap();
        match load(dir.path()) {
            Ok(loaded) => {
                let _ = loaded.report.text();
                let _ = loaded.report.styled();
                let _ = loaded.report.html(&loaded.traces, Some(dir.path()));
            }
            Err(e) => proptest::prop_assert!(!e.to_string().contains('\n'), "{}", e),
        }
    }
}

/// The same SYN sent by client-1 at each of `sent` (ms) and seen by the server at `seen`.
fn syns(sent: &[u64], seen: &[u64]) -> Vec<Trace> {
    let frames = |times: &[u64], direction| {
        times
            .iter()
            .map(|&ms| Frame {
                at: ORIGIN + Duration::from_millis(ms),
                direction,
                original_len: 74,
                data: syn(7),
            })
            .collect()
    };
    [
        Captured {
            host: "client-1".into(),
            interface: "eth0".into(),
            frames: frames(sent, Direction::Out),
            drops: 0,
        },
        Captured {
            host: "server".into(),
            interface: "eth0".into(),
            frames: frames(seen, Direction::In),
            drops: 0,
        },
    ]
    .iter()
    .map(Trace::new)
    .collect()
}

/// Each arrow of a ladder as the (capture, packet) it was seen at.
fn hops(l: &ladder::Ladder) -> Vec<Vec<(usize, usize)>> {
    l.arrows
        .iter()
        .map(|a| a.seen.iter().map(|h| (h.capture, h.packet)).collect())
        .collect()
}

#[test]
fn a_retransmission_lines_up_with_what_the_server_saw_not_with_the_dropped_first() {
    let traces = syns(&[10, 1010], &[1010]);
    // The first SYN was dropped on its way (an impairment, say): the server saw the second.
    let stops: ladder::Stops = [((0, 0), ("dropped".to_string(), "fabric".to_string()))]
        .into_iter()
        .collect();
    let l = &ladder::ladders(&traces, ORIGIN, &lab(), &stops, ladder::Pairing::InOrder)[0];
    assert_eq!(hops(l), [vec![(0, 0)], vec![(0, 1), (1, 0)]]);
    assert_eq!(l.arrows[0].stopped.as_deref(), Some("dropped"));
    assert!(l.arrows[1].stopped.is_none() && l.arrows[1].retransmission);

    // Untraced, nothing says the first was stopped: the latest before the server's is taken.
    let untraced = Default::default();
    let l = &ladder::ladders(&traces, ORIGIN, &lab(), &untraced, ladder::Pairing::Latest)[0];
    assert_eq!(hops(l), [vec![(0, 0)], vec![(0, 1), (1, 0)]]);
}

#[test]
fn a_packet_held_longer_than_the_retransmission_timer_lines_up_with_the_first_sent() {
    // Two SYNs sent 1 s apart; the link holds each for 1.5 s, and the run ends before the
    // second arrives.
    let traces = syns(&[10, 1010], &[1510]);
    let untraced = Default::default();
    let l = &ladder::ladders(&traces, ORIGIN, &lab(), &untraced, ladder::Pairing::InOrder)[0];
    assert_eq!(hops(l), [vec![(0, 0), (1, 0)], vec![(0, 1)]]);
}
