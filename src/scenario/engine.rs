//! Runs a scenario: builds its lab, sets its sysctls, captures every host, carries out the
//! steps within the time limit, and checks the expectations against what was captured and
//! what the programs did.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use super::{Interrupt, Scenario, Step, signal_name};
use crate::expect::{Check, Evidence, Verdict, evaluate_after, read_syn_sysctls};
use crate::lab::{Lab, LabError};
use crate::output::{OutDir, OutputError};
use crate::proc::{Outcome, Proc};
use crate::trace::Trace;

/// Why a scenario could not be run to a verdict (a failed expectation is not an error).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Building or driving the lab failed.
    #[error("scenario {scenario}: {source}")]
    Lab {
        /// The scenario's name.
        scenario: String,
        /// What the lab reported.
        #[source]
        source: Box<LabError>,
    },
    /// Writing the run's output (pcaps, report) failed.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The scenario asks for something this machine cannot do; nothing was built.
    #[error("scenario {scenario}: {what}, which this machine cannot do: {why}")]
    Unsupported {
        /// The scenario's name.
        scenario: String,
        /// What it asks for, and where (`step 3 (impair server) duplicates packets`).
        what: String,
        /// Why not, and what to do.
        why: &'static str,
    },
}

/// Something that happened while a scenario ran, for a live view.
#[derive(Debug, Clone)]
pub enum Event {
    /// A step begins; `limit` is how long it may take.
    Step {
        /// The step's position, from 0.
        index: usize,
        /// How many steps the scenario has.
        total: usize,
        /// What the step does, in words (`start server on server: tcp-server 0.0.0.0 1234`).
        description: String,
        /// How long it may take: its own timeout, or what is left of the time limit.
        limit: Duration,
        /// The connect timeout (`-t`) a client in this step was given, if any.
        connect_timeout: Option<Duration>,
    },
    /// A packet that tells the story (not bulk data) was captured on `host`.
    Packet {
        /// The capture: a host, or `fabric:HOST` for a bridge port.
        host: String,
        /// When, on the run's clock (since the captures started).
        at: Duration,
        /// The packet as a tcpdump-like line.
        line: String,
    },
}

/// How to run: where the pcaps go, where tcplab's programs are, who watches.
#[derive(Default)]
pub struct RunOptions {
    /// The folder for `HOST.pcap` files; none are written without it.
    pub out_dir: Option<PathBuf>,
    /// Where `tcp-server`, `tcp-client` and the other apps are; by default next to the
    /// running program (and, for test binaries in `deps/`, one folder up), then `PATH`.
    pub bin_dir: Option<PathBuf>,
    /// Where to send live events; the run itself never waits for the receiver.
    pub events: Option<Sender<Event>>,
    /// Lets another thread interrupt the run (Ctrl+C): the remaining steps are skipped, the
    /// captures taken so far are kept and checked.
    pub interrupt: Option<Interrupt>,
    /// How the lab is built (whether its rules trace packets).
    pub lab: crate::lab::LabOptions,
}

/// A finished run: the verdict and the evidence behind it.
pub struct Run {
    /// The scenario's name.
    pub scenario: String,
    /// Every check and whether it held.
    pub verdict: Verdict,
    /// One trace per capture.
    pub traces: Vec<Trace>,
    /// Which rule let each packet through, dropped or rejected it.
    pub attribution: crate::attribution::Attribution,
    /// Each program's name and how it ended.
    pub outcomes: Vec<(String, Outcome)>,
    /// The zero of every time in the report, since the Unix epoch.
    pub origin: Duration,
    /// How long the run took.
    pub wall_time: Duration,
}

/// What to add to "cannot start" when the program was not found.
fn not_found_hint(argv0: &str, path: &Path) -> String {
    if argv0.contains('/') {
        format!(" (tried {})", path.display())
    } else {
        format!(" (`{argv0}` is not in PATH)")
    }
}

