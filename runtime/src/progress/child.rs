//! The child's side: the bar's state in atomics, and a thread that sends
//! it to the parent, coalesced.
//!
//! The task's calls only touch atomics (and, for a message, a lock); the
//! sender thread, started on the first call, sends the whole state when it
//! changed, then waits [`UPDATE_INTERVAL`] before looking again, and sleeps
//! when nothing changes until a call wakes it. A flush ([`finish`], the
//! exit) wakes it at once and waits for two of its passes, the second of
//! which began after the flush was asked: what the task set before the
//! flush has been written then. A sender that blocks (a parent that stopped
//! reading) holds up only the flush, for at most [`FLUSH_LIMIT`]; one whose
//! write fails (the parent is gone) stops, and the calls go on as no-ops.
//!
//! [`finish`]: super::finish

use std::io::{PipeWriter, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, Once, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::{MAX_MESSAGE, Update};
use crate::sys::{OsHandle, Shareable};
use crate::wire::{self, FrameKind};

/// The shortest time between two updates a child sends (a flush aside):
/// a loop that reports every step sends at most one update per interval, however
/// fast it goes.
///
/// ```
/// assert_eq!(multiproc::progress::UPDATE_INTERVAL, std::time::Duration::from_millis(50));
/// ```
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(50);

/// The longest [`finish`](super::finish) (or a child's exit) waits for the
/// last update to be written: only a parent that stopped reading makes it
/// wait that long.
///
/// ```
/// assert_eq!(multiproc::progress::FLUSH_LIMIT, std::time::Duration::from_secs(1));
/// ```
pub const FLUSH_LIMIT: Duration = Duration::from_secs(1);

/// How long an idle sender sleeps before it looks again anyway.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// `length` while the task has not set one.
const NO_LENGTH: u64 = u64::MAX;

static REPORTER: OnceLock<Reporter> = OnceLock::new();

/// In a child whose parent asked for progress: takes over the channel's
/// write end (the last handle the parent passed). A handle of another kind
/// is closed, and the child does not report.
pub(crate) fn adopt(handle: OsHandle) {
    if let Ok(writer) = PipeWriter::adopt(handle)
        && REPORTER.set(Reporter::new(writer)).is_ok()
    {
        // A task that calls `std::process::exit` skips the bootstrap's own
        // flush, not the exit handlers.
        crate::sys::imp::on_exit(flush_on_exit);
    }
}

extern "C" fn flush_on_exit() {
    flush_at_exit();
}

/// This process's reporter, if its parent asked for progress.
pub(super) fn reporter() -> Option<&'static Reporter> {
    REPORTER.get()
}

/// At a child's exit: sends the last state, waiting at most
/// [`FLUSH_LIMIT`].
pub(crate) fn flush_at_exit() {
    if let Some(r) = REPORTER.get() {
        r.flush();
    }
}

/// What the task and the sender share under the lock.
struct Locked {
    message: Option<String>,
    finished: bool,
    /// The write end, until the sender thread takes it.
    writer: Option<PipeWriter>,
    /// Flushes waiting: the sender does not pause between updates while
    /// there are any.
    flushers: usize,
    /// The sender's completed passes (a pass sends the state if it
    /// changed).
    passes: u64,
    /// The sender has stopped (a write failed, or it could not start).
    stopped: bool,
}

/// The bar's state in a child, and what wakes its sender.
pub(super) struct Reporter {
    position: AtomicU64,
    length: AtomicU64,
    /// Counts changes made under the lock (message, finish).
    generation: AtomicU64,
    /// Set while the sender sleeps with nothing to send.
    idle: AtomicBool,
    locked: Mutex<Locked>,
    /// Wakes the sender.
    wake: Condvar,
    /// Tells flushes that the sender completed a pass.
    passed: Condvar,
    started: Once,
}

/// A snapshot of what the sender compares: position, length, generation.
type Seen = (u64, u64, u64);

