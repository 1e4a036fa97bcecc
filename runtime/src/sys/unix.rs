//! Unix backend: `posix_spawn` of `/proc/self/exe` (Linux) or `fork`/`exec`
//! (other Unixes), a `socketpair` as the bootstrap channel, `waitpid` and
//! signals for the lifecycle.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
use std::ffi::OsString;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::exit::ExitStatus;

/// The shared-memory queue's primitives (memfd, futex, robust mutex).
#[cfg(target_os = "linux")]
pub(crate) mod shm;

/// The descriptor number at which a child finds its bootstrap channel.
const CHILD_FD: RawFd = 3;

/// The descriptor number at which a child finds the first handle passed as
/// a task argument; the others follow it (see `crate::wire::handles`).
const HANDLE_FD: RawFd = 4;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// Retries `f` while it fails with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
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
pub(crate) struct ChildEnd(OwnedFd);

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
fn dup_at_least(fd: &OwnedFd, min: RawFd) -> io::Result<OwnedFd> {
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

/// Takes ownership of the `count` descriptors a parent passed as task
/// arguments (at `HANDLE_FD`, `HANDLE_FD + 1`, …) and makes them
/// close-on-exec again, so they go no further than this process.
pub(crate) fn adopt_handles(count: u32) -> io::Result<Vec<OwnedFd>> {
    let mut out = Vec::new();
    for i in 0..count {
        let fd = RawFd::try_from(i).ok().and_then(|i| i.checked_add(HANDLE_FD)).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{count} handles is more than a process can hold"))
        })?;
        // SAFETY: F_SETFD on a descriptor number only touches the table;
        // it fails with EBADF if the descriptor is not open.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })
            .map_err(|e| io::Error::new(e.kind(), format!("handle {i} (descriptor {fd}) was not passed: {e}")))?;
        // SAFETY: the parent put this descriptor here for us alone, and
        // nothing else in this process has claimed it.
        out.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    Ok(out)
}

/// The descriptors the child side of a spawn maps onto `CHILD_FD` and
/// `HANDLE_FD..`: every source is first moved above the highest target, so
/// that no `dup2` overwrites a source that a later one still reads, and no
/// source equals its target (which would keep its close-on-exec flag). The
/// returned duplicates must stay open until the spawn is done.
fn spawn_sources(end: &ChildEnd, handles: &[OwnedFd]) -> io::Result<(Vec<RawFd>, Vec<OwnedFd>, RawFd)> {
    let first_free = RawFd::try_from(handles.len())
        .ok()
        .and_then(|n| n.checked_add(HANDLE_FD))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "too many handles for one child"))?;
    let mut moved = Vec::new();
    let mut sources = Vec::with_capacity(handles.len() + 1);
    for fd in std::iter::once(&end.0).chain(handles) {
        if fd.as_raw_fd() < first_free {
            let high = dup_at_least(fd, first_free)?;
            sources.push(high.as_raw_fd());
            moved.push(high);
        } else {
            sources.push(fd.as_raw_fd());
        }
    }
    Ok((sources, moved, first_free))
}

/// A started child process.
#[derive(Debug)]
pub(crate) struct RawChild {
    pid: libc::pid_t,
    /// A descriptor that becomes readable when the child exits (Linux
    /// `pidfd_open`), if the kernel has it.
    pidfd: Option<OwnedFd>,
}

fn decode_status(status: libc::c_int) -> ExitStatus {
    if libc::WIFSIGNALED(status) {
        ExitStatus::Signal(libc::WTERMSIG(status))
    } else {
        ExitStatus::Code(libc::WEXITSTATUS(status))
    }
}

impl RawChild {
    fn new(pid: libc::pid_t) -> Self {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        // SAFETY: pidfd_open takes a pid and flags and returns a new
        // descriptor (close-on-exec by definition) or -1.
        let pidfd = match unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } {
            -1 => None,
            // SAFETY: the syscall just created this descriptor for us.
            fd => Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
        };
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let pidfd = None;
        RawChild { pid, pidfd }
    }

    /// A descriptor that becomes readable exactly when the child ends, if
    /// the platform has one.
    pub(crate) fn sentinel(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|fd| fd.as_fd())
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Reaps the child if it has exited.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer; the pid is our unreaped child.
        let r = retry(|| cvt(unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) }))?;
        Ok((r != 0).then(|| decode_status(status)))
    }

    /// Blocks until the child exits and reaps it. Callers only block here
    /// once the channel reported EOF, i.e. the child is already exiting.
    pub(crate) fn wait(&mut self) -> io::Result<ExitStatus> {
        let mut status = 0;
        // SAFETY: as in `try_wait`.
        retry(|| cvt(unsafe { libc::waitpid(self.pid, &mut status, 0) }))?;
        Ok(decode_status(status))
    }

    fn signal(&self, sig: libc::c_int) -> io::Result<()> {
        // SAFETY: kill has no memory-safety preconditions. The caller
        // guarantees the pid is not reaped yet, so it cannot name a stranger.
        match cvt(unsafe { libc::kill(self.pid, sig) }) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            other => other.map(drop),
        }
    }

    /// SIGTERM.
    pub(crate) fn terminate(&self) -> io::Result<()> {
        self.signal(libc::SIGTERM)
    }

    /// SIGKILL.
    pub(crate) fn kill(&self) -> io::Result<()> {
        self.signal(libc::SIGKILL)
    }
}

