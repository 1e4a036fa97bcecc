//! Shared values: Python's `Value`/`Array` (with a lock) and
//! `RawValue`/`RawArray` (without), for plain-old-data types. The data
//! sits after a small state in one block, zero-filled when made; the lock
//! of a locked value is a separate [`RLock`] (or the [`Lock`] given).

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::block::{ALIGN, Block, State};
use super::condition::SharedLock;
use super::holder::{forever, outcome};
use super::lock::RLock;
use super::{LockResult, OwnerDied, TryLockResult, deadline_after};

#[repr(C)]
#[derive(Default)]
struct ValueState {
    /// The size of one element, to refuse a block of another type.
    elem_size: AtomicU64,
    /// The number of elements.
    len: AtomicU64,
}

// SAFETY: atomics only.
unsafe impl State for ValueState {
    const KIND: u32 = 7;
}

/// `len` elements of `T`, shared, without a lock: what every value and
/// array type holds.
pub(super) struct Cells<T> {
    block: Block<ValueState>,
    _t: PhantomData<T>,
}

impl<T: Pod> Cells<T> {
    pub(super) fn new(len: usize) -> std::io::Result<Cells<T>> {
        assert!(std::mem::align_of::<T>() <= ALIGN, "a shared value's type may be aligned to at most {ALIGN} bytes");
        let bytes = len.checked_mul(std::mem::size_of::<T>()).ok_or(std::io::ErrorKind::InvalidInput)?;
        let block = Block::new(bytes, |s: &ValueState| {
            s.elem_size.store(std::mem::size_of::<T>() as u64, Ordering::Relaxed);
            s.len.store(len as u64, Ordering::Relaxed);
        })?;
        Ok(Cells { block, _t: PhantomData })
    }

    fn adopt(block: Block<ValueState>) -> std::io::Result<Cells<T>> {
        let s = block.state();
        let (_, bytes) = block.data();
        let len = s.len.load(Ordering::Relaxed);
        let fits = len.checked_mul(std::mem::size_of::<T>() as u64).is_some_and(|n| n <= bytes as u64);
        if s.elem_size.load(Ordering::Relaxed) != std::mem::size_of::<T>() as u64 || !fits {
            let msg = format!("the shared value passed does not hold {}", std::any::type_name::<T>());
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg));
        }
        Ok(Cells { block, _t: PhantomData })
    }

    pub(super) fn len(&self) -> usize {
        self.block.state().len.load(Ordering::Relaxed) as usize
    }

    pub(super) fn ptr(&self) -> *mut T {
        self.block.data().0.cast()
    }

    pub(super) fn get(&self, i: usize) -> Option<T> {
        // SAFETY: `i` is in bounds and the data is aligned for `T` (checked
        // when made); any bit pattern is a `T` (`Pod`). A volatile read: the
        // memory may change under us from another process.
        (i < self.len()).then(|| unsafe { self.ptr().add(i).read_volatile() })
    }

    pub(super) fn set(&self, i: usize, value: T) -> bool {
        if i >= self.len() {
            return false;
        }
        // SAFETY: as for `get`.
        unsafe { self.ptr().add(i).write_volatile(value) };
        true
    }

    /// # Safety
    ///
    /// Nothing may write the elements while the slice lives.
    pub(super) unsafe fn slice(&self) -> &[T] {
        // SAFETY: in bounds and aligned; the caller rules out writers.
        unsafe { std::slice::from_raw_parts(self.ptr(), self.len()) }
    }

    /// # Safety
    ///
    /// Nothing else may read or write the elements while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn slice_mut(&self) -> &mut [T] {
        // SAFETY: in bounds and aligned; the caller rules out any other access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(), self.len()) }
    }
}

