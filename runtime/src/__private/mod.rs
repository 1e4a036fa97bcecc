//! What the macros' generated code uses, and frames for tests. Not a
//! public API: no stability promise is made for anything in here.

pub mod probe;

pub use std::any::{Any, TypeId};

pub use ctor;
pub use linkme;
pub use serde;
use serde::Serialize;

pub use crate::pool::batch::{Batch, BatchRun, decode_values, encode_args, run_batch};
pub use crate::registry::{CHILD_INITS, ChildInit, FunctionEntry, Incoming, Invoked, Payload, TASKS, TaskEntry};
pub use crate::remote::CrossError;
pub use crate::wire::CodecError;
pub use crate::wire::plain::Plain;

/// The `TypeId` of a function item, which cannot be named.
pub fn type_id_of<F: 'static>(_: &F) -> TypeId {
    TypeId::of::<F>()
}

/// Puts a `static` into the dispatch table: `#[process_task]` declares its
/// entry through this, so the table and linkme are found through `$crate`
/// however the user's crate names this one.
#[doc(hidden)]
#[macro_export]
macro_rules! __multiproc_table_entry {
    ($(#[$attr:meta])* static $name:ident: $ty:ty = $init:expr;) => {
        $(#[$attr])*
        #[$crate::__private::linkme::distributed_slice($crate::__private::TASKS)]
        #[linkme(crate = $crate::__private::linkme)]
        static $name: $ty = $init;
    };
    // An expression: the entry, declared in a block.
    (&$init:expr) => {{
        #[$crate::__private::linkme::distributed_slice($crate::__private::TASKS)]
        #[linkme(crate = $crate::__private::linkme)]
        static ENTRY: $crate::__private::TaskEntry = $init;
        &ENTRY
    }};
}
pub use __multiproc_table_entry as table_entry;

/// `retain(&entry)`, the first statement of every task; a macro, so that
/// the statement is silent when the path to this crate does not resolve
/// (the one error is then the path's).
#[doc(hidden)]
#[macro_export]
macro_rules! __multiproc_retain {
    ($entry:ident) => {
        $crate::__private::retain(&$entry)
    };
}
pub use __multiproc_retain as retain_entry;

/// Registers `#[child_init]` function `$name` in the set-up table.
#[doc(hidden)]
#[macro_export]
macro_rules! __multiproc_child_init_entry {
    ($name:ident) => {
        const _: () = {
            #[$crate::__private::linkme::distributed_slice($crate::__private::CHILD_INITS)]
            #[linkme(crate = $crate::__private::linkme)]
            static INIT: $crate::__private::ChildInit =
                $crate::__private::ChildInit { path: concat!(module_path!(), "::", stringify!($name)), run: $name };

            // Nothing else names the entry: a constructor (which every
            // linker keeps) refers to it, so that a linker that collects
            // unreferenced sections (GNU ld for Windows) keeps it too.
            #[$crate::__private::ctor::ctor(unsafe, crate_path = $crate::__private::ctor)]
            fn keep() {
                $crate::__private::retain_init(&INIT);
            }
        };
    };
}
pub use __multiproc_child_init_entry as child_init_entry;

/// What a `#[child_init]` keeper does: names the entry, and nothing else.
#[inline(always)]
pub fn retain_init(init: &'static ChildInit) {
    std::hint::black_box(init);
}

/// Keeps a task's table entry in the program: every task's body starts
/// with `retain(&its_entry)`, so the entry is referenced from the function
/// and a linker that collects unreferenced sections (GNU ld for Windows
/// drops table elements nothing names) keeps it wherever the function is.
/// `const`, so a `const fn` can be a task.
#[inline(always)]
pub const fn retain(entry: &'static TaskEntry) {
    std::hint::black_box(entry);
}

/// The argument tuple in a `Box<dyn Any>`, as [`FunctionEntry::measure`]
/// receives it.
pub fn unbox_args<A: 'static>(args: Box<dyn Any>) -> Result<A, CodecError> {
    args.downcast::<A>().map(|a| *a).map_err(|_| CodecError("the arguments are of another type".into()))
}

/// A decoded result, boxed for [`FunctionEntry::decode`].
pub fn box_output<R: 'static>(value: R) -> Box<dyn Any> {
    Box::new(value)
}

/// Implemented by `#[derive(Process)]`: the type's dispatch entry.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a registered process type",
    label = "not registered",
    note = "add `#[derive(multiproc::Process)]` to the definition of `{Self}`; if it is there, fix the `#[multiproc(crate = ...)]` path reported as unresolved"
)]
pub trait Registered {
    /// The type's entry in the dispatch table.
    fn __entry() -> &'static TaskEntry;
}

