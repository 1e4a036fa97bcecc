//! The parent's side: [`Bars`], its drawing thread, and a reader thread per
//! reporting child.
//!
//! A [`Bar`]'s state lives in atomics shared by whoever updates it (the
//! parent's own code, or the reader of a child's channel) and the drawing
//! thread. An update marks the bar dirty; the first mark since the drawing
//! thread last looked sends it the bar, and the drawing thread copies the
//! state into the bar's `indicatif::ProgressBar`. So only that thread
//! touches indicatif, and a tight loop of updates costs atomics and an
//! occasional send.

use std::io::{self, PipeReader, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::bar::{Bar, State};
use super::draw::Writer;
use super::{MAX_UPDATE, Update};
use crate::sys::{OsHandle, Shareable};
use crate::wire::{self, FrameKind};

/// `length` while a bar has none.
pub(super) const NO_LENGTH: u64 = u64::MAX;

/// How a bar is drawn: its label, the bar, `position/length`, the message.
const TEMPLATE: &str = "{prefix:>12} [{bar:40}] {pos}/{len} {msg}";

/// What the drawing thread is told.
pub(super) enum Event {
    /// A new bar, to add below the others.
    Add(Arc<State>),
    /// A bar changed.
    Dirty(Arc<State>),
    /// A child's channel closed: its bar will not change any more.
    Closed(Arc<State>),
    /// Answer once every earlier event is drawn.
    Sync(mpsc::Sender<()>),
    /// The bars are dropped.
    Stop,
}

/// What [`Bars`], its bars and the children's readers share.
struct Shared {
    events: mpsc::Sender<Event>,
    bars: Mutex<Vec<Bar>>,
    /// Children whose channel is still open.
    open: Mutex<usize>,
    closed: Condvar,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Progress bars drawn by this process: one per child started with
/// [`Builder::progress`](crate::Builder::progress), and any made with
/// [`add`](Bars::add). See the [module](super) for the whole picture.
///
/// Dropping it draws the last state of every bar and stops drawing,
/// without waiting for the children: call [`wait`](Bars::wait) first for
/// their final updates. A child whose bars are dropped goes on, its
/// updates unread.
///
/// ```
/// use multiproc::progress::Bars;
///
/// let bars = Bars::new(); // draws on stderr if it is a terminal
/// let bar = bars.add(3, "setup");
/// bar.inc(3);
/// bar.finish();
/// assert_eq!(bars.bars()[0].position(), 3);
/// ```
pub struct Bars {
    shared: Arc<Shared>,
    multi: MultiProgress,
    drawer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Bars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bars").field("bars", &*lock(&self.shared.bars)).finish_non_exhaustive()
    }
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

impl Bars {
    /// Bars drawn on stderr, where it is a terminal (elsewhere nothing is
    /// drawn, but the bars still count: see [`force_draw`](Bars::force_draw)).
    ///
    /// ```
    /// use multiproc::progress::Bars;
    ///
    /// let bars = Bars::new();
    /// assert!(bars.bars().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_target(ProgressDrawTarget::stderr())
    }

    /// Bars that are never drawn: their state can still be read.
    ///
    /// ```
    /// use multiproc::progress::Bars;
    ///
    /// let bars = Bars::hidden();
    /// bars.add(10, "quiet").inc(4);
    /// assert_eq!(bars.bars()[0].position(), 4);
    /// ```
    pub fn hidden() -> Self {
        Self::with_target(ProgressDrawTarget::hidden())
    }

    fn with_target(target: ProgressDrawTarget) -> Self {
        let multi = MultiProgress::with_draw_target(target);
        let (events, received) = mpsc::channel();
        let drawer = {
            let multi = multi.clone();
            thread::Builder::new()
                .name("multiproc-bars".into())
                .spawn(move || draw_loop(&multi, &received))
                .map_err(|e| eprintln!("multiproc: progress bars are not drawn: {e}"))
                .ok()
        };
        let shared =
            Arc::new(Shared { events, bars: Mutex::new(Vec::new()), open: Mutex::new(0), closed: Condvar::new() });
        Bars { shared, multi, drawer }
    }

    /// With `true`, draws on stderr even where it is not a terminal (a
    /// pipe, a file, a CI log); with `false`, as [`new`](Bars::new) does.
    ///
    /// ```
    /// use multiproc::progress::Bars;
    ///
    /// let bars = Bars::new().force_draw(std::env::var_os("FORCE_BARS").is_some());
    /// # drop(bars);
    /// ```
    pub fn force_draw(self, force: bool) -> Self {
        if force {
            self.multi.set_draw_target(ProgressDrawTarget::term_like_with_hz(Box::new(Writer::new(io::stderr())), 20));
        } else {
            self.multi.set_draw_target(ProgressDrawTarget::stderr());
        }
        self
    }

    /// Draws into `writer` instead of stderr, terminal or not, with ANSI
    /// cursor movements between redraws: for a log file, or a test that
    /// reads what was drawn.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// use multiproc::progress::Bars;
    ///
    /// #[derive(Clone, Default)]
    /// struct Shared(Arc<Mutex<Vec<u8>>>);
    /// impl std::io::Write for Shared {
    ///     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
    ///         self.0.lock().unwrap().extend_from_slice(b);
    ///         Ok(b.len())
    ///     }
    ///     fn flush(&mut self) -> std::io::Result<()> {
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let drawn = Shared::default();
    /// let bars = Bars::new().draw_into(drawn.clone());
    /// let bar = bars.add(5, "load");
    /// bar.inc(5);
    /// bar.finish();
    /// drop(bars);
    /// assert!(String::from_utf8_lossy(&drawn.0.lock().unwrap()).contains("5/5"));
    /// ```
    pub fn draw_into(self, writer: impl Write + Send + 'static) -> Self {
        self.multi.set_draw_target(ProgressDrawTarget::term_like_with_hz(Box::new(Writer::new(writer)), 20));
        self
    }

    /// A bar of `length` steps labelled `label`, updated by this process
    /// (a pool's bar for a whole `map`, advanced as results arrive).
    ///
    /// ```
    /// use multiproc::progress::Bars;
    ///
    /// let bars = Bars::hidden();
    /// let bar = bars.add(4, "results");
    /// for _ in 0..4 {
    ///     bar.inc(1);
    /// }
    /// assert_eq!((bar.position(), bar.length()), (4, Some(4)));
    /// ```
    pub fn add(&self, length: u64, label: impl Into<String>) -> Bar {
        new_bar(&self.shared, Some(length), label.into())
    }

    /// Every bar, in the order they were made (a child's when it was
    /// started).
    ///
    /// ```
    /// use multiproc::progress::Bars;
    ///
    /// let bars = Bars::hidden();
    /// bars.add(1, "first");
    /// bars.add(2, "second");
    /// let labels: Vec<String> = bars.bars().iter().map(|b| b.label()).collect();
    /// assert_eq!(labels, ["first", "second"]);
    /// ```
    pub fn bars(&self) -> Vec<Bar> {
        lock(&self.shared.bars).clone()
    }

    /// Waits until every child reporting into these bars has closed its
    /// channel (it ended, whichever way), and everything they and this
    /// process reported is drawn.
    ///
    /// ```
    /// use multiproc::progress::{self, Bars};
    /// use multiproc::{Builder, process_task};
    ///
    /// #[process_task]
    /// fn half() {
    ///     progress::set_length(10);
    ///     progress::inc(5);
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let bars = Bars::hidden();
    /// let child = Builder::new(half, ()).progress(&bars).start()?;
    /// bars.wait(); // returns once the child has ended
    /// assert_eq!(bars.bars()[0].position(), 5);
    /// child.join()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait(&self) {
        let mut open = lock(&self.shared.open);
        while *open > 0 {
            open = self.shared.closed.wait(open).unwrap_or_else(PoisonError::into_inner);
        }
        drop(open);
        self.drawn(None);
    }

    /// [`wait`](Bars::wait), for at most `timeout`: false if a child
    /// still reports then.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use multiproc::progress::Bars;
    ///
    /// let bars = Bars::hidden();
    /// assert!(bars.wait_timeout(Duration::from_secs(5))); // no child to wait for
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut open = lock(&self.shared.open);
        while *open > 0 {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return false;
            }
            open = self.shared.closed.wait_timeout(open, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        drop(open);
        self.drawn(deadline)
    }

    /// Waits until the drawing thread has handled every earlier event.
    fn drawn(&self, deadline: Option<Instant>) -> bool {
        let (tx, rx) = mpsc::channel();
        if self.shared.events.send(Event::Sync(tx)).is_err() || self.drawer.is_none() {
            return true;
        }
        match deadline {
            None => rx.recv().is_ok(),
            Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())).is_ok(),
        }
    }

    /// What a [`Builder`](crate::Builder) keeps to report into these bars.
    pub(crate) fn attach(&self) -> Attach {
        Attach { shared: Arc::clone(&self.shared) }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        let _ = self.shared.events.send(Event::Stop);
        if let Some(drawer) = self.drawer.take() {
            let _ = drawer.join();
        }
    }
}

