//! A pool, the parent side: the queue of chunks, and one driver thread per
//! worker that feeds its worker chunk after chunk, delivers the results,
//! and replaces the worker when it dies, times out or has run its quota.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::job::{Failure, Outcome, Sink};
use super::message::{self, DONE, EXIT, INIT_FAILED, RUN, Reader, STOP, Status, Writer};
use super::worker::{WORKER, WorkerSpec};
use crate::error::Error;
use crate::handle::Handle;
use crate::pipe::{self, Connection};
use crate::process::{Builder, Child};
use crate::sys::SharedWord;

/// What a pool is made with.
#[derive(Debug)]
pub(super) struct Config {
    pub(super) processes: usize,
    /// The initializer's table index and encoded arguments.
    pub(super) init: Option<(u32, Vec<u8>)>,
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

/// The encoded arguments of some tasks, end to end in one buffer.
#[derive(Debug, Default, Clone)]
pub(super) struct Batch {
    bytes: Vec<u8>,
    /// Where each task's bytes end.
    ends: Vec<usize>,
}

impl Batch {
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Task `i`'s bytes.
    pub(super) fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// Adds a task whose bytes `encode` appends; nothing if it fails.
    pub(super) fn push<E>(&mut self, encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<(), E> {
        let at = self.bytes.len();
        match encode(&mut self.bytes) {
            Ok(()) => {
                self.ends.push(self.bytes.len());
                Ok(())
            }
            Err(e) => {
                self.bytes.truncate(at);
                Err(e)
            }
        }
    }

    /// The tasks `range`, as a batch of their own.
    fn part(&self, range: std::ops::Range<usize>) -> Batch {
        let mut b = Batch::default();
        for i in range {
            let _ = b.push(|v| {
                v.extend_from_slice(self.get(i));
                Ok::<(), ()>(())
            });
        }
        b
    }
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
    fn fail(self, failure: &Failure) {
        for i in 0..self.args.len() {
            self.sink.deliver(self.index + i, Outcome::failed(failure.clone()));
        }
    }

    /// The tasks `range` of this chunk, as a chunk of their own.
    fn part(&self, range: std::ops::Range<usize>) -> Chunk {
        Chunk {
            sink: Arc::clone(&self.sink),
            index: self.index + range.start,
            entry: self.entry,
            args: self.args.part(range),
            timeout: self.timeout,
            retries: 0,
        }
    }
}

/// How long an idle driver busy-waits for work before it sleeps.
const SPIN: Duration = Duration::from_micros(50);

/// A worker that dies this often between tasks of the same chunk is
/// charged with it: something about the chunk kills it.
const MAX_RETRIES: u32 = 3;

struct State {
    queue: VecDeque<Chunk>,
    phase: Phase,
    /// Set when a worker could not be made ready: every task fails so.
    broken: Option<Failure>,
    /// Each driver's current worker, for `terminate`.
    workers: Vec<Option<Arc<Child<()>>>>,
    /// What the exit hooks of the workers that stopped returned.
    exits: Vec<(Status, Vec<u8>, String)>,
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
            }),
            work: Condvar::new(),
            version: AtomicU64::new(0),
            spinning: AtomicBool::new(false),
            started: Mutex::new(0),
            started_cv: Condvar::new(),
            config,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
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

    /// Queues chunks; refused unless the pool is running.
    pub(super) fn submit(&self, chunks: Vec<Chunk>) -> Result<(), Error> {
        let n = chunks.len();
        {
            let mut s = self.lock();
            if s.phase != Phase::Running {
                return Err(Error::PoolNotRunning);
            }
            s.queue.extend(chunks);
        }
        self.version.fetch_add(1, Ordering::Release);
        if n == 1 {
            self.work.notify_one();
        } else {
            self.version.fetch_add(1, Ordering::Release);
            self.work.notify_all();
        }
        Ok(())
    }