fn describe(step: &Step) -> String {
    match step {
        Step::Start {
            host,
            name,
            command,
            ..
        } => format!("start {name} on {host}: {}", command.join(" ")),
        Step::Run {
            host,
            name,
            command,
            ..
        } => format!("run {name} on {host}: {}", command.join(" ")),
        Step::WaitFor { name, line } => format!("wait until {name} prints \"{line}\""),
        Step::Wait { name } => format!("wait until {name} ends"),
        Step::Ping { host, target, .. } => format!("ping {target} from {host}"),
        Step::Stop { name } => format!("stop {name} (Ctrl+C)"),
        Step::Kill { name } => format!("kill {name}"),
        Step::SecurityGroup { group, .. } => format!("change security group {group}"),
        Step::NetworkAcl { acl, .. } => format!("change network ACL {acl}"),
        Step::Firewall { rules } => format!("replace the firewall rules ({} rules)", rules.len()),
        Step::Impair { host, .. } => {
            let now = step
                .impairment()
                .and_then(|(_, i)| i.resolve(&crate::spec::FieldPath::default()).ok());
            match now {
                Some(i) if i == crate::spec::Impairment::default() => {
                    format!("remove the impairments of {host}'s link")
                }
                Some(i) => format!("impair {host}'s link: {i}"),
                None => format!("change the impairments of {host}'s link"),
            }
        }
    }
}

/// Builds the scenario's lab and runs it.
pub fn run(scenario: &Scenario, options: RunOptions) -> Result<Run, ScenarioError> {
    // tcplab's apps are found, or built, before the time limit starts counting: a first
    // build takes a minute. A missing one fails its step later, with where it was looked for.
    for step in &scenario.steps {
        if let Step::Start { command, .. } | Step::Run { command, .. } = step
            && let Some(program) = command.first()
        {
            let _ = crate::apps::locate::app_path(program, options.bin_dir.as_deref());
        }
    }
    let started = Instant::now();
    let lab_error = |source: LabError| ScenarioError::Lab {
        scenario: scenario.name.clone(),
        source: Box::new(source),
    };
    // Refused before anything is built, as a step would fail midway.
    if let Some(at) = scenario.duplicates_at()
        && crate::lab::delays_in_user_space().map_err(lab_error)?
    {
        return Err(ScenarioError::Unsupported {
            scenario: scenario.name.clone(),
            what: format!("{at} duplicates packets"),
            why: crate::lab::DUPLICATE_HINT,
        });
    }
    // Pcaps are created in the folder as it was opened: never through a symlink, never over a
    // file that was already there.
    let out = options.out_dir.as_deref().map(OutDir::open).transpose()?;
    let lab = Lab::from_resolved_with(scenario.resolved.clone(), options.lab).map_err(lab_error)?;
    for (host, key, value) in &scenario.sysctls {
        lab.host(host)
            .and_then(|h| h.set_sysctl(key, value))
            .map_err(lab_error)?;
    }
    let recording = lab
        .start_captures_into(
            scenario.capture_bridge_ports,
            out.as_ref(),
            |host, origin| {
                options
                    .events
                    .clone()
                    .map(|tx| live_tap(host.to_string(), origin, tx))
            },
        )
        .map_err(lab_error)?;
    let origin = recording.origin();
    let mut runner = Runner {
        lab: &lab,
        scenario,
        bin_dir: options.bin_dir.as_deref(),
        deadline: started + scenario.time_limit,
        running: HashMap::new(),
        outcomes: Vec::new(),
        topology: scenario.topology.clone(),
        interrupt: options.interrupt.as_ref(),
        step: 0,
    };
    let interrupted = || options.interrupt.as_ref().and_then(Interrupt::signal);
    let mut failures = Vec::new();
    for (index, step) in scenario.steps.iter().enumerate() {
        if interrupted().is_some() {
            break;
        }
        if let Some(tx) = &options.events {
            let _ = tx.send(Event::Step {
                index,
                total: scenario.steps.len(),
                description: describe(step),
                limit: runner.limit_of(step),
                connect_timeout: connect_timeout(step),
            });
        }
        runner.step = index + 1;
        if let Err(detail) = runner.step(step) {
            failures.push(Check::failed(
                format!("step {} ({})", index + 1, describe(step)),
                detail,
            ));
            break;
        }
    }
    if let Some(signal) = interrupted() {
        failures.push(Check::failed(
            "the run ran to its end",
            format!(
                "interrupted by {}: the steps left were skipped",
                signal_name(signal)
            ),
        ));
    }
    let crate::lab::Recorded {
        traces,
        attribution,
    } = recording
        .finish(options.out_dir.as_deref())
        .map_err(lab_error)?;
    // Like a capture's drops, a packet the delay line lost leaves the evidence incomplete.
    if let Some(line) = lab.delay_line() {
        let (held, detail) = match line {
            Ok(()) => (
                true,
                "no packet refused by the kernel or dropped from a full queue (packets still held when the run ended go with the lab)".to_string(),
            ),
            Err(e) => (false, format!("it failed: {e}")),
        };
        let mut check = Check::failed(
            "tcplab's delay line (in user space, for want of netem) lost no packet",
            detail,
        );
        check.held = held;
        failures.push(check);
    }
    // Programs still running are stopped as Ctrl+C would, then killed if they linger.
    let leftovers: Vec<(String, Proc)> = runner.running.drain().collect();
    for (name, p) in leftovers {
        match p.stop(Duration::from_secs(2)) {
            Ok(outcome) => runner.outcomes.push((name, outcome)),
            Err(e) => failures.push(Check::failed(format!("stop {name}"), e.to_string())),
        }
    }
    let (syn_sysctls, unread) = read_syn_sysctls(&scenario.expectations, |host, key| {
        lab.host(host).ok()?.sysctl(key).ok()
    });
    failures.extend(unread);
    let outcomes = runner.outcomes;
    let verdict = evaluate_after(
        failures,
        &scenario.expectations,
        &scenario
            .expectations_at
            .iter()
            .cloned()
            .map(Some)
            .collect::<Vec<_>>(),
        &Evidence {
            traces: &traces,
            outcomes: &outcomes,
            origin,
            syn_sysctls: &syn_sysctls,
            attribution: &attribution,
        },
    );
    Ok(Run {
        scenario: scenario.name.clone(),
        verdict,
        traces,
        attribution,
        outcomes,
        origin,
        wall_time: started.elapsed(),
    })
}

