//! The records of labs kept up, in /run/tcplab: one `NAME.json` per lab, written atomically
//! (a temporary file in the same folder, fsync, rename, fsync of the folder), read only as a
//! regular file of bounded size and checked before anything in it is used; and one
//! `NAME.lock` per lab, locked (flock) by every command that changes or enters the lab.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{Mode, fstat, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use serde::{Deserialize, Serialize};

use crate::CliError;

/// Where the records are.
pub const STATE_DIR: &str = "/run/tcplab";
/// A record is a few hundred bytes; anything much larger is not one.
const MAX_RECORD: u64 = 1 << 20;
/// Longest lab name: with `-fabric` it stays a short namespace name.
pub const MAX_NAME: usize = 20;
/// Longest host name, as topologies allow.
const MAX_HOST: usize = tcplab::spec::MAX_HOST_NAME;

/// What tcplab records about a lab it keeps up.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kept {
    pub name: String,
    pub topology: String,
    pub subnet: String,
    pub fabric: KeptNs,
    /// The VPC router's namespace, for a topology with a VPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<KeptNs>,
    pub hosts: Vec<KeptHost>,
}

/// A pinned namespace: its name under /run/netns, and the inode of the namespace tcplab
/// pinned there (the proof that a pin found under that name is still tcplab's).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeptNs {
    pub netns: String,
    pub inode: u64,
}

/// A host of a lab kept up, and its pinned namespace.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeptHost {
    pub name: String,
    pub address: String,
    pub netns: String,
    pub inode: u64,
}

impl Kept {
    /// Every pin of the lab, the fabric's first.
    pub fn pins(&self) -> impl Iterator<Item = (&str, u64)> {
        std::iter::once((self.fabric.netns.as_str(), self.fabric.inode))
            .chain(self.router.iter().map(|r| (r.netns.as_str(), r.inode)))
            .chain(self.hosts.iter().map(|h| (h.netns.as_str(), h.inode)))
    }

    /// Checks a record read from `NAME.json`: every name follows its pattern and every pin
    /// is exactly `NAME-fabric` or `NAME-HOST`, so no path in a record can point anywhere
    /// else.
    fn check(&self, name: &str) -> Result<(), String> {
        if self.name != name {
            return Err(format!(
                "it names the lab `{}`, not `{name}`",
                shown(&self.name)
            ));
        }
        if let Some(r) = &self.router
            && r.netns != format!("{name}-router")
        {
            return Err(format!(
                "the router's namespace is `{}`, not `{name}-router`",
                shown(&r.netns)
            ));
        }
        if self.fabric.netns != format!("{name}-fabric") {
            return Err(format!(
                "the fabric's namespace is `{}`, not `{name}-fabric`",
                shown(&self.fabric.netns)
            ));
        }
        if self.hosts.is_empty() {
            return Err("it lists no host".into());
        }
        let mut seen = HashSet::new();
        for h in &self.hosts {
            if !is_host_name(&h.name) || h.name == "fabric" {
                return Err(format!("`{}` is not a host name", shown(&h.name)));
            }
            if !seen.insert(&h.name) {
                return Err(format!("host `{}` is listed twice", h.name));
            }
            if h.netns != format!("{name}-{}", h.name) {
                return Err(format!(
                    "host {}'s namespace is `{}`, not `{name}-{}`",
                    h.name,
                    shown(&h.netns),
                    h.name
                ));
            }
            if h.address.parse::<Ipv4Addr>().is_err() {
                return Err(format!(
                    "host {}'s address `{}` is not an IPv4 address",
                    h.name,
                    shown(&h.address)
                ));
            }
        }
        if self.subnet.parse::<ipnet::Ipv4Net>().is_err() {
            return Err(format!("`{}` is not a subnet", shown(&self.subnet)));
        }
        Ok(())
    }
}

/// A lab name: 1 to 20 lowercase letters, digits and dashes.
pub fn is_lab_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A host name, as topologies allow them.
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_HOST
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Refuses, in one line, a name that is not a lab name.
pub fn check_name(name: &str) -> Result<(), CliError> {
    if is_lab_name(name) {
        Ok(())
    } else {
        Err(CliError::setup(format!(
            "`{}` is not a lab name: use 1 to {MAX_NAME} lowercase letters, digits and dashes",
            shown(name)
        )))
    }
}

