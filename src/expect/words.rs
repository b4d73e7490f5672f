//! What failures say, in words: counts, sides, ICMP errors, how a program ended, what a
//! connection showed. A failure reads "expected X, saw Y", never a Rust value's debug form.

use std::fmt::Display;
use std::net::SocketAddrV4;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use crate::trace::{Kind, Side, Trace};

/// What a check says: on success what was seen, on failure "expected X, saw Y".
pub(super) fn judged(held: bool, expected: impl Display, saw: impl Display) -> (bool, String) {
    if held {
        (true, saw.to_string())
    } else {
        (false, format!("expected {expected}, saw {saw}"))
    }
}

/// `no SYN`, `1 SYN`, `4 SYNs`.
pub(super) fn count(n: usize, what: &str) -> String {
    count_as(n, what, &format!("{what}s"))
}

/// `no reply`, `1 reply`, `2 replies`: for words whose plural is not an added `s`.
pub(super) fn count_as(n: usize, one: &str, many: &str) -> String {
    match n {
        0 => format!("no {one}"),
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

/// `the client` or `the server`.
pub(super) fn side(s: Side) -> &'static str {
    match s {
        Side::Client => "the client",
        Side::Server => "the server",
    }
}

/// An ICMP message by name: `ICMP destination unreachable (port unreachable)`; a type or code
/// without a name shows its numbers.
pub fn icmp(icmp_type: u8, code: u8) -> String {
    let kind = match icmp_type {
        0 => "echo reply",
        3 => "destination unreachable",
        4 => "source quench",
        5 => "redirect",
        8 => "echo request",
        11 => "time exceeded",
        12 => "parameter problem",
        _ => return format!("ICMP type {icmp_type} code {code}"),
    };
    let reason = match (icmp_type, code) {
        (3, 0) => "network unreachable",
        (3, 1) => "host unreachable",
        (3, 2) => "protocol unreachable",
        (3, 3) => "port unreachable",
        (3, 4) => "fragmentation needed",
        (3, 5) => "source route failed",
        (3, 6) => "destination network unknown",
        (3, 7) => "destination host unknown",
        (3, 8) => "source host isolated",
        (3, 9) => "network administratively prohibited",
        (3, 10) => "host administratively prohibited",
        (3, 11) => "network unreachable for its type of service",
        (3, 12) => "host unreachable for its type of service",
        (3, 13) => "communication administratively prohibited",
        (3, 14) => "host precedence violation",
        (3, 15) => "precedence cutoff in effect",
        (11, 0) => "time to live exceeded in transit",
        (11, 1) => "fragment reassembly time exceeded",
        (0 | 8, 0) => return format!("ICMP {kind}"),
        _ => return format!("ICMP {kind} (code {code})"),
    };
    format!("ICMP {kind} ({reason})")
}

/// An ICMP message by name and numbers, as an expectation names it: `ICMP destination
/// unreachable (port unreachable; type 3, code 3)`.
pub fn icmp_numbered(icmp_type: u8, code: u8) -> String {
    let name = icmp(icmp_type, code);
    match name.strip_suffix(')') {
        Some(named) => format!("{named}; type {icmp_type}, code {code})"),
        None if name.starts_with("ICMP type") => name,
        None => format!("{name} (type {icmp_type}, code {code})"),
    }
}

/// How a program ended: `exit code 28`, `killed by signal 9 (SIGKILL)`.
pub(super) fn ended(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => match nix::sys::signal::Signal::try_from(signal) {
            Ok(name) => format!("killed by signal {signal} ({})", name.as_str()),
            Err(_) => format!("killed by signal {signal}"),
        },
        (None, None) => "an end without exit code or signal".to_string(),
    }
}

