//! A finished run for people (text, like tcpdump and a test runner; HTML, with ladder
//! diagrams) and for CI (JSON). The JSON report is also the run's record: with the pcaps
//! beside it, [`load`] reads a run's folder back and renders it again.

mod html;
mod lab;
mod ladder;
mod load;
mod packets;

use std::collections::HashMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::attribution::Fate;
use crate::output::{OutDir, OutputError};
use crate::proc::Stream;
use crate::scenario::{Run, Scenario};
use crate::trace::Trace;
pub use lab::{HostReport, LabReport, SubnetReport};
pub use ladder::{Arrow, Hop, Ladder, MAX_ARROWS, ROUTER_COLUMN};
pub use load::{LoadError, Loaded, load};

/// The version of the JSON report's layout; [`load`] reads this version only.
pub const FORMAT: u32 = 1;

/// The JSON report's name in a run's folder.
pub const JSON_FILE: &str = "report.json";

/// The HTML report's name in a run's folder.
pub const HTML_FILE: &str = "report.html";

/// Lines shown per capture before the middle of a long capture is elided.
const MAX_LINES: usize = 80;

/// A finished scenario run, ready to show: [`Report::text`] for files, logs and panic
/// messages, [`Report::styled`] for a terminal, [`Report::json`] for CI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The layout's version, [`FORMAT`].
    pub format: u32,
    /// The scenario's name.
    pub scenario: String,
    /// What the scenario shows.
    pub description: String,
    /// Whether every expectation held (and no capture dropped packets).
    pub passed: bool,
    /// How long the run took, in seconds.
    pub wall_time_s: f64,
    /// Each check, in the scenario's order.
    pub expectations: Vec<CheckReport>,
    /// Each capture.
    pub captures: Vec<CaptureReport>,
    /// Each program the steps ran.
    pub programs: Vec<ProgramReport>,
    /// What the lab's rules did: each flow summed up, and each packet a rule stopped.
    pub rules: RulesReport,
    /// The lab: subnets, hosts, and the rules between them.
    pub lab: LabReport,
    /// Each conversation as a ladder diagram.
    pub ladders: Vec<Ladder>,
    /// The zero of the run's clock, in nanoseconds since the Unix epoch.
    pub origin_unix_ns: u64,
}

/// What the lab's rules did to the run's packets.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RulesReport {
    /// Whether the rules traced packets (without, nothing is attributed).
    pub traced: bool,
    /// Where trace events were lost: attribution there may be incomplete.
    pub lost: Vec<String>,
    /// One line per flow a rule stopped or a security group rule let through.
    pub flows: Vec<String>,
    /// Each packet a rule stopped, or a security group rule let through.
    pub packets: Vec<RuleReport>,
}

/// One packet and the rule that decided it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleReport {
    /// When it was captured, on the run's clock; `None` if no capture holds it (a host's
    /// output chain dropped it).
    pub at_s: Option<f64>,
    /// `fabric`, or the host whose firewall decided.
    pub place: String,
    /// The packet.
    pub packet: String,
    /// What happened, in words.
    pub verdict: String,
    /// The rule(s) and their origin.
    pub fate: crate::attribution::Fate,
    /// The ruleset in force: `the topology`, or the step that changed it.
    pub ruleset: String,
    /// Where the captures hold it: (capture, packet) indexes, earliest first.
    pub seen: Vec<(usize, usize)>,
}

/// One expectation and whether it held.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckReport {
    /// The expectation, as people read it.
    pub expectation: String,
    /// Whether it held.
    pub held: bool,
    /// What was seen: why it held, or what was expected and seen instead.
    pub detail: String,
    /// Where the expectation is written, as `FILE:LINE` (`null` for checks no line wrote,
    /// such as a capture's drops).
    pub at: Option<String>,
}

/// One capture: what it saw and where its pcap is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaptureReport {
    /// The host.
    pub host: String,
    /// The interface (`eth0`, or the host's port on the bridge).
    pub interface: String,
    /// The pcap file, if one was written.
    pub pcap: Option<String>,
    /// Packets seen.
    pub packets: usize,
    /// Packets the kernel dropped before the capture read them.
    pub dropped: u64,
    /// tcpdump-like lines, time from the start of the captures.
    pub lines: Vec<String>,
    /// Which way each packet crossed the interface, `I` (in) or `O` (out), in order: a
    /// classic pcap has no field for it.
    pub directions: String,
}