/// A builder's request to report into some [`Bars`]: enough to add a bar
/// and count a reader, not to keep the drawing alive.
#[derive(Clone)]
pub(crate) struct Attach {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Attach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Attach")
    }
}

impl Attach {
    /// A bar this process updates itself (a pool's map).
    pub(crate) fn add(&self, length: Option<u64>, label: String) -> Bar {
        new_bar(&self.shared, length, label)
    }

    /// A new channel: the write end, for the child, and the read end
    /// waiting for the child's name.
    pub(crate) fn channel(&self) -> io::Result<(OsHandle, Pending)> {
        let (reader, writer) = io::pipe()?;
        let theirs = writer.duplicate()?;
        Ok((theirs, Pending { shared: Arc::clone(&self.shared), reader }))
    }
}

/// The read end of a child's channel, until the child has started.
pub(crate) struct Pending {
    shared: Arc<Shared>,
    reader: PipeReader,
}

impl Pending {
    /// The child `name` started: its bar, and a thread to read its updates.
    pub(crate) fn started(self, name: &str) {
        let Pending { shared, reader } = self;
        let bar = new_bar(&shared, None, name.to_owned());
        *lock(&shared.open) += 1;
        let spawned = thread::Builder::new().name("multiproc-progress-reader".into()).stack_size(64 * 1024).spawn({
            let (bar, shared) = (bar.clone(), Arc::clone(&shared));
            move || read_loop(reader, &bar, &shared)
        });
        if spawned.is_err() {
            closed(&bar, &shared);
        }
    }
}

