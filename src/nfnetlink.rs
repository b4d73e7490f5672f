//! Netfilter netlink sockets, as tcplab's rule trace and delay line open them: in the calling
//! thread's namespace, with a receive buffer deep enough for their bursts.

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
