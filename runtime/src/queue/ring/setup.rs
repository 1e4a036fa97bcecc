//! Making a ring, and mapping one another process made, checking what it
//! maps.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;

use super::{HEADER_LEN, Header, MAGIC, MAX_RING, MIN_RING, Ring};
use crate::sys::imp::shm::{self, Mapping};

impl Ring {
    /// A new ring of `ring_bytes` (rounded up to a page) for at most
    /// `maxsize` items (0: unbounded).
    pub(crate) fn create(maxsize: u64, ring_bytes: usize) -> io::Result<Ring> {
        let capacity = ring_bytes.clamp(MIN_RING, MAX_RING).next_multiple_of(4096);
        let fd = shm::memfd("multiproc-queue", HEADER_LEN + capacity)?;
        let map = Mapping::new(fd.as_fd(), HEADER_LEN + capacity)?;
        // SAFETY: the mapping is fresh, zero-filled, page-aligned and at
        // least a page long; nobody else has it yet.
        let h = unsafe { &*map.ptr().cast::<Header>() };
        h.capacity.store(capacity as u64, Ordering::Relaxed);
        h.maxsize.store(maxsize, Ordering::Relaxed);
        // SAFETY: the mutex's memory is ours alone until the magic is set.
        unsafe { shm::mutex_init(h.mutex.0.get())? };
        h.magic.store(MAGIC, Ordering::Release);
        let (tx, rx) = shm::spill_socket()?;
        Ok(Ring { map, fd, tx, rx, capacity: capacity as u64, maxsize })
    }

    /// Maps a ring some other process created, from its memfd and the two
    /// ends of its spill socket pair.
    pub(crate) fn attach(fd: OwnedFd, tx: OwnedFd, rx: OwnedFd) -> io::Result<Ring> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("not a multiproc queue: {what}"));
        let len = shm::file_len(fd.as_fd())?;
        if len < HEADER_LEN as u64 + MIN_RING as u64 || len > (HEADER_LEN + MAX_RING) as u64 {
            return Err(bad("wrong size"));
        }
        let map = Mapping::new(fd.as_fd(), len as usize)?;
        // SAFETY: the mapping is at least a page long and page-aligned.
        let h = unsafe { &*map.ptr().cast::<Header>() };
        if h.magic.load(Ordering::Acquire) != MAGIC {
            return Err(bad("bad magic"));
        }
        let capacity = h.capacity.load(Ordering::Relaxed);
        if len.checked_sub(HEADER_LEN as u64) != Some(capacity) || capacity % 4096 != 0 {
            return Err(bad("inconsistent capacity"));
        }
        if !shm::is_sealed(fd.as_fd())? {
            return Err(bad("its size is not sealed"));
        }
        if !shm::is_datagram_socket(tx.as_fd())? || !shm::is_datagram_socket(rx.as_fd())? {
            return Err(bad("its spill sockets are not datagram sockets"));
        }
        let maxsize = h.maxsize.load(Ordering::Relaxed);
        Ok(Ring { map, fd, tx, rx, capacity, maxsize })
    }

    /// The descriptors a child needs to attach: the memfd and the spill
    /// socket pair's two ends, in [`attach`](Ring::attach)'s order.
    pub(crate) fn fds(&self) -> [BorrowedFd<'_>; 3] {
        [self.fd.as_fd(), self.tx.as_fd(), self.rx.as_fd()]
    }
}
