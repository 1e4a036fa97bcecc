//! The codec: the only file that names the serializer.
//!
//! Bodies are encoded with bincode 2 through its serde support. Frames are
//! length-checked before they are read (see [`super::MAX_FRAME_LEN`]). A
//! body is decoded through the guard in [`super::guard`], which bincode's
//! serde deserializer is driven through: it bounds the nesting depth
//! ([`MAX_DEPTH`]), refuses a string or byte length that claims more bytes
//! than the body has left before bincode reserves it, and caps what a
//! sequence or map may reserve up front by the bytes left.

use serde::Serialize;
use serde::de::DeserializeOwned;

#[cfg(test)]
use super::guard::MAX_DEPTH;
use super::guard::{Guarded, Progress};

/// Why a value could not be encoded or decoded. The codec's own error types
/// stay private; callers only see the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodecError(pub(crate) String);

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The most memory one decode may reserve for the containers it builds.
pub(crate) const DECODE_BUDGET: usize = 1 << 32;

/// Little-endian, variable-length integers.
fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes `value` into a fresh buffer.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| CodecError(e.to_string()))
}

/// Reads from the body left in the guard's [`Progress`], so that the guard
/// always knows how many bytes remain.
struct ProgressReader<'p, 'de>(&'p Progress<'de>);

impl bincode::de::read::Reader for ProgressReader<'_, '_> {
    #[inline]
    fn read(&mut self, bytes: &mut [u8]) -> Result<(), bincode::error::DecodeError> {
        let rest = self.0.rest();
        match rest.split_at_checked(bytes.len()) {
            Some((head, tail)) => {
                bytes.copy_from_slice(head);
                self.0.set_rest(tail);
                Ok(())
            }
            None => Err(bincode::error::DecodeError::UnexpectedEnd { additional: bytes.len() - rest.len() }),
        }
    }

    #[inline]
    fn peek_read(&mut self, n: usize) -> Option<&[u8]> {
        self.0.rest().get(..n)
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        let rest = self.0.rest();
        self.0.set_rest(&rest[n.min(rest.len())..]);
    }
}

/// The length prefix at the front of `rest` (a string's, a byte buffer's)
/// and the number of bytes it takes; `None` if it does not decode (the
/// decoder proper then reports why).
pub(super) fn peek_len(rest: &[u8]) -> Option<(u64, usize)> {
    bincode::decode_from_slice::<u64, _>(rest, config()).ok()
}

/// Decodes a whole `T` from `bytes`; trailing bytes are an error.
///
/// Values nested deeper than [`MAX_DEPTH`] levels, and lengths claiming
/// more bytes than the body holds, are errors found before the stack or
/// the heap pays for them. A decoder panic on crafted input (bincode 2 has
/// had such bugs) is caught and reported as an error: no input may take the
/// process down.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let progress = Progress::new(bytes);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let cfg = config().with_limit::<DECODE_BUDGET>();
        let mut decoder = bincode::serde::OwnedSerdeDecoder::from_reader(ProgressReader(&progress), cfg);
        T::deserialize(Guarded::new(decoder.as_deserializer(), &progress))
    }));
    match result {
        Ok(Ok(value)) if progress.rest().is_empty() => Ok(value),
        Ok(Ok(_)) => Err(CodecError(format!("{} trailing bytes after the value", progress.rest().len()))),
        Ok(Err(e)) => Err(CodecError(match progress.refusal() {
            Some(refusal) => refusal.to_string(),
            None => e.to_string(),
        })),
        Err(_) => Err(CodecError("the decoder panicked on malformed input".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_trailing_bytes() {
        let value = (1u8, "two".to_string(), vec![3u64; 3], Some(Box::new(4i32)));
        let bytes = encode(&value).unwrap();
        assert_eq!(decode::<(u8, String, Vec<u64>, Option<Box<i32>>)>(&bytes).unwrap(), value);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<(u8, String, Vec<u64>, Option<Box<i32>>)>(&longer).unwrap_err().0.contains("1 trailing"));
    }

    #[test]
    fn the_depth_limit_is_exact() {
        // `Option<Option<…>>` nested n deep: n `Some` tags, then `None`.
        type Nest = Option<Box<Nest2>>;
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Nest2(Nest);
        // Each level is a newtype and an option: two levels of nesting.
        let ok = [vec![1u8; MAX_DEPTH / 2 - 1], vec![0]].concat();
        assert!(
            std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || decode::<Nest>(&ok).map(drop))
                .unwrap()
                .join()
                .unwrap()
                .is_ok()
        );
        let deep = [vec![1u8; MAX_DEPTH / 2 + 1], vec![0]].concat();
        let err = decode::<Nest>(&deep).map(drop).unwrap_err();
        assert_eq!(err.0, format!("the value is nesting deeper than {MAX_DEPTH} levels"));
    }

    #[test]
    fn a_string_claiming_more_than_the_body_is_refused() {
        let err = decode::<String>(&[0xFC, 0xFF, 0xFF, 0xFF, 0xFF, b'a']).unwrap_err();
        assert_eq!(err.0, "a length of 4294967295 bytes is claimed but only 1 bytes are left");
        assert_eq!(decode::<String>(&[3, b'a', b'b', b'c']).unwrap(), "abc");
    }
}
