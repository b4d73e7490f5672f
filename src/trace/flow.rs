//! TCP flows by four-tuple: who opened it, SYNs and their retransmissions, the answer, resets,
//! FINs, the payload each side sent, and the ICMP errors that quote it.

use std::collections::HashSet;
use std::net::SocketAddrV4;

use super::decode::{IPPROTO_TCP, Kind};
use super::{Packet, Trace};

/// A TCP connection's two ends, client first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// The side that sent the first SYN (or, without one, the first packet).
    pub client: SocketAddrV4,
    /// The other side.
    pub server: SocketAddrV4,
}

/// One end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The side that opened it.
    Client,
    /// The side that was connected to.
    Server,
}

/// One TCP connection (or attempt) in a trace: its packets by role, as indexes into the
/// trace's packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// Its two ends.
    pub key: FlowKey,
    /// Indexes into the trace's packets, in capture order.
    pub packets: Vec<usize>,
    /// Every SYN the client sent; all but the first carry the same ISN.
    pub syns: Vec<usize>,
    /// Every SYN-ACK the server sent.
    pub syn_acks: Vec<usize>,
    /// Every reset, and who sent it.
    pub resets: Vec<(usize, Side)>,
    /// Every FIN, and who sent it.
    pub fins: Vec<(usize, Side)>,
    /// ICMP errors that quote the connection's packets.
    pub icmp_errors: Vec<usize>,
    /// Packets that repeat a sequence range already seen (Wireshark's [TCP Retransmission]).
    pub retransmissions: HashSet<usize>,
}

impl Flow {
    fn new(key: FlowKey) -> Self {
        Flow {
            key,
            packets: Vec::new(),
            syns: Vec::new(),
            syn_acks: Vec::new(),
            resets: Vec::new(),
            fins: Vec::new(),
            icmp_errors: Vec::new(),
            retransmissions: HashSet::new(),
        }
    }

    /// SYN, SYN-ACK and the client's ACK of it were all seen.
    pub fn handshake_completed(&self, trace: &Trace) -> bool {
        let Some(&sa) = self.syn_acks.first() else {
            return false;
        };
        let Kind::Tcp(syn_ack) = &trace.packets[sa].kind else {
            return false;
        };
        self.packets.iter().any(|&i| {
            i > sa
                && matches!(&trace.packets[i].kind, Kind::Tcp(t)
                    if t.src == self.key.client && t.flags.ack && !t.flags.syn
                        && t.ack == syn_ack.seq.wrapping_add(1))
        })
    }

    /// Which side `src` is: the client if it is the client's end, else the server.
    pub fn side_of(&self, src: SocketAddrV4) -> Side {
        if src == self.key.client {
            Side::Client
        } else {
            Side::Server
        }
    }

    /// The bytes `side` sent, in order, each once (retransmissions left out). Made on demand
    /// from the packets, so a bulk capture is not held twice.
    pub fn payload(&self, trace: &Trace, side: Side) -> Vec<u8> {
        let sender = match side {
            Side::Client => self.key.client,
            Side::Server => self.key.server,
        };
        let mut bytes = Vec::new();
        for &i in &self.packets {
            if let Kind::Tcp(t) = &trace.packets[i].kind
                && t.src == sender
                && !self.retransmissions.contains(&i)
            {
                bytes.extend_from_slice(&t.payload);
            }
        }
        bytes
    }
}

pub(super) fn flows(packets: &[Packet]) -> Vec<Flow> {
    let mut flows: Vec<Flow> = Vec::new();
    let find = |flows: &Vec<Flow>, a: SocketAddrV4, b: SocketAddrV4| {
        flows.iter().rposition(|f| {
            (f.key.client == a && f.key.server == b) || (f.key.client == b && f.key.server == a)
        })
    };
    // Sequence ranges (seq, length, SYN, FIN) seen per flow and direction, to spot
    // retransmissions.
    type Ranges = HashSet<(u32, usize, bool, bool)>;
    let mut seen: Vec<[Ranges; 2]> = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        match &p.kind {
            Kind::Tcp(t) => {
                // A new SYN on a four-tuple whose earlier flow ended starts a new flow.
                let fresh_syn = t.flags.syn && !t.flags.ack;
                let existing = find(&flows, t.src, t.dst).filter(|&f| {
                    let ended = !flows[f].resets.is_empty() || !flows[f].fins.is_empty();
                    let other_isn = flows[f].syns.last().is_some_and(
                        |&s| matches!(&packets[s].kind, Kind::Tcp(old) if old.seq != t.seq),
                    );
                    !fresh_syn || !other_isn || !ended
                });
                let f = match existing {
                    Some(f) => f,
                    None => {
                        let key = if t.flags.syn && t.flags.ack {
                            FlowKey {
                                client: t.dst,
                                server: t.src,
                            }
                        } else {
                            FlowKey {
                                client: t.src,
                                server: t.dst,
                            }
                        };
                        flows.push(Flow::new(key));
                        seen.push([HashSet::new(), HashSet::new()]);
                        flows.len() - 1
                    }
                };
                let flow = &mut flows[f];
                let side = flow.side_of(t.src);
                flow.packets.push(i);
                let consumes = !t.payload.is_empty() || t.flags.syn || t.flags.fin;
                let range = (t.seq, t.payload.len(), t.flags.syn, t.flags.fin);
                let dir = side as usize;
                if consumes && !t.flags.rst && !seen[f][dir].insert(range) {
                    flow.retransmissions.insert(i);
                }
                if t.flags.syn && !t.flags.ack && side == Side::Client {
                    flow.syns.push(i);
                }
                if t.flags.syn && t.flags.ack {
                    flow.syn_acks.push(i);
                }
                if t.flags.rst {
                    flow.resets.push((i, side));
                }
                if t.flags.fin {
                    flow.fins.push((i, side));
                }
            }
            Kind::Icmp(icmp) => {
                if let Some(q) = icmp.quoted.filter(|q| q.protocol == IPPROTO_TCP)
                    && let Some(f) = find(&flows, q.src, q.dst)
                {
                    flows[f].icmp_errors.push(i);
                    flows[f].packets.push(i);
                }
            }
            _ => {}
        }
    }
    flows
}
