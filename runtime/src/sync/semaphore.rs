//! `Semaphore` and `BoundedSemaphore`: one counter in a block, taken with
//! a compare-and-swap and slept on while it is zero. A bounded one keeps
//! its initial value beside the counter and refuses a release past it, on
//! every platform.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ReleaseError;
use super::block::{Block, State};
use super::lock::shared_by_handle;

#[repr(C)]
#[derive(Default)]
pub(super) struct SemState {
    value: AtomicU32,
    /// Whether `value` has a bound (a `BoundedSemaphore`).
    bounded: AtomicU32,
    /// The most `value` may be, if bounded.
    bound: AtomicU32,
}

// SAFETY: atomics only; all zero is a semaphore at 0 with no bound.
unsafe impl State for SemState {
    const KIND: u32 = 3;
}

/// A new block holding `value`, bounded by `bound` if there is one.
fn counter(value: u32, bound: Option<u32>) -> std::io::Result<Arc<Block<SemState>>> {
    let block = Block::new(0, |s: &SemState| {
        s.value.store(value, Ordering::Relaxed);
        s.bounded.store(u32::from(bound.is_some()), Ordering::Relaxed);
        s.bound.store(bound.unwrap_or(u32::MAX), Ordering::Relaxed);
    })?;
    Ok(Arc::new(block))
}

/// Takes one if the value is above zero.
fn try_take(block: &Block<SemState>) -> bool {
    let value = &block.state().value;
    let mut v = value.load(Ordering::Relaxed);
    while v > 0 {
        match value.compare_exchange_weak(v, v - 1, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => v = now,
        }
    }
    false
}

/// Takes one, waiting until `deadline` (`None`: forever).
fn take(block: &Block<SemState>, deadline: Option<Instant>) -> bool {
    let value = &block.state().value;
    loop {
        if try_take(block) {
            return true;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        // No owner to outlive: sleep as long as the deadline allows.
        block.sleep(value, 0, deadline, Duration::from_secs(3600));
    }
}

/// Gives one back, waking a waiter; an error past the bound.
fn give(block: &Block<SemState>) -> Result<(), ReleaseError> {
    let st = block.state();
    let bound = if st.bounded.load(Ordering::Relaxed) != 0 { st.bound.load(Ordering::Relaxed) } else { u32::MAX };
    let mut v = st.value.load(Ordering::Relaxed);
    loop {
        if v >= bound {
            return Err(ReleaseError::TooManyReleases);
        }
        match st.value.compare_exchange_weak(v, v + 1, Ordering::SeqCst, Ordering::Relaxed) {
            Ok(_) => break,
            Err(now) => v = now,
        }
    }
    block.wake(&st.value, 1);
    Ok(())
}

macro_rules! semaphore {
    ($(#[$doc:meta])* $t:ident, $new_doc:literal, $new:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $t {
            block: Arc<Block<SemState>>,
        }

        impl $t {
            #[doc = $new_doc]
            pub fn new(value: u32) -> std::io::Result<$t> {
                let make: fn(u32) -> std::io::Result<Arc<Block<SemState>>> = $new;
                Ok($t { block: make(value)? })
            }

            /// Waits until the value is above zero and takes one.
            ///
            /// ```
            #[doc = concat!("let sem = multiproc::", stringify!($t), "::new(1)?;")]
            /// let guard = sem.acquire();
            /// assert_eq!(sem.value(), 0);
            /// drop(guard);
            /// assert_eq!(sem.value(), 1);
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn acquire(&self) -> SemaphoreGuard<'_> {
                take(&self.block, None);
                self.guard()
            }

            /// Takes one if the value is above zero; never waits.
            ///
            /// ```
            #[doc = concat!("let sem = multiproc::", stringify!($t), "::new(1)?;")]
            /// let held = sem.try_acquire().unwrap();
            /// assert!(sem.try_acquire().is_none());
            /// # drop(held);
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
                try_take(&self.block).then(|| self.guard())
            }

            /// Takes one, waiting at most `timeout`.
            ///
            /// ```
            /// use std::time::Duration;
            ///
            #[doc = concat!("let sem = multiproc::", stringify!($t), "::new(0)?;")]
            /// assert!(sem.acquire_timeout(Duration::from_millis(10)).is_none());
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
                let deadline = super::deadline_after(timeout);
                take(&self.block, deadline).then(|| self.guard())
            }

            fn guard(&self) -> SemaphoreGuard<'_> {
                SemaphoreGuard { block: &self.block }
            }

            /// The current value (Python's `get_value()`).
            ///
            /// ```
            #[doc = concat!("let sem = multiproc::", stringify!($t), "::new(3)?;")]
            /// assert_eq!(sem.value(), 3);
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn value(&self) -> u32 {
                self.block.state().value.load(Ordering::Relaxed)
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t)).field("value", &self.value()).finish()
            }
        }

        shared_by_handle!($t);
    };
}

