//! Programs the harness runs: output lines with timestamps (bounded: see [`Cut`]), waiting for
//! a line or for the exit without sleeping, the exit class, and a kill when the handle is
//! dropped.

mod output;

use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error_class::ErrorClass;
pub use output::{Cut, KEEP_BYTES, KEEP_LINES, MAX_LINE};
use output::{Output, read_lines};

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line a program printed, with the time since it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// When it was printed, since the program started.
    pub at: Duration,
    /// Where it was printed.
    pub stream: Stream,
    /// The line, without its newline and its terminal colour sequences (lossy UTF-8, cut at
    /// [`MAX_LINE`] bytes).
    pub text: String,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.stream {
            Stream::Stdout => "out",
            Stream::Stderr => "err",
        };
        write!(f, "{:>8.3}s {tag} | {}", self.at.as_secs_f64(), self.text)
    }
}

/// Why a program could not be started, waited for, or did not do what was awaited.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The program could not be started.
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        /// The command line.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No line matched in time.
    #[error("`{program}` printed no line matching {wanted} within {} s; its output:\n{output}", crate::units::fmt_secs(.waited.as_secs_f64()))]
    LineTimeout {
        /// The command line.
        program: String,
        /// What was awaited.
        wanted: String,
        /// How long.
        waited: Duration,
        /// Its output so far.
        output: String,
    },
    #[error(
        "`{program}` ended ({status}) without printing a line matching {wanted}; its output:\n{output}"
    )]
    /// The program ended before a line matched.
    EndedBeforeLine {
        /// The command line.
        program: String,
        /// What was awaited.
        wanted: String,
        /// How it ended.
        status: String,
        /// Its output.
        output: String,
    },
    /// The program was still running at the timeout (it was killed).
    #[error("`{program}` was still running after {} s; its output:\n{output}", crate::units::fmt_secs(.waited.as_secs_f64()))]
    ExitTimeout {
        /// The command line.
        program: String,
        /// How long.
        waited: Duration,
        /// Its output.
        output: String,
    },
    /// Waiting for the program failed.
    #[error("cannot wait for `{program}`: {source}")]
    Wait {
        /// The command line.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// How a finished program ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The command line, as run.
    pub program: String,
    /// Its exit status: a code, or the signal that ended it.
    pub status: ExitStatus,
    /// When it started, since the Unix epoch: the clock of packet timestamps, so a report
    /// can say what the program did on the wire and when.
    pub started_at: Duration,
    /// How long it ran.
    pub duration: Duration,
    /// The lines kept, with a marker line where some were cut (see [`Outcome::cut`]).
    pub lines: Vec<Line>,
    /// What was cut from the middle of an output too long to keep whole.
    pub cut: Option<Cut>,
}

impl Outcome {
    /// The error class the exit code stands for, for tcplab's own apps only; `None` for any
    /// other program (its exit code is its own: see [`Outcome::status`]), for a program killed
    /// by a signal, and for an exit code no class uses.
    pub fn class(&self) -> Option<ErrorClass> {
        let program = self.program.split(' ').next().unwrap_or_default();
        if !crate::error_class::is_app(program) {
            return None;
        }
        self.status.code().and_then(ErrorClass::from_exit_code)
    }

    /// The lines it printed on standard output.
    pub fn stdout(&self) -> impl Iterator<Item = &str> {
        self.lines
            .iter()
            .filter(|l| l.stream == Stream::Stdout)
            .map(|l| l.text.as_str())
    }

    /// The lines it printed on standard error.
    pub fn stderr(&self) -> impl Iterator<Item = &str> {
        self.lines
            .iter()
            .filter(|l| l.stream == Stream::Stderr)
            .map(|l| l.text.as_str())
    }

    /// Every line, timestamped, for a failure message.
    pub fn transcript(&self) -> String {
        transcript(&self.lines)
    }
}

