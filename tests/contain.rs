//! Programs stay inside their lab: whatever they start ends with the lab (dropped, panicking
//! or killed), they see their own host's interfaces and processes, nothing they mount reaches
//! the machine, and what tcplab keeps of their output stays bounded. Needs root.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::hygiene::{
    comm, parent, processes_in_pid_namespace, processes_running, referenced_net_namespaces,
    root_namespace_state, wait_gone,
};
use common::*;
use tcplab::lab::Lab;
use tcplab::proc::{KEEP_BYTES, KEEP_LINES, MAX_LINE, Proc};

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

fn tcp_server_path() -> &'static str {
    env!("CARGO_BIN_EXE_tcp-server")
}

/// What a test started on `server` and must see end with the lab.
struct Daemons {
    /// The programs tcplab started (each an `sh` or a `setsid`).
    starters: Vec<Proc>,
    /// Every process in the host's PID namespace, its init included.
    pids: Vec<i32>,
    pid_namespace: u64,
    net_namespaces: Vec<u64>,
}

/// Starts, on the lab's server, tcp-server as a background job of a shell that waits for it
/// (`sh -c 'tcp-server ... & wait'`), and as a daemon in a session of its own whose starter
/// ends at once (`setsid -f`), and checks that both run, reparented as expected.
fn start_daemons(lab: &Lab) -> Daemons {
    let host = lab.host("server").unwrap();
    let server = tcp_server_path();
    let job = host
        .spawn(sh(&format!("{server} 0.0.0.0 1234 & wait")))
        .unwrap();
    job.wait_for_line("Listening on", WAIT).unwrap();
    let mut setsid = Command::new("setsid");
    setsid.args(["-f", server, "0.0.0.0", "1235"]);
    let daemon = host.spawn(setsid).unwrap();
    daemon.wait_for_line("Listening on", WAIT).unwrap();
    // The starter of the daemon is gone: tcplab no longer holds anything of the daemon.
    let started = daemon.wait(WAIT).unwrap();
    assert_eq!(started.status.code(), Some(0), "{}", started.transcript());

    let pid_namespace = host.ns().pid_namespace_inode().unwrap().unwrap();
    let pids = processes_in_pid_namespace(pid_namespace);
    let named =
        |name: &str| -> Vec<i32> { pids.iter().copied().filter(|&p| comm(p) == name).collect() };
    let (servers, inits) = (named("tcp-server"), named("tcplab-init"));
    assert_eq!(servers.len(), 2, "both servers run in the host: {pids:?}");
    assert_eq!(inits.len(), 1, "one init per host: {pids:?}");
    assert!(
        servers.iter().any(|&s| parent(s) == Some(inits[0])),
        "the daemon whose starter ended was reparented to the host's init, not the machine's"
    );
    let net_namespaces = std::iter::once(lab.fabric().inode())
        .chain(lab.hosts().iter().map(|h| h.ns().inode()))
        .collect();
    Daemons {
        starters: vec![job],
        pids,
        pid_namespace,
        net_namespaces,
    }
}

/// Every process of the host is gone, and so are the lab's network namespaces.
fn assert_all_gone(pids: &[i32], pid_namespace: u64, net_namespaces: &[u64]) {
    for &pid in pids {
        assert!(
            wait_gone(pid, WAIT),
            "process {pid} ({}) outlived its lab",
            comm(pid)
        );
    }
    assert_eq!(processes_in_pid_namespace(pid_namespace), Vec::<i32>::new());
    let live = referenced_net_namespaces();
    let left: Vec<_> = net_namespaces.iter().filter(|i| live.contains(i)).collect();
    assert!(left.is_empty(), "namespaces still referenced: {left:?}");
}

#[test]
fn daemons_end_when_the_lab_is_dropped() {
    let before = root_namespace_state();
    let Some(lab) = article_lab() else { return };
    let daemons = start_daemons(&lab);
    drop(lab);
    // The handle of the waiting shell outlives the lab; its reaping ends the init's wait.
    drop(daemons.starters);
    assert_all_gone(
        &daemons.pids,
        daemons.pid_namespace,
        &daemons.net_namespaces,
    );
    assert_eq!(root_namespace_state(), before);
}

