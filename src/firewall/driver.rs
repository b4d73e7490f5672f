//! Loads rulesets into the kernel with nftnl, in one atomic batch per namespace. Must run on
//! the namespace's own thread: the netfilter socket talks to the namespace it was opened in.

use std::ffi::CString;
use std::ptr::NonNull;

use nftnl::expr::{Expression, States};
use nftnl::nftnl_sys::{self as sys, libc};
use nftnl::{Batch, MsgType, ProtoFamily, nft_expr};

use super::ruleset::{Family, Hook, Match, Reject, Table, Verdict};
use crate::spec::Protocol;

#[derive(Debug, thiserror::Error)]
#[error("cannot load nftables rules ({what}): {source}{}", hint(.source))]
/// The kernel refused a ruleset.
pub struct FirewallError {
    /// Which rules: whose security groups or firewall.
    pub what: String,
    /// The kernel's answer.
    #[source]
    pub source: std::io::Error,
}

fn hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) => {
            " (needs CAP_NET_ADMIN: run as root, or in a container started with --privileged)"
        }
        Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) | Some(libc::EPROTONOSUPPORT) => {
            " (the kernel lacks an nftables feature: nf_tables, nft_ct, nft_reject_inet or nft_reject_netdev)"
        }
        _ => "",
    }
}

/// Whether tables of tcplab may already exist in the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// A namespace that holds none of the tables yet.
    Fresh,
    /// These tables may exist: they go in the same atomic batch that adds the new ones, so
    /// no packet meets neither; established connections are kept.
    Replace(Vec<(Family, String)>),
}

/// A rule as the kernel holds it: where, its handle, and the comment tcplab gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub family: Family,
    pub table: String,
    pub chain: String,
    pub handle: u64,
    pub comment: Option<String>,
}

/// Loads `tables` into the current thread's namespace in one atomic batch, and returns the
/// handle the kernel gave each rule that has a comment.
pub fn load(tables: &[Table], mode: Mode, what: &str) -> Result<Vec<Loaded>, FirewallError> {
    let err = |source| FirewallError {
        what: what.to_string(),
        source,
    };
    let old = match &mode {
        Mode::Fresh => &[][..],
        Mode::Replace(old) => &old[..],
    };
    if tables.is_empty() && old.is_empty() {
        return Ok(Vec::new());
    }
    // The kernel takes a batch in one datagram only; nftnl splits it into pages sent one by
    // one, so the page must hold the whole batch.
    let messages: usize = 2 * old.len()
        + tables
            .iter()
            .map(|t| 1 + t.chains.len() + t.chains.iter().map(|c| c.rules.len()).sum::<usize>())
            .sum::<usize>();
    let page = (messages * MAX_MESSAGE_BYTES).max(MIN_PAGE_BYTES) as u32;
    let mut batch = Batch::with_page_size(page);
    let names: Vec<(CString, ProtoFamily)> = tables
        .iter()
        .map(|t| (cstring(&t.name), family(t.family)))
        .collect();
    let nft_tables: Vec<nftnl::Table> = names
        .iter()
        .map(|(name, fam)| nftnl::Table::new(name, *fam))
        .collect();
    let old_names: Vec<(CString, ProtoFamily)> = old
        .iter()
        .map(|(f, name)| (cstring(name), family(*f)))
        .collect();
    // Add-then-delete removes a table whether or not it exists. Deleting costs the kernel a
    // grace period (milliseconds), so a fresh namespace skips it.
    for (name, fam) in &old_names {
        let t = nftnl::Table::new(name, *fam);
        batch.add(&t, MsgType::Add);
        batch.add(&t, MsgType::Del);
    }
    for t in &nft_tables {
        batch.add(t, MsgType::Add);
    }
    for (table, nft_table) in tables.iter().zip(&nft_tables) {
        let chains: Vec<nftnl::Chain> = table
            .chains
            .iter()
            .map(|c| {
                let mut chain = nftnl::Chain::new(cstring(&c.name), nft_table);
                if let Some(base) = &c.base {
                    chain.set_hook(hook(table.family, base.hook), base.priority);
                    chain.set_type(nftnl::ChainType::Filter);
                    chain.set_policy(if base.policy_drop {
                        nftnl::Policy::Drop
                    } else {
                        nftnl::Policy::Accept
                    });
                    if let Some(dev) = &base.device {
                        chain.set_device(cstring(dev));
                    }
                }
                chain
            })
            .collect();
        for chain in &chains {
            batch.add(chain, MsgType::Add);
        }
        for (c, chain) in table.chains.iter().zip(&chains) {
            for r in &c.rules {
                let mut rule = nftnl::Rule::new(chain);
                let mut ipv4_checked = false;
                for m in &r.matches {
                    add_match(&mut rule, m, table.family, &mut ipv4_checked);
                }
                add_verdict(&mut rule, &r.verdict);
                if let Some(comment) = &r.comment {
                    rule.set_comment(cstring(comment)).map_err(|e| {
                        err(std::io::Error::other(format!(
                            "rule comment `{comment}`: {e} (a tcplab bug: comments are cut to fit)"
                        )))
                    })?;
                }
                batch.add(&rule, MsgType::Add);
            }
        }
    }
    send(&batch.finalize()).map_err(err)?;
    let mut loaded = Vec::new();
    for t in tables {
        if t.chains
            .iter()
            .any(|c| c.rules.iter().any(|r| r.comment.is_some()))
        {
            loaded.extend(super::handles::dump(t.family, &t.name).map_err(err)?);
        }
    }
    Ok(loaded)
}

