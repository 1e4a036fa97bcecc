//! The map family: `map`, `starmap`, `imap` and `imap_unordered`, each
//! also queued (`_async`) or with options (`_with`).

use std::sync::Arc;

use super::batch::Batch;
use super::driver::{Chunk, Phase};
use super::job::{Job, Segment, Sink};
use super::{Imap, MapOptions, MapResult, Pool, encode, encode_failure, function, table_index};
use crate::args::{IntoArgs, Tuple};
use crate::error::Error;
use crate::registry::{FunctionEntry, TaskEntry};
use crate::task::Task;
use crate::wire::CodecError;

/// A chunk of this many tasks or more is encoded in memory kept for reuse.
const REUSE_FROM: usize = 256;

/// A map's chunks, made ready to queue.
struct Chunks<'a, R> {
    job: &'a Arc<Job<R>>,
    entry: u32,
    timeout: Option<std::time::Duration>,
    ready: Vec<Chunk>,
}

impl<R: 'static> Chunks<'_, R> {
    fn push(&mut self, index: usize, args: Batch) {
        if !args.is_empty() {
            let sink = Arc::clone(self.job) as Arc<dyn Sink>;
            self.ready.push(Chunk::new(sink, index, self.entry, args, self.timeout));
        }
    }

    /// The tasks from `start` whose arguments are `args`, but for those in
    /// `failed` (by offset), which fail now: each run between them is a
    /// chunk of its own, so a chunk's tasks stay consecutive.
    fn split(&mut self, start: usize, args: Batch, failed: Vec<(usize, CodecError)>, entry: &TaskEntry) {
        if failed.is_empty() {
            return self.push(start, args);
        }
        let (mut from, mut taken) = (0, 0);
        for (at, e) in failed {
            self.push(start + from, args.part(taken..taken + (at - from)));
            taken += at - from;
            self.job.deliver(Segment::failed(start + at, 1, &encode_failure(entry, e)));
            from = at + 1;
        }
        self.push(start + from, args.part(taken..args.len()));
    }
}

/// A task's name without its module path, for a bar.
fn short_name(path: &str) -> String {
    path.rsplit("::").next().unwrap_or(path).to_owned()
}

impl Pool {
    /// Runs `task` on every item and returns the values in input order, or
    /// the first failure by position (Python's `map`). An item is the
    /// task's arguments as [`spawn`](crate::spawn) takes them: a bare value
    /// for a task of one parameter, or a tuple.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn len(s: String) -> usize {
    ///     s.len()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// assert_eq!(pool.map(len, ["a", "bb", "ccc"])?, [1, 2, 3]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn map<F, A, M, I>(&self, task: F, items: I) -> Result<Vec<F::Output>, Error>
    where
        F: Task<A>,
        A: 'static,
        I: IntoIterator,
        I::Item: IntoArgs<A, M>,
    {
        self.map_async_with(task, items, MapOptions::new())?.get()
    }

    /// [`map`](Pool::map) with a chunk size or a time limit per task.
    ///
    /// ```
    /// # use multiproc::pool::{MapOptions, Pool};
    /// #[multiproc::process_task]
    /// fn double(x: u32) -> u32 {
    ///     2 * x
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// assert_eq!(pool.map_with(double, 0..4, MapOptions::new().chunksize(1))?, [0, 2, 4, 6]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn map_with<F, A, M, I>(&self, task: F, items: I, options: MapOptions) -> Result<Vec<F::Output>, Error>
    where
        F: Task<A>,
        A: 'static,
        I: IntoIterator,
        I::Item: IntoArgs<A, M>,
    {
        self.map_async_with(task, items, options)?.get()
    }

    /// Queues a map and returns at once (Python's `map_async`).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn double(x: u32) -> u32 {
    ///     2 * x
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// let pending = pool.map_async(double, 0..3)?;
    /// assert_eq!(pending.get()?, [0, 2, 4]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn map_async<F, A, M, I>(&self, task: F, items: I) -> Result<MapResult<F::Output>, Error>
    where
        F: Task<A>,
        A: 'static,
        I: IntoIterator,
        I::Item: IntoArgs<A, M>,
    {
        self.map_async_with(task, items, MapOptions::new())
    }

