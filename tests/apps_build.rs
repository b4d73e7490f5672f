//! A crate that depends on tcplab gets no `tcp-server` from cargo: tcplab builds its apps
//! from its own source on first use. This builds them as that path does, in a folder of the
//! test's own, and runs one. No root needed; it compiles tcplab once more (a minute or two).

use std::process::Command;

use tcplab::apps::locate::build_apps;

#[test]
fn the_apps_are_built_from_this_source_on_demand() {
    let root = tempfile::tempdir().unwrap();
    let bin = build_apps(root.path()).unwrap_or_else(|e| panic!("{e}"));
    for app in tcplab::error_class::APPS {
        assert!(
            bin.join(app).is_file(),
            "{app} was not built into {}",
            bin.display()
        );
    }
    let out = Command::new(bin.join("tcp-client"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("tcp-client "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