#[test]
fn daemons_end_when_the_test_holding_the_lab_panics() {
    if !privileged() {
        return;
    }
    let seen = std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(|| {
        let lab = article_lab().unwrap();
        let daemons = start_daemons(&lab);
        *seen.lock().unwrap() = Some((
            daemons.pids.clone(),
            daemons.pid_namespace,
            daemons.net_namespaces.clone(),
        ));
        panic!("a test failing while its daemons run");
    });
    assert!(result.is_err());
    let (pids, pid_namespace, net_namespaces) = seen.lock().unwrap().take().unwrap();
    assert_all_gone(&pids, pid_namespace, &net_namespaces);
}

const HOLD_VAR: &str = "TCPLAB_TEST_HOLD_DAEMONS";

/// Helper for the next test, run in a child process: holds a lab with daemons running until
/// it is killed. Ignored when run directly.
#[test]
#[ignore = "helper: runs only as the child of daemons_end_when_the_process_holding_the_lab_is_killed"]
fn hold_daemons_until_killed() {
    if std::env::var_os(HOLD_VAR).is_none() {
        return;
    }
    let lab = article_lab().unwrap();
    let daemons = start_daemons(&lab);
    fn list<T: ToString>(v: &[T]) -> String {
        v.iter().map(T::to_string).collect::<Vec<_>>().join(",")
    }
    println!(
        "HOLDING pidns={} pids={} netns={}",
        daemons.pid_namespace,
        list(&daemons.pids),
        list(&daemons.net_namespaces)
    );
    loop {
        std::thread::park();
    }
}

#[test]
fn daemons_end_when_the_process_holding_the_lab_is_killed() {
    if !privileged() {
        return;
    }
    let before = root_namespace_state();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "hold_daemons_until_killed",
        "--ignored",
        "--nocapture",
    ])
    .env(HOLD_VAR, "1");
    let holder = Proc::spawn(cmd).unwrap();
    let line = holder.wait_for_line("HOLDING", WAIT).unwrap().text;
    let field = |name: &str| -> Vec<u64> {
        let value = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap();
        value.split(',').map(|v| v.parse().unwrap()).collect()
    };
    let (pid_namespace, pids, nets) = (field("pidns")[0], field("pids"), field("netns"));
    let pids: Vec<i32> = pids.iter().map(|&p| p as i32).collect();
    assert!(pids.len() >= 3, "init and two servers: {pids:?}");

    let outcome = holder.kill().unwrap();
    assert_eq!(outcome.status.code(), None, "killed by SIGKILL");
    assert_all_gone(&pids, pid_namespace, &nets);
    assert_eq!(root_namespace_state(), before);
}

