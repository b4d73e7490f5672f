//! Keeping a lab's programs inside the lab.
//!
//! Each host gets a PID namespace whose PID 1 is a tiny init forked from the host's worker
//! thread. Programs are forked into that namespace from the same thread, so they remain the
//! harness's own children: signals reach them directly and their exit status is their own.
//! Whatever they leave behind (background jobs, double forks, `setsid` daemons) is reparented
//! to the host's init, and when the init ends the kernel kills every process left in the
//! namespace. The init ends when the read end of its lifeline pipe reports end of file: when
//! the host's worker thread drops the write end, and when the harness dies in any way, SIGKILL
//! included, since the kernel then closes the harness's files.
//!
//! Each program also gets a mount namespace of its own, a slave of the machine's (nothing
//! mounted there ever propagates back), with sysfs mounted on `/sys` for the host's network
//! namespace, as `ip netns exec` does, and procfs on `/proc` for the host's PID namespace, so
//! `/sys/class/net` lists the host's interfaces and `ps` the host's processes.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The name the init shows in `ps`, for people looking at a running lab.
pub(crate) const INIT_NAME: &CStr = c"tcplab-init";

/// The PID namespace of a host, and its init.
pub(crate) struct PidNamespace {
    /// The namespace, to place children in it with `setns`.
    ns: OwnedFd,
    /// The creating thread's own PID namespace, to return to after each spawn.
    own: OwnedFd,
    /// A pidfd of the init, to reap it once it has ended.
    init: OwnedFd,
    inode: u64,
    /// The write end of the init's lifeline; the init ends when the pipe closes.
    lifeline: Option<OwnedFd>,
}

impl PidNamespace {
    /// Starts a PID namespace and its init, a child of the calling thread. Call it on the
    /// thread that will spawn the host's programs (the namespace's worker thread).
    pub fn start() -> io::Result<PidNamespace> {
        let own = open_ns("/proc/thread-self/ns/pid")?;
        // The init leaves the host's network namespace for the process's own (that of its
        // main thread), so that the host's namespace goes with the host even while the init is
        // still winding down.
        let outside_net = open_ns("/proc/self/ns/net")?;
        let (alive_r, alive_w) = pipe()?;
        // SAFETY: unshare takes flags; CLONE_NEWPID only changes where this thread's next
        // children go (it does not move the thread), and it is undone below.
        if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let started = fork_init(&alive_r, &outside_net);
        // SAFETY: setns on an fd we own; it puts this thread's later children back in the
        // thread's own namespace. Entering one's own active namespace is always allowed.
        let back = unsafe { libc::setns(own.as_raw_fd(), libc::CLONE_NEWPID) };
        if back != 0 {
            // The thread could no longer start threads (the kernel refuses CLONE_THREAD while
            // children would go elsewhere): refuse loudly rather than misbehave later.
            return Err(io::Error::last_os_error());
        }
        let (ns, init) = started?;
        let inode = inode_of(&ns)?;
        Ok(PidNamespace {
            ns,
            own,
            init,
            inode,
            lifeline: Some(alive_w),
        })
    }

    /// The namespace's inode, as `/proc/PID/ns/pid` of its processes shows it.
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// Runs `spawn` (which forks, e.g. `Command::spawn`) with the calling thread's new
    /// children placed in this namespace. Call it on the thread that started the namespace.
    pub fn spawn_in<T>(&self, spawn: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        let entering = |what: &str| {
            let e = io::Error::last_os_error();
            io::Error::new(
                e.kind(),
                format!("cannot {what} the host's PID namespace: {e}"),
            )
        };
        // SAFETY: setns on fds we own; it only changes where this thread's children go.
        if unsafe { libc::setns(self.ns.as_raw_fd(), libc::CLONE_NEWPID) } != 0 {
            return Err(entering("enter"));
        }
        let result = spawn();
        // SAFETY: as above; back to the thread's own namespace.
        if unsafe { libc::setns(self.own.as_raw_fd(), libc::CLONE_NEWPID) } != 0 {
            return Err(entering("leave"));
        }
        result.map_err(|e| {
            // A fork into a namespace whose init has ended fails with ENOMEM, as does one
            // without memory: tell them apart.
            if e.raw_os_error() == Some(libc::ENOMEM) && self.init_has_ended() {
                io::Error::other(
                    "the host's init process has ended (was it killed from outside tcplab?): no program can start in this host any more",
                )
            } else {
                e
            }
        })
    }

