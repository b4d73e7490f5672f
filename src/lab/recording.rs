//! Captures of every host of a lab, started together before the first packet and stopped
//! together after the last, turned into traces and pcaps.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Lab, LabError};
use crate::capture::{Capture, CaptureError, Captures, Tap};
use crate::output::OutDir;
use crate::trace::Trace;

/// Running captures of a lab's hosts.
pub struct Recording {
    captures: Captures,
    origin: Duration,
}

/// The name under which a host's bridge port is captured: `fabric:HOST`.
pub fn port_capture_name(host: &str) -> String {
    format!("{FABRIC_PREFIX}{host}")
}

const FABRIC_PREFIX: &str = "fabric:";

impl Lab {
    /// Starts capturing `eth0` of every host; every packet from the moment this returns is
    /// kept.
    pub fn start_captures(&self) -> Result<Recording, LabError> {
        self.start_captures_with(false, |_, _| None)
    }

    /// Like [`Lab::start_captures`]; with `bridge_ports`, also each host's port on the
    /// fabric's bridge (named `fabric:HOST`), which shows where between two hosts a packet
    /// stopped. `tap_for(name, origin)` may give each capture a live tap; `origin` is the
    /// recording's zero of time.
    pub fn start_captures_with(
        &self,
        bridge_ports: bool,
        tap_for: impl FnMut(&str, Duration) -> Option<Tap>,
    ) -> Result<Recording, LabError> {
        self.start_captures_into(bridge_ports, None, tap_for)
    }

    /// Like [`Lab::start_captures_with`]; with `out`, each capture streams to a new
    /// `<out>/<name>.pcap` as packets arrive (`fabric:HOST` is written `fabric-HOST.pcap`).
    pub fn start_captures_into(
        &self,
        bridge_ports: bool,
        out: Option<&OutDir>,
        mut tap_for: impl FnMut(&str, Duration) -> Option<Tap>,
    ) -> Result<Recording, LabError> {
        let pcap = |name: &str| {
            out.map(|dir| dir.create_file(&pcap_name(name)))
                .transpose()
                .map_err(|e| CaptureError::Write {
                    path: out
                        .map(|d| d.path().join(pcap_name(name)))
                        .unwrap_or_default(),
                    message: e.to_string(),
                })
        };
        let origin = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut captures = Captures::new();
        for h in self.hosts() {
            let tap = tap_for(h.name(), origin);
            let file = pcap(h.name())?;
            captures.add(Capture::start_streaming(
                h.ns(),
                h.name(),
                "eth0",
                tap,
                file,
            )?);
        }
        if bridge_ports {
            for h in self.hosts() {
                let name = port_capture_name(h.name());
                let tap = tap_for(&name, origin);
                let file = pcap(&name)?;
                // The port is named after its host (see the lab's build).
                captures.add(Capture::start_streaming(
                    self.fabric(),
                    &name,
                    h.name(),
                    tap,
                    file,
                )?);
            }
        }
        Ok(Recording { captures, origin })
    }
}

fn pcap_name(capture: &str) -> String {
    format!("{}.pcap", capture.replace(':', "-"))
}

impl Recording {
    /// When the captures started (since the Unix epoch): the zero of reports.
    pub fn origin(&self) -> Duration {
        self.origin
    }

    /// Stops every capture, after taking every frame the kernel holds; writes
    /// `<dir>/<host>.pcap` for each when `dir` is given and the captures did not already
    /// stream to pcaps of their own.
    pub fn stop(self, dir: Option<&Path>) -> Result<Vec<Trace>, LabError> {
        let streamed: Vec<Option<PathBuf>> = self.captures.pcaps();
        let captured = self.captures.stop()?;
        // Each capture's frames go as soon as its trace is made: at most one capture is held
        // twice at a time.
        captured
            .into_iter()
            .zip(streamed)
            .map(|(c, streamed)| {
                let mut trace = Trace::new(&c);
                if let Some(path) = streamed {
                    trace.pcap = Some(path);
                } else if let Some(dir) = dir {
                    let path = dir.join(pcap_name(&c.host));
                    c.write_pcap(&path)?;
                    trace.pcap = Some(path);
                }
                Ok::<_, CaptureError>(trace)
            })
            .collect::<Result<_, _>>()
            .map_err(LabError::from)
    }
}