/// What the connections to `server` on a capture showed, by packet role: `4 SYNs, 1 RST from
/// the server`, or `no packet of a connection to 10.0.0.58:1235`.
pub(super) fn flows_seen(t: &Trace, server: SocketAddrV4) -> String {
    let mut syns = 0;
    let mut syn_acks = 0;
    let mut resets = [0usize; 2];
    let mut icmp_errors: Vec<((u8, u8), usize)> = Vec::new();
    let mut packets = 0;
    let mut data = 0;
    for f in t.flows_to(server) {
        packets += f.packets.len();
        data += f
            .packets
            .iter()
            .filter(|&&i| {
                matches!(&t.packets[i].kind, Kind::Tcp(tcp)
                    if !tcp.payload.is_empty() && !tcp.flags.syn && !tcp.flags.rst)
            })
            .count();
        syns += f.syns.len();
        syn_acks += f.syn_acks.len();
        for (_, s) in &f.resets {
            resets[usize::from(*s == Side::Server)] += 1;
        }
        for &i in &f.icmp_errors {
            if let Kind::Icmp(m) = &t.packets[i].kind {
                let key = (m.icmp_type, m.code);
                match icmp_errors.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, n)) => *n += 1,
                    None => icmp_errors.push((key, 1)),
                }
            }
        }
    }
    if packets == 0 {
        return format!("no packet of a connection to {server}");
    }
    let mut parts = Vec::new();
    if syns > 0 {
        parts.push(count(syns, "SYN"));
    }
    if syn_acks > 0 {
        parts.push(count(syn_acks, "SYN-ACK"));
    }
    for (n, s) in [(resets[0], Side::Client), (resets[1], Side::Server)] {
        if n > 0 {
            parts.push(format!("{} from {}", count(n, "RST"), side(s)));
        }
    }
    for ((ty, code), n) in &icmp_errors {
        let what = icmp(*ty, *code);
        parts.push(if *n == 1 {
            what
        } else {
            format!("{n} × {what}")
        });
    }
    if data > 0 {
        parts.push(format!("{} with data", count(data, "packet")));
    }
    // ICMP errors quote the flow but are not among its packets.
    let other = packets.saturating_sub(syns + syn_acks + resets[0] + resets[1] + data);
    if other > 0 {
        parts.push(count_as(other, "ACK or FIN", "ACKs or FINs"));
    }
    if syn_acks == 0 && resets[1] == 0 && icmp_errors.is_empty() && syns > 0 {
        parts.push("no answer".to_string());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_messages_have_names() {
        assert_eq!(
            icmp(3, 3),
            "ICMP destination unreachable (port unreachable)"
        );
        assert_eq!(
            icmp(3, 13),
            "ICMP destination unreachable (communication administratively prohibited)"
        );
        assert_eq!(icmp(3, 99), "ICMP destination unreachable (code 99)");
        assert_eq!(icmp(8, 0), "ICMP echo request");
        assert_eq!(icmp(42, 1), "ICMP type 42 code 1");
        assert_eq!(
            icmp_numbered(3, 3),
            "ICMP destination unreachable (port unreachable; type 3, code 3)"
        );
        assert_eq!(icmp_numbered(8, 0), "ICMP echo request (type 8, code 0)");
        assert_eq!(icmp_numbered(42, 1), "ICMP type 42 code 1");
    }

    #[test]
    fn ends_and_counts_in_words() {
        assert_eq!(ended(ExitStatus::from_raw(28 << 8)), "exit code 28");
        assert_eq!(
            ended(ExitStatus::from_raw(9)),
            "killed by signal 9 (SIGKILL)"
        );
        assert_eq!(count(0, "SYN"), "no SYN");
        assert_eq!(count(1, "SYN"), "1 SYN");
        assert_eq!(count(4, "SYN"), "4 SYNs");
        assert_eq!(count_as(2, "reply", "replies"), "2 replies");
    }

    #[test]
    fn judged_says_expected_and_saw_only_on_failure() {
        assert_eq!(judged(true, "a", "b"), (true, "b".to_string()));
        assert_eq!(
            judged(false, "a", "b"),
            (false, "expected a, saw b".to_string())
        );
    }
}
