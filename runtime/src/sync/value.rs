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
use super::lock::{RLock, Taken};
use super::{LockResult, OwnerDied, TryAcquireError, TryLockResult};

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
struct Cells<T> {
    block: Block<ValueState>,
    _t: PhantomData<T>,
}

impl<T: Pod> Cells<T> {
    fn new(len: usize) -> std::io::Result<Cells<T>> {
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

    fn len(&self) -> usize {
        self.block.state().len.load(Ordering::Relaxed) as usize
    }

    fn ptr(&self) -> *mut T {
        self.block.data().0.cast()
    }

    fn get(&self, i: usize) -> Option<T> {
        // SAFETY: `i` is in bounds and the data is aligned for `T` (checked
        // when made); any bit pattern is a `T` (`Pod`). A volatile read: the
        // memory may change under us from another process.
        (i < self.len()).then(|| unsafe { self.ptr().add(i).read_volatile() })
    }

    fn set(&self, i: usize, value: T) -> bool {
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
    unsafe fn slice(&self) -> &[T] {
        // SAFETY: in bounds and aligned; the caller rules out writers.
        unsafe { std::slice::from_raw_parts(self.ptr(), self.len()) }
    }

    /// # Safety
    ///
    /// Nothing else may read or write the elements while the slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice_mut(&self) -> &mut [T] {
        // SAFETY: in bounds and aligned; the caller rules out any other access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(), self.len()) }
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
/// `data` under it.
fn lock_cells<'a, T: Pod, L: SharedLock>(
    lock: &'a L,
    cells: &'a Cells<T>,
    deadline: Option<Instant>,
) -> TryLockResult<Locked<'a, [T], L>> {
    let taken = lock.take(deadline).ok_or(TryAcquireError::WouldBlock)?;
    // SAFETY: every access to a locked value's data by this API is under
    // its lock, and the lock is held until the guard drops.
    let data = unsafe { cells.slice_mut() };
    let guard = Locked { lock, data };
    match taken {
        Taken::FromDead(pid) => Err(TryAcquireError::OwnerDied(OwnerDied::new(pid, guard))),
        Taken::Clean => Ok(guard),
    }
}

/// A wait without a deadline ends only with the lock.
fn forever<G>(r: Result<G, TryAcquireError<G>>) -> LockResult<G> {
    match r {
        Ok(g) => Ok(g),
        Err(TryAcquireError::OwnerDied(d)) => Err(d),
        Err(TryAcquireError::WouldBlock) => unreachable!("a wait without a deadline returned without the lock"),
    }
}

/// One element's guard from the guard of a slice of one.
fn single<'a, T, L: SharedLock>(g: Locked<'a, [T], L>) -> Locked<'a, T, L> {
    let g = std::mem::ManuallyDrop::new(g);
    // SAFETY: `g` is never dropped (its hold on the lock passes to the new
    // guard), so each field is moved out exactly once.
    let (lock, data) = unsafe { (std::ptr::read(&g.lock), std::ptr::read(&g.data)) };
    Locked { lock, data: &mut data[0] }
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
        forever(self.lock_until(None))
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
        self.lock_until(Instant::now().checked_add(timeout))
    }

    fn lock_until(&self, deadline: Option<Instant>) -> TryLockResult<Locked<'_, T, L>> {
        match lock_cells(&self.lock, &self.raw.cells, deadline) {
            Ok(g) => Ok(single(g)),
            Err(TryAcquireError::OwnerDied(d)) => Err(TryAcquireError::OwnerDied(d.map(single))),
            Err(TryAcquireError::WouldBlock) => Err(TryAcquireError::WouldBlock),
        }
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

/// `len` elements of `T` in shared memory, without a lock (Python's
/// `RawArray`), zero-filled when made.
///
/// ```
/// use multiproc::{RawArray, process_task};
///
/// #[process_task]
/// fn fill(a: RawArray<u32>) {
///     for i in 0..a.len() {
///         a.set(i, i as u32 * 2);
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let a = RawArray::new(4)?;
/// multiproc::spawn(fill, (a.clone(),))?.join()?;
/// assert_eq!(a.to_vec(), [0, 2, 4, 6]);
/// # Ok(())
/// # }
/// ```
pub struct RawArray<T> {
    cells: Arc<Cells<T>>,
}

