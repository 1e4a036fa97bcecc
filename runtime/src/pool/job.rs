//! Where a pool's results go: one [`Job`] per `apply_async` or map call,
//! holding each task's outcome as it arrives, and the failures a task can
//! have.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{DecodeError, Error, PanicInfo};
use crate::exit::ExitStatus;
use std::any::Any;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;

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

/// How one task ended, as the parent keeps it: the encoded value (decoded
/// by whoever asks for it), as a range of the message it came in (shared
/// by the chunk's results), or the failure.
#[derive(Debug)]
pub(super) enum Outcome {
    Value(Arc<Vec<u8>>, Range<usize>),
    /// Boxed: failures are rare, and an outcome is stored per task.
    Failed(Box<Failure>),
}

impl Outcome {
    pub(super) fn failed(failure: Failure) -> Outcome {
        Outcome::Failed(Box::new(failure))
    }
}

/// Receives the outcomes of a job's tasks, by their index in the job.
pub(super) trait Sink: Send + Sync {
    fn deliver(&self, index: usize, outcome: Outcome);

    /// Delivers consecutive outcomes from `first` on.
    fn deliver_many(&self, first: usize, outcomes: Vec<Outcome>) {
        for (i, o) in outcomes.into_iter().enumerate() {
            self.deliver(first + i, o);
        }
    }
}

/// A task's result decoder (`FunctionEntry::decode_slice`).
pub(super) type DecodeSlice = fn(&[u8], &mut dyn Any) -> Result<(), DecodeError>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Decodes an encoded result with the task's codec, as an `R`.
pub(super) fn decode<R: 'static>(decode: DecodeSlice, bytes: &[u8]) -> Result<R, DecodeError> {
    let mut slot: Option<R> = None;
    decode(bytes, &mut slot)?;
    slot.ok_or_else(|| DecodeError::Invalid("no result was decoded".into()))
}

/// What runs once a job is complete.
type OnComplete<R> = Box<dyn FnOnce(&Job<R>) + Send>;

/// What a job holds.
pub(super) struct Slots {
    /// Each task's outcome, once it is in.
    pub(super) outcomes: Vec<Option<Outcome>>,
    /// How many outcomes are in.
    pub(super) done: usize,
    /// The indices of outcomes not yet taken by an unordered reader, in the
    /// order they came in.
    pub(super) arrived: VecDeque<usize>,
    /// The number of tasks, once all are submitted.
    pub(super) total: Option<usize>,
    /// Whether `arrived` is kept (for an unordered reader).
    unordered: bool,
    /// Readers waiting for any one outcome (not for the whole job): each
    /// outcome must wake them.
    each_waiters: usize,
    /// How many outcomes wake an in-order reader ([`values_in_order`]);
    /// `usize::MAX` when none waits.
    wake_at: usize,
}

/// The tasks of one call, and their outcomes as they arrive.
pub(super) struct Job<R> {
    pub(super) slots: Mutex<Slots>,
    changed: Condvar,
    pub(super) decode: DecodeSlice,
    _result: PhantomData<fn() -> R>,
    /// The name of the task, for messages.
    pub(super) name: &'static str,
    /// Run once the job is complete (the callbacks).
    on_complete: Mutex<Vec<OnComplete<R>>>,
    /// The bar that counts the job's outcomes, if one was asked for.
    bar: Option<crate::progress::Bar>,
}

