//! The lab on the article's topology, with tcplab's own tcp-server and tcp-client and real
//! tools (ping). Needs root: see tests/common for how it fails or skips without it.

mod common;

use std::time::Duration;

use common::hygiene::{referenced_net_namespaces, root_namespace_state, wait_gone};
use common::*;
use rstest::{fixture, rstest};
use tcplab::ErrorClass;
use tcplab::lab::Lab;
use tcplab::spec::{Action, FirewallRule, Protocol, Topology};

#[fixture]
fn article() -> Option<Lab> {
    article_lab()
}

fn with_firewall(rule: FirewallRule) -> Topology {
    article_topology().firewall(rule)
}

#[rstest]
fn allowed_port_carries_messages(article: Option<Lab>) {
    let Some(lab) = article else { return };
    let server = start_server(&lab, "server", 1234);
    let out = run_in(
        &lab,
        "client-1",
        tcp_client("10.0.0.58", 1234, &["-n", "Alice", "-c", "2"]),
    );
    assert_eq!(out.class(), Some(ErrorClass::Ok), "{}", out.transcript());
    assert!(
        out.stdout()
            .any(|l| l.starts_with("Connected from 10.0.0.208:")),
        "{}",
        out.transcript()
    );
    server
        .wait_for_line("Response to message: Message #1 from client Alice", WAIT)
        .unwrap();
    server
        .wait_for_line("Client connection accepted from 10.0.0.208:", WAIT)
        .unwrap();
}

#[rstest]
fn blocked_port_times_out_while_ping_works(article: Option<Lab>) {
    let Some(lab) = article else { return };
    // A listener on 1235 makes sure it is the security group, not a closed port, that fails.
    let _server = start_server(&lab, "server", 1235);
    let out = run_in(
        &lab,
        "client-1",
        tcp_client("10.0.0.58", 1235, &["-t", "2", "-c", "1"]),
    );
    assert_eq!(
        out.class(),
        Some(ErrorClass::ConnectTimeout),
        "{}",
        out.transcript()
    );
    let err: Vec<&str> = out.stderr().collect();
    assert_eq!(
        err,
        ["error: connect-timeout: no answer from 10.0.0.58:1235 within 2 s (no SYN-ACK, no RST)"]
    );
    assert!(
        out.duration >= Duration::from_secs(2) && out.duration < Duration::from_secs(10),
        "the application's 2 s timeout decides, took {:?}",
        out.duration
    );
    let ping_out = run_in(&lab, "client-1", ping("10.0.0.58"));
    assert_eq!(ping_out.status.code(), Some(0), "{}", ping_out.transcript());
    let back = run_in(&lab, "server", ping("10.0.0.208"));
    assert_eq!(
        back.status.code(),
        Some(0),
        "ping works both ways:\n{}",
        back.transcript()
    );
}

#[rstest]
fn kernel_giving_up_first_is_a_connect_timeout_too(article: Option<Lab>) {
    let Some(lab) = article else { return };
    let client = lab.host("client-1").unwrap();
    // Two SYNs, then the kernel gives up at 3 s: well before the application's 20 s.
    client.set_sysctl("net.ipv4.tcp_syn_retries", "1").unwrap();
    if client.sysctl("net.ipv4.tcp_syn_linear_timeouts").is_ok() {
        client
            .set_sysctl("net.ipv4.tcp_syn_linear_timeouts", "0")
            .unwrap();
    }
    let out = run_in(
        &lab,
        "client-1",
        tcp_client("10.0.0.58", 1235, &["-t", "20", "-c", "1"]),
    );
    assert_eq!(
        out.class(),
        Some(ErrorClass::ConnectTimeout),
        "{}",
        out.transcript()
    );
    let err = out.stderr().next().unwrap();
    assert!(err.contains("the kernel gave up after"), "{err}");
    assert!(
        out.duration < Duration::from_secs(15),
        "took {:?}",
        out.duration
    );
}

#[rstest]
fn allowed_port_without_listener_is_refused(article: Option<Lab>) {
    let Some(lab) = article else { return };
    let out = run_in(
        &lab,
        "client-1",
        tcp_client("10.0.0.58", 1234, &["-c", "1"]),
    );
    assert_eq!(
        out.class(),
        Some(ErrorClass::ConnectionRefused),
        "{}",
        out.transcript()
    );
}

