//! The codec: the only module that names the serializer.
//!
//! Bodies are encoded with bincode 2 through its serde support. Frames are
//! length-checked before they are read (see [`super::MAX_FRAME_LEN`]). A
//! body is decoded through the guard in [`super::guard`], which bincode's
//! serde deserializer is driven through: it bounds the nesting depth
//! ([`MAX_DEPTH`]), reads strings and byte buffers itself, refusing a
//! length that claims more bytes than the body has left before anything is
//! reserved, and caps what a sequence or map may reserve up front by the
//! bytes left.
//!
//! A value is decoded from a body in memory ([`decode`]) or from one still
//! arriving on a channel ([`decode_next`] on a [`Stream`]); it is encoded
//! into a buffer ([`encode`]) or, after measuring it ([`encoded_len`]),
//! straight into a writer ([`encode_into`]).

mod input;

use std::io::{self, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use input::{Slice, SliceReader, StreamReader};
pub(crate) use input::{Source, Stream};

use super::guard::{Guarded, Input, MAX_DEPTH, Progress, Refusal, ZERO_SIZED_BUDGET};
use crate::error::DecodeError;

/// Why a value could not be encoded. The codec's own error types stay
/// private; callers only see the message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct CodecError(pub(crate) String);

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

/// The decoding configuration: [`config`] with [`DECODE_BUDGET`].
type DecodeConfig = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<DECODE_BUDGET>,
>;

fn decode_config() -> DecodeConfig {
    config().with_limit::<DECODE_BUDGET>()
}

/// Encodes `value` into a fresh buffer.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(encode_error)
}

/// The serializer's error in words of its own: bincode's `Display` is its
/// `Debug` (`OtherString("…")`), which names the codec's internals.
fn encode_error(e: bincode::error::EncodeError) -> CodecError {
    use bincode::error::EncodeError as E;
    CodecError(match e {
        E::OtherString(s) => s,
        E::Other(s) => s.to_owned(),
        E::Io { inner, .. } => inner.to_string(),
        E::UnexpectedEnd => "the output ended".to_owned(),
        E::RefCellAlreadyBorrowed { .. } => "a RefCell in the value is borrowed mutably".to_owned(),
        E::LockFailed { type_name } => format!("a lock in the value ({type_name}) is poisoned"),
        other => format!("{other:?}"),
    })
}

/// The deserializer's error in words of its own (see [`encode_error`]).
fn decode_error(e: &bincode::error::DecodeError) -> String {
    use bincode::error::DecodeError as E;
    match e {
        E::OtherString(s) => s.clone(),
        E::Other(s) => (*s).to_owned(),
        E::UnexpectedEnd { .. } => "the value runs past the end of its message".to_owned(),
        E::LimitExceeded => format!("the value would reserve more than {DECODE_BUDGET} bytes"),
        E::InvalidIntegerType { expected, found } => format!("an integer of type {found:?} where {expected:?} belongs"),
        E::NonZeroTypeIsZero { non_zero_type } => format!("a zero for a non-zero {non_zero_type:?}"),
        E::UnexpectedVariant { type_name, found, .. } => format!("no variant {found} in enum {type_name}"),
        E::Utf8 { inner } => format!("a string is not UTF-8: {inner}"),
        E::InvalidCharEncoding(bytes) => format!("{bytes:02x?} is not a char"),
        E::InvalidBooleanValue(v) => format!("{v} is not a bool"),
        E::ArrayLengthMismatch { required, found } => format!("an array of {found} elements where {required} belong"),
        E::OutsideUsizeRange(n) => format!("{n} does not fit in a usize"),
        E::EmptyEnum { type_name } => format!("a value of the empty enum {type_name}"),
        E::Io { inner, .. } => inner.to_string(),
        E::Serde(inner) => match inner {
            bincode::serde::DecodeError::AnyNotSupported => {
                "a type that needs a self-describing format (deserialize_any) cannot be decoded".to_owned()
            }
            bincode::serde::DecodeError::IgnoredAnyNotSupported => {
                "a type that skips unknown fields (deserialize_ignored_any) cannot be decoded".to_owned()
            }
            other => format!("{other:?}"),
        },
        other => format!("{other:?}"),
    }
}

/// How many bytes [`encode_into`] will write for `value` (a dry run of the
/// encoding, which also finds any value that cannot be encoded).
pub(crate) fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<u64, CodecError> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, config()).map_err(encode_error)?;
    Ok(size.bytes_written as u64)
}

/// Encodes `value` straight into `w`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(w: &mut impl Write, value: &T) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, w, config()).map(drop).map_err(encode_error)
}

/// Decodes a whole `T` from `bytes`; trailing bytes are an error.
///
/// Values nested deeper than [`MAX_DEPTH`] levels, and lengths claiming
/// more bytes than the body holds, are errors found before the stack or
/// the heap pays for them. A decoder panic on crafted input (bincode 2 has
/// had such bugs) is caught and reported as an error: no input may take the
/// process down.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let slice = Slice::new(bytes);
    let value = guarded(&slice, SliceReader(&slice), || None)?;
    match slice.rest().len() {
        0 => Ok(value),
        n => Err(DecodeError::Trailing { len: n as u64 }),
    }
}

