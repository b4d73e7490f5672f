//! Labs kept up for people: `up`, `exec`, `ls` and `down`. Their namespaces are pinned under
//! /run/netns, and /run/tcplab/NAME.json records what belongs to each lab (see `record`), so
//! that `down` removes tcplab's pins and never anything else (see `pins`).
//!
//! `up` writes the record, with the inode of every namespace it is about to pin, BEFORE it
//! pins anything: whatever a killed `up` leaves pinned is on record, and a pin is tcplab's
//! only if it is the very namespace the record names (same inode). Pins with no usable record
//! (a record from an older tcplab, damaged or deleted) are removed only when they have the
//! shape only tcplab gives a lab: `NAME-fabric` holding the bridge `br0` and one veth per host
//! named after it, and `NAME-HOST` holding only `lo` and the veth `eth0`.

use std::os::unix::process::CommandExt;
use std::path::Path;

use crate::CliError;
use crate::pins::{NetnsDir, Pin, fabric_hosts, interfaces, is_host};
use crate::record::{Kept, KeptHost, KeptNs, Record, STATE_DIR, StateDir, check_name, shown};
use tcplab::lab::Lab;
use tcplab::netns::NETNS_RUN_DIR;
use tcplab::spec::Topology;

fn not_up(name: &str) -> CliError {
    CliError::setup(format!("no lab named `{name}` is up (see `tcplab ls`)"))
}

/// `tcplab up`: builds the topology, records it, then pins its namespaces.
pub fn up(topology: &Path, name: &str) -> Result<u8, CliError> {
    check_name(name)?;
    let state = StateDir::open(true)?
        .ok_or_else(|| CliError::setup(format!("cannot create {STATE_DIR}")))?;
    let lock = state.lock(name, true)?;
    let result = up_locked(&state, topology, name);
    // A refused or failed `up` that left no record leaves no lock file either.
    if result.is_err() && matches!(state.read(name), Record::None) {
        state.remove_lock(name, &lock);
    }
    result
}

fn up_locked(state: &StateDir, topology: &Path, name: &str) -> Result<u8, CliError> {
    match state.read(name) {
        Record::None => {}
        Record::Valid(_) => {
            return Err(CliError::setup(format!(
                "a lab named `{name}` is already up: take it down with `tcplab down {name}`, or pick another --name"
            )));
        }
        Record::Damaged(why) => {
            return Err(CliError::setup(format!(
                "a lab named `{name}` has a damaged record ({STATE_DIR}/{name}.json: {}): clear it with `tcplab down {name}`, or pick another --name",
                shown(&why)
            )));
        }
    }
    let (_, resolved) = Topology::from_file(topology).map_err(|e| {
        let line = e.to_string();
        // A scenario file names its topology, steps and expectations: `run` is its command.
        if line.contains("unknown field `description`")
            || line.contains("unknown field `step`")
            || line.contains("unknown field `expect`")
        {
            CliError::setup(format!(
                "{line} (this looks like a scenario: `tcplab run {}` runs it; `tcplab up` takes a topology)",
                topology.display()
            ))
        } else {
            CliError::setup(line)
        }
    })?;
    if let Some(netns) = NetnsDir::open()? {
        let clash: Vec<String> = [format!("{name}-fabric"), format!("{name}-router")]
            .into_iter()
            .chain(resolved.hosts.iter().map(|h| format!("{name}-{}", h.name)))
            .filter(|n| netns.exists(n))
            .collect();
        if !clash.is_empty() {
            return Err(CliError::setup(format!(
                "namespaces {} already exist and tcplab has no record of them: pick another --name, or clear them: `tcplab down {name}` removes those it can prove are tcplab's (left by a killed `tcplab up`), and `ip netns del NAME` any other",
                clash.join(", ")
            )));
        }
    }
    let mut lab =
        Lab::from_resolved(resolved.clone()).map_err(|e| CliError::setup(e.to_string()))?;
    let kept = Kept {
        name: name.to_string(),
        topology: topology.display().to_string(),
        subnet: resolved.subnet.to_string(),
        fabric: KeptNs {
            netns: format!("{name}-fabric"),
            inode: lab.fabric().inode(),
        },
        router: lab.router().map(|r| KeptNs {
            netns: format!("{name}-router"),
            inode: r.inode(),
        }),
        hosts: lab
            .hosts()
            .iter()
            .map(|h| KeptHost {
                name: h.name().to_string(),
                address: h.address().to_string(),
                netns: format!("{name}-{}", h.name()),
                inode: h.ns().inode(),
            })
            .collect(),
    };
    // On record before any pin exists: a kill from here on leaves nothing `down` cannot prove.
    state.write(&kept)?;
    if let Err(e) = lab.pin(name) {
        let _ = state.remove(name);
        return Err(CliError::setup(e.to_string()));
    }
    println!(
        "lab `{name}` is up: {} hosts on {}",
        kept.hosts.len(),
        kept.subnet
    );
    for h in &kept.hosts {
        println!(
            "  {:<12} {:<15} ip netns exec {}",
            h.name, h.address, h.netns
        );
    }
    let bridges = if kept.router.is_some() {
        "the subnets' bridges, br0, br_1..."
    } else {
        "the bridge, br0"
    };
    println!(
        "  {:<12} {:<15} ip netns exec {} ({bridges}, and the security groups)",
        "fabric", "", kept.fabric.netns
    );
    if let Some(r) = &kept.router {
        println!(
            "  {:<12} {:<15} ip netns exec {} (the VPC router: routes, network ACLs)",
            "router", "", r.netns
        );
    }
    let first = &kept.hosts[0].name;
    println!("try:  tcplab exec {name} {first} -- ip -br addr");
    println!("stop: tcplab down {name}");
    Ok(0)
}

