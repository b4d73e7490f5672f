//! When a client's SYNs go out, derived from its namespace's sysctls and the application's
//! connect timeout, and tolerances for comparing times (absolute + relative, as packetdrill).

use std::time::Duration;

/// How far a seen time may be from the expected one: `absolute + relative * expected`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Fixed slack, whatever the expected time.
    pub absolute: Duration,
    /// Slack as a fraction of the expected time (0.05 is 5%).
    pub relative: f64,
}

impl Default for Tolerance {
    /// The kernel's SYN timer runs about 2.4% slow (1.024 s for 1 s), and scheduling adds
    /// milliseconds.
    fn default() -> Self {
        Tolerance {
            absolute: Duration::from_millis(100),
            relative: 0.05,
        }
    }
}

impl Tolerance {
    /// The largest difference allowed around `expected`.
    pub fn margin(&self, expected: Duration) -> Duration {
        self.absolute + expected.mul_f64(self.relative)
    }

    /// Whether `seen` is within the margin of `expected`.
    pub fn allows(&self, expected: Duration, seen: Duration) -> bool {
        expected.abs_diff(seen) <= self.margin(expected)
    }
}

/// The inputs of the SYN retransmission schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynSchedule {
    /// `net.ipv4.tcp_syn_linear_timeouts` (Linux 6.7+): retransmissions on a 1 s timer before
    /// the interval starts doubling; `None` on kernels without it.
    pub linear_timeouts: Option<u32>,
    /// `net.ipv4.tcp_syn_retries`: not a count, a time limit of 2^(R+1) - 1 seconds.
    pub syn_retries: u32,
    /// The application's connect timeout, if it has one.
    pub app_timeout: Option<Duration>,
}

/// A host's sysctls that time its SYNs: part of the evidence, read from the sending host's
/// namespace after a run (`net.ipv4.tcp_syn_linear_timeouts`, `net.ipv4.tcp_syn_retries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynSysctls {
    /// `tcp_syn_linear_timeouts`; `None` on kernels before 6.7, which double from the start.
    pub linear_timeouts: Option<u32>,
    /// `tcp_syn_retries`.
    pub syn_retries: u32,
}

impl SynSysctls {
    /// The sysctl keys this reads.
    pub const KEYS: [&str; 2] = [
        "net.ipv4.tcp_syn_linear_timeouts",
        "net.ipv4.tcp_syn_retries",
    ];

    /// Reads them through `lookup` (a key's value, or `None` when the kernel lacks it).
    pub fn read(lookup: impl Fn(&str) -> Option<String>) -> Result<SynSysctls, String> {
        let number = |key: &str, value: String| {
            value
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("{key} is `{}`, not a number", value.trim()))
        };
        let [linear, retries] = SynSysctls::KEYS;
        Ok(SynSysctls {
            linear_timeouts: lookup(linear).map(|v| number(linear, v)).transpose()?,
            syn_retries: number(
                retries,
                lookup(retries).ok_or_else(|| format!("cannot read {retries}"))?,
            )?,
        })
    }

    /// The schedule of a client with these sysctls and its own connect timeout.
    pub fn schedule(self, app_timeout: Option<Duration>) -> SynSchedule {
        SynSchedule {
            linear_timeouts: self.linear_timeouts,
            syn_retries: self.syn_retries,
            app_timeout,
        }
    }
}

/// One predicted SYN: when, and whether it must be seen (one predicted within the tolerance
/// of the point where the client gives up may or may not go out).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpectedSyn {
    /// When it should leave, counted from the first SYN.
    pub at: Duration,
    /// False for a SYN so close to the give-up point that it may not be sent.
    pub required: bool,
}

impl SynSchedule {
    /// When the kernel gives up on its own.
    pub fn kernel_limit(&self) -> Duration {
        Duration::from_secs((1u64 << (self.syn_retries.min(30) + 1)) - 1)
    }

    /// When the connection attempt ends: the kernel's limit or the application's timeout.
    pub fn ends_at(&self) -> Duration {
        match self.app_timeout {
            Some(t) => t.min(self.kernel_limit()),
            None => self.kernel_limit(),
        }
    }

