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
//! `MULTIPROC_BOOTSTRAP_0_1` (named after this version, so that two
//! incompatible versions in one program keep apart) set to the number of an
//! inherited descriptor (on Windows, a handle value), and writes one frame
//! there: the task, its arguments, the child's name and identity. The variable is removed from
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

mod args;
mod authkey;
mod bootstrap;
mod error;
mod exit;
mod handle;
mod output;
mod pipe;
pub mod pool;
mod process;
pub mod progress;
#[cfg(target_os = "linux")]
mod queue;
mod registry;
mod remote;
mod report;
mod shared_memory;
mod sync;
mod sys;
mod task;
mod util;
mod wait;
mod wire;

pub use args::{Arg, Bare, IntoArgs, Kwargs, Named, Tuple};
pub use authkey::AuthKey;
pub use bootstrap::BOOTSTRAP_SILENCE;
pub use error::{BootstrapFailure, DecodeError, Error, MAX_DEPTH, PanicInfo, RegistryError};
pub use exit::ExitStatus;
pub use handle::{Handle, Shareable};
/// Registers a free function as a task that can run in another process.
///
/// The function is left as it was written: a plain function, called,
/// passed, pointed to and shadowed like any other. The attribute adds it
/// to the dispatch table under a stable id (module path, name, and a hash
/// of its signature) and generates `WorkArgs { .. }` for `fn work`, the
/// named form of its arguments (Python's `kwargs`, see [`Kwargs`]).
///
/// Arguments must be `Serialize + DeserializeOwned + Send + 'static`, and
/// so must the return value, or it is a `Result<T, E>` whose `E` is one of
/// those or a common error type without serde (`io::Error`,
/// `ParseIntError`, `Box<dyn Error + Send + Sync>`, `anyhow::Error` with
/// the `anyhow` feature, …; see [`RemoteError`]): the parent gets the same
/// type back, rebuilt from the child's message, kind and source chain. A
/// returned `Err` makes the child's exit code 1.
///
/// A type that cannot cross is one compile error, at that type. Generic,
/// `async`, `unsafe` and `extern` functions, methods, more than 12
/// arguments, and borrowed, `impl Trait`, `dyn` or function-pointer
/// argument types are compile errors too.
///
/// The generated code finds this crate under the name your `Cargo.toml`
/// gives it (a renamed dependency such as `mp = { package = "multiproc" }`
/// works as is). When your crate reaches multiproc only through another
/// crate that re-exports it, say where: `#[process_task(crate =
/// facade::multiproc)]`; without it the build stops with one error that
/// says so.
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

/// Registers set-up code that runs in every child process before its task:
/// the place for what `main` would do (a logger, a tracing subscriber, a
/// configuration global), since a child never runs `main`.
///
/// Python runs the main module's top level again in a spawned child, so
/// set-up written there reaches every child. A Rust child starts from the
/// same binary but goes from the runtime's start-up hook straight to its
/// task: without `#[child_init]`, anything `main` sets up is silently
/// absent in every child.
///
/// The function takes nothing and returns nothing; it stays an ordinary
/// function, so `main` can call it too when the parent needs the same
/// set-up (it does not run in the parent by itself).
///
/// # What runs in a child, in order
///
/// 1. Static constructors (`#[ctor]` functions, your dependencies' and
///    yours), before or after the runtime's own, in the order the platform
///    runs them. `current_process()` already knows the child there.
/// 2. Every `#[child_init]` function of the program (of every crate in it),
///    in an unspecified order, on the child's main thread, after the
///    child knows its name, pid and parent, and before its task's
///    arguments are decoded. They run in every child: tasks and process
///    types, daemonic or not, children of children.
/// 3. The task, or the process type's `run`.
///
/// What does not run: `main`, and so everything it does (globals set
/// there, a logger installed there, its threads, its `std::env::set_var`
/// calls made after the child was started). The environment is the one
/// the parent had when it started the child.
///
/// A `#[child_init]` function that panics fails the child as its task
/// would: the parent's `join` gets [`Error::Panicked`] with the message
/// and location. It cannot start processes of its own (that gives
/// [`Error::NotBootstrapped`], as Python's bootstrapping guard does); the
/// task can. A panic hook it installs replaces the one the runtime uses to
/// print a child's panic (the parent still gets the panic's message).
///
/// ```
/// use std::sync::OnceLock;
///
/// use multiproc::{Builder, child_init, process_task};
///
/// static GREETING: OnceLock<String> = OnceLock::new();
///
/// /// Runs in every child before its task, as `main` would have.
/// #[child_init]
/// fn set_up() {
///     let _ = GREETING.set(format!("configured in {}", multiproc::current_process().name()));
/// }
///
/// #[process_task]
/// fn greeting() -> String {
///     GREETING.get().cloned().unwrap_or_default()
/// }
///
/// fn main() -> Result<(), multiproc::Error> {
///     let child = Builder::new(greeting, ()).name("worker").start()?;
///     assert_eq!(child.join()?, "configured in worker");
///     // The parent runs it only when asked.
///     assert!(GREETING.get().is_none());
///     set_up();
///     assert_eq!(GREETING.get().unwrap(), "configured in MainProcess");
///     Ok(())
/// }
/// ```
///
/// `#[child_init(crate = facade::multiproc)]` names this crate when it
/// comes through a crate that re-exports it.
pub use multiproc_macros::child_init;
pub use pipe::{Connection, ConnectionError, Duplex, ReadOnly, Readable, Writable, WriteOnly, pipe, pipe_one_way};
pub use pool::Pool;
pub use report::{ChildReports, child_reports, set_child_reports};
pub use wait::{Waitable, wait};

/// Registers a type as a process type: see the [`Process`](trait@Process)
/// trait for an example. The type must not be generic.
/// Like `#[process_task]`, it finds this crate under the name your
/// `Cargo.toml` gives it; `#[multiproc(crate = facade::multiproc)]` names
/// it when it comes through a crate that re-exports it.
pub use multiproc_macros::Process;
pub use process::{
    ActiveChild, Builder, Child, CloseError, CurrentProcess, ParentProcess, active_children, cpu_count,
    current_process, parent_process, spawn, usable_cpu_count,
};
#[cfg(target_os = "linux")]
pub use queue::{DEFAULT_RING_SIZE, GetError, JoinableQueue, PutError, Queue, SimpleQueue, TaskDoneError};
pub use remote::RemoteError;
pub use shared_memory::{SharedMemory, SharedMemoryError, SharedMemoryView};
pub use sync::{
    Array, Barrier, BoundedSemaphore, BrokenBarrier, Condition, ConditionGuard, Event, Lock, LockGuard, LockResult,
    Locked, Owner, OwnerDied, Pod, RLock, RLockGuard, RawArray, RawValue, ReleaseError, Semaphore, SemaphoreGuard,
    SharedLock, TryAcquireError, TryLockResult, Value,
};
pub use task::{Process, Task};

/// What the macros' generated code uses. Not a public API: no stability
/// promise is made for anything in here.
#[doc(hidden)]
pub mod __private;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
