//! A pool of worker processes: Python's `multiprocessing.Pool`.
//!
//! Tasks are [`#[process_task]`](crate::process_task) functions. A pool
//! runs them in its workers, each a child of this process that runs task
//! after task; the results come back with their types.
//!
//! ```
//! use multiproc::pool::Pool;
//!
//! #[multiproc::process_task]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! # fn main() -> Result<(), multiproc::Error> {
//! let pool = Pool::new(4)?;
//! assert_eq!(pool.map(square, 0..10)?, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
//! let pending = pool.apply_async(square, 12)?;
//! assert_eq!(pending.get()?, 144);
//! pool.close();
//! pool.join()?;
//! # Ok(())
//! # }
//! ```
//!
//! Where CPython's pool hangs, this one does not: a worker that dies while
//! it runs a task (killed, out of memory, `abort`, `exit`) fails exactly
//! that task with [`Error::WorkerDied`], naming the signal or exit code;
//! the worker is replaced and every other task completes. A task may have
//! a time limit ([`MapOptions::timeout`]): past it, its worker is killed
//! and replaced, and the task fails with [`Error::TaskTimedOut`].
//!
//! The workers are daemonic, as in Python: they die with the pool's
//! process and may not start processes of their own.

pub(crate) mod batch;
mod buffers;
mod builder;
mod direct;
mod driver;
mod job;
mod link;
mod map;
mod message;
mod results;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

pub use builder::{MapOptions, PoolBuilder};
pub use results::{AsyncResult, Imap, MapResult};
pub use worker::{WorkerStateError, set_worker_state, with_worker_state};

use batch::Batch;
use driver::{Chunk, Phase, Shared};
use job::{Failure, Job, Sink};
use message::Status;

use crate::args::IntoArgs;
use crate::error::{DecodeError, Error, RegistryError};
use crate::registry::{self, FunctionEntry, TASKS, TaskEntry};
use crate::task::Task;
use crate::wire::CodecError;

/// A pool of worker processes: Python's `multiprocessing.Pool`. See the
/// [module](self) for an overview.
///
/// A pool can be used from several threads at once. Dropping it
/// terminates it (Python's `with Pool() as p:`): tasks still queued or
/// running fail with [`Error::PoolTerminated`].
pub struct Pool {
    shared: Arc<Shared>,
    drivers: Mutex<Vec<JoinHandle<()>>>,
    exit_decode: Option<DecodeErased>,
    processes: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("processes", &self.processes).field("phase", &self.shared.phase()).finish()
    }
}

/// A task's erased result decoder.
type DecodeErased = job::DecodeValues;

/// A task's entry and its parent-side codecs.
fn function<F: Task<A>, A>(task: &F) -> Result<(&'static TaskEntry, &'static FunctionEntry), Error> {
    let entry = task.__entry()?;
    registry::lookup(entry.id)?;
    let f = entry.function.ok_or_else(|| RegistryError::NotATask { name: entry.path.to_owned() })?;
    Ok((entry, f))
}

/// An entry's index in the table, which parent and workers share.
fn table_index(entry: &'static TaskEntry) -> u32 {
    static INDEX: OnceLock<HashMap<usize, u32>> = OnceLock::new();
    let index = INDEX
        .get_or_init(|| TASKS.iter().enumerate().map(|(i, e)| (e as *const TaskEntry as usize, i as u32)).collect());
    index[&(entry as *const TaskEntry as usize)]
}

/// Why a task's arguments could not be encoded.
fn encode_failure(entry: &TaskEntry, e: CodecError) -> Failure {
    Failure::Encode { task: entry.path, message: e.0 }
}

/// Encodes one argument tuple (exactly the task's) onto `into`.
fn encode<A: 'static>(entry: &TaskEntry, f: &FunctionEntry, args: A, into: &mut Batch) -> Result<(), Failure> {
    let mut failure = None;
    let encoded = (f.encode_args)(&mut vec![args], into, &mut |_, e| failure = Some(e));
    failure.map_or(encoded, Err).map_err(|e| encode_failure(entry, e))
}

