//! Marking a forked child's descriptors close-on-exec before it execs, at
//! a cost that follows how many descriptors are open, never the
//! descriptor limit (`RLIMIT_NOFILE`, which may be in the millions).
//!
//! In order: one `close_range(CLOSE_RANGE_CLOEXEC)` where the kernel has it
//! (Linux 5.11 with any libc, FreeBSD 13.1); the open descriptors listed
//! by the kernel (Linux's `/proc/self/fd`, read with raw `getdents64` into
//! a buffer on the stack; macOS's `proc_pidinfo(PROC_PIDLISTFDS)` into a
//! buffer made before the fork); and only where neither answers, every
//! number up to the limit, capped.
//!
//! Everything that runs between `fork` and `exec` is async-signal-safe:
//! system calls on memory that exists already, no allocation, no lock.

use std::os::fd::RawFd;

/// What marking needs, made before the fork.
pub(crate) struct Cloexec {
    /// The bound of the last-resort loop.
    max: RawFd,
    /// Room for the kernel's list of open descriptors.
    #[cfg(target_vendor = "apple")]
    list: Vec<libc::proc_fdinfo>,
}

impl Cloexec {
    /// Before the fork: whatever must be allocated or asked for.
    pub(crate) fn prepare() -> Cloexec {
        let max = nix::unistd::sysconf(nix::unistd::SysconfVar::OPEN_MAX).ok().flatten().unwrap_or(-1).clamp(256, 65536)
            as RawFd;
        #[cfg(target_vendor = "apple")]
        {
            Cloexec { max, list: apple::room() }
        }
        #[cfg(not(target_vendor = "apple"))]
        Cloexec { max }
    }

    /// Between the fork and the exec: marks every descriptor from `from`
    /// up close-on-exec. Returns how many descriptors it marked one by one
    /// (0 when one call did them all), for tests.
    pub(crate) fn mark_from(&mut self, from: RawFd) -> usize {
        if close_range_cloexec(from) {
            return 0;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(n) = linux::mark_listed(from) {
            return n;
        }
        #[cfg(target_vendor = "apple")]
        if let Some(n) = apple::mark_listed(&mut self.list, from) {
            return n;
        }
        (from..self.max).filter(|&fd| mark(fd)).count()
    }
}

/// Sets `fd` close-on-exec; false if it is not open.
fn mark(fd: RawFd) -> bool {
    // libc, not nix: nix's fcntl takes a borrowed descriptor, which this
    // number may not be. SAFETY: F_SETFD takes an int; a closed number
    // fails with EBADF and nothing else happens.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) == 0 }
}

/// One call marking everything from `from` up, where the kernel has it.
fn close_range_cloexec(from: RawFd) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // libc::syscall, not nix: nix has no close_range, and musl no
        // wrapper. SAFETY: close_range takes two descriptor numbers and
        // flags, no pointers; with CLOSE_RANGE_CLOEXEC it closes nothing.
        unsafe {
            libc::syscall(libc::SYS_close_range, from as libc::c_uint, !0 as libc::c_uint, libc::CLOSE_RANGE_CLOEXEC)
                == 0
        }
    }
    #[cfg(target_os = "freebsd")]
    {
        // libc, not nix: nix has no close_range. SAFETY: as above.
        unsafe { libc::close_range(from as libc::c_uint, !0, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) == 0 }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        let _ = from;
        false
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux {
    use std::os::fd::RawFd;

    use super::mark;

    /// Marks the open descriptors from `from` up, as `/proc/self/fd` lists
    /// them; `None` if it cannot be read (no /proc).
    pub(super) fn mark_listed(from: RawFd) -> Option<usize> {
        // libc, not nix or std: both allocate, which a forked child must not.
        // SAFETY: a NUL-terminated path and flags; the result is checked.
        let dir =
            unsafe { libc::open(c"/proc/self/fd".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if dir < 0 {
            return None;
        }
        let mut marked = 0;
        let mut buf = [0u64; 512];
        loop {
            // SAFETY: `buf` is valid for writes of its size in bytes;
            // getdents64 writes at most that many.
            let n = unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), size_of_val(&buf)) };
            if n <= 0 {
                break;
            }
            // SAFETY: u64s seen as the bytes they hold, `n` of them filled.
            let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
            let mut at = 0;
            // A linux_dirent64: inode (8 bytes), offset (8), record length
            // (2), type (1), then the NUL-terminated name.
            while at + 19 <= bytes.len() {
                let reclen = u16::from_ne_bytes([bytes[at + 16], bytes[at + 17]]) as usize;
                if reclen == 0 || at + reclen > bytes.len() {
                    break;
                }
                if let Some(fd) = fd_number(&bytes[at + 19..at + reclen])
                    && fd >= from
                    && fd != dir
                    && mark(fd)
                {
                    marked += 1;
                }
                at += reclen;
            }
        }
        // SAFETY: `dir` was opened above and is closed once.
        unsafe { libc::close(dir) };
        Some(marked)
    }

    /// The descriptor a `/proc/self/fd` entry names (`.` and `..` name none).
    fn fd_number(name: &[u8]) -> Option<RawFd> {
        let digits = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        digits.iter().try_fold(0 as RawFd, |n, &d| d.is_ascii_digit().then(|| n * 10 + RawFd::from(d - b'0')))
    }
}

