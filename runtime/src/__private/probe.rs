//! How `#[process_task]` picks the codec of each type in a signature, and
//! makes a type that cannot cross one compile error, at that type.
//!
//! The generated code calls a method on `&…&Probe::<T>::NEW`. Method
//! lookup tries the receiver with every `&` first, then one fewer, and so
//! on, and skips an impl whose bounds `T` does not meet: so the impl on the
//! most references that applies wins (autoref specialisation; it works
//! because the generated code names concrete types). The last impl
//! applies to every `T` and returns a "rejected" value, which the one
//! function that checks the verdict refuses with a message naming `T`.

use std::fmt::Debug;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::BytesBuf;
use crate::error::DecodeError;
use crate::registry::{Incoming, Invoked, Payload};
use crate::remote::{CrossError, RemoteError};
use crate::wire::CodecError;
use crate::wire::plain::{self, Plain};

/// The receiver of every probe: a type, and no value.
pub struct Probe<T>(PhantomData<fn() -> T>);

impl<T> Probe<T> {
    /// The probe of `T`.
    pub const NEW: Self = Probe(PhantomData);
}

/// A serializable value that can cross in either direction.
pub trait Crosses: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Crosses for T {}

// ---------------------------------------------------------------- arguments

/// The verdict on an argument type that can cross.
pub struct Accepted;

/// The verdict on an argument type that cannot.
pub struct Rejected<T>(PhantomData<fn() -> T>);

/// Implemented only by [`Accepted`]: the bound that turns a rejected
/// argument type into one error.
#[diagnostic::on_unimplemented(
    message = "`{T}` cannot be an argument of a process task",
    label = "an argument must be `Serialize + Deserialize + Send + 'static`",
    note = "derive them: `#[derive(serde::Serialize, serde::Deserialize)]` (serde with its `derive` feature), for each type it holds too",
    note = "a value shared within one process (`Rc`, `RefCell`, a reference, a raw pointer) cannot cross: send the data it holds"
)]
pub trait ArgumentVerdict<T> {}

impl<T> ArgumentVerdict<T> for Accepted {}

/// Checks one argument type: an error spanned where it is called, naming `T`.
pub fn argument<T, V: ArgumentVerdict<T>>(_: V) {}

/// The verdict for a type that can cross.
pub trait ArgumentCrosses {
    /// [`Accepted`].
    fn verdict(&self) -> Accepted {
        Accepted
    }
}

impl<T: Crosses> ArgumentCrosses for &Probe<T> {}

/// The verdict for any other type.
pub trait ArgumentRejected<T> {
    /// [`Rejected`].
    fn verdict(&self) -> Rejected<T> {
        Rejected(PhantomData)
    }
}

impl<T> ArgumentRejected<T> for Probe<T> {}

/// A codec's decoder of so many values from the front of a slice, handing
/// each to the callback as it is decoded.
pub type DecodeEach<T> = fn(&mut &[u8], usize, &mut dyn FnMut(T)) -> Result<(), DecodeError>;

