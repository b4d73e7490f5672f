//! Argument parsers shared by the apps.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};

pub use crate::spec::bounds::MAX_SECONDS;

/// Parses the port of a TCP listener: the sandbox's servers refuse ports below 1024.
pub fn port(s: &str) -> Result<u16, String> {
    let n: u32 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a port number (1024..65535)"))?;
    if (1024..=65535).contains(&n) {
        Ok(n as u16)
    } else {
        Err(format!("port {n} is outside 1024..65535"))
    }
}

/// Parses a target's port, or a UDP server's: any port 1..65535, as the sandbox's clients and
/// UDP server take.
pub fn any_port(s: &str) -> Result<u16, String> {
    let n: u32 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a port number (1..65535)"))?;
    if (1..=65535).contains(&n) {
        Ok(n as u16)
    } else {
        Err(format!("port {n} is outside 1..65535"))
    }
}

/// Parses a number of seconds from 0 to [`MAX_SECONDS`] (a day): no NaN, no infinity, nothing
/// a `Duration` cannot hold.
pub fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if v.is_finite() && (0.0..=MAX_SECONDS).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "`{s}` must be zero or more seconds, at most {MAX_SECONDS} (a day)"
        ))
    }
}

/// Parses a strictly positive number of seconds (a timeout of zero would never connect).
pub fn positive_seconds(s: &str) -> Result<f64, String> {
    match seconds(s) {
        Ok(v) if v > 0.0 => Ok(v),
        Ok(_) => Err("a timeout must be more than 0 seconds".to_string()),
        Err(_) => Err(format!(
            "`{s}` must be more than 0 seconds, at most {MAX_SECONDS} (a day)"
        )),
    }
}

/// The client's pause between messages: a fixed time, or a random time in a range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PauseRange {
    /// The shortest pause, in seconds.
    pub min: f64,
    /// The longest pause, in seconds (equal to `min` for a fixed pause).
    pub max: f64,
}

impl PauseRange {
    /// A pause drawn uniformly from the range.
    pub fn pick(&self) -> Duration {
        let secs = self.min + fastrand::f64() * (self.max - self.min);
        Duration::from_secs_f64(secs)
    }
}

impl Default for PauseRange {
    fn default() -> Self {
        PauseRange {
            min: 5.0,
            max: 25.0,
        }
    }
}

impl FromStr for PauseRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (min, max) = match s.split_once("..") {
            Some((a, b)) => (seconds(a)?, seconds(b)?),
            None => {
                let v = seconds(s)?;
                (v, v)
            }
        };
        if min > max {
            return Err(format!(
                "pause range `{s}` has its minimum above its maximum"
            ));
        }
        Ok(PauseRange { min, max })
    }
}

impl fmt::Display for PauseRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use super::fmt_secs;
        if self.min == self.max {
            write!(f, "{}", fmt_secs(self.min))
        } else {
            write!(f, "{}..{}", fmt_secs(self.min), fmt_secs(self.max))
        }
    }
}

/// The name a command runs tcplab's own app by, if it does: `tcp-client` or a path ending in it.
fn app_of(argv: &[String]) -> Option<&str> {
    let name = std::path::Path::new(argv.first()?).file_name()?.to_str()?;
    crate::error_class::APPS
        .into_iter()
        .find(|app| *app == name)
}

/// A command's arguments that tcplab's own app would refuse, found before the run starts:
/// the index of the argument at fault (when it can be told) and the app's one-line reason.
/// Commands of other programs are not checked.
pub fn check_command(argv: &[String]) -> Result<(), (Option<usize>, String)> {
    let result = match app_of(argv) {
        Some("tcp-client") => super::client::ClientArgs::try_parse_from(argv).map(drop),
        Some("tcp-server") => super::server::ServerArgs::try_parse_from(argv).map(drop),
        Some("tcp-hesitant-consumer") => {
            super::consumer::ConsumerArgs::try_parse_from(argv).map(drop)
        }
        Some("tcp-eager-producer") => super::producer::ProducerArgs::try_parse_from(argv).map(drop),
        Some("udp-server") => super::udp_server::UdpServerArgs::try_parse_from(argv).map(drop),
        Some("udp-client") => super::udp_client::UdpClientArgs::try_parse_from(argv).map(drop),
        _ => Ok(()),
    };
    let Err(err) = result else { return Ok(()) };
    // `--help` and `--version` print and exit 0: the command is valid.
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        return Ok(());
    }
    let rendered = err.render().to_string();
    let line = rendered.lines().next().unwrap_or("invalid arguments");
    let reason = line.strip_prefix("error: ").unwrap_or(line).to_string();
    let culprit = [ContextKind::InvalidValue, ContextKind::InvalidArg]
        .into_iter()
        .find_map(|kind| match err.get(kind) {
            Some(ContextValue::String(v)) => Some(v.clone()),
            _ => None,
        });
    let at = culprit.and_then(|v| {
        let flag = v.split_whitespace().next().unwrap_or(&v).to_string();
        argv.iter()
            .enumerate()
            .skip(1)
            .find(|(_, a)| **a == v || **a == flag || a.ends_with(&format!("={v}")))
            .map(|(i, _)| i)
    });
    Err((at, reason))
}

