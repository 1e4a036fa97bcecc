//! The shared ring behind every queue type: a header and a byte ring in one
//! memfd, mapped by every process that holds the queue.
//!
//! Layout: one page of header, then `capacity` bytes of ring. The header
//! holds a robust, process-shared mutex; everything that changes under it
//! (head, tail, item count, unfinished-task count) lives in two state slots
//! and a selector. An operation reads the current slot, writes the new
//! state into the other one, and flips the selector as its last step: the
//! flip is the commit. An owner that dies holding the lock has either
//! flipped (its operation happened, whole) or not (it did not happen; bytes
//! it wrote beyond the tail are garbage nobody reads). The next locker gets
//! `EOWNERDEAD`, marks the mutex consistent and carries on.
//!
//! The memfd is sealed against resizing, and the committed state is
//! checked under the lock before it addresses the ring: any holder can
//! write anything to the mapping, which must cost the others a `Corrupt`
//! error at most, never a signal or an access outside the ring.
//!
//! Records in the ring are 4-byte aligned: a `u32` header (kind in the top
//! two bits, payload length below) and the payload. An item is either
//! inline, or a spill record naming a file that holds it; a pad record
//! skips to the end of the ring when a record would not fit before it.
//! Inline items leave an eighth of the ring free for spill records. A
//! spill file is written nameless (`O_TMPFILE`) outside the lock and
//! linked under its random name under the lock, just before the commit,
//! with the name noted in the header: a recovering locker removes it if
//! the dead owner did not commit. A consumer opens and unlinks the file
//! under the lock before committing its removal; if it dies in between, the
//! next consumer finds the file gone and skips the record (the item went
//! with the dead consumer).
//!
//! Sleeping uses futex words next to the state: consumers wait on
//! `put_seq`, bounded putters on `get_seq`, `join` on `join_seq`. Each is
//! bumped under the lock by the operation that may unblock its waiters,
//! which are woken only when a waiter count says someone sleeps, so the
//! fast path makes no system call. Sleeps are sliced (at most
//! [`SLICE`] each) so that a wake lost to a process killed between its
//! commit and its wake costs latency, never a hang.

use std::cell::UnsafeCell;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sys::imp::shm::{self, Locked, Mapping};

const MAGIC: u64 = u64::from_le_bytes(*b"MPQUEUE1");
const HEADER_LEN: usize = 4096;
const ALIGN: usize = 4;
const REC_HEADER: usize = 4;
const KIND_SHIFT: u32 = 30;
const LEN_MASK: u32 = (1 << KIND_SHIFT) - 1;
const KIND_ITEM: u32 = 0;
const KIND_SPILL: u32 = 1;
const KIND_PAD: u32 = 2;

/// How long `task_done` and the clean-up of the last handle wait for the
/// lock. A running holder keeps it only to copy one item; a holder that
/// stays on it this long is stopped (SIGSTOP, a debugger, a frozen cgroup).
pub(crate) const LOCK_BOUND: Duration = Duration::from_secs(5);

/// The longest a sleeper sleeps before it looks again on its own.
const SLICE: Duration = Duration::from_millis(50);
/// How long a waiter spins, watching its futex word, before sleeping.
const SPIN: Duration = Duration::from_micros(30);

/// Smallest and largest ring sizes accepted.
pub(crate) const MIN_RING: usize = 4096;
pub(crate) const MAX_RING: usize = 1 << 30;

/// The spill files' name prefix; a random part of [`SPILL_RANDOM`] bytes
/// (in hex) follows.
const SPILL_PREFIX: &str = "multiproc-queue-";
const SPILL_RANDOM: usize = 12;

/// No committed index exceeds this: the ring would have to carry 4 EiB
/// first. A larger one is corrupt, and below it index arithmetic cannot
/// overflow.
const MAX_INDEX: u64 = 1 << 62;

/// Inline items leave `1 / RESERVE_DIVISOR` of the ring free, so that when
/// the ring is otherwise full, references to spilled items still fit.
const RESERVE_DIVISOR: u64 = 8;

#[repr(C)]
#[derive(Default)]
struct State {
    head: AtomicU64,
    tail: AtomicU64,
    count: AtomicU64,
    unfinished: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    head: u64,
    tail: u64,
    count: u64,
    unfinished: u64,
}

#[repr(C, align(64))]
struct Line<T>(T);

