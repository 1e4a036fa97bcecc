//! `Pipe` and `Connection`: a typed, message-oriented channel between two
//! processes (Python's `multiprocessing.Pipe`).
//!
//! A pipe is a connected pair of Unix stream sockets (on Windows, the two
//! ends of a duplex named pipe opened for overlapped I/O). Every message is one
//! frame: the 12-byte header of the bootstrap protocol (magic `MP`, the
//! protocol version, kind 3 = message, the body length as a little-endian
//! `u64`) followed by the body. The length is checked against
//! [`MAX_MESSAGE_LEN`] before anything is allocated, and the body is read
//! incrementally, so a lying length prefix costs nothing. Typed messages
//! ([`Connection::send`]) are encoded with the crate's codec; raw ones
//! ([`Connection::send_bytes`]) are sent as they are. Both kinds share the
//! framing, so message boundaries are kept and an empty message is a
//! message.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
#[cfg(unix)]
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DecodeError;
use crate::sys::imp as sys;
#[cfg(windows)]
use crate::sys::imp::pipe::{AsFd, BorrowedFd, OwnedFd};
use crate::wire::{self, FrameError, FrameKind, HEADER_LEN, handles};

/// The longest message a connection accepts: 16 GiB.
const MAX_MESSAGE_LEN: u64 = wire::MAX_FRAME_LEN;

/// The most memory reserved for a body before its bytes have arrived.
const INITIAL_RESERVE: u64 = 1 << 20;

mod inbox;

pub(crate) use inbox::Inbox;

mod sealed {
    pub trait Sealed {}
}

/// The direction marker of a connection that can send and receive, as both
/// ends of [`pipe`] can.
///
/// ```
/// let (a, b): (multiproc::Connection<u8, multiproc::Duplex>, _) = multiproc::pipe()?;
/// a.send(&1)?;
/// b.send(&(b.recv()? + 1))?;
/// assert_eq!(a.recv()?, 2);
/// # Ok::<(), multiproc::ConnectionError>(())
/// ```
#[derive(Debug)]
pub enum Duplex {}

/// The direction marker of the receiving end of [`pipe_one_way`]: it has
/// no `send`.
///
/// ```compile_fail
/// let (reader, _writer) = multiproc::pipe_one_way::<u8>()?;
/// reader.send(&1)?; // no `send` on a `Connection<u8, ReadOnly>`
/// # Ok::<(), multiproc::ConnectionError>(())
/// ```
///
/// ```
/// let (reader, writer): (multiproc::Connection<u8, multiproc::ReadOnly>, _) = multiproc::pipe_one_way()?;
/// writer.send(&7)?;
/// assert_eq!(reader.recv()?, 7);
/// # Ok::<(), multiproc::ConnectionError>(())
/// ```
#[derive(Debug)]
pub enum ReadOnly {}

/// The direction marker of the sending end of [`pipe_one_way`]: it has no
/// `recv` or `poll`.
///
/// ```compile_fail
/// let (_reader, writer) = multiproc::pipe_one_way::<u8>()?;
/// writer.recv()?; // no `recv` on a `Connection<u8, WriteOnly>`
/// # Ok::<(), multiproc::ConnectionError>(())
/// ```
///
/// ```
/// let (reader, writer): (_, multiproc::Connection<u8, multiproc::WriteOnly>) = multiproc::pipe_one_way()?;
/// writer.send(&7)?;
/// assert_eq!(reader.recv()?, 7);
/// # Ok::<(), multiproc::ConnectionError>(())
/// ```
#[derive(Debug)]
pub enum WriteOnly {}

/// Direction markers whose connections can receive: [`Duplex`] and
/// [`ReadOnly`]. Sealed.
///
/// ```
/// fn drain<T: serde::de::DeserializeOwned, M: multiproc::Readable>(
///     conn: &multiproc::Connection<T, M>,
/// ) -> Result<Vec<T>, multiproc::ConnectionError> {
///     let mut out = Vec::new();
///     while conn.poll(Some(std::time::Duration::ZERO))? {
///         out.push(conn.recv()?);
///     }
///     Ok(out)
/// }
///
/// let (reader, writer) = multiproc::pipe_one_way::<u8>()?;
/// writer.send(&1)?;
/// writer.send(&2)?;
/// assert_eq!(drain(&reader)?, [1, 2]);
/// # Ok::<(), multiproc::ConnectionError>(())
/// ```
pub trait Readable: sealed::Sealed {}

/// Direction markers whose connections can send: [`Duplex`] and
/// [`WriteOnly`]. Sealed.
///
/// ```
/// fn greet<M: multiproc::Writable>(conn: &multiproc::Connection<String, M>) -> Result<(), multiproc::ConnectionError> {
///     conn.send(&"hello".to_string())
/// }
///
/// let (reader, writer) = multiproc::pipe_one_way()?;
/// greet(&writer)?;
/// assert_eq!(reader.recv()?, "hello");
/// # Ok::<(), multiproc::ConnectionError>(())
/// ```
pub trait Writable: sealed::Sealed {}

