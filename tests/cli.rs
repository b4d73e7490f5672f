//! The `tcplab` command line as a person uses it: exit codes, one-line errors, reports, and
//! labs kept up for `ip netns exec`.

mod common;

use std::process::Command;

use common::{WAIT, fixture, privileged};
use tcplab::proc::{Outcome, Proc};

fn tcplab(args: &[&str]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcplab"));
    cmd.args(args).env("NO_COLOR", "1");
    Proc::spawn(cmd).unwrap().wait(WAIT).unwrap()
}

fn one_error_line(o: &Outcome) -> String {
    let err: Vec<&str> = o.stderr().collect();
    assert_eq!(err.len(), 1, "one line on stderr:\n{}", o.transcript());
    assert!(err[0].starts_with("error: "), "{}", err[0]);
    err[0].to_string()
}

#[test]
fn up_of_a_scenario_file_points_to_run() {
    if !privileged() {
        return;
    }
    let scenario = fixture("scenarios/allowed.toml");
    let o = tcplab(&["up", scenario.to_str().unwrap(), "--name", "not-a-topology"]);
    assert_eq!(o.status.code(), Some(2), "{}", o.transcript());
    let line = one_error_line(&o);
    assert!(
        line.contains("this looks like a scenario: `tcplab run "),
        "{line}"
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["run"][..],
        &["frobnicate"],
        &["down"],
        &["exec", "lab", "server"],
    ] {
        let o = tcplab(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}:\n{}", o.transcript());
        assert!(
            o.stderr().next().unwrap_or("").starts_with("error: "),
            "{}",
            o.transcript()
        );
        assert_eq!(o.stderr().count(), 1, "one line:\n{}", o.transcript());
    }
}

#[test]
fn unknown_scenario_names_the_catalog() {
    let o = tcplab(&["run", "no-such-scenario"]);
    assert_eq!(o.status.code(), Some(2));
    let line = one_error_line(&o);
    assert!(
        line.contains("known: ") && line.contains("connect-timeout"),
        "{line}"
    );
}

