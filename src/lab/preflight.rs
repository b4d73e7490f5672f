//! Checks made before a lab is built, so that a missing privilege or kernel feature gives one
//! clear error instead of a failure halfway through.

use std::path::Path;

use super::LabError;

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// Fails unless the process holds CAP_NET_ADMIN and CAP_SYS_ADMIN.
pub fn check_privileges() -> Result<(), LabError> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let missing: Vec<&str> = [
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
    ]
    .into_iter()
    .filter(|(bit, _)| effective & (1 << bit) == 0)
    .map(|(_, name)| name)
    .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LabError::Privilege {
            missing: missing.join(" and "),
        })
    }
}

/// Checks, from the fabric's thread, that bridged IPv4 traffic can go through nftables.
pub fn check_br_netfilter() -> Result<(), LabError> {
    if Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists() {
        Ok(())
    } else {
        Err(LabError::KernelFeature {
            feature: "br_netfilter",
            hint: "security groups filter bridged traffic through it: load it with `modprobe br_netfilter`, or use a kernel with CONFIG_BRIDGE_NETFILTER",
        })
    }
}

/// Checks, from the fabric's thread after its rules are in, that conntrack tracks its traffic.
pub fn check_conntrack() -> Result<(), LabError> {
    if Path::new("/proc/sys/net/netfilter/nf_conntrack_max").exists() {
        Ok(())
    } else {
        Err(LabError::KernelFeature {
            feature: "nf_conntrack",
            hint: "security groups are stateful through it: load it with `modprobe nf_conntrack`, or use a kernel with CONFIG_NF_CONNTRACK",
        })
    }
}
