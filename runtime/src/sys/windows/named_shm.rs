//! Named shared memory for `crate::shared_memory`: pagefile-backed
//! sections named in the session's namespace (`Local\name`), which the
//! system removes with their last handle and view, however the processes
//! holding them end. Unlinking is therefore nothing to do here.

use std::io;
use std::os::windows::io::OwnedHandle;
use std::ptr::null;

use windows_sys::Win32::Foundation::{ERROR_ALREADY_EXISTS, GetLastError, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Memory::{CreateFileMappingW, FILE_MAP_ALL_ACCESS, OpenFileMappingW, PAGE_READWRITE};

use super::shared::Region;
use super::{OsHandle, owned, wide};

/// Whether a name stays behind when every process holding it has ended:
/// no, a section goes with its last handle.
pub(crate) const NAMES_OUTLIVE_PROCESSES: bool = false;

/// A mapped named section: the same mapping as an unnamed [`Region`].
#[derive(Debug)]
pub(crate) struct NamedSegment(Region);

/// `Local\name`, NUL-terminated.
fn path(name: &str) -> Vec<u16> {
    wide(&format!("Local\\{name}"))
}

impl NamedSegment {
    /// A new section called `name` of `len` bytes (at least one), zero
    /// filled. `AlreadyExists` if the name is taken.
    pub(crate) fn create(name: &str, len: usize) -> io::Result<NamedSegment> {
        let size = len.max(1) as u64;
        let path = path(name);
        // SAFETY: a pagefile-backed section with default security, named
        // by a NUL-terminated string that outlives the call.
        let h = unsafe {
            CreateFileMappingW(
                INVALID_HANDLE_VALUE,
                null(),
                PAGE_READWRITE,
                (size >> 32) as u32,
                size as u32,
                path.as_ptr(),
            )
        };
        // SAFETY: no preconditions; read before any other call can change it.
        let existed = unsafe { GetLastError() } == ERROR_ALREADY_EXISTS;
        let section = owned(h)?;
        if existed {
            // A handle to someone else's section: give it back.
            drop(section);
            return Err(io::Error::from_raw_os_error(ERROR_ALREADY_EXISTS as i32));
        }
        Self::map(section)
    }

    /// The section called `name`, mapped whole. `NotFound` if there is none.
    pub(crate) fn open(name: &str) -> io::Result<NamedSegment> {
        let path = path(name);
        // SAFETY: a NUL-terminated name that outlives the call; the handle
        // is not inheritable.
        let h = unsafe { OpenFileMappingW(FILE_MAP_ALL_ACCESS, 0, path.as_ptr()) };
        Self::map(owned(h)?)
    }

    /// Maps the section behind a handle passed by another process.
    pub(crate) fn adopt(handle: OsHandle) -> io::Result<NamedSegment> {
        Region::adopt(handle).map(NamedSegment)
    }

    fn map(section: OwnedHandle) -> io::Result<NamedSegment> {
        Region::map(section).map(NamedSegment)
    }

    /// A duplicate of the section handle, for a child.
    pub(crate) fn duplicate(&self) -> io::Result<OsHandle> {
        self.0.duplicate()
    }

    /// The first byte (page-aligned).
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.0.ptr()
    }

    /// The size in bytes (whole pages).
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// What tells this section from a later one of the same name: nothing
    /// is needed here, no helper ever removes a name.
    pub(crate) fn identity(&self) -> io::Result<Option<(u64, u64)>> {
        Ok(None)
    }
}

/// Nothing to remove: the name goes with the section's last handle.
pub(crate) fn unlink(_name: &str) -> io::Result<()> {
    Ok(())
}

/// Nothing to remove (see [`unlink`]); never called, as no helper runs.
pub(crate) fn unlink_if_same(_name: &str, _identity: Option<(u64, u64)>) -> bool {
    false
}

/// Nothing to do: no helper that must outlive its parent runs here.
pub(crate) fn ignore_interrupts() {}
