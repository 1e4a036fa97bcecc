//! The codec: the only file that names the serializer.
//!
//! Bodies are encoded with bincode 2 through its serde support. Frames are
//! length-checked before they are read (see [`super::MAX_FRAME_LEN`]); inside
//! a body, bincode itself is given a decode budget ([`DECODE_BUDGET`]), so a
//! length field claiming more than that is an error rather than an attempt
//! to allocate it. Claims under the budget are only ever reserved, never
//! touched, before the bytes that back them have arrived.

use serde::Serialize;
use serde::de::DeserializeOwned;

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

/// Decodes a whole `T` from `bytes`; trailing bytes are an error.
///
/// A decoder panic on crafted input (bincode 2 has had such bugs) is caught
/// and reported as an error: no input may take the process down.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let result = std::panic::catch_unwind(|| {
        let cfg = config().with_limit::<DECODE_BUDGET>();
        bincode::serde::decode_from_slice::<T, _>(bytes, cfg)
    });
    match result {
        Ok(Ok((value, read))) if read == bytes.len() => Ok(value),
        Ok(Ok((_, read))) => Err(CodecError(format!("{} trailing bytes after the value", bytes.len() - read))),
        Ok(Err(e)) => Err(CodecError(e.to_string())),
        Err(_) => Err(CodecError("the decoder panicked on malformed input".into())),
    }
}
