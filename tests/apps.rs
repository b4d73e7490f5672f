//! tcp-server and tcp-client on loopback: no privileges needed. Each test binds its own
//! address in 127.0.0.0/8, so tests running in parallel never meet.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use tcplab::ErrorClass;
use tcplab::proc::{Outcome, Proc};

const WAIT: Duration = Duration::from_secs(20);
const PORT: &str = "4321";

fn unique_loopback() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    format!("127.{}.{}.{}", (pid >> 8) & 0xff, pid & 0xff, n)
}

fn server(addr: &str, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcp-server"));
    cmd.args([addr, PORT]).args(extra);
    let p = Proc::spawn(cmd).unwrap();
    p.wait_for_line("Listening on", WAIT).unwrap();
    p
}

fn client(addr: &str, extra: &[&str]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcp-client"));
    cmd.args([addr, PORT, "--pause-sec", "0"]).args(extra);
    Proc::spawn(cmd).unwrap().wait(WAIT).unwrap()
}

fn run(bin: &str, args: &[&str]) -> Outcome {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    Proc::spawn(cmd).unwrap().wait(WAIT).unwrap()
}

fn single_error_line(o: &Outcome) -> String {
    let errs: Vec<&str> = o.stderr().collect();
    assert_eq!(
        errs.len(),
        1,
        "expected one line on stderr:\n{}",
        o.transcript()
    );
    errs[0].to_string()
}

