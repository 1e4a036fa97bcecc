//! The two inputs a decode reads from: a body held in memory ([`Slice`]),
//! and a body still arriving on a channel ([`Stream`]), read as the value
//! is decoded so that its bytes are copied once, from the channel into the
//! value's own buffers.

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

use bincode::de::read::Reader;
use bincode::error::DecodeError as BincodeError;

use super::config;
use crate::wire::guard::Input;

/// A body in memory.
pub(super) struct Slice<'b> {
    rest: Cell<&'b [u8]>,
}

impl<'b> Slice<'b> {
    pub(super) fn new(body: &'b [u8]) -> Self {
        Slice { rest: Cell::new(body) }
    }

    /// The bytes not yet read.
    pub(super) fn rest(&self) -> &'b [u8] {
        self.rest.get()
    }

    fn split(&self, len: usize) -> Result<&'b [u8], String> {
        let rest = self.rest.get();
        let (head, tail) =
            rest.split_at_checked(len).ok_or_else(|| format!("{len} bytes wanted, {} left", rest.len()))?;
        self.rest.set(tail);
        Ok(head)
    }
}

impl Input for &Slice<'_> {
    #[inline]
    fn left(&self) -> usize {
        self.rest.get().len()
    }

    fn read_len(&self) -> Result<u64, String> {
        let rest = self.rest.get();
        let (len, used) = bincode::decode_from_slice::<u64, _>(rest, config()).map_err(|e| super::decode_error(&e))?;
        self.rest.set(&rest[used..]);
        Ok(len)
    }

    fn take_owned(&self, len: usize) -> Result<Vec<u8>, String> {
        self.split(len).map(<[u8]>::to_vec)
    }

    fn take_lent<R>(&self, len: usize, f: impl FnOnce(&[u8]) -> R) -> Result<R, String> {
        self.split(len).map(f)
    }
}

/// bincode's view of a [`Slice`].
pub(super) struct SliceReader<'a, 'b>(pub(super) &'a Slice<'b>);

impl Reader for SliceReader<'_, '_> {
    #[inline]
    fn read(&mut self, bytes: &mut [u8]) -> Result<(), BincodeError> {
        let rest = self.0.rest.get();
        match rest.split_at_checked(bytes.len()) {
            Some((head, tail)) => {
                bytes.copy_from_slice(head);
                self.0.rest.set(tail);
                Ok(())
            }
            None => Err(BincodeError::UnexpectedEnd { additional: bytes.len() - rest.len() }),
        }
    }

    #[inline]
    fn peek_read(&mut self, n: usize) -> Option<&[u8]> {
        self.0.rest.get().get(..n)
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        let rest = self.0.rest.get();
        self.0.rest.set(&rest[n.min(rest.len())..]);
    }
}

/// Small reads are served from a buffer of this size; a read at least this
/// long goes straight from the channel into its destination.
const STREAM_BUF: usize = 64 * 1024;

