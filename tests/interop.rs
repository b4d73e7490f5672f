//! Wire compatibility with an independent implementation of the sandbox's PDU: a small Python
//! client and server written from the protocol's description (2-byte big-endian length, 2-byte
//! type, UTF-8 payload), talking to tcplab's apps both ways on loopback.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use common::WAIT;
use tcplab::ErrorClass;
use tcplab::proc::Proc;

const PY_SERVER: &str = r#"
import socket, struct, sys
s = socket.socket(); s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
def read(n):
    b = b""
    while len(b) < n:
        chunk = c.recv(n - len(b))
        if not chunk: return None
        b += chunk
    return b
while True:
    h = read(4)
    if h is None: break
    length, kind = struct.unpack(">HH", h)
    msg = read(length).decode("utf-8")
    print(f"got type {kind}: {msg}", flush=True)
    out = f"Response to message: {msg}".encode("utf-8")
    c.sendall(struct.pack(">HH", len(out), 1) + out)
"#;

const PY_CLIENT: &str = r#"
import socket, struct, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
for text in ["Message #1 from client Zoë", "Message #2 from client Zoë"]:
    b = text.encode("utf-8")
    c.sendall(struct.pack(">HH", len(b), 1) + b)
    length, kind = struct.unpack(">HH", c.recv(4, socket.MSG_WAITALL))
    print(f"type {kind}: {c.recv(length, socket.MSG_WAITALL).decode('utf-8')}", flush=True)
"#;

fn address() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let pid = std::process::id();
    format!(
        "127.{}.{}.{}",
        100 + (pid & 0x7f),
        (pid >> 7) & 0xff,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn python(script: &str, addr: &str) -> Command {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script, addr, "4321"]);
    cmd
}

#[test]
fn tcplab_client_talks_to_a_python_server() {
    let addr = address();
    let server = Proc::spawn(python(PY_SERVER, &addr)).expect("python3 is installed");
    server.wait_for_line("listening", WAIT).unwrap();
    let mut client = Command::new(env!("CARGO_BIN_EXE_tcp-client"));
    client.args([&addr, "4321", "-n", "Zoë", "-c", "2", "--pause-sec", "0"]);
    let out = Proc::spawn(client).unwrap().wait(WAIT).unwrap();
    assert_eq!(out.class(), Some(ErrorClass::Ok), "{}", out.transcript());
    assert!(
        out.stdout().any(|l| l
            == "Message from server received: 'Response to message: Message #2 from client Zoë'")
    );
    server
        .wait_for_line("got type 1: Message #1 from client Zoë", WAIT)
        .unwrap();
}

#[test]
fn python_client_talks_to_the_tcplab_server() {
    let addr = address();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcp-server"));
    cmd.args([&addr, "4321"]);
    let server = Proc::spawn(cmd).unwrap();
    server.wait_for_line("Listening on", WAIT).unwrap();
    let out = Proc::spawn(python(PY_CLIENT, &addr))
        .unwrap()
        .wait(WAIT)
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", out.transcript());
    let lines: Vec<&str> = out.stdout().collect();
    assert_eq!(
        lines,
        [
            "type 1: Response to message: Message #1 from client Zoë",
            "type 1: Response to message: Message #2 from client Zoë"
        ]
    );
    server
        .wait_for_line("Worker-1: EOF - client has disconnected", WAIT)
        .unwrap();
}
