//! The hostile files of issue 10 and their kin, kept as a regression corpus in
//! fixtures/hostile/: each is refused at load with one clean line naming its place
//! (`FILE:LINE:COLUMN`), by the library and by the `tcplab` binary, never with a panic. Also
//! files that are not files (a device, a FIFO), and a catalog holding bad files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{WAIT, fixture};
use tcplab::escape;
use tcplab::proc::{Outcome, Proc};
use tcplab::scenario::Scenario;
use tcplab::spec::{SpecError, Topology};

fn tcplab(args: &[&str], catalog: Option<&Path>) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcplab"));
    cmd.args(args).env("NO_COLOR", "1");
    if let Some(dir) = catalog {
        cmd.env("TCPLAB_CATALOG", dir);
    }
    Proc::spawn(cmd).unwrap().wait(WAIT).unwrap()
}

/// A corpus file, where its error must point (line, column), and what it must say.
type Case = (PathBuf, Option<(usize, usize)>, String);

/// The corpus files of one kind, with what each must say: `LINE:COLUMN TEXT` (the error is
/// `FILE:LINE:COLUMN: TEXT...`) or `- TEXT` (an error with no place in the file), from the
/// file's first line, `# expect: ...`.
fn corpus(kind: &str) -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture("hostile").join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let expect = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .unwrap_or_else(|| panic!("{} has no `# expect:` line", path.display()));
            let (place, message) = expect.split_once(' ').unwrap();
            let place = (place != "-").then(|| {
                let (l, c) = place.split_once(':').unwrap();
                (l.parse().unwrap(), c.parse().unwrap())
            });
            (path, place, message.to_string())
        })
        .collect()
}

fn assert_refused(path: &Path, err: SpecError, place: Option<(usize, usize)>, message: &str) {
    let shown = escape::line(&err.to_string()).into_owned();
    match place {
        Some((line, column)) => {
            let want = format!("{}:{line}:{column}: {message}", path.display());
            assert!(shown.starts_with(&want), "{shown}\nwanted: {want}");
            assert!(
                matches!(err, SpecError::Invalid { .. }),
                "{shown}: not an error in the file"
            );
        }
        None => assert!(shown.contains(message), "{shown}\nwanted: {message}"),
    }
}

#[test]
fn hostile_scenarios_are_refused_with_their_place() {
    let files = corpus("scenario");
    assert!(files.len() >= 30, "{} files", files.len());
    for (path, place, message) in files {
        match Scenario::from_file(&path) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => assert_refused(&path, e, place, &message),
        }
    }
}

#[test]
fn hostile_topologies_are_refused_with_their_place() {
    let files = corpus("topology");
    assert!(files.len() >= 12, "{} files", files.len());
    for (path, place, message) in files {
        match Topology::from_file(&path) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => assert_refused(&path, e, place, &message),
        }
    }
}

/// One line on stderr, `error: ...`, no backtrace, no raw control character, exit 2.
fn assert_one_clean_error(o: &Outcome, args: &[&str]) -> String {
    assert_eq!(o.status.code(), Some(2), "{args:?}:\n{}", o.transcript());
    let err: Vec<&str> = o.stderr().collect();
    assert_eq!(err.len(), 1, "{args:?}: one line:\n{}", o.transcript());
    assert!(err[0].starts_with("error: "), "{}", err[0]);
    assert!(
        !err[0].chars().any(|c| c.is_control() && c != '\t'),
        "raw control characters: {:?}",
        err[0]
    );
    err[0].to_string()
}

#[test]
fn the_binary_refuses_every_hostile_scenario_in_one_line() {
    for (path, place, message) in corpus("scenario") {
        let file = path.to_str().unwrap();
        let args = ["run", file];
        let line = assert_one_clean_error(&tcplab(&args, None), &args);
        let want = match place {
            Some((l, c)) => format!("error: {file}:{l}:{c}: {message}"),
            None => message,
        };
        assert!(line.contains(&want), "{line}\nwanted: {want}");
    }
}

