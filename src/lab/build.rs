//! Building the fabric and the hosts over netlink. Work in different namespaces overlaps: each
//! phase is submitted to every namespace's thread before any result is awaited.

use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use futures::future::try_join_all;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth};

use super::ready::{READY_WITHIN, Watched, wait_links};
use super::rules::RuleBook;
use super::{Host, LabError, preflight};
use crate::firewall;
use crate::netns::{Namespace, WorkerState};
use crate::spec::{BRIDGE, Placement, Resolved};

/// Interface indexes are per namespace, so a fresh namespace's can be chosen up front instead
/// of looked up: `lo` is 1.
const LO_INDEX: u32 = 1;
const BRIDGE_INDEX: u32 = 2;
pub(super) const ETH0_INDEX: u32 = 2;
pub(super) const FIRST_PORT_INDEX: u32 = 10;

pub(super) fn netlink_error(what: String) -> impl FnOnce(rtnetlink::Error) -> LabError {
    move |source| LabError::Netlink {
        what,
        source: Box::new(source),
    }
}

pub(super) fn write_sysctls(pairs: &[(&str, &str)]) -> Result<(), LabError> {
    for (path, value) in pairs {
        std::fs::write(path, value).map_err(|source| LabError::Sysctl {
            path: path.to_string(),
            source,
        })?;
    }
    Ok(())
}

/// The article's VPC is IPv4 only; without this every capture fills with router
/// solicitations and MLD reports. Written before the namespace has any interface but `lo`,
/// `default` covers every link tcplab makes. (`all` would also cover `lo`, but its handler
/// needs the RTNL lock and restarts the write until it gets it: it spun for over half of a
/// build's time while other namespaces were being set up.)
const IPV6_OFF: &str = "/proc/sys/net/ipv6/conf/default/disable_ipv6";

