//! Stopping a run from outside, as Ctrl+C or SIGTERM asks: the run is marked interrupted, its
//! programs are signalled, and the engine skips the remaining steps but still stops the
//! captures, writes the pcaps and checks what it has.
//!
//! Programs are held by pidfd, not by PID: a program that ended and was reaped can never be
//! confused with a new process that got its PID.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};

/// A handle to interrupt a run; clones share one state.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    /// The signal that interrupted the run, once it has.
    signal: Option<i32>,
    /// A pidfd for each program the run started.
    programs: Vec<OwnedFd>,
}

impl Interrupt {
    /// A handle for a run not interrupted yet.
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the run interrupted by `signal` (the first one counts) and stops its programs as
    /// Ctrl+C would (SIGINT).
    pub fn interrupt(&self, signal: i32) {
        let mut state = self.state();
        state.signal.get_or_insert(signal);
        for p in &state.programs {
            send(p, libc::SIGINT);
        }
    }

    /// Kills every program of the run that is still running (SIGKILL).
    pub fn kill_programs(&self) {
        for p in &self.state().programs {
            send(p, libc::SIGKILL);
        }
    }

    /// The signal that interrupted the run, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.state().signal
    }

    /// Follows a program the run just started; if the run is already interrupted, the program
    /// is stopped at once. `pid` must be a child not yet reaped.
    pub(crate) fn watch(&self, pid: u32) {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return;
        }
        // SAFETY: the kernel just gave us this fd; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut state = self.state();
        if state.signal.is_some() {
            send(&fd, libc::SIGINT);
        }
        state.programs.push(fd);
    }
}

/// The name of a signal, e.g. `SIGINT`.
pub fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {signal}"))
}

fn send(pidfd: &OwnedFd, signal: i32) {
    // SAFETY: pidfd_send_signal on a pidfd we own, with no siginfo. A program that already
    // ended gives ESRCH, which is fine: it is stopped.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn interrupt_stops_programs_watched_before_and_after() {
        let before = Command::new("sleep").arg("30").spawn().unwrap();
        let i = Interrupt::new();
        assert_eq!(i.signal(), None);
        i.watch(before.id());
        i.interrupt(libc::SIGTERM);
        i.interrupt(libc::SIGINT);
        assert_eq!(i.signal(), Some(libc::SIGTERM), "the first signal counts");
        let after = Command::new("sleep").arg("30").spawn().unwrap();
        i.watch(after.id());
        for mut child in [before, after] {
            let status = child.wait().unwrap();
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(libc::SIGINT));
        }
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
    }
}
