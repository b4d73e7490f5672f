//! Scenarios: a topology, sysctls, steps and expectations in one TOML file, loaded and checked
//! here (no kernel), run by `engine` (the same engine for files, Rust tests and the CLI).

mod engine;
mod interrupt;
mod model;

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error_class::ErrorClass;
use crate::expect::{Expectation, Tolerance};
use crate::spec::location::{line_col, offset_of};
use crate::spec::{FieldPath, Resolved, Segment, SpecError, Topology, ValidationError};
pub use engine::{Event, Run, RunOptions, ScenarioError, run};
pub use interrupt::{Interrupt, signal_name};
pub use model::{ExpectSpec, ScenarioFile, Step, SysctlValue, ToleranceSpec};

/// A scenario ready to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file's stem, e.g. `connect-timeout`.
    pub name: String,
    pub description: String,
    pub path: Option<PathBuf>,
    pub topology: Topology,
    pub resolved: Resolved,
    /// (host, key, value), set before the first step.
    pub sysctls: Vec<(String, String, String)>,
    pub time_limit: Duration,
    /// Each host's bridge port is captured too, as `fabric:HOST`.
    pub capture_bridge_ports: bool,
    pub steps: Vec<Step>,
    pub expectations: Vec<Expectation>,
    /// For each SYN schedule expectation (by index): the host whose sysctls time the SYNs.
    pub syn_senders: Vec<(usize, String)>,
}

impl Scenario {
    /// Reads, parses and checks a scenario file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Scenario, SpecError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.to_path_buf(),
            source,
        })?;
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
        let raw: ScenarioFile = toml::from_str(text).map_err(|e| {
            at(
                e.span().map_or(0, |s| s.start),
                e.message().trim_end().to_string(),
            )
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
        let checked = check(&raw, &resolved, &topology).map_err(|e| {
            let offset = offset_of(text, &e.path).unwrap_or(0);
            at(offset, format!("{}: {}", e.path, e.message))
        })?;
        Ok(Scenario {
            name: name.to_string(),
            description: raw.description.clone(),
            path: None,
            topology,
            resolved,
            sysctls: checked.0,
            time_limit: Duration::from_secs_f64(raw.time_limit),
            capture_bridge_ports: raw.capture_bridge_ports,
            steps: raw.steps,
            expectations: checked.1,
            syn_senders: checked.2,
        })
    }
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

type Checked = (
    Vec<(String, String, String)>,
    Vec<Expectation>,
    Vec<(usize, String)>,
);

fn check(
    raw: &ScenarioFile,
    topo: &Resolved,
    topology_for_check: &Topology,
) -> Result<Checked, ValidationError> {
    use crate::spec::resolve_helpers::{at, invalid};
    let hosts: Vec<&str> = topo.hosts.iter().map(|h| h.name.as_str()).collect();
    let known_hosts = hosts.join(", ");
    let host = |path: FieldPath, name: &str| -> Result<(), ValidationError> {
        if hosts.contains(&name) {
            Ok(())
        } else {
            Err(invalid(
                path,
                format!("no host named `{name}` (hosts: {known_hosts})"),
            ))
        }
    };
    if !(raw.time_limit > 0.0 && raw.time_limit.is_finite()) {
        return Err(invalid(
            at("time_limit"),
            "give the time limit in seconds, more than 0",
        ));
    }
    let mut sysctls = Vec::new();
    for (h, keys) in &raw.sysctls {
        host(at("sysctls"), h)?;
        for (key, value) in keys {
            if !key.starts_with("net.") {
                return Err(invalid(
                    at("sysctls"),
                    format!("`{key}` is not per namespace: only net.* sysctls can be set in a lab"),
                ));
            }
            sysctls.push((h.clone(), key.clone(), value.as_string()));
        }
    }

    // Names of programs as the steps define them, in order.
    let mut started: HashSet<String> = HashSet::new();
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
        let needs = |n: &str, started: &HashSet<String>| {
            if started.contains(n) {
                Ok(())
            } else {
                Err(invalid(
                    path.key("name"),
                    format!("no program named `{n}` was started before this step"),
                ))
            }
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
                new_name(name, &mut programs)?;
                programs_on.push((h.clone(), name.clone()));
                if matches!(step, Step::Start { .. }) {
                    started.insert(name.clone());
                }
            }
            Step::Ping {
                host: h,
                target,
                name,
                ..
            } => {
                host(path.key("host"), h)?;
                if !hosts.contains(&target.as_str()) && target.parse::<Ipv4Addr>().is_err() {
                    return Err(invalid(
                        path.key("target"),
                        format!("`{target}` is neither a host nor an address"),
                    ));
                }
                new_name(name.as_deref().unwrap_or("ping"), &mut programs)?;
            }
            Step::WaitFor { name, .. }
            | Step::Wait { name }
            | Step::Stop { name }
            | Step::Kill { name } => {
                needs(name, &started)?;
            }
            Step::Firewall { rules } => {
                // The rules must hold in the topology as it stands.
                let mut t = topology_for_check.clone();
                t.firewalls = rules.clone();
                t.resolve().map_err(|e| {
                    invalid(path.key("rules"), format!("{}: {}", e.path, e.message))
                })?;
            }
            Step::SecurityGroup { group, .. } => {
                let exists = groups.contains(&group.as_str())
                    || topo.hosts.iter().any(|h| h.security_groups.contains(group));
                if !exists {
                    return Err(invalid(
                        path.key("group"),
                        format!("no security group named `{group}`"),
                    ));
                }
            }
        }
    }

    let server = |path: FieldPath, text: &str| -> Result<SocketAddrV4, ValidationError> {
        let (h, port) = text.rsplit_once(':').ok_or_else(|| {
            invalid(
                path.clone(),
                format!("`{text}` should be HOST:PORT, e.g. \"server:1234\""),
            )
        })?;
        let port: u16 = port
            .parse()
            .map_err(|_| invalid(path.clone(), format!("`{port}` is not a port")))?;
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
    let mut expectations = Vec::new();
    let mut senders = Vec::new();
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
                code: *code,
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
                senders.push((i, sender.to_string()));
                let connecting = match connecting {
                    Some(p) => Some(program(path.key("program"), p)?),
                    None => {
                        let on: Vec<&str> = programs_on
                            .iter()
                            .filter(|(h, _)| h == sender)
                            .map(|(_, n)| n.as_str())
                            .collect();
                        match on.as_slice() {
                            [] => None,
                            [one] => Some(one.to_string()),
                            many => {
                                return Err(invalid(
                                    path.key("program"),
                                    format!(
                                        "{sender} runs several programs ({}): name the one that connects, e.g. program = \"{}\"",
                                        many.join(", "),
                                        many[0]
                                    ),
                                ));
                            }
                        }
                    }
                };
                Expectation::SynSchedule {
                    program: connecting,
                    host: host_of(h)?,
                    server: srv(s)?,
                    schedule: crate::expect::SynSchedule {
                        linear_timeouts: None,
                        syn_retries: 0,
                        app_timeout: app_timeout.map(Duration::from_secs_f64),
                    },
                    tolerance: tolerance
                        .as_ref()
                        .map_or_else(Tolerance::default, |t| Tolerance {
                            absolute: Duration::from_secs_f64(t.absolute),
                            relative: t.relative,
                        }),
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
                icmp_type: *icmp_type,
                code: *code,
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
            ExpectSpec::ZeroWindow { host: h, server: s } => Expectation::ZeroWindow {
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
    Ok((sysctls, expectations, senders))
}

#[cfg(test)]
mod tests;
