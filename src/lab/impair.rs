//! Link impairments: netem qdiscs over netlink; losses (random or exact) as nftables rules.
//!
//! A host's link is its `eth0` (in the host) and its port on the bridge (in the fabric).
//! What the host sends is impaired by a netem root qdisc on `eth0`; what it receives, by one
//! on its port, whose egress is the way to the host. A capture sees an interface's outgoing
//! packets as they leave its queue, so the host's own capture shows its sent packets after
//! the egress delay and never shows those netem lost; its received packets show every
//! impairment of both links on the way.
//!
//! Qdiscs are grafted only once the links are ready (see `ready`): the kernel replaces a
//! link's `noop` queue with its default when it handles the carrier-on, and a root qdisc
//! added to a link that is up with its carrier is active when the netlink request returns.
//!
//! Loss is not netem's: a lost packet is an nftables rule in the fabric (netem on `eth0`
//! would lose a packet before the sender's own capture sees it, unlike a real link), random
//! (`numgen random`) or exact. An exact drop ("the first N packets matching X") is a rule on
//! the host's port in the fabric: its ingress hook for what the host sends, its egress hook for what it
//! receives, before the bridge's own rules in either case, so that the sender's capture shows
//! the packet and the receiver's does not, as a lost packet looks on a real link. The count
//! is `numgen inc`, a per-rule counter from 0: exact, unlike `limit` (a token bucket that
//! refills with time) or `quota` (which counts bytes).
//!
//! Some kernels are built without netem (CONFIG_NET_SCH_NETEM unset, as on this project's
//! machines): there, delay, jitter, reorder, corrupt and rate go through the lab's delay line
//! in user space (see `delayline`), at the same places, and only duplicate fails, with one line
//! naming netem. Loss and exact drops are nftables rules either way.

use futures::StreamExt;
use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::tc::{TcAttribute, TcHandle, TcMessage};

use super::build::{ETH0_INDEX, FIRST_PORT_INDEX};
use super::delayline::{self, DELAY_TABLE, DelayLine, LinkId};
use super::rules::RuleBook;
use super::{Lab, LabError};
use crate::firewall::{
    self, BaseChain, Chain, Family, Hook, Match, Origin, RANDOM_MODULUS, Rule, Table, Verdict,
};
use crate::netns::Namespace;
use crate::netns::WorkerState;
use crate::nfnetlink::push_attr;
use crate::spec::{DropMatch, Impair, Impairment, LinkDirection, Netem, Protocol, ResolvedDrop};
use crate::spec::{Placement, Resolved};

/// The start of the name of a host's table of exact drops in the fabric:
/// `tcplab-impair-HOST-rN`, N the revision of the rules that made it (0: the topology).
pub(crate) const DROP_TABLE: &str = "tcplab-impair";

/// Packets netem holds at most (iproute2's default).
const NETEM_LIMIT: u32 = 1000;

// Attributes of netem's options (linux/pkt_sched.h).
const TCA_OPTIONS: u16 = 2;
const TCA_NETEM_REORDER: u16 = 3;
const TCA_NETEM_CORRUPT: u16 = 4;
const TCA_NETEM_RATE: u16 = 6;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;

/// A percentage as netem's probabilities: a fraction of 2^32 - 1.
fn probability(percent: f64) -> u32 {
    (percent.clamp(0.0, 100.0) / 100.0 * f64::from(u32::MAX)).round() as u32
}

