//! `Condition`: a lock (an `RLock` unless given one) and a block holding
//! one word of two counts, waiters and notifications not yet taken. A
//! notify adds notifications, never more than there are waiters left to
//! take them; a waiter leaves by taking one, or, at its deadline, by
//! counting itself out in the same atomic step, so a waiter that timed
//! out never uses up a later notification.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::block::{Block, State};
use super::lock::{Lock, LockState, RLock, Taken};
use super::{OwnerDied, POLL, TryAcquireError};

/// One waiter, in the high half of [`CondState::counts`].
const WAITER: u64 = 1 << 32;

#[repr(C)]
#[derive(Default)]
struct CondState {
    /// Waiters (high half) and notifications for them to take (low half).
    counts: AtomicU64,
    /// Bumped by every notify: what waiters sleep on.
    notified: AtomicU32,
}

// SAFETY: atomics only; all zero is a condition nobody waits on.
unsafe impl State for CondState {
    const KIND: u32 = 5;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Lock {}
    impl Sealed for super::RLock {}
}

/// A lock a [`Condition`] can use: [`Lock`] or [`RLock`].
pub trait SharedLock: sealed::Sealed + Clone + fmt::Debug {
    /// The lock's state and block.
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn parts(&self) -> (&LockState, &dyn Sleeper);
    /// Takes it: `RLock` re-enters for its holder.
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn take(&self, deadline: Option<Instant>) -> Option<Taken>;
    /// Undoes one take.
    #[doc(hidden)]
    fn untake(&self);
}

/// A lock's block, with its state type erased.
pub(super) trait Sleeper {
    fn release_all(&self, state: &LockState) -> u32;
    fn restore(&self, state: &LockState, depth: u32) -> Option<u32>;
}

impl<S: State> Sleeper for Block<S> {
    fn release_all(&self, state: &LockState) -> u32 {
        state.release_all(self)
    }

    fn restore(&self, state: &LockState, depth: u32) -> Option<u32> {
        state.restore(self, depth)
    }
}

impl SharedLock for Lock {
    #[allow(private_interfaces)]
    fn parts(&self) -> (&LockState, &dyn Sleeper) {
        (self.block().state(), self.block())
    }

    #[allow(private_interfaces)]
    fn take(&self, deadline: Option<Instant>) -> Option<Taken> {
        self.block().state().acquire(self.block(), deadline)
    }

    fn untake(&self) {
        let _ = self.release();
    }
}

impl SharedLock for RLock {
    #[allow(private_interfaces)]
    fn parts(&self) -> (&LockState, &dyn Sleeper) {
        (self.lock_state(), self.block())
    }

    #[allow(private_interfaces)]
    fn take(&self, deadline: Option<Instant>) -> Option<Taken> {
        self.take_for(deadline)
    }

    fn untake(&self) {
        let _ = self.release();
    }
}

/// A condition variable shared between processes (Python's
/// `multiprocessing.Condition`). Waiting and notifying happen through the
/// [`ConditionGuard`] [`acquire`](Condition::acquire) returns, so neither
/// can be done without holding the lock.
///
/// ```
/// use multiproc::{Condition, Value, process_task};
///
/// #[process_task]
/// fn produce(cond: Condition, ready: Value<u32>) {
///     let guard = cond.acquire().unwrap();
///     ready.set(1);
///     guard.notify_all();
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cond = Condition::new()?;
/// let ready = Value::new(0u32)?;
/// let mut guard = cond.acquire().unwrap();
/// let child = multiproc::spawn(produce, (cond.clone(), ready.clone()))?;
/// guard.wait_for(|| ready.get() == 1)?;
/// drop(guard);
/// child.join()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Condition<L = RLock> {
    lock: L,
    block: Arc<Block<CondState>>,
}

impl Condition<RLock> {
    /// A condition with a new [`RLock`], as Python's `Condition()`.
    ///
    /// ```
    /// let cond = multiproc::Condition::new()?;
    /// assert!(!cond.lock().locked());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> std::io::Result<Condition<RLock>> {
        Condition::with_lock(RLock::new()?)
    }
}

