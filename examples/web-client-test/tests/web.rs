//! curl, python3's http.server and this crate's own client in a lab: what a user's tests of
//! their network code look like with tcplab. Run as root (`sudo -E cargo test`).

use std::time::Duration;

use tcplab::expect;
use tcplab::lab::Lab;
use tcplab::session::privileged;

const TOPOLOGY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/web.toml");
const LISTEN: Duration = Duration::from_secs(10);

fn http_server(port: u16) -> [String; 6] {
    [
        "python3",
        "-m",
        "http.server",
        &port.to_string(),
        "--bind",
        "0.0.0.0",
    ]
    .map(String::from)
}

#[test]
fn allowed_port_carries_the_request_and_the_answer() {
    if !privileged() {
        return;
    }
    let lab = Lab::from_file(TOPOLOGY).unwrap();
    let run = lab.record().unwrap();
    let _server = run.spawn("server", http_server(8080)).unwrap();
    run.wait_listening("server", 8080, LISTEN).unwrap();
    let curl = run
        .run(
            "client",
            ["curl", "-sS", "-o", "/dev/null", "http://10.0.0.10:8080/"],
        )
        .unwrap();
    let fetch = run
        .run(
            "client",
            [env!("CARGO_BIN_EXE_fetch"), "10.0.0.10:8080", "3"],
        )
        .unwrap();
    run.check([
        expect::exit(&curl, 0),
        expect::exit(&fetch, 0),
        expect::output(&fetch, "HTTP/1.0 200 OK"),
        expect::sent("User-Agent: fetch", "server:8080", &["client", "server"]),
        expect::answered("HTTP/1.0 200 OK", "server:8080", &["client", "server"]),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_port_the_security_group_drops_times_out_and_the_server_sees_nothing() {
    if !privileged() {
        return;
    }
    let lab = Lab::from_file(TOPOLOGY).unwrap();
    let run = lab.record().unwrap();
    let _server = run.spawn("server", http_server(8082)).unwrap();
    run.wait_listening("server", 8082, LISTEN).unwrap();
    let curl = run
        .run(
            "client",
            [
                "curl",
                "-sS",
                "--connect-timeout",
                "3",
                "http://10.0.0.10:8082/",
            ],
        )
        .unwrap();
    run.check([
        expect::exit(&curl, 28),
        expect::took(&curl, Duration::from_secs(3)),
        expect::syn_retransmissions("client", "server:8082"),
        expect::no_flow("server", "server:8082"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_reset_from_the_fabric_is_connection_refused() {
    if !privileged() {
        return;
    }
    let lab = Lab::from_file(TOPOLOGY).unwrap();
    let run = lab.record().unwrap();
    let curl = run
        .run(
            "client",
            [
                "curl",
                "-sS",
                "--connect-timeout",
                "3",
                "http://10.0.0.10:8081/",
            ],
        )
        .unwrap();
    run.check([
        expect::exit(&curl, 7),
        expect::reset_by("client", "server:8081", expect::Side::Server),
        expect::no_flow("server", "server:8081"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn our_own_client_code_runs_in_the_client_host() {
    if !privileged() {
        return;
    }
    let lab = Lab::from_file(TOPOLOGY).unwrap();
    let client = lab.host("client").unwrap();
    let timeout = Duration::from_secs(1);
    let dropped = client
        .run_fn(|| web_client_test::get("10.0.0.10:8082".parse().unwrap(), timeout))
        .unwrap();
    assert_eq!(dropped, Err(web_client_test::FetchError::ConnectTimeout));
    let reset = client
        .run_fn(|| web_client_test::get("10.0.0.10:8081".parse().unwrap(), timeout))
        .unwrap();
    assert_eq!(reset, Err(web_client_test::FetchError::Refused));
}
