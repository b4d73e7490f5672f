//! Reading a topology or scenario file without trusting it: only a regular file, at most
//! [`MAX_FILE_SIZE`] bytes, opened so that a FIFO or a device cannot block or flood tcplab.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::SpecError;

/// The largest topology or scenario file tcplab reads: far above any real one (the catalog's
/// are a few KiB), far below what would strain memory.
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// Reads a file's text when it is a regular file of at most [`MAX_FILE_SIZE`] bytes.
pub fn read_text(path: &Path) -> Result<String, SpecError> {
    let read_error = |source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Devices are not even opened: opening some has effects (a tape rewinds, a modem hangs up).
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(SpecError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    // The path may change between that look and the open, so the opened file is checked again.
    // O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever. It has no
    // effect on a regular file, the only kind read below.
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(read_error)?;
    // The metadata of the opened file, not of the path, so a swap in between changes nothing.
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() {
        return Err(SpecError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(SpecError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_FILE_SIZE,
        });
    }
    // The file may grow after the check: never read more than the limit (and one byte to
    // tell).
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(SpecError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_FILE_SIZE,
        });
    }
    String::from_utf8(bytes).map_err(|e| SpecError::NotText {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(path: &Path) -> String {
        read_text(path).unwrap_err().to_string()
    }

    #[test]
    fn a_device_is_refused_without_reading() {
        let e = err(Path::new("/dev/zero"));
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("t.toml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = err(&fifo);
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(err(dir.path()).contains("not a regular file"));
    }

    #[test]
    fn a_file_over_the_limit_is_refused() {
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(MAX_FILE_SIZE + 1).unwrap();
        let e = err(file.path());
        assert!(e.contains("larger than 16 MiB"), "{e}");
        file.as_file().set_len(MAX_FILE_SIZE).unwrap();
        assert_eq!(read_text(file.path()).unwrap().len() as u64, MAX_FILE_SIZE);
    }

    #[test]
    fn binary_is_refused_with_its_offset() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), b"subnet = \xff").unwrap();
        let e = err(file.path());
        assert!(e.contains("not UTF-8 text (byte 9)"), "{e}");
    }
}
