//! Where tcplab's own apps (`tcp-server`, `tcp-client`...) are, for scenarios and sessions.
//!
//! Cargo builds a package's binaries only for the package itself: a crate that depends on
//! tcplab gets the library, not `tcp-server`. So the apps are looked for, in order:
//! 1. the folder the caller names (`RunOptions::bin_dir`);
//! 2. `$TCPLAB_BIN_DIR`;
//! 3. the running program's folder, and one up for test binaries in `deps/` (tcplab's own
//!    binaries and tests, and crates in tcplab's workspace);
//! 4. built on first use in the process, from the very source this library was compiled
//!    from, with the cargo that runs the tests (`$CARGO`), into `TARGET/tcplab-apps/` in the
//!    running program's target folder (a lock keeps parallel tests to one build, and cargo
//!    rebuilds only what changed);
//! 5. `PATH`.
//!
//! The error, when none has them, names every place looked at and the one-line fix.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The environment variable naming a folder that holds tcplab's apps.
pub const BIN_DIR_VAR: &str = "TCPLAB_BIN_DIR";

/// Why an app could not be found or built.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot find tcplab's `{app}`: looked at {looked}{build}. Fix: set {BIN_DIR_VAR} to a folder holding tcplab's apps (e.g. after `cargo install tcplab --root DIR`), or run under `cargo test` so tcplab can build them"
)]
pub struct AppNotFound {
    app: String,
    looked: String,
    build: String,
}

/// The apps built on demand, once per process: the folder, or why it failed.
static BUILT: Mutex<Option<Result<PathBuf, String>>> = Mutex::new(None);

/// The path of tcplab's app `app` (see the [module documentation](self) for the order).
/// Any other name is returned as it is, for `PATH` or as a path.
pub fn app_path(app: &str, bin_dir: Option<&Path>) -> Result<PathBuf, AppNotFound> {
    if app.contains('/') || !crate::error_class::is_app(app) {
        return Ok(PathBuf::from(app));
    }
    let mut looked: Vec<PathBuf> = Vec::new();
    let mut dirs: Vec<PathBuf> = bin_dir.map(Path::to_path_buf).into_iter().collect();
    dirs.extend(std::env::var_os(BIN_DIR_VAR).map(PathBuf::from));
    dirs.extend(exe_dirs());
    for dir in dirs {
        let path = dir.join(app);
        if path.is_file() {
            return Ok(path);
        }
        looked.push(path);
    }
    let build = match built() {
        Ok(dir) => {
            let path = dir.join(app);
            if path.is_file() {
                return Ok(path);
            }
            looked.push(path);
            String::new()
        }
        Err(why) => format!(" (and could not build them: {why})"),
    };
    if let Some(path) = on_path(app) {
        return Ok(path);
    }
    let mut places: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
    places.push("PATH".into());
    Err(AppNotFound {
        app: app.to_string(),
        looked: places.join(", "),
        build,
    })
}

/// The running program's folder, and one up when it is cargo's `deps/`.
fn exe_dirs() -> Vec<PathBuf> {
    let Ok(exe) = std::env::current_exe() else {
        return Vec::new();
    };
    let Some(dir) = exe.parent() else {
        return Vec::new();
    };
    let mut dirs = vec![dir.to_path_buf()];
    if dir.ends_with("deps")
        && let Some(up) = dir.parent()
    {
        dirs.push(up.to_path_buf());
    }
    dirs
}

fn on_path(app: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(app))
        .find(|p| p.is_file())
}

/// The folder of apps built on demand: built on the first call of the process (and only
/// once across processes, thanks to cargo's own caching and a lock).
fn built() -> Result<PathBuf, String> {
    let mut cached = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(result) = cached.as_ref() {
        return result.clone();
    }
    let root = apps_root();
    // A minute of silence in a test would look like a hang. Written to stderr itself, not
    // through `eprintln!`, which the test harness captures until the test ends.
    let _ = writeln!(
        std::io::stderr(),
        "tcplab: building tcplab's apps from {} into {} (once; set {BIN_DIR_VAR} to use prebuilt ones)",
        env!("CARGO_MANIFEST_DIR"),
        root.display()
    );
    let result = build_apps(&root);
    *cached = Some(result.clone());
    result
}

/// `TARGET/tcplab-apps`, where TARGET is the cargo target folder the running program is in
/// (`TARGET/debug/deps/test-...`), else a folder in the temporary directory.
fn apps_root() -> PathBuf {
    let target = std::env::current_exe().ok().and_then(|exe| {
        exe.ancestors()
            .find(|a| a.join("CACHEDIR.TAG").is_file())
            .map(Path::to_path_buf)
    });
    match target {
        Some(t) => t.join("tcplab-apps"),
        None => std::env::temp_dir().join(format!("tcplab-apps-{}", env!("CARGO_PKG_VERSION"))),
    }
}

/// Builds tcplab's apps from the source this library was compiled from into `root/bin`,
/// with `$CARGO` (set when `cargo test` or `cargo run` runs the program) or the `cargo` on
/// `PATH`. Returns
/// `root/bin`. Parallel callers wait for one build; later ones find it done.
pub fn build_apps(root: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .or_else(|| on_path("cargo"))
        .ok_or("no cargo: $CARGO is not set and `cargo` is not on PATH")?;
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let lock = std::fs::File::create(root.join(".lock"))
        .map_err(|e| format!("cannot create {}: {e}", root.join(".lock").display()))?;
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("cannot lock {}: {e}", root.display()))?;
    let bin = root.join("bin");
    // Run even when the apps are there: cargo rebuilds only what changed, and the apps then
    // always match this very source.
    let mut cmd = Command::new(&cargo);
    cmd.args([
        "install", "--quiet", "--debug", "--bins", "--force", "--path",
    ])
    .arg(source)
    .arg("--root")
    .arg(root)
    .arg("--target-dir")
    .arg(root.join("build"));
    if source.join("Cargo.lock").is_file() {
        cmd.arg("--locked");
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", Path::new(&cargo).display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!(
            "`cargo install --path {}` failed: {last}",
            source.display()
        ));
    }
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_programs_are_left_as_named() {
        assert_eq!(app_path("curl", None).unwrap(), PathBuf::from("curl"));
        assert_eq!(app_path("./bin/x", None).unwrap(), PathBuf::from("./bin/x"));
    }

    #[test]
    fn a_given_folder_comes_first() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("tcp-server");
        std::fs::write(&app, "").unwrap();
        assert_eq!(app_path("tcp-server", Some(dir.path())).unwrap(), app);
    }
}