/// `tcplab exec`: becomes `command` inside a host of a lab kept up.
pub fn exec(name: &str, host: &str, command: &[String]) -> Result<u8, CliError> {
    check_name(name)?;
    let state = StateDir::open(false)?.ok_or_else(|| not_up(name))?;
    // Shared: several commands may run in a lab at once, but not while it is taken down. The
    // lock's fd closes when the command starts (O_CLOEXEC).
    let _lock = state.lock(name, false)?;
    let kept = match state.read(name) {
        Record::None => return Err(not_up(name)),
        Record::Damaged(why) => {
            return Err(CliError::setup(format!(
                "the record of lab `{name}` is damaged ({}): tcplab will not enter it; clear it with `tcplab down {name}`",
                shown(&why)
            )));
        }
        Record::Valid(k) => k,
    };
    let h = kept.hosts.iter().find(|h| h.name == host).ok_or_else(|| {
        let known: Vec<&str> = kept.hosts.iter().map(|h| h.name.as_str()).collect();
        CliError::setup(format!(
            "lab `{name}` has no host `{}` (hosts: {})",
            shown(host),
            known.join(", ")
        ))
    })?;
    let path = format!("{NETNS_RUN_DIR}/{}", h.netns);
    let pin = match NetnsDir::open()? {
        Some(netns) => netns.inspect(&h.netns),
        None => Pin::Missing,
    };
    let ns = match pin {
        Pin::Netns { fd, inode } if inode == h.inode => fd,
        Pin::Netns { .. } => {
            return Err(CliError::setup(format!(
                "{path} is not the namespace tcplab pinned for host {} (another namespace has its name): tcplab will not enter it",
                h.name
            )));
        }
        Pin::Missing | Pin::Unmounted => {
            return Err(CliError::setup(format!(
                "host {} of lab `{name}` is not pinned at {path}: the lab is half-made; clear it with `tcplab down {name}`",
                h.name
            )));
        }
        Pin::Other(why) => {
            return Err(CliError::setup(format!(
                "{path}: {why}: tcplab will not enter it"
            )));
        }
    };
    // This process has one job left: become the command, inside the host.
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| CliError::setup(format!("cannot enter {path}: {e} (run as root)")))?;
    // As `ip netns exec` does: the command sees the host's interfaces in /sys.
    // SAFETY: raw system calls only; this thread execs the command next.
    unsafe { tcplab::contain::private_mounts(None) }.map_err(|f| {
        let e = std::io::Error::from(f);
        CliError::setup(format!(
            "cannot mount /sys for {}: {} failed: {e}",
            h.name,
            f.step()
        ))
    })?;
    let err = std::process::Command::new(&command[0])
        .args(&command[1..])
        .exec();
    Err(CliError::setup(format!(
        "cannot run `{}`: {err}",
        shown(&command[0])
    )))
}