semaphore!(
    /// A counting semaphore shared between processes (Python's
    /// `multiprocessing.Semaphore`): `acquire` waits while the value is zero
    /// and takes one; `release` gives one back, with no upper bound.
    ///
    /// ```
    /// use multiproc::{Semaphore, process_task};
    ///
    /// #[process_task]
    /// fn give(sem: Semaphore) {
    ///     sem.release().unwrap();
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sem = Semaphore::new(0)?;
    /// multiproc::spawn(give, (sem.clone(),))?.join()?;
    /// sem.acquire().forget(); // the child's release
    /// assert_eq!(sem.value(), 0);
    /// # Ok(())
    /// # }
    /// ```
    Semaphore,
    "A semaphore with this value (Python's default is 1).\n\n```\nlet sem = multiproc::Semaphore::new(2)?;\nassert_eq!(sem.value(), 2);\n# Ok::<(), std::io::Error>(())\n```",
    |value| counter(value, None)
);

semaphore!(
    /// A semaphore that may not be released above its initial value
    /// (Python's `multiprocessing.BoundedSemaphore`): such a release is
    /// [`ReleaseError::TooManyReleases`], on every platform.
    ///
    /// ```
    /// use multiproc::{BoundedSemaphore, ReleaseError};
    ///
    /// let sem = BoundedSemaphore::new(1)?;
    /// assert_eq!(sem.release(), Err(ReleaseError::TooManyReleases));
    /// sem.acquire().forget();
    /// sem.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    BoundedSemaphore,
    "A semaphore with this value, which is also its bound.\n\n```\nlet sem = multiproc::BoundedSemaphore::new(2)?;\nassert_eq!(sem.value(), 2);\n# Ok::<(), std::io::Error>(())\n```",
    |value| counter(value, Some(value))
);

impl Semaphore {
    /// Adds one to the value, waking a waiter. An error only at `u32::MAX`.
    ///
    /// ```
    /// let sem = multiproc::Semaphore::new(2)?;
    /// sem.release()?;
    /// assert_eq!(sem.value(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        give(&self.block)
    }
}

impl BoundedSemaphore {
    /// Adds one to the value, waking a waiter; an error past the bound.
    ///
    /// ```
    /// let sem = multiproc::BoundedSemaphore::new(2)?;
    /// sem.acquire().forget();
    /// sem.release()?;
    /// assert!(sem.release().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        give(&self.block)
    }
}

/// One unit taken from a [`Semaphore`] or [`BoundedSemaphore`]; given back
/// when dropped.
#[must_use = "the unit is given back as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    block: &'a Block<SemState>,
}

impl SemaphoreGuard<'_> {
    /// Keeps the unit: the value stays one lower until a `release`.
    ///
    /// ```
    /// let sem = multiproc::Semaphore::new(1)?;
    /// sem.acquire().forget();
    /// assert_eq!(sem.value(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        let _ = give(self.block);
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard").finish_non_exhaustive()
    }
}