/// More than the largest message tcplab writes (a rule with two address matches, ports and
/// a verdict is under 600 bytes).
const MAX_MESSAGE_BYTES: usize = 2048;
const MIN_PAGE_BYTES: usize = 64 * 1024;

fn send(batch: &nftnl::FinalizedBatch) -> std::io::Result<()> {
    if batch.iter().count() != 1 {
        return Err(std::io::Error::other(
            "the nftables batch did not fit in one datagram (a tcplab bug: its size estimate is too small)",
        ));
    }
    let socket = mnl::Socket::new(mnl::Bus::Netfilter)?;
    // Every message of the batch is acknowledged; with a hundred hosts the acks overflow the
    // default receive buffer (ENOBUFS) before they are read.
    {
        use nix::sys::socket::{setsockopt, sockopt};
        use std::os::fd::{AsRawFd, BorrowedFd};
        // SAFETY: the socket outlives this borrow of its descriptor.
        let fd = unsafe { BorrowedFd::borrow_raw(socket.as_raw_fd()) };
        setsockopt(&fd, sockopt::RcvBufForce, &(16 << 20))?;
        // And the batch goes as one datagram, which must fit the send buffer.
        let size: usize = batch.iter().map(|page| page.len()).sum();
        setsockopt(&fd, sockopt::SndBufForce, &(size + MIN_PAGE_BYTES))?;
    }
    socket.send_all(batch)?;
    let portid = socket.portid();
    let mut buffer = vec![0; nftnl::nft_nlmsg_maxsize() as usize];
    let mut expected = batch.sequence_numbers();
    while !expected.is_empty() {
        for message in socket.recv(&mut buffer[..])? {
            let message = message?;
            let Some(seq) = expected.next() else { break };
            mnl::cb_run(message, seq, portid)?;
        }
    }
    Ok(())
}

fn cstring(s: &str) -> CString {
    CString::new(s).expect("names come from validated specs and hold no NUL")
}

fn family(f: Family) -> ProtoFamily {
    match f {
        Family::Inet => ProtoFamily::Inet,
        Family::Netdev => ProtoFamily::NetDev,
    }
}

