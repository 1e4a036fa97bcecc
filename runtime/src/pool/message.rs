//! The messages between a pool and its workers, each one `Connection`
//! message of bytes:
//!
//! ```text
//! parent → worker   Run   'R' first:u64 chunks:u32 (entry:u32 count:u32 args_len:u64)* args*
//!                   Stop  'S'
//! worker → parent   Done  'D' record+                     (see super::batch)
//!                   Exit  'E' status:u8 len:u64 bytes     (the exit hook's)
//!                   Init  'I' message                     (set-up failed)
//! ```
//!
//! `first` is the worker's number of the first task of a `Run` (the rest
//! follow it, chunk after chunk); each chunk's `entry` is its function's
//! index in the dispatch table (parent and worker are the same binary),
//! and its `args` the tasks' encoded argument tuples end to end. Several
//! small chunks go in one `Run`, so that quick tasks cost one message
//! each way per many of them. A `Done` carries the results of some tasks,
//! in order, one record per chunk; a worker that cannot tell the parent
//! which task it runs any other way sends one per task.

use crate::error::{DecodeError, PanicInfo};
use crate::wire;

pub(super) const RUN: u8 = b'R';
pub(super) const STOP: u8 = b'S';
pub(super) const DONE: u8 = b'D';
pub(super) const EXIT: u8 = b'E';
pub(super) const INIT_FAILED: u8 = b'I';

/// How one task ended in the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Status {
    /// The bytes are the encoded return value.
    Returned = 0,
    /// The bytes are the encoded [`PanicInfo`] parts.
    Panicked = 1,
    /// The return value could not be encoded; the bytes say why.
    Unencodable = 2,
    /// The arguments did not decode; the bytes say why.
    BadArguments = 3,
    /// Nothing to report (no exit hook).
    Nothing = 4,
}

impl Status {
    fn from_byte(b: u8) -> Option<Status> {
        Some(match b {
            0 => Status::Returned,
            1 => Status::Panicked,
            2 => Status::Unencodable,
            3 => Status::BadArguments,
            4 => Status::Nothing,
            _ => return None,
        })
    }
}

/// Builds a message.
#[derive(Debug, Default)]
pub(super) struct Writer(pub(super) Vec<u8>);

impl Writer {
    pub(super) fn new(kind: u8) -> Writer {
        Writer(vec![kind])
    }

    pub(super) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    pub(super) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(super) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A length-prefixed run of bytes.
    pub(super) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    /// One task's result.
    pub(super) fn item(&mut self, status: Status, bytes: &[u8]) -> &mut Self {
        self.u8(status as u8).bytes(bytes)
    }
}

/// Reads a message; every read checks its bounds, so a short or lying
/// message is an error, never a panic.
#[derive(Debug)]
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

/// A message that is not what the protocol says.
pub(super) fn malformed(what: &str) -> DecodeError {
    DecodeError::Invalid(format!("a malformed pool message: {what}"))
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(malformed("it ends early"));
        }
        let (now, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(now)
    }

    pub(super) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    pub(super) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    /// A length (a `u64`) that fits in memory.
    pub(super) fn length(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(self.u64()?).map_err(|_| malformed("a length past the end"))
    }

    pub(super) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.length()?;
        self.take(len)
    }

    pub(super) fn item(&mut self) -> Result<(Status, &'a [u8]), DecodeError> {
        let status = Status::from_byte(self.u8()?).ok_or_else(|| malformed("an unknown status"))?;
        Ok((status, self.bytes()?))
    }
}

/// A panic, as a `Panicked` item carries it.
pub(super) fn encode_panic(panic: &PanicInfo) -> Vec<u8> {
    let parts = (&panic.message, &panic.location, &panic.backtrace);
    wire::encode(&parts).unwrap_or_default()
}

pub(super) fn decode_panic(bytes: &[u8]) -> PanicInfo {
    match wire::decode::<(String, Option<String>, Option<String>)>(bytes) {
        Ok((message, location, backtrace)) => PanicInfo { message, location, backtrace },
        Err(e) => {
            PanicInfo { message: format!("<the panic's report did not decode: {e}>"), location: None, backtrace: None }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_or_lying_message_is_an_error() {
        let mut w = Writer::new(DONE);
        w.u64(7).u32(1).item(Status::Returned, b"abc");
        let full = w.0;
        let mut r = Reader(&full[1..]);
        assert_eq!(r.u64().unwrap(), 7);
        assert_eq!(r.u32().unwrap(), 1);
        assert_eq!(r.item().unwrap(), (Status::Returned, &b"abc"[..]));
        for cut in 1..full.len() {
            let mut r = Reader(&full[1..cut]);
            let whole = r.u64().and_then(|_| r.u32()).and_then(|_| r.item());
            assert!(whole.is_err(), "cut at {cut}");
        }
        let mut lying = Writer::new(DONE);
        lying.u8(0).u64(u64::MAX);
        assert!(Reader(&lying.0[1..]).item().is_err());
        assert!(Reader(&[9, 0, 0, 0, 0, 0, 0, 0, 0]).item().is_err());
    }

    #[test]
    fn a_panic_crosses_whole() {
        let panic = PanicInfo { message: "boom".into(), location: Some("a.rs:1:2".into()), backtrace: None };
        assert_eq!(decode_panic(&encode_panic(&panic)), panic);
    }
}