impl Pool {
    /// A pool of `processes` workers, started now (Python's
    /// `Pool(processes)`); [`Pool::builder`] sets the rest.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// assert_eq!(pool.processes(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(processes: usize) -> Result<Pool, Error> {
        Pool::builder().processes(processes).build()
    }

    /// A builder, for the initializer, exit hook and worker recycling.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::builder().processes(1).build()?;
    /// # drop(pool);
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder { processes: None, init: None, exit_hook: None, max_tasks: None, bars: None }
    }

    /// The number of workers.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// # fn main() -> Result<(), multiproc::Error> {
    /// assert_eq!(Pool::new(2)?.processes(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// The process ids of the workers running now (fewer than
    /// [`processes`](Pool::processes) while one is being replaced).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn pid() -> u32 {
    ///     std::process::id()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(1)?;
    /// let worker = pool.apply(pid, ())?;
    /// assert_eq!(pool.pids(), [worker]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn pids(&self) -> Vec<u32> {
        self.shared.pids()
    }

    /// Runs `task(args)` in a worker and waits for its value (Python's
    /// `apply`).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn add(a: i32, b: i32) -> i32 {
    ///     a + b
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(1)?;
    /// assert_eq!(pool.apply(add, (2, 3))?, 5);
    /// # Ok(())
    /// # }
    /// ```
    pub fn apply<F, A, M>(&self, task: F, args: impl IntoArgs<A, M>) -> Result<F::Output, Error>
    where
        F: Task<A>,
        A: 'static,
    {
        self.apply_async(task, args)?.get()
    }

    /// Queues `task(args)` and returns at once (Python's `apply_async`).
    /// [`Error::PoolNotRunning`] after `close` or `terminate`.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn add(a: i32, b: i32) -> i32 {
    ///     a + b
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// let results: Vec<_> = (0..4).map(|i| pool.apply_async(add, (i, i))).collect::<Result<_, _>>()?;
    /// let values: Vec<i32> = results.iter().map(|r| r.get()).collect::<Result<_, _>>()?;
    /// assert_eq!(values, [0, 2, 4, 6]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn apply_async<F, A, M>(&self, task: F, args: impl IntoArgs<A, M>) -> Result<AsyncResult<F::Output>, Error>
    where
        F: Task<A>,
        A: 'static,
    {
        self.apply_async_with(task, args, None)
    }

    /// [`apply_async`](Pool::apply_async) with a time limit for the task:
    /// past it, its worker is killed (and replaced) and the task fails with
    /// [`Error::TaskTimedOut`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::{Error, pool::Pool};
    ///
    /// #[multiproc::process_task]
    /// fn forever() {
    ///     loop {
    ///         std::thread::sleep(Duration::from_secs(1));
    ///     }
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(1)?;
    /// let result = pool.apply_async_with(forever, (), Some(Duration::from_millis(100)))?;
    /// assert!(matches!(result.get(), Err(Error::TaskTimedOut { .. })));
    /// # Ok(())
    /// # }
    /// ```
    pub fn apply_async_with<F, A, M>(
        &self,
        task: F,
        args: impl IntoArgs<A, M>,
        timeout: Option<Duration>,
    ) -> Result<AsyncResult<F::Output>, Error>
    where
        F: Task<A>,
        A: 'static,
    {
        let (entry, f) = function(&task)?;
        let mut bytes = Batch::default();
        encode(entry, f, args.into_args(), &mut bytes).map_err(|e| e.to_error())?;
        let job = Arc::new(Job::<F::Output>::new(f.decode_values, entry.path, Some(1), false));
        let chunk = Chunk::new(Arc::clone(&job) as Arc<dyn Sink>, 0, table_index(entry), bytes, timeout);
        // An idle worker is sent the task by this thread, and its result
        // received by the one that waits for it (see `direct`).
        let chunk = match timeout.is_none() && self.shared.config.max_tasks.is_none() {
            true => match self.shared.send_direct(chunk) {
                Ok(slot) => return Ok(AsyncResult { job, direct: slot.map(|s| (Arc::clone(&self.shared), s)) }),
                Err(chunk) => chunk,
            },
            false => chunk,
        };
        self.shared.submit(vec![chunk]).map_err(|_| Error::PoolNotRunning)?;
        Ok(AsyncResult { job, direct: None })
    }

    /// Takes no more work; the workers stop once what is queued is done
    /// (Python's `close`).
    ///
    /// ```
    /// use multiproc::{Error, pool::Pool};
    ///
    /// #[multiproc::process_task]
    /// fn one() -> u8 {
    ///     1
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(1)?;
    /// let queued = pool.apply_async(one, ())?;
    /// pool.close();
    /// assert!(matches!(pool.apply_async(one, ()), Err(Error::PoolNotRunning)));
    /// pool.join()?;
    /// assert_eq!(queued.get()?, 1); // queued work still ran
    /// # Ok(())
    /// # }
    /// ```
    pub fn close(&self) {
        self.shared.close();
    }

    /// Stops the workers at once (Python's `terminate`): they are killed;
    /// tasks queued or running fail with [`Error::PoolTerminated`]. Waits
    /// until every worker is gone.
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::{Error, pool::Pool};
    ///
    /// #[multiproc::process_task]
    /// fn sleep() {
    ///     std::thread::sleep(Duration::from_secs(60));
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(1)?;
    /// let running = pool.apply_async(sleep, ())?;
    /// pool.terminate();
    /// assert!(matches!(running.get(), Err(Error::PoolTerminated)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn terminate(&self) {
        self.shared.terminate();
        self.join_drivers();
    }

    /// Waits for the workers to stop, after [`close`](Pool::close) or
    /// [`terminate`](Pool::terminate) ([`Error::PoolStillRunning`] before
    /// either, as Python's `ValueError`).
    ///
    /// ```
    /// use multiproc::{Error, pool::Pool};
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(1)?;
    /// assert!(matches!(pool.join(), Err(Error::PoolStillRunning)));
    /// pool.close();
    /// pool.join()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn join(&self) -> Result<(), Error> {
        if self.shared.phase() == Phase::Running {
            return Err(Error::PoolStillRunning);
        }
        self.join_drivers();
        Ok(())
    }

    fn join_drivers(&self) {
        let drivers = std::mem::take(&mut *self.drivers.lock().unwrap_or_else(PoisonError::into_inner));
        for d in drivers {
            let _ = d.join();
        }
    }

    /// What the [exit hooks](PoolBuilder::exit_hook) of the workers that
    /// stopped so far returned, one per worker, in the order they stopped;
    /// a hook that panicked is its error.
    ///
    /// ```
    /// use multiproc::pool::Pool;
    ///
    /// #[multiproc::process_task]
    /// fn goodbye() -> String {
    ///     "bye".into()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::builder().processes(2).exit_hook(goodbye).build()?;
    /// pool.close();
    /// pool.join()?;
    /// assert_eq!(pool.exit_results::<String>()?, ["bye", "bye"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn exit_results<T: 'static>(&self) -> Result<Vec<T>, Error> {
        let Some(decode) = self.exit_decode else { return Ok(Vec::new()) };
        self.shared
            .exits()
            .into_iter()
            .map(|(status, bytes, name)| match status {
                Status::Returned => job::decode::<T>(decode, &mut bytes.as_slice(), 1)
                    .and_then(|mut v| v.pop().ok_or_else(|| DecodeError::Invalid("no value".into())))
                    .map_err(|error| Error::BadResult { name: name.clone(), error }),
                Status::Panicked => Err(Error::Panicked { name, panic: message::decode_panic(&bytes) }),
                _ => Err(Error::Unencodable { name, message: String::from_utf8_lossy(&bytes).into_owned() }),
            })
            .collect()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.terminate();
    }
}
