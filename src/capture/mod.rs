//! Captures: an AF_PACKET socket per interface, opened inside the interface's namespace and
//! live before the first packet, read by its own thread, and drained of everything the kernel
//! holds when stopped. A capture reports the kernel's drops instead of hiding them.
//!
//! A capture given a pcap file streams each batch of frames to it as they arrive (memory stays
//! bounded, and the file is a valid pcap up to the last batch even if tcplab is killed), and
//! reads the file back when stopped; without one it keeps the frames in memory.

mod pcap;
mod socket;

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::netns::{Namespace, NetnsError};
use pcap::PcapStream;
pub use socket::SNAP_LEN;

/// Which way a frame crossed the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received by the interface.
    In,
    /// Sent by the interface's host.
    Out,
}

/// One frame: kernel timestamp (since the Unix epoch), direction, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// When the kernel saw it, since the Unix epoch.
    pub at: Duration,
    /// Which way it went.
    pub direction: Direction,
    /// Its length on the wire; `data` holds at most [`SNAP_LEN`] bytes of it.
    pub original_len: usize,
    /// Its bytes, from the Ethernet header on.
    pub data: Vec<u8>,
}

/// Why a capture could not start, read or write its pcap.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "cannot capture on {interface} of {host}: {source} (packet capture needs CAP_NET_RAW: run as root, or in a container started with --privileged)"
    )]
    /// The capture socket could not be opened.
    Open {
        /// The host.
        host: String,
        /// The interface.
        interface: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Reading the capture failed midway.
    #[error("capture on {interface} of {host} failed: {source}")]
    Read {
        /// The host.
        host: String,
        /// The interface.
        interface: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {message}", path.display())]
    /// A pcap file could not be written.
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The interface's namespace could not run the capture.
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// A running capture of one interface.
pub struct Capture {
    host: String,
    interface: String,
    stop: OwnedFd,
    pcap: Option<PathBuf>,
    reader: JoinHandle<Result<(Vec<Frame>, u64), CaptureError>>,
}

/// What a stopped capture holds.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The host.
    pub host: String,
    /// The interface, e.g. `eth0`, or the host's port on the bridge.
    pub interface: String,
    /// Every frame, in capture order.
    pub frames: Vec<Frame>,
    /// Frames the kernel dropped because the capture did not keep up.
    pub drops: u64,
}

impl Capture {
    /// Starts capturing `interface` in `ns`; every frame from the moment this returns is kept.
    pub fn start(ns: &Namespace, host: &str, interface: &str) -> Result<Capture, CaptureError> {
        Capture::start_with_tap(ns, host, interface, None)
    }

    /// Like [`Capture::start`], and shows every frame to `tap` as it arrives (for a live
    /// view), on the capture's own thread.
    pub fn start_with_tap(
        ns: &Namespace,
        host: &str,
        interface: &str,
        tap: Option<Tap>,
    ) -> Result<Capture, CaptureError> {
        Capture::start_streaming(ns, host, interface, tap, None)
    }

    /// Like [`Capture::start_with_tap`]; with `pcap` (a new, empty file open for reading and
    /// writing, and its path), every batch of frames goes to that file as it is captured.
    pub fn start_streaming(
        ns: &Namespace,
        host: &str,
        interface: &str,
        tap: Option<Tap>,
        pcap: Option<(PathBuf, File)>,
    ) -> Result<Capture, CaptureError> {
        let stream = pcap
            .map(|(path, file)| PcapStream::new(path, file))
            .transpose()?;
        let pcap = stream.as_ref().map(|s| s.path().to_path_buf());
        let name = interface.to_string();
        let fd = ns
            .run(move |_| socket::open(&name))?
            .map_err(|source| CaptureError::Open {
                host: host.to_string(),
                interface: interface.to_string(),
                source,
            })?;
        let (stop_rx, stop) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| CaptureError::Open {
                host: host.to_string(),
                interface: interface.to_string(),
                source: e.into(),
            })?;
        let read_error = {
            let (host, interface) = (host.to_string(), interface.to_string());
            move |source| CaptureError::Read {
                host: host.clone(),
                interface: interface.clone(),
                source,
            }
        };
        let reader = std::thread::Builder::new()
            .name(format!("capture-{host}"))
            .spawn(move || read_until_stopped(fd, stop_rx, tap, stream, read_error))
            .map_err(|source| CaptureError::Open {
                host: host.to_string(),
                interface: interface.to_string(),
                source,
            })?;
        Ok(Capture {
            host: host.to_string(),
            interface: interface.to_string(),
            stop,
            pcap,
            reader,
        })
    }

    /// The pcap file this capture streams to, if it was given one.
    pub fn pcap(&self) -> Option<&Path> {
        self.pcap.as_deref()
    }

    /// Stops the capture after taking every frame the kernel holds for it.
    pub fn stop(self) -> Result<Captured, CaptureError> {
        let _ = nix::unistd::write(&self.stop, &[1]);
        let read_error = |source| CaptureError::Read {
            host: self.host.clone(),
            interface: self.interface.clone(),
            source,
        };
        let (frames, drops) = self
            .reader
            .join()
            .map_err(|_| read_error(std::io::Error::other("the capture thread panicked")))??;
        Ok(Captured {
            host: self.host,
            interface: self.interface,
            frames,
            drops,
        })
    }
}

