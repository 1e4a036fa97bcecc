//! What a pool's asynchronous calls return: [`AsyncResult`] (one task),
//! [`MapResult`] (a map) and the streaming [`Imap`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch::Batch;
use super::driver::{Chunk, Shared};
use super::job::{self, Failure, Job, Segment, Sink, Slots};
use crate::error::Error;

/// The result of [`Pool::apply_async`](super::Pool::apply_async): Python's
/// `AsyncResult`. The value can be asked for as often as wanted (each
/// `get` decodes it afresh).
pub struct AsyncResult<R> {
    pub(super) job: Arc<Job<R>>,
    /// The pool and worker its task was sent to by the caller, if it was
    /// (see `super::direct`): waiting for the result receives it.
    pub(super) direct: Option<(Arc<Shared>, usize)>,
}

impl<R> AsyncResult<R> {
    /// Receives the task's result from its worker, until `deadline`, if it
    /// was sent there directly and is still there to receive.
    fn receive(&self, deadline: Option<Instant>) {
        if let Some((shared, slot)) = &self.direct {
            shared.receive_direct(*slot, Arc::as_ptr(&self.job).cast(), deadline);
        }
    }

    /// Leaves the result to the worker's driver, for a callback or for no
    /// one.
    fn hand_back(&mut self) {
        if let Some((shared, slot)) = self.direct.take() {
            shared.hand_back(slot, Arc::as_ptr(&self.job).cast());
        }
    }
}

impl<R> Drop for AsyncResult<R> {
    fn drop(&mut self) {
        self.hand_back();
    }
}

impl<R> fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult").field("task", &self.job.name).finish_non_exhaustive()
    }
}

fn one<R: 'static>(job: &Job<R>, s: &Slots) -> Result<R, Error> {
    job::all_values(job, s)?.pop().ok_or_else(|| Error::BadResult {
        name: job.name.to_owned(),
        error: crate::DecodeError::Invalid("no result was decoded".into()),
    })
}

fn complete(s: &Slots) -> bool {
    s.complete()
}

impl<R: 'static> AsyncResult<R> {
    /// Waits for the task and returns its value, or how it failed: a
    /// panic as [`Error::Panicked`], a dead worker as
    /// [`Error::WorkerDied`], a timeout as [`Error::TaskTimedOut`].
    ///
    /// ```
    /// use multiproc::pool::Pool;
    ///
    /// #[multiproc::process_task]
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(1)?;
    /// let result = pool.apply_async(square, 9)?;
    /// assert_eq!(result.get()?, 81);
    /// assert_eq!(result.get()?, 81); // as often as wanted
    /// # Ok(())
    /// # }
    /// ```
    pub fn get(&self) -> Result<R, Error> {
        self.receive(None);
        let (s, _) = self.job.wait_until(None, false, complete);
        one(&self.job, &s)
    }

    /// [`get`](AsyncResult::get), waiting at most `timeout`:
    /// [`Error::Timeout`] if the value is not there by then (Python's
    /// `get(timeout)` raising `TimeoutError`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::{Error, pool::Pool};
    ///
    /// #[multiproc::process_task]
    /// fn slow() -> u8 {
    ///     std::thread::sleep(Duration::from_secs(2));
    ///     1
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(1)?;
    /// let result = pool.apply_async(slow, ())?;
    /// assert!(matches!(result.get_timeout(Duration::from_millis(10)), Err(Error::Timeout(_))));
    /// assert_eq!(result.get()?, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<R, Error> {
        let deadline = Instant::now().checked_add(timeout);
        self.receive(deadline);
        match self.job.wait_until(deadline, false, complete) {
            (s, true) => one(&self.job, &s),
            (_, false) => Err(Error::Timeout(timeout)),
        }
    }

    /// Waits until the task is done.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn nothing() {}
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(1)?;
    /// let result = pool.apply_async(nothing, ())?;
    /// result.wait();
    /// assert!(result.ready());
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait(&self) {
        self.receive(None);
        drop(self.job.wait_until(None, false, complete));
    }

    /// Waits at most `timeout` for the task; true if it is done.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// # use std::time::Duration;
    /// #[multiproc::process_task]
    /// fn nothing() {}
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(1)?;
    /// let result = pool.apply_async(nothing, ())?;
    /// while !result.wait_timeout(Duration::from_millis(10)) {}
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        self.receive(deadline);
        self.job.wait_until(deadline, false, complete).1
    }

    /// Whether the task is done.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn nothing() {}
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(1)?;
    /// let result = pool.apply_async(nothing, ())?;
    /// result.wait();
    /// assert!(result.ready());
    /// # Ok(())
    /// # }
    /// ```
    pub fn ready(&self) -> bool {
        self.receive(Some(Instant::now()));
        complete(&self.job.lock())
    }

    /// Whether the task returned a value: `None` while it runs (where
    /// Python raises `ValueError`).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn fails() {
    ///     panic!("no");
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(1)?;
    /// let result = pool.apply_async(fails, ())?;
    /// result.wait();
    /// assert_eq!(result.successful(), Some(false));
    /// # Ok(())
    /// # }
    /// ```
    pub fn successful(&self) -> Option<bool> {
        self.receive(Some(Instant::now()));
        let s = self.job.lock();
        complete(&s).then(|| s.all_succeeded())
    }

    /// Calls `f` with the value once the task returns one (Python's
    /// `callback`): on the pool's thread that receives it, or on this one
    /// if it is in already. Keep it short: it delays the next result.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(1)?;
    /// let (tx, rx) = mpsc::channel();
    /// pool.apply_async(square, 4)?.callback(move |v| tx.send(v).unwrap());
    /// assert_eq!(rx.recv().unwrap(), 16);
    /// # Ok(())
    /// # }
    /// ```
    pub fn callback(mut self, f: impl FnOnce(R) + Send + 'static) -> Self {
        self.hand_back();
        job::when_complete(&self.job, one, move |r| {
            if let Ok(v) = r {
                f(v)
            }
        });
        self
    }

    /// Calls `f` with the error once the task fails (Python's
    /// `error_callback`), as [`callback`](AsyncResult::callback) does.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn fails() {
    ///     panic!("no");
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(1)?;
    /// let (tx, rx) = mpsc::channel();
    /// pool.apply_async(fails, ())?.error_callback(move |e| tx.send(e.to_string()).unwrap());
    /// assert!(rx.recv().unwrap().contains("no"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn error_callback(mut self, f: impl FnOnce(Error) + Send + 'static) -> Self {
        self.hand_back();
        job::when_complete(&self.job, one, move |r| {
            if let Err(e) = r {
                f(e)
            }
        });
        self
    }
}

