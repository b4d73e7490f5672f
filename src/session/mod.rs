//! A lab in a test: every host captured while programs run in the hosts, then checks of what
//! the programs did and what the wire showed, with a readable report and the pcaps kept when
//! a check fails.
//!
//! ```no_run
//! use std::time::Duration;
//! use tcplab::expect;
//! use tcplab::lab::Lab;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! if !tcplab::session::privileged() {
//!     return Ok(()); // TCPLAB_SKIP_PRIVILEGED=1 and not root: skipped, and said so
//! }
//! let lab = Lab::from_file("fixtures/topologies/article.toml")?;
//! let run = lab.record()?;
//! let _server = run.spawn("server", ["python3", "-m", "http.server", "1235"])?;
//! run.wait_listening("server", 1235, Duration::from_secs(5))?;
//! let curl = run.run("client-1", ["curl", "-sS", "--connect-timeout", "3", "http://server:1235/"])?;
//! run.check([
//!     expect::exit(&curl, 28),
//!     expect::took(&curl, Duration::from_secs(3)),
//!     expect::syn_retransmissions("client-1", "server:1235"),
//!     expect::no_flow("server", "server:1235"),
//! ])?;
//! # Ok(()) }
//! ```

mod listen;
mod resolve;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::expect::{Evidence, Expect, ProgramName, Verdict, evaluate_after, read_syn_sysctls};
use crate::lab::{Lab, LabError, Recording};
use crate::proc::{Line, Outcome, Proc, ProcError};

/// How long [`Session::run`] waits for a program by default.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a program still running when the session checks gets after Ctrl+C.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The environment variable that skips privileged tests on purpose (see [`privileged`]).
pub const SKIP_VAR: &str = "TCPLAB_SKIP_PRIVILEGED";

/// The environment variable naming a folder where sessions keep their pcaps (one folder per
/// session inside it), instead of a temporary folder.
pub const ARTIFACTS_VAR: &str = "TCPLAB_ARTIFACTS";

/// What went wrong in a session. Its `Debug` is its report, so a test that returns it with
/// `?` shows the same readable failure as one that panics with it.
#[derive(thiserror::Error)]
pub enum SessionError {
    /// Building, capturing or reading the lab failed.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// A program could not be started or waited for.
    #[error(transparent)]
    Proc(#[from] ProcError),
    /// An empty command.
    #[error("a command needs at least the program's name")]
    EmptyCommand,
    /// A program whose end is unknown: an earlier wait or stop of it failed (and killed it).
    #[error("how `{program}` ended is unknown: an earlier wait or stop of it failed")]
    Unknown {
        /// The program's name in the session.
        program: String,
    },
    /// One of tcplab's apps was named, and is nowhere to be found or built.
    #[error(transparent)]
    AppNotFound(#[from] crate::apps::locate::AppNotFound),
    /// Nothing listened on the port in time.
    #[error(
        "nothing listened on TCP port {port} in host {host} within {} s (its socket table was read, no packet sent)",
        waited.as_secs_f64()
    )]
    NotListening {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// How long it waited.
        waited: Duration,
    },
    /// A file or folder of the session's could not be made.
    #[error("cannot {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// Some expectation did not hold: the report says which, and what was seen.
    #[error("{report}")]
    Failed {
        /// The full report: every check, the packets concerned, and where the pcaps are.
        report: String,
        /// The folder holding the pcaps, kept for the failure.
        artifacts: PathBuf,
    },
}

impl std::fmt::Debug for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The running test's name, as libtest names its thread (`module::test`), for messages and
/// folder names; `None` outside a test.
fn test_name() -> Option<String> {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .map(|n| n.rsplit("::").next().unwrap_or(n).to_string())
}

/// Whether tests that build labs can run here. Without root privileges this panics with how
/// to run them, unless the user set `TCPLAB_SKIP_PRIVILEGED=1` to skip them on purpose: then
/// it says so on stderr and returns `false`.
#[track_caller]
pub fn privileged() -> bool {
    match crate::lab::check_privileges() {
        Ok(()) => true,
        Err(e) if std::env::var_os(SKIP_VAR).is_some_and(|v| v == "1") => {
            let test = test_name().map(|t| format!("{t}: ")).unwrap_or_default();
            eprintln!("{test}skipped: {e} ({SKIP_VAR}=1)");
            false
        }
        Err(e) => panic!(
            "{e}\nRun the tests as root (`sudo -E cargo test`); to skip the tests that need it instead, set {SKIP_VAR}=1."
        ),
    }
}

/// A program started in a session: its name in reports and expectations, and what it did.
#[derive(Clone)]
pub struct Program(Arc<Entry>);

struct Entry {
    name: String,
    host: String,
    running: Mutex<Option<Proc>>,
    outcome: Mutex<Option<Outcome>>,
}

