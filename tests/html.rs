//! The HTML report in a real browser (Debian's `chromium`, headless, driven over the DevTools
//! protocol by the `headless_chrome` crate): the pages of catalog scenarios load with no
//! console error, the ladders hold an arrow for every packet the captures hold, and a
//! screenshot of each page is kept under `target/tmp/html-report/` as an artifact. A page of
//! 10,000 packets opens, and its packet list keeps only a screenful of rows in the page.
//!
//! Without `chromium` these tests say they skipped; in CI (`CI` set) they fail instead.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Log, Page, Runtime};
use headless_chrome::{Browser, LaunchOptions};
use tcplab::report::Report;
use tcplab::scenario::{Scenario, run};
use tcplab::trace::Kind;

/// The browser, or `None` (said) when it is missing outside CI.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    });
    match found {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => panic!(
            "chromium is not installed: the HTML report's browser tests need it in CI (`cargo xtask deps` installs Debian's `chromium`)"
        ),
        None => {
            eprintln!(
                "skipped: chromium is not installed (`cargo xtask deps`, or apt-get install chromium)"
            );
            None
        }
    }
}

/// Where a test's pages and screenshots are kept: under the target folder, so that CI can
/// keep them as artifacts whether the test passed or not.
fn artifacts(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("html-report")
        .join(name);
    // Only this test's own folder, from an earlier run, is removed.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    dir
}

/// What the page said on its console and the DevTools log, as errors.
type Errors = Arc<Mutex<Vec<String>>>;

/// Opens `page` in headless Chromium, waits until its script has drawn it, screenshots it to
/// `shot`, and returns the browser's tab (kept alive by the browser) with the errors seen.
fn open(browser_path: &Path, page: &Path, shot: &Path) -> (Browser, Errors, Duration) {
    let browser = Browser::new(
        LaunchOptions::default_builder()
            .path(Some(browser_path.to_path_buf()))
            .headless(true)
            // Root in a container: Chromium's sandbox needs user namespaces it may not have.
            .sandbox(false)
            .window_size(Some((1400, 2400)))
            .idle_browser_timeout(Duration::from_secs(120))
            .build()
            .expect("launch options"),
    )
    .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser_path.display()));
    let errors: Errors = Arc::default();
    let tab = browser.new_tab().expect("a tab");
    tab.set_default_timeout(Duration::from_secs(60));
    {
        let errors = errors.clone();
        tab.add_event_listener(Arc::new(move |event: &Event| {
            let said = match event {
                Event::RuntimeExceptionThrown(e) => {
                    Some(format!("exception: {}", e.params.exception_details.text))
                }
                Event::RuntimeConsoleAPICalled(e)
                    if matches!(
                        e.params.Type,
                        Runtime::ConsoleAPICalledEventTypeOption::Error
                            | Runtime::ConsoleAPICalledEventTypeOption::Assert
                    ) =>
                {
                    Some(format!("console.error: {:?}", e.params.args))
                }
                Event::LogEntryAdded(e) if e.params.entry.level == Log::LogEntryLevel::Error => {
                    Some(format!("log: {}", e.params.entry.text))
                }
                _ => None,
            };
            if let Some(s) = said {
                errors.lock().unwrap().push(s);
            }
        }))
        .unwrap();
    }
    tab.enable_runtime().unwrap();
    tab.enable_log().unwrap();
    let started = Instant::now();
    let url = format!("file://{}", page.display());
    tab.navigate_to(&url)
        .and_then(|t| t.wait_until_navigated())
        .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    tab.wait_for_element("html[data-drawn='yes']")
        .unwrap_or_else(|e| panic!("the page's script never finished drawing {url}: {e}"));
    let drawn = started.elapsed();
    let png = tab
        .capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    std::fs::write(shot, png).unwrap();
    (browser, errors, drawn)
}

