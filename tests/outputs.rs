//! Where `tcplab run` writes: `--out DIR` only into a real, new or empty folder; folders 0700
//! and pcaps 0600; the temporary folder removed after a passing run, kept after a failing
//! one or with `--keep`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{WAIT, fixture, privileged};
use tcplab::proc::{Outcome, Proc};

fn tcplab(args: &[&str], tmpdir: &Path) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcplab"));
    cmd.args(args).env("NO_COLOR", "1").env("TMPDIR", tmpdir);
    Proc::spawn(cmd).unwrap().wait(WAIT).unwrap()
}

fn one_error_line(o: &Outcome) -> String {
    let err: Vec<&str> = o.stderr().collect();
    assert_eq!(err.len(), 1, "one line on stderr:\n{}", o.transcript());
    assert!(err[0].starts_with("error: "), "{}", err[0]);
    err[0].to_string()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut e: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    e.sort();
    e
}

#[test]
fn out_refuses_a_symlink_and_a_folder_with_files_in_it() {
    if !privileged() {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let victim = base.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    let precious = victim.join("server.pcap");
    std::fs::write(&precious, "precious").unwrap();
    let link = base.path().join("link");
    std::os::unix::fs::symlink(&victim, &link).unwrap();

    let o = tcplab(
        &["run", "connection-refused", "--out", link.to_str().unwrap()],
        base.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", o.transcript());
    assert!(one_error_line(&o).contains("symbolic link"));

    let o = tcplab(
        &[
            "run",
            "connection-refused",
            "--out",
            victim.to_str().unwrap(),
        ],
        base.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", o.transcript());
    assert!(one_error_line(&o).contains("not empty"));
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious");
    assert_eq!(entries(&victim), vec![precious]);
}

#[test]
fn out_folder_is_0700_and_its_pcaps_0600() {
    if !privileged() {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let out = base.path().join("new/captures");
    let o = tcplab(
        &["run", "connection-refused", "--out", out.to_str().unwrap()],
        base.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", o.transcript());
    assert_eq!(mode(&out), 0o700);
    let pcaps = entries(&out);
    assert!(pcaps.len() >= 2, "{pcaps:?}");
    for pcap in pcaps {
        assert_eq!(mode(&pcap), 0o600, "{}", pcap.display());
    }
}

#[test]
fn temporary_folder_goes_after_a_pass_and_stays_after_a_failure_or_with_keep() {
    if !privileged() {
        return;
    }
    // tcplab's temporary folders go to TMPDIR: here, one of this test's own.
    let tmp = tempfile::tempdir().unwrap();

    let pass = tcplab(&["run", "connection-refused"], tmp.path());
    assert_eq!(pass.status.code(), Some(0), "{}", pass.transcript());
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    assert!(pass.stdout().any(|l| l.contains("removed")));

    let keep = tcplab(&["run", "connection-refused", "--keep"], tmp.path());
    assert_eq!(keep.status.code(), Some(0), "{}", keep.transcript());
    let kept = entries(tmp.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(mode(&kept[0]), 0o700);
    assert!(
        keep.stdout()
            .any(|l| l == format!("pcaps: {}", kept[0].display())),
        "{}",
        keep.transcript()
    );
    std::fs::remove_dir_all(&kept[0]).unwrap();

    let file = tmp.path().join("wrong.toml");
    std::fs::write(
        &file,
        format!(
            "description = \"expects a refusal where the group silently drops\"\ntopology = \"{}\"\n[[step]]\naction = \"run\"\nhost = \"client-1\"\nname = \"client\"\ncommand = [\"tcp-client\", \"10.0.0.58\", \"1235\", \"-t\", \"1\", \"-c\", \"1\"]\n[[expect]]\nkind = \"class\"\nprogram = \"client\"\nclass = \"connection-refused\"\n",
            fixture("topologies/article.toml").display()
        ),
    )
    .unwrap();
    let fail = tcplab(&["run", file.to_str().unwrap()], tmp.path());
    assert_eq!(fail.status.code(), Some(1), "{}", fail.transcript());
    let kept: Vec<_> = entries(tmp.path())
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        fail.stdout()
            .any(|l| l == format!("pcaps: {}", kept[0].display())),
        "{}",
        fail.transcript()
    );
    assert!(kept[0].join("client-1.pcap").is_file());
}