fn transcript(lines: &[Line]) -> String {
    if lines.is_empty() {
        return "    (no output)".to_string();
    }
    lines
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A running program. Dropping it kills the program and reaps it.
pub struct Proc {
    program: String,
    child: Child,
    started: Instant,
    started_at: Duration,
    output: Arc<(Mutex<Output>, Condvar)>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `cmd` with stdin closed and stdout and stderr captured.
    pub fn spawn(mut cmd: Command) -> Result<Proc, ProcError> {
        prepare(&mut cmd);
        let program = describe(&cmd);
        let started = Instant::now();
        let child = cmd.spawn().map_err(|source| ProcError::Spawn {
            program: program.clone(),
            source,
        })?;
        Ok(Proc::from_child(program, child, started))
    }

    /// Wraps a child started with [`prepare`]d pipes (e.g. spawned on a namespace's worker).
    pub(crate) fn from_child(program: String, mut child: Child, started: Instant) -> Proc {
        let started_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_sub(started.elapsed());
        let output = Arc::new((Mutex::new(Output::default()), Condvar::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(read_lines(out, Stream::Stdout, started, output.clone()));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(read_lines(err, Stream::Stderr, started, output.clone()));
        }
        Proc {
            program,
            child,
            started,
            started_at,
            output,
            readers,
            status: None,
        }
    }

    /// The command line, as run.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// When it started, since the Unix epoch (see [`Outcome::started_at`]).
    pub fn started_at(&self) -> Duration {
        self.started_at
    }

    /// Its process ID, as this process sees it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lines printed so far.
    pub fn lines(&self) -> Vec<Line> {
        self.output.0.lock().expect("output lock").lines()
    }

    /// Waits for a line containing `needle`; fails when the program ends or time runs out first.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> Result<Line, ProcError> {
        self.wait_for(|l| l.contains(needle), &format!("`{needle}`"), timeout)
    }

    /// Waits for a line `matches` accepts; `wanted` describes it in the error. A line printed
    /// in a flood of output may be cut before it is looked at (see [`Cut`]).
    pub fn wait_for(
        &self,
        matches: impl Fn(&str) -> bool,
        wanted: &str,
        timeout: Duration,
    ) -> Result<Line, ProcError> {
        let deadline = Instant::now() + timeout;
        let (lock, ready) = &*self.output;
        let mut out = lock.lock().expect("output lock");
        let mut seen = 0;
        loop {
            if let Some(line) = out.since(seen).find(|l| matches(&l.text)) {
                return Ok(line.clone());
            }
            seen = out.received();
            if out.open_streams == 0 && !self.readers.is_empty() {
                let output = transcript(&out.lines());
                drop(out);
                return Err(ProcError::EndedBeforeLine {
                    program: self.program.clone(),
                    wanted: wanted.to_string(),
                    status: self.exit_description(),
                    output,
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ProcError::LineTimeout {
                    program: self.program.clone(),
                    wanted: wanted.to_string(),
                    waited: timeout,
                    output: transcript(&out.lines()),
                });
            }
            out = ready
                .wait_timeout(out, deadline - now)
                .expect("output lock")
                .0;
        }
    }

    /// Waits until the readers have taken everything the program wrote before it ended.
    fn drain(&self, limit: Duration) {
        let (lock, ready) = &*self.output;
        let out = lock.lock().expect("output lock");
        let _ = ready
            .wait_timeout_while(out, limit, |o| o.open_streams > 0)
            .expect("output lock");
    }

    fn exit_description(&self) -> String {
        // The streams closed, so the program has exited or is about to; a short bounded wait
        // makes the status available without polling.
        match wait_pid(self.child.id(), Duration::from_millis(500)) {
            Ok(true) => "exited".to_string(),
            _ => "closed its output".to_string(),
        }
    }

    /// Sends `signal` (e.g. SIGINT to stop a server as Ctrl+C would).
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> std::io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).map_err(std::io::Error::from)
    }

    /// Waits for the program to end on its own.
    pub fn wait(mut self, timeout: Duration) -> Result<Outcome, ProcError> {
        let exited = wait_pid(self.child.id(), timeout).map_err(|source| ProcError::Wait {
            program: self.program.clone(),
            source,
        })?;
        if !exited {
            return Err(ProcError::ExitTimeout {
                program: self.program.clone(),
                waited: timeout,
                output: transcript(&self.lines()),
            });
        }
        self.finish()
    }

    /// Stops the program as Ctrl+C would (SIGINT); kills it if it is still running after
    /// `grace`. Returns how it ended either way.
    pub fn stop(mut self, grace: Duration) -> Result<Outcome, ProcError> {
        self.signal(nix::sys::signal::Signal::SIGINT)
            .map_err(|source| ProcError::Wait {
                program: self.program.clone(),
                source,
            })?;
        let exited = wait_pid(self.child.id(), grace).unwrap_or(false);
        if !exited {
            let _ = self.child.kill();
        }
        self.finish()
    }

    /// Kills the program (SIGKILL) and returns how it ended.
    pub fn kill(mut self) -> Result<Outcome, ProcError> {
        let _ = self.child.kill();
        self.finish()
    }

    fn finish(&mut self) -> Result<Outcome, ProcError> {
        let status = self.child.wait().map_err(|source| ProcError::Wait {
            program: self.program.clone(),
            source,
        })?;
        let duration = self.started.elapsed();
        self.status = Some(status);
        self.drain(Duration::from_secs(2));
        // A grandchild still holding the pipe would keep a reader going: join only finished ones.
        for reader in std::mem::take(&mut self.readers) {
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        let out = self.output.0.lock().expect("output lock");
        Ok(Outcome {
            program: self.program.clone(),
            status,
            started_at: self.started_at,
            duration,
            lines: out.lines(),
            cut: out.cut(),
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sets the pipes every harness program gets.
pub(crate) fn prepare(cmd: &mut Command) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
}

/// The command line as a person would type it.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    if let Some(name) = parts[0].rsplit('/').next() {
        parts[0] = name.to_string();
    }
    parts.join(" ")
}

/// Drops ANSI colour sequences, so matching does not depend on a program's colours.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits up to `timeout` for process `pid` to exit, without reaping it. A pidfd turns readable
/// when the process ends, so this needs no polling loop.
fn wait_pid(pid: u32, timeout: Duration) -> std::io::Result<bool> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n > 0 {
            return Ok(true);
        }
        if n == 0 {
            return Ok(false);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn lines_and_exit_code() {
        let p = Proc::spawn(sh("echo one; echo two >&2; exit 11")).unwrap();
        let outcome = p.wait(Duration::from_secs(10)).unwrap();
        assert_eq!(outcome.status.code(), Some(11));
        assert_eq!(
            outcome.class(),
            None,
            "sh is not one of tcplab's apps: 11 is its own"
        );
        assert_eq!(outcome.stdout().collect::<Vec<_>>(), ["one"]);
        assert_eq!(outcome.stderr().collect::<Vec<_>>(), ["two"]);
    }

    #[test]
    fn waits_for_a_line_then_kills_on_drop() {
        let p = Proc::spawn(sh("echo ready; exec sleep 30")).unwrap();
        let line = p.wait_for_line("ready", Duration::from_secs(10)).unwrap();
        assert_eq!(line.text, "ready");
        let pid = p.pid();
        drop(p);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn line_that_never_comes_times_out() {
        let p = Proc::spawn(sh("echo hello; exec sleep 30")).unwrap();
        let err = p
            .wait_for_line("never", Duration::from_millis(200))
            .unwrap_err();
        assert!(matches!(err, ProcError::LineTimeout { .. }), "{err}");
        assert!(err.to_string().contains("hello"), "{err}");
    }

    #[test]
    fn program_ending_before_the_line_is_reported_at_once() {
        let p = Proc::spawn(sh("echo bye")).unwrap();
        let started = Instant::now();
        let err = p
            .wait_for_line("never", Duration::from_secs(30))
            .unwrap_err();
        assert!(matches!(err, ProcError::EndedBeforeLine { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn exit_timeout_then_kill() {
        let p = Proc::spawn(sh("exec sleep 30")).unwrap();
        let pid = p.pid();
        let p2 = Proc::spawn(sh("exec sleep 30")).unwrap();
        assert!(matches!(
            p2.wait(Duration::from_millis(100)),
            Err(ProcError::ExitTimeout { .. })
        ));
        let outcome = p.kill().unwrap();
        assert_eq!(outcome.status.code(), None);
        assert_eq!(outcome.class(), None);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn stop_is_ctrl_c_then_kill() {
        let polite = Proc::spawn(sh(
            "trap 'echo bye; exit 3' INT; echo ready; while :; do sleep 0.05; done",
        ))
        .unwrap();
        polite
            .wait_for_line("ready", Duration::from_secs(10))
            .unwrap();
        let o = polite.stop(Duration::from_secs(10)).unwrap();
        assert_eq!(o.status.code(), Some(3), "{}", o.transcript());
        assert!(o.stdout().any(|l| l == "bye"));

        let stubborn = Proc::spawn(sh("trap '' INT; echo ready; exec sleep 30")).unwrap();
        stubborn
            .wait_for_line("ready", Duration::from_secs(10))
            .unwrap();
        let started = Instant::now();
        let o = stubborn.stop(Duration::from_millis(200)).unwrap();
        assert_eq!(o.status.code(), None, "killed after the grace period");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[31mWorker-1: hi\u{1b}[0m"),
            "Worker-1: hi"
        );
    }

    #[test]
    fn describe_uses_file_name() {
        let mut cmd = Command::new("/usr/bin/tcp-client");
        cmd.args(["10.0.0.58", "1234"]);
        assert_eq!(describe(&cmd), "tcp-client 10.0.0.58 1234");
    }
}