impl Reporter {
    fn new(writer: PipeWriter) -> Self {
        Reporter {
            position: AtomicU64::new(0),
            length: AtomicU64::new(NO_LENGTH),
            generation: AtomicU64::new(0),
            idle: AtomicBool::new(false),
            locked: Mutex::new(Locked {
                message: None,
                finished: false,
                writer: Some(writer),
                flushers: 0,
                passes: 0,
                stopped: false,
            }),
            wake: Condvar::new(),
            passed: Condvar::new(),
            started: Once::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Locked> {
        self.locked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn set_length(&'static self, length: u64) {
        self.length.store(length.min(NO_LENGTH - 1), Ordering::SeqCst);
        self.changed();
    }

    pub(super) fn inc(&'static self, delta: u64) {
        // Wrapping, as a counter: a task that overflows it only sees its
        // own bar wrong.
        self.position.fetch_add(delta, Ordering::SeqCst);
        self.changed();
    }

    pub(super) fn set_position(&'static self, position: u64) {
        self.position.store(position, Ordering::SeqCst);
        self.changed();
    }

    pub(super) fn set_message(&'static self, mut message: String) {
        if message.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        {
            let mut locked = self.lock();
            locked.message = Some(message);
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        self.changed();
    }

    pub(super) fn finish(&'static self) {
        {
            let mut locked = self.lock();
            locked.finished = true;
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        self.changed();
        self.flush();
    }

    /// After a change: starts the sender on the first one, wakes it if it
    /// sleeps. Called without the lock held.
    fn changed(&'static self) {
        self.started.call_once(|| self.start());
        // Dekker with the sender's `idle.store(true)` then `seen()`: both
        // sequentially consistent, so either it sees the change or this
        // sees it idle.
        if self.idle.load(Ordering::SeqCst) && self.idle.swap(false, Ordering::SeqCst) {
            let _locked = self.lock();
            self.wake.notify_one();
        }
    }

    fn start(&'static self) {
        let writer = self.lock().writer.take();
        let Some(writer) = writer else { return };
        let spawned = thread::Builder::new()
            .name("multiproc-progress".into())
            .stack_size(64 * 1024)
            .spawn(move || self.send_loop(writer));
        if spawned.is_err() {
            self.lock().stopped = true;
        }
    }

    fn seen(&self) -> Seen {
        (
            self.position.load(Ordering::SeqCst),
            self.length.load(Ordering::SeqCst),
            self.generation.load(Ordering::SeqCst),
        )
    }

    /// Sends the state whenever it changed, at most every
    /// [`UPDATE_INTERVAL`] unless a flush waits; stops when a write fails.
    fn send_loop(&self, mut writer: PipeWriter) {
        let mut sent: Option<Seen> = None;
        loop {
            let now = self.seen();
            if sent != Some(now) {
                let update = {
                    let locked = self.lock();
                    Update {
                        position: now.0,
                        length: (now.1 != NO_LENGTH).then_some(now.1),
                        message: locked.message.clone(),
                        finished: locked.finished,
                    }
                };
                let written = send(&mut writer, &update);
                sent = Some(now);
                let mut locked = self.pass_done();
                if !written {
                    locked.stopped = true;
                    self.passed.notify_all();
                    return;
                }
                let until = Instant::now() + UPDATE_INTERVAL;
                while locked.flushers == 0 {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    locked = self.wake.wait_timeout(locked, left).unwrap_or_else(PoisonError::into_inner).0;
                }
            } else {
                let locked = self.pass_done();
                self.idle.store(true, Ordering::SeqCst);
                if self.seen() == now && locked.flushers == 0 {
                    let _ = self.wake.wait_timeout(locked, IDLE_CHECK);
                }
                self.idle.store(false, Ordering::SeqCst);
            }
        }
    }

    /// Counts a completed pass and tells the waiting flushes; returns the
    /// lock.
    fn pass_done(&self) -> MutexGuard<'_, Locked> {
        let mut locked = self.lock();
        locked.passes += 1;
        self.passed.notify_all();
        locked
    }

    /// Waits, at most [`FLUSH_LIMIT`], until the sender has written what
    /// was set before this call.
    fn flush(&self) {
        if !self.started.is_completed() {
            // Nothing was ever set, so there is nothing to send.
            return;
        }
        let deadline = Instant::now() + FLUSH_LIMIT;
        let mut locked = self.lock();
        if locked.stopped {
            return;
        }
        // The next pass may have begun before this call; the one after it
        // began after, and so saw everything set before.
        let target = locked.passes + 2;
        locked.flushers += 1;
        self.wake.notify_one();
        while locked.passes < target && !locked.stopped {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            locked = self.passed.wait_timeout(locked, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        locked.flushers -= 1;
    }
}

/// Writes one update frame; false if the parent cannot be told.
fn send(writer: &mut PipeWriter, update: &Update) -> bool {
    let Ok(body) = wire::encode(update) else { return true };
    let mut frame = wire::header(FrameKind::Message, body.len() as u64).to_vec();
    frame.extend_from_slice(&body);
    writer.write_all(&frame).is_ok()
}
