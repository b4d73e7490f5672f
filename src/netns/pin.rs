//! Pinning a namespace under /run/netns, the way `ip netns add` does, for labs kept up on
//! purpose.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::{Namespace, NetnsError};

/// Where pinned namespaces are, as `ip netns` keeps them.
pub const NETNS_RUN_DIR: &str = "/run/netns";

pub(super) fn pin(ns: &Namespace, name: &str) -> Result<PathBuf, NetnsError> {
    let path = Path::new(NETNS_RUN_DIR).join(name);
    let err = |source: std::io::Error| NetnsError::Pin {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(NETNS_RUN_DIR).map_err(err)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(err)?;
    let target = path.clone();
    // The namespace's own thread bind-mounts its namespace file onto the pin.
    let mounted = ns.run(move |_| {
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    })?;
    if let Err(e) = mounted {
        let _ = std::fs::remove_file(&path);
        return Err(err(e.into()));
    }
    Ok(path)
}

/// Removes a pin made by `ip netns add` or [`Namespace::pin`]: the namespace goes when nothing
/// else holds it.
pub fn unpin_path(path: &Path) -> Result<(), NetnsError> {
    let err = |source: std::io::Error| NetnsError::Pin {
        path: path.to_path_buf(),
        source,
    };
    umount2(path, MntFlags::MNT_DETACH).map_err(|e| err(e.into()))?;
    std::fs::remove_file(path).map_err(err)
}