impl sealed::Sealed for Duplex {}
impl sealed::Sealed for ReadOnly {}
impl sealed::Sealed for WriteOnly {}
impl Readable for Duplex {}
impl Readable for ReadOnly {}
impl Writable for Duplex {}
impl Writable for WriteOnly {}

/// Why a connection operation failed.
///
/// A message that arrived whole but is not what was expected
/// ([`Decode`](ConnectionError::Decode),
/// [`BufferTooShort`](ConnectionError::BufferTooShort)) is consumed and
/// the connection stays usable. A broken frame
/// ([`Truncated`](ConnectionError::Truncated),
/// [`TooLarge`](ConnectionError::TooLarge),
/// [`Malformed`](ConnectionError::Malformed)), or a body left unread
/// ([`LongerThanMax`](ConnectionError::LongerThanMax)), loses the message
/// boundaries, so every later receive fails with
/// [`Broken`](ConnectionError::Broken).
///
/// ```
/// use multiproc::ConnectionError;
///
/// let (a, b) = multiproc::pipe::<String>()?;
/// drop(b);
/// assert!(matches!(a.recv(), Err(ConnectionError::Eof)));
/// # Ok::<(), ConnectionError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// Nothing is left to read and every copy of the other end is closed
    /// (Python's `EOFError`).
    #[error("end of file: every copy of the other end of the connection is closed")]
    Eof,
    /// The other end closed in the middle of a message.
    #[error("the connection closed in the middle of a message ({got} of {want} bytes)")]
    Truncated {
        /// Bytes of the frame (header or body) that arrived.
        got: u64,
        /// Bytes the frame needed.
        want: u64,
    },
    /// A frame claimed a body longer than the 16 GiB limit.
    #[error("a message of {len} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// The length the frame claimed.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// The bytes on the connection are not a multiproc message frame.
    #[error("not a multiproc message: {0}")]
    Malformed(String),
    /// An earlier receive found a broken frame; the connection can no
    /// longer be read.
    #[error("the connection is unreadable after an earlier broken message")]
    Broken,
    /// The message did not fit in the buffer given to
    /// [`recv_bytes_into`](Connection::recv_bytes_into) (Python's
    /// `BufferTooShort`). The whole message is here.
    #[error("a message of {} bytes does not fit in a buffer of {capacity} bytes", .message.len())]
    BufferTooShort {
        /// The whole message.
        message: Vec<u8>,
        /// The length of the buffer that was given.
        capacity: usize,
    },
    /// A message's header claims more bytes than the maximum given to
    /// [`recv_bytes_max`](Connection::recv_bytes_max) (Python's
    /// `OSError("bad message length")`). Only the header was read; the
    /// body is left unread, so, as in Python, the connection can no longer
    /// be read: every later receive fails with
    /// [`Broken`](ConnectionError::Broken).
    #[error("a message of {len} bytes exceeds the maximum of {max} bytes asked for")]
    LongerThanMax {
        /// The length the message's header claims.
        len: u64,
        /// The maximum that was given.
        max: u64,
    },
    /// A whole message arrived but does not decode as the connection's type:
    /// its bytes do not fit the type ([`DecodeError::Invalid`]), a length
    /// inside it claims more bytes than the message holds
    /// ([`DecodeError::LengthPastEnd`]), or it nests deeper than
    /// [`MAX_DEPTH`](crate::MAX_DEPTH) levels ([`DecodeError::TooDeep`]).
    /// The limit keeps any decode within about 1.2 MiB of stack even in an
    /// unoptimised build, so a thread with the default 2 MiB stack survives
    /// any input. The message was consumed.
    #[error("the message does not decode as the expected type: {0}")]
    Decode(#[source] DecodeError),
    /// The value could not be encoded (a handle, such as a `Connection`,
    /// can only be passed to a child as a task argument).
    #[error("the value could not be encoded: {0}")]
    Encode(String),
    /// The operating system refused: `BrokenPipe` when sending to an end
    /// that is closed everywhere.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// An offset or size outside the buffer given to
    /// [`send_bytes_range`](Connection::send_bytes_range) or
    /// [`recv_bytes_into_at`](Connection::recv_bytes_into_at) (Python's
    /// `ValueError`); nothing was sent or received.
    #[error("offset {offset} and size {size:?} do not fit a buffer of {len} bytes")]
    InvalidRange {
        /// The offset given.
        offset: usize,
        /// The size given, if any.
        size: Option<usize>,
        /// The buffer's length.
        len: usize,
    },
}