#[cfg(target_vendor = "apple")]
mod apple {
    use std::os::fd::RawFd;

    use super::mark;

    fn list_fds(list: &mut [libc::proc_fdinfo]) -> libc::c_int {
        let size = size_of_val(list) as libc::c_int;
        // SAFETY: the buffer is valid for `size` bytes (null and 0 ask for
        // the size needed); proc_pidinfo writes at most that many.
        unsafe { libc::proc_pidinfo(libc::getpid(), libc::PROC_PIDLISTFDS, 0, list.as_mut_ptr().cast(), size) }
    }

    /// Room for the list of this process's open descriptors, with some to
    /// spare for any opened before the fork.
    pub(super) fn room() -> Vec<libc::proc_fdinfo> {
        let needed = list_fds(&mut []).max(0) as usize / size_of::<libc::proc_fdinfo>();
        // SAFETY: proc_fdinfo is two integers: all zeroes is a valid value.
        vec![unsafe { std::mem::zeroed() }; needed * 2 + 64]
    }

    /// Marks the open descriptors from `from` up, as the kernel lists them
    /// into `list`; `None` if the list did not fit (or the call failed).
    pub(super) fn mark_listed(list: &mut [libc::proc_fdinfo], from: RawFd) -> Option<usize> {
        let got = list_fds(list);
        let entries = usize::try_from(got).ok()? / size_of::<libc::proc_fdinfo>();
        if got <= 0 || entries >= list.len() {
            return None;
        }
        Some(list[..entries].iter().filter(|e| e.proc_fd >= from && mark(e.proc_fd)).count())
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    /// Raises the soft descriptor limit as far as the hard one allows, up
    /// to `want`; returns the new soft limit.
    fn raise_nofile(want: u64) -> u64 {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let target = want.min(hard).max(soft);
        setrlimit(Resource::RLIMIT_NOFILE, target, hard).unwrap();
        target
    }

    #[test]
    fn the_listed_descriptors_are_marked_however_high_the_limit() {
        let limit = raise_nofile(20_000);
        if limit < 4_096 {
            return; // The hard limit allows no high descriptor numbers here.
        }
        let file = std::fs::File::open("/dev/null").unwrap();
        let high = [limit as RawFd - 10, limit as RawFd - 3];
        for fd in high {
            // SAFETY: dup2 onto numbers nothing in this test binary uses.
            assert_eq!(unsafe { libc::dup2(file.as_raw_fd(), fd) }, fd);
        }
        let from = limit as RawFd - 100;
        // Only the two descriptors are open up there: two marked, not the
        // hundred numbers (nor, from a low start, the 20,000) the loop tries.
        assert_eq!(linux::mark_listed(from), Some(2));
        for fd in high {
            // SAFETY: F_GETFD on descriptors this test opened.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC, "descriptor {fd} not marked");
            // SAFETY: closing the duplicates made above, once.
            unsafe { libc::close(fd) };
        }
    }

    #[test]
    fn marking_costs_one_call_or_one_per_open_descriptor() {
        // close_range, or the list: never a call per number up to the limit.
        let limit = raise_nofile(20_000);
        let marked = Cloexec::prepare().mark_from(limit as RawFd / 2);
        assert!(marked < 100, "{marked} descriptors marked one by one");
    }
}
