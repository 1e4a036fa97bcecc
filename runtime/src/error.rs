//! Errors.

use std::fmt;
use std::io;

use crate::exit::ExitStatus;

/// Everything that can go wrong starting, waiting for or talking to a
/// process.
///
/// `Debug` (what `unwrap` and `fn main() -> Result<_, Error>` print) is the
/// variant's name and its message, then a child's backtrace, if it sent
/// one, on lines of its own, then the chain of causes.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The child panicked. Its message, where, and (with `RUST_BACKTRACE`
    /// set) a backtrace.
    #[error("process {name} panicked{}: {}", .panic.location.as_deref().map(|l| format!(" at {l}")).unwrap_or_default(), .panic.message)]
    Panicked {
        /// The child's name.
        name: String,
        /// What the panic said.
        panic: PanicInfo,
    },
    /// The child ended without reporting a result: it called
    /// `std::process::exit`, was killed, or crashed.
    #[error("process {name} ended with {status} before returning a result")]
    NoResult {
        /// The child's name.
        name: String,
        /// How it ended.
        status: ExitStatus,
    },
    /// The child ended, but its exit status was collected by someone else:
    /// the kernel, when `SIGCHLD` is set to `SIG_IGN`, or a `waitpid(-1)`
    /// elsewhere in this process. Its result, if it sent one, is still
    /// returned by [`Child::join`](crate::Child::join).
    #[error("process {name} ended, but its exit status was collected elsewhere (is SIGCHLD ignored?)")]
    StatusUnavailable {
        /// The child's name.
        name: String,
    },
    /// The child could not start its target (bad bootstrap frame, unknown
    /// task, a different binary…). It exited with
    /// [`BootstrapFailure::exit_code`].
    #[error("process {name} failed to start: {kind}: {message}")]
    Bootstrap {
        /// The child's name.
        name: String,
        /// What went wrong.
        kind: BootstrapFailure,
        /// The child's one-line explanation.
        message: String,
    },
    /// The child's result arrived but could not be decoded, or its frame
    /// was malformed.
    #[error("process {name} sent a result that could not be decoded: {error}")]
    BadResult {
        /// The child's name.
        name: String,
        /// Why decoding failed.
        #[source]
        error: DecodeError,
    },
    /// The child's target returned a value that could not be encoded (a
    /// `Serialize` implementation failed); the child exited with code 1.
    #[error("process {name} returned a value that could not be encoded: {message}")]
    Unencodable {
        /// The child's name.
        name: String,
        /// Why encoding failed.
        message: String,
    },
    /// The arguments or process value could not be serialized at `start`.
    #[error("could not encode the arguments of {task}: {message}")]
    Encode {
        /// The task's path.
        task: &'static str,
        /// Why encoding failed.
        message: String,
    },
    /// The task is not in this binary's dispatch table, or is there twice.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A daemonic process tried to start a child (Python: "daemonic
    /// processes are not allowed to have children").
    #[error("daemonic processes are not allowed to have children")]
    DaemonCannotHaveChildren,
    /// `start` was called by a re-executed child that has not been
    /// dispatched: the bootstrap hook did not run before user code. This is
    /// the guard that turns a would-be fork bomb into an error.
    #[error(
        "an attempt was made to start a new process before the current process finished its bootstrapping phase; \
         the multiproc dispatcher did not run in this binary"
    )]
    NotBootstrapped,
    /// The child is still running (from [`Child::close`](crate::Child::close)).
    #[error("cannot close a process while it is still running; join() or terminate() it first")]
    StillRunning,
    /// A [`Connection`](crate::Connection) operation failed (what `?`
    /// makes of a [`ConnectionError`](crate::ConnectionError)).
    #[error(transparent)]
    Connection(#[from] crate::ConnectionError),
    /// A queue `get` failed.
    #[cfg(target_os = "linux")]
    #[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
    #[error(transparent)]
    Get(#[from] crate::GetError),
    /// A queue `put` failed; the value that was not put is dropped (match
    /// the [`PutError`](crate::PutError) itself, before `?`, to keep it).
    #[cfg(target_os = "linux")]
    #[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
    #[error(transparent)]
    Put(crate::PutError<()>),
    /// A `task_done` failed.
    #[cfg(target_os = "linux")]
    #[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
    #[error(transparent)]
    TaskDone(#[from] crate::TaskDoneError),
    /// A pool worker died (it was killed, crashed or called `exit`) while
    /// it ran this task. The pool replaced it; the other tasks go on.
    #[error("pool worker {pid} ended with {status} while it ran this task")]
    WorkerDied {
        /// The worker's process id.
        pid: u32,
        /// How it ended: the signal or exit code.
        status: ExitStatus,
    },
    /// A pool task ran longer than its timeout: its worker was killed and
    /// replaced; the other tasks go on.
    #[error("the task ran longer than its timeout of {timeout:?}; its worker was killed")]
    TaskTimedOut {
        /// The timeout the task was given.
        timeout: std::time::Duration,
    },
    /// A wait with a timeout ended before the result was ready (Python's
    /// `multiprocessing.TimeoutError`); the result can still be waited for.
    #[error("the result was not ready within {0:?}")]
    Timeout(std::time::Duration),
    /// Work was given to a pool after `close` or `terminate` (Python's
    /// `ValueError("Pool not running")`).
    #[error("the pool is not running: it was closed or terminated")]
    PoolNotRunning,
    /// `join` was called on a pool that is neither closed nor terminated
    /// (Python's `ValueError("Pool is still running")`).
    #[error("the pool is still running: close() or terminate() it before join()")]
    PoolStillRunning,
    /// The pool was terminated (or dropped) before this task finished.
    #[error("the pool was terminated before the task finished")]
    PoolTerminated,
    /// A pool worker could not be made ready: its initializer panicked or
    /// returned an error, or the process could not start. Every task of
    /// the pool fails with this error from then on.
    #[error("a pool worker could not start: {message}")]
    WorkerStart {
        /// What went wrong.
        message: String,
    },
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The variant's name, for `Debug`.
    fn variant(&self) -> &'static str {
        match self {
            Error::Panicked { .. } => "Panicked",
            Error::NoResult { .. } => "NoResult",
            Error::StatusUnavailable { .. } => "StatusUnavailable",
            Error::Bootstrap { .. } => "Bootstrap",
            Error::BadResult { .. } => "BadResult",
            Error::Unencodable { .. } => "Unencodable",
            Error::Encode { .. } => "Encode",
            Error::Registry(_) => "Registry",
            Error::DaemonCannotHaveChildren => "DaemonCannotHaveChildren",
            Error::NotBootstrapped => "NotBootstrapped",
            Error::StillRunning => "StillRunning",
            Error::Connection(_) => "Connection",
            #[cfg(target_os = "linux")]
            Error::Get(_) => "Get",
            #[cfg(target_os = "linux")]
            Error::Put(_) => "Put",
            #[cfg(target_os = "linux")]
            Error::TaskDone(_) => "TaskDone",
            Error::WorkerDied { .. } => "WorkerDied",
            Error::TaskTimedOut { .. } => "TaskTimedOut",
            Error::Timeout(_) => "Timeout",
            Error::PoolNotRunning => "PoolNotRunning",
            Error::PoolStillRunning => "PoolStillRunning",
            Error::PoolTerminated => "PoolTerminated",
            Error::WorkerStart { .. } => "WorkerStart",
            Error::Io { .. } => "Io",
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.to_string();
        write!(f, "{}: {message}", self.variant())?;
        if let Error::Panicked { panic: PanicInfo { backtrace: Some(bt), .. }, .. } = self {
            write!(f, "\n\nthe child's backtrace:\n{}", bt.trim_end())?;
        }
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            // A cause the message already quotes is not repeated.
            let text = c.to_string();
            if !message.contains(&text) {
                write!(f, "\n\ncaused by: {text}")?;
            }
            cause = c.source();
        }
        Ok(())
    }
}

/// `?` on an OS-level call of this crate that returns [`io::Error`]
/// (creating a pipe or a queue).
impl From<io::Error> for Error {
    fn from(source: io::Error) -> Self {
        Error::Io { context: "an operating-system call failed", source }
    }
}

impl Error {
    pub(crate) fn io(context: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { context, source }
    }
}

/// Why a target cannot be dispatched by this binary ([`Error::Registry`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No entry has this id: the binary that runs is not the one the task
    /// was compiled into.
    #[error("task `{id}` is not registered in this binary")]
    NotRegistered {
        /// The task's id (module path, name and a hash of its signature).
        id: String,
    },
    /// The function given to start is not marked `#[process_task]` (or is
    /// a closure), so no child could find it.
    #[error(
        "`{name}` cannot run in another process: {}",
        if name.contains("{{closure}}") {
            "a closure has no name a child could find; make it a function marked `#[multiproc::process_task]`"
        } else {
            "mark the function `#[multiproc::process_task]`"
        }
    )]
    NotATask {
        /// The function's (or closure's) type name.
        name: String,
    },
    /// A function pointer whose address several tasks share: functions
    /// with identical machine code may be merged by the compiler or linker.
    #[error(
        "a function pointer is ambiguous: {} have the same address; pass the function itself rather than a pointer",
        .sites.join(" and ")
    )]
    SameAddress {
        /// The tasks at that address: path and `file:line`.
        sites: Vec<String>,
    },
    /// Two entries claim this id (two declarations of the same function
    /// in one module, one compiled twice into the binary, …).
    #[error("task id `{id}` is registered more than once: {}", .sites.join(", "))]
    Duplicate {
        /// The id.
        id: String,
        /// Every declaration that claims it: path and `file:line`.
        sites: Vec<String>,
    },
}