/// Evaluates `js` (which returns a string) in the browser's only tab.
fn eval(browser: &Browser, js: &str) -> String {
    let tabs = browser.get_tabs().lock().unwrap().clone();
    let tab = tabs.last().expect("a tab");
    let value = tab.evaluate(js, false).unwrap().value;
    match value {
        Some(serde_json::Value::String(s)) => s,
        other => panic!("{js} returned {other:?}"),
    }
}

/// Runs a catalog scenario with its reports written into `dir`; returns its report.
fn run_scenario(name: &str, dir: &Path) -> (Report, Vec<tcplab::Trace>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/scenarios")
        .join(format!("{name}.toml"));
    let scenario = Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let result = run(&scenario, common::run_options(Some(dir))).unwrap_or_else(|e| panic!("{e}"));
    let report = Report::new(&scenario, &result);
    assert!(report.passed, "{}", report.text());
    report.save(&result.traces, dir, None).unwrap();
    (report, result.traces)
}

/// Every arrow the page drew: its label, the packets it stands for (`capture:packet`), and
/// whether it ends in what stopped it.
fn drawn_arrows(browser: &Browser) -> Vec<(String, Vec<String>, Option<String>)> {
    let json = eval(
        browser,
        "JSON.stringify(Array.from(document.querySelectorAll('.ladder svg g.arrow')).map(g => [g.dataset.label, g.dataset.hops, g.dataset.stopped || null]))",
    );
    let rows: Vec<(String, String, Option<String>)> = serde_json::from_str(&json).unwrap();
    rows.into_iter()
        .map(|(label, hops, stopped)| {
            (
                label,
                hops.split_whitespace().map(str::to_string).collect(),
                stopped,
            )
        })
        .collect()
}

/// Every IP packet of every capture, as `capture:packet`: what the ladders must draw.
fn captured_ip_packets(traces: &[tcplab::Trace]) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for (c, t) in traces.iter().enumerate() {
        for (i, p) in t.packets.iter().enumerate() {
            if matches!(p.kind, Kind::Tcp(_) | Kind::Udp(_) | Kind::Icmp(_)) {
                all.insert(format!("{c}:{i}"));
            }
        }
    }
    all
}

/// Checks a scenario's page: no error, an arrow hop for each captured packet (each once).
fn check_page(name: &str) -> Option<(Report, Vec<tcplab::Trace>, Browser)> {
    let browser_path = chromium()?;
    if !common::privileged() {
        return None;
    }
    let dir = artifacts(name);
    let (report, traces) = run_scenario(name, &dir);
    let shot = dir.join("screenshot.png");
    let (browser, errors, drawn) = open(&browser_path, &dir.join("report.html"), &shot);
    eprintln!(
        "{name}: drawn in {drawn:?}; page and screenshot in {}",
        dir.display()
    );
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a screenshot of the page"
    );
    let errors = errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{name}: the page logged errors: {errors:?}"
    );
    assert_eq!(
        eval(
            &browser,
            "String(document.documentElement.dataset.errors || 0)"
        ),
        "0"
    );
    let arrows = drawn_arrows(&browser);
    let mut hops: BTreeMap<String, usize> = BTreeMap::new();
    for (_, list, _) in &arrows {
        for h in list {
            *hops.entry(h.clone()).or_default() += 1;
        }
    }
    let want = captured_ip_packets(&traces);
    let got: BTreeSet<String> = hops.keys().cloned().collect();
    assert_eq!(
        got, want,
        "{name}: the ladders must draw each captured packet"
    );
    assert!(
        hops.values().all(|&n| n == 1),
        "{name}: a packet on two arrows: {hops:?}"
    );
    Some((report, traces, browser))
}

fn capture_index(traces: &[tcplab::Trace], host: &str) -> usize {
    traces
        .iter()
        .position(|t| t.host == host)
        .unwrap_or_else(|| panic!("no capture {host}"))
}

