//! Argument parsers shared by the apps.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Parses a port for a listener or a target: the sandbox refuses ports below 1024.
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

/// Parses a non-negative, finite number of seconds.
pub fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("`{s}` must be zero or more seconds"))
    }
}

/// Parses a strictly positive number of seconds (a timeout of zero would never connect).
pub fn positive_seconds(s: &str) -> Result<f64, String> {
    let v = seconds(s)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err("a timeout must be more than 0 seconds".to_string())
    }
}

/// The client's pause between messages: a fixed time, or a random time in a range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PauseRange {
    pub min: f64,
    pub max: f64,
}

impl PauseRange {
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
}
