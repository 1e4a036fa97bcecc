//! The dispatch table: every `#[process_task]` function and
//! `#[derive(Process)]` type adds one [`TaskEntry`] at link time.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::OnceLock;

use linkme::distributed_slice;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{DecodeError, RegistryError};
use crate::pool::batch::{BatchRun, EncodeArgs};
use crate::wire::{self, CodecError, Part, Source, Stream};

/// One registered entry point.
#[doc(hidden)]
#[derive(Debug)]
pub struct TaskEntry {
    /// Stable id: module path, name, and a hash of the signature.
    pub id: &'static str,
    /// The item's path, for messages.
    pub path: &'static str,
    /// Where it was declared, for messages about duplicates.
    pub file: &'static str,
    /// Line of the declaration.
    pub line: u32,
    /// Decodes the arguments, runs the target, measures its return value.
    pub invoke: fn(&Incoming<'_>) -> Invoked,
    /// The parent's side of a function (`None` for a process type).
    pub function: Option<&'static FunctionEntry>,
}

/// What a parent needs to start a registered function: how to recognise
/// it, and its arguments' and result's codecs. The arguments and the
/// result pass through `Any` because the generic code that starts a
/// function only knows it as some `Fn`; the codecs know the types.
#[doc(hidden)]
#[derive(Debug)]
pub struct FunctionEntry {
    /// The type of the function item.
    pub type_id: fn() -> TypeId,
    /// The function's address, to recognise a function pointer.
    pub address: fn() -> usize,
    /// Measures the argument tuple (a `Box` of exactly that type).
    pub measure: fn(Box<dyn Any>) -> Result<Payload, CodecError>,
    /// Decodes the result, boxed as exactly the function's return type.
    pub decode: fn(&Incoming<'_>) -> Result<Box<dyn Any>, DecodeError>,
    /// A pool's batch: encodes the argument tuples of `items` (a `Vec` of
    /// exactly the function's tuple, emptied) onto the batch, handing each
    /// that cannot be encoded to the callback with its position.
    pub encode_args: EncodeArgs,
    /// A pool's batch: runs the next tasks of a batch, decoding their
    /// arguments from it and encoding their values (or why they failed)
    /// onto the message it builds.
    pub run_batch: fn(&mut BatchRun<'_>),
    /// A pool's batch: decodes `count` values from the front of a slice
    /// onto the end of `out` (a `Vec` of exactly the function's return
    /// type).
    pub decode_values: fn(&mut &[u8], usize, &mut dyn Any) -> Result<(), DecodeError>,
}

/// What running an entry produced.
#[doc(hidden)]
#[derive(Debug)]
pub enum Invoked {
    /// The target returned; its value, to be encoded into the report, and,
    /// for a returned `Err`, the error's debug text (the child then exits
    /// with code 1).
    Returned {
        /// The return value.
        value: Payload,
        /// `Some` when the value is an `Err`.
        failure: Option<String>,
    },
    /// The payload did not decode as the target's arguments.
    BadArguments(DecodeError),
    /// The return value could not be encoded.
    BadResult(String),
}

/// A payload still arriving on a channel, a task's arguments or its
/// result: it is decoded straight out of the channel into the values.
#[doc(hidden)]
pub struct Incoming<'r> {
    stream: Stream<Box<dyn Source + Send + 'r>>,
}

/// How a child's result is decoded: by the codec its target's entry
/// names, into a value of the type the parent expects.
pub(crate) struct DecodeOutput<R> {
    erased: fn(&Incoming<'_>) -> Result<Box<dyn Any>, DecodeError>,
    _output: std::marker::PhantomData<fn() -> R>,
}

impl<R: 'static> DecodeOutput<R> {
    pub(crate) fn new(erased: fn(&Incoming<'_>) -> Result<Box<dyn Any>, DecodeError>) -> Self {
        DecodeOutput { erased, _output: std::marker::PhantomData }
    }

    pub(crate) fn decode(&self, input: &Incoming<'_>) -> Result<R, DecodeError> {
        let value = (self.erased)(input)?;
        // The entry was found for this very function, so its codec decodes
        // its return type; anything else is a registry bug made visible.
        value.downcast::<R>().map(|v| *v).map_err(|_| DecodeError::Invalid("the result decoded as another type".into()))
    }
}

impl<R> Clone for DecodeOutput<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for DecodeOutput<R> {}

impl<'r> Incoming<'r> {
    pub(crate) fn new(stream: Stream<Box<dyn Source + Send + 'r>>) -> Self {
        Incoming { stream }
    }

    /// Decodes the whole payload as a `T`, with the inherited handles
    /// available to it.
    pub(crate) fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        wire::handles::decode_payload(|| wire::decode_rest(&self.stream))
    }