#[test]
fn two_clients_at_once_each_get_their_own_answers() {
    let addr = unique_loopback();
    let srv = server(&addr, &[]);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| client(&addr, &["-n", "Alice", "-c", "3"]));
        let b = s.spawn(|| client(&addr, &["-n", "Bob", "-c", "3"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    for (o, name) in [(&a, "Alice"), (&b, "Bob")] {
        assert_eq!(o.class(), Some(ErrorClass::Ok), "{}", o.transcript());
        for i in 1..=3 {
            let want = format!(
                "Message from server received: 'Response to message: Message #{i} from client {name}'"
            );
            assert!(o.stdout().any(|l| l == want), "{want}\n{}", o.transcript());
        }
        assert!(
            !o.stdout()
                .any(|l| l.contains(if name == "Alice" { "Bob" } else { "Alice" })),
            "{} saw the other client's answers:\n{}",
            name,
            o.transcript()
        );
    }
    srv.wait_for_line("Response to message: Message #3 from client Alice", WAIT)
        .unwrap();
    srv.wait_for_line("Response to message: Message #3 from client Bob", WAIT)
        .unwrap();
    srv.wait_for_line("Worker-2: EOF - client has disconnected", WAIT)
        .unwrap();
    assert!(
        srv.lines().iter().any(|l| l.text.starts_with("Worker-1: ")),
        "server lines carry their worker"
    );
}

#[test]
fn closed_port_is_connection_refused() {
    let addr = unique_loopback();
    let o = client(&addr, &["-c", "1"]);
    assert_eq!(
        o.class(),
        Some(ErrorClass::ConnectionRefused),
        "{}",
        o.transcript()
    );
    assert_eq!(o.status.code(), Some(11));
    let line = single_error_line(&o);
    assert!(line.starts_with("error: connection-refused: "), "{line}");
    assert!(line.contains(&format!("{addr}:{PORT}")), "{line}");
}

#[test]
fn slow_answer_is_read_timeout() {
    let addr = unique_loopback();
    let _srv = server(&addr, &["-d", "3"]);
    let o = client(&addr, &["-c", "1", "-r", "0.3"]);
    assert_eq!(
        o.class(),
        Some(ErrorClass::ReadTimeout),
        "{}",
        o.transcript()
    );
    assert_eq!(o.status.code(), Some(15));
    let line = single_error_line(&o);
    assert!(
        line.starts_with("error: read-timeout: no answer from"),
        "{line}"
    );
    assert!(line.contains("within 0.3 s after message #1"), "{line}");
    assert!(
        o.stdout()
            .any(|l| l.starts_with("Message sent to server: 'Message #1 from client"))
    );
}

#[test]
fn response_delay_within_read_timeout_is_fine() {
    let addr = unique_loopback();
    let _srv = server(&addr, &["-d", "0.2"]);
    let o = client(&addr, &["-c", "2", "-r", "5", "-n", "Carol"]);
    assert_eq!(o.class(), Some(ErrorClass::Ok), "{}", o.transcript());
}

#[test]
fn second_server_on_same_port_is_address_in_use() {
    let addr = unique_loopback();
    let _first = server(&addr, &[]);
    let o = run(env!("CARGO_BIN_EXE_tcp-server"), &[&addr, PORT]);
    assert_eq!(
        o.class(),
        Some(ErrorClass::AddressInUse),
        "{}",
        o.transcript()
    );
    assert_eq!(o.status.code(), Some(16));
    let line = single_error_line(&o);
    assert!(
        line.starts_with("error: address-in-use: cannot bind"),
        "{line}"
    );
    assert!(
        line.contains("--reuse-port"),
        "the hint names the option: {line}"
    );
}

#[test]
fn reuse_port_on_both_servers_shares_the_port() {
    let addr = unique_loopback();
    let first = server(&addr, &["-p"]);
    let second = server(&addr, &["-p"]);
    assert!(
        first
            .lines()
            .iter()
            .any(|l| l.text.contains("SO_REUSEPORT=1"))
    );
    assert!(
        second
            .lines()
            .iter()
            .any(|l| l.text.contains("SO_REUSEPORT=1"))
    );
    let o = client(&addr, &["-c", "1", "-n", "Dave"]);
    assert_eq!(o.class(), Some(ErrorClass::Ok), "{}", o.transcript());
}

#[test]
fn reuse_port_on_one_server_only_is_still_in_use() {
    let addr = unique_loopback();
    let _first = server(&addr, &[]);
    let o = run(env!("CARGO_BIN_EXE_tcp-server"), &[&addr, PORT, "-p"]);
    assert_eq!(
        o.class(),
        Some(ErrorClass::AddressInUse),
        "{}",
        o.transcript()
    );
}

#[test]
fn ctrl_c_stops_the_server_cleanly() {
    let addr = unique_loopback();
    let srv = server(&addr, &[]);
    srv.signal(Signal::SIGINT).unwrap();
    let o = srv.wait(WAIT).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", o.transcript());
    assert!(o.stdout().any(|l| l == "Interrupted, server stopped"));
    assert_eq!(o.stderr().count(), 0, "{}", o.transcript());
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let addr = unique_loopback();
    let srv = server(&addr, &[]);
    srv.signal(Signal::SIGTERM).unwrap();
    let o = srv.wait(WAIT).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", o.transcript());
}

#[test]
fn default_client_name_is_a_uuid() {
    let addr = unique_loopback();
    let _srv = server(&addr, &[]);
    let o = client(&addr, &["-c", "1"]);
    let sent = o
        .stdout()
        .find_map(|l| l.strip_prefix("Message sent to server: 'Message #1 from client "))
        .unwrap_or_else(|| panic!("no message line:\n{}", o.transcript()))
        .trim_end_matches('\'')
        .to_string();
    assert!(
        uuid::Uuid::parse_str(&sent).is_ok(),
        "`{sent}` is not a UUID"
    );
}

/// Runs a server with `env`, one client against it, and returns the server's raw stdout.
fn raw_server_output(env: &[(&str, &str)]) -> String {
    use std::io::{BufRead, BufReader, Read};
    let addr = unique_loopback();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcp-server"))
        .args([&addr, PORT])
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut raw = String::new();
    while !raw.contains("Listening on") {
        assert_ne!(out.read_line(&mut raw).unwrap(), 0, "server ended: {raw}");
    }
    client(&addr, &["-c", "1", "-n", "Eve"]);
    while !raw.contains("EOF - client has disconnected") {
        assert_ne!(out.read_line(&mut raw).unwrap(), 0, "server ended: {raw}");
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGINT,
    )
    .unwrap();
    out.read_to_string(&mut raw).unwrap();
    child.wait().unwrap();
    raw
}

#[test]
fn worker_lines_are_coloured_only_for_terminals() {
    let plain = raw_server_output(&[]);
    assert!(
        plain.contains("\nWorker-1: Response to message: Message #1 from client Eve\n"),
        "{plain:?}"
    );
    assert!(
        !plain.contains('\u{1b}'),
        "colour escapes in piped output: {plain:?}"
    );
    let forced = raw_server_output(&[("CLICOLOR_FORCE", "1")]);
    assert!(
        forced.contains("\u{1b}[31mWorker-1: Response to message: Message #1 from client Eve"),
        "worker 1 is red when colour is forced: {forced:?}"
    );
    let no_color = raw_server_output(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!no_color.contains('\u{1b}'), "NO_COLOR wins: {no_color:?}");
}

#[test]
fn bad_arguments_are_usage_errors() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            env!("CARGO_BIN_EXE_tcp-server"),
            &["127.0.0.1", "80"],
            "outside 1024..65535",
        ),
        (
            env!("CARGO_BIN_EXE_tcp-server"),
            &["127.0.0.1", "70000"],
            "outside 1024..65535",
        ),
        (env!("CARGO_BIN_EXE_tcp-server"), &["127.0.0.1"], "required"),
        (
            env!("CARGO_BIN_EXE_tcp-server"),
            &["127.0.0.1", "1234", "-d", "soon"],
            "not a number",
        ),
        (
            env!("CARGO_BIN_EXE_tcp-client"),
            &["127.0.0.1", "http"],
            "not a port number",
        ),
        (
            env!("CARGO_BIN_EXE_tcp-client"),
            &["127.0.0.1", "1234", "-t", "0"],
            "more than 0",
        ),
        (
            env!("CARGO_BIN_EXE_tcp-client"),
            &["127.0.0.1", "1234", "-c", "-1"],
            "unexpected argument",
        ),
        (
            env!("CARGO_BIN_EXE_tcp-client"),
            &["127.0.0.1", "1234", "--pause-sec", "9..1"],
            "minimum above",
        ),
        (
            env!("CARGO_BIN_EXE_tcp-client"),
            &["127.0.0.1", "1234", "--bogus"],
            "unexpected argument",
        ),
    ];
    for (bin, args, needle) in cases {
        let o = run(bin, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}:\n{}", o.transcript());
        let first = o.stderr().next().unwrap_or_default();
        assert!(first.starts_with("error: "), "{args:?}: {first}");
        assert!(
            first.contains(needle),
            "{args:?}: `{first}` lacks `{needle}`"
        );
        assert!(
            !o.stderr().any(|l| l.contains("panicked")),
            "{}",
            o.transcript()
        );
    }
}

