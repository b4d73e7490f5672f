//! Where an expectation was written, so that its failure points home: the line of its
//! `[[expect]]` in a scenario file, or the line of a test that built it in Rust.

use std::fmt;
use std::panic::Location;

/// A file and a line, shown as `FILE:LINE` as compilers and editors read it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceLine {
    /// The file, as the user named it (a scenario's path as given to `tcplab run`, or a
    /// source file relative to its crate).
    pub file: String,
    /// The line, from 1.
    pub line: u32,
}

impl SourceLine {
    /// `file:line`.
    pub fn new(file: impl Into<String>, line: u32) -> SourceLine {
        SourceLine {
            file: file.into(),
            line,
        }
    }

    /// The source line of a caller, as `#[track_caller]` functions see it.
    pub fn of(location: &Location<'_>) -> SourceLine {
        SourceLine::new(location.file(), location.line())
    }
}

impl fmt::Display for SourceLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_file_colon_line() {
        assert_eq!(
            SourceLine::new("connect-timeout.toml", 41).to_string(),
            "connect-timeout.toml:41"
        );
        let here = SourceLine::of(Location::caller());
        assert!(here.file.ends_with("source.rs"), "{here}");
    }
}
