//! UDP on a capture: the datagrams to a server (or its answers), none at all, and the ICMP
//! errors that quote a datagram to it. A datagram IP cut into fragments counts once, by its
//! first fragment: the only one that carries the ports.

use std::net::SocketAddrV4;

use super::{contains, words};
use crate::trace::{IPPROTO_UDP, Kind, Side, Trace, Udp};

/// The datagrams between a client and `server` that `from` sent, as indexes into the trace.
fn sent_by(t: &Trace, server: SocketAddrV4, from: Side) -> Vec<usize> {
    t.packets
        .iter()
        .enumerate()
        .filter(|(_, p)| match (&p.kind, from) {
            (Kind::Udp(u), Side::Client) => u.dst == server,
            (Kind::Udp(u), Side::Server) => u.src == server,
            _ => false,
        })
        .map(|(i, _)| i)
        .collect()
}

fn udp(t: &Trace, i: usize) -> Option<&Udp> {
    match &t.packets[i].kind {
        Kind::Udp(u) => Some(u),
        _ => None,
    }
}

/// Whether packet `i` belongs to UDP between a client and `server`: a datagram either way,
/// or an ICMP error quoting one to it.
pub(super) fn concerns(t: &Trace, i: usize, server: SocketAddrV4) -> bool {
    match &t.packets[i].kind {
        Kind::Udp(u) => u.dst == server || u.src == server,
        Kind::Icmp(icmp) => icmp
            .quoted
            .is_some_and(|q| q.protocol == IPPROTO_UDP && q.dst == server),
        _ => false,
    }
}

/// ICMP errors on `t` quoting a UDP datagram to `server`, as (type, code).
pub(super) fn icmp_errors(t: &Trace, server: SocketAddrV4) -> Vec<(u8, u8)> {
    t.packets
        .iter()
        .filter_map(|p| match &p.kind {
            Kind::Icmp(icmp)
                if icmp
                    .quoted
                    .is_some_and(|q| q.protocol == IPPROTO_UDP && q.dst == server) =>
            {
                Some((icmp.icmp_type, icmp.code))
            }
            _ => None,
        })
        .collect()
}

/// Whether `t` holds a datagram between a client and `server`, either way.
pub(super) fn any(t: &Trace, server: SocketAddrV4) -> bool {
    t.packets
        .iter()
        .any(|p| matches!(&p.kind, Kind::Udp(u) if u.dst == server || u.src == server))
}

/// What UDP between clients and `server` a capture showed: `2 datagrams to it, 2 from it`,
/// or `no UDP datagram to or from 10.0.0.58:1234`.
pub(super) fn seen(t: &Trace, server: SocketAddrV4) -> String {
    let to = sent_by(t, server, Side::Client).len();
    let back = sent_by(t, server, Side::Server).len();
    if to + back == 0 {
        return format!("no UDP datagram to or from {server}");
    }
    let mut parts = vec![format!("{} to it", words::count(to, "datagram"))];
    if back > 0 {
        parts.push(format!("{} from it", words::count(back, "datagram")));
    }
    let mut icmp: Vec<((u8, u8), usize)> = Vec::new();
    for key in icmp_errors(t, server) {
        match icmp.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => icmp.push((key, 1)),
        }
    }
    for ((ty, code), n) in icmp {
        let what = words::icmp(ty, code);
        parts.push(if n == 1 {
            what
        } else {
            format!("{n} × {what}")
        });
    }
    parts.join(", ")
}

/// `count` datagrams (or at least one) from `from`, each containing `text` when given.
pub(super) fn datagrams(
    t: &Trace,
    server: SocketAddrV4,
    from: Side,
    count: Option<usize>,
    text: Option<&str>,
) -> (bool, String) {
    let all = sent_by(t, server, from);
    let with: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| {
            text.is_none_or(|x| udp(t, i).is_some_and(|u| contains(&u.payload, x.as_bytes())))
        })
        .collect();
    let way = match from {
        Side::Client => format!("to {server}"),
        Side::Server => format!("from {server}"),
    };
    let containing = text
        .map(|x| format!(" containing \"{x}\""))
        .unwrap_or_default();
    let expected = match count {
        Some(n) => format!("{}{containing} {way}", words::count(n, "datagram")),
        None => format!("datagrams{containing} {way}"),
    };
    let held = match count {
        Some(n) => with.len() == n,
        None => !with.is_empty(),
    };
    let saw = if all.is_empty() {
        format!("none ({})", seen(t, server))
    } else if text.is_some() && with.len() != all.len() {
        format!(
            "{} {way}, {} containing it",
            words::count(all.len(), "datagram"),
            with.len()
        )
    } else {
        format!("{} {way}", words::count(all.len(), "datagram"))
    };
    words::judged(held, expected, saw)
}

/// No datagram between a client and `server`, either way.
pub(super) fn none(t: &Trace, server: SocketAddrV4) -> (bool, String) {
    let n = sent_by(t, server, Side::Client).len() + sent_by(t, server, Side::Server).len();
    words::judged(
        n == 0,
        format_args!("no UDP datagram to or from {server}"),
        if n == 0 {
            "none seen".to_string()
        } else {
            seen(t, server)
        },
    )
}