/// One program a step ran, and how it ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgramReport {
    /// Its name in the scenario.
    pub name: String,
    /// Its command line.
    pub command: String,
    /// Its exit code; `None` when a signal ended it.
    pub exit_code: Option<i32>,
    /// Its error class, for tcplab's own apps only.
    pub class: Option<String>,
    /// When it started, on the run's clock (seconds since the captures started).
    pub started_s: f64,
    /// How long it ran, in seconds.
    pub duration_s: f64,
    /// What it printed, each line on the run's clock.
    pub output: Vec<OutputLine>,
}

/// One line a program printed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputLine {
    /// When, in seconds since the captures started.
    pub at_s: f64,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The line.
    pub text: String,
}

impl Report {
    /// The report of `run`, a run of `scenario`.
    pub fn new(scenario: &Scenario, run: &Run) -> Report {
        let rules = rules(run);
        let lab = LabReport::new(&scenario.resolved);
        let stops: ladder::Stops = rules
            .packets
            .iter()
            .filter(|p| p.fate.stopped())
            // Where it was last seen is where it stopped: the captures before that saw it go on.
            .filter_map(|p| {
                p.seen
                    .last()
                    .map(|&s| (s, (p.verdict.clone(), p.place.clone())))
            })
            .collect();
        let pairing = if run.attribution.traced {
            ladder::Pairing::InOrder
        } else {
            ladder::Pairing::Latest
        };
        let ladders = ladder::ladders(&run.traces, run.origin, &lab, &stops, pairing);
        Report {
            format: FORMAT,
            lab,
            ladders,
            origin_unix_ns: u64::try_from(run.origin.as_nanos()).unwrap_or(u64::MAX),
            scenario: scenario.name.clone(),
            description: scenario.description.clone(),
            passed: run.verdict.passed(),
            wall_time_s: run.wall_time.as_secs_f64(),
            expectations: run
                .verdict
                .checks
                .iter()
                .map(|c| CheckReport {
                    expectation: c.expectation.clone(),
                    held: c.held,
                    detail: c.detail.clone(),
                    at: c.at.as_ref().map(ToString::to_string),
                })
                .collect(),
            captures: run
                .traces
                .iter()
                .enumerate()
                .map(|(i, t)| capture(i, t, &run.attribution, run.origin))
                .collect(),
            rules,
            programs: run
                .outcomes
                .iter()
                .map(|(name, o)| {
                    // Before the captures started is before 0 on the run's clock.
                    let started_s = o.started_at.as_secs_f64() - run.origin.as_secs_f64();
                    ProgramReport {
                        name: name.clone(),
                        command: o.program.clone(),
                        exit_code: o.status.code(),
                        class: o.class().map(|c| c.to_string()),
                        started_s,
                        duration_s: o.duration.as_secs_f64(),
                        output: o
                            .lines
                            .iter()
                            .map(|l| OutputLine {
                                at_s: started_s + l.at.as_secs_f64(),
                                stream: match l.stream {
                                    Stream::Stdout => "stdout",
                                    Stream::Stderr => "stderr",
                                }
                                .to_string(),
                                text: l.text.clone(),
                            })
                            .collect(),
                    }
                })
                .collect(),
        }
    }

