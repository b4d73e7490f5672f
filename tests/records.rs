//! Labs kept up and their records in /run/tcplab, as careless or hostile users leave them:
//! two `up` at once, a record cut to 0 bytes, a record pointing outside /run/netns, a pin
//! replaced by another namespace, and labs half made by a killed `up`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{WAIT, fixture, privileged};
use tcplab::proc::{Outcome, Proc};

const STATE: &str = "/run/tcplab";
const NETNS: &str = "/run/netns";

fn tcplab_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcplab"));
    cmd.args(args).env("NO_COLOR", "1");
    cmd
}

fn tcplab(args: &[&str]) -> Outcome {
    Proc::spawn(tcplab_cmd(args)).unwrap().wait(WAIT).unwrap()
}

fn one_error_line(o: &Outcome) -> String {
    let err: Vec<&str> = o.stderr().collect();
    assert_eq!(err.len(), 1, "one line on stderr:\n{}", o.transcript());
    assert!(err[0].starts_with("error: "), "{}", err[0]);
    err[0].to_string()
}

fn pins_of(name: &str) -> Vec<String> {
    let prefix = format!("{name}-");
    let mut pins: Vec<String> = std::fs::read_dir(NETNS)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    pins.sort();
    pins
}

fn record(name: &str) -> PathBuf {
    Path::new(STATE).join(format!("{name}.json"))
}

/// A lab name no other test uses, and everything under it removed when the test ends, even
/// if it fails: by `tcplab down`, then by hand in case `down` is what broke.
struct Name(String);

impl Name {
    /// `tag` is letters only, so that no name is a prefix of another plus a dash.
    fn new(tag: &str) -> Name {
        Name(format!("t{}x{tag}", std::process::id()))
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let _ = tcplab(&["down", &self.0]);
        for pin in pins_of(&self.0) {
            let path = Path::new(NETNS).join(&pin);
            let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(&path);
        }
        for ext in ["json", "json.tmp", "lock"] {
            let _ = std::fs::remove_file(Path::new(STATE).join(format!("{}.{ext}", self.0)));
        }
    }
}

fn up(name: &str) -> Outcome {
    let topology = fixture("topologies/article.toml");
    tcplab(&["up", topology.to_str().unwrap(), "--name", name])
}

const ARTICLE_PINS: [&str; 5] = ["client-1", "client-2", "client-3", "fabric", "server"];

fn article_pins(name: &str) -> Vec<String> {
    ARTICLE_PINS.iter().map(|p| format!("{name}-{p}")).collect()
}

fn state_dir() {
    use std::os::unix::fs::DirBuilderExt;
    let _ = std::fs::DirBuilder::new().mode(0o700).create(STATE);
}

#[test]
fn concurrent_ups_leave_one_lab_that_goes_down() {
    if !privileged() {
        return;
    }
    let name = Name::new("conc");
    let topology = fixture("topologies/article.toml");
    let procs: Vec<Proc> = (0..4)
        .map(|_| {
            Proc::spawn(tcplab_cmd(&[
                "up",
                topology.to_str().unwrap(),
                "--name",
                &name.0,
            ]))
            .unwrap()
        })
        .collect();
    let outcomes: Vec<Outcome> = procs.into_iter().map(|p| p.wait(WAIT).unwrap()).collect();
    let winners = outcomes
        .iter()
        .filter(|o| o.status.code() == Some(0))
        .count();
    assert_eq!(winners, 1, "exactly one `up` wins");
    for o in outcomes.iter().filter(|o| o.status.code() != Some(0)) {
        assert_eq!(o.status.code(), Some(2), "{}", o.transcript());
        let line = one_error_line(o);
        assert!(
            line.contains("is busy") || line.contains("already up"),
            "{line}"
        );
    }
    assert_eq!(pins_of(&name.0), article_pins(&name.0));
    let ls = tcplab(&["ls"]);
    let lines: Vec<&str> = ls.stdout().filter(|l| l.starts_with(&name.0)).collect();
    assert_eq!(lines.len(), 1, "{}", ls.transcript());
    assert!(lines[0].contains("10.0.0.0/24"), "{}", lines[0]);
    let down = tcplab(&["down", &name.0]);
    assert_eq!(down.status.code(), Some(0), "{}", down.transcript());
    assert!(pins_of(&name.0).is_empty(), "{:?}", pins_of(&name.0));
    assert!(!record(&name.0).exists());
}

