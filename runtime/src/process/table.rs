//! The parent's table of its children: one shared state per child, the
//! reaping that keeps zombies away, and the exit-time cleanup.

use std::io::{self, Read};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

use crate::authkey::AuthKey;

use crate::error::{BootstrapFailure, DecodeError, Error, PanicInfo};
use crate::exit::ExitStatus;
use crate::registry::{DecodeOutput, Incoming};
use crate::sys::Reaped;
use crate::sys::imp::{Channel, RawChild};
use crate::wire::{self, FrameError, FrameKind, Outcome, Source, Stream};

/// How long a wait may block.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// Not at all.
    Now,
    /// Until this instant.
    Until(Instant),
    /// As long as it takes.
    Forever,
}

impl Wait {
    pub(crate) fn timeout(d: Duration) -> Wait {
        Instant::now().checked_add(d).map_or(Wait::Forever, Wait::Until)
    }

    fn remaining(self) -> Option<Duration> {
        match self {
            Wait::Now => Some(Duration::ZERO),
            Wait::Until(t) => Some(t.saturating_duration_since(Instant::now())),
            Wait::Forever => None,
        }
    }
}

/// Everything the parent knows about one child.
#[derive(Debug)]
pub(crate) struct ChildState {
    pub(crate) pid: u32,
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pub(crate) authkey: AuthKey,
    /// The process itself: its pidfd (or handle) is used without the lock,
    /// so that waiting never blocks anyone else.
    raw: RawChild,
    inner: Mutex<Inner>,
    /// The threads copying the child's output, when it goes through this
    /// process's `print!`; taken by the first wait that sees the end.
    output: Mutex<Option<crate::output::Forwarders>>,
}

/// How a child is known to have ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// With this status.
    Exited(ExitStatus),
    /// Its status was collected elsewhere (the kernel, with SIGCHLD ignored).
    Lost,
}

#[derive(Debug)]
struct Inner {
    /// The parent's end of the channel, until the child closes its end or
    /// is seen to end.
    chan: Option<Arc<Channel>>,
    /// The child's report, as it arrives.
    report: Vec<u8>,
    /// Set when the report's header is bad; later bytes are discarded.
    report_error: Option<String>,
    /// Set once `join` reads the report itself; a wait then discards what
    /// the channel brings.
    report_taken: bool,
    /// Set once the child is seen to end.
    ended: Option<Ended>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Ended {
    /// The exit status, or the error that says it is unknown.
    pub(crate) fn status(self, name: &str) -> Result<ExitStatus, Error> {
        match self {
            Ended::Exited(status) => Ok(status),
            Ended::Lost => Err(Error::StatusUnavailable { name: name.to_owned() }),
        }
    }
}

impl ChildState {
    pub(crate) fn new(
        raw: RawChild,
        chan: Arc<Channel>,
        name: String,
        daemon: bool,
        authkey: AuthKey,
        output: Option<crate::output::Forwarders>,
    ) -> Self {
        chan.watch_exit(&raw);
        ChildState {
            pid: raw.pid(),
            name,
            daemon,
            authkey,
            raw,
            inner: Mutex::new(Inner {
                chan: Some(chan),
                report: Vec::new(),
                report_error: None,
                report_taken: false,
                ended: None,
            }),
            output: Mutex::new(output),
        }
    }

    /// Once the child has ended: waits (a bounded time) until what it wrote
    /// to stdout and stderr has been copied, when its output goes through
    /// this process. A caller who waited for the child sees its output
    /// before the wait returns.
    pub(crate) fn finish_output(&self) {
        let output = lock(&self.output).take();
        if let Some(output) = output {
            output.drain();
        }
    }

    /// The OS object that is signalled when the child ends (its pidfd or
    /// process handle), if the platform has one.
    pub(crate) fn sentinel(&self) -> Option<crate::sys::BorrowedSentinel<'_>> {
        self.raw.sentinel()
    }

    /// How the child ended, if it has (reaping it), without blocking.
    pub(crate) fn ended(&self) -> Option<Ended> {
        self.wait(Wait::Now).ok().flatten()
    }

    /// Waits for the child to end, collecting its report on the way.
    /// `Ok(None)` means the wait timed out with the child still running.
    ///
    /// The end is learned from the process (its pidfd or handle), never
    /// from the channel: a child that closes its channel, execs another
    /// program or leaves a helper holding the channel is still seen exactly
    /// as long as it runs. The lock is only taken for non-blocking steps,
    /// so other threads can signal, ask or start meanwhile.
    pub(crate) fn wait(&self, how: Wait) -> Result<Option<Ended>, Error> {
        let io = || Error::io("waiting for a child");
        loop {
            let chan = {
                let mut g = lock(&self.inner);
                if let Some(end) = g.ended {
                    return Ok(Some(end));
                }
                if let Some(chan) = g.chan.clone() {
                    g.drain(&chan)?;
                }
                if let Some(end) = self.reap(&mut g).map_err(io())? {
                    return Ok(Some(end));
                }
                g.chan.clone()
            };
            let left = how.remaining();
            if left == Some(Duration::ZERO) {
                return Ok(None);
            }
            // Block without the lock: on the process and on its report.
            self.raw.wait_event(chan.as_deref(), left).map_err(io())?;
        }
    }

