//! udp-client: sends `Message #<i> from client <NAME>` datagrams and prints the answers, as the
//! sandbox's `udp_client.py`: an unconnected socket that waits for each answer forever, so a
//! lost datagram is silence and an ICMP port unreachable is never seen.
//!
//! Two additions, off by default: `-r` gives up waiting (class read-timeout), and `--connected`
//! connects the socket, so the kernel reports an ICMP port unreachable to it as "connection
//! refused" on the next receive or send (class connection-refused).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use tokio::net::UdpSocket;

use super::args::{PauseRange, any_port, positive_seconds};
use super::{AppError, fmt_secs, pyjson};
use crate::error_class::ErrorClass;
use crate::escape;
use crate::wire::{Message, MessageType};

/// `udp-client`'s command line.
#[derive(Debug, Clone, Parser)]
#[command(
    long_about = None,
    name = "udp-client",
    version,
    about = "UDP client of the sandbox: sends numbered datagrams and prints the answers",
    after_help = "Examples:\n  udp-client 10.0.0.58 1234 -n Alice\n  udp-client 10.0.0.58 1235 -c 1 -r 2 --pause-sec 0\n  udp-client 10.0.0.58 1234 -c 1 --connected"
)]
pub struct UdpClientArgs {
    /// Server address or host name
    pub address: String,
    /// Server port (1..65535)
    #[arg(value_parser = any_port)]
    pub port: u16,
    /// Number of messages to send
    #[arg(short = 'c', long, value_name = "N", default_value_t = 10)]
    pub msg_count: u32,
    /// Name put in every message (default: a random UUID)
    #[arg(short = 'n', long, value_name = "NAME")]
    pub client_name: Option<String>,
    /// Give up waiting for an answer after this many seconds (default: wait forever, as the
    /// sandbox does)
    #[arg(short = 'r', long, value_name = "SECONDS", value_parser = positive_seconds)]
    pub read_timeout_sec: Option<f64>,
    /// Connect the socket to the server: an ICMP port unreachable then ends the client with
    /// connection-refused (the sandbox's unconnected socket never sees it)
    #[arg(long)]
    pub connected: bool,
    /// Pause between messages: seconds, or a random pick in MIN..MAX
    #[arg(long, value_name = "MIN[..MAX]", default_value = "5..20")]
    pub pause_sec: PauseRange,
}

/// The largest datagram UDP carries: an answer is never cut short.
const RECEIVE_BUFFER: usize = 65_536;

/// Runs the client to its end: all messages answered, or the first failure.
pub fn main(args: UdpClientArgs) -> Result<(), AppError> {
    super::runtime()?.block_on(run(args))
}

async fn run(args: UdpClientArgs) -> Result<(), AppError> {
    let name = args
        .client_name
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    println!(
        "UDP client (PID = {}) going to send messages to {}:{}",
        std::process::id(),
        escape::line(&args.address),
        args.port
    );
    let target = super::client::resolve(&args.address, args.port).await?;
    let socket = open(target, args.connected).await?;
    let read_timeout = args.read_timeout_sec.map(Duration::from_secs_f64);
    let mut buf = vec![0u8; RECEIVE_BUFFER];
    for i in 1..=args.msg_count {
        let text = format!("Message #{i} from client {name}");
        let datagram = Message::text(pyjson::dumps(&text))
            .encode_datagram()
            .map_err(|e| AppError::new(ErrorClass::Other, format!("message #{i}: {e}")))?;
        let sent = if args.connected {
            socket.send(&datagram).await
        } else {
            socket.send_to(&datagram, target).await
        };
        sent.map_err(|e| io_error(&e, target, "sending", i))?;
        println!("Message sent to server: '{text}'");
        let received = match read_timeout {
            None => socket.recv_from(&mut buf).await,
            Some(limit) => tokio::time::timeout(limit, socket.recv_from(&mut buf))
                .await
                .map_err(|_| {
                    AppError::new(
                        ErrorClass::ReadTimeout,
                        format!(
                            "no answer from {target} within {} s after message #{i} (a lost datagram is silence)",
                            fmt_secs(limit.as_secs_f64())
                        ),
                    )
                })?,
        };
        let (len, from) =
            received.map_err(|e| io_error(&e, target, "waiting for the answer to", i))?;
        let answer = match Message::decode_datagram(&buf[..len]) {
            Ok(m) if m.kind == MessageType::Text => m.payload,
            Ok(m) => {
                return Err(AppError::new(
                    ErrorClass::Other,
                    format!(
                        "{from} answered message #{i} with a {} datagram, not TEXT",
                        m.kind
                    ),
                ));
            }
            Err(e) => {
                return Err(AppError::new(
                    ErrorClass::Other,
                    format!("protocol error from {from} answering message #{i}: {e}"),
                ));
            }
        };
        println!("Message from server received: '{}'", escape::line(&answer));
        if i < args.msg_count {
            tokio::time::sleep(args.pause_sec.pick()).await;
        }
    }
    Ok(())
}