fn hook(family: Family, hook: Hook) -> nftnl::Hook {
    match (family, hook) {
        // In a netdev table the ingress hook is number 0, which nftnl calls PreRouting;
        // its Ingress is the inet family's and fails there with EOPNOTSUPP. The egress hook
        // is number 1 (nftnl's In).
        (Family::Netdev, Hook::Egress) => nftnl::Hook::In,
        (Family::Netdev, _) => nftnl::Hook::PreRouting,
        (Family::Inet, Hook::Prerouting) => nftnl::Hook::PreRouting,
        (Family::Inet, Hook::Forward) => nftnl::Hook::Forward,
        (Family::Inet, Hook::Input) => nftnl::Hook::In,
        (Family::Inet, Hook::Output) => nftnl::Hook::Out,
        (Family::Inet, Hook::Ingress) => nftnl::Hook::Ingress,
        // Never built: egress chains are netdev only.
        (Family::Inet, Hook::Egress) => nftnl::Hook::Out,
    }
}

/// The match the nft CLI adds before an IPv4 address match: the kernel needs it to know the
/// network header is IPv4.
fn require_ipv4(rule: &mut nftnl::Rule, family: Family, done: &mut bool) {
    if *done {
        return;
    }
    *done = true;
    match family {
        Family::Inet => {
            rule.add_expr(&nft_expr!(meta nfproto));
            rule.add_expr(&nft_expr!(cmp == libc::NFPROTO_IPV4 as u8));
        }
        Family::Netdev => {
            rule.add_expr(&nftnl::expr::Meta::Protocol);
            rule.add_expr(&nft_expr!(
                cmp == &(libc::ETH_P_IP as u16).to_be_bytes()[..]
            ));
        }
    }
}

fn add_match(rule: &mut nftnl::Rule, m: &Match, family: Family, ipv4: &mut bool) {
    match m {
        Match::EstablishedOrRelated => {
            let mask = (States::ESTABLISHED | States::RELATED).bits();
            rule.add_expr(&nft_expr!(ct state));
            rule.add_expr(&nft_expr!(bitwise mask mask, xor 0u32));
            rule.add_expr(&nft_expr!(cmp != 0u32));
        }
        Match::SourceNet(net) | Match::DestinationNet(net) => {
            require_ipv4(rule, family, ipv4);
            if matches!(m, Match::SourceNet(_)) {
                rule.add_expr(&nft_expr!(payload ipv4 saddr));
            } else {
                rule.add_expr(&nft_expr!(payload ipv4 daddr));
            }
            if net.prefix_len() < 32 {
                rule.add_expr(&nft_expr!(bitwise mask net.netmask(), xor 0u32));
            }
            rule.add_expr(&nft_expr!(cmp == net.network()));
        }
        Match::L4Proto(p) => {
            let number = match p {
                Protocol::Tcp => libc::IPPROTO_TCP,
                Protocol::Udp => libc::IPPROTO_UDP,
                Protocol::Icmp => libc::IPPROTO_ICMP,
                Protocol::All => return,
            };
            if family == Family::Netdev {
                require_ipv4(rule, family, ipv4);
            }
            rule.add_expr(&nft_expr!(meta l4proto));
            rule.add_expr(&nft_expr!(cmp == number as u8));
        }
        Match::InputInterface(name) | Match::OutputInterface(name) => {
            if matches!(m, Match::InputInterface(_)) {
                rule.add_expr(&nft_expr!(meta iifname));
            } else {
                rule.add_expr(&nft_expr!(meta oifname));
            }
            // Names compare as the kernel holds them: IFNAMSIZ bytes, NUL padded.
            let mut padded = [0u8; libc::IFNAMSIZ];
            let n = name.len().min(libc::IFNAMSIZ - 1);
            padded[..n].copy_from_slice(&name.as_bytes()[..n]);
            rule.add_expr(&nft_expr!(cmp == &padded[..]));
        }
        Match::TcpSyn => {
            add_match(rule, &Match::L4Proto(Protocol::Tcp), family, ipv4);
            rule.add_expr(&TransportByte(TCP_FLAGS_OFFSET));
            rule.add_expr(&nft_expr!(bitwise mask TCP_SYN | TCP_ACK, xor 0u8));
            rule.add_expr(&nft_expr!(cmp == TCP_SYN));
        }
        Match::TcpPsh => {
            add_match(rule, &Match::L4Proto(Protocol::Tcp), family, ipv4);
            rule.add_expr(&TransportByte(TCP_FLAGS_OFFSET));
            rule.add_expr(&nft_expr!(bitwise mask TCP_PSH, xor 0u8));
            rule.add_expr(&nft_expr!(cmp == TCP_PSH));
        }
        Match::Ipv4 => require_ipv4(rule, family, ipv4),
        Match::Traced => {
            rule.add_expr(&nftnl::expr::Immediate::new(
                1u8,
                nftnl::expr::Register::Reg1,
            ));
            rule.add_expr(&SetNftrace);
        }
        Match::Random(n) => {
            rule.add_expr(&NumberGenerator {
                random: true,
                modulus: super::ruleset::RANDOM_MODULUS,
            });
            rule.add_expr(&HostToNetwork32);
            rule.add_expr(&nft_expr!(cmp < &n.to_be_bytes()[..]));
        }
        Match::FirstPackets(n) => {
            // The counter is host-endian in its register; `<` compares bytes as big-endian
            // numbers, so it is turned first, as the nft CLI does.
            rule.add_expr(&NumberGenerator {
                random: false,
                modulus: u32::MAX,
            });
            rule.add_expr(&HostToNetwork32);
            rule.add_expr(&nft_expr!(cmp < &n.to_be_bytes()[..]));
        }
        Match::DestinationPorts(p, range) => {
            match p {
                Protocol::Udp => rule.add_expr(&nft_expr!(payload udp dport)),
                _ => rule.add_expr(&nft_expr!(payload tcp dport)),
            }
            if range.first == range.last {
                rule.add_expr(&nft_expr!(cmp == &range.first.to_be_bytes()[..]));
            } else {
                rule.add_expr(&nft_expr!(cmp >= &range.first.to_be_bytes()[..]));
                rule.add_expr(&nft_expr!(cmp <= &range.last.to_be_bytes()[..]));
            }
        }
    }
}

