//! Progress reported by children, drawn by the parent.
//!
//! Python programs put a `tqdm` bar in each child process, and the bars of
//! several children overwrite each other on the one terminal. Here a child
//! only *reports* (the functions of this module: [`set_length`], [`inc`],
//! [`set_position`], [`set_message`], [`finish`]) and the parent draws
//! every bar, with [`indicatif`](https://docs.rs/indicatif), from one
//! thread of its [`Bars`].
//!
//! ```
//! use multiproc::progress::{self, Bars};
//! use multiproc::{Builder, process_task};
//!
//! #[process_task]
//! fn work(items: u64) {
//!     progress::set_length(items);
//!     for _ in 0..items {
//!         // ... one item's work ...
//!         progress::inc(1);
//!     }
//!     progress::finish();
//! }
//!
//! # fn main() -> Result<(), multiproc::Error> {
//! let bars = Bars::new(); // draws on stderr when it is a terminal
//! let a = Builder::new(work, (100,)).name("a").progress(&bars).start()?;
//! let b = Builder::new(work, (50,)).name("b").progress(&bars).start()?;
//! a.join()?;
//! b.join()?;
//! bars.wait(); // every update of the ended children is drawn
//! let ends: Vec<_> = bars.bars().iter().map(|bar| (bar.label(), bar.position())).collect();
//! assert_eq!(ends, [("a".to_string(), 100), ("b".to_string(), 50)]);
//! # Ok(())
//! # }
//! ```
//!
//! # In the child
//!
//! The functions work in any [`#[process_task]`](crate::process_task)
//! function and in [`Process::run`](crate::Process::run), and anywhere
//! else: where the parent did not ask for progress (no
//! [`Builder::progress`](crate::Builder::progress)), and in the parent
//! itself, each is a check of one flag. Where it did, an update only
//! changes a few atomics; a thread of the child's own sends the bar's
//! state at most once every 50 ms, so a loop that calls [`inc`] a million
//! times costs a few milliseconds and a handful of messages. [`finish`],
//! and the child's exit (its task returned, panicked or called
//! `std::process::exit`; not a kill) send the last state and wait
//! for it to be written, at most [`FLUSH_LIMIT`]. A call never fails the
//! task: if the parent is gone (or stopped reading), updates are dropped.
//!
//! # In the parent
//!
//! [`Bars`] owns an [`indicatif::MultiProgress`](https://docs.rs/indicatif)
//! and the one thread that updates it; each child started with
//! [`Builder::progress`](crate::Builder::progress) gets a bar labelled by
//! its name and a pipe of its own to report into, read by a thread per
//! child that hands the updates to the drawing thread. A bar the parent
//! updates itself ([`Bars::add`]) goes through the same thread, so lines
//! are never interleaved however many processes report at once. Nothing is
//! drawn when stderr is not a terminal, unless asked ([`Bars::force_draw`],
//! [`Bars::draw_into`]).

mod bar;
mod bars;
mod child;
mod draw;

use serde::{Deserialize, Serialize};

pub use bar::Bar;
pub(crate) use bars::Attach;
pub use bars::Bars;
pub use child::{FLUSH_LIMIT, UPDATE_INTERVAL};
pub(crate) use child::{adopt, flush_at_exit};

/// One update on a child's progress channel: the bar's whole state, so that
/// a later one replaces every earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Update {
    pub(crate) position: u64,
    pub(crate) length: Option<u64>,
    pub(crate) message: Option<String>,
    pub(crate) finished: bool,
}

/// The longest update body a parent reads; a message is cut well short of
/// it.
const MAX_UPDATE: u64 = 64 * 1024;

/// The longest message a child sends, in bytes.
const MAX_MESSAGE: usize = 4 * 1024;

/// Sets the number of steps of this process's bar (tqdm's `total`).
///
/// A no-op unless the parent asked for this process's progress.
///
/// ```
/// use multiproc::progress::{self, Bars};
/// use multiproc::{Builder, process_task};
///
/// #[process_task]
/// fn sized() {
///     progress::set_length(42);
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// let bars = Bars::hidden();
/// Builder::new(sized, ()).progress(&bars).start()?.join()?;
/// bars.wait();
/// assert_eq!(bars.bars()[0].length(), Some(42));
/// # Ok(())
/// # }
/// ```
pub fn set_length(length: u64) {
    if let Some(r) = child::reporter() {
        r.set_length(length);
    }
}

