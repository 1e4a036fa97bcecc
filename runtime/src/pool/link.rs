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
use crate::pipe::{self, Connection, Inbox, ReadOnly, WriteOnly};
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

/// How much work a worker is given ahead of the chunk it runs, by the time
/// its chunks have been taking: enough that it never waits for the parent
/// between quick tasks, little enough that the other workers are not left
/// idle at the end of a map while one has a backlog.
const AHEAD_TIME: Duration = Duration::from_millis(1);

/// The most chunks a worker has at once: the one it runs and those sent
/// ahead of it (quick ones go in one message).
const IN_FLIGHT: usize = 32;

/// The most argument bytes sent ahead, all chunks together: well inside
/// what a pipe holds (64 KiB for the named pipes on Windows), so that a
/// send never waits for the worker to read.
const AHEAD_BYTES: usize = 16 * 1024;

/// How a caller's wait for its lone task's result went.
pub(super) enum Received {
    /// Every result is in.
    Finished,
    /// The deadline came first.
    Pending,
    /// The worker is gone: what it ran is delivered or put back.
    Lost,
}

/// The chunks sent to a worker, oldest first.
pub(super) type Flight = VecDeque<InFlight>;

/// A chunk sent to a worker whose results are not all in.
pub(super) struct InFlight {
    chunk: Chunk,
    /// The worker's number for the chunk's first task.
    first: u64,
    /// How many results are in.
    done: usize,
    /// When it was sent or its last result came (for its time limit).
    since: Instant,
    sent: Instant,
}

impl InFlight {
    /// Whether the chunk is of the job at `job`.
    pub(super) fn is_for(&self, job: *const ()) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.chunk.sink), job)
    }
}

/// The parent's side of one worker.
pub(super) struct Worker {
    child: Option<Arc<Child<()>>>,
    /// What the worker sends.
    rx: Connection<(), ReadOnly>,
    /// What was read from `rx` ahead of the messages it belongs to.
    inbox: Inbox,
    /// What the worker is sent.
    tx: Connection<(), WriteOnly>,
    /// The worker stores `n + 1` here before it runs its task number `n`.
    word: Option<SharedWord>,
    slot: usize,
    pid: u32,
    name: String,
    /// The worker's tasks sent so far (its tasks' numbers).
    sent: u64,
    /// Chunks it finished.
    pub(super) chunks: u64,
    /// How long its chunks have been taking each (a moving average).
    pace: Duration,
    /// When its last results came.
    last: Instant,
}

impl Worker {
    pub(super) fn start(shared: &Shared, slot: usize) -> Result<Worker, Failure> {
        let failed = |what: &str, e: &dyn std::fmt::Display| Failure::WorkerStart(format!("{what}: {e}"));
        let link = || pipe::fast_one_way::<()>().map_err(|e| failed("creating a worker's pipe", &e));
        let ((rx, worker_tx), (worker_rx, tx)) = (link()?, link()?);
        let word = SharedWord::new().ok();
        let handle = match &word {
            Some(w) => Some(Handle::new(w.file().map_err(|e| failed("sharing a worker's task word", &e))?)),
            None => None,
        };
        let spec = WorkerSpec { init: shared.config.init.clone(), exit_hook: shared.config.exit_hook, word: handle };
        let child = Builder::internal(&WORKER, ((worker_rx, worker_tx), spec), "SpawnPoolWorker")
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
        Ok(Worker {
            child: Some(child),
            rx,
            inbox: Inbox::default(),
            tx,
            word,
            slot,
            pid,
            name,
            sent: 0,
            chunks: 0,
            pace: AHEAD_TIME,
            last: Instant::now(),
        })
    }

    /// Sends the chunk and delivers its results as they come. While the
    /// results of quick tasks come, the next chunks are sent ahead, so the
    /// worker never waits for the parent.
    pub(super) fn run(&mut self, shared: &Shared, chunk: Chunk) -> Ran {
        let mut flight = Flight::with_capacity(IN_FLIGHT);
        if !self.send(vec![chunk], &mut flight) {
            return self.lost(shared, flight, None);
        }
        self.finish(shared, flight)
    }

    /// Delivers the results of the chunks in `flight` as they come, and
    /// sends more ahead of them while they are quick.
    pub(super) fn finish(&mut self, shared: &Shared, mut flight: Flight) -> Ran {
        while let Some(front) = flight.front() {
            let untimed = front.chunk.timeout.is_none();
            let ahead = (AHEAD_TIME.as_nanos() / self.pace.as_nanos().max(1)).clamp(1, IN_FLIGHT as u128) as usize;
            if flight.len() < ahead && untimed && shared.config.max_tasks.is_none() {
                // What the worker has not read yet must fit in the pipe:
                // it writes results while this end writes chunks, and
                // neither may wait for the other to read.
                let mut unread: usize = flight.iter().skip(1).map(|f| f.chunk.args.bytes().len()).sum();
                let mut next = Vec::new();
                while flight.len() + next.len() < ahead {
                    let fits = |c: &Chunk| c.timeout.is_none() && unread + c.args.bytes().len() <= AHEAD_BYTES;
                    let Some(c) = shared.try_next_chunk(fits) else { break };
                    unread += c.args.bytes().len();
                    next.push(c);
                }
                if !next.is_empty() && !self.send(next, &mut flight) {
                    return self.lost(shared, flight, None);
                }
            }
            let front = flight.front_mut().expect("a chunk in flight");
            if let Some(limit) = front.chunk.timeout {
                let left = (front.since + limit).saturating_duration_since(Instant::now());
                if let Ok(false) = self.rx.poll_through(&self.inbox, Some(left)) {
                    self.kill();
                    return self.lost(shared, flight, Some(Failure::TimedOut(limit)));
                }
            }
            // Alone (one chunk out, nothing queued), a result is awaited
            // by a busy-wait first: it is a latency that matters. Otherwise
            // the CPUs are better left to the workers.
            self.rx.set_spin(flight.len() == 1 && shared.queue_is_empty());
            if let Err(lost) = self.receive_once(shared, &mut flight) {
                return lost;
            }
        }
        Ran::Finished
    }

