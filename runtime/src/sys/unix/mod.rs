//! Unix backend: `posix_spawn` of `/proc/self/exe` (Linux) or `fork`/`exec`
//! (other Unixes), a `socketpair` as the bootstrap channel, `waitpid` and
//! signals for the lifecycle.

use std::io;
use std::os::fd::RawFd;

mod channel;
mod child;
// (glibc's posix_spawn closes the descriptors itself: only the tests use
// this there.)
#[cfg_attr(all(target_os = "linux", target_env = "gnu"), allow(dead_code))]
mod cloexec;
/// Named shared memory (`shm_open`), for `crate::shared_memory`.
pub(crate) mod named_shm;
mod secure;
mod shared;
mod spawn;

/// The shared-memory queue's primitives (memfd, futex, robust mutex).
#[cfg(target_os = "linux")]
pub(crate) mod shm;
#[cfg(target_os = "linux")]
mod word;
#[cfg(target_os = "linux")]
pub(crate) use word::SharedWord;

pub(crate) use channel::{
    Channel, ChildEnd, is_pipe, one_way, recv, recv_into_spare, recv_nowait, send_vectored, sigpipe_ignored,
    socketpair, wait_any, wait_readable, wait_taken, write_vectored,
};
pub(crate) use child::RawChild;
pub(crate) use secure::is_secure_execution;
pub(crate) use shared::{Parker, Region, process_alive, process_token, token_pid};
pub(crate) use spawn::{adopt_handles, exe_identity, spawn_self};

/// The descriptor number at which a child finds its bootstrap channel.
const CHILD_FD: RawFd = 3;

/// The descriptor number at which a child finds the first handle passed as
/// a task argument; the others follow it (see `crate::wire::handles`).
const HANDLE_FD: RawFd = 4;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// Number of CPUs in the system (not just the ones we may run on).
pub(crate) fn cpu_count() -> Option<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let n = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN).ok().flatten().unwrap_or(-1);
    // libc, not nix: nix 0.32 offers _SC_NPROCESSORS_ONLN on Linux and
    // Android only.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    (n > 0).then_some(n as usize)
}

pub(crate) fn pid() -> u32 {
    std::process::id()
}

pub(crate) fn parent_pid() -> u32 {
    nix::unistd::getppid().as_raw() as u32
}

/// Whether the calling thread is the process's main thread.
pub(crate) fn is_main_thread() -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        nix::unistd::gettid().as_raw() as u32 == pid()
    }
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    {
        // libc, not nix: nix 0.32 has no pthread_main_np.
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
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_IGN is no handler function, so nothing runs in signal
    // context and no other handler is replaced behind its owner's back.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
}

/// Makes this (child) process die with its parent: on Linux, a parent-death
/// signal when the parent spawned us from its main thread (the signal is
/// tied to the spawning thread's life). Returns false if the parent is
/// already gone, closing the race between spawn and this call.
pub(crate) fn tie_to_parent(parent: u32, from_main_thread: bool) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if from_main_thread {
        let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    }
    let _ = from_main_thread;
    parent_pid() == parent
}

/// Runs `f` when the process exits normally (`main` returns or `exit` is
/// called).
pub(crate) fn on_exit(f: extern "C" fn()) {
    // libc, not nix: nix 0.32 has no atexit.
    // SAFETY: `f` is a plain function with the C ABI, valid for the whole
    // program.
    unsafe { libc::atexit(f) };
}

/// Ends the process at once with `code`: no exit handlers, no destructors.
pub(crate) fn exit_now(code: i32) -> ! {
    // libc, not nix: nix 0.32 has no _exit.
    // SAFETY: _exit has no preconditions and never returns.
    unsafe { libc::_exit(code) }
}

/// Whether [`populate_writable`] does anything here.
pub(crate) const CAN_POPULATE: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// Faults in `[addr, addr + len)` writable, 8 MiB at a time, until done or
/// `stop` is set, without touching what it holds (`MADV_POPULATE_WRITE`,
/// Linux 5.14; on older kernels it stops at the first refusal). Run on a
/// second thread while the first receives into the range, it takes the
/// page faults of a fresh buffer off the receiving path: on a virtual
/// machine a fault on fresh memory can cost more than the copy.
///
/// # Safety
///
/// The range must be memory this process owns, and must stay mapped until
/// the call returns.
pub(crate) unsafe fn populate_writable(addr: usize, len: usize, stop: &std::sync::atomic::AtomicBool) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        const STEP: usize = 8 << 20;
        let (mut at, end) = (addr.next_multiple_of(4096), addr.saturating_add(len));
        while at < end && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let n = STEP.min((end - at) / 4096 * 4096);
            let Some(ptr) = std::ptr::NonNull::new(at as *mut std::ffi::c_void) else { return };
            if n == 0 {
                return;
            }
            // SAFETY: [at, at + n) lies inside the range the caller
            // guarantees is ours and mapped; populating changes how pages
            // are backed, never what they hold.
            let advised = unsafe { nix::sys::mman::madvise(ptr, n, nix::sys::mman::MmapAdvise::MADV_POPULATE_WRITE) };
            if advised.is_err() {
                return;
            }
            at += n;
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (addr, len, stop);
}