/// A panic that happened in a child, as reported by the child.
/// `#[non_exhaustive]`: it may learn more (the thread's name, say).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PanicInfo {
    /// The panic message (`"<non-string panic payload>"` if it was not a
    /// string).
    pub message: String,
    /// `file:line:column` of the panic, if known.
    pub location: Option<String>,
    /// The child's backtrace, captured when `RUST_BACKTRACE` is set.
    pub backtrace: Option<String>,
}

/// Why a re-executed child refused to run its target. Each has a distinct
/// exit code, so the failure is recognisable even from outside (for
/// example in a shell). The parent reports one only when the child said
/// so on its channel: a task that itself exits with one of these codes is
/// reported as that code ([`Error::NoResult`]).
///
/// ```
/// use multiproc::BootstrapFailure;
/// assert_eq!(BootstrapFailure::UnknownTask.exit_code(), 114);
/// assert_eq!(BootstrapFailure::from_exit_code(114), Some(BootstrapFailure::UnknownTask));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BootstrapFailure {
    /// The bootstrap channel closed before a whole frame arrived (111).
    Truncated,
    /// The frame is not a multiproc frame, has another protocol version, or
    /// its body does not decode (112).
    Malformed,
    /// The frame's length prefix exceeds the limit (113).
    TooLarge,
    /// The task id is not in this binary's dispatch table, or is there
    /// twice (114).
    UnknownTask,
    /// The parent runs a different executable than the child (115).
    BinaryMismatch,
    /// The payload does not decode as the task's arguments (116).
    BadArguments,
    /// The bootstrap environment variable does not name a usable channel:
    /// not a descriptor, or not the socket (on Windows, the pipe) a parent
    /// creates — a terminal, a plain pipe, a file (117).
    BadEnvironment,
    /// The process runs in secure-execution mode (setuid, setgid or file
    /// capabilities), where the environment cannot be trusted: it never
    /// acts as a child (118).
    Insecure,
    /// The parent sent nothing for [`BOOTSTRAP_SILENCE`](crate::BOOTSTRAP_SILENCE)
    /// while the frame was incomplete (119).
    Stalled,
}

