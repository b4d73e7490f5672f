//! The VPC's own parts of a lab: a bridge per subnet beyond the first, and the VPC router, a
//! namespace with one interface on each subnet's bridge (at the subnet's first address, as
//! in AWS) that forwards between them. Each subnet's route table is a routing table of the
//! router, chosen by the interface a packet came in on; what no route covers is dropped
//! silently, as AWS's router never answers for traffic it does not carry.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

use futures::future::try_join_all;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute};
use rtnetlink::packet_route::route::RouteType;
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::LabError;
use super::build::{netlink, netlink_error};
use crate::netns::WorkerState;
use crate::spec::{BRIDGE, ResolvedVpc, RouteTarget};

/// Bridges of subnets after the first: interface indexes in the fabric.
const BRIDGE_INDEX_BASE: u32 = 100_000;
/// The router's ports on the bridges, in the fabric.
const ROUTER_PORT_INDEX_BASE: u32 = 200_000;
/// The router's interfaces, in its own namespace.
pub(super) const ROUTER_IF_INDEX_BASE: u32 = 10;
/// The routing table of subnet `i` is `TABLE_BASE + i`.
const TABLE_BASE: u32 = 1000;

/// The bridge of subnet `i`: `br0` for the first (as without a VPC), `br_N` for the others
/// (host names cannot hold `_`, so no host's port takes the name).
pub fn bridge_name(i: usize) -> String {
    if i == 0 {
        BRIDGE.to_string()
    } else {
        format!("br_{i}")
    }
}

/// The interface index of subnet `i`'s bridge in the fabric.
pub(super) fn bridge_index(i: usize, first: u32) -> u32 {
    if i == 0 {
        first
    } else {
        BRIDGE_INDEX_BASE + i as u32
    }
}

fn router_port_name(i: usize) -> String {
    format!("rt_{i}")
}

pub(super) fn router_port_index(i: usize) -> u32 {
    ROUTER_PORT_INDEX_BASE + i as u32
}

/// The bridges of subnets 1.. in the fabric, configured as the first one.
pub(super) fn create_bridges(state: &mut WorkerState, subnets: usize) -> Result<(), LabError> {
    let handle = netlink(state, "the fabric")?;
    state.runtime.block_on(async {
        try_join_all((1..subnets).map(|i| {
            let name = bridge_name(i);
            let message = LinkBridge::new(&name)
                .index(bridge_index(i, 0))
                .nf_call_iptables(true)
                .mcast_snooping(false)
                .multicast(false)
                .up()
                .build();
            let handle = handle.clone();
            async move {
                handle
                    .link()
                    .add(message)
                    .execute()
                    .await
                    .map_err(netlink_error(format!("create the bridge {name}")))
            }
        }))
        .await?;
        Ok(())
    })
}

/// The router's link to each subnet's bridge; its end in the router's namespace is named
/// after the subnet.
pub(super) fn add_router_ports(
    state: &mut WorkerState,
    vpc: &ResolvedVpc,
    router: RawFd,
    first_bridge: u32,
) -> Result<(), LabError> {
    let links = vpc
        .subnets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let peer = LinkMessageBuilder::<LinkUnspec>::new()
                .name(s.name.clone())
                .index(ROUTER_IF_INDEX_BASE + i as u32)
                .setns_by_fd(router)
                .build();
            let message = LinkVeth::new(&router_port_name(i), &s.name)
                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                .index(router_port_index(i))
                .controller(bridge_index(i, first_bridge))
                .append_extra_attribute(LinkAttribute::NumTxQueues(1))
                .append_extra_attribute(LinkAttribute::NumRxQueues(1))
                .up()
                .build();
            (message, format!("link the VPC router to subnet {}", s.name))
        })
        .collect();
    super::build::add_links(state, links)
}

