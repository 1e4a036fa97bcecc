//! A pool worker, the child side: a registered entry point that runs the
//! initializer, then the chunks of tasks the pool sends until it says stop,
//! then the exit hook. And the worker state tasks share.

use std::any::Any;
use std::cell::RefCell;
use std::fs::File;
use std::panic::{self, AssertUnwindSafe};

use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::batch::BatchRun;
use super::message::{DONE, EXIT, INIT_FAILED, RUN, Reader, STOP, Status, Writer};
use crate::handle::Handle;
use crate::pipe::{Connection, Inbox, ReadOnly, WriteOnly};
use crate::registry::{Incoming, Invoked, Payload, TASKS, TaskEntry};
use crate::report::{self, ChildReports};
use crate::sys::SharedWord;
use crate::wire::handles::Unclaimed;
use crate::wire::{Source, Stream};

/// The worker's entry in the dispatch table.
#[linkme::distributed_slice(TASKS)]
pub(super) static WORKER: TaskEntry = TaskEntry {
    id: "multiproc::pool::worker#1",
    path: "multiproc::pool::worker",
    file: file!(),
    line: line!(),
    invoke: run_worker,
    function: None,
};

/// A worker's ends of its link to the parent: what it receives, what it
/// sends.
pub(super) type WorkerEnds = (Connection<(), ReadOnly>, Connection<(), WriteOnly>);

/// The initializer's arguments. In the parent, the value itself, encoded
/// afresh for each worker while its start collects handles, so that a
/// lock, an event or a shared value among them reaches every worker,
/// replacements too; in the worker, those bytes.
#[derive(Debug, Clone)]
pub(crate) enum InitArgs {
    Value(Arc<Mutex<Payload>>),
    Bytes(Vec<u8>),
}

impl Serialize for InitArgs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            InitArgs::Value(payload) => {
                let mut bytes = Vec::new();
                let payload = payload.lock().unwrap_or_else(PoisonError::into_inner);
                payload.part().0.write(&mut bytes).map_err(serde::ser::Error::custom)?;
                bytes.serialize(serializer)
            }
            InitArgs::Bytes(bytes) => bytes.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for InitArgs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(InitArgs::Bytes)
    }
}

/// What a worker is started with, besides its link.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WorkerSpec {
    /// The initializer's table index and arguments.
    pub(super) init: Option<(u32, InitArgs)>,
    /// The exit hook's table index.
    pub(super) exit_hook: Option<u32>,
    /// Where the worker says which task it runs (Linux).
    pub(super) word: Option<Handle<File>>,
}

fn run_worker(input: &Incoming<'_>) -> Invoked {
    // The initializer's arguments may hold handles: they stay open for it.
    let (decoded, unclaimed) = input.decode_keeping::<(WorkerEnds, WorkerSpec)>();
    let ((rx, tx), spec) = match decoded {
        Ok(v) => v,
        Err(e) => return Invoked::BadArguments(e),
    };
    // A task's panic goes back to the parent with its result; the worker
    // prints nothing of it (as CPython's pool prints nothing).
    report::set_child_reports(ChildReports::Quiet);
    // Many processes wait at once on few CPUs: block at once.
    rx.set_spin(false);
    let word = spec.word.and_then(|file| SharedWord::adopt(file.into_inner()).ok());
    let done = || Invoked::Returned { value: Payload::new(()).expect("() encodes"), failure: None };

    if let Some((entry, InitArgs::Bytes(args))) = &spec.init
        && let Err(failure) = run_initializer(*entry, args, unclaimed)
    {
        let mut w = Writer::new(INIT_FAILED);
        w.0.extend_from_slice(failure.as_bytes());
        let _ = tx.send_bytes(&w.0).and_then(|()| tx.wait_taken());
        return done();
    }
    // The buffers of the messages in and out, reused from chunk to chunk.
    let (mut spare, mut out, mut inbox) = (Vec::new(), Vec::new(), Inbox::default());
    while let Ok(msg) = rx.recv_bytes_through(&mut inbox, |_| std::mem::take(&mut spare)) {
        spare = msg;
        let msg = &spare;
        match msg.first() {
            Some(&RUN) => {
                if run_chunk(&tx, &msg[1..], word.as_ref(), &mut out).is_err() {
                    break;
                }
            }
            Some(&STOP) => {
                let mut w = Writer::new(EXIT);
                let (status, bytes) = match spec.exit_hook {
                    Some(hook) => run_one(hook),
                    None => (Status::Nothing, Vec::new()),
                };
                w.item(status, &bytes);
                let _ = tx.send_bytes(&w.0).and_then(|()| tx.wait_taken());
                break;
            }
            // Not a message of this protocol: the parent's end is not a
            // pool's. Stop; the parent sees the worker end.
            _ => break,
        }
    }
    done()
}

/// Runs the tasks of one `Run` message and sends their results: all in one
/// message when the shared word tells the parent which task runs, one
/// message per task otherwise. `out`: the memory to build them in.
fn run_chunk(
    conn: &Connection<(), WriteOnly>,
    body: &[u8],
    word: Option<&SharedWord>,
    out: &mut Vec<u8>,
) -> Result<(), ()> {
    let mut r = Reader(body);
    let (first, chunks) = match (r.u64(), r.u32()) {
        (Ok(first), Ok(chunks)) => (first, chunks),
        _ => return Err(()),
    };
    let mut heads = Vec::with_capacity(chunks.min(1024) as usize);
    for _ in 0..chunks {
        match (r.u32(), r.u32(), r.length()) {
            (Ok(entry), Ok(count), Ok(len)) => heads.push((entry, count, len)),
            _ => return Err(()),
        }
    }
    let mut run = BatchRun::new(&[], first, word, std::mem::take(out));
    for (entry, count, len) in heads {
        let Ok(args) = r.take(len) else { return Err(()) };
        run.next_chunk(args);
        if word.is_some() {
            run_tasks(entry, &mut run, count);
            continue;
        }
        for _ in 0..count {
            run_tasks(entry, &mut run, 1);
            send_done(conn, &mut run)?;
        }
    }
    if word.is_some() {
        send_done(conn, &mut run)?;
    }
    *out = run.into_buffer();
    Ok(())
}