#[rstest]
#[case::tcp_reset(Action::RejectTcpReset, ErrorClass::ConnectionRefused)]
#[case::icmp_host_unreachable(Action::RejectHostUnreachable, ErrorClass::HostUnreachable)]
#[case::icmp_admin_prohibited(Action::RejectAdminProhibited, ErrorClass::HostUnreachable)]
#[case::icmp_port_unreachable(Action::RejectPortUnreachable, ErrorClass::ConnectionRefused)]
#[case::drop(Action::Drop, ErrorClass::ConnectTimeout)]
fn fabric_firewall_answers_for_the_server(#[case] action: Action, #[case] class: ErrorClass) {
    let rule = FirewallRule::new("fabric", action, Protocol::Tcp)
        .port(1234)
        .destination("server");
    let Some(lab) = lab_of(&with_firewall(rule)) else {
        return;
    };
    // The server listens on the allowed port: without the rule this would connect.
    let server = start_server(&lab, "server", 1234);
    let out = run_in(
        &lab,
        "client-1",
        tcp_client("10.0.0.58", 1234, &["-t", "2", "-c", "1"]),
    );
    assert_eq!(out.class(), Some(class), "{}", out.transcript());
    assert!(
        !server.lines().iter().any(|l| l.text.contains("accepted")),
        "the server saw a connection"
    );
    // The rule names the server's port 1234 only: other hosts' traffic and ping still pass.
    let ping_out = run_in(&lab, "client-1", ping("10.0.0.58"));
    assert_eq!(ping_out.status.code(), Some(0), "{}", ping_out.transcript());
}

#[rstest]
#[case::drop(Action::Drop, ErrorClass::ConnectTimeout)]
#[case::tcp_reset(Action::RejectTcpReset, ErrorClass::ConnectionRefused)]
fn host_firewall_on_the_server(#[case] action: Action, #[case] class: ErrorClass) {
    let rule = FirewallRule::new("server", action, Protocol::Tcp).port(1234);
    let Some(lab) = lab_of(&with_firewall(rule)) else {
        return;
    };
    let _server = start_server(&lab, "server", 1234);
    let out = run_in(
        &lab,
        "client-1",
        tcp_client("10.0.0.58", 1234, &["-t", "2", "-c", "1"]),
    );
    assert_eq!(out.class(), Some(class), "{}", out.transcript());
}

#[test]
fn two_identical_labs_do_not_see_each_other() {
    let (Some(a), Some(b)) = (article_lab(), article_lab()) else {
        return;
    };
    let _server_a = start_server(&a, "server", 1234);
    let in_b = run_in(&b, "client-1", tcp_client("10.0.0.58", 1234, &["-c", "1"]));
    assert_eq!(
        in_b.class(),
        Some(ErrorClass::ConnectionRefused),
        "lab b reached lab a's server:\n{}",
        in_b.transcript()
    );
    let in_a = run_in(&a, "client-1", tcp_client("10.0.0.58", 1234, &["-c", "1"]));
    assert_eq!(in_a.class(), Some(ErrorClass::Ok), "{}", in_a.transcript());
    assert_ne!(a.fabric().inode(), b.fabric().inode());
}

#[test]
fn host_names_and_addresses() {
    let Some(lab) = article_lab() else { return };
    let names: Vec<_> = lab
        .hosts()
        .iter()
        .map(|h| (h.name(), h.address().to_string()))
        .collect();
    assert_eq!(
        names,
        [
            ("server", "10.0.0.58".to_string()),
            ("client-1", "10.0.0.208".to_string()),
            ("client-2", "10.0.0.4".to_string()),
            ("client-3", "10.0.0.5".to_string()),
        ]
    );
    let e = lab.host("client-9").err().unwrap().to_string();
    assert!(
        e.contains("no host named `client-9`") && e.contains("client-3"),
        "{e}"
    );
    let ip = run_in(&lab, "client-2", {
        let mut c = std::process::Command::new("ip");
        c.args(["-br", "-4", "addr", "show", "eth0"]);
        c
    });
    assert!(
        ip.stdout().any(|l| l.contains("10.0.0.4/24")),
        "{}",
        ip.transcript()
    );
    let v6 = lab
        .host("client-2")
        .unwrap()
        .sysctl("net.ipv6.conf.eth0.disable_ipv6")
        .unwrap();
    assert_eq!(v6, "1", "IPv6 is off on the lab's interfaces");
}

fn lab_inodes(lab: &Lab) -> Vec<u64> {
    std::iter::once(lab.fabric().inode())
        .chain(lab.hosts().iter().map(|h| h.ns().inode()))
        .collect()
}

