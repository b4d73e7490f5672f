//! Topologies imported from a cloud's own description of a network: [`aws`] reads what the AWS
//! CLI prints about a VPC. What tcplab cannot model is never dropped silently: it is mapped to
//! a documented stand-in, or left out, and either way listed in [`Imported::unmodelled`] and at
//! the top of the written file.
//!
//! ```
//! # fn main() -> Result<(), tcplab::import::ImportError> {
//! let imported = tcplab::import::aws::import(&["fixtures/aws"], None)?;
//! let text = imported.to_toml()?;
//! let (_, resolved) = tcplab::Topology::from_toml(&text, "imported.toml").unwrap();
//! assert_eq!(resolved.hosts.len(), 3);
//! # Ok(()) }
//! ```

pub mod aws;
mod names;

use std::fmt;
use std::path::PathBuf;

use crate::spec::{SpecError, Topology, ValidationError};

/// Why an import failed: which file, and what is wrong in it.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be read (missing, not a regular file, too large, not text).
    #[error(transparent)]
    Read(#[from] SpecError),
    /// A folder could not be listed.
    #[error("cannot read the folder {}: {source}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Neither a file nor a folder (a device, a FIFO, a socket).
    #[error("cannot read {}: not a regular file or a folder (give the JSON files the AWS CLI printed, or their folder)", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// Not JSON, or JSON of the wrong shape: where, and what.
    #[error("{file}:{line}:{column}: {message}")]
    Json {
        /// The file.
        file: String,
        /// The line, from 1.
        line: usize,
        /// The column, from 1.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Well-formed input that says something impossible or unusable: the file, the resource,
    /// and what to change.
    #[error("{file}: {message}")]
    Invalid {
        /// The file (or the files) it came from.
        file: String,
        /// What is wrong, naming the resource by its id.
        message: String,
    },
    /// The input as a whole is incomplete or ambiguous (a command's output missing, several
    /// VPCs and none chosen).
    #[error("{0}")]
    Input(String),
    /// The imported topology does not validate: something tcplab cannot build.
    #[error("the imported topology is not one tcplab can build: {0}")]
    Unbuildable(#[from] ValidationError),
    /// The topology could not be written as TOML.
    #[error("cannot write the topology as TOML: {0}")]
    Serialise(#[from] toml::ser::Error),
}

/// Something of the source that tcplab cannot model, and what the import did with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmodelled {
    /// The resource it belongs to, by its cloud id (e.g. `sg-0123...`, `rtb-0123...`).
    pub resource: String,
    /// What it is, e.g. `ingress tcp 443 from IPv6 ::/0`.
    pub what: String,
    /// What the import did: `left out`, or the stand-in it used.
    pub handling: String,
}

impl fmt::Display for Unmodelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.resource, self.what, self.handling)
    }
}

/// A topology imported from a cloud, with what could not be modelled and where each item
/// came from.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The topology; it resolves (the import checked).
    pub topology: Topology,
    /// What it was imported from, e.g. `AWS VPC vpc-0123 (10.0.0.0/16)`.
    pub source: String,
    /// What could not be modelled: left out, or mapped to a stand-in.
    pub unmodelled: Vec<Unmodelled>,
    /// What else the import did that a reader should know (resources of other VPCs left
    /// out, instances skipped because they are terminated...).
    pub notes: Vec<String>,
    /// Where each item came from, for the comments of [`Imported::to_toml`].
    pub(crate) origins: Origins,
}

/// For each kind of item, in the topology's order, the comment naming where it came from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origins {
    pub(crate) hosts: Vec<String>,
    pub(crate) groups: Vec<String>,
    pub(crate) subnets: Vec<String>,
    pub(crate) tables: Vec<String>,
    pub(crate) routes: Vec<String>,
    pub(crate) acls: Vec<String>,
}

/// The longest line of a comment tcplab writes from imported text: tags and ids are short in
/// a real cloud; a hostile one could make them megabytes.
const MAX_COMMENT: usize = 200;

impl Imported {
    /// The topology as a TOML file: a header listing the source, the stand-ins and what is
    /// not modelled, and above each host, group, subnet, table, route and ACL a comment with
    /// the id it came from. It loads with [`Topology::from_file`].
    pub fn to_toml(&self) -> Result<String, ImportError> {
        let body = toml::to_string(&self.topology)?;
        let mut out = String::new();
        for line in self.header() {
            out.push_str(&comment(&line));
        }
        out.push('\n');
        let mut counters = [0usize; 6];
        let mut top_level = true;
        for line in body.lines() {
            if line.starts_with('[') {
                top_level = false;
            }
            // With a [vpc], the top-level subnet is not used; the serialiser writes the default
            // anyway, and no firewall rules are imported.
            if top_level && (line.starts_with("subnet = ") || line == "firewall = []") {
                continue;
            }
            // The header's blank line already parts it from the items.
            if line.is_empty() && out.ends_with("\n\n") {
                continue;
            }
            let kinds: [(&str, &[String]); 6] = [
                ("[[host]]", &self.origins.hosts),
                ("[[security_group]]", &self.origins.groups),
                ("[[vpc.subnet]]", &self.origins.subnets),
                ("[[vpc.route_table]]", &self.origins.tables),
                ("[[vpc.route_table.routes]]", &self.origins.routes),
                ("[[vpc.network_acl]]", &self.origins.acls),
            ];
            // Every free text the topology holds (a group's description) is one line, so a line
            // that looks like a header is one.
            if let Some(k) = kinds.iter().position(|(h, _)| *h == line) {
                if let Some(c) = kinds[k].1.get(counters[k]).filter(|c| !c.is_empty()) {
                    out.push_str(&comment(c));
                }
                counters[k] += 1;
            }
            out.push_str(line);
            out.push('\n');
        }
        Ok(out)
    }

    fn header(&self) -> Vec<String> {
        let mut lines = vec![
            format!("Imported by `tcplab import` from {}.", self.source),
            "Names come from Name tags, else from ids; the comment above each item gives its id."
                .to_string(),
        ];
        lines.extend(self.notes.iter().cloned());
        if self.unmodelled.is_empty() {
            lines.push("Everything imported is modelled.".into());
        } else {
            lines.push(format!(
                "Not modelled ({}), each left out or mapped to a stand-in:",
                self.unmodelled.len()
            ));
            lines.extend(self.unmodelled.iter().map(|u| format!("  - {u}")));
        }
        lines
    }
}

/// A TOML comment line holding `text` on one line: control characters escaped, cut to
/// [`MAX_COMMENT`] characters.
fn comment(text: &str) -> String {
    let one = crate::escape::line(text);
    let cut: String = one.chars().take(MAX_COMMENT).collect();
    let ellipsis = if cut.len() < one.len() { "..." } else { "" };
    format!("# {cut}{ellipsis}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comment_is_one_line_without_controls() {
        let c = comment("a\nb\r\x1b[2J\u{202e}");
        assert_eq!(c.lines().count(), 1);
        assert!(!c.trim_end_matches('\n').chars().any(char::is_control));
        let long = comment(&"x".repeat(10_000));
        assert!(long.len() < MAX_COMMENT + 10, "{}", long.len());
        assert!(long.ends_with("...\n"));
    }
}