#[test]
fn daemons_end_with_a_scenario_run() {
    if !privileged() {
        return;
    }
    let server = tcp_server_path();
    let text = format!(
        r#"
description = "a server behind a shell, and a daemon"
time_limit = 30
[[host]]
name = "a"
[[step]]
action = "start"
host = "a"
name = "job"
command = ["sh", "-c", "{server} 0.0.0.0 4711 & wait"]
wait_for = "Listening on"
[[step]]
action = "start"
host = "a"
name = "daemon"
command = ["setsid", "-f", "{server}", "0.0.0.0", "4712"]
wait_for = "Listening on"
[[expect]]
kind = "output"
program = "daemon"
line = "Listening on"
"#
    );
    let scenario =
        tcplab::scenario::Scenario::from_toml(&text, "inline.toml", None, "inline").unwrap();
    let result = tcplab::scenario::run(&scenario, tcplab::scenario::RunOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(result.verdict.passed(), "{}", result.verdict);
    // Both servers started (the run waited for them); any still found is on its way out, or
    // a leak: wait for each.
    for port in ["4711", "4712"] {
        for pid in processes_running(&[server, "0.0.0.0", port]) {
            assert!(
                wait_gone(pid, WAIT),
                "tcp-server {pid} on port {port} outlived the run"
            );
        }
    }
}

#[test]
fn a_program_sees_its_own_host_in_sys() {
    let Some(lab) = article_lab() else { return };
    let host = lab.host("client-1").unwrap();
    let out = run_in(
        &lab,
        "client-1",
        sh("ls /sys/class/net; cat /sys/class/net/eth0/address"),
    );
    let lines: Vec<&str> = out.stdout().collect();
    assert_eq!(lines[..2], ["eth0", "lo"], "{}", out.transcript());
    // The address is eth0's as the kernel reports it in the host, not a machine NIC's.
    let mac = host
        .ns()
        .run(|_| std::fs::read_to_string("/sys/class/net/eth0/address"))
        .unwrap();
    let link = run_in(&lab, "client-1", {
        let mut c = Command::new("ip");
        c.args(["-br", "link", "show", "eth0"]);
        c
    });
    let ip_mac = link.stdout().next().unwrap().split_whitespace().nth(2);
    assert_eq!(Some(lines[2]), ip_mac, "{}", link.transcript());
    // Read from outside the program, /sys is the machine's: its eth0, if any, is another.
    assert_ne!(mac.ok().as_deref().map(str::trim), Some(lines[2]));
}

#[test]
fn a_program_sees_its_own_host_in_proc() {
    let Some(lab) = article_lab() else { return };
    let server = start_server(&lab, "server", 1234);
    let out = run_in(&lab, "server", {
        let mut c = Command::new("ps");
        c.args(["-e", "-o", "pid=,comm="]);
        c
    });
    let seen: BTreeSet<(String, String)> = out
        .stdout()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect();
    let names: BTreeSet<&str> = seen.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["tcplab-init", "tcp-server", "ps"]),
        "{}",
        out.transcript()
    );
    assert!(seen.contains(&("1".to_string(), "tcplab-init".to_string())));
    drop(server);
}

/// Mount points of this process's mount namespace, but pins of namespaces, which other labs
/// on the machine may add or remove at any time.
fn mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| !l.split(' ').nth(4).unwrap_or("").starts_with("/run/netns"))
        .map(|l| l.split(' ').skip(2).collect::<Vec<_>>().join(" "))
        .collect()
}

const SHARED_VAR: &str = "TCPLAB_TEST_SHARED_MOUNTS";

/// Helper for the next test: in a mount namespace whose mounts are all shared (as systemd
/// makes the machine's), runs programs in a lab and checks no mount of theirs propagated here.
#[test]
#[ignore = "helper: runs only as the child of programs_mounts_never_reach_the_machine"]
fn mounts_stay_put_with_shared_propagation() {
    if std::env::var_os(SHARED_VAR).is_none() {
        return;
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap();
    assert!(root.contains(" shared:"), "/ is shared here: {root}");
    let before = mounts();
    let lab = article_lab().unwrap();
    let out = run_in(&lab, "client-1", sh("ls /sys/class/net"));
    assert_eq!(out.stdout().collect::<Vec<_>>(), ["eth0", "lo"]);
    let server = start_server(&lab, "server", 1234);
    assert_eq!(mounts(), before, "a program's mounts propagated out");
    drop(server);
    drop(lab);
    assert_eq!(mounts(), before);
    println!("MOUNTS UNCHANGED");
}

#[test]
fn programs_mounts_never_reach_the_machine() {
    if !privileged() {
        return;
    }
    let before = mounts();
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "shared"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "mounts_stay_put_with_shared_propagation",
            "--ignored",
            "--nocapture",
        ])
        .env(SHARED_VAR, "1");
    let out = Proc::spawn(cmd).unwrap().wait(WAIT).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", out.transcript());
    assert!(
        out.stdout().any(|l| l.contains("MOUNTS UNCHANGED")),
        "{}",
        out.transcript()
    );
    // And in this, the machine's mount namespace, as well.
    let Some(lab) = article_lab() else { return };
    run_in(&lab, "client-1", sh("cat /sys/class/net/eth0/address"));
    drop(lab);
    assert_eq!(mounts(), before);
}

