//! The bounds of every number in a topology or scenario file, and the checks that refuse what
//! lies outside them (NaN, infinities, negatives, absurd sizes) before anything runs.
//!
//! The bounds are generous for any lab on one machine and small enough that no conversion or
//! arithmetic on them can overflow (a `Duration` from 1e20 seconds panics).

use std::time::Duration;

/// The longest time in seconds anything in a scenario may take or wait (a day): the time
/// limit, a step's timeout, a connect timeout, and the seconds given to tcplab's own apps.
pub const MAX_SECONDS: f64 = 86_400.0;

/// The largest absolute tolerance in seconds of a SYN schedule expectation (an hour).
pub const MAX_TOLERANCE_ABSOLUTE: f64 = 3_600.0;

/// The largest relative tolerance of a SYN schedule expectation (10 times the expected time).
pub const MAX_TOLERANCE_RELATIVE: f64 = 10.0;

/// The most echo requests a `ping` step may send (one a second).
pub const MAX_PING_COUNT: u32 = 1_000;

/// The most hosts a lab may have: each is a network namespace with its own capture. Twice the
/// biggest lab tested (500 hosts, tests/big.rs); ten thousand would take minutes to build.
pub const MAX_HOSTS: usize = 1_000;

/// The most entries of one kind a file may hold: security groups, rules in one list, firewall
/// rules, steps, expectations, sysctls.
pub const MAX_ENTRIES: usize = 10_000;

/// The most addresses the security groups' rules may stand for, summed over all hosts (a rule
/// naming a group stands for each member's address): beyond it the rulesets would take
/// minutes to compute and build.
pub const MAX_EXPANDED_PEERS: usize = 200_000;

/// The longest sysctl value, in bytes (the kernel reads at most a page).
pub const MAX_SYSCTL_VALUE: usize = 4_096;

/// A number of seconds in `(0, MAX_SECONDS]`, as a duration.
pub fn positive_seconds(value: f64) -> Result<Duration, String> {
    if value.is_finite() && value > 0.0 && value <= MAX_SECONDS {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!(
            "{} is not a time tcplab can use: give seconds, more than 0 and at most {MAX_SECONDS} (a day)",
            show(value)
        ))
    }
}

/// A number in `[0, max]`.
pub fn fraction_or_seconds(value: f64, max: f64, what: &str) -> Result<f64, String> {
    if value.is_finite() && (0.0..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{} is not {what}: give a number from 0 to {max}",
            show(value)
        ))
    }
}

/// A count of at most `max` entries.
pub fn count(len: usize, max: usize, what: &str) -> Result<(), String> {
    if len <= max {
        Ok(())
    } else {
        Err(format!("{len} {what} is too many: at most {max}"))
    }
}

/// A float as the user wrote it, with NaN and the infinities named as TOML names them.
pub(crate) fn show(value: f64) -> String {
    if value.is_nan() {
        "nan".into()
    } else if value.is_infinite() {
        if value > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else if value.abs() >= 1e9 {
        format!("{value:e}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_refuse_what_no_duration_holds() {
        for bad in [
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            -0.0,
            1e20,
            MAX_SECONDS + 1.0,
        ] {
            assert!(positive_seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(positive_seconds(0.5), Ok(Duration::from_millis(500)));
        assert!(positive_seconds(MAX_SECONDS).is_ok());
        assert!(
            positive_seconds(f64::NAN)
                .unwrap_err()
                .starts_with("nan is not")
        );
        assert!(
            positive_seconds(1e20)
                .unwrap_err()
                .starts_with("1e20 is not")
        );
    }

    #[test]
    fn fractions_are_bounded() {
        assert_eq!(fraction_or_seconds(0.0, 1.0, "x"), Ok(0.0));
        for bad in [-0.1, f64::NAN, 1.5, f64::NEG_INFINITY] {
            assert!(fraction_or_seconds(bad, 1.0, "x").is_err(), "{bad}");
        }
    }
}
