//! Scenarios: a topology, sysctls, steps and expectations in one TOML file, loaded and checked
//! here (no kernel), run by `engine` (the same engine for files, Rust tests and the CLI).

mod command;
mod engine;
mod interrupt;
mod model;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error_class::ErrorClass;
use crate::expect::{Expectation, RuleName, SourceLine, Tolerance};
use crate::spec::bounds;
use crate::spec::location::{item_offsets, key_in_item, line_col, offset_of};
use crate::spec::{FieldPath, Resolved, Segment, SpecError, Topology, ValidationError};
pub use engine::{Event, Run, RunOptions, ScenarioError, run};
pub use interrupt::{Interrupt, signal_name};
pub use model::{ExpectSpec, ScenarioFile, Step, SysctlValue, ToleranceSpec};

/// A scenario ready to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file's stem, e.g. `connect-timeout`.
    pub name: String,
    /// What the scenario shows, from its file.
    pub description: String,
    /// The file it was read from, if it was.
    pub path: Option<PathBuf>,
    /// The topology as written (the file's own plus what the scenario adds), which steps that
    /// change rules start from.
    pub topology: Topology,
    /// The topology checked and resolved: what the lab is built from.
    pub resolved: Resolved,
    /// (host, key, value), set before the first step.
    pub sysctls: Vec<(String, String, String)>,
    /// How long the whole run may take.
    pub time_limit: Duration,
    /// Each host's bridge port is captured too, as `fabric:HOST`.
    pub capture_bridge_ports: bool,
    /// What happens, in order.
    pub steps: Vec<Step>,
    /// What must be true of the run, checked against its evidence.
    pub expectations: Vec<Expectation>,
    /// Where each expectation is written (`FILE:LINE` of its `[[expect]]`), in the same
    /// order: a failure's report line starts with it.
    pub expectations_at: Vec<SourceLine>,
}

impl Scenario {
    /// Reads, parses and checks a scenario file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Scenario, SpecError> {
        let path = path.as_ref();
        let text = crate::spec::read_text(path)?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into());
        let mut s = Scenario::from_toml(&text, &path.display().to_string(), path.parent(), &name)?;
        s.path = Some(path.to_path_buf());
        Ok(s)
    }

    /// Parses and checks scenario text; `file` names it in errors and `dir` is where a
    /// `topology` path is relative to.
    pub fn from_toml(
        text: &str,
        file: &str,
        dir: Option<&Path>,
        name: &str,
    ) -> Result<Scenario, SpecError> {
        let at = |offset: usize, message: String| {
            let (line, column) = line_col(text, offset);
            SpecError::Invalid {
                file: file.to_string(),
                line,
                column,
                message,
            }
        };
        let raw: ScenarioFile = toml::from_str(text).map_err(|e| match tagged_error(text) {
            Some((offset, message)) => at(offset, message),
            None => at(
                e.span().map_or(0, |s| s.start),
                e.message().trim_end().to_string(),
            ),
        })?;
        let (base, base_counts) = match &raw.topology {
            Some(rel) => {
                let path = dir.unwrap_or(Path::new(".")).join(rel);
                let (topo, _) = Topology::from_file(&path)?;
                let counts = (
                    topo.hosts.len(),
                    topo.security_groups.len(),
                    topo.firewalls.len(),
                );
                (topo, counts)
            }
            None => (Topology::default(), (0, 0, 0)),
        };
        let mut topology = base;
        if let Some(subnet) = raw.subnet {
            topology.subnet = subnet;
        }
        if let Some(domain) = &raw.domain {
            topology.domain = Some(domain.clone());
        }
        topology.hosts.extend(raw.hosts.iter().cloned());
        topology
            .security_groups
            .extend(raw.security_groups.iter().cloned());
        topology.firewalls.extend(raw.firewalls.iter().cloned());
        // An error about an entry this file added points into this file.
        let locate = |e: ValidationError| {
            let path = local_path(&e.path, base_counts);
            let offset = path.as_ref().and_then(|p| offset_of(text, p)).unwrap_or(0);
            at(offset, format!("{}: {}", e.path, e.message))
        };
        let resolved = topology.resolve().map_err(locate)?;
        let mut raw = raw;
        ready_commands(&mut raw.steps, dir).map_err(|(path, message)| {
            let offset = offset_of(text, &path).unwrap_or(0);
            at(offset, format!("{path}: {message}"))
        })?;
        let checked = check(&raw, &resolved, &topology).map_err(|e| {
            let offset = offset_of(text, &e.path).unwrap_or(0);
            at(offset, format!("{}: {}", e.path, e.message))
        })?;
        // Each `[[expect]]`'s line, so that its failure points at it.
        let offsets = item_offsets(text, "expect");
        let expectations_at = (0..checked.expectations.len())
            .map(|i| {
                let line = offsets.get(i).map_or(0, |&o| line_col(text, o).0);
                SourceLine::new(file, u32::try_from(line).unwrap_or(u32::MAX))
            })
            .collect();
        Ok(Scenario {
            name: name.to_string(),
            description: raw.description.clone(),
            path: None,
            topology,
            resolved,
            sysctls: checked.sysctls,
            time_limit: checked.time_limit,
            capture_bridge_ports: raw.capture_bridge_ports,
            steps: raw.steps,
            expectations: checked.expectations,
            expectations_at,
        })
    }
}

