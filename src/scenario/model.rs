//! A scenario file as written: the topology (a file, plus hosts, groups and firewall rules of
//! its own), sysctls per host, steps, expectations and a time limit.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;
use serde::Deserialize;

use crate::spec::{FirewallRule, HostSpec, SecurityGroup, SgRule};
use crate::trace::Side;

pub const DEFAULT_TIME_LIMIT: f64 = 60.0;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub description: String,
    /// A topology file, relative to the scenario file.
    #[serde(default)]
    pub topology: Option<String>,
    #[serde(default)]
    pub subnet: Option<Ipv4Net>,
    /// The lab's private DNS domain, as in a topology file.
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostSpec>,
    #[serde(default, rename = "security_group")]
    pub security_groups: Vec<SecurityGroup>,
    #[serde(default, rename = "firewall")]
    pub firewalls: Vec<FirewallRule>,
    /// Per host: `net.*` sysctls set before the first step.
    #[serde(default)]
    pub sysctls: BTreeMap<String, BTreeMap<String, SysctlValue>>,
    /// Also capture each host's port on the bridge, as `fabric:HOST`.
    #[serde(default)]
    pub capture_bridge_ports: bool,
    /// Seconds the whole scenario may take.
    #[serde(default = "default_time_limit")]
    pub time_limit: f64,
    #[serde(default, rename = "step")]
    pub steps: Vec<Step>,
    #[serde(default, rename = "expect")]
    pub expectations: Vec<ExpectSpec>,
}

fn default_time_limit() -> f64 {
    DEFAULT_TIME_LIMIT
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SysctlValue {
    Number(i64),
    Text(String),
}

impl SysctlValue {
    pub fn as_string(&self) -> String {
        match self {
            SysctlValue::Number(n) => n.to_string(),
            SysctlValue::Text(t) => t.clone(),
        }
    }
}

/// One thing the scenario does, in order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// Starts a program on a host and goes on (optionally once it printed `wait_for`).
    Start {
        host: String,
        name: String,
        command: Vec<String>,
        #[serde(default)]
        wait_for: Option<String>,
    },
    /// Runs a program on a host to its end.
    Run {
        host: String,
        name: String,
        command: Vec<String>,
        /// Seconds; by default what is left of the time limit.
        #[serde(default)]
        timeout: Option<f64>,
    },
    /// Waits until a started program prints a line containing `line`.
    WaitFor { name: String, line: String },
    /// Waits until a started program ends.
    Wait { name: String },
    /// Runs `ping` (iputils) from a host to another host or an address.
    Ping {
        host: String,
        target: String,
        #[serde(default)]
        name: Option<String>,
        /// Echo requests to send, 1 to `MAX_PING_COUNT` (read wide so that a bad count is
        /// refused with its place, not where serde gave up).
        #[serde(default = "one")]
        count: i64,
    },
    /// Stops a started program as Ctrl+C would (SIGINT) and waits for it to end.
    Stop { name: String },
    /// Kills a started program (SIGKILL): the kernel aborts its connections.
    Kill { name: String },
    /// Replaces a security group's rules while the scenario runs; connections already
    /// established stay up, as AWS tracks them.
    SecurityGroup {
        group: String,
        #[serde(default)]
        ingress: Option<Vec<SgRule>>,
        #[serde(default)]
        egress: Option<Vec<SgRule>>,
    },
    /// Replaces every firewall rule (fabric and hosts) while the scenario runs.
    Firewall { rules: Vec<FirewallRule> },
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToleranceSpec {
    /// Seconds.
    pub absolute: f64,
    /// A fraction of the expected time, e.g. 0.05.
    pub relative: f64,
}

/// One expectation as written; `server` is `HOST:PORT` or `ADDRESS:PORT`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ExpectSpec {
    Class {
        program: String,
        class: String,
    },
    Exit {
        program: String,
        /// 0 to 255, read wide as `count` is.
        code: i64,
    },
    Output {
        program: String,
        line: String,
    },
    SynSchedule {
        host: String,
        server: String,
        /// The host whose sysctls time the SYNs: the client (default: `host`).
        #[serde(default)]
        sender: Option<String>,
        /// The client's own connect timeout in seconds, if it has one.
        #[serde(default)]
        app_timeout: Option<f64>,
        /// The program that connects: its first SYN must leave right after it starts.
        /// Default: the one program started on `sender`.
        #[serde(default)]
        program: Option<String>,
        #[serde(default)]
        tolerance: Option<ToleranceSpec>,
    },
    NoFlow {
        host: String,
        server: String,
    },
    NoIpPackets {
        host: String,
    },
    Handshake {
        host: String,
        server: String,
    },
    ResetBy {
        host: String,
        server: String,
        by: Side,
    },
    NoAnswer {
        host: String,
        server: String,
    },
    Icmp {
        host: String,
        server: String,
        /// 0 to 255, read wide as `count` is.
        #[serde(rename = "type")]
        icmp_type: i64,
        /// 0 to 255.
        code: i64,
    },
    Payload {
        text: String,
        server: String,
        hosts: Vec<String>,
    },
    ZeroWindow {
        host: String,
        server: String,
    },
    UnansweredArp {
        host: String,
        target: String,
    },
}
