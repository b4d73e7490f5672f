//! A lab: the fabric namespace with its bridge (the subnet), one namespace per host, and the
//! nftables rules of the security groups and firewalls. Everything vanishes when the Lab is
//! dropped, and when the process holding it dies.

mod build;
mod delayline;
pub(crate) use delayline::DELAY_TABLE;
mod impair;
mod limits;
mod preflight;
mod ready;
mod recording;
pub(crate) mod rules;
pub(crate) mod vpc;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::capture::CaptureError;
use crate::firewall::FirewallError;
use crate::netns::{Namespace, NetnsError};
use crate::proc::{Outcome, Proc, ProcError};
pub use crate::ruletrace::TraceError;
pub use crate::spec::BRIDGE;
use crate::spec::{Placement, Resolved, SpecError, Topology, ValidationError};
use rules::RuleBook;

/// How a lab is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabOptions {
    /// Whether the lab's rules mark packets for nftables tracing, so that each packet is tied
    /// to the rule that let it through, dropped or rejected it (see [`crate::attribution`]).
    /// On by default; the README's benchmark section says what it costs.
    pub trace_rules: bool,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions { trace_rules: true }
    }
}
pub use impair::{
    DELAY_LINE_VARIABLE, DUPLICATE_HINT, delay_line_available, delays_in_user_space,
    netem_available,
};
pub use preflight::check_privileges;
pub use recording::{Recorded, Recording, port_capture_name};
pub use vpc::bridge_name;

