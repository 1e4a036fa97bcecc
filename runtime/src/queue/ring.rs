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
//! inline, or a spill record referring to a memfd that holds it; a pad record
//! skips to the end of the ring when a record would not fit before it.
//! Inline items leave an eighth of the ring free for spill records.
//!
//! A spilled item is written to a memfd outside the lock; under the lock,
//! the producer takes the next spill sequence number, writes a spill
//! record (length and sequence number), sends the memfd with the sequence
//! number through the queue's socket pair, and commits. Everything in
//! flight belongs to the sockets, which every holder has: nothing has a
//! name, and when the last holder exits, however it exits, the kernel
//! frees it all. Datagrams reach the socket in sequence order (they are
//! sent under the lock), which is ring order. A consumer taking a spill
//! record `s` first notes in the header that every datagram up to `s` is
//! claimed, then receives datagrams until `s`, dropping older ones: those
//! of producers that died between sending and committing. A record older
//! than the claim mark belonged to a consumer that died between claiming
//! and committing: the item went with it, and the record is skipped.
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
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sys::imp::shm::{self, Locked, Mapping};

const MAGIC: u64 = u64::from_le_bytes(*b"MPQUEUE2");
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

/// A spill record's payload: the item's length and its sequence number.
const SPILL_RECORD: usize = 16;

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
    /// How many times a lock was taken over from a dead owner.
    recoveries: AtomicU64,
    /// The next spilled item's sequence number (taken under the lock, not
    /// part of the commit: a number a dead producer took stays used).
    spill_seq: AtomicU64,
    /// Every datagram numbered below this was received, or claimed by a
    /// consumer about to receive it (under the lock).
    spill_claimed: AtomicU64,
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
    /// The socket pair spilled items travel through: sent on `tx`,
    /// received on `rx`.
    tx: OwnedFd,
    rx: OwnedFd,
    capacity: u64,
    maxsize: u64,
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
    pub(crate) fn fds(&self) -> [std::os::fd::BorrowedFd<'_>; 3] {
        [self.fd.as_fd(), self.tx.as_fd(), self.rx.as_fd()]
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
            // (A spilled item the dead owner sent but did not commit is
            // dropped by the consumer that next receives past it.)
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
        let problem = if !st.head.is_multiple_of(ALIGN as u64) || !st.tail.is_multiple_of(ALIGN as u64) {
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
    /// On `WouldBlock` nothing was put. Besides a full queue or ring, a
    /// spill socket with no room for another datagram, or a user with too
    /// many descriptors in flight (`RLIMIT_NOFILE`), is no room.
    pub(crate) fn put(&self, bytes: &[u8], block: bool, timeout: Option<Duration>) -> Result<(), RingError> {
        let deadline = deadline(block, timeout);
        let inline_len = record_len(bytes.len());
        // Items over half the ring always spill, written before the lock
        // is taken.
        let mut spill: Option<Spill> = None;
        if inline_len > self.capacity / 2 {
            spill = Some(Spill::write(bytes)?);
        }
        loop {
            let h = self.header();
            let Some(guard) = self.lock_until(lock_deadline(deadline))? else {
                return Err(RingError::WouldBlock);
            };
            let st = self.checked_state(&guard)?;
            let room_for_count = self.maxsize == 0 || st.count < self.maxsize;
            if room_for_count {
                if let Some(s) = &mut spill {
                    s.number(h.spill_seq.fetch_add(1, Ordering::Relaxed));
                }
                let record: &[u8] = match &spill {
                    Some(s) => &s.record,
                    None => bytes,
                };
                let kind = if spill.is_some() { KIND_SPILL } else { KIND_ITEM };
                if let Some(new) = self.place(&guard, st, kind, record) {
                    let sent = match &spill {
                        Some(s) => s.send(self, &guard, st.count)?,
                        None => true,
                    };
                    if sent {
                        self.commit(&guard, new);
                        h.put_seq.0.fetch_add(1, Ordering::SeqCst);
                        drop(guard);
                        if wake_needed(&h.get_waiters) {
                            shm::futex_wake_all(&h.put_seq.0);
                        }
                        return Ok(());
                    }
                } else if spill.is_none() {
                    // The ring is full but the queue is not: the item
                    // spills (written without holding the lock).
                    drop(guard);
                    spill = Some(Spill::write(bytes)?);
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
                    // A consumer died after claiming the item and before
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
                    let (item_len, seq) = Spill::parse(&payload)?;
                    match self.receive(seq)? {
                        Some(file) => Taken::File(file, item_len),
                        None => Taken::Lost,
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

    /// Receives spilled item `seq`'s memfd (under the lock, for a spill
    /// record about to be removed); `None` if a consumer that died had
    /// claimed it (the item went with that consumer).
    fn receive(&self, seq: u64) -> Result<Option<std::fs::File>, RingError> {
        let h = self.header();
        if seq < h.spill_claimed.load(Ordering::Relaxed) {
            return Ok(None);
        }
        // Claimed before it is received: if this process dies in between,
        // the next consumer skips the record, and drops the datagram as
        // stale when it receives past it.
        h.spill_claimed.store(seq.saturating_add(1), Ordering::Relaxed);
        loop {
            match shm::spill_recv(self.rx.as_fd())? {
                // Sent by a producer that died before committing, or
                // claimed by a consumer that died before receiving it.
                Some((n, _)) if n < seq => continue,
                Some((n, Some(file))) if n == seq => return Ok(Some(file)),
                Some((n, _)) => {
                    return Err(RingError::Corrupt(format!("spilled item {seq} is missing (found item {n})")));
                }
                None => return Err(RingError::Corrupt(format!("spilled item {seq} is missing"))),
            }
        }
    }

    /// Drops every datagram in the spill socket. Only under the lock, with
    /// no item in the queue: nothing in the socket is then referenced.
    fn drop_stale_spills(&self, _guard: &Guard<'_>) {
        while let Ok(Some(_)) = shm::spill_recv(self.rx.as_fd()) {}
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
    /// An item over half the ring is stalled after its memfd was sent.
    pub(crate) fn stall_mid_put(&self, bytes: &[u8], signal: impl FnOnce()) -> ! {
        let mut spill =
            (record_len(bytes.len()) > self.capacity / 2).then(|| Spill::write(bytes).expect("a spilled item"));
        let guard = self.lock().expect("the queue's lock");
        match &mut spill {
            Some(s) => {
                s.number(self.header().spill_seq.fetch_add(1, Ordering::Relaxed));
                self.place(&guard, self.state(), KIND_SPILL, &s.record).expect("room for a reference");
                assert!(s.send(self, &guard, self.state().count).expect("the spill socket"), "room in the socket");
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
}

enum Taken {
    Inline(Vec<u8>),
    File(std::fs::File, usize),
    Lost,
}

/// An item written to a memfd, not yet referenced by the ring.
struct Spill {
    file: std::fs::File,
    seq: u64,
    /// The spill record's payload: the item's length, then `seq`.
    record: Vec<u8>,
}

impl Spill {
    /// Writes `bytes` to a new memfd.
    fn write(bytes: &[u8]) -> io::Result<Spill> {
        let file = shm::spill_memfd(bytes)?;
        let mut record = Vec::with_capacity(SPILL_RECORD);
        record.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        record.extend_from_slice(&0u64.to_le_bytes());
        Ok(Spill { file, seq: 0, record })
    }

    /// Gives the item the sequence number `seq` (taken under the lock).
    fn number(&mut self, seq: u64) {
        self.seq = seq;
        self.record[8..].copy_from_slice(&seq.to_le_bytes());
    }

    /// Sends the memfd through the queue's spill socket, under the lock,
    /// just before the commit. False if there is no room for it now (the
    /// socket is full, or this user has too many descriptors in flight);
    /// with `count == 0` items queued, whatever is in the socket is stale
    /// and is dropped first.
    fn send(&self, ring: &Ring, guard: &Guard<'_>, count: u64) -> io::Result<bool> {
        let no_room =
            |e: &io::Error| e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ETOOMANYREFS);
        match shm::spill_send(ring.tx.as_fd(), self.seq, &self.file) {
            Ok(()) => Ok(true),
            Err(e) if no_room(&e) && count == 0 => {
                ring.drop_stale_spills(guard);
                match shm::spill_send(ring.tx.as_fd(), self.seq, &self.file) {
                    Ok(()) => Ok(true),
                    Err(e) if no_room(&e) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Err(e) if no_room(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The item's length and sequence number, from a spill record.
    fn parse(payload: &[u8]) -> Result<(usize, u64), RingError> {
        let corrupt = || RingError::Corrupt("a malformed spill record".into());
        let (len, seq) = payload.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let seq: [u8; 8] = seq.try_into().map_err(|_| corrupt())?;
        let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| corrupt())?;
        Ok((len, u64::from_le_bytes(seq)))
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
        // spilled items all occur.
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
        // 3 inline (the reserve stays free), then references to spilled items.
        assert!(n > 30, "{n}");
        assert_eq!(ring.len(), n as u64);
        for i in 0..n {
            assert_eq!(ring.get(false, None).unwrap(), item(i));
        }
    }

    #[test]
    fn spilled_items_are_bounded_and_all_come_back_in_order() {
        // Every item spills; the ring's references (or the socket's room)
        // run out first.
        let ring = Ring::create(0, MIN_RING).unwrap();
        let item = |i: usize| vec![i as u8; MIN_RING / 2 + 1];
        let mut n = 0;
        while ring.put(&item(n), false, None).is_ok() {
            n += 1;
            assert!(n < 1000);
        }
        assert!(n >= 32, "{n}");
        for i in 0..n {
            assert_eq!(ring.get(false, None).unwrap(), item(i));
        }
        assert!(matches!(ring.get(false, None), Err(RingError::WouldBlock)));
        // The socket has room again.
        ring.put(&item(1), false, None).unwrap();
        assert_eq!(ring.get(false, None).unwrap(), item(1));
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
        let (tx, rx) = shm::spill_socket().unwrap();
        assert!(Ring::attach(fd, tx, rx).is_err());
        let ring = Ring::create(0, MIN_RING).unwrap();
        let [fd, tx, rx] = ring.fds().map(|fd| fd.try_clone_to_owned().unwrap());
        let other = Ring::attach(fd, tx, rx).unwrap();
        ring.put(b"x", false, None).unwrap();
        assert_eq!(other.get(false, None).unwrap(), b"x");
    }
}