/// Sends the results of the tasks run since the last message.
fn send_done(conn: &Connection<(), WriteOnly>, run: &mut BatchRun<'_>) -> Result<(), ()> {
    let msg = run.take_message(DONE);
    conn.send_bytes(&msg).map_err(|_| ())?;
    // The next task may end the process: what was sent must be read first
    // (without the word, the parent knows the task that ran by the results
    // it has).
    conn.wait_taken().map_err(|_| ())?;
    run.reuse(msg);
    Ok(())
}

/// Runs the next `n` tasks of `run` with the table's function `index`.
fn run_tasks(index: u32, run: &mut BatchRun<'_>, n: u32) {
    run.set_todo(n);
    match TASKS.get(index as usize).and_then(|e| e.function) {
        Some(f) => (f.run_batch)(run),
        None => run.refuse(format!("no function at index {index} of the dispatch table")),
    }
}

/// Runs the table's function `index`, which takes no arguments, once: how
/// it went, and its value's bytes (or why it failed).
fn run_one(index: u32) -> (Status, Vec<u8>) {
    let mut run = BatchRun::new(&[], 0, None, Vec::new());
    run_tasks(index, &mut run, 1);
    run.into_single()
}

/// Runs the initializer, the table's entry `index`, on `args`, through its
/// bootstrap entry point (which tells a returned `Err` apart from a value);
/// why it failed, if it did.
fn run_initializer(index: u32, args: &[u8], handles: Unclaimed) -> Result<(), String> {
    let entry = TASKS.get(index as usize).ok_or_else(|| format!("no task at index {index} of the dispatch table"))?;
    handles.reinstall();
    let source: Box<dyn Source + Send + '_> = Box::new(args);
    let incoming = Incoming::new(Stream::new(source, args.len() as u64));
    match panic::catch_unwind(AssertUnwindSafe(|| (entry.invoke)(&incoming))) {
        Ok(Invoked::Returned { failure: None, .. }) => Ok(()),
        Ok(Invoked::Returned { failure: Some(why), .. }) => Err(why),
        Ok(Invoked::BadResult(why)) => Err(format!("the return value could not be encoded: {why}")),
        Ok(Invoked::BadArguments(e)) => Err(format!("the arguments did not decode: {e}")),
        Err(payload) => Err(format!("panicked: {}", crate::bootstrap::panic_info(payload).message)),
    }
}

thread_local! {
    /// The worker state the initializer set.
    static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Why [`with_worker_state`] could not lend the state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerStateError {
    /// No state was set on this thread: the initializer did not call
    /// [`set_worker_state`], or this is not a pool worker's task thread.
    #[error("no worker state is set (the pool's initializer sets it with multiproc::pool::set_worker_state)")]
    Absent,
    /// The state is of another type than the one asked for.
    #[error("the worker state is not a `{asked}`")]
    OtherType {
        /// The type asked for.
        asked: &'static str,
    },
    /// The state is already lent (a `with_worker_state` inside another).
    #[error("the worker state is already in use (with_worker_state was called inside itself)")]
    InUse,
}

/// Sets this worker's state: a value built once per worker (a loaded
/// model, a database connection) that every task the worker runs can use
/// through [`with_worker_state`]. Call it in the pool's initializer. It
/// replaces any state set before; it need not be serializable, as it never
/// leaves the worker.
///
/// The state belongs to the thread that runs the worker's tasks.
///
/// ```
/// use multiproc::pool::{Pool, set_worker_state, with_worker_state};
///
/// struct Model {
///     scale: u64,
/// }
///
/// #[multiproc::process_task]
/// fn load(scale: u64) {
///     set_worker_state(Model { scale });
/// }
///
/// #[multiproc::process_task]
/// fn predict(x: u64) -> u64 {
///     with_worker_state(|m: &mut Model| m.scale * x).unwrap()
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// let pool = Pool::builder().processes(2).initializer(load, 10).build()?;
/// assert_eq!(pool.map(predict, [1, 2, 3])?, [10, 20, 30]);
/// # Ok(())
/// # }
/// ```
pub fn set_worker_state<T: 'static>(state: T) {
    STATE.with(|s| *s.borrow_mut() = Some(Box::new(state)));
}

/// Lends this worker's state, set by [`set_worker_state`], to `f`.
///
/// ```
/// use multiproc::pool::{WorkerStateError, with_worker_state};
///
/// // Outside a pool worker there is none.
/// assert_eq!(with_worker_state(|n: &mut u32| *n), Err(WorkerStateError::Absent));
/// ```
pub fn with_worker_state<T: 'static, R>(f: impl FnOnce(&mut T) -> R) -> Result<R, WorkerStateError> {
    STATE.with(|s| {
        let mut slot = s.try_borrow_mut().map_err(|_| WorkerStateError::InUse)?;
        let state = slot.as_mut().ok_or(WorkerStateError::Absent)?;
        let state =
            state.downcast_mut::<T>().ok_or(WorkerStateError::OtherType { asked: std::any::type_name::<T>() })?;
        Ok(f(state))
    })
}
