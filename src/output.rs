//! Folders and files that tcplab writes (pcaps, and anything else a run leaves for people).
//!
//! A folder is opened once, without following a symlink, and every file is created relative to
//! that open folder with `O_CREAT | O_EXCL | O_NOFOLLOW`: a symlink or a file planted in the
//! folder by someone else makes the creation fail, so tcplab never writes through a link and
//! never overwrites a file it did not create. Folders tcplab makes are 0700, files 0600.
//! [`write_file`] writes one file at a path the user gave, with the same care.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

/// An output folder, held open.
#[derive(Debug)]
pub struct OutDir {
    path: PathBuf,
    fd: OwnedFd,
}

/// Why an output folder or file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The folder could not be made.
    #[error("cannot create the folder {}: {source}", path.display())]
    Create {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    #[error("{} is a symbolic link: give a real folder (tcplab never writes through a link)", path.display())]
    /// The path is a symlink.
    Symlink {
        /// The path.
        path: PathBuf,
    },
    #[error("{} is not a folder", path.display())]
    /// The path is not a folder.
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    #[error(
        "{} is not empty: give a new or empty folder (tcplab never writes over files it did not create)",
        path.display()
    )]
    /// The folder holds files already.
    NotEmpty {
        /// The folder.
        path: PathBuf,
    },
    /// The folder could not be opened.
    #[error("cannot open the folder {}: {source}", path.display())]
    Open {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    #[error("`{name}` is not a plain file name")]
    /// A file name with a slash, or `.`, `..`, or empty.
    BadName {
        /// The name.
        name: String,
    },
    #[error(
        "cannot create {}: it already exists (tcplab never writes over a file it did not create)",
        path.display()
    )]
    /// A file of that name exists already.
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be created.
    #[error("cannot create {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl OutDir {
    /// Opens `path` for a run's output: creates it (0700, parents as needed) when missing; when
    /// it exists it must be a real folder, not a symlink, and empty, so that nothing in it can
    /// be mistaken for, or overwritten by, tcplab's files.
    pub fn open(path: &Path) -> Result<OutDir, OutputError> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|source| OutputError::Create {
                        path: parent.to_path_buf(),
                        source,
                    })?;
                }
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(path)
                    .map_err(|source| OutputError::Create {
                        path: path.to_path_buf(),
                        source,
                    })?;
            }
            Err(source) => {
                return Err(OutputError::Open {
                    path: path.to_path_buf(),
                    source,
                });
            }
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(OutputError::Symlink {
                    path: path.to_path_buf(),
                });
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(OutputError::NotADirectory {
                    path: path.to_path_buf(),
                });
            }
            Ok(_) => {}
        }
        let dir = OutDir::open_existing(path)?;
        if dir.has_entries()? {
            return Err(OutputError::NotEmpty {
                path: path.to_path_buf(),
            });
        }
        Ok(dir)
    }

    /// Opens a folder a run has written into, to add files to it (each new: nothing in it is
    /// ever written over). Not through a symlink; the folder need not be empty.
    pub fn reopen(path: &Path) -> Result<OutDir, OutputError> {
        OutDir::open_existing(path)
    }

    /// Opens an existing folder without following a symlink in its last component.
    fn open_existing(path: &Path) -> Result<OutDir, OutputError> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            nix::errno::Errno::ELOOP => OutputError::Symlink {
                path: path.to_path_buf(),
            },
            nix::errno::Errno::ENOTDIR => OutputError::NotADirectory {
                path: path.to_path_buf(),
            },
            e => OutputError::Open {
                path: path.to_path_buf(),
                source: e.into(),
            },
        })?;
        Ok(OutDir {
            path: path.to_path_buf(),
            fd,
        })
    }

    fn has_entries(&self) -> Result<bool, OutputError> {
        // Read through the open folder, not the path: what is checked is what will be written.
        let open = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        let mut entries = std::fs::read_dir(open).map_err(|source| OutputError::Open {
            path: self.path.clone(),
            source,
        })?;
        Ok(entries.next().is_some())
    }

    /// Where the folder is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the new file `name` (0600) in the folder, open for reading and writing. Fails
    /// if anything, even a dangling symlink, already has that name.
    pub fn create_file(&self, name: &str) -> Result<(PathBuf, File), OutputError> {
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return Err(OutputError::BadName {
                name: name.to_string(),
            });
        }
        let path = self.path.join(name);
        let fd = openat(
            self.fd.as_fd(),
            name,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| match e {
            nix::errno::Errno::EEXIST => OutputError::Exists { path: path.clone() },
            e => OutputError::File {
                path: path.clone(),
                source: e.into(),
            },
        })?;
        Ok((path, File::from(fd)))
    }
}

