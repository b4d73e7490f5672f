//! The sandbox's apps (tcp-server, tcp-client) as library code; the binaries are thin wrappers
//! so that the harness and the tests share exactly what users run.

pub mod args;
pub mod client;
pub mod consumer;
pub mod locate;
pub mod palette;
pub mod producer;
pub mod server;

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

/// Ends an app the same way in every binary: nothing more on success, else one line on stderr
/// and the class's exit code.
pub fn finish(result: Result<(), AppError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            anstream::eprintln!("{err}");
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
