//! A scenario file as written: the topology (a file, plus hosts, groups and firewall rules of
//! its own), sysctls per host, steps, expectations and a time limit.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;
use serde::Deserialize;

use crate::spec::{DropFirst, FirewallRule, HostSpec, Impair, LinkImpair, SecurityGroup, SgRule};
use crate::trace::Side;

/// Seconds a scenario may take when its file does not say.
pub const DEFAULT_TIME_LIMIT: f64 = 60.0;

/// A scenario file as written, before it is checked (see [`crate::scenario::Scenario`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// What the scenario shows, in a sentence (required): the catalog and reports print it.
    pub description: String,
    /// A topology file, relative to the scenario file.
    #[serde(default)]
    pub topology: Option<String>,
    /// The subnet, replacing the topology file's (default: the article's 10.0.0.0/24).
    #[serde(default)]
    pub subnet: Option<Ipv4Net>,
    /// The lab's private DNS domain, as in a topology file.
    #[serde(default)]
    pub domain: Option<String>,
    /// Hosts (`[[host]]`) added to the topology file's, or all of them without one.
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostSpec>,
    /// Security groups (`[[security_group]]`) added to the topology file's.
    #[serde(default, rename = "security_group")]
    pub security_groups: Vec<SecurityGroup>,
    /// Firewall rules (`[[firewall]]`) added to the topology file's.
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
    /// What happens, in order (`[[step]]`).
    #[serde(default, rename = "step")]
    pub steps: Vec<Step>,
    /// What must be true of the run (`[[expect]]`).
    #[serde(default, rename = "expect")]
    pub expectations: Vec<ExpectSpec>,
}

fn default_time_limit() -> f64 {
    DEFAULT_TIME_LIMIT
}

/// A sysctl's value as written: a number or text (the kernel checks it when it is set).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SysctlValue {
    /// `"net.ipv4.tcp_syn_retries" = 1`
    Number(i64),
    /// `"net.ipv4.ip_local_port_range" = "32768 60999"`
    Text(String),
}

impl SysctlValue {
    /// The value as it is written to `/proc/sys`.
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
        /// The host it runs on.
        host: String,
        /// The program's name in steps, expectations and reports; unique in the scenario.
        name: String,
        /// The program and its arguments: a path with a slash is relative to this file, a bare name is one of tcplab's apps or on `PATH`; `${VAR}` comes from the environment.
        command: Vec<String>,
        /// Go on only once the program printed a line containing this.
        #[serde(default)]
        wait_for: Option<String>,
    },
    /// Runs a program on a host to its end.
    Run {
        /// The host it runs on.
        host: String,
        /// The program's name in steps, expectations and reports; unique in the scenario.
        name: String,
        /// The program and its arguments: a path with a slash is relative to this file, a bare name is one of tcplab's apps or on `PATH`; `${VAR}` comes from the environment.
        command: Vec<String>,
        /// Seconds; by default what is left of the time limit.
        #[serde(default)]
        timeout: Option<f64>,
    },
    /// Waits until a started program prints a line containing `line`.
    WaitFor {
        /// The program, as a `start` step named it.
        name: String,
        /// Text the line must contain.
        line: String,
    },
    /// Waits until a started program ends.
    Wait {
        /// The program, as a `start` step named it.
        name: String,
    },
    /// Runs `ping` (iputils) from a host to another host or an address.
    Ping {
        /// The host it runs on.
        host: String,
        /// A host's name or an IPv4 address.
        target: String,
        /// Its name in expectations (default `ping`).
        #[serde(default)]
        name: Option<String>,
        /// Echo requests to send, 1 to `MAX_PING_COUNT` (read wide so that a bad count is
        /// refused with its place, not where serde gave up).
        #[serde(default = "one")]
        count: i64,
    },
    /// Stops a started program as Ctrl+C would (SIGINT) and waits for it to end.
    Stop {
        /// The program, as a `start` step named it.
        name: String,
    },
    /// Kills a started program (SIGKILL): the kernel aborts its connections.
    Kill {
        /// The program, as a `start` step named it.
        name: String,
    },
    /// Replaces a security group's rules while the scenario runs; connections already
    /// established stay up, as AWS tracks them.
    SecurityGroup {
        /// The security group to change (it must exist).
        group: String,
        /// Its new ingress rules; left out: unchanged.
        #[serde(default)]
        ingress: Option<Vec<SgRule>>,
        /// Its new egress rules; left out: unchanged.
        #[serde(default)]
        egress: Option<Vec<SgRule>>,
    },
    /// Replaces a network ACL's entries while the scenario runs; as in AWS, ACLs are
    /// stateless, so established connections whose packets the new entries deny are cut.
    NetworkAcl {
        /// The network ACL to change (it must exist).
        acl: String,
        /// Its new inbound entries; left out: unchanged.
        #[serde(default)]
        inbound: Option<Vec<crate::spec::AclEntry>>,
        /// Its new outbound entries; left out: unchanged.
        #[serde(default)]
        outbound: Option<Vec<crate::spec::AclEntry>>,
    },
    /// Replaces every firewall rule (fabric and hosts) while the scenario runs.
    Firewall {
        /// Every firewall rule from now on (an empty list removes them all).
        rules: Vec<FirewallRule>,
    },
    /// Replaces the impairments of a host's link while the scenario runs, with the keys of a
    /// host's `impair` table; none given removes them. Exact drops count from 0 again.
    Impair {
        /// The host whose link it is.
        host: String,
        /// Seconds each packet is held, both directions.
        #[serde(default)]
        delay: Option<f64>,
        /// Seconds the delay varies by.
        #[serde(default)]
        jitter: Option<f64>,
        /// Percent of packets lost at random.
        #[serde(default)]
        loss: Option<f64>,
        /// Percent of packets sent twice.
        #[serde(default)]
        duplicate: Option<f64>,
        /// Percent of packets sent ahead of the delayed others.
        #[serde(default)]
        reorder: Option<f64>,
        /// Percent of packets corrupted.
        #[serde(default)]
        corrupt: Option<f64>,
        /// The link's rate, e.g. `"1mbit"`.
        #[serde(default)]
        rate: Option<String>,
        /// Drops exactly the first N packets that match.
        #[serde(default)]
        drop: Option<DropFirst>,
        /// What the host sends (instead of the settings above).
        #[serde(default)]
        egress: Option<Box<LinkImpair>>,
        /// What the host receives (instead of the settings above).
        #[serde(default)]
        ingress: Option<Box<LinkImpair>>,
    },
}