    fn init_has_ended(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.init.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a pidfd turns readable when its process has ended.
        unsafe { libc::poll(&mut pfd, 1, 0) > 0 }
    }
}

impl Drop for PidNamespace {
    fn drop(&mut self) {
        // End of file on the lifeline: the init exits and the kernel kills the namespace.
        drop(self.lifeline.take());
        // The init is our child: reap it once it is gone. It stays until every process of the
        // namespace has been reaped, including programs whose handles outlive the lab, so a
        // thread waits for it instead of this drop.
        let (Ok(pidfd), Ok(outside)) = (self.init.try_clone(), open_ns("/proc/self/ns/net")) else {
            return;
        };
        let (left, has_left) = std::sync::mpsc::channel();
        let reap = move || {
            // A thread starts in its creator's network namespace, here the host's: leave it
            // before this drop returns, so that the host's namespace goes with the host.
            // SAFETY: setns on an fd we own, moving only this thread.
            unsafe { libc::setns(outside.as_raw_fd(), libc::CLONE_NEWNET) };
            drop(outside);
            let _ = left.send(());
            let _ = wait_pidfd(&pidfd, 0);
        };
        match std::thread::Builder::new()
            .name("tcplab-reap".into())
            .spawn(reap)
        {
            Ok(_) => {
                let _ = has_left.recv();
            }
            // No thread: reap it now if it has already gone, else leave a zombie until exit.
            Err(_) => {
                let _ = wait_pidfd(&self.init, libc::WNOHANG);
            }
        }
    }
}

/// The steps of [`private_mounts`], named for an error message.
const MOUNT_STEPS: [&str; 6] = [
    "unshare(CLONE_NEWNS)",
    "making / a slave mount",
    "mounting sysfs on /sys",
    "mounting proc on /proc",
    "mounting the lab's hosts file on /etc/hosts",
    "making the lab's /etc/hosts read-only",
];

/// The step of [`private_mounts`] that failed, and how.
#[derive(Debug, Clone, Copy)]
pub struct MountFailure {
    step: usize,
    errno: i32,
}

impl MountFailure {
    /// What was being done, e.g. "mounting sysfs on /sys".
    pub fn step(&self) -> &'static str {
        MOUNT_STEPS.get(self.step).copied().unwrap_or("?")
    }
}

impl From<MountFailure> for io::Error {
    fn from(f: MountFailure) -> io::Error {
        io::Error::from_raw_os_error(f.errno)
    }
}

/// The lab's own `/etc/hosts`, mounted read-only over `/etc/hosts` in each program's own
/// mount namespace, so that host names resolve to lab addresses without touching the
/// machine's file. It lives in a tmpfs of its own that is mounted nowhere (a detached mount,
/// held by a descriptor): no file on disk, no mount in the machine's namespace, and it
/// vanishes with its last descriptor, even if tcplab is killed. (An unlinked file cannot be
/// mounted, and a plain bind mount from the machine's namespace is refused in the program's.)
pub(crate) struct HostsFile {
    tmpfs: OwnedFd,
}

/// `fsconfig` command that creates the superblock (linux/mount.h; not in the libc crate).
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
/// `FSOPEN_CLOEXEC` and `FSMOUNT_CLOEXEC` (linux/mount.h).
const FS_CLOEXEC: libc::c_uint = 1;

