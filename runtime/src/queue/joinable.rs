//! `JoinableQueue`: a `Queue` that counts unfinished tasks.

use std::fmt;
use std::io;
use std::ops::Deref;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Queue, TaskDoneError};

/// A [`Queue`] that also counts unfinished tasks (Python's
/// `multiprocessing.JoinableQueue`): each `put` adds one, each
/// [`task_done`](JoinableQueue::task_done) removes one, and
/// [`join`](JoinableQueue::join) waits for the count to reach zero. All of
/// [`Queue`]'s methods are available through `Deref`.
///
/// ```
/// use multiproc::{Builder, JoinableQueue, process_task};
///
/// #[process_task]
/// fn worker(q: JoinableQueue<u32>) {
///     while let Ok(job) = q.get() {
///         let _ = job * 2;
///         q.task_done().unwrap();
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let q = JoinableQueue::new()?;
/// let child = Builder::new(worker, (q.clone(),)).daemon(true).start()?;
/// for job in 0..10 {
///     q.put(job)?;
/// }
/// q.join()?; // every job was taken and marked done
/// assert!(q.empty());
/// child.kill()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent, bound = "")]
#[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
pub struct JoinableQueue<T> {
    inner: Queue<T>,
}

impl<T> JoinableQueue<T> {
    /// An unbounded joinable queue.
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::<u8>::new()?;
    /// q.join()?; // nothing unfinished
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<JoinableQueue<T>> {
        Ok(JoinableQueue { inner: Queue::new()? })
    }

    /// A joinable queue of at most `maxsize` items (0: unbounded).
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::with_maxsize(1)?;
    /// q.put(1)?;
    /// assert!(q.full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_maxsize(maxsize: usize) -> io::Result<JoinableQueue<T>> {
        Ok(JoinableQueue { inner: Queue::with_maxsize(maxsize)? })
    }

    /// A joinable queue with a ring of `ring_bytes` (see
    /// [`Queue::with_ring_size`]).
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::<u8>::with_ring_size(0, 8192)?;
    /// assert_eq!(q.ring_size(), 8192);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_ring_size(maxsize: usize, ring_bytes: usize) -> io::Result<JoinableQueue<T>> {
        Ok(JoinableQueue { inner: Queue::with_ring_size(maxsize, ring_bytes)? })
    }

    /// Says that one item got earlier is fully processed. Calling it more
    /// times than items were put is [`TaskDoneError::TooManyCalls`]. It
    /// waits at most 5 seconds for the queue's lock (held that long only
    /// by a stopped process); then it fails with [`TaskDoneError::Io`] of
    /// kind [`TimedOut`](io::ErrorKind::TimedOut) and the task is *not*
    /// marked done (call again).
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::new()?;
    /// q.put(1)?;
    /// q.get()?;
    /// q.task_done()?;
    /// assert!(q.task_done().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        if self.inner.ring.task_done()? { Ok(()) } else { Err(TaskDoneError::TooManyCalls) }
    }

    /// Waits until every item put has been marked done by
    /// [`task_done`](JoinableQueue::task_done), in any process.
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::new()?;
    /// q.put("job".to_string())?;
    /// assert_eq!(q.get()?, "job");
    /// q.task_done()?;
    /// q.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&self) -> io::Result<()> {
        self.inner.ring.join(None).map(drop)
    }

    /// Waits at most `timeout` for every item to be marked done; true if
    /// they were.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = multiproc::JoinableQueue::new()?;
    /// q.put(1)?;
    /// assert!(!q.join_timeout(Duration::from_millis(50))?);
    /// q.get()?;
    /// q.task_done()?;
    /// assert!(q.join_timeout(Duration::from_millis(50))?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> io::Result<bool> {
        self.inner.ring.join(Some(timeout))
    }

    /// The number of unfinished tasks, approximately.
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::new()?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// q.get()?;
    /// assert_eq!(q.unfinished_tasks(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unfinished_tasks(&self) -> usize {
        self.inner.unfinished() as usize
    }
}

/// A joinable queue is a [`Queue`] with task counting.
///
/// ```
/// let q = multiproc::JoinableQueue::new()?;
/// q.put(1)?; // Queue::put
/// assert_eq!(q.qsize(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl<T> Deref for JoinableQueue<T> {
    type Target = Queue<T>;

    fn deref(&self) -> &Queue<T> {
        &self.inner
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("queue", &self.inner)
            .field("unfinished", &self.inner.unfinished())
            .finish()
    }
}