impl Step {
    /// An `impair` step's settings as a host's `impair` table; `None` for other steps.
    pub fn impairment(&self) -> Option<(&str, Impair)> {
        match self {
            Step::Impair {
                host,
                delay,
                jitter,
                loss,
                duplicate,
                reorder,
                corrupt,
                rate,
                drop,
                egress,
                ingress,
            } => Some((
                host,
                Impair {
                    delay: *delay,
                    jitter: *jitter,
                    loss: *loss,
                    duplicate: *duplicate,
                    reorder: *reorder,
                    corrupt: *corrupt,
                    rate: rate.clone(),
                    drop: drop.clone(),
                    egress: egress.as_deref().cloned(),
                    ingress: ingress.as_deref().cloned(),
                },
            )),
            _ => None,
        }
    }
}

fn one() -> i64 {
    1
}

fn client_side() -> Side {
    Side::Client
}

/// A time tolerance as written: `absolute + relative * expected`.
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
    /// One of tcplab's apps ended with this error class.
    Class {
        /// A program a step named.
        program: String,
        /// An error class: `ok`, `connect-timeout`, `connection-refused`, `host-unreachable`, `network-unreachable`, `connection-reset`, `read-timeout`, `address-in-use` or `other`.
        class: String,
    },
    /// A program exited with this code (any program).
    Exit {
        /// A program a step named.
        program: String,
        /// 0 to 255, read wide as `count` is.
        code: i64,
    },
    /// A program printed a line containing `line`.
    Output {
        /// A program a step named.
        program: String,
        /// Text a line of the program's output must contain.
        line: String,
    },
    /// The SYNs of the one connection to `server` on `host`'s capture follow the kernel's retransmission schedule (from `sender`'s sysctls and `app_timeout`), the first right after `program` started.
    SynSchedule {
        /// Whose capture: a host, or `fabric:HOST` for its bridge port.
        host: String,
        /// `HOST:PORT` or `ADDRESS:PORT` of the server the connection is to.
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
        /// How far SYN times may be off (default 0.1 s + 5%).
        #[serde(default)]
        tolerance: Option<ToleranceSpec>,
    },
    /// No packet of any connection to `server` on `host`'s capture.
    NoFlow {
        /// Whose capture: a host, or `fabric:HOST` for its bridge port.
        host: String,
        /// `HOST:PORT` or `ADDRESS:PORT` of the server the connection is to.
        server: String,
    },
    /// No IP packet at all on `host`'s capture (ARP aside).
    NoIpPackets {
        /// Whose capture: a host, or `fabric:HOST` for its bridge port.
        host: String,
    },
    /// A connection to `server` completed its three-way handshake on `host`'s capture.
    Handshake {
        /// Whose capture: a host, or `fabric:HOST` for its bridge port.
        host: String,
        /// `HOST:PORT` or `ADDRESS:PORT` of the server the connection is to.
        server: String,
    },
    /// A connection to `server` was reset by `by`, on `host`'s capture.
    ResetBy {
        /// Whose capture: a host, or `fabric:HOST` for its bridge port.
        host: String,
        /// `HOST:PORT` or `ADDRESS:PORT` of the server the connection is to.
        server: String,
        /// Who sent the reset: `client` or `server`.
        by: Side,
    },
    /// SYNs to `server` went out on `host`'s capture and nothing answered: no SYN-ACK, RST or ICMP error.
    NoAnswer {
        /// Whose capture: a host, or `fabric:HOST` for its bridge port.
        host: String,
        /// `HOST:PORT` or `ADDRESS:PORT` of the server the connection is to.
        server: String,
    },
    /// An ICMP error of this type and code quotes a packet to `server` (of a TCP connection or a UDP datagram), on `host`'s capture.
    Icmp {
        /// Whose capture: a host, or `fabric:HOST` for its bridge port.
        host: String,
        /// `HOST:PORT` or `ADDRESS:PORT` of the server the connection is to.
        server: String,
        /// 0 to 255, read wide as `count` is.
        #[serde(rename = "type")]
        icmp_type: i64,
        /// 0 to 255.
        code: i64,
    },
    /// The client's payload to `server` contains `text`, seen on each of `hosts` in one connection.
    Payload {
        /// Text the payload must contain.
        text: String,
        /// `HOST:PORT` or `ADDRESS:PORT` of the server the connection is to.
        server: String,
        /// The captures it must be seen on, all in one connection.
        hosts: Vec<String>,
    },
    /// The client's packets to `server` crossed `hops` routers between the captures of
    /// `hosts[0]` (near the client) and `hosts[1]` (near the server): the TTL tells.
    Hops {
        /// `HOST:PORT` or `ADDRESS:PORT` of the server the connection is to.
        server: String,
        /// Two captures: the one nearer the client, then the one nearer the server.
        hosts: Vec<String>,
        /// Routers crossed, 0 to 255 (read wide, as `count` is).
        hops: i64,
    },
    /// `server` advertised a zero window and the client kept probing it, on `host`'s capture.
    ZeroWindow {
        /// Whose capture: a host, or `fabric:HOST` for its bridge port.
        host: String,
        /// `HOST:PORT` or `ADDRESS:PORT` of the server the connection is to.
        server: String,
    },
    /// Rules of the lab stopped packets to `server`, and every packet they stopped was
    /// stopped by `by`: `security-group:NAME`, `firewall:N` (the N-th firewall rule, from 1)
    /// or `firewall:HOST` (any firewall rule on that host).
    DroppedBy {
        /// `HOST:PORT` or `ADDRESS:PORT` of the server the packets were going to.
        server: String,
        /// The rule: `security-group:NAME`, `firewall:N` or `firewall:HOST`.
        by: String,
        /// Only packets from this host (or address).
        #[serde(default)]
        from: Option<String>,
    },
    /// Packets to `server` were let through by `by`: `security-group:NAME` (one of its
    /// rules), or `established` (the groups' connection tracking).
    AllowedBy {
        /// `HOST:PORT` or `ADDRESS:PORT` of the server the packets were going to.
        server: String,
        /// The rule: `security-group:NAME` or `established`.
        by: String,
        /// Only packets from this host (or address).
        #[serde(default)]
        from: Option<String>,
    },
    /// The first answered connection to `server` got its SYN-ACK `rtt` seconds after its first SYN, on `host`'s capture (with `syns`: after that many SYNs).
    HandshakeRtt {
        /// Whose capture: a host, or `fabric:HOST` for its bridge port.
        host: String,
        /// `HOST:PORT` or `ADDRESS:PORT` of the server the connection is to.
        server: String,
        /// Seconds from the first SYN to the SYN-ACK.
        rtt: f64,
        /// How many SYNs went out before the SYN-ACK (read wide as `count` is).
        #[serde(default)]
        syns: Option<i64>,
        /// How far the time may be off (default 0.1 s + 5%).
        #[serde(default)]
        tolerance: Option<ToleranceSpec>,
    },
    /// `from` (`client`, the default, or `server`) sent data again in a connection to `server`, on `host`'s capture.
    Retransmissions {
        /// Whose capture: a host, or `fabric:HOST` for its bridge port.
        host: String,
        /// `HOST:PORT` or `ADDRESS:PORT` of the server the connection is to.
        server: String,
        /// Who resent: `client` or `server`.
        #[serde(default = "client_side")]
        from: Side,
    },
    /// UDP datagrams to `server` (or, with `from = "server"`, its answers) on `host`'s capture: exactly `count`, or at least one; each containing `text` when given.
    Datagrams {
        /// Whose capture: a host, or `fabric:HOST` for its bridge port.
        host: String,
        /// `HOST:PORT` or `ADDRESS:PORT` of the server the datagrams go to.
        server: String,
        /// Who sent them: `client` (to the server, the default) or `server` (its answers).
        #[serde(default)]
        from: Option<Side>,
        /// How many exactly, 0 to `MAX_DATAGRAMS` (read wide as a ping's `count` is); left out: at least one.
        #[serde(default)]
        count: Option<i64>,
        /// Text each counted datagram's payload must contain.
        #[serde(default)]
        text: Option<String>,
    },
    /// No UDP datagram to or from `server` on `host`'s capture.
    NoDatagrams {
        /// Whose capture: a host, or `fabric:HOST` for its bridge port.
        host: String,
        /// `HOST:PORT` or `ADDRESS:PORT` of the server the datagrams would go to.
        server: String,
    },
    /// ARP asked for `target` on `host`'s capture and nobody answered.
    UnansweredArp {
        /// Whose capture: a host, or `fabric:HOST` for its bridge port.
        host: String,
        /// The IPv4 address ARP asked for.
        target: String,
    },
}
