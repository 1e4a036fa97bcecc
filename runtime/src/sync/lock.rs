//! `Lock` and `RLock`, the public faces of the lock word in [`holder`]
//! (`super::holder`), with their guards.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::block::Block;
pub(super) use super::holder::{LockState, RLockState, Taken};
use super::holder::{Owner, forever, outcome};
use super::{OwnerDied, ReleaseError, TryAcquireError, deadline_after};

/// A lock shared between processes (Python's `multiprocessing.Lock`).
/// Not recursive: a second acquire waits, even by the holder. Any thread
/// of any process may release it ([`Lock::release`]), not only the one
/// that took it.
///
/// If the holding process dies, the next acquirer gets the lock with
/// [`OwnerDied`] within about 20 ms, instead of waiting forever.
///
/// ```
/// use multiproc::{Lock, process_task};
///
/// #[process_task]
/// fn report(lock: Lock, n: u32) {
///     let _held = lock.acquire().unwrap();
///     println!("child {n} holds the lock");
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let lock = Lock::new()?;
/// let children: Vec<_> =
///     (0..3).map(|n| multiproc::spawn(report, (lock.clone(), n))).collect::<Result<_, _>>()?;
/// for child in children {
///     child.join()?;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Lock {
    block: Arc<Block<LockState>>,
}

impl Lock {
    /// A new, free lock.
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// assert!(!lock.locked());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> std::io::Result<Lock> {
        Ok(Lock { block: Arc::new(Block::new(0, |_| {})?) })
    }

    fn state(&self) -> &LockState {
        self.block.state()
    }

    /// Waits until the lock is free and takes it. `Err` holds the guard
    /// too: the lock is taken, from a holder that died.
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// let guard = lock.acquire().unwrap();
    /// assert!(lock.locked());
    /// drop(guard);
    /// assert!(!lock.locked());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn acquire(&self) -> Result<LockGuard<'_>, OwnerDied<LockGuard<'_>>> {
        forever(outcome(self.state().acquire(&self.block, None), || self.guard()))
    }

    /// Takes the lock if it is free; never waits (Python's
    /// `acquire(False)`), even if the holder is stopped.
    ///
    /// ```
    /// use multiproc::TryAcquireError;
    ///
    /// let lock = multiproc::Lock::new()?;
    /// let held = lock.try_acquire().unwrap();
    /// assert!(matches!(lock.try_acquire(), Err(TryAcquireError::WouldBlock)));
    /// drop(held);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Result<LockGuard<'_>, TryAcquireError<LockGuard<'_>>> {
        outcome(self.state().acquire(&self.block, Some(Instant::now())), || self.guard())
    }

    /// Takes the lock, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = multiproc::Lock::new()?;
    /// let _held = lock.acquire().unwrap();
    /// assert!(lock.acquire_timeout(Duration::from_millis(10)).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<LockGuard<'_>, TryAcquireError<LockGuard<'_>>> {
        outcome(self.state().acquire(&self.block, deadline_after(timeout)), || self.guard())
    }

    fn guard(&self) -> LockGuard<'_> {
        LockGuard { lock: self }
    }

    /// Releases the lock, whoever took it: for a guard given up with
    /// [`LockGuard::forget`], here or in another process. Releasing a free
    /// lock is an error.
    ///
    /// ```
    /// use multiproc::ReleaseError;
    ///
    /// let lock = multiproc::Lock::new()?;
    /// lock.acquire().unwrap().forget();
    /// assert!(lock.locked());
    /// lock.release()?;
    /// assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.state().release(&self.block)
    }

    /// Whether some thread of some process holds the lock.
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// assert!(!lock.locked());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn locked(&self) -> bool {
        self.state().locked()
    }

    /// Who holds the lock, if anyone.
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// let _held = lock.acquire().unwrap();
    /// let owner = lock.owner().unwrap();
    /// assert!(owner.this_thread && owner.pid == std::process::id());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn owner(&self) -> Option<Owner> {
        self.state().owner()
    }

    pub(super) fn block(&self) -> &Block<LockState> {
        &self.block
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock").field("owner", &self.owner()).finish()
    }
}

/// Held [`Lock`]; releases it when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl LockGuard<'_> {
    /// Keeps the lock held without a guard: [`Lock::release`] frees it
    /// later, from any thread or process.
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// lock.acquire().unwrap().forget();
    /// assert!(lock.locked());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        // Another thread may have released it already (any may): nothing
        // is left to do then.
        let _ = self.lock.release();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}

