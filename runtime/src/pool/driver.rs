//! A pool, the parent side: the queue of chunks, and one driver thread per
//! worker that feeds its worker chunk after chunk, delivers the results,
//! and replaces the worker when it dies, times out or has run its quota.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::batch::Batch;
use super::direct::Seat;
use super::job::{Failure, Segment, Sink};
use super::link::{Ran, Worker};
use super::message::Status;
use crate::process::Child;

/// What a pool is made with.
#[derive(Debug)]
pub(super) struct Config {
    pub(super) processes: usize,
    /// The initializer's table index and arguments.
    pub(super) init: Option<(u32, super::worker::InitArgs)>,
    pub(super) exit_hook: Option<u32>,
    pub(super) max_tasks: Option<u64>,
    /// Where each worker's bar is drawn, fed by its tasks' progress calls.
    pub(super) bars: Option<crate::progress::Attach>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Running,
    /// No new work; the workers stop once the queue is empty.
    Closed,
    /// Everything stops now.
    Terminated,
}

/// Tasks of one job, run by one worker in one message.
pub(super) struct Chunk {
    pub(super) sink: Arc<dyn Sink>,
    /// The job index of the first task.
    pub(super) index: usize,
    /// The function's index in the dispatch table.
    pub(super) entry: u32,
    /// Each task's encoded arguments.
    pub(super) args: Batch,
    /// Each task's time limit.
    pub(super) timeout: Option<Duration>,
    /// How often this chunk's first task was put back without being
    /// charged with a worker's death (the worker died between tasks).
    pub(super) retries: u32,
}

impl Chunk {
    /// The tasks of `sink`'s job from `index` on whose arguments are
    /// `args`, none put back yet.
    pub(super) fn new(sink: Arc<dyn Sink>, index: usize, entry: u32, args: Batch, timeout: Option<Duration>) -> Chunk {
        Chunk { sink, index, entry, args, timeout, retries: 0 }
    }

    pub(super) fn fail(self, failure: &Failure) {
        self.sink.deliver(Segment::failed(self.index, self.args.len(), failure));
    }

    /// The tasks `range` of this chunk, as a chunk of their own.
    pub(super) fn part(&self, range: std::ops::Range<usize>) -> Chunk {
        Chunk::new(Arc::clone(&self.sink), self.index + range.start, self.entry, self.args.part(range), self.timeout)
    }
}

/// How long an idle driver busy-waits for work before it sleeps.
const SPIN: Duration = Duration::from_micros(50);

pub(super) struct State {
    pub(super) queue: VecDeque<Chunk>,
    pub(super) phase: Phase,
    /// Set when a worker could not be made ready: every task fails so.
    pub(super) broken: Option<Failure>,
    /// Each driver's current worker, for `terminate`.
    pub(super) workers: Vec<Option<Arc<Child<()>>>>,
    /// What the exit hooks of the workers that stopped returned.
    pub(super) exits: Vec<(Status, Vec<u8>, String)>,
    /// Where each driver's worker is (see `super::direct`).
    pub(super) seats: Vec<Seat>,
}

/// What the pool's handle and its drivers share.
pub(super) struct Shared {
    state: Mutex<State>,
    /// Signalled when work arrives or the phase changes.
    work: Condvar,
    /// Bumped whenever `work` is signalled, for a driver that busy-waits.
    version: AtomicU64,
    /// Set while a driver busy-waits (one at a time: more would only take
    /// CPU from the workers).
    spinning: AtomicBool,
    /// How many drivers have made their first attempt to start a worker.
    started: Mutex<usize>,
    started_cv: Condvar,
    pub(super) config: Config,
}

