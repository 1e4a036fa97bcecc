//! The parent's side of one pool worker: sends it chunks, delivers their
//! results, and, when it dies or a task overruns, charges the task it was
//! running and puts the rest back.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch::Done;
use super::buffers;
use super::driver::{Chunk, Phase, Shared};
use super::job::{Failure, Segment};
use super::message::{self, DONE, EXIT, INIT_FAILED, RUN, Reader, STOP, Status, Writer};
use super::worker::{WORKER, WorkerSpec};
use crate::error::Error;
use crate::handle::Handle;
use crate::pipe::{self, Connection};
use crate::process::{Builder, Child};
use crate::sys::SharedWord;

/// A worker that dies this often between tasks of the same chunk is
/// charged with it: something about the chunk kills it.
const MAX_RETRIES: u32 = 3;

/// How a chunk went.
pub(super) enum Ran {
    /// Every result is in; the worker waits for more.
    Finished,
    /// The worker is gone: what it ran is delivered or put back.
    Lost,
}

/// A round trip shorter than this makes it worth sending the next chunk
/// before the results of the one in flight are in.
const QUICK: Duration = Duration::from_millis(2);

/// The most chunks a worker has at once: the one it runs and those sent
/// ahead of it.
const IN_FLIGHT: usize = 8;

/// The most argument bytes sent ahead, all chunks together: well inside
/// what a pipe holds (64 KiB for the named pipes on Windows), so that a
/// send never waits for the worker to read.
const AHEAD_BYTES: usize = 16 * 1024;

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
pub(super) struct Worker {
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
    pub(super) chunks: u64,
    /// Whether its last chunk came back quickly.
    quick: bool,
}

impl Worker {
    pub(super) fn start(shared: &Shared, slot: usize) -> Result<Worker, Failure> {
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
        Ok(Worker { child: Some(child), conn: here, word, slot, pid, name, sent: 0, chunks: 0, quick: false })
    }

    /// Sends the chunk and delivers its results as they come. While the
    /// results of quick tasks come, the next chunk is sent ahead, so the
    /// worker never waits for the parent.
    pub(super) fn run(&mut self, shared: &Shared, chunk: Chunk) -> Ran {
        let mut flight = VecDeque::with_capacity(IN_FLIGHT);
        if !self.send(chunk, &mut flight) {
            return self.lost(shared, flight, None);
        }
        while let Some(front) = flight.front() {
            let untimed = front.chunk.timeout.is_none();
            while flight.len() < IN_FLIGHT && self.quick && untimed && shared.config.max_tasks.is_none() {
                // What the worker has not read yet must fit in the pipe:
                // it writes results while this end writes chunks, and
                // neither may wait for the other to read.
                let unread: usize = flight.iter().skip(1).map(|f| f.chunk.args.bytes().len()).sum();
                let fits = |c: &Chunk| c.timeout.is_none() && unread + c.args.bytes().len() <= AHEAD_BYTES;
                let Some(next) = shared.try_next_chunk(fits) else { break };
                if !self.send(next, &mut flight) {
                    return self.lost(shared, flight, None);
                }
            }
            let front = flight.front_mut().expect("a chunk in flight");
            if let Some(limit) = front.chunk.timeout {
                let left = (front.since + limit).saturating_duration_since(Instant::now());
                if let Ok(false) = self.conn.poll(Some(left)) {
                    self.kill();
                    return self.lost(shared, flight, Some(Failure::TimedOut(limit)));
                }
            }
            // Alone (one chunk out, nothing queued), a result is awaited
            // by a busy-wait first: it is a latency that matters. Otherwise
            // the CPUs are better left to the workers.
            self.conn.set_spin(flight.len() == 1 && shared.queue_is_empty());
            // A message of many results lands in memory kept for reuse.
            let buffer = |len| if len >= 4096 { buffers::take() } else { Vec::new() };
            let Ok(msg) = self.conn.recv_bytes_in(buffer) else {
                return self.lost(shared, flight, None);
            };
            let front = flight.front_mut().expect("a chunk in flight");
            if let Err(failure) = self.accept(msg, front) {
                self.kill();
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

    /// Kills the worker process (a failure is one it has already ended).
    fn kill(&self) {
        if let Some(c) = &self.child {
            let _ = c.kill();
        }
    }

    /// Sends a chunk; false if the worker is gone.
    fn send(&mut self, chunk: Chunk, flight: &mut VecDeque<InFlight>) -> bool {
        let first = self.sent;
        let mut head = Writer::new(RUN);
        head.u64(first).u32(chunk.entry).u32(chunk.args.len() as u32);
        self.sent += chunk.args.len() as u64;
        let ok = self.conn.send_parts(&head.0, chunk.args.bytes()).is_ok();
        let now = Instant::now();
        flight.push_back(InFlight { chunk, first, done: 0, since: now, sent: now });
        ok
    }

    /// Delivers the results in one message from the worker.
    fn accept(&self, msg: Vec<u8>, f: &mut InFlight) -> Result<(), Failure> {
        let bad = |e: crate::DecodeError| Failure::BadResult { name: self.name.clone(), error: e };
        match msg.first() {
            Some(&DONE) => {
                let done = Done::parse(&msg).map_err(bad)?;
                if done.first != f.first + f.done as u64 || f.done + done.count > f.chunk.args.len() {
                    return Err(bad(message::malformed("results of tasks it was not given")));
                }
                let failures = done
                    .failures
                    .iter()
                    .map(|(at, status, bytes)| (*at, self.failure(*status, &msg[bytes.clone()])))
                    .collect();
                let count = done.count;
                f.chunk.sink.deliver(Segment::results(f.chunk.index + f.done, count, msg, done.values, failures));
                f.done += count;
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

    /// Why a task failed, from its status and bytes.
    fn failure(&self, status: Status, bytes: &[u8]) -> Failure {
        let name = self.name.clone();
        match status {
            Status::Panicked => Failure::Panicked { name, panic: message::decode_panic(bytes) },
            _ => Failure::Unencodable { name, message: String::from_utf8_lossy(bytes).into_owned() },
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
                    f.chunk.sink.deliver(Segment::failed(f.chunk.index + n, 1, &failure));
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
    pub(super) fn stop(mut self, shared: &Shared) {
        if shared.phase() == Phase::Terminated {
            self.kill();
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
