//! One bar's state, shared by whoever updates it and the drawing thread,
//! and [`Bar`], the handle to it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use super::bars::{Event, NO_LENGTH, lock};

/// One bar's state.
pub(super) struct State {
    pub(super) label: String,
    pub(super) position: AtomicU64,
    pub(super) length: AtomicU64,
    pub(super) message: Mutex<String>,
    pub(super) finished: AtomicBool,
    /// Set from an update until the drawing thread has looked.
    pub(super) dirty: AtomicBool,
    /// Updates received from a child.
    pub(super) updates: AtomicU64,
}

/// One bar of some [`Bars`](super::Bars): a child's, or one this process updates
/// itself ([`Bars::add`](super::Bars::add)). Clones are the same bar.
///
/// ```
/// use multiproc::progress::Bars;
///
/// let bars = Bars::hidden();
/// let bar = bars.add(100, "copy");
/// bar.inc(40);
/// bar.set_message("halfway");
/// assert_eq!(bar.position(), 40);
/// assert_eq!(bar.message(), "halfway");
/// ```
#[derive(Clone)]
pub struct Bar {
    pub(super) state: Arc<State>,
    pub(super) events: mpsc::Sender<Event>,
}

impl std::fmt::Debug for Bar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bar")
            .field("label", &self.state.label)
            .field("position", &self.position())
            .field("length", &self.length())
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl Bar {
    /// Tells the drawing thread, unless it was told and has not looked yet.
    pub(super) fn mark(&self) {
        if !self.state.dirty.swap(true, Ordering::SeqCst) {
            let _ = self.events.send(Event::Dirty(Arc::clone(&self.state)));
        }
    }

    /// Advances the bar by `delta` steps.
    ///
    /// ```
    /// use multiproc::progress::Bars;
    ///
    /// let bar = Bars::hidden().add(10, "steps");
    /// bar.inc(2);
    /// bar.inc(3);
    /// assert_eq!(bar.position(), 5);
    /// ```
    pub fn inc(&self, delta: u64) {
        self.state.position.fetch_add(delta, Ordering::SeqCst);
        self.mark();
    }

    /// Moves the bar to `position`.
    ///
    /// ```
    /// use multiproc::progress::Bars;
    ///
    /// let bar = Bars::hidden().add(10, "seek");
    /// bar.set_position(8);
    /// assert_eq!(bar.position(), 8);
    /// ```
    pub fn set_position(&self, position: u64) {
        self.state.position.store(position, Ordering::SeqCst);
        self.mark();
    }

    /// Sets the number of steps.
    ///
    /// ```
    /// use multiproc::progress::Bars;
    ///
    /// let bar = Bars::hidden().add(10, "grow");
    /// bar.set_length(20);
    /// assert_eq!(bar.length(), Some(20));
    /// ```
    pub fn set_length(&self, length: u64) {
        self.state.length.store(length.min(NO_LENGTH - 1), Ordering::SeqCst);
        self.mark();
    }

    /// Shows `message` beside the bar.
    ///
    /// ```
    /// use multiproc::progress::Bars;
    ///
    /// let bar = Bars::hidden().add(1, "job");
    /// bar.set_message("waiting");
    /// assert_eq!(bar.message(), "waiting");
    /// ```
    pub fn set_message(&self, message: impl Into<String>) {
        *lock(&self.state.message) = message.into();
        self.mark();
    }

    /// Marks the bar finished: it is drawn one last time and stays.
    ///
    /// ```
    /// use multiproc::progress::Bars;
    ///
    /// let bar = Bars::hidden().add(1, "job");
    /// bar.inc(1);
    /// bar.finish();
    /// assert!(bar.is_finished());
    /// ```
    pub fn finish(&self) {
        self.state.finished.store(true, Ordering::SeqCst);
        self.mark();
    }

    /// The bar's label: a child's name, or what [`Bars::add`](super::Bars::add) was given.
    ///
    /// ```
    /// use multiproc::progress::Bars;
    ///
    /// assert_eq!(Bars::hidden().add(1, "index").label(), "index");
    /// ```
    pub fn label(&self) -> String {
        self.state.label.clone()
    }

    /// Where the bar is, as last reported.
    ///
    /// ```
    /// use multiproc::progress::Bars;
    ///
    /// assert_eq!(Bars::hidden().add(9, "new").position(), 0);
    /// ```
    pub fn position(&self) -> u64 {
        self.state.position.load(Ordering::SeqCst)
    }

    /// The number of steps, `None` while a child has not set one.
    ///
    /// ```
    /// use multiproc::progress::Bars;
    ///
    /// assert_eq!(Bars::hidden().add(9, "sized").length(), Some(9));
    /// ```
    pub fn length(&self) -> Option<u64> {
        match self.state.length.load(Ordering::SeqCst) {
            NO_LENGTH => None,
            length => Some(length),
        }
    }

    /// The message last set.
    ///
    /// ```
    /// use multiproc::progress::Bars;
    ///
    /// assert_eq!(Bars::hidden().add(1, "quiet").message(), "");
    /// ```
    pub fn message(&self) -> String {
        lock(&self.state.message).clone()
    }

    /// Whether the bar was finished (by [`finish`](Bar::finish), or by
    /// its child's [`progress::finish`](super::finish)).
    ///
    /// ```
    /// use multiproc::progress::Bars;
    ///
    /// let bar = Bars::hidden().add(1, "open");
    /// assert!(!bar.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.state.finished.load(Ordering::SeqCst)
    }

    /// How many updates this bar received from its child.
    pub(crate) fn updates_received(&self) -> u64 {
        self.state.updates.load(Ordering::Relaxed)
    }
}
