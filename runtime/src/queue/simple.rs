//! `SimpleQueue`: a `Queue` with only the basic calls.

use std::fmt;
use std::io;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{GetError, PutError, Queue};

/// A simpler queue: only `put`, `get`, `empty` and `close` (Python's
/// `multiprocessing.SimpleQueue`). Unbounded, with the same shared ring and
/// guarantees as [`Queue`].
///
/// ```
/// use multiproc::{Builder, SimpleQueue, process_task};
///
/// #[process_task]
/// fn squares(q: SimpleQueue<u64>) {
///     for i in 0..5 {
///         q.put(i * i).unwrap();
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let q = SimpleQueue::new()?;
/// Builder::new(squares, (q.clone(),)).start()?.join()?;
/// let got: Vec<u64> = (0..5).map(|_| q.get().unwrap()).collect();
/// assert_eq!(got, [0, 1, 4, 9, 16]);
/// assert!(q.empty());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent, bound = "")]
#[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
pub struct SimpleQueue<T> {
    inner: Queue<T>,
}

impl<T> SimpleQueue<T> {
    /// A new, empty queue.
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::<String>::new()?;
    /// assert!(q.empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<SimpleQueue<T>> {
        Ok(SimpleQueue { inner: Queue::new()? })
    }

    /// Whether the queue is empty, approximately.
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::new()?;
    /// q.put(1)?;
    /// assert!(!q.empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn empty(&self) -> bool {
        self.inner.empty()
    }

    /// Says this handle will put and get no more (see [`Queue::close`]).
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::<u8>::new()?;
    /// q.close();
    /// q.close();
    /// assert!(q.get().is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close(&self) {
        self.inner.close()
    }
}

impl<T: Serialize> SimpleQueue<T> {
    /// Puts `value` (see [`Queue::put`]).
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::new()?;
    /// q.put([1, 2])?;
    /// assert_eq!(q.get()?, [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put(&self, value: T) -> Result<(), PutError<T>> {
        self.inner.put(value)
    }
}

impl<T: DeserializeOwned> SimpleQueue<T> {
    /// Removes and returns the next item, waiting as long as it takes.
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::new()?;
    /// q.put('x')?;
    /// assert_eq!(q.get()?, 'x');
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        self.inner.get()
    }
}

impl<T> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SimpleQueue").field(&self.inner).finish()
    }
}
