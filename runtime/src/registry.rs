//! The dispatch table: every `#[process_task]` function and
//! `#[derive(Process)]` type adds one [`TaskEntry`] at link time.

use linkme::distributed_slice;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{DecodeError, RegistryError};
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

/// How a child's result is decoded: chosen by its task (see
/// `__private::BytesBuf`).
pub(crate) type DecodeOutput<R> = fn(&Incoming<'_>) -> Result<R, DecodeError>;

impl<'r> Incoming<'r> {
    pub(crate) fn new(stream: Stream<Box<dyn Source + Send + 'r>>) -> Self {
        Incoming { stream }
    }

    /// Decodes the whole payload as a `T`, with the inherited handles
    /// available to it.
    pub(crate) fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        wire::handles::decode_payload(|| wire::decode_rest(&self.stream))
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

/// The table itself.
#[doc(hidden)]
#[distributed_slice]
pub static TASKS: [TaskEntry];

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

#[cfg(test)]
mod tests {
    use super::*;

    fn refuse(_: &Incoming<'_>) -> Invoked {
        Invoked::BadResult("never run".into())
    }

    #[distributed_slice(TASKS)]
    static FIRST: TaskEntry =
        TaskEntry { id: "registry::tests::twice#0", path: "first", file: "a.rs", line: 1, invoke: refuse };

    #[distributed_slice(TASKS)]
    static SECOND: TaskEntry =
        TaskEntry { id: "registry::tests::twice#0", path: "second", file: "b.rs", line: 2, invoke: refuse };

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
