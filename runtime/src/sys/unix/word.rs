//! One `u64` in memory shared with a child (Linux: a [`Region`], a sealed
//! memfd mapped `MAP_SHARED`): a pool worker stores the index of the task it runs there
//! with a plain atomic store, so the parent knows which task a worker that
//! dies was running without a message per task.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use super::shared::Region;

/// The size of the memory: one word.
const LEN: usize = std::mem::size_of::<u64>();

/// A word shared with another process.
#[derive(Debug)]
pub(crate) struct SharedWord {
    region: Region,
}

impl SharedWord {
    /// A fresh word, zero.
    pub(crate) fn new() -> io::Result<SharedWord> {
        Ok(SharedWord { region: Region::new(LEN)? })
    }

    /// Maps a word another process made; refuses a file that is not one.
    pub(crate) fn adopt(file: File) -> io::Result<SharedWord> {
        let region = Region::adopt(OwnedFd::from(file))?;
        if region.len() < LEN {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a multiproc shared word"));
        }
        Ok(SharedWord { region })
    }

    /// The file behind the word, to pass to a child.
    pub(crate) fn file(&self) -> io::Result<File> {
        self.region.duplicate().map(File::from)
    }

    fn word(&self) -> &AtomicU64 {
        // SAFETY: the mapping is page-aligned, at least `LEN` bytes long and
        // lives as long as `self`; every access to it, here and in the
        // other process, is atomic.
        unsafe { &*self.region.ptr().cast::<AtomicU64>() }
    }

    /// Stores `value`.
    pub(crate) fn store(&self, value: u64) {
        self.word().store(value, Ordering::Release);
    }

    /// The last value stored, by either process.
    pub(crate) fn load(&self) -> u64 {
        self.word().load(Ordering::Acquire)
    }
}
