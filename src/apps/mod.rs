//! The sandbox's apps (tcp-server, tcp-client, tcp-hesitant-consumer, tcp-eager-producer,
//! udp-server, udp-client) as library code; the binaries are thin wrappers so that the harness
//! and the tests share exactly what users run.

// Standard output may be closed (`tcp-server 0.0.0.0 1234 | head -1`, or a harness gone):
// anstream's `println!` panics then. The apps print through these instead (they shadow the
// prelude's in this module and the modules declared below): a closed pipe ends the app quietly,
// as it ends `cat`; standard error that cannot be written is given up on silently.
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::apps::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}
macro_rules! eprintln {
    ($($arg:tt)*) => {
        $crate::apps::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub mod args;
pub mod client;
pub mod consumer;
pub mod locate;
pub mod palette;
pub mod producer;
pub mod pyjson;
pub mod server;
pub mod udp_client;
pub mod udp_server;

use std::fmt;
use std::process::ExitCode;

use crate::error_class::ErrorClass;

/// Why an app stopped: its class decides the exit code, the message says the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AppError {
    /// The kind of failure; it picks the process exit code.
    pub class: ErrorClass,
    /// One line saying what went wrong, shown to the user.
    pub message: String,
}

impl AppError {
    /// An error of `class` with the one-line `message`.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        AppError {
            class,
            message: message.into(),
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}: {}", self.class, self.message)
    }
}

/// The exit status of an app whose standard output was closed: 128 + SIGPIPE, as a shell
/// reports a program a closed pipe ended (and as `tcplab` itself exits).
pub const CLOSED_STDOUT_EXIT_CODE: i32 = 141;

/// Writes one piece of an app's standard output through anstream (colours only on a terminal).
/// A closed pipe ends the app at once with [`CLOSED_STDOUT_EXIT_CODE`] and nothing on stderr;
/// any other failure (a full disk) is one line on stderr and the class `other`'s exit code.
pub fn write_stdout(args: fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = anstream::stdout();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(CLOSED_STDOUT_EXIT_CODE);
        }
        write_stderr(format_args!(
            "error: other: cannot write to standard output: {e}\n"
        ));
        std::process::exit(ErrorClass::Other.exit_code());
    }
}

/// Writes one piece of an app's standard error; a closed or failing stderr is ignored, since
/// there is nowhere left to say so.
pub fn write_stderr(args: fmt::Arguments<'_>) {
    use std::io::Write;
    let mut err = anstream::stderr();
    let _ = err.write_fmt(args).and_then(|()| err.flush());
}

/// Ends an app the same way in every binary: nothing more on success, else one line on stderr
/// and the class's exit code.
pub fn finish(result: Result<(), AppError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(u8::try_from(err.class.exit_code()).unwrap_or(1))
        }
    }
}

pub(crate) use crate::units::fmt_secs;

/// Builds the runtime the apps run on; one thread is plenty for the sandbox's load.
pub fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::new(ErrorClass::Other, format!("cannot start the runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_line_names_class() {
        let e = AppError::new(ErrorClass::ConnectTimeout, "no answer");
        assert_eq!(e.to_string(), "error: connect-timeout: no answer");
    }
}