impl BootstrapFailure {
    const ALL: [BootstrapFailure; 9] = [
        Self::Truncated,
        Self::Malformed,
        Self::TooLarge,
        Self::UnknownTask,
        Self::BinaryMismatch,
        Self::BadArguments,
        Self::BadEnvironment,
        Self::Insecure,
        Self::Stalled,
    ];

    /// The child's exit code for this failure.
    ///
    /// ```
    /// assert_eq!(multiproc::BootstrapFailure::Stalled.exit_code(), 119);
    /// ```
    pub fn exit_code(self) -> i32 {
        match self {
            Self::Truncated => 111,
            Self::Malformed => 112,
            Self::TooLarge => 113,
            Self::UnknownTask => 114,
            Self::BinaryMismatch => 115,
            Self::BadArguments => 116,
            Self::BadEnvironment => 117,
            Self::Insecure => 118,
            Self::Stalled => 119,
        }
    }

    /// The failure a child's exit code stands for, if any.
    ///
    /// ```
    /// use multiproc::BootstrapFailure;
    /// assert_eq!(BootstrapFailure::from_exit_code(115), Some(BootstrapFailure::BinaryMismatch));
    /// assert_eq!(BootstrapFailure::from_exit_code(0), None);
    /// ```
    pub fn from_exit_code(code: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.exit_code() == code)
    }
}