/// A new bar of `shared`, drawn below the others.
fn new_bar(shared: &Shared, length: Option<u64>, label: String) -> Bar {
    let state = Arc::new(State {
        label,
        position: AtomicU64::new(0),
        length: AtomicU64::new(length.map_or(NO_LENGTH, |l| l.min(NO_LENGTH - 1))),
        message: Mutex::new(String::new()),
        finished: AtomicBool::new(false),
        dirty: AtomicBool::new(false),
        updates: AtomicU64::new(0),
    });
    let bar = Bar { state, events: shared.events.clone() };
    let _ = shared.events.send(Event::Add(Arc::clone(&bar.state)));
    lock(&shared.bars).push(bar.clone());
    bar
}

/// Applies a child's updates to its bar until its channel closes.
fn read_loop(mut reader: PipeReader, bar: &Bar, shared: &Shared) {
    while let Some(update) = read_update(&mut reader) {
        bar.state.updates.fetch_add(1, Ordering::Relaxed);
        bar.state.position.store(update.position, Ordering::SeqCst);
        bar.state.length.store(update.length.map_or(NO_LENGTH, |l| l.min(NO_LENGTH - 1)), Ordering::SeqCst);
        if let Some(message) = update.message {
            *lock(&bar.state.message) = message;
        }
        if update.finished {
            bar.state.finished.store(true, Ordering::SeqCst);
        }
        bar.mark();
    }
    closed(bar, shared);
}

fn closed(bar: &Bar, shared: &Shared) {
    let _ = shared.events.send(Event::Closed(Arc::clone(&bar.state)));
    let mut open = lock(&shared.open);
    *open -= 1;
    shared.closed.notify_all();
}

/// The next update, or `None` once the channel closed (a cut or malformed
/// frame counts as closed: the child is gone or not one of ours).
fn read_update(reader: &mut PipeReader) -> Option<Update> {
    let (kind, len) = wire::read_header(reader).ok()??;
    if kind != FrameKind::Message || len > MAX_UPDATE {
        return None;
    }
    let mut body = Vec::new();
    reader.take(len).read_to_end(&mut body).ok()?;
    if body.len() as u64 != len {
        return None;
    }
    wire::decode(&body).ok()
}

/// The drawing thread: the only one that touches indicatif's bars.
fn draw_loop(multi: &MultiProgress, events: &mpsc::Receiver<Event>) {
    let style = ProgressStyle::with_template(TEMPLATE).unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut drawn: Vec<(Arc<State>, ProgressBar)> = Vec::new();
    let find =
        |drawn: &[(Arc<State>, ProgressBar)], state: &Arc<State>| drawn.iter().position(|(s, _)| Arc::ptr_eq(s, state));
    while let Ok(event) = events.recv() {
        match event {
            Event::Add(state) => {
                let pb = multi.add(ProgressBar::no_length().with_style(style.clone()).with_prefix(state.label.clone()));
                apply(&state, &pb);
                drawn.push((state, pb));
            }
            Event::Dirty(state) => {
                if let Some(i) = find(&drawn, &state) {
                    apply(&state, &drawn[i].1);
                }
            }
            Event::Closed(state) => {
                if let Some(i) = find(&drawn, &state) {
                    apply(&state, &drawn[i].1);
                    if !drawn[i].1.is_finished() {
                        drawn[i].1.abandon();
                    }
                }
            }
            Event::Sync(done) => {
                let _ = done.send(());
            }
            Event::Stop => break,
        }
    }
    // The last state of every bar stays on the screen.
    for (state, pb) in &drawn {
        apply(state, pb);
        if !pb.is_finished() {
            pb.abandon();
        }
    }
}

/// Copies a bar's state into its indicatif bar: only what changed, since
/// every change may redraw (and a finished bar's always does).
fn apply(state: &State, pb: &ProgressBar) {
    state.dirty.store(false, Ordering::SeqCst);
    if pb.is_finished() {
        return;
    }
    let length = match state.length.load(Ordering::SeqCst) {
        NO_LENGTH => None,
        length => Some(length),
    };
    if pb.length() != length {
        match length {
            None => pb.unset_length(),
            Some(length) => pb.set_length(length),
        }
    }
    // The message first: the position's change is the one that redraws.
    let message = lock(&state.message).clone();
    if pb.message() != message {
        pb.set_message(message);
    }
    let position = state.position.load(Ordering::SeqCst);
    if pb.position() != position {
        pb.set_position(position);
    }
    if state.finished.load(Ordering::SeqCst) {
        pb.finish();
    }
}
