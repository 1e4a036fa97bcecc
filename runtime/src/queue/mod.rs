//! `Queue`, `SimpleQueue` and `JoinableQueue`: typed multi-producer,
//! multi-consumer queues shared between processes (Python's
//! `multiprocessing.Queue` family). Linux only for now.
//!
//! The guarantees are documented on [`Queue`], which users see.

mod ring;

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DecodeError;
use crate::wire::{self, handles};
use ring::{Ring, RingError};

/// The ring size of [`Queue::new`] and [`Queue::with_maxsize`]: 1 MiB.
///
/// ```
/// let q = multiproc::Queue::<u8>::new()?;
/// assert_eq!(q.ring_size(), multiproc::DEFAULT_RING_SIZE);
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
pub const DEFAULT_RING_SIZE: usize = 1 << 20;

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

/// A typed FIFO queue shared between processes, for many producers and many
/// consumers (Python's `multiprocessing.Queue`). Linux only for now.
///
/// Pass it to a child as a task argument; the child's copy and this one are
/// the same queue. Items from one producer arrive in the order they were
/// put; items from several producers interleave arbitrarily.
///
/// A queue is a ring buffer in anonymous shared memory (a memfd) that every
/// process holding the queue maps. `put` encodes the value and copies it
/// into the ring under a robust process-shared mutex before returning; `get`
/// copies the next item out under the same lock. There is no feeder thread
/// and no pipe, so:
///
/// - **Once `put` returns, the item is in the queue.** Killing the producer
///   afterwards loses nothing (Python loses items still in the feeder's
///   buffer).
/// - **Killing a process in the middle of `put` or `get` never hurts the
///   others.** An item becomes visible in one step, the last one taken
///   under the lock; a consumer removes an item in one step too, after
///   copying it out. The lock is robust: when its owner dies, the next
///   process takes it over, and whatever the dead one left half-done is
///   ignored. Nobody receives a torn or duplicated item and nobody hangs
///   (Python's queue can deadlock or corrupt here). An item a killed
///   consumer had already taken goes with it. The lock is held only to
///   copy an item in or out. A process *stopped* (not killed) while
///   holding it (SIGSTOP, a debugger, a frozen cgroup) stalls `put` and
///   `get` until it continues or their timeout passes, but never the
///   non-blocking calls: `put_nowait` and `get_nowait` only *try* the lock
///   and answer `Full` / `Empty` at once when it is taken (as Python's do);
///   `task_done` gives up after 5 seconds with an `Io` error of kind
///   `TimedOut`. Dropping a handle takes no lock.
/// - **A producer never waits at exit for a reader.** Joining a child that
///   put a large item before anyone got it does not deadlock.
///
/// Items too large for the ring (over half of it), and items that find the
/// ring full while the queue is not full (below its `maxsize`, or
/// unbounded), are *spilled*: written to a memfd of their own (anonymous
/// memory with no name in any file system), which travels to the consumer
/// over a socket pair that belongs to the queue, while only a 20-byte
/// reference goes through the ring. Nothing spilled has a name: whatever
/// is still queued when the last process holding the queue exits, however
/// it exits (SIGKILL, Ctrl-C), is freed by the kernel with the queue's
/// sockets, as the shared memory is. Nothing is ever left in `/dev/shm`.
///
/// Inline items leave an eighth of the ring free for references, and the
/// socket holds a limited number of spilled items in flight (a few hundred
/// with the kernel's default `net.core.wmem_max`; descriptors in flight
/// also count against the sender's `RLIMIT_NOFILE`). Past either limit,
/// `put` waits for a `get` (and `put_nowait` reports `Full`) rather than
/// grow without limit.
///
/// Every process holding a queue can write to its shared memory, so a
/// faulty or hostile one could break it, but not crash the others: the
/// memfd is sealed (it can be neither shrunk, which would make the others'
/// next access a SIGBUS, nor grown), and the shared indices are checked
/// under the lock before they address anything. Garbage in them is
/// [`GetError::Corrupt`] / [`PutError::Corrupt`] in every other process.
///
/// A queue reaches another process only as an argument of a
/// [`#[process_task]`](crate::process_task) (or a field of a process type),
/// as Python's "through inheritance"; it cannot be sent through another
/// queue or a pipe.
///
/// `put` encodes the value in the calling thread (an unencodable value is
/// an error at once and takes no room) and returns once the item is in
/// shared memory: there is no feeder thread, so Python's `join_thread` and
/// `cancel_join_thread` have nothing to do here. A queue is `Send + Sync`;
/// threads may share one.
///
/// ```
/// use multiproc::{Builder, Queue, process_task};
///
/// #[process_task]
/// fn greet(q: Queue<String>) {
///     q.put("hello world".to_string()).unwrap();
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let q = Queue::new()?;
/// let child = Builder::new(greet, (q.clone(),)).start()?;
/// assert_eq!(q.get()?, "hello world");
/// child.join()?;
/// # Ok(())
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
pub struct Queue<T> {
    ring: Arc<Ring>,
    closed: AtomicBool,
    _marker: PhantomData<fn(T) -> T>,
}