#[repr(C)]
struct Header {
    magic: AtomicU64,
    capacity: AtomicU64,
    maxsize: AtomicU64,
    /// Handles (mappings plus handles in flight to children) that may
    /// still use the queue; the last one to drop removes spill files.
    handles: AtomicU64,
    /// How many times a lock was taken over from a dead owner.
    recoveries: AtomicU64,
    /// Set under the lock while a put names a spill file and commits: the
    /// file's random name part and the tail the commit will set. A lock
    /// recovered from a dead owner removes the file unless the commit
    /// happened.
    pending_spill: AtomicU32,
    pending_random: (AtomicU64, AtomicU32),
    pending_tail: AtomicU64,
    mutex: Line<UnsafeCell<libc::pthread_mutex_t>>,
    current: Line<AtomicU32>,
    states: [State; 2],
    put_seq: Line<AtomicU32>,
    get_waiters: AtomicU32,
    get_seq: Line<AtomicU32>,
    put_waiters: AtomicU32,
    join_seq: Line<AtomicU32>,
    join_waiters: AtomicU32,
}

const _: () = assert!(size_of::<Header>() <= HEADER_LEN);
const _: () = assert!(size_of::<libc::pthread_mutex_t>() <= 64);

/// Why a ring operation did not complete.
#[derive(Debug)]
pub(crate) enum RingError {
    /// Nothing to get / no room to put, within the time allowed.
    WouldBlock,
    /// The ring holds something that is not a valid record.
    Corrupt(String),
    /// The operating system refused.
    Io(io::Error),
}

impl From<io::Error> for RingError {
    fn from(e: io::Error) -> Self {
        RingError::Io(e)
    }
}

/// One process's view of a shared ring.
pub(crate) struct Ring {
    map: Mapping,
    fd: OwnedFd,
    capacity: u64,
    maxsize: u64,
    spill_dir: PathBuf,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("fd", &self.fd)
            .field("capacity", &self.capacity)
            .field("maxsize", &self.maxsize)
            .finish_non_exhaustive()
    }
}

/// A held lock; unlocks on drop.
struct Guard<'a> {
    ring: &'a Ring,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // SAFETY: a guard exists only while this thread holds the lock.
        unsafe { shm::mutex_unlock(self.ring.header().mutex.0.get()) };
    }
}

fn record_len(payload: usize) -> u64 {
    (REC_HEADER + payload).next_multiple_of(ALIGN) as u64
}

/// A deadline for a blocking call: `None` waits forever.
fn deadline(block: bool, timeout: Option<Duration>) -> Option<Option<Instant>> {
    if !block {
        return None;
    }
    // A timeout too long to represent waits forever.
    Some(timeout.and_then(|t| Instant::now().checked_add(t)))
}

/// How long a call with this [`deadline`] may wait for the lock: a
/// non-blocking call (`None`) not at all, only trying it.
fn lock_deadline(deadline: Option<Option<Instant>>) -> Option<Instant> {
    match deadline {
        None => Some(Instant::now()),
        Some(d) => d,
    }
}