/// One end of a pipe: sends and receives whole messages, typed values of
/// `T` or raw bytes (Python's `multiprocessing.connection.Connection`).
///
/// `M` says what the end may do: [`Duplex`] (both ends of [`pipe`]),
/// [`ReadOnly`] or [`WriteOnly`] (the ends of [`pipe_one_way`]); sending on
/// a read-only end does not compile.
///
/// A connection can be an argument of a [`#[process_task]`](crate::process_task)
/// (or a field of a process type): the child gets its own copy of the
/// end, and the parent keeps its own. It cannot be sent over another
/// connection or encoded anywhere else. The other end reports
/// [`ConnectionError::Eof`] once *every* copy of this end is dropped.
///
/// A receive takes exactly one message off the socket and keeps nothing of
/// the next one, so copies of an end, in this process or in children, can
/// take turns reading it (alone, or under a lock): every message reaches
/// exactly one of them, and an end can be passed to a child at any time.
///
/// A connection is `Send` but not `Sync`: one thread uses an end at a time.
/// All blocking calls retry on `EINTR`; [`poll`](Connection::poll) has a
/// timeout.
///
/// ```
/// use multiproc::{Builder, Connection, process_task};
///
/// #[process_task]
/// fn double(conn: Connection<u64>) {
///     while let Ok(n) = conn.recv() {
///         conn.send(&(2 * n)).unwrap();
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (here, there) = multiproc::pipe()?;
/// let child = Builder::new(double, (there,)).start()?;
/// here.send(&21)?;
/// assert_eq!(here.recv()?, 42);
/// drop(here); // the child sees EOF and returns
/// child.join()?;
/// # Ok(())
/// # }
/// ```
pub struct Connection<T, M = Duplex> {
    fd: OwnedFd,
    /// Set after a broken frame: the stream position is lost.
    broken: Cell<bool>,
    /// Whether a receive may busy-wait a moment before it blocks (not
    /// where many ends wait at once on few CPUs: a pool's).
    spin: Cell<bool>,
    /// An OS pipe's end (Unix), which takes `read` and `write` but not the
    /// socket calls: messages cost about half what they do on a socket.
    os_pipe: bool,
    _marker: Marker<T, M>,
}

/// The longest body taken in the same read as its header, through a
/// buffer on the stack, when a look at the socket finds the whole frame
/// queued.
const SHORT_BODY: usize = 512;

/// A frame's header and, when it is short and already queued, its body.
type ShortFrame = [u8; HEADER_LEN + SHORT_BODY];

/// Carries `T` and `M` without owning either: a connection is `Send`
/// whatever `T` is.
type Marker<T, M> = PhantomData<(fn(T) -> T, M)>;

/// A duplex pipe: two connected ends that can both send and receive
/// (Python's `Pipe()`).
///
/// ```
/// let (a, b) = multiproc::pipe::<String>()?;
/// a.send(&"ping".to_string())?;
/// assert_eq!(b.recv()?, "ping");
/// b.send(&"pong".to_string())?;
/// assert_eq!(a.recv()?, "pong");
/// # Ok::<(), multiproc::ConnectionError>(())
/// ```
pub fn pipe<T>() -> io::Result<(Connection<T>, Connection<T>)> {
    let (a, b) = sys::socketpair()?;
    Ok((Connection::new(a), Connection::new(b)))
}

/// A one-way pipe: `(reader, writer)`, as Python's `Pipe(duplex=False)`.
/// The reader cannot send and the writer cannot receive.
///
/// ```
/// let (reader, writer) = multiproc::pipe_one_way::<Vec<u32>>()?;
/// writer.send(&vec![1, 2, 3])?;
/// assert_eq!(reader.recv()?, [1, 2, 3]);
/// # Ok::<(), multiproc::ConnectionError>(())
/// ```
pub fn pipe_one_way<T>() -> io::Result<(Connection<T, ReadOnly>, Connection<T, WriteOnly>)> {
    let (a, b) = sys::socketpair()?;
    Ok((Connection::new(a), Connection::new(b)))
}

/// A one-way channel over the cheapest transport there is for it: on Unix
/// an OS pipe, when this process ignores SIGPIPE (a pipe has no per-write
/// way to refuse it), else a socket. For the crate's own links (a pool's
/// to its workers), whose round trips are most of a small task's cost.
pub(crate) fn fast_one_way<T>() -> io::Result<(Connection<T, ReadOnly>, Connection<T, WriteOnly>)> {
    let (a, b) = if sys::sigpipe_ignored() { sys::one_way()? } else { sys::socketpair()? };
    Ok((Connection::new(a), Connection::new(b)))
}

impl<T, M> Connection<T, M> {
    /// Whether receives may busy-wait a moment before they block.
    pub(crate) fn set_spin(&self, spin: bool) {
        self.spin.set(spin);
    }

    /// Waits until the other end has read everything sent on this end:
    /// what a process sends just before it ends then reaches the other end
    /// on every system (Wine has been seen to drop what a named pipe still
    /// held when its writer exited).
    pub(crate) fn wait_taken(&self) -> Result<(), ConnectionError> {
        Ok(sys::wait_taken(self.fd.as_fd())?)
    }

    /// Writes one frame's parts with the call this end's kind takes.
    fn write_parts(&self, parts: &[&[u8]]) -> io::Result<()> {
        match self.os_pipe {
            true => sys::write_vectored(self.fd.as_fd(), parts),
            false => sys::send_vectored(self.fd.as_fd(), parts),
        }
    }

    fn new(fd: OwnedFd) -> Self {
        let os_pipe = sys::is_pipe(fd.as_fd());
        Connection { fd, broken: Cell::new(false), spin: Cell::new(true), os_pipe, _marker: PhantomData }
    }

