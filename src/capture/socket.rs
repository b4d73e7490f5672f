//! The AF_PACKET socket of one interface: opened in the interface's namespace, read from any
//! thread, with kernel timestamps, direction and drop counts.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::Direction;

/// Large enough for veth's GSO frames (up to about 64 KiB) with room to spare.
pub const SNAP_LEN: usize = 262_144;
/// The kernel's queue for frames not yet read; a bulk transfer needs a deep one.
const RECEIVE_BUFFER: libc::c_int = 1 << 30;

fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc < 0 { Err(last_error()) } else { Ok(()) }
}

/// Opens a packet socket bound to `ifname`. Must run on a thread inside the interface's
/// namespace.
pub fn open(ifname: &str) -> std::io::Result<OwnedFd> {
    let name = std::ffi::CString::new(ifname).map_err(std::io::Error::other)?;
    // SAFETY: plain syscalls on values we own; results are checked.
    unsafe {
        let index = libc::if_nametoindex(name.as_ptr());
        if index == 0 {
            return Err(last_error());
        }
        // Protocol 0 until bound: no frame of another interface is queued before the bind.
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(last_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let on: libc::c_int = 1;
        set(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, on)?;
        // FORCE goes past rmem_max, which is a machine-wide sysctl we must not change.
        set(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            RECEIVE_BUFFER,
        )?;
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = index as i32;
        check(libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        ))?;
        Ok(fd)
    }
}

unsafe fn set(
    fd: RawFd,
    level: libc::c_int,
    opt: libc::c_int,
    v: libc::c_int,
) -> std::io::Result<()> {
    // SAFETY: a c_int option of the stated size on a valid fd.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
}

/// One frame as the kernel gave it.
pub struct RawFrame {
    pub since_epoch: Duration,
    pub direction: Direction,
    pub original_len: usize,
}

/// Reads one frame into `buf`; `None` when nothing is queued and `wait` is false.
pub fn read(fd: RawFd, buf: &mut [u8], wait: bool) -> std::io::Result<Option<(RawFrame, usize)>> {
    // SAFETY: recvmsg into buffers that outlive the call; cmsgs are walked with libc's macros.
    unsafe {
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 16];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = (&mut addr as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        let flags = libc::MSG_TRUNC | if wait { 0 } else { libc::MSG_DONTWAIT };
        let n = libc::recvmsg(fd, &mut msg, flags);
        if n < 0 {
            let e = last_error();
            return match e.kind() {
                std::io::ErrorKind::WouldBlock => Ok(None),
                std::io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        let mut since_epoch = Duration::ZERO;
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::timespec);
                since_epoch = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        let direction = if addr.sll_pkttype == libc::PACKET_OUTGOING {
            Direction::Out
        } else {
            Direction::In
        };
        let original_len = n as usize;
        Ok(Some((
            RawFrame {
                since_epoch,
                direction,
                original_len,
            },
            original_len.min(buf.len()),
        )))
    }
}

/// Frames the kernel dropped since the last call (reading resets its counter).
pub fn drops(fd: RawFd) -> std::io::Result<u64> {
    // SAFETY: getsockopt into a struct of the size given.
    unsafe {
        let mut stats: libc::tpacket_stats = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        check(libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut stats as *mut libc::tpacket_stats).cast(),
            &mut len,
        ))?;
        Ok(stats.tp_drops as u64)
    }
}