/// Advances this process's bar by `delta` steps (tqdm's `update(n)`).
///
/// A no-op unless the parent asked for this process's progress; otherwise
/// an atomic addition: the state is sent by a thread of its own, at most
/// every [`UPDATE_INTERVAL`].
///
/// ```
/// use multiproc::progress::{self, Bars};
/// use multiproc::{Builder, process_task};
///
/// #[process_task]
/// fn steps() {
///     progress::set_length(1000);
///     for _ in 0..1000 {
///         progress::inc(1);
///     }
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// let bars = Bars::hidden();
/// Builder::new(steps, ()).progress(&bars).start()?.join()?;
/// bars.wait();
/// assert_eq!(bars.bars()[0].position(), 1000);
/// # Ok(())
/// # }
/// ```
pub fn inc(delta: u64) {
    if let Some(r) = child::reporter() {
        r.inc(delta);
    }
}

/// Moves this process's bar to `position`.
///
/// A no-op unless the parent asked for this process's progress.
///
/// ```
/// use multiproc::progress::{self, Bars};
/// use multiproc::{Builder, process_task};
///
/// #[process_task]
/// fn jump() {
///     progress::set_length(10);
///     progress::set_position(7);
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// let bars = Bars::hidden();
/// Builder::new(jump, ()).progress(&bars).start()?.join()?;
/// bars.wait();
/// assert_eq!(bars.bars()[0].position(), 7);
/// # Ok(())
/// # }
/// ```
pub fn set_position(position: u64) {
    if let Some(r) = child::reporter() {
        r.set_position(position);
    }
}

/// Shows `message` beside this process's bar (tqdm's `set_description`).
/// A message longer than 4 KiB is cut.
///
/// A no-op unless the parent asked for this process's progress: `message`
/// is then not even converted.
///
/// ```
/// use multiproc::progress::{self, Bars};
/// use multiproc::{Builder, process_task};
///
/// #[process_task]
/// fn download() {
///     progress::set_message("fetching index.html");
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// let bars = Bars::hidden();
/// Builder::new(download, ()).progress(&bars).start()?.join()?;
/// bars.wait();
/// assert_eq!(bars.bars()[0].message(), "fetching index.html");
/// # Ok(())
/// # }
/// ```
pub fn set_message(message: impl Into<String>) {
    if let Some(r) = child::reporter() {
        r.set_message(message.into());
    }
}

/// Marks this process's bar finished and sends its state now, waiting for
/// it to be written at most [`FLUSH_LIMIT`].
///
/// Not needed for the last value to arrive (the child's exit sends it
/// too), but it marks the bar done and lets the parent draw it so while
/// the task goes on with something else. A no-op unless the parent asked
/// for this process's progress.
///
/// ```
/// use multiproc::progress::{self, Bars};
/// use multiproc::{Builder, process_task};
///
/// #[process_task]
/// fn done() {
///     progress::set_length(3);
///     progress::inc(3);
///     progress::finish();
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// let bars = Bars::hidden();
/// Builder::new(done, ()).progress(&bars).start()?.join()?;
/// bars.wait();
/// assert!(bars.bars()[0].is_finished());
/// # Ok(())
/// # }
/// ```
pub fn finish() {
    if let Some(r) = child::reporter() {
        r.finish();
    }
}

/// Whether this process reports progress to its parent: true in a child
/// started with [`Builder::progress`](crate::Builder::progress), false
/// anywhere else (where every function of this module does nothing).
///
/// ```
/// use multiproc::progress::{self, Bars};
/// use multiproc::{Builder, process_task};
///
/// #[process_task]
/// fn reporting() -> bool {
///     progress::is_reporting()
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// let bars = Bars::hidden();
/// assert!(Builder::new(reporting, ()).progress(&bars).start()?.join()?);
/// assert!(!Builder::new(reporting, ()).start()?.join()?);
/// assert!(!progress::is_reporting()); // the parent itself
/// # Ok(())
/// # }
/// ```
pub fn is_reporting() -> bool {
    child::reporter().is_some()
}

/// How many updates the parent received for `bar` (for tests).
pub(crate) fn updates_received(bar: &Bar) -> u64 {
    bar.updates_received()
}
