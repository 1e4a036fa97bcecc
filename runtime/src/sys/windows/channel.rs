//! The bootstrap channel on Windows: one duplex named pipe with a random,
//! single-instance name, both ends opened for overlapped I/O.
//!
//! Anonymous pipes cannot be waited on with a timeout, so each end keeps one
//! overlapped read in flight into a private buffer: waiting is waiting for
//! that read's event, and a non-blocking read takes what it delivered.
//!
//! The parent's end also watches the child *process* (see
//! [`Channel::watch_exit`]): once the process has exited, whatever it wrote
//! is collected and the channel reports EOF, whether or not some other
//! process still holds a copy of the child's end.

use std::fmt;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_BROKEN_PIPE, ERROR_INVALID_PARAMETER, ERROR_IO_INCOMPLETE, ERROR_IO_PENDING,
    ERROR_MORE_DATA, ERROR_NO_DATA, ERROR_OPERATION_ABORTED, ERROR_PIPE_NOT_CONNECTED, FALSE, GENERIC_READ,
    GENERIC_WRITE, GetLastError, HANDLE, HANDLE_FLAG_INHERIT, INVALID_HANDLE_VALUE, SetHandleInformation, TRUE,
    WAIT_OBJECT_0,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, FILE_TYPE_PIPE, GetFileType, OPEN_EXISTING,
    PIPE_ACCESS_DUPLEX, ReadFile, SECURITY_IDENTIFICATION, SECURITY_SQOS_PRESENT, WriteFile,
};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};
use windows_sys::Win32::System::Pipes::{
    CreateNamedPipeW, GetNamedPipeInfo, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_SERVER_END,
    PIPE_TYPE_BYTE, PIPE_TYPE_MESSAGE, PIPE_WAIT, PeekNamedPipe,
};
use windows_sys::Win32::System::Threading::{CreateEventW, ResetEvent, WaitForSingleObject};

use super::{RawChild, owned, wait_objects, wide};

/// Size of each end's read buffer, and of the pipe's buffers.
const BUF_LEN: usize = 64 * 1024;

/// One end of a bootstrap channel.
pub(crate) struct Channel {
    pipe: OwnedHandle,
    /// Manual-reset event of the read in flight.
    read_event: OwnedHandle,
    /// The read in flight and what it delivered.
    read: Mutex<ReadState>,
    /// Event for writes; the lock serialises writers.
    write_event: Mutex<OwnedHandle>,
    /// The child process at the other end (parent side only).
    child: OnceLock<OwnedHandle>,
}

/// The end of a new channel that goes to the child.
#[derive(Debug)]
pub(crate) struct ChildEnd(pub(super) OwnedHandle);

/// The state of an end's single outstanding read. The `OVERLAPPED` and the
/// buffer live on the heap, at addresses that do not move while the kernel
/// may write to them, and are only reached through raw pointers.
struct ReadState {
    ov: *mut OVERLAPPED,
    buf: *mut u8,
    /// A read was issued and has not been collected yet.
    pending: bool,
    /// Delivered bytes not yet handed out: `buf[start..end]`.
    start: usize,
    end: usize,
    /// The peer closed its end (or, on the parent's side, exited).
    eof: bool,
}

// SAFETY: the raw pointers are owned allocations used only under the
// `Mutex` that holds this state (and by the kernel, for the read in flight);
// nothing ties them to a thread.
unsafe impl Send for ReadState {}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel").field("pipe", &self.pipe).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A manual-reset event, initially not signalled.
pub(super) fn event() -> io::Result<OwnedHandle> {
    // SAFETY: null security attributes and name are allowed.
    let h = unsafe { CreateEventW(null(), TRUE, FALSE, null()) };
    owned(h)
}

impl Channel {
    fn new(pipe: OwnedHandle) -> io::Result<Channel> {
        let (read_event, write_event) = (event()?, event()?);
        let ov = Box::into_raw(Box::new(
            // SAFETY: OVERLAPPED is plain data; all zeroes is its initial state.
            unsafe { std::mem::zeroed::<OVERLAPPED>() },
        ));
        let buf = Box::into_raw(vec![0u8; BUF_LEN].into_boxed_slice()).cast::<u8>();
        let state = ReadState { ov, buf, pending: false, start: 0, end: 0, eof: false };
        Ok(Channel {
            pipe,
            read_event,
            read: Mutex::new(state),
            write_event: Mutex::new(write_event),
            child: OnceLock::new(),
        })
    }