#[test]
fn broken_scenario_file_is_one_line_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(
        &file,
        "description = \"x\"\n[[host]]\nname = \"a\"\nadress = \"10.0.0.9\"\n",
    )
    .unwrap();
    let o = tcplab(&["run", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let line = one_error_line(&o);
    assert!(
        line.contains("broken.toml:4:1: unknown field `adress`"),
        "{line}"
    );
}

#[test]
fn scenarios_lists_the_catalog() {
    let o = tcplab(&["scenarios"]);
    assert_eq!(o.status.code(), Some(0), "{}", o.transcript());
    let files = std::fs::read_dir(fixture("scenarios")).unwrap().count();
    assert_eq!(o.stdout().count(), files, "{}", o.transcript());
    assert!(
        o.stdout()
            .any(|l| l.starts_with("connect-timeout ") && l.contains("security group"))
    );
}

#[test]
fn help_has_examples_for_every_command() {
    for cmd in ["run", "up", "exec", "ls", "down", "check", "scenarios"] {
        let o = tcplab(&[cmd, "--help"]);
        assert_eq!(o.status.code(), Some(0));
        assert!(
            o.stdout().any(|l| l.starts_with("Example")),
            "{cmd}:\n{}",
            o.transcript()
        );
    }
}

#[test]
fn run_reports_and_exits_0_when_expectations_hold() {
    if !privileged() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let o = tcplab(&[
        "run",
        "connection-refused",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", o.transcript());
    let text: Vec<&str> = o.stdout().collect();
    assert!(
        text.iter().any(|l| l.contains("expectations held")),
        "{}",
        o.transcript()
    );
    assert!(
        text.iter().any(|l| l.contains("Flags [R.]")),
        "the report shows the RST:\n{}",
        o.transcript()
    );
    assert!(out.path().join("server.pcap").is_file());
    assert!(out.path().join("client-1.pcap").is_file());
}

#[test]
fn run_exits_1_when_an_expectation_fails_and_json_says_why() {
    if !privileged() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong.toml");
    let topology = fixture("topologies/article.toml");
    std::fs::write(
        &file,
        format!(
            "description = \"expects a refusal where the group silently drops\"\ntopology = \"{}\"\n[[step]]\naction = \"run\"\nhost = \"client-1\"\nname = \"client\"\ncommand = [\"tcp-client\", \"10.0.0.58\", \"1235\", \"-t\", \"1\", \"-c\", \"1\"]\n[[expect]]\nkind = \"class\"\nprogram = \"client\"\nclass = \"connection-refused\"\n",
            topology.display()
        ),
    )
    .unwrap();
    // A failing run keeps its pcaps: in this test's folder, not in /tmp for good.
    let out = dir.path().join("out");
    let o = tcplab(&[
        "run",
        file.to_str().unwrap(),
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", o.transcript());
    let json: String = o.stdout().collect::<Vec<_>>().join("\n");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["passed"], false);
    let failed: Vec<&serde_json::Value> = report["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["held"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{json}");
    // The `[[expect]]` is the file's 8th line, named as the command line named the file.
    assert_eq!(
        failed[0]["at"],
        format!("{}:8", file.display()).as_str(),
        "{json}"
    );
    assert!(
        failed[0]["detail"]
            .as_str()
            .unwrap()
            .contains("connect-timeout"),
        "{json}"
    );
}

#[test]
fn a_lab_kept_up_works_with_ip_netns_exec_and_goes_down() {
    if !privileged() {
        return;
    }
    let name = format!("t{}", std::process::id());
    let topology = fixture("topologies/article.toml");
    let up = tcplab(&["up", topology.to_str().unwrap(), "--name", &name]);
    assert_eq!(up.status.code(), Some(0), "{}", up.transcript());
    // Whatever happens next, the lab goes down.
    struct Down(String);
    impl Drop for Down {
        fn drop(&mut self) {
            tcplab(&["down", &self.0]);
        }
    }
    let _down = Down(name.clone());

    let again = tcplab(&["up", topology.to_str().unwrap(), "--name", &name]);
    assert_eq!(again.status.code(), Some(2));
    assert!(one_error_line(&again).contains("already up"));

    let ls = tcplab(&["ls"]);
    assert!(
        ls.stdout().any(|l| l.starts_with(&name)),
        "{}",
        ls.transcript()
    );

    let mut ping = Command::new("ip");
    ping.args([
        "netns",
        "exec",
        &format!("{name}-client-1"),
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "10.0.0.58",
    ]);
    let ping = Proc::spawn(ping).unwrap().wait(WAIT).unwrap();
    assert_eq!(ping.status.code(), Some(0), "{}", ping.transcript());

    let exec = tcplab(&[
        "exec", &name, "server", "--", "ip", "-br", "-4", "addr", "show", "eth0",
    ]);
    assert!(
        exec.stdout().any(|l| l.contains("10.0.0.58/24")),
        "{}",
        exec.transcript()
    );

    // The command sees the host's interfaces, not the machine's.
    let sys = tcplab(&["exec", &name, "server", "--", "ls", "/sys/class/net"]);
    assert_eq!(
        sys.stdout().collect::<Vec<_>>(),
        ["eth0", "lo"],
        "{}",
        sys.transcript()
    );

    let down = tcplab(&["down", &name]);
    assert_eq!(down.status.code(), Some(0), "{}", down.transcript());
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains(&name),
        "pinned namespaces left behind"
    );
}

#[test]
fn check_reports_every_feature() {
    if !privileged() {
        return;
    }
    let o = tcplab(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", o.transcript());
    for what in [
        "ok   privileges",
        "ok   namespaces, bridge",
        "ok   packet capture",
        "ok   ping inside a host",
    ] {
        assert!(
            o.stdout().any(|l| l.starts_with(what)),
            "no `{what}`:\n{}",
            o.transcript()
        );
    }
}

#[test]
fn a_full_disk_on_stdout_is_one_line_not_a_panic() {
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tcplab"))
        .arg("scenarios")
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().collect::<Vec<_>>(),
        ["error: cannot write to standard output: No space left on device (os error 28)"]
    );
}

#[test]
fn a_pipe_closed_early_ends_tcplab_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcplab"))
        .arg("scenarios")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes before reading anything, as `| head -0` would.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(141),
        "{stderr} {:?}",
        out.status.signal()
    );
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
}

#[test]
fn import_aws_writes_a_topology_that_loads_and_lists_what_is_not_modelled() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("vpc.toml");
    let aws = fixture("aws");
    let args = [
        "import",
        "aws",
        aws.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    let o = tcplab(&args);
    assert_eq!(o.status.code(), Some(0), "{}", o.transcript());
    assert_eq!(o.stdout().count(), 0, "{}", o.transcript());
    assert!(
        o.stderr().any(|l| l.starts_with(
            "imported 2 subnets, 3 hosts, 4 security groups, 2 route tables, 2 network ACLs from AWS VPC vpc-0a1b2c3d4e5f60718"
        )),
        "{}",
        o.transcript()
    );
    assert!(
        o.stderr()
            .any(|l| l.contains("igw-0c0ffee0c0ffee0c0") && l.contains("stand-in `unreachable`")),
        "{}",
        o.transcript()
    );
    assert!(
        o.stderr()
            .any(|l| l.contains("i-0d4d4d4d4d4d4d4d4 (terminated)"))
    );
    let (topo, resolved) = tcplab::Topology::from_file(&out).unwrap();
    assert_eq!(resolved.hosts.len(), 3);
    assert_eq!(topo.vpc.unwrap().subnets.len(), 2);
    let written = std::fs::read_to_string(&out).unwrap();

    // Never over an existing file, unless asked.
    let o = tcplab(&args);
    assert_eq!(o.status.code(), Some(2), "{}", o.transcript());
    let line = one_error_line(&o);
    assert!(
        line.contains("already exists: give another file, or --force"),
        "{line}"
    );
    std::fs::write(&out, "old").unwrap();
    let o = tcplab(&[&args[..], &["--force"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", o.transcript());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), written);

    // The files one by one, to standard output: the same topology.
    let files: Vec<String> = std::fs::read_dir(&aws)
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_string())
        .collect();
    let mut args = vec!["import", "aws"];
    args.extend(files.iter().map(String::as_str));
    let o = tcplab(&args);
    assert_eq!(o.status.code(), Some(0), "{}", o.transcript());
    let stdout: String = o.stdout().map(|l| format!("{l}\n")).collect();
    assert_eq!(stdout, written);
}

#[test]
fn import_aws_refuses_bad_input_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let aws = fixture("aws");
    // A truncated file among good ones.
    for f in std::fs::read_dir(&aws).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    let acls = dir.path().join("network-acls.json");
    let text = std::fs::read_to_string(&acls).unwrap();
    std::fs::write(&acls, &text[..text.len() / 3]).unwrap();
    let o = tcplab(&["import", "aws", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", o.transcript());
    assert_eq!(o.stdout().count(), 0, "{}", o.transcript());
    let line = one_error_line(&o);
    assert!(
        line.contains("network-acls.json:") && line.contains("EOF while parsing"),
        "{line}"
    );

    let empty = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["import", "aws", "/dev/zero"],
            "not a regular file or a folder",
        ),
        (
            &["import", "aws", empty.path().to_str().unwrap()],
            "no .json file in the folder",
        ),
        (
            &["import", "aws", "/nonexistent.json"],
            "cannot read /nonexistent.json",
        ),
        (
            &["import", "aws", aws.to_str().unwrap(), "--vpc", "vpc-nope"],
            "no VPC `vpc-nope`",
        ),
    ];
    for (args, said) in cases {
        let o = tcplab(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", o.transcript());
        let line = one_error_line(&o);
        assert!(line.contains(said), "{args:?}: {line}");
    }
    // Usage: no path; --force without -o.
    for args in [
        &["import", "aws"][..],
        &["import", "aws", aws.to_str().unwrap(), "--force"],
    ] {
        let o = tcplab(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", o.transcript());
        assert_eq!(o.stderr().count(), 1, "{}", o.transcript());
    }
    let o = tcplab(&["import", "aws", "--help"]);
    assert!(
        o.stdout().any(|l| l.starts_with("Example")),
        "{}",
        o.transcript()
    );
}