impl<T> Serialize for Cells<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.block.serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Cells<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Cells::adopt(Block::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// One `T` in shared memory, without a lock (Python's `RawValue`): reads
/// and writes are single volatile accesses; a read-modify-write needs a
/// lock of your own, or a [`Value`].
///
/// ```
/// use multiproc::{RawValue, process_task};
///
/// #[process_task]
/// fn store(v: RawValue<f64>) {
///     v.set(2.5);
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let v = RawValue::new(0.0f64)?;
/// multiproc::spawn(store, (v.clone(),))?.join()?;
/// assert_eq!(v.get(), 2.5);
/// # Ok(())
/// # }
/// ```
pub struct RawValue<T> {
    cells: Arc<Cells<T>>,
}

impl<T: Pod> RawValue<T> {
    /// A shared `init`.
    ///
    /// ```
    /// let v = multiproc::RawValue::new(7i64)?;
    /// assert_eq!(v.get(), 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(init: T) -> std::io::Result<RawValue<T>> {
        let cells = Cells::new(1)?;
        cells.set(0, init);
        Ok(RawValue { cells: Arc::new(cells) })
    }

    /// The value.
    ///
    /// ```
    /// assert_eq!(multiproc::RawValue::new(1u8)?.get(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get(&self) -> T {
        self.cells.get(0).expect("a value holds one element")
    }

    /// Replaces the value.
    ///
    /// ```
    /// let v = multiproc::RawValue::new(1u8)?;
    /// v.set(2);
    /// assert_eq!(v.get(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set(&self, value: T) {
        self.cells.set(0, value);
    }
}

/// One `T` in shared memory with a lock (Python's `Value`, `lock=True`):
/// [`get`](Value::get) and [`set`](Value::set) each take the lock, and
/// [`update`](Value::update) makes a read-modify-write atomic — which a
/// `get` followed by a `set` is not (Python's `v.value += 1`).
///
/// ```
/// use multiproc::{Value, process_task};
///
/// #[process_task]
/// fn add(v: Value<u64>) {
///     for _ in 0..1000 {
///         v.update(|x| x + 1).unwrap();
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let v = Value::new(0u64)?;
/// let a = multiproc::spawn(add, (v.clone(),))?;
/// let b = multiproc::spawn(add, (v.clone(),))?;
/// a.join()?;
/// b.join()?;
/// assert_eq!(v.get(), 2000);
/// # Ok(())
/// # }
/// ```
pub struct Value<T, L = RLock> {
    raw: RawValue<T>,
    lock: L,
}

impl<T: Pod> Value<T, RLock> {
    /// A shared `init` with a new [`RLock`].
    ///
    /// ```
    /// let v = multiproc::Value::new(3i32)?;
    /// assert_eq!(v.get(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(init: T) -> std::io::Result<Value<T, RLock>> {
        Value::with_lock(init, RLock::new()?)
    }
}

/// The guard of a locked value or array: the lock, held, and the data.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct Locked<'a, T: ?Sized, L: SharedLock> {
    lock: &'a L,
    data: &'a mut T,
}

impl<T: ?Sized, L: SharedLock> Deref for Locked<'_, T, L> {
    type Target = T;
    fn deref(&self) -> &T {
        self.data
    }
}

impl<T: ?Sized, L: SharedLock> DerefMut for Locked<'_, T, L> {
    fn deref_mut(&mut self) -> &mut T {
        self.data
    }
}

impl<T: ?Sized, L: SharedLock> Drop for Locked<'_, T, L> {
    fn drop(&mut self) {
        self.lock.untake();
    }
}

impl<T: ?Sized + fmt::Debug, L: SharedLock> fmt::Debug for Locked<'_, T, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.data.fmt(f)
    }
}

/// Takes `lock` (waiting until `deadline`; `None`: forever) and lends
/// the part of `cells` that `part` picks under it.
pub(super) fn lock_cells<'a, T: Pod, D: ?Sized, L: SharedLock>(
    lock: &'a L,
    cells: &'a Cells<T>,
    deadline: Option<Instant>,
    part: impl FnOnce(&'a mut [T]) -> &'a mut D,
) -> TryLockResult<Locked<'a, D, L>> {
    outcome(lock.take(deadline), || {
        // SAFETY: every access to a locked value's data by this API is
        // under its lock, and the lock is held until the guard drops.
        let data = part(unsafe { cells.slice_mut() });
        Locked { lock, data }
    })
}

