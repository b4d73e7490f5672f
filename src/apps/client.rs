//! tcp-client: connects with an application connect timeout, sends `Message #<i> from client
//! <NAME>` messages, prints the answers, and classifies every failure.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::net::TcpStream;

use super::args::{PauseRange, any_port, positive_seconds};
use super::{AppError, fmt_secs};
use crate::error_class::ErrorClass;
use crate::wire::{Message, WireError, read_message, write_message};

/// `tcp-client`'s command line.
#[derive(Debug, Clone, Parser)]
#[command(
    long_about = None,
    name = "tcp-client",
    version,
    about = "TCP client of the sandbox: sends numbered messages and prints the answers",
    after_help = "Examples:\n  tcp-client 10.0.0.58 1234 -n Alice\n  tcp-client 10.0.0.58 1235 -t 3 -c 1 --pause-sec 0"
)]
pub struct ClientArgs {
    /// Server address or host name
    pub address: String,
    /// Server port (1..65535)
    #[arg(value_parser = any_port)]
    pub port: u16,
    /// Give up connecting after this many seconds
    #[arg(short = 't', long, value_name = "SECONDS", value_parser = positive_seconds, default_value_t = 10.0)]
    pub connect_timeout_sec: f64,
    /// Give up waiting for an answer after this many seconds (default: wait forever)
    #[arg(short = 'r', long, value_name = "SECONDS", value_parser = positive_seconds)]
    pub read_timeout_sec: Option<f64>,
    /// Number of messages to send
    #[arg(short = 'c', long, value_name = "N", default_value_t = 10)]
    pub msg_count: u32,
    /// Name put in every message (default: a random UUID)
    #[arg(short = 'n', long, value_name = "NAME")]
    pub client_name: Option<String>,
    /// Pause between messages: seconds, or a random pick in MIN..MAX
    #[arg(long, value_name = "MIN[..MAX]", default_value_t = PauseRange::default())]
    pub pause_sec: PauseRange,
}

/// Runs the client to its end: all messages answered, or the first failure.
pub fn main(args: ClientArgs) -> Result<(), AppError> {
    super::runtime()?.block_on(run(args))
}

async fn run(args: ClientArgs) -> Result<(), AppError> {
    let name = args
        .client_name
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let read_timeout = args.read_timeout_sec.map(Duration::from_secs_f64);
    println!("Process ID: {}", std::process::id());
    let target = resolve(&args.address, args.port).await?;
    println!(
        "Connecting to {target} (connect timeout: {} s, read timeout: {})",
        fmt_secs(args.connect_timeout_sec),
        args.read_timeout_sec
            .map_or("none".to_string(), |t| format!("{} s", fmt_secs(t)))
    );
    let mut stream = connect(target, args.connect_timeout_sec).await?;
    if let Ok(local) = stream.local_addr() {
        println!("Connected from {local} to {target}");
    }

    for i in 1..=args.msg_count {
        let text = format!("Message #{i} from client {name}");
        write_message(&mut stream, &Message::text(text.clone()))
            .await
            .map_err(|e| exchange_error(e, target, "sending", i))?;
        println!("Message sent to server: '{text}'");
        let answer = match read_timeout {
            None => read_message(&mut stream).await,
            Some(limit) => match tokio::time::timeout(limit, read_message(&mut stream)).await {
                Ok(read) => read,
                Err(_) => {
                    return Err(AppError::new(
                        ErrorClass::ReadTimeout,
                        format!(
                            "no answer from {target} within {} s after message #{i}",
                            fmt_secs(limit.as_secs_f64())
                        ),
                    ));
                }
            },
        }
        .map_err(|e| exchange_error(e, target, "waiting for the answer to", i))?;
        let Some(answer) = answer else {
            return Err(AppError::new(
                ErrorClass::Other,
                format!("{target} closed the connection (FIN) before answering message #{i}"),
            ));
        };
        println!("Message from server received: '{}'", answer.payload);
        if i < args.msg_count {
            tokio::time::sleep(args.pause_sec.pick()).await;
        }
    }
    println!(
        "All {} messages answered, closing the connection",
        args.msg_count
    );
    Ok(())
}

/// Resolves an address or host name with the system resolver; the first answer wins.
pub async fn resolve(address: &str, port: u16) -> Result<SocketAddr, AppError> {
    let unresolved = |why: String| {
        AppError::new(
            ErrorClass::Other,
            format!("cannot resolve `{address}`: {why}"),
        )
    };
    tokio::net::lookup_host((address, port))
        .await
        .map_err(|e| unresolved(e.to_string()))?
        .next()
        .ok_or_else(|| unresolved("no address found".to_string()))
}

/// Connects with the application's own timeout, classifying every failure.
pub async fn connect(target: SocketAddr, timeout_sec: f64) -> Result<TcpStream, AppError> {
    let started = Instant::now();
    let attempt = tokio::time::timeout(
        Duration::from_secs_f64(timeout_sec),
        TcpStream::connect(target),
    )
    .await;
    match attempt {
        Ok(Ok(stream)) => Ok(stream),
        Err(_) => Err(AppError::new(
            ErrorClass::ConnectTimeout,
            format!(
                "no answer from {target} within {} s (no SYN-ACK, no RST)",
                fmt_secs(timeout_sec)
            ),
        )),
        // The kernel gave up retransmitting SYNs before our own timeout: still a timeout.
        Ok(Err(e)) if e.raw_os_error() == Some(libc::ETIMEDOUT) => Err(AppError::new(
            ErrorClass::ConnectTimeout,
            format!(
                "no answer from {target}: the kernel gave up after {} s (no SYN-ACK, no RST)",
                fmt_secs(started.elapsed().as_secs_f64())
            ),
        )),
        Ok(Err(e)) => Err(connect_error(&e, target)),
    }
}

fn connect_error(e: &std::io::Error, target: SocketAddr) -> AppError {
    let class = ErrorClass::of_io_error(e);
    let message = match class {
        ErrorClass::ConnectionRefused => format!(
            "{target} answered the SYN with a RST (nothing listens there, or a firewall rejects): {e}"
        ),
        ErrorClass::HostUnreachable => format!(
            "no route to host {} (an ICMP host-unreachable came back, or nobody answered ARP): {e}",
            target.ip()
        ),
        ErrorClass::NetworkUnreachable => format!(
            "network of {} is unreachable (no route, or an ICMP net-unreachable came back): {e}",
            target.ip()
        ),
        _ => format!("cannot connect to {target}: {e}"),
    };
    AppError::new(class, message)
}

fn exchange_error(e: WireError, target: SocketAddr, doing: &str, i: u32) -> AppError {
    match e {
        WireError::Io(io) => {
            let class = ErrorClass::of_io_error(&io);
            let message = if class == ErrorClass::ConnectionReset {
                format!("{target} reset the connection (RST) while {doing} message #{i}: {io}")
            } else {
                format!("{doing} message #{i} to {target} failed: {io}")
            };
            AppError::new(class, message)
        }
        other => AppError::new(
            ErrorClass::Other,
            format!("protocol error from {target} while {doing} message #{i}: {other}"),
        ),
    }
}