fn assert_gone(inodes: &[u64]) {
    let live = referenced_net_namespaces();
    let left: Vec<_> = inodes.iter().filter(|i| live.contains(i)).collect();
    assert!(left.is_empty(), "namespaces still referenced: {left:?}");
}

#[test]
fn dropped_lab_leaves_nothing() {
    let before = root_namespace_state();
    let Some(lab) = article_lab() else { return };
    let inodes = lab_inodes(&lab);
    let live = referenced_net_namespaces();
    assert!(
        inodes.iter().all(|i| live.contains(i)),
        "the scan sees a live lab"
    );
    let server = start_server(&lab, "server", 1234);
    let pid = server.pid() as i32;
    drop(lab);
    // The server's handle outlived the lab: the lab's end killed it all the same.
    assert!(wait_gone(pid, WAIT), "server {pid} outlived its lab");
    drop(server);
    assert_gone(&inodes);
    assert_eq!(root_namespace_state(), before);
}

#[test]
fn lab_of_a_panicking_test_leaves_nothing() {
    if !privileged() {
        return;
    }
    let inodes = std::sync::Mutex::new(Vec::new());
    let result = std::panic::catch_unwind(|| {
        let lab = article_lab().unwrap();
        *inodes.lock().unwrap() = lab_inodes(&lab);
        let _server = start_server(&lab, "server", 1234);
        panic!("a test failing mid-run");
    });
    assert!(result.is_err());
    assert_gone(&inodes.lock().unwrap());
}

const HOLD_VAR: &str = "TCPLAB_TEST_HOLD_LAB";

/// Helper for the next test, run in a child process: holds a lab with programs running until
/// it is killed. Ignored when run directly.
#[test]
#[ignore = "helper: runs only as the child of killed_process_leaves_nothing"]
fn hold_a_lab_until_killed() {
    if std::env::var_os(HOLD_VAR).is_none() {
        return;
    }
    let lab = article_lab().unwrap();
    let server = start_server(&lab, "server", 1234);
    let client = lab
        .host("client-1")
        .unwrap()
        .spawn(tcp_client(
            "10.0.0.58",
            1234,
            &["-c", "100000", "--pause-sec", "0.05"],
        ))
        .unwrap();
    server.wait_for_line("Worker-1: Response", WAIT).unwrap();
    let inodes: Vec<String> = lab_inodes(&lab).iter().map(u64::to_string).collect();
    println!(
        "HOLDING inodes={} pids={},{}",
        inodes.join(","),
        server.pid(),
        client.pid()
    );
    loop {
        std::thread::park();
    }
}

#[test]
fn killed_process_leaves_nothing() {
    if !privileged() {
        return;
    }
    let before = root_namespace_state();
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "hold_a_lab_until_killed",
        "--ignored",
        "--nocapture",
    ])
    .env(HOLD_VAR, "1");
    let holder = tcplab::proc::Proc::spawn(cmd).unwrap();
    let line = holder.wait_for_line("HOLDING", WAIT).unwrap().text;
    let field = |name: &str| -> Vec<u64> {
        let value = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap();
        value.split(',').map(|v| v.parse().unwrap()).collect()
    };
    let (inodes, pids) = (field("inodes"), field("pids"));
    assert_eq!(inodes.len(), 5);
    assert!(
        inodes
            .iter()
            .all(|i| referenced_net_namespaces().contains(i))
    );

    let outcome = holder.kill().unwrap();
    assert_eq!(outcome.status.code(), None, "killed by SIGKILL");
    for pid in pids {
        assert!(
            wait_gone(pid as i32, WAIT),
            "program {pid} survived its lab's process"
        );
    }
    assert_gone(&inodes);
    assert_eq!(root_namespace_state(), before);
}

#[rstest]
fn address_without_a_route_is_network_unreachable(article: Option<Lab>) {
    let Some(lab) = article else { return };
    // Hosts have only their subnet's route: nothing is sent, the kernel refuses at once.
    let out = run_in(
        &lab,
        "client-1",
        tcp_client("192.0.2.1", 1234, &["-c", "1"]),
    );
    assert_eq!(
        out.class(),
        Some(ErrorClass::NetworkUnreachable),
        "{}",
        out.transcript()
    );
    assert_eq!(out.status.code(), Some(13));
    let err: Vec<&str> = out.stderr().collect();
    assert_eq!(err.len(), 1, "{}", out.transcript());
    assert!(
        err[0].starts_with("error: network-unreachable: network of 192.0.2.1 is unreachable"),
        "{}",
        err[0]
    );
}
