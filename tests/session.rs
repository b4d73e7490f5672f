//! The test API other crates use: programs of any kind in a recorded lab, then expectations
//! by name. Needs root, curl and python3 (`cargo xtask deps` installs them).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use common::{article_lab, tcp_server};
use tcplab::expect;
use tcplab::session::SessionError;

const LISTEN: Duration = Duration::from_secs(10);

fn http_server(port: u16) -> Vec<String> {
    [
        "python3",
        "-m",
        "http.server",
        &port.to_string(),
        "--bind",
        "0.0.0.0",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn curl_reaches_an_allowed_port_and_both_captures_show_the_exchange() {
    let Some(lab) = article_lab() else { return };
    let run = lab.record().unwrap();
    let _server = run.spawn("server", http_server(1234)).unwrap();
    run.wait_listening("server", 1234, LISTEN).unwrap();
    let curl = run
        .run(
            "client-1",
            ["curl", "-sS", "-o", "/dev/null", "http://10.0.0.58:1234/"],
        )
        .unwrap();
    run.check([
        expect::exit(&curl, 0),
        expect::handshake("client-1", "server:1234"),
        expect::handshake("server", "server:1234"),
        expect::sent("GET / HTTP/1.1", "server:1234", &["client-1", "server"]),
        expect::answered("HTTP/1.0 200 OK", "server:1234", &["client-1", "server"]),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn curl_times_out_on_a_dropped_port_and_the_server_sees_nothing() {
    let Some(lab) = article_lab() else { return };
    let run = lab.record().unwrap();
    let _server = run.spawn("server", http_server(1235)).unwrap();
    run.wait_listening("server", 1235, LISTEN).unwrap();
    let curl = run
        .run(
            "client-1",
            [
                "curl",
                "-sS",
                "--connect-timeout",
                "3",
                "http://10.0.0.58:1235/",
            ],
        )
        .unwrap();
    run.check([
        expect::exit(&curl, 28),
        expect::took(&curl, Duration::from_secs(3)),
        expect::syn_retransmissions("client-1", "server:1235"),
        expect::no_answer("client-1", "server:1235"),
        expect::no_flow("server", "server:1235"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_failed_check_keeps_the_pcaps_and_says_where() {
    let Some(lab) = article_lab() else { return };
    let run = lab.record().unwrap();
    let _server = run.spawn("server", http_server(1235)).unwrap();
    run.wait_listening("server", 1235, LISTEN).unwrap();
    let curl = run
        .run(
            "client-1",
            [
                "curl",
                "-sS",
                "--connect-timeout",
                "1",
                "http://10.0.0.58:1235/",
            ],
        )
        .unwrap();
    // Wrong on purpose: the security group drops port 1235.
    let exit = expect::exit(&curl, 0);
    let exit_line = line!() - 1;
    let error = run
        .check([exit, expect::handshake("client-1", "server:1235")])
        .expect_err("curl cannot reach a dropped port");
    let SessionError::Failed { report, artifacts } = error else {
        panic!("expected a failed check, got {error}");
    };
    // The failure points at the test's own line, and says what was expected and seen.
    assert!(
        report.contains(&format!(
            "tests/session.rs:{exit_line}: FAIL curl exited with 0: expected exit code 0, saw exit code 28"
        )),
        "{report}"
    );
    assert!(
        report.contains(": FAIL client-1: three-way handshake with 10.0.0.58:1235: expected a SYN, a SYN-ACK and an ACK, saw "),
        "{report}"
    );
    assert!(
        report.contains(&artifacts.display().to_string()),
        "{report}"
    );
    assert!(artifacts.join("client-1.pcap").is_file(), "{report}");
    std::fs::remove_dir_all(&artifacts).unwrap();
}

#[test]
fn waiting_for_a_listener_that_never_comes_fails_without_a_packet() {
    let Some(lab) = article_lab() else { return };
    let run = lab.record().unwrap();
    let error = run
        .wait_listening("server", 1234, Duration::from_millis(200))
        .expect_err("nothing listens");
    assert!(
        error
            .to_string()
            .starts_with("nothing listened on TCP port 1234 in host server"),
        "{error}"
    );
    run.check([
        expect::no_ip_packets("server"),
        expect::no_ip_packets("client-1"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_callers_own_code_runs_in_a_host_without_holding_its_worker() {
    let Some(lab) = article_lab() else { return };
    let server = lab.host("server").unwrap();
    let _srv = server.spawn(tcp_server("0.0.0.0", 1234, &[])).unwrap();
    _srv.wait_for_line("Listening on", LISTEN).unwrap();
    let client = lab.host("client-1").unwrap();
    // The closure waits for a word from this thread; meanwhile the host's worker answers.
    let (go, wait) = mpsc::channel::<()>();
    let pending = client
        .spawn_fn(move || {
            wait.recv().unwrap();
            let mut stream = TcpStream::connect("10.0.0.58:1234")?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            // The sandbox's PDU, as tcp-client sends it.
            stream.write_all(
                &tcplab::wire::Message::text("hello from Rust")
                    .encode()
                    .unwrap(),
            )?;
            let mut answer = [0u8; 64];
            let n = stream.read(&mut answer)?;
            Ok::<_, std::io::Error>(answer[..n].to_vec())
        })
        .unwrap();
    assert_eq!(
        client.sysctl("net.ipv4.tcp_syn_retries").unwrap().trim(),
        "6"
    );
    go.send(()).unwrap();
    let answer = pending.join().unwrap().unwrap();
    assert!(!answer.is_empty(), "the server answered");
    let blocked = client
        .run_fn(|| {
            TcpStream::connect_timeout(&"10.0.0.58:1235".parse().unwrap(), Duration::from_secs(1))
                .map_err(|e| e.kind())
        })
        .unwrap();
    assert_eq!(blocked.err(), Some(std::io::ErrorKind::TimedOut));
}

#[test]
fn hosts_have_names_inside_the_lab_only() {
    let Some(lab) = article_lab() else { return };
    let run = lab.record().unwrap();
    let _server = run.spawn("server", http_server(1234)).unwrap();
    run.wait_listening("server", 1234, LISTEN).unwrap();
    let curl = run
        .run(
            "client-1",
            ["curl", "-sS", "-o", "/dev/null", "http://server:1234/"],
        )
        .unwrap();
    let hosts = run
        .run("client-2", ["getent", "hosts", "client-1"])
        .unwrap();
    run.check([
        expect::exit(&curl, 0),
        expect::handshake("server", "server:1234"),
        expect::output(&hosts, "10.0.0.208"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let machine = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(
        !machine.contains("client-1"),
        "the machine's /etc/hosts is untouched"
    );
}

#[test]
fn udp_datagrams_to_a_closed_port_are_checked_by_name_and_a_failure_names_its_line() {
    let Some(lab) = article_lab() else { return };
    let run = lab.record().unwrap();
    // Nothing listens on UDP 1234, which the groups allow: the server's kernel answers with
    // ICMP port unreachable, which a connected socket reports as refused.
    let sender = run
        .run(
            "client-1",
            [
                "python3",
                "-c",
                "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.connect(('10.0.0.58', 1234))\ns.settimeout(5)\ns.send(b'hello udp')\ntry:\n    s.recv(100)\nexcept ConnectionRefusedError:\n    print('refused')",
            ],
        )
        .unwrap();
    // Wrong on purpose: the datagram did reach the server.
    let none = expect::no_datagrams("server", "server:1234");
    let none_line = line!() - 1;
    let error = run
        .check([
            expect::exit(&sender, 0),
            expect::output(&sender, "refused"),
            expect::datagrams("client-1", "server:1234")
                .count(1)
                .containing("hello udp"),
            expect::datagrams("server", "server:1234").containing("hello udp"),
            expect::datagrams_from("server", "server:1234").count(0),
            expect::no_datagrams("server", "server:1235"),
            none,
        ])
        .expect_err("the datagram reached the server");
    let SessionError::Failed { report, artifacts } = error else {
        panic!("expected a failed check, got {error}");
    };
    // That one failed, with its line and in words; every other held.
    assert!(
        report.contains(&format!(
            "tests/session.rs:{none_line}: FAIL server: no UDP datagram to or from 10.0.0.58:1234: expected no UDP datagram to or from 10.0.0.58:1234, saw 1 datagram to it, ICMP destination unreachable (port unreachable)"
        )),
        "{report}"
    );
    assert_eq!(report.matches("FAIL").count(), 1, "{report}");
    assert!(
        report.contains("ok   client-1: 1 UDP datagram containing \"hello udp\" to 10.0.0.58:1234"),
        "{report}"
    );
    std::fs::remove_dir_all(&artifacts).unwrap();
}
