//! The bootstrap channel and the socket primitives under `Connection`:
//! Unix stream socket pairs, vectored sends, receives and polling.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::{RawChild, cvt, retry};

/// One end of a bootstrap channel: a Unix stream socket.
#[derive(Debug)]
pub(crate) struct Channel {
    fd: OwnedFd,
}

impl std::os::fd::AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The end of a new channel that goes to the child.
#[derive(Debug)]
pub(crate) struct ChildEnd(pub(super) OwnedFd);

impl Channel {
    /// A connected pair; both ends are close-on-exec.
    pub(crate) fn pair() -> io::Result<(Channel, ChildEnd)> {
        // Wherever the child's end sits, `spawn_sources` moves it out of
        // the way of the descriptors it is mapped onto.
        let (a, b) = socketpair()?;
        Ok((Channel { fd: a }, ChildEnd(b)))
    }

    /// The channel a child inherited at descriptor `fd` (from the
    /// bootstrap environment variable).
    pub(crate) fn inherited(spec: &OsStr) -> io::Result<Channel> {
        let fd: RawFd = spec
            .to_str()
            .and_then(|s| s.parse().ok())
            .filter(|&fd| fd >= 0)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a descriptor number"))?;
        // SAFETY: F_GETFD only inspects the descriptor table.
        cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
        // Keep it out of grandchildren.
        // SAFETY: `fd` is open (checked above).
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
        // SAFETY: the parent handed this descriptor to us alone; nothing else
        // in this process owns it.
        Ok(Channel { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Writes all of `buf`. A vanished peer is `BrokenPipe`, never SIGPIPE.
    pub(crate) fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        send_vectored(self.fd.as_fd(), &[buf])
    }

    /// Reads what is available (blocking if nothing is); 0 means EOF.
    /// `read`, not `recv`: the bootstrap also accepts a plain pipe (a test
    /// harness playing the parent feeds the frame through stdin).
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        retry(|| {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
            let r = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
        })
    }

    /// Reads what is available without blocking: `None` if nothing is,
    /// `Some(0)` at EOF.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let r = retry(|| {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
            let r = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
        });
        match r {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            // The peer died with unread data queued: treat as EOF.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(Some(0)),
            Err(e) => Err(e),
        }
    }

    /// Waits until a read would not block (data or EOF). `None` waits
    /// forever; returns false on timeout.
    pub(crate) fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        wait_readable(self.fd.as_fd(), timeout)
    }

    /// Nothing to do here: the child's end closes exactly when it exits
    /// (it is close-on-exec everywhere), so EOF already is the exit signal.
    pub(crate) fn watch_exit(&self, _child: &RawChild) {}

    /// True once the other end is closed everywhere (its process died).
    /// Only meaningful on a channel the peer no longer writes to.
    pub(crate) fn peer_gone(&self, timeout: Option<Duration>) -> bool {
        if !matches!(self.wait_readable(timeout), Ok(true)) {
            return false;
        }
        let mut b = 0u8;
        // SAFETY: one byte of valid buffer; MSG_PEEK leaves the data queued.
        let r = unsafe {
            libc::recv(self.fd.as_raw_fd(), (&mut b as *mut u8).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT)
        };
        r == 0 || (r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock)
    }
}

/// A close-on-exec duplicate of `fd` numbered `min` or above.
pub(super) fn dup_at_least(fd: &OwnedFd, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC creates a new descriptor we then own.
    let n = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) })?;
    // SAFETY: `n` was just created by fcntl.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Waits until a read from `fd` would not block (data or EOF), retrying on
/// `EINTR`. `None` waits forever; returns false on timeout.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    Ok(!wait_any(&[fd], timeout)?.is_empty())
}

