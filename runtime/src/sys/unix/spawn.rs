//! Re-executing this binary as a child, and a child's adoption of the
//! descriptors its parent passed.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
use std::ffi::OsString;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::stat::stat;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
use nix::{
    errno::Errno,
    fcntl::OFlag,
    spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawn},
    sys::signal::{SigSet, Signal},
    sys::stat::Mode,
};

use super::channel::{ChildEnd, dup_at_least};
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
use super::cloexec::Cloexec;
use super::{CHILD_FD, HANDLE_FD, RawChild};

/// Takes ownership of the `count` descriptors a parent passed as task
/// arguments (at `HANDLE_FD`, `HANDLE_FD + 1`, …) and makes them
/// close-on-exec again, so they go no further than this process.
pub(crate) fn adopt_handles(count: u32) -> io::Result<Vec<OwnedFd>> {
    let mut out = Vec::new();
    for i in 0..count {
        let fd = RawFd::try_from(i).ok().and_then(|i| i.checked_add(HANDLE_FD)).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{count} handles is more than a process can hold"))
        })?;
        // SAFETY: descriptors from HANDLE_FD up are the parent's handles,
        // which nothing in this process has claimed; if one was not passed,
        // fcntl fails with EBADF and the borrow ends with the call.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
            .map_err(io::Error::from)
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
        let Ok(st) = stat(exe_path().as_c_str()) else { return 0 };
        // The field types differ between Unixes; on some the casts are no-ops.
        #[allow(clippy::unnecessary_cast)]
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

/// Adds a "close every descriptor from `from` up" action to `actions`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn add_closefrom(actions: &mut PosixSpawnFileActions, from: RawFd) -> nix::Result<()> {
    // libc, not nix: nix 0.32 has no wrapper for the glibc extension
    // posix_spawn_file_actions_addclosefrom_np. `PosixSpawnFileActions` is
    // `#[repr(transparent)]` over `posix_spawn_file_actions_t`, so a pointer
    // cast reaches the object it initialised.
    const _: () = assert!(
        std::mem::size_of::<PosixSpawnFileActions>() == std::mem::size_of::<libc::posix_spawn_file_actions_t>()
    );
    let raw = std::ptr::from_mut(actions).cast::<libc::posix_spawn_file_actions_t>();
    // SAFETY: `raw` points to the live, initialised file-actions object that
    // `actions` wraps (same layout, see above), borrowed mutably for the call.
    match unsafe { libc::posix_spawn_file_actions_addclosefrom_np(raw, from) } {
        0 => Ok(()),
        e => Err(Errno::from_raw(e)),
    }
}

/// Duplicates of `stdio` (a child's stdout and stderr) numbered from
/// `first_free` up, clear of every `dup2` target, for the spawn to put at 1
/// and 2.
fn stdio_sources(stdio: Option<[BorrowedFd<'_>; 2]>, first_free: RawFd) -> io::Result<Vec<OwnedFd>> {
    stdio.into_iter().flatten().map(|fd| dup_at_least(fd, first_free)).collect()
}

/// Re-executes this binary. The child gets `/dev/null` as stdin, the
/// parent's stdout and stderr (or `stdio`'s), the channel at descriptor 3,
/// `handles` at descriptors 4, 5, …, and no other descriptor.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn spawn_self(
    end: &ChildEnd,
    _daemon: bool,
    handles: &[OwnedFd],
    stdio: Option<[BorrowedFd<'_>; 2]>,
) -> io::Result<RawChild> {
    let (sources, _moved, first_free) = spawn_sources(end, handles)?;
    let stdio = stdio_sources(stdio, first_free)?;
    let env = envp(crate::sys::BOOTSTRAP_ENV);

    let mut actions = PosixSpawnFileActions::init()?;
    actions.add_open(0, c"/dev/null", OFlag::O_RDONLY, Mode::empty())?;
    for (target, &src) in (CHILD_FD..).zip(&sources) {
        actions.add_dup2(src, target)?;
    }
    for (target, src) in (1..).zip(&stdio) {
        actions.add_dup2(src.as_raw_fd(), target)?;
    }
    add_closefrom(&mut actions, first_free)?;

    let mut attr = PosixSpawnAttr::init()?;
    attr.set_sigmask(&SigSet::empty())?;
    let mut default = SigSet::empty();
    default.add(Signal::SIGPIPE);
    attr.set_sigdefault(&default)?;
    attr.set_flags(PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF)?;

    let pid = posix_spawn(exe_path().as_c_str(), &actions, &attr, argv(), &env)?;
    Ok(RawChild::new(pid.as_raw()))
}

/// Re-executes this binary (portable `fork`/`exec` path for Unixes without
/// `posix_spawn_file_actions_addclosefrom_np`).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn spawn_self(
    end: &ChildEnd,
    _daemon: bool,
    handles: &[OwnedFd],
    stdio: Option<[BorrowedFd<'_>; 2]>,
) -> io::Result<RawChild> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let exe = OsStr::from_bytes(exe_path().as_bytes()).to_owned();
    let mut cmd = Command::new(exe);
    cmd.args(std::env::args_os().skip(1)).env(crate::sys::BOOTSTRAP_ENV, CHILD_FD.to_string()).stdin(Stdio::null());
    let (sources, _moved, first_free) = spawn_sources(end, handles)?;
    let stdio = stdio_sources(stdio, first_free)?;
    let stdio_raw: Vec<RawFd> = stdio.iter().map(AsRawFd::as_raw_fd).collect();
    let mut cloexec = Cloexec::prepare();
    // SAFETY: the closure only calls async-signal-safe functions (dup2,
    // close_range, open, getdents64, fcntl, close) between fork and exec,
    // and does not allocate.
    // `stdio` stays open until the spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            for (target, &src) in (CHILD_FD..).zip(&sources) {
                // libc, not nix: nix's dup2 wants the target as an OwnedFd,
                // and its dup2_raw does not check dup2's result.
                if libc::dup2(src, target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for (target, &src) in (1..).zip(&stdio_raw) {
                if libc::dup2(src, target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            // Mark, rather than close, everything above the channel and the
            // handles: std's own exec-error pipe lives up there and must
            // survive until exec.
            cloexec.mark_from(first_free);
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    Ok(RawChild::new(child.id() as libc::pid_t))
}