#[test]
fn an_empty_record_is_shown_damaged_and_down_clears_the_lab() {
    if !privileged() {
        return;
    }
    let name = Name::new("empty");
    assert_eq!(up(&name.0).status.code(), Some(0));
    // What a SIGKILL of an older `up` left while it wrote the record.
    std::fs::write(record(&name.0), "").unwrap();

    let ls = tcplab(&["ls"]);
    let line: Vec<&str> = ls.stdout().filter(|l| l.starts_with(&name.0)).collect();
    assert_eq!(line.len(), 1, "{}", ls.transcript());
    assert!(
        line[0].contains("damaged") && line[0].contains("empty"),
        "{}",
        line[0]
    );
    let again = up(&name.0);
    assert_eq!(again.status.code(), Some(2));
    assert!(one_error_line(&again).contains("damaged record"));
    let exec = tcplab(&["exec", &name.0, "server", "--", "true"]);
    assert_eq!(exec.status.code(), Some(2));
    assert!(one_error_line(&exec).contains("damaged"));

    let down = tcplab(&["down", &name.0]);
    assert_eq!(down.status.code(), Some(0), "{}", down.transcript());
    assert!(pins_of(&name.0).is_empty(), "{:?}", pins_of(&name.0));
    assert!(!record(&name.0).exists());
    // The name is not wedged.
    assert_eq!(up(&name.0).status.code(), Some(0));
    assert_eq!(tcplab(&["down", &name.0]).status.code(), Some(0));
    assert!(pins_of(&name.0).is_empty());
}

#[test]
fn a_record_pointing_outside_run_netns_is_refused_by_exec_and_down() {
    if !privileged() {
        return;
    }
    let name = Name::new("escape");
    assert_eq!(up(&name.0).status.code(), Some(0));
    let canary_dir = tempfile::tempdir().unwrap();
    let canary = canary_dir.path().join("canary");
    std::fs::write(&canary, "still here").unwrap();
    let text = std::fs::read_to_string(record(&name.0)).unwrap();
    let server = format!("\"{}-server\"", name.0);
    let client = format!("\"{}-client-1\"", name.0);
    assert!(text.contains(&server) && text.contains(&client), "{text}");
    let hostile = text
        .replace(&server, "\"../../proc/self/ns/net\"")
        .replace(&client, &format!("\"../..{}\"", canary.display()));
    std::fs::write(record(&name.0), hostile).unwrap();

    let exec = tcplab(&["exec", &name.0, "server", "--", "ip", "-br", "link"]);
    assert_eq!(exec.status.code(), Some(2), "{}", exec.transcript());
    assert_eq!(exec.stdout().count(), 0, "{}", exec.transcript());
    assert!(one_error_line(&exec).contains("damaged"));

    let down = tcplab(&["down", &name.0]);
    assert_eq!(down.status.code(), Some(0), "{}", down.transcript());
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "still here");
    assert!(Path::new("/proc/self/ns/net").exists());
    // The lab's real pins went, proven tcplab's by their shape.
    assert!(pins_of(&name.0).is_empty(), "{:?}", pins_of(&name.0));
    assert!(!record(&name.0).exists());
}