    /// Reaps the child if it has ended; then takes what is left of its
    /// report (all of it is queued by now) and closes the channel.
    fn reap(&self, g: &mut Inner) -> io::Result<Option<Ended>> {
        let end = match self.raw.try_reap()? {
            Reaped::Running => return Ok(None),
            Reaped::Exited(status) => Ended::Exited(status),
            Reaped::Lost => Ended::Lost,
        };
        if let Some(chan) = g.chan.take() {
            // What cannot be read now never will be: a report is written
            // whole before the child exits.
            let _ = g.drain(&chan);
        }
        g.ended = Some(end);
        Ok(Some(end))
    }

    /// Sends SIGTERM (or its platform equivalent) unless the child has
    /// already been reaped; signalling a finished child is not an error.
    pub(crate) fn terminate(&self, kill: bool) -> Result<(), Error> {
        // The lock keeps the pid from being reaped meanwhile, which matters
        // only where there is no pidfd to signal through.
        let g = lock(&self.inner);
        if g.ended.is_some() {
            return Ok(());
        }
        let r = if kill { self.raw.kill() } else { self.raw.terminate() };
        r.map_err(Error::io("signalling a child"))
    }

    /// Reads the child's report as it arrives, decoding its value straight
    /// out of the channel (whatever a wait collected before comes first),
    /// then waits for the child to end. A report cut short (the child was
    /// killed while sending it) counts as none: the exit status tells.
    pub(crate) fn join<R: 'static>(&self, decode: DecodeOutput<R>) -> Result<R, Error> {
        let name = || self.name.clone();
        let (chan, prefix, report_error) = {
            let mut g = lock(&self.inner);
            g.report_taken = true;
            // While the report is read here, nobody else reads the channel.
            (g.chan.take(), std::mem::take(&mut g.report), g.report_error.take())
        };
        let report = match report_error {
            Some(message) => Report::Failed(Error::BadResult { name: name(), error: DecodeError::Invalid(message) }),
            None => {
                let reader =
                    ReportReader { state: self, prefix: io::Cursor::new(prefix), chan: chan.clone(), ended: false };
                self.read_report(reader, decode)
            }
        };
        // Back for the wait, which discards whatever else the child sends.
        if let Some(chan) = chan {
            let mut g = lock(&self.inner);
            if g.ended.is_none() {
                g.chan = Some(chan);
            }
        }
        let end = self.wait(Wait::Forever)?.expect("an unbounded wait ends with a status");
        match report {
            Report::Value(value) => Ok(value),
            Report::Failed(e) => Err(e),
            Report::Nothing => Err(match end {
                Ended::Exited(status) => Error::NoResult { name: name(), status },
                Ended::Lost => Error::StatusUnavailable { name: name() },
            }),
        }
    }

    fn read_report<R: 'static>(&self, mut reader: ReportReader<'_>, decode: DecodeOutput<R>) -> Report<R> {
        let bad = |error| Report::Failed(Error::BadResult { name: self.name.clone(), error });
        let len = match wire::read_header(&mut reader) {
            Ok(Some((FrameKind::Outcome, len))) => len,
            // No report, or only part of its header: the exit status tells
            // all there is. A code in the bootstrap range is the task's own
            // here (it called `exit`): a child that fails its bootstrap
            // says so in a report.
            Ok(None) | Err(FrameError::Truncated { .. }) => return Report::Nothing,
            Ok(Some((kind, _))) => return bad(DecodeError::Invalid(format!("unexpected {kind:?} frame"))),
            Err(e) => return bad(DecodeError::Invalid(e.to_string())),
        };
        let stream: Stream<Box<dyn Source + Send + '_>> = Stream::new(Box::new(reader), len);
        let head = match wire::decode_next::<Outcome, _>(&stream) {
            Ok(head) => head,
            Err(DecodeError::Truncated(_)) => return Report::Nothing,
            Err(e) => return bad(e),
        };
        let name = self.name.clone();
        match head {
            Outcome::Returned => match decode.decode(&Incoming::new(stream)) {
                Ok(value) => Report::Value(value),
                Err(DecodeError::Truncated(_)) => Report::Nothing,
                Err(e) => bad(e),
            },
            Outcome::Panicked { message, location, backtrace } => {
                Report::Failed(Error::Panicked { name, panic: PanicInfo { message, location, backtrace } })
            }
            Outcome::Refused { code, message } => Report::Failed(match BootstrapFailure::from_exit_code(code) {
                Some(kind) => Error::Bootstrap { name, kind, message },
                None => Error::Unencodable { name, message },
            }),
        }
    }
}

/// What a child's report held.
enum Report<R> {
    Value(R),
    Failed(Error),
    /// No report, or one cut short.
    Nothing,
}