/// The result of [`Pool::map_async`](super::Pool::map_async): every
/// task's value in input order, or the first failure by position.
pub struct MapResult<R> {
    pub(super) job: Arc<Job<R>>,
}

impl<R> fmt::Debug for MapResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapResult").field("task", &self.job.name).finish_non_exhaustive()
    }
}

impl<R: 'static> MapResult<R> {
    /// Waits for every task; their values in input order, or the error of
    /// the first one (by position) that failed.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn double(x: i32) -> i32 {
    ///     2 * x
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// assert_eq!(pool.map_async(double, [1, 2, 3])?.get()?, [2, 4, 6]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get(&self) -> Result<Vec<R>, Error> {
        job::values_in_order(&self.job, None).expect("no deadline")
    }

    /// [`get`](MapResult::get), waiting at most `timeout` (then
    /// [`Error::Timeout`]).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// # use std::time::Duration;
    /// #[multiproc::process_task]
    /// fn double(x: i32) -> i32 {
    ///     2 * x
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// assert_eq!(pool.map_async(double, [5])?.get_timeout(Duration::from_secs(60))?, [10]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<Vec<R>, Error> {
        job::values_in_order(&self.job, Instant::now().checked_add(timeout)).unwrap_or(Err(Error::Timeout(timeout)))
    }

    /// Every task's own outcome, in input order: a map in which some tasks
    /// fail still gives the values of the others.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn check(x: i32) -> i32 {
    ///     assert!(x != 2, "two");
    ///     x
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// let each = pool.map_async(check, [1, 2, 3])?.get_each();
    /// assert_eq!(each[0].as_ref().ok(), Some(&1));
    /// assert!(each[1].is_err());
    /// assert_eq!(each[2].as_ref().ok(), Some(&3));
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_each(&self) -> Vec<Result<R, Error>> {
        let (s, _) = self.job.wait_until(None, false, complete);
        s.segments.values().flat_map(|seg| self.job.each_of(seg)).collect()
    }

    /// Waits until every task is done.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn nothing(_: u8) {}
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// let result = pool.map_async(nothing, [1, 2])?;
    /// result.wait();
    /// assert!(result.ready() && result.successful() == Some(true));
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait(&self) {
        drop(self.job.wait_until(None, false, complete));
    }

    /// Waits at most `timeout`; true if every task is done.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// # use std::time::Duration;
    /// #[multiproc::process_task]
    /// fn nothing(_: u8) {}
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// let result = pool.map_async(nothing, [1, 2])?;
    /// while !result.wait_timeout(Duration::from_millis(10)) {}
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.job.wait_until(Instant::now().checked_add(timeout), false, complete).1
    }

    /// Whether every task is done.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn nothing(_: u8) {}
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// let result = pool.map_async(nothing, Vec::<u8>::new())?;
    /// assert!(result.ready()); // nothing to do
    /// # Ok(())
    /// # }
    /// ```
    pub fn ready(&self) -> bool {
        complete(&self.job.lock())
    }

    /// Whether every task returned a value: `None` while some run.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn nothing(_: u8) {}
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// let result = pool.map_async(nothing, [1])?;
    /// result.wait();
    /// assert_eq!(result.successful(), Some(true));
    /// # Ok(())
    /// # }
    /// ```
    pub fn successful(&self) -> Option<bool> {
        let s = self.job.lock();
        complete(&s).then(|| s.all_succeeded())
    }

    /// Calls `f` with every value, in input order, once all tasks returned
    /// one (Python's `callback`); see [`AsyncResult::callback`].
    ///
    /// ```
    /// use std::sync::mpsc;
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn double(x: i32) -> i32 {
    ///     2 * x
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// let (tx, rx) = mpsc::channel();
    /// pool.map_async(double, [1, 2])?.callback(move |v| tx.send(v).unwrap());
    /// assert_eq!(rx.recv().unwrap(), [2, 4]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn callback(self, f: impl FnOnce(Vec<R>) + Send + 'static) -> Self {
        job::when_complete(&self.job, job::all_values, move |r| {
            if let Ok(v) = r {
                f(v)
            }
        });
        self
    }

    /// Calls `f` with the first failure, once all tasks are done and one
    /// failed (Python's `error_callback`).
    ///
    /// ```
    /// use std::sync::mpsc;
    /// # use multiproc::pool::Pool;
    /// #[multiproc::process_task]
    /// fn fails(_: u8) {
    ///     panic!("no");
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let pool = Pool::new(2)?;
    /// let (tx, rx) = mpsc::channel();
    /// pool.map_async(fails, [1])?.error_callback(move |e| tx.send(e.to_string()).unwrap());
    /// assert!(rx.recv().unwrap().contains("no"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn error_callback(self, f: impl FnOnce(Error) + Send + 'static) -> Self {
        job::when_complete(&self.job, job::all_values, move |r| {
            if let Err(e) = r {
                f(e)
            }
        });
        self
    }
}

