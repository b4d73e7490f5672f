//! tcpdump-like lines: time, host, direction, the packet, and Wireshark-style marks.

use std::fmt::Write;
use std::time::Duration;

use super::Trace;
use super::decode::{ICMP_DEST_UNREACHABLE, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, Kind, Tcp};
use crate::capture::Direction;

pub fn line(trace: &Trace, i: usize, origin: Duration) -> String {
    let p = &trace.packets[i];
    let t = p.at.saturating_sub(origin).as_secs_f64();
    let dir = match p.direction {
        Direction::In => "In ",
        Direction::Out => "Out",
    };
    let mut s = format!("{t:>10.6} {:<15} {dir} ", trace.host);
    s.push_str(&describe(&p.kind));
    for mark in trace.marks(i) {
        s.push(' ');
        s.push_str(mark);
    }
    s
}

/// A packet as tcpdump would describe it, without time, host or marks.
pub fn describe(kind: &Kind) -> String {
    let mut s = String::new();
    match kind {
        Kind::Arp(a) if a.request => {
            let _ = write!(s, "ARP, Request who-has {} tell {}", a.target, a.sender);
        }
        Kind::Arp(a) => {
            let mac: Vec<String> = a.sender_mac.iter().map(|b| format!("{b:02x}")).collect();
            let _ = write!(s, "ARP, Reply {} is-at {}", a.sender, mac.join(":"));
        }
        Kind::Tcp(tcp) => tcp_line(&mut s, tcp),
        Kind::Udp(u) => {
            let _ = write!(
                s,
                "{}: UDP, length {}",
                endpoints(u.src, u.dst),
                u.payload_len
            );
            if u.first_fragment {
                let _ = write!(s, " (first fragment, {} bytes)", u.payload.len());
            }
        }
        Kind::Icmp(icmp) => {
            let _ = write!(s, "IP {} > {}: ICMP ", icmp.src, icmp.dst);
            let _ = match (icmp.icmp_type, icmp.code, icmp.quoted) {
                (ICMP_ECHO_REQUEST, _, _) => write!(s, "echo request"),
                (ICMP_ECHO_REPLY, _, _) => write!(s, "echo reply"),
                (ICMP_DEST_UNREACHABLE, 1, Some(q)) => write!(s, "host {} unreachable", q.dst.ip()),
                (ICMP_DEST_UNREACHABLE, 3, Some(q)) => write!(
                    s,
                    "{} {} port {} unreachable",
                    q.dst.ip(),
                    if q.protocol == 17 { "udp" } else { "tcp" },
                    q.dst.port()
                ),
                (ICMP_DEST_UNREACHABLE, 13, Some(q)) => write!(
                    s,
                    "host {} unreachable - admin prohibited filter",
                    q.dst.ip()
                ),
                (ty, code, _) => write!(s, "type {ty}, code {code}"),
            };
        }
        Kind::OtherIp(what) | Kind::Other(what) => s.push_str(what),
    }
    s
}

/// Addresses and ports as tcpdump writes them: `IP 10.0.0.208.42364 > 10.0.0.58.1234`.
fn endpoints(src: std::net::SocketAddrV4, dst: std::net::SocketAddrV4) -> String {
    format!(
        "IP {}.{} > {}.{}",
        src.ip(),
        src.port(),
        dst.ip(),
        dst.port()
    )
}

fn tcp_line(s: &mut String, t: &Tcp) {
    let mut flags = String::new();
    for (on, c) in [
        (t.flags.syn, 'S'),
        (t.flags.fin, 'F'),
        (t.flags.psh, 'P'),
        (t.flags.rst, 'R'),
    ] {
        if on {
            flags.push(c);
        }
    }
    if t.flags.ack {
        flags.push('.');
    }
    let _ = write!(
        s,
        "{}: Flags [{flags}], seq {}",
        endpoints(t.src, t.dst),
        t.seq
    );
    if t.flags.ack {
        let _ = write!(s, ", ack {}", t.ack);
    }
    let _ = write!(s, ", win {}, length {}", t.window, t.payload.len());
    if !t.payload.is_empty() && t.payload.len() <= 200 {
        let text: String = t
            .payload
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        let _ = write!(s, " \"{text}\"");
    }
}