    /// Another copy of this end (a duplicated descriptor). Passing a
    /// connection to a child moves it; keep a copy to go on using the end
    /// here too. The other end sees [`ConnectionError::Eof`] only once every
    /// copy is dropped.
    ///
    /// ```
    /// let (reader, writer) = multiproc::pipe_one_way::<u8>()?;
    /// let copy = writer.try_clone()?;
    /// drop(writer);
    /// copy.send(&1)?;
    /// assert_eq!(reader.recv()?, 1);
    /// # Ok::<(), multiproc::ConnectionError>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Connection::new(self.fd.try_clone()?))
    }

    /// Reads until `buf` is full or EOF; returns how many bytes were read.
    fn read_full(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match sys::recv(self.fd.as_fd(), &mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(n)
    }
}

impl<T: Serialize, M: Writable> Connection<T, M> {
    /// Sends `value` as one message. Returns once the whole message is in
    /// the kernel's buffer (blocking while it is full), so a later kill of
    /// this process cannot lose it. Sending to an end that is closed
    /// everywhere is an error ([`io::ErrorKind::BrokenPipe`]), never a
    /// SIGPIPE.
    ///
    /// ```
    /// let (a, b) = multiproc::pipe::<(u8, String)>()?;
    /// a.send(&(1, "one".into()))?;
    /// assert_eq!(b.recv()?, (1, "one".to_string()));
    /// # Ok::<(), multiproc::ConnectionError>(())
    /// ```
    pub fn send(&self, value: &T) -> Result<(), ConnectionError> {
        let body = wire::encode(value).map_err(|e| ConnectionError::Encode(e.0))?;
        self.send_bytes(&body)
    }
}

impl<T, M: Writable> Connection<T, M> {
    /// Sends `buf[offset..offset + size]` as one message (Python's
    /// `send_bytes(buf, offset, size)`; `size: None` means to the end). An
    /// offset or size that does not fit is [`ConnectionError::InvalidRange`];
    /// `offset == buf.len()` sends an empty message.
    ///
    /// ```
    /// use multiproc::ConnectionError;
    ///
    /// let (a, b) = multiproc::pipe::<()>()?;
    /// let buf = b"abcdefghijklmnopqrstuvwxyz";
    /// a.send_bytes_range(buf, 22, Some(4))?;
    /// a.send_bytes_range(buf, 26, None)?;
    /// assert_eq!(b.recv_bytes()?, b"wxyz");
    /// assert_eq!(b.recv_bytes()?, b"");
    /// for (offset, size) in [(27, None), (22, Some(5)), (26, Some(1))] {
    ///     assert!(matches!(a.send_bytes_range(buf, offset, size), Err(ConnectionError::InvalidRange { .. })));
    /// }
    /// # Ok::<(), ConnectionError>(())
    /// ```
    pub fn send_bytes_range(&self, buf: &[u8], offset: usize, size: Option<usize>) -> Result<(), ConnectionError> {
        let len = buf.len();
        let end = match size {
            None if offset <= len => len,
            Some(n) if offset.checked_add(n).is_some_and(|e| e <= len) => offset + n,
            _ => return Err(ConnectionError::InvalidRange { offset, size, len }),
        };
        self.send_bytes(&buf[offset..end])
    }

    /// Sends `bytes` as one raw message, bypassing the codec (Python's
    /// `send_bytes`; for `buf[offset:offset+size]`, pass the sub-slice).
    /// An empty slice is a message too.
    ///
    /// ```
    /// let (a, b) = multiproc::pipe::<()>()?;
    /// a.send_bytes(b"a")?;
    /// a.send_bytes(b"")?;
    /// a.send_bytes(&b"xcdx"[1..3])?;
    /// assert_eq!(b.recv_bytes()?, b"a");
    /// assert_eq!(b.recv_bytes()?, b"");
    /// assert_eq!(b.recv_bytes()?, b"cd");
    /// # Ok::<(), multiproc::ConnectionError>(())
    /// ```
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), ConnectionError> {
        self.send_parts(&[], bytes)
    }

    /// Sends one raw message: `head` then `body`, not joined first.
    pub(crate) fn send_parts(&self, head: &[u8], body: &[u8]) -> Result<(), ConnectionError> {
        let len = head.len() + body.len();
        if len as u64 > MAX_MESSAGE_LEN {
            return Err(ConnectionError::TooLarge { len: len as u64, limit: MAX_MESSAGE_LEN });
        }
        let header = wire::header(FrameKind::Message, len as u64);
        // Header and body leave in one system call, so the receiver wakes
        // once: a short message is copied behind its header on the stack,
        // a long one goes out as parts of one `sendmsg`, uncopied.
        const SHORT: usize = 512;
        if len <= SHORT {
            let mut frame = [0u8; HEADER_LEN + SHORT];
            frame[..HEADER_LEN].copy_from_slice(&header);
            frame[HEADER_LEN..HEADER_LEN + head.len()].copy_from_slice(head);
            frame[HEADER_LEN + head.len()..HEADER_LEN + len].copy_from_slice(body);
            self.write_parts(&[&frame[..HEADER_LEN + len]])?;
        } else {
            self.write_parts(&[&header, head, body])?;
        }
        Ok(())
    }
}