fn disable_ipv6() -> Result<(), LabError> {
    match write_sysctls(&[(IPV6_OFF, "1")]) {
        // A kernel without IPv6 sends none of it: nothing to turn off.
        Err(LabError::Sysctl { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(())
        }
        other => other,
    }
}

/// What a build makes: the fabric, the VPC router if the topology has a VPC, the hosts.
pub(super) struct Built {
    pub fabric: Namespace,
    pub router: Option<Namespace>,
    pub hosts: Vec<Host>,
    /// What each host's link is impaired with.
    pub impairs: Vec<super::impair::Applied>,
    /// The delay line, when the kernel has no netem and a link is delayed.
    pub delay: super::impair::DelaySlot,
}

pub(super) fn build(resolved: &Resolved, book: &mut RuleBook) -> Result<Built, LabError> {
    preflight::check_privileges()?;
    super::limits::raise_nofile();
    // Namespaces are made in parallel (most of a build is the kernel setting them up), and
    // each phase is submitted everywhere before any result is awaited.
    let vpc = resolved.vpc.as_ref();
    let extra = usize::from(vpc.is_some());
    let starting: Vec<_> = (0..=resolved.hosts.len() + extra)
        .map(|_| Namespace::start())
        .collect();
    let mut starting = starting.into_iter();
    let fabric = starting.next().expect("the fabric is first").finish()?;
    let router = match vpc {
        Some(_) => Some(starting.next().expect("the router is second").finish()?),
        None => None,
    };
    // Security groups, and a VPC's rule against broadcast, filter bridged IPv4.
    let guarded = resolved.hosts.iter().any(|h| h.guarded()) || vpc.is_some_and(|v| !v.broadcast);
    let subnets = vpc.map_or(1, |v| v.subnets.len());
    let bridge = fabric.submit(move |state| {
        disable_ipv6()?;
        if guarded {
            preflight::check_br_netfilter()?;
            write_sysctls(&[("/proc/sys/net/bridge/bridge-nf-call-iptables", "1")])?;
        }
        create_bridge(state)?;
        super::vpc::create_bridges(state, subnets)
    });
    let router_prepared = router.as_ref().map(|r| {
        r.submit(|state| {
            disable_ipv6()?;
            set_up(state, "the VPC router", LO_INDEX, "lo")
        })
    });
    let namespaces = starting
        .map(|s| s.finish())
        .collect::<Result<Vec<_>, _>>()?;
    let prepared: Vec<_> = resolved
        .hosts
        .iter()
        .zip(&namespaces)
        .map(|(h, ns)| {
            let name = h.name.clone();
            ns.submit(move |state| {
                // Before eth0 exists, so that it is born without IPv6.
                disable_ipv6()?;
                set_up(state, &name, LO_INDEX, "lo")
            })
        })
        .collect();
    bridge.wait()??;
    for p in prepared {
        p.wait()??;
    }
    if let Some(p) = router_prepared {
        p.wait()??;
    }

    let ports: Vec<(String, RawFd, u32)> = resolved
        .hosts
        .iter()
        .zip(&namespaces)
        .map(|(h, ns)| {
            (
                h.name.clone(),
                ns.as_fd().as_raw_fd(),
                super::vpc::bridge_index(h.subnet, BRIDGE_INDEX),
            )
        })
        .collect();
    // The fds stay open: `namespaces` and `router` live until the jobs have returned.
    fabric.run(move |state| add_ports(state, &ports))??;
    if let (Some(vpc), Some(r)) = (vpc, &router) {
        let fd = r.as_fd().as_raw_fd();
        let v = vpc.clone();
        fabric.run(move |state| super::vpc::add_router_ports(state, &v, fd, BRIDGE_INDEX))??;
        let v = vpc.clone();
        r.run(move |state| super::vpc::configure_router(state, &v))??;
    }

    let rules = firewall::Build {
        revision: 0,
        trace: book.trace,
    };
    let mut tables = firewall::fabric_tables_for(resolved, |h| h.name.clone(), rules);
    book.label(0, &mut tables);
    let fabric_rules = fabric.submit(move |_| {
        let loaded = firewall::load(
            &tables,
            firewall::Mode::Fresh,
            "security groups and firewalls of the fabric",
        )?;
        if guarded {
            preflight::check_conntrack()?;
        }
        Ok::<_, LabError>((tables, loaded))
    });
    let configured: Vec<_> = resolved
        .hosts
        .iter()
        .enumerate()
        .zip(&namespaces)
        .map(|((i, h), ns)| {
            let address = IpAddr::from(h.address);
            let prefix = h.prefix_len;
            let gateway = h.gateway;
            let appliance = resolved.vpc.as_ref().is_some_and(|v| {
                v.subnets
                    .iter()
                    .flat_map(|s| &s.routes)
                    .any(|r| r.via.is_some_and(|(a, _)| a == h.address))
            });
            let mut tables: Vec<_> = firewall::host_table(resolved, i, rules)
                .into_iter()
                .collect();
            book.label(0, &mut tables);
            let name = h.name.clone();
            ns.submit(move |state| {
                configure_eth0(state, &name, address, prefix)?;
                if let Some(gateway) = gateway {
                    super::vpc::default_route(state, &name, gateway)?;
                }
                if appliance {
                    // A route's target forwards what it receives for others, as an instance
                    // with its source/destination check off does.
                    write_sysctls(&[("/proc/sys/net/ipv4/ip_forward", "1")])?;
                }
                let what = format!("firewall of host {name}");
                let loaded = firewall::load(&tables, firewall::Mode::Fresh, &what)?;
                Ok::<_, LabError>((tables, loaded))
            })
        })
        .collect();
    for (i, c) in configured.into_iter().enumerate() {
        let (tables, loaded) = c.wait()??;
        book.loaded(Placement::Host(i), &tables, loaded);
    }
    let (tables, loaded) = fabric_rules.wait()??;
    book.loaded(Placement::Fabric, &tables, loaded);
    if let Some(r) = &router {
        let mut tables = firewall::router_tables(resolved, rules);
        book.label(0, &mut tables);
        let (tables, loaded) = r.run(move |_| {
            let loaded = firewall::load(
                &tables,
                firewall::Mode::Fresh,
                "network ACLs of the VPC router",
            )?;
            Ok::<_, LabError>((tables, loaded))
        })??;
        book.loaded(Placement::Router, &tables, loaded);
    }
    wait_ready(&fabric, router.as_ref(), resolved, &namespaces)?;
    // Only now: a qdisc grafted before the kernel handled the links' carrier would be
    // replaced by the default one (see `impair`).
    let delay = super::impair::DelaySlot::default();
    let impairs = super::impair::apply_topology(&fabric, &namespaces, resolved, book, &delay)?;

    let names = crate::contain::HostsFile::new(&hosts_text(resolved))
        .map_err(|source| LabError::Io {
            what: "write the lab's hosts file".into(),
            source,
        })?
        .map(std::sync::Arc::new);
    let hosts = resolved
        .hosts
        .iter()
        .zip(namespaces)
        .map(|(h, mut ns)| {
            if let Some(names) = &names {
                ns.set_hosts_file(names.clone());
            }
            Host {
                name: h.name.clone(),
                address: h.address,
                ns,
            }
        })
        .collect();
    Ok(Built {
        fabric,
        router,
        hosts,
        impairs,
        delay,
    })
}

/// Every eth0 is up now, so every veth has its carrier; the kernel finishes bringing the
/// links up on its own time (see `ready`). Each namespace watches its own links at once.
fn wait_ready(
    fabric: &Namespace,
    router: Option<&Namespace>,
    resolved: &Resolved,
    namespaces: &[Namespace],
) -> Result<(), LabError> {
    let mut ports: Vec<Watched> = resolved
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| Watched {
            index: FIRST_PORT_INDEX + i as u32,
            name: format!("port {} on {}", h.name, super::vpc::bridge_name(h.subnet)),
            bridge_port: true,
        })
        .collect();
    let mut router_links = Vec::new();
    if let Some(vpc) = &resolved.vpc {
        for (i, s) in vpc.subnets.iter().enumerate() {
            ports.push(Watched {
                index: super::vpc::router_port_index(i),
                name: format!("the router's port on {}", super::vpc::bridge_name(i)),
                bridge_port: true,
            });
            router_links.push(Watched {
                index: super::vpc::ROUTER_IF_INDEX_BASE + i as u32,
                name: format!("the router's link to subnet {}", s.name),
                bridge_port: false,
            });
        }
    }
    let router_ready = router.map(|r| {
        r.submit(move |state| wait_links(state, "the VPC router", router_links, READY_WITHIN))
    });
    let fabric_ready =
        fabric.submit(move |state| wait_links(state, "the fabric", ports, READY_WITHIN));
    let hosts_ready: Vec<_> = resolved
        .hosts
        .iter()
        .zip(namespaces)
        .map(|(h, ns)| {
            let whose = format!("host {}", h.name);
            let eth0 = Watched {
                index: ETH0_INDEX,
                name: format!("eth0 of host {}", h.name),
                bridge_port: false,
            };
            ns.submit(move |state| wait_links(state, &whose, vec![eth0], READY_WITHIN))
        })
        .collect();
    for h in hosts_ready {
        h.wait()??;
    }
    if let Some(r) = router_ready {
        r.wait()??;
    }
    fabric_ready.wait()?
}

