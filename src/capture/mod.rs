//! Captures: an AF_PACKET socket per interface, opened inside the interface's namespace and
//! live before the first packet, read by its own thread, and drained of everything the kernel
//! holds when stopped. A capture reports the kernel's drops instead of hiding them.

mod pcap;
mod socket;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::netns::{Namespace, NetnsError};
pub use socket::SNAP_LEN;

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
    pub at: Duration,
    pub direction: Direction,
    pub original_len: usize,
    pub data: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "cannot capture on {interface} of {host}: {source} (packet capture needs CAP_NET_RAW: run as root, or in a container started with --privileged)"
    )]
    Open {
        host: String,
        interface: String,
        #[source]
        source: std::io::Error,
    },
    #[error("capture on {interface} of {host} failed: {source}")]
    Read {
        host: String,
        interface: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {message}", path.display())]
    Write { path: PathBuf, message: String },
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// A running capture of one interface.
pub struct Capture {
    host: String,
    interface: String,
    stop: OwnedFd,
    reader: JoinHandle<std::io::Result<(Vec<Frame>, u64)>>,
}

/// What a stopped capture holds.
#[derive(Debug, Clone)]
pub struct Captured {
    pub host: String,
    pub interface: String,
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
        let reader = std::thread::Builder::new()
            .name(format!("capture-{host}"))
            .spawn(move || read_until_stopped(fd, stop_rx, tap))
            .map_err(|source| CaptureError::Open {
                host: host.to_string(),
                interface: interface.to_string(),
                source,
            })?;
        Ok(Capture {
            host: host.to_string(),
            interface: interface.to_string(),
            stop,
            reader,
        })
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
            .map_err(|_| read_error(std::io::Error::other("the capture thread panicked")))?
            .map_err(read_error)?;
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

fn read_until_stopped(
    fd: OwnedFd,
    stop: OwnedFd,
    mut tap: Option<Tap>,
) -> std::io::Result<(Vec<Frame>, u64)> {
    let mut frames = Vec::new();
    let mut buf = vec![0u8; SNAP_LEN];
    let mut take = |wait: bool, frames: &mut Vec<Frame>| -> std::io::Result<bool> {
        match socket::read(fd.as_raw_fd(), &mut buf, wait)? {
            Some((raw, len)) => {
                let frame = Frame {
                    at: raw.since_epoch,
                    direction: raw.direction,
                    original_len: raw.original_len,
                    data: buf[..len].to_vec(),
                };
                if let Some(tap) = tap.as_mut() {
                    tap(&frame);
                }
                frames.push(frame);
                Ok(true)
            }
            None => Ok(false),
        }
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
            return Err(e);
        }
        if fds[0].revents & libc::POLLIN != 0 {
            while take(false, &mut frames)? {}
        }
        if fds[1].revents != 0 {
            // Stopped: whatever the kernel queued before now is still ours.
            while take(false, &mut frames)? {}
            let drops = socket::drops(fd.as_raw_fd())?;
            return Ok((frames, drops));
        }
    }
}

impl Captured {
    /// Writes the frames as a pcap file (nanosecond timestamps, Ethernet) that tcpdump,
    /// tshark and Wireshark read.
    pub fn write_pcap(&self, path: &Path) -> Result<(), CaptureError> {
        pcap::write(path, &self.frames)
    }
}

/// Captures of several interfaces, started and stopped together.
#[derive(Default)]
pub struct Captures(Vec<Capture>);

impl Captures {
    pub fn new() -> Self {
        Captures(Vec::new())
    }

    pub fn add(&mut self, capture: Capture) {
        self.0.push(capture);
    }

    pub fn stop(self) -> Result<Vec<Captured>, CaptureError> {
        // Each capture's thread drains on its own; stop them all before joining any.
        for c in &self.0 {
            let _ = nix::unistd::write(&c.stop, &[1]);
        }
        self.0.into_iter().map(Capture::stop).collect()
    }
}