#[test]
fn unresolvable_host_is_one_clear_line() {
    let o = run(
        env!("CARGO_BIN_EXE_tcp-client"),
        &["no-such-host.invalid", "1234", "-c", "1"],
    );
    assert_eq!(o.class(), Some(ErrorClass::Other), "{}", o.transcript());
    let line = single_error_line(&o);
    assert!(
        line.starts_with("error: other: cannot resolve `no-such-host.invalid`"),
        "{line}"
    );
}

#[test]
fn help_has_examples() {
    for bin in [
        env!("CARGO_BIN_EXE_tcp-server"),
        env!("CARGO_BIN_EXE_tcp-client"),
    ] {
        let o = run(bin, &["--help"]);
        assert_eq!(o.status.code(), Some(0));
        assert!(
            o.stdout().any(|l| l.starts_with("Examples:")),
            "{}",
            o.transcript()
        );
    }
}

/// Runs `bin` with its standard output a pipe nobody reads any more.
fn with_closed_stdout(bin: &str, args: &[&str]) -> std::process::Output {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let child = Command::new(bin)
        .args(args)
        .stdout(std::process::Stdio::from(write))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    // Each app's first line is printed before it waits for anything: it must end at once.
    match rx.recv_timeout(WAIT) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            panic!("{bin} did not end on a closed stdout");
        }
    }
}

#[test]
fn a_closed_stdout_ends_every_app_quietly() {
    let addr = unique_loopback();
    let cases: &[(&str, &[&str])] = &[
        (env!("CARGO_BIN_EXE_tcp-server"), &[&addr, PORT]),
        (env!("CARGO_BIN_EXE_tcp-client"), &[&addr, PORT]),
        (env!("CARGO_BIN_EXE_tcp-hesitant-consumer"), &[&addr, PORT]),
        (env!("CARGO_BIN_EXE_tcp-eager-producer"), &[&addr, PORT]),
        (env!("CARGO_BIN_EXE_udp-server"), &[&addr, PORT]),
        (env!("CARGO_BIN_EXE_udp-client"), &[&addr, PORT]),
    ];
    for (bin, args) in cases {
        let out = with_closed_stdout(bin, args);
        assert_eq!(
            out.status.code(),
            Some(tcplab::apps::CLOSED_STDOUT_EXIT_CODE),
            "{bin}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{bin}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