    /// A connected pair; neither handle is inheritable.
    pub(crate) fn pair() -> io::Result<(Channel, ChildEnd)> {
        let (server, client) = pipe_pair()?;
        Ok((Channel::new(server)?, ChildEnd(client)))
    }

    /// The channel a child inherited, from the handle value in the bootstrap
    /// environment variable. It is made non-inheritable again, so processes
    /// this child starts by other means do not receive it.
    pub(crate) fn inherited(spec: &std::ffi::OsStr) -> io::Result<Channel> {
        let value: usize = spec
            .to_str()
            .and_then(|s| s.parse().ok())
            .filter(|&h| h != 0)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a handle value"))?;
        let h = value as HANDLE;
        // SAFETY: GetFileType only inspects the handle; an invalid value
        // makes it fail.
        if unsafe { GetFileType(h) } != FILE_TYPE_PIPE {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the handle is not a pipe"));
        }
        // What a parent hands over is the client end of a byte-mode named
        // pipe (see `pipe_pair`); an anonymous pipe's read end is a server
        // end, and would not honour a bounded wait.
        let mut flags = 0u32;
        // SAFETY: the handle is a pipe (checked above); only the flags are
        // asked for, the other out-pointers may be null.
        let info = unsafe { GetNamedPipeInfo(h, &mut flags, null_mut(), null_mut(), null_mut()) };
        if info == 0 || flags & PIPE_SERVER_END != 0 || flags & PIPE_TYPE_MESSAGE != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the handle is not the client end of a byte-mode named pipe, as a parent creates",
            ));
        }
        // SAFETY: the handle is valid (checked above).
        if unsafe { SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0) } == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the parent handed this handle to us alone; nothing else
        // in this process owns it.
        Channel::new(unsafe { OwnedHandle::from_raw_handle(h) })
    }

    /// Makes this (parent's) end watch `child`: once that process has
    /// exited and everything it wrote has been read, reads report EOF and
    /// waits return, even if its end of the pipe is still open elsewhere.
    pub(crate) fn watch_exit(&self, child: &RawChild) {
        if let Ok(h) = child.process.try_clone() {
            let _ = self.child.set(h);
        }
    }

    fn raw(&self) -> HANDLE {
        self.pipe.as_raw_handle()
    }

    /// Whether the watched child has exited.
    fn child_exited(&self) -> bool {
        self.child.get().is_some_and(|h| {
            // SAFETY: a valid process handle; a zero timeout only polls.
            unsafe { WaitForSingleObject(h.as_raw_handle(), 0) == WAIT_OBJECT_0 }
        })
    }

    /// Writes all of `buf`. A vanished peer is `BrokenPipe`.
    pub(crate) fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        let ev = lock(&self.write_event);
        while !buf.is_empty() {
            let len = buf.len().min(1 << 30) as u32;
            // SAFETY: OVERLAPPED is plain data; all zeroes is its initial state.
            let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
            ov.hEvent = ev.as_raw_handle();
            // SAFETY: `buf` is valid for `len` bytes and `ov` outlives the
            // operation: it is waited for below before either goes away.
            let ok = unsafe { WriteFile(self.raw(), buf.as_ptr(), len, null_mut(), &mut ov) };
            // SAFETY: GetLastError has no preconditions.
            if ok == 0 && unsafe { GetLastError() } != ERROR_IO_PENDING {
                return Err(io::Error::last_os_error());
            }
            let mut n = 0u32;
            // SAFETY: `ov` belongs to the write just issued; waiting makes
            // the kernel done with `ov` and `buf` when this returns.
            if unsafe { GetOverlappedResult(self.raw(), &ov, &mut n, TRUE) } == 0 {
                return Err(io::Error::last_os_error());
            }
            buf = &buf[n as usize..];
        }
        Ok(())
    }

    /// As [`try_read`](Channel::try_read), appending at most `max` bytes
    /// to `out`.
    pub(crate) fn try_read_spare(&self, out: &mut Vec<u8>, max: usize) -> io::Result<Option<usize>> {
        let start = out.len();
        out.resize(start + max.min(out.capacity() - start).clamp(1, 1 << 20), 0);
        let got = self.try_read(&mut out[start..]);
        out.truncate(start + got.as_ref().ok().copied().flatten().unwrap_or(0));
        got
    }

    /// Reads what is available without blocking: `None` if nothing is,
    /// `Some(0)` at EOF.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut st = lock(&self.read);
        loop {
            if st.start < st.end {
                let n = buf.len().min(st.end - st.start);
                // SAFETY: `buf[start..end]` was filled by a completed read
                // and no read is in flight into it (pending is false while
                // bytes are buffered).
                let src = unsafe { std::slice::from_raw_parts(st.buf.add(st.start), n) };
                buf[..n].copy_from_slice(src);
                st.start += n;
                return Ok(Some(n));
            }
            if st.eof {
                return Ok(Some(0));
            }
            if st.pending {
                self.collect(&mut st, false)?;
                if !st.pending {
                    if st.start < st.end || st.eof {
                        continue;
                    }
                    // A zero-byte completion: nothing to hand out.
                    return Ok(None);
                }
            }
            if self.child_exited() {
                self.settle(&mut st)?;
                continue;
            }
            if !st.pending {
                self.arm(&mut st)?;
                if !st.pending {
                    continue;
                }
            }
            return Ok(None);
        }
    }

    /// Issues the read that stays in flight. Requires `!st.pending` and an
    /// empty buffer.
    fn arm(&self, st: &mut ReadState) -> io::Result<()> {
        debug_assert!(!st.pending && st.start == st.end);
        // SAFETY: no read is in flight, so nothing else uses `*st.ov`; a
        // fresh OVERLAPPED with our event is the required initial state.
        unsafe {
            *st.ov = std::mem::zeroed();
            (*st.ov).hEvent = self.read_event.as_raw_handle();
            ResetEvent(self.read_event.as_raw_handle());
        }
        st.start = 0;
        st.end = 0;
        // SAFETY: `st.buf` holds BUF_LEN bytes and `st.ov` is valid; both
        // stay allocated until the read is collected (see `Drop`).
        let ok = unsafe { ReadFile(self.raw(), st.buf, BUF_LEN as u32, null_mut(), st.ov) };
        // SAFETY: GetLastError has no preconditions.
        match (ok != 0, unsafe { GetLastError() }) {
            // Completed at once: the result is collected like any other.
            (true, _) | (false, ERROR_IO_PENDING) => {
                st.pending = true;
                self.collect(st, false)
            }
            (false, ERROR_BROKEN_PIPE | ERROR_PIPE_NOT_CONNECTED | ERROR_NO_DATA) => {
                st.eof = true;
                Ok(())
            }
            (false, e) => Err(io::Error::from_raw_os_error(e as i32)),
        }
    }

    /// Collects the result of the read in flight, if it is complete (or
    /// once it is, with `wait`).
    fn collect(&self, st: &mut ReadState, wait: bool) -> io::Result<()> {
        let mut n = 0u32;
        // SAFETY: `st.ov` belongs to the read in flight on this handle.
        let ok = unsafe { GetOverlappedResult(self.raw(), st.ov, &mut n, if wait { TRUE } else { FALSE }) };
        // SAFETY: GetLastError has no preconditions.
        let err = if ok != 0 { 0 } else { unsafe { GetLastError() } };
        match err {
            ERROR_IO_INCOMPLETE => return Ok(()),
            0 | ERROR_MORE_DATA => (st.start, st.end) = (0, n as usize),
            ERROR_BROKEN_PIPE | ERROR_PIPE_NOT_CONNECTED | ERROR_NO_DATA => st.eof = true,
            ERROR_OPERATION_ABORTED => {}
            e => {
                st.pending = false;
                return Err(io::Error::from_raw_os_error(e as i32));
            }
        }
        st.pending = false;
        Ok(())
    }

    /// The watched child has exited: everything it wrote is in the pipe or
    /// in our buffer by now. Collect the rest, then report EOF.
    fn settle(&self, st: &mut ReadState) -> io::Result<()> {
        if st.pending {
            // SAFETY: `st.ov` is the read in flight on this handle.
            unsafe { CancelIoEx(self.raw(), st.ov) };
            // Waiting is bounded: the read was cancelled or had completed.
            self.collect(st, true)?;
            if st.start < st.end || st.eof {
                return Ok(());
            }
        }
        let mut avail = 0u32;
        // SAFETY: only the count is asked for; null buffers are allowed.
        if unsafe { PeekNamedPipe(self.raw(), null_mut(), 0, null_mut(), &mut avail, null_mut()) } == 0 {
            st.eof = true;
            return Ok(());
        }
        if avail == 0 {
            st.eof = true;
            return Ok(());
        }
        // Data is queued, so this read completes without waiting for anyone.
        self.arm(st)?;
        if st.pending {
            self.collect(st, true)?;
        }
        Ok(())
    }

    /// Waits until a read would not block (data, EOF, or the watched child
    /// exited). `None` waits forever; returns false on timeout.
    pub(crate) fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        {
            let mut st = lock(&self.read);
            if st.pending {
                self.collect(&mut st, false)?;
            }
            if st.start < st.end || st.eof {
                return Ok(true);
            }
            if !st.pending {
                self.arm(&mut st)?;
                if !st.pending {
                    return Ok(true);
                }
            }
        }
        // Wait without the lock, so other threads can still read state.
        let mut handles = vec![self.read_event.as_raw_handle()];
        if let Some(child) = self.child.get() {
            handles.push(child.as_raw_handle());
        }
        wait_objects(&handles, timeout)
    }

    /// True once the other end is closed everywhere (its process died).
    /// Only meaningful on a channel the peer no longer writes to.
    pub(crate) fn peer_gone(&self, timeout: Option<Duration>) -> bool {
        if !matches!(self.wait_readable(timeout), Ok(true)) {
            return false;
        }
        let mut st = lock(&self.read);
        if st.pending && self.collect(&mut st, false).is_err() {
            return true;
        }
        st.eof
    }
}