struct Runner<'a> {
    lab: &'a Lab,
    scenario: &'a Scenario,
    bin_dir: Option<&'a Path>,
    deadline: Instant,
    running: HashMap<String, Proc>,
    outcomes: Vec<(String, Outcome)>,
    topology: crate::spec::Topology,
    interrupt: Option<&'a Interrupt>,
    /// The step running now, from 1.
    step: usize,
}

fn connect_timeout(step: &Step) -> Option<Duration> {
    let (Step::Start { command, .. } | Step::Run { command, .. }) = step else {
        return None;
    };
    crate::apps::args::connect_timeout(command)
}

/// Shows SYNs, FINs, RSTs, ICMP and ARP as they are captured, marking repeated SYNs.
fn live_tap(host: String, origin: Duration, tx: Sender<Event>) -> crate::capture::Tap {
    use crate::trace::{Kind, decode, describe};
    let mut syns: HashSet<(std::net::SocketAddrV4, std::net::SocketAddrV4, u32)> = HashSet::new();
    Box::new(move |frame| {
        let kind = decode(&frame.data);
        let mark = match &kind {
            Kind::Tcp(t) if t.flags.syn && !t.flags.ack => {
                if syns.insert((t.src, t.dst, t.seq)) {
                    ""
                } else {
                    " [TCP Retransmission]"
                }
            }
            Kind::Tcp(t) if t.flags.syn || t.flags.fin || t.flags.rst => "",
            Kind::Icmp(_) | Kind::Arp(_) => "",
            _ => return,
        };
        let dir = match frame.direction {
            crate::capture::Direction::In => "In ",
            crate::capture::Direction::Out => "Out",
        };
        let _ = tx.send(Event::Packet {
            host: host.clone(),
            at: frame.at.saturating_sub(origin),
            line: format!("{dir} {}{mark}", describe(&kind)),
        });
    })
}

