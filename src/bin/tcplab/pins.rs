//! Pins under /run/netns, looked at before tcplab enters or removes one: a pin is used only if
//! it is a network namespace (nsfs, of the net type), not the machine's own, reached without
//! following a symlink; it is removed with `umount2(UMOUNT_NOFOLLOW)` and `unlinkat` relative
//! to /run/netns, so nothing outside /run/netns is ever unmounted or deleted.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::mount::{MntFlags, umount2};
use nix::sys::stat::{Mode, fstat, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::CliError;
use tcplab::netns::NETNS_RUN_DIR;

/// `ioctl(NS_GET_NSTYPE)`: which kind of namespace an nsfs file is.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// What is found at /run/netns/NAME.
pub enum Pin {
    Missing,
    /// An empty regular file: a pin whose bind mount never happened (a command was killed
    /// between creating the file and mounting the namespace on it).
    Unmounted,
    /// A network namespace other than the machine's own, held open.
    Netns {
        fd: OwnedFd,
        inode: u64,
    },
    /// Anything else: what it is.
    Other(String),
}

/// /run/netns, held open.
pub struct NetnsDir {
    fd: OwnedFd,
}

impl NetnsDir {
    /// Opens /run/netns; `None` if there is none. Refuses a symlink.
    pub fn open() -> Result<Option<NetnsDir>, CliError> {
        match nix::fcntl::open(
            NETNS_RUN_DIR,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Some(NetnsDir { fd })),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(CliError::setup(format!(
                "cannot open {NETNS_RUN_DIR}: {} (it must be a real folder, not a symlink)",
                e.desc()
            ))),
        }
    }

    /// Whether anything at all has this name.
    pub fn exists(&self, name: &str) -> bool {
        !matches!(
            fstatat(self.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW),
            Err(Errno::ENOENT)
        )
    }

    /// Looks at /run/netns/`name` without following a symlink and without opening anything
    /// that is not a regular file (a FIFO or a device is never opened).
    pub fn inspect(&self, name: &str) -> Pin {
        let path = match openat(
            self.fd.as_fd(),
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Pin::Missing,
            Err(e) => return Pin::Other(format!("cannot open it: {}", e.desc())),
        };
        let st = match fstat(&path) {
            Ok(st) => st,
            Err(e) => return Pin::Other(format!("cannot read it: {}", e.desc())),
        };
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => {}
            libc::S_IFLNK => return Pin::Other("it is a symlink".into()),
            _ => return Pin::Other("it is not a namespace file".into()),
        }
        // SAFETY: fstatfs into a struct we own, on an fd we own.
        let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstatfs(path.as_raw_fd(), &mut fs) } != 0 {
            return Pin::Other(format!("cannot read it: {}", Errno::last().desc()));
        }
        if fs.f_type != libc::NSFS_MAGIC {
            return if st.st_size == 0 {
                Pin::Unmounted
            } else {
                Pin::Other("it is a file, not a namespace".into())
            };
        }
        // Reopened through the O_PATH fd: the very file inspected, now readable for setns.
        let fd = match nix::fcntl::open(
            format!("/proc/self/fd/{}", path.as_raw_fd()).as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => return Pin::Other(format!("cannot open it: {}", e.desc())),
        };
        // SAFETY: an ioctl without argument on an nsfs fd we own.
        let kind = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
        if kind != libc::CLONE_NEWNET {
            return Pin::Other("it is a namespace, but not a network namespace".into());
        }
        // The machine's own namespace is init's; where init is out of reach (a container, a
        // sandbox), tcplab's own stands in for it. A lab's pin is never either.
        for own in ["/proc/1/ns/net", "/proc/self/ns/net"] {
            if let Ok(own) = nix::sys::stat::stat(own)
                && own.st_ino == st.st_ino
                && own.st_dev == st.st_dev
            {
                return Pin::Other("it is the machine's own network namespace".into());
            }
        }
        Pin::Netns {
            fd,
            inode: st.st_ino,
        }
    }

    /// Removes a pin inspected as [`Pin::Netns`] or [`Pin::Unmounted`]: unmounts it (never
    /// following a symlink) and deletes its file in /run/netns. The namespace itself goes when
    /// nothing else holds it.
    pub fn remove(&self, name: &str, pin: &Pin) -> Result<(), String> {
        let path = format!("{NETNS_RUN_DIR}/{name}");
        if let Pin::Netns { .. } = pin {
            umount2(
                path.as_str(),
                MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW,
            )
            .map_err(|e| format!("cannot unmount {path}: {}", e.desc()))?;
        }
        unlinkat(self.fd.as_fd(), name, UnlinkatFlags::NoRemoveDir)
            .map_err(|e| format!("cannot remove {path}: {}", e.desc()))
    }
}

