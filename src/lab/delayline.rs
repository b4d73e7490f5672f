//! A delay line in user space, for kernels built without netem (CONFIG_NET_SCH_NETEM unset, as
//! on this project's own machines and many CI runners').
//!
//! A link's packets are handed to tcplab by an nftables rule (`queue`, NFQUEUE), kept here for
//! their delay, and given back to the kernel, which sends them on. Where they wait is chosen so
//! that the captures read as with netem: what a host sends waits in the host's `output` hook,
//! after routing and before its `eth0` (its own capture sees it leave after the delay, as with
//! netem on `eth0`); what it receives waits in the fabric's `prerouting` hook as it enters the
//! host's bridge (bridged IPv4 runs the inet hooks there), so the sender's port sees it at once
//! and the host's port and capture after the delay (netem on the port). Both are before
//! conntrack (priority -300): a packet held after conntrack saw it but before it confirmed the
//! connection would clash with its own retransmission and be dropped on release, which netem,
//! past conntrack, never does. The firewall rules of the fabric and of the host meet the packet
//! after its wait instead of before; what they decide is the same.
//!
//! Delay, jitter, reorder, corrupt and rate follow netem's laws (a corrupted bit falls past
//! the IP header, which the fabric still checks after the hold); duplicate cannot be done this
//! way (a queued packet is given back once), so it stays netem's. ARP is not held (netem would
//! hold it), nor what a host forwards (an instance route's target) on its way out. Offloaded
//! packets are held whole, as netem holds them, unless the link corrupts: then the kernel
//! cuts them to frames and completes their checksums first, so that a flipped bit stays
//! flipped.
//!
//! One thread serves every link of a lab: it waits on the links' sockets and on the next
//! packet due, with nanosecond timeouts. Its timing is the machine's scheduler's: a busy
//! machine wakes it late by a fraction of a millisecond to a few milliseconds, which the
//! scenarios' tolerances allow for.
//!
//! The kernel keeps at most [`QUEUE_LIMIT`] packets per link waiting for us, as netem's
//! `limit`; more are dropped, as netem drops them, and counted (see [`queue_drops`]).

use std::collections::{BinaryHeap, HashMap};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netlink_packet_core::{NetlinkBuffer, NlaBuffer, NlasIterator};
use netlink_sys::Socket;

use crate::spec::{LinkDirection, Netem};

/// The start of the name of the tables that hand packets to the delay line:
/// `tcplab-delay-HOST` in the fabric, `tcplab-delay` in a host.
pub(crate) const DELAY_TABLE: &str = "tcplab-delay";

/// Packets the kernel holds for one link at most (netem's default `limit`).
pub(crate) const QUEUE_LIMIT: u32 = 1000;

/// The netfilter subsystem of NFQUEUE, and its messages and attributes
/// (linux/netfilter/nfnetlink_queue.h); libc has none of them.
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_PAYLOAD: u16 = 10;
/// The packet's length, when the copy is shorter.
const NFQA_CAP_LEN: u16 = 13;
const NFQA_SKB_INFO: u16 = 14;
const NFQA_SKB_CSUMNOTREADY: u32 = 1;
const NFQA_SKB_GSO: u32 = 2;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;
const NFQA_CFG_F_GSO: u32 = 4;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_PACKET: u8 = 2;
/// The most of a packet the kernel copies (NFQNL_MAX_COPY_RANGE); a longer one arrives cut,
/// with its length, and is given back untouched.
const COPY_RANGE: u32 = 0xffff - 4;
/// Deep enough for a full queue of offloaded packets (64 KiB each).
const RECEIVE_BUFFER: usize = 64 << 20;
/// An Ethernet header: netem counts it in a packet's length for its rate; the queue gives
/// the packet from its IP header.
const ETHERNET_HEADER: usize = 14;

/// A link and one of its directions: what host N sends (its `eth0`) or receives (its port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct LinkId {
    pub host: usize,
    pub direction: LinkDirection,
}

