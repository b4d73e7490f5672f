//! The `tcplab` command line: each command in its own file, all of them thin over the library.

mod catalog;
mod check;
mod keep;
mod pins;
mod record;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A command's failure: one line for the user, and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    /// A usage or setup error (exit 2).
    pub fn setup(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: 2,
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "tcplab",
    version,
    about = "Reproduce cloud TCP connectivity failures on one Linux machine and read them on the wire",
    after_help = "Examples:\n  sudo tcplab scenarios\n  sudo tcplab run connect-timeout\n  sudo tcplab up fixtures/topologies/article.toml --name lab\n  sudo ip netns exec lab-server tcpdump -ni eth0 tcp port 1235\n\nExit status: 0 when every expectation held, 1 when one failed, 2 for a usage or setup error, 130 or 143 when a run was interrupted (Ctrl+C, SIGTERM)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario: build its lab, run its steps, capture every host, check its expectations
    #[command(
        after_help = "Examples:\n  tcplab run connect-timeout\n  tcplab run my-scenario.toml --out captures/\n  tcplab run firewall-reset --json > report.json\n\nSCENARIO is a file, or the name of one in the catalog (see `tcplab scenarios`)."
    )]
    Run {
        /// A scenario file, or a catalog name such as `connect-timeout`
        scenario: String,
        /// Write the pcaps (one per host) into this folder, which must be new or empty
        /// [default: a new temporary folder, removed after a passing run]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Keep the temporary folder of pcaps even when the run passes
        #[arg(long)]
        keep: bool,
        /// Print the report as JSON (for CI) instead of text, with no live view
        #[arg(long)]
        json: bool,
    },
    /// Build a topology and keep it up, with namespaces named NAME-HOST for `ip netns exec`
    #[command(
        after_help = "Examples:\n  tcplab up fixtures/topologies/article.toml\n  tcplab up fixtures/topologies/article.toml --name demo\n  ip netns exec demo-server tcpdump -ni eth0\n  tcplab down demo"
    )]
    Up {
        /// A topology file
        topology: PathBuf,
        /// The lab's name: its namespaces are NAME-fabric and NAME-HOST
        #[arg(long, default_value = "lab")]
        name: String,
    },
    /// Run a command in a host of a lab kept up by `tcplab up`
    #[command(
        after_help = "Examples:\n  tcplab exec lab server -- tcp-server 0.0.0.0 1234\n  tcplab exec lab client-1 -- nc -vz -w 3 10.0.0.58 1235\n  tcplab exec lab server -- ss -tan"
    )]
    Exec {
        /// The lab's name
        name: String,
        /// The host to run in
        host: String,
        /// The command and its arguments (after --)
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// List the labs kept up by `tcplab up`
    #[command(after_help = "Example:\n  tcplab ls")]
    Ls,
    /// Take down a lab kept up by `tcplab up` (only tcplab's labs, never anything else)
    #[command(after_help = "Examples:\n  tcplab down lab\n  tcplab down --all")]
    Down {
        /// The lab's name
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Take down every lab tcplab keeps up
        #[arg(long)]
        all: bool,
    },
    /// Check privileges, kernel features and tools that labs need
    #[command(after_help = "Example:\n  sudo tcplab check")]
    Check,
    /// List the catalog of scenarios with their descriptions
    #[command(after_help = "Example:\n  tcplab scenarios")]
    Scenarios,
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            scenario,
            out,
            json,
            keep,
        } => run::run(&scenario, out, json, keep),
        Command::Up { topology, name } => keep::up(&topology, &name),
        Command::Exec {
            name,
            host,
            command,
        } => keep::exec(&name, &host, &command),
        Command::Ls => keep::ls(),
        Command::Down { name, all } => keep::down(name.as_deref(), all),
        Command::Check => check::check(),
        Command::Scenarios => catalog::list(),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            anstream::eprintln!("error: {}", crate::escape::line(&e.message));
            ExitCode::from(e.code)
        }
    }
}