/// `tcplab ls`: a line per lab, damaged and half-made ones marked.
pub fn ls() -> Result<u8, CliError> {
    let state = StateDir::open(false)?;
    let netns = NetnsDir::open()?;
    let recorded = state.as_ref().map(StateDir::names).unwrap_or_default();
    let mut shown_any = false;
    for name in &recorded {
        let Some(state) = &state else { break };
        let line = match state.read(name) {
            Record::None => continue,
            Record::Damaged(why) => format!(
                "{name:<12} damaged: {STATE_DIR}/{name}.json: {} (clear it with `tcplab down {name}`)",
                shown(&why)
            ),
            Record::Valid(k) => {
                let unpinned: Vec<&str> = k
                    .pins()
                    .filter(|(pin, inode)| {
                        !matches!(netns.as_ref().map(|d| d.inspect(pin)),
                            Some(Pin::Netns { inode: found, .. }) if found == *inode)
                    })
                    .map(|(pin, _)| pin)
                    .collect();
                if unpinned.is_empty() {
                    let hosts: Vec<&str> = k.hosts.iter().map(|h| h.name.as_str()).collect();
                    format!(
                        "{:<12} {} ({}): {}",
                        k.name,
                        k.subnet,
                        shown(&k.topology),
                        hosts.join(", ")
                    )
                } else {
                    format!(
                        "{name:<12} half-made: {} not pinned as recorded (clear it with `tcplab down {name}`)",
                        unpinned.join(", ")
                    )
                }
            }
        };
        println!("{line}");
        shown_any = true;
    }
    // Pins of a lab whose record is gone: shown only when they have tcplab's shape.
    if let Some(netns) = &netns {
        for name in unrecorded_fabrics(&recorded) {
            if let Pin::Netns { fd, .. } = netns.inspect(&format!("{name}-fabric"))
                && interfaces(&fd)
                    .ok()
                    .as_deref()
                    .and_then(fabric_hosts)
                    .is_some()
            {
                println!(
                    "{name:<12} half-made: pinned with no record (clear it with `tcplab down {name}`)"
                );
                shown_any = true;
            }
        }
    }
    if !shown_any {
        println!("no lab is up (start one with `tcplab up TOPOLOGY`)");
    }
    Ok(0)
}

/// Lab names `N` with a pin `N-fabric` under /run/netns and no record.
fn unrecorded_fabrics(recorded: &[String]) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(NETNS_RUN_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let name = file.strip_suffix("-fabric")?;
            (crate::record::is_lab_name(name) && !recorded.iter().any(|r| r == name))
                .then(|| name.to_string())
        })
        .collect();
    names.sort();
    names
}

/// `tcplab down`: takes one lab, or all recorded ones, down.
pub fn down(name: Option<&str>, all: bool) -> Result<u8, CliError> {
    let names = if all {
        let names = StateDir::open(false)?
            .map(|s| s.names())
            .unwrap_or_default();
        if names.is_empty() {
            println!("no lab is up");
        }
        names
    } else {
        let name = name.unwrap_or_default();
        check_name(name)?;
        vec![name.to_string()]
    };
    let mut problems = Vec::new();
    for name in names {
        if let Err(e) = down_one(&name) {
            problems.push(e.message);
        }
    }
    if problems.is_empty() {
        Ok(0)
    } else {
        Err(CliError::setup(problems.join("; ")))
    }
}

/// What taking a lab down did with its pins.
#[derive(Default)]
struct Cleared {
    removed: Vec<String>,
    /// Pins left alone, and why.
    left: Vec<String>,
}

fn down_one(name: &str) -> Result<(), CliError> {
    let state = StateDir::open(true)?
        .ok_or_else(|| CliError::setup(format!("cannot create {STATE_DIR}")))?;
    let lock = state.lock(name, true)?;
    let record = state.read(name);
    let netns = NetnsDir::open()?;
    let cleared = match (&record, &netns) {
        (_, None) => Cleared::default(),
        (Record::Valid(kept), Some(netns)) => clear_recorded(netns, kept),
        (Record::Damaged(_) | Record::None, Some(netns)) => clear_by_shape(netns, name),
    };
    if !cleared.left.is_empty() {
        // The record stays (when there is one): `ls` goes on showing the lab, and the name is
        // not given out again while namespaces under it remain.
        let removed = match cleared.removed.is_empty() {
            true => String::new(),
            false => format!("removed {}; ", cleared.removed.join(", ")),
        };
        return Err(CliError::setup(format!(
            "lab `{name}` is not down: {removed}left alone what tcplab cannot prove is its own: {}. If those are leftovers, remove them with `ip netns del NAME`, then run `tcplab down {name}` again",
            cleared.left.join("; ")
        )));
    }
    if matches!(record, Record::None) && cleared.removed.is_empty() {
        // A record a killed `up` never finished writing (`NAME.json.tmp`) goes too.
        let _ = state.remove(name);
        state.remove_lock(name, &lock);
        return Err(not_up(name));
    }
    state.remove(name)?;
    state.remove_lock(name, &lock);
    let how = match &record {
        Record::Damaged(why) => format!(" (its damaged record was removed: {})", shown(why)),
        Record::None => " (it had no record)".to_string(),
        Record::Valid(_) => String::new(),
    };
    println!("lab `{name}` is down{how}");
    Ok(())
}

