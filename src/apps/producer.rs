//! tcp-eager-producer: sends JSON messages (a few KB of random numbers and UUIDs, with the
//! client's name and a sequence number) every few seconds, each within a write timeout: the
//! other half of the zero-window demonstration, as the sandbox's `eager_producer_tcp_client.py`.

use std::time::Duration;

use clap::Parser;
use serde::Serialize;

use super::args::{PauseRange, any_port, positive_seconds, seconds};
use super::{AppError, fmt_secs, pyjson};
use crate::error_class::ErrorClass;
use crate::wire::{HEADER_LEN, Message, WireError, write_message};

/// `tcp-eager-producer`'s command line.
#[derive(Debug, Clone, Parser)]
#[command(
    long_about = None,
    name = "tcp-eager-producer",
    version,
    about = "TCP client that sends JSON messages of a few KB every few seconds",
    after_help = "Examples:\n  tcp-eager-producer 10.0.0.58 1234 -n Alice\n  tcp-eager-producer 10.0.0.58 1234 --pause-sec 0 -w 3 -c 100"
)]
pub struct ProducerArgs {
    /// Server address or host name
    pub address: String,
    /// Server port (1..65535)
    #[arg(value_parser = any_port)]
    pub port: u16,
    /// Give up connecting after this many seconds (`--connect_timeout_sec`, the sandbox's
    /// spelling, works too)
    #[arg(short = 't', long, alias = "connect_timeout_sec", value_name = "SECONDS", value_parser = positive_seconds, default_value_t = 10.0)]
    pub connect_timeout_sec: f64,
    /// Give up when one message cannot be sent within this many seconds (0: wait forever)
    #[arg(short = 'w', long, value_name = "SECONDS", value_parser = seconds, default_value_t = 10.0)]
    pub write_timeout_sec: f64,
    /// Number of messages to send
    #[arg(short = 'c', long, value_name = "N", default_value_t = 50)]
    pub msg_count: u32,
    /// Name put in every message (default: a random UUID)
    #[arg(short = 'n', long, value_name = "NAME")]
    pub client_name: Option<String>,
    /// Pause between messages: seconds, or a random pick in MIN..MAX
    #[arg(long, value_name = "MIN[..MAX]", default_value = "2..5")]
    pub pause_sec: PauseRange,
}

/// One message, its fields in the sandbox's order and with its names: its consumer reads
/// `sequence_number`.
#[derive(Debug, Serialize)]
pub struct ProducerMessage {
    /// The producer's `-n` name.
    pub client_name: String,
    /// 1 for the first message.
    pub sequence_number: u32,
    /// 400 to 800 numbers of eight digits, as the sandbox's.
    pub random_numbers: Vec<u32>,
    /// A few random UUIDs.
    pub uuids: Vec<String>,
}

impl ProducerMessage {
    /// Message number `sequence_number` of `client_name`, with fresh random content: about
    /// 4 to 9 KB of JSON, as the sandbox's.
    pub fn random(client_name: &str, sequence_number: u32) -> Self {
        ProducerMessage {
            client_name: client_name.to_string(),
            sequence_number,
            random_numbers: (0..fastrand::usize(400..=800))
                .map(|_| fastrand::u32(10_000_000..=20_000_000))
                .collect(),
            uuids: (0..fastrand::usize(4..=8))
                .map(|_| uuid::Uuid::new_v4().to_string())
                .collect(),
        }
    }
}

/// Runs `tcp-eager-producer` to its end.
pub fn main(args: ProducerArgs) -> Result<(), AppError> {
    super::runtime()?.block_on(run(args))
}