/// The connect timeout (`-t`) a command gives tcplab's tcp-client or tcp-eager-producer, if it
/// does and the app would accept it.
pub fn connect_timeout(argv: &[String]) -> Option<Duration> {
    let secs = match app_of(argv)? {
        "tcp-client" => {
            super::client::ClientArgs::try_parse_from(argv)
                .ok()?
                .connect_timeout_sec
        }
        "tcp-eager-producer" => {
            super::producer::ProducerArgs::try_parse_from(argv)
                .ok()?
                .connect_timeout_sec
        }
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(port("1234"), Ok(1234));
        assert_eq!(port("65535"), Ok(65535));
        assert!(port("1023").unwrap_err().contains("outside 1024..65535"));
        assert!(port("70000").is_err());
        assert!(port("http").is_err());
        assert_eq!(any_port("1"), Ok(1));
        assert_eq!(any_port("443"), Ok(443));
        assert_eq!(any_port("65535"), Ok(65535));
        assert!(any_port("0").unwrap_err().contains("outside 1..65535"));
        assert!(any_port("65536").is_err());
        assert!(any_port("-1").is_err());
    }

    #[test]
    fn clients_take_any_port_and_servers_refuse_privileged_ones() {
        // The sandbox's clients connect to any port: `tcp-client 10.0.0.58 443` is valid.
        for app in [
            "tcp-client",
            "tcp-eager-producer",
            "udp-client",
            "udp-server",
        ] {
            assert_eq!(
                check_command(&argv(&[app, "10.0.0.58", "443"])),
                Ok(()),
                "{app}"
            );
            assert_eq!(
                check_command(&argv(&[app, "10.0.0.58", "1"])),
                Ok(()),
                "{app}"
            );
            assert!(
                check_command(&argv(&[app, "10.0.0.58", "0"])).is_err(),
                "{app}"
            );
        }
        for app in ["tcp-server", "tcp-hesitant-consumer"] {
            let (at, why) = check_command(&argv(&[app, "0.0.0.0", "443"])).unwrap_err();
            assert_eq!(at, Some(2), "{app}: {why}");
        }
    }

    #[test]
    fn commands_of_the_udp_apps_are_checked() {
        let ok = |a: &[&str]| check_command(&argv(a));
        assert_eq!(
            ok(&["udp-client", "h", "1234", "-r", "2", "--connected"]),
            Ok(())
        );
        let (at, _) = ok(&["udp-client", "h", "1234", "-r", "NaN"]).unwrap_err();
        assert_eq!(at, Some(4));
        assert!(ok(&["udp-server", "0.0.0.0", "1234", "-x"]).is_err());
        assert_eq!(connect_timeout(&argv(&["udp-client", "h", "1234"])), None);
    }

    #[test]
    fn pauses() {
        assert_eq!("0".parse(), Ok(PauseRange { min: 0.0, max: 0.0 }));
        assert_eq!("1..2.5".parse(), Ok(PauseRange { min: 1.0, max: 2.5 }));
        assert!("3..1".parse::<PauseRange>().is_err());
        assert!("-1".parse::<PauseRange>().is_err());
        assert!("a..b".parse::<PauseRange>().is_err());
        let r = PauseRange { min: 1.0, max: 2.0 };
        for _ in 0..100 {
            let d = r.pick().as_secs_f64();
            assert!((1.0..=2.0).contains(&d));
        }
        assert_eq!(PauseRange::default().to_string(), "5..25");
    }

    #[test]
    fn timeouts() {
        assert_eq!(seconds("0.5"), Ok(0.5));
        assert!(seconds("NaN").is_err());
        assert!(seconds("inf").is_err());
        assert!(positive_seconds("0").is_err());
    }

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn huge_seconds_are_refused() {
        assert!(seconds("1e20").unwrap_err().contains("at most 86400"));
        assert_eq!(seconds("86400"), Ok(86_400.0));
        assert!(positive_seconds("-5").is_err());
    }

    #[test]
    fn commands_of_the_apps_are_checked() {
        let client = |extra: &[&str]| {
            let mut a = argv(&["tcp-client", "10.0.0.58", "1234"]);
            a.extend(argv(extra));
            check_command(&a)
        };
        assert_eq!(client(&["-t", "3.5", "-c", "1"]), Ok(()));
        let (at, why) = client(&["-t", "NaN"]).unwrap_err();
        assert_eq!(at, Some(4), "{why}");
        assert!(why.contains("NaN"), "{why}");
        let (at, why) = client(&["-c", "1", "-r", "1e20"]).unwrap_err();
        assert_eq!(at, Some(6), "{why}");
        // `-5` is not taken for a value: the app refuses it all the same.
        assert!(client(&["-t", "-5"]).is_err());
        let (at, _) = client(&["--connect-timeout-sec=inf"]).unwrap_err();
        assert_eq!(at, Some(3));
        let (at, why) = client(&["--frobnicate"]).unwrap_err();
        assert_eq!(at, Some(3), "{why}");
        assert_eq!(client(&["--help"]), Ok(()));
        assert!(check_command(&argv(&["/usr/bin/tcp-server", "0.0.0.0", "80"])).is_err());
        assert!(check_command(&argv(&["tcp-server", "0.0.0.0", "1234", "-d", "nan"])).is_err());
        // Other programs are theirs to check.
        assert_eq!(check_command(&argv(&["ping", "-t", "-5"])), Ok(()));
    }

    #[test]
    fn connect_timeout_is_read_as_the_app_reads_it() {
        let t = |a: &[&str]| connect_timeout(&argv(a));
        assert_eq!(
            t(&["tcp-client", "h", "1234", "-t3.5"]),
            Some(Duration::from_secs_f64(3.5))
        );
        assert_eq!(
            t(&["tcp-client", "h", "1234"]),
            Some(Duration::from_secs(10))
        );
        assert_eq!(t(&["tcp-client", "h", "1234", "-t", "NaN"]), None);
        assert_eq!(t(&["ping", "-t", "-5", "h"]), None);
    }
}
