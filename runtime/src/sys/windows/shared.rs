//! What the synchronisation primitives and shared values (`crate::sync`)
//! need from Windows: an unnamed section (pagefile-backed shared memory)
//! passed to children as a handle, an unnamed semaphore to sleep on in
//! place of a futex (Windows' `WaitOnAddress` does not cross processes),
//! and telling whether the process that wrote its token is still alive.

use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::ptr::{null, null_mut};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use windows_sys::Win32::Foundation::{FILETIME, INVALID_HANDLE_VALUE, WAIT_OBJECT_0};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FILE_MAP_ALL_ACCESS, MEMORY_BASIC_INFORMATION, MEMORY_MAPPED_VIEW_ADDRESS, MapViewOfFile,
    PAGE_READWRITE, UnmapViewOfFile, VirtualQuery,
};
use windows_sys::Win32::System::Threading::{
    CreateSemaphoreW, GetCurrentProcess, GetProcessTimes, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    PROCESS_SYNCHRONIZE, ReleaseSemaphore, WaitForSingleObject,
};

use super::{OsHandle, owned};

/// Anonymous shared memory: zero-filled, freed with the last handle and
/// view, in whichever process that is.
#[derive(Debug)]
pub(crate) struct Region {
    section: OwnedHandle,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the view is plain memory; every access to it goes through
// atomics or is the caller's to order (as for any shared memory).
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    /// `len` fresh bytes (at least one), all zero.
    pub(crate) fn new(len: usize) -> io::Result<Region> {
        let len = len.max(1) as u64;
        // SAFETY: a pagefile-backed section with default security and no
        // name; the handle returned is ours.
        let h = unsafe {
            CreateFileMappingW(INVALID_HANDLE_VALUE, null(), PAGE_READWRITE, (len >> 32) as u32, len as u32, null())
        };
        Self::map(owned(h)?)
    }

    /// Maps a region another process made and passed; refuses a handle
    /// that is not a section.
    pub(crate) fn adopt(handle: OsHandle) -> io::Result<Region> {
        match handle {
            OsHandle::Handle(h) => Self::map(h),
            OsHandle::Socket(_) => {
                Err(io::Error::new(io::ErrorKind::InvalidInput, "the handle passed is not shared memory"))
            }
        }
    }

    /// Maps the whole of `section`.
    pub(super) fn map(section: OwnedHandle) -> io::Result<Region> {
        // SAFETY: maps the whole section (length 0) at an address the
        // system picks; a handle of another kind fails here.
        let view = unsafe { MapViewOfFile(section.as_raw_handle(), FILE_MAP_ALL_ACCESS, 0, 0, 0) };
        if view.Value.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: an all-zero MEMORY_BASIC_INFORMATION is valid; VirtualQuery
        // only writes into it.
        let mut info: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: `view` is a mapped address and `info` is writable.
        let got = unsafe { VirtualQuery(view.Value, &mut info, std::mem::size_of::<MEMORY_BASIC_INFORMATION>()) };
        if got == 0 {
            let e = io::Error::last_os_error();
            // SAFETY: the view was mapped just above and is not used.
            unsafe { UnmapViewOfFile(view) };
            return Err(e);
        }
        Ok(Region { section, ptr: view.Value.cast(), len: info.RegionSize })
    }

    /// A duplicate of the section handle, for a child.
    pub(crate) fn duplicate(&self) -> io::Result<OsHandle> {
        self.section.try_clone().map(OsHandle::Handle)
    }

    /// The first byte (page-aligned).
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The size in bytes (whole pages).
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: this view was mapped by `map` and nothing uses it any more.
        unsafe { UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: self.ptr.cast() }) };
    }
}

/// How a process sleeps on a word of a [`Region`] until another wakes it:
/// an unnamed semaphore shared by every word of the region. A waker
/// releases one count per sleeper of the region, whichever word it sleeps
/// on; each re-checks its own word, so a wake is never lost and at worst
/// spurious.
#[derive(Debug)]
pub(crate) struct Parker {
    sem: OwnedHandle,
}