#[test]
fn up_refuses_what_is_not_a_file_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("topology.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    // /dev/zero would grow memory without end, a FIFO with no writer would block forever:
    // both must be refused at once (the wait is bounded by WAIT).
    for target in [
        "/dev/zero",
        fifo.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ] {
        let args = ["up", target, "--name", "hostile"];
        let line = assert_one_clean_error(&tcplab(&args, None), &args);
        assert!(line.contains("not a regular file"), "{line}");
    }
    let args = ["run", fifo.to_str().unwrap()];
    let line = assert_one_clean_error(&tcplab(&args, None), &args);
    assert!(line.contains("not a regular file"), "{line}");
    let big = dir.path().join("big.toml");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(tcplab::spec::MAX_FILE_SIZE + 1)
        .unwrap();
    let args = ["run", big.to_str().unwrap()];
    let line = assert_one_clean_error(&tcplab(&args, None), &args);
    assert!(line.contains("larger than 16 MiB"), "{line}");
}

#[test]
fn a_bad_catalog_file_is_listed_as_an_error_among_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(fixture("scenarios/connection-refused.toml"))
        .unwrap()
        .replace(
            "../topologies/",
            &format!("{}/", fixture("topologies").display()),
        );
    std::fs::write(dir.path().join("good.toml"), &good).unwrap();
    std::fs::write(
        dir.path().join("huge.toml"),
        "description = \"d\"\ntime_limit = 1e20\n[[host]]\nname = \"a\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.toml"), "description = \n").unwrap();
    std::fs::write(
        dir.path().join("escape.toml"),
        "description = \"\\u001b[31mred\\u001b]0;title\\u0007\"\n[[host]]\nname = \"a\"\n",
    )
    .unwrap();
    nix::unistd::mkfifo(&dir.path().join("fifo.toml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let o = tcplab(&["scenarios"], Some(dir.path()));
    assert_eq!(
        o.status.code(),
        Some(1),
        "invalid files are an error: {}",
        o.transcript()
    );
    assert_eq!(o.stderr().count(), 0, "{}", o.transcript());
    let out: Vec<&str> = o.stdout().collect();
    assert_eq!(out.len(), 5, "{}", o.transcript());
    let line = |name: &str| {
        *out.iter()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{}", o.transcript()))
    };
    assert!(line("good").starts_with("good "), "{}", o.transcript());
    assert!(
        line("huge.toml").contains("(invalid: ")
            && line("huge.toml").contains("huge.toml:2:14: time_limit: 1e20")
    );
    assert!(line("broken.toml").contains("(invalid: "));
    assert!(line("fifo.toml").contains("not a regular file"));
    assert_eq!(
        line("escape").split_whitespace().nth(1),
        Some("\\x1b[31mred\\x1b]0;title\\x07")
    );
    assert!(
        !o.stdout().any(|l| l.chars().any(|c| c.is_control())),
        "raw control characters:\n{:?}",
        out
    );
}

/// Escape codes in a scenario's text and in a program's output reach the terminal escaped,
/// in the live view and in the report.
#[test]
fn text_from_the_file_and_programs_reaches_the_terminal_escaped() {
    if !common::privileged() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("escapes.toml");
    std::fs::write(
        &file,
        r#"description = "clears \u001b[2J the screen"
time_limit = 20

[[host]]
name = "a"

[[step]]
action = "run"
host = "a"
name = "printer"
command = ["printf", "\u001b]0;title\u0007\\033[2Jcleared\\n"]

[[expect]]
kind = "output"
program = "printer"
line = "cleared"
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = tcplab(
        &[
            "run",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", o.transcript());
    let all: Vec<&str> = o.stdout().chain(o.stderr()).collect();
    assert!(
        !all.iter()
            .any(|l| l.chars().any(|c| c.is_control() && c != '\t')),
        "raw control characters: {all:?}"
    );
    assert!(
        all.iter().any(|l| l.contains("clears \\x1b[2J the screen")),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|l| l.contains("out | \\x1b]0;title\\x07cleared")),
        "{all:?}"
    );
    // The live view quotes the command (raw ESC and BEL in it); the program's CSI sequences
    // are stripped when its output is read, the rest is escaped.
    assert!(
        all.iter()
            .any(|l| l.starts_with("step 1/1: run printer on a: printf \\x1b]0;title\\x07")),
        "{all:?}"
    );
}