/// Encodes the next item of an `imap`'s input onto a batch; `None` at the
/// input's end.
pub(super) type Input<'a> = Box<dyn FnMut(&mut Batch) -> Option<Result<(), Failure>> + 'a>;

/// The iterator of [`Pool::imap`](super::Pool::imap) and
/// [`Pool::imap_unordered`](super::Pool::imap_unordered): each task's
/// outcome as it comes, in input order or in completion order.
///
/// The input is read as the results are taken, at most a bounded number
/// of tasks ahead ([`MapOptions::read_ahead`](super::MapOptions::read_ahead)),
/// so an endless iterator streams.
pub struct Imap<'a, R> {
    pub(super) shared: Arc<Shared>,
    pub(super) job: Arc<Job<R>>,
    /// Encodes the next item of the input into the batch; `None` at its end.
    pub(super) input: Input<'a>,
    pub(super) entry: u32,
    pub(super) chunksize: usize,
    pub(super) timeout: Option<Duration>,
    pub(super) read_ahead: usize,
    pub(super) submitted: usize,
    pub(super) yielded: usize,
    pub(super) exhausted: bool,
    pub(super) ordered: bool,
    /// The outcomes of the last segment taken, not yet yielded.
    pub(super) ready: VecDeque<Result<R, Error>>,
}

impl<R> fmt::Debug for Imap<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("task", &self.job.name)
            .field("submitted", &self.submitted)
            .field("yielded", &self.yielded)
            .finish_non_exhaustive()
    }
}

impl<R: 'static> Imap<'_, R> {
    /// Reads input until `read_ahead` tasks are out, or it ends.
    fn top_up(&mut self) {
        while !self.exhausted && self.submitted - self.yielded < self.read_ahead {
            let mut args = Batch::default();
            let mut start = self.submitted;
            for _ in 0..self.chunksize {
                match (self.input)(&mut args) {
                    None => {
                        self.exhausted = true;
                        break;
                    }
                    Some(Ok(())) => {}
                    Some(Err(failure)) => {
                        // The tasks before it go first, so a chunk's tasks
                        // stay consecutive.
                        self.send(start, std::mem::take(&mut args));
                        self.job.deliver(Segment::failed(self.submitted, 1, &failure));
                        start = self.submitted + 1;
                    }
                }
                self.submitted += 1;
            }
            self.send(start, args);
            if self.exhausted {
                self.job.set_total(self.submitted);
            }
        }
    }

    fn send(&mut self, index: usize, args: Batch) {
        if args.is_empty() {
            return;
        }
        let chunk = Chunk::new(Arc::clone(&self.job) as Arc<dyn Sink>, index, self.entry, args, self.timeout);
        self.shared.submit_or_fail(vec![chunk]);
    }
}

impl<R: 'static> Iterator for Imap<'_, R> {
    type Item = Result<R, Error>;

    fn next(&mut self) -> Option<Result<R, Error>> {
        if let Some(r) = self.ready.pop_front() {
            self.yielded += 1;
            return Some(r);
        }
        self.top_up();
        if self.yielded == self.submitted {
            return None;
        }
        let (next, ordered) = (self.yielded, self.ordered);
        let (mut s, _) = self.job.wait_until(None, true, |s| s.has_next(ordered, next));
        // Taken out of the job: what the reader has had is not kept.
        let seg = s.take_next(ordered, next).expect("a segment");
        drop(s);
        self.ready = self.job.each_of(&seg).into();
        self.yielded += 1;
        self.ready.pop_front()
    }
}
