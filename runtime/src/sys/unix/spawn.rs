//! Re-executing this binary as a child, and a child's adoption of the
//! descriptors its parent passed.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
use std::ffi::OsString;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use super::channel::{ChildEnd, dup_at_least};
use super::{CHILD_FD, HANDLE_FD, RawChild, cvt};

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
    let env = envp(crate::sys::BOOTSTRAP_ENV);
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
    cmd.args(std::env::args_os().skip(1)).env(crate::sys::BOOTSTRAP_ENV, CHILD_FD.to_string()).stdin(Stdio::null());
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
