//! `Barrier`: Python's algorithm (filling, draining, resetting, broken)
//! over a lock and a change counter inside one block, plus a table of the
//! processes that hold the barrier. A party that waits longer than
//! [`POLL`] looks through the table; a holder that died without letting go
//! breaks the barrier, so the others are not left waiting for it forever.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::POLL;
use super::block::{Block, State};
use super::lock::{LockState, Taken};
use crate::registry;
use crate::sys::imp::{process_alive, process_token};

/// How many processes' handles the table tracks; past that a holder's
/// death is not noticed (a wait with a timeout still ends).
const HOLDERS: usize = 64;

const FILLING: u32 = 0;
const DRAINING: u32 = 1;
const RESETTING: u32 = 2;
const BROKEN: u32 = 3;

#[repr(C)]
struct BarrierState {
    lock: LockState,
    parties: AtomicU32,
    /// Parties inside `wait` in this pass.
    count: AtomicU32,
    phase: AtomicU32,
    /// Bumped at every change waiters must see: what they sleep on.
    changed: AtomicU32,
    /// The default timeout in nanoseconds; `u64::MAX`: none.
    timeout: AtomicU64,
    /// A hash of the action's task id; 0: no action.
    action: AtomicU64,
    /// The tokens of the processes holding the barrier; 0: a free slot.
    holders: [AtomicU64; HOLDERS],
}

// SAFETY: atomics only; `new` sets the fields before anyone sees them.
unsafe impl State for BarrierState {
    const KIND: u32 = 6;
}

/// The barrier was broken (aborted, reset while waiting, timed out, or a
/// party died): Python's `BrokenBarrierError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the barrier is broken")]
pub struct BrokenBarrier;

/// This process's view of a barrier: its block and its slot in the table.
struct Inner {
    block: Block<BarrierState>,
    slot: Option<usize>,
    /// The action, found in the task table the first time it runs here.
    action: OnceLock<Option<fn()>>,
}

impl Inner {
    fn new(block: Block<BarrierState>) -> Inner {
        let me = process_token();
        let slot = block
            .state()
            .holders
            .iter()
            .position(|h| h.compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed).is_ok());
        Inner { block, slot, action: OnceLock::new() }
    }

    /// The action whose task id hashes to `id`, in this process.
    fn action(&self, id: u64) -> Option<fn()> {
        *self.action.get_or_init(|| find_action(id))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            self.block.state().holders[slot].store(0, Ordering::Release);
        }
    }
}

/// A barrier shared between processes (Python's
/// `multiprocessing.Barrier`): each of `parties` callers of
/// [`wait`](Barrier::wait) sleeps until the last arrives, then all go on
/// together, and the barrier is ready for the next pass.
///
/// It breaks — every waiter, present and later, gets [`BrokenBarrier`] —
/// when aborted, when a wait times out, when the action panics, and when
/// a process holding the barrier dies without dropping it.
///
/// ```
/// use multiproc::{Barrier, process_task};
///
/// #[process_task]
/// fn meet(barrier: Barrier) -> u32 {
///     barrier.wait().unwrap()
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let barrier = Barrier::new(3)?;
/// let a = multiproc::spawn(meet, (barrier.clone(),))?;
/// let b = multiproc::spawn(meet, (barrier.clone(),))?;
/// let mine = barrier.wait()?;
/// let mut all = vec![mine, a.join()?, b.join()?];
/// all.sort();
/// assert_eq!(all, [0, 1, 2]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Barrier {
    inner: Arc<Inner>,
}

fn invalid(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg.to_owned())
}

/// A stable hash of a task id (FNV-1a), never 0.
fn id_hash(id: &str) -> u64 {
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    h.max(1)
}

impl Barrier {
    /// A barrier for `parties` callers (at least one).
    ///
    /// ```
    /// let barrier = multiproc::Barrier::new(1)?;
    /// assert_eq!(barrier.wait()?, 0); // one party: never waits
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(parties: u32) -> std::io::Result<Barrier> {
        Self::make(parties, None, None)
    }