impl<T> Queue<T> {
    /// An unbounded queue (Python's `Queue()`, `maxsize <= 0`): `put` does
    /// not wait for room, except when the ring is full of references to
    /// spilled items (see [`Queue`]).
    ///
    /// ```
    /// let q = multiproc::Queue::new()?;
    /// for i in 0..100_000u32 {
    ///     q.put(i)?;
    /// }
    /// assert_eq!(q.qsize(), 100_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> io::Result<Queue<T>> {
        Queue::with_ring_size(0, DEFAULT_RING_SIZE)
    }

    /// A queue holding at most `maxsize` items (0: unbounded), as Python's
    /// `Queue(maxsize)`.
    ///
    /// ```
    /// let q = multiproc::Queue::with_maxsize(2)?;
    /// q.put('a')?;
    /// q.put('b')?;
    /// assert!(q.full());
    /// assert!(q.put_nowait('c').unwrap_err().is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_maxsize(maxsize: usize) -> io::Result<Queue<T>> {
        Queue::with_ring_size(maxsize, DEFAULT_RING_SIZE)
    }

    /// A queue of at most `maxsize` items (0: unbounded) whose shared ring
    /// holds `ring_bytes` bytes (rounded up to a page, between 4 KiB and
    /// 1 GiB; the default is [`DEFAULT_RING_SIZE`]). Items over half the
    /// ring, and items that find the ring full while the queue is not, go
    /// through a memfd of their own instead. The ring's pages are only allocated as they
    /// are first used.
    ///
    /// ```
    /// let q = multiproc::Queue::with_ring_size(0, 64 * 1024)?;
    /// q.put(vec![7u8; 100_000])?; // larger than the ring: spilled
    /// assert_eq!(q.get()?.len(), 100_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_ring_size(maxsize: usize, ring_bytes: usize) -> io::Result<Queue<T>> {
        Ok(Queue::from_ring(Ring::create(maxsize as u64, ring_bytes)?))
    }

    fn from_ring(ring: Ring) -> Queue<T> {
        Queue { ring: Arc::new(ring), closed: AtomicBool::new(false), _marker: PhantomData }
    }

    /// The approximate number of items in the queue (other processes may
    /// put or get at any moment).
    ///
    /// ```
    /// let q = multiproc::Queue::new()?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// assert_eq!(q.qsize(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn qsize(&self) -> usize {
        self.ring.len() as usize
    }

    /// Whether the queue is empty, approximately (see [`qsize`](Queue::qsize)).
    ///
    /// ```
    /// let q = multiproc::Queue::new()?;
    /// assert!(q.empty());
    /// q.put(1)?;
    /// assert!(!q.empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn empty(&self) -> bool {
        self.ring.len() == 0
    }

    /// Whether the queue holds `maxsize` items, approximately; never for an
    /// unbounded queue.
    ///
    /// ```
    /// let q = multiproc::Queue::with_maxsize(1)?;
    /// assert!(!q.full());
    /// q.put(1)?;
    /// assert!(q.full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn full(&self) -> bool {
        self.ring.is_full()
    }

    /// The queue's `maxsize`; 0 when it is unbounded.
    ///
    /// ```
    /// assert_eq!(multiproc::Queue::<u8>::with_maxsize(3)?.maxsize(), 3);
    /// assert_eq!(multiproc::Queue::<u8>::new()?.maxsize(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn maxsize(&self) -> usize {
        self.ring.maxsize() as usize
    }

    /// The size of the shared ring in bytes.
    ///
    /// ```
    /// let q = multiproc::Queue::<u8>::with_ring_size(0, 10_000)?;
    /// assert_eq!(q.ring_size(), 12_288);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ring_size(&self) -> usize {
        self.ring.capacity() as usize
    }

    /// Says this handle will put and get no more: later calls on it fail
    /// with `Closed`. Other handles (clones, other processes' copies) are
    /// unaffected, and items already put stay in the queue. Closing twice
    /// is fine. Unlike Python, `qsize`, `empty` and `full` keep answering.
    ///
    /// ```
    /// use multiproc::{GetError, PutError, Queue};
    ///
    /// let q = Queue::new()?;
    /// q.close();
    /// assert!(matches!(q.put(1), Err(PutError::Closed(1))));
    /// assert!(matches!(q.get(), Err(GetError::Closed)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Whether [`close`](Queue::close) was called on this handle.
    ///
    /// ```
    /// let q = multiproc::Queue::<u8>::new()?;
    /// assert!(!q.is_closed());
    /// q.close();
    /// assert!(q.is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// How many times a process took the queue's lock over from a process
    /// that died holding it. For tests.
    #[doc(hidden)]
    pub fn lock_recoveries(&self) -> u64 {
        self.ring.recoveries()
    }

    /// The memfd holding the queue's shared memory. For tests.
    #[doc(hidden)]
    pub fn shared_memory_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.ring.memfd()
    }

    /// Overwrites the queue's shared head, tail, item count and
    /// unfinished-task count with `words`, through this process's mapping,
    /// as a buggy or hostile peer could. For tests.
    #[doc(hidden)]
    pub fn scribble_shared_state(&self, words: [u64; 4]) {
        self.ring.scribble_state(words)
    }

    fn unfinished(&self) -> u64 {
        self.ring.unfinished()
    }
}

