//! tcp-eager-producer: sends large JSON messages (thousands of random numbers and UUIDs) as
//! fast as it is allowed, with an optional write timeout: the other half of the zero-window
//! demonstration.

use std::time::Duration;

use clap::Parser;

use super::args::{PauseRange, port, positive_seconds};
use super::{AppError, fmt_secs};
use crate::error_class::ErrorClass;
use crate::wire::{Message, WireError, write_message};

/// `tcp-eager-producer`'s command line.
#[derive(Debug, Clone, Parser)]
#[command(
    long_about = None,
    name = "tcp-eager-producer",
    version,
    about = "TCP client that sends large JSON messages every few seconds",
    after_help = "Examples:\n  tcp-eager-producer 10.0.0.58 1234\n  tcp-eager-producer 10.0.0.58 1234 --pause-sec 0 -w 3 -c 100"
)]
pub struct ProducerArgs {
    /// Server address or host name
    pub address: String,
    /// Server port (1024..65535)
    #[arg(value_parser = port)]
    pub port: u16,
    /// Give up connecting after this many seconds
    #[arg(short = 't', long, value_name = "SECONDS", value_parser = positive_seconds, default_value_t = 10.0)]
    pub connect_timeout_sec: f64,
    /// Give up when one message cannot be sent within this many seconds (default: wait)
    #[arg(short = 'w', long, value_name = "SECONDS", value_parser = positive_seconds)]
    pub write_timeout_sec: Option<f64>,
    /// Number of messages to send (default: until stopped)
    #[arg(short = 'c', long, value_name = "N")]
    pub msg_count: Option<u32>,
    /// Pause between messages: seconds, or a random pick in MIN..MAX
    #[arg(long, value_name = "MIN[..MAX]", default_value = "2..5")]
    pub pause_sec: PauseRange,
}

/// Numbers and UUIDs per message: about 48 KiB of JSON, under the PDU's 64 KiB.
const NUMBERS: usize = 3000;
const UUIDS: usize = 400;

/// Runs `tcp-eager-producer` to its end.
pub fn main(args: ProducerArgs) -> Result<(), AppError> {
    super::runtime()?.block_on(run(args))
}

fn message(i: u32) -> String {
    let numbers: Vec<u32> = (0..NUMBERS).map(|_| fastrand::u32(..1_000_000)).collect();
    let uuids: Vec<String> = (0..UUIDS)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    serde_json::json!({ "message": i, "numbers": numbers, "uuids": uuids }).to_string()
}

async fn run(args: ProducerArgs) -> Result<(), AppError> {
    anstream::println!("Process ID: {}", std::process::id());
    let target = super::client::resolve(&args.address, args.port).await?;
    anstream::println!(
        "Connecting to {target} (connect timeout: {} s, write timeout: {})",
        fmt_secs(args.connect_timeout_sec),
        args.write_timeout_sec
            .map_or("none".to_string(), |t| format!("{} s", fmt_secs(t)))
    );
    let mut stream = super::client::connect(target, args.connect_timeout_sec).await?;
    anstream::println!("Connected to {target}");
    let mut i = 0u32;
    while args.msg_count.is_none_or(|n| i < n) {
        i += 1;
        let msg = Message::json(message(i));
        let len = msg.payload.len();
        let write = write_message(&mut stream, &msg);
        let result = match args.write_timeout_sec {
            None => write.await,
            Some(limit) => tokio::time::timeout(Duration::from_secs_f64(limit), write)
                .await
                .map_err(|_| {
                    AppError::new(
                        ErrorClass::Other,
                        format!(
                            "write timeout: message #{i} could not be sent to {target} within {} s (is the receiver's window closed?)",
                            fmt_secs(limit)
                        ),
                    )
                })?,
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
        anstream::println!("Message #{i} sent to server ({len} bytes)");
        tokio::time::sleep(args.pause_sec.pick()).await;
    }
    Ok(())
}
