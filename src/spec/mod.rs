//! The topology model, its TOML form and its validation. Nothing here touches the kernel.

pub(crate) mod location;
mod model;
mod resolve;

use std::path::{Path, PathBuf};

pub use model::{
    Action, BRIDGE, DEFAULT_SUBNET, FABRIC, FirewallRule, HostChain, HostSpec, PortRange, Protocol,
    SecurityGroup, SgRule, Topology,
};
pub use resolve::{
    Allow, FieldPath, MAX_HOST_NAME, Placement, Resolved, ResolvedFirewall, ResolvedHost, Segment,
    ValidationError, resolve,
};

/// A topology file that cannot be used: where, and what to change.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
}

impl Topology {
    /// Reads, parses and validates a topology file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<(Topology, Resolved), SpecError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Topology::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates topology text; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<(Topology, Resolved), SpecError> {
        let at = |offset: usize, message: String| {
            let (line, column) = location::line_col(text, offset);
            SpecError::Invalid {
                file: file.to_string(),
                line,
                column,
                message,
            }
        };
        let topo: Topology = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            at(offset, e.message().trim_end().to_string())
        })?;
        let resolved = resolve(&topo).map_err(|e| {
            let offset = location::offset_of(text, &e.path).unwrap_or(0);
            at(offset, format!("{}: {}", e.path, e.message))
        })?;
        Ok((topo, resolved))
    }

    /// Validates a topology built in Rust.
    pub fn resolve(&self) -> Result<Resolved, ValidationError> {
        resolve(self)
    }
}

/// Building blocks for other files' validation (scenarios).
pub(crate) mod resolve_helpers {
    pub(crate) use super::resolve::{at, invalid};
}

#[cfg(test)]
mod tests;