/// Writes `contents` to the file `path` (0600). A new file is created with `O_EXCL`, so that
/// nothing there, not even a dangling symlink, is written over; with `replace`, an existing
/// file is replaced whole by renaming a new one over it, so a symlink there is replaced, never
/// written through, and a reader never sees half a file.
pub fn write_file(path: &Path, contents: &[u8], replace: bool) -> Result<(), OutputError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let file_error = |source| OutputError::File {
        path: path.to_path_buf(),
        source,
    };
    if !replace {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => OutputError::Exists {
                    path: path.to_path_buf(),
                },
                _ => file_error(e),
            })?;
        return file.write_all(contents).map_err(file_error);
    }
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(OutputError::File {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::IsADirectory, "it is a folder"),
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Created 0600 with O_EXCL in the same folder, so the rename is atomic.
    let mut temp = tempfile::Builder::new()
        .prefix(".tcplab-")
        .tempfile_in(dir)
        .map_err(file_error)?;
    temp.write_all(contents).map_err(file_error)?;
    temp.persist(path).map_err(|e| file_error(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_file_never_overwrites_unless_asked_and_never_through_a_link() {
        let base = tempfile::tempdir().unwrap();
        let file = base.path().join("t.toml");
        write_file(&file, b"one", false).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"one");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let err = write_file(&file, b"two", false).unwrap_err();
        assert!(matches!(err, OutputError::Exists { .. }), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), b"one");
        write_file(&file, b"two", true).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        // A link to someone's file: refused, or replaced itself with --force.
        let victim = base.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = base.path().join("link.toml");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(write_file(&link, b"x", false).is_err());
        let dangling = base.path().join("dangling.toml");
        std::os::unix::fs::symlink(base.path().join("nowhere"), &dangling).unwrap();
        assert!(write_file(&dangling, b"x", false).is_err());
        assert!(!base.path().join("nowhere").exists());
        write_file(&link, b"x", true).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read(&link).unwrap(), b"x");
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
        // A folder is never replaced.
        assert!(write_file(base.path(), b"x", true).is_err());
        assert!(base.path().is_dir());
        let leftovers = std::fs::read_dir(base.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".tcplab-")
            })
            .count();
        assert_eq!(leftovers, 0);
    }
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_missing_folder_0700_and_files_0600() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("a/b");
        let dir = OutDir::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let (file, _) = dir.create_file("x.pcap").unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn refuses_symlink_folder_non_empty_folder_and_a_file() {
        let base = tempfile::tempdir().unwrap();
        let real = base.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(
            OutDir::open(&link),
            Err(OutputError::Symlink { .. })
        ));
        std::fs::write(real.join("old"), "x").unwrap();
        let err = OutDir::open(&real).unwrap_err();
        assert!(matches!(err, OutputError::NotEmpty { .. }), "{err}");
        assert!(matches!(
            OutDir::open(&real.join("old")),
            Err(OutputError::NotADirectory { .. })
        ));
    }

    #[test]
    fn never_writes_through_a_planted_symlink_or_over_a_file() {
        let base = tempfile::tempdir().unwrap();
        let dir = OutDir::open(&base.path().join("out")).unwrap();
        let victim = base.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        // Planted after the folder was checked, as a racing user would.
        std::os::unix::fs::symlink(&victim, dir.path().join("server.pcap")).unwrap();
        let err = dir.create_file("server.pcap").unwrap_err();
        assert!(matches!(err, OutputError::Exists { .. }), "{err}");
        std::os::unix::fs::symlink("/nonexistent", dir.path().join("dangling")).unwrap();
        assert!(dir.create_file("dangling").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(dir.create_file("../escape").is_err());
        assert!(dir.create_file("..").is_err());
    }
}
