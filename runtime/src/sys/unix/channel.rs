//! The bootstrap channel and the socket primitives under `Connection`:
//! Unix stream socket pairs, vectored sends, receives and polling.

use std::ffi::OsStr;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
#[cfg(not(target_vendor = "apple"))]
use nix::sys::socket::SockFlag;
use nix::sys::socket::{AddressFamily, MsgFlags, SockType};

use super::{RawChild, cvt};

/// Sends never raise SIGPIPE: a vanished peer is an `EPIPE` error.
#[cfg(not(target_vendor = "apple"))]
const NOSIGNAL: MsgFlags = MsgFlags::MSG_NOSIGNAL;
/// nix leaves `MSG_NOSIGNAL` out of `MsgFlags` on Apple platforms; the bit
/// is libc's, passed through unchanged as before.
#[cfg(target_vendor = "apple")]
const NOSIGNAL: MsgFlags = MsgFlags::from_bits_retain(libc::MSG_NOSIGNAL);

/// Refuses a bootstrap descriptor that is not what a parent creates.
fn check_parent_socket(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::sys::socket::{UnixAddr, getsockname, getsockopt, sockopt};
    use nix::sys::stat::{SFlag, fstat};
    let refuse = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let kind = SFlag::from_bits_truncate(fstat(fd)?.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFSOCK {
        let what = match kind {
            SFlag::S_IFCHR => "a character device (a terminal?)",
            SFlag::S_IFIFO => "a pipe",
            SFlag::S_IFREG => "a regular file",
            SFlag::S_IFDIR => "a directory",
            _ => "not a socket",
        };
        return Err(refuse(format!("descriptor {} is {what}, not the socket a parent creates", fd.as_raw_fd())));
    }
    if getsockopt(&fd, sockopt::SockType)? != SockType::Stream || getsockname::<UnixAddr>(fd.as_raw_fd()).is_err() {
        return Err(refuse(format!("descriptor {} is not a Unix stream socket", fd.as_raw_fd())));
    }
    // The other end of a socket pair records the process that made it.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let peer = getsockopt(&fd, sockopt::PeerCredentials)?.pid();
        let parent = nix::unistd::getppid().as_raw();
        if peer != parent {
            return Err(refuse(format!("the socket was made by process {peer}, not by the parent {parent}")));
        }
    }
    Ok(())
}

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
    /// bootstrap environment variable). It must be what a parent creates:
    /// a Unix stream socket, whose other end (on Linux) the parent process
    /// made. A terminal, a pipe, a file or someone else's socket is refused
    /// before anything is read from it.
    pub(crate) fn inherited(spec: &OsStr) -> io::Result<Channel> {
        let fd: RawFd = spec
            .to_str()
            .and_then(|s| s.parse().ok())
            .filter(|&fd| fd >= 0)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a descriptor number"))?;
        // libc: nix's fcntl takes a BorrowedFd, which may only be made from a
        // descriptor known to be open, and this call is what finds that out.
        // SAFETY: F_GETFD only inspects the descriptor table.
        cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
        // SAFETY: `fd` is open (checked above) and the parent handed it to
        // us alone; nothing else in this process owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // Keep it out of grandchildren.
        fcntl(&fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
        check_parent_socket(fd.as_fd())?;
        Ok(Channel { fd })
    }

    /// Writes all of `buf`. A vanished peer is `BrokenPipe`, never SIGPIPE.
    pub(crate) fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        send_vectored(self.fd.as_fd(), &[buf])
    }

    /// Reads what is available without blocking: `None` if nothing is,
    /// `Some(0)` at EOF.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            return match nix::sys::socket::recv(self.fd.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => Ok(Some(n)),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => Ok(None),
                // The peer died with unread data queued: treat as EOF.
                Err(Errno::ECONNRESET) => Ok(Some(0)),
                Err(e) => Err(e.into()),
            };
        }
    }

    /// As [`try_read`](Channel::try_read), into the spare capacity of `out`
    /// (at most `max` bytes), which is not zeroed first: a big payload goes
    /// straight from the kernel into its final buffer.
    pub(crate) fn try_read_spare(&self, out: &mut Vec<u8>, max: usize) -> io::Result<Option<usize>> {
        match recv_spare(self.fd.as_fd(), out, max, libc::MSG_DONTWAIT) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            r => r.map(Some),
        }
    }

    /// Waits until a read would not block (data or EOF). `None` waits
    /// forever; returns false on timeout.
    pub(crate) fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        wait_readable(self.fd.as_fd(), timeout)
    }

    /// Nothing to do here: the pidfd tells when the child exits.
    pub(crate) fn watch_exit(&self, _child: &RawChild) {}

    /// True once the other end is closed everywhere (its process died).
    /// Only meaningful on a channel the peer no longer writes to.
    pub(crate) fn peer_gone(&self, timeout: Option<Duration>) -> bool {
        if !matches!(self.wait_readable(timeout), Ok(true)) {
            return false;
        }
        let mut b = [0u8; 1];
        // MSG_PEEK leaves the data queued.
        match nix::sys::socket::recv(self.fd.as_raw_fd(), &mut b, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT) {
            Ok(n) => n == 0,
            Err(e) => e != Errno::EAGAIN,
        }
    }
}