impl LinkId {
    /// The link's queue number in its namespace: one per host in the fabric, 0 in a host.
    pub fn queue(self) -> Option<u16> {
        match self.direction {
            LinkDirection::Egress => Some(0),
            LinkDirection::Ingress => u16::try_from(self.host + 1).ok(),
        }
    }
}

/// The lab's delay line: its thread, and what it is told.
pub(crate) struct DelayLine {
    control: Arc<Mutex<Control>>,
    wake: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Control {
    stop: bool,
    /// Links whose socket the thread has not taken yet.
    new: Vec<(LinkId, u16, Socket, bool)>,
    settings: HashMap<LinkId, Netem>,
    /// The links the thread serves or will serve.
    attached: Vec<LinkId>,
    /// The first thing that went wrong in the thread.
    failure: Option<String>,
}

/// Opens a socket in the current thread's namespace that receives the packets of queue
/// `queue`, offloaded ones whole if `whole`. Bound before the rule that queues packets is
/// loaded: a queued packet nobody reads is dropped.
pub(crate) fn open_queue(queue: u16, whole: bool) -> std::io::Result<Socket> {
    let socket = crate::nfnetlink::socket(RECEIVE_BUFFER)?;
    // struct nfqnl_msg_config_cmd: command, pad, pf (unused since Linux 3.8).
    configure(
        &socket,
        queue,
        &[(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0])],
    )?;
    // struct nfqnl_msg_config_params (packed): copy_range, copy_mode.
    let mut params = COPY_RANGE.to_be_bytes().to_vec();
    params.push(NFQNL_COPY_PACKET);
    configure(&socket, queue, &[(NFQA_CFG_PARAMS, &params)])?;
    configure(
        &socket,
        queue,
        &[(NFQA_CFG_QUEUE_MAXLEN, &QUEUE_LIMIT.to_be_bytes())],
    )?;
    configure(&socket, queue, &offload_flags(whole))?;
    socket.set_non_blocking(true)?;
    Ok(socket)
}

/// The configuration attributes that ask for offloaded packets whole, or cut to frames.
fn offload_flags(whole: bool) -> [(u16, &'static [u8]); 2] {
    const WHOLE: [u8; 4] = NFQA_CFG_F_GSO.to_be_bytes();
    const MASK: [u8; 4] = NFQA_CFG_F_GSO.to_be_bytes();
    let flags: &'static [u8] = if whole { &WHOLE } else { &[0; 4] };
    [(NFQA_CFG_FLAGS, flags), (NFQA_CFG_MASK, &MASK)]
}

/// A netfilter message to queue `queue`: netlink header, `struct nfgenmsg`, attributes.
fn message(kind: u16, flags: u16, queue: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let family = libc::AF_UNSPEC as u8;
    crate::nfnetlink::request((NFNL_SUBSYS_QUEUE, kind), flags, 0, (family, queue), attrs)
}

/// Sends configuration attributes and waits for the kernel's answer (the socket still
/// blocks).
fn configure(socket: &Socket, queue: u16, attrs: &[(u16, &[u8])]) -> std::io::Result<()> {
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    socket.send(&message(NFQNL_MSG_CONFIG, flags, queue, attrs), 0)?;
    let mut buf = vec![0u8; 8192];
    loop {
        let Some(n) = receive(socket, &mut buf)? else {
            continue;
        };
        let mut at = 0;
        while at < n {
            let Ok(msg) = NetlinkBuffer::new_checked(&buf[at..n]) else {
                break;
            };
            if let Some(code) = crate::nfnetlink::error_code(&msg) {
                return if code == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::from_raw_os_error(code))
                };
            }
            at += (msg.length() as usize).next_multiple_of(4).max(16);
        }
    }
}

