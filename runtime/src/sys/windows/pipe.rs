//! The byte stream under a `Connection` on Windows: one duplex named pipe
//! (the same kind as the bootstrap channel, see [`pipe_pair`]), opened
//! for overlapped I/O so that a receive blocked in one thread does not
//! hold up a send on the same pipe in another.
//!
//! Every operation is issued and waited for on the calling thread, with an
//! event of that thread's own, so nothing stays in flight between calls
//! and copies of an end (`try_clone`, a child's) can all read and write.
//! Waiting for data looks with `PeekNamedPipe`, which consumes nothing.

use std::cell::OnceCell;
use std::io;
use std::os::windows::io::{AsHandle, AsRawHandle, BorrowedHandle, OwnedHandle};
use std::ptr::null_mut;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    ERROR_BROKEN_PIPE, ERROR_IO_PENDING, ERROR_NO_DATA, ERROR_PIPE_NOT_CONNECTED, GetLastError, HANDLE, TRUE,
};
use windows_sys::Win32::Storage::FileSystem::{FlushFileBuffers, ReadFile, WriteFile};
use windows_sys::Win32::System::IO::{GetOverlappedResult, OVERLAPPED};
use windows_sys::Win32::System::Pipes::PeekNamedPipe;

use super::OsHandle;
use super::channel::{event, pipe_pair};

/// An end of a pipe, as `Connection` holds it.
pub(crate) type OwnedFd = OwnedHandle;
/// A borrowed end of a pipe.
pub(crate) type BorrowedFd<'a> = BorrowedHandle<'a>;

/// What `Connection` calls `as_fd` on: its end.
pub(crate) trait AsFd {
    fn as_fd(&self) -> BorrowedFd<'_>;
}

impl AsFd for OwnedHandle {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.as_handle()
    }
}

impl From<OwnedHandle> for OsHandle {
    fn from(h: OwnedHandle) -> OsHandle {
        OsHandle::Handle(h)
    }
}

/// A connection end passed to a child arrives as a kernel handle.
impl TryFrom<OsHandle> for OwnedHandle {
    type Error = io::Error;

    fn try_from(h: OsHandle) -> io::Result<OwnedHandle> {
        match h {
            OsHandle::Handle(h) => Ok(h),
            OsHandle::Socket(_) => {
                Err(io::Error::new(io::ErrorKind::InvalidInput, "a socket was passed where a pipe was expected"))
            }
        }
    }
}

/// A channel used one way, `(reader, writer)`: a connected pair like any
/// other (Windows' named pipes are the cheap transport already).
pub(crate) fn one_way() -> io::Result<(OwnedHandle, OwnedHandle)> {
    socketpair()
}

/// Whether `h` wants the pipe calls rather than the socket ones: on
/// Windows there is only one kind.
pub(crate) fn is_pipe(_h: BorrowedFd<'_>) -> bool {
    false
}

/// Windows has no SIGPIPE.
pub(crate) fn sigpipe_ignored() -> bool {
    true
}

/// [`send_vectored`]: on Windows every channel is a pipe.
pub(crate) fn write_vectored(h: BorrowedFd<'_>, parts: &[&[u8]]) -> io::Result<()> {
    send_vectored(h, parts)
}

/// A connected pair of pipe ends, neither inheritable.
pub(crate) fn socketpair() -> io::Result<(OwnedHandle, OwnedHandle)> {
    pipe_pair()
}

