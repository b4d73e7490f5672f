//! tcp-server: binds, accepts any number of clients, answers each TEXT message with
//! `Response to message: <message>`, one worker (and one colour) per connection.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::signal::unix::{SignalKind, signal};

use super::args::{port, seconds};
use super::palette::worker_style;
use super::{AppError, fmt_secs};
use crate::error_class::ErrorClass;
use crate::wire::{Message, MessageType, WireError, read_message, write_message};

/// `tcp-server`'s command line.
#[derive(Debug, Clone, Parser)]
#[command(
    long_about = None,
    name = "tcp-server",
    version,
    about = "TCP server of the sandbox: answers every TEXT message it receives",
    after_help = "Examples:\n  tcp-server 0.0.0.0 1234\n  tcp-server 10.0.0.58 1234 --reuse-address --response-delay-sec 2"
)]
pub struct ServerArgs {
    /// Address to bind (0.0.0.0 for every interface)
    pub address: String,
    /// Port to listen on (1024..65535)
    #[arg(value_parser = port)]
    pub port: u16,
    /// Set SO_REUSEADDR before binding
    #[arg(short = 'a', long)]
    pub reuse_address: bool,
    /// Set SO_REUSEPORT before binding
    #[arg(short = 'p', long)]
    pub reuse_port: bool,
    /// Wait this many seconds before each answer
    #[arg(short = 'd', long, value_name = "SECONDS", value_parser = seconds, default_value_t = 0.0)]
    pub response_delay_sec: f64,
}

/// Runs the server until Ctrl+C or SIGTERM.
pub fn main(args: ServerArgs) -> Result<(), AppError> {
    super::runtime()?.block_on(serve(args))
}

async fn serve(args: ServerArgs) -> Result<(), AppError> {
    // Handlers go in before "Listening" is printed: a harness may signal as soon as it sees it.
    let watch = |kind: SignalKind| {
        signal(kind)
            .map_err(|e| AppError::new(ErrorClass::Other, format!("cannot watch signals: {e}")))
    };
    let mut sigint = watch(SignalKind::interrupt())?;
    let mut sigterm = watch(SignalKind::terminate())?;
    let addr = super::client::resolve(&args.address, args.port).await?;
    let listener = listen(addr, &args)?;
    println!("Process ID: {}", std::process::id());
    println!(
        "Socket options: SO_REUSEADDR={} SO_REUSEPORT={}",
        args.reuse_address as u8, args.reuse_port as u8
    );
    if args.response_delay_sec > 0.0 {
        println!("Response delay: {} s", fmt_secs(args.response_delay_sec));
    }
    println!("Listening on {addr}");

    let delay = Duration::from_secs_f64(args.response_delay_sec);
    let mut workers = 0usize;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    workers += 1;
                    println!("Client connection accepted from {peer} (Worker-{workers})");
                    tokio::spawn(work(workers, stream, peer, delay));
                }
                // A connection that died in the backlog is the client's problem, not ours.
                Err(e) => eprintln!("warning: accept failed: {e}"),
            },
            _ = sigint.recv() => {
                println!("Interrupted, server stopped");
                return Ok(());
            }
            _ = sigterm.recv() => {
                println!("Terminated, server stopped");
                return Ok(());
            }
        }
    }
}

fn listen(addr: SocketAddr, args: &ServerArgs) -> Result<TcpListener, AppError> {
    let fail = |what: &str, e: std::io::Error| {
        let class = ErrorClass::of_io_error(&e);
        let hint = if class == ErrorClass::AddressInUse {
            " (another socket holds it; see -a/--reuse-address and -p/--reuse-port)"
        } else {
            ""
        };
        AppError::new(class, format!("cannot {what} {addr}: {e}{hint}"))
    };
    // tokio's TcpListener::bind always sets SO_REUSEADDR; the sandbox sets it only with -a,
    // and the address-in-use scenarios depend on that difference.
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| fail("create a socket for", e))?;
    socket
        .set_reuseaddr(args.reuse_address)
        .map_err(|e| fail("set SO_REUSEADDR for", e))?;
    socket
        .set_reuseport(args.reuse_port)
        .map_err(|e| fail("set SO_REUSEPORT for", e))?;
    socket.bind(addr).map_err(|e| fail("bind", e))?;
    socket.listen(1024).map_err(|e| fail("listen on", e))
}

async fn work(n: usize, mut stream: TcpStream, peer: SocketAddr, delay: Duration) {
    let style = worker_style(n);
    let say = |line: String| println!("{style}Worker-{n}: {line}{style:#}");
    loop {
        match read_message(&mut stream).await {
            Ok(None) => {
                say("EOF - client has disconnected".to_string());
                return;
            }
            Ok(Some(msg)) if msg.kind == MessageType::Json => {
                say(format!(
                    "JSON message received ({} bytes)",
                    msg.payload.len()
                ));
            }
            Ok(Some(msg)) => {
                if !delay.is_zero() {
                    // Says the message arrived: the harness and a person watching can tell a
                    // slow answer from a lost message.
                    say(format!(
                        "Message received, answering in {} s",
                        fmt_secs(delay.as_secs_f64())
                    ));
                    tokio::time::sleep(delay).await;
                }
                let answer = Message::text(format!("Response to message: {}", msg.payload));
                if let Err(e) = write_message(&mut stream, &answer).await {
                    say(describe(&e, peer));
                    return;
                }
                say(answer.payload);
            }
            Err(e) => {
                say(describe(&e, peer));
                return;
            }
        }
    }
}

fn describe(e: &WireError, peer: SocketAddr) -> String {
    match e {
        WireError::Io(io) => match ErrorClass::of_io_error(io) {
            ErrorClass::ConnectionReset => {
                format!("connection-reset: client {peer} reset the connection")
            }
            class => format!("{class}: {io}"),
        },
        other => format!("protocol error from {peer}: {other}; closing the connection"),
    }
}