/// The interfaces of the namespace `ns`, each with its driver (`bridge`, `veth`, or empty when
/// the device has none, as `lo`). Read on a thread of its own that enters the namespace and
/// ends, so this process stays where it was.
pub fn interfaces(ns: &OwnedFd) -> Result<Vec<(String, String)>, String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("cannot enter it: {}", e.desc()))?;
            let dev = std::fs::read_to_string("/proc/thread-self/net/dev")
                .map_err(|e| format!("cannot list its interfaces: {e}"))?;
            // SAFETY: a plain socket call; the result is checked and owned at once.
            let sock =
                unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
            if sock < 0 {
                return Err(format!(
                    "cannot open a socket in it: {}",
                    Errno::last().desc()
                ));
            }
            // SAFETY: the kernel just gave us this fd.
            let sock: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(sock) };
            Ok(dev
                .lines()
                .skip(2)
                .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim().to_string()))
                .map(|name| {
                    let driver = driver(&sock, &name).unwrap_or_default();
                    (name, driver)
                })
                .collect())
        })
        .join()
        .map_err(|_| "cannot list its interfaces".to_string())?
    })
}

/// `struct ethtool_drvinfo` of linux/ethtool.h.
#[repr(C)]
struct DrvInfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

const ETHTOOL_GDRVINFO: u32 = 0x3;

/// The driver of interface `name`, as `ethtool -i` shows it.
fn driver(sock: &OwnedFd, name: &str) -> Option<String> {
    if name.len() >= libc::IFNAMSIZ {
        return None;
    }
    // SAFETY: zeroed plain-data structs, filled in by the kernel through the ioctl; the ifreq
    // points at the drvinfo for the duration of the call.
    unsafe {
        let mut info: DrvInfo = std::mem::zeroed();
        info.cmd = ETHTOOL_GDRVINFO;
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        req.ifr_ifru.ifru_data = (&mut info as *mut DrvInfo).cast();
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL as _, &mut req) != 0 {
            return None;
        }
        let end = info.driver.iter().position(|&b| b == 0).unwrap_or(32);
        Some(String::from_utf8_lossy(&info.driver[..end]).into_owned())
    }
}

/// Whether the interfaces are those of a tcplab fabric: `lo`, the bridge `br0`, and veths
/// (one per host, named after it). Returns the hosts.
pub fn fabric_hosts(interfaces: &[(String, String)]) -> Option<Vec<String>> {
    let mut bridge = false;
    let mut hosts = Vec::new();
    for (name, driver) in interfaces {
        match (name.as_str(), driver.as_str()) {
            ("lo", _) => {}
            (tcplab::spec::BRIDGE, "bridge") => bridge = true,
            (host, "veth") if crate::record::is_host_name(host) => hosts.push(host.to_string()),
            _ => return None,
        }
    }
    (bridge && !hosts.is_empty()).then_some(hosts)
}

/// Whether the interfaces are those of a tcplab host: `lo` and a veth `eth0`, nothing else.
pub fn is_host(interfaces: &[(String, String)]) -> bool {
    let mut names: Vec<(&str, &str)> = interfaces
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_str()))
        .filter(|(n, _)| *n != "lo")
        .collect();
    names.sort();
    names == [("eth0", "veth")]
}