/// The path a child is executed from.
fn exe_path() -> &'static CString {
    static PATH: OnceLock<CString> = OnceLock::new();
    PATH.get_or_init(|| {
        // `/proc/self/exe` names this process's own inode even if the file
        // was replaced or deleted on disk; elsewhere the path is all we have.
        let p: PathBuf = if cfg!(any(target_os = "linux", target_os = "android")) {
            "/proc/self/exe".into()
        } else {
            std::env::current_exe().unwrap_or_else(|_| std::env::args_os().next().unwrap_or_default().into())
        };
        CString::new(p.as_os_str().as_bytes()).expect("no NUL in a path")
    })
}

/// An identity of the executable file this process runs: device, inode,
/// size and modification time. Parent and child compare theirs.
pub(crate) fn exe_identity() -> u64 {
    static ID: OnceLock<u64> = OnceLock::new();
    *ID.get_or_init(|| {
        // SAFETY: an all-zero `stat` is a valid value to be overwritten.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: the path is NUL-terminated and `st` is a valid out-pointer.
        if unsafe { libc::stat(exe_path().as_ptr(), &mut st) } != 0 {
            return 0;
        }
        let parts =
            [st.st_dev as u64, st.st_ino as u64, st.st_size as u64, st.st_mtime as u64, st.st_mtime_nsec as u64];
        crate::util::fnv1a(parts.iter().flat_map(|p| p.to_le_bytes()))
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn cstring(s: &OsStr) -> CString {
    CString::new(s.as_bytes()).unwrap_or_else(|_| {
        // An argument or variable with an interior NUL cannot reach any
        // exec'd program; drop what follows it, as the kernel would see it.
        let b = s.as_bytes();
        CString::new(&b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]).expect("cut at NUL")
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn argv() -> &'static [CString] {
    static ARGV: OnceLock<Vec<CString>> = OnceLock::new();
    ARGV.get_or_init(|| std::env::args_os().map(|a| cstring(&a)).collect())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
/// The environment of the child: ours as of now, plus the bootstrap marker.
fn envp(key: &str) -> Vec<CString> {
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| {
            let mut kv = OsString::with_capacity(k.len() + v.len() + 1);
            kv.push(&k);
            kv.push("=");
            kv.push(&v);
            cstring(&kv)
        })
        .collect();
    env.push(CString::new(format!("{key}={CHILD_FD}")).expect("no NUL"));
    env
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn nul_terminated(v: &[CString]) -> Vec<*mut libc::c_char> {
    v.iter().map(|s| s.as_ptr() as *mut libc::c_char).chain(std::iter::once(std::ptr::null_mut())).collect()
}

/// Re-executes this binary. The child gets `/dev/null` as stdin, the
/// parent's stdout and stderr, the channel at descriptor 3, `handles` at
/// descriptors 4, 5, …, and no other descriptor.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn spawn_self(end: &ChildEnd, _daemon: bool, handles: &[OwnedFd]) -> io::Result<RawChild> {
    use std::mem::MaybeUninit;
    let (sources, _moved, first_free) = spawn_sources(end, handles)?;
    let args = argv();
    let env = envp(super::BOOTSTRAP_ENV);
    let (argv_p, envp_p) = (nul_terminated(args), nul_terminated(&env));
    let check = |r: libc::c_int| if r == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(r)) };

    let mut actions = MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
    let mut attr = MaybeUninit::<libc::posix_spawnattr_t>::uninit();
    // SAFETY: every pointer passed below points to initialised, live data:
    // `actions`/`attr` are initialised by their `_init` calls before use and
    // destroyed exactly once; the argv/envp arrays are NUL-terminated arrays
    // of NUL-terminated strings that outlive the call.
    unsafe {
        check(libc::posix_spawn_file_actions_init(actions.as_mut_ptr()))?;
        let actions = &mut *actions.as_mut_ptr();
        check(libc::posix_spawnattr_init(attr.as_mut_ptr())).inspect_err(|_| {
            libc::posix_spawn_file_actions_destroy(actions);
        })?;
        let attr = &mut *attr.as_mut_ptr();
        let result = (|| {
            check(libc::posix_spawn_file_actions_addopen(actions, 0, c"/dev/null".as_ptr(), libc::O_RDONLY, 0))?;
            for (target, &src) in (CHILD_FD..).zip(&sources) {
                check(libc::posix_spawn_file_actions_adddup2(actions, src, target))?;
            }
            check(libc::posix_spawn_file_actions_addclosefrom_np(actions, first_free))?;
            let mut set = MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(set.as_mut_ptr());
            check(libc::posix_spawnattr_setsigmask(attr, set.as_ptr()))?;
            libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
            check(libc::posix_spawnattr_setsigdefault(attr, set.as_ptr()))?;
            let flags = libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
            check(libc::posix_spawnattr_setflags(attr, flags as libc::c_short))?;
            let mut pid: libc::pid_t = 0;
            check(libc::posix_spawn(&mut pid, exe_path().as_ptr(), actions, attr, argv_p.as_ptr(), envp_p.as_ptr()))?;
            Ok(RawChild::new(pid))
        })();
        libc::posix_spawn_file_actions_destroy(actions);
        libc::posix_spawnattr_destroy(attr);
        result
    }
}

/// Re-executes this binary (portable `fork`/`exec` path for Unixes without
/// `posix_spawn_file_actions_addclosefrom_np`).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn spawn_self(end: &ChildEnd, _daemon: bool, handles: &[OwnedFd]) -> io::Result<RawChild> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let exe = OsStr::from_bytes(exe_path().as_bytes()).to_owned();
    let mut cmd = Command::new(exe);
    cmd.args(std::env::args_os().skip(1)).env(super::BOOTSTRAP_ENV, CHILD_FD.to_string()).stdin(Stdio::null());
    let (sources, _moved, first_free) = spawn_sources(end, handles)?;
    // SAFETY: the closure only calls async-signal-safe functions (dup2,
    // fcntl, sysconf) between fork and exec, and does not allocate.
    unsafe {
        cmd.pre_exec(move || {
            for (target, &src) in (CHILD_FD..).zip(&sources) {
                if libc::dup2(src, target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            // Mark, rather than close, everything above the channel and the
            // handles: std's own exec-error pipe lives up there and must
            // survive until exec.
            let max = libc::sysconf(libc::_SC_OPEN_MAX).clamp(256, 65536) as RawFd;
            for fd in first_free..max {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    Ok(RawChild::new(child.id() as libc::pid_t))
}

/// Number of CPUs in the system (not just the ones we may run on).
pub(crate) fn cpu_count() -> Option<usize> {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    (n > 0).then_some(n as usize)
}

pub(crate) fn pid() -> u32 {
    std::process::id()
}

pub(crate) fn parent_pid() -> u32 {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() as u32 }
}

/// Whether the calling thread is the process's main thread.
pub(crate) fn is_main_thread() -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: gettid has no preconditions.
        unsafe { libc::gettid() as u32 == pid() }
    }
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    {
        // SAFETY: pthread_main_np has no preconditions.
        unsafe { libc::pthread_main_np() == 1 }
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd"
    )))]
    {
        false
    }
}

/// Ignores SIGPIPE, as Rust's normal start-up does: a write to a vanished
/// peer becomes an `EPIPE` error, not a silent death.
pub(crate) fn ignore_sigpipe() {
    // SAFETY: installing SIG_IGN has no memory-safety preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Makes this (child) process die with its parent: on Linux, a parent-death
/// signal when the parent spawned us from its main thread (the signal is
/// tied to the spawning thread's life). Returns false if the parent is
/// already gone, closing the race between spawn and this call.
pub(crate) fn tie_to_parent(parent: u32, from_main_thread: bool) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if from_main_thread {
        // SAFETY: PR_SET_PDEATHSIG takes a signal number; no pointers.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    }
    let _ = from_main_thread;
    parent_pid() == parent
}

/// Runs `f` when the process exits normally (`main` returns or `exit` is
/// called).
pub(crate) fn on_exit(f: extern "C" fn()) {
    // SAFETY: `f` is a plain function with the C ABI, valid for the whole
    // program.
    unsafe { libc::atexit(f) };
}

/// Ends the process at once with `code`: no exit handlers, no destructors.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and never returns.
    unsafe { libc::_exit(code) }
}