impl<T: DeserializeOwned, M: Readable> Connection<T, M> {
    /// Receives one message and decodes it as `T`, blocking until one
    /// arrives. Messages sent before the other end closed are delivered
    /// first; then [`ConnectionError::Eof`].
    ///
    /// ```
    /// use multiproc::ConnectionError;
    ///
    /// let (a, b) = multiproc::pipe::<u32>()?;
    /// a.send(&5)?;
    /// drop(a);
    /// assert_eq!(b.recv()?, 5);
    /// assert!(matches!(b.recv(), Err(ConnectionError::Eof)));
    /// # Ok::<(), ConnectionError>(())
    /// ```
    pub fn recv(&self) -> Result<T, ConnectionError> {
        let body = self.recv_bytes()?;
        wire::decode(&body).map_err(ConnectionError::Decode)
    }
}

impl<T, M: Readable> Connection<T, M> {
    /// Receives one raw message, blocking until one arrives.
    ///
    /// ```
    /// let (a, b) = multiproc::pipe::<()>()?;
    /// a.send_bytes(&[1, 2, 3])?;
    /// assert_eq!(b.recv_bytes()?, [1, 2, 3]);
    /// # Ok::<(), multiproc::ConnectionError>(())
    /// ```
    pub fn recv_bytes(&self) -> Result<Vec<u8>, ConnectionError> {
        self.recv_bytes_in(|len| Vec::with_capacity(len.min(INITIAL_RESERVE) as usize))
    }

    /// Receives one raw message into the buffer `buffer` gives for its
    /// length (emptied first; it grows as the body comes if it is too
    /// small): a loop that receives messages of similar sizes into
    /// buffers it reuses allocates (and faults in) their memory once.
    pub(crate) fn recv_bytes_in(&self, buffer: impl FnOnce(u64) -> Vec<u8>) -> Result<Vec<u8>, ConnectionError> {
        let mut frame = [0u8; HEADER_LEN + SHORT_BODY];
        let (len, whole) = self.read_header(&mut frame, u64::MAX)?;
        let mut body = buffer(len);
        body.clear();
        if whole {
            body.extend_from_slice(&frame[HEADER_LEN..HEADER_LEN + len as usize]);
            return Ok(body);
        }
        self.guard(|| self.read_body(len, &mut body))?;
        Ok(body)
    }

    /// Receives one raw message of at most `max` bytes, blocking until one
    /// arrives (Python's `recv_bytes(maxlength)`). A message whose header
    /// claims more is [`ConnectionError::LongerThanMax`]: its body is not
    /// read and nothing is reserved for it, and the connection is then
    /// unusable ([`ConnectionError::Broken`]), as in Python.
    ///
    /// ```
    /// use multiproc::ConnectionError;
    ///
    /// let (a, b) = multiproc::pipe::<()>()?;
    /// a.send_bytes(b"four")?;
    /// assert_eq!(b.recv_bytes_max(4)?, b"four");
    /// a.send_bytes(b"fifteen bytes!!")?;
    /// assert!(matches!(b.recv_bytes_max(8), Err(ConnectionError::LongerThanMax { len: 15, max: 8 })));
    /// assert!(matches!(b.recv_bytes(), Err(ConnectionError::Broken)));
    /// # Ok::<(), ConnectionError>(())
    /// ```
    pub fn recv_bytes_max(&self, max: usize) -> Result<Vec<u8>, ConnectionError> {
        let mut frame = [0u8; HEADER_LEN + SHORT_BODY];
        let (len, whole) = self.read_header(&mut frame, max as u64)?;
        if len > max as u64 {
            self.broken.set(true);
            return Err(ConnectionError::LongerThanMax { len, max: max as u64 });
        }
        if whole {
            return Ok(frame[HEADER_LEN..HEADER_LEN + len as usize].to_vec());
        }
        let mut body = Vec::with_capacity(len.min(INITIAL_RESERVE) as usize);
        self.guard(|| self.read_body(len, &mut body))?;
        Ok(body)
    }

    /// Receives one raw message into `buf` starting at `offset` (Python's
    /// `recv_bytes_into(buf, offset)`) and returns its length. An offset past
    /// the end is [`ConnectionError::InvalidRange`] and receives nothing; a
    /// message longer than the room left is
    /// [`ConnectionError::BufferTooShort`], carrying the whole message.
    ///
    /// ```
    /// use multiproc::ConnectionError;
    ///
    /// let (a, b) = multiproc::pipe::<()>()?;
    /// let mut buf = *b"......";
    /// a.send_bytes(b"hi")?;
    /// assert_eq!(b.recv_bytes_into_at(&mut buf, 3)?, 2);
    /// assert_eq!(&buf, b"...hi.");
    /// assert!(matches!(b.recv_bytes_into_at(&mut buf, 7), Err(ConnectionError::InvalidRange { .. })));
    /// # Ok::<(), ConnectionError>(())
    /// ```
    pub fn recv_bytes_into_at(&self, buf: &mut [u8], offset: usize) -> Result<usize, ConnectionError> {
        let len = buf.len();
        match buf.get_mut(offset..) {
            Some(room) => self.recv_bytes_into(room),
            None => Err(ConnectionError::InvalidRange { offset, size: None, len }),
        }
    }

