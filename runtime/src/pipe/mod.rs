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
use std::io;
use std::marker::PhantomData;
#[cfg(unix)]
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::DecodeError;
use crate::sys::imp as sys;
#[cfg(windows)]
use crate::sys::imp::pipe::{AsFd, BorrowedFd, OwnedFd};
use crate::wire::{self, FrameKind, HEADER_LEN};

/// The longest message a connection accepts: 16 GiB.
const MAX_MESSAGE_LEN: u64 = wire::MAX_FRAME_LEN;

/// The most memory reserved for a body before its bytes have arrived.
const INITIAL_RESERVE: u64 = 1 << 20;

mod inbox;
mod platform;
mod receive;

pub(crate) use inbox::Inbox;
pub(crate) use receive::spinning_pays;

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