/// What programs in the lab read as `/etc/hosts`: every host by name.
pub(super) fn hosts_text(resolved: &Resolved) -> String {
    let mut text = String::from(
        "# tcplab: the hosts of this lab, seen by its programs only\n127.0.0.1\tlocalhost\n",
    );
    for h in &resolved.hosts {
        match &resolved.domain {
            Some(domain) => {
                text.push_str(&format!("{}\t{}.{domain}\t{}\n", h.address, h.name, h.name))
            }
            None => text.push_str(&format!("{}\t{}\n", h.address, h.name)),
        }
    }
    text
}

pub(super) fn netlink(state: &mut WorkerState, whose: &str) -> Result<rtnetlink::Handle, LabError> {
    state.netlink().map_err(|source| LabError::Io {
        what: format!("open {whose}'s netlink socket"),
        source,
    })
}

fn create_bridge(state: &mut WorkerState) -> Result<(), LabError> {
    let handle = netlink(state, "the fabric")?;
    // With multicast snooping the bridge joins 224.0.0.106 (all-snoopers) and sends IGMP
    // reports into every host's capture; a VPC sends nothing of the kind.
    let message = LinkBridge::new(BRIDGE)
        .index(BRIDGE_INDEX)
        .nf_call_iptables(true)
        .mcast_snooping(false)
        .multicast(false)
        .up()
        .build();
    state
        .runtime
        .block_on(handle.link().add(message).execute())
        .map_err(netlink_error(format!("create the bridge {BRIDGE}")))
}

