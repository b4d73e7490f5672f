//! Readiness: a link is handed over only when the kernel says it can carry a frame.
//!
//! What lost the first frames under load: a bridge-side veth is created up while its peer
//! (the host's `eth0`) is still down, so it has no carrier, and the kernel leaves the rest of
//! its bring-up to the link-watch worker, which runs later on a workqueue, under RTNL, and
//! on a busy machine milliseconds to a second later. Until that worker has handled the
//! carrier-on event, the port's transmit queue still holds the `noop` qdisc, which discards
//! every frame, and its operational state is still `unknown`. Seen on this kernel (6.18)
//! right after a build that returned without waiting: ports in `forwarding` with
//! operational state `unknown` (the bridge enables a port whose state is `unknown`; the
//! frames then die in the `noop` queue), and ports `disabled` with operational state
//! `down` (the worker had handled the carrier-off of the creation, not yet the carrier-on).
//! The worker sets the operational state, activates the queue, then tells the bridge
//! (`NETDEV_CHANGE`), in that order and under RTNL.
//!
//! So a namespace waits until each of its links reports up, carrier, operational state `up`
//! and (bridge ports) `forwarding`: it subscribes to link notifications, reads the current
//! state, and then sleeps until the kernel says something changed. Last, one request that
//! takes RTNL: the worker that wrote the operational state held it until the queue was
//! active, so when the request returns the queue is active too.

use std::collections::BTreeMap;

use rtnetlink::LinkUnspec;
use rtnetlink::sys::AsyncSocket;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{
    BridgePortState, InfoBridgePort, InfoPortData, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
    State,
};

use super::LabError;
use crate::netns::WorkerState;

/// How long a lab waits for its links before it gives up. The kernel takes microseconds on an
/// idle machine; the bound is for a machine so loaded that something else is wrong.
pub(crate) const READY_WITHIN: Duration = Duration::from_secs(30);

/// The multicast group of link notifications (`RTNLGRP_LINK`).
const RTNLGRP_LINK: u32 = 1;

/// Link notifications of a namespace arrive in bursts (a 500-host fabric sends thousands);
/// the buffer holds them until read. An overrun is survived anyway, by reading the state anew.
const MONITOR_BUFFER: usize = 8 << 20;

/// A link to wait for, by index in the namespace of the worker that waits.
#[derive(Debug, Clone)]
pub(crate) struct Watched {
    pub index: u32,
    /// How errors name it, e.g. `port client-1 on the bridge` or `eth0 of host server`.
    pub name: String,
    pub bridge_port: bool,
}

/// What a link lacks to carry frames, from one netlink message about it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Missing(Vec<&'static str>);

fn missing(link: &LinkMessage, bridge_port: bool) -> Missing {
    let mut lacks = Vec::new();
    let flags = link.header.flags;
    if !flags.contains(LinkFlags::Up) {
        lacks.push("administratively up");
    }
    if !flags.contains(LinkFlags::LowerUp) {
        lacks.push("carrier");
    }
    let oper = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::OperState(s) => Some(*s),
        _ => None,
    });
    if oper != Some(State::Up) {
        lacks.push("operational state up");
    }
    if bridge_port && port_state(link) != Some(BridgePortState::Forwarding) {
        lacks.push("bridge port forwarding");
    }
    Missing(lacks)
}

fn port_state(link: &LinkMessage) -> Option<BridgePortState> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::PortData(InfoPortData::BridgePort(attrs)) => {
                attrs.iter().find_map(|p| match p {
                    InfoBridgePort::State(s) => Some(*s),
                    _ => None,
                })
            }
            _ => None,
        }),
        _ => None,
    })
}

