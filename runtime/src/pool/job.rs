//! Where a pool's results go: one [`Job`] per `apply_async` or map call,
//! holding each task's outcome as it arrives, and the failures a task can
//! have.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::buffers;
use crate::error::{DecodeError, Error, PanicInfo};
use crate::exit::ExitStatus;

/// Why one task failed. Kept (and cloned into an [`Error`] at each `get`)
/// so that a result can be asked for more than once, as in Python.
#[derive(Debug, Clone)]
pub(super) enum Failure {
    Panicked { name: String, panic: PanicInfo },
    WorkerDied { pid: u32, status: ExitStatus },
    TimedOut(Duration),
    Terminated,
    Unencodable { name: String, message: String },
    BadResult { name: String, error: DecodeError },
    WorkerStart(String),
    Encode { task: &'static str, message: String },
    NotRunning,
}

impl Failure {
    pub(super) fn to_error(&self) -> Error {
        match self.clone() {
            Failure::Panicked { name, panic } => Error::Panicked { name, panic },
            Failure::WorkerDied { pid, status } => Error::WorkerDied { pid, status },
            Failure::TimedOut(timeout) => Error::TaskTimedOut { timeout },
            Failure::Terminated => Error::PoolTerminated,
            Failure::Unencodable { name, message } => Error::Unencodable { name, message },
            Failure::BadResult { name, error } => Error::BadResult { name, error },
            Failure::WorkerStart(message) => Error::WorkerStart { message },
            Failure::Encode { task, message } => Error::Encode { task, message },
            Failure::NotRunning => Error::PoolNotRunning,
        }
    }
}

/// The outcomes of consecutive tasks of a job, as they came: the message
/// of their results, whose values are decoded by whoever asks for them (so
/// that `get` can be called again), and the tasks that failed.
#[derive(Debug)]
pub(super) struct Segment {
    /// The job index of the first task.
    pub(super) first: usize,
    pub(super) count: usize,
    /// The message the results came in (a worker's message may hold the
    /// results of several chunks, each a segment).
    msg: Arc<Vec<u8>>,
    /// Where the values of the tasks that returned are in `msg`, end to end.
    values: Range<usize>,
    /// The tasks that failed, by offset, in order.
    failures: Vec<(usize, Failure)>,
}

impl Segment {
    /// Results from a worker.
    pub(super) fn results(
        first: usize,
        count: usize,
        msg: Arc<Vec<u8>>,
        values: Range<usize>,
        failures: Vec<(usize, Failure)>,
    ) -> Segment {
        Segment { first, count, msg, values, failures }
    }

    /// `count` tasks from `first` on that all failed with `failure`.
    pub(super) fn failed(first: usize, count: usize, failure: &Failure) -> Segment {
        let failures = (0..count).map(|i| (i, failure.clone())).collect();
        Segment { first, count, msg: Arc::default(), values: 0..0, failures }
    }

    fn end(&self) -> usize {
        self.first + self.count
    }

    fn succeeded(&self) -> bool {
        self.failures.is_empty()
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // The last segment of a message gives its memory back.
        if let Some(msg) = Arc::get_mut(&mut self.msg) {
            buffers::give(std::mem::take(msg));
        }
    }
}

/// Receives the outcomes of a job's tasks.
pub(super) trait Sink: Send + Sync {
    fn deliver(&self, segment: Segment);
}

/// A task's values decoder (`FunctionEntry::decode_values`).
pub(super) type DecodeValues = fn(&mut &[u8], usize, &mut dyn Any) -> Result<(), DecodeError>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Decodes `count` values with the task's codec from the front of `bytes`.
pub(super) fn decode<R: 'static>(decode: DecodeValues, bytes: &mut &[u8], count: usize) -> Result<Vec<R>, DecodeError> {
    let mut out: Vec<R> = Vec::new();
    decode(bytes, count, &mut out)?;
    Ok(out)
}

/// What runs once a job is complete.
type OnComplete<R> = Box<dyn FnOnce(&Job<R>) + Send>;