impl ProgramName for Program {
    fn program_name(&self) -> &str {
        &self.0.name
    }
}

impl Program {
    /// Its name in the session: the program's file name, with `-2`, `-3`... when the same
    /// program runs again.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The host it runs in.
    pub fn host(&self) -> &str {
        &self.0.host
    }

    /// How it ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        lock(&self.0.outcome).clone()
    }

    /// Waits for a line containing `needle` (it may have been printed already).
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> Result<Line, SessionError> {
        if let Some(o) = lock(&self.0.outcome).as_ref()
            && let Some(line) = o.lines.iter().find(|l| l.text.contains(needle))
        {
            return Ok(line.clone());
        }
        match lock(&self.0.running).as_ref() {
            Some(p) => Ok(p.wait_for_line(needle, timeout)?),
            None => Err(SessionError::Proc(ProcError::EndedBeforeLine {
                program: self.0.name.clone(),
                wanted: format!("`{needle}`"),
                status: "ended".into(),
                output: self.outcome().map(|o| o.transcript()).unwrap_or_default(),
            })),
        }
    }

    /// Waits for it to end, at most `timeout`.
    pub fn wait(&self, timeout: Duration) -> Result<Outcome, SessionError> {
        self.finish(|p| p.wait(timeout))
    }

    /// Stops it as Ctrl+C would, and kills it if it has not ended `grace` later.
    pub fn stop(&self, grace: Duration) -> Result<Outcome, SessionError> {
        self.finish(|p| p.stop(grace))
    }

    fn finish(
        &self,
        end: impl FnOnce(Proc) -> Result<Outcome, ProcError>,
    ) -> Result<Outcome, SessionError> {
        let running = lock(&self.0.running).take();
        match running {
            Some(p) => {
                let outcome = end(p)?;
                *lock(&self.0.outcome) = Some(outcome.clone());
                Ok(outcome)
            }
            None => self.outcome().ok_or_else(|| SessionError::Unknown {
                program: self.0.name.clone(),
            }),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A lab being recorded: see the [module documentation](self).
pub struct Session<'lab> {
    lab: &'lab Lab,
    recording: Recording,
    programs: Mutex<Vec<Program>>,
    run_timeout: Duration,
}

impl Lab {
    /// Starts capturing every host, and returns a session to run programs in and check.
    pub fn record(&self) -> Result<Session<'_>, LabError> {
        Ok(Session {
            lab: self,
            recording: self.start_captures()?,
            programs: Mutex::new(Vec::new()),
            run_timeout: RUN_TIMEOUT,
        })
    }
}