    /// Receives one raw message into the front of `buf` and returns its
    /// length (Python's `recv_bytes_into`; for an offset, pass
    /// `&mut buf[offset..]`). A message longer than `buf` is consumed and
    /// returned whole in [`ConnectionError::BufferTooShort`]; `buf` is then
    /// left as it was.
    ///
    /// ```
    /// use multiproc::ConnectionError;
    ///
    /// let (a, b) = multiproc::pipe::<()>()?;
    /// let mut buf = [0u8; 4];
    /// a.send_bytes(b"abc")?;
    /// assert_eq!(b.recv_bytes_into(&mut buf[1..])?, 3);
    /// assert_eq!(&buf, b"\0abc");
    /// a.send_bytes(b"too long")?;
    /// match b.recv_bytes_into(&mut buf) {
    ///     Err(ConnectionError::BufferTooShort { message, capacity }) => {
    ///         assert_eq!((message.as_slice(), capacity), (&b"too long"[..], 4));
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), ConnectionError>(())
    /// ```
    pub fn recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize, ConnectionError> {
        let mut frame = [0u8; HEADER_LEN + SHORT_BODY];
        let (len, whole) = self.read_header(&mut frame, u64::MAX)?;
        if whole {
            let body = &frame[HEADER_LEN..HEADER_LEN + len as usize];
            if body.len() > buf.len() {
                return Err(ConnectionError::BufferTooShort { message: body.to_vec(), capacity: buf.len() });
            }
            buf[..body.len()].copy_from_slice(body);
            return Ok(body.len());
        }
        if len > buf.len() as u64 {
            let mut message = Vec::with_capacity(len.min(INITIAL_RESERVE) as usize);
            self.guard(|| self.read_body(len, &mut message))?;
            return Err(ConnectionError::BufferTooShort { message, capacity: buf.len() });
        }
        let target = &mut buf[..len as usize];
        self.guard(|| {
            let got = self.read_full(target)?;
            if got < target.len() {
                return Err(ConnectionError::Truncated { got: got as u64, want: len });
            }
            Ok(())
        })?;
        Ok(len as usize)
    }

    /// Whether a receive would not block: a message (even an empty one) is
    /// waiting, or the other end is closed everywhere. Waits up to
    /// `timeout` for that (`None`: forever; `Some(Duration::ZERO)`: just
    /// look). Polling consumes nothing.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (a, b) = multiproc::pipe::<()>()?;
    /// assert!(!b.poll(Some(Duration::from_millis(10)))?);
    /// a.send_bytes(b"")?;
    /// assert!(b.poll(Some(Duration::ZERO))?);
    /// assert!(b.poll(None)?, "polling again still sees the message");
    /// assert_eq!(b.recv_bytes()?, b"");
    /// # Ok::<(), multiproc::ConnectionError>(())
    /// ```
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool, ConnectionError> {
        if self.broken.get() {
            return Ok(true);
        }
        Ok(sys::wait_readable(self.fd.as_fd(), timeout)?)
    }

    /// Reads and checks the next frame's header and returns the body
    /// length, and whether the body was read too, into `frame` behind the
    /// header. It is when a look at the socket (while waiting for data)
    /// finds the whole frame queued, its body no longer than
    /// [`SHORT_BODY`] or `inline_max`; then one read takes exactly that
    /// frame. Otherwise only the header is read. Either way nothing of the
    /// next message is taken off the socket.
    fn read_header(&self, frame: &mut ShortFrame, inline_max: u64) -> Result<(u64, bool), ConnectionError> {
        if self.broken.get() {
            return Err(ConnectionError::Broken);
        }
        if let Some(len) = self.look_for_frame(frame)
            && len <= inline_max
        {
            let want = HEADER_LEN + len as usize;
            return self.guard(|| match self.read_full(&mut frame[..want])? {
                n if n < want => Err(ConnectionError::Truncated { got: n as u64, want: want as u64 }),
                _ => Ok((len, true)),
            });
        }
        self.guard(|| {
            let (h, _) = frame.split_first_chunk_mut::<HEADER_LEN>().expect("a frame holds a header");
            match self.read_full(h)? {
                0 => Err(ConnectionError::Eof),
                n if n < HEADER_LEN => Err(ConnectionError::Truncated { got: n as u64, want: HEADER_LEN as u64 }),
                _ => parse_header(h).map(|len| (len, false)),
            }
        })
    }

    /// Waits for data and looks at it without consuming it: copies what is
    /// queued into `frame` and returns the body length when that is a whole
    /// message frame short enough for `frame`. Anything else (part of a
    /// frame, a long or bad one, EOF, an error, or on Windows no data yet)
    /// is left for the ordinary reads to handle.
    fn look_for_frame(&self, frame: &mut ShortFrame) -> Option<u64> {
        if self.os_pipe {
            // A pipe cannot be looked at without a read: the header is
            // read as it comes.
            return None;
        }
        let spun = if self.spin.get() && spinning_pays() { self.spin_peek(frame) } else { None };
        let n = match spun {
            Some(n) => n,
            None => self.peek_wait(frame)?,
        };
        let (h, _) = frame.split_first_chunk::<HEADER_LEN>().expect("a frame holds a header");
        if n < HEADER_LEN {
            return None;
        }
        parse_header(h).ok().filter(|&len| HEADER_LEN as u64 + len <= n as u64)
    }

    /// Busy-waits up to [`SPIN_BUDGET`] for data to be queued (a pipe's
    /// end cannot be peeked at: it is polled).
    fn spin_ready(&self) {
        if !self.os_pipe {
            self.spin_peek(&mut [0u8; 1]);
            return;
        }
        let start = std::time::Instant::now();
        while !sys::wait_readable(self.fd.as_fd(), Some(Duration::ZERO)).unwrap_or(true)
            && start.elapsed() < SPIN_BUDGET
        {
            std::hint::spin_loop();
        }
    }

    /// Busy-waits up to [`SPIN_BUDGET`] for data, peeking at it; returns
    /// how many bytes the peek copied into `frame` (0 at EOF), or `None`
    /// if nothing came.
    fn spin_peek(&self, frame: &mut [u8]) -> Option<usize> {
        let start = std::time::Instant::now();
        loop {
            match sys::peek(self.fd.as_fd(), frame) {
                Ok(Some(n)) => return Some(n),
                Ok(None) if start.elapsed() < SPIN_BUDGET => std::hint::spin_loop(),
                _ => return None,
            }
        }
    }

    /// Blocks until data (or EOF) is queued and peeks at it; returns how
    /// many bytes the peek copied into `frame`.
    #[cfg(unix)]
    fn peek_wait(&self, frame: &mut ShortFrame) -> Option<usize> {
        sys::peek_wait(self.fd.as_fd(), frame).ok()
    }

    /// A pipe cannot be waited on without a read in flight, so nothing is
    /// peeked at: the header is read as it comes.
    #[cfg(windows)]
    fn peek_wait(&self, _frame: &mut ShortFrame) -> Option<usize> {
        None
    }

    /// Appends a body of `len` bytes to `out`, read straight into it and
    /// growing it as bytes arrive (so a lying length costs nothing).
    fn read_body(&self, len: u64, out: &mut Vec<u8>) -> Result<(), ConnectionError> {
        let mut got = 0u64;
        while got < len {
            let left = len - got;
            // Room for at most what is left, at most doubling what came.
            out.reserve(left.min(got.max(INITIAL_RESERVE)) as usize);
            match sys::recv_into_spare(self.fd.as_fd(), out, left.min(usize::MAX as u64) as usize)? {
                0 => return Err(ConnectionError::Truncated { got, want: len }),
                n => got += n as u64,
            }
        }
        Ok(())
    }

    /// Runs a read; any failure but a clean EOF between messages leaves
    /// the stream somewhere inside a frame, so the connection is marked
    /// broken.
    fn guard<R>(&self, read: impl FnOnce() -> Result<R, ConnectionError>) -> Result<R, ConnectionError> {
        read().inspect_err(|e| {
            if !matches!(e, ConnectionError::Eof) {
                self.broken.set(true);
            }
        })
    }
}