    /// Receives one message of results and delivers them; a worker that is
    /// gone or breaks the protocol is [`lost`](Worker::lost).
    fn receive_once(&mut self, shared: &Shared, flight: &mut Flight) -> Result<(), Ran> {
        // A message of many results lands in memory kept for reuse.
        let Ok(msg) = self.rx.recv_bytes_through(&mut self.inbox, buffers::for_len) else {
            return Err(self.lost(shared, std::mem::take(flight), None));
        };
        if let Err(failure) = self.accept(msg, flight) {
            self.kill();
            if matches!(failure, Failure::WorkerStart(_)) {
                shared.set_broken(failure.clone());
            }
            return Err(self.lost(shared, std::mem::take(flight), Some(failure)));
        }
        Ok(())
    }

    /// A caller's wait for the results of a lone task it sent (see
    /// `super::direct`): receives until `flight` is empty, or until
    /// `deadline`, whichever is first.
    pub(super) fn receive(&mut self, shared: &Shared, flight: &mut Flight, deadline: Option<Instant>) -> Received {
        while !flight.is_empty() {
            if let Some(deadline) = deadline {
                // An error is found by the read that follows, and handled there.
                let left = deadline.saturating_duration_since(Instant::now());
                if let Ok(false) = self.rx.poll_through(&self.inbox, Some(left)) {
                    return Received::Pending;
                }
            }
            self.rx.set_spin(true);
            if self.receive_once(shared, flight).is_err() {
                return Received::Lost;
            }
        }
        Received::Finished
    }

    /// Kills the worker process (a failure is one it has already ended).
    fn kill(&self) {
        if let Some(c) = &self.child {
            let _ = c.kill();
        }
    }

    /// Sends chunks, in one message; false if the worker is gone.
    pub(super) fn send(&mut self, chunks: Vec<Chunk>, flight: &mut Flight) -> bool {
        let mut head = Writer::new(RUN);
        head.u64(self.sent).u32(chunks.len() as u32);
        for c in &chunks {
            head.u32(c.entry).u32(c.args.len() as u32).u64(c.args.bytes().len() as u64);
        }
        let ok = match &chunks[..] {
            [one] => self.tx.send_parts(&head.0, one.args.bytes()),
            // Small ones (see `finish`): joined.
            many => {
                many.iter().for_each(|c| head.0.extend_from_slice(c.args.bytes()));
                self.tx.send_bytes(&head.0)
            }
        }
        .is_ok();
        let now = Instant::now();
        for chunk in chunks {
            let first = self.sent;
            self.sent += chunk.args.len() as u64;
            flight.push_back(InFlight { chunk, first, done: 0, since: now, sent: now });
        }
        ok
    }

    /// Delivers the results in one message from the worker, to the chunks
    /// at the front of `flight`, taking out those it completes.
    fn accept(&mut self, msg: Vec<u8>, flight: &mut Flight) -> Result<(), Failure> {
        let bad = |e: crate::DecodeError| Failure::BadResult { name: self.name.clone(), error: e };
        let records = match msg.first() {
            Some(&DONE) => Done::parse(&msg).map_err(bad)?,
            Some(&INIT_FAILED) => {
                return Err(Failure::WorkerStart(format!(
                    "the initializer of {} failed: {}",
                    self.name,
                    String::from_utf8_lossy(&msg[1..])
                )));
            }
            _ => return Err(bad(message::malformed("an unknown message"))),
        };
        let msg = Arc::new(msg);
        let now = Instant::now();
        let mut completed = 0;
        // When the worker could start on what this message completes.
        let mut began = None;
        for done in records {
            let f = flight.front_mut().ok_or_else(|| bad(message::malformed("results of tasks it was not given")))?;
            if done.first != f.first + f.done as u64 || f.done + done.count > f.chunk.args.len() {
                return Err(bad(message::malformed("results of tasks it was not given")));
            }
            let failures = done
                .failures
                .iter()
                .map(|(at, status, bytes)| (*at, self.failure(*status, &msg[bytes.clone()])))
                .collect();
            let segment = Segment::results(f.chunk.index + f.done, done.count, Arc::clone(&msg), done.values, failures);
            f.chunk.sink.deliver(segment);
            f.done += done.count;
            f.since = now;
            if f.done == f.chunk.args.len() {
                let finished = flight.pop_front().expect("the front chunk");
                began.get_or_insert(self.last.max(finished.sent));
                completed += 1;
                self.chunks += 1;
            }
        }
        if let Some(began) = began {
            // The time the worker took for each, to pace what it is sent.
            let each = now.saturating_duration_since(began) / completed;
            self.pace = (self.pace * 3 + each) / 4;
        }
        self.last = now;
        Ok(())
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
    pub(super) fn lost(&mut self, shared: &Shared, flight: Flight, cause: Option<Failure>) -> Ran {
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
        } else if self.tx.send_bytes(&[STOP]).is_ok()
            && let Ok(msg) = self.rx.recv_bytes_through(&mut self.inbox, |_| Vec::new())
            && msg.first() == Some(&EXIT)
            && let Ok((status, bytes)) = Reader(&msg[1..]).item()
        {
            shared.lock().exits.push((status, bytes.to_vec(), self.name.clone()));
        }
        let _ = self.end(shared);
    }
}
