//! tcplab's apps as drop-ins for the sandbox's, in the article's lab: the UDP apps (answers,
//! the sandbox's lines, read timeout, a closed port on a connected and an unconnected socket),
//! the consumer's listener that stays open, the producer's messages and any port for clients;
//! and each app against a small Python peer written from the sandbox's description
//! (../shared/reference/SANDBOX-APPS.md). Needs root and python3.

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::Command;

use common::*;
use tcplab::ErrorClass;
use tcplab::lab::Lab;
use tcplab::proc::{Outcome, Proc};
use tcplab::wire::{HEADER_LEN, MessageType};

fn udp_server(port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_udp-server"));
    cmd.args(["0.0.0.0", &port.to_string()]);
    cmd
}

fn udp_client(port: u16, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_udp-client"));
    cmd.args(["10.0.0.58", &port.to_string(), "--pause-sec", "0"])
        .args(extra);
    cmd
}

fn start(lab: &Lab, host: &str, cmd: Command, ready: &str) -> Proc {
    let p = lab.host(host).unwrap().spawn(cmd).unwrap();
    if let Err(e) = p.wait_for_line(ready, WAIT) {
        let lines: Vec<String> = p.lines().into_iter().map(|l| l.text).collect();
        panic!("{e}\n{}", lines.join("\n"));
    }
    p
}

fn only_error_line(o: &Outcome) -> String {
    let errs: Vec<&str> = o.stderr().collect();
    assert_eq!(errs.len(), 1, "one line on stderr:\n{}", o.transcript());
    errs[0].to_string()
}

#[test]
fn udp_client_and_server_exchange_with_the_sandboxs_lines() {
    let Some(lab) = article_lab() else { return };
    let server = start(
        &lab,
        "server",
        udp_server(1234),
        "Listening on 0.0.0.0:1234",
    );
    let out = run_in(
        &lab,
        "client-1",
        udp_client(1234, &["-n", "Alice", "-c", "2"]),
    );
    assert_eq!(out.class(), Some(ErrorClass::Ok), "{}", out.transcript());
    let lines: Vec<&str> = out.stdout().collect();
    assert!(
        lines[0].starts_with("UDP client (PID = ")
            && lines[0].ends_with(") going to send messages to 10.0.0.58:1234"),
        "{}",
        out.transcript()
    );
    // The sandbox sends text as a JSON string and prints what comes back as it is.
    assert_eq!(
        lines[1..],
        [
            "Message sent to server: 'Message #1 from client Alice'",
            r#"Message from server received: '"Response to message: \"Message #1 from client Alice\""'"#,
            "Message sent to server: 'Message #2 from client Alice'",
            r#"Message from server received: '"Response to message: \"Message #2 from client Alice\""'"#,
        ],
        "{}",
        out.transcript()
    );
    let answered = server
        .wait_for_line(
            "Response to message: \"Message #2 from client Alice\" send to ",
            WAIT,
        )
        .unwrap();
    assert!(
        answered.text.contains(" send to 10.0.0.208:"),
        "{}",
        answered.text
    );
    let server = server.stop(WAIT).unwrap();
    assert_eq!(server.status.code(), Some(0), "{}", server.transcript());
    assert!(
        server
            .stdout()
            .next()
            .is_some_and(|l| l.starts_with("UDP server (PID = ")
                && l.ends_with(") going to bind to 0.0.0.0:1234")),
        "{}",
        server.transcript()
    );
    assert_eq!(server.stderr().count(), 0, "{}", server.transcript());
}

#[test]
fn a_dropped_datagram_is_a_read_timeout() {
    let Some(lab) = article_lab() else { return };
    // A server on 1235 makes sure it is the security group, not a closed port, that is silent.
    let _server = start(&lab, "server", udp_server(1235), "Listening on");
    let out = run_in(&lab, "client-1", udp_client(1235, &["-c", "1", "-r", "1"]));
    assert_eq!(
        out.class(),
        Some(ErrorClass::ReadTimeout),
        "{}",
        out.transcript()
    );
    assert_eq!(out.status.code(), Some(15));
    let line = only_error_line(&out);
    assert!(
        line.starts_with(
            "error: read-timeout: no answer from 10.0.0.58:1235 within 1 s after message #1"
        ),
        "{line}"
    );
    assert!(
        out.stdout()
            .any(|l| l.starts_with("Message sent to server: 'Message #1 from client ")),
        "{}",
        out.transcript()
    );
}