impl Scenario {
    /// Where the scenario duplicates packets (a host's `impair` in the topology, or a step),
    /// if it does: only netem can, so a kernel without it refuses the scenario before its lab
    /// is built.
    pub fn duplicates_at(&self) -> Option<String> {
        let duplicates = |i: &crate::spec::Impairment| {
            i.egress.netem.duplicate > 0.0 || i.ingress.netem.duplicate > 0.0
        };
        if let Some(h) = self.resolved.hosts.iter().find(|h| duplicates(&h.impair)) {
            return Some(format!("host {}'s impair", h.name));
        }
        self.steps.iter().enumerate().find_map(|(i, s)| {
            let (host, impair) = s.impairment()?;
            let resolved = impair.resolve(&FieldPath::default()).ok()?;
            duplicates(&resolved).then(|| format!("step {} (impair {host})", i + 1))
        })
    }

    /// Whether its links need netem (a delay, jitter, duplicate, reorder, corrupt or rate,
    /// in the topology or a step): see [`crate::lab::netem_available`]. Where the kernel has
    /// none, tcplab's delay line in user space does all but duplicate (see
    /// [`crate::lab::delays_in_user_space`]).
    pub fn needs_netem(&self) -> bool {
        let netem =
            |i: &crate::spec::Impairment| !i.egress.netem.is_none() || !i.ingress.netem.is_none();
        self.resolved.hosts.iter().any(|h| netem(&h.impair))
            || self.steps.iter().any(|s| {
                s.impairment()
                    .is_some_and(|(_, i)| i.resolve(&FieldPath::default()).is_ok_and(|r| netem(&r)))
            })
    }
}

/// Expands `${VAR}` in every command and makes relative program paths start from `dir`.
fn ready_commands(steps: &mut [Step], dir: Option<&Path>) -> Result<(), (FieldPath, String)> {
    for (i, step) in steps.iter_mut().enumerate() {
        let (Step::Start { command, .. } | Step::Run { command, .. }) = step else {
            continue;
        };
        for (j, arg) in command.iter_mut().enumerate() {
            let path = || {
                crate::spec::resolve_helpers::at("step")
                    .index(i)
                    .key("command")
                    .index(j)
            };
            *arg = command::expand(arg, |name| std::env::var(name).ok())
                .map_err(|message| (path(), message))?;
            if j == 0 {
                *arg = command::program(arg, dir);
            }
        }
    }
    Ok(())
}

/// The path of an entry inside the scenario file, if the entry came from it.
fn local_path(
    path: &FieldPath,
    (hosts, groups, firewalls): (usize, usize, usize),
) -> Option<FieldPath> {
    let mut segs = path.0.clone();
    let shift = match segs.first() {
        Some(Segment::Key("host")) => hosts,
        Some(Segment::Key("security_group")) => groups,
        Some(Segment::Key("firewall")) => firewalls,
        _ => return Some(path.clone()),
    };
    if let Some(Segment::Index(i)) = segs.get_mut(1) {
        if *i < shift {
            return None;
        }
        *i -= shift;
    }
    Some(FieldPath(segs))
}

/// What `check` found valid, converted to what the run uses.
struct Checked {
    time_limit: Duration,
    sysctls: Vec<(String, String, String)>,
    expectations: Vec<Expectation>,
}

