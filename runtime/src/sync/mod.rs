//! Synchronisation between processes: Python's `Lock`, `RLock`,
//! `Semaphore`, `BoundedSemaphore`, `Event`, `Condition` and `Barrier`,
//! and shared values (`Value`, `Array`).
//!
//! Each primitive lives in a small block of shared memory with no name
//! (a memfd on Linux, an unnamed section on Windows) and is passed to a
//! child as a task argument or a process-type field, under any start
//! method; nothing is left behind however its processes end. Waits sleep
//! in the kernel (a futex; a semaphore on Windows) and every blocking call
//! has a timeout form.
//!
//! Where Python hangs, these report: a lock whose holder died is handed to
//! the next acquirer with [`OwnerDied`], a barrier a party died at breaks.
//!
//! ```
//! use multiproc::{Lock, process_task};
//!
//! #[process_task]
//! fn hold(lock: Lock) {
//!     let _held = lock.acquire().unwrap();
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let lock = Lock::new()?;
//! multiproc::spawn(hold, (lock.clone(),))?.join()?;
//! assert!(!lock.locked());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::{Duration, Instant};

mod array;
mod barrier;
mod block;
mod condition;
mod event;
mod holder;
mod lock;
mod semaphore;
mod value;

pub use array::{Array, RawArray};
pub use barrier::{Barrier, BrokenBarrier};
pub use condition::{Condition, ConditionGuard, SharedLock};
pub use event::Event;
pub use holder::Owner;
pub use lock::{Lock, LockGuard, RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphoreGuard};
pub use value::{Locked, Pod, RawValue, Value};

/// How long a waiter sleeps before it checks again whether the process it
/// waits on (a lock's holder, a barrier's parties) is still alive: a death
/// is reported within about this long.
const POLL: Duration = Duration::from_millis(20);

/// The deadline `timeout` from now; `None` (no deadline) for a timeout
/// too long to have one.
fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// A lock was acquired, but its previous holder, process `pid`, died
/// holding it: whatever it protected may be half-updated. The lock is
/// held now (by `guard`) and works normally from here on.
///
/// ```
/// use multiproc::{Lock, OwnerDied};
///
/// let lock = Lock::new()?;
/// // Take the lock whoever held it last; repair the data if it died.
/// let guard = lock.acquire().unwrap_or_else(OwnerDied::into_guard);
/// drop(guard);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct OwnerDied<G = ()> {
    pid: u32,
    guard: G,
}

impl<G> OwnerDied<G> {
    pub(crate) fn new(pid: u32, guard: G) -> Self {
        OwnerDied { pid, guard }
    }

    /// The pid of the process that died holding the lock.
    ///
    /// ```
    /// # let died = multiproc::OwnerDied::<()>::example(7);
    /// assert_eq!(died.pid(), 7);
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The guard of the lock, now held.
    ///
    /// ```
    /// # let died = multiproc::OwnerDied::<()>::example(7);
    /// let () = died.into_guard();
    /// ```
    pub fn into_guard(self) -> G {
        self.guard
    }
}

impl OwnerDied {
    /// An example value, for documentation.
    #[doc(hidden)]
    pub fn example(pid: u32) -> Self {
        OwnerDied { pid, guard: () }
    }
}

impl<G> fmt::Debug for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerDied").field("pid", &self.pid).finish_non_exhaustive()
    }
}

impl<G> fmt::Display for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the previous holder of the lock (process {}) died holding it", self.pid)
    }
}

impl<G> std::error::Error for OwnerDied<G> {}

/// What a blocking acquire returns: the guard, either way; `Err` if the
/// lock came from a holder that died (as std's `LockResult`).
///
/// ```
/// let v = multiproc::Value::new(0u8)?;
/// let held: multiproc::LockResult<_> = v.lock();
/// assert!(held.is_ok());
/// # Ok::<(), std::io::Error>(())
/// ```
pub type LockResult<G> = Result<G, OwnerDied<G>>;

/// What an acquire that may give up returns (`try_acquire`,
/// `acquire_timeout`, `lock_timeout`), as std's `TryLockResult`.
///
/// ```
/// use std::time::Duration;
///
/// let lock = multiproc::Lock::new()?;
/// let held: multiproc::TryLockResult<_> = lock.acquire_timeout(Duration::from_secs(1));
/// assert!(held.is_ok());
/// # Ok::<(), std::io::Error>(())
/// ```
pub type TryLockResult<G> = Result<G, TryAcquireError<G>>;

/// Why a lock was not acquired by a call that does not wait forever
/// (`try_acquire`, `acquire_timeout`).
#[derive(Debug, thiserror::Error)]
pub enum TryAcquireError<G> {
    /// Someone else holds it (still, at the deadline).
    #[error("the lock is held by someone else")]
    WouldBlock,
    /// It was acquired from a holder that died: see [`OwnerDied`].
    #[error(transparent)]
    OwnerDied(OwnerDied<G>),
}

impl<G> TryAcquireError<G> {
    /// The guard, if the lock was acquired (from a dead owner).
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// let held = lock.try_acquire().map_err(|e| e.into_guard());
    /// assert!(held.is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_guard(self) -> Option<G> {
        match self {
            TryAcquireError::WouldBlock => None,
            TryAcquireError::OwnerDied(d) => Some(d.into_guard()),
        }
    }
}

/// Why a release was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// The lock is not held (Python's `ValueError`).
    #[error("release of an unlocked lock")]
    NotLocked,
    /// An `RLock` held by another thread or process, or not held
    /// (Python's "cannot release un-acquired lock").
    #[error("release of a lock this thread does not hold")]
    NotOwner,
    /// A `BoundedSemaphore` released more times than it was acquired.
    #[error("semaphore released too many times")]
    TooManyReleases,
}
