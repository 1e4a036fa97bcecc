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

pub(crate) mod codec;
mod guard;
pub(crate) mod handles;

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

pub(crate) use codec::{CodecError, decode, encode};

/// Version of the bootstrap protocol. A parent and child built from different
/// sources disagree on it and the child refuses the frame.
pub(crate) const PROTOCOL_VERSION: u8 = 1;

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
pub(crate) fn header(kind: FrameKind, len: usize) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..2].copy_from_slice(&MAGIC);
    h[2] = PROTOCOL_VERSION;
    h[3] = kind as u8;
    h[4..].copy_from_slice(&(len as u64).to_le_bytes());
    h
}

/// Encodes `value` as one complete frame (header and body).
pub(crate) fn frame<T: Serialize>(kind: FrameKind, value: &T) -> Result<Vec<u8>, CodecError> {
    let body = encode(value)?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&header(kind, body.len()));
    out.extend_from_slice(&body);
    Ok(out)
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

/// Reads one frame from a blocking reader.
pub(crate) fn read_frame(r: &mut impl Read) -> Result<(FrameKind, Vec<u8>), FrameError> {
    let mut h = [0u8; HEADER_LEN];
    let got = read_full(r, &mut h)?;
    if got < HEADER_LEN {
        return Err(FrameError::Truncated { got: got as u64, want: HEADER_LEN as u64 });
    }
    let (kind, len) = parse_header(&h)?;
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

/// The one message a parent sends a spawned child: everything the child
/// needs to become the process the parent asked for.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Bootstrap {
    /// Identity of the executable the parent runs (see `sys::exe_identity`).
    pub build_id: u64,
    /// The registered task or process type to run.
    pub task_id: String,
    /// The encoded arguments or process value.
    pub payload: Vec<u8>,
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

/// How a child's run ended, as reported by the child itself.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// The target returned; the encoded return value.
    Returned(Vec<u8>),
    /// The target panicked.
    Panicked { message: String, location: Option<String>, backtrace: Option<String> },
    /// The child could not start the target.
    Refused { code: i32, message: String },
}