/// Runs `op` (a `ReadFile` or `WriteFile` with the given `OVERLAPPED`) and
/// waits for it; returns the bytes transferred.
fn overlapped(h: HANDLE, op: impl FnOnce(*mut OVERLAPPED) -> i32) -> io::Result<u32> {
    thread_local! {
        static EVENT: OnceCell<OwnedHandle> = const { OnceCell::new() };
    }
    let ev = EVENT.with(|e| match e.get() {
        Some(ev) => Ok(ev.as_raw_handle()),
        None => {
            let ev = event()?;
            let raw = ev.as_raw_handle();
            let _ = e.set(ev);
            Ok::<_, io::Error>(raw)
        }
    })?;
    // SAFETY: OVERLAPPED is plain data; all zeroes is its initial state.
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    ov.hEvent = ev;
    // SAFETY: GetLastError has no preconditions.
    if op(&mut ov) == 0 && unsafe { GetLastError() } != ERROR_IO_PENDING {
        return Err(io::Error::last_os_error());
    }
    let mut n = 0u32;
    // SAFETY: `ov` belongs to the operation just issued on `h`; waiting
    // makes the kernel done with it (and the caller's buffer) on return.
    if unsafe { GetOverlappedResult(h, &ov, &mut n, TRUE) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n)
}

fn write_all(h: HANDLE, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let len = buf.len().min(1 << 30) as u32;
        // SAFETY: `buf` is valid for `len` bytes until the write completes
        // (`overlapped` waits for it).
        let n = overlapped(h, |ov| unsafe { WriteFile(h, buf.as_ptr(), len, null_mut(), ov) })
            .map_err(|e| if is_gone(&e) { io::Error::from(io::ErrorKind::BrokenPipe) } else { e })?;
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Whether an error means the other end is closed.
fn is_gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error().map(|c| c as u32), Some(ERROR_BROKEN_PIPE | ERROR_NO_DATA | ERROR_PIPE_NOT_CONNECTED))
}

/// Waits until the other end has read all that was written to this one
/// (`FlushFileBuffers` on a pipe): what is still queued when this process
/// ends is then not lost.
pub(crate) fn wait_taken(h: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a valid pipe handle; the call only waits.
    if unsafe { FlushFileBuffers(h.as_raw_handle()) } == 0 {
        let e = io::Error::last_os_error();
        // The other end is gone: nothing more will be read.
        return if is_gone(&e) { Ok(()) } else { Err(e) };
    }
    Ok(())
}

/// Writes all the parts, in order. Small messages are joined first, so
/// that they go in one write.
pub(crate) fn send_vectored(h: BorrowedFd<'_>, parts: &[&[u8]]) -> io::Result<()> {
    let h = h.as_raw_handle();
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total <= 64 * 1024 {
        return write_all(h, &parts.concat());
    }
    parts.iter().try_for_each(|p| write_all(h, p))
}

/// Reads what is available (blocking if nothing is); 0 means EOF.
pub(crate) fn recv(h: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length.
    unsafe { read_raw(h.as_raw_handle(), buf.as_mut_ptr(), buf.len()) }
}

/// Reads what is available (blocking if nothing is), up to `max` bytes,
/// into the spare capacity of `out` and appends it; 0 means EOF. The room
/// is not zeroed first.
pub(crate) fn recv_into_spare(h: BorrowedFd<'_>, out: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    let room = out.spare_capacity_mut();
    let (ptr, len) = (room.as_mut_ptr(), room.len().min(max));
    // SAFETY: `ptr` is valid for writes of `len` bytes (spare capacity of
    // `out`, untouched until the read returns).
    let n = unsafe { read_raw(h.as_raw_handle(), ptr.cast(), len) }?;
    // SAFETY: the read initialised the first `n` (<= `len`) bytes of the
    // spare capacity.
    unsafe { out.set_len(out.len() + n) };
    Ok(n)
}

/// Reads up to `len` bytes to `ptr` (blocking if nothing is available); 0
/// means EOF.
///
/// # Safety
///
/// `ptr` must be valid for writes of `len` bytes.
unsafe fn read_raw(h: HANDLE, ptr: *mut u8, len: usize) -> io::Result<usize> {
    if len == 0 {
        return Ok(0);
    }
    let len = len.min(1 << 30) as u32;
    // SAFETY: the caller makes `ptr` valid for `len` bytes; it stays so
    // until the read completes (`overlapped` waits for it).
    match overlapped(h, |ov| unsafe { ReadFile(h, ptr, len, null_mut(), ov) }) {
        Ok(n) => Ok(n as usize),
        Err(e) if is_gone(&e) => Ok(0),
        Err(e) => Err(e),
    }
}