impl DelayLine {
    /// Starts the thread; it serves no link until one is attached.
    pub fn start() -> std::io::Result<DelayLine> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a descriptor just made and owned by no one else.
        let wake = unsafe { OwnedFd::from_raw_fd(fd) };
        let control = Arc::new(Mutex::new(Control::default()));
        let thread = {
            let control = Arc::clone(&control);
            let wake = wake.try_clone()?;
            std::thread::Builder::new()
                .name("tcplab-delay".into())
                .spawn(move || serve(&control, &wake))?
        };
        Ok(DelayLine {
            control,
            wake,
            thread: Some(thread),
        })
    }

    fn control(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn poke(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: 8 bytes to an eventfd this value owns. A full counter (never, at 2^64 - 2)
        // would fail harmlessly: the thread is already due to wake.
        unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    /// Whether `link` has its socket and rule already.
    pub fn serves(&self, link: LinkId) -> bool {
        self.control().attached.contains(&link)
    }

    /// Whether any link goes through the delay line.
    pub fn in_use(&self) -> bool {
        !self.control().attached.is_empty()
    }

    /// The links it serves.
    pub fn links(&self) -> Vec<LinkId> {
        self.control().attached.clone()
    }

    /// Hands the thread `link`'s socket, bound to `queue` (offloaded packets whole if
    /// `whole`, see [`open_queue`]).
    pub fn attach(&self, link: LinkId, queue: u16, socket: Socket, whole: bool) {
        let mut c = self.control();
        c.attached.push(link);
        c.new.push((link, queue, socket, whole));
        drop(c);
        self.poke();
    }

    /// What `link` does to its packets from now on; packets already held keep their time.
    pub fn set(&self, link: LinkId, netem: Netem) {
        self.control().settings.insert(link, netem);
        self.poke();
    }

    /// The first error of the thread, if any: a packet it could not give back, or one the
    /// kernel could not queue for it, was lost.
    pub fn failure(&self) -> Option<String> {
        self.control().failure.clone()
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.control().stop = true;
        self.poke();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A link as the thread serves it.
struct Served {
    id: LinkId,
    queue: u16,
    socket: Socket,
    /// When the last packet held for the rate leaves.
    busy_until: Option<Instant>,
    /// Whether the kernel gives offloaded packets whole (not when the link corrupts).
    whole: bool,
}

/// A packet held until `due`; `seq` keeps arrival order among equal times.
#[derive(PartialEq, Eq)]
struct Held {
    due: Instant,
    seq: u64,
    link: usize,
    id: u32,
    /// A corrupted copy of the packet, given back in its place.
    payload: Option<Vec<u8>>,
}

impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // The earliest first in a max-heap.
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

fn serve(control: &Mutex<Control>, wake: &OwnedFd) {
    let fail = |what: String| {
        control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failure
            .get_or_insert(what);
    };
    // A panic closes the sockets, and the rules then drop every packet of the links: the run
    // must hear of it.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        serve_until_stopped(control, wake, &fail)
    }));
    if let Err(panic) = outcome {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        fail(format!("it stopped (a tcplab bug: {why})"));
    }
}