    /// A barrier whose `action` runs once per pass, in the last party to
    /// arrive, before any is released. The action must be a
    /// `#[process_task]` function without arguments, so that every process
    /// can find it.
    ///
    /// ```
    /// use multiproc::process_task;
    ///
    /// #[process_task]
    /// fn all_here() {
    ///     println!("everyone arrived");
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let barrier = multiproc::Barrier::with_action(1, all_here)?;
    /// barrier.wait()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_action(parties: u32, action: fn()) -> std::io::Result<Barrier> {
        let entry = registry::function::<fn()>(Some(action as usize)).map_err(|e| {
            invalid(&format!("a barrier's action must be a #[process_task] function without arguments: {e}"))
        })?;
        Self::make(parties, Some(id_hash(entry.id)), None)
    }

    /// A barrier whose [`wait`](Barrier::wait) breaks it after `timeout`
    /// (Python's `Barrier(parties, timeout=...)`).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let barrier = multiproc::Barrier::with_timeout(2, Duration::from_millis(10))?;
    /// assert!(barrier.wait().is_err()); // nobody else came
    /// assert!(barrier.broken());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_timeout(parties: u32, timeout: Duration) -> std::io::Result<Barrier> {
        Self::make(parties, None, Some(timeout))
    }

    fn make(parties: u32, action: Option<u64>, timeout: Option<Duration>) -> std::io::Result<Barrier> {
        if parties == 0 {
            return Err(invalid("a barrier needs at least one party"));
        }
        let block = Block::new(0, |s: &BarrierState| {
            s.parties.store(parties, Ordering::Relaxed);
            s.timeout.store(
                timeout.map_or(u64::MAX, |t| t.as_nanos().min(u128::from(u64::MAX - 1)) as u64),
                Ordering::Relaxed,
            );
            s.action.store(action.unwrap_or(0), Ordering::Relaxed);
        })?;
        Ok(Barrier { inner: Arc::new(Inner::new(block)) })
    }

    fn block(&self) -> &Block<BarrierState> {
        &self.inner.block
    }

    fn state(&self) -> &BarrierState {
        self.block().state()
    }

    /// The number of parties.
    ///
    /// ```
    /// assert_eq!(multiproc::Barrier::new(4)?.parties(), 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn parties(&self) -> u32 {
        self.state().parties.load(Ordering::Relaxed)
    }

    /// How many parties wait in the current pass.
    ///
    /// ```
    /// assert_eq!(multiproc::Barrier::new(4)?.n_waiting(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn n_waiting(&self) -> u32 {
        let s = self.state();
        if s.phase.load(Ordering::Acquire) == FILLING { s.count.load(Ordering::Acquire) } else { 0 }
    }

    /// Whether it is broken.
    ///
    /// ```
    /// let barrier = multiproc::Barrier::new(2)?;
    /// barrier.abort();
    /// assert!(barrier.broken());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn broken(&self) -> bool {
        self.state().phase.load(Ordering::Acquire) == BROKEN
    }

    /// Waits for the other parties, with the barrier's default timeout.
    /// Each caller of a pass gets a distinct index in `0..parties`; the
    /// first to arrive gets 0.
    ///
    /// ```
    /// let barrier = multiproc::Barrier::new(2)?;
    /// std::thread::scope(|s| {
    ///     let other = s.spawn(|| barrier.wait().unwrap());
    ///     let mine = barrier.wait().unwrap();
    ///     assert_eq!(mine + other.join().unwrap(), 1);
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(&self) -> Result<u32, BrokenBarrier> {
        let t = self.state().timeout.load(Ordering::Relaxed);
        let deadline = if t == u64::MAX { None } else { super::deadline_after(Duration::from_nanos(t)) };
        self.wait_until(deadline)
    }

    /// As [`wait`](Barrier::wait), breaking the barrier if the pass is not
    /// full after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let barrier = multiproc::Barrier::new(2)?;
    /// assert!(barrier.wait_timeout(Duration::from_millis(10)).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32, BrokenBarrier> {
        self.wait_until(super::deadline_after(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<u32, BrokenBarrier> {
        let s = self.state();
        let mut held = self.lock();
        while matches!(s.phase.load(Ordering::Acquire), DRAINING | RESETTING) {
            held.pause(None);
        }
        if s.phase.load(Ordering::Acquire) == BROKEN {
            return Err(BrokenBarrier);
        }
        let index = s.count.fetch_add(1, Ordering::AcqRel);
        let outcome = if index + 1 >= s.parties.load(Ordering::Relaxed) {
            held.release_pass()
        } else {
            held.await_pass(deadline).map_err(Pass::Broken)
        };
        // Leaving: the last one out of a drain or reset opens the next pass.
        if s.count.fetch_sub(1, Ordering::AcqRel) == 1
            && matches!(s.phase.load(Ordering::Acquire), DRAINING | RESETTING)
        {
            held.set_phase(FILLING);
        }
        drop(held);
        match outcome {
            Ok(()) => Ok(index),
            Err(Pass::Broken(e)) => Err(e),
            Err(Pass::Panicked(p)) => std::panic::resume_unwind(p),
        }
    }

    /// Releases the parties waiting now with [`BrokenBarrier`] and makes the
    /// barrier usable again, broken or not.
    ///
    /// ```
    /// let barrier = multiproc::Barrier::new(1)?;
    /// barrier.abort();
    /// barrier.reset();
    /// assert!(!barrier.broken());
    /// assert_eq!(barrier.wait()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reset(&self) {
        let held = self.lock();
        let s = self.state();
        if s.count.load(Ordering::Acquire) > 0 {
            if matches!(s.phase.load(Ordering::Acquire), FILLING | BROKEN) {
                held.set_phase(RESETTING);
            }
        } else {
            held.set_phase(FILLING);
        }
    }

    /// Breaks the barrier: every waiter, now and later, gets
    /// [`BrokenBarrier`] until a [`reset`](Barrier::reset).
    ///
    /// ```
    /// let barrier = multiproc::Barrier::new(2)?;
    /// barrier.abort();
    /// assert!(barrier.wait().is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn abort(&self) {
        self.lock().set_phase(BROKEN);
    }

    fn lock(&self) -> Held<'_> {
        let held = Held { barrier: self };
        if let Some(Taken::FromDead(_)) = self.state().lock.acquire(self.block(), None) {
            // A party died inside the barrier's own bookkeeping.
            held.set_phase(BROKEN);
        }
        held
    }
}

