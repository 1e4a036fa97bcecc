//! Shared memory: Python's `multiprocessing.shared_memory.SharedMemory`,
//! with who removes a name written in the types: [`SharedMemory`] owns,
//! [`SharedMemoryView`] does not. The user's account of names, crashes and
//! the helper is on [`SharedMemory`]; the helper itself is `tracker`.

mod access;
mod error;
mod tracker;
mod wire;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use error::SharedMemoryError;
use error::{check_name, check_size, from_os, random_name};
pub(crate) use tracker::TRACKER_ID;

use crate::sys::OsHandle;
use crate::sys::imp::Region;
use crate::sys::imp::named_shm::{self, NamedSegment};

/// The memory behind a [`SharedMemory`] or a [`SharedMemoryView`].
#[derive(Debug)]
enum Memory {
    Unnamed(Region),
    Named(NamedSegment),
}

/// Mapped memory and its name, shared by an owner and the views made from
/// it in this process.
#[derive(Debug)]
struct Segment {
    memory: Memory,
    name: Option<String>,
}

impl Segment {
    fn ptr(&self) -> *mut u8 {
        match &self.memory {
            Memory::Unnamed(r) => r.ptr(),
            Memory::Named(n) => n.ptr(),
        }
    }

    fn len(&self) -> usize {
        match &self.memory {
            Memory::Unnamed(r) => r.len(),
            Memory::Named(n) => n.len(),
        }
    }

    fn duplicate(&self) -> std::io::Result<OsHandle> {
        match &self.memory {
            Memory::Unnamed(r) => r.duplicate(),
            Memory::Named(n) => n.duplicate(),
        }
    }

    /// Maps memory whose handle another process passed.
    fn adopt(handle: OsHandle, name: Option<String>) -> std::io::Result<Segment> {
        let memory = match name {
            Some(_) => Memory::Named(NamedSegment::adopt(handle)?),
            None => Memory::Unnamed(Region::adopt(handle)?),
        };
        Ok(Segment { memory, name })
    }
}

/// Shared memory this process created and owns (Python's
/// `SharedMemory(create=True)`); a named one is unlinked when it is
/// dropped, or when this process dies without dropping it.
///
/// Other processes reach it through a [`SharedMemoryView`]: passed to a
/// child as a task argument ([`view`](SharedMemory::view)), or opened by
/// name ([`SharedMemory::open`]). A view never removes anything; Python's
/// trackers had to guess who owned a name (gh-82300). The owner itself
/// cannot be passed (a task that takes one does not compile): there is
/// one owner.
///
/// # Unnamed and named memory
///
/// Unnamed memory ([`SharedMemory::create`], Linux and Windows) is the one
/// to prefer: it has nothing to leak, since the system frees it with the
/// last process that holds it, however that process ends. Named memory
/// ([`create_named`](SharedMemory::create_named),
/// [`create_with_random_name`](SharedMemory::create_with_random_name)) is
/// for processes that find it by name.
///
/// # Names that outlive a crash
///
/// On Unix a name outlives every process until it is unlinked. So that a
/// creator killed with `SIGKILL` leaves nothing under `/dev/shm`, the
/// first named creation in a process starts a small helper process (this
/// same binary, started like a child but not among
/// [`active_children`](crate::active_children), and running no
/// [`#[child_init]`](crate::child_init)). It holds one end of a socket
/// whose other end only the creator has. The creator tells it each name
/// it creates and each it removes; when the socket reports end of file
/// (the creator has ended, however it ended), the helper removes the names
/// still listed, each only if it still names the object the creator made,
/// and exits. It says nothing, and ignores `SIGINT`, `SIGTERM` and
/// `SIGHUP`, which a terminal sends the creator's whole group. If it is
/// killed itself, the next creation starts another and tells it every
/// live name. Unlinking once every process has the memory open
/// ([`unlink`](SharedMemory::unlink)) needs no helper at all.
///
/// On Windows a name goes with its last handle, so there is nothing to
/// remove and no helper; `unlink` does nothing there.
///
/// ```
/// use multiproc::{Builder, SharedMemory, SharedMemoryView, process_task};
///
/// #[process_task]
/// fn shout(memory: SharedMemoryView) {
///     let mut text = [0; 5];
///     memory.read_at(0, &mut text);
///     memory.write_at(0, &text.to_ascii_uppercase());
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let memory = SharedMemory::create_with_random_name(5)?;
/// memory.write_at(0, b"hello");
/// Builder::new(shout, (memory.view(),)).start()?.join()?;
/// let mut text = [0; 5];
/// memory.read_at(0, &mut text);
/// assert_eq!(&text, b"HELLO");
/// # Ok(())
/// # }
/// ```
pub struct SharedMemory {
    segment: Arc<Segment>,
    /// The name was unlinked (or there is none to unlink).
    unlinked: AtomicBool,
}

