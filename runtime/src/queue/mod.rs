//! `Queue`, `SimpleQueue` and `JoinableQueue`: typed multi-producer,
//! multi-consumer queues shared between processes (Python's
//! `multiprocessing.Queue` family). Linux only for now.
//!
//! The guarantees are documented on [`Queue`], which users see.

mod error;
mod joinable;
mod ring;
mod simple;

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::wire::{self, handles};
use ring::{Ring, RingError};

pub use error::{GetError, PutError, TaskDoneError};
pub use joinable::JoinableQueue;
pub use simple::SimpleQueue;

/// The ring size of [`Queue::new`] and [`Queue::with_maxsize`]: 1 MiB.
///
/// ```
/// let q = multiproc::Queue::<u8>::new()?;
/// assert_eq!(q.ring_size(), multiproc::DEFAULT_RING_SIZE);
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
pub const DEFAULT_RING_SIZE: usize = 1 << 20;

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
/// unbounded) and nobody is getting, are *spilled*: written to a memfd of
/// their own (anonymous
/// memory with no name in any file system), which travels to the consumer
/// over a socket pair that belongs to the queue, while only a 20-byte
/// reference goes through the ring. Nothing spilled has a name: whatever
/// is still queued when the last process holding the queue exits, however
/// it exits (SIGKILL, Ctrl-C), is freed by the kernel with the queue's
/// sockets, as the shared memory is. Nothing is ever left in `/dev/shm`.
///
/// A `put` that finds the ring full while consumers are getting waits for
/// them to make room, rather than spill: spilling costs both sides about
/// ten system calls an item, so producers that outpace the consumer would
/// otherwise slow it down and keep the ring full. Once no `get` has come
/// for a couple of milliseconds, the consumers count as idle and `put`
/// spills at once, until the next `get`: an unbounded queue still takes
/// every item with nobody reading, and a producer never waits on a
/// consumer that is not consuming.
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
    /// not wait for room, except for consumers that are making it, or when
    /// the ring is full of references to spilled items (see [`Queue`]).
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

    /// How many spill sequence numbers were taken so far, by any process:
    /// at least one per item spilled to a file of its own. For tests.
    #[doc(hidden)]
    pub fn spilled_items(&self) -> u64 {
        self.ring.spills()
    }

    /// How many times a put found the ring full and waited a whole
    /// patience for a get in vain, by any process. For tests.
    #[doc(hidden)]
    pub fn room_waits_given_up(&self) -> u64 {
        self.ring.room_given_up()
    }

    /// Sets, for every process, how long a put that finds the ring full
    /// waits for a get before it spills the item (at most a minute). For
    /// tests.
    #[doc(hidden)]
    pub fn set_room_patience(&self, patience: Duration) {
        self.ring.set_patience(patience)
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