/// How an argument tuple, as it crosses, is measured and decoded.
pub struct ArgsCodec<W> {
    /// Measures the tuple for a bootstrap frame.
    pub measure: fn(W) -> Result<Payload, CodecError>,
    /// Decodes it from one.
    pub decode: fn(&Incoming<'_>) -> Result<W, DecodeError>,
    /// Encodes it onto the end of a buffer (a pool's batch).
    pub encode_into: fn(W, &mut Vec<u8>) -> Result<(), CodecError>,
    /// Decodes so many from the front of a slice, one after the other (a
    /// pool's batch).
    pub decode_each: DecodeEach<W>,
    /// How many bytes `encode_into` writes, if that is the same for every
    /// tuple.
    pub width: Option<usize>,
}

/// The codec of a tuple of plain values: serde for a bootstrap frame, and
/// their bytes in a pool's batch.
pub trait ArgsPlain<W> {
    /// Plain in a batch.
    fn args_codec(&self) -> ArgsCodec<W>;
}

impl<W: Crosses + Plain> ArgsPlain<W> for &&Probe<W> {
    fn args_codec(&self) -> ArgsCodec<W> {
        ArgsCodec {
            measure: Payload::new,
            decode: |input| input.decode(),
            encode_into: plain::encode_into,
            decode_each: plain::decode_each,
            width: Some(W::SIZE),
        }
    }
}

/// The codec of a tuple whose every element crosses.
pub trait ArgsCross<W> {
    /// Through serde.
    fn args_codec(&self) -> ArgsCodec<W>;
}

impl<W: Crosses> ArgsCross<W> for &Probe<W> {
    fn args_codec(&self) -> ArgsCodec<W> {
        ArgsCodec {
            measure: Payload::new,
            decode: |input| input.decode(),
            encode_into: |w, out| crate::wire::encode_into(out, &w),
            decode_each: crate::wire::decode_each,
            width: None,
        }
    }
}

/// The codec of a tuple with an element that does not cross, in a program
/// that does not compile: [`argument`] has refused that element.
pub trait ArgsRefused<W> {
    /// Refuses everything (never runs).
    fn args_codec(&self) -> ArgsCodec<W>;
}

impl<W> ArgsRefused<W> for Probe<W> {
    fn args_codec(&self) -> ArgsCodec<W> {
        ArgsCodec {
            measure: |_| Err(CodecError("an argument type that cannot cross".into())),
            decode: |_| Err(DecodeError::Invalid("an argument type that cannot cross".into())),
            encode_into: |_, _| Err(CodecError("an argument type that cannot cross".into())),
            decode_each: |_, _, _| Err(DecodeError::Invalid("an argument type that cannot cross".into())),
            width: None,
        }
    }
}

// ------------------------------------------------------------------ results

/// How a task's result crosses: measured in the child (with the text of a
/// returned `Err`, which makes the exit code 1), decoded in the parent.
pub struct OutputCodec<R> {
    /// Measures the result for the report.
    pub finish: fn(R) -> Invoked,
    /// Decodes it from the report.
    pub decode: fn(&Incoming<'_>) -> Result<R, DecodeError>,
    /// Encodes it onto the end of a buffer (a pool's batch).
    pub write: fn(R, &mut Vec<u8>) -> Result<(), CodecError>,
    /// Decodes so many from the front of a slice, one after the other (a
    /// pool's batch).
    pub decode_each: DecodeEach<R>,
}

/// The verdict on a result type that cannot cross.
pub struct NoOutputCodec<R>(PhantomData<fn() -> R>);

/// Implemented only by [`OutputCodec`]: the bound that turns a result type
/// that cannot cross into one error.
#[diagnostic::on_unimplemented(
    message = "`{R}` cannot be the result of a process task",
    label = "a result must be `Serialize + Deserialize + Send + 'static`, or a `Result` whose error is one of those or a common error type",
    note = "derive them: `#[derive(serde::Serialize, serde::Deserialize)]` (serde with its `derive` feature)",
    note = "an error type without serde may be `Box<dyn Error + Send + Sync>`, `io::Error`, `ParseIntError`, `ParseFloatError`, `ParseBoolError`, `TryFromIntError`, `fmt::Error` or (feature `anyhow`) `anyhow::Error`: the parent gets the same type back, rebuilt from its message and source chain"
)]
pub trait OutputVerdict<R> {
    /// The codec.
    fn into_codec(self) -> OutputCodec<R>;
}

impl<R> OutputVerdict<R> for OutputCodec<R> {
    fn into_codec(self) -> OutputCodec<R> {
        self
    }
}

/// Checks the result type: one error, spanned where it is called.
pub fn output<R, V: OutputVerdict<R>>(verdict: V) -> OutputCodec<R> {
    verdict.into_codec()
}

/// Measures `value`, the returned value, with `failure` the text of an `Err`.
fn measured<W: Serialize + Send + 'static>(value: W, failure: Option<String>) -> Invoked {
    match Payload::new(value) {
        Ok(value) => Invoked::Returned { value, failure },
        Err(e) => Invoked::BadResult(e.0),
    }
}

/// A plain value: serde for a report, its bytes in a pool's batch.
pub trait OutputPlain<R> {
    /// The codec.
    fn output_codec(&self) -> OutputCodec<R>;
}