fn add_verdict(rule: &mut nftnl::Rule, v: &Verdict) {
    match v {
        Verdict::Accept => rule.add_expr(&nft_expr!(verdict accept)),
        Verdict::Drop => rule.add_expr(&nft_expr!(verdict drop)),
        Verdict::Return => rule.add_expr(&nft_expr!(verdict return)),
        Verdict::Jump(chain) => rule.add_expr(&nftnl::expr::Verdict::Jump {
            chain: cstring(chain),
        }),
        Verdict::Reject(r) => rule.add_expr(&RejectExpr(*r)),
        Verdict::Queue(n) => rule.add_expr(&QueueExpr(*n)),
        Verdict::TraceOn => {
            rule.add_expr(&nftnl::expr::Immediate::new(
                1u8,
                nftnl::expr::Register::Reg1,
            ));
            rule.add_expr(&SetNftrace);
        }
    }
}

/// `queue num N`. Some kernels are built without nftables' own queue expression
/// (CONFIG_NFT_QUEUE) but with xtables' NFQUEUE target, which nftables runs through its
/// compat layer (CONFIG_NFT_COMPAT), as `iptables-nft -j NFQUEUE` does: the target is used,
/// so both kinds of kernel take the rule.
struct QueueExpr(u16);

/// `struct xt_NFQ_info_v1` (linux/netfilter/xt_NFQUEUE.h): the queue, and how many queues
/// to spread over (one).
const NFQUEUE_REVISION: u32 = 1;