#[test]
fn connect_timeout_page_shows_the_syns_stopped_by_the_security_group() {
    let Some((report, traces, browser)) = check_page("connect-timeout") else {
        return;
    };
    let client = capture_index(&traces, "client-1");
    let syns = traces[client].flows()[0].syns.len();
    assert!(syns >= 3, "the client retransmitted its SYN");
    let arrows = drawn_arrows(&browser);
    let syn_arrows: Vec<_> = arrows.iter().filter(|(l, _, _)| l == "SYN").collect();
    assert_eq!(syn_arrows.len(), syns, "an arrow per SYN the client sent");
    let port = capture_index(&traces, "fabric:client-1");
    let server = capture_index(&traces, "server");
    for (_, hops, stopped) in &syn_arrows {
        // Sent by client-1, into its port on the bridge, and no further: the security group.
        let captures: Vec<usize> = hops
            .iter()
            .map(|h| h.split(':').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(captures, [client, port]);
        let stopped = stopped.as_deref().expect("the rule that stopped it");
        assert!(stopped.contains("security group client-sg"), "{stopped}");
        assert!(!captures.contains(&server));
    }
    // The retransmissions are marked, as Wireshark marks them.
    let marked = eval(
        &browser,
        "String(document.querySelectorAll('.ladder svg g.arrow.retransmission').length)",
    );
    assert_eq!(marked, (syns - 1).to_string());
    // The packet lists are Wireshark's: its columns, the SYNs grey, retransmissions Bad TCP.
    let head = eval(
        &browser,
        "document.querySelector('#capture-0 .packets .head').innerText.replace(/\\s+/g, ' ').trim()",
    );
    assert_eq!(head, "No. Time Source Destination Protocol Length Info");
    let rows = eval(
        &browser,
        &format!(
            "JSON.stringify(Array.from(document.querySelectorAll('#capture-{client} .packets .row')).map(r => r.className))"
        ),
    );
    assert!(
        rows.contains("row tcp-synfin") && rows.contains("row bad-tcp"),
        "{rows}"
    );
    assert_eq!(report.ladders[0].columns[0], "client-1");
}

#[test]
fn allowed_page_shows_both_conversations_end_to_end() {
    let Some((report, traces, browser)) = check_page("allowed") else {
        return;
    };
    let tcp: Vec<_> = report
        .ladders
        .iter()
        .filter(|l| l.title.ends_with("(TCP)"))
        .collect();
    assert_eq!(tcp.len(), 2, "Alice's and Bob's connections");
    for l in &tcp {
        assert!(l.arrows.iter().all(|a| a.stopped.is_none()));
        // Every packet went from one end to the other: seen on both hosts.
        let ends = [l.columns[0].as_str(), "server"];
        for a in &l.arrows {
            let seen: Vec<&str> = a
                .seen
                .iter()
                .map(|h| traces[h.capture].host.as_str())
                .collect();
            for end in ends {
                assert!(
                    seen.contains(&end),
                    "{} not seen on {end}: {seen:?}",
                    a.info
                );
            }
        }
    }
    let stopped = eval(
        &browser,
        "String(document.querySelectorAll('.ladder svg g.arrow[data-stopped]').length)",
    );
    assert_eq!(stopped, "0");
}

#[test]
fn a_page_of_ten_thousand_packets_opens_and_keeps_a_screenful_of_rows() {
    let Some(browser_path) = chromium() else {
        return;
    };
    let dir = artifacts("ten-thousand");
    let html = big::page(&dir, 10_000);
    let size = std::fs::metadata(&html).unwrap().len();
    let (browser, errors, drawn) = open(&browser_path, &html, &dir.join("screenshot.png"));
    eprintln!("10,000 packets: {size} bytes, drawn in {drawn:?}");
    assert!(
        errors.lock().unwrap().is_empty(),
        "{:?}",
        errors.lock().unwrap()
    );
    let rows = eval(
        &browser,
        "String(document.querySelectorAll('#capture-0 .packets .row').length)",
    );
    let rows: usize = rows.parse().unwrap();
    assert!(
        (10..200).contains(&rows),
        "a screenful of rows in the page, not 10,000: {rows}"
    );
    // Scrolled to the end, the last packet is in the page.
    let last = eval(
        &browser,
        "(() => { const b = document.querySelector('#capture-0 .packets'); b.scrollTop = b.scrollHeight; b.dispatchEvent(new Event('scroll')); return Array.from(b.querySelectorAll('.row')).map(r => r.dataset.no).pop(); })()",
    );
    assert_eq!(last, "10000");
    // The ladder draws a page of arrows at a time.
    let arrows = eval(
        &browser,
        "String(document.querySelectorAll('.ladder svg g.arrow').length)",
    );
    assert_eq!(arrows, "200");
}

/// A report of a bulk transfer, made without a lab: for the browser test of a large page.
mod big {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use etherparse::PacketBuilder;
    use tcplab::capture::{Captured, Direction, Frame};

    pub fn frames(n: usize) -> Vec<Frame> {
        (0..n)
            .map(|i| {
                let mut data = Vec::new();
                let from_client = i % 2 == 0;
                let (src, dst, sp, dp) = if from_client {
                    ([10, 0, 0, 208], [10, 0, 0, 58], 40000, 1234)
                } else {
                    ([10, 0, 0, 58], [10, 0, 0, 208], 1234, 40000)
                };
                let b = PacketBuilder::ethernet2([2; 6], [4; 6])
                    .ipv4(src, dst, 64)
                    .tcp(sp, dp, 1 + 100 * (i as u32 / 2), 64240);
                let b = if i == 0 { b.syn() } else { b.ack(1) };
                b.write(&mut data, if from_client { &[b'x'; 100] } else { &[] })
                    .unwrap();
                Frame {
                    at: Duration::from_secs(1_700_000_000) + Duration::from_micros(50 * i as u64),
                    direction: if from_client {
                        Direction::Out
                    } else {
                        Direction::In
                    },
                    original_len: data.len(),
                    data,
                }
            })
            .collect()
    }

    /// Writes the page of one capture of `n` packets into `dir`; returns its path.
    pub fn page(dir: &Path, n: usize) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let captured = Captured {
            host: "client-1".into(),
            interface: "eth0".into(),
            frames: frames(n),
            drops: 0,
        };
        let trace = tcplab::Trace::new(&captured);
        let report = tcplab::report::Report::of_traces(
            "ten-thousand",
            "a bulk transfer of 10,000 packets",
            std::slice::from_ref(&trace),
            Duration::from_secs(1_700_000_000),
        );
        let path = dir.join("report.html");
        std::fs::write(&path, report.html(&[trace], Some(dir))).unwrap();
        path
    }
}

#[test]
fn nacl_missing_ephemeral_page_ends_the_syn_acks_at_the_vpc_router() {
    let Some((report, _traces, browser)) = check_page("nacl-missing-ephemeral") else {
        return;
    };
    let tcp = &report.ladders[0];
    assert_eq!(tcp.columns, ["client-1", "VPC router", "server"]);
    let columns = eval(
        &browser,
        "document.querySelector('.ladder svg').dataset.columns",
    );
    assert_eq!(columns, "client-1 VPC router server");
    let arrows = drawn_arrows(&browser);
    let syn_acks: Vec<_> = arrows.iter().filter(|(l, _, _)| l == "SYN, ACK").collect();
    assert!(!syn_acks.is_empty());
    for (_, _, stopped) in &syn_acks {
        let stopped = stopped.as_deref().expect("stopped by the ACL");
        assert!(stopped.contains("network ACL public-acl"), "{stopped}");
    }
    let syns = arrows.iter().filter(|(l, _, _)| l == "SYN").count();
    assert!(
        syns >= 2,
        "the SYN and its retransmissions reach the server"
    );
    assert!(
        arrows
            .iter()
            .filter(|(l, _, _)| l == "SYN")
            .all(|(_, _, s)| s.is_none())
    );
}