/// A socket on an ephemeral port of `target`'s family, connected to it when asked.
async fn open(target: SocketAddr, connected: bool) -> Result<UdpSocket, AppError> {
    let local: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await.map_err(|e| {
        AppError::new(
            ErrorClass::of_io_error(&e),
            format!("cannot open a UDP socket: {e}"),
        )
    })?;
    if connected {
        socket.connect(target).await.map_err(|e| {
            AppError::new(
                ErrorClass::of_io_error(&e),
                format!("cannot connect the UDP socket to {target}: {e}"),
            )
        })?;
    }
    Ok(socket)
}

fn io_error(e: &std::io::Error, target: SocketAddr, doing: &str, i: u32) -> AppError {
    let class = ErrorClass::of_io_error(e);
    let message = match class {
        ErrorClass::ConnectionRefused => format!(
            "{target} answered with an ICMP port unreachable while {doing} message #{i} (nothing listens there, or a firewall rejects): {e}"
        ),
        ErrorClass::HostUnreachable => format!(
            "no route to host {} while {doing} message #{i} (an ICMP host-unreachable came back, or nobody answered ARP): {e}",
            target.ip()
        ),
        _ => format!("{doing} message #{i} to {target} failed: {e}"),
    };
    AppError::new(class, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<UdpClientArgs, clap::Error> {
        UdpClientArgs::try_parse_from(["udp-client", "10.0.0.58", "1234"].iter().chain(extra))
    }

    #[test]
    fn defaults_are_the_sandboxs() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.msg_count, 10);
        assert_eq!(a.client_name, None);
        assert_eq!(a.read_timeout_sec, None, "the sandbox waits forever");
        assert!(!a.connected, "the sandbox's socket is not connected");
        assert_eq!(
            a.pause_sec,
            PauseRange {
                min: 5.0,
                max: 20.0
            }
        );
    }

    #[test]
    fn options_as_the_sandbox_spells_them() {
        let a = parse(&["-c", "3", "-n", "Alice"]).unwrap();
        assert_eq!((a.msg_count, a.client_name.as_deref()), (3, Some("Alice")));
        let a = parse(&["--msg-count", "2", "--client-name", "Bob"]).unwrap();
        assert_eq!((a.msg_count, a.client_name.as_deref()), (2, Some("Bob")));
        // Any port, as the sandbox's client.
        assert_eq!(
            UdpClientArgs::try_parse_from(["udp-client", "h", "53"])
                .unwrap()
                .port,
            53
        );
    }

    #[test]
    fn additions_parse_and_refuse_nonsense() {
        let a = parse(&["-r", "2.5", "--connected", "--pause-sec", "0"]).unwrap();
        assert_eq!(a.read_timeout_sec, Some(2.5));
        assert!(a.connected);
        assert_eq!(a.pause_sec, PauseRange { min: 0.0, max: 0.0 });
        assert!(parse(&["-r", "0"]).is_err());
        assert!(parse(&["-r", "NaN"]).is_err());
        assert!(parse(&["-c", "-1"]).is_err());
        assert!(UdpClientArgs::try_parse_from(["udp-client", "h", "0"]).is_err());
    }
}
