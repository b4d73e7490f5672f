//! Network namespaces served by worker threads. Each namespace has a thread that lives inside
//! it for as long as the handle does, so callers never call `setns`: sockets, sysctls and child
//! processes are made on that thread. The namespace is anonymous (held by an fd) unless it is
//! pinned on purpose, so nothing outlives the process that made it.

mod pin;
mod worker;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use crate::proc::{self, Proc, ProcError};
pub use pin::NETNS_RUN_DIR;
pub(crate) use pin::unpin_path;
pub(crate) use worker::Pending;
pub use worker::WorkerState;

/// What went wrong with a namespace or its worker thread.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The kernel refused a new network namespace (privileges, or file descriptors).
    #[error("cannot create a network namespace: {0}{hint}", hint = create_hint(.0))]
    Create(#[source] std::io::Error),
    /// The thread that lives in the namespace could not be started.
    #[error("cannot start the namespace's worker thread: {0}")]
    Thread(std::io::Error),
    /// The namespace's thread ended: a job on it panicked.
    #[error("the namespace's worker thread is gone (a job on it panicked)")]
    WorkerGone,
    /// A sysctl outside `net.*`: it would be the machine's, not the namespace's.
    #[error("sysctl `{key}` is not per namespace: only `net.*` keys can be read or set in a lab")]
    SysctlNotNamespaced {
        /// The key asked for.
        key: String,
    },
    /// A sysctl could not be read.
    #[error("cannot read sysctl `{key}`: {source}")]
    SysctlRead {
        /// The key.
        key: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A sysctl could not be set.
    #[error("cannot set sysctl `{key}` to `{value}`: {source}")]
    SysctlWrite {
        /// The key.
        key: String,
        /// The value refused.
        value: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Pinning under /run/netns (or removing a pin) failed.
    #[error("cannot pin the namespace at {}: {source}", path.display())]
    Pin {
        /// The pin's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A program could not be started in the namespace.
    #[error(transparent)]
    Proc(#[from] ProcError),
}

fn create_hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        // Not a privilege problem: the error itself says what ran out.
        Some(libc::EMFILE | libc::ENFILE) => "",
        _ => {
            " (creating one needs CAP_SYS_ADMIN: run as root, or in a container started with --privileged)"
        }
    }
}

/// A network namespace and the worker thread that lives in it.
pub struct Namespace {
    worker: worker::Worker,
    fd: OwnedFd,
    inode: u64,
    pinned: Option<PathBuf>,
    hosts: Option<std::sync::Arc<crate::contain::HostsFile>>,
}

impl Namespace {
    /// Creates a new, empty, anonymous namespace (only `lo`, down).
    pub fn new() -> Result<Namespace, NetnsError> {
        Namespace::start().finish()
    }

    /// Starts making a namespace; [`Starting::finish`] waits for it. Starting several before
    /// finishing any makes them in parallel.
    pub(crate) fn start() -> Starting {
        Starting(worker::Worker::start())
    }

    fn from_worker(worker: worker::Worker, fd: OwnedFd) -> Result<Namespace, NetnsError> {
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map(|m| m.ino())
            .map_err(NetnsError::Create)?;
        Ok(Namespace {
            worker,
            fd,
            inode,
            pinned: None,
            hosts: None,
        })
    }

    /// Programs started from now on see `hosts` as their `/etc/hosts`.
    pub(crate) fn set_hosts_file(&mut self, hosts: std::sync::Arc<crate::contain::HostsFile>) {
        self.hosts = Some(hosts);
    }

    /// The namespace's inode, as `ip netns identify` and `/proc/PID/ns/net` show it.
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// Runs `job` on the namespace's worker thread and waits for its result. The worker also
    /// serves this namespace's sysctls and program starts, so a slow job delays them: for the
    /// caller's own code, [`crate::lab::Host::run_fn`] runs on a thread of its own instead.
    /// [`WorkerState`] is the worker's own state, of no use to callers.
    pub fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut WorkerState) -> T + Send + 'static,
    ) -> Result<T, NetnsError> {
        self.submit(job).wait()
    }

    /// Starts `job` on the namespace's thread; wait on the result later, so that work in
    /// several namespaces overlaps.
    pub(crate) fn submit<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut WorkerState) -> T + Send + 'static,
    ) -> Pending<T> {
        self.worker.submit(job)
    }

    /// Reads a `net.*` sysctl of this namespace, e.g. `net.ipv4.tcp_syn_retries`.
    pub fn sysctl(&self, key: &str) -> Result<String, NetnsError> {
        let path = sysctl_path(key)?;
        let key = key.to_string();
        self.run(move |_| std::fs::read_to_string(&path))?
            .map(|v| v.trim().to_string())
            .map_err(|source| NetnsError::SysctlRead { key, source })
    }

    /// Sets a `net.*` sysctl of this namespace.
    pub fn set_sysctl(&self, key: &str, value: &str) -> Result<(), NetnsError> {
        let path = sysctl_path(key)?;
        let (key, value) = (key.to_string(), value.to_string());
        self.run(move |_| {
            std::fs::write(&path, &value).map_err(|source| NetnsError::SysctlWrite {
                key,
                value,
                source,
            })
        })?
    }

    /// Starts `cmd` inside the namespace, with stdin closed and its output captured. The
    /// program is killed when the handle is dropped, and when the namespace's thread ends.
    ///
    /// It runs in the namespace's PID namespace (see [`crate::contain`]): whatever it leaves
    /// running (background jobs, daemons) is killed when the namespace's thread ends, even if
    /// this process is killed. It gets a mount namespace of its own in which `/sys` and
    /// `/proc` show this namespace's interfaces and processes.
    pub fn spawn(&self, mut cmd: Command) -> Result<Proc, NetnsError> {
        proc::prepare(&mut cmd);
        let program = proc::describe(&cmd);
        let ns_fd = self.fd.as_raw_fd();
        // Held by the hook, so the file outlives the fork; the child only reads the path.
        let hosts = self.hosts.clone();
        // SAFETY: the hook only makes async-signal-safe syscalls (prctl, setns, unshare,
        // mount) in the child.
        unsafe {
            cmd.pre_exec(move || {
                // The worker thread forks, so the child dies when the worker (the lab) ends,
                // even if this process is killed.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::setns(ns_fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // After setns: sysfs shows the network namespace of whoever mounts it.
                let hosts = hosts.as_deref().map(crate::contain::HostsFile::fd);
                crate::contain::private_mounts(hosts).map_err(std::io::Error::from)
            });
        }
        let name = program.clone();
        let (child, started) = self
            .run(move |state| {
                let pids = state.pid_namespace()?;
                let started = Instant::now();
                match pids.spawn_in(|| cmd.spawn()) {
                    Ok(child) => Ok((child, started)),
                    // The child reports only an errno: if its own mounts were what failed,
                    // say so rather than leave "Operation not permitted" unexplained.
                    Err(e) if e.raw_os_error().is_some() => {
                        Err(match crate::contain::diagnose_mounts() {
                            Some(why) => std::io::Error::new(e.kind(), why),
                            None => e,
                        })
                    }
                    Err(e) => Err(e),
                }
            })?
            .map_err(|source| ProcError::Spawn {
                program: name,
                source,
            })?;
        Ok(Proc::from_child(program, child, started))
    }

    /// The inode of the PID namespace this namespace's programs run in (as
    /// `/proc/PID/ns/pid` shows it), once a program was started.
    pub fn pid_namespace_inode(&self) -> Result<Option<u64>, NetnsError> {
        self.run(|state| state.pid_namespace_inode())
    }

    /// Pins the namespace at `/run/netns/NAME`, as `ip netns add` does, so that `ip netns exec
    /// NAME ...` reaches it. It then outlives the process: [`Namespace::unpin`] removes it.
    pub fn pin(&mut self, name: &str) -> Result<PathBuf, NetnsError> {
        let path = pin::pin(self, name)?;
        self.pinned = Some(path.clone());
        Ok(path)
    }

    /// Removes the pin made by [`Namespace::pin`], if any.
    pub fn unpin(&mut self) -> Result<(), NetnsError> {
        if let Some(path) = self.pinned.take() {
            pin::unpin_path(&path)?;
        }
        Ok(())
    }
}

/// A namespace being made on its new thread.
pub(crate) struct Starting(Result<worker::Starting, NetnsError>);

impl Starting {
    /// Waits for the namespace to be made.
    pub(crate) fn finish(self) -> Result<Namespace, NetnsError> {
        let (worker, fd) = self.0?.finish()?;
        Namespace::from_worker(worker, fd)
    }
}

impl AsFd for Namespace {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn sysctl_path(key: &str) -> Result<PathBuf, NetnsError> {
    let valid = key.starts_with("net.")
        && key
            .split(['.', '/'])
            .all(|part| !part.is_empty() && part != "..");
    if !valid {
        return Err(NetnsError::SysctlNotNamespaced {
            key: key.to_string(),
        });
    }
    // Interface names may hold dots, so `net/ipv4/conf/eth0.1/...` keys may use slashes.
    let rel = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    Ok(PathBuf::from("/proc/sys").join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_net_sysctls() {
        assert_eq!(
            sysctl_path("net.ipv4.tcp_syn_retries").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/tcp_syn_retries")
        );
        assert!(sysctl_path("kernel.hostname").is_err());
        assert!(sysctl_path("net.ipv4..x").is_err());
        assert!(sysctl_path("net/../kernel/hostname").is_err());
    }
}
