//! Sleeping and waking: consumers on `put_seq`, bounded putters on
//! `get_seq`, putters facing a full ring on `room_seq`, `join` on
//! `join_seq`.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{
    LOCK_BOUND, MAX_PATIENCE, RESERVE_DIVISOR, ROOM_BATCH, ROOM_PATIENCE, Ring, RingError, Snapshot, deadline,
    lock_timed_out,
};
use crate::sys::imp::shm;

/// The longest a sleeper sleeps before it looks again on its own.
const SLICE: Duration = Duration::from_millis(50);
/// How long a waiter spins, watching its futex word, before sleeping.
const SPIN: Duration = Duration::from_micros(30);

impl Ring {
    /// Bytes of the ring not between `st`'s head and tail (saturating: an
    /// unlocked snapshot may be torn).
    fn free(&self, st: Snapshot) -> u64 {
        self.capacity.saturating_sub(st.tail.saturating_sub(st.head))
    }

    /// What inline items leave free, for spill records.
    pub(super) fn reserve(&self) -> u64 {
        self.capacity / RESERVE_DIVISOR
    }

    /// After a get committed `new`: wakes the putters waiting for room if
    /// a batch of it is free.
    pub(super) fn wake_for_room(&self, new: Snapshot) {
        let h = self.header();
        if h.room_waiters.load(Ordering::SeqCst) > 0
            && self.free(new) >= self.reserve() + self.room_batch()
            && wake_needed(&h.room_waiters)
        {
            h.room_seq.0.fetch_add(1, Ordering::SeqCst);
            shm::futex_wake_all(&h.room_seq.0);
        }
    }

    /// Room worth waking a waiting putter for, beyond the reserve.
    fn room_batch(&self) -> u64 {
        ROOM_BATCH.min(self.capacity / 4)
    }

    /// Waits, after a put found the ring full with `get_seq` at `seen`, for
    /// a get to make room for a record of `need` bytes. True when it is
    /// worth trying again: room was made, or a get came (the consumers are
    /// active: the room will come). False when the item should spill: no
    /// get came within the patience (the consumers are idle; the next puts
    /// spill at once, until a get), or `deadline` came first.
    ///
    /// This is what keeps many producers fast against one consumer: with
    /// the ring full, every item spilled costs a memfd and a datagram on
    /// each side, ten system calls that take the CPU from the consumer and
    /// keep the ring full. Waiting instead puts the producers to sleep
    /// until a batch of room is free ([`ROOM_BATCH`]), so that they run
    /// in bursts and the consumer runs undisturbed in between.
    pub(super) fn wait_for_room(&self, seen: u32, need: u64, deadline: Option<Instant>) -> bool {
        let h = self.header();
        let mark = u64::from(seen) | 1 << 63;
        if h.idle_mark.load(Ordering::Relaxed) == mark {
            return false;
        }
        let patience = match h.patience_us.load(Ordering::Relaxed) {
            0 => ROOM_PATIENCE,
            us => Duration::from_micros(us).min(MAX_PATIENCE),
        };
        let give_up = Instant::now() + patience;
        let until = deadline.map_or(give_up, |d| d.min(give_up));
        loop {
            let room = h.room_seq.0.load(Ordering::SeqCst);
            h.room_waiters.fetch_add(1, Ordering::SeqCst);
            // (After counting in: a get that made room before it did not
            // see this waiter, and its room is seen here.)
            if self.free(self.state()) >= need + self.reserve() {
                return true;
            }
            let now = Instant::now();
            if now >= until {
                break;
            }
            shm::futex_wait(&h.room_seq.0, room, Some(until - now));
            if h.room_seq.0.load(Ordering::SeqCst) != room || h.get_seq.0.load(Ordering::SeqCst) != seen {
                return true;
            }
        }
        if until == give_up {
            h.idle_mark.store(mark, Ordering::Relaxed);
            h.room_given_up.fetch_add(1, Ordering::Relaxed);
        }
        false
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
pub(super) fn wait_on(word: &AtomicU32, seq: u32, waiters: &AtomicU32, deadline: Option<Instant>) -> bool {
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
pub(super) fn wake_needed(waiters: &AtomicU32) -> bool {
    waiters.load(Ordering::SeqCst) > 0 && waiters.swap(0, Ordering::SeqCst) > 0
}
