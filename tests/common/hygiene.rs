//! What a lab may leave behind: namespaces still referenced by a process, an fd or a mount,
//! and changes to the machine's own network namespace.

use std::collections::BTreeMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

/// Every `net:[inode]` that a process, thread, open fd or mount of this machine refers to.
pub fn referenced_net_namespaces() -> std::collections::HashSet<u64> {
    let mut found = std::collections::HashSet::new();
    let mut note = |link: std::path::PathBuf| {
        if let Ok(target) = std::fs::read_link(&link) {
            let t = target.to_string_lossy();
            if let Some(ino) = t.strip_prefix("net:[").and_then(|r| r.strip_suffix(']'))
                && let Ok(ino) = ino.parse()
            {
                found.insert(ino);
            }
        }
    };
    for proc in std::fs::read_dir("/proc").unwrap().flatten() {
        let path = proc.path();
        if !proc
            .file_name()
            .to_string_lossy()
            .chars()
            .all(|c| c.is_ascii_digit())
        {
            continue;
        }
        note(path.join("ns/net"));
        for task in std::fs::read_dir(path.join("task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            note(task.path().join("ns/net"));
        }
        for fd in std::fs::read_dir(path.join("fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            note(fd.path());
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mounts.lines() {
        if let Some(pos) = line.find("net:[") {
            let rest = &line[pos + 5..];
            if let Some(end) = rest.find(']')
                && let Ok(ino) = rest[..end].parse()
            {
                found.insert(ino);
            }
        }
    }
    found
}

/// The root namespace's state that labs must never change.
pub fn root_namespace_state() -> BTreeMap<String, String> {
    let mut state = BTreeMap::new();
    let run = |args: &[&str]| {
        Command::new(args[0])
            .args(&args[1..])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_else(|e| format!("cannot run {args:?}: {e}"))
    };
    // Link names and flags; counters and addresses of traffic are not ours to compare.
    let links: Vec<String> = run(&["ip", "-br", "link"])
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    state.insert("links".into(), links.join(" "));
    state.insert("routes".into(), run(&["ip", "route"]));
    state.insert("nft ruleset".into(), run(&["nft", "list", "ruleset"]));
    state.insert("pinned namespaces".into(), run(&["ip", "netns", "list"]));
    for key in [
        "net/ipv4/ip_forward",
        "net/ipv6/conf/all/disable_ipv6",
        "net/ipv6/conf/default/disable_ipv6",
        "net/bridge/bridge-nf-call-iptables",
        "net/ipv4/tcp_syn_retries",
    ] {
        let value = std::fs::read_to_string(format!("/proc/sys/{key}"))
            .unwrap_or_else(|_| "(absent)".into());
        state.insert(key.into(), value.trim().to_string());
    }
    state
}

/// Waits until process `pid` (not necessarily our child) has ended; false if it outlives
/// `limit`.
pub fn wait_gone(pid: i32, limit: Duration) -> bool {
    // SAFETY: pidfd_open returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return true; // ESRCH: already gone
    }
    // SAFETY: a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut pfd = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, limit.as_millis() as i32) > 0 }
}

/// Every live process (by its pid in this machine's namespace) whose PID namespace is
/// `inode`. Zombies have ended and run nothing: they are left out, as their parent (the
/// machine's init, for orphans) reaps them when it will.
pub fn processes_in_pid_namespace(inode: u64) -> Vec<i32> {
    let wanted = format!("pid:[{inode}]");
    pids()
        .filter(|&pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                .is_ok_and(|t| t.to_string_lossy() == wanted)
                && state(pid).is_some_and(|s| s != 'Z' && s != 'X')
        })
        .collect()
}

/// A process's state letter (R, S, Z...), `None` if it is gone.
pub fn state(pid: i32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// Every process whose command line holds `args`, in a row.
pub fn processes_running(args: &[&str]) -> Vec<i32> {
    pids()
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let argv: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            argv.windows(args.len())
                .any(|w| w.iter().zip(args).all(|(a, b)| *a == b.as_bytes()))
        })
        .collect()
}

/// A process's name (`comm`), empty if it is gone.
pub fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim_end().to_string())
        .unwrap_or_default()
}

/// A process's parent, as this machine's namespace numbers it.
pub fn parent(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// The fields of `/proc/PID/stat` after the name, from the state on.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name in parentheses may hold spaces: the fields after its last ')' are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}
