//! How a [`SharedMemoryView`] crosses to another process: as a handle in
//! the table of a child being started, or, elsewhere, as its name.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Segment, SharedMemory, SharedMemoryView};
use crate::wire::handles;

/// A view's encoding.
#[derive(Serialize, Deserialize)]
enum Sent {
    /// The handle at `index` of the child's table; the name, if any.
    Handle { index: u32, name: Option<String> },
    /// Only a name, opened by the receiver.
    Name(String),
}

/// In the arguments of a child being started, a handle to the memory (and
/// its name, if it has one); anywhere else the name, or an error for
/// unnamed memory.
///
/// ```
/// use multiproc::{SharedMemory, pipe};
///
/// let owner = SharedMemory::create_with_random_name(1)?;
/// let (a, b) = pipe()?;
/// a.send(&owner.view())?; // by name
/// let view = b.recv()?;
/// assert_eq!(view.name(), owner.name());
/// # #[cfg(any(target_os = "linux", windows))]
/// # {
/// let unnamed = SharedMemory::create(1)?;
/// assert!(a.send(&unnamed.view()).is_err()); // only to a child being started
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl Serialize for SharedMemoryView {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let segment = &self.segment;
        match handles::share(|| segment.duplicate()) {
            Ok(index) => Sent::Handle { index, name: segment.name.clone() }.serialize(serializer),
            Err(e) => match &segment.name {
                Some(name) if e == handles::NOT_SHARING => Sent::Name(name.clone()).serialize(serializer),
                Some(_) => Err(serde::ser::Error::custom(e)),
                None => Err(serde::ser::Error::custom(format!("unnamed shared memory: {e}"))),
            },
        }
    }
}

/// Maps the memory the parent passed, or opens the name that was sent
/// (failing if the name is gone).
///
/// ```
/// use multiproc::{Builder, SharedMemory, SharedMemoryView, process_task};
///
/// #[process_task]
/// fn fill(memory: SharedMemoryView, byte: u8) {
///     memory.write_at(0, &vec![byte; memory.size()]);
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # #[cfg(any(target_os = "linux", windows))]
/// # {
/// let memory = SharedMemory::create(4096)?; // unnamed: passed as a handle
/// Builder::new(fill, (memory.view(), 0xab)).start()?.join()?;
/// let mut got = [0; 4096];
/// memory.read_at(0, &mut got);
/// assert!(got.iter().all(|&b| b == 0xab));
/// # }
/// # Ok(())
/// # }
/// ```
impl<'de> Deserialize<'de> for SharedMemoryView {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Sent::deserialize(deserializer)? {
            Sent::Handle { index, name } => {
                let handle = handles::claim(index).map_err(serde::de::Error::custom)?;
                let segment = Segment::adopt(handle, name).map_err(serde::de::Error::custom)?;
                Ok(SharedMemoryView { segment: Arc::new(segment) })
            }
            Sent::Name(name) => SharedMemory::open(&name).map_err(serde::de::Error::custom),
        }
    }
}