#[test]
fn a_pin_replaced_by_another_namespace_is_neither_entered_nor_removed() {
    if !privileged() {
        return;
    }
    let name = Name::new("swap");
    assert_eq!(up(&name.0).status.code(), Some(0));
    let pin = format!("{}-client-3", name.0);
    let ip = |args: &[&str]| {
        let s = Command::new("ip").args(args).status().unwrap();
        assert!(s.success(), "ip {args:?}");
    };
    ip(&["netns", "delete", &pin]);
    ip(&["netns", "add", &pin]);

    let exec = tcplab(&["exec", &name.0, "client-3", "--", "true"]);
    assert_eq!(exec.status.code(), Some(2), "{}", exec.transcript());
    assert!(one_error_line(&exec).contains("not the namespace tcplab pinned"));

    let down = tcplab(&["down", &name.0]);
    assert_eq!(down.status.code(), Some(2), "{}", down.transcript());
    let line = one_error_line(&down);
    assert!(line.contains("left alone") && line.contains(&pin), "{line}");
    assert!(
        line.contains("ip netns del"),
        "says how to clear it: {line}"
    );
    assert_eq!(
        pins_of(&name.0),
        vec![pin.clone()],
        "only the stranger stays"
    );
    // The name is not lost: the lab is still listed, and clears once the stranger is gone.
    let ls = tcplab(&["ls"]);
    assert!(
        ls.stdout().any(|l| l.contains(&name.0)),
        "{}",
        ls.transcript()
    );
    ip(&["netns", "delete", &pin]);
    let down = tcplab(&["down", &name.0]);
    assert_eq!(down.status.code(), Some(0), "{}", down.transcript());
    assert_eq!(
        up(&name.0).status.code(),
        Some(0),
        "the name can be used again"
    );
    assert_eq!(tcplab(&["down", &name.0]).status.code(), Some(0));
}

#[test]
fn host_pins_left_without_their_fabric_are_named_and_the_name_comes_back() {
    if !privileged() {
        return;
    }
    let name = Name::new("nofab");
    assert_eq!(up(&name.0).status.code(), Some(0));
    let ip = |args: &[&str]| {
        let s = Command::new("ip").args(args).status().unwrap();
        assert!(s.success(), "ip {args:?}");
    };
    // A careless user: the fabric's pin deleted by hand, then the record.
    ip(&["netns", "delete", &format!("{}-fabric", name.0)]);
    std::fs::remove_file(record(&name.0)).unwrap();
    let down = tcplab(&["down", &name.0]);
    assert_eq!(down.status.code(), Some(2), "{}", down.transcript());
    let line = one_error_line(&down);
    let server = format!("{}-server", name.0);
    assert!(
        line.contains(&server) && line.contains("ip netns del"),
        "{line}"
    );
    let again = tcplab(&[
        "up",
        &fixture("topologies/article.toml").display().to_string(),
        "--name",
        &name.0,
    ]);
    assert_eq!(again.status.code(), Some(2), "{}", again.transcript());
    assert!(one_error_line(&again).contains("ip netns del"));
    for pin in pins_of(&name.0) {
        ip(&["netns", "delete", &pin]);
    }
    assert_eq!(
        up(&name.0).status.code(),
        Some(0),
        "the name can be used again"
    );
    assert_eq!(tcplab(&["down", &name.0]).status.code(), Some(0));
}

#[test]
fn ls_shows_each_damaged_record_on_one_line_and_down_clears_them() {
    if !privileged() {
        return;
    }
    state_dir();
    let empty = Name::new("dmgempty");
    let json = Name::new("dmgjson");
    let paths = Name::new("dmgpaths");
    let escape = Name::new("dmgesc");
    std::fs::write(record(&empty.0), "").unwrap();
    std::fs::write(record(&json.0), "{\"name\": ").unwrap();
    std::fs::write(
        record(&paths.0),
        format!(
            r#"{{"name":"{0}","topology":"t","subnet":"10.0.0.0/24","fabric":{{"netns":"../../etc","inode":1}},"hosts":[{{"name":"a","address":"10.0.0.2","netns":"{0}-a","inode":2}}]}}"#,
            paths.0
        ),
    )
    .unwrap();
    std::fs::write(
        record(&escape.0),
        format!(
            r#"{{"name":"{0}","topology":"t","subnet":"10.0.0.0/24","fabric":{{"netns":"{0}-fabric","inode":1}},"hosts":[{{"name":"a","address":"10.0.0.2","netns":"\u001b[2J","inode":2}}]}}"#,
            escape.0
        ),
    )
    .unwrap();

    let ls = tcplab(&["ls"]);
    assert_eq!(ls.status.code(), Some(0), "{}", ls.transcript());
    for name in [&empty, &json, &paths, &escape] {
        let lines: Vec<&str> = ls.stdout().filter(|l| l.starts_with(&name.0)).collect();
        assert_eq!(lines.len(), 1, "{}: {}", name.0, ls.transcript());
        assert!(lines[0].contains("damaged"), "{}", lines[0]);
        assert!(
            !lines[0].contains('\u{1b}'),
            "escape codes reach the terminal"
        );
    }
    for name in [&empty, &json, &paths, &escape] {
        let down = tcplab(&["down", &name.0]);
        assert_eq!(down.status.code(), Some(0), "{}", down.transcript());
        assert!(!record(&name.0).exists());
    }
    assert!(Path::new("/etc/passwd").exists());
}