impl<T: Pod, L: SharedLock> Value<T, L> {
    /// A shared `init` guarded by `lock` (Python's `Value(t, v, lock=l)`).
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// let v = multiproc::Value::with_lock(0u8, lock.clone())?;
    /// let held = v.lock().unwrap();
    /// assert!(lock.locked());
    /// # drop(held);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_lock(init: T, lock: L) -> std::io::Result<Value<T, L>> {
        Ok(Value { raw: RawValue::new(init)?, lock })
    }

    /// The value, read under the lock.
    ///
    /// ```
    /// assert_eq!(multiproc::Value::new(5u16)?.get(), 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get(&self) -> T {
        let held = self.lock().unwrap_or_else(OwnerDied::into_guard);
        *held
    }

    /// Replaces the value, under the lock.
    ///
    /// ```
    /// let v = multiproc::Value::new(5u16)?;
    /// v.set(6);
    /// assert_eq!(v.get(), 6);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set(&self, value: T) {
        let mut held = self.lock().unwrap_or_else(OwnerDied::into_guard);
        *held = value;
    }

    /// Replaces the value with `f(value)` under the lock, atomically for
    /// every process that uses this API: the new value. `Err` still holds
    /// the new value: the lock was taken from a holder that died.
    ///
    /// ```
    /// let v = multiproc::Value::new(1u32)?;
    /// assert_eq!(v.update(|x| x * 10).unwrap(), 10);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn update(&self, f: impl FnOnce(T) -> T) -> Result<T, OwnerDied<T>> {
        let (mut held, died) = match self.lock() {
            Ok(g) => (g, None),
            Err(d) => {
                let pid = d.pid();
                (d.into_guard(), Some(pid))
            }
        };
        *held = f(*held);
        let new = *held;
        match died {
            None => Ok(new),
            Some(pid) => Err(OwnerDied::new(pid, new)),
        }
    }

    /// Takes the lock and lends the value (Python's `with v.get_lock():`).
    ///
    /// ```
    /// let v = multiproc::Value::new([0u8; 4])?;
    /// v.lock().unwrap()[2] = 9;
    /// assert_eq!(v.get(), [0, 0, 9, 0]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lock(&self) -> LockResult<Locked<'_, T, L>> {
        forever(lock_cells(&self.lock, &self.raw.cells, None, |one| &mut one[0]))
    }

    /// As [`lock`](Value::lock), waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let v = multiproc::Value::new(0u8)?;
    /// let _held = v.lock_timeout(Duration::from_secs(1)).unwrap();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> TryLockResult<Locked<'_, T, L>> {
        lock_cells(&self.lock, &self.raw.cells, deadline_after(timeout), |one| &mut one[0])
    }

    /// The lock (Python's `get_lock()`).
    ///
    /// ```
    /// let v = multiproc::Value::new(0u8)?;
    /// assert!(!v.get_lock().locked());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_lock(&self) -> &L {
        &self.lock
    }

    /// The value without its lock (Python's `get_obj()`).
    ///
    /// ```
    /// let v = multiproc::Value::new(4u8)?;
    /// assert_eq!(v.get_obj().get(), 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_obj(&self) -> &RawValue<T> {
        &self.raw
    }
}

macro_rules! raw_impls {
    ($($t:ident),*) => {$(
        impl<T> Clone for $t<T> {
            fn clone(&self) -> Self {
                $t { cells: Arc::clone(&self.cells) }
            }
        }

        /// Encodes it as handles for a child being started; an error
        /// anywhere but in a task's arguments.
        impl<T> Serialize for $t<T> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.cells.serialize(serializer)
            }
        }

        /// The same memory, in a child decoding its arguments.
        impl<'de, T: Pod> Deserialize<'de> for $t<T> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Ok($t { cells: Arc::new(Cells::deserialize(deserializer)?) })
            }
        }
    )*};
}
pub(super) use raw_impls;

raw_impls!(RawValue);

macro_rules! locked_impls {
    ($($t:ident),*) => {$(
        impl<T, L: Clone> Clone for $t<T, L> {
            fn clone(&self) -> Self {
                $t { raw: self.raw.clone(), lock: self.lock.clone() }
            }
        }

        /// Encodes it and its lock as handles for a child being started.
        impl<T, L: Serialize> Serialize for $t<T, L> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                (&self.raw, &self.lock).serialize(serializer)
            }
        }

        /// The same memory and lock, in a child decoding its arguments.
        impl<'de, T: Pod, L: Deserialize<'de>> Deserialize<'de> for $t<T, L> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let (raw, lock) = Deserialize::deserialize(deserializer)?;
                Ok($t { raw, lock })
            }
        }
    )*};
}
pub(super) use locked_impls;

locked_impls!(Value);

impl<T: Pod + fmt::Debug> fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawValue").field(&self.get()).finish()
    }
}

impl<T: Pod + fmt::Debug, L: SharedLock> fmt::Debug for Value<T, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value").field("value", &self.raw.get()).field("lock", &self.lock).finish()
    }
}