impl<T: Serialize> Queue<T> {
    /// Puts `value`, waiting as long as it takes for room in a bounded
    /// queue. Returns once the item is in shared memory: killing this
    /// process afterwards does not lose it.
    ///
    /// ```
    /// let q = multiproc::Queue::new()?;
    /// q.put((1, "one".to_string()))?;
    /// assert_eq!(q.get()?, (1, "one".to_string()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put(&self, value: T) -> Result<(), PutError<T>> {
        self.put_inner(value, true, None)
    }

    /// Puts `value`, waiting at most `timeout` for room; then
    /// [`PutError::Full`] (Python's `put(obj, timeout=t)`).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let q = multiproc::Queue::with_maxsize(1)?;
    /// q.put(1)?;
    /// let t = Instant::now();
    /// assert!(q.put_timeout(2, Duration::from_millis(100)).unwrap_err().is_full());
    /// assert!(t.elapsed() >= Duration::from_millis(100));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_timeout(&self, value: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_inner(value, true, Some(timeout))
    }

    /// Puts `value` only if there is room now (Python's `put_nowait`, or
    /// `put(obj, block=False)`). It never waits: while another process
    /// holds the queue's lock (copying an item, or stopped while holding
    /// it) the answer is [`PutError::Full`] too, as in Python.
    ///
    /// ```
    /// let q = multiproc::Queue::with_maxsize(1)?;
    /// q.put_nowait(1)?;
    /// assert!(q.put_nowait(2).unwrap_err().is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_nowait(&self, value: T) -> Result<(), PutError<T>> {
        self.put_inner(value, false, None)
    }

    /// Test hook: takes the lock, writes the item without making it
    /// visible, runs `signal`, and hangs until the process is killed.
    #[doc(hidden)]
    pub fn stall_mid_put(&self, value: T, signal: impl FnOnce()) -> ! {
        let bytes = wire::encode(&value).expect("the value encodes");
        self.ring.stall_mid_put(&bytes, signal)
    }

    fn put_inner(&self, value: T, block: bool, timeout: Option<Duration>) -> Result<(), PutError<T>> {
        if self.is_closed() {
            return Err(PutError::Closed(value));
        }
        let bytes = match wire::encode(&value) {
            Ok(b) => b,
            Err(e) => return Err(PutError::Encode(value, e.0)),
        };
        match self.ring.put(&bytes, block, timeout) {
            Ok(()) => Ok(()),
            Err(RingError::WouldBlock) => Err(PutError::Full(value)),
            Err(RingError::Io(e)) => Err(PutError::Io(value, e)),
            Err(RingError::Corrupt(m)) => Err(PutError::Corrupt(value, m)),
        }
    }
}