    /// The SYNs, as offsets from the first one.
    pub fn send_times(&self, tolerance: Tolerance) -> Vec<ExpectedSyn> {
        let end = self.ends_at();
        let mut times = vec![ExpectedSyn {
            at: Duration::ZERO,
            required: true,
        }];
        let mut at = Duration::ZERO;
        for n in 1u32..64 {
            let interval = match self.linear_timeouts {
                Some(l) if n <= l + 1 => 1,
                Some(l) => 1u64 << (n - l - 1).min(20),
                None => 1u64 << (n - 1).min(20),
            };
            at += Duration::from_secs(interval);
            if at >= end + tolerance.margin(at) {
                break;
            }
            let required = at + tolerance.margin(at) < end;
            times.push(ExpectedSyn { at, required });
        }
        times
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(times: &[ExpectedSyn]) -> Vec<u64> {
        times
            .iter()
            .filter(|t| t.required)
            .map(|t| t.at.as_secs())
            .collect()
    }

    fn schedule(l: Option<u32>, r: u32, t: Option<f64>) -> Vec<ExpectedSyn> {
        SynSchedule {
            linear_timeouts: l,
            syn_retries: r,
            app_timeout: t.map(Duration::from_secs_f64),
        }
        .send_times(Tolerance::default())
    }

    #[test]
    fn defaults_match_what_the_kernel_does() {
        // Measured: SYNs at 0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67 s, then it gives up.
        assert_eq!(
            secs(&schedule(Some(4), 6, None)),
            [0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67]
        );
    }

    #[test]
    fn measured_small_settings() {
        assert_eq!(secs(&schedule(Some(0), 1, None)), [0, 1]);
        assert_eq!(secs(&schedule(Some(0), 2, None)), [0, 1, 3]);
        assert_eq!(secs(&schedule(Some(4), 2, None)), [0, 1, 2, 3, 4, 5]);
        assert_eq!(secs(&schedule(None, 3, None)), [0, 1, 3, 7]);
    }

    #[test]
    fn application_timeout_cuts_the_schedule() {
        // nc -w 10 with the defaults: 0, 1, 2, 3, 4, 5, 7, then nc gives up.
        assert_eq!(
            secs(&schedule(Some(4), 6, Some(10.0))),
            [0, 1, 2, 3, 4, 5, 7]
        );
        assert_eq!(secs(&schedule(Some(4), 6, Some(3.5))), [0, 1, 2, 3]);
    }

    #[test]
    fn a_syn_at_the_deadline_is_optional() {
        let times = schedule(Some(4), 6, Some(3.0));
        assert_eq!(secs(&times), [0, 1, 2]);
        assert_eq!(times.len(), 4, "the SYN due at 3 s may or may not go out");
        assert!(!times[3].required);
    }

    #[test]
    fn sysctls_are_read_and_checked() {
        let read = |linear: Option<&str>, retries: Option<&str>| {
            SynSysctls::read(|k| match k {
                "net.ipv4.tcp_syn_linear_timeouts" => linear.map(String::from),
                _ => retries.map(String::from),
            })
        };
        assert_eq!(
            read(Some("4\n"), Some("6\n")).unwrap(),
            SynSysctls {
                linear_timeouts: Some(4),
                syn_retries: 6
            }
        );
        assert_eq!(read(None, Some("6")).unwrap().linear_timeouts, None);
        assert!(read(Some("4"), None).unwrap_err().contains("cannot read"));
        assert!(
            read(Some("x"), Some("6"))
                .unwrap_err()
                .contains("not a number")
        );
    }

    #[test]
    fn tolerance() {
        let t = Tolerance::default();
        assert!(t.allows(Duration::from_secs(1), Duration::from_millis(1024)));
        assert!(t.allows(Duration::from_secs(35), Duration::from_millis(35_840)));
        assert!(!t.allows(Duration::from_secs(1), Duration::from_millis(1400)));
    }
}