async fn run(args: ProducerArgs) -> Result<(), AppError> {
    let name = args
        .client_name
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    println!(
        "TCP client (PID = {}) going to connect to {}:{}",
        std::process::id(),
        crate::escape::line(&args.address),
        args.port
    );
    println!("Message count = {}", args.msg_count);
    println!(
        "Connect timeout = {} sec",
        fmt_secs(args.connect_timeout_sec)
    );
    if args.write_timeout_sec > 0.0 {
        // The sandbox prints its default as `10` and a given value as Python's float (`3.0`);
        // the default's line is the one kept.
        println!("Write timeout = {} sec", fmt_secs(args.write_timeout_sec));
    } else {
        println!("No write timeout configured");
    }
    let target = super::client::resolve(&args.address, args.port).await?;
    let mut stream = super::client::connect(target, args.connect_timeout_sec).await?;
    let sndbuf = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::SndBuf)
        .map_or("unknown".to_string(), |n| n.to_string());
    println!("Connection established, output buffer = {sndbuf} bytes");
    let mut total = 0usize;
    for i in 1..=args.msg_count {
        let msg = Message::json(pyjson::dumps(&ProducerMessage::random(&name, i)));
        let len = HEADER_LEN + msg.payload.len();
        let write = write_message(&mut stream, &msg);
        let result = if args.write_timeout_sec > 0.0 {
            let limit = args.write_timeout_sec;
            tokio::time::timeout(Duration::from_secs_f64(limit), write)
                .await
                .map_err(|_| {
                    AppError::new(
                        ErrorClass::Other,
                        format!(
                            "write timeout: message #{i} could not be sent to {target} within {} s (is the receiver's window closed?)",
                            fmt_secs(limit)
                        ),
                    )
                })?
        } else {
            write.await
        };
        result.map_err(|e| match e {
            WireError::Io(io) => {
                let class = ErrorClass::of_io_error(&io);
                AppError::new(
                    class,
                    format!("sending message #{i} to {target} failed: {io}"),
                )
            }
            other => AppError::new(ErrorClass::Other, other.to_string()),
        })?;
        total += len;
        println!(
            "Message with sequence number = {i} ({len} bytes, totally {total} bytes) sent to server..."
        );
        if i < args.msg_count {
            tokio::time::sleep(args.pause_sec.pick()).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<ProducerArgs, clap::Error> {
        ProducerArgs::try_parse_from(
            ["tcp-eager-producer", "10.0.0.58", "1234"]
                .iter()
                .chain(extra),
        )
    }

    #[test]
    fn defaults_are_the_sandboxs() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.connect_timeout_sec, 10.0);
        assert_eq!(a.write_timeout_sec, 10.0);
        assert_eq!(a.msg_count, 50);
        assert_eq!(a.client_name, None);
        assert_eq!(a.pause_sec, PauseRange { min: 2.0, max: 5.0 });
    }

    #[test]
    fn options_as_the_sandbox_spells_them() {
        let a = parse(&["-n", "Alice", "-w", "2.5", "-c", "3", "-t", "4"]).unwrap();
        assert_eq!(a.client_name.as_deref(), Some("Alice"));
        assert_eq!(
            (a.write_timeout_sec, a.msg_count, a.connect_timeout_sec),
            (2.5, 3, 4.0)
        );
        let a = parse(&["--client-name", "Bob", "--connect_timeout_sec", "3"]).unwrap();
        assert_eq!(a.client_name.as_deref(), Some("Bob"));
        assert_eq!(a.connect_timeout_sec, 3.0);
        assert_eq!(
            parse(&["--connect-timeout-sec", "3"])
                .unwrap()
                .connect_timeout_sec,
            3.0
        );
        assert_eq!(parse(&["-w", "0"]).unwrap().write_timeout_sec, 0.0);
        assert!(parse(&["-w", "-1"]).is_err());
        // Any port, as the sandbox's producer.
        assert_eq!(
            ProducerArgs::try_parse_from(["tcp-eager-producer", "h", "443"])
                .unwrap()
                .port,
            443
        );
    }

    #[test]
    fn messages_carry_the_sandboxs_fields() {
        let json = pyjson::dumps(&ProducerMessage::random("Alice", 7));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["client_name"], "Alice");
        assert_eq!(v["sequence_number"], 7);
        let numbers = v["random_numbers"].as_array().unwrap();
        assert!((400..=800).contains(&numbers.len()), "{}", numbers.len());
        assert!(
            numbers
                .iter()
                .all(|n| (10_000_000..=20_000_000).contains(&n.as_u64().unwrap()))
        );
        assert!(
            v["uuids"]
                .as_array()
                .unwrap()
                .iter()
                .all(|u| uuid::Uuid::parse_str(u.as_str().unwrap()).is_ok())
        );
        assert!(
            json.starts_with(
                r#"{"client_name": "Alice", "sequence_number": 7, "random_numbers": ["#
            ),
            "{json:.80}"
        );
        assert!(
            (4_000..10_000).contains(&json.len()),
            "{} bytes",
            json.len()
        );
    }
}
