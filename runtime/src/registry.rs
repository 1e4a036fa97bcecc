//! The dispatch table: every `#[process_task]` function and
//! `#[derive(Process)]` type adds one [`TaskEntry`] at link time.

use linkme::distributed_slice;

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
    /// Decodes the payload, runs the target, encodes its return value.
    pub invoke: fn(&[u8]) -> Invoked,
}

/// What running an entry produced.
#[doc(hidden)]
#[derive(Debug)]
pub enum Invoked {
    /// The target returned; its encoded value and, for a returned `Err`,
    /// the error's debug text (the child then exits with code 1).
    Returned {
        /// The encoded return value.
        bytes: Vec<u8>,
        /// `Some` when the value is an `Err`.
        failure: Option<String>,
    },
    /// The payload did not decode as the target's arguments.
    BadArguments(String),
    /// The return value could not be encoded.
    BadResult(String),
}

/// The table itself.
#[doc(hidden)]
#[distributed_slice]
pub static TASKS: [TaskEntry];

/// Finds the entry with this id; a duplicate id is an error naming every
/// declaration that claims it.
pub(crate) fn lookup(id: &str) -> Result<&'static TaskEntry, String> {
    let mut found = TASKS.iter().filter(|e| e.id == id);
    let Some(first) = found.next() else {
        return Err(format!("task `{id}` is not registered in this binary"));
    };
    let rest: Vec<_> = found.collect();
    if rest.is_empty() {
        return Ok(first);
    }
    let sites: Vec<String> =
        std::iter::once(first).chain(rest).map(|e| format!("`{}` at {}:{}", e.path, e.file, e.line)).collect();
    Err(format!("task id `{id}` is registered more than once: {}", sites.join(", ")))
}
