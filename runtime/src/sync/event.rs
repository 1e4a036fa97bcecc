//! `Event`: one flag word in a block, slept on while clear.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::block::{Block, State};
use super::lock::shared_by_handle;

#[repr(C)]
#[derive(Default)]
pub(super) struct EventState {
    flag: AtomicU32,
}

// SAFETY: atomics only; all zero is a clear event.
unsafe impl State for EventState {
    const KIND: u32 = 4;
}

/// A flag shared between processes (Python's `multiprocessing.Event`):
/// `wait` sleeps until some process calls `set`.
///
/// ```
/// use multiproc::{Event, process_task};
///
/// #[process_task]
/// fn start(go: Event) {
///     go.set();
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let go = Event::new()?;
/// let child = multiproc::spawn(start, (go.clone(),))?;
/// go.wait();
/// assert!(go.is_set());
/// child.join()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Event {
    block: Arc<Block<EventState>>,
}

impl Event {
    /// A new event, clear.
    ///
    /// ```
    /// let event = multiproc::Event::new()?;
    /// assert!(!event.is_set());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> std::io::Result<Event> {
        Ok(Event { block: Arc::new(Block::new(0, |_| {})?) })
    }

    fn flag(&self) -> &AtomicU32 {
        &self.block.state().flag
    }

    /// Whether it is set.
    ///
    /// ```
    /// let event = multiproc::Event::new()?;
    /// event.set();
    /// assert!(event.is_set());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_set(&self) -> bool {
        self.flag().load(Ordering::Acquire) != 0
    }

    /// Sets it, waking every waiter.
    ///
    /// ```
    /// let event = multiproc::Event::new()?;
    /// event.set();
    /// event.wait(); // returns at once
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set(&self) {
        if self.flag().swap(1, Ordering::SeqCst) == 0 {
            self.block.wake(self.flag(), u32::MAX);
        }
    }

    /// Clears it.
    ///
    /// ```
    /// let event = multiproc::Event::new()?;
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn clear(&self) {
        self.flag().store(0, Ordering::Release);
    }

    /// Sleeps until it is set.
    ///
    /// ```
    /// let event = multiproc::Event::new()?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| event.set());
    ///     event.wait();
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Sleeps until it is set, at most `timeout`: whether it is set.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let event = multiproc::Event::new()?;
    /// assert!(!event.wait_timeout(Duration::from_millis(10)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(super::deadline_after(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.is_set() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            self.block.sleep(self.flag(), 0, deadline, Duration::from_secs(3600));
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event").field("set", &self.is_set()).finish()
    }
}

shared_by_handle!(Event);
