//! Capture fidelity: a bulk TCP transfer across the lab, captured on both hosts by tcplab and,
//! in the same run, by `tcpdump -w`; throughput with and without capture, frames captured and
//! dropped by each, and whether the captured payload adds up to what was sent.
//!
//! Run as root: `cargo xtask bench-capture` (or `cargo bench --bench capture`). Optional:
//! `--seconds N` (default 3).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tcplab::capture::{Captured, Direction, Frame};
use tcplab::lab::{Lab, check_privileges};
use tcplab::proc::Proc;
use tcplab::trace::{Kind, Trace};

const PORT: u16 = 1234;
const CHUNK: usize = 128 * 1024;

fn main() {
    if let Err(e) = check_privileges() {
        eprintln!("bench: {e}");
        std::process::exit(2);
    }
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let duration = Duration::from_secs_f64(seconds);
    let lab = Lab::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/topologies/article.toml"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().expect("a temporary folder");

    println!(
        "capture fidelity: client-1 -> server:{PORT}, {seconds} s per run, snap length 262144"
    );
    let (bytes, took) = transfer(&lab, duration, None);
    println!("no capture:        {:>8.2} Gbit/s", gbits(bytes, took));
    for (label, rate) in [("full speed", None), ("1 Gbit/s", Some(1e9))] {
        let tcpdump: Vec<Proc> = ["client-1", "server"]
            .iter()
            .map(|h| {
                start_tcpdump(
                    &lab,
                    h,
                    &dir.path()
                        .join(format!("tcpdump-{h}-{}.pcap", rate.is_some())),
                )
            })
            .collect();
        let recording = lab.start_captures().unwrap();
        let (bytes, took) = transfer(&lab, duration, rate);
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
    }
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

/// Payload bytes the client sent in the transfer's flow, each counted once (retransmissions
/// are the same bytes again).
fn payload(t: &Trace) -> u64 {
    t.flows()
        .iter()
        .filter(|f| f.key.server.port() == PORT)
        .flat_map(|f| f.packets.iter().filter(|i| !f.retransmissions.contains(i)))
        .filter_map(|&i| match &t.packets[i].kind {
            Kind::Tcp(tcp) if tcp.dst.port() == PORT => Some(tcp.payload.len() as u64),
            _ => None,
        })
        .sum()
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