/// The two ends of a new duplex named pipe with a random, single-instance
/// name, both opened for overlapped I/O, neither inheritable: (server,
/// client).
pub(super) fn pipe_pair() -> io::Result<(OwnedHandle, OwnedHandle)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut reject_remote = PIPE_REJECT_REMOTE_CLIENTS;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd).map_err(|e| io::Error::other(e.to_string()))?;
        let name = wide(&format!(
            r"\\.\pipe\multiproc-{}-{}-{:016x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            u64::from_le_bytes(rnd)
        ));
        // SAFETY: `name` is NUL-terminated; null security attributes
        // give a non-inheritable handle with the default DACL.
        let server = unsafe {
            CreateNamedPipeW(
                name.as_ptr(),
                PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
                PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | reject_remote,
                1,
                BUF_LEN as u32,
                BUF_LEN as u32,
                0,
                null(),
            )
        };
        if server == INVALID_HANDLE_VALUE {
            // SAFETY: GetLastError has no preconditions.
            match unsafe { GetLastError() } {
                // Systems older than Vista do not know the flag.
                ERROR_INVALID_PARAMETER if reject_remote != 0 => {
                    reject_remote = 0;
                    continue;
                }
                // The name is taken (a collision or a squatter): another.
                ERROR_ACCESS_DENIED if attempts < 10 => continue,
                e => return Err(io::Error::from_raw_os_error(e as i32)),
            }
        }
        // SAFETY: the handle was just created and is valid.
        let server = unsafe { OwnedHandle::from_raw_handle(server) };
        // SAFETY: as above; SECURITY_IDENTIFICATION keeps the server
        // (ourselves) from impersonating the client.
        let client = unsafe {
            CreateFileW(
                name.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                0,
                null(),
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                null_mut(),
            )
        };
        if client == INVALID_HANDLE_VALUE {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the handle was just created and is valid.
        let client = unsafe { OwnedHandle::from_raw_handle(client) };
        return Ok((server, client));
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        let st = self.read.get_mut().unwrap_or_else(PoisonError::into_inner);
        if st.pending {
            let mut n = 0u32;
            // SAFETY: the read in flight must be finished before its
            // OVERLAPPED and buffer are freed: cancel it and wait.
            unsafe {
                CancelIoEx(self.pipe.as_raw_handle(), st.ov);
                GetOverlappedResult(self.pipe.as_raw_handle(), st.ov, &mut n, TRUE);
            }
        }
        // SAFETY: both were made by `Box::into_raw` in `new`, with these
        // types and sizes, and no read is in flight any more.
        unsafe {
            drop(Box::from_raw(st.ov));
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(st.buf, BUF_LEN)));
        }
    }
}
