//! Making a pool ([`PoolBuilder`]) and the options of a map
//! ([`MapOptions`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::driver::{self, Config, Shared};

use super::worker::InitArgs;
use super::{DecodeErased, Pool, encode_failure, function, table_index};
use crate::args::IntoArgs;
use crate::error::Error;
use crate::task::Task;
use crate::wire::handles;

/// How a pool is made: Python's `Pool(processes, initializer, initargs,
/// maxtasksperchild)`, and an exit hook.
///
/// ```
/// use multiproc::pool::Pool;
///
/// #[multiproc::process_task]
/// fn hello(x: u8) -> u8 {
///     x
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// let pool = Pool::builder().processes(2).max_tasks_per_child(10).build()?;
/// assert_eq!(pool.apply(hello, 1)?, 1);
/// # Ok(())
/// # }
/// ```
#[must_use = "a pool builder does nothing until `build` is called"]
pub struct PoolBuilder {
    pub(super) processes: Option<usize>,
    pub(super) init: Option<Result<(u32, InitArgs), Error>>,
    pub(super) exit_hook: Option<Result<(u32, DecodeErased), Error>>,
    pub(super) max_tasks: Option<u64>,
    pub(super) bars: Option<crate::progress::Attach>,
}

impl std::fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("processes", &self.processes)
            .field("initializer", &self.init.is_some())
            .field("exit_hook", &self.exit_hook.is_some())
            .field("max_tasks_per_child", &self.max_tasks)
            .field("progress", &self.bars.is_some())
            .finish()
    }
}

impl PoolBuilder {
    /// The number of workers (default: the CPUs this process may use,
    /// [`usable_cpu_count`](crate::usable_cpu_count)).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::builder().processes(3).build()?;
    /// assert_eq!(pool.processes(), 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// A task each worker runs once, before any other (Python's
    /// `initializer` and `initargs`). It may build the worker's state with
    /// [`set_worker_state`](super::set_worker_state). If it panics or returns an `Err`, the pool is
    /// broken: every task fails with [`Error::WorkerStart`] (where CPython
    /// starts failing workers forever).
    ///
    /// ```
    /// use multiproc::pool::{Pool, set_worker_state, with_worker_state};
    ///
    /// #[multiproc::process_task]
    /// fn connect(url: String) {
    ///     set_worker_state(format!("connection to {url}"));
    /// }
    ///
    /// #[multiproc::process_task]
    /// fn query(id: u32) -> String {
    ///     with_worker_state(|c: &mut String| format!("{id} via {c}")).unwrap()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::builder().processes(1).initializer(connect, "db").build()?;
    /// assert_eq!(pool.apply(query, 7)?, "7 via connection to db");
    /// # Ok(())
    /// # }
    /// ```
    pub fn initializer<F, A, M>(mut self, task: F, args: impl IntoArgs<A, M>) -> Self
    where
        F: Task<A>,
        A: 'static,
    {
        let args = args.into_args();
        self.init = Some(function(&task).and_then(|(entry, f)| {
            // Encoded as a child's arguments are: the worker runs the
            // initializer through the function's bootstrap entry point.
            // They are encoded again for each worker, as it starts, so
            // that handles among them (a lock, a shared value) reach it;
            // measuring them here (with handles duplicated, then closed)
            // reports an argument that cannot be encoded at once.
            let failed = |e| encode_failure(entry, e).to_error();
            let (payload, _checked) = handles::collecting(|| (f.measure)(Box::new(args)));
            let payload = payload.map_err(failed)?;
            Ok((table_index(entry), InitArgs::Value(Arc::new(Mutex::new(payload)))))
        }));
        self
    }