/// A lock not taken within [`LOCK_BOUND`], as an error.
fn lock_timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("the queue's lock stayed held for {LOCK_BOUND:?} (its holder may be stopped)"),
    )
}

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
        h.handles.store(1, Ordering::Relaxed);
        // SAFETY: the mutex's memory is ours alone until the magic is set.
        unsafe { shm::mutex_init(h.mutex.0.get())? };
        h.magic.store(MAGIC, Ordering::Release);
        Ok(Ring { map, fd, capacity: capacity as u64, maxsize, spill_dir: shm::spill_dir() })
    }

    /// Maps a ring some other process created, from its memfd. `counted`
    /// says whether this handle was already counted in the header's handle
    /// count (by the parent, when it passed the queue).
    pub(crate) fn attach(fd: OwnedFd, counted: bool) -> io::Result<Ring> {
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
        if !counted {
            h.handles.fetch_add(1, Ordering::AcqRel);
        }
        let maxsize = h.maxsize.load(Ordering::Relaxed);
        Ok(Ring { map, fd, capacity, maxsize, spill_dir: shm::spill_dir() })
    }

    /// A duplicate of the memfd for a child, counting the child's future
    /// handle now, so the queue's spill files outlive this process if the
    /// child is still to attach.
    pub(crate) fn share(&self) -> io::Result<OwnedFd> {
        let fd = self.fd.try_clone()?;
        self.header().handles.fetch_add(1, Ordering::AcqRel);
        Ok(fd)
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping starts with an initialised header (checked at
        // attach) and lives as long as `self`.
        unsafe { &*self.map.ptr().cast::<Header>() }
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: the ring starts a page into the mapping.
        unsafe { self.map.ptr().add(HEADER_LEN) }
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    pub(crate) fn maxsize(&self) -> u64 {
        self.maxsize
    }

    /// Times a lock was recovered from a dead owner (for tests).
    pub(crate) fn recoveries(&self) -> u64 {
        self.header().recoveries.load(Ordering::Relaxed)
    }

    fn lock(&self) -> io::Result<Guard<'_>> {
        self.lock_until(None)?.ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))
    }

    /// Takes the lock, giving up at `deadline` (`None`: never) with
    /// `Ok(None)`. The lock is only ever held to copy an item, but a
    /// process stopped while holding it must not outlast a timeout.
    fn lock_until(&self, deadline: Option<Instant>) -> io::Result<Option<Guard<'_>>> {
        let h = self.header();
        // SAFETY: the mutex was initialised by `create` and the mapping is alive.
        let Some(how) = (unsafe { shm::mutex_lock(h.mutex.0.get(), deadline)? }) else {
            return Ok(None);
        };
        let guard = Guard { ring: self };
        if how == Locked::OwnerDied {
            h.recoveries.fetch_add(1, Ordering::Relaxed);
            if h.pending_spill.swap(0, Ordering::Relaxed) != 0
                && self.state().tail != h.pending_tail.load(Ordering::Relaxed)
            {
                // The dead owner named a spill file but did not commit it.
                let mut random = [0u8; SPILL_RANDOM];
                random[..8].copy_from_slice(&h.pending_random.0.load(Ordering::Relaxed).to_le_bytes());
                random[8..].copy_from_slice(&h.pending_random.1.load(Ordering::Relaxed).to_le_bytes());
                let _ = std::fs::remove_file(Spill::path(&self.spill_dir, &random));
            }
            // The dead owner may have committed without waking anyone.
            for seq in [&h.put_seq.0, &h.get_seq.0, &h.join_seq.0] {
                seq.fetch_add(1, Ordering::Release);
                shm::futex_wake_all(seq);
            }
        }
        Ok(Some(guard))
    }

    /// The committed state. Under the lock it is exact; without it, a
    /// snapshot that may be torn across fields (each field is whole).
    fn state(&self) -> Snapshot {
        let h = self.header();
        let s = &h.states[(h.current.0.load(Ordering::Acquire) & 1) as usize];
        Snapshot {
            head: s.head.load(Ordering::Relaxed),
            tail: s.tail.load(Ordering::Relaxed),
            count: s.count.load(Ordering::Relaxed),
            unfinished: s.unfinished.load(Ordering::Relaxed),
        }
    }

    /// The committed state, checked: any process mapping the queue can
    /// write anything into it, and every index is used to address the ring.
    /// Only under the lock (so that it is exact).
    fn checked_state(&self, _guard: &Guard<'_>) -> Result<Snapshot, RingError> {
        let st = self.state();
        let used = st.tail.checked_sub(st.head);
        let problem = if st.head % ALIGN as u64 != 0 || st.tail % ALIGN as u64 != 0 {
            "a misaligned index"
        } else if st.tail > MAX_INDEX {
            "an index past any the queue reaches"
        } else if used.is_none_or(|used| used > self.capacity) {
            "a head and tail further apart than the ring"
        } else if used.is_some_and(|used| st.count > used / REC_HEADER as u64) {
            "more items than records fit between head and tail"
        } else if self.maxsize > 0 && st.count > self.maxsize {
            "more items than the queue's maxsize"
        } else {
            return Ok(st);
        };
        Err(RingError::Corrupt(format!("{problem} (head {}, tail {}, count {})", st.head, st.tail, st.count)))
    }

    /// Writes `new` into the spare slot and flips to it: the commit point.
    /// Only under the lock.
    fn commit(&self, _guard: &Guard<'_>, new: Snapshot) {
        let h = self.header();
        let next = (h.current.0.load(Ordering::Relaxed) & 1) ^ 1;
        let s = &h.states[next as usize];
        s.head.store(new.head, Ordering::Relaxed);
        s.tail.store(new.tail, Ordering::Relaxed);
        s.count.store(new.count, Ordering::Relaxed);
        s.unfinished.store(new.unfinished, Ordering::Relaxed);
        h.current.0.store(next, Ordering::Release);
    }

    /// Approximate number of items.
    pub(crate) fn len(&self) -> u64 {
        self.state().count
    }

    /// Unfinished tasks (puts minus `task_done`s), approximately.
    pub(crate) fn unfinished(&self) -> u64 {
        self.state().unfinished
    }

    /// Whether a put would find the queue at its `maxsize`.
    pub(crate) fn is_full(&self) -> bool {
        self.maxsize > 0 && self.state().count >= self.maxsize
    }

    /// Writes `bytes` at ring offset `off` (no wrap).
    ///
    /// # Safety
    ///
    /// The range must be inside the ring and beyond the committed tail (or
    /// otherwise owned by the lock holder).
    unsafe fn write_at(&self, off: u64, bytes: &[u8]) {
        // SAFETY: per the caller's promise.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.data().add(off as usize), bytes.len()) };
    }

    fn read_u32(&self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        // SAFETY: callers pass offsets at least 4 bytes before the ring's end.
        unsafe { std::ptr::copy_nonoverlapping(self.data().add(off as usize), b.as_mut_ptr(), 4) };
        u32::from_le_bytes(b)
    }

    /// Puts one encoded item. `block == false` fails at once when there is
    /// no room; otherwise waits up to `timeout` (`None`: forever).
    /// On `WouldBlock` nothing was put (and no spill file is left: it only
    /// gets a name under the lock, just before the commit).
    pub(crate) fn put(&self, bytes: &[u8], block: bool, timeout: Option<Duration>) -> Result<(), RingError> {
        let deadline = deadline(block, timeout);
        let inline_len = record_len(bytes.len());
        // Items over half the ring always go to a file, written before the
        // lock is taken.
        let mut spill: Option<Spill> = None;
        if inline_len > self.capacity / 2 {
            spill = Some(Spill::write(self, bytes)?);
        }
        loop {
            let h = self.header();
            let Some(guard) = self.lock_until(lock_deadline(deadline))? else {
                return Err(RingError::WouldBlock);
            };
            let st = self.checked_state(&guard)?;
            let room_for_count = self.maxsize == 0 || st.count < self.maxsize;
            if room_for_count {
                let record: &[u8] = match &spill {
                    Some(s) => &s.record,
                    None => bytes,
                };
                let kind = if spill.is_some() { KIND_SPILL } else { KIND_ITEM };
                if let Some(new) = self.place(&guard, st, kind, record) {
                    if let Some(s) = &mut spill {
                        match s.name(self, &guard, new.tail) {
                            Ok(()) => {}
                            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                                s.reroll()?;
                                continue;
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    self.commit(&guard, new);
                    h.pending_spill.store(0, Ordering::Relaxed);
                    h.put_seq.0.fetch_add(1, Ordering::SeqCst);
                    drop(guard);
                    if wake_needed(&h.get_waiters) {
                        shm::futex_wake_all(&h.put_seq.0);
                    }
                    return Ok(());
                }
                if spill.is_none() {
                    // The ring is full but the queue is not: the item goes
                    // to a file (written without holding the lock).
                    drop(guard);
                    spill = Some(Spill::write(self, bytes)?);
                    continue;
                }
            }
            // Full: wait for a get.
            let Some(deadline) = deadline else {
                return Err(RingError::WouldBlock);
            };
            let seq = h.get_seq.0.load(Ordering::SeqCst);
            drop(guard);
            if !wait_on(&h.get_seq.0, seq, &h.put_waiters, deadline) {
                return Err(RingError::WouldBlock);
            }
        }
    }

    /// Lays out a record of `kind` holding `payload` after the tail, if it
    /// fits; returns the new state (not yet committed).
    fn place(&self, _guard: &Guard<'_>, st: Snapshot, kind: u32, payload: &[u8]) -> Option<Snapshot> {
        let cap = self.capacity;
        let rec = record_len(payload.len());
        // Inline items leave the reserve free, for spill records.
        let reserve = if kind == KIND_SPILL { 0 } else { cap / RESERVE_DIVISOR };
        if rec + reserve > cap {
            return None;
        }
        let mut new = st;
        let off = new.tail % cap;
        let contiguous = cap - off;
        if contiguous < rec {
            if new.count == 0 {
                // Empty: start over at the ring's beginning.
                new.tail += contiguous;
                new.head = new.tail;
            } else {
                if cap - (new.tail - new.head) < contiguous + rec + reserve {
                    return None;
                }
                // SAFETY: `off` is 4-aligned with at least 4 bytes left,
                // beyond the committed tail.
                unsafe { self.write_at(off, &(KIND_PAD << KIND_SHIFT).to_le_bytes()) };
                new.tail += contiguous;
            }
        } else if cap - (new.tail - new.head) < rec + reserve {
            return None;
        }
        let off = new.tail % cap;
        let word = (kind << KIND_SHIFT) | payload.len() as u32;
        // SAFETY: `rec` bytes from `off` are inside the ring and free.
        unsafe {
            self.write_at(off, &word.to_le_bytes());
            self.write_at(off + REC_HEADER as u64, payload);
        }
        new.tail += rec;
        new.count += 1;
        // (Saturating: the shared count may be garbage.)
        new.unfinished = new.unfinished.saturating_add(1);
        Some(new)
    }

    /// Gets one encoded item. `block == false` fails at once when the ring
    /// is empty; otherwise waits up to `timeout` (`None`: forever).
    pub(crate) fn get(&self, block: bool, timeout: Option<Duration>) -> Result<Vec<u8>, RingError> {
        let deadline = deadline(block, timeout);
        let h = self.header();
        loop {
            if let Some(deadline) = deadline {
                // Wait without the lock while the queue looks empty, so an
                // idle consumer does not contend with the producers.
                let seq = h.put_seq.0.load(Ordering::SeqCst);
                if self.state().count == 0 && !wait_on(&h.put_seq.0, seq, &h.get_waiters, deadline) {
                    return Err(RingError::WouldBlock);
                }
            }
            if deadline.is_none() && self.state().count == 0 {
                return Err(RingError::WouldBlock);
            }
            let Some(guard) = self.lock_until(lock_deadline(deadline))? else {
                return Err(RingError::WouldBlock);
            };
            let st = self.checked_state(&guard)?;
            if st.count > 0 {
                let (taken, new) = self.take(&guard, st)?;
                self.commit(&guard, new);
                h.get_seq.0.fetch_add(1, Ordering::SeqCst);
                drop(guard);
                if wake_needed(&h.put_waiters) {
                    shm::futex_wake_all(&h.get_seq.0);
                }
                match taken {
                    Taken::Inline(bytes) => return Ok(bytes),
                    Taken::File(file, len) => return Ok(shm::spill_read(file, len)?),
                    // A consumer died after removing the file and before
                    // committing: that item went with it.
                    Taken::Lost => continue,
                }
            }
            let Some(deadline) = deadline else {
                return Err(RingError::WouldBlock);
            };
            let seq = h.put_seq.0.load(Ordering::SeqCst);
            drop(guard);
            if !wait_on(&h.put_seq.0, seq, &h.get_waiters, deadline) {
                return Err(RingError::WouldBlock);
            }
        }
    }

    /// Reads the first item after the head (skipping pads); returns it and
    /// the state with it removed.
    fn take(&self, _guard: &Guard<'_>, st: Snapshot) -> Result<(Taken, Snapshot), RingError> {
        let cap = self.capacity;
        let mut new = st;
        loop {
            if new.head >= new.tail {
                return Err(RingError::Corrupt(format!("{} items counted but the ring is empty", new.count)));
            }
            let off = new.head % cap;
            let word = self.read_u32(off);
            let kind = word >> KIND_SHIFT;
            let len = (word & LEN_MASK) as u64;
            if kind == KIND_PAD {
                new.head += cap - off;
                continue;
            }
            let rec = record_len(len as usize);
            if rec > cap - off || new.head + rec > new.tail {
                return Err(RingError::Corrupt(format!("a record of {len} bytes overruns the ring")));
            }
            let mut payload = vec![0u8; len as usize];
            // SAFETY: the record lies between head and tail, inside the ring.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.data().add((off + REC_HEADER as u64) as usize),
                    payload.as_mut_ptr(),
                    len as usize,
                )
            };
            new.head += rec;
            new.count -= 1;
            let taken = match kind {
                KIND_ITEM => Taken::Inline(payload),
                KIND_SPILL => {
                    let (item_len, path) = Spill::parse(self, &payload)?;
                    match shm::spill_take(&path) {
                        Ok(file) => Taken::File(file, item_len),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => Taken::Lost,
                        Err(e) => return Err(e.into()),
                    }
                }
                other => return Err(RingError::Corrupt(format!("unknown record kind {other}"))),
            };
            if new.count == 0 && new.head != new.tail {
                // Only pads can follow the last item; drop them.
                new.head = new.tail;
            }
            return Ok((taken, new));
        }
    }

    /// Marks one task done; false if none was unfinished.
    pub(crate) fn task_done(&self) -> io::Result<bool> {
        let h = self.header();
        let guard = self.lock_until(Some(Instant::now() + LOCK_BOUND))?.ok_or_else(lock_timed_out)?;
        let mut st = self.checked_state(&guard).map_err(|e| match e {
            RingError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, format!("{other:?}")),
        })?;
        if st.unfinished == 0 {
            return Ok(false);
        }
        st.unfinished -= 1;
        self.commit(&guard, st);
        if st.unfinished == 0 {
            h.join_seq.0.fetch_add(1, Ordering::SeqCst);
            drop(guard);
            if wake_needed(&h.join_waiters) {
                shm::futex_wake_all(&h.join_seq.0);
            }
        }
        Ok(true)
    }

    /// Waits until no task is unfinished; false on timeout.
    pub(crate) fn join(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let deadline = deadline(true, timeout).flatten();
        let h = self.header();
        loop {
            let Some(guard) = self.lock_until(deadline)? else {
                return Ok(false);
            };
            if self.state().unfinished == 0 {
                return Ok(true);
            }
            let seq = h.join_seq.0.load(Ordering::SeqCst);
            drop(guard);
            if !wait_on(&h.join_seq.0, seq, &h.join_waiters, deadline) {
                return Ok(false);
            }
        }
    }

    /// Test hook: takes the lock, writes `bytes` as an item beyond the tail
    /// without committing it, runs `signal`, and hangs (to be killed).
    /// An item over half the ring is stalled after its spill file got its
    /// name.
    pub(crate) fn stall_mid_put(&self, bytes: &[u8], signal: impl FnOnce()) -> ! {
        let spill =
            (record_len(bytes.len()) > self.capacity / 2).then(|| Spill::write(self, bytes).expect("a spill file"));
        let guard = self.lock().expect("the queue's lock");
        match &spill {
            Some(s) => {
                let new = self.place(&guard, self.state(), KIND_SPILL, &s.record);
                s.name(self, &guard, new.expect("room for a reference").tail).expect("a name for the spill file");
            }
            None => drop(self.place(&guard, self.state(), KIND_ITEM, bytes)),
        }
        signal();
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    /// Test hook: takes the lock, copies the next (inline) item out
    /// without committing its removal, runs `signal`, and hangs.
    pub(crate) fn stall_mid_get(&self, signal: impl FnOnce()) -> ! {
        let guard = self.lock().expect("the queue's lock");
        let st = self.state();
        if st.count > 0 {
            let _ = self.take(&guard, st);
        }
        signal();
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    /// Test hook: the memfd behind the ring.
    pub(crate) fn memfd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Test hook: overwrites both state slots (head, tail, count,
    /// unfinished) with `words`, as a buggy or hostile peer could.
    pub(crate) fn scribble_state(&self, words: [u64; 4]) {
        for s in &self.header().states {
            s.head.store(words[0], Ordering::Relaxed);
            s.tail.store(words[1], Ordering::Relaxed);
            s.count.store(words[2], Ordering::Relaxed);
            s.unfinished.store(words[3], Ordering::Relaxed);
        }
    }

    /// Removes the spill files still named in the ring (the last handle is
    /// going away, so nobody will read them).
    /// Gives up, leaving them, if the lock stays held for [`LOCK_BOUND`].
    fn remove_spills(&self) {
        let Ok(Some(guard)) = self.lock_until(Some(Instant::now() + LOCK_BOUND)) else { return };
        let Ok(mut st) = self.checked_state(&guard) else { return };
        while st.count > 0 {
            match self.take(&guard, st) {
                Ok((Taken::File(..), new)) | Ok((Taken::Inline(_), new)) | Ok((Taken::Lost, new)) => st = new,
                Err(_) => break,
            }
        }
        self.commit(&guard, st);
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.header().handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.remove_spills();
        }
    }
}

enum Taken {
    Inline(Vec<u8>),
    File(std::fs::File, usize),
    Lost,
}

/// An item written to a nameless spill file, not yet referenced by the
/// ring.
struct Spill {
    file: std::fs::File,
    random: [u8; SPILL_RANDOM],
    /// The spill record's payload: the item's length, then `random`.
    record: Vec<u8>,
}

impl Spill {
    fn path(dir: &Path, random: &[u8]) -> PathBuf {
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        dir.join(format!("{SPILL_PREFIX}{hex}"))
    }

    /// Writes `bytes` to a new nameless file.
    fn write(ring: &Ring, bytes: &[u8]) -> io::Result<Spill> {
        let file = shm::spill_tmpfile(&ring.spill_dir, bytes)?;
        let mut s = Spill { file, random: [0; SPILL_RANDOM], record: (bytes.len() as u64).to_le_bytes().to_vec() };
        s.reroll()?;
        Ok(s)
    }

    /// Picks a fresh random name.
    fn reroll(&mut self) -> io::Result<()> {
        getrandom::fill(&mut self.random).map_err(|e| io::Error::other(e.to_string()))?;
        self.record.truncate(8);
        self.record.extend_from_slice(&self.random);
        Ok(())
    }

    /// Names the file, under the lock, noting the name in the header so
    /// that the file is removed if this process dies before committing
    /// the tail `new_tail`.
    fn name(&self, ring: &Ring, _guard: &Guard<'_>, new_tail: u64) -> io::Result<()> {
        let h = ring.header();
        let (lo, hi) = self.random.split_at(8);
        h.pending_random.0.store(u64::from_le_bytes(lo.try_into().expect("8 bytes")), Ordering::Relaxed);
        h.pending_random.1.store(u32::from_le_bytes(hi.try_into().expect("4 bytes")), Ordering::Relaxed);
        h.pending_tail.store(new_tail, Ordering::Relaxed);
        h.pending_spill.store(1, Ordering::Release);
        let named = shm::spill_link(&self.file, &Spill::path(&ring.spill_dir, &self.random));
        if named.is_err() {
            h.pending_spill.store(0, Ordering::Relaxed);
        }
        named
    }

    /// The item's length and file, from a spill record.
    fn parse(ring: &Ring, payload: &[u8]) -> Result<(usize, PathBuf), RingError> {
        let corrupt = || RingError::Corrupt("a malformed spill record".into());
        let (len, random) = payload.split_first_chunk::<8>().ok_or_else(corrupt)?;
        if random.len() != SPILL_RANDOM {
            return Err(corrupt());
        }
        let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| corrupt())?;
        Ok((len, Spill::path(&ring.spill_dir, random)))
    }
}

