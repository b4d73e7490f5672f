//! The `tcplab` command line: each command in its own file, all of them thin over the
//! library. Nothing here is library API: what a command needs from the library is public
//! there, documented; the rest of the CLI (lab records, pins, the live view) lives only here.

// Standard output may be a pipe closed early (`tcplab run X --json | head`) or a full disk:
// std's `println!` panics then. Every command prints through these instead (they shadow the
// prelude's in this module and below): a closed pipe ends tcplab quietly, as it ends `cat`;
// any other failure is one line on stderr and exit 2.
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*))
    };
}

mod catalog;
mod check;
mod import;
mod keep;
mod pins;
mod record;
mod report;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Writes to standard output through anstream (colours only on a terminal); see the
/// `println!` of this module for what a failure does.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = anstream::stdout();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            // 128 + SIGPIPE, as a shell reports a program a closed pipe ended.
            std::process::exit(141);
        }
        let mut err = anstream::stderr();
        let _ = writeln!(err, "error: cannot write to standard output: {e}");
        std::process::exit(2);
    }
}

/// Help and version as clap prints them; a usage mistake as one line that says where the
/// rest of the help is (clap's own is several lines long).
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
    }
    let rendered = e.render().to_string();
    // The message is its first paragraph (a list of missing arguments follows a colon).
    let first = rendered
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let first = if first.is_empty() {
        "error: invalid arguments".to_string()
    } else {
        first
    };
    let usage = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .map(|u| format!("; usage: {u}"))
        .unwrap_or_default();
    let _ = std::io::Write::write_fmt(
        &mut anstream::stderr(),
        format_args!("{first}{usage} (more: tcplab --help)\n"),
    );
    ExitCode::from(2)
}

/// A command's failure: one line for the user, and the exit code.
#[derive(Debug)]
struct CliError {
    /// One line for the user.
    message: String,
    /// The process's exit code.
    code: u8,
}

impl CliError {
    /// A usage or setup error (exit 2).
    fn setup(message: impl Into<String>) -> Self {
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
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario: build its lab, run its steps, capture every host, check its expectations
    #[command(
        after_help = "Examples:\n  tcplab run connect-timeout\n  tcplab run my-scenario.toml --out captures/\n  tcplab run connect-timeout --html connect-timeout.html\n  tcplab run firewall-reset --json > report.json\n\nSCENARIO is a file, or the name of one in the catalog (see `tcplab scenarios`).\nThe output folder holds a pcap per capture, report.json and report.html."
    )]
    Run {
        /// A scenario file, or a catalog name such as `connect-timeout`
        scenario: String,
        /// Write the pcaps (one per host) into this folder, which must be new or empty
        /// [default: a new temporary folder, removed after a passing run]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Write the HTML report here (a new file) instead of `report.html` in the output
        /// folder, so that it stays when a passing run's temporary folder is removed
        #[arg(long, value_name = "PATH")]
        html: Option<PathBuf>,
        /// Keep the temporary folder of pcaps even when the run passes
        #[arg(long)]
        keep: bool,
        /// Print the report as JSON (for CI) instead of text, with no live view
        #[arg(long)]
        json: bool,
        /// Do not trace packets through the lab's rules: faster bulk transfers, but no packet
        /// is tied to the rule that stopped it (dropped-by and allowed-by expectations fail)
        #[arg(long)]
        no_rule_trace: bool,
    },
    /// Render a past run's reports again from its output folder (report.json and the pcaps)
    #[command(
        after_help = "Examples:\n  tcplab report captures/\n  tcplab report captures/ --json\n  tcplab report captures/ --html again.html\n\nExit status: 0 when the run passed, 1 when it failed, 2 when the folder cannot be read."
    )]
    Report {
        /// The output folder of a run (`tcplab run SCENARIO --out DIR`)
        dir: PathBuf,
        /// Print the report as JSON instead of text
        #[arg(long)]
        json: bool,
        /// Also write the HTML report to this new file (`-`: print it instead)
        #[arg(long, value_name = "PATH")]
        html: Option<PathBuf>,
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
    /// Write a topology file from a cloud's description of a network
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
}

#[derive(Debug, Subcommand)]
enum ImportSource {
    /// A VPC, from what `aws ec2 describe-vpcs`, `describe-subnets`, `describe-security-groups`,
    /// `describe-network-acls`, `describe-route-tables` and `describe-instances` print
    #[command(
        after_help = "Examples:\n  for c in vpcs subnets security-groups network-acls route-tables instances; do\n    aws ec2 describe-$c --filters Name=vpc-id,Values=vpc-0123 > aws/$c.json\n  done\n  tcplab import aws aws/ -o vpc.toml\n  tcplab import aws aws/*.json --vpc vpc-0123 > vpc.toml\n\nEach file is recognised by its top-level key (Vpcs, Subnets, SecurityGroups, NetworkAcls, RouteTables, Reservations); a folder's .json files are read. What tcplab cannot model (IPv6, prefix lists, gateways, peering...) is left out or mapped to a stand-in, and listed on stderr and at the top of the file."
    )]
    Aws {
        /// JSON files the AWS CLI printed, or folders of them
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// The VPC to import, when the files describe several
        #[arg(long, value_name = "ID")]
        vpc: Option<String>,
        /// Write the topology to FILE instead of standard output (never over an existing file)
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Replace FILE if it exists
        #[arg(long, requires = "output")]
        force: bool,
    },
}

/// Runs the command line and returns the process's exit code.
fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.command {
        Command::Run {
            scenario,
            out,
            html,
            json,
            keep,
            no_rule_trace,
        } => run::run(&scenario, out, html, json, keep, !no_rule_trace),
        Command::Report { dir, json, html } => report::report(&dir, json, html),
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
        Command::Import {
            source:
                ImportSource::Aws {
                    paths,
                    vpc,
                    output,
                    force,
                },
        } => import::aws(&paths, vpc.as_deref(), output.as_deref(), force),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Nothing more can be said if stderr cannot be written either.
            let _ = std::io::Write::write_fmt(
                &mut anstream::stderr(),
                format_args!("error: {}\n", tcplab::escape::line(&e.message)),
            );
            ExitCode::from(e.code)
        }
    }
}