/// Decodes `count` values of `T` from the front of `bytes`, one after the
/// other, handing each to `each` as it is decoded; `bytes` then holds what
/// follows them: the values of a pool's batch, end to end. One decoder and
/// one guard serve them all; each value has the budgets it would have
/// alone. After an error, `each` has had the values before the one that
/// failed.
pub(crate) fn decode_each<T: DeserializeOwned>(
    bytes: &mut &[u8],
    count: usize,
    each: &mut dyn FnMut(T),
) -> Result<(), DecodeError> {
    let slice = Slice::new(bytes);
    let result = guarded_with(
        &slice,
        SliceReader(&slice),
        || None,
        |decoder, progress| {
            for _ in 0..count {
                progress.next_value();
                each(T::deserialize(Guarded::new(decoder.as_deserializer(), progress))?);
            }
            Ok(())
        },
    );
    *bytes = slice.rest();
    result
}

/// Decodes the next `T` from `stream`, reading exactly its bytes; what
/// follows it stays in the stream. A failure of the channel itself (it
/// closed early, a read timed out) is [`DecodeError::Truncated`] or
/// [`DecodeError::Io`].
pub(crate) fn decode_next<T: DeserializeOwned, R: Source>(stream: &Stream<R>) -> Result<T, DecodeError> {
    guarded(stream, StreamReader(stream), || stream.take_failure())
}

/// Decodes the rest of `stream` as one `T`: bytes left after it are
/// [`DecodeError::Trailing`], as for [`decode`].
pub(crate) fn decode_rest<T: DeserializeOwned, R: Source>(stream: &Stream<R>) -> Result<T, DecodeError> {
    let value = decode_next(stream)?;
    match stream.left() {
        0 => Ok(value),
        len => Err(DecodeError::Trailing { len }),
    }
}

fn guarded<T: DeserializeOwned, I: Input + Copy>(
    input: I,
    reader: impl bincode::de::read::Reader,
    failure: impl FnOnce() -> Option<io::Error>,
) -> Result<T, DecodeError> {
    guarded_with(input, reader, failure, |decoder, progress| {
        T::deserialize(Guarded::new(decoder.as_deserializer(), progress))
    })
}

/// Runs `decode` on a decoder of `reader` under the guard: depth and
/// budgets checked, a decoder panic caught, the error in words of ours.
fn guarded_with<T, I: Input + Copy, R: bincode::de::read::Reader>(
    input: I,
    reader: R,
    failure: impl FnOnce() -> Option<io::Error>,
    decode: impl FnOnce(
        &mut bincode::serde::OwnedSerdeDecoder<bincode::de::DecoderImpl<R, DecodeConfig, ()>>,
        &Progress<I>,
    ) -> Result<T, bincode::error::DecodeError>,
) -> Result<T, DecodeError> {
    let progress = Progress::new(input);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut decoder = bincode::serde::OwnedSerdeDecoder::from_reader(reader, decode_config());
        decode(&mut decoder, &progress)
    }));
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(match (progress.refusal(), failure()) {
            (Some(Refusal::TooDeep), _) => DecodeError::TooDeep { limit: MAX_DEPTH },
            (Some(Refusal::Claim { len, left }), _) => DecodeError::LengthPastEnd { claimed: len, left: left as u64 },
            (Some(Refusal::ZeroSized), _) => DecodeError::TooManyEmpty { limit: ZERO_SIZED_BUDGET },
            (None, Some(io)) if io.kind() == io::ErrorKind::UnexpectedEof => DecodeError::Truncated(io.to_string()),
            (None, Some(io)) if io.kind() == io::ErrorKind::TimedOut => DecodeError::Stalled(io.to_string()),
            (None, Some(io)) if io.kind() == io::ErrorKind::InvalidData => DecodeError::Invalid(io.to_string()),
            (None, Some(io)) => DecodeError::Io(io.to_string()),
            (None, None) => DecodeError::Invalid(decode_error(&e)),
        }),
        Err(_) => Err(DecodeError::Invalid("the decoder panicked on malformed input".into())),
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
        assert_eq!(
            decode::<(u8, String, Vec<u64>, Option<Box<i32>>)>(&longer).unwrap_err(),
            DecodeError::Trailing { len: 1 }
        );
    }

    #[test]
    fn values_decoded_one_after_the_other_each_have_the_budget_of_one() {
        // Each value holds nearly the most elements that take no bytes a
        // value may: decoded together, they must not share that budget.
        let one = vec![(); ZERO_SIZED_BUDGET - 1];
        let bytes = [encode(&one).unwrap(), encode(&one).unwrap(), encode(&one).unwrap()].concat();
        let mut rest = bytes.as_slice();
        let mut lens = Vec::new();
        decode_each::<Vec<()>>(&mut rest, 3, &mut |v| lens.push(v.len())).unwrap();
        assert_eq!(lens, [ZERO_SIZED_BUDGET - 1; 3]);
        assert!(rest.is_empty());
        // One value past the budget is still refused.
        let over = encode(&vec![(); ZERO_SIZED_BUDGET + 1]).unwrap();
        assert_eq!(
            decode_each::<Vec<()>>(&mut over.as_slice(), 1, &mut drop).unwrap_err(),
            DecodeError::TooManyEmpty { limit: ZERO_SIZED_BUDGET }
        );
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
        assert_eq!(err, DecodeError::TooDeep { limit: MAX_DEPTH });
    }

    #[test]
    fn a_string_claiming_more_than_the_body_is_refused() {
        let err = decode::<String>(&[0xFC, 0xFF, 0xFF, 0xFF, 0xFF, b'a']).unwrap_err();
        assert_eq!(err, DecodeError::LengthPastEnd { claimed: 4294967295, left: 1 });
        assert_eq!(decode::<String>(&[3, b'a', b'b', b'c']).unwrap(), "abc");
    }
}