/// Removes the pins a valid record names, each only if it is the namespace recorded.
fn clear_recorded(netns: &NetnsDir, kept: &Kept) -> Cleared {
    let mut cleared = Cleared::default();
    for (pin_name, inode) in kept.pins() {
        let path = format!("{NETNS_RUN_DIR}/{pin_name}");
        let pin = netns.inspect(pin_name);
        match &pin {
            Pin::Missing => continue,
            // The record was written before this file: a pin whose mount never happened.
            Pin::Unmounted => {}
            Pin::Netns { inode: found, .. } if *found == inode => {}
            Pin::Netns { .. } => {
                cleared.left.push(format!(
                    "{path} is another namespace than the one tcplab pinned"
                ));
                continue;
            }
            Pin::Other(why) => {
                cleared.left.push(format!("{path}: {why}"));
                continue;
            }
        }
        match netns.remove(pin_name, &pin) {
            Ok(()) => cleared.removed.push(pin_name.to_string()),
            Err(e) => cleared.left.push(e),
        }
    }
    cleared
}

/// The pins in /run/netns named `NAME-...`, for messages only (nothing is opened).
fn pins_named_after(name: &str) -> Vec<String> {
    let prefix = format!("{name}-");
    let mut pins: Vec<String> = std::fs::read_dir(NETNS_RUN_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    pins.sort();
    pins
}

/// Removes the pins of a lab with no usable record, only if they have tcplab's shape.
fn clear_by_shape(netns: &NetnsDir, name: &str) -> Cleared {
    let mut cleared = Cleared::default();
    let fabric_name = format!("{name}-fabric");
    let fabric_path = format!("{NETNS_RUN_DIR}/{fabric_name}");
    let fabric = netns.inspect(&fabric_name);
    let hosts = match &fabric {
        Pin::Missing => {
            // Without its fabric nothing proves a host pin is tcplab's: name them, at least.
            cleared.left = pins_named_after(name)
                .into_iter()
                .map(|p| {
                    format!("{NETNS_RUN_DIR}/{p} (no {fabric_name} left to prove it is tcplab's)")
                })
                .collect();
            return cleared;
        }
        Pin::Netns { fd, .. } => match interfaces(fd) {
            Ok(ifaces) => match fabric_hosts(&ifaces) {
                Some(hosts) => hosts,
                None => {
                    cleared.left.push(format!(
                        "{fabric_path} is not a tcplab fabric (a bridge br0 and one veth per host)"
                    ));
                    return cleared;
                }
            },
            Err(why) => {
                cleared.left.push(format!("{fabric_path}: {why}"));
                return cleared;
            }
        },
        Pin::Unmounted => {
            cleared
                .left
                .push(format!("{fabric_path} is an empty file, not a namespace"));
            return cleared;
        }
        Pin::Other(why) => {
            cleared.left.push(format!("{fabric_path}: {why}"));
            return cleared;
        }
    };
    // Hosts first: their eth0 goes away with the fabric, and with it their proof.
    for host in hosts {
        let pin_name = format!("{name}-{host}");
        let path = format!("{NETNS_RUN_DIR}/{pin_name}");
        let pin = netns.inspect(&pin_name);
        let proven = match &pin {
            Pin::Missing => continue,
            Pin::Netns { fd, .. } => interfaces(fd).is_ok_and(|i| is_host(&i)),
            _ => false,
        };
        if !proven {
            cleared
                .left
                .push(format!("{path} is not a tcplab host (lo and a veth eth0)"));
            continue;
        }
        match netns.remove(&pin_name, &pin) {
            Ok(()) => cleared.removed.push(pin_name),
            Err(e) => cleared.left.push(e),
        }
    }
    match netns.remove(&fabric_name, &fabric) {
        Ok(()) => cleared.removed.push(fabric_name),
        Err(e) => cleared.left.push(e),
    }
    cleared
}
