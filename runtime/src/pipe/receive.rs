//! Receiving: a message's header is read, then exactly its body (a short
//! one into a buffer on the stack, a long one straight into its own), and
//! a receive may busy-wait a moment first where that pays.

use std::time::Duration;

use super::{
    AsFd, Connection, ConnectionError, HEADER_LEN, INITIAL_RESERVE, MAX_MESSAGE_LEN, Readable, SHORT_BODY, ShortFrame,
    sys,
};
use crate::wire::{self, FrameError, FrameKind};

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
        let mut frame = [0u8; HEADER_LEN + SHORT_BODY];
        let (len, whole) = self.read_header(&mut frame, u64::MAX)?;
        if whole {
            return Ok(frame[HEADER_LEN..HEADER_LEN + len as usize].to_vec());
        }
        let mut body = Vec::with_capacity(len.min(INITIAL_RESERVE) as usize);
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
    /// header: it is when it is no longer than [`SHORT_BODY`] and
    /// `inline_max`. Nothing of the next message is taken off the channel
    /// (another process may read it): a header is read, then exactly its
    /// body, two reads a message however many are queued.
    fn read_header(&self, frame: &mut ShortFrame, inline_max: u64) -> Result<(u64, bool), ConnectionError> {
        if self.broken.get() {
            return Err(ConnectionError::Broken);
        }
        self.guard(|| {
            let (h, body) = frame.split_first_chunk_mut::<HEADER_LEN>().expect("a frame holds a header");
            let spun = if self.spin.get() && spinning_pays() { self.spin_read(h) } else { 0 };
            let n = spun + self.read_full(&mut h[spun..])?;
            match n {
                0 => return Err(ConnectionError::Eof),
                n if n < HEADER_LEN => {
                    return Err(ConnectionError::Truncated { got: n as u64, want: HEADER_LEN as u64 });
                }
                _ => {}
            }
            let len = parse_header(h)?;
            if len > (SHORT_BODY as u64).min(inline_max) {
                return Ok((len, false));
            }
            let want = len as usize;
            match self.read_full(&mut body[..want])? {
                got if got < want => Err(ConnectionError::Truncated { got: got as u64, want: len }),
                _ => Ok((len, true)),
            }
        })
    }

    /// Busy-waits up to [`SPIN_BUDGET`] for the first bytes of `h` and
    /// returns how many were read into it (0 if none came, or at EOF: the
    /// blocking read that follows sees it). An OS pipe's end is polled
    /// instead, and nothing is read.
    fn spin_read(&self, h: &mut [u8]) -> usize {
        if self.os_pipe {
            self.spin_ready();
            return 0;
        }
        let start = std::time::Instant::now();
        loop {
            match sys::recv_nowait(self.fd.as_fd(), h) {
                Ok(Some(n)) => return n,
                Ok(None) if start.elapsed() < SPIN_BUDGET => std::hint::spin_loop(),
                _ => return 0,
            }
        }
    }

    /// Busy-waits up to [`SPIN_BUDGET`] for data to be queued (or EOF),
    /// polling without reading.
    pub(super) fn spin_ready(&self) {
        let start = std::time::Instant::now();
        while !sys::wait_readable(self.fd.as_fd(), Some(Duration::ZERO)).unwrap_or(true)
            && start.elapsed() < SPIN_BUDGET
        {
            std::hint::spin_loop();
        }
    }

    /// Appends a body of `len` bytes to `out`, read straight into it and
    /// growing it as bytes arrive (so a lying length costs nothing).
    pub(super) fn read_body(&self, len: u64, out: &mut Vec<u8>) -> Result<(), ConnectionError> {
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
    pub(super) fn guard<R>(&self, read: impl FnOnce() -> Result<R, ConnectionError>) -> Result<R, ConnectionError> {
        read().inspect_err(|e| {
            if !matches!(e, ConnectionError::Eof) {
                self.broken.set(true);
            }
        })
    }
}

/// Checks a frame header; returns the body length.
pub(super) fn parse_header(h: &[u8; HEADER_LEN]) -> Result<u64, ConnectionError> {
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
