//! Linux primitives for the shared-memory queue (`crate::queue`): a memfd
//! mapped `MAP_SHARED`, futex waits and wakes on words inside it, a robust
//! process-shared `pthread_mutex_t`, and spilled items as memfds passed
//! through a socket pair.

use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut, Write};
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use nix::cmsg_space;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr, getsockopt, recvmsg,
    sendmsg, setsockopt, socketpair, sockopt,
};
use nix::time::{ClockId, clock_gettime};

/// The seals every queue memfd carries: its size is fixed (a holder that
/// shrank it would kill every other holder with SIGBUS at its next access)
/// and no seal can be added later (one against writing would stop new
/// holders from mapping it).
const SEALS: SealFlag = SealFlag::F_SEAL_SHRINK.union(SealFlag::F_SEAL_GROW).union(SealFlag::F_SEAL_SEAL);

/// An anonymous shared-memory file of `len` bytes (zero-filled),
/// close-on-exec, sealed against any change of size ([`is_sealed`]).
pub(crate) fn memfd(name: &str, len: usize) -> io::Result<OwnedFd> {
    // A name with a NUL in it is EINVAL (`InvalidInput`).
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    let len = libc::off_t::try_from(len).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    nix::unistd::ftruncate(&fd, len)?;
    fcntl(&fd, FcntlArg::F_ADD_SEALS(SEALS))?;
    Ok(fd)
}

/// Whether `fd` carries the seals [`memfd`] adds.
pub(crate) fn is_sealed(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let seals = SealFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GET_SEALS)?);
    Ok(seals.contains(SEALS))
}

/// The size of the file behind `fd`.
pub(crate) fn file_len(fd: BorrowedFd<'_>) -> io::Result<u64> {
    Ok(nix::sys::stat::fstat(fd)?.st_size as u64)
}

/// A `MAP_SHARED` read-write mapping of a whole file, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory; every access to it goes through
// atomics or the process-shared mutex inside it.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `len` bytes of `fd`.
    pub(crate) fn new(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mapping> {
        // An empty mapping is EINVAL, as mmap itself answers.
        let size = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        // SAFETY: a fresh mapping at an address the kernel chooses; no
        // existing memory is affected.
        let p = unsafe { mmap(None, size, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_SHARED, fd, 0) }?;
        Ok(Mapping { ptr: p.cast(), len })
    }

    /// The start of the mapping (page-aligned).
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The size of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: this exact range was mapped by `new` and nothing uses it
        // any more (the owner is being dropped).
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

/// Sleeps while `*word == expected`, at most `timeout` (`None`: no limit).
/// Returns on a wake, a changed value, the timeout or a signal; the caller
/// re-checks its condition. The futex is shared (no `FUTEX_PRIVATE_FLAG`),
/// so wakes from other processes mapping the same memory reach it.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as _,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // libc: nix has no futex wrapper.
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call;
    // the timeout pointer is null or points at `ts`.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, ts_ptr, 0usize, 0u32);
    }
}

/// Wakes every process sleeping in [`futex_wait`] on `word`.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    futex_wake(word, i32::MAX as u32);
}

/// Wakes at most `n` of the processes sleeping in [`futex_wait`] on `word`.
pub(crate) fn futex_wake(word: &AtomicU32, n: u32) {
    let n = n.min(i32::MAX as u32) as libc::c_int;
    // libc: nix has no futex wrapper.
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE only reads the address.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n, 0usize, 0usize, 0u32);
    }
}

