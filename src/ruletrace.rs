//! nftables trace events of a lab: in every namespace of the lab, a netfilter netlink socket
//! subscribed to the trace group, opened inside the namespace (never the machine's own) before
//! the first packet, read by one thread for the whole lab, and drained when stopped. The
//! lab's rules mark packets for tracing; each rule a marked packet meets sends an event
//! naming the table, chain and rule handle, the verdict, and the packet's headers.
//!
//! Events are not timestamped by the kernel; they are tied to captured packets by their
//! headers (see `attribution`). When the socket's queue overflows the kernel says so once
//! (ENOBUFS), not how many were lost: a trace with losses is reported as incomplete.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::thread::JoinHandle;

use netlink_packet_core::{NetlinkBuffer, NlaBuffer, NlasIterator};

use crate::firewall::Family;
use crate::netns::{Namespace, NetnsError};
use crate::spec::Placement;

/// `enum nft_trace_attributes` and `enum nft_verdict_attributes`
/// (linux/netfilter/nf_tables.h); libc has the message type but not these.
const NFTA_TRACE_TABLE: u16 = 1;
const NFTA_TRACE_CHAIN: u16 = 2;
const NFTA_TRACE_RULE_HANDLE: u16 = 3;
const NFTA_TRACE_TYPE: u16 = 4;
const NFTA_TRACE_VERDICT: u16 = 5;
const NFTA_TRACE_ID: u16 = 6;
const NFTA_TRACE_NETWORK_HEADER: u16 = 8;
const NFTA_TRACE_TRANSPORT_HEADER: u16 = 9;
/// A policy event carries the chain's policy here, not in NFTA_TRACE_VERDICT.
const NFTA_TRACE_POLICY: u16 = 16;
const NFTA_VERDICT_CODE: u16 = 1;

/// Deep enough for the events of a bulk transfer between two drains.
const RECEIVE_BUFFER: usize = 64 << 20;

/// What kind of step of a packet's way through a chain an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A rule matched (its verdict may be "continue").
    Rule,
    /// The end of a regular chain: back to the chain that jumped.
    Return,
    /// The end of a base chain: its policy decided.
    Policy,
}

/// A verdict as the kernel encodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Accept,
    Drop,
    Continue,
    Jump,
    Return,
    Other(i32),
}

/// One trace event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleEvent {
    pub place: Placement,
    pub family: Option<Family>,
    pub table: String,
    pub chain: String,
    pub handle: Option<u64>,
    pub step: Step,
    pub decision: Option<Decision>,
    /// The kernel's id of the packet, the same for every event of one passage.
    pub id: u32,
    /// The IPv4 header, and the start of the transport header.
    pub network: Vec<u8>,
    pub transport: Vec<u8>,
}

/// Events of a stopped trace.
#[derive(Debug, Default)]
pub(crate) struct RuleEvents {
    pub events: Vec<RuleEvent>,
    /// Namespaces whose queue overflowed at least once: events were lost there.
    pub lost: Vec<(Placement, u64)>,
}