/// How a pass ended for one party, besides normally.
enum Pass {
    Broken(BrokenBarrier),
    /// The action panicked (the barrier is broken); the panic goes on in
    /// the party that ran it.
    Panicked(Box<dyn std::any::Any + Send>),
}

/// The barrier's own lock, held.
struct Held<'a> {
    barrier: &'a Barrier,
}

impl Held<'_> {
    fn state(&self) -> &BarrierState {
        self.barrier.state()
    }

    /// Sets the phase and wakes every waiter to look at it.
    fn set_phase(&self, phase: u32) {
        let s = self.state();
        s.phase.store(phase, Ordering::Release);
        s.changed.fetch_add(1, Ordering::SeqCst);
        self.barrier.block().wake(&s.changed, u32::MAX);
    }

    /// Releases the lock, sleeps until a change (or `deadline`, at most
    /// [`POLL`]), takes the lock back; breaks the barrier if a holder died.
    fn pause(&mut self, deadline: Option<Instant>) {
        let s = self.state();
        let block = self.barrier.block();
        let seen = s.changed.load(Ordering::Acquire);
        let _ = s.lock.release(block);
        let start = Instant::now();
        block.sleep(&s.changed, seen, deadline, POLL);
        let slept_long = start.elapsed() >= POLL;
        if let Some(Taken::FromDead(_)) = s.lock.acquire(block, None) {
            self.set_phase(BROKEN);
        }
        if slept_long && s.phase.load(Ordering::Acquire) != BROKEN && self.a_holder_died() {
            self.set_phase(BROKEN);
        }
    }

    /// Whether a process in the table died holding the barrier (its slot
    /// is freed, so the death breaks one pass, not every later one).
    fn a_holder_died(&self) -> bool {
        let mut died = false;
        for slot in &self.state().holders {
            let token = slot.load(Ordering::Acquire);
            if token != 0 && !process_alive(token) {
                let _ = slot.compare_exchange(token, 0, Ordering::AcqRel, Ordering::Relaxed);
                died = true;
            }
        }
        died
    }

    /// The last party arrived: runs the action, then lets everyone go.
    fn release_pass(&mut self) -> Result<(), Pass> {
        let id = self.state().action.load(Ordering::Relaxed);
        if id != 0 {
            let ran = match self.barrier.inner.action(id) {
                Some(action) => std::panic::catch_unwind(action),
                None => {
                    Err(Box::new("the barrier's action is not a task of this program") as Box<dyn std::any::Any + Send>)
                }
            };
            if let Err(p) = ran {
                self.set_phase(BROKEN);
                return Err(Pass::Panicked(p));
            }
        }
        self.set_phase(DRAINING);
        Ok(())
    }

    /// Waits for the pass to fill; breaks it at the deadline.
    fn await_pass(&mut self, deadline: Option<Instant>) -> Result<(), BrokenBarrier> {
        loop {
            match self.state().phase.load(Ordering::Acquire) {
                FILLING => {}
                DRAINING => return Ok(()),
                _ => return Err(BrokenBarrier),
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.set_phase(BROKEN);
                return Err(BrokenBarrier);
            }
            self.pause(deadline);
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let _ = self.state().lock.release(self.barrier.block());
    }
}

/// The action whose task id hashes to `id`.
fn find_action(id: u64) -> Option<fn()> {
    let entry = registry::all().find(|e| id_hash(e.id) == id)?;
    let address = (entry.function?.address)();
    // The entry was registered for a function without arguments and with
    // no result (`with_action` accepted it as an `fn()` by its address);
    // the address is that function's in this process.
    // SAFETY: `address` is the address of an `fn()` item of this program.
    Some(unsafe { std::mem::transmute::<usize, fn()>(address) })
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .finish()
    }
}

/// Encodes the barrier as handles for a child being started; an error
/// anywhere but in a task's arguments.
impl Serialize for Barrier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.inner.block.serialize(serializer)
    }
}

/// The same barrier, in a child decoding its arguments; the child counts
/// among its holders from here until it drops it.
impl<'de> Deserialize<'de> for Barrier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Barrier { inner: Arc::new(Inner::new(Block::deserialize(deserializer)?)) })
    }
}