/// Initialises a process-shared, robust mutex at `m`.
///
/// # Safety
///
/// `m` must be valid for writes, suitably aligned, and not in use by anyone.
pub(crate) unsafe fn mutex_init(m: *mut libc::pthread_mutex_t) -> io::Result<()> {
    let check = |r: libc::c_int| {
        if r == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(r)) }
    };
    let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    // libc: nix wraps no pthread mutex or mutex-attribute call (its
    // `pthread` module covers only threads and signals).
    // SAFETY: `attr` is initialised by pthread_mutexattr_init before any other use.
    unsafe {
        check(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
        let result = check(libc::pthread_mutexattr_setpshared(attr.as_mut_ptr(), libc::PTHREAD_PROCESS_SHARED))
            .and_then(|()| check(libc::pthread_mutexattr_setrobust(attr.as_mut_ptr(), libc::PTHREAD_MUTEX_ROBUST)))
            .and_then(|()| check(libc::pthread_mutex_init(m, attr.as_ptr())));
        libc::pthread_mutexattr_destroy(attr.as_mut_ptr());
        result
    }
}

/// How a lock was acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Locked {
    /// Normally.
    Clean,
    /// From an owner that died holding it; the mutex was marked consistent
    /// again, and whatever the dead owner left half-done is the caller's to
    /// ignore.
    OwnerDied,
}