/// A `Vec<u8>` argument or result as it crosses a channel: one byte
/// string, written and read in one piece, where serde's `Vec<u8>` goes
/// byte by byte. The bytes on the wire are the same either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BytesBuf(pub Vec<u8>);

impl BytesBuf {
    /// The bytes.
    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }
}

impl Serialize for BytesBuf {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for BytesBuf {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = BytesBuf;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }

            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<BytesBuf, E> {
                Ok(BytesBuf(v))
            }

            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<BytesBuf, E> {
                Ok(BytesBuf(v.to_vec()))
            }
        }
        d.deserialize_byte_buf(Visit)
    }
}

/// The body of a process type's entry: decode the value, run it.
pub fn invoke_process<P: crate::Process>(args: &Incoming<'_>) -> Invoked {
    match args.decode::<P>() {
        Ok(mut p) => {
            p.run();
            match Payload::new(()) {
                Ok(value) => Invoked::Returned { value, failure: None },
                Err(e) => Invoked::BadResult(e.0),
            }
        }
        Err(e) => Invoked::BadArguments(e),
    }
}

/// Frames for tests that play a misbehaving parent.
pub mod testing {
    use crate::wire::{self, Bootstrap, FrameKind};

    /// The environment variable a child reads its bootstrap from.
    pub const BOOTSTRAP_ENV: &str = crate::sys::BOOTSTRAP_ENV;

    /// A bootstrap frame for `task_id` with an encoded `payload`; the
    /// build id is this executable's unless one is given.
    pub fn bootstrap_frame(task_id: &str, payload: Vec<u8>, build_id: Option<u64>) -> Vec<u8> {
        let boot = Bootstrap {
            build_id: build_id.unwrap_or_else(crate::sys::imp::exe_identity),
            task_id: task_id.to_owned(),
            name: "Process-test".into(),
            identity: vec![1],
            authkey: vec![0; 32],
            parent_pid: std::process::id(),
            parent_name: "MainProcess".into(),
            daemon: false,
            from_main_thread: false,
            handle_info: Vec::new(),
            handles: 0,
            progress: false,
            reports: crate::report::ChildReports::default(),
        };
        let head = wire::encode(&boot).expect("a bootstrap head encodes");
        let mut frame = wire::header(FrameKind::Bootstrap, (head.len() + payload.len()) as u64).to_vec();
        frame.extend_from_slice(&head);
        frame.extend_from_slice(&payload);
        frame
    }

    /// Encodes a value as a payload.
    pub fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
        wire::encode(value).expect("the value encodes")
    }

    /// Reads one frame from the front of `bytes` as a blocking reader
    /// would: the kind's byte and the body, or why it was refused.
    pub fn read_frame(mut bytes: &[u8]) -> Result<(u8, Vec<u8>), String> {
        wire::read_frame(&mut bytes).map(|(kind, body)| (kind as u8, body)).map_err(|e| e.to_string())
    }

    /// Splits one complete frame off the front of `bytes`: the kind's
    /// byte and the body's length, `None` if more bytes are needed, or
    /// why it was refused.
    pub fn split_frame(bytes: &[u8]) -> Result<Option<(u8, usize)>, String> {
        wire::split_frame(bytes).map(|f| f.map(|(kind, body)| (kind as u8, body.len()))).map_err(|e| e.to_string())
    }

    /// Decodes `body` as a `T` twice: whole, as a received message is,
    /// and as a stream delivered in pieces of at most `piece` bytes, as
    /// a task's arguments and result are. The two must agree.
    pub fn decode_both<T: serde::de::DeserializeOwned>(
        body: &[u8],
        piece: usize,
    ) -> (Result<T, crate::DecodeError>, Result<T, crate::DecodeError>) {
        /// Hands out at most `piece` bytes per read.
        struct Pieces<'a>(&'a [u8], usize);
        impl std::io::Read for Pieces<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.1).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        impl wire::Source for Pieces<'_> {}
        let stream = wire::Stream::new(Pieces(body, piece.max(1)), body.len() as u64);
        let streamed = wire::decode_rest(&stream);
        (wire::decode(body), streamed)
    }

    /// The protocol version a frame header carries.
    pub const PROTOCOL_VERSION: u8 = wire::PROTOCOL_VERSION;

    /// How many updates `bar` received from its child.
    pub fn progress_updates(bar: &crate::progress::Bar) -> u64 {
        crate::progress::updates_received(bar)
    }

    /// The id of a registered task.
    pub fn task_id<F: crate::Task<A>, A>(task: F) -> &'static str {
        task.__entry().expect("a registered task").id
    }
}