impl<R: Crosses + Plain> OutputPlain<R> for &&&&&&Probe<R> {
    fn output_codec(&self) -> OutputCodec<R> {
        OutputCodec {
            finish: |v| measured(v, None),
            decode: |input| input.decode(),
            write: plain::encode_into,
            decode_each: plain::decode_each,
        }
    }
}

/// `Vec<u8>`: one byte string rather than serde's element by element.
pub trait OutputBytes {
    /// The codec.
    fn output_codec(&self) -> OutputCodec<Vec<u8>> {
        OutputCodec {
            finish: |v| measured(BytesBuf(v), None),
            decode: |input| input.decode::<BytesBuf>().map(BytesBuf::into_inner),
            write: |v, out| crate::wire::encode_into(out, &BytesBuf(v)),
            decode_each: |b, n, each| crate::wire::decode_each::<BytesBuf>(b, n, &mut |v| each(v.into_inner())),
        }
    }
}

impl OutputBytes for &&&&&Probe<Vec<u8>> {}

/// A serializable `Result` whose error has a `Debug` text.
pub trait OutputResultDebug<R> {
    /// The codec.
    fn output_codec(&self) -> OutputCodec<R>;
}

impl<T: Crosses, E: Crosses + Debug> OutputResultDebug<Result<T, E>> for &&&&Probe<Result<T, E>> {
    fn output_codec(&self) -> OutputCodec<Result<T, E>> {
        OutputCodec {
            finish: |v| {
                let failure = v.as_ref().err().map(|e| format!("{e:?}"));
                measured(v, failure)
            },
            decode: |input| input.decode(),
            write: |v, out| crate::wire::encode_into(out, &v),
            decode_each: crate::wire::decode_each,
        }
    }
}

/// A serializable `Result` whose error has no `Debug`.
pub trait OutputResult<R> {
    /// The codec.
    fn output_codec(&self) -> OutputCodec<R>;
}

impl<T: Crosses, E: Crosses> OutputResult<Result<T, E>> for &&&Probe<Result<T, E>> {
    fn output_codec(&self) -> OutputCodec<Result<T, E>> {
        OutputCodec {
            finish: |v| {
                let failure = v.as_ref().err().map(|_| format!("Err({})", std::any::type_name::<E>()));
                measured(v, failure)
            },
            decode: |input| input.decode(),
            write: |v, out| crate::wire::encode_into(out, &v),
            decode_each: crate::wire::decode_each,
        }
    }
}

/// Any other serializable value.
pub trait OutputValue<R> {
    /// The codec.
    fn output_codec(&self) -> OutputCodec<R>;
}

impl<R: Crosses> OutputValue<R> for &&Probe<R> {
    fn output_codec(&self) -> OutputCodec<R> {
        OutputCodec {
            finish: |v| measured(v, None),
            decode: |input| input.decode(),
            write: |v, out| crate::wire::encode_into(out, &v),
            decode_each: crate::wire::decode_each,
        }
    }
}

/// A `Result` whose error is not serializable but is rebuilt in the
/// parent ([`CrossError`](super::CrossError)).
pub trait OutputRemote<R> {
    /// The codec.
    fn output_codec(&self) -> OutputCodec<R>;
}

impl<T: Crosses, E: CrossError> OutputRemote<Result<T, E>> for &Probe<Result<T, E>> {
    fn output_codec(&self) -> OutputCodec<Result<T, E>> {
        OutputCodec {
            finish: |v| {
                let crossing = v.map_err(|e| e.to_remote());
                let failure = crossing.as_ref().err().map(RemoteError::chain_text);
                measured(crossing, failure)
            },
            decode: |input| input.decode::<Result<T, RemoteError>>().map(|r| r.map_err(E::from_remote)),
            write: |v, out| crate::wire::encode_into(out, &v.map_err(|e| e.to_remote())),
            decode_each: |b, n, each| {
                crate::wire::decode_each::<Result<T, RemoteError>>(b, n, &mut |r| each(r.map_err(E::from_remote)))
            },
        }
    }
}

/// Everything else: refused by [`output`].
pub trait OutputRejected<R> {
    /// The verdict.
    fn output_codec(&self) -> NoOutputCodec<R> {
        NoOutputCodec(PhantomData)
    }
}

impl<R> OutputRejected<R> for Probe<R> {}
