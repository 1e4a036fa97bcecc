//! Framing and the messages that cross the bootstrap channel.
//!
//! A frame is a 12-byte header followed by a body:
//!
//! ```text
//! +------+------+---------+------+-----------------+
//! | 'M'  | 'P'  | version | kind | length (u64 LE) |  body (length bytes)
//! +------+------+---------+------+-----------------+
//! ```
//!
//! The header is validated (magic, version, length against
//! [`MAX_FRAME_LEN`]) before a single body byte is read, and the body is read
//! incrementally, so a lying length prefix never causes an allocation of the
//! size it claims.
//!
//! The two frames of a child's life, [`Bootstrap`] (parent to child) and
//! [`Outcome`] (child to parent), carry a small head followed by the
//! payload, the arguments or the result, encoded straight into the channel
//! by the sender and decoded straight out of it by the receiver
//! ([`write_frame`], [`Stream`]): a payload is copied once, however big.

pub(crate) mod codec;
mod guard;
pub(crate) mod handles;
pub(crate) mod plain;

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

pub use codec::CodecError;
pub(crate) use codec::{Source, Stream, decode, decode_each, decode_next, decode_rest, encode, encode_into};
pub(crate) use guard::MAX_DEPTH;

/// Version of the bootstrap protocol. A parent and child built from different
/// sources disagree on it and the child refuses the frame. 2: the bootstrap
/// and outcome frames carry their payload after the head, not inside it.
/// 3: the bootstrap head says whether the child reports progress.
pub(crate) const PROTOCOL_VERSION: u8 = 3;

/// Longest body a frame may claim: 16 GiB.
pub(crate) const MAX_FRAME_LEN: u64 = 1 << 34;

const MAGIC: [u8; 2] = *b"MP";

/// Size of the frame header in bytes.
pub(crate) const HEADER_LEN: usize = 12;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum FrameKind {
    /// Parent to child: a [`Bootstrap`].
    Bootstrap = 1,
    /// Child to parent: an [`Outcome`].
    Outcome = 2,
    /// One message on a `Connection` (raw bytes, or a value the codec
    /// encoded).
    Message = 3,
}

impl FrameKind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Bootstrap),
            2 => Some(Self::Outcome),
            3 => Some(Self::Message),
            _ => None,
        }
    }
}

/// A frame that could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("the channel closed after {got} of {want} bytes")]
    Truncated { got: u64, want: u64 },
    #[error("not a multiproc frame (bad magic {0:02x?})")]
    BadMagic([u8; 2]),
    #[error("protocol version {0}, expected {PROTOCOL_VERSION}")]
    BadVersion(u8),
    #[error("unknown frame kind {0}")]
    BadKind(u8),
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    TooLarge(u64),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Builds the header for a body of `len` bytes.
pub(crate) fn header(kind: FrameKind, len: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..2].copy_from_slice(&MAGIC);
    h[2] = PROTOCOL_VERSION;
    h[3] = kind as u8;
    h[4..].copy_from_slice(&len.to_le_bytes());
    h
}

/// A frame's payload, encoded as it is written.
pub(crate) trait Part {
    /// The bytes [`write`](Part::write) will produce; a dry run of the
    /// encoding, which finds a value that cannot be encoded.
    fn encoded_len(&self) -> Result<u64, CodecError>;
    /// Encodes the value into `w`.
    fn write(&self, w: &mut dyn Write) -> Result<(), CodecError>;
}

impl<T: Serialize> Part for T {
    fn encoded_len(&self) -> Result<u64, CodecError> {
        codec::encoded_len(self)
    }

    fn write(&self, w: &mut dyn Write) -> Result<(), CodecError> {
        codec::encode_into(&mut &mut *w, self)
    }
}

/// How much of a frame's payload is written at most: a value whose
/// encoding turns out longer than its dry run said (a `Serialize` that
/// does not give the same bytes twice) is cut at the announced length, so
/// the frame stays whole and the receiver's decode fails instead of the
/// framing.
struct Bounded<'w> {
    inner: &'w mut dyn Write,
    left: u64,
    overflowed: bool,
}

impl Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            self.overflowed = true;
            return Err(io::Error::other("the value encoded longer than its measured length"));
        }
        self.inner.write_all(buf)?;
        self.left -= buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes one frame of `kind` whose body is `head` then `payload` (of the
/// length its dry run measured), through a 64 KiB buffer: small writes are
/// gathered, a big byte buffer goes straight to `w`.
///
/// The outer error is `w`'s. The inner one says the payload did not encode
/// as measured; the frame was then completed with zeros, so the receiver
/// stays in step and refuses the value.
pub(crate) fn write_frame(
    w: &mut dyn Write,
    kind: FrameKind,
    head: &[u8],
    payload: Option<(&dyn Part, u64)>,
) -> io::Result<Result<(), CodecError>> {
    let payload_len = payload.map_or(0, |(_, len)| len);
    let body = head.len() as u64 + payload_len;
    let mut tracked = Tracked { inner: w, failure: None };
    let mut out = io::BufWriter::with_capacity(64 * 1024, &mut tracked);
    out.write_all(&header(kind, body))?;
    out.write_all(head)?;
    let mut verdict = Ok(());
    if let Some((part, len)) = payload {
        let mut bounded = Bounded { inner: &mut out, left: len, overflowed: false };
        let written = part.write(&mut bounded);
        let (left, overflowed) = (bounded.left, bounded.overflowed);
        if let Err(e) = written {
            if let Some(failure) = out.get_mut().failure.take() {
                return Err(failure);
            }
            verdict = Err(if overflowed {
                CodecError("the value encoded longer than its measured length".into())
            } else {
                e
            });
        } else if left > 0 {
            verdict = Err(CodecError("the value encoded shorter than its measured length".into()));
        }
        io::copy(&mut io::repeat(0).take(left), &mut out)?;
    }
    out.flush()?;
    Ok(verdict)
}

/// A writer that keeps its own failure, to tell it from the value's.
struct Tracked<'w> {
    inner: &'w mut dyn Write,
    failure: Option<io::Error>,
}