impl HostsFile {
    /// A hosts file holding `text`; `None` when the machine has no `/etc/hosts` to mount over
    /// (names then do not resolve, as on that machine).
    pub fn new(text: &str) -> io::Result<Option<HostsFile>> {
        use std::io::Write;
        use std::os::fd::FromRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        if !std::path::Path::new("/etc/hosts").is_file() {
            return Ok(None);
        }
        let owned = |fd: libc::c_long| {
            if fd < 0 {
                Err(io::Error::last_os_error())
            } else {
                // SAFETY: a new descriptor the kernel just returned, owned by nothing else.
                Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
            }
        };
        // SAFETY: raw system calls with static C strings and descriptors this function owns.
        let tmpfs = unsafe {
            let context = owned(libc::syscall(
                libc::SYS_fsopen,
                c"tmpfs".as_ptr(),
                FS_CLOEXEC,
            ))?;
            let created = libc::syscall(
                libc::SYS_fsconfig,
                context.as_raw_fd(),
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_void>(),
                0,
            );
            if created < 0 {
                return Err(io::Error::last_os_error());
            }
            owned(libc::syscall(
                libc::SYS_fsmount,
                context.as_raw_fd(),
                FS_CLOEXEC,
                0,
            ))?
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(format!("/proc/self/fd/{}/hosts", tmpfs.as_raw_fd()))?;
        file.write_all(text.as_bytes())?;
        Ok(Some(HostsFile { tmpfs }))
    }

    /// What a `pre_exec` hook passes to [`private_mounts`]; valid while `self` lives.
    pub fn fd(&self) -> RawFd {
        self.tmpfs.as_raw_fd()
    }
}

/// Makes the calling process's own mount namespace, a slave of the one it was in, and mounts
/// sysfs and procfs there for the network and PID namespaces the process is in, and `hosts`
/// (a descriptor of a lab's hosts file, if any) read-only over `/etc/hosts`. Public for
/// `tcplab exec`, which enters a pinned host as `ip netns exec` does.
///
/// # Safety
/// For a `pre_exec` hook: makes only async-signal-safe system calls, allocates nothing.
pub unsafe fn private_mounts(hosts: Option<RawFd>) -> Result<(), MountFailure> {
    let none: *const libc::c_char = std::ptr::null();
    let check = |step: usize, r: libc::c_int| {
        if r != 0 {
            let errno = io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            Err(MountFailure { step, errno })
        } else {
            Ok(())
        }
    };
    // SAFETY: raw system calls with static C strings, null pointers or descriptors.
    unsafe {
        // The hosts file's tmpfs is mounted nowhere: its file is cloned here as a detached
        // mount of its own (which touches no namespace), to be attached after the unshare.
        let hosts_tree = match hosts {
            Some(fd) => {
                let tree = libc::syscall(
                    libc::SYS_open_tree,
                    fd,
                    c"hosts".as_ptr(),
                    libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC,
                ) as libc::c_int;
                check(4, if tree < 0 { -1 } else { 0 })?;
                Some(tree)
            }
            None => None,
        };
        check(0, libc::unshare(libc::CLONE_NEWNS))?;
        // Slave, recursively, before anything else: mounts and unmounts made here must never
        // propagate to the machine's mount namespace, whatever its propagation is.
        check(
            1,
            libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_SLAVE,
                std::ptr::null(),
            ),
        )?;
        if let Some(tree) = hosts_tree {
            // A detached mount made before the unshare joins this namespace at /etc/hosts.
            check(
                4,
                libc::syscall(
                    libc::SYS_move_mount,
                    tree,
                    c"".as_ptr(),
                    libc::AT_FDCWD,
                    c"/etc/hosts".as_ptr(),
                    libc::MOVE_MOUNT_F_EMPTY_PATH,
                ) as libc::c_int,
            )?;
            libc::close(tree);
            check(
                5,
                libc::mount(
                    none,
                    c"/etc/hosts".as_ptr(),
                    none,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                    std::ptr::null(),
                ),
            )?;
        }
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        // As `ip netns exec` does: the old /sys goes (with what is mounted under it) and a
        // sysfs made in the host's network namespace takes its place. /sys may not be a mount
        // point at all: then there is nothing to unmount.
        let _ = libc::umount2(c"/sys".as_ptr(), libc::MNT_DETACH);
        check(
            2,
            libc::mount(
                c"sysfs".as_ptr(),
                c"/sys".as_ptr(),
                c"sysfs".as_ptr(),
                flags,
                std::ptr::null(),
            ),
        )?;
        check(
            3,
            libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                flags,
                std::ptr::null(),
            ),
        )?;
    }
    Ok(())
}

/// Why programs cannot get mounts of their own here, found by trying [`private_mounts`] in a
/// throwaway child of the calling thread; `None` if they can. For an error message after a
/// program failed to start: the program's own error says only which errno, not which step.
pub fn diagnose_mounts() -> Option<String> {
    let (report_r, report_w) = pipe().ok()?;
    // SAFETY: the child makes only async-signal-safe calls and ends with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return None;
    }
    if pid == 0 {
        // SAFETY: in the freshly forked child: raw system calls, then _exit.
        unsafe {
            let code = match private_mounts(None) {
                Ok(()) => 0,
                Err(f) => {
                    let report = [f.step as i32, f.errno];
                    libc::write(report_w.as_raw_fd(), report.as_ptr().cast(), 8);
                    1
                }
            };
            libc::_exit(code)
        }
    }
    drop(report_w);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
    let mut report = [0u8; 8];
    let mut file = std::fs::File::from(report_r);
    std::io::Read::read_exact(&mut file, &mut report).ok()?;
    let step = i32::from_ne_bytes(report[..4].try_into().ok()?) as usize;
    let errno = i32::from_ne_bytes(report[4..].try_into().ok()?);
    let failure = MountFailure { step, errno };
    Some(format!(
        "programs cannot have mounts of their own here: {} failed: {} (run tcplab as root, or in a container started with --privileged, where mounts are allowed)",
        failure.step(),
        io::Error::from(failure)
    ))
}