    /// A task each worker runs when it stops (the pool is closed and
    /// joined, or the worker has run its [`max_tasks_per_child`]): its
    /// results are collected by [`Pool::exit_results`]. Not run by workers
    /// that are killed or terminated.
    ///
    /// [`max_tasks_per_child`]: PoolBuilder::max_tasks_per_child
    ///
    /// ```
    /// use multiproc::pool::Pool;
    ///
    /// #[multiproc::process_task]
    /// fn pid() -> u32 {
    ///     std::process::id()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::builder().processes(2).exit_hook(pid).build()?;
    /// pool.close();
    /// pool.join()?;
    /// assert_eq!(pool.exit_results::<u32>()?.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn exit_hook<F: Task<()>>(mut self, task: F) -> Self {
        self.exit_hook = Some(function(&task).map(|(entry, f)| (table_index(entry), f.decode_values)));
        self
    }

    /// How many chunks of tasks a worker runs before it is replaced by a
    /// fresh one (Python's `maxtasksperchild`; default: no limit).
    ///
    /// ```
    /// use multiproc::pool::Pool;
    ///
    /// #[multiproc::process_task]
    /// fn pid(_: u8) -> u32 {
    ///     std::process::id()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::builder().processes(1).max_tasks_per_child(1).build()?;
    /// let (a, b) = (pool.apply(pid, 0)?, pool.apply(pid, 0)?);
    /// assert_ne!(a, b); // a new worker for each task
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_tasks_per_child(mut self, n: u64) -> Self {
        self.max_tasks = Some(n.max(1));
        self
    }

    /// One bar per worker, drawn by this process in `bars` and labelled
    /// with the worker's name: the tasks a worker runs move its bar with
    /// [`progress::set_length`](crate::progress::set_length),
    /// [`progress::inc`](crate::progress::inc) and the others. (For one
    /// bar that counts the tasks of a map, see [`MapOptions::progress`].)
    ///
    /// ```
    /// use multiproc::pool::Pool;
    /// use multiproc::progress::{self, Bars};
    ///
    /// #[multiproc::process_task]
    /// fn crunch(steps: u64) {
    ///     progress::set_length(steps);
    ///     for _ in 0..steps {
    ///         progress::inc(1);
    ///     }
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let bars = Bars::hidden(); // `Bars::new()` draws on a terminal
    /// let pool = Pool::builder().processes(2).progress(&bars).build()?;
    /// pool.map(crunch, [10, 10])?;
    /// pool.close();
    /// pool.join()?;
    /// bars.wait();
    /// assert_eq!(bars.bars().len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn progress(mut self, bars: &crate::progress::Bars) -> Self {
        self.bars = Some(bars.attach());
        self
    }

    /// Starts the workers.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::builder().build()?;
    /// assert_eq!(pool.processes(), multiproc::usable_cpu_count().get());
    /// # Ok(())
    /// # }
    /// ```
    pub fn build(self) -> Result<Pool, Error> {
        let processes = self.processes.unwrap_or_else(|| crate::usable_cpu_count().get());
        if processes == 0 {
            return Err(Error::Io {
                context: "a pool needs at least one process",
                source: std::io::ErrorKind::InvalidInput.into(),
            });
        }
        let init = self.init.transpose()?;
        let exit_hook = self.exit_hook.transpose()?;
        let shared = Arc::new(Shared::new(Config {
            processes,
            init,
            exit_hook: exit_hook.map(|(i, _)| i),
            max_tasks: self.max_tasks,
            bars: self.bars,
        }));
        let mut drivers = Vec::with_capacity(processes);
        for slot in 0..processes {
            let shared_ = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("multiproc-pool-{slot}"))
                .spawn(move || driver::drive(shared_, slot));
            match spawned {
                Ok(handle) => drivers.push(handle),
                Err(source) => {
                    shared.terminate();
                    for d in drivers {
                        let _ = d.join();
                    }
                    return Err(Error::Io { context: "starting a pool's thread", source });
                }
            }
        }
        shared.wait_started();
        Ok(Pool { shared, drivers: Mutex::new(drivers), exit_decode: exit_hook.map(|(_, d)| d), processes })
    }
}

/// How the tasks of a map are given out.
///
/// ```
/// use std::time::Duration;
/// use multiproc::pool::{MapOptions, Pool};
///
/// #[multiproc::process_task]
/// fn double(x: u32) -> u32 {
///     2 * x
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// let pool = Pool::new(2)?;
/// let options = MapOptions::new().chunksize(1).timeout(Duration::from_secs(60));
/// assert_eq!(pool.map_with(double, [1, 2], options)?, [2, 4]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MapOptions {
    pub(super) chunksize: Option<usize>,
    pub(super) timeout: Option<Duration>,
    pub(super) read_ahead: Option<usize>,
    pub(super) bars: Option<crate::progress::Attach>,
}

impl std::fmt::Debug for MapOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapOptions")
            .field("chunksize", &self.chunksize)
            .field("timeout", &self.timeout)
            .field("read_ahead", &self.read_ahead)
            .field("progress", &self.bars.is_some())
            .finish()
    }
}

impl MapOptions {
    /// The defaults: CPython's chunk size rule, no time limit.
    ///
    /// ```
    /// let options = multiproc::pool::MapOptions::new();
    /// # let _ = options;
    /// ```
    pub fn new() -> MapOptions {
        MapOptions::default()
    }

    /// Tasks per message to a worker (Python's `chunksize`). The default
    /// is CPython's: for `map`, the number of tasks divided by four times
    /// the workers, rounded up; for `imap`, 1.
    ///
    /// ```
    /// let options = multiproc::pool::MapOptions::new().chunksize(100);
    /// # let _ = options;
    /// ```
    pub fn chunksize(mut self, n: usize) -> MapOptions {
        self.chunksize = Some(n.max(1));
        self
    }

    /// A time limit for each task: one that runs longer is killed with its
    /// worker (which is replaced) and fails with [`Error::TaskTimedOut`];
    /// the others are unaffected. A time limit sends tasks one at a time.
    ///
    /// ```
    /// let options = multiproc::pool::MapOptions::new().timeout(std::time::Duration::from_secs(5));
    /// # let _ = options;
    /// ```
    pub fn timeout(mut self, limit: Duration) -> MapOptions {
        self.timeout = Some(limit);
        self
    }

    /// One bar in `bars` for the whole map, labelled with the task's name,
    /// that this process moves as results come in (an `imap`'s learns its
    /// length when its input ends).
    ///
    /// ```
    /// use multiproc::pool::{MapOptions, Pool};
    /// use multiproc::progress::Bars;
    ///
    /// #[multiproc::process_task]
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let bars = Bars::hidden(); // `Bars::new()` draws on a terminal
    /// let pool = Pool::new(2)?;
    /// pool.map_with(square, 0..100, MapOptions::new().progress(&bars))?;
    /// let bar = &bars.bars()[0];
    /// assert_eq!((bar.position(), bar.length()), (100, Some(100)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn progress(mut self, bars: &crate::progress::Bars) -> MapOptions {
        self.bars = Some(bars.attach());
        self
    }

    /// How many tasks `imap` reads from its input ahead of the results
    /// taken (default: four chunks per worker).
    ///
    /// ```
    /// let options = multiproc::pool::MapOptions::new().read_ahead(16);
    /// # let _ = options;
    /// ```
    pub fn read_ahead(mut self, n: usize) -> MapOptions {
        self.read_ahead = Some(n.max(1));
        self
    }
}
