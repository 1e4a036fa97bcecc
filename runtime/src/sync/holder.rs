//! The word at the heart of `Lock` and `RLock`: the holding process's
//! token (pid and start time), taken with a compare-and-swap and freed
//! with a swap; sleepers wait on a release counter bumped only when they
//! are there. A waiter that has slept [`POLL`] asks whether the holder
//! still lives; if not, it takes the lock over and reports the death.
//! Every step is one atomic operation, so a process killed anywhere
//! leaves a state the others read correctly.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::block::{Block, State, thread_number};
use super::{LockResult, OwnerDied, POLL, ReleaseError, TryAcquireError, TryLockResult};
use crate::sys::imp::{process_alive, process_token, token_pid};

/// How many times a contended acquire re-checks before it sleeps.
const SPINS: u32 = 200;

/// The state of a lock, inside some block.
#[repr(C)]
#[derive(Default)]
pub(super) struct LockState {
    /// The holder's process token; 0 when free.
    owner: AtomicU64,
    /// The holding thread's number within its process ([`thread_number`]);
    /// 0 while it is being taken or released.
    thread: AtomicU64,
    /// How many times the holder took it (an `RLock`; 1 for a `Lock`).
    count: AtomicU32,
    /// Bumped by a release that finds sleepers: what they sleep on.
    released: AtomicU32,
}

/// How a lock was taken.
pub(super) enum Taken {
    Clean,
    /// From this dead process.
    FromDead(u32),
}

/// What an acquire that may give up returns, from how it went (`None`: not
/// taken by the deadline); the guard is made only if the lock was taken,
/// as dropping one releases it.
pub(super) fn outcome<G>(taken: Option<Taken>, guard: impl FnOnce() -> G) -> TryLockResult<G> {
    match taken {
        None => Err(TryAcquireError::WouldBlock),
        Some(Taken::Clean) => Ok(guard()),
        Some(Taken::FromDead(pid)) => Err(TryAcquireError::OwnerDied(OwnerDied::new(pid, guard()))),
    }
}

/// What an acquire without a deadline returns: it ends only with the lock.
pub(super) fn forever<G>(r: TryLockResult<G>) -> LockResult<G> {
    match r {
        Ok(g) => Ok(g),
        Err(TryAcquireError::OwnerDied(d)) => Err(d),
        Err(TryAcquireError::WouldBlock) => unreachable!("a wait without a deadline returned without the lock"),
    }
}

impl LockState {
    fn try_take(&self, me: u64) -> bool {
        self.owner.compare_exchange(0, me, Ordering::SeqCst, Ordering::Relaxed).is_ok()
    }

    /// Whether anyone holds it.
    pub(super) fn locked(&self) -> bool {
        self.owner.load(Ordering::Acquire) != 0
    }

    /// Whether the calling thread holds it.
    pub(super) fn is_mine(&self) -> bool {
        self.owner.load(Ordering::Acquire) == process_token() && self.thread.load(Ordering::Relaxed) == thread_number()
    }

    /// Takes the lock for the calling thread, waiting until `deadline`
    /// (`None`: forever; already passed: not at all); `None` if it is
    /// still held then.
    pub(super) fn acquire<S: State>(&self, block: &Block<S>, deadline: Option<Instant>) -> Option<Taken> {
        let me = process_token();
        let taken = self.take(block, me, deadline)?;
        self.thread.store(thread_number(), Ordering::Relaxed);
        self.count.store(1, Ordering::Relaxed);
        Some(taken)
    }