/// Sees each frame as it is captured.
pub type Tap = Box<dyn FnMut(&Frame) + Send>;

/// Where a capture's frames go: kept in memory, or streamed to a pcap. With a pcap, the tap
/// sees a frame only once it is in the file: a packet shown live is on disk even if tcplab is
/// killed right after.
struct Sink {
    frames: Vec<Frame>,
    stream: Option<PcapStream>,
    tap: Option<Tap>,
    /// Frames written but not yet sent to the file, kept for the tap (at most a batch).
    unshown: Vec<Frame>,
}

impl Sink {
    fn keep(&mut self, frame: Frame) -> Result<(), CaptureError> {
        let Some(stream) = self.stream.as_mut() else {
            if let Some(tap) = self.tap.as_mut() {
                tap(&frame);
            }
            self.frames.push(frame);
            return Ok(());
        };
        stream.push(&frame)?;
        let full = stream.pending() >= pcap::FLUSH_AT;
        if self.tap.is_some() {
            self.unshown.push(frame);
        }
        if full { self.flush() } else { Ok(()) }
    }

    /// Sends the batch to the file, then shows it to the tap.
    fn flush(&mut self) -> Result<(), CaptureError> {
        if let Some(stream) = self.stream.as_mut() {
            stream.flush()?;
        }
        if let Some(tap) = self.tap.as_mut() {
            for frame in self.unshown.drain(..) {
                tap(&frame);
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<Frame>, CaptureError> {
        self.flush()?;
        match self.stream {
            Some(stream) => stream.finish(),
            None => Ok(self.frames),
        }
    }
}

fn read_until_stopped(
    fd: OwnedFd,
    stop: OwnedFd,
    tap: Option<Tap>,
    stream: Option<PcapStream>,
    read_error: impl Fn(std::io::Error) -> CaptureError,
) -> Result<(Vec<Frame>, u64), CaptureError> {
    let mut sink = Sink {
        frames: Vec::new(),
        stream,
        tap,
        unshown: Vec::new(),
    };
    let mut buf = vec![0u8; SNAP_LEN];
    // Takes every frame queued now.
    let mut drain = |sink: &mut Sink| -> Result<(), CaptureError> {
        while let Some((raw, len)) =
            socket::read(fd.as_raw_fd(), &mut buf, false).map_err(&read_error)?
        {
            sink.keep(Frame {
                at: raw.since_epoch,
                direction: raw.direction,
                original_len: raw.original_len,
                data: buf[..len].to_vec(),
            })?;
        }
        Ok(())
    };
    loop {
        let mut fds = [
            libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(read_error(e));
        }
        if fds[0].revents & libc::POLLIN != 0 {
            drain(&mut sink)?;
            // Each batch reaches the file before the next wait: a kill loses nothing written.
            sink.flush()?;
        }
        if fds[1].revents != 0 {
            // Stopped: whatever the kernel queued before now is still ours.
            drain(&mut sink)?;
            let drops = socket::drops(fd.as_raw_fd()).map_err(&read_error)?;
            return Ok((sink.finish()?, drops));
        }
    }
}

impl Captured {
    /// Writes the frames as a new pcap file (nanosecond timestamps, Ethernet) that tcpdump,
    /// tshark and Wireshark read. The file is created 0600, never through a symlink and never
    /// over an existing file.
    pub fn write_pcap(&self, path: &Path) -> Result<(), CaptureError> {
        pcap::write(path, &self.frames)
    }
}

/// Captures of several interfaces, started and stopped together.
#[derive(Default)]
pub(crate) struct Captures(Vec<Capture>);

impl Captures {
    pub fn new() -> Self {
        Captures(Vec::new())
    }

    pub fn add(&mut self, capture: Capture) {
        self.0.push(capture);
    }

    /// The pcap file of each capture, in the order they were added.
    pub fn pcaps(&self) -> Vec<Option<PathBuf>> {
        self.0.iter().map(|c| c.pcap.clone()).collect()
    }

    pub fn stop(self) -> Result<Vec<Captured>, CaptureError> {
        // Each capture's thread drains on its own; stop them all before joining any.
        for c in &self.0 {
            let _ = nix::unistd::write(&c.stop, &[1]);
        }
        self.0.into_iter().map(Capture::stop).collect()
    }
}
