//! tcp-hesitant-consumer: accepts ONE connection and does not read from it until told to
//! (Enter, or after a set time), so the sender's data piles up and the advertised window
//! shrinks to zero.

use std::time::Duration;

use clap::Parser;
use tokio::io::AsyncBufReadExt;

use super::args::{port, seconds};
use super::{AppError, fmt_secs};
use crate::error_class::ErrorClass;
use crate::wire::{Message, MessageType, WireError, read_message};

/// `tcp-hesitant-consumer`'s command line.
#[derive(Debug, Clone, Parser)]
#[command(
    long_about = None,
    name = "tcp-hesitant-consumer",
    version,
    about = "TCP server that accepts one connection and does not read until told to",
    after_help = "Examples:\n  tcp-hesitant-consumer 0.0.0.0 1234            # reads after Enter\n  tcp-hesitant-consumer 0.0.0.0 1234 --read-after-sec 10"
)]
pub struct ConsumerArgs {
    /// Address to bind (0.0.0.0 for every interface)
    pub address: String,
    /// Port to listen on (1024..65535)
    #[arg(value_parser = port)]
    pub port: u16,
    /// Start reading after this many seconds even without Enter
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    pub read_after_sec: Option<f64>,
}

/// Runs `tcp-hesitant-consumer` to its end.
pub fn main(args: ConsumerArgs) -> Result<(), AppError> {
    super::runtime()?.block_on(run(args))
}

async fn run(args: ConsumerArgs) -> Result<(), AppError> {
    println!(
        "TCP server (PID = {}) going to bind to {}:{}",
        std::process::id(),
        crate::escape::line(&args.address),
        args.port
    );
    let addr = super::client::resolve(&args.address, args.port).await?;
    // tokio's `bind` sets SO_REUSEADDR, as the sandbox's consumer does.
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        AppError::new(
            ErrorClass::of_io_error(&e),
            format!("cannot bind {addr}: {e}"),
        )
    })?;
    println!("Listening on {addr}");
    let (mut stream, peer) = listener
        .accept()
        .await
        .map_err(|e| AppError::new(ErrorClass::of_io_error(&e), format!("accept failed: {e}")))?;
    // The listener stays open to the end, as the sandbox's: a second client completes its
    // handshake in the backlog and then waits, never served, instead of being refused.
    let _listener = listener;
    let rcvbuf = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::RcvBuf)
        .map_or("unknown".to_string(), |n| n.to_string());
    println!(
        "Client connection accepted from ({}:{}), input buffer size = {rcvbuf} bytes...",
        peer.ip(),
        peer.port()
    );
    match args.read_after_sec {
        Some(s) => println!(
            "Not reading yet: press Enter to start reading (or wait {} s)",
            fmt_secs(s)
        ),
        None => println!("Not reading yet: press Enter to start reading"),
    }
    wait_for_go(args.read_after_sec).await;
    println!("Reading now");
    loop {
        match read_message(&mut stream).await {
            Ok(Some(m)) => match sequence_number(&m) {
                Some(n) => println!("Message with sequence number {n} received..."),
                None => println!("Message received: {} ({} bytes)", m.kind, m.payload.len()),
            },
            Ok(None) => {
                println!("EOF - client has disconnected");
                return Ok(());
            }
            Err(WireError::Io(e)) => {
                return Err(AppError::new(
                    ErrorClass::of_io_error(&e),
                    format!("reading from {peer} failed: {e}"),
                ));
            }
            Err(e) => {
                return Err(AppError::new(
                    ErrorClass::Other,
                    format!("protocol error from {peer}: {e}"),
                ));
            }
        }
    }
}

/// The `sequence_number` of a JSON message, as the sandbox prints it (a string without its
/// quotes); `None` for any other message, which is told apart by its type and size instead.
fn sequence_number(message: &Message) -> Option<String> {
    if message.kind != MessageType::Json {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(&message.payload).ok()?;
    match value.get("sequence_number")? {
        serde_json::Value::String(s) => Some(crate::escape::line(s).into_owned()),
        other => Some(other.to_string()),
    }
}

/// Enter on stdin, or the timer. A closed stdin (as under a harness) never says go.
async fn wait_for_go(after: Option<f64>) {
    let enter = async {
        let mut line = String::new();
        let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
        match stdin.read_line(&mut line).await {
            Ok(n) if n > 0 => {}
            _ => std::future::pending::<()>().await,
        }
    };
    match after {
        Some(s) => {
            tokio::select! {
                _ = enter => {}
                _ = tokio::time::sleep(Duration::from_secs_f64(s)) => {}
            }
        }
        None => enter.await,
    }
}