/// Waits on this worker's namespace until every link of `links` can carry a frame, for at
/// most `within`. `whose` names the namespace in errors.
pub(crate) fn wait_links(
    state: &mut WorkerState,
    whose: &str,
    links: Vec<Watched>,
    within: Duration,
) -> Result<(), LabError> {
    let io = |what: &str| {
        let what = format!("{what} to watch the links of {whose}");
        move |source| LabError::Io { what, source }
    };
    let _entered = state.runtime.enter();
    let (mut connection, handle, mut events) =
        rtnetlink::new_connection().map_err(io("open a netlink socket"))?;
    let socket = connection.socket_mut().socket_mut();
    socket
        .add_membership(RTNLGRP_LINK)
        .map_err(io("subscribe to link notifications"))?;
    nix::sys::socket::setsockopt(
        socket,
        nix::sys::socket::sockopt::RcvBufForce,
        &MONITOR_BUFFER,
    )
    .map_err(|e| io("size the netlink socket")(e.into()))?;
    let task = state.runtime.spawn(connection);
    let barrier_index = links.first().map(|w| w.index);
    let mut pending: BTreeMap<u32, (Watched, Missing)> = links
        .into_iter()
        .map(|w| (w.index, (w, Missing(vec!["reported by the kernel"]))))
        .collect();
    let netlink = |source: rtnetlink::Error| LabError::Netlink {
        what: format!("read the links of {whose}"),
        source: Box::new(source),
    };
    let result = state.runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + within;
        // Subscribed first, read second: a change after the read is a notification.
        let mut resync = true;
        loop {
            if resync {
                let mut dump = handle.link().get().execute();
                while let Some(link) = dump.try_next().await.map_err(netlink)? {
                    update(&mut pending, &link);
                }
                resync = false;
            }
            if pending.is_empty() {
                return rtnl_barrier(&handle, barrier_index).await.map_err(netlink);
            }
            let Ok(event) = tokio::time::timeout_at(deadline, events.next()).await else {
                return Err(not_ready(whose, within, &pending));
            };
            match event.map(|(message, _)| message.payload) {
                Some(NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link))) => {
                    // Bridge notifications (AF_BRIDGE) carry the port state elsewhere;
                    // asking for the link gives the one view `missing` reads.
                    if pending.contains_key(&link.header.index) {
                        let mut one = handle.link().get().match_index(link.header.index).execute();
                        while let Some(link) = one.try_next().await.map_err(netlink)? {
                            update(&mut pending, &link);
                        }
                    }
                }
                // Notifications were lost: the state is read anew.
                Some(NetlinkPayload::Overrun(_)) => resync = true,
                Some(_) => {}
                None => {
                    return Err(LabError::Io {
                        what: format!("watch the links of {whose}"),
                        source: std::io::Error::other("the netlink socket closed"),
                    });
                }
            }
        }
    });
    task.abort();
    result
}

/// A request that takes RTNL and changes nothing: setting a link that is up to up.
async fn rtnl_barrier(
    handle: &rtnetlink::Handle,
    index: Option<u32>,
) -> Result<(), rtnetlink::Error> {
    match index {
        Some(index) => {
            handle
                .link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await
        }
        None => Ok(()),
    }
}

fn update(pending: &mut BTreeMap<u32, (Watched, Missing)>, link: &LinkMessage) {
    let index = link.header.index;
    if let Some((watched, _)) = pending.get(&index) {
        let lacks = missing(link, watched.bridge_port);
        if lacks.0.is_empty() {
            pending.remove(&index);
        } else if let Some(entry) = pending.get_mut(&index) {
            entry.1 = lacks;
        }
    }
}

fn not_ready(
    whose: &str,
    within: Duration,
    pending: &BTreeMap<u32, (Watched, Missing)>,
) -> LabError {
    let links = pending
        .values()
        .map(|(w, m)| format!("{} (not {})", w.name, m.0.join(", not ")))
        .collect::<Vec<_>>()
        .join("; ");
    LabError::NotReady {
        whose: whose.to_string(),
        within,
        links,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::link::LinkHeader;

    fn link(flags: LinkFlags, oper: State, port: Option<BridgePortState>) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header = LinkHeader {
            index: 10,
            flags,
            ..LinkHeader::default()
        };
        m.attributes.push(LinkAttribute::OperState(oper));
        if let Some(s) = port {
            m.attributes
                .push(LinkAttribute::LinkInfo(vec![LinkInfo::PortData(
                    InfoPortData::BridgePort(vec![InfoBridgePort::State(s)]),
                )]));
        }
        m
    }

    #[test]
    fn a_port_is_ready_only_when_forwarding_with_carrier() {
        let all = LinkFlags::Up | LinkFlags::LowerUp | LinkFlags::Running;
        let ready = link(all, State::Up, Some(BridgePortState::Forwarding));
        assert_eq!(missing(&ready, true), Missing(vec![]));
        let disabled = link(all, State::Up, Some(BridgePortState::Disabled));
        assert_eq!(
            missing(&disabled, true),
            Missing(vec!["bridge port forwarding"])
        );
        let no_carrier = link(
            LinkFlags::Up,
            State::LowerLayerDown,
            Some(BridgePortState::Disabled),
        );
        assert_eq!(
            missing(&no_carrier, true).0,
            ["carrier", "operational state up", "bridge port forwarding"]
        );
    }

    #[test]
    fn a_host_link_needs_no_port_state() {
        let all = LinkFlags::Up | LinkFlags::LowerUp;
        assert!(missing(&link(all, State::Up, None), false).0.is_empty());
        assert_eq!(
            missing(&link(all, State::Unknown, None), false).0,
            ["operational state up"]
        );
    }
}