fn serve_until_stopped(control: &Mutex<Control>, wake: &OwnedFd, fail: &impl Fn(String)) {
    let lock = || control.lock().unwrap_or_else(|e| e.into_inner());
    let mut links: Vec<Served> = Vec::new();
    let mut settings: HashMap<LinkId, Netem> = HashMap::new();
    let mut held: BinaryHeap<Held> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut buf = vec![0u8; COPY_RANGE as usize + 8192];
    loop {
        let timeout = held
            .peek()
            .map(|h| h.due.saturating_duration_since(Instant::now()));
        let mut fds: Vec<libc::pollfd> = std::iter::once(wake.as_raw_fd())
            .chain(links.iter().map(|l| l.socket.as_raw_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let spec = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        // SAFETY: `fds` and the timeout live across the call.
        let rc = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                spec.as_ref().map_or(std::ptr::null(), |s| s as *const _),
                std::ptr::null(),
            )
        };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                fail(format!("waiting for packets: {e}"));
                return;
            }
            continue;
        }
        if fds[0].revents != 0 {
            let mut count = [0u8; 8];
            // SAFETY: reading the eventfd's 8-byte counter into an 8-byte buffer.
            unsafe { libc::read(wake.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
            let mut c = lock();
            if c.stop {
                return;
            }
            links.extend(c.new.drain(..).map(|(id, queue, socket, whole)| Served {
                id,
                queue,
                socket,
                busy_until: None,
                whole,
            }));
            settings.clone_from(&c.settings);
            drop(c);
            for l in &mut links {
                let whole = settings.get(&l.id).is_none_or(|n| n.corrupt == 0.0);
                if whole != l.whole {
                    // The kernel answers on the socket; an error there is read as one.
                    let msg = message(
                        NFQNL_MSG_CONFIG,
                        (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16,
                        l.queue,
                        &offload_flags(whole),
                    );
                    match l.socket.send(&msg, 0) {
                        Ok(_) => l.whole = whole,
                        Err(e) => fail(format!("configuring queue {}: {e}", l.queue)),
                    }
                }
            }
        }
        for (i, fd) in fds.iter().enumerate().skip(1) {
            if fd.revents == 0 {
                continue;
            }
            let link = i - 1;
            loop {
                let n = match receive(&links[link].socket, &mut buf) {
                    Ok(Some(n)) => n,
                    // Not from the kernel: a program of the lab cannot feed the delay line.
                    Ok(None) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        // ENOBUFS: the socket overflowed, and the kernel dropped packets.
                        fail(format!("reading packets: {e}"));
                        break;
                    }
                };
                for item in messages(&buf[..n]) {
                    let packet = match item {
                        Message::Packet(p) => p,
                        Message::Error(code) => {
                            // A verdict or a setting the kernel refused: its packet is lost.
                            fail(format!(
                                "the kernel refused a verdict on queue {}: {}",
                                links[link].queue,
                                std::io::Error::from_raw_os_error(code)
                            ));
                            continue;
                        }
                    };
                    let netem = settings.get(&links[link].id).copied().unwrap_or_default();
                    let (due, payload) = hold(&netem, &mut links[link], &packet);
                    seq += 1;
                    held.push(Held {
                        due,
                        seq,
                        link,
                        id: packet.id,
                        payload,
                    });
                }
            }
        }
        let now = Instant::now();
        while held.peek().is_some_and(|h| h.due <= now) {
            let Some(h) = held.pop() else { break };
            let l = &links[h.link];
            if let Err(e) = give_back(&l.socket, l.queue, h.id, h.payload.as_deref()) {
                fail(format!("giving a packet back: {e}"));
            }
        }
    }
}

/// A packet the kernel queued.
#[derive(Debug, PartialEq, Eq)]
struct Packet<'a> {
    id: u32,
    /// From its IP header; cut when longer than [`COPY_RANGE`].
    payload: &'a [u8],
    /// Its length on the wire from the IP header (its payload's when whole).
    len: usize,
    /// Whether `payload` is all of it, with its checksums done: only such a packet can be
    /// corrupted and given back.
    whole: bool,
}

/// What a datagram from the queue holds.
#[derive(Debug, PartialEq, Eq)]
enum Message<'a> {
    Packet(Packet<'a>),
    /// The kernel's error about something the delay line sent (a negated errno).
    Error(i32),
}