/// Where a program stands after the steps so far, to refuse steps that cannot work in order.
enum State {
    /// Started and not yet waited on, stopped or killed.
    Running,
    /// Ended by the step with this index, doing this.
    Ended(usize, &'static str),
    /// Run to its end by its own step (`run`, `ping`): nothing can wait on it later.
    RanToEnd(usize),
}

/// A sysctl key as the kernel names it under /proc/sys/net: dotted (or slashed) parts of
/// letters, digits, `_` and `-`, never `..`.
fn check_sysctl_key(key: &str) -> Result<(), String> {
    if !key.starts_with("net.") {
        return Err(format!(
            "`{key}` is not per namespace: only net.* sysctls can be set in a lab"
        ));
    }
    let valid = key.split(['.', '/']).all(|part| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    if !valid {
        return Err(format!(
            "`{key}` is not a sysctl name: use dotted parts of letters, digits, `_` and `-`, e.g. net.ipv4.tcp_syn_retries"
        ));
    }
    Ok(())
}

fn check_sysctl_value(value: &str) -> Result<(), String> {
    if value.len() > bounds::MAX_SYSCTL_VALUE {
        return Err(format!(
            "a sysctl value of {} bytes is too long: at most {}",
            value.len(),
            bounds::MAX_SYSCTL_VALUE
        ));
    }
    if value.chars().any(char::is_control) {
        return Err("a sysctl value holds no control characters (tabs, newlines...)".into());
    }
    Ok(())
}

fn check(
    raw: &ScenarioFile,
    topo: &Resolved,
    topology_for_check: &Topology,
) -> Result<Checked, ValidationError> {
    let time_limit = check_sizes(raw)?;
    let sysctls = check_sysctls(raw, topo)?;
    let programs = check_steps(raw, topo, topology_for_check)?;
    let expectations = check_expectations(raw, topo, topology_for_check, &programs)?;
    Ok(Checked {
        time_limit,
        sysctls,
        expectations,
    })
}

/// Fails unless `name` is a host of the lab, naming the hosts there are.
fn host_checker(topo: &Resolved) -> impl Fn(FieldPath, &str) -> Result<(), ValidationError> + '_ {
    move |path, name| {
        if topo.hosts.iter().any(|h| h.name == name) {
            Ok(())
        } else {
            let known: Vec<&str> = topo.hosts.iter().map(|h| h.name.as_str()).collect();
            Err(crate::spec::resolve_helpers::invalid(
                path,
                format!("no host named `{name}` (hosts: {})", known.join(", ")),
            ))
        }
    }
}

/// The time limit, and the sizes of the file's lists.
fn check_sizes(raw: &ScenarioFile) -> Result<Duration, ValidationError> {
    use crate::spec::resolve_helpers::{at, invalid};
    let time_limit =
        bounds::positive_seconds(raw.time_limit).map_err(|m| invalid(at("time_limit"), m))?;
    for (key, len, what) in [
        ("step", raw.steps.len(), "steps"),
        ("expect", raw.expectations.len(), "expectations"),
        (
            "sysctls",
            raw.sysctls.values().map(|k| k.len()).sum(),
            "sysctls",
        ),
    ] {
        bounds::count(len, bounds::MAX_ENTRIES, what).map_err(|m| invalid(at(key), m))?;
    }
    Ok(time_limit)
}

/// The sysctls per host, as (host, key, value).
fn check_sysctls(
    raw: &ScenarioFile,
    topo: &Resolved,
) -> Result<Vec<(String, String, String)>, ValidationError> {
    use crate::spec::resolve_helpers::{at, invalid};
    let host = host_checker(topo);
    let mut sysctls = Vec::new();
    for (h, keys) in &raw.sysctls {
        host(at("sysctls").name(h), h)?;
        for (key, value) in keys {
            let value = value.as_string();
            check_sysctl_key(key)
                .and_then(|()| check_sysctl_value(&value))
                .map_err(|m| invalid(at("sysctls").name(h).name(key), m))?;
            sysctls.push((h.clone(), key.clone(), value));
        }
    }
    Ok(sysctls)
}

/// A SYN schedule's tolerance as the file gives it, checked; the default without one.
fn tolerance_of(
    t: Option<&model::ToleranceSpec>,
    path: FieldPath,
) -> Result<Tolerance, ValidationError> {
    use crate::spec::resolve_helpers::invalid;
    let Some(t) = t else {
        return Ok(Tolerance::default());
    };
    let absolute = bounds::fraction_or_seconds(
        t.absolute,
        bounds::MAX_TOLERANCE_ABSOLUTE,
        "an absolute tolerance in seconds",
    )
    .map_err(|m| invalid(path.key("absolute"), m))?;
    let relative = bounds::fraction_or_seconds(
        t.relative,
        bounds::MAX_TOLERANCE_RELATIVE,
        "a relative tolerance",
    )
    .map_err(|m| invalid(path.key("relative"), m))?;
    Ok(Tolerance {
        absolute: Duration::from_secs_f64(absolute),
        relative,
    })
}

/// The program whose connection a SYN schedule times, when the file does not name it: the
/// one program `sender` starts or runs (none: no start to check; several: name it).
fn connecting_program(
    programs_on: &[(String, String)],
    sender: &str,
    path: FieldPath,
) -> Result<Option<String>, ValidationError> {
    let on: Vec<&str> = programs_on
        .iter()
        .filter(|(h, _)| h == sender)
        .map(|(_, n)| n.as_str())
        .collect();
    match on.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.to_string())),
        many => Err(crate::spec::resolve_helpers::invalid(
            path,
            format!(
                "{sender} runs several programs ({}): name the one that connects, e.g. program = \"{}\"",
                many.join(", "),
                many[0]
            ),
        )),
    }
}