impl Runner<'_> {
    /// How long a step may take.
    fn limit_of(&self, step: &Step) -> Duration {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match step {
            Step::Run {
                timeout: Some(t), ..
            } => Duration::from_secs_f64(*t).min(left),
            _ => left,
        }
    }

    fn left(&self) -> Result<Duration, String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(format!(
                "the scenario's time limit of {} s ran out",
                self.scenario.time_limit.as_secs_f64()
            ))
        } else {
            Ok(left)
        }
    }

    fn spawn(&self, host: &str, argv: &[String]) -> Result<Proc, String> {
        let h = self.lab.host(host).map_err(|e| e.to_string())?;
        let path =
            crate::apps::locate::app_path(&argv[0], self.bin_dir).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&path);
        cmd.args(&argv[1..]);
        let p = h.spawn(cmd).map_err(|e| {
            let missing = matches!(&e, LabError::Netns(crate::netns::NetnsError::Proc(crate::proc::ProcError::Spawn { source, .. }))
                if source.kind() == std::io::ErrorKind::NotFound);
            if missing {
                format!("{e}{}", not_found_hint(&argv[0], &path))
            } else {
                e.to_string()
            }
        })?;
        if let Some(interrupt) = self.interrupt {
            interrupt.watch(p.pid());
        }
        Ok(p)
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Start {
                host,
                name,
                command,
                wait_for,
            } => {
                let p = self.spawn(host, command)?;
                if let Some(line) = wait_for {
                    p.wait_for_line(line, self.left()?)
                        .map_err(|e| e.to_string())?;
                }
                self.running.insert(name.clone(), p);
            }
            Step::Run {
                host,
                name,
                command,
                timeout,
            } => {
                let limit = match timeout {
                    Some(t) => Duration::from_secs_f64(*t).min(self.left()?),
                    None => self.left()?,
                };
                let outcome = self
                    .spawn(host, command)?
                    .wait(limit)
                    .map_err(|e| e.to_string())?;
                self.outcomes.push((name.clone(), outcome));
            }
            Step::Ping {
                host,
                target,
                name,
                count,
            } => self.ping(host, target, name.as_deref(), *count)?,
            Step::WaitFor { name, line } => {
                let p = self
                    .running
                    .get(name)
                    .ok_or(format!("{name} is not running"))?;
                p.wait_for_line(line, self.left()?)
                    .map_err(|e| e.to_string())?;
            }
            Step::Wait { name } => {
                let p = self
                    .running
                    .remove(name)
                    .ok_or(format!("{name} is not running"))?;
                let outcome = p.wait(self.left()?).map_err(|e| e.to_string())?;
                self.outcomes.push((name.clone(), outcome));
            }
            Step::Stop { name } | Step::Kill { name } => {
                let p = self
                    .running
                    .remove(name)
                    .ok_or(format!("{name} is not running"))?;
                let outcome = if matches!(step, Step::Kill { .. }) {
                    p.kill()
                } else {
                    p.stop(self.left()?)
                }
                .map_err(|e| e.to_string())?;
                self.outcomes.push((name.clone(), outcome));
            }
            Step::SecurityGroup {
                group,
                ingress,
                egress,
            } => self.change_group(group, ingress.as_ref(), egress.as_ref())?,
            Step::NetworkAcl {
                acl,
                inbound,
                outbound,
            } => {
                let a = self
                    .topology
                    .vpc
                    .as_mut()
                    .and_then(|v| v.network_acls.iter_mut().find(|a| &a.name == acl))
                    .ok_or(format!("no network ACL named {acl}"))?;
                if let Some(entries) = inbound {
                    a.inbound = entries.clone();
                }
                if let Some(entries) = outbound {
                    a.outbound = entries.clone();
                }
                self.apply_rules()?;
            }
            Step::Firewall { rules } => {
                self.topology.firewalls = rules.clone();
                self.apply_rules()?;
            }
            Step::Impair { .. } => {
                // Checked when the file was read.
                if let Some((host, impair)) = step.impairment() {
                    self.lab
                        .impair(host, &impair, Some(&format!("step {}", self.step)))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// Pings `target` (a host's name or an address) from `host`, as a program named `name`.
    fn ping(
        &mut self,
        host: &str,
        target: &str,
        name: Option<&str>,
        count: impl std::fmt::Display,
    ) -> Result<(), String> {
        let address = match self
            .scenario
            .resolved
            .hosts
            .iter()
            .find(|h| h.name == target)
        {
            Some(h) => h.address.to_string(),
            None => target.to_string(),
        };
        let argv: Vec<String> = ["ping", "-c", &count.to_string(), "-W", "2", &address]
            .map(String::from)
            .to_vec();
        let outcome = self
            .spawn(host, &argv)?
            .wait(self.left()?)
            .map_err(|e| e.to_string())?;
        self.outcomes
            .push((name.unwrap_or("ping").to_string(), outcome));
        Ok(())
    }

    /// Replaces a security group's rules (those given) and loads the new ruleset.
    fn change_group(
        &mut self,
        group: &str,
        ingress: Option<&Vec<crate::spec::SgRule>>,
        egress: Option<&Vec<crate::spec::SgRule>>,
    ) -> Result<(), String> {
        let g = self
            .topology
            .security_groups
            .iter_mut()
            .find(|g| g.name == group)
            .ok_or(format!("no security group named {group}"))?;
        if let Some(rules) = ingress {
            g.ingress = rules.clone();
        }
        if let Some(rules) = egress {
            g.egress = Some(rules.clone());
        }
        self.apply_rules()
    }

    fn apply_rules(&self) -> Result<(), String> {
        let resolved = self.topology.resolve().map_err(|e| e.to_string())?;
        self.lab
            .update_rules_for(&resolved, Some(&format!("step {}", self.step)))
            .map_err(|e| e.to_string())
    }
}
