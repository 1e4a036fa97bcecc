//! Windows backend: `CreateProcessW` of this executable with an explicit
//! list of inherited handles, a duplex named pipe as the bootstrap channel
//! (see [`channel`]), process handles for waiting, `TerminateProcess`, and a
//! kill-on-close Job Object that takes daemonic children down with their
//! parent. Handles passed as task arguments are put into the started child
//! (see [`handles`]); a `Connection` is the same kind of named pipe (see
//! [`pipe`]).

mod channel;
mod handles;
/// Named shared memory (named sections), for `crate::shared_memory`.
pub(crate) mod named_shm;
pub(crate) mod pipe;
mod shared;
mod spawn;

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr::{null, null_mut};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    HANDLE, INVALID_HANDLE_VALUE, WAIT_ABANDONED_0, WAIT_FAILED, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::Storage::FileSystem::{
    BY_HANDLE_FILE_INFORMATION, CreateFileW, FILE_FLAG_BACKUP_SEMANTICS, FILE_SHARE_DELETE, FILE_SHARE_READ,
    FILE_SHARE_WRITE, GetFileInformationByHandle, OPEN_EXISTING,
};
use windows_sys::Win32::System::LibraryLoader::GetModuleFileNameW;
use windows_sys::Win32::System::Threading::{
    ALL_PROCESSOR_GROUPS, ExitProcess, GetActiveProcessorCount, GetCurrentProcess, GetCurrentThreadId,
    GetExitCodeProcess, INFINITE, OpenProcess, PROCESS_SYNCHRONIZE, TerminateProcess, WaitForMultipleObjects,
    WaitForSingleObject,
};

pub(crate) use channel::{Channel, ChildEnd};
pub use handles::OsHandle;
pub(crate) use handles::{adopt, transfer};
pub(crate) use pipe::{
    is_pipe, one_way, recv, recv_into_spare, recv_nowait, send_vectored, sigpipe_ignored, socketpair, wait_any,
    wait_readable, wait_taken, write_vectored,
};
pub(crate) use shared::{Parker, Region, process_alive, process_token, token_pid};
pub(crate) use spawn::spawn_self;

use crate::exit::ExitStatus;

/// The exit code `terminate` and `kill` give a child: CPython's
/// `_winapi.TERMINATE`, reported as `-15` (SIGTERM) as CPython does.
const TERMINATE_CODE: u32 = 0x10000;

/// Wraps a freshly returned handle, mapping the failure values (null and
/// `INVALID_HANDLE_VALUE`) to the last OS error.
fn owned(h: HANDLE) -> io::Result<OwnedHandle> {
    if h.is_null() || h == INVALID_HANDLE_VALUE {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a valid handle just returned to us, owned by nobody else.
        Ok(unsafe { OwnedHandle::from_raw_handle(h) })
    }
}

/// `s` as a NUL-terminated UTF-16 string.
fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// Waits until any of `handles` is signalled (true) or `timeout` passes
/// (false). `None` waits forever.
fn wait_objects(handles: &[HANDLE], timeout: Option<Duration>) -> io::Result<bool> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let n = handles.len() as u32;
    loop {
        let ms = match deadline {
            None if timeout.is_some() => INFINITE - 1,
            None => INFINITE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so a short timeout does not become a busy loop.
                left.as_micros().div_ceil(1000).min(u128::from(INFINITE - 1)) as u32
            }
        };
        // SAFETY: `handles` holds `n` valid handles for the whole call.
        let r = unsafe { WaitForMultipleObjects(n, handles.as_ptr(), 0, ms) };
        match r {
            r if (WAIT_OBJECT_0..WAIT_OBJECT_0 + n).contains(&r) => return Ok(true),
            r if (WAIT_ABANDONED_0..WAIT_ABANDONED_0 + n).contains(&r) => return Ok(true),
            WAIT_TIMEOUT => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(false);
                }
            }
            WAIT_FAILED => return Err(io::Error::last_os_error()),
            other => return Err(io::Error::other(format!("unexpected wait result {other:#x}"))),
        }
    }
}

/// A started child process.
#[derive(Debug)]
pub(crate) struct RawChild {
    pid: u32,
    process: OwnedHandle,
    /// Set when we ask the child to end, so that our own exit code is told
    /// apart from the same number chosen by the child.
    terminated: AtomicBool,
}

