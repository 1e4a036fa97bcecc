//! A started child: its pid, its pidfd, reaping and signals.
//!
//! On Linux the child is held by one pidfd from the moment it starts: the
//! pidfd says when it exits (it becomes readable), reaps it
//! (`waitid(P_PIDFD)`) and signals it (`pidfd_send_signal`), so a pid that
//! the kernel has recycled is never waited for nor signalled. Elsewhere, or
//! on kernels without pidfds, the pid is used, and the end is found by
//! polling `waitpid` at short intervals.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::channel::{Channel, wait_any};
use crate::exit::ExitStatus;
use crate::sys::Reaped;

/// A started child process.
#[derive(Debug)]
pub(crate) struct RawChild {
    pid: Pid,
    /// Readable once the child has exited (Linux `pidfd_open`), if the
    /// kernel has it.
    pidfd: Option<OwnedFd>,
}

/// How long a wait without a pidfd sleeps between two looks at the child.
const POLL_SLICE: Duration = Duration::from_millis(10);

impl RawChild {
    pub(super) fn new(pid: libc::pid_t) -> Self {
        RawChild { pid: Pid::from_raw(pid), pidfd: pidfd_open(pid) }
    }

    /// A descriptor that becomes readable exactly when the child ends, if
    /// the platform has one.
    pub(crate) fn sentinel(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|fd| fd.as_fd())
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Reaps the child if it has exited; never blocks.
    pub(crate) fn try_reap(&self) -> io::Result<Reaped> {
        loop {
            let r = match &self.pidfd {
                Some(fd) => waitid_pidfd(fd.as_fd()),
                None => waitpid(self.pid, Some(WaitPidFlag::WNOHANG)),
            };
            return match r {
                Ok(WaitStatus::Exited(_, code)) => Ok(Reaped::Exited(ExitStatus::Code(code))),
                Ok(WaitStatus::Signaled(_, sig, _)) => Ok(Reaped::Exited(ExitStatus::Signal(sig as i32))),
                Ok(_) => Ok(Reaped::Running),
                Err(Errno::EINTR) => continue,
                Err(Errno::ECHILD) => Ok(Reaped::Lost),
                Err(e) => Err(e.into()),
            };
        }
    }

    /// Waits until the child may have exited or `chan` is readable, for at
    /// most `timeout` (`None`: without bound). Spurious returns are fine:
    /// the caller looks at both afterwards. Without a pidfd nothing tells
    /// of the exit, so the wait is cut into slices between which the caller
    /// asks `waitpid`.
    pub(crate) fn wait_event(&self, chan: Option<&Channel>, timeout: Option<Duration>) -> io::Result<()> {
        let chan = chan.map(AsFd::as_fd);
        let (fds, timeout): (Vec<BorrowedFd<'_>>, _) = match &self.pidfd {
            Some(pidfd) => (std::iter::once(pidfd.as_fd()).chain(chan).collect(), timeout),
            None => (chan.into_iter().collect(), Some(timeout.map_or(POLL_SLICE, |t| t.min(POLL_SLICE)))),
        };
        if fds.is_empty() {
            std::thread::sleep(timeout.unwrap_or(POLL_SLICE));
            return Ok(());
        }
        wait_any(&fds, timeout).map(drop)
    }

    /// Sends `sig`; a child that already ended is not an error. With a
    /// pidfd this can never reach another process; without one, the caller
    /// must not call it after the child was reaped.
    fn signal(&self, sig: Signal) -> io::Result<()> {
        let r = match &self.pidfd {
            Some(fd) => pidfd_send_signal(fd.as_fd(), sig),
            None => signal::kill(self.pid, sig),
        };
        match r {
            Err(Errno::ESRCH) | Ok(()) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// SIGTERM.
    pub(crate) fn terminate(&self) -> io::Result<()> {
        self.signal(Signal::SIGTERM)
    }

    /// SIGKILL.
    pub(crate) fn kill(&self) -> io::Result<()> {
        self.signal(Signal::SIGKILL)
    }

    /// Kills and reaps a child that never got its bootstrap frame (a spawn
    /// that failed half-way).
    pub(crate) fn abandon(&self) {
        let _ = self.kill();
        while let Ok(Reaped::Running) = self.try_reap() {
            let _ = self.wait_event(None, None);
        }
    }
}

/// The child's pidfd, or `None` where the kernel has none (before Linux
/// 5.3, or seccomp forbids it).
fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::fd::{FromRawFd, RawFd};
        // libc: nix has no pidfd_open.
        // SAFETY: pidfd_open takes a pid and flags and returns a new
        // descriptor (close-on-exec by definition) or -1.
        match unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } {
            -1 => None,
            // SAFETY: the syscall just created this descriptor for us.
            fd => Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = pid;
        None
    }
}

/// `waitid(P_PIDFD, fd, WEXITED | WNOHANG)`.
fn waitid_pidfd(fd: BorrowedFd<'_>) -> nix::Result<WaitStatus> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use nix::sys::wait::{Id, waitid};
        waitid(Id::PIDFd(fd), WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = fd;
        Err(Errno::ENOSYS)
    }
}

/// Sends `sig` to the process `fd` refers to.
fn pidfd_send_signal(fd: BorrowedFd<'_>, sig: Signal) -> nix::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::fd::AsRawFd;
        // libc: nix has no pidfd_send_signal.
        // SAFETY: the descriptor is a live pidfd; a null siginfo asks for
        // the same information `kill` would send.
        let r = unsafe {
            libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), sig as libc::c_int, std::ptr::null::<u8>(), 0)
        };
        Errno::result(r).map(drop)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (fd, sig);
        Err(Errno::ENOSYS)
    }
}