/// The programs the steps start or run: their names, and (host, name) in order.
struct Programs {
    names: HashSet<String>,
    on: Vec<(String, String)>,
}

/// Each step on its own and in its order: hosts, programs, groups and rules it names.
fn check_steps(
    raw: &ScenarioFile,
    topo: &Resolved,
    topology_for_check: &Topology,
) -> Result<Programs, ValidationError> {
    use crate::spec::resolve_helpers::{at, invalid};
    let hosts: Vec<&str> = topo.hosts.iter().map(|h| h.name.as_str()).collect();
    let host = host_checker(topo);
    // Names of programs as the steps define them, in order, and where each one stands.
    let mut states: HashMap<String, State> = HashMap::new();
    let mut programs: HashSet<String> = HashSet::new();
    // Programs each host starts or runs, in order: the default connecting program of a
    // SYN schedule.
    let mut programs_on: Vec<(String, String)> = Vec::new();
    let groups: Vec<&str> = raw
        .security_groups
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    for (i, step) in raw.steps.iter().enumerate() {
        let path = at("step").index(i);
        let new_name = |n: &str, programs: &mut HashSet<String>| {
            if programs.insert(n.to_string()) {
                Ok(())
            } else {
                Err(invalid(
                    path.key("name"),
                    format!("a program named `{n}` already ran: names must be unique"),
                ))
            }
        };
        // The step acts on a program that is running now.
        let needs_running = |n: &str, states: &HashMap<String, State>, doing: &str| {
            let message = match states.get(n) {
                Some(State::Running) => return Ok(()),
                Some(State::Ended(at, how)) => {
                    format!("cannot {doing} `{n}`: it already ended at step[{at}] ({how})")
                }
                Some(State::RanToEnd(at)) => format!(
                    "cannot {doing} `{n}`: step[{at}] ran it to its end; use `action = \"start\"` to keep it running"
                ),
                None => format!("no program named `{n}` was started before this step"),
            };
            Err(invalid(path.key("name"), message))
        };
        match step {
            Step::Start {
                host: h,
                name,
                command,
                ..
            }
            | Step::Run {
                host: h,
                name,
                command,
                ..
            } => {
                host(path.key("host"), h)?;
                if command.is_empty() {
                    return Err(invalid(
                        path.key("command"),
                        "give the program and its arguments, e.g. [\"tcp-server\", \"0.0.0.0\", \"1234\"]",
                    ));
                }
                if command[0].is_empty() || command[0].contains('\0') {
                    return Err(invalid(
                        path.key("command").index(0),
                        "name the program to run, e.g. \"tcp-server\"",
                    ));
                }
                // tcplab's own apps would refuse these arguments only once the lab is up.
                crate::apps::args::check_command(command).map_err(|(arg, why)| {
                    let at = match arg {
                        Some(a) => path.key("command").index(a),
                        None => path.key("command"),
                    };
                    invalid(at, format!("{}: {why}", command[0]))
                })?;
                if let Step::Run {
                    timeout: Some(t), ..
                } = step
                {
                    bounds::positive_seconds(*t).map_err(|m| invalid(path.key("timeout"), m))?;
                }
                new_name(name, &mut programs)?;
                programs_on.push((h.clone(), name.clone()));
                let state = if matches!(step, Step::Start { .. }) {
                    State::Running
                } else {
                    State::RanToEnd(i)
                };
                states.insert(name.clone(), state);
            }
            Step::Ping {
                host: h,
                target,
                name,
                count,
            } => {
                host(path.key("host"), h)?;
                if !hosts.contains(&target.as_str()) && target.parse::<Ipv4Addr>().is_err() {
                    return Err(invalid(
                        path.key("target"),
                        format!("`{target}` is neither a host nor an address"),
                    ));
                }
                if !(1..=i64::from(bounds::MAX_PING_COUNT)).contains(count) {
                    return Err(invalid(
                        path.key("count"),
                        format!(
                            "ping sends 1 to {} echo requests, not {count}",
                            bounds::MAX_PING_COUNT
                        ),
                    ));
                }
                let name = name.as_deref().unwrap_or("ping");
                new_name(name, &mut programs)?;
                states.insert(name.to_string(), State::RanToEnd(i));
            }
            Step::WaitFor { name, .. } => {
                needs_running(name, &states, "wait for a line of")?;
            }
            Step::Wait { name } | Step::Stop { name } | Step::Kill { name } => {
                let (doing, how) = match step {
                    Step::Wait { .. } => ("wait for", "waited for"),
                    Step::Stop { .. } => ("stop", "stopped"),
                    _ => ("kill", "killed"),
                };
                needs_running(name, &states, doing)?;
                states.insert(name.clone(), State::Ended(i, how));
            }
            Step::Impair { host: h, .. } => {
                host(path.key("host"), h)?;
                if let Some((_, impair)) = step.impairment() {
                    impair.resolve(&path)?;
                }
            }
            Step::Firewall { rules } => {
                // The rules must hold in the topology as it stands.
                let mut t = topology_for_check.clone();
                t.firewalls = rules.clone();
                t.resolve().map_err(|e| {
                    invalid(path.key("rules"), format!("{}: {}", e.path, e.message))
                })?;
            }
            Step::NetworkAcl {
                acl,
                inbound,
                outbound,
            } => {
                let mut t = topology_for_check.clone();
                let Some(a) = t
                    .vpc
                    .as_mut()
                    .and_then(|v| v.network_acls.iter_mut().find(|a| &a.name == acl))
                else {
                    return Err(invalid(
                        path.key("acl"),
                        format!("no network ACL named `{acl}` in the topology's [vpc]"),
                    ));
                };
                if let Some(entries) = inbound {
                    a.inbound = entries.clone();
                }
                if let Some(entries) = outbound {
                    a.outbound = entries.clone();
                }
                // The new entries must hold as the run will apply them.
                t.resolve().map_err(|e| {
                    let key = match e.path.0.get(3) {
                        Some(Segment::Key("outbound")) => "outbound",
                        _ => "inbound",
                    };
                    invalid(path.key(key), format!("{}: {}", e.path, e.message))
                })?;
            }
            Step::SecurityGroup {
                group,
                ingress,
                egress,
            } => {
                let exists = groups.contains(&group.as_str())
                    || topo.hosts.iter().any(|h| h.security_groups.contains(group));
                if !exists {
                    return Err(invalid(
                        path.key("group"),
                        format!("no security group named `{group}`"),
                    ));
                }
                // The new rules must hold as the run will apply them.
                let mut t = topology_for_check.clone();
                if let Some(g) = t.security_groups.iter_mut().find(|g| &g.name == group) {
                    if let Some(rules) = ingress {
                        g.ingress = rules.clone();
                    }
                    if let Some(rules) = egress {
                        g.egress = Some(rules.clone());
                    }
                }
                t.resolve().map_err(|e| {
                    let key = match e.path.0.get(2) {
                        Some(Segment::Key("egress")) => "egress",
                        _ => "ingress",
                    };
                    invalid(path.key(key), format!("{}: {}", e.path, e.message))
                })?;
            }
        }
    }
    Ok(Programs {
        names: programs,
        on: programs_on,
    })
}