/// When a packet that arrives now leaves, as netem decides it, and its corrupted copy if it
/// is corrupted.
fn hold(netem: &Netem, link: &mut Served, packet: &Packet) -> (Instant, Option<Vec<u8>>) {
    let now = Instant::now();
    let corrupted = (packet.whole
        && netem.corrupt > 0.0
        && fastrand::f64() * 100.0 < netem.corrupt)
        .then(|| {
            // Past the IP header: the packet still crosses the fabric, whose bridge and
            // conntrack check that header (netem flips past them, anywhere), and the receiver
            // finds its transport checksum wrong, as after a bad link.
            let mut copy = packet.payload.to_vec();
            let header = usize::from(copy.first().map_or(0, |b| b & 0x0f)) * 4;
            let from = if header < copy.len() { header } else { 0 };
            if from < copy.len() {
                let at = fastrand::usize(from..copy.len());
                copy[at] ^= 1 << fastrand::u8(..8);
            }
            copy
        });
    if netem.reorder > 0.0 && fastrand::f64() * 100.0 < netem.reorder {
        // netem sends a reordered packet at once, ahead of those it holds and of its rate.
        return (now, corrupted);
    }
    let mut wait = netem.delay;
    if !netem.jitter.is_zero() {
        // Uniform in delay ± jitter, netem's law without a distribution table.
        let offset = netem.jitter.as_secs_f64() * (2.0 * fastrand::f64() - 1.0);
        wait = Duration::from_secs_f64((wait.as_secs_f64() + offset).max(0.0));
    }
    let mut due = now + wait;
    if let Some(bits) = netem.rate.filter(|b| *b > 0) {
        // The link is busy with earlier packets, then sends this one's bytes.
        let bytes = (packet.len + ETHERNET_HEADER) as f64;
        let send = Duration::from_secs_f64(bytes * 8.0 / bits as f64);
        due = due.max(link.busy_until.unwrap_or(now)) + send;
        link.busy_until = Some(due);
    }
    (due, corrupted)
}

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

/// The packets and errors of a datagram from the queue; anything else in it is skipped.
fn messages(datagram: &[u8]) -> Vec<Message<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < datagram.len() {
        let Ok(msg) = NetlinkBuffer::new_checked(&datagram[at..]) else {
            break;
        };
        let len = msg.length() as usize;
        if let Some(code) = crate::nfnetlink::error_code(&msg) {
            if code > 0 {
                out.push(Message::Error(code));
            }
        } else if msg.message_type() == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
            // After `struct nfgenmsg`, attributes.
            let attrs = msg.payload().get(4..).unwrap_or_default();
            let mut id = None;
            let mut payload: &[u8] = &[];
            let mut cap_len = None;
            let mut info = 0;
            for nla in NlasIterator::new(attrs) {
                let Ok(nla): Result<NlaBuffer<&[u8]>, _> = nla else {
                    break;
                };
                match nla.kind() {
                    NFQA_PACKET_HDR => id = be32(nla.value()),
                    NFQA_PAYLOAD => {
                        let len = nla.length() as usize;
                        payload = nla.into_inner().get(4..len).unwrap_or_default();
                    }
                    NFQA_CAP_LEN => cap_len = be32(nla.value()),
                    NFQA_SKB_INFO => info = be32(nla.value()).unwrap_or_default(),
                    _ => {}
                }
            }
            if let Some(id) = id {
                out.push(Message::Packet(Packet {
                    id,
                    payload,
                    len: cap_len.map_or(payload.len(), |l| l as usize),
                    whole: cap_len.is_none() && info & (NFQA_SKB_GSO | NFQA_SKB_CSUMNOTREADY) == 0,
                }));
            }
        }
        if len == 0 {
            break;
        }
        at += len.next_multiple_of(4);
    }
    out
}

/// Receives one datagram; `None` when it is not the kernel's.
fn receive(socket: &Socket, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
    // SAFETY: zeroes are a valid sockaddr_nl.
    let mut from: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    let mut from_len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
    // SAFETY: receiving into a buffer of the stated length, the sender into `from`.
    let n = unsafe {
        libc::recvfrom(
            socket.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            (&mut from as *mut libc::sockaddr_nl).cast(),
            &mut from_len,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((from.nl_pid == 0).then_some(n as usize))
}

/// How many packets of queue `queue` of the current thread's namespace the kernel dropped:
/// the queue was full, or the socket could not take them. Read from
/// `/proc/thread-self/net/netfilter/nfnetlink_queue` (the thread's namespace, not the
/// process's): `queue peer_portid total copy_mode copy_range queue_dropped user_dropped ...`.
pub(crate) fn queue_drops(queue: u16) -> std::io::Result<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/net/netfilter/nfnetlink_queue")?;
    Ok(text
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.first().and_then(|q| q.parse::<u16>().ok()) == Some(queue))
        .map(|f| {
            let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            n(5) + n(6)
        })
        .sum())
}