/// A close-on-exec duplicate of `fd` numbered `min` or above.
pub(super) fn dup_at_least(fd: impl AsFd, min: RawFd) -> io::Result<OwnedFd> {
    let n = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(min))?;
    // SAFETY: F_DUPFD_CLOEXEC just created `n`; nothing else owns it.
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
    let mut polls: Vec<PollFd<'_>> = fds.iter().map(|&fd| PollFd::new(fd, PollFlags::POLLIN)).collect();
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so a short timeout does not become a busy loop;
                // a longer one than poll takes is cut to its maximum (the
                // loop waits again until the deadline).
                let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128);
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        match poll(&mut polls, timeout) {
            Ok(0) if deadline.is_some_and(|d| Instant::now() >= d) => return Ok(Vec::new()),
            Ok(0) => {}
            // `any()` is `None` for event bits nix does not name: those too
            // mean the descriptor needs attention.
            Ok(_) => {
                return Ok(polls.iter().enumerate().filter(|(_, p)| p.any().unwrap_or(true)).map(|(i, _)| i).collect());
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// A connected pair of Unix stream sockets, both close-on-exec: the two
/// ends of a `Pipe`.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    // Apple platforms have no SOCK_CLOEXEC: the flag is set right after.
    #[cfg(not(target_vendor = "apple"))]
    let flags = SockFlag::SOCK_CLOEXEC;
    #[cfg(target_vendor = "apple")]
    let flags = nix::sys::socket::SockFlag::empty();
    let pair = nix::sys::socket::socketpair(AddressFamily::Unix, SockType::Stream, None, flags)?;
    #[cfg(target_vendor = "apple")]
    for fd in [&pair.0, &pair.1] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    Ok(pair)
}

/// What a socket holds survives its writer's end: nothing to wait for.
pub(crate) fn wait_taken(_fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(())
}

/// Sends the concatenation of `parts` with as few system calls as the
/// kernel allows (one `sendmsg` when the buffer has room), never raising
/// SIGPIPE.
pub(crate) fn send_vectored(fd: BorrowedFd<'_>, parts: &[&[u8]]) -> io::Result<()> {
    send_all(parts, |iov| {
        if iov.len() == 1 {
            // One buffer: plain `send` is the cheaper call.
            nix::sys::socket::send(fd.as_raw_fd(), &iov[0], NOSIGNAL)
        } else {
            // No control messages: nix sizes its control buffer from them,
            // so an empty slice means no allocation.
            nix::sys::socket::sendmsg::<()>(fd.as_raw_fd(), iov, &[], NOSIGNAL, None)
        }
    })
}

/// [`send_vectored`] for a pipe (`writev`). A pipe has no per-call way to
/// refuse SIGPIPE: it is used only where SIGPIPE is ignored
/// ([`sigpipe_ignored`]).
pub(crate) fn write_vectored(fd: BorrowedFd<'_>, parts: &[&[u8]]) -> io::Result<()> {
    send_all(parts, |iov| nix::sys::uio::writev(fd, iov))
}

/// Writes all of `parts` with `call`, which writes some of the slices it
/// is given and says how many bytes it took.
fn send_all(parts: &[&[u8]], mut call: impl FnMut(&[IoSlice<'_>]) -> nix::Result<usize>) -> io::Result<()> {
    // Few parts, kept on the stack: a small message costs no allocation.
    const MAX_PARTS: usize = 4;
    assert!(parts.len() <= MAX_PARTS, "send_vectored takes at most {MAX_PARTS} parts");
    let mut left: [&[u8]; MAX_PARTS] = [&[]; MAX_PARTS];
    left[..parts.len()].copy_from_slice(parts);
    loop {
        let mut iov = [IoSlice::new(&[]); MAX_PARTS];
        let mut n = 0;
        for part in left.iter().filter(|p| !p.is_empty()) {
            iov[n] = IoSlice::new(part);
            n += 1;
        }
        if n == 0 {
            return Ok(());
        }
        let mut sent = loop {
            match call(&iov[..n]) {
                Err(Errno::EINTR) => {}
                r => break r?,
            }
        };
        // Drop what was sent; keep the rest for the next call.
        for part in left.iter_mut() {
            let k = sent.min(part.len());
            *part = &part[k..];
            sent -= k;
        }
    }
}

/// A pipe, both ends close-on-exec: `(read end, write end)`.
pub(crate) fn one_way() -> io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(not(target_vendor = "apple"))]
    let pair = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // Apple platforms have no pipe2: the flag is set right after.
    #[cfg(target_vendor = "apple")]
    let pair = nix::unistd::pipe()?;
    #[cfg(target_vendor = "apple")]
    for fd in [&pair.0, &pair.1] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    // Room for a big message at once, as a socket has (64 KiB by default):
    // fewer turns between writer and reader. Best effort (the system's
    // limit may be lower); pages are taken as data comes.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = fcntl(&pair.1, FcntlArg::F_SETPIPE_SZ(1 << 20));
    Ok(pair)
}

/// Whether `fd` is a pipe, which takes `read` and `write` but none of the
/// socket calls.
pub(crate) fn is_pipe(fd: BorrowedFd<'_>) -> bool {
    nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO)
}

