//! The thread that lives inside a namespace and runs jobs there.

use std::os::fd::OwnedFd;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::NetnsError;
use crate::contain::PidNamespace;

type Job = Box<dyn FnOnce(&mut WorkerState) + Send>;

/// What a job gets on the namespace's thread: a runtime for async work (netlink), and the
/// namespace's netlink connection, opened on first use. Opaque outside tcplab.
pub struct WorkerState {
    pub(crate) runtime: tokio::runtime::Runtime,
    netlink: Option<rtnetlink::Handle>,
    /// The PID namespace the namespace's programs run in, made on the first spawn. Dropped
    /// when the thread ends, which ends every process left in it.
    pids: Option<PidNamespace>,
}

impl WorkerState {
    /// The namespace's rtnetlink handle. Its socket was opened on this thread, so it talks to
    /// this namespace; it closes when the namespace's thread ends.
    pub(crate) fn netlink(&mut self) -> std::io::Result<rtnetlink::Handle> {
        if let Some(handle) = &self.netlink {
            return Ok(handle.clone());
        }
        let _entered = self.runtime.enter();
        let (connection, handle, _) = rtnetlink::new_connection()?;
        self.runtime.spawn(connection);
        self.netlink = Some(handle.clone());
        Ok(handle)
    }

    /// The PID namespace for programs started on this thread, started on first use.
    pub(crate) fn pid_namespace(&mut self) -> std::io::Result<&PidNamespace> {
        let pids = match self.pids.take() {
            Some(pids) => pids,
            None => PidNamespace::start().map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot make the host's PID namespace: {e} (it needs CAP_SYS_ADMIN and a kernel with PID namespaces)"
                    ),
                )
            })?,
        };
        Ok(self.pids.insert(pids))
    }

    /// The inode of the PID namespace programs run in, if one was started.
    pub(crate) fn pid_namespace_inode(&self) -> Option<u64> {
        self.pids.as_ref().map(PidNamespace::inode)
    }
}

pub(super) struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

/// A job's result, to wait for later.
pub(crate) struct Pending<T>(mpsc::Receiver<std::thread::Result<T>>);

impl<T> Pending<T> {
    /// Waits for the job's result; a panic in the job resumes here.
    pub(crate) fn wait(self) -> Result<T, NetnsError> {
        match self.0.recv() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => Err(NetnsError::WorkerGone),
        }
    }
}

impl Worker {
    /// Starts a thread that moves into a new network namespace; `finish` waits for its fd.
    pub(super) fn start() -> Result<Starting, NetnsError> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<OwnedFd, std::io::Error>>();
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("tcplab-netns".into())
            .spawn(move || {
                let setup = || -> Result<(OwnedFd, WorkerState), std::io::Error> {
                    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
                    let fd = std::fs::File::open("/proc/thread-self/ns/net")?.into();
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    Ok((
                        fd,
                        WorkerState {
                            runtime,
                            netlink: None,
                            pids: None,
                        },
                    ))
                };
                let mut state = match setup() {
                    Ok((fd, state)) => {
                        let _ = ready_tx.send(Ok(fd));
                        state
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for job in jobs_rx {
                    job(&mut state);
                }
            })
            .map_err(NetnsError::Thread)?;
        Ok(Starting {
            worker: Worker {
                jobs: Some(jobs_tx),
                thread: Some(thread),
            },
            ready: ready_rx,
        })
    }

    pub(super) fn submit<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut WorkerState) -> T + Send + 'static,
    ) -> Pending<T> {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move |state| {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| job(state)));
            let _ = tx.send(result);
        });
        if let Some(jobs) = &self.jobs {
            // A send fails only when the thread is gone; the receiver then reports it.
            let _ = jobs.send(job);
        }
        Pending(rx)
    }
}

pub(super) struct Starting {
    worker: Worker,
    ready: mpsc::Receiver<Result<OwnedFd, std::io::Error>>,
}

impl Starting {
    pub(super) fn finish(self) -> Result<(Worker, OwnedFd), NetnsError> {
        match self.ready.recv() {
            Ok(Ok(fd)) => Ok((self.worker, fd)),
            // Dropping the worker joins its thread, which has ended.
            Ok(Err(e)) => Err(NetnsError::Create(e)),
            Err(_) => Err(NetnsError::WorkerGone),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