    /// As [`decode`](Self::decode), keeping the handles it leaves unclaimed
    /// for a payload carried inside this one.
    pub(crate) fn decode_keeping<T: DeserializeOwned>(&self) -> (Result<T, DecodeError>, wire::handles::Unclaimed) {
        wire::handles::decode_payload_keeping(|| wire::decode_rest(&self.stream))
    }
}

/// A value with its measured encoding length, to be encoded straight into
/// a frame: a task's arguments or return value.
#[doc(hidden)]
pub struct Payload {
    value: Box<dyn Part + Send>,
    len: u64,
}

impl Payload {
    /// Measures `value`; an error if it cannot be encoded.
    pub(crate) fn new<R: Serialize + Send + 'static>(value: R) -> Result<Self, CodecError> {
        let len = value.encoded_len()?;
        Ok(Payload { value: Box::new(value), len })
    }

    pub(crate) fn part(&self) -> (&dyn Part, u64) {
        (&*self.value, self.len)
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payload").field("len", &self.len).finish_non_exhaustive()
    }
}

// The tables, named after this version (see build.rs): `TASKS` and
// `CHILD_INITS`.
include!(concat!(env!("OUT_DIR"), "/tables.rs"));

/// A `#[child_init]` function: set-up that runs in every child before its
/// target.
#[doc(hidden)]
pub struct ChildInit {
    /// `module::path::name`, for reports.
    pub path: &'static str,
    /// The function.
    pub run: fn(),
}

/// Finds the entry with this id; a duplicate id is an error naming every
/// declaration that claims it.
pub(crate) fn lookup(id: &str) -> Result<&'static TaskEntry, RegistryError> {
    let mut found = TASKS.iter().filter(|e| e.id == id);
    let Some(first) = found.next() else {
        return Err(RegistryError::NotRegistered { id: id.to_owned() });
    };
    let rest: Vec<_> = found.collect();
    if rest.is_empty() {
        return Ok(first);
    }
    let sites: Vec<String> =
        std::iter::once(first).chain(rest).map(|e| format!("`{}` at {}:{}", e.path, e.file, e.line)).collect();
    Err(RegistryError::Duplicate { id: id.to_owned(), sites })
}

/// Every registered entry.
pub(crate) fn all() -> impl Iterator<Item = &'static TaskEntry> {
    TASKS.iter()
}

/// The table's functions, indexed by their type and by their address.
struct Index {
    by_type: HashMap<TypeId, Vec<&'static TaskEntry>>,
    by_address: HashMap<usize, Vec<&'static TaskEntry>>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index = Index { by_type: HashMap::new(), by_address: HashMap::new() };
        for entry in TASKS.iter() {
            if let Some(f) = entry.function {
                index.by_type.entry((f.type_id)()).or_default().push(entry);
                index.by_address.entry((f.address)()).or_default().push(entry);
            }
        }
        index
    })
}

/// The entry of the function whose type is `F`, or, for a function
/// pointer, whose address is `address`.
pub(crate) fn function<F: 'static>(address: Option<usize>) -> Result<&'static TaskEntry, RegistryError> {
    let index = index();
    let found = match address {
        Some(a) => index.by_address.get(&a),
        None => index.by_type.get(&TypeId::of::<F>()),
    };
    match found.map(Vec::as_slice) {
        Some([entry]) => Ok(entry),
        Some(several) => {
            let sites = several.iter().map(|e| format!("`{}` at {}:{}", e.path, e.file, e.line)).collect();
            if address.is_some() {
                Err(RegistryError::SameAddress { sites })
            } else {
                Err(RegistryError::Duplicate { id: several[0].id.to_owned(), sites })
            }
        }
        None => Err(RegistryError::NotATask { name: std::any::type_name::<F>().to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refuse(_: &Incoming<'_>) -> Invoked {
        Invoked::BadResult("never run".into())
    }

    #[distributed_slice(TASKS)]
    static FIRST: TaskEntry = TaskEntry {
        id: "registry::tests::twice#0",
        path: "first",
        file: "a.rs",
        line: 1,
        invoke: refuse,
        function: None,
    };

    #[distributed_slice(TASKS)]
    static SECOND: TaskEntry = TaskEntry {
        id: "registry::tests::twice#0",
        path: "second",
        file: "b.rs",
        line: 2,
        invoke: refuse,
        function: None,
    };

    #[test]
    fn lookup_failures_are_matchable() {
        assert_eq!(
            lookup("registry::tests::absent#0").unwrap_err(),
            RegistryError::NotRegistered { id: "registry::tests::absent#0".into() }
        );
        match lookup("registry::tests::twice#0").unwrap_err() {
            RegistryError::Duplicate { id, mut sites } => {
                assert_eq!(id, "registry::tests::twice#0");
                sites.sort();
                assert_eq!(sites, ["`first` at a.rs:1", "`second` at b.rs:2"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