/// What a job holds.
pub(super) struct Slots {
    /// The outcomes in, by their first task's index.
    pub(super) segments: BTreeMap<usize, Segment>,
    /// How many tasks' outcomes are in.
    pub(super) done: usize,
    /// The first indices of segments not yet taken by an unordered reader,
    /// in the order they came in.
    pub(super) arrived: VecDeque<usize>,
    /// The number of tasks, once all are submitted.
    pub(super) total: Option<usize>,
    /// Whether `arrived` is kept (for an unordered reader).
    unordered: bool,
    /// Readers waiting for any one outcome (not for the whole job): each
    /// outcome must wake them.
    each_waiters: usize,
    /// Readers asleep on the job's condition variable: with none, a change
    /// wakes no one (and costs no system call).
    sleepers: usize,
    /// How many outcomes wake an in-order reader ([`values_in_order`]);
    /// `usize::MAX` when none waits.
    wake_at: usize,
}

impl Slots {
    pub(super) fn complete(&self) -> bool {
        self.total == Some(self.done)
    }

    /// Whether every task in returned a value.
    pub(super) fn all_succeeded(&self) -> bool {
        self.segments.values().all(Segment::succeeded)
    }

    /// Takes out the next segment for a streaming reader: the one that
    /// starts at `next` (in order) or the first to arrive (unordered).
    pub(super) fn take_next(&mut self, ordered: bool, next: usize) -> Option<Segment> {
        let first = if ordered { next } else { self.arrived.pop_front()? };
        self.segments.remove(&first)
    }

    pub(super) fn has_next(&self, ordered: bool, next: usize) -> bool {
        if ordered { self.segments.contains_key(&next) } else { !self.arrived.is_empty() }
    }
}

/// The tasks of one call, and their outcomes as they arrive.
pub(super) struct Job<R> {
    pub(super) slots: Mutex<Slots>,
    changed: Condvar,
    pub(super) decode: DecodeValues,
    _result: PhantomData<fn() -> R>,
    /// The name of the task, for messages.
    pub(super) name: &'static str,
    /// Run once the job is complete (the callbacks).
    on_complete: Mutex<Vec<OnComplete<R>>>,
    /// The bar that counts the job's outcomes, if one was asked for.
    bar: Option<crate::progress::Bar>,
}

