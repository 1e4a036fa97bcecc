//! The parent's table of its children: one shared state per child, the
//! reaping that keeps zombies away, and the exit-time cleanup.

use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

use crate::authkey::AuthKey;
use crate::error::{BootstrapFailure, Error, PanicInfo};
use crate::exit::ExitStatus;
use crate::sys::imp::{Channel, RawChild};
use crate::wire::{self, FrameKind, Outcome};

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
    /// Readable once the child ends, for `multiproc::wait`.
    pub(crate) sentinel: Option<crate::sys::Sentinel>,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    raw: RawChild,
    /// The parent's end of the channel, until the child closes its end.
    chan: Option<Arc<Channel>>,
    /// The child's report, as it arrives.
    report: Vec<u8>,
    /// Set when the report's header is bad; later bytes are discarded.
    report_error: Option<String>,
    /// Set once the child is reaped.
    status: Option<ExitStatus>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ChildState {
    pub(crate) fn new(raw: RawChild, chan: Arc<Channel>, name: String, daemon: bool, authkey: AuthKey) -> Self {
        chan.watch_exit(&raw);
        ChildState {
            sentinel: crate::sys::sentinel(&raw, &chan),
            pid: raw.pid(),
            name,
            daemon,
            authkey,
            inner: Mutex::new(Inner { raw, chan: Some(chan), report: Vec::new(), report_error: None, status: None }),
        }
    }

    /// The exit status if the child has ended (reaping it), without blocking.
    pub(crate) fn status(&self) -> Option<ExitStatus> {
        self.wait(Wait::Now).ok().flatten()
    }

    /// Waits for the child to end, collecting its report on the way.
    /// `Ok(None)` means the wait timed out with the child still running.
    ///
    /// The child's end of the channel closes when it exits, so EOF on the
    /// channel is the exit signal; the reap that follows does not block for
    /// longer than the child takes to finish dying. Where the OS can wait on
    /// the process itself (Windows), the channel also watches it
    /// (`watch_exit`) and reports EOF once the child has exited and its
    /// report is read, so a leaked copy of the child's end cannot hang this.
    pub(crate) fn wait(&self, how: Wait) -> Result<Option<ExitStatus>, Error> {
        loop {
            let chan = {
                let mut g = lock(&self.inner);
                if let Some(s) = g.status {
                    return Ok(Some(s));
                }
                match g.chan.clone() {
                    Some(c) => c,
                    None => {
                        let status = match how {
                            Wait::Now => g.raw.try_wait(),
                            _ => g.raw.wait().map(Some),
                        }
                        .map_err(Error::io("waiting for a child"))?;
                        g.status = status;
                        return Ok(status);
                    }
                }
            };
            // Block without the lock, so other threads can still ask.
            let ready = chan.wait_readable(how.remaining()).map_err(Error::io("waiting for a child"))?;
            if !ready {
                return Ok(None);
            }
            lock(&self.inner).drain(&chan)?;
        }
    }

    /// Sends SIGTERM (or its platform equivalent) unless the child has
    /// already been reaped; signalling a finished child is not an error.
    pub(crate) fn terminate(&self, kill: bool) -> Result<(), Error> {
        let g = lock(&self.inner);
        if g.status.is_some() {
            return Ok(());
        }
        let r = if kill { g.raw.kill() } else { g.raw.terminate() };
        r.map_err(Error::io("signalling a child"))
    }

    /// The child's result, once it has been reaped.
    pub(crate) fn outcome(&self) -> Result<Vec<u8>, Error> {
        let g = lock(&self.inner);
        let status = g.status.expect("outcome() after the child was reaped");
        let name = || self.name.clone();
        if let Some(message) = &g.report_error {
            return Err(Error::BadResult { name: name(), message: message.clone() });
        }
        let body = match wire::split_frame(&g.report) {
            Ok(Some((FrameKind::Outcome, body))) => body,
            Ok(Some((kind, _))) => {
                return Err(Error::BadResult { name: name(), message: format!("unexpected {kind:?} frame") });
            }
            Err(e) => return Err(Error::BadResult { name: name(), message: e.to_string() }),
            Ok(None) => {
                return Err(match status {
                    ExitStatus::Code(c) if BootstrapFailure::from_exit_code(c).is_some() => Error::Bootstrap {
                        name: name(),
                        kind: BootstrapFailure::from_exit_code(c).expect("checked"),
                        message: "the child could not report why (see its stderr)".into(),
                    },
                    _ => Error::NoResult { name: name(), status },
                });
            }
        };
        match wire::decode::<Outcome>(body) {
            Ok(Outcome::Returned(bytes)) => Ok(bytes),
            Ok(Outcome::Panicked { message, location, backtrace }) => {
                Err(Error::Panicked { name: name(), panic: PanicInfo { message, location, backtrace } })
            }
            Ok(Outcome::Refused { code, message }) => Err(match BootstrapFailure::from_exit_code(code) {
                Some(kind) => Error::Bootstrap { name: name(), kind, message },
                None => Error::BadResult { name: name(), message },
            }),
            Err(e) => Err(Error::BadResult { name: name(), message: e.to_string() }),
        }
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

    fn accept(&mut self, bytes: &[u8]) {
        if self.report_error.is_some() {
            return;
        }
        self.report.extend_from_slice(bytes);
        // Validate the header as soon as it is complete, so an absurd length
        // stops the accumulation instead of feeding it.
        if let Some(h) = self.report.first_chunk::<{ wire::HEADER_LEN }>()
            && let Err(e) = wire::parse_header(h)
        {
            self.report_error = Some(e.to_string());
            self.report = Vec::new();
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
    children.retain(|c| c.status().is_none());
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
