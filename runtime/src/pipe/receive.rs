//! Receiving: a message's header is looked at (a peek where the channel
//! allows) so that a short message is taken in one read, the body of a
//! long one goes straight into its buffer, and a receive may busy-wait a
//! moment first where that pays.

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
    pub(super) fn spin_ready(&self) {
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
    pub(super) fn spin_peek(&self, frame: &mut [u8]) -> Option<usize> {
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