/// A recursive lock shared between processes (Python's
/// `multiprocessing.RLock`): the thread holding it may take it again, and
/// must release it as many times. Only that thread may release it.
///
/// If the holding process dies, the next acquirer gets the lock with
/// [`OwnerDied`] within about 20 ms.
///
/// ```
/// let lock = multiproc::RLock::new()?;
/// let outer = lock.acquire().unwrap();
/// let inner = lock.acquire().unwrap(); // the holder may take it again
/// assert_eq!(lock.owner().unwrap().count, 2);
/// drop(inner);
/// drop(outer);
/// assert!(!lock.locked());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct RLock {
    block: Arc<Block<RLockState>>,
}

impl RLock {
    /// A new, free lock.
    ///
    /// ```
    /// let lock = multiproc::RLock::new()?;
    /// assert!(lock.owner().is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> std::io::Result<RLock> {
        Ok(RLock { block: Arc::new(Block::new(0, |_| {})?) })
    }

    fn state(&self) -> &LockState {
        &self.block.state().0
    }

    pub(super) fn take_for(&self, deadline: Option<Instant>) -> Option<Taken> {
        if self.state().reenter() {
            return Some(Taken::Clean);
        }
        self.state().acquire(&self.block, deadline)
    }

    /// Takes the lock, waiting while another thread holds it. `Err` holds
    /// the guard too: taken from a holder that died.
    ///
    /// ```
    /// let lock = multiproc::RLock::new()?;
    /// let _held = lock.acquire().unwrap();
    /// assert!(lock.owner().unwrap().this_thread);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn acquire(&self) -> Result<RLockGuard<'_>, OwnerDied<RLockGuard<'_>>> {
        forever(outcome(self.take_for(None), || self.guard()))
    }

    /// Takes the lock if it is free or already the calling thread's; never
    /// waits.
    ///
    /// ```
    /// let lock = multiproc::RLock::new()?;
    /// let a = lock.try_acquire().unwrap();
    /// let b = lock.try_acquire().unwrap();
    /// # drop((b, a));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Result<RLockGuard<'_>, TryAcquireError<RLockGuard<'_>>> {
        outcome(self.take_for(Some(Instant::now())), || self.guard())
    }

    /// Takes the lock, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = multiproc::RLock::new()?;
    /// let _held = lock.acquire_timeout(Duration::from_secs(1)).unwrap();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<RLockGuard<'_>, TryAcquireError<RLockGuard<'_>>> {
        outcome(self.take_for(deadline_after(timeout)), || self.guard())
    }

    fn guard(&self) -> RLockGuard<'_> {
        RLockGuard { lock: self, _not_send: PhantomData }
    }

    /// Undoes one acquire whose guard was given up with
    /// [`RLockGuard::forget`]. Only the holding thread may; anyone else
    /// gets [`ReleaseError::NotOwner`].
    ///
    /// ```
    /// use multiproc::ReleaseError;
    ///
    /// let lock = multiproc::RLock::new()?;
    /// assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
    /// lock.acquire().unwrap().forget();
    /// lock.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.state().release_mine(&self.block)
    }

    /// Whether some thread of some process holds the lock.
    ///
    /// ```
    /// let lock = multiproc::RLock::new()?;
    /// assert!(!lock.locked());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn locked(&self) -> bool {
        self.state().locked()
    }

    /// Who holds the lock, and how many times.
    ///
    /// ```
    /// let lock = multiproc::RLock::new()?;
    /// let _a = lock.acquire().unwrap();
    /// let _b = lock.acquire().unwrap();
    /// assert_eq!(lock.owner().unwrap().count, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn owner(&self) -> Option<Owner> {
        self.state().owner()
    }

    pub(super) fn block(&self) -> &Block<RLockState> {
        &self.block
    }

    pub(super) fn lock_state(&self) -> &LockState {
        self.state()
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock").field("owner", &self.owner()).finish()
    }
}

/// Held [`RLock`] (one level of it); releases that level when dropped.
/// It stays on the thread that took it.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    _not_send: PhantomData<*const ()>,
}

impl RLockGuard<'_> {
    /// Keeps this level held without a guard: [`RLock::release`] undoes
    /// it later, on this thread.
    ///
    /// ```
    /// let lock = multiproc::RLock::new()?;
    /// lock.acquire().unwrap().forget();
    /// assert!(lock.locked());
    /// lock.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard").finish_non_exhaustive()
    }
}

macro_rules! shared_by_handle {
    ($($t:ident),*) => {$(
        /// Encodes it as handles for a child being started; an error
        /// anywhere but in a task's arguments.
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.block.serialize(serializer)
            }
        }

        /// The same object, in a child decoding its arguments.
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Ok($t { block: Arc::new(Block::deserialize(deserializer)?) })
            }
        }
    )*};
}
pub(super) use shared_by_handle;

shared_by_handle!(Lock, RLock);
