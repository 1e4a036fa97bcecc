//! Python's `multiprocessing`, for Rust.
//!
//! Mark ordinary functions with [`#[process_task]`](process_task) (or derive
//! [`Process`](macro@Process) for a type with a `run` method) and start them
//! in other processes. Children are started by **re-executing the current
//! binary**; a constructor that runs before `main` recognises the child,
//! reads what to run from a private channel, and dispatches through a
//! table the macros fill at link time. No `fork`, so it is safe with
//! threads; no closures on the wire, so a wrong argument type is a compile
//! error rather than a run-time pickling failure.
//!
//! ```
//! use multiproc::{Builder, process_task};
//!
//! #[process_task]
//! fn greet(name: String) -> String {
//!     format!("hello, {name}, from process {}", std::process::id())
//! }
//!
//! # fn main() -> Result<(), multiproc::Error> {
//! let child = Builder::new(greet, ("world".to_string(),)).start()?;
//! let pid = child.pid();
//! assert_eq!(child.join()?, format!("hello, world, from process {pid}"));
//! # Ok(())
//! # }
//! ```
//!
#![doc = include_str!("../GUIDE.md")]
//!
//! # How a child knows it is one
//!
//! The parent starts the child with the environment variable
//! `MULTIPROC_BOOTSTRAP` set to the number of an inherited descriptor (on
//! Windows, a handle value), and writes one frame there: the task, its
//! arguments, the child's name and identity. The variable is removed from
//! the environment before any user code runs, so neither your code nor the
//! child's own children see it. Because anyone can set a variable, it is
//! treated as an entry point, and a process trusts it only so far:
//!
//! - in secure-execution mode (a program run setuid, setgid or with file
//!   capabilities) a process never acts as a child: it prints one line and
//!   exits with [`BootstrapFailure::Insecure`] (118);
//! - the descriptor must be what a parent creates: a Unix stream socket
//!   whose other end the parent process made (on Windows, a pipe); a
//!   terminal, a pipe, a file or another process's socket is refused before
//!   anything is read ([`BootstrapFailure::BadEnvironment`], 117);
//! - each read of the frame waits at most [`BOOTSTRAP_SILENCE`]: a stalled
//!   parent or a silent descriptor ends the child with
//!   [`BootstrapFailure::Stalled`] (119), never a hang.
//!
//! The child's side runs from a constructor, before `main`. Constructors of
//! your own may run before or after it; if one asks for
//! [`current_process`] first, it gets the child's identity all the same.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod authkey;
mod bootstrap;
mod error;
mod exit;
mod handle;
mod pipe;
mod process;
#[cfg(target_os = "linux")]
mod queue;
mod registry;
mod report;
mod sys;
mod task;
mod util;
mod wait;
mod wire;

pub use authkey::AuthKey;
pub use bootstrap::BOOTSTRAP_SILENCE;
pub use error::{BootstrapFailure, DecodeError, Error, MAX_DEPTH, PanicInfo, RegistryError};
pub use exit::ExitStatus;
pub use handle::{Handle, Shareable};
/// Registers a free function as a task that can run in another process.
///
/// The function keeps its body and stays callable (`work(a, b)` still
/// works: the name becomes a constant that derefs to the function). The
/// attribute adds the function to the dispatch table under a stable id
/// (module path, name, and a hash of its signature), implements
/// [`Task`] for it, and generates `WorkArgs { .. }` for `fn work`, the named
/// form of its arguments (Python's `kwargs`).
///
/// Arguments and the return value must be `Serialize + DeserializeOwned +
/// Send + 'static`. Generic, `async`, `unsafe` and `extern` functions,
/// methods, and borrowed, `impl Trait`, `dyn` or function-pointer types are
/// compile errors. A return type spelled `Result<T, E>` makes the child's
/// exit code 1 when it returns `Err` (the `Err` still comes back typed).
///
/// `#[process_task(crate = path)]` names the runtime when it is not
/// reachable as `::multiproc`.
///
/// ```
/// use multiproc::{Builder, process_task};
///
/// #[process_task]
/// fn describe(name: String, age: u32) -> Result<String, String> {
///     if age > 150 { Err(format!("{name}: implausible age")) } else { Ok(format!("{name} is {age}")) }
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// assert_eq!(describe("Ann".into(), 30), Ok("Ann is 30".to_string())); // still a function
/// let child = Builder::new(describe, DescribeArgs { name: "Bob".into(), age: 200 }).start()?;
/// assert_eq!(child.wait()?.exitcode(), 1);
/// assert_eq!(child.join()?, Err("Bob: implausible age".to_string()));
/// # Ok(())
/// # }
/// ```
pub use multiproc_macros::process_task;
pub use pipe::{Connection, ConnectionError, Duplex, ReadOnly, Readable, Writable, WriteOnly, pipe, pipe_one_way};
pub use report::{ChildReports, child_reports, set_child_reports};
pub use wait::{Waitable, wait};