/// Waits for `word` to move from `seq`: spins briefly, then sleeps (counted
/// in `waiters`, so the other side knows to wake it; see [`wake_needed`])
/// for at most a slice. Returns
/// true when it is worth looking again, false once `deadline` (if any) has
/// passed.
///
/// No wake is lost: the waker bumps `word` and then reads `waiters`; this
/// side bumps `waiters` and then the kernel compares `word` with `seq`, all
/// sequentially consistent, so one of the two sees the other.
fn wait_on(word: &AtomicU32, seq: u32, waiters: &AtomicU32, deadline: Option<Instant>) -> bool {
    let spin_until = Instant::now() + SPIN;
    loop {
        for _ in 0..64 {
            if word.load(Ordering::SeqCst) != seq {
                return true;
            }
            std::hint::spin_loop();
        }
        if Instant::now() >= spin_until {
            break;
        }
    }
    let now = Instant::now();
    let slice = match deadline {
        Some(d) if d <= now => return false,
        Some(d) => (d - now).min(SLICE),
        None => SLICE,
    };
    waiters.fetch_add(1, Ordering::SeqCst);
    shm::futex_wait(word, seq, Some(slice));
    true
}

/// Whether a waker must wake sleepers: it takes the whole waiter count
/// (every sleeper is woken at once), so a burst of puts towards one
/// sleeper that has yet to run costs one system call, not one each. A
/// sleeper never decrements the count; one whose slice ran out with no
/// wake only costs a spurious wake later.
fn wake_needed(waiters: &AtomicU32) -> bool {
    waiters.load(Ordering::SeqCst) > 0 && waiters.swap(0, Ordering::SeqCst) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(i: usize) -> Vec<u8> {
        // Sizes from 0 to past half the ring, so that pads, wrap-around and
        // spill files all occur.
        let len = (i * 37) % 2500;
        (0..len).map(|j| (i + j) as u8).collect()
    }

    #[test]
    fn items_of_every_size_come_out_whole_and_in_order_through_a_small_ring() {
        let ring = Ring::create(0, MIN_RING).unwrap();
        let mut next_out = 0;
        for i in 0..3000 {
            ring.put(&item(i), false, None).unwrap();
            // Keep a few items in flight so the ring wraps with data in it.
            if i - next_out >= 2 {
                assert_eq!(ring.get(false, None).unwrap(), item(next_out));
                next_out += 1;
            }
        }
        while next_out < 3000 {
            assert_eq!(ring.get(false, None).unwrap(), item(next_out));
            next_out += 1;
        }
        assert!(matches!(ring.get(false, None), Err(RingError::WouldBlock)));
        let st = ring.state();
        assert_eq!((st.count, st.head), (0, st.tail));
    }

    #[test]
    fn a_full_ring_on_an_unbounded_queue_spills_until_even_references_do_not_fit() {
        let ring = Ring::create(0, MIN_RING).unwrap();
        let item = |i: usize| vec![i as u8; 1000];
        let mut n = 0;
        while ring.put(&item(n), false, None).is_ok() {
            n += 1;
            assert!(n < 1000);
        }
        // 3 inline (the reserve stays free), then references to files.
        assert!(n > 30, "{n}");
        assert_eq!(ring.len(), n as u64);
        for i in 0..n {
            assert_eq!(ring.get(false, None).unwrap(), item(i));
        }
    }

    #[test]
    fn a_bounded_ring_refuses_past_maxsize() {
        let ring = Ring::create(3, MIN_RING).unwrap();
        for i in 0..3u8 {
            ring.put(&[i], false, None).unwrap();
        }
        assert!(ring.is_full());
        assert!(matches!(ring.put(&[9], false, None), Err(RingError::WouldBlock)));
        let t = Instant::now();
        assert!(matches!(ring.put(&[9], true, Some(Duration::from_millis(50))), Err(RingError::WouldBlock)));
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!(ring.get(false, None).unwrap(), [0]);
        ring.put(&[3], false, None).unwrap();
    }

    #[test]
    fn threads_share_a_ring_losing_and_duplicating_nothing() {
        let ring = std::sync::Arc::new(Ring::create(16, 8192).unwrap());
        let producers: Vec<_> = (0..4u32)
            .map(|p| {
                let ring = ring.clone();
                std::thread::spawn(move || {
                    for s in 0..2000u32 {
                        let mut b = p.to_le_bytes().to_vec();
                        b.extend_from_slice(&s.to_le_bytes());
                        ring.put(&b, true, None).unwrap();
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..4)
            .map(|_| {
                let ring = ring.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Ok(b) = ring.get(true, Some(Duration::from_millis(500))) {
                        let p = u32::from_le_bytes(b[..4].try_into().unwrap());
                        let s = u32::from_le_bytes(b[4..].try_into().unwrap());
                        got.push((p, s));
                    }
                    got
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        let mut all = std::collections::HashSet::new();
        for c in consumers {
            let got = c.join().unwrap();
            let mut last = std::collections::HashMap::new();
            for (p, s) in got {
                if let Some(prev) = last.insert(p, s) {
                    assert!(prev < s);
                }
                assert!(all.insert((p, s)));
            }
        }
        assert_eq!(all.len(), 8000);
    }

    #[test]
    fn attaching_checks_what_it_maps() {
        let fd = shm::memfd("not-a-queue", HEADER_LEN + MIN_RING).unwrap();
        assert!(Ring::attach(fd, false).is_err());
        let ring = Ring::create(0, MIN_RING).unwrap();
        let other = Ring::attach(ring.share().unwrap(), true).unwrap();
        ring.put(b"x", false, None).unwrap();
        assert_eq!(other.get(false, None).unwrap(), b"x");
    }
}