/// Text from a file or an argument, safe to print: control characters (terminal escapes)
/// are shown escaped.
pub fn shown(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// What `NAME.json` holds.
pub enum Record {
    None,
    Valid(Kept),
    /// Present but unusable (empty, not JSON, or failing the checks): why.
    Damaged(String),
}

/// The records folder, held open.
pub struct StateDir {
    fd: OwnedFd,
}

/// A lab's lock, held until dropped.
pub struct Lock {
    _fd: OwnedFd,
}

fn io(what: String) -> impl FnOnce(Errno) -> CliError {
    move |e| CliError::setup(format!("cannot {what}: {}", e.desc()))
}

impl StateDir {
    /// Opens /run/tcplab (making it, 0700, if `create`); `None` if it is missing and not
    /// made. Refuses a symlink, and a folder others may write to.
    pub fn open(create: bool) -> Result<Option<StateDir>, CliError> {
        if create {
            match nix::unistd::mkdir(STATE_DIR, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(io(format!("create {STATE_DIR}"))(e)),
            }
        }
        let fd = match nix::fcntl::open(
            STATE_DIR,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                return Err(CliError::setup(format!(
                    "{STATE_DIR} is not a folder (a symlink?): tcplab keeps its records only in a real folder; remove it"
                )));
            }
            Err(e) => return Err(io(format!("open {STATE_DIR}"))(e)),
        };
        let st = fstat(&fd).map_err(io(format!("read {STATE_DIR}")))?;
        if st.st_uid != nix::unistd::geteuid().as_raw() || st.st_mode & 0o022 != 0 {
            return Err(CliError::setup(format!(
                "{STATE_DIR} belongs to another user or others may write to it: tcplab does not trust records there; remove it"
            )));
        }
        Ok(Some(StateDir { fd }))
    }

    /// Takes the lab's lock: `exclusive` to take a lab up or down, shared to enter it. Never
    /// waits: a lab another command is working on is refused with one line.
    pub fn lock(&self, name: &str, exclusive: bool) -> Result<Lock, CliError> {
        let file = format!("{name}.lock");
        loop {
            let fd = openat(
                self.fd.as_fd(),
                file.as_str(),
                OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(io(format!("open {STATE_DIR}/{file}")))?;
            let op = if exclusive {
                libc::LOCK_EX
            } else {
                libc::LOCK_SH
            };
            // SAFETY: flock on an fd we own.
            if unsafe { libc::flock(fd.as_raw_fd(), op | libc::LOCK_NB) } != 0 {
                let e = Errno::last();
                if e == Errno::EWOULDBLOCK {
                    return Err(CliError::setup(format!(
                        "lab `{name}` is busy: another tcplab command is taking it up, down or into it; try again when that is done"
                    )));
                }
                return Err(io(format!("lock {STATE_DIR}/{file}"))(e));
            }
            // `down` removes the lock file while holding it: a lock taken on a file that is no
            // longer the one at this name locks nothing, so take the new one.
            let held = fstat(&fd).map_err(io(format!("read {STATE_DIR}/{file}")))?;
            match fstatat(self.fd.as_fd(), file.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(now) if now.st_ino == held.st_ino && now.st_dev == held.st_dev => {
                    return Ok(Lock { _fd: fd });
                }
                Ok(_) | Err(Errno::ENOENT) => continue,
                Err(e) => return Err(io(format!("read {STATE_DIR}/{file}"))(e)),
            }
        }
    }

    /// Removes the lab's lock file; call while holding the lock, just before dropping it.
    pub fn remove_lock(&self, name: &str, _held: &Lock) {
        let _ = unlinkat(
            self.fd.as_fd(),
            format!("{name}.lock").as_str(),
            UnlinkatFlags::NoRemoveDir,
        );
    }

    /// Reads and checks `NAME.json`.
    pub fn read(&self, name: &str) -> Record {
        let file = format!("{name}.json");
        let fd = match openat(
            self.fd.as_fd(),
            file.as_str(),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Record::None,
            Err(Errno::ELOOP) => return Record::Damaged("it is a symlink".into()),
            Err(e) => return Record::Damaged(format!("cannot open it: {}", e.desc())),
        };
        let mut f = File::from(fd);
        let meta = match f.metadata() {
            Ok(m) => m,
            Err(e) => return Record::Damaged(format!("cannot read it: {e}")),
        };
        if !meta.is_file() {
            return Record::Damaged("it is not a regular file".into());
        }
        if meta.size() == 0 {
            return Record::Damaged("it is empty".into());
        }
        if meta.size() > MAX_RECORD {
            return Record::Damaged(format!("it is {} bytes, too large", meta.size()));
        }
        let mut text = String::new();
        if let Err(e) = (&mut f).take(MAX_RECORD).read_to_string(&mut text) {
            return Record::Damaged(format!("cannot read it: {e}"));
        }
        let kept: Kept = match serde_json::from_str(&text) {
            Ok(k) => k,
            Err(e) => return Record::Damaged(format!("it is not a tcplab record: {e}")),
        };
        match kept.check(name) {
            Ok(()) => Record::Valid(kept),
            Err(why) => Record::Damaged(why),
        }
    }

    /// Writes `NAME.json` atomically: readers see the old record or the whole new one, and a
    /// crash leaves at most a stray temporary file, which the next write replaces.
    pub fn write(&self, kept: &Kept) -> Result<(), CliError> {
        let file = format!("{}.json", kept.name);
        let tmp = format!("{file}.tmp");
        let what = || format!("record the lab in {STATE_DIR}/{file}");
        let text = serde_json::to_string_pretty(kept)
            .map_err(|e| CliError::setup(format!("cannot {}: {e}", what())))?;
        // Under the lab's lock, a temporary file left here is from a command that was killed.
        match unlinkat(self.fd.as_fd(), tmp.as_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(io(what())(e)),
        }
        let fd = openat(
            self.fd.as_fd(),
            tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(io(what()))?;
        let mut f = File::from(fd);
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| CliError::setup(format!("cannot {}: {e}", what())))?;
        renameat(
            self.fd.as_fd(),
            tmp.as_str(),
            self.fd.as_fd(),
            file.as_str(),
        )
        .map_err(io(what()))?;
        nix::unistd::fsync(&self.fd).map_err(io(what()))
    }

    /// Removes `NAME.json` (and a stray temporary file), durably.
    pub fn remove(&self, name: &str) -> Result<(), CliError> {
        for file in [format!("{name}.json.tmp"), format!("{name}.json")] {
            match unlinkat(self.fd.as_fd(), file.as_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(io(format!("remove {STATE_DIR}/{file}"))(e)),
            }
        }
        nix::unistd::fsync(&self.fd).map_err(io(format!("remove {STATE_DIR}/{name}.json")))
    }

    /// The names of the labs with a record (valid or not), sorted; files with other names
    /// are not tcplab's records and are left out.
    pub fn names(&self) -> Vec<String> {
        let open = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        let mut names: Vec<String> = std::fs::read_dir(open)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let file = e.file_name().into_string().ok()?;
                let name = file.strip_suffix(".json")?;
                is_lab_name(name).then(|| name.to_string())
            })
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(json: &str) -> Result<(), String> {
        let k: Kept = serde_json::from_str(json).map_err(|e| e.to_string())?;
        k.check("lab")
    }

    const GOOD: &str = r#"{"name":"lab","topology":"t.toml","subnet":"10.0.0.0/24",
        "fabric":{"netns":"lab-fabric","inode":1},
        "hosts":[{"name":"server","address":"10.0.0.58","netns":"lab-server","inode":2}]}"#;

    #[test]
    fn a_record_names_only_its_own_pins() {
        assert_eq!(kept(GOOD), Ok(()));
        for (from, to) in [
            ("\"lab-server\"", "\"../../proc/self/ns/net\""),
            ("\"lab-server\"", "\"lab-client\""),
            ("\"lab-fabric\"", "\"/run/netns/lab-fabric\""),
            ("\"name\":\"lab\"", "\"name\":\"other\""),
            ("\"name\":\"server\"", "\"name\":\"../x\""),
            ("\"10.0.0.58\"", "\"\\u001b[31m\""),
        ] {
            let bad = GOOD.replace(from, to);
            assert_ne!(bad, GOOD);
            assert!(kept(&bad).is_err(), "accepted {bad}");
        }
        assert!(kept(&GOOD.replace("\"inode\":2", "\"inode\":2,\"extra\":1")).is_err());
    }

    #[test]
    fn shown_escapes_terminal_codes() {
        assert_eq!(shown("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
    }

    #[test]
    fn names() {
        assert!(is_lab_name("lab-1"));
        assert!(!is_lab_name("../x"));
        assert!(!is_lab_name(""));
        assert!(!is_lab_name(&"a".repeat(21)));
        assert!(is_host_name("client-1"));
        assert!(!is_host_name("1client"));
    }
}
