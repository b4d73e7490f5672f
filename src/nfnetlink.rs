//! Netfilter netlink, as tcplab's rule trace, rule handles and delay line speak it: sockets
//! opened in the calling thread's namespace with a receive buffer deep enough for their
//! bursts, and the few messages tcplab writes and reads by hand.

use std::os::fd::AsRawFd;

use netlink_sys::{Socket, protocols::NETLINK_NETFILTER};

/// A netfilter netlink socket bound to a port of its own, whose receive buffer holds
/// `receive_buffer` bytes.
pub(crate) fn socket(receive_buffer: usize) -> std::io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    // FORCE goes past rmem_max, a machine-wide sysctl tcplab must not change.
    let size = libc::c_int::try_from(receive_buffer).unwrap_or(libc::c_int::MAX);
    // SAFETY: an int option of the stated size on a valid descriptor.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(socket)
}

/// Appends attribute `kind` with `value`, padded to netlink's 4-byte alignment.
pub(crate) fn push_attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// A netfilter request: netlink header (type `subsystem << 8 | kind`), `struct nfgenmsg`
/// (`family`, version 0, `resource` big-endian), then `attrs`.
pub(crate) fn request(
    (subsystem, kind): (u16, u16),
    flags: u16,
    seq: u32,
    (family, resource): (u8, u16),
    attrs: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&0u32.to_ne_bytes()); // length, set below
    out.extend_from_slice(&((subsystem << 8) | kind).to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    out.extend_from_slice(&[family, libc::NFNETLINK_V0 as u8]);
    out.extend_from_slice(&resource.to_be_bytes());
    for (kind, value) in attrs {
        push_attr(&mut out, *kind, value);
    }
    let len = out.len() as u32;
    out[..4].copy_from_slice(&len.to_ne_bytes());
    out
}

/// The error an `NLMSG_ERROR` message carries, as a positive errno (0: an acknowledgement);
/// `None` for any other message.
pub(crate) fn error_code(msg: &netlink_packet_core::NetlinkBuffer<&[u8]>) -> Option<i32> {
    (msg.message_type() == libc::NLMSG_ERROR as u16).then(|| {
        msg.payload()
            .get(..4)
            .map_or(0, |b| -i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    })
}