impl<R: 'static> Job<R> {
    pub(super) fn new(decode: DecodeSlice, name: &'static str, total: Option<usize>, unordered: bool) -> Job<R> {
        Job {
            slots: Mutex::new(Slots {
                outcomes: (0..total.unwrap_or(0)).map(|_| None).collect(),
                done: 0,
                arrived: VecDeque::new(),
                total,
                unordered,
                each_waiters: 0,
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
        let complete = {
            let mut s = self.lock();
            s.total = Some(total);
            s.done == total
        };
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            if complete {
                bar.finish();
            }
        }
        self.changed.notify_all();
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
            match deadline {
                None => s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break false;
                    }
                    s = self.changed.wait_timeout(s, left).unwrap_or_else(PoisonError::into_inner).0;
                }
            }
        };
        if each {
            s.each_waiters -= 1;
        }
        (s, result)
    }

    /// The value of one outcome: decoded, or its failure as an error.
    pub(super) fn value_of(&self, outcome: &Outcome) -> Result<R, Error> {
        match outcome {
            Outcome::Value(msg, range) => decode(self.decode, &msg[range.clone()])
                .map_err(|error| Error::BadResult { name: self.name.to_owned(), error }),
            Outcome::Failed(f) => Err(f.to_error()),
        }
    }

    /// Sets what runs once the job is complete; runs it now (on this
    /// thread) if it is complete already.
    pub(super) fn on_complete(&self, f: OnComplete<R>) {
        {
            let s = self.lock();
            // Under the job's lock, so a completion cannot slip in between
            // the look and the registration.
            if s.total != Some(s.done) {
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

impl<R: 'static> Job<R> {
    /// Stores one outcome; true if it is new.
    fn store(s: &mut Slots, index: usize, outcome: Outcome) -> bool {
        if s.outcomes.len() <= index {
            s.outcomes.resize_with(index + 1, || None);
        }
        if s.outcomes[index].is_some() {
            // Delivered already: a task is never counted twice.
            return false;
        }
        s.outcomes[index] = Some(outcome);
        s.done += 1;
        if s.unordered {
            s.arrived.push_back(index);
        }
        true
    }

    /// Stores outcomes under one lock, wakes who may wait for them, and
    /// runs the callbacks if the job is complete now.
    fn store_all(&self, outcomes: impl IntoIterator<Item = (usize, Outcome)>) {
        let complete = {
            let mut s = self.lock();
            let mut stored = 0;
            for (index, outcome) in outcomes {
                stored += u64::from(Self::store(&mut s, index, outcome));
            }
            let complete = stored > 0 && s.total == Some(s.done);
            if complete || (stored > 0 && (s.each_waiters > 0 || s.done >= s.wake_at)) {
                self.changed.notify_all();
            }
            if let Some(bar) = &self.bar {
                bar.inc(stored);
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

impl<R: 'static> Sink for Job<R> {
    fn deliver(&self, index: usize, outcome: Outcome) {
        self.store_all([(index, outcome)]);
    }

    fn deliver_many(&self, first: usize, outcomes: Vec<Outcome>) {
        self.store_all(outcomes.into_iter().enumerate().map(|(i, o)| (first + i, o)));
    }
}

/// The outcome of all of a job's tasks, in order: the values, or the
/// first failure by index.
pub(super) fn all_values<R: 'static>(job: &Job<R>, s: &Slots) -> Result<Vec<R>, Error> {
    s.outcomes.iter().map(|o| job.value_of(o.as_ref().expect("a complete job has every outcome"))).collect()
}

/// [`all_values`] once the job is complete, or `None` if `deadline` comes
/// first. The values are decoded as they arrive, in order, while the
/// later tasks still run: a long map's last result is not followed by the
/// decoding of all the others. The wait is woken a few times over the job
/// (each sixteenth of it), not at every result, which would cost more
/// than the decoding it overlaps.
pub(super) fn values_in_order<R: 'static>(job: &Job<R>, deadline: Option<Instant>) -> Option<Result<Vec<R>, Error>> {
    let mut values = Vec::new();
    let mut failed = None;
    let mut s = job.lock();
    loop {
        if values.capacity() == 0 {
            values.reserve_exact(s.outcomes.len());
        }
        while failed.is_none()
            && let Some(Some(outcome)) = s.outcomes.get(values.len())
        {
            match job.value_of(outcome) {
                Ok(v) => values.push(v),
                Err(e) => failed = Some(e),
            }
        }
        if s.total == Some(s.done) {
            s.wake_at = usize::MAX;
            return Some(failed.map_or(Ok(values), Err));
        }
        // After a failure only the end matters.
        let step = s.total.map_or(1, |t| t / 16).max(1);
        s.wake_at = if failed.is_none() { s.done + step } else { usize::MAX };
        s = match deadline {
            None => job.changed.wait(s).unwrap_or_else(PoisonError::into_inner),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    s.wake_at = usize::MAX;
                    return None;
                }
                job.changed.wait_timeout(s, left).unwrap_or_else(PoisonError::into_inner).0
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