/// Why tracing could not start or read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The trace socket could not be opened in a namespace.
    #[error(
        "cannot listen to nftables trace events in {place}: {source} (needs CAP_NET_ADMIN: run as root, or in a container started with --privileged)"
    )]
    Open {
        /// `the fabric` or `host NAME`.
        place: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Reading the events failed midway.
    #[error("reading nftables trace events failed: {0}")]
    Read(#[source] std::io::Error),
    /// The namespace could not run the job.
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// A running trace of a lab's namespaces.
pub(crate) struct RuleTrace {
    stop: OwnedFd,
    reader: JoinHandle<Result<RuleEvents, TraceError>>,
}

fn open() -> std::io::Result<OwnedFd> {
    let socket = crate::nfnetlink::socket(RECEIVE_BUFFER)?;
    socket.add_membership(libc::NFNLGRP_NFTRACE as u32)?;
    socket.set_non_blocking(true)?;
    socket.as_fd().try_clone_to_owned()
}

impl RuleTrace {
    /// Starts listening in each of `places`; every event from the moment this returns is
    /// kept.
    pub fn start(places: &[(Placement, String, &Namespace)]) -> Result<RuleTrace, TraceError> {
        let mut sockets = Vec::with_capacity(places.len());
        for (place, name, ns) in places {
            let fd = ns.run(|_| open())?.map_err(|source| TraceError::Open {
                place: name.clone(),
                source,
            })?;
            sockets.push((*place, fd));
        }
        let (stop_rx, stop) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| TraceError::Read(e.into()))?;
        let reader = std::thread::Builder::new()
            .name("rule-trace".into())
            .spawn(move || read_until_stopped(sockets, stop_rx))
            .map_err(TraceError::Read)?;
        Ok(RuleTrace { stop, reader })
    }

    /// Stops, after taking every event the kernel queued.
    pub fn stop(self) -> Result<RuleEvents, TraceError> {
        let _ = nix::unistd::write(&self.stop, &[1]);
        self.reader
            .join()
            .map_err(|_| TraceError::Read(std::io::Error::other("the trace thread panicked")))?
    }
}

fn read_until_stopped(
    sockets: Vec<(Placement, OwnedFd)>,
    stop: OwnedFd,
) -> Result<RuleEvents, TraceError> {
    let mut out = RuleEvents::default();
    let mut lost = vec![0u64; sockets.len()];
    let mut buf = vec![0u8; 1 << 16];
    let mut drain = |i: usize, out: &mut RuleEvents, lost: &mut [u64]| -> Result<(), TraceError> {
        let (place, fd) = &sockets[i];
        loop {
            // SAFETY: a valid descriptor and a buffer we own, for its length.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(()),
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => {
                        lost[i] += 1;
                        continue;
                    }
                    _ => return Err(TraceError::Read(e)),
                }
            }
            parse_datagram(*place, &buf[..n as usize], &mut out.events);
        }
    };
    loop {
        let mut fds: Vec<libc::pollfd> = sockets
            .iter()
            .map(|(_, fd)| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .chain(std::iter::once(libc::pollfd {
                fd: stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }))
            .collect();
        // SAFETY: valid pollfds for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(TraceError::Read(e));
        }
        for (i, fd) in fds[..sockets.len()].iter().enumerate() {
            if fd.revents != 0 {
                drain(i, &mut out, &mut lost)?;
            }
        }
        if fds[sockets.len()].revents != 0 {
            // Stopped: whatever the kernel queued before now is still ours.
            for i in 0..sockets.len() {
                drain(i, &mut out, &mut lost)?;
            }
            out.lost = sockets
                .iter()
                .zip(lost)
                .filter(|(_, n)| *n > 0)
                .map(|((place, _), n)| (*place, n))
                .collect();
            return Ok(out);
        }
    }
}

/// Every trace event of one datagram; anything else (or anything malformed) is skipped.
fn parse_datagram(place: Placement, mut data: &[u8], out: &mut Vec<RuleEvent>) {
    let trace = ((libc::NFNL_SUBSYS_NFTABLES as u16) << 8) | libc::NFT_MSG_TRACE as u16;
    while let Ok(msg) = NetlinkBuffer::new_checked(data) {
        let len = msg.length() as usize;
        if msg.message_type() == trace
            && let Some(event) = parse_event(place, msg.payload())
        {
            out.push(event);
        }
        let next = (len + 3) & !3;
        if next == 0 || next >= data.len() {
            break;
        }
        data = &data[next..];
    }
}