impl RawChild {
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The process handle: signalled once the child has ended.
    pub(crate) fn sentinel(&self) -> Option<std::os::windows::io::BorrowedHandle<'_>> {
        use std::os::windows::io::AsHandle;
        Some(self.process.as_handle())
    }

    fn exited(&self) -> bool {
        // SAFETY: a valid process handle; a zero timeout only polls.
        unsafe { WaitForSingleObject(self.process.as_raw_handle(), 0) == WAIT_OBJECT_0 }
    }

    fn exit_status(&self) -> io::Result<ExitStatus> {
        let mut code = 0u32;
        // SAFETY: a valid process handle and out-pointer.
        if unsafe { GetExitCodeProcess(self.process.as_raw_handle(), &mut code) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(if code == TERMINATE_CODE && self.terminated.load(Ordering::Relaxed) {
            ExitStatus::Signal(15)
        } else {
            ExitStatus::Code(code as i32)
        })
    }

    /// The exit status if the child has exited; never blocks. A process
    /// handle keeps the status, so it is never lost.
    pub(crate) fn try_reap(&self) -> io::Result<crate::sys::Reaped> {
        use crate::sys::Reaped;
        if self.exited() { self.exit_status().map(Reaped::Exited) } else { Ok(Reaped::Running) }
    }

    /// Waits until the child has exited or `chan` is readable, for at most
    /// `timeout` (`None`: without bound). The channel's own wait also ends
    /// on the process handle (see `Channel::watch_exit`).
    pub(crate) fn wait_event(&self, chan: Option<&Channel>, timeout: Option<Duration>) -> io::Result<()> {
        match chan {
            Some(chan) => chan.wait_readable(timeout).map(drop),
            None => wait_objects(&[self.process.as_raw_handle()], timeout).map(drop),
        }
    }

    /// Kills and waits for a child that never got its bootstrap frame (a
    /// spawn that failed half-way).
    pub(crate) fn abandon(&self) {
        let _ = self.terminate();
        let _ = wait_objects(&[self.process.as_raw_handle()], None);
    }

    /// `TerminateProcess` with [`TERMINATE_CODE`]; an exited child is left
    /// alone.
    pub(crate) fn terminate(&self) -> io::Result<()> {
        if self.exited() {
            return Ok(());
        }
        self.terminated.store(true, Ordering::Relaxed);
        // SAFETY: a valid process handle with PROCESS_TERMINATE access.
        if unsafe { TerminateProcess(self.process.as_raw_handle(), TERMINATE_CODE) } == 0 {
            let e = io::Error::last_os_error();
            // It ended on its own in between: not an error.
            return if self.exited() { Ok(()) } else { Err(e) };
        }
        Ok(())
    }

    /// The same as [`terminate`](Self::terminate): Windows has no gentler
    /// request, and CPython reports `-15` for both.
    pub(crate) fn kill(&self) -> io::Result<()> {
        self.terminate()
    }
}

/// This executable's path, NUL-terminated.
fn exe_path() -> &'static [u16] {
    static PATH: OnceLock<Vec<u16>> = OnceLock::new();
    PATH.get_or_init(|| {
        let mut buf = vec![0u16; 260];
        loop {
            // SAFETY: `buf` is valid for `buf.len()` UTF-16 units.
            let n = unsafe { GetModuleFileNameW(null_mut(), buf.as_mut_ptr(), buf.len() as u32) } as usize;
            if n == 0 {
                return vec![0];
            }
            if n < buf.len() {
                buf.truncate(n + 1);
                return buf;
            }
            // Truncated: try a larger buffer (paths go up to 32767 units).
            if buf.len() >= 1 << 16 {
                return vec![0];
            }
            buf.resize(buf.len() * 2, 0);
        }
    })
}

/// An identity of the executable file this process runs: volume, file
/// index, size and modification time. Parent and child compare theirs.
pub(crate) fn exe_identity() -> u64 {
    static ID: OnceLock<u64> = OnceLock::new();
    *ID.get_or_init(|| {
        // SAFETY: the path is NUL-terminated; no access rights are asked
        // for, only attributes, and every sharing mode is allowed.
        let h = unsafe {
            CreateFileW(
                exe_path().as_ptr(),
                0,
                FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                null(),
                OPEN_EXISTING,
                FILE_FLAG_BACKUP_SEMANTICS,
                null_mut(),
            )
        };
        let Ok(file) = owned(h) else { return 0 };
        // SAFETY: BY_HANDLE_FILE_INFORMATION is plain data.
        let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: a valid file handle and out-pointer.
        if unsafe { GetFileInformationByHandle(file.as_raw_handle(), &mut info) } == 0 {
            return 0;
        }
        let parts = [
            u64::from(info.dwVolumeSerialNumber),
            u64::from(info.nFileIndexHigh) << 32 | u64::from(info.nFileIndexLow),
            u64::from(info.nFileSizeHigh) << 32 | u64::from(info.nFileSizeLow),
            u64::from(info.ftLastWriteTime.dwHighDateTime) << 32 | u64::from(info.ftLastWriteTime.dwLowDateTime),
        ];
        crate::util::fnv1a(parts.iter().flat_map(|p| p.to_le_bytes()))
    })
}