#[test]
fn a_flood_of_output_is_kept_bounded() {
    let Some(lab) = article_lab() else { return };
    let mut yes = Command::new("timeout");
    yes.args(["2", "yes"]);
    let out = run_in(&lab, "client-1", yes);
    assert_eq!(out.status.code(), Some(124), "ended by timeout");
    let cut = out.cut.expect("a flood is cut");
    assert!(cut.lines > 0);
    assert_eq!(out.lines.len(), 2 * KEEP_LINES + 1);
    let marker = &out.lines[KEEP_LINES];
    assert!(
        marker
            .text
            .starts_with(&format!("[tcplab: {} line(s)", cut.lines)),
        "{}",
        marker.text
    );
    let kept: usize = out.lines.iter().map(|l| l.text.len()).sum();
    assert!(kept <= 2 * KEEP_BYTES + marker.text.len());
    assert!(out.stdout().take(KEEP_LINES).all(|l| l == "y"));
}

#[test]
fn an_endless_line_is_kept_bounded() {
    let Some(lab) = article_lab() else { return };
    let total = 10_000_000;
    let out = run_in(
        &lab,
        "client-1",
        sh(&format!("head -c {total} /dev/zero | tr '\\0' a")),
    );
    assert_eq!(out.lines.len(), 1, "one line, without a newline");
    let text = &out.lines[0].text;
    assert!(text.starts_with(&"a".repeat(MAX_LINE)));
    assert!(
        text.ends_with(&format!(
            " [tcplab: {} more byte(s) of this line cut]",
            total - MAX_LINE
        )),
        "{}",
        &text[MAX_LINE..]
    );
}

const FLOOD_VAR: &str = "TCPLAB_TEST_FLOOD";

/// Helper for the next test: runs `yes` for 2 s in a lab and prints this process's peak
/// memory.
#[test]
#[ignore = "helper: runs only as the child of a_flood_takes_little_memory"]
fn flood_then_print_peak_memory() {
    if std::env::var_os(FLOOD_VAR).is_none() {
        return;
    }
    let lab = article_lab().unwrap();
    let mut yes = Command::new("timeout");
    yes.args(["2", "yes"]);
    let out = run_in(&lab, "client-1", yes);
    let cut = out.cut.unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    println!(
        "PEAK {hwm} (lines cut: {}, bytes cut: {})",
        cut.lines, cut.bytes
    );
}

#[test]
fn a_flood_takes_little_memory() {
    if !privileged() {
        return;
    }
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "flood_then_print_peak_memory",
        "--ignored",
        "--nocapture",
    ])
    .env(FLOOD_VAR, "1");
    let out = Proc::spawn(cmd).unwrap().wait(WAIT).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", out.transcript());
    let line = out
        .stdout()
        .find(|l| l.starts_with("PEAK "))
        .unwrap_or_else(|| panic!("{}", out.transcript()));
    let kib: u64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    // Unbounded, 2 s of `yes` took gigabytes; bounded it is a few MiB over the test's own.
    assert!(kib < 100 * 1024, "{line}");
}

#[test]
fn stop_still_reaches_the_program_itself() {
    let Some(lab) = article_lab() else { return };
    let host = lab.host("server").unwrap();
    let polite = host
        .spawn(sh(
            "trap 'echo bye; exit 3' INT; echo ready; while :; do sleep 0.05; done",
        ))
        .unwrap();
    polite.wait_for_line("ready", WAIT).unwrap();
    let o = polite.stop(WAIT).unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", o.transcript());
    assert!(o.stdout().any(|l| l == "bye"));

    let stubborn = host
        .spawn(sh("trap '' INT; echo ready; exec sleep 30"))
        .unwrap();
    stubborn.wait_for_line("ready", WAIT).unwrap();
    let o = stubborn.stop(Duration::from_millis(200)).unwrap();
    assert_eq!(o.status.code(), None, "killed after the grace period");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(o.status.signal(), Some(9));

    // The default action of SIGINT, as without a lab: the program dies of it.
    let plain = host.spawn(sh("echo ready; exec sleep 30")).unwrap();
    plain.wait_for_line("ready", WAIT).unwrap();
    let o = plain.stop(WAIT).unwrap();
    assert_eq!(o.status.signal(), Some(2), "{}", o.transcript());
}