/// Whether this process ignores SIGPIPE (as Rust programs do from the
/// start, unless they ask otherwise): then a write to a pipe whose reader
/// is gone is an error, not the end of the process.
pub(crate) fn sigpipe_ignored() -> bool {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // libc: nix's sigaction always installs a handler; this only reads one.
    // SAFETY: a null new action makes sigaction(2) only write the current
    // one into `old`, which is valid for writes of a `sigaction`.
    let r = unsafe { libc::sigaction(libc::SIGPIPE, std::ptr::null(), old.as_mut_ptr()) };
    // SAFETY: on success sigaction filled `old` in.
    r == 0 && unsafe { old.assume_init() }.sa_sigaction == libc::SIG_IGN
}

/// Reads what is available from a socket or a pipe (blocking if nothing
/// is), retrying on `EINTR`; 0 means EOF. A peer that died with data
/// unread on its side (`ECONNRESET`) also reads as EOF.
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        return match nix::unistd::read(fd, buf) {
            Err(Errno::EINTR) => continue,
            Err(Errno::ECONNRESET) => Ok(0),
            r => Ok(r?),
        };
    }
}

/// Reads what is available (blocking if nothing is), up to `max` bytes,
/// into the spare capacity of `out` and appends it; 0 means EOF, as
/// [`recv`]. The room is not zeroed first: a long message's body goes
/// straight from the kernel into its final buffer.
pub(crate) fn recv_into_spare(fd: BorrowedFd<'_>, out: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    recv_spare(fd, out, max, 0)
}

/// [`recv_into_spare`] with `recv` flags.
fn recv_spare(fd: BorrowedFd<'_>, out: &mut Vec<u8>, max: usize, flags: libc::c_int) -> io::Result<usize> {
    let room = out.spare_capacity_mut();
    let (ptr, len) = (room.as_mut_ptr(), room.len().min(max));
    loop {
        // libc: nix's recv and read take an initialised `&mut [u8]`, and
        // this room is not initialised yet. Without flags, read(2), which
        // a pipe takes too.
        // SAFETY: `ptr` is valid for writes of `len` bytes (spare capacity
        // of `out`, which is not touched until the call returns); recv and
        // read write at most `len` bytes there.
        let n = unsafe {
            match flags {
                0 => libc::read(fd.as_raw_fd(), ptr.cast(), len),
                _ => libc::recv(fd.as_raw_fd(), ptr.cast(), len, flags),
            }
        };
        if n >= 0 {
            // SAFETY: recv initialised the first `n` (<= `len`) bytes of the
            // spare capacity.
            unsafe { out.set_len(out.len() + n as usize) };
            return Ok(n as usize);
        }
        match Errno::last() {
            Errno::EINTR => {}
            Errno::ECONNRESET => return Ok(0),
            e => return Err(e.into()),
        }
    }
}