/// Number of logical processors in the system, across processor groups.
pub(crate) fn cpu_count() -> Option<usize> {
    // SAFETY: no preconditions.
    let n = unsafe { GetActiveProcessorCount(ALL_PROCESSOR_GROUPS) };
    (n > 0).then_some(n as usize)
}

/// Whether [`populate_writable`] does anything here: no.
pub(crate) const CAN_POPULATE: bool = false;

/// Nothing to do (see the Unix version).
///
/// # Safety
///
/// None needed; the signature matches the Unix one.
pub(crate) unsafe fn populate_writable(_addr: usize, _len: usize, _stop: &std::sync::atomic::AtomicBool) {}

/// This process's id.
pub(crate) fn pid() -> u32 {
    std::process::id()
}

/// The id of the process that created this one (it may have exited since).
pub(crate) fn parent_pid() -> u32 {
    use windows_sys::Wdk::System::Threading::{NtQueryInformationProcess, ProcessBasicInformation};
    /// `PROCESS_BASIC_INFORMATION`, declared here so that its pointer field
    /// does not pull in more `windows-sys` features.
    #[repr(C)]
    struct BasicInfo {
        exit_status: i32,
        peb: *mut std::ffi::c_void,
        affinity: usize,
        priority: i32,
        pid: usize,
        parent: usize,
    }
    // SAFETY: BasicInfo is plain data.
    let mut info: BasicInfo = unsafe { std::mem::zeroed() };
    // SAFETY: the pseudo-handle of this process, and an out-buffer of the
    // size passed.
    let status = unsafe {
        NtQueryInformationProcess(
            GetCurrentProcess(),
            ProcessBasicInformation,
            (&mut info as *mut BasicInfo).cast(),
            size_of::<BasicInfo>() as u32,
            null_mut(),
        )
    };
    if status < 0 { 0 } else { info.parent as u32 }
}

/// The id of the thread that ran the CRT initialisers: the main thread.
static MAIN_THREAD: AtomicU32 = AtomicU32::new(0);

#[ctor::ctor(unsafe)]
fn record_main_thread() {
    // SAFETY: no preconditions.
    MAIN_THREAD.store(unsafe { GetCurrentThreadId() }, Ordering::Relaxed);
}

/// Whether the calling thread is the process's main thread.
pub(crate) fn is_main_thread() -> bool {
    // SAFETY: no preconditions.
    MAIN_THREAD.load(Ordering::Relaxed) == unsafe { GetCurrentThreadId() }
}

/// Nothing to do: Windows has no SIGPIPE.
pub(crate) fn ignore_sigpipe() {}

/// Windows has no setuid or setgid programs: never secure-execution mode.
pub(crate) fn is_secure_execution() -> bool {
    false
}

/// Makes this (child) process die with its parent. The parent put a daemonic
/// child in its kill-on-close job before it ran, so this only checks that
/// the parent is still alive, closing the race between spawn and this call.
pub(crate) fn tie_to_parent(parent: u32, _from_main_thread: bool) -> bool {
    if parent_pid() != parent {
        return false;
    }
    // SAFETY: no pointers; a failure returns null.
    let Ok(h) = owned(unsafe { OpenProcess(PROCESS_SYNCHRONIZE, 0, parent) }) else {
        return false;
    };
    // SAFETY: a valid process handle; a zero timeout only polls.
    unsafe { WaitForSingleObject(h.as_raw_handle(), 0) == WAIT_TIMEOUT }
}

// SAFETY: `atexit` is the C runtime's own, with this signature on every
// Windows C runtime (msvcrt, ucrt).
unsafe extern "C" {
    fn atexit(f: extern "C" fn()) -> i32;
}

/// Runs `f` when the process exits through the C runtime (`main` returns or
/// `exit` is called).
pub(crate) fn on_exit(f: extern "C" fn()) {
    // SAFETY: `f` is a plain function with the C ABI, valid for the whole
    // program.
    unsafe { atexit(f) };
}

/// Ends the process at once with `code`: no exit handlers, no destructors,
/// no DLL notifications.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: terminating the current process has no preconditions; it does
    // not return. ExitProcess is only a fallback should it ever do so.
    unsafe {
        TerminateProcess(GetCurrentProcess(), code as u32);
        ExitProcess(code as u32)
    }
}