/// Forks the init of the namespace this thread just unshared; returns the namespace and a
/// pidfd of the init.
fn fork_init(alive: &OwnedFd, outside_net: &OwnedFd) -> io::Result<(OwnedFd, OwnedFd)> {
    let (alive, net) = (alive.as_raw_fd(), outside_net.as_raw_fd());
    // SAFETY: the child only runs `init`, which makes raw system calls and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the freshly forked child, as `init` requires.
        unsafe { init(alive, net) }
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let pidfd = if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    };
    // The namespace can be opened only once it has its init (ENOENT before).
    let ns = open_ns("/proc/thread-self/ns/pid_for_children");
    let started = pidfd.and_then(|pidfd| Ok((ns?, pidfd)));
    if started.is_err() {
        // SAFETY: our own child: kill it and reap it (nothing else is in its namespace yet).
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
    started
}

/// The init: PID 1 of a host's namespace. It holds nothing of the harness, lets the kernel
/// reap the orphans it inherits, and exits when its lifeline closes.
///
/// # Safety
/// Only in a child just forked from a multi-threaded process: async-signal-safe calls only.
unsafe fn init(alive: RawFd, outside_net: RawFd) -> ! {
    // SAFETY: raw system calls on fds and static strings; no allocation, no unwinding.
    unsafe {
        // Leave the host's network namespace; this fd is closed just below.
        libc::setns(outside_net, libc::CLONE_NEWNET);
        // Other hosts' pipes and sockets, namespace fds, other inits' lifelines: keep none.
        close_all_but(alive);
        libc::chdir(c"/".as_ptr());
        libc::prctl(libc::PR_SET_NAME, INIT_NAME.as_ptr());
        // Out of the harness's session and process group: a Ctrl+C or a hang-up on its
        // terminal is the harness's to handle; it then ends the lab, and this init with it.
        libc::setsid();
        // The harness's signal handlers were copied with its memory but mean nothing here.
        // With no handler, an init drops every signal but SIGKILL and SIGSTOP from outside
        // its namespace, and all from inside: programs cannot end it early.
        for signal in 1..libc::SIGRTMAX() {
            libc::signal(signal, libc::SIG_DFL);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        // Orphans it inherits are reaped by the kernel.
        libc::signal(libc::SIGCHLD, libc::SIG_IGN);
        let mut byte = 0u8;
        loop {
            let n = libc::read(alive, (&raw mut byte).cast(), 1);
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            // End of file (or an error, which would mean the same): the lab is over.
            libc::_exit(0);
        }
    }
}

/// Closes every fd but `keep`.
///
/// # Safety
/// Async-signal-safe; the caller must own no fd but `keep` afterwards.
unsafe fn close_all_but(keep: RawFd) {
    let keep = keep as libc::c_uint;
    // SAFETY: close_range closes fds in a range; no memory involved.
    unsafe {
        let below = keep == 0 || libc::syscall(libc::SYS_close_range, 0, keep - 1, 0) == 0;
        let above = libc::syscall(libc::SYS_close_range, keep + 1, libc::c_uint::MAX, 0) == 0;
        if below && above {
            return;
        }
        // Kernels before 5.9 have no close_range: close one by one up to the limit.
        let mut limit: libc::rlimit = std::mem::zeroed();
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur.min(1 << 20) as libc::c_uint
        } else {
            1024
        };
        for fd in 0..max {
            if fd != keep {
                libc::close(fd as RawFd);
            }
        }
    }
}

fn open_ns(path: &str) -> io::Result<OwnedFd> {
    Ok(std::fs::File::open(path)?.into())
}

fn inode_of(fd: &OwnedFd) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::File::from(fd.try_clone()?).metadata()?.ino())
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds; close-on-exec, so no program inherits the lifeline.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two new fds that nothing else owns.
    unsafe { Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

/// Waits for the process behind `pidfd` (our child) to end and reaps it.
fn wait_pidfd(pidfd: &OwnedFd, flags: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: waitid with P_PIDFD on a pidfd we own, into a zeroed siginfo.
        let r = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | flags,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
