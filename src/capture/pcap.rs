//! Pcap files: written as a capture goes, a batch of whole records at a time, so that the file
//! is valid up to the last packet written even if tcplab is killed; read back for the trace.

use std::fs::File;
use std::io::{BufReader, Seek, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use pcap_file::pcap::{PcapHeader, PcapReader};
use pcap_file::{DataLink, Endianness, TsResolution};

use super::{CaptureError, Direction, Frame, SNAP_LEN};

/// Records are sent to the file once this many bytes wait, even within a batch.
pub(super) const FLUSH_AT: usize = 1 << 20;

fn header() -> PcapHeader {
    PcapHeader {
        snaplen: SNAP_LEN as u32,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        endianness: Endianness::Little,
        ..PcapHeader::default()
    }
}

/// A pcap file being written as frames arrive. Only whole records reach the file: each
/// batch is built in memory (at most about [`FLUSH_AT`] bytes) and written in one go.
pub struct PcapStream {
    path: PathBuf,
    file: File,
    pending: Vec<u8>,
    /// The direction of each frame written: classic pcap has no field for it.
    directions: Vec<Direction>,
}

impl PcapStream {
    /// Writes the file's header at once: even a capture that sees nothing leaves a valid pcap.
    pub fn new(path: PathBuf, file: File) -> Result<PcapStream, CaptureError> {
        let mut stream = PcapStream {
            path,
            file,
            pending: Vec::with_capacity(64 * 1024),
            directions: Vec::new(),
        };
        header()
            .write_to(&mut stream.pending)
            .map_err(|e| stream.error(e.to_string()))?;
        stream.flush()?;
        Ok(stream)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, message: String) -> CaptureError {
        CaptureError::Write {
            path: self.path.clone(),
            message,
        }
    }

    /// Adds one record to the batch.
    pub fn push(&mut self, frame: &Frame) -> Result<(), CaptureError> {
        let data = &frame.data[..frame.data.len().min(SNAP_LEN)];
        let secs = u32::try_from(frame.at.as_secs()).unwrap_or(u32::MAX);
        for field in [
            secs,
            frame.at.subsec_nanos(),
            data.len() as u32,
            u32::try_from(frame.original_len).unwrap_or(u32::MAX),
        ] {
            self.pending.extend_from_slice(&field.to_le_bytes());
        }
        self.pending.extend_from_slice(data);
        self.directions.push(frame.direction);
        Ok(())
    }

    /// Bytes of whole records not yet sent to the file.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Sends every whole record held so far to the file.
    pub fn flush(&mut self) -> Result<(), CaptureError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self.file.write_all(&self.pending);
        self.pending.clear();
        // A large batch's buffer is not kept: memory stays bounded between batches.
        self.pending.shrink_to(64 * 1024);
        result.map_err(|e| self.error(e.to_string()))
    }

    /// Finishes the file and reads its frames back (for the trace), with their directions.
    pub fn finish(mut self) -> Result<Vec<Frame>, CaptureError> {
        // No fsync: what was written survives the process in any case, and a run should not
        // wait on the disk.
        self.flush()?;
        self.file.rewind().map_err(|e| self.error(e.to_string()))?;
        let mut reader = PcapReader::new(BufReader::new(&self.file))
            .map_err(|e| self.error(format!("reading it back: {e}")))?;
        let mut frames = Vec::with_capacity(self.directions.len());
        let mut directions = self.directions.iter();
        while let Some(packet) = reader.next_packet() {
            let packet = packet.map_err(|e| self.error(format!("reading it back: {e}")))?;
            frames.push(Frame {
                at: packet.timestamp,
                direction: directions.next().copied().unwrap_or(Direction::In),
                original_len: packet.orig_len as usize,
                data: packet.data.into_owned(),
            });
        }
        Ok(frames)
    }
}

/// Writes `frames` as a new pcap file at `path` (0600), never through a symlink nor over an
/// existing file.
pub fn write(path: &Path, frames: &[Frame]) -> Result<(), CaptureError> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| CaptureError::Write {
        path: path.to_path_buf(),
        message: match e {
            nix::errno::Errno::EEXIST => {
                "it already exists (tcplab never writes over a file it did not create)".into()
            }
            e => e.to_string(),
        },
    })?;
    let mut stream = PcapStream::new(path.to_path_buf(), File::from(fd))?;
    for frame in frames {
        stream.push(frame)?;
        if stream.pending() >= FLUSH_AT {
            stream.flush()?;
        }
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn frame(i: u8, direction: Direction) -> Frame {
        Frame {
            at: Duration::new(1_700_000_000 + i as u64, 123_456_789),
            direction,
            original_len: 60 + i as usize,
            data: vec![i; 60],
        }
    }

    #[test]
    fn streamed_file_reads_back_with_directions_and_is_valid_at_every_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pcap");
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let mut stream = PcapStream::new(path.clone(), file).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            24,
            "header at once"
        );
        let frames = vec![frame(1, Direction::Out), frame(2, Direction::In)];
        stream.push(&frames[0]).unwrap();
        stream.flush().unwrap();
        // What is on disk now is a complete pcap of the first frame, as after a SIGKILL.
        let on_disk = std::fs::read(&path).unwrap();
        let mut reader = PcapReader::new(&on_disk[..]).unwrap();
        let first = reader.next_packet().unwrap().unwrap();
        assert_eq!(first.timestamp, frames[0].at);
        assert_eq!(&first.data[..], &frames[0].data[..]);
        assert!(reader.next_packet().is_none());
        stream.push(&frames[1]).unwrap();
        assert_eq!(stream.finish().unwrap(), frames);
    }
}