    /// [`map_async`](Pool::map_async) with options.
    ///
    /// ```
    /// # use multiproc::pool::{MapOptions, Pool};
    /// #[multiproc::process_task]
    /// fn double(x: u32) -> u32 {
    ///     2 * x
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// let pending = pool.map_async_with(double, 0..3, MapOptions::new().chunksize(2))?;
    /// assert_eq!(pending.get()?, [0, 2, 4]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn map_async_with<F, A, M, I>(
        &self,
        task: F,
        items: I,
        options: MapOptions,
    ) -> Result<MapResult<F::Output>, Error>
    where
        F: Task<A>,
        A: 'static,
        I: IntoIterator,
        I::Item: IntoArgs<A, M>,
    {
        if self.shared.phase() != Phase::Running {
            return Err(Error::PoolNotRunning);
        }
        let (entry, f) = function(&task)?;
        let items = items.into_iter().map(IntoArgs::into_args);
        // Python's `map` makes a list of its input to know its length; an
        // input that says its length exactly is not copied first (the
        // tasks are still counted as they come, so a wrong length only
        // makes the chunks another size).
        Ok(match items.size_hint() {
            (low, Some(high)) if low == high => self.submit_map(entry, f, items, low, &options),
            _ => {
                let all: Vec<A> = items.collect();
                let len = all.len();
                self.submit_map(entry, f, all.into_iter(), len, &options)
            }
        })
    }

    /// Queues the tasks of `items`, about `len` of them, in chunks.
    fn submit_map<A: 'static, R: 'static>(
        &self,
        entry: &'static TaskEntry,
        f: &'static FunctionEntry,
        mut items: impl Iterator<Item = A>,
        len: usize,
        options: &MapOptions,
    ) -> MapResult<R> {
        let bar = options.bars.as_ref().map(|b| b.add(Some(len as u64), short_name(entry.path)));
        let job = Arc::new(Job::<R>::new(f.decode_values, entry.path, None, false).with_bar(bar));
        let chunksize = match (options.timeout, options.chunksize) {
            (Some(_), _) => 1,
            (None, Some(n)) => n,
            // CPython: divmod(len, processes * 4), rounded up.
            (None, None) => len.div_ceil(self.processes * 4).max(1),
        };
        let mut chunks = Chunks { job: &job, entry: table_index(entry), timeout: options.timeout, ready: Vec::new() };
        // Chunks are queued as they are encoded, so the workers start while
        // the rest is encoded: the first alone, then in groups twice as
        // large each time (up to 64), so that many small chunks do not
        // take the queue's lock and wake a driver one by one.
        let mut group = 1;
        let mut next = 0;
        let mut stage = Vec::with_capacity(chunksize.min(len).min(1 << 16));
        loop {
            stage.extend(items.by_ref().take(chunksize));
            if stage.is_empty() {
                break;
            }
            let start = next;
            next += stage.len();
            // Memory kept for reuse is for big chunks: a small one would
            // hold on to it for a few bytes.
            let mut args = if stage.len() >= REUSE_FROM { Batch::reusing() } else { Batch::default() };
            let mut failed = Vec::new();
            let encoded = (f.encode_args)(&mut stage, &mut args, &mut |i, e| failed.push((i, e)));
            match encoded {
                Ok(()) => chunks.split(start, args, failed, entry),
                Err(e) => job.deliver(Segment::failed(start, next - start, &encode_failure(entry, e))),
            }
            stage.clear();
            if chunks.ready.len() >= group {
                self.shared.submit_or_fail(std::mem::take(&mut chunks.ready));
                group = (group * 2).min(64);
            }
        }
        if !chunks.ready.is_empty() {
            self.shared.submit_or_fail(chunks.ready);
        }
        job.set_total(next);
        MapResult { job }
    }

    /// [`map`](Pool::map) over tuples of arguments (Python's `starmap`).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn pow(base: u64, exp: u32) -> u64 {
    ///     base.pow(exp)
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// assert_eq!(pool.starmap(pow, [(2, 3), (3, 2)])?, [8, 9]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn starmap<F, A, I>(&self, task: F, items: I) -> Result<Vec<F::Output>, Error>
    where
        F: Task<A>,
        A: 'static,
        I: IntoIterator,
        I::Item: IntoArgs<A, Tuple>,
    {
        self.map(task, items)
    }

    /// [`starmap`](Pool::starmap), queued (Python's `starmap_async`).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn pow(base: u64, exp: u32) -> u64 {
    ///     base.pow(exp)
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// assert_eq!(pool.starmap_async(pow, [(2, 3), (3, 2)])?.get()?, [8, 9]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn starmap_async<F, A, I>(&self, task: F, items: I) -> Result<MapResult<F::Output>, Error>
    where
        F: Task<A>,
        A: 'static,
        I: IntoIterator,
        I::Item: IntoArgs<A, Tuple>,
    {
        self.map_async(task, items)
    }

    /// Runs `task` on every item of a stream and yields each outcome in
    /// input order as it is ready (Python's `imap`). The input is read on
    /// this thread as results are taken, a bounded number of tasks ahead.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// // An endless input: only what is taken (and a little ahead) runs.
    /// let first: Vec<u64> = pool.imap(square, 1..)?.take(3).collect::<Result<_, _>>()?;
    /// assert_eq!(first, [1, 4, 9]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn imap<'a, F, A, M, I>(&self, task: F, items: I) -> Result<Imap<'a, F::Output>, Error>
    where
        F: Task<A>,
        A: 'static,
        I: IntoIterator + 'a,
        I::Item: IntoArgs<A, M>,
    {
        self.imap_inner(task, items, MapOptions::new(), true)
    }

    /// [`imap`](Pool::imap) with options.
    ///
    /// ```
    /// # use multiproc::pool::{MapOptions, Pool};
    /// #[multiproc::process_task]
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// let options = MapOptions::new().chunksize(4).read_ahead(8);
    /// let all: Vec<u64> = pool.imap_with(square, 0..10, options)?.collect::<Result<_, _>>()?;
    /// assert_eq!(all[9], 81);
    /// # Ok(())
    /// # }
    /// ```
    pub fn imap_with<'a, F, A, M, I>(
        &self,
        task: F,
        items: I,
        options: MapOptions,
    ) -> Result<Imap<'a, F::Output>, Error>
    where
        F: Task<A>,
        A: 'static,
        I: IntoIterator + 'a,
        I::Item: IntoArgs<A, M>,
    {
        self.imap_inner(task, items, options, true)
    }

    /// [`imap`](Pool::imap), yielding each outcome as soon as it is ready,
    /// in any order (Python's `imap_unordered`).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// let mut all: Vec<u64> = pool.imap_unordered(square, 0..5)?.collect::<Result<_, _>>()?;
    /// all.sort();
    /// assert_eq!(all, [0, 1, 4, 9, 16]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn imap_unordered<'a, F, A, M, I>(&self, task: F, items: I) -> Result<Imap<'a, F::Output>, Error>
    where
        F: Task<A>,
        A: 'static,
        I: IntoIterator + 'a,
        I::Item: IntoArgs<A, M>,
    {
        self.imap_inner(task, items, MapOptions::new(), false)
    }

    /// [`imap_unordered`](Pool::imap_unordered) with options.
    ///
    /// ```
    /// # use multiproc::pool::{MapOptions, Pool};
    /// #[multiproc::process_task]
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// let n = pool.imap_unordered_with(square, 0..5, MapOptions::new().chunksize(2))?.count();
    /// assert_eq!(n, 5);
    /// # Ok(())
    /// # }
    /// ```
    pub fn imap_unordered_with<'a, F, A, M, I>(
        &self,
        task: F,
        items: I,
        options: MapOptions,
    ) -> Result<Imap<'a, F::Output>, Error>
    where
        F: Task<A>,
        A: 'static,
        I: IntoIterator + 'a,
        I::Item: IntoArgs<A, M>,
    {
        self.imap_inner(task, items, options, false)
    }

    fn imap_inner<'a, F, A, M, I>(
        &self,
        task: F,
        items: I,
        options: MapOptions,
        ordered: bool,
    ) -> Result<Imap<'a, F::Output>, Error>
    where
        F: Task<A>,
        A: 'static,
        I: IntoIterator + 'a,
        I::Item: IntoArgs<A, M>,
    {
        if self.shared.phase() != Phase::Running {
            return Err(Error::PoolNotRunning);
        }
        let (entry, f) = function(&task)?;
        let chunksize = if options.timeout.is_some() { 1 } else { options.chunksize.unwrap_or(1) };
        let mut items = items.into_iter();
        let input = move |into: &mut Batch| {
            let item = items.next()?;
            Some(encode(entry, f, item.into_args(), into))
        };
        Ok(Imap {
            shared: Arc::clone(&self.shared),
            job: Arc::new(
                Job::<F::Output>::new(f.decode_values, entry.path, None, !ordered)
                    .with_bar(options.bars.as_ref().map(|b| b.add(None, short_name(entry.path)))),
            ),
            input: Box::new(input),
            entry: table_index(entry),
            chunksize,
            timeout: options.timeout,
            read_ahead: options.read_ahead.unwrap_or(4 * self.processes * chunksize),
            submitted: 0,
            yielded: 0,
            exhausted: false,
            ordered,
            ready: std::collections::VecDeque::new(),
        })
    }
}