/// Checks a frame header; returns the body length.
fn parse_header(h: &[u8; HEADER_LEN]) -> Result<u64, ConnectionError> {
    match wire::parse_header(h) {
        Ok((FrameKind::Message, len)) => Ok(len),
        Ok((kind, _)) => Err(ConnectionError::Malformed(format!("a {kind:?} frame"))),
        Err(FrameError::TooLarge(len)) => Err(ConnectionError::TooLarge { len, limit: MAX_MESSAGE_LEN }),
        Err(e) => Err(ConnectionError::Malformed(e.to_string())),
    }
}

/// How long a receive busy-waits for a message before blocking.
const SPIN_BUDGET: Duration = Duration::from_micros(50);

/// Busy-waiting only helps when the sender can run on another CPU at the
/// same time; on one CPU it would only delay the sender.
pub(crate) fn spinning_pays() -> bool {
    static PAYS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PAYS.get_or_init(|| crate::usable_cpu_count().get() > 1)
}

impl<T, M> fmt::Debug for Connection<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.fd)
            .field("mode", &std::any::type_name::<M>().rsplit("::").next().unwrap_or(""))
            .field("broken", &self.broken.get())
            .finish()
    }
}

/// The end's socket, for use with other APIs (`poll`ing several at once,
/// say). Reading or writing it directly breaks the framing.
///
/// ```
/// use std::os::fd::AsFd;
///
/// let (a, _b) = multiproc::pipe::<()>()?;
/// let copy = a.as_fd().try_clone_to_owned()?;
/// # drop(copy);
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
impl<T, M> AsFd for Connection<T, M> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The end's pipe handle, for `multiproc::wait` (crate-internal on
/// Windows).
#[cfg(windows)]
#[cfg_attr(docsrs, doc(cfg(windows)))]
impl<T, M> AsFd for Connection<T, M> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Gives up the framing and returns the end's socket.
///
/// ```
/// use std::io::Write;
/// use std::os::fd::OwnedFd;
/// use std::os::unix::net::UnixStream;
///
/// let (a, b) = multiproc::pipe::<()>()?;
/// let mut raw = UnixStream::from(OwnedFd::from(a));
/// raw.write_all(b"not a frame, not a frame")?;
/// assert!(matches!(b.recv_bytes(), Err(multiproc::ConnectionError::Malformed(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
impl<T, M> From<Connection<T, M>> for OwnedFd {
    fn from(conn: Connection<T, M>) -> OwnedFd {
        conn.fd
    }
}

