//! Why a queue operation failed.

use std::fmt;
use std::io;

use crate::error::DecodeError;

#[cfg(doc)]
use super::{JoinableQueue, Queue};

/// Why a [`put`](Queue::put) failed. Every variant hands the value back
/// ([`into_inner`](PutError::into_inner)); nothing was put.
///
/// ```
/// use multiproc::{PutError, Queue};
///
/// let q = Queue::with_maxsize(1)?;
/// q.put(1)?;
/// match q.put_nowait(2) {
///     Err(PutError::Full(v)) => assert_eq!(v, 2),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
pub enum PutError<T> {
    /// The queue stayed full for as long as the call could wait (Python's
    /// `queue.Full`).
    Full(T),
    /// This handle was [`close`](Queue::close)d.
    Closed(T),
    /// The value could not be encoded (a value holding an OS handle, say);
    /// it took no room in the queue.
    Encode(T, String),
    /// The queue's shared memory holds something no queue writes (another
    /// program wrote to it); nothing was put.
    Corrupt(T, String),
    /// The operating system refused (making the memory for a spilled item, say).
    Io(T, io::Error),
}

impl<T> PutError<T> {
    /// The value that was not put.
    ///
    /// ```
    /// let q = multiproc::Queue::with_maxsize(1)?;
    /// q.put("a".to_string())?;
    /// let err = q.put_nowait("b".to_string()).unwrap_err();
    /// assert_eq!(err.into_inner(), "b");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(v)
            | PutError::Closed(v)
            | PutError::Encode(v, _)
            | PutError::Corrupt(v, _)
            | PutError::Io(v, _) => v,
        }
    }

    /// Whether the queue was full.
    ///
    /// ```
    /// let q = multiproc::Queue::with_maxsize(1)?;
    /// q.put(1)?;
    /// assert!(q.put_nowait(2).unwrap_err().is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }

    /// The value that was not put, and the error without it (what `?`
    /// turns into [`Error::Put`](crate::Error::Put)).
    ///
    /// ```
    /// use multiproc::PutError;
    ///
    /// let q = multiproc::Queue::with_maxsize(1)?;
    /// q.put(1)?;
    /// let (value, why) = q.put_nowait(2).unwrap_err().split();
    /// assert_eq!(value, 2);
    /// assert!(matches!(why, PutError::Full(())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn split(self) -> (T, PutError<()>) {
        match self {
            PutError::Full(v) => (v, PutError::Full(())),
            PutError::Closed(v) => (v, PutError::Closed(())),
            PutError::Encode(v, e) => (v, PutError::Encode((), e)),
            PutError::Corrupt(v, e) => (v, PutError::Corrupt((), e)),
            PutError::Io(v, e) => (v, PutError::Io((), e)),
        }
    }
}

/// `?` on a `put` in a function returning [`Error`](crate::Error): the
/// value is dropped. Match the [`PutError`] itself to get it back.
impl<T> From<PutError<T>> for crate::Error {
    fn from(e: PutError<T>) -> Self {
        crate::Error::Put(e.split().1)
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("the queue is full"),
            PutError::Closed(_) => f.write_str("the queue is closed"),
            PutError::Encode(_, e) => write!(f, "the value could not be encoded: {e}"),
            PutError::Corrupt(_, e) => write!(f, "the queue's shared memory is corrupt: {e}"),
            PutError::Io(_, e) => write!(f, "{e}"),
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::Closed(_) => f.write_str("Closed(..)"),
            PutError::Encode(_, e) => f.debug_tuple("Encode").field(&"..").field(e).finish(),
            PutError::Corrupt(_, e) => f.debug_tuple("Corrupt").field(&"..").field(e).finish(),
            PutError::Io(_, e) => f.debug_tuple("Io").field(&"..").field(e).finish(),
        }
    }
}

impl<T> std::error::Error for PutError<T> {}

/// Why a [`get`](Queue::get) failed.
///
/// ```
/// use multiproc::{GetError, Queue};
///
/// let q = Queue::<u8>::new()?;
/// assert!(matches!(q.get_nowait(), Err(GetError::Empty)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
pub enum GetError {
    /// The queue stayed empty for as long as the call could wait (Python's
    /// `queue.Empty`).
    #[error("the queue is empty")]
    Empty,
    /// This handle was [`close`](Queue::close)d.
    #[error("the queue is closed")]
    Closed,
    /// An item arrived whole but does not decode as `T`; it was consumed.
    #[error("the item does not decode as the expected type: {0}")]
    Decode(#[source] DecodeError),
    /// The shared memory holds something that is not a valid item (another
    /// program wrote to it).
    #[error("the queue's shared memory is corrupt: {0}")]
    Corrupt(String),
    /// The operating system refused (receiving a spilled item, say).
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Why [`task_done`](JoinableQueue::task_done) failed.
///
/// ```
/// use multiproc::{JoinableQueue, TaskDoneError};
///
/// let q = JoinableQueue::<u8>::new()?;
/// assert!(matches!(q.task_done(), Err(TaskDoneError::TooManyCalls)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
pub enum TaskDoneError {
    /// There was no unfinished task (Python's `ValueError`).
    #[error("task_done() called too many times")]
    TooManyCalls,
    /// The operating system refused.
    #[error("{0}")]
    Io(#[from] io::Error),
}