/// Shared memory this process opened by name or was passed, but does not
/// own (Python's `SharedMemory(name)` with `track=False`): dropping it
/// unmaps it and never removes the name.
///
/// A view can be passed to a child as a task argument or a process
/// type's field: the child gets a view of the same memory, through its
/// handle (so it works for unnamed memory, and for named memory whose name
/// is gone). Outside a child's start (through a [`Queue`] or a
/// [`Connection`], to a pool's task) a named view travels as its name, and
/// the receiver opens it; an unnamed one cannot.
///
/// Cloning a view is cheap: the clones share one mapping.
///
/// ```
/// use multiproc::SharedMemory;
///
/// let owner = SharedMemory::create_with_random_name(4)?;
/// let view = SharedMemory::open(owner.name().unwrap())?;
/// view.write_at(0, &[1, 2, 3, 4]);
/// let mut got = [0; 4];
/// owner.read_at(0, &mut got);
/// assert_eq!(got, [1, 2, 3, 4]);
/// drop(view); // the name is still there
/// assert!(SharedMemory::open(owner.name().unwrap()).is_ok());
/// # Ok::<(), multiproc::SharedMemoryError>(())
/// ```
///
/// [`Queue`]: crate::Queue
/// [`Connection`]: crate::Connection
#[derive(Clone)]
pub struct SharedMemoryView {
    segment: Arc<Segment>,
}

impl SharedMemory {
    /// `size` bytes of unnamed shared memory, zero-filled. It has no name
    /// to leak: the system frees it when the last process holding it lets
    /// go, however that process ends. Children get it through
    /// [`view`](SharedMemory::view).
    ///
    /// Linux (a sealed memfd) and Windows (an unnamed section); elsewhere
    /// it is [`SharedMemoryError::Io`] of kind `Unsupported`, and
    /// [`create_with_random_name`](SharedMemory::create_with_random_name)
    /// serves.
    ///
    /// ```
    /// let memory = multiproc::SharedMemory::create(100)?;
    /// assert!(memory.size() >= 100);
    /// assert_eq!(memory.name(), None);
    /// # Ok::<(), multiproc::SharedMemoryError>(())
    /// ```
    pub fn create(size: usize) -> Result<SharedMemory, SharedMemoryError> {
        let region = Region::new(check_size(size)?)?;
        Ok(SharedMemory::owning(Segment { memory: Memory::Unnamed(region), name: None }, true))
    }

    /// `size` bytes of shared memory called `name`, zero-filled
    /// (`SharedMemory(name, create=True, size=size)`). A leading `/` is
    /// not part of the name.
    ///
    /// [`SharedMemoryError::AlreadyExists`] if the name is taken,
    /// [`SharedMemoryError::InvalidInput`] for a size of 0 or a name that
    /// cannot be one (see there). On Unix the object is readable and
    /// writable by this user only, and the first named creation in this
    /// process starts the helper that removes the names of a killed
    /// creator (see [names that outlive a
    /// crash](SharedMemory#names-that-outlive-a-crash)).
    ///
    /// ```
    /// use multiproc::SharedMemory;
    ///
    /// let name = format!("doc_create_named_{}", std::process::id());
    /// let memory = SharedMemory::create_named(&format!("/{name}"), 10)?;
    /// assert_eq!(memory.name(), Some(name.as_str()));
    /// # Ok::<(), multiproc::SharedMemoryError>(())
    /// ```
    pub fn create_named(name: &str, size: usize) -> Result<SharedMemory, SharedMemoryError> {
        let size = check_size(size)?;
        let name = check_name(name)?;
        if named_shm::NAMES_OUTLIVE_PROCESSES {
            // Before anything exists that it would have to remove.
            tracker::ready()?;
        }
        let segment = NamedSegment::create(name, size).map_err(|e| from_os(e, name))?;
        if named_shm::NAMES_OUTLIVE_PROCESSES {
            let tracked = segment.identity().and_then(|id| tracker::created(name, id));
            if let Err(e) = tracked {
                let _ = named_shm::unlink(name);
                return Err(e.into());
            }
        }
        Ok(SharedMemory::owning(Segment { memory: Memory::Named(segment), name: Some(name.to_owned()) }, false))
    }