/// The most datagrams a `datagrams` expectation may count.
pub const MAX_DATAGRAMS: usize = 100_000;

/// Each expectation, turned into one the evidence is checked against.
fn check_expectations(
    raw: &ScenarioFile,
    topo: &Resolved,
    topology: &Topology,
    programs: &Programs,
) -> Result<Vec<Expectation>, ValidationError> {
    use crate::spec::resolve_helpers::{at, invalid};
    let host = host_checker(topo);
    let (programs_on, programs) = (&programs.on, &programs.names);
    let server = |path: FieldPath, text: &str| -> Result<SocketAddrV4, ValidationError> {
        let (h, port) = text.rsplit_once(':').ok_or_else(|| {
            invalid(
                path.clone(),
                format!("`{text}` should be HOST:PORT, e.g. \"server:1234\""),
            )
        })?;
        let port: u16 = match port.parse() {
            Ok(p) if p > 0 => p,
            _ => {
                return Err(invalid(
                    path.clone(),
                    format!("`{port}` is not a port (1-65535)"),
                ));
            }
        };
        let ip = match topo.hosts.iter().find(|x| x.name == h) {
            Some(x) => x.address,
            None => h.parse().map_err(|_| {
                invalid(
                    path.clone(),
                    format!("`{h}` is neither a host nor an address"),
                )
            })?,
        };
        Ok(SocketAddrV4::new(ip, port))
    };
    let program = |path: FieldPath, name: &str| {
        if programs.contains(name) {
            Ok(name.to_string())
        } else {
            Err(invalid(
                path,
                format!("no step runs a program named `{name}`"),
            ))
        }
    };
    let byte = |path: FieldPath, value: i64, what: &str| {
        u8::try_from(value).map_err(|_| {
            invalid(
                path,
                format!("{value} is not {what}: give a number from 0 to 255"),
            )
        })
    };
    let from_of = |path: FieldPath, from: Option<&str>| {
        from.map(|f| {
            topo.hosts
                .iter()
                .find(|h| h.name == f)
                .map(|h| h.address)
                .or_else(|| f.parse().ok())
                .ok_or_else(|| invalid(path, format!("`{f}` is neither a host nor an address")))
        })
        .transpose()
    };
    let mut expectations = Vec::new();
    for (i, e) in raw.expectations.iter().enumerate() {
        let path = at("expect").index(i);
        // A capture is a host's, or with capture_bridge_ports its port's (`fabric:HOST`).
        let host_of = |h: &str| {
            let target = match h.strip_prefix("fabric:") {
                Some(port) if raw.capture_bridge_ports => port,
                Some(_) => {
                    return Err(invalid(
                        path.key("host"),
                        format!(
                            "`{h}` is a bridge port: set `capture_bridge_ports = true` to capture it"
                        ),
                    ));
                }
                None => h,
            };
            host(path.key("host"), target).map(|()| h.to_string())
        };
        let srv = |s: &str| server(path.key("server"), s);
        expectations.push(match e {
            ExpectSpec::Class { program: p, class } => Expectation::Class {
                program: program(path.key("program"), p)?,
                class: class
                    .parse::<ErrorClass>()
                    .map_err(|err| invalid(path.key("class"), err.to_string()))?,
            },
            ExpectSpec::Exit { program: p, code } => Expectation::Exit {
                program: program(path.key("program"), p)?,
                code: byte(path.key("code"), *code, "an exit code")?.into(),
            },
            ExpectSpec::Output { program: p, line } => Expectation::Output {
                program: program(path.key("program"), p)?,
                line: line.clone(),
            },
            ExpectSpec::SynSchedule {
                host: h,
                server: s,
                sender,
                app_timeout,
                tolerance,
                program: connecting,
            } => {
                // The schedule's sysctls are read from the sender when the scenario runs.
                let sender = sender.as_deref().unwrap_or(h);
                host(path.key("sender"), sender)?;
                let app_timeout = app_timeout
                    .map(bounds::positive_seconds)
                    .transpose()
                    .map_err(|m| invalid(path.key("app_timeout"), m))?;
                let tolerance = tolerance_of(tolerance.as_ref(), path.key("tolerance"))?;
                let connecting = match connecting {
                    Some(p) => Some(program(path.key("program"), p)?),
                    None => connecting_program(programs_on, sender, path.key("program"))?,
                };
                Expectation::SynSchedule {
                    program: connecting,
                    host: host_of(h)?,
                    server: srv(s)?,
                    sender: sender.to_string(),
                    app_timeout,
                    tolerance,
                }
            }
            ExpectSpec::NoFlow { host: h, server: s } => Expectation::NoFlow {
                host: host_of(h)?,
                server: srv(s)?,
            },
            ExpectSpec::NoIpPackets { host: h } => Expectation::NoIpPackets { host: host_of(h)? },
            ExpectSpec::Handshake { host: h, server: s } => Expectation::Handshake {
                host: host_of(h)?,
                server: srv(s)?,
            },
            ExpectSpec::ResetBy {
                host: h,
                server: s,
                by,
            } => Expectation::ResetBy {
                host: host_of(h)?,
                server: srv(s)?,
                by: *by,
            },
            ExpectSpec::HandshakeRtt {
                host: h,
                server: s,
                rtt,
                syns,
                tolerance,
            } => Expectation::HandshakeRtt {
                host: host_of(h)?,
                server: srv(s)?,
                rtt: bounds::fraction_or_seconds(*rtt, bounds::MAX_SECONDS, "a time in seconds")
                    .map(Duration::from_secs_f64)
                    .map_err(|m| invalid(path.key("rtt"), m))?,
                syns: syns
                    .map(|n| {
                        usize::try_from(n)
                            .ok()
                            .filter(|n| (1..=64).contains(n))
                            .ok_or_else(|| {
                                invalid(
                                    path.key("syns"),
                                    format!("{n} is not a number of SYNs: give 1 to 64"),
                                )
                            })
                    })
                    .transpose()?,
                tolerance: tolerance_of(tolerance.as_ref(), path.key("tolerance"))?,
            },
            ExpectSpec::Retransmissions {
                host: h,
                server: s,
                from,
            } => Expectation::Retransmissions {
                host: host_of(h)?,
                server: srv(s)?,
                from: *from,
            },
            ExpectSpec::NoAnswer { host: h, server: s } => Expectation::NoAnswer {
                host: host_of(h)?,
                server: srv(s)?,
            },
            ExpectSpec::Icmp {
                host: h,
                server: s,
                icmp_type,
                code,
            } => Expectation::IcmpError {
                host: host_of(h)?,
                server: srv(s)?,
                icmp_type: byte(path.key("type"), *icmp_type, "an ICMP type")?,
                code: byte(path.key("code"), *code, "an ICMP code")?,
            },
            ExpectSpec::Payload {
                text,
                server: s,
                hosts: hs,
            } => {
                for h in hs {
                    host(path.key("hosts"), h)?;
                }
                Expectation::Payload {
                    text: text.clone(),
                    server: srv(s)?,
                    hosts: hs.clone(),
                }
            }
            ExpectSpec::Hops {
                server: s,
                hosts: hs,
                hops,
            } => {
                let [from, to] = hs.as_slice() else {
                    return Err(invalid(
                        path.key("hosts"),
                        format!(
                            "give two captures, the one nearer the client first: saw {}",
                            hs.len()
                        ),
                    ));
                };
                for h in hs {
                    host(path.key("hosts"), h)?;
                }
                Expectation::Hops {
                    server: srv(s)?,
                    from: from.clone(),
                    to: to.clone(),
                    hops: byte(path.key("hops"), *hops, "a number of routers")?,
                }
            }
            ExpectSpec::ZeroWindow { host: h, server: s } => Expectation::ZeroWindow {
                host: host_of(h)?,
                server: srv(s)?,
            },
            ExpectSpec::DroppedBy {
                server: s,
                by,
                from,
            } => Expectation::DroppedBy {
                server: srv(s)?,
                from: from_of(path.key("from"), from.as_deref())?,
                by: rule_name(raw, topology, by).map_err(|m| invalid(path.key("by"), m))?,
            },
            ExpectSpec::AllowedBy {
                server: s,
                by,
                from,
            } => Expectation::AllowedBy {
                server: srv(s)?,
                from: from_of(path.key("from"), from.as_deref())?,
                by: rule_name(raw, topology, by).map_err(|m| invalid(path.key("by"), m))?,
            },
            ExpectSpec::Datagrams {
                host: h,
                server: s,
                from,
                count,
                text,
            } => Expectation::Datagrams {
                host: host_of(h)?,
                server: srv(s)?,
                from: from.unwrap_or(crate::trace::Side::Client),
                count: count
                    .map(|n| {
                        usize::try_from(n)
                            .ok()
                            .filter(|n| *n <= MAX_DATAGRAMS)
                            .ok_or_else(|| {
                                invalid(
                                    path.key("count"),
                                    format!(
                                        "{n} is not a number of datagrams: give 0 to {MAX_DATAGRAMS}"
                                    ),
                                )
                            })
                    })
                    .transpose()?,
                text: text.clone(),
            },
            ExpectSpec::NoDatagrams { host: h, server: s } => Expectation::NoDatagrams {
                host: host_of(h)?,
                server: srv(s)?,
            },
            ExpectSpec::UnansweredArp { host: h, target } => Expectation::UnansweredArp {
                host: host_of(h)?,
                target: target.parse().map_err(|_| {
                    invalid(
                        path.key("target"),
                        format!("`{target}` is not an IPv4 address"),
                    )
                })?,
            },
        });
    }
    Ok(expectations)
}