#[test]
fn programs_cannot_end_their_hosts_init() {
    let Some(lab) = article_lab() else { return };
    let host = lab.host("client-2").unwrap();
    let out = run_in(
        &lab,
        "client-2",
        sh("kill -INT 1; kill -TERM 1; kill -KILL 1; cat /proc/1/comm"),
    );
    assert_eq!(
        out.stdout().collect::<Vec<_>>(),
        ["tcplab-init"],
        "{}",
        out.transcript()
    );
    let inode = host.ns().pid_namespace_inode().unwrap().unwrap();
    let inits: Vec<i32> = processes_in_pid_namespace(inode)
        .into_iter()
        .filter(|&p| comm(p) == "tcplab-init")
        .collect();
    assert_eq!(inits.len(), 1);
    // Nor can a Ctrl+C meant for tcplab: SIGINT from outside is dropped as well.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(inits[0]),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    // A program starts only while the init lives: the kernel refuses forks into a PID
    // namespace whose init has ended.
    let out = run_in(&lab, "client-2", sh("cat /proc/1/comm"));
    assert_eq!(out.stdout().collect::<Vec<_>>(), ["tcplab-init"]);
    assert_eq!(comm(inits[0]), "tcplab-init");
}

#[test]
fn a_host_whose_init_was_killed_from_outside_says_so() {
    let Some(lab) = article_lab() else { return };
    let host = lab.host("client-3").unwrap();
    let sleeper = host.spawn(sh("echo ready; exec sleep 30")).unwrap();
    sleeper.wait_for_line("ready", WAIT).unwrap();
    let inode = host.ns().pid_namespace_inode().unwrap().unwrap();
    let init = processes_in_pid_namespace(inode)
        .into_iter()
        .find(|&p| comm(p) == "tcplab-init")
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The init's end takes the host's programs with it.
    let o = sleeper.wait(WAIT).unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(o.status.signal(), Some(9));
    assert!(wait_gone(init, WAIT));
    let err = match host.spawn(sh("true")) {
        Ok(_) => panic!("a program started in a host without init"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("init process has ended"), "{err}");
}

const DIAGNOSE_VAR: &str = "TCPLAB_TEST_DIAGNOSE";

/// Helper for the next test: prints what keeps programs here from having mounts of their own.
#[test]
#[ignore = "helper: runs only as the child of mounts_that_cannot_be_made_are_named"]
fn print_mount_diagnosis() {
    if std::env::var_os(DIAGNOSE_VAR).is_none() {
        return;
    }
    println!("DIAGNOSIS {:?}", tcplab::contain::diagnose_mounts());
}

#[test]
fn mounts_that_cannot_be_made_are_named() {
    if !privileged() {
        return;
    }
    assert_eq!(tcplab::contain::diagnose_mounts(), None, "root may mount");
    // Without CAP_SYS_ADMIN no mount namespace can be made: the diagnosis names the step.
    let mut cmd = Command::new("setpriv");
    cmd.args(["--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "print_mount_diagnosis",
            "--ignored",
            "--nocapture",
        ])
        .env(DIAGNOSE_VAR, "1");
    let out = Proc::spawn(cmd).unwrap().wait(WAIT).unwrap();
    let line = out
        .stdout()
        .find(|l| l.starts_with("DIAGNOSIS"))
        .unwrap_or_else(|| panic!("{}", out.transcript()));
    assert!(
        line.contains("unshare(CLONE_NEWNS) failed: Operation not permitted"),
        "{line}"
    );
    assert!(line.contains("--privileged"), "{line}");
}

#[test]
fn a_missing_program_is_still_reported_as_missing() {
    let Some(lab) = article_lab() else { return };
    let err = match lab
        .host("client-1")
        .unwrap()
        .spawn(Command::new("/nonexistent/program"))
    {
        Ok(_) => panic!("a missing program started"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        err,
        "cannot start `program`: No such file or directory (os error 2)"
    );
}