/// Tells the kernel to send packet `id` on, as it was or as `payload`.
fn give_back(socket: &Socket, queue: u16, id: u32, payload: Option<&[u8]>) -> std::io::Result<()> {
    let mut verdict = (libc::NF_ACCEPT as u32).to_be_bytes().to_vec();
    verdict.extend_from_slice(&id.to_be_bytes());
    let mut attrs: Vec<(u16, &[u8])> = vec![(NFQA_VERDICT_HDR, &verdict)];
    if let Some(p) = payload {
        attrs.push((NFQA_PAYLOAD, p));
    }
    let msg = message(NFQNL_MSG_VERDICT, libc::NLM_F_REQUEST as u16, queue, &attrs);
    loop {
        match socket.send(&msg, 0) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_sys::protocols::NETLINK_NETFILTER;

    fn served() -> Served {
        Served {
            id: LinkId {
                host: 0,
                direction: LinkDirection::Ingress,
            },
            queue: 1,
            socket: Socket::new(NETLINK_NETFILTER).unwrap(),
            busy_until: None,
            whole: true,
        }
    }

    fn packet(payload: &[u8]) -> Packet<'_> {
        Packet {
            id: 1,
            payload,
            len: payload.len(),
            whole: true,
        }
    }

    #[test]
    fn a_delay_holds_each_packet_that_long() {
        let mut link = served();
        let netem = Netem {
            delay: Duration::from_millis(150),
            ..Netem::default()
        };
        let before = Instant::now();
        let (due, corrupted) = hold(&netem, &mut link, &packet(&[0u8; 60]));
        assert!(corrupted.is_none());
        let wait = due - before;
        assert!(
            wait >= Duration::from_millis(150) && wait < Duration::from_millis(160),
            "{wait:?}"
        );
    }

    #[test]
    fn a_rate_queues_packets_behind_each_other_by_their_length_on_the_wire() {
        let mut link = served();
        // 1500-byte frames at 1.2 Mbit/s: 10 ms each.
        let netem = Netem {
            rate: Some(1_200_000),
            ..Netem::default()
        };
        let before = Instant::now();
        let dues: Vec<Instant> = (0..3)
            .map(|_| hold(&netem, &mut link, &packet(&[0u8; 1486])).0)
            .collect();
        for (i, due) in dues.iter().enumerate() {
            let wait = (*due - before).as_secs_f64();
            let expected = 0.010 * (i + 1) as f64;
            assert!((wait - expected).abs() < 0.002, "packet {i}: {wait}");
        }
        // A packet cut by the copy counts its whole length.
        let cut = Packet {
            len: 2 * 1486,
            whole: false,
            ..packet(&[0u8; 1486])
        };
        let mut fresh = served();
        let now = Instant::now();
        let wait = (hold(&netem, &mut fresh, &cut).0 - now).as_secs_f64();
        assert!((wait - 0.0199).abs() < 0.002, "{wait}");
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_reorder_sends_at_once_past_the_rate() {
        let mut link = served();
        let netem = Netem {
            delay: Duration::from_millis(100),
            jitter: Duration::from_millis(20),
            ..Netem::default()
        };
        let waits: Vec<f64> = (0..500)
            .map(|_| {
                let now = Instant::now();
                (hold(&netem, &mut link, &packet(&[0u8; 60])).0 - now).as_secs_f64()
            })
            .collect();
        assert!(
            waits.iter().all(|w| (0.079..0.121).contains(w)),
            "{waits:?}"
        );
        assert!(waits.iter().any(|w| *w < 0.09) && waits.iter().any(|w| *w > 0.11));
        let always = Netem {
            reorder: 100.0,
            rate: Some(8_000),
            ..netem
        };
        let now = Instant::now();
        assert!(hold(&always, &mut link, &packet(&[0u8; 60])).0 - now < Duration::from_millis(5));
        assert!(
            link.busy_until.is_none(),
            "a reordered packet skips the rate"
        );
    }

    #[test]
    fn corruption_flips_one_bit_of_whole_packets_only() {
        let mut link = served();
        let netem = Netem {
            corrupt: 100.0,
            ..Netem::default()
        };
        let original = [0u8; 40];
        let copy = hold(&netem, &mut link, &packet(&original)).1.unwrap();
        let flipped: u32 = copy.iter().map(|b| b.count_ones()).sum();
        assert_eq!(flipped, 1);
        // Never in the IP header (here 20 bytes: IHL 5).
        let mut ip = [0u8; 28];
        ip[0] = 0x45;
        for _ in 0..200 {
            let copy = hold(&netem, &mut link, &packet(&ip)).1.unwrap();
            assert_eq!(copy[..20], ip[..20]);
            let flipped: u32 = copy[20..].iter().map(|b| b.count_ones()).sum();
            assert_eq!(flipped, 1);
        }
        // Cut, offloaded or with its checksum to do: given back as it is.
        let partial = Packet {
            whole: false,
            ..packet(&original)
        };
        assert!(hold(&netem, &mut link, &partial).1.is_none());
    }

    #[test]
    fn packets_and_errors_are_read_from_queue_messages_and_junk_is_skipped() {
        let mut hdr = 7u32.to_be_bytes().to_vec();
        hdr.extend_from_slice(&[8, 0, 1]);
        let payload = [0x45u8, 0, 0, 20];
        let mut datagram = message(
            NFQNL_MSG_PACKET,
            0,
            1,
            &[(NFQA_PACKET_HDR, &hdr), (NFQA_PAYLOAD, &payload)],
        );
        // A packet cut to its first 4 bytes, and an offloaded one.
        datagram.extend(message(
            NFQNL_MSG_PACKET,
            0,
            1,
            &[
                (NFQA_PACKET_HDR, &hdr),
                (NFQA_PAYLOAD, &payload),
                (NFQA_CAP_LEN, &70000u32.to_be_bytes()),
            ],
        ));
        datagram.extend(message(
            NFQNL_MSG_PACKET,
            0,
            1,
            &[
                (NFQA_PACKET_HDR, &hdr),
                (NFQA_PAYLOAD, &payload),
                (NFQA_SKB_INFO, &NFQA_SKB_GSO.to_be_bytes()),
            ],
        ));
        datagram.extend(message(NFQNL_MSG_CONFIG, 0, 1, &[]));
        // struct nlmsgerr after a netlink header: the error, then the request's header.
        let mut error = vec![0u8; 16];
        error[..4].copy_from_slice(&36u32.to_ne_bytes());
        error[4..6].copy_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        error.extend_from_slice(&(-libc::ENOENT).to_ne_bytes());
        error.extend_from_slice(&[0u8; 16]);
        datagram.extend(error);
        let got = messages(&datagram);
        assert_eq!(
            got,
            vec![
                Message::Packet(Packet {
                    id: 7,
                    payload: &payload,
                    len: 4,
                    whole: true
                }),
                Message::Packet(Packet {
                    id: 7,
                    payload: &payload,
                    len: 70000,
                    whole: false
                }),
                Message::Packet(Packet {
                    id: 7,
                    payload: &payload,
                    len: 4,
                    whole: false
                }),
                Message::Error(libc::ENOENT),
            ]
        );
        for cut in 0..datagram.len() {
            let _ = messages(&datagram[..cut]);
        }
        let _ = messages(&[0xff; 64]);
    }
}