impl<'lab> Session<'lab> {
    /// The lab.
    pub fn lab(&self) -> &'lab Lab {
        self.lab
    }

    /// How long [`Session::run`] waits for a program (default [`RUN_TIMEOUT`]).
    pub fn run_timeout(mut self, timeout: Duration) -> Self {
        self.run_timeout = timeout;
        self
    }

    /// When the captures started, since the Unix epoch: time 0 of the report.
    pub fn origin(&self) -> Duration {
        self.recording.origin()
    }

    /// Starts a program in `host` and returns at once. It runs until it ends, until
    /// [`Program::stop`], or until the session checks (Ctrl+C, then a kill).
    pub fn spawn<I, S>(&self, host: &str, command: I) -> Result<Program, SessionError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut args = command.into_iter();
        let program = args.next().ok_or(SessionError::EmptyCommand)?;
        // tcplab's own apps are found (or built) wherever they are: see `apps::locate`.
        let program = match program.as_ref().to_str() {
            Some(name) => crate::apps::locate::app_path(name, None)?.into_os_string(),
            None => program.as_ref().to_os_string(),
        };
        let mut cmd = Command::new(program);
        cmd.args(args);
        self.spawn_command(host, cmd)
    }

    /// Like [`Session::spawn`], with a [`Command`] of one's own (environment, folder...).
    pub fn spawn_command(&self, host: &str, cmd: Command) -> Result<Program, SessionError> {
        let h = self.lab.host(host)?;
        let base = std::path::Path::new(cmd.get_program())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "program".into());
        let mut programs = lock(&self.programs);
        let name = unique_name(&base, programs.iter().map(Program::name));
        let proc = h.spawn(cmd)?;
        let program = Program(Arc::new(Entry {
            name,
            host: host.to_string(),
            running: Mutex::new(Some(proc)),
            outcome: Mutex::new(None),
        }));
        programs.push(program.clone());
        Ok(program)
    }

    /// Runs a program in `host` to its end (at most the run timeout) and returns it.
    pub fn run<I, S>(&self, host: &str, command: I) -> Result<Program, SessionError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let program = self.spawn(host, command)?;
        program.wait(self.run_timeout)?;
        Ok(program)
    }

    /// Waits until something in `host` listens on TCP `port` (any address), reading the
    /// host's socket table: no packet is sent to find out, so captures show only the test's
    /// own traffic.
    pub fn wait_listening(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<(), SessionError> {
        let h = self.lab.host(host)?;
        let started = Instant::now();
        // The kernel announces no new listener, so the table is read again until one shows,
        // each time a little later (up to every 20 ms).
        let mut pause = Duration::from_millis(1);
        loop {
            if h.run_fn(|| listen::listening(port))?? {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(SessionError::NotListening {
                    host: host.to_string(),
                    port,
                    waited: started.elapsed(),
                });
            }
            std::thread::sleep(pause.min(timeout.saturating_sub(started.elapsed())));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Ends the session: stops programs still running (Ctrl+C, then a kill), stops the
    /// captures, writes them as pcaps, and checks every expectation. On success the pcaps are
    /// removed and the verdict returned; on failure they are kept and the error holds the
    /// report, which ends with where they are.
    pub fn check(
        self,
        expectations: impl IntoIterator<Item = Expect>,
    ) -> Result<Verdict, SessionError> {
        let mut failures = Vec::new();
        let programs = std::mem::take(&mut *lock(&self.programs));
        for p in &programs {
            let running = lock(&p.0.running).is_some();
            if running && let Err(e) = p.stop(STOP_GRACE) {
                failures.push(crate::expect::Check::failed(
                    format!("stop {}", p.name()),
                    e.to_string(),
                ));
            }
        }
        let outcomes: Vec<(String, Outcome)> = programs
            .iter()
            .filter_map(|p| p.outcome().map(|o| (p.name().to_string(), o)))
            .collect();
        let dir = artifacts_dir()?;
        let origin = self.recording.origin();
        let crate::lab::Recorded {
            traces,
            attribution,
        } = self.recording.finish(Some(dir.path()))?;
        let hosts: Vec<(&str, &str)> = programs.iter().map(|p| (p.name(), p.host())).collect();
        let (mut resolved, mut written_at) = (Vec::new(), Vec::new());
        for e in expectations {
            // Where the test built it: its report line starts there.
            let at = e.1.clone();
            match resolve::resolve(e, self.lab, &hosts, &outcomes) {
                Ok(r) => {
                    resolved.push(r);
                    written_at.push(at);
                }
                Err(check) => failures.push(check.written_at(at)),
            }
        }
        let (syn_sysctls, unread) = read_syn_sysctls(&resolved, |host, key| {
            self.lab.host(host).ok()?.sysctl(key).ok()
        });
        failures.extend(unread);
        let verdict = evaluate_after(
            failures,
            &resolved,
            &written_at,
            &Evidence {
                traces: &traces,
                outcomes: &outcomes,
                origin,
                syn_sysctls: &syn_sysctls,
                attribution: &attribution,
            },
        );
        if verdict.passed() {
            return Ok(verdict);
        }
        let kept = dir.keep();
        Err(SessionError::Failed {
            report: format!(
                "{verdict}\npcaps of this session kept in {}",
                kept.display()
            ),
            artifacts: kept,
        })
    }
}

/// `base`, or `base-2`, `base-3`... whichever is not taken yet.
fn unique_name<'a>(base: &str, taken: impl Iterator<Item = &'a str> + Clone) -> String {
    (1..)
        .map(|n| {
            if n == 1 {
                base.to_string()
            } else {
                format!("{base}-{n}")
            }
        })
        .find(|c| !taken.clone().any(|t| t == c))
        .expect("some name is free")
}

/// A private folder for the session's pcaps: in `$TCPLAB_ARTIFACTS` if set, else temporary.
fn artifacts_dir() -> Result<tempfile::TempDir, SessionError> {
    let mut builder = tempfile::Builder::new();
    // Named after the test, so that the pcaps of several failures are told apart.
    let prefix = match test_name() {
        Some(t) => format!(
            "tcplab-{}-",
            t.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "-")
        ),
        None => "tcplab-session-".to_string(),
    };
    builder
        .prefix(&prefix)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
    let made = match std::env::var_os(ARTIFACTS_VAR) {
        Some(parent) => {
            std::fs::create_dir_all(&parent).map_err(|source| SessionError::Io {
                what: format!(
                    "create {} (${ARTIFACTS_VAR})",
                    PathBuf::from(&parent).display()
                ),
                source,
            })?;
            builder.tempdir_in(parent)
        }
        None => builder.tempdir(),
    };
    made.map_err(|source| SessionError::Io {
        what: "create a folder for the session's pcaps".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let taken = ["curl", "curl-2", "python3"];
        assert_eq!(unique_name("curl", taken.iter().copied()), "curl-3");
        assert_eq!(unique_name("nc", taken.iter().copied()), "nc");
    }
}
