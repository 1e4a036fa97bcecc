//! What the synchronisation primitives and shared values (`crate::sync`)
//! need from Unix: memory shared with children as a descriptor (a sealed
//! memfd on Linux), sleeping on a word inside it (a shared futex), and
//! telling whether the process that wrote its token into that memory is
//! still alive (`/proc/<pid>/stat` on Linux, `kill(pid, 0)` elsewhere).

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use crate::sys::OsHandle;

#[cfg(target_os = "linux")]
use super::shm::{self, Mapping};

/// Anonymous shared memory: zero-filled, of a fixed size, freed with the
/// last descriptor and mapping, in whichever process that is.
#[derive(Debug)]
pub(crate) struct Region {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
    #[cfg(target_os = "linux")]
    map: Mapping,
    #[cfg(not(target_os = "linux"))]
    never: std::convert::Infallible,
}

impl Region {
    /// `len` fresh bytes (at least one), all zero.
    pub(crate) fn new(len: usize) -> io::Result<Region> {
        #[cfg(target_os = "linux")]
        {
            let fd = shm::memfd("multiproc-shared", len.max(1))?;
            Self::map(fd)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = len;
            Err(io::Error::new(io::ErrorKind::Unsupported, "shared memory by descriptor needs Linux (memfd)"))
        }
    }

    /// Maps a region another process made and passed; refuses a descriptor
    /// that is not one.
    pub(crate) fn adopt(handle: OsHandle) -> io::Result<Region> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsFd;
            if !shm::is_sealed(handle.as_fd())? {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the handle passed is not multiproc shared memory",
                ));
            }
            Self::map(handle)
        }
        #[cfg(not(target_os = "linux"))]
        {
            drop(handle);
            Err(io::ErrorKind::Unsupported.into())
        }
    }

    #[cfg(target_os = "linux")]
    fn map(fd: std::os::fd::OwnedFd) -> io::Result<Region> {
        use std::os::fd::AsFd;
        let len = usize::try_from(shm::file_len(fd.as_fd())?).map_err(|_| io::ErrorKind::InvalidInput)?;
        let map = Mapping::new(fd.as_fd(), len)?;
        Ok(Region { fd, map })
    }

    /// A duplicate of the descriptor, for a child.
    pub(crate) fn duplicate(&self) -> io::Result<OsHandle> {
        #[cfg(target_os = "linux")]
        {
            self.fd.try_clone()
        }
        #[cfg(not(target_os = "linux"))]
        match self.never {}
    }

    /// The first byte (page-aligned).
    pub(crate) fn ptr(&self) -> *mut u8 {
        #[cfg(target_os = "linux")]
        {
            self.map.ptr()
        }
        #[cfg(not(target_os = "linux"))]
        match self.never {}
    }

    /// The size in bytes.
    pub(crate) fn len(&self) -> usize {
        #[cfg(target_os = "linux")]
        {
            self.map.len()
        }
        #[cfg(not(target_os = "linux"))]
        match self.never {}
    }
}

/// How a process sleeps on a word of a [`Region`] until another wakes it.
/// On Unix the kernel keys sleepers by the word's address (a futex), so
/// there is nothing to pass to a child.
#[derive(Debug)]
pub(crate) struct Parker(());

impl Parker {
    pub(crate) fn new() -> io::Result<Parker> {
        Ok(Parker(()))
    }

    /// What a child needs to wake and be woken: nothing here.
    pub(crate) fn duplicate(&self) -> io::Result<Option<OsHandle>> {
        Ok(None)
    }

    pub(crate) fn adopt(_: Option<OsHandle>) -> io::Result<Parker> {
        Ok(Parker(()))
    }

    /// Sleeps while `*word == expected`, at most `timeout`. It may return
    /// early (a signal, a wake meant for another word): the caller
    /// re-checks.
    pub(crate) fn wait(&self, word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
        #[cfg(target_os = "linux")]
        shm::futex_wait(word, expected, timeout);
        #[cfg(not(target_os = "linux"))]
        {
            // No shared futex here; regions cannot be made either, so no
            // primitive reaches this. Sleeping briefly keeps it correct.
            let _ = (word, expected);
            std::thread::sleep(timeout.unwrap_or(Duration::from_millis(1)).min(Duration::from_millis(1)));
        }
    }

    /// Wakes at most `n` of the processes sleeping on `word`; `sleepers`
    /// (how many sleep on any word of the region) is what a backend
    /// without per-word queues wakes.
    pub(crate) fn wake(&self, word: &AtomicU32, n: u32, sleepers: u32) {
        let _ = sleepers;
        #[cfg(target_os = "linux")]
        shm::futex_wake(word, n);
        #[cfg(not(target_os = "linux"))]
        let _ = (word, n);
    }
}

/// This process as a token other processes can test with
/// [`process_alive`]: its pid in the high half and, in the low half, the
/// low bits of its start time, so that a pid reused by a later process is
/// not taken for the first. Never 0.
pub(crate) fn process_token() -> u64 {
    static TOKEN: OnceLock<u64> = OnceLock::new();
    *TOKEN.get_or_init(|| {
        let pid = std::process::id();
        token(pid, start_time(pid).unwrap_or(0))
    })
}

fn token(pid: u32, start: u64) -> u64 {
    (u64::from(pid) << 32) | (start & 0xffff_ffff)
}

/// The pid in a [`process_token`].
pub(crate) fn token_pid(token: u64) -> u32 {
    (token >> 32) as u32
}

/// Whether the process a [`process_token`] names is still running: false
/// once it has exited, even before its parent reaps it.
pub(crate) fn process_alive(token: u64) -> bool {
    let pid = token_pid(token);
    #[cfg(target_os = "linux")]
    {
        // `/proc/<pid>/stat` gone, a zombie, or another process under the
        // same pid: the one that wrote the token has exited.
        match stat(pid) {
            Some((state, start)) => !matches!(state, 'Z' | 'X' | 'x') && self::token(pid, start) == token,
            None => false,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = token;
        let pid = nix::unistd::Pid::from_raw(pid as libc::pid_t);
        !matches!(nix::sys::signal::kill(pid, None), Err(nix::errno::Errno::ESRCH))
    }
}

/// The start time of `pid` (clock ticks since boot).
fn start_time(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        stat(pid).map(|(_, start)| start)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// The state letter and start time of `pid`, from `/proc/<pid>/stat`.
#[cfg(target_os = "linux")]
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or
    // parentheses itself: the fields after it follow the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 22 (starttime) is the 20th after the command name.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not_taken_for_it() {
        let me = process_token();
        assert_eq!(token_pid(me), std::process::id());
        assert!(process_alive(me));
        assert!(!process_alive(me ^ 1), "same pid, another start time");
    }

    #[test]
    fn a_reaped_child_and_an_exited_unreaped_one_are_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let t = token(pid, start_time(pid).unwrap_or(0));
        // Exited but not reaped: a zombie counts as dead.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while process_alive(t) {
            assert!(std::time::Instant::now() < deadline, "the child never exited");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.wait().unwrap();
        assert!(!process_alive(t));
    }
}