impl<T: Pod> RawArray<T> {
    /// `len` zeroes.
    ///
    /// ```
    /// let a = multiproc::RawArray::<f64>::new(3)?;
    /// assert_eq!(a.to_vec(), [0.0; 3]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(len: usize) -> std::io::Result<RawArray<T>> {
        Ok(RawArray { cells: Arc::new(Cells::new(len)?) })
    }

    /// A copy of `values`.
    ///
    /// ```
    /// let a = multiproc::RawArray::from_slice(&[1u8, 2, 3])?;
    /// assert_eq!(a.len(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_slice(values: &[T]) -> std::io::Result<RawArray<T>> {
        let a = RawArray::new(values.len())?;
        // SAFETY: nobody else has the array yet.
        unsafe { a.cells.slice_mut() }.copy_from_slice(values);
        Ok(a)
    }

    /// The number of elements.
    ///
    /// ```
    /// assert_eq!(multiproc::RawArray::<u8>::new(5)?.len(), 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether it has no elements.
    ///
    /// ```
    /// assert!(multiproc::RawArray::<u8>::new(0)?.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` (one volatile read); `None` out of bounds.
    ///
    /// ```
    /// let a = multiproc::RawArray::from_slice(&[1u8, 2])?;
    /// assert_eq!((a.get(1), a.get(2)), (Some(2), None));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get(&self, i: usize) -> Option<T> {
        self.cells.get(i)
    }

    /// Sets element `i` (one volatile write).
    ///
    /// # Panics
    ///
    /// If `i` is out of bounds, as indexing a slice does.
    ///
    /// ```
    /// let a = multiproc::RawArray::<u8>::new(2)?;
    /// a.set(1, 7);
    /// assert_eq!(a.get(1), Some(7));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set(&self, i: usize, value: T) {
        assert!(self.cells.set(i, value), "index {i} out of bounds for a shared array of {}", self.len());
    }

    /// A copy of every element, read one by one.
    ///
    /// ```
    /// assert_eq!(multiproc::RawArray::from_slice(&[3u8, 4])?.to_vec(), [3, 4]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.len()).filter_map(|i| self.cells.get(i)).collect()
    }

    /// The elements as a slice: the fastest way to read them.
    ///
    /// # Safety
    ///
    /// No thread or process may write the array while the slice lives
    /// (as when a parent fills it before its children read it).
    ///
    /// ```
    /// let a = multiproc::RawArray::from_slice(&[1.0f64, 2.0])?;
    /// // SAFETY: nothing writes `a` while the sum runs.
    /// let sum: f64 = unsafe { a.as_slice() }.iter().sum();
    /// assert_eq!(sum, 3.0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub unsafe fn as_slice(&self) -> &[T] {
        // SAFETY: the caller rules out writers.
        unsafe { self.cells.slice() }
    }

    /// The elements as a mutable slice.
    ///
    /// # Safety
    ///
    /// No other thread or process may read or write the array while the
    /// slice lives.
    ///
    /// ```
    /// let a = multiproc::RawArray::<u8>::new(3)?;
    /// // SAFETY: nobody else has the array.
    /// unsafe { a.as_mut_slice() }.copy_from_slice(&[1, 2, 3]);
    /// assert_eq!(a.to_vec(), [1, 2, 3]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&self) -> &mut [T] {
        // SAFETY: the caller rules out any other access.
        unsafe { self.cells.slice_mut() }
    }
}

/// `len` elements of `T` in shared memory with a lock (Python's `Array`):
/// [`lock`](Array::lock) lends them as a slice under it.
///
/// ```
/// use multiproc::{Array, process_task};
///
/// #[process_task]
/// fn double(a: Array<i32>) {
///     for x in a.lock().unwrap().iter_mut() {
///         *x *= 2;
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let a = Array::from_slice(&[1, 2, 3])?;
/// multiproc::spawn(double, (a.clone(),))?.join()?;
/// assert_eq!(*a.lock().unwrap(), [2, 4, 6]);
/// # Ok(())
/// # }
/// ```
pub struct Array<T, L = RLock> {
    raw: RawArray<T>,
    lock: L,
}