#[test]
fn half_made_labs_are_shown_and_cleared() {
    if !privileged() {
        return;
    }
    // A record with pins missing or never mounted: `up` killed while pinning.
    let partly = Name::new("partly");
    assert_eq!(up(&partly.0).status.code(), Some(0));
    let gone = format!("{}-client-2", partly.0);
    let unmounted = format!("{}-client-3", partly.0);
    for pin in [&gone, &unmounted] {
        assert!(
            Command::new("ip")
                .args(["netns", "delete", pin])
                .status()
                .unwrap()
                .success()
        );
    }
    std::fs::write(Path::new(NETNS).join(&unmounted), "").unwrap();
    let ls = tcplab(&["ls"]);
    assert!(
        ls.stdout()
            .any(|l| l.starts_with(&partly.0) && l.contains("half-made") && l.contains(&gone)),
        "{}",
        ls.transcript()
    );
    let exec = tcplab(&["exec", &partly.0, "client-2", "--", "true"]);
    assert_eq!(exec.status.code(), Some(2));
    assert!(one_error_line(&exec).contains("half-made"));
    let down = tcplab(&["down", &partly.0]);
    assert_eq!(down.status.code(), Some(0), "{}", down.transcript());
    assert!(pins_of(&partly.0).is_empty(), "{:?}", pins_of(&partly.0));

    // Pins with no record at all (an older tcplab, or the record deleted).
    let orphan = Name::new("orphan");
    assert_eq!(up(&orphan.0).status.code(), Some(0));
    std::fs::remove_file(record(&orphan.0)).unwrap();
    let ls = tcplab(&["ls"]);
    assert!(
        ls.stdout()
            .any(|l| l.starts_with(&orphan.0) && l.contains("no record")),
        "{}",
        ls.transcript()
    );
    let again = up(&orphan.0);
    assert_eq!(again.status.code(), Some(2));
    assert!(one_error_line(&again).contains(&format!("tcplab down {}", orphan.0)));
    let down = tcplab(&["down", &orphan.0]);
    assert_eq!(down.status.code(), Some(0), "{}", down.transcript());
    assert!(pins_of(&orphan.0).is_empty(), "{:?}", pins_of(&orphan.0));

    // A namespace with a lab's name that tcplab did not make stays.
    let stranger = Name::new("stranger");
    let fabric = format!("{}-fabric", stranger.0);
    assert!(
        Command::new("ip")
            .args(["netns", "add", &fabric])
            .status()
            .unwrap()
            .success()
    );
    let down = tcplab(&["down", &stranger.0]);
    assert_eq!(down.status.code(), Some(2), "{}", down.transcript());
    assert!(one_error_line(&down).contains("left alone"));
    assert_eq!(pins_of(&stranger.0), vec![fabric.clone()]);
    assert!(
        Command::new("ip")
            .args(["netns", "delete", &fabric])
            .status()
            .unwrap()
            .success()
    );
}

/// `tcplab up` killed (SIGKILL) by strace at the first `syscall` that touches `path`: an exact
/// point in its work, every time.
fn up_killed_at(name: &str, syscall: &str, path: &str) -> Outcome {
    let topology = fixture("topologies/article.toml");
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-o", "/dev/null", "-P", path, "-e"])
        .arg(format!("trace={syscall}"))
        .arg("-e")
        .arg(format!("inject={syscall}:signal=KILL"))
        .arg(env!("CARGO_BIN_EXE_tcplab"))
        .args(["up", topology.to_str().unwrap(), "--name", name]);
    let o = Proc::spawn(cmd)
        .unwrap_or_else(|e| panic!("{e} (install strace: `cargo xtask deps`)"))
        .wait(WAIT)
        .unwrap();
    // strace ends the way its tracee did: by SIGKILL.
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(o.status.signal(), Some(9), "killed: {}", o.transcript());
    o
}

