//! Labs kept up for people: `up`, `exec`, `ls` and `down`. Their namespaces are pinned under
//! /run/netns, and /run/tcplab/NAME.json records what belongs to each lab, so that `down`
//! removes tcplab's pins and never anything else.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CliError;
use crate::lab::Lab;
use crate::netns::{NETNS_RUN_DIR, unpin_path};
use crate::spec::Topology;

const STATE_DIR: &str = "/run/tcplab";

#[derive(Debug, Serialize, Deserialize)]
struct Kept {
    name: String,
    topology: String,
    subnet: String,
    fabric: String,
    hosts: Vec<KeptHost>,
}

#[derive(Debug, Serialize, Deserialize)]
struct KeptHost {
    name: String,
    address: String,
    netns: String,
}

fn state_file(name: &str) -> PathBuf {
    Path::new(STATE_DIR).join(format!("{name}.json"))
}

fn check_name(name: &str) -> Result<(), CliError> {
    let ok = !name.is_empty()
        && name.len() <= 20
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(CliError::setup(format!(
            "`{name}` is not a lab name: use 1 to 20 lowercase letters, digits and dashes"
        )))
    }
}

fn load(name: &str) -> Result<Kept, CliError> {
    check_name(name)?;
    let text = std::fs::read_to_string(state_file(name))
        .map_err(|_| CliError::setup(format!("no lab named `{name}` is up (see `tcplab ls`)")))?;
    serde_json::from_str(&text)
        .map_err(|e| CliError::setup(format!("{} is damaged: {e}", state_file(name).display())))
}

pub fn up(topology: &Path, name: &str) -> Result<u8, CliError> {
    check_name(name)?;
    if state_file(name).exists() {
        return Err(CliError::setup(format!(
            "a lab named `{name}` is already up: take it down with `tcplab down {name}`, or pick another --name"
        )));
    }
    let (_, resolved) =
        Topology::from_file(topology).map_err(|e| CliError::setup(e.to_string()))?;
    let clash: Vec<String> = std::iter::once(format!("{name}-fabric"))
        .chain(resolved.hosts.iter().map(|h| format!("{name}-{}", h.name)))
        .filter(|n| Path::new(NETNS_RUN_DIR).join(n).exists())
        .collect();
    if !clash.is_empty() {
        return Err(CliError::setup(format!(
            "namespaces {} already exist and are not tcplab's: pick another --name",
            clash.join(", ")
        )));
    }
    let mut lab =
        Lab::from_resolved(resolved.clone()).map_err(|e| CliError::setup(e.to_string()))?;
    let kept = Kept {
        name: name.to_string(),
        topology: topology.display().to_string(),
        subnet: resolved.subnet.to_string(),
        fabric: format!("{name}-fabric"),
        hosts: resolved
            .hosts
            .iter()
            .map(|h| KeptHost {
                name: h.name.clone(),
                address: h.address.to_string(),
                netns: format!("{name}-{}", h.name),
            })
            .collect(),
    };
    std::fs::create_dir_all(STATE_DIR)
        .and_then(|()| {
            std::fs::write(
                state_file(name),
                serde_json::to_string_pretty(&kept).unwrap_or_default(),
            )
        })
        .map_err(|e| CliError::setup(format!("cannot record the lab in {STATE_DIR}: {e}")))?;
    if let Err(e) = lab.pin(name) {
        let _ = std::fs::remove_file(state_file(name));
        return Err(CliError::setup(e.to_string()));
    }
    anstream::println!(
        "lab `{name}` is up: {} hosts on {}",
        kept.hosts.len(),
        kept.subnet
    );
    for h in &kept.hosts {
        anstream::println!(
            "  {:<12} {:<15} ip netns exec {}",
            h.name,
            h.address,
            h.netns
        );
    }
    anstream::println!(
        "  {:<12} {:<15} ip netns exec {} (the bridge, br0, and the security groups)",
        "fabric",
        "",
        kept.fabric
    );
    let first = &kept.hosts[0].name;
    anstream::println!("try:  tcplab exec {name} {first} -- ip -br addr");
    anstream::println!("stop: tcplab down {name}");
    Ok(0)
}

pub fn exec(name: &str, host: &str, command: &[String]) -> Result<u8, CliError> {
    let kept = load(name)?;
    let h = kept.hosts.iter().find(|h| h.name == host).ok_or_else(|| {
        let known: Vec<&str> = kept.hosts.iter().map(|h| h.name.as_str()).collect();
        CliError::setup(format!(
            "lab `{name}` has no host `{host}` (hosts: {})",
            known.join(", ")
        ))
    })?;
    let path = Path::new(NETNS_RUN_DIR).join(&h.netns);
    let ns = std::fs::File::open(&path).map_err(|e| {
        CliError::setup(format!(
            "cannot open {}: {e} (is the lab still up?)",
            path.display()
        ))
    })?;
    // This process has one job left: become the command, inside the host.
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| CliError::setup(format!("cannot enter {}: {e} (run as root)", h.netns)))?;
    // As `ip netns exec` does: the command sees the host's interfaces in /sys.
    // SAFETY: raw system calls only; this thread execs the command next.
    unsafe { crate::contain::private_mounts(None) }.map_err(|f| {
        let e = std::io::Error::from(f);
        CliError::setup(format!(
            "cannot mount /sys for {host}: {} failed: {e}",
            f.step()
        ))
    })?;
    let err = std::process::Command::new(&command[0])
        .args(&command[1..])
        .exec();
    Err(CliError::setup(format!(
        "cannot run `{}`: {err}",
        command[0]
    )))
}

fn kept_labs() -> Vec<Kept> {
    let mut labs: Vec<Kept> = std::fs::read_dir(STATE_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect();
    labs.sort_by(|a, b| a.name.cmp(&b.name));
    labs
}

pub fn ls() -> Result<u8, CliError> {
    let labs = kept_labs();
    if labs.is_empty() {
        anstream::println!("no lab is up (start one with `tcplab up TOPOLOGY`)");
    }
    for lab in labs {
        let hosts: Vec<&str> = lab.hosts.iter().map(|h| h.name.as_str()).collect();
        anstream::println!(
            "{:<12} {} ({}): {}",
            lab.name,
            lab.subnet,
            lab.topology,
            hosts.join(", ")
        );
    }
    Ok(0)
}

pub fn down(name: Option<&str>, all: bool) -> Result<u8, CliError> {
    let labs = if all {
        kept_labs()
    } else {
        vec![load(name.unwrap_or_default())?]
    };
    for lab in labs {
        let mut problems = Vec::new();
        for ns in std::iter::once(&lab.fabric).chain(lab.hosts.iter().map(|h| &h.netns)) {
            let path = Path::new(NETNS_RUN_DIR).join(ns);
            if path.exists()
                && let Err(e) = unpin_path(&path)
            {
                problems.push(e.to_string());
            }
        }
        if !problems.is_empty() {
            return Err(CliError::setup(problems.join("; ")));
        }
        let _ = std::fs::remove_file(state_file(&lab.name));
        anstream::println!("lab `{}` is down", lab.name);
    }
    Ok(0)
}