impl<T: Pod> Array<T, RLock> {
    /// `len` zeroes, with a new [`RLock`].
    ///
    /// ```
    /// let a = multiproc::Array::<u16>::new(2)?;
    /// assert_eq!(*a.lock().unwrap(), [0, 0]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(len: usize) -> std::io::Result<Array<T, RLock>> {
        Ok(Array { raw: RawArray::new(len)?, lock: RLock::new()? })
    }

    /// A copy of `values`, with a new [`RLock`].
    ///
    /// ```
    /// let a = multiproc::Array::from_slice(&[1u8, 2])?;
    /// assert_eq!(a.len(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_slice(values: &[T]) -> std::io::Result<Array<T, RLock>> {
        Ok(Array { raw: RawArray::from_slice(values)?, lock: RLock::new()? })
    }
}

impl<T: Pod, L: SharedLock> Array<T, L> {
    /// `len` zeroes guarded by `lock`.
    ///
    /// ```
    /// let a = multiproc::Array::<u8, _>::with_lock(3, multiproc::Lock::new()?)?;
    /// assert_eq!(a.len(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_lock(len: usize, lock: L) -> std::io::Result<Array<T, L>> {
        Ok(Array { raw: RawArray::new(len)?, lock })
    }

    /// The number of elements.
    ///
    /// ```
    /// assert_eq!(multiproc::Array::<u8>::new(4)?.len(), 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether it has no elements.
    ///
    /// ```
    /// assert!(multiproc::Array::<u8>::new(0)?.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Takes the lock and lends the elements as a slice.
    ///
    /// ```
    /// let a = multiproc::Array::<u8>::new(3)?;
    /// a.lock().unwrap()[1..].copy_from_slice(&[5, 6]);
    /// assert_eq!(*a.lock().unwrap(), [0, 5, 6]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lock(&self) -> LockResult<Locked<'_, [T], L>> {
        forever(lock_cells(&self.lock, &self.raw.cells, None))
    }

    /// As [`lock`](Array::lock), waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let a = multiproc::Array::<u8>::new(2)?;
    /// let held = a.lock().unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert!(a.lock_timeout(Duration::from_millis(10)).is_err()));
    /// });
    /// # drop(held);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> TryLockResult<Locked<'_, [T], L>> {
        lock_cells(&self.lock, &self.raw.cells, Instant::now().checked_add(timeout))
    }

    /// The lock (Python's `get_lock()`).
    ///
    /// ```
    /// assert!(!multiproc::Array::<u8>::new(1)?.get_lock().locked());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_lock(&self) -> &L {
        &self.lock
    }

    /// The elements without their lock (Python's `get_obj()`).
    ///
    /// ```
    /// let a = multiproc::Array::from_slice(&[8u8])?;
    /// assert_eq!(a.get_obj().get(0), Some(8));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_obj(&self) -> &RawArray<T> {
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
                self.cells.block.serialize(serializer)
            }
        }

        /// The same memory, in a child decoding its arguments.
        impl<'de, T: Pod> Deserialize<'de> for $t<T> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let block = Block::deserialize(deserializer)?;
                let cells = Cells::adopt(block).map_err(serde::de::Error::custom)?;
                Ok($t { cells: Arc::new(cells) })
            }
        }
    )*};
}
raw_impls!(RawValue, RawArray);

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
locked_impls!(Value, Array);

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

impl<T: Pod + fmt::Debug> fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawArray").field("len", &self.len()).finish_non_exhaustive()
    }
}

impl<T: Pod + fmt::Debug, L: SharedLock> fmt::Debug for Array<T, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array").field("len", &self.len()).field("lock", &self.lock).finish_non_exhaustive()
    }
}
