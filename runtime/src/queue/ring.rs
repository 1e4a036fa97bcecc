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
//! Sleeping uses futex words next to the state (see `wait`): consumers
//! wait on `put_seq`, bounded putters on `get_seq`, putters facing a full
//! ring on `room_seq` (while consumers are getting, rather than spill),
//! `join` on `join_seq`. Each is
//! bumped under the lock by the operation that may unblock its waiters,
//! which are woken only when a waiter count says someone sleeps, so the
//! fast path makes no system call. Sleeps are sliced (at most
//! [`SLICE`] each) so that a wake lost to a process killed between its
//! commit and its wake costs latency, never a hang.

use std::cell::UnsafeCell;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sys::imp::shm::{self, Locked, Mapping};
use spill::Spill;
use wait::{wait_on, wake_needed};

mod hooks;
mod setup;
mod spill;
mod wait;

const MAGIC: u64 = u64::from_le_bytes(*b"MPQUEUE3");
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

/// How long a put that finds the ring full waits for a get before it takes
/// the consumers for idle and spills (see [`Ring::wait_for_room`]).
const ROOM_PATIENCE: Duration = Duration::from_millis(2);
/// The longest patience a test may set.
const MAX_PATIENCE: Duration = Duration::from_secs(60);
/// Putters waiting for room are woken once this much of the ring is free
/// beyond the reserve (or a quarter of a smaller ring): a batch of puts per
/// wake, not a wake per get.
const ROOM_BATCH: u64 = 64 << 10;

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
    /// Bumped by a get that frees a batch of room while putters wait for
    /// it ([`ROOM_BATCH`]); `room_waiters` counts those putters.
    room_seq: Line<AtomicU32>,
    room_waiters: AtomicU32,
    /// `get_seq` (in the low half, the high bit set) when a putter last
    /// waited a whole patience for a get in vain: until the next get the
    /// consumers are idle, and puts facing a full ring spill at once.
    idle_mark: AtomicU64,
    /// How many times a putter waited for room in vain (for tests).
    room_given_up: AtomicU64,
    /// The patience in microseconds, 0 for [`ROOM_PATIENCE`] (for tests).
    patience_us: AtomicU64,
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
            for seq in [&h.put_seq.0, &h.get_seq.0, &h.join_seq.0, &h.room_seq.0] {
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
                    // The ring is full but the queue is not. While the
                    // consumers are getting, the room they make comes
                    // sooner than a spill would be written and read back;
                    // once they are idle, the item spills (written without
                    // holding the lock).
                    let seen = h.get_seq.0.load(Ordering::SeqCst);
                    drop(guard);
                    if let Some(deadline) = deadline
                        && self.wait_for_room(seen, inline_len, deadline)
                    {
                        continue;
                    }
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
        let reserve = if kind == KIND_SPILL { 0 } else { self.reserve() };
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
                self.wake_for_room(new);
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
}

enum Taken {
    Inline(Vec<u8>),
    File(std::fs::File, usize),
    Lost,
}

#[cfg(test)]
mod tests;