/// The router's interfaces up with their addresses, and a routing table per subnet.
pub(super) fn configure_router(state: &mut WorkerState, vpc: &ResolvedVpc) -> Result<(), LabError> {
    super::build::write_sysctls(&[
        ("/proc/sys/net/ipv4/ip_forward", "1"),
        // The router forwards between subnets on their own links: no redirects, and replies
        // may come back on another interface than the request left by.
        ("/proc/sys/net/ipv4/conf/all/send_redirects", "0"),
        ("/proc/sys/net/ipv4/conf/default/send_redirects", "0"),
        ("/proc/sys/net/ipv4/conf/all/rp_filter", "0"),
        ("/proc/sys/net/ipv4/conf/default/rp_filter", "0"),
    ])?;
    let handle = netlink(state, "the VPC router")?;
    state.runtime.block_on(async {
        handle
            .link()
            .set(LinkUnspec::new_with_index(1).up().build())
            .execute()
            .await
            .map_err(netlink_error("bring up lo on the VPC router".into()))?;
        for (i, s) in vpc.subnets.iter().enumerate() {
            let index = ROUTER_IF_INDEX_BASE + i as u32;
            handle
                .link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await
                .map_err(netlink_error(format!(
                    "bring up the router's link to {}",
                    s.name
                )))?;
            handle
                .address()
                .add(index, IpAddr::V4(s.router), s.cidr.prefix_len())
                .execute()
                .await
                .map_err(netlink_error(format!(
                    "add {}/{} to the router's link to {}",
                    s.router,
                    s.cidr.prefix_len(),
                    s.name
                )))?;
        }
        for (i, s) in vpc.subnets.iter().enumerate() {
            let table = TABLE_BASE + i as u32;
            let what = |w: String| format!("add to the route table of subnet {}: {w}", s.name);
            // The implicit `local` route: every subnet of the VPC.
            for (j, other) in vpc.subnets.iter().enumerate() {
                // A route of the table to a subnet's CIDR (through an appliance) replaces
                // `local` for that subnet.
                if s.routes.iter().any(|r| r.destination == other.cidr) {
                    continue;
                }
                let route = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(other.cidr.network(), other.cidr.prefix_len())
                    .output_interface(ROUTER_IF_INDEX_BASE + j as u32)
                    .scope(rtnetlink::packet_route::route::RouteScope::Link)
                    .table_id(table)
                    .build();
                handle
                    .route()
                    .add(route)
                    .execute()
                    .await
                    .map_err(netlink_error(what(format!(
                        "local route to {}",
                        other.cidr
                    ))))?;
            }
            for r in &s.routes {
                let base = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(r.destination.network(), r.destination.prefix_len())
                    .table_id(table);
                let route = match (&r.target, r.via) {
                    (RouteTarget::Instance(_), Some((via, subnet))) => base
                        .gateway(via)
                        .output_interface(ROUTER_IF_INDEX_BASE + subnet as u32)
                        .build(),
                    (RouteTarget::Unreachable, _) => base.kind(RouteType::Unreachable).build(),
                    (RouteTarget::Prohibit, _) => base.kind(RouteType::Prohibit).build(),
                    _ => base.kind(RouteType::BlackHole).build(),
                };
                handle
                    .route()
                    .add(route)
                    .execute()
                    .await
                    .map_err(netlink_error(what(format!(
                        "route to {} ({})",
                        r.destination, r.target
                    ))))?;
            }
            // What no route covers is dropped, silently (a table with a default route of
            // its own covers everything already).
            if !s.routes.iter().any(|r| r.destination.prefix_len() == 0) {
                let rest = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(Ipv4Addr::UNSPECIFIED, 0)
                    .table_id(table)
                    .kind(RouteType::BlackHole)
                    .build();
                handle
                    .route()
                    .add(rest)
                    .execute()
                    .await
                    .map_err(netlink_error(what("the final blackhole".into())))?;
            }
            handle
                .rule()
                .add()
                .v4()
                .input_interface(s.name.clone())
                .table_id(table)
                // Unset, the kernel's rule fails every lookup (EINVAL): packets vanish.
                .action(rtnetlink::packet_route::rule::RuleAction::ToTable)
                .priority(100 + i as u32)
                .execute()
                .await
                .map_err(netlink_error(what("the rule that selects it".into())))?;
        }
        Ok(())
    })
}

/// A host's default route: the VPC router in its subnet.
pub(super) fn default_route(
    state: &mut WorkerState,
    host: &str,
    gateway: Ipv4Addr,
) -> Result<(), LabError> {
    let handle = netlink(state, host)?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(Ipv4Addr::UNSPECIFIED, 0)
        .gateway(gateway)
        .build();
    state
        .runtime
        .block_on(handle.route().add(route).execute())
        .map_err(netlink_error(format!(
            "add the default route via {gateway} on host {host}"
        )))
}