impl<T: DeserializeOwned> Queue<T> {
    /// Removes and returns the next item, waiting as long as it takes.
    ///
    /// ```
    /// let q = multiproc::Queue::new()?;
    /// q.put("first".to_string())?;
    /// q.put("second".to_string())?;
    /// assert_eq!(q.get()?, "first");
    /// assert_eq!(q.get()?, "second");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        self.get_inner(true, None)
    }

    /// Removes and returns the next item, waiting at most `timeout`; then
    /// [`GetError::Empty`] (Python's `get(timeout=t)`).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use multiproc::{GetError, Queue};
    ///
    /// let q = Queue::<u8>::new()?;
    /// let t = Instant::now();
    /// assert!(matches!(q.get_timeout(Duration::from_millis(200)), Err(GetError::Empty)));
    /// assert!(t.elapsed() >= Duration::from_millis(200));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_inner(true, Some(timeout))
    }

    /// Removes and returns the next item only if one is there now (Python's
    /// `get_nowait`, or `get(block=False)`). It never waits: while another
    /// process holds the queue's lock (copying an item, or stopped while
    /// holding it) the answer is [`GetError::Empty`] too, as in Python.
    ///
    /// ```
    /// use multiproc::{GetError, Queue};
    ///
    /// let q = Queue::new()?;
    /// assert!(matches!(q.get_nowait(), Err(GetError::Empty)));
    /// q.put(5u8)?;
    /// assert_eq!(q.get_nowait()?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_nowait(&self) -> Result<T, GetError> {
        self.get_inner(false, None)
    }

    /// Test hook: takes the lock, copies the next item out without
    /// removing it, runs `signal`, and hangs until the process is killed.
    #[doc(hidden)]
    pub fn stall_mid_get(&self, signal: impl FnOnce()) -> ! {
        self.ring.stall_mid_get(signal)
    }

    fn get_inner(&self, block: bool, timeout: Option<Duration>) -> Result<T, GetError> {
        if self.is_closed() {
            return Err(GetError::Closed);
        }
        let bytes = match self.ring.get(block, timeout) {
            Ok(b) => b,
            Err(RingError::WouldBlock) => return Err(GetError::Empty),
            Err(RingError::Io(e)) => return Err(GetError::Io(e)),
            Err(RingError::Corrupt(m)) => return Err(GetError::Corrupt(m)),
        };
        wire::decode(&bytes).map_err(GetError::Decode)
    }
}

/// Another handle to the same queue, in this process; it starts open even
/// if this one was closed.
///
/// ```
/// let q = multiproc::Queue::new()?;
/// let other = q.clone();
/// other.put(1)?;
/// assert_eq!(q.get()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue { ring: Arc::clone(&self.ring), closed: AtomicBool::new(false), _marker: PhantomData }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("maxsize", &self.ring.maxsize())
            .field("ring_size", &self.ring.capacity())
            .field("qsize", &self.ring.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Encodes the queue as indices into the handle table of a child being
/// started; only possible while a task's arguments are encoded. Anywhere
/// else it is an error.
///
/// ```
/// let q = multiproc::Queue::<u8>::new()?;
/// let carrier = multiproc::Queue::<multiproc::Queue<u8>>::new()?;
/// assert!(matches!(carrier.put(q), Err(multiproc::PutError::Encode(..))));
/// # Ok::<(), std::io::Error>(())
/// ```
impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut indices = [0u32; 3];
        for (index, fd) in indices.iter_mut().zip(self.ring.fds()) {
            *index = handles::share(|| fd.try_clone_to_owned()).map_err(serde::ser::Error::custom)?;
        }
        indices.serialize(serializer)
    }
}

/// Maps the queue the parent passed at this index, in a child that is
/// decoding its arguments. Anywhere else it is an error.
///
/// ```
/// use multiproc::{Builder, Queue, process_task};
///
/// #[process_task]
/// fn count(q: Queue<u32>) -> u32 {
///     let mut n = 0;
///     while q.get().unwrap() != 0 {
///         n += 1;
///     }
///     n
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let q = Queue::new()?;
/// let child = Builder::new(count, (q.clone(),)).start()?;
/// for x in [3, 2, 1, 0] {
///     q.put(x)?;
/// }
/// assert_eq!(child.join()?, 3);
/// # Ok(())
/// # }
/// ```
impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let indices = <[u32; 3]>::deserialize(deserializer)?;
        let [fd, tx, rx] = indices.map(handles::claim);
        let claimed = |fd: Result<_, String>| fd.map_err(serde::de::Error::custom);
        let ring = Ring::attach(claimed(fd)?, claimed(tx)?, claimed(rx)?).map_err(serde::de::Error::custom)?;
        Ok(Queue::from_ring(ring))
    }
}

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
