//! Shared arrays: Python's `Array` (with a lock) and `RawArray` (without),
//! over the same cells as the shared values.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::condition::SharedLock;
use super::holder::forever;
use super::lock::RLock;
use super::value::{Cells, Locked, Pod, lock_cells, locked_impls, raw_impls};
use super::{LockResult, TryLockResult, deadline_after};

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
        forever(lock_cells(&self.lock, &self.raw.cells, None, |all| all))
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
        lock_cells(&self.lock, &self.raw.cells, deadline_after(timeout), |all| all)
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

raw_impls!(RawArray);
locked_impls!(Array);

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
