//! udp-server: binds a UDP socket and answers every TEXT datagram with `Response to message:
//! <message>`, sent back to its sender, one colour per sender, as the sandbox's `udp_server.py`.
//!
//! The sandbox sends a TEXT datagram's text as a JSON string and reads the payload back without
//! decoding it, so the message it answers to is the JSON string, quotes included; this server
//! does the same, so its answers are byte for byte the sandbox's.

use std::collections::HashMap;
use std::net::SocketAddr;

use anstyle::Style;
use clap::Parser;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::signal::unix::{SignalKind, signal};

use super::AppError;
use super::args::any_port;
use super::palette::worker_style;
use super::pyjson;
use crate::error_class::ErrorClass;
use crate::escape;
use crate::wire::{Message, MessageType};

/// `udp-server`'s command line.
#[derive(Debug, Clone, Parser)]
#[command(
    long_about = None,
    name = "udp-server",
    version,
    about = "UDP server of the sandbox: answers every TEXT datagram it receives",
    after_help = "Examples:\n  udp-server 0.0.0.0 1234\n  udp-server 10.0.0.58 1234"
)]
pub struct UdpServerArgs {
    /// Address to bind (0.0.0.0 for every interface)
    pub address: String,
    /// Port to bind (1..65535)
    #[arg(value_parser = any_port)]
    pub port: u16,
}

/// The largest datagram UDP carries: nothing a sender sends is cut short.
const RECEIVE_BUFFER: usize = 65_536;

/// Senders remembered for their colours; past this many, the memory starts over, so a flood
/// from many ports cannot grow the server without bound.
const MAX_SENDERS: usize = 4096;

/// Runs the server until Ctrl+C or SIGTERM.
pub fn main(args: UdpServerArgs) -> Result<(), AppError> {
    super::runtime()?.block_on(serve(args))
}

async fn serve(args: UdpServerArgs) -> Result<(), AppError> {
    // Handlers go in before "Listening" is printed: a harness may signal as soon as it sees it.
    let watch = |kind: SignalKind| {
        signal(kind)
            .map_err(|e| AppError::new(ErrorClass::Other, format!("cannot watch signals: {e}")))
    };
    let mut sigint = watch(SignalKind::interrupt())?;
    let mut sigterm = watch(SignalKind::terminate())?;
    println!(
        "UDP server (PID = {}) going to bind to {}:{}",
        std::process::id(),
        escape::line(&args.address),
        args.port
    );
    let addr = super::client::resolve(&args.address, args.port).await?;
    let socket = open(addr)?;
    println!("Listening on {addr}");

    let mut buf = vec![0u8; RECEIVE_BUFFER];
    let mut senders = Senders::default();
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, peer)) => answer(&socket, &buf[..len], peer, &mut senders).await,
                Err(e) => match ErrorClass::of_io_error(&e) {
                    // An ICMP error about an earlier answer: that client's problem, not ours.
                    ErrorClass::ConnectionRefused
                    | ErrorClass::HostUnreachable
                    | ErrorClass::NetworkUnreachable => {
                        eprintln!("warning: an earlier answer was not delivered: {e}");
                    }
                    class => {
                        return Err(AppError::new(class, format!("receiving on {addr} failed: {e}")));
                    }
                },
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

/// A UDP socket bound to `addr` with SO_REUSEADDR, as the sandbox's (tokio's `bind` has no
/// way to set it before binding).
fn open(addr: SocketAddr) -> Result<UdpSocket, AppError> {
    let fail = |what: &str, e: std::io::Error| {
        AppError::new(
            ErrorClass::of_io_error(&e),
            format!("cannot {what} {addr}: {e}"),
        )
    };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| fail("create a socket for", e))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| fail("set SO_REUSEADDR for", e))?;
    socket.bind(&addr.into()).map_err(|e| fail("bind", e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| fail("set up", e))?;
    UdpSocket::from_std(std::net::UdpSocket::from(socket))
        .map_err(|e| fail("watch the socket of", e))
}

/// Answers one datagram; a datagram that is not a TEXT message is reported and skipped (the
/// sandbox's server would stop; a hostile datagram must not stop this one).
async fn answer(socket: &UdpSocket, datagram: &[u8], peer: SocketAddr, senders: &mut Senders) {
    let message = match Message::decode_datagram(datagram) {
        Ok(m) if m.kind == MessageType::Text => m,
        Ok(m) => {
            eprintln!(
                "warning: ignored a {} datagram from {peer}: the server answers TEXT only",
                m.kind
            );
            return;
        }
        Err(e) => {
            eprintln!("warning: ignored a datagram from {peer}: {e}");
            return;
        }
    };
    let answer = format!("Response to message: {}", message.payload);
    let datagram = match Message::text(pyjson::dumps(&answer)).encode_datagram() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("warning: cannot answer {peer}: {e}");
            return;
        }
    };
    if let Err(e) = socket.send_to(&datagram, peer).await {
        eprintln!("warning: cannot answer {peer}: {e}");
        return;
    }
    let style = senders.style_of(peer);
    println!(
        "{style}{} send to {}:{}{style:#}",
        escape::line(&answer),
        peer.ip(),
        peer.port()
    );
}

/// Each sender's colour: the next one of the palette for each new sender, as the sandbox does.
#[derive(Default)]
struct Senders {
    seen: HashMap<SocketAddr, usize>,
    count: usize,
}

impl Senders {
    fn style_of(&mut self, peer: SocketAddr) -> Style {
        if !self.seen.contains_key(&peer) && self.seen.len() >= MAX_SENDERS {
            self.seen.clear();
        }
        let next = self.count + 1;
        let n = *self.seen.entry(peer).or_insert(next);
        if n == next {
            self.count = next;
        }
        worker_style(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_as_the_sandbox_takes_them() {
        let a = UdpServerArgs::try_parse_from(["udp-server", "0.0.0.0", "1234"]).unwrap();
        assert_eq!((a.address.as_str(), a.port), ("0.0.0.0", 1234));
        // The sandbox's UDP server takes any port; a privileged one is the kernel's to refuse.
        assert_eq!(
            UdpServerArgs::try_parse_from(["udp-server", "0.0.0.0", "53"])
                .unwrap()
                .port,
            53
        );
        assert!(UdpServerArgs::try_parse_from(["udp-server", "0.0.0.0", "0"]).is_err());
        assert!(UdpServerArgs::try_parse_from(["udp-server", "0.0.0.0", "65536"]).is_err());
        assert!(UdpServerArgs::try_parse_from(["udp-server", "0.0.0.0"]).is_err());
    }

    #[test]
    fn each_sender_keeps_its_colour() {
        let mut s = Senders::default();
        let a: SocketAddr = "10.0.0.208:40000".parse().unwrap();
        let b: SocketAddr = "10.0.0.208:40001".parse().unwrap();
        assert_eq!(s.style_of(a), worker_style(1));
        assert_eq!(s.style_of(b), worker_style(2));
        assert_eq!(s.style_of(a), worker_style(1));
        for port in 0..(2 * MAX_SENDERS as u16) {
            s.style_of(SocketAddr::from(([10, 0, 0, 1], port)));
        }
        assert!(s.seen.len() <= MAX_SENDERS);
    }
}