#[test]
fn a_closed_port_is_refused_on_a_connected_socket_only() {
    let Some(lab) = article_lab() else { return };
    // Nothing listens on UDP 1234: the server's kernel answers ICMP port unreachable.
    let connected = run_in(
        &lab,
        "client-1",
        udp_client(1234, &["-c", "1", "-r", "5", "--connected"]),
    );
    assert_eq!(
        connected.class(),
        Some(ErrorClass::ConnectionRefused),
        "{}",
        connected.transcript()
    );
    assert_eq!(connected.status.code(), Some(11));
    let line = only_error_line(&connected);
    assert!(
        line.starts_with(
            "error: connection-refused: 10.0.0.58:1234 answered with an ICMP port unreachable"
        ),
        "{line}"
    );
    // The sandbox's unconnected socket never hears of it: silence, then our read timeout.
    let unconnected = run_in(&lab, "client-1", udp_client(1234, &["-c", "1", "-r", "1"]));
    assert_eq!(
        unconnected.class(),
        Some(ErrorClass::ReadTimeout),
        "{}",
        unconnected.transcript()
    );
}

#[test]
fn a_second_client_of_the_consumer_completes_its_handshake_and_waits() {
    let Some(lab) = article_lab() else { return };
    let mut consumer = Command::new(env!("CARGO_BIN_EXE_tcp-hesitant-consumer"));
    consumer.args(["0.0.0.0", "1234"]);
    let consumer = start(&lab, "server", consumer, "Listening on");
    let mut first = Command::new(env!("CARGO_BIN_EXE_tcp-eager-producer"));
    first.args(["10.0.0.58", "1234", "-c", "1", "-n", "Alice"]);
    let first = run_in(&lab, "client-1", first);
    assert_eq!(
        first.class(),
        Some(ErrorClass::Ok),
        "{}",
        first.transcript()
    );
    let accepted = consumer
        .wait_for_line("Client connection accepted from (10.0.0.208:", WAIT)
        .unwrap();
    assert!(
        accepted.text.contains("), input buffer size = ") && accepted.text.ends_with(" bytes..."),
        "{}",
        accepted.text
    );
    // The listener is still open: the handshake completes, the message is never answered.
    let second = run_in(
        &lab,
        "client-2",
        tcp_client("10.0.0.58", 1234, &["-c", "1", "-t", "3", "-r", "1"]),
    );
    assert_eq!(
        second.class(),
        Some(ErrorClass::ReadTimeout),
        "{}",
        second.transcript()
    );
    assert!(
        second.stdout().any(|l| l.starts_with("Connected from ")),
        "{}",
        second.transcript()
    );
}

#[test]
fn the_consumer_prints_the_producers_sequence_numbers() {
    let Some(lab) = article_lab() else { return };
    let mut consumer = Command::new(env!("CARGO_BIN_EXE_tcp-hesitant-consumer"));
    consumer.args(["0.0.0.0", "1234", "--read-after-sec", "0"]);
    let consumer = start(&lab, "server", consumer, "Listening on");
    let mut producer = Command::new(env!("CARGO_BIN_EXE_tcp-eager-producer"));
    producer.args([
        "10.0.0.58",
        "1234",
        "-c",
        "3",
        "--pause-sec",
        "0",
        "-n",
        "Bob",
    ]);
    let producer = run_in(&lab, "client-1", producer);
    assert_eq!(
        producer.class(),
        Some(ErrorClass::Ok),
        "{}",
        producer.transcript()
    );
    let consumer = {
        consumer
            .wait_for_line("EOF - client has disconnected", WAIT)
            .unwrap();
        consumer.wait(WAIT).unwrap()
    };
    let numbered: Vec<&str> = consumer
        .stdout()
        .filter(|l| l.starts_with("Message with sequence number"))
        .collect();
    assert_eq!(
        numbered,
        [
            "Message with sequence number 1 received...",
            "Message with sequence number 2 received...",
            "Message with sequence number 3 received...",
        ],
        "{}",
        consumer.transcript()
    );
    // The producer's lines are the sandbox's, with the frame's size and the running total.
    let sent: Vec<&str> = producer
        .stdout()
        .filter(|l| l.starts_with("Message with sequence number = "))
        .collect();
    assert_eq!(sent.len(), 3, "{}", producer.transcript());
    assert!(
        sent[2].ends_with(" bytes) sent to server..."),
        "{}",
        sent[2]
    );
}