/// Why a lab could not be built, or a host could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The topology is invalid.
    #[error("invalid topology: {0}")]
    Spec(#[from] ValidationError),
    /// The topology file cannot be read or parsed.
    #[error(transparent)]
    SpecFile(#[from] SpecError),
    #[error(
        "tcplab needs {missing} to build a lab: run it as root (sudo), or in a container started with --privileged"
    )]
    /// Not privileged enough to build a lab.
    Privilege {
        /// The capabilities missing.
        missing: String,
    },
    /// The kernel lacks something a lab needs.
    #[error("the kernel lacks {feature}: {hint}")]
    KernelFeature {
        /// What is missing.
        feature: &'static str,
        /// How to get it.
        hint: &'static str,
    },
    /// A namespace could not be made or used.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// A netlink request to the kernel failed (making links, addresses, routes, reading link
    /// states). The source is the netlink library's error, boxed so that this type does not
    /// tie callers to that library's version.
    #[error("cannot {what}: {source}")]
    Netlink {
        /// What was being done.
        what: String,
        /// The kernel's or the netlink library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A system call or file operation failed.
    #[error("cannot {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A sysctl could not be set.
    #[error("cannot set {path}: {source}")]
    Sysctl {
        /// Its path under /proc/sys.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the links of {whose} did not become ready within {} s: {links}. The kernel did not finish bringing them up; is the machine overloaded?",
        within.as_secs()
    )]
    /// Links did not report ready in time.
    NotReady {
        /// The namespace whose links these are.
        whose: String,
        /// How long it waited.
        within: Duration,
        /// Each link still not ready, and what it lacked.
        links: String,
    },
    #[error(
        "tcplab ran out of file descriptors (limit {limit}; a lab holds about 3 per host while it is built): raise the limit (`ulimit -n`, LimitNOFILE= for a service) or build fewer hosts ({source})"
    )]
    /// The process ran out of file descriptors while building.
    OutOfFiles {
        /// The failure as it happened.
        source: Box<LabError>,
        /// The process's limit (`ulimit -n`).
        limit: u64,
    },
    /// The security groups or firewall rules could not be loaded.
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error("no host named `{name}` in this lab (hosts: {known})")]
    /// The lab has no host of that name.
    NoSuchHost {
        /// The name asked for.
        name: String,
        /// The lab's hosts.
        known: String,
    },
    /// A program could not be started or waited for.
    #[error(transparent)]
    Proc(#[from] ProcError),
    /// A capture failed.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Listening to the rules' trace events failed.
    #[error(transparent)]
    Trace(#[from] TraceError),
}

/// Whether a build failed for want of file descriptors, wherever in it that happened.
fn ran_out_of_files(e: &LabError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(limits::out_of_files)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A host: a namespace with `lo` and `eth0` on the subnet.
pub struct Host {
    name: String,
    address: Ipv4Addr,
    ns: Namespace,
}

impl Host {
    /// The host's name in the topology; it resolves to [`Host::address`] in every program of the lab.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host's address on the lab's subnet (its `eth0`).
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The host's namespace, for sockets, sysctls and jobs of one's own.
    pub fn ns(&self) -> &Namespace {
        &self.ns
    }

    /// Starts a program in the host. It is killed when the handle is dropped, and when the
    /// lab goes.
    pub fn spawn(&self, cmd: Command) -> Result<Proc, LabError> {
        Ok(self.ns.spawn(cmd)?)
    }

    /// Runs a program in the host to its end, for at most `timeout`.
    pub fn run(&self, cmd: Command, timeout: Duration) -> Result<Outcome, LabError> {
        Ok(self.spawn(cmd)?.wait(timeout)?)
    }

    /// Runs `f` on a new thread inside the host's network namespace and returns its value:
    /// sockets `f` opens belong to the host, so the caller's own client or server code can
    /// run in a lab. The host's worker is not involved (a slow `f` delays nothing else), and
    /// only the network namespace changes: files, `/sys` and the rest are the caller's.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), tcplab::lab::LabError> {
    /// let lab = tcplab::lab::Lab::from_file("fixtures/topologies/article.toml")?;
    /// let reached = lab.host("client-1")?.run_fn(|| {
    ///     std::net::TcpStream::connect_timeout(
    ///         &"10.0.0.58:1235".parse().unwrap(),
    ///         std::time::Duration::from_secs(2),
    ///     )
    ///     .is_ok()
    /// })?;
    /// assert!(!reached, "the security group drops port 1235");
    /// # Ok(()) }
    /// ```
    pub fn run_fn<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
        let fd = self.ns_fd()?;
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name(format!("tcplab-in-{}", self.name))
                .spawn_scoped(scope, move || enter(&fd).map(|()| f()))
                .map_err(|source| LabError::Io {
                    what: format!("start a thread for host {}", self.name),
                    source,
                })?;
            match thread.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Like [`Host::run_fn`], without waiting: `f` runs on its own thread in the host while
    /// the caller goes on; [`InHost::join`] returns its value.
    pub fn spawn_fn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<InHost<T>, LabError> {
        let fd = self.ns_fd()?;
        let thread = std::thread::Builder::new()
            .name(format!("tcplab-in-{}", self.name))
            .spawn(move || enter(&fd).map(|()| f()))
            .map_err(|source| LabError::Io {
                what: format!("start a thread for host {}", self.name),
                source,
            })?;
        Ok(InHost(thread))
    }

    fn ns_fd(&self) -> Result<std::os::fd::OwnedFd, LabError> {
        use std::os::fd::AsFd;
        self.ns
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| LabError::Io {
                what: format!("hold host {}'s namespace", self.name),
                source,
            })
    }

    /// Reads a `net.*` sysctl of the host, e.g. `net.ipv4.tcp_syn_retries`.
    pub fn sysctl(&self, key: &str) -> Result<String, LabError> {
        Ok(self.ns.sysctl(key)?)
    }

    /// Sets a `net.*` sysctl of the host; the machine's own is untouched.
    pub fn set_sysctl(&self, key: &str, value: &str) -> Result<(), LabError> {
        Ok(self.ns.set_sysctl(key, value)?)
    }
}

/// Moves the calling thread into the network namespace `fd` refers to.
fn enter(fd: &std::os::fd::OwnedFd) -> Result<(), LabError> {
    nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| LabError::Io {
        what: "enter a host's network namespace".into(),
        source: e.into(),
    })
}

/// Code of the caller's running in a host (see [`Host::spawn_fn`]).
pub struct InHost<T>(std::thread::JoinHandle<Result<T, LabError>>);