/// The value of netem's `TCA_OPTIONS`: a `struct tc_netem_qopt`, then attributes (netem's
/// options are not nested attributes only, so netlink-packet-route has no type for them).
pub(crate) fn netem_options(n: &Netem) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    // struct tc_netem_qopt: latency, limit, loss, gap, duplicate, jitter (u32 each). The
    // times go in the 64-bit attributes below, in nanoseconds, which the kernel prefers.
    let reorder = n.reorder > 0.0;
    for v in [
        0,
        NETEM_LIMIT,
        // Loss is an nftables rule of the fabric (see the module's notes).
        0,
        u32::from(reorder),
        probability(n.duplicate),
        0,
    ] {
        out.extend_from_slice(&v.to_ne_bytes());
    }
    let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    push_attr(&mut out, TCA_NETEM_LATENCY64, &nanos(n.delay).to_ne_bytes());
    push_attr(&mut out, TCA_NETEM_JITTER64, &nanos(n.jitter).to_ne_bytes());
    if reorder {
        let mut v = probability(n.reorder).to_ne_bytes().to_vec();
        v.extend_from_slice(&0u32.to_ne_bytes());
        push_attr(&mut out, TCA_NETEM_REORDER, &v);
    }
    if n.corrupt > 0.0 {
        let mut v = probability(n.corrupt).to_ne_bytes().to_vec();
        v.extend_from_slice(&0u32.to_ne_bytes());
        push_attr(&mut out, TCA_NETEM_CORRUPT, &v);
    }
    if let Some(bits) = n.rate {
        // struct tc_netem_rate: rate (bytes/s), packet_overhead, cell_size, cell_overhead.
        let bytes = u32::try_from(bits / 8).unwrap_or(u32::MAX).max(1);
        let mut v = bytes.to_ne_bytes().to_vec();
        v.extend_from_slice(&[0u8; 12]);
        push_attr(&mut out, TCA_NETEM_RATE, &v);
    }
    out
}

async fn request(
    handle: &rtnetlink::Handle,
    message: RouteNetlinkMessage,
    flags: u16,
) -> Result<(), rtnetlink::Error> {
    let mut req = NetlinkMessage::from(message);
    req.header.flags = flags;
    let mut handle = handle.clone();
    let mut response = handle.request(req)?;
    while let Some(m) = response.next().await {
        if let NetlinkPayload::Error(e) = m.payload {
            return Err(rtnetlink::Error::NetlinkError(e));
        }
    }
    Ok(())
}

/// Makes `netem` the root qdisc of link `index` (or changes the one there), or removes it
/// when `netem` does nothing and `had` says one is there.
async fn set_qdisc(
    handle: &rtnetlink::Handle,
    index: u32,
    netem: &Netem,
    had: bool,
) -> Result<(), rtnetlink::Error> {
    let mut message = TcMessage::with_index(index as i32);
    message.header.parent = TcHandle::ROOT;
    if netem.is_none() {
        if !had {
            return Ok(());
        }
        return request(
            handle,
            RouteNetlinkMessage::DelQueueDiscipline(message),
            NLM_F_REQUEST | NLM_F_ACK,
        )
        .await;
    }
    message
        .attributes
        .push(TcAttribute::Kind("netem".to_string()));
    message
        .attributes
        .push(TcAttribute::Other(rtnetlink::packet_core::DefaultNla::new(
            TCA_OPTIONS,
            netem_options(netem),
        )));
    request(
        handle,
        RouteNetlinkMessage::NewQueueDiscipline(message),
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
    )
    .await
}

/// Sets the netem qdisc of link `index` in this worker's namespace (see [`set_qdisc`]).
pub(super) fn apply_netem(
    state: &mut WorkerState,
    link: &str,
    index: u32,
    netem: Netem,
    had: bool,
) -> Result<(), LabError> {
    let handle = state.netlink().map_err(|source| LabError::Io {
        what: format!("open a netlink socket to impair {link}"),
        source,
    })?;
    state
        .runtime
        .block_on(set_qdisc(&handle, index, &netem, had))
        .map_err(|source| {
            if is_missing(&source) {
                LabError::KernelFeature {
                    feature: NETEM,
                    hint: NETEM_HINT,
                }
            } else {
                LabError::Netlink {
                    what: format!("set the impairment of {link} ({netem})"),
                    source: Box::new(source),
                }
            }
        })
}