/// Reads the frames one producer connection sends, in the server's namespace.
fn frames(stream: &mut TcpStream) -> Vec<(u16, serde_json::Value)> {
    let mut all = Vec::new();
    loop {
        let mut header = [0u8; HEADER_LEN];
        if stream.read_exact(&mut header).is_err() {
            return all;
        }
        let len = u16::from_be_bytes([header[0], header[1]]) as usize;
        let kind = u16::from_be_bytes([header[2], header[3]]);
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).unwrap();
        all.push((kind, serde_json::from_slice(&payload).unwrap()));
    }
}

#[test]
fn the_producers_messages_carry_the_sandboxs_fields() {
    let Some(lab) = article_lab() else { return };
    let server = lab.host("server").unwrap();
    let listener = server
        .run_fn(|| TcpListener::bind("10.0.0.58:1234"))
        .unwrap()
        .unwrap();
    let reader = server
        .spawn_fn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(WAIT)).unwrap();
            frames(&mut stream)
        })
        .unwrap();
    let mut producer = Command::new(env!("CARGO_BIN_EXE_tcp-eager-producer"));
    producer.args([
        "10.0.0.58",
        "1234",
        "-c",
        "2",
        "--pause-sec",
        "0",
        "-n",
        "Carol",
    ]);
    let out = run_in(&lab, "client-1", producer);
    assert_eq!(out.class(), Some(ErrorClass::Ok), "{}", out.transcript());
    let frames = reader.join().unwrap();
    assert_eq!(frames.len(), 2, "{}", out.transcript());
    for (i, (kind, json)) in frames.iter().enumerate() {
        assert_eq!(*kind, MessageType::Json.code());
        assert_eq!(json["client_name"], "Carol");
        assert_eq!(json["sequence_number"], i as u64 + 1);
        assert!(
            json["random_numbers"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        );
        assert!(json["uuids"].as_array().is_some());
    }
}

#[test]
fn tcp_client_connects_to_a_port_below_1024() {
    let Some(lab) = article_lab() else { return };
    // The client's security group lets TCP 443 out; the server's drops it: a connect timeout,
    // so the client did try (it used to be a usage error before sending anything).
    let out = run_in(
        &lab,
        "client-1",
        tcp_client("10.0.0.58", 443, &["-t", "1", "-c", "1"]),
    );
    assert_eq!(
        out.class(),
        Some(ErrorClass::ConnectTimeout),
        "{}",
        out.transcript()
    );
}

// ---- Against Python peers written from the sandbox's description ----

/// The sandbox's UDP server as SANDBOX-APPS.md describes it: each TEXT datagram's payload is
/// taken as it is (the JSON string, quotes included), answered with `Response to message:
/// <payload>` sent as a JSON string padded with zeros to 4096 bytes.
const PY_UDP_SERVER: &str = r#"
import json, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
while True:
    d, (ip, port) = s.recvfrom(4096)
    length, kind = struct.unpack(">HH", d[:4])
    assert kind == 1 and len(d) == 4096, (kind, len(d))
    msg = d[4:4 + length].decode("utf-8")
    out = f"Response to message: {msg}"
    p = json.dumps(out).encode("utf-8")
    b = struct.pack(">HH", len(p), 1) + p
    s.sendto(b + b"\0" * (4096 - len(b)), (ip, port))
    print(f"{out} send to {ip}:{port}", flush=True)
"#;

/// The sandbox's UDP client as described: sends `Message #i from client NAME` as a padded
/// JSON string, prints the answer's payload as it is.
const PY_UDP_CLIENT: &str = r#"
import json, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in (1, 2):
    text = f"Message #{i} from client Zoë"
    p = json.dumps(text).encode("utf-8")
    b = struct.pack(">HH", len(p), 1) + p
    s.sendto(b + b"\0" * (4096 - len(b)), (sys.argv[1], int(sys.argv[2])))
    print(f"Message sent to server: '{text}'", flush=True)
    d, _ = s.recvfrom(4096)
    length, kind = struct.unpack(">HH", d[:4])
    assert kind == 1 and len(d) == 4096, (kind, len(d))
    print(f"Message from server received: '{d[4:4 + length].decode('utf-8')}'", flush=True)