/// Waits until at least one of `fds` is readable (data, EOF, or for a
/// process descriptor, exit) and returns the indices of all that are.
/// `None` waits forever; an empty result means the timeout passed.
pub(crate) fn wait_any(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Vec<usize>> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut polls: Vec<libc::pollfd> =
        fds.iter().map(|fd| libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so a short timeout does not become a busy loop.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int
            }
        };
        // SAFETY: `polls` is a valid array of `polls.len()` pollfds.
        match cvt(unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, ms) }) {
            Ok(0) if deadline.is_some_and(|d| Instant::now() >= d) => return Ok(Vec::new()),
            Ok(0) => {}
            Ok(_) => return Ok(polls.iter().enumerate().filter(|(_, p)| p.revents != 0).map(|(i, _)| i).collect()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A connected pair of Unix stream sockets, both close-on-exec: the two
/// ends of a `Pipe`.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    // Apple platforms have no SOCK_CLOEXEC: the flag is set right after.
    #[cfg(not(target_vendor = "apple"))]
    let ty = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
    #[cfg(target_vendor = "apple")]
    let ty = libc::SOCK_STREAM;
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid out-array of two descriptors.
    cvt(unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) })?;
    // SAFETY: socketpair succeeded, so both descriptors are open and ours.
    let pair = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    #[cfg(target_vendor = "apple")]
    for fd in [&pair.0, &pair.1] {
        // SAFETY: `fd` is open; F_SETFD only changes its flags.
        cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
    }
    Ok(pair)
}

/// Sends the concatenation of `parts` with as few system calls as the
/// kernel allows (one `sendmsg` when the buffer has room), never raising
/// SIGPIPE.
pub(crate) fn send_vectored(fd: BorrowedFd<'_>, parts: &[&[u8]]) -> io::Result<()> {
    // Few parts, kept on the stack: a small message costs no allocation.
    const MAX_PARTS: usize = 4;
    assert!(parts.len() <= MAX_PARTS, "send_vectored takes at most {MAX_PARTS} parts");
    let mut left: [&[u8]; MAX_PARTS] = [&[]; MAX_PARTS];
    left[..parts.len()].copy_from_slice(parts);
    loop {
        let mut iov = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; MAX_PARTS];
        let mut n = 0;
        for part in left.iter().filter(|p| !p.is_empty()) {
            iov[n] = libc::iovec { iov_base: part.as_ptr() as *mut libc::c_void, iov_len: part.len() };
            n += 1;
        }
        if n == 0 {
            return Ok(());
        }
        // SAFETY: an all-zero msghdr is a valid empty message header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = n as _;
        let mut sent = retry(|| {
            if n == 1 {
                // One buffer: plain `send` is the cheaper call.
                // SAFETY: `iov[0]` points into `parts`, alive for the call.
                let r = unsafe { libc::send(fd.as_raw_fd(), iov[0].iov_base, iov[0].iov_len, libc::MSG_NOSIGNAL) };
                return if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) };
            }
            // SAFETY: `msg` points at `iov`, whose first `n` entries point
            // into `parts`, all alive for the call.
            let r = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
            if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
        })?;
        // Drop what was sent; keep the rest for the next call.
        for part in left.iter_mut() {
            let k = sent.min(part.len());
            *part = &part[k..];
            sent -= k;
        }
    }
}

/// Busy-polls `fd` for up to `budget`: true as soon as a read would not
/// block. Waking a blocked reader on another CPU costs tens of
/// microseconds on a virtual machine; a receiver that expects an answer
/// soon checks for it this way first, then blocks.
pub(crate) fn spin_until_readable(fd: BorrowedFd<'_>, budget: Duration) -> bool {
    let start = Instant::now();
    loop {
        let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: `p` is one valid pollfd; a zero timeout never blocks.
        if unsafe { libc::poll(&mut p, 1, 0) } > 0 {
            return true;
        }
        if start.elapsed() >= budget {
            return false;
        }
        std::hint::spin_loop();
    }
}

/// Reads what is available from a socket (blocking if nothing is),
/// retrying on `EINTR`; 0 means EOF. A peer that died with data unread on
/// its side (`ECONNRESET`) also reads as EOF.
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let r = retry(|| {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let r = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
    });
    match r {
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(0),
        other => other,
    }
}