/// A `dropped-by` expectation's rule, checked against what the topology and steps hold.
fn rule_name(raw: &ScenarioFile, topology: &Topology, by: &str) -> Result<RuleName, String> {
    let name = RuleName::parse(by)?;
    match &name {
        RuleName::SecurityGroup(g) => {
            if !topology.security_groups.iter().any(|x| &x.name == g) {
                let known: Vec<&str> = topology
                    .security_groups
                    .iter()
                    .map(|x| x.name.as_str())
                    .collect();
                return Err(format!(
                    "no security group named `{g}` (the topology has: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            }
        }
        RuleName::Firewall(n) => {
            let most = raw
                .steps
                .iter()
                .filter_map(|s| match s {
                    Step::Firewall { rules } => Some(rules.len()),
                    _ => None,
                })
                .chain(std::iter::once(topology.firewalls.len()))
                .max()
                .unwrap_or(0);
            if *n > most {
                return Err(format!(
                    "`{by}`: the topology and the firewall steps have at most {most} firewall rule(s)"
                ));
            }
        }
        RuleName::HostFirewall(h) | RuleName::Impairment(h) => {
            if !topology.hosts.iter().any(|x| &x.name == h) {
                return Err(format!("`{by}`: no host named `{h}`"));
            }
        }
        RuleName::Established => {}
        RuleName::NetworkAcl(a) => {
            let known = topology
                .vpc
                .as_ref()
                .is_some_and(|v| v.network_acls.iter().any(|x| &x.name == a));
            if !known {
                return Err(format!(
                    "no network ACL named `{a}` in the topology's [vpc]"
                ));
            }
        }
        RuleName::RouteTable(t) => {
            let known = topology.vpc.as_ref().is_some_and(|v| {
                v.route_tables.iter().any(|x| &x.name == t)
                    || v.subnets.iter().any(|x| &x.name == t)
            });
            if !known {
                return Err(format!(
                    "no route table or subnet named `{t}` in the topology's [vpc]"
                ));
            }
        }
    }
    Ok(name)
}

/// Where a `[[step]]` or `[[expect]]` that does not read is, and why. serde reads a table
/// tagged by `action` or `kind` whole before it looks inside, so toml's own error points at
/// the first `[[step]]` of the file, whichever is wrong: each item is read again alone, and
/// an unknown field is found by its name.
fn tagged_error(text: &str) -> Option<(usize, String)> {
    use serde::Deserialize;
    let root: toml::Table = toml::from_str(text).ok()?;
    for key in ["step", "expect"] {
        let Some(toml::Value::Array(items)) = root.get(key) else {
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let error = match key {
                "step" => model::Step::deserialize(item.clone()).err(),
                _ => model::ExpectSpec::deserialize(item.clone()).err(),
            };
            let Some(e) = error else { continue };
            let message = e.message().trim_end().to_string();
            let field = message
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next());
            let offset = field
                .and_then(|f| key_in_item(text, key, i, f))
                .or_else(|| item_offsets(text, key).get(i).copied())
                .unwrap_or(0);
            return Some((offset, format!("{key}[{i}]: {message}")));
        }
    }
    None
}

#[cfg(test)]
mod tests;
