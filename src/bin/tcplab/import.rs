//! `tcplab import aws`: a topology file from what the AWS CLI prints about a VPC.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::CliError;
use tcplab::escape;
use tcplab::import::{Imported, aws};
use tcplab::output::{OutputError, write_file};

/// Imports the VPC described by the files or folders `paths`, writes the topology to `output`
/// (standard output when `None`), and lists on stderr what was not modelled.
pub fn aws(
    paths: &[PathBuf],
    vpc: Option<&str>,
    output: Option<&Path>,
    force: bool,
) -> Result<u8, CliError> {
    let imported = aws::import(paths, vpc).map_err(|e| CliError::setup(e.to_string()))?;
    let text = imported
        .to_toml()
        .map_err(|e| CliError::setup(e.to_string()))?;
    match output {
        Some(file) => {
            write_file(file, text.as_bytes(), force).map_err(|e| match e {
                OutputError::Exists { path } => CliError::setup(format!(
                    "{} already exists: give another file, or --force to replace it",
                    path.display()
                )),
                e => CliError::setup(e.to_string()),
            })?;
            summary(&imported, Some(file));
        }
        None => {
            print!("{text}");
            summary(&imported, None);
        }
    }
    Ok(0)
}

/// What was imported, and what was not modelled, on stderr (stdout may be the topology).
fn summary(imported: &Imported, file: Option<&Path>) {
    let t = &imported.topology;
    let vpc = t.vpc.as_ref();
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut lines = vec![format!(
        "imported {}, {}, {}, {}, {} from {}{}",
        count(vpc.map_or(0, |v| v.subnets.len()), "subnet"),
        count(t.hosts.len(), "host"),
        count(t.security_groups.len(), "security group"),
        count(vpc.map_or(0, |v| v.route_tables.len()), "route table"),
        count(vpc.map_or(0, |v| v.network_acls.len()), "network ACL"),
        imported.source,
        file.map(|f| format!(" into {}", f.display()))
            .unwrap_or_default(),
    )];
    lines.extend(imported.notes.iter().map(|n| format!("note: {n}")));
    if !imported.unmodelled.is_empty() {
        lines.push(format!(
            "not modelled ({}), each left out or mapped to a stand-in (also listed at the top of the file):",
            imported.unmodelled.len()
        ));
        lines.extend(imported.unmodelled.iter().map(|u| format!("  - {u}")));
    }
    let mut err = anstream::stderr();
    for l in lines {
        // Nothing more can be said if stderr cannot be written.
        let _ = writeln!(err, "{}", escape::line(&l));
    }
}