    /// A report of captures alone, without a scenario or a lab (no expectations, no rules):
    /// to look at traces a test or a benchmark made. `origin` is the zero of its clock,
    /// since the Unix epoch.
    pub fn of_traces(
        name: &str,
        description: &str,
        traces: &[Trace],
        origin: std::time::Duration,
    ) -> Report {
        let none = crate::attribution::Attribution::default();
        let lab = LabReport::default();
        Report {
            format: FORMAT,
            scenario: name.to_string(),
            description: description.to_string(),
            passed: true,
            wall_time_s: 0.0,
            expectations: Vec::new(),
            captures: traces
                .iter()
                .enumerate()
                .map(|(i, t)| capture(i, t, &none, origin))
                .collect(),
            programs: Vec::new(),
            rules: RulesReport::default(),
            ladders: ladder::ladders(
                traces,
                origin,
                &lab,
                &HashMap::new(),
                ladder::Pairing::Latest,
            ),
            lab,
            origin_unix_ns: u64::try_from(origin.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// The report as one self-contained HTML page (inline CSS, JavaScript and SVG), whose
    /// captures are `traces` (the run's, or those [`load`] read back). `html_dir` is the
    /// folder the page will be written in: pcaps beside it are linked by name.
    pub fn html(&self, traces: &[Trace], html_dir: Option<&Path>) -> String {
        html::render(self, traces, html_dir)
    }

    /// Writes `report.json` and `report.html` into `dir`, a run's output folder, as new files
    /// (never through a link, never over a file); `html` puts the page elsewhere instead (a
    /// new file too). Returns where the two are.
    pub fn save(
        &self,
        traces: &[Trace],
        dir: &Path,
        html: Option<&Path>,
    ) -> Result<Saved, ReportError> {
        let out = OutDir::reopen(dir)?;
        let (json_path, file) = out.create_file(JSON_FILE)?;
        write_all(&json_path, file, format!("{}\n", self.json()).as_bytes())?;
        let html_path = match html {
            Some(path) => {
                let html_dir = path.parent().filter(|p| !p.as_os_str().is_empty());
                let page = self.html(traces, Some(html_dir.unwrap_or(Path::new("."))));
                write_new(path, page.as_bytes())?;
                path.to_path_buf()
            }
            None => {
                let (path, file) = out.create_file(HTML_FILE)?;
                write_all(&path, file, self.html(traces, Some(dir)).as_bytes())?;
                path
            }
        };
        Ok(Saved {
            json: json_path,
            html: html_path,
        })
    }

    /// The report as pretty-printed JSON, for CI.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// The report as plain text: for files, logs and panic messages.
    pub fn text(&self) -> String {
        self.render(false)
    }

    /// The report with ANSI colours and bold, for a terminal. Print it through `anstream`
    /// (as the CLI does), which strips them for NO_COLOR, pipes and files.
    pub fn styled(&self) -> String {
        self.render(true)
    }

    fn render(&self, colour: bool) -> String {
        let style = |s: anstyle::Style| if colour { s } else { anstyle::Style::new() };
        let bold = style(anstyle::Style::new().bold());
        let green = style(anstyle::Style::new().fg_color(Some(anstyle::AnsiColor::Green.into())));
        let red = style(
            anstyle::Style::new()
                .fg_color(Some(anstyle::AnsiColor::Red.into()))
                .bold(),
        );
        let mut s = String::new();
        let _ = writeln!(s, "{bold}{}{bold:#}: {}", self.scenario, self.description);
        for c in &self.captures {
            let file = c
                .pcap
                .as_deref()
                .map(|p| format!(", {p}"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "\n{bold}capture of {} on {}{bold:#} ({} packet{}, {} dropped{file})",
                c.host,
                c.interface,
                c.packets,
                if c.packets == 1 { "" } else { "s" },
                c.dropped
            );
            if c.lines.is_empty() {
                let _ = writeln!(s, "    (empty)");
            }
            for l in &c.lines {
                let _ = writeln!(s, "  {l}");
            }
        }
        if !self.ladders.is_empty() {
            let _ = writeln!(
                s,
                "\n{bold}ladders{bold:#} (time flows down; X: a rule stopped it there; an arrow cut short: seen no further before the captures stopped)"
            );
            for l in &self.ladders {
                for line in l.text().lines() {
                    let _ = writeln!(s, "  {line}");
                }
            }
        }
        if !self.rules.flows.is_empty() || !self.rules.lost.is_empty() {
            let _ = writeln!(s, "\n{bold}what the rules did{bold:#}");
            for f in &self.rules.flows {
                let _ = writeln!(s, "  {f}");
            }
            for place in &self.rules.lost {
                let _ = writeln!(
                    s,
                    "  {red}trace events were lost in {place}{red:#}: what is said of it may be incomplete"
                );
            }
        }
        for p in &self.programs {
            let ended = match (&p.class, p.exit_code) {
                (Some(c), _) => c.clone(),
                (None, Some(code)) => format!("exit {code}"),
                (None, None) => "killed by a signal".to_string(),
            };
            let _ = writeln!(
                s,
                "\n{bold}{}{bold:#}: {} (started at {:.3} s, {ended} after {:.3} s)",
                p.name, p.command, p.started_s, p.duration_s
            );
            for l in &p.output {
                let tag = if l.stream == "stderr" { "err" } else { "out" };
                let _ = writeln!(s, "  {:>8.3}s {tag} | {}", l.at_s, l.text);
            }
        }
        let _ = writeln!(s, "\n{bold}expectations{bold:#}");
        for c in &self.expectations {
            let mark = if c.held {
                format!("{green}ok  {green:#}")
            } else {
                format!("{red}FAIL{red:#}")
            };
            // `FILE:LINE: FAIL ...`: where to look, as a compiler says it. Only failures: a
            // passing line needs no finding, and a path on every line is noise.
            let at = match &c.at {
                Some(a) if !c.held => format!("{a}: "),
                _ => String::new(),
            };
            let _ = writeln!(s, "  {at}{mark} {}: {}", c.expectation, c.detail);
        }
        let held = self.expectations.iter().filter(|c| c.held).count();
        let total = self.expectations.len();
        let _ = if self.passed {
            writeln!(
                s,
                "\n{green}{held} of {total} expectations held{green:#} in {}",
                wall(self.wall_time_s)
            )
        } else {
            writeln!(
                s,
                "\n{red}{} of {total} expectations failed{red:#} in {}",
                total - held,
                wall(self.wall_time_s)
            )
        };
        s
    }
}

/// A run's length as people read it: `3.5 s`, or `40 ms` under a tenth of a second.
fn wall(seconds: f64) -> String {
    if seconds < 0.1 {
        format!("{:.0} ms", seconds * 1000.0)
    } else {
        format!("{seconds:.1} s")
    }
}

/// Where [`Report::save`] wrote a run's reports.
#[derive(Debug, Clone)]
pub struct Saved {
    /// `report.json`.
    pub json: PathBuf,
    /// The HTML page.
    pub html: PathBuf,
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The folder or a file in it could not be opened or created.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn write_all(path: &Path, mut file: std::fs::File, bytes: &[u8]) -> Result<(), ReportError> {
    use std::io::Write as _;
    file.write_all(bytes).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to the new file `path` (0600): never through a symlink (even a dangling
/// one), never over an existing file.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    Ok(crate::output::write_file(path, bytes, false)?)
}

fn rules(run: &Run) -> RulesReport {
    let a = &run.attribution;
    RulesReport {
        traced: a.traced,
        lost: a.lost.clone(),
        flows: a.flows.clone(),
        packets: a
            .passages
            .iter()
            .filter(|p| p.fate.stopped() || matches!(p.fate, Fate::Allowed { .. }))
            .map(|p| RuleReport {
                at_s: p
                    .seen
                    .first()
                    .map(|s| s.at.as_secs_f64() - run.origin.as_secs_f64()),
                place: p.place.clone(),
                packet: p.packet.clone(),
                verdict: p.verdict(),
                fate: p.fate.clone(),
                ruleset: p.ruleset.clone(),
                seen: p.seen.iter().map(|s| (s.capture, s.packet)).collect(),
            })
            .collect(),
    }
}

fn capture(
    index: usize,
    t: &Trace,
    attribution: &crate::attribution::Attribution,
    origin: std::time::Duration,
) -> CaptureReport {
    // A packet a rule stopped says so, and which rule.
    let line = |i: usize| {
        let mut line = t.line(i, origin);
        for p in attribution.at(index, i) {
            if p.fate.stopped() {
                line.push_str(&format!("  <- {}", p.verdict()));
            }
        }
        line
    };
    let shown: Vec<usize> = (0..t.packets.len()).collect();
    let mut lines: Vec<String> = Vec::new();
    if shown.len() > MAX_LINES {
        let head = MAX_LINES / 2;
        let tail = MAX_LINES - head;
        lines.extend(shown[..head].iter().map(|&i| line(i)));
        lines.push(format!(
            "  ... {} more packets (all in the pcap) ...",
            shown.len() - MAX_LINES
        ));
        lines.extend(shown[shown.len() - tail..].iter().map(|&i| line(i)));
    } else {
        lines.extend(shown.iter().map(|&i| line(i)));
    }
    CaptureReport {
        host: t.host.clone(),
        interface: t.interface.clone(),
        pcap: t.pcap.as_ref().map(|p| p.display().to_string()),
        packets: t.packets.len(),
        dropped: t.drops,
        lines,
        directions: t
            .packets
            .iter()
            .map(|p| match p.direction {
                crate::capture::Direction::In => 'I',
                crate::capture::Direction::Out => 'O',
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
