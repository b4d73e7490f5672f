//! Captures of every host of a lab, started together before the first packet and stopped
//! together after the last, turned into traces and pcaps.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::rules::RuleBook;
use super::{Lab, LabError};
use crate::attribution::{Attribution, HostAt, attribute};
use crate::capture::{Capture, CaptureError, Captures, Tap};
use crate::output::OutDir;
use crate::ruletrace::RuleTrace;
use crate::spec::Placement;
use crate::trace::Trace;

/// Running captures of a lab's hosts, and the trace of what its rules did to each packet.
pub struct Recording {
    captures: Captures,
    origin: Duration,
    rules: Option<RuleTrace>,
    book: Arc<Mutex<RuleBook>>,
    hosts: Vec<HostAt>,
}

/// What a stopped recording holds.
#[derive(Debug)]
pub struct Recorded {
    /// One trace per capture, in the order they were started.
    pub traces: Vec<Trace>,
    /// Which rule let each packet through, dropped or rejected it.
    pub attribution: Attribution,
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
        let traced = self.rules.lock().unwrap_or_else(|e| e.into_inner()).trace;
        let rules =
            if traced {
                let places: Vec<_> =
                    std::iter::once((Placement::Fabric, "the fabric".to_string(), self.fabric()))
                        .chain(
                            self.router()
                                .map(|r| (Placement::Router, "the VPC router".to_string(), r)),
                        )
                        .chain(self.hosts().iter().enumerate().map(|(i, h)| {
                            (Placement::Host(i), format!("host {}", h.name()), h.ns())
                        }))
                        .collect();
                Some(RuleTrace::start(&places)?)
            } else {
                None
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
        Ok(Recording {
            captures,
            origin,
            rules,
            book: self.rules.clone(),
            hosts: self
                .hosts()
                .iter()
                .map(|h| HostAt {
                    name: h.name().to_string(),
                    address: h.address(),
                })
                .collect(),
        })
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
        Ok(self.finish(dir)?.traces)
    }

    /// Like [`Recording::stop`], and ties each packet the lab's rules met to the rule that
    /// let it through, dropped or rejected it.
    pub fn finish(self, dir: Option<&Path>) -> Result<Recorded, LabError> {
        // Captures stop first: a packet they hold has had its trace events sent by then.
        let streamed: Vec<Option<PathBuf>> = self.captures.pcaps();
        let captured = self.captures.stop();
        let events = self.rules.map(RuleTrace::stop).transpose()?;
        let captured = captured?;
        // Each capture's frames go as soon as its trace is made: at most one capture is held
        // twice at a time.
        let traces = captured
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
            .collect::<Result<Vec<_>, _>>()?;
        let attribution = match events {
            Some(events) => {
                let book = self.book.lock().unwrap_or_else(|e| e.into_inner());
                attribute(events, &book, &self.hosts, &traces)
            }
            None => Attribution::default(),
        };
        Ok(Recorded {
            traces,
            attribution,
        })
    }
}