impl<L: SharedLock> Condition<L> {
    /// A condition over `lock` (Python's `Condition(lock)`).
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// let cond = multiproc::Condition::with_lock(lock.clone())?;
    /// let _held = cond.acquire().unwrap();
    /// assert!(lock.locked());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_lock(lock: L) -> std::io::Result<Condition<L>> {
        Ok(Condition { lock, block: Arc::new(Block::new(0, |_| {})?) })
    }

    /// The lock.
    ///
    /// ```
    /// let cond = multiproc::Condition::new()?;
    /// assert!(cond.lock().owner().is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lock(&self) -> &L {
        &self.lock
    }

    fn guard(&self) -> ConditionGuard<'_, L> {
        ConditionGuard { cond: self }
    }

    /// Takes the lock. `Err` holds the guard too: taken from a holder that
    /// died.
    ///
    /// ```
    /// let cond = multiproc::Condition::new()?;
    /// let guard = cond.acquire().unwrap();
    /// guard.notify_all(); // nobody waits: nothing happens
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn acquire(&self) -> Result<ConditionGuard<'_, L>, OwnerDied<ConditionGuard<'_, L>>> {
        match self.lock.take(None) {
            Some(Taken::FromDead(pid)) => Err(OwnerDied::new(pid, self.guard())),
            _ => Ok(self.guard()),
        }
    }

    /// Takes the lock, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = multiproc::Condition::new()?;
    /// let _guard = cond.acquire_timeout(Duration::from_secs(1)).unwrap();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ConditionGuard<'_, L>, TryAcquireError<ConditionGuard<'_, L>>> {
        let deadline = Instant::now().checked_add(timeout);
        match self.lock.take(deadline) {
            None => Err(TryAcquireError::WouldBlock),
            Some(Taken::Clean) => Ok(self.guard()),
            Some(Taken::FromDead(pid)) => Err(TryAcquireError::OwnerDied(OwnerDied::new(pid, self.guard()))),
        }
    }

    fn state(&self) -> &CondState {
        self.block.state()
    }

    /// Releases the lock, sleeps until notified or `deadline`, takes the
    /// lock back. Whether it was notified, and the pid of a holder that
    /// died while it slept.
    fn wait_until(&self, deadline: Option<Instant>) -> (bool, Option<u32>) {
        let st = self.state();
        st.counts.fetch_add(WAITER, Ordering::AcqRel);
        let (lock, sleeper) = self.lock.parts();
        let depth = sleeper.release_all(lock);
        let notified = loop {
            let seen = st.notified.load(Ordering::Acquire);
            if let Some(taken) = self.leave(deadline.is_some_and(|d| Instant::now() >= d)) {
                break taken;
            }
            self.block.sleep(&st.notified, seen, deadline, POLL);
        };
        (notified, sleeper.restore(lock, depth))
    }

    /// Leaves with a notification if there is one (`Some(true)`), or, if
    /// `giving_up`, without one (`Some(false)`); `None`: still waiting.
    fn leave(&self, giving_up: bool) -> Option<bool> {
        let counts = &self.state().counts;
        let mut c = counts.load(Ordering::Acquire);
        loop {
            let (next, taken) = match (c & 0xffff_ffff > 0, giving_up) {
                (true, _) => (c - WAITER - 1, true),
                (false, true) => (c - WAITER, false),
                (false, false) => return None,
            };
            match counts.compare_exchange_weak(c, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(taken),
                Err(now) => c = now,
            }
        }
    }

    fn notify(&self, n: u32) {
        let st = self.state();
        let mut c = st.counts.load(Ordering::Acquire);
        let added = loop {
            let (waiters, pending) = ((c >> 32) as u32, c as u32);
            let add = n.min(waiters.saturating_sub(pending));
            if add == 0 {
                return;
            }
            match st.counts.compare_exchange_weak(c, c + u64::from(add), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break add,
                Err(now) => c = now,
            }
        };
        st.notified.fetch_add(1, Ordering::Release);
        self.block.wake(&st.notified, added);
    }
}

impl<L: SharedLock> fmt::Debug for Condition<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.state().counts.load(Ordering::Relaxed);
        f.debug_struct("Condition").field("lock", &self.lock).field("waiters", &(c >> 32)).finish()
    }
}

