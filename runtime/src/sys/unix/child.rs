//! A started child: its pid, its pidfd, reaping and signals.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::{cvt, retry};
use crate::exit::ExitStatus;

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
    pub(super) fn new(pid: libc::pid_t) -> Self {
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