impl Expression for QueueExpr {
    fn to_expr(&self, _rule: &nftnl::Rule) -> NonNull<sys::nftnl_expr> {
        let mut info = [0u8; 4];
        info[..2].copy_from_slice(&self.0.to_ne_bytes());
        info[2..].copy_from_slice(&1u16.to_ne_bytes());
        // SAFETY: a fresh expression from libnftnl, set with the attributes "target" takes.
        // libnftnl keeps the info buffer and frees it with the expression, so it is given
        // one from malloc, filled before it is handed over.
        unsafe {
            let expr = NonNull::new(sys::nftnl_expr_alloc(c"target".as_ptr()))
                .expect("libnftnl could not allocate an expression (out of memory)");
            sys::nftnl_expr_set_str(
                expr.as_ptr(),
                sys::NFTNL_EXPR_TG_NAME as u16,
                c"NFQUEUE".as_ptr(),
            );
            sys::nftnl_expr_set_u32(
                expr.as_ptr(),
                sys::NFTNL_EXPR_TG_REV as u16,
                NFQUEUE_REVISION,
            );
            let data = libc::malloc(info.len()).cast::<u8>();
            assert!(!data.is_null(), "out of memory");
            std::ptr::copy_nonoverlapping(info.as_ptr(), data, info.len());
            sys::nftnl_expr_set(
                expr.as_ptr(),
                sys::NFTNL_EXPR_TG_INFO as u16,
                data.cast(),
                info.len() as u32,
            );
            expr
        }
    }
}

/// `meta nftrace set` from register 1: nftnl's meta expression only loads, or sets the mark.
struct SetNftrace;

impl Expression for SetNftrace {
    fn to_expr(&self, _rule: &nftnl::Rule) -> NonNull<sys::nftnl_expr> {
        // SAFETY: a fresh expression from libnftnl, set with the attributes "meta" takes.
        unsafe {
            let expr = NonNull::new(sys::nftnl_expr_alloc(c"meta".as_ptr()))
                .expect("libnftnl could not allocate an expression (out of memory)");
            sys::nftnl_expr_set_u32(
                expr.as_ptr(),
                sys::NFTNL_EXPR_META_KEY as u16,
                libc::NFT_META_NFTRACE as u32,
            );
            sys::nftnl_expr_set_u32(
                expr.as_ptr(),
                sys::NFTNL_EXPR_META_SREG as u16,
                libc::NFT_REG_1 as u32,
            );
            expr
        }
    }
}

/// A reject statement. nftnl's own picks ICMP codes by family and, in a netdev table, would
/// send the ICMPX code number as a raw ICMP code (host-unreachable would go out as
/// protocol-unreachable); the ICMPX type is right in every family tcplab uses.
struct RejectExpr(Reject);

impl Expression for RejectExpr {
    fn to_expr(&self, _rule: &nftnl::Rule) -> NonNull<sys::nftnl_expr> {
        let (kind, code) = match self.0 {
            Reject::TcpReset => (libc::NFT_REJECT_TCP_RST, 0),
            Reject::HostUnreachable => (
                libc::NFT_REJECT_ICMPX_UNREACH,
                libc::NFT_REJECT_ICMPX_HOST_UNREACH,
            ),
            Reject::PortUnreachable => (
                libc::NFT_REJECT_ICMPX_UNREACH,
                libc::NFT_REJECT_ICMPX_PORT_UNREACH,
            ),
            Reject::AdminProhibited => (
                libc::NFT_REJECT_ICMPX_UNREACH,
                libc::NFT_REJECT_ICMPX_ADMIN_PROHIBITED,
            ),
        };
        // SAFETY: a fresh expression from libnftnl, set with the attributes "reject" takes.
        unsafe {
            let expr = NonNull::new(sys::nftnl_expr_alloc(c"reject".as_ptr()))
                .expect("libnftnl could not allocate an expression (out of memory)");
            sys::nftnl_expr_set_u32(
                expr.as_ptr(),
                sys::NFTNL_EXPR_REJECT_TYPE as u16,
                kind as u32,
            );
            sys::nftnl_expr_set_u8(
                expr.as_ptr(),
                sys::NFTNL_EXPR_REJECT_CODE as u16,
                code as u8,
            );
            expr
        }
    }
}

/// Where the flags sit in a TCP header, and two of them.
const TCP_FLAGS_OFFSET: u32 = 13;
const TCP_SYN: u8 = 0x02;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;