impl Shared {
    pub(super) fn new(config: Config) -> Shared {
        Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                phase: Phase::Running,
                broken: None,
                workers: (0..config.processes).map(|_| None).collect(),
                exits: Vec::new(),
                seats: (0..config.processes).map(|_| Seat::Driving).collect(),
            }),
            work: Condvar::new(),
            version: AtomicU64::new(0),
            spinning: AtomicBool::new(false),
            started: Mutex::new(0),
            started_cv: Condvar::new(),
            config,
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn phase(&self) -> Phase {
        self.lock().phase
    }

    /// Waits until every driver has tried to start its first worker, as
    /// Python's `Pool()` returns with its workers started.
    pub(super) fn wait_started(&self) {
        let mut n = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        while *n < self.config.processes {
            n = self.started_cv.wait(n).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Tells the drivers that work arrived, the phase changed or a seat
    /// did: one of them, or `all`. A driver that busy-waits sees the
    /// version change.
    pub(super) fn wake(&self, all: bool) {
        self.version.fetch_add(1, Ordering::Release);
        if all {
            self.work.notify_all();
        } else {
            self.work.notify_one();
        }
    }

    /// Queues chunks; unless the pool is running, they are refused and
    /// handed back.
    pub(super) fn submit(&self, chunks: Vec<Chunk>) -> Result<(), Vec<Chunk>> {
        let n = chunks.len();
        {
            let mut s = self.lock();
            if s.phase != Phase::Running {
                return Err(chunks);
            }
            s.queue.extend(chunks);
        }
        self.wake(n > 1);
        Ok(())
    }

    /// [`submit`](Shared::submit); the tasks of refused chunks fail with
    /// `PoolNotRunning`.
    pub(super) fn submit_or_fail(&self, chunks: Vec<Chunk>) {
        if let Err(refused) = self.submit(chunks) {
            for c in refused {
                c.fail(&Failure::NotRunning);
            }
        }
    }

    /// The next chunk to run; `None` once the pool is closed and the queue
    /// is empty, or it is terminated. While there is none, `worker` waits
    /// in the driver's seat `slot` for a caller's lone task; it is back in
    /// `worker` when this returns.
    fn next_chunk(&self, slot: usize, worker: &mut Option<Worker>) -> Option<Chunk> {
        let mut spun = false;
        let mut s = self.lock();
        loop {
            let wanted = s.phase != Phase::Running || !s.queue.is_empty();
            let (guard, back) = self.reclaim(s, slot, wanted, worker);
            s = guard;
            if !back {
                s = self.work.wait(s).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            if s.phase == Phase::Terminated {
                return None;
            }
            if let Some(chunk) = s.queue.pop_front() {
                match s.broken.clone() {
                    Some(f) => {
                        drop(s);
                        chunk.fail(&f);
                        s = self.lock();
                        continue;
                    }
                    None => return Some(chunk),
                }
            }
            if s.phase == Phase::Closed {
                return None;
            }
            if let Some(w) = worker.take() {
                s.seats[slot] = Seat::Idle(w);
            }
            if !spun && crate::pipe::spinning_pays() && !self.spinning.swap(true, Ordering::AcqRel) {
                // Work given right after the last result (a loop of
                // `apply`) is taken without a wake-up.
                spun = true;
                let seen = self.version.load(Ordering::Acquire);
                drop(s);
                let start = Instant::now();
                while self.version.load(Ordering::Acquire) == seen && start.elapsed() < SPIN {
                    std::hint::spin_loop();
                }
                self.spinning.store(false, Ordering::Release);
                s = self.lock();
                continue;
            }
            s = self.work.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    pub(super) fn queue_is_empty(&self) -> bool {
        self.lock().queue.is_empty()
    }

    /// The next chunk, if one is queued now and `take` accepts it.
    pub(super) fn try_next_chunk(&self, take: impl FnOnce(&Chunk) -> bool) -> Option<Chunk> {
        let mut s = self.lock();
        if s.phase == Phase::Terminated || s.broken.is_some() {
            return None;
        }
        if !take(s.queue.front()?) {
            return None;
        }
        s.queue.pop_front()
    }

    /// Puts tasks back at the front of the queue (they had not run); fails
    /// them if the pool is terminated.
    pub(super) fn put_back(&self, chunks: Vec<Chunk>) {
        let mut s = self.lock();
        if s.phase == Phase::Terminated {
            drop(s);
            for c in chunks {
                c.fail(&Failure::Terminated);
            }
            return;
        }
        for c in chunks.into_iter().rev() {
            s.queue.push_front(c);
        }
        drop(s);
        self.wake(true);
    }

    pub(super) fn set_broken(&self, failure: Failure) {
        self.lock().broken.get_or_insert(failure);
        self.wake(true);
    }

    /// Stops taking work; the queue is still run.
    pub(super) fn close(&self) {
        let mut s = self.lock();
        if s.phase == Phase::Running {
            s.phase = Phase::Closed;
        }
        drop(s);
        self.wake(true);
    }

    /// Stops everything: queued tasks fail with `PoolTerminated`, the
    /// workers are killed (their drivers fail what they were running).
    pub(super) fn terminate(&self) {
        let queued = {
            let mut s = self.lock();
            s.phase = Phase::Terminated;
            for w in s.workers.iter().flatten() {
                let _ = w.kill();
            }
            std::mem::take(&mut s.queue)
        };
        self.wake(true);
        for c in queued {
            c.fail(&Failure::Terminated);
        }
    }

    /// The process ids of the workers running now.
    pub(super) fn pids(&self) -> Vec<u32> {
        self.lock().workers.iter().flatten().map(|c| c.pid()).collect()
    }

    /// What the exit hooks returned so far: status, bytes, worker name.
    pub(super) fn exits(&self) -> Vec<(Status, Vec<u8>, String)> {
        self.lock().exits.clone()
    }
}

/// A driver: runs its worker until the pool is done.
pub(super) fn drive(shared: Arc<Shared>, slot: usize) {
    let mut worker = {
        // Counted however the attempt ends, a panic included: `Pool::new`
        // waits for every driver's count.
        let _counted = Started(&shared);
        start_or_break(&shared, slot)
    };
    while let Some(chunk) = shared.next_chunk(slot, &mut worker) {
        if worker.is_none() {
            worker = start_or_break(&shared, slot);
        }
        let Some(w) = worker.as_mut() else {
            let failure = shared.lock().broken.clone().unwrap_or(Failure::Terminated);
            chunk.fail(&failure);
            continue;
        };
        match w.run(&shared, chunk) {
            Ran::Finished => {
                if shared.config.max_tasks.is_some_and(|max| w.chunks >= max) {
                    // Recycled, as Python's `maxtasksperchild` asks; the next
                    // one starts now, so it is ready when work comes.
                    worker.take().expect("a worker").stop(&shared);
                    if shared.phase() == Phase::Running {
                        worker = start_or_break(&shared, slot);
                    }
                }
            }
            Ran::Lost => worker = None,
        }
    }
    if let Some(w) = worker {
        w.stop(&shared);
    }
}

/// Counts a driver's first attempt to start a worker when dropped.
struct Started<'a>(&'a Shared);

impl Drop for Started<'_> {
    fn drop(&mut self) {
        *self.0.started.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.0.started_cv.notify_all();
    }
}

/// Starts a worker; a pool whose worker cannot start is broken.
pub(super) fn start_or_break(shared: &Shared, slot: usize) -> Option<Worker> {
    match Worker::start(shared, slot) {
        Ok(w) => Some(w),
        Err(f) => {
            shared.set_broken(f);
            None
        }
    }
}