    fn take<S: State>(&self, block: &Block<S>, me: u64, deadline: Option<Instant>) -> Option<Taken> {
        if self.try_take(me) {
            return Some(Taken::Clean);
        }
        for i in 0..SPINS {
            if self.owner.load(Ordering::Relaxed) == 0 && self.try_take(me) {
                return Some(Taken::Clean);
            }
            if i % 32 == 31 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        let mut slept = Duration::ZERO;
        loop {
            let holder = self.owner.load(Ordering::Acquire);
            if holder == 0 {
                if self.try_take(me) {
                    return Some(Taken::Clean);
                }
                continue;
            }
            let past = deadline.is_some_and(|d| Instant::now() >= d);
            // Ask about the holder's life after each poll of sleep, and
            // before giving up; never about this process.
            if (past || slept >= POLL) && token_pid(holder) != token_pid(me) {
                slept = Duration::ZERO;
                if !process_alive(holder) {
                    if self.owner.compare_exchange(holder, me, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                        return Some(Taken::FromDead(token_pid(holder)));
                    }
                    continue;
                }
            }
            if past {
                return None;
            }
            let start = Instant::now();
            block.sleep_while(&self.released, deadline, POLL, || self.owner.load(Ordering::SeqCst) != 0);
            slept += start.elapsed();
        }
    }

    /// Takes it again if the calling thread holds it (an `RLock`).
    pub(super) fn reenter(&self) -> bool {
        if !self.is_mine() {
            return false;
        }
        let n = self.count.load(Ordering::Relaxed);
        self.count.store(n.checked_add(1).expect("an RLock taken 2^32 times"), Ordering::Relaxed);
        true
    }

    /// Frees the lock whoever holds it.
    pub(super) fn release<S: State>(&self, block: &Block<S>) -> Result<(), ReleaseError> {
        if self.owner.load(Ordering::Relaxed) == 0 {
            return Err(ReleaseError::NotLocked);
        }
        self.thread.store(0, Ordering::Relaxed);
        // One atomic step frees it. A sleeper counts itself before it looks
        // at the owner (`sleep_while`), so no sleeper seen means none can
        // miss this release.
        if self.owner.swap(0, Ordering::SeqCst) == 0 {
            return Err(ReleaseError::NotLocked);
        }
        if block.has_sleepers() {
            self.released.fetch_add(1, Ordering::SeqCst);
            block.wake(&self.released, 1);
        }
        Ok(())
    }

    /// Undoes one acquire of the calling thread's (an `RLock`).
    pub(super) fn release_mine<S: State>(&self, block: &Block<S>) -> Result<(), ReleaseError> {
        if !self.is_mine() {
            return Err(ReleaseError::NotOwner);
        }
        let n = self.count.load(Ordering::Relaxed);
        if n > 1 {
            self.count.store(n - 1, Ordering::Relaxed);
            return Ok(());
        }
        self.count.store(0, Ordering::Relaxed);
        self.release(block)
    }

    /// Frees it entirely, however deep the calling thread's holds, for a
    /// condition's wait: how deep they were.
    pub(super) fn release_all<S: State>(&self, block: &Block<S>) -> u32 {
        let n = self.count.load(Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
        let _ = self.release(block);
        n
    }

    /// Takes it back after [`release_all`](Self::release_all), `depth` deep.
    pub(super) fn restore<S: State>(&self, block: &Block<S>, depth: u32) -> Option<u32> {
        let taken = self.acquire(block, None);
        self.count.store(depth.max(1), Ordering::Relaxed);
        match taken {
            Some(Taken::FromDead(pid)) => Some(pid),
            _ => None,
        }
    }

    /// Who holds it.
    pub(super) fn owner(&self) -> Option<Owner> {
        let token = self.owner.load(Ordering::Acquire);
        (token != 0).then(|| {
            let here = token == process_token();
            Owner {
                pid: token_pid(token),
                this_process: here,
                this_thread: here && self.thread.load(Ordering::Relaxed) == thread_number(),
                count: self.count.load(Ordering::Relaxed),
            }
        })
    }
}

/// Who holds a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// The holding process.
    pub pid: u32,
    /// Whether that is this process.
    pub this_process: bool,
    /// Whether that is the calling thread.
    pub this_thread: bool,
    /// How many times it took the lock (an `RLock`; 1 for a `Lock`).
    pub count: u32,
}

// SAFETY: atomics only; all zero is a free lock.
unsafe impl State for LockState {
    const KIND: u32 = 1;
}

/// The block of an `RLock`: the same state, another kind.
#[repr(C)]
#[derive(Default)]
pub(super) struct RLockState(pub(super) LockState);

// SAFETY: as for `LockState`.
unsafe impl State for RLockState {
    const KIND: u32 = 2;
}