impl<T> InHost<T> {
    /// Waits for the code to finish and returns its value; a panic in it resumes here.
    pub fn join(self) -> Result<T, LabError> {
        match self.0.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Whether the code has finished.
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

/// A built topology: a namespace per host on one bridge, security groups and firewalls
/// loaded. Dropping it removes everything (namespaces, links, rules, programs still running),
/// and so does the end of the process, however it ends.
///
/// ```no_run
/// use tcplab::{HostSpec, Lab, Topology};
///
/// # fn main() -> Result<(), tcplab::LabError> {
/// let lab = Lab::build(&Topology::default().host(HostSpec::new("a")).host(HostSpec::new("b")))?;
/// let ping = {
///     let mut c = std::process::Command::new("ping");
///     c.args(["-c", "1", "b"]);
///     c
/// };
/// let outcome = lab.host("a")?.run(ping, std::time::Duration::from_secs(5))?;
/// assert!(outcome.status.success(), "{}", outcome.transcript());
/// # Ok(()) }
/// ```
pub struct Lab {
    // The delay line goes first: its sockets hold the namespaces they were opened in.
    delay: impair::DelaySlot,
    // Hosts go first: their threads' exit kills their programs before the fabric goes.
    hosts: Vec<Host>,
    fabric: Namespace,
    /// The VPC router, when the topology has a VPC.
    router: Option<Namespace>,
    resolved: Resolved,
    rules: std::sync::Arc<std::sync::Mutex<RuleBook>>,
    /// What each host's link is impaired with now, in the hosts' order.
    impairs: std::sync::Mutex<Vec<impair::Applied>>,
}

impl Lab {
    /// Validates `topology` and builds it.
    pub fn build(topology: &Topology) -> Result<Lab, LabError> {
        Lab::from_resolved(topology.resolve()?)
    }

    /// Reads a topology file and builds it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Lab, LabError> {
        let (_, resolved) = Topology::from_file(path)?;
        Lab::from_resolved(resolved)
    }

    /// Builds a topology already resolved (see [`Topology::resolve`]).
    pub fn from_resolved(resolved: Resolved) -> Result<Lab, LabError> {
        Lab::from_resolved_with(resolved, LabOptions::default())
    }

    /// Like [`Lab::from_resolved`], with `options`.
    pub fn from_resolved_with(resolved: Resolved, options: LabOptions) -> Result<Lab, LabError> {
        let mut book = RuleBook::new(options.trace_rules);
        let built = build::build(&resolved, &mut book).map_err(|e| {
            if ran_out_of_files(&e) {
                LabError::OutOfFiles {
                    source: Box::new(e),
                    limit: limits::nofile_limit().unwrap_or_default(),
                }
            } else {
                e
            }
        })?;
        Ok(Lab {
            hosts: built.hosts,
            fabric: built.fabric,
            router: built.router,
            resolved,
            rules: std::sync::Arc::new(std::sync::Mutex::new(book)),
            impairs: std::sync::Mutex::new(built.impairs),
            delay: built.delay,
        })
    }

    /// Whether this lab's links go through tcplab's delay line in user space (delays on a
    /// kernel without netem): `None` when they do not; else `Err` with the first thing that
    /// went wrong in it (a packet it could not give back was lost, which a run reports as
    /// a failed check), or `Ok`.
    pub fn delay_line(&self) -> Option<Result<(), String>> {
        let state = self.delay.lock().unwrap_or_else(|e| e.into_inner());
        let line = state.line.as_ref().filter(|l| l.in_use())?;
        if let Some(e) = line.failure() {
            return Some(Err(e));
        }
        // The kernel's own drops: a full queue, or a socket that could not take a packet.
        for link in line.links() {
            let (ns, place) = match link.direction {
                crate::spec::LinkDirection::Egress => (
                    &self.hosts[link.host].ns,
                    format!("what host {} sends", self.hosts[link.host].name),
                ),
                crate::spec::LinkDirection::Ingress => (
                    &self.fabric,
                    format!("what host {} receives", self.hosts[link.host].name),
                ),
            };
            let Some(queue) = link.queue() else { continue };
            match ns.run(move |_| delayline::queue_drops(queue)) {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => {
                    return Some(Err(format!(
                        "the kernel dropped {n} packets of {place}: more than {} were waiting",
                        delayline::QUEUE_LIMIT
                    )));
                }
                Ok(Err(e)) => return Some(Err(format!("cannot read its queue's counters: {e}"))),
                Err(e) => return Some(Err(format!("cannot read its queue's counters: {e}"))),
            }
        }
        Some(Ok(()))
    }

    /// The VPC router's namespace, when the topology has a VPC.
    pub fn router(&self) -> Option<&Namespace> {
        self.router.as_ref()
    }

    /// The host named `name`; the error lists the lab's hosts.
    pub fn host(&self, name: &str) -> Result<&Host, LabError> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| LabError::NoSuchHost {
                name: name.to_string(),
                known: self
                    .hosts
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Every host, in the topology's order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The namespace between the hosts: the bridge, one port per host named after it, and
    /// the security groups.
    pub fn fabric(&self) -> &Namespace {
        &self.fabric
    }

    /// The topology as built: hosts with their addresses, rules with addresses.
    pub fn topology(&self) -> &Resolved {
        &self.resolved
    }

    /// Pins every namespace under /run/netns as `NAME-fabric` and `NAME-HOST`, so that the
    /// lab outlives this process and `ip netns exec NAME-HOST ...` reaches its hosts. Returns
    /// the pins; on failure none is left.
    ///
    /// A lab whose links go through tcplab's delay line (a kernel without netem) cannot be
    /// pinned: its packets would wait for this process after it is gone.
    pub fn pin(&mut self, name: &str) -> Result<Vec<(String, std::path::PathBuf)>, LabError> {
        let mut delay = self.delay.lock().unwrap_or_else(|e| e.into_inner());
        if delay.line.as_ref().is_some_and(|l| l.in_use()) {
            return Err(LabError::KernelFeature {
                feature: impair::NETEM,
                hint: impair::PIN_HINT,
            });
        }
        // From now on the lab refuses the delay line (see `impair`).
        delay.pinned = true;
        drop(delay);
        let mut pinned: Vec<(String, std::path::PathBuf)> = Vec::new();
        let targets = std::iter::once((format!("{name}-fabric"), &mut self.fabric))
            .chain(self.router.as_mut().map(|r| (format!("{name}-router"), r)))
            .chain(
                self.hosts
                    .iter_mut()
                    .map(|h| (format!("{name}-{}", h.name), &mut h.ns)),
            );
        for (pin_name, ns) in targets {
            match ns.pin(&pin_name) {
                Ok(path) => pinned.push((pin_name, path)),
                Err(e) => {
                    for (_, path) in &pinned {
                        let _ = crate::netns::unpin_path(path);
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(pinned)
    }

    /// Replaces every security group and firewall rule with those of `resolved` (the same
    /// hosts), atomically per namespace: connections already established stay up, as AWS
    /// tracks them, unless a new firewall rule stops their packets.
    pub fn update_rules(&self, resolved: &Resolved) -> Result<(), LabError> {
        self.update_rules_for(resolved, None)
    }

    /// Like [`Lab::update_rules`]; `why` (e.g. `step 4`) names the change in reports of
    /// which rule stopped a packet.
    pub fn update_rules_for(&self, resolved: &Resolved, why: Option<&str>) -> Result<(), LabError> {
        use crate::firewall::{Build, Mode, Table, fabric_tables_for, host_table, load};
        let mut book = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let revision = book.next_revision(why);
        let build = Build {
            revision,
            trace: book.trace,
        };
        let mut jobs: Vec<(Placement, &crate::netns::Namespace, Vec<Table>, String)> = Vec::new();
        for (i, h) in self.hosts.iter().enumerate() {
            let tables: Vec<Table> = host_table(resolved, i, build).into_iter().collect();
            jobs.push((
                Placement::Host(i),
                &h.ns,
                tables,
                format!("updated firewall of host {}", h.name),
            ));
        }
        jobs.push((
            Placement::Fabric,
            &self.fabric,
            fabric_tables_for(resolved, |h| h.name.clone(), build),
            "updated security groups and firewalls of the fabric".into(),
        ));
        if let Some(router) = &self.router {
            jobs.push((
                Placement::Router,
                router,
                crate::firewall::router_tables(resolved, build),
                "updated network ACLs of the VPC router".into(),
            ));
        }
        let pending: Vec<_> = jobs
            .into_iter()
            .map(|(place, ns, mut tables, what)| {
                book.label(revision, &mut tables);
                let old = book.current(place);
                let job = ns.submit(move |_| {
                    let loaded = load(&tables, Mode::Replace(old), &what)?;
                    Ok::<_, crate::firewall::FirewallError>((tables, loaded))
                });
                (place, job)
            })
            .collect();
        for (place, p) in pending {
            let (tables, loaded) = p.wait()??;
            book.loaded(place, &tables, loaded);
        }
        Ok(())
    }
}