    /// `size` bytes of shared memory under a fresh random name
    /// (`SharedMemory(create=True, size=size)`): `psm_` and 8 hexadecimal
    /// digits, short enough for every system.
    ///
    /// ```
    /// let memory = multiproc::SharedMemory::create_with_random_name(10)?;
    /// let name = memory.name().unwrap();
    /// assert!(name.starts_with("psm_") && name.len() <= 14);
    /// # Ok::<(), multiproc::SharedMemoryError>(())
    /// ```
    pub fn create_with_random_name(size: usize) -> Result<SharedMemory, SharedMemoryError> {
        check_size(size)?;
        let mut tries = 0;
        loop {
            match SharedMemory::create_named(&random_name()?, size) {
                Err(SharedMemoryError::AlreadyExists { .. }) if tries < 100 => tries += 1,
                other => return other,
            }
        }
    }

    /// Opens the shared memory called `name` (`SharedMemory(name)`), made
    /// by this or another process. Its size is the creator's: there is
    /// none to give. The view never unlinks the name.
    ///
    /// [`SharedMemoryError::NotFound`] if there is no such name.
    ///
    /// ```
    /// use multiproc::{SharedMemory, SharedMemoryError};
    ///
    /// let owner = SharedMemory::create_with_random_name(3)?;
    /// let view = SharedMemory::open(owner.name().unwrap())?;
    /// assert_eq!(view.size(), owner.size());
    /// assert!(matches!(SharedMemory::open("psm_no_such_name"), Err(SharedMemoryError::NotFound { .. })));
    /// # Ok::<(), SharedMemoryError>(())
    /// ```
    pub fn open(name: &str) -> Result<SharedMemoryView, SharedMemoryError> {
        let name = check_name(name)?;
        let segment = NamedSegment::open(name).map_err(|e| from_os(e, name))?;
        Ok(SharedMemoryView {
            segment: Arc::new(Segment { memory: Memory::Named(segment), name: Some(name.to_owned()) }),
        })
    }

    fn owning(segment: Segment, unlinked: bool) -> SharedMemory {
        SharedMemory { segment: Arc::new(segment), unlinked: AtomicBool::new(unlinked) }
    }

    /// A view of this memory, to pass to a child (a task's argument, a
    /// process type's field) or keep: it shares this mapping, and stays
    /// valid after the owner is dropped.
    ///
    /// ```
    /// let owner = multiproc::SharedMemory::create_with_random_name(1)?;
    /// let view = owner.view();
    /// drop(owner);
    /// view.write_at(0, &[7]); // still mapped, though the name is gone
    /// # Ok::<(), multiproc::SharedMemoryError>(())
    /// ```
    pub fn view(&self) -> SharedMemoryView {
        SharedMemoryView { segment: Arc::clone(&self.segment) }
    }

    /// Removes the name now (Python's `unlink()`), keeping the memory
    /// mapped here and wherever it is open: nobody can open it by name any
    /// more. Done once the processes that need the name have it open, it
    /// leaves nothing behind even if the helper cannot run. Dropping the
    /// owner then unlinks nothing.
    ///
    /// [`SharedMemoryError::NotFound`] the second time, or if the name was
    /// removed by other means; [`SharedMemoryError::InvalidInput`] for
    /// unnamed memory. On Windows the system removes the name with the
    /// last handle, so this only records that it was called.
    ///
    /// ```
    /// use multiproc::{SharedMemory, SharedMemoryError};
    ///
    /// let owner = SharedMemory::create_with_random_name(8)?;
    /// let view = SharedMemory::open(owner.name().unwrap())?;
    /// owner.unlink()?;
    /// assert!(matches!(owner.unlink(), Err(SharedMemoryError::NotFound { .. })));
    /// view.write_at(0, b"still ok"); // mapped memory outlives its name
    /// # Ok::<(), SharedMemoryError>(())
    /// ```
    pub fn unlink(&self) -> Result<(), SharedMemoryError> {
        let Some(name) = self.segment.name.as_deref() else {
            return Err(SharedMemoryError::InvalidInput("unnamed shared memory has no name to unlink".into()));
        };
        if self.unlinked.swap(true, Ordering::AcqRel) {
            return Err(SharedMemoryError::NotFound { name: name.to_owned() });
        }
        let removed = named_shm::unlink(name).map_err(|e| from_os(e, name));
        if named_shm::NAMES_OUTLIVE_PROCESSES {
            tracker::removed(name);
        }
        removed
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        if !*self.unlinked.get_mut() {
            let _ = self.unlink();
        }
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory").field("name", &self.name()).field("size", &self.size()).finish()
    }
}

impl fmt::Debug for SharedMemoryView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemoryView").field("name", &self.name()).field("size", &self.size()).finish()
    }
}