impl<R: 'static> Job<R> {
    pub(super) fn new(decode: DecodeValues, name: &'static str, total: Option<usize>, unordered: bool) -> Job<R> {
        Job {
            slots: Mutex::new(Slots {
                segments: BTreeMap::new(),
                done: 0,
                arrived: VecDeque::new(),
                total,
                unordered,
                each_waiters: 0,
                sleepers: 0,
                wake_at: usize::MAX,
            }),
            changed: Condvar::new(),
            decode,
            _result: PhantomData,
            name,
            on_complete: Mutex::new(Vec::new()),
            bar: None,
        }
    }

    /// A bar that counts the outcomes as they come.
    pub(super) fn with_bar(mut self, bar: Option<crate::progress::Bar>) -> Job<R> {
        self.bar = bar;
        self
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Slots> {
        lock(&self.slots)
    }

    /// Says how many tasks the job has, once all are submitted.
    pub(super) fn set_total(&self, total: usize) {
        let (complete, sleepers) = {
            let mut s = self.lock();
            s.total = Some(total);
            (s.done == total, s.sleepers)
        };
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            if complete {
                bar.finish();
            }
        }
        if sleepers > 0 {
            self.changed.notify_all();
        }
        if complete {
            self.complete();
        }
    }

    /// Waits until `ready` holds of the slots, or until `deadline`. `each`:
    /// `ready` may hold before the job is complete (one more outcome can
    /// satisfy it), so every outcome wakes this wait; otherwise only the
    /// completion does.
    pub(super) fn wait_until(
        &self,
        deadline: Option<Instant>,
        each: bool,
        mut ready: impl FnMut(&Slots) -> bool,
    ) -> (MutexGuard<'_, Slots>, bool) {
        let mut s = self.lock();
        if each {
            s.each_waiters += 1;
        }
        let result = loop {
            if ready(&s) {
                break true;
            }
            match self.wait_change(s, deadline) {
                Ok(next) => s = next,
                Err(last) => {
                    s = last;
                    break false;
                }
            }
        };
        if each {
            s.each_waiters -= 1;
        }
        (s, result)
    }

    /// Waits for the slots to change: the guard again, or, once `deadline`
    /// has passed, the guard as an error.
    fn wait_change<'a>(
        &self,
        mut s: MutexGuard<'a, Slots>,
        deadline: Option<Instant>,
    ) -> Result<MutexGuard<'a, Slots>, MutexGuard<'a, Slots>> {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|left| left.is_zero()) {
            return Err(s);
        }
        s.sleepers += 1;
        let mut s = match left {
            None => self.changed.wait(s).unwrap_or_else(PoisonError::into_inner),
            Some(left) => self.changed.wait_timeout(s, left).unwrap_or_else(PoisonError::into_inner).0,
        };
        s.sleepers -= 1;
        Ok(s)
    }

    fn bad_result(&self, error: DecodeError) -> Error {
        Error::BadResult { name: self.name.to_owned(), error }
    }

    /// Appends to `values` the values of the tasks from `values.len()` on,
    /// as far as their outcomes are in and are values; the error of the
    /// first failed one, if that is where it stops.
    #[expect(clippy::ptr_arg, reason = "the decoder appends to the Vec, through `Any`")]
    pub(super) fn values_from(&self, s: &Slots, values: &mut Vec<R>) -> Option<Error> {
        while let Some(seg) = s.segments.get(&values.len()) {
            let ok = seg.failures.first().map_or(seg.count, |&(at, _)| at);
            let mut bytes = &seg.msg[seg.values.clone()];
            if let Err(e) = (self.decode)(&mut bytes, ok, values) {
                return Some(self.bad_result(e));
            }
            if let Some((_, failure)) = seg.failures.first() {
                return Some(failure.to_error());
            }
        }
        None
    }

    /// Every task's outcome of a segment, in order.
    pub(super) fn each_of(&self, seg: &Segment) -> Vec<Result<R, Error>> {
        let mut bytes = &seg.msg[seg.values.clone()];
        let values = decode::<R>(self.decode, &mut bytes, seg.count - seg.failures.len());
        let (mut values, error) = match values {
            Ok(v) => (v.into_iter(), None),
            Err(e) => (Vec::new().into_iter(), Some(e)),
        };
        let mut failures = seg.failures.iter().peekable();
        (0..seg.count)
            .map(|i| match failures.next_if(|(at, _)| *at == i) {
                Some((_, f)) => Err(f.to_error()),
                None => match (values.next(), &error) {
                    (Some(v), _) => Ok(v),
                    (None, Some(e)) => Err(self.bad_result(e.clone())),
                    (None, None) => Err(self.bad_result(DecodeError::Invalid("a result is missing".into()))),
                },
            })
            .collect()
    }

    /// Sets what runs once the job is complete; runs it now (on this
    /// thread) if it is complete already.
    pub(super) fn on_complete(&self, f: OnComplete<R>) {
        {
            let s = self.lock();
            // Under the job's lock, so a completion cannot slip in between
            // the look and the registration.
            if !s.complete() {
                lock(&self.on_complete).push(f);
                return;
            }
        }
        f(self);
    }

    fn complete(&self) {
        let callbacks = std::mem::take(&mut *lock(&self.on_complete));
        for f in callbacks {
            f(self);
        }
    }
}

