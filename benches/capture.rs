//! Capture fidelity and the cost of rule tracing: a bulk TCP transfer from client-1 to the
//! server of the article's lab, through its security groups.
//!
//! First, on two labs of the article's topology, one whose rules trace packets (the default)
//! and one without ([`LabOptions::trace_rules`]), in alternating order each round: throughput
//! with no recording, throughput while recording (captures, and on the traced lab the rule
//! trace too), how long [`tcplab::lab::Recording::finish`] takes (decoding and, when traced,
//! attribution), how many passages the attribution found and whether trace events were lost.
//! Then, once, on the traced lab: tcplab's captures and `tcpdump -w` side by side, frames
//! captured and dropped by each, and whether the captured payload adds up to what was sent,
//! and the size of the HTML report of those captures.
//!
//! Run as root: `cargo xtask bench-capture` (or `cargo bench --bench capture`). Optional:
//! `--seconds N` per transfer (default 3), `--rounds N` of the tracing comparison (default 3).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tcplab::attribution::{Attribution, Fate};
use tcplab::capture::{Captured, Direction, Frame};
use tcplab::lab::{Lab, LabOptions, check_privileges};
use tcplab::proc::Proc;
use tcplab::spec::Topology;
use tcplab::trace::{Kind, Trace};

const PORT: u16 = 1234;
const CHUNK: usize = 128 * 1024;

fn main() {
    if let Err(e) = check_privileges() {
        eprintln!("bench: {e}");
        std::process::exit(2);
    }
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: f64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v > 0.0)
            .unwrap_or(default)
    };
    let seconds = arg("--seconds", 1.0);
    let rounds = arg("--rounds", 5.0) as usize;
    let fidelity_seconds = arg("--fidelity-seconds", 3.0);
    let resolved = Topology::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/topologies/article.toml"
    ))
    .unwrap_or_else(|e| panic!("{e}"))
    .0
    .resolve()
    .unwrap_or_else(|e| panic!("{e}"));
    let build = |trace_rules| {
        Lab::from_resolved_with(resolved.clone(), LabOptions { trace_rules })
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let labs = [
        ("without tracing", build(false)),
        ("with tracing", build(true)),
    ];

    println!(
        "rule tracing: client-1 -> server:{PORT} through the security groups, {seconds} s per \
         transfer, {rounds} rounds, the two labs in alternating order"
    );
    // The first recording of the process is slower to finish (its memory is new to the
    // process): one recording on each lab, not counted, so that neither lab pays for it.
    for (_, lab) in &labs {
        record(lab, seconds.min(1.0), None);
    }
    let mut results: Vec<Vec<Round>> = vec![Vec::new(); labs.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..labs.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (label, lab) = &labs[i];
            let r = Round {
                bare: {
                    let (bytes, took) = transfer(lab, Duration::from_secs_f64(seconds), None);
                    gbits(bytes, took)
                },
                full: record(lab, seconds, None),
                paced: record(lab, seconds, Some(1e9)),
            };
            println!(
                "  round {} {label}: {:.2} Gbit/s without recording",
                round + 1,
                r.bare
            );
            for (what, rec) in [("full speed", &r.full), ("1 Gbit/s", &r.paced)] {
                println!(
                    "    recording at {what:<10} {:>6.2} Gbit/s, finish {:>7.1} ms, {}",
                    rec.gbits,
                    ms(rec.finish),
                    rec.detail
                );
            }
            results[i].push(r);
        }
    }
    println!(
        "\nmedians of {rounds} rounds     {:>14} {:>14} {:>11} {:>10} {:>11} {:>10}",
        "no recording", "recording", "finish", "passages", "finish at", "passages"
    );
    println!(
        "{:<28} {:>14} {:>14} {:>11} {:>10} {:>11} {:>10}",
        "", "", "full speed", "", "", "1 Gbit/s", ""
    );
    for ((label, _), rs) in labs.iter().zip(&results) {
        let med = |f: &dyn Fn(&Round) -> f64| median(rs.iter().map(f).collect());
        println!(
            "{label:<28} {:>7.2} Gbit/s {:>7.2} Gbit/s {:>8.1} ms {:>10} {:>8.1} ms {:>10}",
            med(&|r| r.bare),
            med(&|r| r.full.gbits),
            med(&|r| ms(r.full.finish)),
            med(&|r| r.full.passages as f64),
            med(&|r| ms(r.paced.finish)),
            med(&|r| r.paced.passages as f64),
        );
    }
    let lost: usize = results
        .iter()
        .flatten()
        .flat_map(|r| [&r.full, &r.paced])
        .filter(|rec| !rec.lost.is_empty())
        .count();
    let incomplete: usize = results
        .iter()
        .flatten()
        .flat_map(|r| [&r.full, &r.paced])
        .filter(|rec| !rec.complete)
        .count();
    println!(
        "recordings that lost trace events: {lost}; whose captures miss payload: {incomplete}"
    );

    fidelity(&labs[1].1, Duration::from_secs_f64(fidelity_seconds));
}