/// Reads a child's report: first what a wait collected, then the channel,
/// blocking until bytes arrive or the child ends (never on the channel
/// alone: a helper may hold the child's end open).
struct ReportReader<'s> {
    state: &'s ChildState,
    prefix: io::Cursor<Vec<u8>>,
    chan: Option<Arc<Channel>>,
    ended: bool,
}

/// Where a [`ReportReader`] takes its next bytes from.
enum From<'a> {
    /// What a wait collected before `join` began.
    Prefix(&'a mut io::Cursor<Vec<u8>>),
    /// The channel, without blocking.
    Channel(&'a Channel),
}

impl ReportReader<'_> {
    /// Reads with `read`: from the prefix while it lasts, then from the
    /// channel, waiting for bytes or the child's end.
    fn read_with(&mut self, mut read: impl FnMut(From<'_>) -> io::Result<Option<usize>>) -> io::Result<usize> {
        if (self.prefix.position() as usize) < self.prefix.get_ref().len() {
            return read(From::Prefix(&mut self.prefix)).map(Option::unwrap_or_default);
        }
        let Some(chan) = &self.chan else { return Ok(0) };
        loop {
            if let Some(n) = read(From::Channel(chan))? {
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            // Once it has ended, all it wrote is queued: one more look.
            let ended = {
                let mut g = lock(&self.state.inner);
                g.ended.is_some() || self.state.reap(&mut g)?.is_some()
            };
            if ended {
                self.ended = true;
                continue;
            }
            self.state.raw.wait_event(Some(chan), None)?;
        }
    }
}

impl Read for ReportReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(|from| match from {
            From::Prefix(prefix) => prefix.read(buf).map(Some),
            From::Channel(chan) => chan.try_read(buf),
        })
    }
}

impl Source for ReportReader<'_> {
    fn read_spare(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        self.read_with(|from| match from {
            From::Prefix(prefix) => {
                let room = max.min(out.capacity() - out.len());
                prefix.take(room as u64).read_to_end(out).map(Some)
            }
            From::Channel(chan) => chan.try_read_spare(out, max),
        })
    }
}

impl Inner {
    /// Reads whatever the child has sent, without blocking.
    fn drain(&mut self, chan: &Arc<Channel>) -> Result<(), Error> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match chan.try_read(&mut buf).map_err(Error::io("reading a child's report"))? {
                None => return Ok(()),
                Some(0) => {
                    self.chan = None;
                    return Ok(());
                }
                Some(n) => self.accept(&buf[..n]),
            }
        }
    }

    fn accept(&mut self, mut bytes: &[u8]) {
        while !self.report_taken && !bytes.is_empty() && self.report_error.is_none() {
            // Up to the end of the header, then up to the end of the one
            // frame a child sends; nothing after it is kept.
            let have = self.report.len() as u64;
            let want = match self.report.first_chunk::<{ wire::HEADER_LEN }>().map(wire::parse_header) {
                None => wire::HEADER_LEN as u64 - have,
                Some(Ok((_, len))) => (wire::HEADER_LEN as u64 + len).saturating_sub(have),
                Some(Err(_)) => 0,
            };
            if want == 0 {
                return;
            }
            let (now, rest) = bytes.split_at(usize::try_from(want).unwrap_or(usize::MAX).min(bytes.len()));
            self.report.extend_from_slice(now);
            bytes = rest;
            // Validate the header as soon as it is complete, so an absurd
            // length stops the accumulation instead of feeding it.
            if let Some(h) = self.report.first_chunk::<{ wire::HEADER_LEN }>()
                && let Err(e) = wire::parse_header(h)
            {
                self.report_error = Some(e.to_string());
                self.report = Vec::new();
            }
        }
    }
}

/// The children of this process that have not been seen to end.
static CHILDREN: Mutex<Vec<Arc<ChildState>>> = Mutex::new(Vec::new());

/// Adds a freshly started child; arranges the exit-time cleanup.
pub(crate) fn register(child: Arc<ChildState>) {
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| crate::sys::imp::on_exit(cleanup_at_exit));
    lock(&CHILDREN).push(child);
}

/// Reaps every finished child and returns the ones still running.
pub(crate) fn reap() -> Vec<Arc<ChildState>> {
    let mut children = lock(&CHILDREN);
    children.retain(|c| c.ended().is_none());
    children.clone()
}

/// What a process does when it exits normally (Python's `_exit_function`):
/// terminate running daemonic children, then wait for all the others.
pub(crate) fn cleanup() {
    let children = std::mem::take(&mut *lock(&CHILDREN));
    for c in children.iter().filter(|c| c.daemon) {
        let _ = c.terminate(false);
    }
    for c in &children {
        let _ = c.wait(Wait::Forever);
    }
}

extern "C" fn cleanup_at_exit() {
    // A panic must not unwind into the C runtime.
    let _ = std::panic::catch_unwind(cleanup);
}
