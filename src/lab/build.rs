//! Building the fabric and the hosts over netlink. Work in different namespaces overlaps: each
//! phase is submitted to every namespace's thread before any result is awaited.

use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use futures::future::try_join_all;
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth};

use super::{Host, LabError, preflight};
use crate::firewall;
use crate::netns::{Namespace, WorkerState};
use crate::spec::Resolved;

/// Interface indexes are per namespace, so a fresh namespace's can be chosen up front instead
/// of looked up: `lo` is 1.
const LO_INDEX: u32 = 1;
const BRIDGE_INDEX: u32 = 2;
const ETH0_INDEX: u32 = 2;
const FIRST_PORT_INDEX: u32 = 10;
pub const BRIDGE: &str = "br0";

fn netlink_error(what: String) -> impl FnOnce(rtnetlink::Error) -> LabError {
    move |source| LabError::Netlink { what, source }
}

fn write_sysctls(pairs: &[(&str, &str)]) -> Result<(), LabError> {
    for (path, value) in pairs {
        std::fs::write(path, value).map_err(|source| LabError::Sysctl {
            path: path.to_string(),
            source,
        })?;
    }
    Ok(())
}

/// The article's VPC is IPv4 only; without this every capture fills with router
/// solicitations and MLD reports. `all` also sets `default`, so later interfaces inherit it.
const IPV6_OFF: (&str, &str) = ("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");

pub(super) fn build(resolved: &Resolved) -> Result<(Namespace, Vec<Host>), LabError> {
    preflight::check_privileges()?;
    let fabric = Namespace::new()?;
    let guarded = resolved.hosts.iter().any(|h| h.guarded());
    let fabric_ready = fabric.submit(move |_| {
        write_sysctls(&[IPV6_OFF])?;
        if guarded {
            preflight::check_br_netfilter()?;
            write_sysctls(&[("/proc/sys/net/bridge/bridge-nf-call-iptables", "1")])?;
        }
        Ok::<_, LabError>(())
    });

    let namespaces = resolved
        .hosts
        .iter()
        .map(|_| Namespace::new())
        .collect::<Result<Vec<_>, _>>()?;
    let pending: Vec<_> = namespaces
        .iter()
        .map(|ns| ns.submit(|_| write_sysctls(&[IPV6_OFF])))
        .collect();
    fabric_ready.wait()??;
    for p in pending {
        p.wait()??;
    }

    let ports: Vec<(String, RawFd)> = resolved
        .hosts
        .iter()
        .zip(&namespaces)
        .map(|(h, ns)| (h.name.clone(), ns.as_fd().as_raw_fd()))
        .collect();
    // The fds stay open: `namespaces` lives until the job has returned.
    fabric.run(move |state| wire_fabric(state, &ports))??;

    let pending: Vec<_> = resolved
        .hosts
        .iter()
        .enumerate()
        .zip(&namespaces)
        .map(|((i, h), ns)| {
            let address = h.address;
            let prefix = resolved.subnet.prefix_len();
            let table = firewall::host_table(resolved, i);
            let name = h.name.clone();
            ns.submit(move |state| {
                configure_host(state, &name, address.into(), prefix)?;
                if let Some(table) = table {
                    firewall::load(&[table], &format!("firewall of host {name}"))?;
                }
                Ok::<_, LabError>(())
            })
        })
        .collect();
    let tables = firewall::fabric_tables(resolved, |h| h.name.clone());
    let fabric_rules = fabric.submit(move |_| {
        firewall::load(&tables, "security groups and firewalls of the fabric")?;
        if guarded {
            preflight::check_conntrack()?;
        }
        Ok::<_, LabError>(())
    });
    for p in pending {
        p.wait()??;
    }
    fabric_rules.wait()??;

    let hosts = resolved
        .hosts
        .iter()
        .zip(namespaces)
        .map(|(h, ns)| Host {
            name: h.name.clone(),
            address: h.address,
            ns,
        })
        .collect();
    Ok((fabric, hosts))
}

/// The bridge, and for each host a veth whose peer is created directly in the host's
/// namespace as `eth0` (moving it afterwards costs tens of milliseconds per link).
fn wire_fabric(state: &mut WorkerState, ports: &[(String, RawFd)]) -> Result<(), LabError> {
    let handle = state.netlink().map_err(|e| LabError::Io {
        what: "open the fabric's netlink socket".into(),
        source: e,
    })?;
    state.runtime.block_on(async {
        handle
            .link()
            .add(
                LinkBridge::new(BRIDGE)
                    .index(BRIDGE_INDEX)
                    .nf_call_iptables(true)
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(netlink_error(format!("create the bridge {BRIDGE}")))?;
        try_join_all(ports.iter().enumerate().map(|(i, (name, fd))| {
            let peer = LinkMessageBuilder::<LinkUnspec>::new()
                .name("eth0".to_string())
                .index(ETH0_INDEX)
                .setns_by_fd(*fd)
                .build();
            let message = LinkVeth::new(name, "eth0")
                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                .index(FIRST_PORT_INDEX + i as u32)
                .controller(BRIDGE_INDEX)
                .up()
                .build();
            let handle = handle.clone();
            let what = format!("create the link between {BRIDGE} and host {name}");
            async move {
                handle
                    .link()
                    .add(message)
                    .execute()
                    .await
                    .map_err(netlink_error(what))
            }
        }))
        .await?;
        Ok(())
    })
}

fn configure_host(
    state: &mut WorkerState,
    name: &str,
    address: IpAddr,
    prefix: u8,
) -> Result<(), LabError> {
    let handle = state.netlink().map_err(|e| LabError::Io {
        what: format!("open host {name}'s netlink socket"),
        source: e,
    })?;
    state.runtime.block_on(async {
        let lo = handle
            .link()
            .set(LinkUnspec::new_with_index(LO_INDEX).up().build())
            .execute();
        // A veth peer created up in another namespace fails (ENOTCONN), so eth0 comes up here.
        let eth0 = handle
            .link()
            .set(LinkUnspec::new_with_index(ETH0_INDEX).up().build())
            .execute();
        let addr = handle.address().add(ETH0_INDEX, address, prefix).execute();
        let (lo, eth0, addr) = futures::join!(lo, eth0, addr);
        lo.map_err(netlink_error(format!("bring up lo on host {name}")))?;
        eth0.map_err(netlink_error(format!("bring up eth0 on host {name}")))?;
        addr.map_err(netlink_error(format!(
            "add {address}/{prefix} to eth0 on host {name}"
        )))
    })
}