/// One round on one lab.
#[derive(Clone)]
struct Round {
    /// Gbit/s with nothing recording.
    bare: f64,
    /// Recording a transfer at full speed.
    full: Recorded,
    /// Recording a transfer paced to 1 Gbit/s: the same bytes on both labs, so the time
    /// `finish` takes compares.
    paced: Recorded,
}

/// One recorded transfer.
#[derive(Clone)]
struct Recorded {
    gbits: f64,
    /// How long `finish` took.
    finish: Duration,
    passages: usize,
    /// Where trace events were lost.
    lost: Vec<String>,
    /// Whether the captures of both hosts hold every byte sent.
    complete: bool,
    /// The passages by fate, and the payload's completeness, in words.
    detail: String,
}

/// Records a transfer of `seconds`, paced to `rate` bits/s if given.
fn record(lab: &Lab, seconds: f64, rate: Option<f64>) -> Recorded {
    let recording = lab.start_captures().unwrap_or_else(|e| panic!("{e}"));
    let (sent, took) = transfer(lab, Duration::from_secs_f64(seconds), rate);
    let started = Instant::now();
    let recorded = recording.finish(None).unwrap_or_else(|e| panic!("{e}"));
    let finish = started.elapsed();
    let complete = recorded
        .traces
        .iter()
        .filter(|t| t.host == "client-1" || t.host == "server")
        .all(|t| payload(t) == sent);
    let a = &recorded.attribution;
    Recorded {
        gbits: gbits(sent, took),
        finish,
        passages: a.passages.len(),
        lost: a.lost.clone(),
        complete,
        detail: format!(
            "{}; payload {}",
            passages(a, &recorded.traces),
            if complete { "complete" } else { "INCOMPLETE" }
        ),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The passages by fate, how many were found on the captures, how many packets of the
/// transfer each host sent have no passage (the fabric's forward chain sees every one of
/// them, so each should have one), and where events were lost.
fn passages(a: &Attribution, traces: &[Trace]) -> String {
    if !a.traced {
        return "not traced".into();
    }
    let count = |f: &dyn Fn(&Fate) -> bool| a.passages.iter().filter(|p| f(&p.fate)).count();
    let established = count(&|f| matches!(f, Fate::Established));
    let allowed = count(&|f| matches!(f, Fate::Allowed { .. }));
    let stopped = count(&|f| f.stopped());
    let unseen = a.passages.iter().filter(|p| p.seen.is_empty()).count();
    let traced: HashSet<(usize, usize)> = a
        .passages
        .iter()
        .flat_map(|p| p.seen.iter().map(|s| (s.capture, s.packet)))
        .collect();
    let untraced: usize = traces
        .iter()
        .enumerate()
        .filter(|(_, t)| t.host == "client-1" || t.host == "server")
        .map(|(c, t)| {
            t.packets
                .iter()
                .enumerate()
                .filter(|(i, p)| {
                    p.direction == Direction::Out
                        && matches!(&p.kind, Kind::Tcp(tcp) if tcp.src.port() == PORT || tcp.dst.port() == PORT)
                        && !traced.contains(&(c, *i))
                })
                .count()
        })
        .sum();
    let lost = if a.lost.is_empty() {
        "no events lost".to_string()
    } else {
        format!("EVENTS LOST in {}", a.lost.join(", "))
    };
    format!(
        "{} passages: {established} established, {allowed} allowed, {stopped} stopped, \
         {unseen} not on the captures; {untraced} packets sent with no passage; {lost}",
        a.passages.len()
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// tcplab's captures and tcpdump's side by side, at full speed and at 1 Gbit/s.
fn fidelity(lab: &Lab, duration: Duration) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    println!(
        "\ncapture fidelity (lab with tracing): tcplab and tcpdump side by side, snap length 262144"
    );
    for (label, rate) in [("full speed", None), ("1 Gbit/s", Some(1e9))] {
        let tcpdump: Vec<Proc> = ["client-1", "server"]
            .iter()
            .map(|h| {
                start_tcpdump(
                    lab,
                    h,
                    &dir.path()
                        .join(format!("tcpdump-{h}-{}.pcap", rate.is_some())),
                )
            })
            .collect();
        let recording = lab.start_captures().unwrap();
        let (bytes, took) = transfer(lab, duration, rate);
        let traces = recording.stop(None).unwrap();
        let dumps: Vec<(u64, u64)> = tcpdump.into_iter().map(stop_tcpdump).collect();
        println!(
            "{label:<18} {:>8.2} Gbit/s with both captures; {} payload bytes sent",
            gbits(bytes, took),
            bytes
        );
        println!(
            "  {:<22} {:>10} {:>10} {:>9} {:>16}",
            "capture", "frames", "dropped", "drop %", "payload seen"
        );
        for (host, (captured, dropped)) in ["client-1", "server"].iter().zip(&dumps) {
            let file = dir
                .path()
                .join(format!("tcpdump-{host}-{}.pcap", rate.is_some()));
            let seen = payload_in_pcap(&file, host);
            row(
                &format!("tcpdump on {host}"),
                *captured,
                *dropped,
                seen,
                bytes,
            );
        }
        for t in &traces {
            if t.host == "client-1" || t.host == "server" {
                let seen = payload(t);
                row(
                    &format!("tcplab on {}", t.host),
                    t.packets.len() as u64,
                    t.drops,
                    seen,
                    bytes,
                );
            }
        }
        html_size(&traces);
    }
}

/// The size of the HTML report of `traces`, and how long it takes to make.
fn html_size(traces: &[Trace]) {
    let origin = traces
        .iter()
        .filter_map(|t| t.packets.first())
        .map(|p| p.at)
        .min()
        .unwrap_or_default();
    let started = Instant::now();
    let report = tcplab::report::Report::of_traces("bench", "capture fidelity", traces, origin);
    let page = report.html(traces, None);
    let packets: usize = traces.iter().map(|t| t.packets.len()).sum();
    println!(
        "  HTML report of these captures: {packets} packets, {:.1} MB ({:.0} bytes per packet), made in {:.0} ms",
        page.len() as f64 / 1e6,
        page.len() as f64 / packets.max(1) as f64,
        ms(started.elapsed())
    );
}

fn gbits(bytes: u64, took: Duration) -> f64 {
    bytes as f64 * 8.0 / took.as_secs_f64() / 1e9
}

fn row(name: &str, frames: u64, dropped: u64, seen: u64, sent: u64) {
    let rate = if frames + dropped == 0 {
        0.0
    } else {
        100.0 * dropped as f64 / (frames + dropped) as f64
    };
    let complete = if seen == sent { "all" } else { "MISSING" };
    println!("  {name:<22} {frames:>10} {dropped:>10} {rate:>8.1}% {seen:>12} {complete}");
}

/// Payload bytes of the client's stream in the transfer's flow, each counted once: the
/// sequence ranges the captured segments cover, merged. Retransmissions are the same bytes
/// again, and a retransmission need not repeat the original's boundaries (it is not always
/// caught by the trace's exact-range check), so bytes are counted, not segments.
fn payload(t: &Trace) -> u64 {
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    let mut last: Option<i64> = None;
    for f in t.flows().iter().filter(|f| f.key.server.port() == PORT) {
        for &i in &f.packets {
            let Kind::Tcp(tcp) = &t.packets[i].kind else {
                continue;
            };
            if tcp.dst.port() != PORT || tcp.payload.is_empty() {
                continue;
            }
            // Sequence numbers wrap every 4 GiB: each one is unwrapped next to the last.
            let at = match last {
                None => i64::from(tcp.seq),
                Some(prev) => prev + i64::from(tcp.seq.wrapping_sub(prev as u32) as i32),
            };
            last = Some(at);
            ranges.push((at, at + tcp.payload.len() as i64));
        }
    }
    ranges.sort_unstable();
    let mut total = 0u64;
    let mut end = i64::MIN;
    for (from, to) in ranges {
        let from = from.max(end);
        if to > from {
            total += (to - from) as u64;
            end = to;
        }
    }
    total
}

fn payload_in_pcap(path: &Path, host: &str) -> u64 {
    let file = std::fs::File::open(path).expect("tcpdump wrote its file");
    let mut reader = pcap_file::pcap::PcapReader::new(file).expect("a pcap file");
    let mut frames = Vec::new();
    while let Some(Ok(packet)) = reader.next_packet() {
        frames.push(Frame {
            at: packet.timestamp,
            // A pcap records no direction; the flow analysis does not need it.
            direction: Direction::In,
            original_len: packet.orig_len as usize,
            data: packet.data.into_owned(),
        });
    }
    payload(&Trace::new(&Captured {
        host: host.to_string(),
        interface: "eth0".into(),
        frames,
        drops: 0,
    }))
}

fn start_tcpdump(lab: &Lab, host: &str, file: &Path) -> Proc {
    let mut cmd = Command::new("tcpdump");
    cmd.args(["-i", "eth0", "-n", "-w"]).arg(file);
    let p = lab.host(host).unwrap().spawn(cmd).unwrap();
    p.wait_for_line("listening on", Duration::from_secs(10))
        .unwrap();
    p
}

/// Stops tcpdump as a person would (Ctrl+C) and reads its counters.
fn stop_tcpdump(p: Proc) -> (u64, u64) {
    p.signal(Signal::SIGINT).unwrap();
    let out = p.wait(Duration::from_secs(30)).unwrap();
    let count = |what: &str| {
        out.stderr()
            .find(|l| l.ends_with(what))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("tcpdump printed no `{what}`:\n{}", out.transcript()))
    };
    (
        count("packets captured"),
        count("packets dropped by kernel"),
    )
}

/// Sends for `duration` from client-1 to the server, paced to `rate` bits/s if given.
fn transfer(lab: &Lab, duration: Duration, rate: Option<f64>) -> (u64, Duration) {
    let addr = format!("10.0.0.58:{PORT}");
    let listener = lab
        .host("server")
        .unwrap()
        .ns()
        .run(move |_| TcpListener::bind(("0.0.0.0", PORT)))
        .unwrap()
        .unwrap();
    let receiver = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            match s.read(&mut buf).unwrap() {
                0 => return total,
                n => total += n as u64,
            }
        }
    });
    let mut stream = lab
        .host("client-1")
        .unwrap()
        .ns()
        .run(move |_| TcpStream::connect(addr))
        .unwrap()
        .unwrap();
    let chunk = vec![0x5au8; CHUNK];
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < duration {
        stream.write_all(&chunk).unwrap();
        sent += CHUNK as u64;
        if let Some(bits) = rate {
            let due = Duration::from_secs_f64(sent as f64 * 8.0 / bits);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    drop(stream);
    let received = receiver.join().unwrap();
    let took = started.elapsed();
    assert_eq!(received, sent);
    (sent, took)
}
