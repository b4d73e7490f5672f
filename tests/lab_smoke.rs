mod common;
use common::*;

#[test]
fn smoke() {
    let Some(lab) = article_lab() else { return };
    let server = lab.host("server").unwrap();
    let srv = server.spawn(tcp_server("0.0.0.0", 1234, &[])).unwrap();
    srv.wait_for_line("Listening on", WAIT).unwrap();
    let out = lab
        .host("client-1")
        .unwrap()
        .run(
            tcp_client("10.0.0.58", 1234, &["-n", "Alice", "-c", "1"]),
            WAIT,
        )
        .unwrap();
    println!("{}", out.transcript());
    srv.wait_for_line("Message #1 from client Alice", WAIT)
        .unwrap();
    let mut ping = std::process::Command::new("ping");
    ping.args(["-c", "1", "-W", "2", "10.0.0.58"]);
    println!(
        "{}",
        lab.host("client-1")
            .unwrap()
            .run(ping, WAIT)
            .unwrap()
            .transcript()
    );
    let out = lab
        .host("client-1")
        .unwrap()
        .run(tcp_client("10.0.0.58", 1235, &["-t", "1", "-c", "1"]), WAIT)
        .unwrap();
    println!("{}", out.transcript());
}