impl Parker {
    pub(crate) fn new() -> io::Result<Parker> {
        // SAFETY: an unnamed semaphore with default security; ours.
        let h = unsafe { CreateSemaphoreW(null(), 0, i32::MAX, null()) };
        Ok(Parker { sem: owned(h)? })
    }

    /// The semaphore, for a child.
    pub(crate) fn duplicate(&self) -> io::Result<Option<OsHandle>> {
        self.sem.try_clone().map(|h| Some(OsHandle::Handle(h)))
    }

    pub(crate) fn adopt(handle: Option<OsHandle>) -> io::Result<Parker> {
        match handle {
            Some(OsHandle::Handle(sem)) => Ok(Parker { sem }),
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "the handle passed is not a semaphore")),
        }
    }

    /// Sleeps while `*word == expected`, at most `timeout`. The caller has
    /// counted itself among the region's sleepers before reading the value
    /// it passes, so a wake that comes between is a count already in the
    /// semaphore.
    pub(crate) fn wait(&self, word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
        if word.load(Ordering::Acquire) != expected {
            return;
        }
        let ms = timeout.map_or(u32::MAX, |t| t.as_millis().clamp(1, u128::from(u32::MAX - 1)) as u32);
        // SAFETY: a semaphore handle we own.
        unsafe { WaitForSingleObject(self.sem.as_raw_handle(), ms) };
    }

    /// Wakes the region's `sleepers` (every one: they share the semaphore).
    pub(crate) fn wake(&self, _word: &AtomicU32, _n: u32, sleepers: u32) {
        if sleepers > 0 {
            let n = sleepers.min(i32::MAX as u32) as i32;
            // SAFETY: a semaphore handle we own; a count past its maximum
            // fails harmlessly.
            unsafe { ReleaseSemaphore(self.sem.as_raw_handle(), n, null_mut()) };
        }
    }
}

/// This process as a token other processes can test with
/// [`process_alive`]: its pid in the high half and the low bits of its
/// creation time in the low half. Never 0.
pub(crate) fn process_token() -> u64 {
    static TOKEN: OnceLock<u64> = OnceLock::new();
    // SAFETY: the pseudo-handle of this process needs no closing.
    *TOKEN.get_or_init(|| token(std::process::id(), created(unsafe { GetCurrentProcess() }).unwrap_or(0)))
}

fn token(pid: u32, created: u64) -> u64 {
    // Creation times are in 100 ns units; the low bits above the first
    // few still tell two processes of one pid apart.
    (u64::from(pid) << 32) | ((created >> 4) & 0xffff_ffff)
}

/// The pid in a [`process_token`].
pub(crate) fn token_pid(token: u64) -> u32 {
    (token >> 32) as u32
}

fn created(process: windows_sys::Win32::Foundation::HANDLE) -> Option<u64> {
    let zero = FILETIME { dwLowDateTime: 0, dwHighDateTime: 0 };
    let (mut c, mut e, mut k, mut u) = (zero, zero, zero, zero);
    // SAFETY: a process handle with query rights and four writable FILETIMEs.
    let ok = unsafe { GetProcessTimes(process, &mut c, &mut e, &mut k, &mut u) };
    (ok != 0).then(|| (u64::from(c.dwHighDateTime) << 32) | u64::from(c.dwLowDateTime))
}

/// Whether the process a [`process_token`] names is still running.
pub(crate) fn process_alive(token: u64) -> bool {
    let pid = token_pid(token);
    // SAFETY: opening a process by id; the handle returned is ours.
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SYNCHRONIZE, 0, pid) };
    // No such process (or one we may not see, which is not ours).
    let Ok(h) = owned(h) else { return false };
    if created(h.as_raw_handle()).is_some_and(|c| self::token(pid, c) != token) {
        return false;
    }
    // SAFETY: a process handle with SYNCHRONIZE; a zero wait only polls.
    unsafe { WaitForSingleObject(h.as_raw_handle(), 0) != WAIT_OBJECT_0 }
}