    /// The next chunk to run; `None` once the pool is closed and the queue
    /// is empty, or it is terminated.
    fn next_chunk(&self) -> Option<Chunk> {
        let mut spun = false;
        let mut s = self.lock();
        loop {
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
            if !spun && crate::usable_cpu_count().get() > 1 && !self.spinning.swap(true, Ordering::AcqRel) {
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

    fn queue_is_empty(&self) -> bool {
        self.lock().queue.is_empty()
    }

    /// The next chunk, if one is queued now.
    fn try_next_chunk(&self) -> Option<Chunk> {
        let mut s = self.lock();
        if s.phase == Phase::Terminated || s.broken.is_some() {
            return None;
        }
        s.queue.pop_front()
    }

    /// Puts tasks back at the front of the queue (they had not run); fails
    /// them if the pool is terminated.
    fn put_back(&self, chunks: Vec<Chunk>) {
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
        self.version.fetch_add(1, Ordering::Release);
        self.work.notify_all();
    }

    fn set_broken(&self, failure: Failure) {
        self.lock().broken.get_or_insert(failure);
        self.version.fetch_add(1, Ordering::Release);
        self.work.notify_all();
    }

    /// Stops taking work; the queue is still run.
    pub(super) fn close(&self) {
        let mut s = self.lock();
        if s.phase == Phase::Running {
            s.phase = Phase::Closed;
        }
        drop(s);
        self.version.fetch_add(1, Ordering::Release);
        self.work.notify_all();
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
        self.version.fetch_add(1, Ordering::Release);
        self.work.notify_all();
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
    let mut worker = start_or_break(&shared, slot);
    *shared.started.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    shared.started_cv.notify_all();
    while let Some(chunk) = shared.next_chunk() {
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

/// Starts a worker; a pool whose worker cannot start is broken.
fn start_or_break(shared: &Shared, slot: usize) -> Option<Worker> {
    match Worker::start(shared, slot) {
        Ok(w) => Some(w),
        Err(f) => {
            shared.set_broken(f);
            None
        }
    }
}

/// How a chunk went.
enum Ran {
    /// Every result is in; the worker waits for more.
    Finished,
    /// The worker is gone: what it ran is delivered or put back.
    Lost,
}

/// A round trip shorter than this makes it worth sending the next chunk
/// before the results of the one in flight are in.
const QUICK: Duration = Duration::from_millis(2);

/// A chunk sent to a worker whose results are not all in.
struct InFlight {
    chunk: Chunk,
    /// The worker's number for the chunk's first task.
    first: u64,
    /// How many results are in.
    done: usize,
    /// When it was sent or its last result came (for its time limit).
    since: Instant,
    sent: Instant,
}

/// The parent's side of one worker.
struct Worker {
    child: Option<Arc<Child<()>>>,
    conn: Connection<()>,
    /// The worker stores `n + 1` here before it runs its task number `n`.
    word: Option<SharedWord>,
    slot: usize,
    pid: u32,
    name: String,
    /// The worker's tasks sent so far (its tasks' numbers).
    sent: u64,
    /// Chunks it finished.
    chunks: u64,
    /// Whether its last chunk came back quickly.
    quick: bool,
}

impl Worker {
    fn start(shared: &Shared, slot: usize) -> Result<Worker, Failure> {
        let failed = |what: &str, e: &dyn std::fmt::Display| Failure::WorkerStart(format!("{what}: {e}"));
        let (here, there) = pipe::pipe::<()>().map_err(|e| failed("creating a worker's pipe", &e))?;
        let word = SharedWord::new().ok();
        let handle = match &word {
            Some(w) => Some(Handle::new(w.file().map_err(|e| failed("sharing a worker's task word", &e))?)),
            None => None,
        };
        let spec = WorkerSpec { init: shared.config.init.clone(), exit_hook: shared.config.exit_hook, word: handle };
        let child = Builder::internal(&WORKER, (there, spec), "SpawnPoolWorker")
            .daemon(true)
            .progress_into(shared.config.bars.clone())
            .start()
            .map_err(|e| failed("starting a worker", &e))?;
        let (pid, name) = (child.pid(), child.name().to_owned());
        let child = Arc::new(child);
        {
            let mut s = shared.lock();
            if s.phase == Phase::Terminated {
                let _ = child.kill();
            }
            s.workers[slot] = Some(Arc::clone(&child));
        }
        Ok(Worker { child: Some(child), conn: here.no_spin(), word, slot, pid, name, sent: 0, chunks: 0, quick: false })
    }

    /// Sends the chunk and delivers its results as they come. While the
    /// results of quick tasks come, the next chunk is sent ahead, so the
    /// worker never waits for the parent.
    fn run(&mut self, shared: &Shared, chunk: Chunk) -> Ran {
        let mut flight = VecDeque::with_capacity(2);
        if !self.send(chunk, &mut flight) {
            return self.lost(shared, flight, None);
        }
        while let Some(front) = flight.front() {
            let untimed = front.chunk.timeout.is_none();
            if flight.len() < 2
                && self.quick
                && untimed
                && shared.config.max_tasks.is_none()
                && let Some(next) = shared.try_next_chunk()
            {
                if next.timeout.is_some() {
                    shared.put_back(vec![next]);
                } else if !self.send(next, &mut flight) {
                    return self.lost(shared, flight, None);
                }
            }
            let front = flight.front_mut().expect("a chunk in flight");
            if let Some(limit) = front.chunk.timeout {
                let left = (front.since + limit).saturating_duration_since(Instant::now());
                if let Ok(false) = self.conn.poll(Some(left)) {
                    if let Some(c) = &self.child {
                        let _ = c.kill();
                    }
                    return self.lost(shared, flight, Some(Failure::TimedOut(limit)));
                }
            }
            // Alone (one chunk out, nothing queued), a result is awaited
            // by a busy-wait first: it is a latency that matters. Otherwise
            // the CPUs are better left to the workers.
            self.conn.set_spin(flight.len() == 1 && shared.queue_is_empty());
            let Ok(msg) = self.conn.recv_bytes() else {
                return self.lost(shared, flight, None);
            };
            let front = flight.front_mut().expect("a chunk in flight");
            if let Err(failure) = self.accept(msg, front) {
                if let Some(c) = &self.child {
                    let _ = c.kill();
                }
                if matches!(failure, Failure::WorkerStart(_)) {
                    shared.set_broken(failure.clone());
                }
                return self.lost(shared, flight, Some(failure));
            }
            front.since = Instant::now();
            if front.done == front.chunk.args.len() {
                let finished = flight.pop_front().expect("the front chunk");
                // Quick round trips are worth sending ahead for.
                self.quick = finished.sent.elapsed() < QUICK;
                self.chunks += 1;
            }
        }
        Ran::Finished
    }

    /// Sends a chunk; false if the worker is gone.
    fn send(&mut self, chunk: Chunk, flight: &mut VecDeque<InFlight>) -> bool {
        let first = self.sent;
        let mut msg = Writer::new(RUN);
        msg.u64(first).u32(chunk.entry).u32(chunk.args.len() as u32);
        msg.0.reserve(chunk.args.bytes.len() + 8 * chunk.args.len());
        for i in 0..chunk.args.len() {
            msg.bytes(chunk.args.get(i));
        }
        self.sent += chunk.args.len() as u64;
        let ok = self.conn.send_bytes(&msg.0).is_ok();
        let now = Instant::now();
        flight.push_back(InFlight { chunk, first, done: 0, since: now, sent: now });
        ok
    }

    /// Delivers the results in one message from the worker.
    fn accept(&self, msg: Vec<u8>, f: &mut InFlight) -> Result<(), Failure> {
        let bad = |e: crate::DecodeError| Failure::BadResult { name: self.name.clone(), error: e };
        match msg.first() {
            Some(&DONE) => {
                let mut r = Reader(&msg[1..]);
                let at = r.u64().map_err(bad)?;
                let n = r.u32().map_err(bad)? as usize;
                if at != f.first + f.done as u64 || f.done + n > f.chunk.args.len() {
                    return Err(bad(message::malformed("results of tasks it was not given")));
                }
                let base = msg.as_ptr() as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    let (status, bytes) = r.item().map_err(bad)?;
                    let start = bytes.as_ptr() as usize - base;
                    items.push((status, start..start + bytes.len()));
                }
                let msg = Arc::new(msg);
                let outcomes = items.into_iter().map(|(status, range)| self.outcome(status, &msg, range)).collect();
                f.chunk.sink.deliver_many(f.chunk.index + f.done, outcomes);
                f.done += n;
                Ok(())
            }
            Some(&INIT_FAILED) => Err(Failure::WorkerStart(format!(
                "the initializer of {} failed: {}",
                self.name,
                String::from_utf8_lossy(&msg[1..])
            ))),
            _ => Err(bad(message::malformed("an unknown message"))),
        }
    }

    /// A task's outcome, from its status and bytes.
    fn outcome(&self, status: Status, msg: &Arc<Vec<u8>>, range: std::ops::Range<usize>) -> Outcome {
        let bytes = &msg[range.clone()];
        let name = || self.name.clone();
        let text = || String::from_utf8_lossy(bytes).into_owned();
        match status {
            Status::Returned => Outcome::Value(Arc::clone(msg), range),
            Status::Panicked => {
                Outcome::failed(Failure::Panicked { name: name(), panic: message::decode_panic(bytes) })
            }
            Status::Unencodable | Status::BadArguments | Status::Nothing => {
                Outcome::failed(Failure::Unencodable { name: name(), message: text() })
            }
        }
    }

    /// The worker is gone (or being killed) with the chunks in `flight`
    /// not wholly reported: the task it was running fails, with `cause` or
    /// with how the worker ended; the unreported others are put back to
    /// run again.
    fn lost(&mut self, shared: &Shared, flight: VecDeque<InFlight>, cause: Option<Failure>) -> Ran {
        // Which task ran: the worker said so in the shared word; without
        // it, it reported each task as it finished, so it is the first
        // unreported one.
        let running = match &self.word {
            Some(w) => w.load().checked_sub(1),
            None => flight.front().map(|f| f.first + f.done as u64),
        };
        let ended = self.end(shared);
        if shared.phase() == Phase::Terminated {
            for f in flight {
                f.chunk.part(f.done..f.chunk.args.len()).fail(&Failure::Terminated);
            }
            return Ran::Lost;
        }
        let failure = cause.clone().unwrap_or(ended);
        let mut charged = false;
        let mut back = Vec::new();
        for (i, f) in flight.into_iter().enumerate() {
            let count = f.chunk.args.len();
            let hit = running
                .and_then(|r| r.checked_sub(f.first))
                .map(|n| n as usize)
                .filter(|&n| n >= f.done && n < count)
                // A failure of the protocol or the set-up is the current
                // task's, as is a death a chunk keeps causing.
                .or_else(|| (i == 0 && (cause.is_some() || f.chunk.retries >= MAX_RETRIES)).then_some(f.done));
            match hit {
                Some(n) if !charged => {
                    charged = true;
                    f.chunk.sink.deliver(f.chunk.index + n, Outcome::failed(failure.clone()));
                    back.push(f.chunk.part(f.done..n));
                    back.push(f.chunk.part(n + 1..count));
                }
                _ => {
                    // Not the one that ran: nothing is charged, it goes back.
                    let mut rest = f.chunk.part(f.done..count);
                    rest.retries = f.chunk.retries + u32::from(i == 0);
                    back.push(rest);
                }
            }
        }
        back.retain(|c| !c.args.is_empty());
        if let Failure::WorkerStart(_) = failure {
            // The pool is broken: the rest fail the same way.
            for c in back {
                c.fail(&failure);
            }
        } else {
            shared.put_back(back);
        }
        Ran::Lost
    }

    /// Takes the worker out of the pool's table and waits for it to end;
    /// returns the failure its end stands for.
    fn end(&mut self, shared: &Shared) -> Failure {
        let ours = {
            let mut s = shared.lock();
            s.workers[self.slot].take()
        };
        drop(ours);
        let Some(child) = self.child.take() else {
            return Failure::WorkerStart("the worker was already ended".into());
        };
        let status = child.wait();
        let joined = Arc::try_unwrap(child).ok().map(Child::join);
        match (joined, status) {
            (Some(Err(Error::Panicked { name, panic })), _) => Failure::Panicked { name, panic },
            (_, Ok(status)) => Failure::WorkerDied { pid: self.pid, status },
            (_, Err(e)) => Failure::WorkerStart(format!("the status of worker {} is unknown: {e}", self.name)),
        }
    }

    /// Stops the worker: it runs its exit hook, whose result is kept, and
    /// ends. A terminated pool kills it instead.
    fn stop(mut self, shared: &Shared) {
        if shared.phase() == Phase::Terminated {
            if let Some(c) = &self.child {
                let _ = c.kill();
            }
        } else if self.conn.send_bytes(&[STOP]).is_ok()
            && let Ok(msg) = self.conn.recv_bytes()
            && msg.first() == Some(&EXIT)
            && let Ok((status, bytes)) = Reader(&msg[1..]).item()
        {
            shared.lock().exits.push((status, bytes.to_vec(), self.name.clone()));
        }
        let _ = self.end(shared);
    }
}