/// The held lock of a [`Condition`]: wait and notify through it. Dropping
/// it releases the lock (one level of an `RLock`).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a, L: SharedLock = RLock> {
    cond: &'a Condition<L>,
}

impl<L: SharedLock> ConditionGuard<'_, L> {
    /// Releases the lock (fully, however deep an `RLock` is held), sleeps
    /// until notified, and takes the lock back. `Err`: the lock was taken
    /// back from a holder that died meanwhile (it is held now).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// let cond = multiproc::Condition::new()?;
    /// let done = AtomicBool::new(false);
    /// std::thread::scope(|s| {
    ///     let mut guard = cond.acquire().unwrap();
    ///     s.spawn(|| {
    ///         let guard = cond.acquire().unwrap();
    ///         done.store(true, Ordering::SeqCst);
    ///         guard.notify_one();
    ///     });
    ///     while !done.load(Ordering::SeqCst) {
    ///         guard.wait().unwrap();
    ///     }
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(&mut self) -> Result<(), OwnerDied> {
        match self.cond.wait_until(None).1 {
            Some(pid) => Err(OwnerDied::new(pid, ())),
            None => Ok(()),
        }
    }

    /// As [`wait`](Self::wait), at most `timeout`: whether it was notified.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = multiproc::Condition::new()?;
    /// let mut guard = cond.acquire().unwrap();
    /// assert!(!guard.wait_timeout(Duration::from_millis(10)).unwrap());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<bool, OwnerDied> {
        match self.cond.wait_until(Instant::now().checked_add(timeout)) {
            (_, Some(pid)) => Err(OwnerDied::new(pid, ())),
            (notified, None) => Ok(notified),
        }
    }

    /// Waits until `ready` returns true, checking it first and after each
    /// wake-up.
    ///
    /// ```
    /// let cond = multiproc::Condition::new()?;
    /// let mut guard = cond.acquire().unwrap();
    /// guard.wait_for(|| true)?; // already true: no wait
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for(&mut self, mut ready: impl FnMut() -> bool) -> Result<(), OwnerDied> {
        while !ready() {
            self.wait()?;
        }
        Ok(())
    }

    /// As [`wait_for`](Self::wait_for), at most `timeout`: the last value
    /// `ready` returned.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = multiproc::Condition::new()?;
    /// let mut guard = cond.acquire().unwrap();
    /// assert!(!guard.wait_for_timeout(Duration::from_millis(10), || false)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for_timeout(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<bool, OwnerDied> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if ready() {
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            if let (_, Some(pid)) = self.cond.wait_until(deadline) {
                return Err(OwnerDied::new(pid, ()));
            }
        }
    }

    /// Wakes at most `n` waiters (fewer if fewer wait), in this process or
    /// others. They run once this guard releases the lock.
    ///
    /// ```
    /// let cond = multiproc::Condition::new()?;
    /// cond.acquire().unwrap().notify(2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn notify(&self, n: u32) {
        self.cond.notify(n);
    }

    /// Wakes one waiter.
    ///
    /// ```
    /// let cond = multiproc::Condition::new()?;
    /// cond.acquire().unwrap().notify_one();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn notify_one(&self) {
        self.cond.notify(1);
    }

    /// Wakes every waiter.
    ///
    /// ```
    /// let cond = multiproc::Condition::new()?;
    /// cond.acquire().unwrap().notify_all();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn notify_all(&self) {
        self.cond.notify(u32::MAX);
    }
}

impl<L: SharedLock> Drop for ConditionGuard<'_, L> {
    fn drop(&mut self) {
        self.cond.lock.untake();
    }
}

impl<L: SharedLock> fmt::Debug for ConditionGuard<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionGuard").finish_non_exhaustive()
    }
}

/// Encodes the condition and its lock as handles for a child being
/// started; an error anywhere but in a task's arguments.
impl<L: Serialize> Serialize for Condition<L> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.lock, &*self.block).serialize(serializer)
    }
}

/// The same condition, in a child decoding its arguments.
impl<'de, L: Deserialize<'de>> Deserialize<'de> for Condition<L> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (lock, block) = <(L, Block<CondState>)>::deserialize(deserializer)?;
        Ok(Condition { lock, block: Arc::new(block) })
    }
}
