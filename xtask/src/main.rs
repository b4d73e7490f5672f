//! `cargo xtask <task>`: installs what tcplab needs from Debian's packages (when run as root on
//! Debian or Ubuntu; otherwise it names what to install), then runs the task.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod stress;

/// Debian packages the build and the tests need, with what each is for.
const PACKAGES: &[(&str, &str)] = &[
    ("pkg-config", "finds libnftnl and libmnl for the build"),
    (
        "libnftnl-dev",
        "nftables rules (security groups, firewalls)",
    ),
    ("libmnl-dev", "netlink transport for nftables"),
    (
        "iproute2",
        "`ip`, for the benchmark's baseline and leak checks",
    ),
    (
        "nftables",
        "`nft`, for the benchmark's baseline and leak checks",
    ),
    ("iputils-ping", "`ping` inside lab hosts"),
    (
        "curl",
        "a real HTTP client in the session tests and the README's examples",
    ),
    (
        "netcat-openbsd",
        "`nc`, for following the article by hand in a lab kept up",
    ),
    (
        "python3",
        "a real HTTP server (`python3 -m http.server`) in the session tests",
    ),
    (
        "strace",
        "killing `tcplab up` at an exact system call in the records tests",
    ),
    ("tcpdump", "reading tcplab's pcaps back in the tests"),
    (
        "tshark",
        "Wireshark's own TCP analysis of tcplab's pcaps in the tests",
    ),
    (
        "chromium",
        "opening the HTML report in a real browser (headless) in the tests",
    ),
];

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  test      install missing packages, then run every test (as root: the lab tests need it)
  lint      cargo fmt --check and cargo clippy --all-targets -- -D warnings
  bench     install missing packages, then run the lab benchmark (root)
  bench-capture
            install missing packages, then run the capture fidelity benchmark (root)
  demo      install missing packages, build, and run the article's connect-timeout scenario
            (root): what tcplab is for, in one command
  stress    install missing packages, build, and run the catalog many times at once (root):
            how many runs of each scenario pass on a loaded machine (`stress --help`)
  deps      install missing packages only";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => {
            ensure_packages().and_then(|()| cargo(&["test", "--workspace"], &args[1..]))
        }
        Some("lint") => cargo(&["fmt", "--all", "--", "--check"], &[]).and_then(|()| {
            cargo(
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ],
                &[],
            )
        }),
        Some("bench") => {
            ensure_packages().and_then(|()| cargo(&["bench", "--bench", "lab"], &args[1..]))
        }
        Some("bench-capture") => ensure_packages()
            .and_then(|()| cargo(&["bench", "--bench", "capture", "--"], &args[1..])),
        Some("demo") => ensure_packages().and_then(|()| demo(&args[1..])),
        Some("stress") if args[1..].iter().any(|a| a == "-h" || a == "--help") => {
            println!("{}", stress::USAGE);
            Ok(())
        }
        Some("stress") => ensure_packages()
            .and_then(|()| {
                if stress::brings_binary(&args[1..]) {
                    Ok(())
                } else {
                    cargo(&["build", "--release", "--bins"], &[])
                }
            })
            .and_then(|()| stress::stress(root(), &release_bin("tcplab"), &args[1..])),
        Some("deps") => ensure_packages(),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{USAGE}")),
        None => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Builds every binary (the scenario runs tcplab's own apps) and runs the article's scenario.
fn demo(extra: &[String]) -> Result<(), String> {
    cargo(&["build", "--release", "--bins"], &[])?;
    let scenario = extra.first().map_or("connect-timeout", String::as_str);
    run(Command::new(release_bin("tcplab"))
        .args(["run", scenario])
        .current_dir(root()))
}

/// The workspace's root folder.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
}

/// A binary of the release build.
fn release_bin(name: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("release")
        .join(name)
}

fn cargo(args: &[&str], extra: &[String]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(&cargo)
        .args(args)
        .args(extra)
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

fn ensure_packages() -> Result<(), String> {
    if !std::path::Path::new("/usr/bin/dpkg-query").exists() {
        return Err(format!(
            "not a Debian or Ubuntu system: install the equivalents of {} yourself, then run the task again",
            names(PACKAGES)
        ));
    }
    let missing: Vec<(&str, &str)> = PACKAGES
        .iter()
        .copied()
        .filter(|(name, _)| !installed(name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = names(&missing);
    if !is_root() {
        let why: Vec<String> = missing.iter().map(|(n, w)| format!("  {n}: {w}")).collect();
        return Err(format!(
            "missing Debian packages:\n{}\ninstall them with:\n  sudo apt-get install -y {list}",
            why.join("\n")
        ));
    }
    eprintln!("xtask: installing {list}");
    run(Command::new("apt-get").arg("update").arg("-qq"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(missing.iter().map(|(n, _)| *n))
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn names(packages: &[(&str, &str)]) -> String {
    packages
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}
