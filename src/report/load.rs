//! A run read back from its output folder: `report.json` and the pcaps beside it. Everything
//! read is treated as hostile: sizes are bounded before reading, only regular files in the
//! folder itself are opened (never a link, a FIFO or a path the report names elsewhere), and
//! every index the report holds is checked before it is used.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use pcap_file::DataLink;
use pcap_file::pcap::PcapParser;

use super::{FORMAT, JSON_FILE, Report};
use crate::capture::{Captured, Direction, Frame, SNAP_LEN};
use crate::trace::Trace;

/// Largest `report.json` read.
pub const MAX_JSON: u64 = 256 << 20;

/// Largest pcap read.
pub const MAX_PCAP: u64 = 1 << 30;

/// Most packets read from one pcap (a record is at least 16 bytes: a hostile file of small
/// records must not turn into gigabytes of frames).
pub const MAX_FRAMES: usize = 4_000_000;

/// A run read back from its folder.
#[derive(Debug)]
pub struct Loaded {
    /// The report as the run wrote it.
    pub report: Report,
    /// Each capture, decoded again from its pcap.
    pub traces: Vec<Trace>,
}

/// Why a run's folder cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be opened or read.
    #[error("cannot read {}: {source} (give the output folder of a run: `tcplab run SCENARIO --out DIR`)", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not a regular file (a link, a FIFO, a folder).
    #[error("{} is not a regular file: tcplab reads back only files a run wrote", path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
    },
    /// A file is larger than tcplab writes.
    #[error("{} is larger than {limit} bytes: not a file a run of tcplab wrote", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound.
        limit: u64,
    },
    /// `report.json` does not hold a report.
    #[error("{} is not a tcplab report: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line and column.
        message: String,
    },
    /// The report is of another layout's version.
    #[error("{} is written in report format {found}; this tcplab reads format {FORMAT} (render it with the tcplab that ran it)", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
    /// A pcap is not what the report says it is.
    #[error("{}: {message}", path.display())]
    Pcap {
        /// The pcap.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Reads a regular file of at most `limit` bytes, never through a symlink nor from a FIFO.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, LoadError> {
    let read = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    // O_NONBLOCK: opening a FIFO planted under the name does not wait for a writer.
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => LoadError::NotAFile {
                path: path.to_path_buf(),
            },
            _ => read(e),
        })?;
    let meta = file.metadata().map_err(read)?;
    if !meta.is_file() {
        return Err(LoadError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mut data = Vec::new();
    file.take(limit + 1).read_to_end(&mut data).map_err(read)?;
    if data.len() as u64 > limit {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(data)
}

/// Reads the run in `dir` back: its report and its captures, decoded from the pcaps.
pub fn load(dir: &Path) -> Result<Loaded, LoadError> {
    let path = dir.join(JSON_FILE);
    let data = read_bounded(&path, MAX_JSON)?;
    let invalid = |message: String| LoadError::Invalid {
        path: path.clone(),
        message,
    };
    // The version first, so that another layout is named as such rather than as a mistake.
    #[derive(serde::Deserialize)]
    struct Version {
        format: Option<u32>,
    }
    let version: Version = serde_json::from_slice(&data).map_err(|e| invalid(e.to_string()))?;
    match version.format {
        Some(FORMAT) => {}
        Some(found) => {
            return Err(LoadError::Format {
                path: path.clone(),
                found,
            });
        }
        None => return Err(invalid("it has no `format` field".into())),
    }
    let report: Report = serde_json::from_slice(&data).map_err(|e| invalid(e.to_string()))?;
    let mut traces = Vec::with_capacity(report.captures.len());
    for c in &report.captures {
        let Some(pcap) = &c.pcap else {
            return Err(invalid(format!(
                "the capture of {} has no pcap to read back",
                c.host
            )));
        };
        // Only the file's name counts: the pcap is read from this folder, wherever the run
        // wrote it, and a report cannot send tcplab to read a file elsewhere.
        let name = Path::new(pcap)
            .file_name()
            .filter(|n| !n.is_empty() && *n != ".." && *n != ".")
            .ok_or_else(|| invalid(format!("`{pcap}` is not a pcap's name")))?;
        let pcap_path = dir.join(name);
        let frames = read_pcap(&pcap_path, &c.directions)?;
        if frames.len() != c.packets {
            return Err(LoadError::Pcap {
                path: pcap_path,
                message: format!(
                    "it holds {} packets, the report says {}: it was changed after the run",
                    frames.len(),
                    c.packets
                ),
            });
        }
        let mut trace = Trace::new(&Captured {
            host: c.host.clone(),
            interface: c.interface.clone(),
            frames,
            drops: c.dropped,
        });
        trace.pcap = Some(pcap_path);
        traces.push(trace);
    }
    Ok(Loaded { report, traces })
}

/// The frames of a pcap tcplab wrote (Ethernet, its snap length), with their directions.
fn read_pcap(path: &Path, directions: &str) -> Result<Vec<Frame>, LoadError> {
    let data = read_bounded(path, MAX_PCAP)?;
    let bad = |message: String| LoadError::Pcap {
        path: path.to_path_buf(),
        message,
    };
    let (mut rest, parser) =
        PcapParser::new(&data).map_err(|e| bad(format!("not a pcap file: {e}")))?;
    let header = parser.header();
    if header.datalink != DataLink::ETHERNET {
        return Err(bad(format!(
            "link type {:?}, not Ethernet: not a pcap tcplab wrote",
            header.datalink
        )));
    }
    if header.snaplen as usize > SNAP_LEN {
        return Err(bad(format!(
            "snap length {} is larger than tcplab's {SNAP_LEN}: not a pcap tcplab wrote",
            header.snaplen
        )));
    }
    let mut directions = directions.chars();
    let mut frames = Vec::new();
    while !rest.is_empty() {
        if frames.len() == MAX_FRAMES {
            return Err(bad(format!(
                "it holds more than {MAX_FRAMES} packets: more than tcplab reads back"
            )));
        }
        let (next, packet) = parser
            .next_packet(rest)
            .map_err(|e| bad(format!("record {}: {e}", frames.len() + 1)))?;
        rest = next;
        frames.push(Frame {
            at: packet.timestamp,
            direction: match directions.next() {
                Some('O') => Direction::Out,
                _ => Direction::In,
            },
            original_len: packet.orig_len as usize,
            data: packet.data.into_owned(),
        });
    }
    Ok(frames)
}