/// Loads one byte of the transport header at an offset into register 1 (nftnl names only the
/// ports).
struct TransportByte(u32);

impl Expression for TransportByte {
    fn to_expr(&self, _rule: &nftnl::Rule) -> NonNull<sys::nftnl_expr> {
        // SAFETY: a fresh expression from libnftnl, set with the attributes "payload" takes.
        unsafe {
            let expr = NonNull::new(sys::nftnl_expr_alloc(c"payload".as_ptr()))
                .expect("libnftnl could not allocate an expression (out of memory)");
            let e = expr.as_ptr();
            sys::nftnl_expr_set_u32(
                e,
                sys::NFTNL_EXPR_PAYLOAD_BASE as u16,
                libc::NFT_PAYLOAD_TRANSPORT_HEADER as u32,
            );
            sys::nftnl_expr_set_u32(e, sys::NFTNL_EXPR_PAYLOAD_OFFSET as u16, self.0);
            sys::nftnl_expr_set_u32(e, sys::NFTNL_EXPR_PAYLOAD_LEN as u16, 1);
            sys::nftnl_expr_set_u32(
                e,
                sys::NFTNL_EXPR_PAYLOAD_DREG as u16,
                libc::NFT_REG_1 as u32,
            );
            expr
        }
    }
}

/// `numgen inc mod M` or `numgen random mod M` into register 1. `inc` is a counter of the
/// packets that reach it, from 0: exact (no randomness, no refill over time as `limit` has;
/// `quota` counts bytes).
struct NumberGenerator {
    random: bool,
    modulus: u32,
}

impl Expression for NumberGenerator {
    fn to_expr(&self, _rule: &nftnl::Rule) -> NonNull<sys::nftnl_expr> {
        // SAFETY: a fresh expression from libnftnl, set with the attributes "numgen" takes.
        unsafe {
            let expr = NonNull::new(sys::nftnl_expr_alloc(c"numgen".as_ptr()))
                .expect("libnftnl could not allocate an expression (out of memory)");
            let e = expr.as_ptr();
            sys::nftnl_expr_set_u32(e, sys::NFTNL_EXPR_NG_DREG as u16, libc::NFT_REG_1 as u32);
            sys::nftnl_expr_set_u32(e, sys::NFTNL_EXPR_NG_MODULUS as u16, self.modulus);
            let kind = if self.random {
                libc::NFT_NG_RANDOM
            } else {
                libc::NFT_NG_INCREMENTAL
            };
            sys::nftnl_expr_set_u32(e, sys::NFTNL_EXPR_NG_TYPE as u16, kind as u32);
            expr
        }
    }
}

/// Register 1's 32-bit number from host to network byte order.
struct HostToNetwork32;

impl Expression for HostToNetwork32 {
    fn to_expr(&self, _rule: &nftnl::Rule) -> NonNull<sys::nftnl_expr> {
        // SAFETY: a fresh expression from libnftnl, set with the attributes "byteorder" takes.
        unsafe {
            let expr = NonNull::new(sys::nftnl_expr_alloc(c"byteorder".as_ptr()))
                .expect("libnftnl could not allocate an expression (out of memory)");
            let e = expr.as_ptr();
            sys::nftnl_expr_set_u32(
                e,
                sys::NFTNL_EXPR_BYTEORDER_SREG as u16,
                libc::NFT_REG_1 as u32,
            );
            sys::nftnl_expr_set_u32(
                e,
                sys::NFTNL_EXPR_BYTEORDER_DREG as u16,
                libc::NFT_REG_1 as u32,
            );
            sys::nftnl_expr_set_u32(
                e,
                sys::NFTNL_EXPR_BYTEORDER_OP as u16,
                libc::NFT_BYTEORDER_HTON as u32,
            );
            sys::nftnl_expr_set_u32(e, sys::NFTNL_EXPR_BYTEORDER_LEN as u16, 4);
            sys::nftnl_expr_set_u32(e, sys::NFTNL_EXPR_BYTEORDER_SIZE as u16, 4);
            expr
        }
    }
}