/// What a [`Stream`] reads from: a reader that can also append to a
/// buffer's spare capacity without zeroing it first, where the channel
/// allows (the default zeroes, then reads).
pub(crate) trait Source: Read {
    /// Appends what is available, at most `max` bytes and no more than
    /// `out` has room for, blocking if nothing is; 0 means EOF.
    fn read_spare(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        let start = out.len();
        out.resize(start + max.min(out.capacity() - start).clamp(1, STREAM_BUF), 0);
        let got = loop {
            match self.read(&mut out[start..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        out.truncate(start + *got.as_ref().unwrap_or(&0));
        got
    }
}

impl Source for &[u8] {}
impl Source for io::Cursor<Vec<u8>> {}

impl<S: Source + ?Sized> Source for Box<S> {
    fn read_spare(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        (**self).read_spare(out, max)
    }
}

/// A byte buffer at least this long is faulted in by a second thread
/// while it is received (see `sys::populate_writable`).
const POPULATE_FROM: usize = 32 << 20;

/// A body of known length still arriving on `R`.
pub(crate) struct Stream<R> {
    state: RefCell<StreamState<R>>,
}

struct StreamState<R> {
    reader: R,
    /// Bytes read from `reader` and not yet consumed: `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    /// Bytes of the body still in `reader`.
    unread: u64,
    /// Why reading stopped early, if it did.
    failure: Option<io::Error>,
}

impl<R: Source> Stream<R> {
    /// The body of `len` bytes that `reader` is about to deliver.
    pub(crate) fn new(reader: R, len: u64) -> Self {
        Stream { state: RefCell::new(StreamState { reader, buf: Vec::new(), pos: 0, unread: len, failure: None }) }
    }

    /// Bytes of the body not yet consumed.
    pub(crate) fn left(&self) -> u64 {
        let s = self.state.borrow();
        (s.buf.len() - s.pos) as u64 + s.unread
    }

    /// Why the body stopped arriving, if it did.
    pub(crate) fn take_failure(&self) -> Option<io::Error> {
        self.state.borrow_mut().failure.take()
    }
}

impl<R: Source> StreamState<R> {
    fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The value claims more bytes than its frame has left: the frame is
    /// whole, the value is not a valid encoding.
    fn past_end(&self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, "the value runs past the end of its message")
    }

    /// The channel ended before the frame did.
    fn short(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the sender stopped with {} bytes still to come", self.unread),
        )
    }

    fn fail(&mut self, e: io::Error) -> String {
        let message = e.to_string();
        self.failure.get_or_insert(e);
        message
    }

    /// Reads more of the body into the buffer, until `want` bytes are
    /// buffered.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        if self.buffered() >= want {
            return Ok(());
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        while self.buf.len() < want {
            let room = (STREAM_BUF.max(want) - self.buf.len()).min(usize::try_from(self.unread).unwrap_or(usize::MAX));
            if room == 0 {
                return Err(self.past_end());
            }
            self.buf.reserve(room);
            let got = match self.reader.read_spare(&mut self.buf, room) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => other?,
            };
            if got == 0 {
                return Err(self.short());
            }
            self.unread -= got as u64;
        }
        Ok(())
    }

    /// Fills `dst`: from the buffer, then straight from the reader.
    fn read_into(&mut self, dst: &mut [u8]) -> io::Result<()> {
        let from_buf = self.buffered().min(dst.len());
        dst[..from_buf].copy_from_slice(&self.buf[self.pos..self.pos + from_buf]);
        self.pos += from_buf;
        let rest = &mut dst[from_buf..];
        if rest.is_empty() {
            return Ok(());
        }
        if rest.len() < STREAM_BUF {
            self.fill(rest.len())?;
            rest.copy_from_slice(&self.buf[self.pos..self.pos + rest.len()]);
            self.pos += rest.len();
            return Ok(());
        }
        if (rest.len() as u64) > self.unread {
            return Err(self.past_end());
        }
        self.reader
            .read_exact(rest)
            .map_err(|e| if e.kind() == io::ErrorKind::UnexpectedEof { self.short() } else { e })?;
        self.unread -= rest.len() as u64;
        Ok(())
    }

    /// Reads into `out` (whose capacity is `len`) until it holds `len`
    /// bytes.
    fn fill_owned(&mut self, out: &mut Vec<u8>, len: usize) -> io::Result<()> {
        while out.len() < len {
            let want = (len - out.len()).min(usize::try_from(self.unread).unwrap_or(usize::MAX));
            if want == 0 {
                return Err(self.past_end());
            }
            let got = match self.reader.read_spare(out, want) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => other?,
            };
            if got == 0 {
                return Err(self.short());
            }
            self.unread -= got as u64;
        }
        Ok(())
    }

    /// The next `len` bytes in a buffer of their own, reserved fallibly and
    /// filled straight from the reader; a big one faulted in by a second
    /// thread as it fills.
    fn take_owned(&mut self, len: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        out.try_reserve_exact(len)
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, format!("cannot reserve {len} bytes")))?;
        let from_buf = self.buffered().min(len);
        out.extend_from_slice(&self.buf[self.pos..self.pos + from_buf]);
        self.pos += from_buf;
        if len < POPULATE_FROM || !crate::sys::imp::CAN_POPULATE || crate::usable_cpu_count().get() < 2 {
            self.fill_owned(&mut out, len)?;
            return Ok(out);
        }
        // A second thread faults the buffer in ahead of the receive.
        let stop = AtomicBool::new(false);
        let room = out.spare_capacity_mut();
        let (addr, room) = (room.as_mut_ptr() as usize, room.len());
        std::thread::scope(|scope| {
            let stop = &stop;
            // SAFETY: the range is `out`'s spare capacity, which stays
            // mapped until the scope has joined this thread: `out` is not
            // dropped before, and never reallocates meanwhile, since its
            // capacity is already `len` and nothing appends past it.
            scope.spawn(move || unsafe { crate::sys::imp::populate_writable(addr, room, stop) });
            let filled = self.fill_owned(&mut out, len);
            stop.store(true, Ordering::Relaxed);
            filled
        })?;
        Ok(out)
    }
}

impl<R: Source> Input for &Stream<R> {
    fn left(&self) -> usize {
        usize::try_from(Stream::left(self)).unwrap_or(usize::MAX)
    }

    fn read_len(&self) -> Result<u64, String> {
        bincode::decode_from_reader::<u64, _, _>(StreamReader(self), config()).map_err(|e| {
            let s = self.state.borrow();
            s.failure.as_ref().map_or_else(|| super::decode_error(&e), io::Error::to_string)
        })
    }

    fn take_owned(&self, len: usize) -> Result<Vec<u8>, String> {
        let s = &mut *self.state.borrow_mut();
        s.take_owned(len).map_err(|e| s.fail(e))
    }

    fn take_lent<R2>(&self, len: usize, f: impl FnOnce(&[u8]) -> R2) -> Result<R2, String> {
        let s = &mut *self.state.borrow_mut();
        if len <= STREAM_BUF {
            if let Err(e) = s.fill(len) {
                return Err(s.fail(e));
            }
            let out = f(&s.buf[s.pos..s.pos + len]);
            s.pos += len;
            return Ok(out);
        }
        let owned = s.take_owned(len).map_err(|e| s.fail(e))?;
        Ok(f(&owned))
    }
}

/// bincode's view of a [`Stream`].
pub(super) struct StreamReader<'a, R>(pub(super) &'a Stream<R>);

impl<R: Source> Reader for StreamReader<'_, R> {
    #[inline]
    fn read(&mut self, bytes: &mut [u8]) -> Result<(), BincodeError> {
        let s = &mut *self.0.state.borrow_mut();
        if bytes.len() <= s.buffered() {
            bytes.copy_from_slice(&s.buf[s.pos..s.pos + bytes.len()]);
            s.pos += bytes.len();
            return Ok(());
        }
        s.read_into(bytes).map_err(|e| {
            s.fail(e);
            BincodeError::UnexpectedEnd { additional: bytes.len() }
        })
    }
}