/// Reads up to `buf.len()` queued bytes into `buf` without blocking:
/// `None` when nothing is queued, `Some(0)` when the other end is gone.
pub(crate) fn recv_nowait(h: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let mut avail = 0u32;
    // SAFETY: only the count is asked for; null buffers are allowed.
    if unsafe { PeekNamedPipe(h.as_raw_handle(), null_mut(), 0, null_mut(), &mut avail, null_mut()) } == 0 {
        let e = io::Error::last_os_error();
        return if is_gone(&e) { Ok(Some(0)) } else { Err(e) };
    }
    match avail as usize {
        0 => Ok(None),
        // No more than is queued: the read returns at once.
        n => {
            let take = n.min(buf.len());
            recv(h, &mut buf[..take]).map(Some)
        }
    }
}

/// Whether a read would not block now: data is queued, or the other end
/// is gone (or the handle is unusable: the read reports it).
fn readable_now(h: HANDLE) -> bool {
    let mut avail = 0u32;
    // SAFETY: only the count is asked for; null buffers are allowed.
    let ok = unsafe { PeekNamedPipe(h, null_mut(), 0, null_mut(), &mut avail, null_mut()) };
    ok == 0 || avail > 0
}

/// Waits until a read would not block (data or EOF). `None` waits
/// forever; returns false on timeout. Looks every millisecond or so at
/// first, then less often, up to every 10 ms.
pub(crate) fn wait_readable(h: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    let h = h.as_raw_handle();
    // `Some(None)`: a timeout too long to represent, i.e. forever.
    let deadline = timeout.map(|t| Instant::now().checked_add(t));
    let mut nap = Duration::from_micros(500);
    loop {
        if readable_now(h) {
            return Ok(true);
        }
        let left = match deadline {
            Some(Some(d)) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                left
            }
            _ => nap,
        };
        std::thread::sleep(nap.min(left));
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}

/// Waits until at least one of `handles` is ready and returns the indices
/// of all that are: a pipe end when a read would not block (data or EOF),
/// any other handle (a process) when it is signalled. `None` waits
/// forever; an empty result means the timeout passed. Pipes cannot be
/// waited on without a read in flight, so this looks at each in turn, every
/// half millisecond at first, then less often, up to every 10 ms.
pub(crate) fn wait_any(handles: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Vec<usize>> {
    use windows_sys::Win32::Foundation::WAIT_OBJECT_0;
    use windows_sys::Win32::Storage::FileSystem::{FILE_TYPE_PIPE, GetFileType};
    use windows_sys::Win32::System::Threading::WaitForSingleObject;

    // SAFETY: GetFileType only inspects each (valid, borrowed) handle.
    let pipes: Vec<bool> =
        handles.iter().map(|h| unsafe { GetFileType(h.as_raw_handle()) } == FILE_TYPE_PIPE).collect();
    let deadline = timeout.map(|t| Instant::now().checked_add(t));
    let mut nap = Duration::from_micros(500);
    loop {
        let ready: Vec<usize> = handles
            .iter()
            .zip(&pipes)
            .enumerate()
            .filter(|&(_, (h, &pipe))| {
                let h = h.as_raw_handle();
                if pipe {
                    readable_now(h)
                } else {
                    // SAFETY: a valid handle; a zero timeout only polls.
                    unsafe { WaitForSingleObject(h, 0) == WAIT_OBJECT_0 }
                }
            })
            .map(|(i, _)| i)
            .collect();
        if !ready.is_empty() {
            return Ok(ready);
        }
        let left = match deadline {
            Some(Some(d)) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Vec::new());
                }
                left
            }
            _ => nap,
        };
        std::thread::sleep(nap.min(left));
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}
