//! Expectations about what an impaired link does to a connection: how long its handshake
//! took (`handshake-rtt`) and whether data was sent again (`retransmissions`).

use std::net::SocketAddrV4;
use std::time::Duration;

use super::{Tolerance, words};
use crate::trace::{Flow, Kind, Side, Trace};
use crate::units::fmt_secs;

fn secs(d: Duration) -> String {
    format!("{} s", fmt_secs(d.as_secs_f64()))
}

/// The handshake of the first answered connection to `server`: the time from its first SYN
/// to its first SYN-ACK, within `tolerance` of `rtt`, and with `syns` SYNs before the SYN-ACK
/// when given (2: the first was lost and its retransmission answered).
pub(super) fn handshake_rtt(
    t: &Trace,
    server: SocketAddrV4,
    rtt: Duration,
    tolerance: Tolerance,
    syns: Option<usize>,
) -> (bool, String) {
    let mut expected = format!(
        "a SYN-ACK {} (±{}) after the first SYN",
        secs(rtt),
        secs(tolerance.margin(rtt))
    );
    if let Some(n) = syns {
        expected.push_str(&format!(", with {} before it", words::count(n, "SYN")));
    }
    let answered = t
        .flows_to(server)
        .find(|f| !f.syns.is_empty() && !f.syn_acks.is_empty());
    let Some(flow) = answered else {
        return words::judged(false, expected, words::flows_seen(t, server));
    };
    let first = t.packets[flow.syns[0]].at;
    let syn_ack = t.packets[flow.syn_acks[0]].at;
    let before: Vec<usize> = flow
        .syns
        .iter()
        .copied()
        .filter(|&i| i < flow.syn_acks[0])
        .collect();
    let last = before.last().map_or(first, |&i| t.packets[i].at);
    let took = syn_ack.saturating_sub(first);
    let saw = format!(
        "the SYN-ACK {} after the first SYN ({} before it; {} after the last)",
        secs(took),
        words::count(before.len(), "SYN"),
        secs(syn_ack.saturating_sub(last))
    );
    let held = tolerance.allows(rtt, took) && syns.is_none_or(|n| n == before.len());
    words::judged(held, expected, saw)
}

/// `from` sent data again in a connection to `server`: a segment whose first byte lies below
/// the highest sequence number it had already sent. Counted in sequence space, not by
/// repeated (sequence, length) pairs: a segment resent after a loss is often cut differently
/// from the original (GSO frames on a veth, then MSS-sized retransmissions).
pub(super) fn retransmissions(t: &Trace, server: SocketAddrV4, from: Side) -> (bool, String) {
    let mut resent = 0usize;
    let mut segments = 0usize;
    let mut bytes = 0u64;
    for flow in t.flows_to(server) {
        let (r, s, b) = resent_in(t, flow, from);
        resent += r;
        segments += s;
        bytes += b;
    }
    let who = words::side(from);
    words::judged(
        resent > 0,
        format_args!("data retransmitted by {who} to {server}"),
        format!(
            "{} resent by {who} among {} carrying {bytes} new bytes",
            words::count(resent, "segment"),
            words::count(segments, "data segment")
        ),
    )
}

/// (segments resent, data segments, new bytes) of `from` in `flow`.
fn resent_in(t: &Trace, flow: &Flow, from: Side) -> (usize, usize, u64) {
    let sender = match from {
        Side::Client => flow.key.client,
        Side::Server => flow.key.server,
    };
    // Sequence numbers relative to the first one seen, so that a wrap of the 32-bit space
    // within a transfer of under 2 GiB does not matter.
    let mut base: Option<u32> = None;
    let mut high: u64 = 0;
    let (mut resent, mut segments) = (0, 0);
    for &i in &flow.packets {
        let Kind::Tcp(tcp) = &t.packets[i].kind else {
            continue;
        };
        if tcp.src != sender || tcp.flags.rst {
            continue;
        }
        let b = *base.get_or_insert(tcp.seq);
        let start = u64::from(tcp.seq.wrapping_sub(b));
        let len = tcp.payload.len() as u64 + u64::from(tcp.flags.syn) + u64::from(tcp.flags.fin);
        if tcp.payload.is_empty() {
            high = high.max(start + len);
            continue;
        }
        segments += 1;
        if start < high {
            resent += 1;
        }
        high = high.max(start + len);
    }
    (resent, segments, high)
}
