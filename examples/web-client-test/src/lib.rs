//! A very small HTTP client: the code under test in this example crate.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Why a request failed, as the `fetch` binary reports it in its exit code.
#[derive(Debug, PartialEq, Eq)]
pub enum FetchError {
    /// No answer to the connection attempt in time (exit code 3).
    ConnectTimeout,
    /// The server or something on the way refused the connection (exit code 4).
    Refused,
    /// Anything else (exit code 1).
    Other(String),
}

impl FetchError {
    /// The exit code the `fetch` binary uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            FetchError::ConnectTimeout => 3,
            FetchError::Refused => 4,
            FetchError::Other(_) => 1,
        }
    }
}

/// Sends `GET /` to `server` and returns the response's status line.
pub fn get(server: SocketAddr, connect_timeout: Duration) -> Result<String, FetchError> {
    let mut stream =
        TcpStream::connect_timeout(&server, connect_timeout).map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut => FetchError::ConnectTimeout,
            std::io::ErrorKind::ConnectionRefused => FetchError::Refused,
            _ => FetchError::Other(e.to_string()),
        })?;
    let other = |e: std::io::Error| FetchError::Other(e.to_string());
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(other)?;
    write!(
        stream,
        "GET / HTTP/1.0\r\nHost: {server}\r\nUser-Agent: fetch\r\n\r\n"
    )
    .map_err(other)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(other)?;
    Ok(response.lines().next().unwrap_or_default().to_string())
}
