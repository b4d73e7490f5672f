//! The topology model, its TOML form and its validation. Nothing here touches the kernel.

pub mod bounds;
mod impair;
pub(crate) mod location;
mod model;
mod read;
mod resolve;
mod subnet;
mod vpc;

use std::path::{Path, PathBuf};

pub use impair::{
    DropFirst, DropMatch, Impair, Impairment, LinkDirection, LinkImpair, LinkImpairment, MAX_DELAY,
    MAX_DROP_FIRST, MAX_RATE, Netem, ResolvedDrop, parse_rate,
};
pub use model::{
    Action, BRIDGE, DEFAULT_SUBNET, FABRIC, FirewallRule, HostChain, HostSpec, PortRange, Protocol,
    SecurityGroup, SgRule, Topology,
};
pub use read::{MAX_FILE_SIZE, read_text};
pub(crate) use resolve::resolve;
pub use resolve::{
    Allow, FieldPath, MAX_HOST_NAME, Placement, Resolved, ResolvedFirewall, ResolvedHost, Segment,
    ValidationError,
};
pub use vpc::{
    AclAction, AclEntry, MAX_ACL_RULE, NetworkAcl, ResolvedAcl, ResolvedRoute, ResolvedSubnet,
    ResolvedVpc, Route, RouteTable, RouteTarget, SubnetSpec, Vpc, router_address,
};

/// A topology file that cannot be used: where, and what to change.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A device, FIFO, socket or folder: never read, so that none can block or flood tcplab.
    #[error("cannot read {}: not a regular file (give the path of a .toml file)", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// Over [`MAX_FILE_SIZE`].
    #[error("cannot read {}: larger than {} MiB, too large for a topology or scenario", path.display(), limit / (1024 * 1024))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The largest size read, in bytes.
        limit: u64,
    },
    /// Bytes that are not UTF-8, from `offset` on.
    #[error("cannot read {}: not UTF-8 text (byte {offset})", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
        /// The first byte that is not UTF-8.
        offset: usize,
    },
    /// Not valid TOML, or not a valid topology or scenario: where, and what to change.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// The file, as given.
        file: String,
        /// The line, from 1.
        line: usize,
        /// The column, from 1.
        column: usize,
        /// What is wrong, and what to change.
        message: String,
    },
}

impl Topology {
    /// Reads, parses and validates a topology file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<(Topology, Resolved), SpecError> {
        let path = path.as_ref();
        let text = read_text(path)?;
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
    #[cfg(test)]
    pub(crate) use super::resolve::check_name;
    pub(crate) use super::resolve::{at, invalid};
}

#[cfg(test)]
mod tests;