fn parse_event(place: Placement, payload: &[u8]) -> Option<RuleEvent> {
    // The family of the table (nfgenmsg), not of the packet: tcplab's tables are `inet` and
    // `netdev` only, so a table of another family (`ip`, `bridge`...) is never one of them,
    // even when a program in the lab gives it tcplab's table and chain names.
    let family = match i32::from(*payload.first()?) {
        libc::NFPROTO_INET => Some(Family::Inet),
        libc::NFPROTO_NETDEV => Some(Family::Netdev),
        _ => None,
    };
    let mut event = RuleEvent {
        place,
        family,
        table: String::new(),
        chain: String::new(),
        handle: None,
        step: Step::Rule,
        decision: None,
        id: 0,
        network: Vec::new(),
        transport: Vec::new(),
    };
    let be32 = |v: &[u8]| {
        v.get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    for nla in NlasIterator::new(payload.get(4..)?) {
        let nla: NlaBuffer<&[u8]> = nla.ok()?;
        let v = nla.value();
        match nla.kind() {
            NFTA_TRACE_TABLE => event.table = crate::firewall::c_string(v),
            NFTA_TRACE_CHAIN => event.chain = crate::firewall::c_string(v),
            NFTA_TRACE_RULE_HANDLE => {
                event.handle = v
                    .get(..8)
                    .map(|b| u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            }
            NFTA_TRACE_TYPE => {
                event.step = match be32(v)? as i32 {
                    libc::NFT_TRACETYPE_POLICY => Step::Policy,
                    libc::NFT_TRACETYPE_RETURN => Step::Return,
                    _ => Step::Rule,
                }
            }
            NFTA_TRACE_VERDICT => {
                for inner in NlasIterator::new(v) {
                    let inner: NlaBuffer<&[u8]> = inner.ok()?;
                    if inner.kind() == NFTA_VERDICT_CODE {
                        event.decision = be32(inner.value()).map(|c| decision(c as i32));
                    }
                }
            }
            // A base chain's policy decided: drop when a program in the lab made a chain
            // with `policy drop` (tcplab's own chains all accept).
            NFTA_TRACE_POLICY => event.decision = be32(v).map(|c| decision(c as i32)),
            NFTA_TRACE_ID => event.id = be32(v)?,
            NFTA_TRACE_NETWORK_HEADER => event.network = v.to_vec(),
            NFTA_TRACE_TRANSPORT_HEADER => event.transport = v.to_vec(),
            _ => {}
        }
    }
    Some(event)
}

fn decision(code: i32) -> Decision {
    match code {
        libc::NF_ACCEPT => Decision::Accept,
        libc::NF_DROP => Decision::Drop,
        libc::NFT_CONTINUE => Decision::Continue,
        libc::NFT_JUMP | libc::NFT_GOTO => Decision::Jump,
        libc::NFT_RETURN => Decision::Return,
        other => Decision::Other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        a.resize((a.len() + 3) & !3, 0);
        a
    }

    /// One NFT_MSG_TRACE message of table `family`, with `attrs`.
    fn message(family: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = attrs.concat();
        let len = 16 + 4 + body.len();
        let kind = ((libc::NFNL_SUBSYS_NFTABLES as u16) << 8) | libc::NFT_MSG_TRACE as u16;
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&[family, 0, 0, 0]);
        m.extend_from_slice(&body);
        m
    }

    fn common(table: &str, kind: i32) -> Vec<Vec<u8>> {
        vec![
            nla(NFTA_TRACE_TABLE, format!("{table}\0").as_bytes()),
            nla(NFTA_TRACE_CHAIN, b"input\0"),
            nla(NFTA_TRACE_TYPE, &(kind as u32).to_be_bytes()),
            nla(NFTA_TRACE_ID, &7u32.to_be_bytes()),
        ]
    }

    #[test]
    fn a_policy_event_carries_the_policy() {
        let mut attrs = common("evil", libc::NFT_TRACETYPE_POLICY);
        attrs.push(nla(
            NFTA_TRACE_POLICY,
            &(libc::NF_DROP as u32).to_be_bytes(),
        ));
        let mut out = Vec::new();
        parse_datagram(
            Placement::Host(0),
            &message(libc::NFPROTO_INET as u8, &attrs),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].step, Step::Policy);
        assert_eq!(out[0].decision, Some(Decision::Drop));
        assert_eq!((out[0].table.as_str(), out[0].id), ("evil", 7));
    }

    #[test]
    fn a_rule_of_another_family_is_never_one_of_tcplabs() {
        let mut attrs = common("tcplab", libc::NFT_TRACETYPE_RULE);
        attrs.push(nla(NFTA_TRACE_RULE_HANDLE, &3u64.to_be_bytes()));
        attrs.push(nla(
            NFTA_TRACE_VERDICT,
            &nla(NFTA_VERDICT_CODE, &(libc::NF_DROP as u32).to_be_bytes()),
        ));
        let mut data = message(libc::NFPROTO_IPV4 as u8, &attrs);
        data.extend(message(libc::NFPROTO_INET as u8, &attrs));
        let mut out = Vec::new();
        parse_datagram(Placement::Fabric, &data, &mut out);
        let families: Vec<Option<Family>> = out.iter().map(|e| e.family).collect();
        assert_eq!(families, [None, Some(Family::Inet)]);
        assert!(out.iter().all(|e| e.decision == Some(Decision::Drop)));
        assert!(out.iter().all(|e| e.handle == Some(3)));
    }

    #[test]
    fn malformed_datagrams_give_no_event_and_no_panic() {
        let good = message(libc::NFPROTO_INET as u8, &common("t", 3));
        let mut out = Vec::new();
        for cut in 0..good.len() {
            parse_datagram(Placement::Fabric, &good[..cut], &mut out);
        }
        // A length field pointing past the end, a short type and a short id.
        let mut long = good.clone();
        long[..4].copy_from_slice(&(good.len() as u32 + 100).to_ne_bytes());
        parse_datagram(Placement::Fabric, &long, &mut out);
        let short = message(
            libc::NFPROTO_INET as u8,
            &[nla(NFTA_TRACE_TYPE, &[1]), nla(NFTA_TRACE_ID, &[1, 2])],
        );
        parse_datagram(Placement::Fabric, &short, &mut out);
        assert!(out.is_empty(), "{out:?}");
        parse_datagram(Placement::Fabric, &good, &mut out);
        assert_eq!(out.len(), 1);
    }
}
