//! The handles the kernel gave the rules of a table, read back with their comments: a trace
//! event names a rule only by table, chain and handle.

use netlink_packet_core::{NetlinkBuffer, NlaBuffer, NlasIterator};

use super::driver::Loaded;
use super::ruleset::Family;

/// `enum nf_tables_msg_types` and `enum nft_rule_attributes` (linux/netfilter/nf_tables.h).
const NFT_MSG_GETRULE: u16 = 7;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_USERDATA: u16 = 7;
/// `enum nftnl_udata_rule_types`: the comment the nft CLI shows.
const UDATA_RULE_COMMENT: u8 = 0;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

/// Every rule of table `name` in the current thread's namespace.
pub fn dump(family: Family, name: &str) -> std::io::Result<Vec<Loaded>> {
    let socket = mnl::Socket::new(mnl::Bus::Netfilter)?;
    let seq = 1;
    socket.send(&request(family, name, seq))?;
    let portid = socket.portid();
    let mut buffer = vec![0; nftnl::nft_nlmsg_maxsize() as usize];
    let mut rules = Vec::new();
    loop {
        let n = socket_recv(&socket, &mut buffer)?;
        let mut data = &buffer[..n];
        while !data.is_empty() {
            let msg = NetlinkBuffer::new_checked(data).map_err(bad)?;
            let len = (msg.length() as usize).min(data.len());
            if msg.sequence_number() != seq || msg.port_number() != portid {
                data = &data[align(len).min(data.len())..];
                continue;
            }
            match msg.message_type() {
                NLMSG_DONE => return Ok(rules),
                NLMSG_ERROR => {
                    if let Some(code) = crate::nfnetlink::error_code(&msg).filter(|c| *c != 0) {
                        return Err(std::io::Error::from_raw_os_error(code));
                    }
                }
                _ => {
                    if let Some(rule) = parse_rule(family, msg.payload())? {
                        rules.push(rule);
                    }
                }
            }
            data = &data[align(len).min(data.len())..];
        }
    }
}

fn socket_recv(socket: &mnl::Socket, buffer: &mut [u8]) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor and a buffer we own, for the length given.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            0,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}

fn bad(e: netlink_packet_core::DecodeError) -> std::io::Error {
    std::io::Error::other(format!("unreadable nftables rule from the kernel: {e}"))
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn request(family: Family, table: &str, seq: u32) -> Vec<u8> {
    let mut name = table.as_bytes().to_vec();
    name.push(0);
    crate::nfnetlink::request(
        (libc::NFNL_SUBSYS_NFTABLES as u16, NFT_MSG_GETRULE),
        (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
        seq,
        (nfproto(family), 0),
        &[(NFTA_RULE_TABLE, &name)],
    )
}

pub(crate) fn nfproto(family: Family) -> u8 {
    match family {
        Family::Inet => libc::NFPROTO_INET as u8,
        Family::Netdev => libc::NFPROTO_NETDEV as u8,
    }
}

fn parse_rule(family: Family, payload: &[u8]) -> std::io::Result<Option<Loaded>> {
    let Some(attrs) = payload.get(4..) else {
        return Ok(None);
    };
    let (mut table, mut chain, mut handle, mut comment) = (None, None, None, None);
    for nla in NlasIterator::new(attrs) {
        let nla: NlaBuffer<&[u8]> = nla.map_err(bad)?;
        let value = nla.value();
        match nla.kind() {
            NFTA_RULE_TABLE => table = Some(c_string(value)),
            NFTA_RULE_CHAIN => chain = Some(c_string(value)),
            NFTA_RULE_HANDLE => {
                handle = value
                    .get(..8)
                    .map(|b| u64::from_be_bytes(b.try_into().unwrap_or_default()))
            }
            NFTA_RULE_USERDATA => comment = udata_comment(value),
            _ => {}
        }
    }
    Ok(match (table, chain, handle) {
        (Some(table), Some(chain), Some(handle)) => Some(Loaded {
            family,
            table,
            chain,
            handle,
            comment,
        }),
        _ => None,
    })
}

pub(crate) fn c_string(value: &[u8]) -> String {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end]).into_owned()
}

/// The comment in a rule's user data: type-length-value records of one byte each.
fn udata_comment(mut data: &[u8]) -> Option<String> {
    while let [kind, len, rest @ ..] = data {
        let len = *len as usize;
        let value = rest.get(..len)?;
        if *kind == UDATA_RULE_COMMENT {
            return Some(c_string(value));
        }
        data = &rest[len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_found_among_user_data_records() {
        let data = [1, 2, 9, 9, 0, 4, b'a', b'b', b'c', 0];
        assert_eq!(udata_comment(&data).as_deref(), Some("abc"));
        assert_eq!(udata_comment(&[0, 200, b'x']), None, "length past the end");
        assert_eq!(udata_comment(&[]), None);
    }

    #[test]
    fn request_is_aligned_and_names_the_table() {
        let m = request(Family::Inet, "tcplab", 7);
        assert_eq!(m.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes(m[..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(&m[24..31], b"tcplab\0");
    }
}
