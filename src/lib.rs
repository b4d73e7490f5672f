//! tcplab reproduces cloud TCP connectivity failures (connect timeouts, refused connections,
//! unreachable hosts, resets...) on one Linux machine, and checks them on the wire, in
//! `cargo test`.
//!
//! A lab is a set of hosts on one subnet, or a VPC of several subnets joined by a router
//! with route tables and network ACLs: each host is a network namespace with `eth0` on its
//! subnet's bridge, and nftables rules play the security groups (AWS semantics) and firewalls
//! between them; every packet a rule stops is tied to that rule ([`attribution`]). Programs run in the hosts (any program: `curl`, `python3 -m http.server`, your own
//! binary or your own Rust code), every host's traffic is captured, and expectations are
//! checked against what the programs did and what the wire showed. Everything a lab makes
//! disappears when it is dropped, or when the process holding it dies; the machine's own
//! network is never touched.
//!
//! Building a lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN): the examples that build one
//! are `no_run` here, and the same code runs in the crate's integration tests.
//!
//! # Topologies
//! A topology names the subnet, the hosts, their security groups and the firewall rules. It
//! is a TOML file ([`Lab::from_file`]) or a value built in Rust; validating it needs nothing
//! from the kernel:
//! ```
//! use tcplab::{HostSpec, SecurityGroup, SgRule, Topology};
//!
//! let topology = Topology::default() // 10.0.0.0/24
//!     .host(HostSpec::new("server").group("web"))
//!     .host(HostSpec::new("client"))
//!     .security_group(SecurityGroup::new("web").ingress(SgRule::tcp(8080).cidr("10.0.0.0/24".parse().unwrap())));
//! let resolved = topology.resolve()?; // addresses assigned, rules checked
//! assert_eq!(resolved.hosts.len(), 2);
//! assert!(resolved.hosts.iter().all(|h| resolved.subnet.contains(&h.address)));
//! # Ok::<(), tcplab::spec::ValidationError>(())
//! ```
//!
//! # A lab
//! [`Lab`] builds a topology and hands it over when every link forwards. [`Host`] runs
//! programs ([`Host::spawn`], [`Host::run`]) and the caller's own code ([`Host::run_fn`]) in
//! the host's namespace; in every program, each host's name resolves to its address.
//! ```no_run
//! use std::time::Duration;
//! use tcplab::Lab;
//!
//! # fn main() -> Result<(), tcplab::LabError> {
//! let lab = Lab::from_file("fixtures/topologies/article.toml")?;
//! let server = lab.host("server")?;
//! println!("{} is {}", server.name(), server.address());
//! let reached = lab.host("client-1")?.run_fn(|| {
//!     let to = std::net::SocketAddr::from(([10, 0, 0, 58], 1235));
//!     std::net::TcpStream::connect_timeout(&to, Duration::from_secs(2)).is_ok()
//! })?;
//! assert!(!reached, "the security group drops port 1235");
//! # Ok(()) }
//! ```
//!
//! # Tests: sessions and expectations
//! [`Lab::record`] starts a [`Session`]: every host is captured while programs run
//! ([`Session::spawn`], [`Session::run`], [`Session::wait_listening`]), then
//! [`Session::check`] checks [`expect`]ations built by name (`"server:8080"`) and returns the
//! verdict, or an error holding the whole report with where the pcaps were kept.
//! [`privileged`] makes a test that needs root fail with how to run it, or skip on purpose.
//! ```no_run
//! use std::time::Duration;
//! use tcplab::{Lab, expect};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! if !tcplab::privileged() {
//!     return Ok(()); // TCPLAB_SKIP_PRIVILEGED=1 without root: skipped, and said so
//! }
//! let lab = Lab::from_file("fixtures/topologies/article.toml")?;
//! let run = lab.record()?;
//! let _server = run.spawn("server", ["python3", "-m", "http.server", "1235"])?;
//! run.wait_listening("server", 1235, Duration::from_secs(5))?;
//! let curl = run.run("client-1", ["curl", "-sS", "--connect-timeout", "3", "http://server:1235/"])?;
//! run.check([
//!     expect::exit(&curl, 28),
//!     expect::took(&curl, Duration::from_secs(3)),
//!     expect::syn_retransmissions("client-1", "server:1235"),
//!     expect::no_flow("server", "server:1235"),
//! ])?;
//! # Ok(()) }
//! ```
//!
//! # Scenarios
//! A [`Scenario`] file holds a topology, sysctls, steps and expectations; [`scenario::run`]
//! runs it (the same engine as `tcplab run`) and [`Report`] renders the result as text, JSON
//! or one self-contained HTML page with a ladder diagram per conversation
//! ([`Report::save`] writes `report.json` and `report.html` into a run's folder, and
//! [`report::load`] reads such a folder back). tcplab's own apps (`tcp-server`, `tcp-client`...) that a scenario names are found, or
//! built once, from any crate (see [`apps::locate`]):
//! ```no_run
//! use tcplab::{Report, RunOptions, Scenario};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let scenario = Scenario::from_file("fixtures/scenarios/connect-timeout.toml")?;
//! let run = tcplab::scenario::run(&scenario, RunOptions::default())?;
//! let report = Report::new(&scenario, &run);
//! assert!(report.passed, "{}", report.text());
//! # Ok(()) }
//! ```
//!
//! # Captures and traces
//! A capture's frames ([`capture::Captured`]) decode into a [`Trace`]: packets, TCP flows by
//! four-tuple, and tcpdump-like lines. Sessions and scenarios do this for you; a trace can
//! also be read on its own:
//! ```
//! use std::time::Duration;
//! use tcplab::Trace;
//! use tcplab::capture::{Captured, Direction, Frame};
//!
//! # let mut syn = Vec::new();
//! # etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
//! #     .ipv4([10, 0, 0, 5], [10, 0, 0, 58], 64)
//! #     .tcp(40000, 1235, 1, 64240)
//! #     .syn()
//! #     .write(&mut syn, &[])
//! #     .unwrap();
//! // `syn`: the bytes of an Ethernet frame holding a SYN from 10.0.0.5 to 10.0.0.58:1235
//! let captured = Captured {
//!     host: "client-1".into(),
//!     interface: "eth0".into(),
//!     frames: vec![Frame {
//!         at: Duration::from_secs(1),
//!         direction: Direction::Out,
//!         original_len: syn.len(),
//!         data: syn,
//!     }],
//!     drops: 0,
//! };
//! let trace = Trace::new(&captured);
//! assert_eq!(trace.flows_to("10.0.0.58:1235".parse().unwrap()).count(), 1);
//! println!("{}", trace.line(0, Duration::from_secs(1)));
//! ```

#![warn(missing_docs)]

pub mod apps;
pub mod attribution;
pub mod capture;
pub mod contain;
pub mod error_class;
pub mod escape;
pub mod expect;
pub mod firewall;
pub mod import;
pub mod lab;
pub mod netns;
mod nfnetlink;
pub mod output;
pub mod proc;
pub mod report;
mod ruletrace;
pub mod scenario;
pub mod session;
pub mod spec;
pub mod trace;
pub mod units;
pub mod wire;

pub use error_class::ErrorClass;
pub use expect::{Expect, Verdict};
pub use lab::{Host, Lab, LabError};
pub use proc::Outcome;
pub use report::Report;
pub use scenario::{Run, RunOptions, Scenario, ScenarioError};
pub use session::{Program, Session, SessionError, privileged};
pub use spec::{FirewallRule, HostSpec, SecurityGroup, SgRule, Topology};
pub use trace::Trace;

// The README's Rust examples compile as doctests (those that need root do not run here; the
// same code runs in the integration tests).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