#[test]
fn up_killed_while_recording_or_pinning_leaves_nothing_down_cannot_clear() {
    if !privileged() {
        return;
    }
    state_dir();
    // Killed as it writes the record (the old way to a 0-byte record), as it renames it into
    // place, and as it mounts the second host's pin (its file made, the mount not done).
    let cases = [
        ("write", format!("{STATE}/{{}}.json.tmp"), false),
        ("renameat,renameat2", "{}.json".to_string(), false),
        ("mount", format!("{NETNS}/{{}}-client-1"), true),
    ];
    for (i, (syscall, path, half_made)) in cases.into_iter().enumerate() {
        let name = Name::new(&format!("kill{}", ["w", "r", "m"][i]));
        up_killed_at(&name.0, syscall, &path.replace("{}", &name.0));
        if half_made {
            assert!(
                record(&name.0).exists(),
                "{syscall}: on record before any pin"
            );
            let unmounted = Path::new(NETNS).join(format!("{}-client-1", name.0));
            assert_eq!(std::fs::metadata(&unmounted).unwrap().len(), 0);
            let ls = tcplab(&["ls"]);
            assert!(
                ls.stdout()
                    .any(|l| l.starts_with(&name.0) && l.contains("half-made")),
                "{syscall}: {}",
                ls.transcript()
            );
            let down = tcplab(&["down", &name.0]);
            assert_eq!(down.status.code(), Some(0), "{}", down.transcript());
        } else {
            // Never a cut record, never a pin: nothing to take down, nothing left.
            assert!(!record(&name.0).exists(), "{syscall}");
            assert!(pins_of(&name.0).is_empty(), "{syscall}");
            let down = tcplab(&["down", &name.0]);
            assert_eq!(down.status.code(), Some(2), "{}", down.transcript());
            assert!(one_error_line(&down).contains("no lab named"));
        }
        assert!(
            pins_of(&name.0).is_empty(),
            "{syscall}: {:?}",
            pins_of(&name.0)
        );
        let leftovers: Vec<_> = std::fs::read_dir(STATE)
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{}.", name.0))
            })
            .map(|e| e.file_name())
            .collect();
        assert!(leftovers.is_empty(), "{syscall}: {leftovers:?}");
        let again = up(&name.0);
        assert_eq!(
            again.status.code(),
            Some(0),
            "{syscall}: {}",
            again.transcript()
        );
        assert_eq!(tcplab(&["down", &name.0]).status.code(), Some(0));
        assert!(pins_of(&name.0).is_empty(), "{syscall}");
    }
}

#[test]
fn a_pin_of_the_machines_own_namespace_is_never_entered_even_with_its_inode_on_record() {
    if !privileged() {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let name = Name::new("own");
    assert_eq!(up(&name.0).status.code(), Some(0));
    let pin = Path::new(NETNS).join(format!("{}-server", name.0));
    nix::mount::umount2(&pin, nix::mount::MntFlags::MNT_DETACH).unwrap();
    // The server's pin now holds the machine's own namespace (this test's), and the record
    // says it should.
    nix::mount::mount(
        Some("/proc/self/ns/net"),
        &pin,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let own = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
    let text = std::fs::read_to_string(record(&name.0)).unwrap();
    let mut kept: serde_json::Value = serde_json::from_str(&text).unwrap();
    kept["hosts"][0]["inode"] = own.into();
    assert_eq!(kept["hosts"][0]["name"], "server");
    std::fs::write(record(&name.0), kept.to_string()).unwrap();

    let exec = tcplab(&["exec", &name.0, "server", "--", "ip", "-br", "link"]);
    assert_eq!(exec.status.code(), Some(2), "{}", exec.transcript());
    assert_eq!(exec.stdout().count(), 0, "{}", exec.transcript());
    assert!(one_error_line(&exec).contains("machine's own network namespace"));

    let down = tcplab(&["down", &name.0]);
    assert_eq!(down.status.code(), Some(2), "{}", down.transcript());
    assert!(one_error_line(&down).contains("machine's own network namespace"));
    assert_eq!(
        pins_of(&name.0),
        vec![format!("{}-server", name.0)],
        "the rest went"
    );
    // This test's own cleanup: the bind mount it made.
    nix::mount::umount2(&pin, nix::mount::MntFlags::MNT_DETACH).unwrap();
}