/// Locks the robust mutex at `m`: a short spin of `trylock`s (the holders
/// only copy a few bytes), then a blocking lock, given up at `deadline`
/// (`None`: never; then `Ok(None)`). A deadline already passed makes it a
/// pure `trylock`: it never sleeps, whoever holds the lock.
///
/// # Safety
///
/// `m` must point at a mutex initialised by [`mutex_init`] in memory that
/// stays mapped for the call.
pub(crate) unsafe fn mutex_lock(
    m: *mut libc::pthread_mutex_t,
    deadline: Option<Instant>,
) -> io::Result<Option<Locked>> {
    let mut r = libc::EBUSY;
    for _ in 0..200 {
        // libc: nix has no pthread mutex calls.
        // SAFETY: per the caller's promise.
        r = unsafe { libc::pthread_mutex_trylock(m) };
        if r != libc::EBUSY {
            break;
        }
        std::hint::spin_loop();
    }
    if r == libc::EBUSY && deadline.is_some_and(|d| d <= Instant::now()) {
        return Ok(None);
    }
    if r == libc::EBUSY {
        // libc: nix has no pthread mutex calls.
        r = match deadline {
            // SAFETY: per the caller's promise.
            None => unsafe { libc::pthread_mutex_lock(m) },
            Some(d) => {
                let abs = realtime_after(d.saturating_duration_since(Instant::now()));
                // SAFETY: per the caller's promise; `abs` is a valid timespec.
                unsafe { libc::pthread_mutex_timedlock(m, &abs) }
            }
        };
    }
    match r {
        0 => Ok(Some(Locked::Clean)),
        libc::ETIMEDOUT => Ok(None),
        libc::EOWNERDEAD => {
            // libc: nix has no pthread mutex calls.
            // SAFETY: we own the lock now; this marks its state usable again.
            let c = unsafe { libc::pthread_mutex_consistent(m) };
            if c != 0 {
                return Err(io::Error::from_raw_os_error(c));
            }
            Ok(Some(Locked::OwnerDied))
        }
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// The `CLOCK_REALTIME` time `after` from now, as `pthread_mutex_timedlock`
/// wants it.
fn realtime_after(after: Duration) -> libc::timespec {
    // Reading CLOCK_REALTIME does not fail; if it did, the zero time would
    // make the lock time out at once, as before.
    let now = clock_gettime(ClockId::CLOCK_REALTIME).map_or((0, 0), |t| (t.tv_sec(), t.tv_nsec()));
    let nanos = now.1 as u64 + u64::from(after.subsec_nanos());
    let secs = (now.0 as u64).saturating_add(after.as_secs()).saturating_add(nanos / 1_000_000_000);
    libc::timespec { tv_sec: secs.min(i64::MAX as u64) as _, tv_nsec: (nanos % 1_000_000_000) as libc::c_long }
}

/// Unlocks the mutex at `m`.
///
/// # Safety
///
/// The calling thread must hold the lock.
pub(crate) unsafe fn mutex_unlock(m: *mut libc::pthread_mutex_t) {
    // libc: nix has no pthread mutex calls.
    // SAFETY: per the caller's promise.
    unsafe { libc::pthread_mutex_unlock(m) };
}

/// The socket pair spilled items travel through, as memfds: a datagram
/// sent on the first end (holding a sequence number and one descriptor)
/// is received on the second. Both ends are non-blocking and
/// close-on-exec. What is in flight belongs to the sockets, so the kernel
/// frees it when the last process holding them exits, however it exits.
pub(crate) fn spill_socket() -> io::Result<(OwnedFd, OwnedFd)> {
    let (tx, rx) =
        socketpair(AddressFamily::Unix, SockType::Datagram, None, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK)?;
    // More room for datagrams in flight than the default; the kernel caps
    // it at `net.core.wmem_max`, and less is no error.
    let _ = setsockopt(&tx, sockopt::SndBuf, &(4 << 20));
    Ok((tx, rx))
}

/// Whether `fd` is a datagram socket (as [`spill_socket`] makes).
pub(crate) fn is_datagram_socket(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(getsockopt(&fd, sockopt::SockType)? == SockType::Datagram)
}

/// Writes `bytes` to a new memfd (close-on-exec): memory with no name
/// anywhere, freed with its last descriptor.
pub(crate) fn spill_memfd(bytes: &[u8]) -> io::Result<File> {
    let mut f = File::from(memfd_create("multiproc-queue-spill", MFdFlags::MFD_CLOEXEC)?);
    f.write_all(bytes)?;
    Ok(f)
}

/// Sends `file` with the sequence number `seq` on `tx`, without waiting.
/// A full socket is `WouldBlock`; too many descriptors in flight for this
/// user (`RLIMIT_NOFILE`) is `ETOOMANYREFS`.
pub(crate) fn spill_send(tx: BorrowedFd<'_>, seq: u64, file: &File) -> io::Result<()> {
    let bytes = seq.to_le_bytes();
    let fds = [file.as_raw_fd()];
    sendmsg::<UnixAddr>(
        tx.as_raw_fd(),
        &[IoSlice::new(&bytes)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    Ok(())
}

/// Receives the next datagram from `rx` without waiting: its sequence
/// number (0 if it is not 8 bytes long) and the descriptor it carried, if
/// any; `None` if nothing is there.
pub(crate) fn spill_recv(rx: BorrowedFd<'_>) -> io::Result<Option<(u64, Option<File>)>> {
    let mut bytes = [0u8; 8];
    let mut iov = [IoSliceMut::new(&mut bytes)];
    let mut space = cmsg_space!([RawFd; 4]);
    let msg = match recvmsg::<UnixAddr>(
        rx.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    ) {
        Ok(m) => m,
        Err(Errno::EAGAIN) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let len = msg.bytes;
    let mut file = None;
    // A truncated control message (a peer sent more descriptors than any
    // queue does) carries nothing usable.
    if let Ok(cmsgs) = msg.cmsgs() {
        for cmsg in cmsgs {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for fd in fds {
                    // SAFETY: the kernel just installed `fd` in this process
                    // for this message; nothing else owns it.
                    let f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
                    file.get_or_insert(f);
                }
            }
        }
    }
    let seq = if len == 8 { u64::from_le_bytes(bytes) } else { 0 };
    Ok(Some((seq, file)))
}

/// Reads a spilled item that should hold exactly `len` bytes, from the
/// start of its memfd (whatever the file offset the producer left).
pub(crate) fn spill_read(f: File, len: usize) -> io::Result<Vec<u8>> {
    let size = f.metadata()?.len();
    if size != len as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a spilled item holds {size} bytes, expected {len}"),
        ));
    }
    let mut out = vec![0; len];
    f.read_exact_at(&mut out, 0)?;
    Ok(out)
}