fn set_up(state: &mut WorkerState, host: &str, index: u32, link: &str) -> Result<(), LabError> {
    let handle = netlink(state, host)?;
    let message = LinkUnspec::new_with_index(index).up().build();
    state
        .runtime
        .block_on(handle.link().set(message).execute())
        .map_err(netlink_error(format!("bring up {link} on host {host}")))
}

/// For each host, a veth on the bridge whose peer is created directly in the host's
/// namespace as `eth0` (moving it afterwards costs tens of milliseconds per link).
fn add_ports(state: &mut WorkerState, ports: &[(String, RawFd, u32)]) -> Result<(), LabError> {
    let links = ports
        .iter()
        .enumerate()
        .map(|(i, (name, fd, bridge))| {
            let peer = LinkMessageBuilder::<LinkUnspec>::new()
                .name("eth0".to_string())
                .index(ETH0_INDEX)
                .setns_by_fd(*fd)
                .append_extra_attribute(LinkAttribute::NumTxQueues(1))
                .append_extra_attribute(LinkAttribute::NumRxQueues(1))
                .build();
            let message = LinkVeth::new(name, "eth0")
                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                .index(FIRST_PORT_INDEX + i as u32)
                .controller(*bridge)
                .append_extra_attribute(LinkAttribute::NumTxQueues(1))
                .append_extra_attribute(LinkAttribute::NumRxQueues(1))
                .up()
                .build();
            (
                message,
                format!("create the link between the bridge and host {name}"),
            )
        })
        .collect();
    add_links(state, links)
}

/// Creates links in the fabric, all requests in flight at once.
pub(super) fn add_links(
    state: &mut WorkerState,
    links: Vec<(rtnetlink::packet_route::link::LinkMessage, String)>,
) -> Result<(), LabError> {
    let handle = netlink(state, "the fabric")?;
    state.runtime.block_on(async {
        try_join_all(links.into_iter().map(|(message, what)| {
            let handle = handle.clone();
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

fn configure_eth0(
    state: &mut WorkerState,
    name: &str,
    address: IpAddr,
    prefix: u8,
) -> Result<(), LabError> {
    let handle = netlink(state, name)?;
    state.runtime.block_on(async {
        // A veth peer created up in another namespace fails (ENOTCONN), so eth0 comes up here.
        let up = handle
            .link()
            .set(LinkUnspec::new_with_index(ETH0_INDEX).up().build())
            .execute();
        let addr = handle.address().add(ETH0_INDEX, address, prefix).execute();
        let (up, addr) = futures::join!(up, addr);
        up.map_err(netlink_error(format!("bring up eth0 on host {name}")))?;
        addr.map_err(netlink_error(format!(
            "add {address}/{prefix} to eth0 on host {name}"
        )))
    })
}