/// Registers a type as a process type: see the [`Process`](trait@Process)
/// trait for an example. The type must not be generic.
/// `#[multiproc(crate = path)]` names the runtime when it is not reachable
/// as `::multiproc`.
pub use multiproc_macros::Process;
pub use process::{
    ActiveChild, Builder, Child, CloseError, CurrentProcess, ParentProcess, active_children, cpu_count,
    current_process, parent_process, spawn, usable_cpu_count,
};
#[cfg(target_os = "linux")]
pub use queue::{DEFAULT_RING_SIZE, GetError, JoinableQueue, PutError, Queue, SimpleQueue, TaskDoneError};
pub use task::{Process, Task};

/// What the macros' generated code uses. Not a public API: no stability
/// promise is made for anything in here.
#[doc(hidden)]
pub mod __private {
    use std::fmt::Debug;

    pub use linkme;
    pub use serde;
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use crate::error::DecodeError;
    pub use crate::registry::{Incoming, Invoked, Payload, TASKS, TaskEntry};

    /// Implemented by `#[derive(Process)]`: the type's dispatch entry.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not a registered process type",
        label = "not registered",
        note = "add `#[derive(multiproc::Process)]` to the definition of `{Self}`"
    )]
    pub trait Registered {
        /// The type's entry in the dispatch table.
        fn __entry() -> &'static TaskEntry;
    }

    /// Compile-time check, spanned on an argument's type.
    pub const fn assert_argument<T: Serialize + DeserializeOwned + Send + 'static>() {}

    /// Compile-time check, spanned on the return type.
    pub const fn assert_output<T: Serialize + DeserializeOwned + Send + 'static>() {}

    /// Decodes a task's argument tuple.
    pub fn decode_args<T: DeserializeOwned>(args: &Incoming<'_>) -> Result<T, DecodeError> {
        args.decode()
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

    /// Decodes a task's result, as its task chose.
    pub fn decode_output<T: DeserializeOwned>(input: &Incoming<'_>) -> Result<T, DecodeError> {
        input.decode()
    }

    /// Measures a task's return value, to be encoded into its report.
    pub fn finish<R: Serialize + Send + 'static>(value: R) -> Invoked {
        match Payload::new(value) {
            Ok(value) => Invoked::Returned { value, failure: None },
            Err(e) => Invoked::BadResult(e.0),
        }
    }

    /// The debug text of a task's returned `Err`, which also makes the exit
    /// code 1.
    pub fn failure_of<T: Serialize, E: Serialize + Debug>(value: &Result<T, E>) -> Option<String> {
        value.as_ref().err().map(|e| format!("{e:?}"))
    }

    /// Measures a task's `Result`, whose `Err` was described by
    /// [`failure_of`].
    pub fn finish_fallible<R: Serialize + Send + 'static>(value: R, failure: Option<String>) -> Invoked {
        match finish(value) {
            Invoked::Returned { value, .. } => Invoked::Returned { value, failure },
            other => other,
        }
    }

    /// The body of a process type's entry: decode the value, run it.
    pub fn invoke_process<P: crate::Process>(args: &Incoming<'_>) -> Invoked {
        match args.decode::<P>() {
            Ok(mut p) => {
                p.run();
                finish(())
            }
            Err(e) => Invoked::BadArguments(e),
        }
    }

    /// Frames for tests that play a misbehaving parent.
    pub mod testing {
        use crate::wire::{self, Bootstrap, FrameKind};

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

        /// The id of a registered task.
        pub fn task_id<T: crate::Task>(task: T) -> &'static str {
            task.__entry().id
        }
    }
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