impl<R: 'static> Sink for Job<R> {
    /// Stores the segment, wakes who may wait for it, and runs the
    /// callbacks if the job is complete now. A task whose outcome is in
    /// already is never counted twice: a segment that overlaps one held is
    /// dropped.
    fn deliver(&self, seg: Segment) {
        let complete = {
            let mut s = self.lock();
            let overlaps = s.segments.range(..seg.end()).next_back().is_some_and(|(_, held)| held.end() > seg.first);
            if seg.count == 0 || overlaps {
                return;
            }
            let n = seg.count;
            if s.unordered {
                s.arrived.push_back(seg.first);
            }
            s.segments.insert(seg.first, seg);
            s.done += n;
            let complete = s.complete();
            if s.sleepers > 0 && (complete || s.each_waiters > 0 || s.done >= s.wake_at) {
                self.changed.notify_all();
            }
            if let Some(bar) = &self.bar {
                bar.inc(n as u64);
                if complete {
                    bar.finish();
                }
            }
            complete
        };
        if complete {
            self.complete();
        }
    }
}

/// The outcome of all of a job's tasks, in order: the values, or the
/// first failure by index.
pub(super) fn all_values<R: 'static>(job: &Job<R>, s: &Slots) -> Result<Vec<R>, Error> {
    let mut values = Vec::new();
    match job.values_from(s, &mut values) {
        Some(e) => Err(e),
        None => Ok(values),
    }
}

/// [`all_values`] once the job is complete, or `None` if `deadline` comes
/// first. The values are decoded as they arrive, in order, while the
/// later tasks still run: a long map's last result is not followed by the
/// decoding of all the others. The wait is woken a few times over the job
/// (each sixteenth of it), not at every result, which would cost more
/// than the decoding it overlaps.
pub(super) fn values_in_order<R: 'static>(job: &Job<R>, deadline: Option<Instant>) -> Option<Result<Vec<R>, Error>> {
    let mut failed = None;
    let mut s = job.lock();
    let mut values = Vec::with_capacity(s.total.unwrap_or(0));
    loop {
        if failed.is_none() {
            failed = job.values_from(&s, &mut values);
        }
        if s.complete() {
            s.wake_at = usize::MAX;
            return Some(failed.map_or(Ok(values), Err));
        }
        // After a failure only the end matters.
        let step = s.total.map_or(1, |t| t / 16).max(1);
        s.wake_at = if failed.is_none() { s.done + step } else { usize::MAX };
        s = match job.wait_change(s, deadline) {
            Ok(next) => next,
            Err(mut last) => {
                last.wake_at = usize::MAX;
                return None;
            }
        };
    }
}

/// Runs `f` with the job's value (computed by `value`) once the job is
/// complete: on the thread that completes it, or on this one if it is
/// complete already.
pub(super) fn when_complete<R: 'static, T: 'static>(
    job: &Job<R>,
    value: fn(&Job<R>, &Slots) -> Result<T, Error>,
    f: impl FnOnce(Result<T, Error>) + Send + 'static,
) {
    job.on_complete(Box::new(move |job| {
        let result = {
            let s = job.lock();
            value(job, &s)
        };
        f(result);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_values(_: &mut &[u8], _: usize, _: &mut dyn Any) -> Result<(), DecodeError> {
        Ok(())
    }

    #[test]
    fn a_streaming_reader_keeps_nothing_it_has_taken() {
        for ordered in [true, false] {
            let job = Job::<()>::new(no_values, "t", None, !ordered);
            for i in 0..1000 {
                job.deliver(Segment::failed(i, 1, &Failure::Terminated));
                let mut s = job.lock();
                assert!(s.has_next(ordered, i));
                assert_eq!(s.take_next(ordered, i).map(|seg| seg.first), Some(i));
                assert!(s.segments.is_empty() && s.arrived.is_empty());
            }
        }
    }

    #[test]
    fn a_task_delivered_twice_is_counted_once() {
        let job = Job::<()>::new(no_values, "t", Some(4), false);
        job.deliver(Segment::failed(0, 3, &Failure::Terminated));
        job.deliver(Segment::failed(2, 1, &Failure::Terminated));
        job.deliver(Segment::failed(1, 2, &Failure::Terminated));
        assert_eq!(job.lock().done, 3);
        job.deliver(Segment::failed(3, 1, &Failure::Terminated));
        assert!(job.lock().complete());
    }
}