impl Write for Tracked<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).inspect_err(|e| self.failure = Some(io::Error::new(e.kind(), e.to_string())))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An [`io::Write`] over a channel's `write_all`.
pub(crate) struct WriteAll<F>(pub(crate) F);

impl<F: FnMut(&[u8]) -> io::Result<()>> Write for WriteAll<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (self.0)(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Checks a header and returns its kind and body length.
pub(crate) fn parse_header(h: &[u8; HEADER_LEN]) -> Result<(FrameKind, u64), FrameError> {
    if h[..2] != MAGIC {
        return Err(FrameError::BadMagic([h[0], h[1]]));
    }
    if h[2] != PROTOCOL_VERSION {
        return Err(FrameError::BadVersion(h[2]));
    }
    let kind = FrameKind::from_byte(h[3]).ok_or(FrameError::BadKind(h[3]))?;
    let len = u64::from_le_bytes(h[4..].try_into().expect("8 bytes"));
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    Ok((kind, len))
}

/// Reads a frame's header from a blocking reader: `Ok(None)` if the
/// reader ends before its first byte.
pub(crate) fn read_header(r: &mut impl Read) -> Result<Option<(FrameKind, u64)>, FrameError> {
    let mut h = [0u8; HEADER_LEN];
    match read_full(r, &mut h)? {
        0 => Ok(None),
        HEADER_LEN => parse_header(&h).map(Some),
        got => Err(FrameError::Truncated { got: got as u64, want: HEADER_LEN as u64 }),
    }
}

/// Reads one whole frame from a blocking reader: [`read_header`], then the
/// body into memory (the testing helpers check it against [`split_frame`]).
pub(crate) fn read_frame(r: &mut impl Read) -> Result<(FrameKind, Vec<u8>), FrameError> {
    let (kind, len) = read_header(r)?.ok_or(FrameError::Truncated { got: 0, want: HEADER_LEN as u64 })?;
    let mut body = Vec::new();
    // `take` + `read_to_end` grows the buffer as bytes arrive instead of
    // trusting `len` up front.
    let got = r.take(len).read_to_end(&mut body)? as u64;
    if got < len {
        return Err(FrameError::Truncated { got, want: len });
    }
    Ok((kind, body))
}

/// Reads until `buf` is full or EOF; returns how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Splits one complete frame off the front of `bytes` (used on data that was
/// accumulated without blocking). `Ok(None)` means more bytes are needed.
pub(crate) fn split_frame(bytes: &[u8]) -> Result<Option<(FrameKind, &[u8])>, FrameError> {
    let Some(h) = bytes.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let (kind, len) = parse_header(h)?;
    let end = HEADER_LEN as u64 + len;
    if (bytes.len() as u64) < end {
        return Ok(None);
    }
    Ok(Some((kind, &bytes[HEADER_LEN..end as usize])))
}

/// The head of the one message a parent sends a spawned child: everything
/// the child needs to become the process the parent asked for. The
/// encoded arguments (or process value) follow it in the same frame.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Bootstrap {
    /// Identity of the executable the parent runs (see `sys::exe_identity`).
    pub build_id: u64,
    /// The registered task or process type to run.
    pub task_id: String,
    /// The child's name (`Process-1:2`, or the one the user chose).
    pub name: String,
    /// The child's position in the process tree: `[1, 2]` for `Process-1:2`.
    pub identity: Vec<u32>,
    /// The authentication key; only ever sent over this channel.
    pub authkey: Vec<u8>,
    /// The parent's pid and name, for `parent_process()`.
    pub parent_pid: u32,
    pub parent_name: String,
    /// Whether the child is a daemon.
    pub daemon: bool,
    /// Whether the parent started the child from its main thread, so that a
    /// parent-death signal is tied to the parent's lifetime and not to a
    /// thread's.
    pub from_main_thread: bool,
    /// What the child prints when its target fails, and passes on.
    pub reports: crate::report::ChildReports,
    /// Whether the parent asked for progress (`Builder::progress`): one
    /// more handle follows the arguments' (counted in `handle_info`, not
    /// in `handles`), the write end of the child's progress channel.
    /// (Before `handles`, which stays the head's last field.)
    pub progress: bool,
    /// What the child needs to take over each passed handle, where its
    /// position does not imply it: empty on Unix; on Windows the handle's
    /// value in the child, or a socket's protocol info (see
    /// `sys::spawn_child`). Opaque bytes, so the format is the same
    /// everywhere.
    pub handle_info: Vec<Vec<u8>>,
    /// How many OS handles were passed as task arguments (see
    /// [`handles`]); on Unix they sit at descriptors 4, 5, ….
    pub handles: u32,
}

/// How a child's run ended, as reported by the child itself: the head of
/// its one frame.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// The target returned; its encoded value follows in the frame.
    Returned,
    /// The target panicked.
    Panicked { message: String, location: Option<String>, backtrace: Option<String> },
    /// The child could not start the target.
    Refused { code: i32, message: String },
}