impl fmt::Display for BootstrapFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "truncated bootstrap frame",
            Self::Malformed => "malformed bootstrap frame",
            Self::TooLarge => "oversized bootstrap frame",
            Self::UnknownTask => "unknown task",
            Self::BinaryMismatch => "binary mismatch",
            Self::BadArguments => "arguments do not decode",
            Self::BadEnvironment => "bad bootstrap environment",
            Self::Insecure => "secure-execution mode (setuid, setgid or capabilities)",
            Self::Stalled => "the parent stopped sending the bootstrap frame",
        })
    }
}

/// Why bytes that arrived could not be decoded as the value expected: a
/// message on a [`Connection`](crate::Connection), an item of a
/// [`Queue`](crate::Queue), a child's result.
///
/// Every decode is bounded: a value nesting deeper than [`MAX_DEPTH`]
/// levels, or a length inside a message that claims more bytes than the
/// message holds, is refused before the stack or the heap pays for it, on
/// any thread (a 2 MiB stack is enough).
///
/// ```
/// use multiproc::{DecodeError, MAX_DEPTH};
///
/// let (a, b) = multiproc::pipe::<Vec<String>>()?;
/// // A message claiming a string of 4 GiB, with one byte of it present.
/// a.send_bytes(&[1, 0xFC, 0xFF, 0xFF, 0xFF, 0xFF, b'x'])?;
/// match b.recv() {
///     Err(multiproc::ConnectionError::Decode(DecodeError::LengthPastEnd { claimed, left })) => {
///         assert_eq!((claimed, left), (u32::MAX as u64, 1));
///     }
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(MAX_DEPTH, 512);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The value nests deeper than `limit` levels (options, boxes' newtypes,
    /// sequences, structs, maps and enums entered on the way down).
    #[error("the value nests deeper than {limit} levels")]
    TooDeep {
        /// [`MAX_DEPTH`].
        limit: usize,
    },
    /// A length inside the message claims more bytes than are left in it.
    #[error("a length of {claimed} bytes is claimed but only {left} bytes are left")]
    LengthPastEnd {
        /// The length the message claims.
        claimed: u64,
        /// The bytes the message has left at that point.
        left: u64,
    },
    /// More elements that take no bytes at all (a `Vec<()>`) than one
    /// decode may produce: a length claiming more than is there.
    #[error("more than {limit} elements that take no bytes (a length claims more than is there)")]
    TooManyEmpty {
        /// How many one decode may produce.
        limit: usize,
    },
    /// The value ended before the message did.
    #[error("{len} trailing bytes after the value")]
    Trailing {
        /// How many bytes were left over.
        len: u64,
    },
    /// The message ended before the value did: the sender stopped or died
    /// in the middle of it.
    #[error("the message was cut short: {0}")]
    Truncated(String),
    /// The sender went silent in the middle of the message for longer than
    /// the receiver waits (a child's arguments: [`BOOTSTRAP_SILENCE`](crate::BOOTSTRAP_SILENCE)).
    #[error("the sender went silent in the middle of the message: {0}")]
    Stalled(String),
    /// Reading the rest of the message failed.
    #[error("reading the message failed: {0}")]
    Io(String),
    /// The bytes are not an encoding of the type expected.
    #[error("{0}")]
    Invalid(String),
}

/// The deepest a decoded value may nest: see [`DecodeError::TooDeep`].
///
/// Each option, newtype, sequence, tuple, struct, map and enum entered on
/// the way down counts one level, so a linked list of
/// `struct Node(Option<Box<Node>>)` may be 256 nodes long. Longer lists and
/// deeper trees belong in a flat form (a `Vec` of nodes with indices).
pub const MAX_DEPTH: usize = crate::wire::MAX_DEPTH;