"#;

/// The sandbox's hesitant consumer as described: reads JSON messages and prints each one's
/// `sequence_number` (a message without one ends it with the sandbox's exception line).
const PY_CONSUMER: &str = r#"
import json, socket, struct, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2]))); l.listen(5)
print("ready", flush=True)
c, _ = l.accept()
def read(n):
    b = b""
    while len(b) < n:
        chunk = c.recv(n - len(b))
        if not chunk: return None
        b += chunk
    return b
try:
    while True:
        h = read(4)
        if h is None: break
        length, kind = struct.unpack(">HH", h)
        msg = json.loads(read(length).decode("utf-8"))
        print(f"Message with sequence number {msg['sequence_number']} received from {msg['client_name']}...", flush=True)
except Exception as e:
    print(f"Exception caught: {e}", flush=True)
"#;

fn python(script: &str, address: &str, port: u16) -> Command {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script, address, &port.to_string()]);
    cmd
}

#[test]
fn tcplab_udp_client_against_a_python_udp_server() {
    let Some(lab) = article_lab() else { return };
    let server = start(
        &lab,
        "server",
        python(PY_UDP_SERVER, "0.0.0.0", 1234),
        "ready",
    );
    let out = run_in(
        &lab,
        "client-1",
        udp_client(1234, &["-n", "Zoë", "-c", "2"]),
    );
    assert_eq!(out.class(), Some(ErrorClass::Ok), "{}", out.transcript());
    assert!(
        out.stdout().any(|l| l
            == r#"Message from server received: '"Response to message: \"Message #2 from client Zo\\u00eb\""'"#),
        "{}",
        out.transcript()
    );
    server
        .wait_for_line(
            r#"Response to message: "Message #1 from client Zo\u00eb" send to 10.0.0.208:"#,
            WAIT,
        )
        .unwrap();
}

#[test]
fn a_python_udp_client_against_the_tcplab_udp_server() {
    let Some(lab) = article_lab() else { return };
    let server = start(&lab, "server", udp_server(1234), "Listening on");
    let out = run_in(&lab, "client-1", python(PY_UDP_CLIENT, "10.0.0.58", 1234));
    assert_eq!(out.status.code(), Some(0), "{}", out.transcript());
    let lines: Vec<&str> = out.stdout().collect();
    assert_eq!(
        lines,
        [
            "Message sent to server: 'Message #1 from client Zoë'",
            r#"Message from server received: '"Response to message: \"Message #1 from client Zo\\u00eb\""'"#,
            "Message sent to server: 'Message #2 from client Zoë'",
            r#"Message from server received: '"Response to message: \"Message #2 from client Zo\\u00eb\""'"#,
        ]
    );
    server
        .wait_for_line(
            r#"Response to message: "Message #2 from client Zo\u00eb" send to 10.0.0.208:"#,
            WAIT,
        )
        .unwrap();
}

#[test]
fn the_tcplab_producer_feeds_a_python_consumer() {
    let Some(lab) = article_lab() else { return };
    let consumer = start(
        &lab,
        "server",
        python(PY_CONSUMER, "0.0.0.0", 1234),
        "ready",
    );
    let mut producer = Command::new(env!("CARGO_BIN_EXE_tcp-eager-producer"));
    producer.args([
        "10.0.0.58",
        "1234",
        "-c",
        "2",
        "--pause-sec",
        "0",
        "-n",
        "Dave",
    ]);
    let out = run_in(&lab, "client-1", producer);
    assert_eq!(out.class(), Some(ErrorClass::Ok), "{}", out.transcript());
    let consumer = consumer.wait(WAIT).unwrap();
    let lines: Vec<&str> = consumer.stdout().collect();
    assert_eq!(
        lines,
        [
            "ready",
            "Message with sequence number 1 received from Dave...",
            "Message with sequence number 2 received from Dave...",
        ],
        "{}",
        consumer.transcript()
    );
}