/// Whether the kernel has netem, tried on `lo` of a namespace made for the purpose (and
/// gone on return): without it, delay, jitter, reorder, corrupt and rate go through tcplab's
/// delay line in user space, and duplicate cannot be done.
pub fn netem_available() -> Result<bool, LabError> {
    let ns = Namespace::new()?;
    let probe = Netem {
        delay: std::time::Duration::from_millis(1),
        ..Netem::default()
    };
    match ns.run(move |state| apply_netem(state, "lo of a probe namespace", 1, probe, false))? {
        Ok(()) => Ok(true),
        Err(LabError::KernelFeature { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether tcplab's delay line works here (what it uses where the kernel has no netem): a
/// queue's socket and the rule that fills it, tried in a namespace made for the purpose (and
/// gone on return). It needs nfnetlink_queue and nftables' queue expression, or its compat
/// layer with xtables' NFQUEUE target (CONFIG_NFT_COMPAT, CONFIG_NETFILTER_XT_TARGET_NFQUEUE).
pub fn delay_line_available() -> Result<(), LabError> {
    let ns = Namespace::new()?;
    let link = LinkId {
        host: 0,
        direction: LinkDirection::Egress,
    };
    let table = delay_table("probe", std::net::Ipv4Addr::UNSPECIFIED, "lo", link, 0);
    ns.run(move |_| -> Result<(), LabError> {
        let _socket = delayline::open_queue(0, true).map_err(|source| LabError::Io {
            what: "open a delay line's queue (NFQUEUE)".into(),
            source,
        })?;
        firewall::load(&[table], firewall::Mode::Fresh, "load a delay line's rule")?;
        Ok(())
    })?
}

/// The environment variable that sends links through the delay line even where the kernel
/// has netem (`TCPLAB_DELAY_LINE=user`), to try it there.
pub const DELAY_LINE_VARIABLE: &str = "TCPLAB_DELAY_LINE";

/// Whether links of this process's labs are delayed in user space: the kernel has no netem,
/// or [`DELAY_LINE_VARIABLE`] asks for it. Asked once per process (a probe namespace).
pub fn delays_in_user_space() -> Result<bool, LabError> {
    static ANSWER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if let Some(a) = ANSWER.get() {
        return Ok(*a);
    }
    let forced = std::env::var_os(DELAY_LINE_VARIABLE).is_some_and(|v| v == "user");
    let answer = forced || !netem_available()?;
    Ok(*ANSWER.get_or_init(|| answer))
}

/// The kernel feature delays and the rest need.
pub(crate) const NETEM: &str = "sch_netem";
const NETEM_HINT: &str = "delay, jitter, duplicate, reorder, corrupt and rate are netem's: load it with `modprobe sch_netem`, or use a kernel with CONFIG_NET_SCH_NETEM (loss and exact drops work without it)";
/// Why a kernel without netem cannot duplicate packets, and what to do.
pub const DUPLICATE_HINT: &str = "this kernel has no netem (CONFIG_NET_SCH_NETEM), and tcplab's delay line in user space gives each packet back once: duplicate needs `modprobe sch_netem` or a kernel with netem (delay, jitter, reorder, corrupt, rate, loss and exact drops work without it)";

pub(super) const PIN_HINT: &str = "this lab's links are delayed by tcplab's delay line in user space, which ends with this process, so the lab cannot outlive it: use `tcplab run`, or a kernel with CONFIG_NET_SCH_NETEM (`modprobe sch_netem`)";

const PINNED_HINT: &str = "this lab is pinned (it outlives tcplab), and without netem (CONFIG_NET_SCH_NETEM) its links can only be delayed by tcplab's delay line in user space, which ends with this process: delay a lab that is not pinned (`tcplab run`), or use a kernel with netem (`modprobe sch_netem`)";

/// The lab's delay line, started with the first link that needs it, and whether the lab was
/// pinned (then it may not start: it would end with the process).
#[derive(Default)]
pub(super) struct DelayState {
    pub line: Option<DelayLine>,
    pub pinned: bool,
}

pub(super) type DelaySlot = std::sync::Mutex<DelayState>;

/// The table that hands one direction of a host's link to the delay line (see `delayline`
/// for why there): what the host sends, in its `output` hook; what it receives, in the
/// fabric's `prerouting` hook as it enters the host's bridge `bridge` (bridged IPv4 goes
/// through the inet hooks there; in a VPC a packet crosses two bridges, and is held on the
/// host's only). Both before conntrack. Its rules have no origin: tcplab's rule trace ignores
/// them (see `attribution`).
fn delay_table(
    host: &str,
    address: std::net::Ipv4Addr,
    bridge: &str,
    link: LinkId,
    queue: u16,
) -> Table {
    let (name, chain, hook, matches) = match link.direction {
        LinkDirection::Egress => (
            DELAY_TABLE.to_string(),
            "from-host",
            Hook::Output,
            vec![Match::OutputInterface("eth0".into())],
        ),
        LinkDirection::Ingress => (
            format!("{DELAY_TABLE}-{host}"),
            "to-host",
            Hook::Prerouting,
            vec![
                Match::InputInterface(bridge.into()),
                Match::DestinationNet(ipnet::Ipv4Net::from(address)),
            ],
        ),
    };
    Table {
        family: Family::Inet,
        name,
        chains: vec![Chain {
            name: chain.into(),
            base: Some(BaseChain {
                hook,
                device: None,
                // Before conntrack (-200), which would otherwise see a held packet and its
                // retransmission as two new connections, and drop one.
                priority: -300,
                policy_drop: false,
            }),
            rules: vec![Rule::new(matches, Verdict::Queue(queue))],
        }],
    }
}

/// Applies `netem` to one direction of a host's link through the delay line: the first time,
/// a socket bound to the link's queue and the rule that fills it, in the link's namespace
/// `ns` (the host's for what it sends, the fabric's for what it receives).
fn delay_in_user_space(
    slot: &DelaySlot,
    ns: &Namespace,
    link: LinkId,
    (host, address, bridge): (&str, std::net::Ipv4Addr, &str),
    netem: Netem,
) -> Result<(), LabError> {
    if netem.duplicate > 0.0 {
        return Err(LabError::KernelFeature {
            feature: NETEM,
            hint: DUPLICATE_HINT,
        });
    }
    let mut state = slot.lock().unwrap_or_else(|e| e.into_inner());
    if state.pinned && !netem.is_none() {
        return Err(LabError::KernelFeature {
            feature: NETEM,
            hint: PINNED_HINT,
        });
    }
    let line = &mut state.line;
    if line.as_ref().is_some_and(|l| l.serves(link)) {
        if let Some(l) = line.as_ref() {
            l.set(link, netem);
        }
        return Ok(());
    }
    if netem.is_none() {
        return Ok(());
    }
    let what = match link.direction {
        LinkDirection::Egress => format!("the delay line of what host {host} sends"),
        LinkDirection::Ingress => format!("the delay line of what host {host} receives"),
    };
    let queue = link.queue().ok_or_else(|| LabError::Io {
        what: what.clone(),
        source: std::io::Error::other("more than 65535 hosts: no queue number is left"),
    })?;
    if line.is_none() {
        *line = Some(DelayLine::start().map_err(|source| LabError::Io {
            what: format!("start {what}"),
            source,
        })?);
    }
    let table = delay_table(host, address, bridge, link, queue);
    // Offloaded packets whole, as netem holds them, unless a bit of them is to be flipped.
    let whole = netem.corrupt == 0.0;
    let socket = ns.run(move |_| -> Result<_, LabError> {
        let socket = delayline::open_queue(queue, whole).map_err(|source| LabError::Io {
            what: format!("open {what} (NFQUEUE)"),
            source,
        })?;
        firewall::load(&[table], firewall::Mode::Fresh, &what)?;
        Ok(socket)
    })??;
    if let Some(l) = line.as_ref() {
        // The settings first: the thread reads them when it takes the socket.
        l.set(link, netem);
        l.attach(link, queue, socket, whole);
    }
    Ok(())
}

/// A qdisc kind the kernel does not know: "Specified qdisc kind is unknown".
fn is_missing(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m)
        if m.raw_code() == -libc::ENOENT || m.raw_code() == -libc::EOPNOTSUPP)
}

/// The matches of an exact drop, without its counter.
fn drop_matches(d: &ResolvedDrop) -> Vec<Match> {
    let mut m = match d.matching {
        DropMatch::Syn => vec![Match::TcpSyn],
        DropMatch::Psh => vec![Match::TcpPsh],
        DropMatch::Tcp => vec![Match::L4Proto(Protocol::Tcp)],
        DropMatch::Udp => vec![Match::L4Proto(Protocol::Udp)],
        DropMatch::Icmp => vec![Match::L4Proto(Protocol::Icmp)],
        // Every IPv4 packet: ARP is left alone, so that the link still resolves addresses.
        DropMatch::All => vec![Match::Ipv4],
    };
    if let Some(ports) = d.port {
        let protocol = match d.matching {
            DropMatch::Udp => Protocol::Udp,
            _ => Protocol::Tcp,
        };
        m.push(Match::DestinationPorts(protocol, ports));
    }
    m
}

/// A host's table of losses in the fabric, on its port `port`, if its link loses packets
/// (exactly or at random). With `trace`, the packets a rule drops are marked for tracing, so
/// that attribution names the impairment.
pub(crate) fn drop_table(
    host: &str,
    port: &str,
    impair: &Impairment,
    revision: usize,
    trace: bool,
) -> Option<Table> {
    let origin = |direction, what: String| Origin::Impairment {
        host: host.to_string(),
        direction,
        what,
    };
    let chains: Vec<Chain> = [LinkDirection::Egress, LinkDirection::Ingress]
        .into_iter()
        .filter_map(|direction| {
            let link = impair.get(direction);
            let mut rules = Vec::new();
            if let Some(d) = link.drop {
                let mut matches = drop_matches(&d);
                if trace {
                    rules.push(Rule::new(matches.clone(), Verdict::TraceOn));
                }
                matches.push(Match::FirstPackets(
                    u32::try_from(d.first).unwrap_or(u32::MAX),
                ));
                rules
                    .push(Rule::new(matches, Verdict::Drop).from(origin(direction, d.to_string())));
            }
            if link.loss > 0.0 {
                let share = f64::from(RANDOM_MODULUS) * link.loss / 100.0;
                // IPv4 only: ARP is left alone, so that the link still resolves addresses.
                let mut matches = vec![Match::Ipv4, Match::Random(share.round() as u32)];
                if trace {
                    matches.push(Match::Traced);
                }
                rules.push(Rule::new(matches, Verdict::Drop).from(origin(
                    direction,
                    format!("lose {}% of IPv4 packets at random", link.loss),
                )));
            }
            if rules.is_empty() {
                return None;
            }
            let (name, hook) = match direction {
                LinkDirection::Egress => ("from-host", Hook::Ingress),
                LinkDirection::Ingress => ("to-host", Hook::Egress),
            };
            Some(Chain {
                name: name.into(),
                base: Some(BaseChain {
                    hook,
                    device: Some(port.to_string()),
                    // Before the bridge's own rules on the port: the link loses the packet
                    // before any firewall sees it.
                    priority: -100,
                    policy_drop: false,
                }),
                rules,
            })
        })
        .collect();
    (!chains.is_empty()).then(|| Table {
        family: Family::Netdev,
        name: format!("{DROP_TABLE}-{host}-r{revision}"),
        chains,
    })
}

/// Loads a host's drop table in the fabric (this worker's namespace), replacing `old`.
pub(super) fn load_drops(
    table: Option<Table>,
    old: Option<(Family, String)>,
    host: &str,
) -> Result<(Option<Table>, Vec<firewall::Loaded>), LabError> {
    let tables: Vec<Table> = table.into_iter().collect();
    let mode = match old {
        Some(o) => firewall::Mode::Replace(vec![o]),
        None => firewall::Mode::Fresh,
    };
    let loaded = firewall::load(&tables, mode, &format!("exact drops of host {host}'s link"))?;
    Ok((tables.into_iter().next(), loaded))
}

/// What is applied to a host's link now.
#[derive(Debug, Clone, Default)]
pub(crate) struct Applied {
    pub impair: Impairment,
    /// Its drop table in the fabric, if it has one.
    pub table: Option<(Family, String)>,
}

/// Applies the topology's impairments to a lab whose links are ready: netem on each impaired
/// host's `eth0` and port, exact drops in the fabric, all namespaces at once.
pub(super) fn apply_topology(
    fabric: &Namespace,
    namespaces: &[Namespace],
    resolved: &Resolved,
    book: &mut RuleBook,
    slot: &DelaySlot,
) -> Result<Vec<Applied>, LabError> {
    let mut jobs = Vec::new();
    let impaired = resolved
        .hosts
        .iter()
        .any(|h| !h.impair.egress.netem.is_none() || !h.impair.ingress.netem.is_none());
    let user_space = impaired && delays_in_user_space()?;
    for (i, (h, ns)) in resolved.hosts.iter().zip(namespaces).enumerate() {
        let imp = h.impair;
        for (direction, netem, place) in [
            (LinkDirection::Egress, imp.egress.netem, ns),
            (LinkDirection::Ingress, imp.ingress.netem, fabric),
        ] {
            if netem.is_none() {
                continue;
            }
            if user_space {
                let link = LinkId { host: i, direction };
                let bridge = super::vpc::bridge_name(h.subnet);
                delay_in_user_space(slot, place, link, (&h.name, h.address, &bridge), netem)?;
                continue;
            }
            let (link, index) = match direction {
                LinkDirection::Egress => (format!("eth0 of host {}", h.name), ETH0_INDEX),
                LinkDirection::Ingress => (
                    format!("host {}'s port on the bridge", h.name),
                    FIRST_PORT_INDEX + i as u32,
                ),
            };
            jobs.push(place.submit(move |state| apply_netem(state, &link, index, netem, false)));
        }
    }
    let mut drops = Vec::new();
    for (i, h) in resolved.hosts.iter().enumerate() {
        let mut tables: Vec<Table> = drop_table(&h.name, &h.name, &h.impair, 0, book.trace)
            .into_iter()
            .collect();
        if tables.is_empty() {
            continue;
        }
        book.label(0, &mut tables);
        let host = h.name.clone();
        drops.push((
            i,
            fabric.submit(move |_| load_drops(tables.pop(), None, &host)),
        ));
    }
    for job in jobs {
        job.wait()??;
    }
    let mut applied: Vec<Applied> = resolved
        .hosts
        .iter()
        .map(|h| Applied {
            impair: h.impair,
            table: None,
        })
        .collect();
    for (i, job) in drops {
        let (table, loaded) = job.wait()??;
        book.record(Placement::Fabric, loaded);
        applied[i].table = table.map(|t| (t.family, t.name));
    }
    Ok(applied)
}

impl Lab {
    /// Replaces the impairments of host `host`'s link with `impair`, as a host's `impair`
    /// table says them (an empty one removes them), while the lab runs. Netem settings change
    /// in place (packets queued stay queued; on the delay line, where the kernel has no netem,
    /// packets held keep their time too); exact drops count again from 0. `why` (e.g.
    /// `step 4`) names the change in reports of which rule stopped a packet.
    ///
    /// Where the kernel has no netem, a duplicate is refused
    /// ([`LabError::KernelFeature`]) before anything changes.
    ///
    /// ```no_run
    /// use tcplab::spec::{Impair, LinkImpair};
    /// # fn main() -> Result<(), tcplab::LabError> {
    /// # let lab = tcplab::Lab::from_file("fixtures/topologies/article.toml")?;
    /// let slow = Impair {
    ///     ingress: Some(LinkImpair { delay: Some(0.2), ..LinkImpair::default() }),
    ///     ..Impair::default()
    /// };
    /// lab.impair("server", &slow, None)?;
    /// lab.impair("server", &Impair::default(), None)?; // and back
    /// # Ok(()) }
    /// ```
    pub fn impair(&self, host: &str, impair: &Impair, why: Option<&str>) -> Result<(), LabError> {
        let checked = impair.resolve(&crate::spec::FieldPath::default().key("impair"))?;
        self.impair_checked(host, &checked, why)
    }

    /// Like [`Lab::impair`], with settings already checked.
    pub fn impair_checked(
        &self,
        host: &str,
        impair: &Impairment,
        why: Option<&str>,
    ) -> Result<(), LabError> {
        let i = self.host_index(host)?;
        let mut impairs = self.impairs.lock().unwrap_or_else(|e| e.into_inner());
        let old = impairs[i].clone();
        let new = *impair;
        let mut jobs = Vec::new();
        let mut first_error = None;
        let changed = new.egress.netem != old.impair.egress.netem
            || new.ingress.netem != old.impair.ingress.netem;
        let user_space = changed && delays_in_user_space()?;
        if user_space && (new.egress.netem.duplicate > 0.0 || new.ingress.netem.duplicate > 0.0) {
            // Refused before anything changes.
            return Err(LabError::KernelFeature {
                feature: NETEM,
                hint: DUPLICATE_HINT,
            });
        }
        let address = self.hosts[i].address;
        // What is applied, direction by direction as each change succeeds: a failure leaves
        // a true record.
        let mut record = old.impair;
        let set = |r: &mut Impairment, direction, netem| match direction {
            LinkDirection::Egress => r.egress.netem = netem,
            LinkDirection::Ingress => r.ingress.netem = netem,
        };
        for (direction, netem, before, place) in [
            (
                LinkDirection::Egress,
                new.egress.netem,
                old.impair.egress.netem,
                &self.hosts[i].ns,
            ),
            (
                LinkDirection::Ingress,
                new.ingress.netem,
                old.impair.ingress.netem,
                &self.fabric,
            ),
        ] {
            if netem == before {
                continue;
            }
            if user_space {
                let link = LinkId { host: i, direction };
                let bridge = super::vpc::bridge_name(self.resolved.hosts[i].subnet);
                let at = (host, address, bridge.as_str());
                match delay_in_user_space(&self.delay, place, link, at, netem) {
                    Ok(()) => set(&mut record, direction, netem),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
                continue;
            }
            let (link, index) = match direction {
                LinkDirection::Egress => (format!("eth0 of host {host}"), ETH0_INDEX),
                LinkDirection::Ingress => (
                    format!("host {host}'s port on the bridge"),
                    FIRST_PORT_INDEX + i as u32,
                ),
            };
            let had = !before.is_none();
            let job = place.submit(move |state| apply_netem(state, &link, index, netem, had));
            jobs.push((direction, netem, job));
        }
        let mut drops = None;
        let loses = |l: &crate::spec::LinkImpairment| l.drop.is_some() || l.loss > 0.0;
        if loses(&new.egress) || loses(&new.ingress) || old.table.is_some() {
            let mut book = self.rules.lock().unwrap_or_else(|e| e.into_inner());
            let revision = book.next_revision(why);
            let mut tables: Vec<Table> = drop_table(host, host, &new, revision, book.trace)
                .into_iter()
                .collect();
            book.label(revision, &mut tables);
            let name = host.to_string();
            let old_table = old.table.clone();
            drops = Some(
                self.fabric
                    .submit(move |_| load_drops(tables.pop(), old_table, &name)),
            );
        }
        for (direction, netem, job) in jobs {
            match job.wait().map_err(LabError::from).and_then(|r| r) {
                Ok(()) => set(&mut record, direction, netem),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(job) = drops {
            match job.wait().map_err(LabError::from).and_then(|r| r) {
                Ok((table, loaded)) => {
                    let mut book = self.rules.lock().unwrap_or_else(|e| e.into_inner());
                    book.record(Placement::Fabric, loaded);
                    impairs[i].table = table.map(|t| (t.family, t.name));
                    (record.egress.loss, record.egress.drop) = (new.egress.loss, new.egress.drop);
                    (record.ingress.loss, record.ingress.drop) =
                        (new.ingress.loss, new.ingress.drop);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        impairs[i].impair = record;
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn host_index(&self, host: &str) -> Result<usize, LabError> {
        let found = self.host(host)?;
        Ok(self
            .hosts
            .iter()
            .position(|h| std::ptr::eq(h, found))
            .unwrap_or_default())
    }

    /// What host `host`'s link is impaired with now.
    pub fn impairment(&self, host: &str) -> Result<Impairment, LabError> {
        let i = self.host_index(host)?;
        let impairs = self.impairs.lock().unwrap_or_else(|e| e.into_inner());
        Ok(impairs[i].impair)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn u32_at(b: &[u8], i: usize) -> u32 {
        u32::from_ne_bytes(b[i..i + 4].try_into().unwrap())
    }

    /// The attributes after the fixed struct, as (kind, value).
    fn attrs(b: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        let mut i = 24;
        while i < b.len() {
            let len = u16::from_ne_bytes([b[i], b[i + 1]]) as usize;
            let kind = u16::from_ne_bytes([b[i + 2], b[i + 3]]);
            out.push((kind, b[i + 4..i + len].to_vec()));
            i += len.next_multiple_of(4);
        }
        out
    }

    #[test]
    fn netem_options_as_the_kernel_reads_them() {
        let n = Netem {
            delay: Duration::from_millis(100),
            jitter: Duration::from_millis(10),
            duplicate: 50.0,
            reorder: 25.0,
            corrupt: 0.0,
            rate: Some(1_000_000),
        };
        let b = netem_options(&n);
        assert_eq!(u32_at(&b, 4), NETEM_LIMIT);
        assert_eq!(u32_at(&b, 8), 0, "no loss: nftables does it");
        assert_eq!(u32_at(&b, 12), 1, "gap 1 with reordering, as tc sets it");
        assert_eq!(u32_at(&b, 16), u32::MAX / 2 + 1, "50% duplicates");
        let a = attrs(&b);
        let kinds: Vec<u16> = a.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [
                TCA_NETEM_LATENCY64,
                TCA_NETEM_JITTER64,
                TCA_NETEM_REORDER,
                TCA_NETEM_RATE
            ]
        );
        assert_eq!(a[0].1, 100_000_000i64.to_ne_bytes());
        assert_eq!(a[1].1, 10_000_000i64.to_ne_bytes());
        assert_eq!(u32_at(&a[3].1, 0), 125_000, "1 Mbit/s is 125 kB/s");
        assert_eq!(b.len() % 4, 0);
    }

    /// What `tc qdisc replace dev lo root netem delay 100ms 10ms reorder 25% duplicate 50%
    /// rate 1mbit limit 1000` (iproute2 6.1) sent, seen with strace: the same options but the
    /// times, which tc writes in the old 32-bit fields in ticks, and tcplab in the 64-bit
    /// attributes in nanoseconds.
    #[test]
    fn netem_options_match_what_tc_sends() {
        let tc: [u8; 56] = [
            0x84, 0xd7, 0x17, 0x00, 0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x5a, 0x62, 0x02, 0x00, 0x0c, 0x00, 0x03, 0x00,
            0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x06, 0x00, 0x48, 0xe8,
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        let ours = netem_options(&Netem {
            delay: Duration::from_millis(100),
            jitter: Duration::from_millis(10),
            duplicate: 50.0,
            reorder: 25.0,
            corrupt: 0.0,
            rate: Some(1_000_000),
        });
        // limit, loss, gap, duplicate: as tc's.
        assert_eq!(ours[4..20], tc[4..20]);
        assert_eq!(
            (u32_at(&ours, 0), u32_at(&ours, 20)),
            (0, 0),
            "times go below"
        );
        // After the two 64-bit times (12 bytes each), the reorder and rate attributes as tc's.
        assert_eq!(ours[24 + 24..], tc[24..]);
    }

    #[test]
    fn drops_sit_on_the_port_before_other_rules() {
        let d = ResolvedDrop {
            first: 1,
            matching: DropMatch::Syn,
            port: Some(crate::spec::PortRange::single(1234)),
        };
        let mut imp = Impairment::default();
        imp.egress.drop = Some(d);
        let t = drop_table("client-1", "client-1", &imp, 0, true).unwrap();
        let text = t.to_string();
        assert!(
            text.contains("table netdev tcplab-impair-client-1-r0"),
            "{text}"
        );
        assert!(
            text.contains("hook ingress device \"client-1\" priority -100"),
            "{text}"
        );
        assert!(
            text.contains(
                "tcp flags & (syn|ack) == syn tcp dport 1234 numgen inc mod 4294967295 < 1 drop"
            ),
            "{text}"
        );
        assert_eq!(t.chains.len(), 1, "nothing for the other direction");
        let all = ResolvedDrop {
            first: 3,
            matching: DropMatch::All,
            port: None,
        };
        assert_eq!(drop_matches(&all), [Match::Ipv4], "IPv4 only: ARP passes");
        assert!(drop_table("a", "a", &Impairment::default(), 0, false).is_none());
        let mut lossy = Impairment::default();
        lossy.ingress.loss = 2.5;
        let text = drop_table("b", "b", &lossy, 3, true).unwrap().to_string();
        assert!(text.contains("tcplab-impair-b-r3"), "{text}");
        assert!(
            text.contains("hook egress device \"b\" priority -100"),
            "{text}"
        );
        assert!(
            text.contains(
                "meta protocol ip numgen random mod 1000000 < 25000 meta nftrace set 1 drop"
            ),
            "{text}"
        );
    }
}
