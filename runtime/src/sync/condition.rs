//! `Condition`: a lock (an `RLock` unless given one) and a table of
//! waiter slots in a block. A waiter takes a free slot (holding the lock),
//! marks it waiting with its arrival number and sleeps on it; `notify(n)`
//! marks the n oldest waiting slots notified and wakes each. So a
//! notification goes to a waiter that was there when it was made — never
//! to one that came later, nor to the notifier itself when it waits next —
//! and a waiter that times out frees its slot in one atomic step, using up
//! nothing. A slot also names its waiter's process, so that a notify
//! passes over a waiter that was killed while it waited.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::block::{Block, State};
use super::holder::{forever, outcome};
use super::lock::{Lock, LockState, RLock, Taken};
use super::{OwnerDied, POLL, TryAcquireError, deadline_after};
use crate::sys::imp::{process_alive, process_token};

/// How many processes' and threads' waits one condition tracks at once;
/// a waiter past that polls until a slot frees.
const SLOTS: usize = 256;

const FREE: u32 = 0;
const WAITING: u32 = 1;
const NOTIFIED: u32 = 2;

#[repr(C)]
struct Slot {
    /// `FREE`, `WAITING` or `NOTIFIED`: what its waiter sleeps on.
    state: AtomicU32,
    /// The waiter's arrival number: the oldest are notified first.
    arrival: AtomicU32,
    /// The waiter's process token, to pass over a waiter that was killed.
    token: AtomicU64,
}

#[repr(C)]
struct CondState {
    /// How many slots are `WAITING`.
    waiting: AtomicU32,
    /// The next arrival number.
    arrivals: AtomicU32,
    /// One past the highest slot ever taken: notify looks no further.
    used: AtomicU32,
    slots: [Slot; SLOTS],
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
        Ok(Condition { lock, block: Arc::new(Block::new(0, |_: &CondState| {})?) })
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
        forever(outcome(self.lock.take(None), || self.guard()))
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
        outcome(self.lock.take(deadline_after(timeout)), || self.guard())
    }

    fn state(&self) -> &CondState {
        self.block.state()
    }

    /// Takes a free slot, marked waiting; the caller holds the lock.
    fn claim(&self) -> Option<&Slot> {
        let st = self.state();
        let arrival = st.arrivals.fetch_add(1, Ordering::Relaxed);
        let (i, slot) = st.slots.iter().enumerate().find(|(_, s)| s.state.load(Ordering::Acquire) == FREE)?;
        slot.arrival.store(arrival, Ordering::Relaxed);
        slot.token.store(process_token(), Ordering::Relaxed);
        st.used.fetch_max(i as u32 + 1, Ordering::AcqRel);
        st.waiting.fetch_add(1, Ordering::AcqRel);
        slot.state.store(WAITING, Ordering::Release);
        Some(slot)
    }

    /// Releases the lock, sleeps until notified or `deadline`, takes the
    /// lock back. Whether it was notified, and the pid of a holder that
    /// died while it slept.
    fn wait_until(&self, deadline: Option<Instant>) -> (bool, Option<u32>) {
        let st = self.state();
        let slot = self.claim();
        let (lock, sleeper) = self.lock.parts();
        let depth = sleeper.release_all(lock);
        let notified = match slot {
            Some(slot) => loop {
                if slot.state.load(Ordering::Acquire) == NOTIFIED {
                    slot.state.store(FREE, Ordering::Release);
                    break true;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    // Out in one step, unless a notify took the slot first.
                    match slot.state.compare_exchange(WAITING, FREE, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => {
                            st.waiting.fetch_sub(1, Ordering::AcqRel);
                            break false;
                        }
                        Err(_) => continue,
                    }
                }
                self.block.sleep(&slot.state, WAITING, deadline, POLL);
            },
            // Every slot taken: no notify can find this waiter, so it
            // looks again after a short sleep, as a spurious wake-up.
            None => {
                std::thread::sleep(deadline.map_or(POLL, |d| d.saturating_duration_since(Instant::now()).min(POLL)));
                false
            }
        };
        (notified, sleeper.restore(lock, depth))
    }

    /// Marks the `n` oldest waiting slots notified and wakes them; the
    /// caller holds the lock.
    fn notify(&self, n: u32) {
        let st = self.state();
        let mut left = n;
        while left > 0 && st.waiting.load(Ordering::Acquire) > 0 {
            let used = (st.used.load(Ordering::Acquire) as usize).min(SLOTS);
            let oldest = st.slots[..used]
                .iter()
                .filter(|s| s.state.load(Ordering::Acquire) == WAITING)
                .min_by_key(|s| s.arrival.load(Ordering::Relaxed).wrapping_sub(st.arrivals.load(Ordering::Relaxed)));
            let Some(slot) = oldest else { return };
            // A waiter killed while waiting would take the notification
            // with it: free its slot and pick another.
            if !waiter_alive(slot.token.load(Ordering::Relaxed)) {
                if slot.state.compare_exchange(WAITING, FREE, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                    st.waiting.fetch_sub(1, Ordering::AcqRel);
                }
                continue;
            }
            // A waiter timing out now frees its slot first: pick another.
            if slot.state.compare_exchange(WAITING, NOTIFIED, Ordering::SeqCst, Ordering::Relaxed).is_ok() {
                st.waiting.fetch_sub(1, Ordering::AcqRel);
                self.block.wake(&slot.state, 1);
                left -= 1;
            }
        }
    }
}

/// Whether the process behind a waiter's token lives. This process's own
/// waiters do; another's are asked about at most once per [`POLL`] from
/// each notifying thread, so a notify costs a look at `/proc` (or a process
/// handle) rarely, not every time.
fn waiter_alive(token: u64) -> bool {
    if token == process_token() {
        return true;
    }
    thread_local! {
        /// Processes seen alive lately, and when.
        static SEEN: RefCell<Vec<(u64, Instant)>> = const { RefCell::new(Vec::new()) };
    }
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        let now = Instant::now();
        seen.retain(|&(_, at)| now.duration_since(at) < POLL);
        if seen.iter().any(|&(t, _)| t == token) {
            return true;
        }
        let alive = process_alive(token);
        if alive && seen.len() < SLOTS {
            seen.push((token, now));
        }
        alive
    })
}

impl<L: SharedLock> fmt::Debug for Condition<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waiting = self.state().waiting.load(Ordering::Relaxed);
        f.debug_struct("Condition").field("lock", &self.lock).field("waiting", &waiting).finish()
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
        match self.cond.wait_until(deadline_after(timeout)) {
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
        let deadline = deadline_after(timeout);
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
