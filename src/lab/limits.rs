//! File descriptors: a lab holds a few per host (the namespace, its netlink socket, and for a
//! moment the sockets that load rules and watch links), so a big lab needs more than the
//! soft limit most shells give (1024). The soft limit is raised to the hard one, once, as
//! tools that open many files do; the hard limit is the administrator's and stays.

use std::sync::Once;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

static RAISE: Once = Once::new();

/// Raises the soft RLIMIT_NOFILE to the hard limit (once per process).
pub(crate) fn raise_nofile() {
    RAISE.call_once(|| {
        if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
            && soft < hard
        {
            // Failing leaves the limit as it was; running out later says so.
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    });
}

/// The limit in force, for errors.
pub(crate) fn nofile_limit() -> Option<u64> {
    getrlimit(Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// Whether `e` says the process or the system ran out of file descriptors.
pub(crate) fn out_of_files(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}
