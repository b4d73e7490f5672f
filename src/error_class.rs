//! The error classes shared by the apps' exit statuses, the harness's outcomes and reports.
//!
//! Each class has a fixed exit code so that a harness can classify a program's failure from its
//! exit status alone, without parsing its output.

use std::fmt;
use std::io;
use std::str::FromStr;

/// How a connection attempt or exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// Exit code 0: everything went as asked.
    Ok,
    /// No answer to the SYNs within the connect timeout (a dropping security group or firewall).
    ConnectTimeout,
    /// A TCP reset answered the SYN: nothing listens, or a firewall rejects with a reset.
    ConnectionRefused,
    /// The host cannot be reached: an ICMP host unreachable or administratively prohibited
    /// answered, or nobody answered ARP.
    HostUnreachable,
    /// No route to the network, or an ICMP network unreachable.
    NetworkUnreachable,
    /// An established connection was reset or aborted.
    ConnectionReset,
    /// No data within the read timeout.
    ReadTimeout,
    /// The address to listen on is taken.
    AddressInUse,
    /// Anything else.
    Other,
}

/// tcplab's own apps: their exit codes are error classes. Any other program's exit code is
/// its own (curl's 7 is not `connection-refused`'s 11, and a user's 10 is not a timeout).
pub const APPS: [&str; 6] = [
    "tcp-server",
    "tcp-client",
    "tcp-hesitant-consumer",
    "tcp-eager-producer",
    "udp-server",
    "udp-client",
];

/// Whether `program` (a name or a path) is one of tcplab's own apps.
pub fn is_app(program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    APPS.contains(&name)
}

/// Exit status for a command-line usage error (clap's convention, kept by every binary).
pub const USAGE_EXIT_CODE: i32 = 2;

impl ErrorClass {
    /// Every class, in exit-code order.
    pub const ALL: [ErrorClass; 9] = [
        ErrorClass::Ok,
        ErrorClass::ConnectTimeout,
        ErrorClass::ConnectionRefused,
        ErrorClass::HostUnreachable,
        ErrorClass::NetworkUnreachable,
        ErrorClass::ConnectionReset,
        ErrorClass::ReadTimeout,
        ErrorClass::AddressInUse,
        ErrorClass::Other,
    ];

    /// The kebab-case name printed on stderr and used in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Ok => "ok",
            ErrorClass::ConnectTimeout => "connect-timeout",
            ErrorClass::ConnectionRefused => "connection-refused",
            ErrorClass::HostUnreachable => "host-unreachable",
            ErrorClass::NetworkUnreachable => "network-unreachable",
            ErrorClass::ConnectionReset => "connection-reset",
            ErrorClass::ReadTimeout => "read-timeout",
            ErrorClass::AddressInUse => "address-in-use",
            ErrorClass::Other => "other",
        }
    }

    /// The fixed exit code of the apps for this class (documented in the README).
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorClass::Ok => 0,
            ErrorClass::Other => 1,
            ErrorClass::ConnectTimeout => 10,
            ErrorClass::ConnectionRefused => 11,
            ErrorClass::HostUnreachable => 12,
            ErrorClass::NetworkUnreachable => 13,
            ErrorClass::ConnectionReset => 14,
            ErrorClass::ReadTimeout => 15,
            ErrorClass::AddressInUse => 16,
        }
    }

    /// The class an app's exit code stands for; `None` for codes no class uses (e.g. 2, usage).
    pub fn from_exit_code(code: i32) -> Option<ErrorClass> {
        ErrorClass::ALL.into_iter().find(|c| c.exit_code() == code)
    }

    /// Classifies a socket error by its errno. Timeouts are not classified here: whether a
    /// timeout is a connect or a read timeout depends on what the program was doing.
    pub fn of_io_error(err: &io::Error) -> ErrorClass {
        match err.raw_os_error() {
            Some(libc::ECONNREFUSED) => ErrorClass::ConnectionRefused,
            Some(libc::EHOSTUNREACH) | Some(libc::EHOSTDOWN) => ErrorClass::HostUnreachable,
            Some(libc::ENETUNREACH) | Some(libc::ENETDOWN) => ErrorClass::NetworkUnreachable,
            Some(libc::ECONNRESET) | Some(libc::EPIPE) | Some(libc::ECONNABORTED) => {
                ErrorClass::ConnectionReset
            }
            Some(libc::EADDRINUSE) => ErrorClass::AddressInUse,
            _ => match err.kind() {
                io::ErrorKind::ConnectionRefused => ErrorClass::ConnectionRefused,
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
                    ErrorClass::ConnectionReset
                }
                io::ErrorKind::AddrInUse => ErrorClass::AddressInUse,
                _ => ErrorClass::Other,
            },
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of the error classes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown error class `{0}`; expected one of: ok, connect-timeout, connection-refused, host-unreachable, network-unreachable, connection-reset, read-timeout, address-in-use, other"
)]
pub struct UnknownErrorClass(pub String);

impl FromStr for ErrorClass {
    type Err = UnknownErrorClass;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorClass::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| UnknownErrorClass(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_and_round_trip() {
        for class in ErrorClass::ALL {
            assert_eq!(ErrorClass::from_exit_code(class.exit_code()), Some(class));
            assert_ne!(
                class.exit_code(),
                USAGE_EXIT_CODE,
                "{class} collides with usage"
            );
        }
        assert_eq!(ErrorClass::from_exit_code(USAGE_EXIT_CODE), None);
    }

    #[test]
    fn names_round_trip() {
        for class in ErrorClass::ALL {
            assert_eq!(class.name().parse::<ErrorClass>(), Ok(class));
        }
        assert!("timeout".parse::<ErrorClass>().is_err());
    }

    #[test]
    fn errno_classification() {
        let of = |errno| ErrorClass::of_io_error(&io::Error::from_raw_os_error(errno));
        assert_eq!(of(libc::ECONNREFUSED), ErrorClass::ConnectionRefused);
        assert_eq!(of(libc::EHOSTUNREACH), ErrorClass::HostUnreachable);
        assert_eq!(of(libc::ENETUNREACH), ErrorClass::NetworkUnreachable);
        assert_eq!(of(libc::ECONNRESET), ErrorClass::ConnectionReset);
        assert_eq!(of(libc::EADDRINUSE), ErrorClass::AddressInUse);
        assert_eq!(of(libc::EACCES), ErrorClass::Other);
    }
}
