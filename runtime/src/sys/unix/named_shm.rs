//! Named shared memory for `crate::shared_memory`: POSIX `shm_open`
//! objects (under `/dev/shm` on Linux), which outlive every process that
//! has them open until someone unlinks the name.

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap, shm_open, shm_unlink};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::stat::{Mode, fstat};

use crate::sys::OsHandle;

/// Whether a name stays behind when every process holding it has ended
/// without unlinking it: yes, here. A killed creator's names are removed
/// by a helper process that outlives it (`shared_memory::tracker`).
pub(crate) const NAMES_OUTLIVE_PROCESSES: bool = true;

/// A mapped named segment: the object's descriptor and a `MAP_SHARED`
/// read-write mapping of all of it.
#[derive(Debug)]
pub(crate) struct NamedSegment {
    fd: OwnedFd,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory; whoever reads or writes it through
// `ptr` orders those accesses itself (the public type only offers atomic
// ones without `unsafe`).
unsafe impl Send for NamedSegment {}
// SAFETY: as above.
unsafe impl Sync for NamedSegment {}

/// `/name`, the form `shm_open` takes.
fn path(name: &str) -> String {
    format!("/{name}")
}

/// An error of the name itself, as `InvalidInput` (a name too long for
/// this system is `ENAMETOOLONG`, which `io::Error` would not call that).
fn os_error(e: Errno) -> io::Error {
    match e {
        Errno::ENAMETOOLONG => io::Error::new(io::ErrorKind::InvalidInput, "the name is too long for this system"),
        e => e.into(),
    }
}

impl NamedSegment {
    /// A new object called `name` of `len` bytes (at least one), zero
    /// filled, readable and writable by this user only. `AlreadyExists`
    /// if the name is taken.
    pub(crate) fn create(name: &str, len: usize) -> io::Result<NamedSegment> {
        let path = path(name);
        let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
        let fd = shm_open(path.as_str(), flags, Mode::S_IRUSR | Mode::S_IWUSR).map_err(os_error)?;
        let sized = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the size is too large"))
            .and_then(|size| Ok(nix::unistd::ftruncate(&fd, size)?))
            .and_then(|()| Self::map(fd, len));
        if sized.is_err() {
            // Ours since the O_EXCL open: nobody else can have it yet.
            let _ = shm_unlink(path.as_str());
        }
        sized
    }

    /// The object called `name`, mapped whole. `NotFound` if there is none.
    pub(crate) fn open(name: &str) -> io::Result<NamedSegment> {
        let fd = shm_open(path(name).as_str(), OFlag::O_RDWR, Mode::empty()).map_err(os_error)?;
        Self::adopt(fd)
    }

    /// Maps the object behind a descriptor passed by another process.
    pub(crate) fn adopt(handle: OsHandle) -> io::Result<NamedSegment> {
        let len = usize::try_from(fstat(handle.as_fd())?.st_size)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "the shared memory has no valid size"))?;
        Self::map(handle, len)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<NamedSegment> {
        let size = NonZeroUsize::new(len).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "the shared memory is empty (its creator has not sized it yet)")
        })?;
        // SAFETY: a fresh mapping at an address the kernel chooses; no
        // existing memory is affected.
        let p =
            unsafe { mmap(None, size, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_SHARED, &fd, 0) }?;
        Ok(NamedSegment { fd, ptr: p.cast(), len })
    }

    /// A duplicate of the descriptor, for a child.
    pub(crate) fn duplicate(&self) -> io::Result<OsHandle> {
        self.fd.try_clone()
    }

    /// The first byte (page-aligned).
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The size in bytes: the object's own (what its creator asked for).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// What tells this object from a later one of the same name: its
    /// device and inode, where those are stable (Linux: a tmpfs file).
    pub(crate) fn identity(&self) -> io::Result<Option<(u64, u64)>> {
        identity_of(self.fd.as_fd())
    }
}

impl Drop for NamedSegment {
    fn drop(&mut self) {
        // SAFETY: this exact range was mapped by `map`, and nothing uses it
        // any more (the owner of the mapping is being dropped).
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

fn identity_of(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<Option<(u64, u64)>> {
    if cfg!(target_os = "linux") {
        let st = fstat(fd)?;
        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)] // the field types vary by target
        Ok(Some((st.st_dev as u64, st.st_ino as u64)))
    } else {
        Ok(None)
    }
}

/// Removes the name; the memory lives on in whoever has it mapped.
/// `NotFound` if there is no such name.
pub(crate) fn unlink(name: &str) -> io::Result<()> {
    shm_unlink(path(name).as_str()).map_err(os_error)
}

/// Removes the name if it still names the object `identity` describes
/// (not a later one of the same name); any object, if `identity` is
/// `None`. True if it was removed.
pub(crate) fn unlink_if_same(name: &str, identity: Option<(u64, u64)>) -> bool {
    if let Some(expected) = identity {
        let Ok(fd) = shm_open(path(name).as_str(), OFlag::O_RDONLY, Mode::empty()) else { return false };
        if !matches!(identity_of(fd.as_fd()), Ok(Some(id)) if id == expected) {
            return false;
        }
    }
    unlink(name).is_ok()
}

/// Makes this process ignore the signals a terminal or a group-wide
/// shutdown sends to every process of a group, so that a helper that must
/// outlive its parent is not ended with it.
pub(crate) fn ignore_interrupts() {
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: ignoring a signal installs no handler code.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
}