/// Wraps a connected stream socket (one end of a `socketpair`, a
/// `UnixStream`) whose peer speaks this framing.
///
/// ```
/// use std::os::fd::OwnedFd;
/// use std::os::unix::net::UnixStream;
///
/// use multiproc::Connection;
///
/// let (x, y) = UnixStream::pair()?;
/// let (a, b): (Connection<String>, Connection<String>) = (OwnedFd::from(x).into(), OwnedFd::from(y).into());
/// a.send(&"hi".to_string())?;
/// assert_eq!(b.recv()?, "hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
impl<T, M> From<OwnedFd> for Connection<T, M> {
    fn from(fd: OwnedFd) -> Self {
        Connection::new(fd)
    }
}

/// The end's pipe handle, for use with other APIs. Reading or writing it
/// directly breaks the framing; it is open for overlapped I/O.
///
/// ```
/// use std::os::windows::io::AsHandle;
///
/// let (a, _b) = multiproc::pipe::<()>()?;
/// let copy = a.as_handle().try_clone_to_owned()?;
/// # drop(copy);
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(windows)]
#[cfg_attr(docsrs, doc(cfg(windows)))]
impl<T, M> std::os::windows::io::AsHandle for Connection<T, M> {
    fn as_handle(&self) -> std::os::windows::io::BorrowedHandle<'_> {
        self.fd.as_fd()
    }
}

/// Gives up the framing and returns the end's pipe handle (open for
/// overlapped I/O).
#[cfg(windows)]
#[cfg_attr(docsrs, doc(cfg(windows)))]
impl<T, M> From<Connection<T, M>> for std::os::windows::io::OwnedHandle {
    fn from(conn: Connection<T, M>) -> Self {
        conn.fd
    }
}

/// Wraps a pipe handle whose peer speaks this framing (an end given up
/// with `OwnedHandle::from(connection)`, say).
///
/// ```
/// use std::os::windows::io::OwnedHandle;
///
/// use multiproc::Connection;
///
/// let (a, b) = multiproc::pipe::<String>()?;
/// let a: Connection<String> = OwnedHandle::from(a).into();
/// a.send(&"hi".to_string())?;
/// assert_eq!(b.recv()?, "hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(windows)]
#[cfg_attr(docsrs, doc(cfg(windows)))]
impl<T, M> From<std::os::windows::io::OwnedHandle> for Connection<T, M> {
    fn from(h: std::os::windows::io::OwnedHandle) -> Self {
        Connection::new(h)
    }
}

/// Encodes the end as an index into the handle table of a child being
/// started; only possible while a task's arguments are encoded (see
/// [`Connection`]). Anywhere else it is an error.
///
/// ```
/// let (a, _b) = multiproc::pipe::<()>()?;
/// let (c, _d) = multiproc::pipe::<multiproc::Connection<()>>()?;
/// assert!(matches!(c.send(&a), Err(multiproc::ConnectionError::Encode(_))));
/// # Ok::<(), std::io::Error>(())
/// ```
impl<T, M> Serialize for Connection<T, M> {
    #[cfg_attr(
        unix,
        allow(clippy::useless_conversion, reason = "a passed handle is an `OwnedFd` on Unix, not on Windows")
    )]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let index = handles::share(|| self.fd.try_clone().map(Into::into)).map_err(serde::ser::Error::custom)?;
        serializer.serialize_u32(index)
    }
}

/// Takes the end the parent passed at this index, in a child that is
/// decoding its arguments. Anywhere else it is an error.
///
/// ```
/// use multiproc::{Builder, Connection, process_task};
///
/// #[process_task]
/// fn hello(conn: Connection<String>) {
///     conn.send(&"hello from the child".to_string()).unwrap();
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (here, there) = multiproc::pipe()?;
/// Builder::new(hello, (there,)).start()?.join()?;
/// assert_eq!(here.recv()?, "hello from the child");
/// # Ok(())
/// # }
/// ```
impl<'de, T, M> Deserialize<'de> for Connection<T, M> {
    #[cfg_attr(
        unix,
        allow(clippy::useless_conversion, reason = "a passed handle is an `OwnedFd` on Unix, not on Windows")
    )]
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let index = u32::deserialize(deserializer)?;
        let fd = handles::claim(index).map_err(serde::de::Error::custom)?;
        let fd = OwnedFd::try_from(fd).map_err(serde::de::Error::custom)?;
        Ok(Connection::new(fd))
    }
}