/// Reads up to `buf.len()` queued bytes from the socket `fd` without
/// blocking, retrying on `EINTR`: `None` when nothing is queued, `Some(0)`
/// at EOF (or after `ECONNRESET`, as [`recv`]).
///
/// (Not a `MSG_PEEK`: on Linux a peek at a stream socket walks every
/// message queued on it, so with thousands of small messages queued one
/// look costs as much as hundreds of reads.)
pub(crate) fn recv_nowait(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        return match nix::sys::socket::recv(fd.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => Ok(Some(n)),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => Ok(None),
            Err(Errno::ECONNRESET) => Ok(Some(0)),
            Err(e) => Err(e.into()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_arrive_concatenated_and_empty_parts_are_skipped() {
        let (a, b) = socketpair().unwrap();
        send_vectored(a.as_fd(), &[b"ab", b"", b"cde", b"f"]).unwrap();
        send_vectored(a.as_fd(), &[b"", b"g"]).unwrap();
        send_vectored(a.as_fd(), &[]).unwrap();
        drop(a);
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        loop {
            let n = recv(b.as_fd(), &mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"abcdefg");
    }

    #[test]
    fn recv_into_spare_appends_at_most_max() {
        let (a, b) = socketpair().unwrap();
        send_vectored(a.as_fd(), &[b"abcdef"]).unwrap();
        let mut out = b"x".to_vec();
        out.reserve(16);
        assert_eq!(recv_into_spare(b.as_fd(), &mut out, 4).unwrap(), 4);
        assert_eq!(recv_into_spare(b.as_fd(), &mut out, 100).unwrap(), 2);
        assert_eq!(out, b"xabcdef");
        drop(a);
        assert_eq!(recv_into_spare(b.as_fd(), &mut out, 100).unwrap(), 0);
    }

    #[test]
    fn recv_nowait_takes_what_is_queued_and_never_blocks() {
        let (a, b) = socketpair().unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(recv_nowait(b.as_fd(), &mut buf).unwrap(), None);
        send_vectored(a.as_fd(), &[b"abc"]).unwrap();
        assert_eq!(recv_nowait(b.as_fd(), &mut buf[..2]).unwrap(), Some(2));
        assert_eq!(&buf[..2], b"ab");
        assert_eq!(recv_nowait(b.as_fd(), &mut buf).unwrap(), Some(1));
        assert_eq!(buf[0], b'c');
        assert_eq!(recv_nowait(b.as_fd(), &mut buf).unwrap(), None);
        drop(a);
        assert_eq!(recv_nowait(b.as_fd(), &mut buf).unwrap(), Some(0));
    }

    #[test]
    fn a_peer_that_died_with_data_unread_reads_as_eof_and_refuses_sends() {
        let (a, b) = socketpair().unwrap();
        send_vectored(a.as_fd(), &[b"never read"]).unwrap();
        // Closing with unread data resets the connection (ECONNRESET on
        // Linux): still EOF to the reader.
        drop(b);
        let mut buf = [0u8; 16];
        assert_eq!(recv(a.as_fd(), &mut buf).unwrap(), 0);
        let err = send_vectored(a.as_fd(), &[b"x", b"y"]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(send_vectored(a.as_fd(), &[b"x"]).unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn try_read_and_peer_gone() {
        let (a, b) = socketpair().unwrap();
        let (a, b) = (Channel { fd: a }, Channel { fd: b });
        let mut buf = [0u8; 4];
        assert_eq!(b.try_read(&mut buf).unwrap(), None);
        assert!(!b.peer_gone(Some(Duration::ZERO)));
        a.write_all(b"hi").unwrap();
        assert_eq!(b.try_read(&mut buf).unwrap(), Some(2));
        drop(a);
        assert!(b.peer_gone(Some(Duration::from_secs(5))));
        assert_eq!(b.try_read(&mut buf).unwrap(), Some(0));
    }

    #[test]
    fn timeouts_round_up_and_long_ones_are_capped() {
        let (a, b) = socketpair().unwrap();
        let start = Instant::now();
        assert!(!wait_readable(b.as_fd(), Some(Duration::from_micros(300))).unwrap());
        assert!(start.elapsed() >= Duration::from_micros(300));
        send_vectored(a.as_fd(), &[b"x"]).unwrap();
        // Longer than poll's i32::MAX milliseconds: capped, not an error.
        assert!(wait_readable(b.as_fd(), Some(Duration::from_secs(30 * 24 * 3600))).unwrap());
        assert_eq!(wait_any(&[a.as_fd(), b.as_fd()], Some(Duration::ZERO)).unwrap(), vec![1]);
    }

    #[test]
    fn descriptors_are_close_on_exec() {
        let (a, b) = socketpair().unwrap();
        let high = dup_at_least(&a, 100).unwrap();
        assert!(high.as_raw_fd() >= 100);
        for fd in [&a, &b, &high] {
            let flags = FdFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFD).unwrap());
            assert!(flags.contains(FdFlag::FD_CLOEXEC));
        }
    }
}
