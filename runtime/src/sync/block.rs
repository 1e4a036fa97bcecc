//! The shared block every primitive lives in: a [`Region`] starting with a
//! [`Header`], then the primitive's own state (atomics only), then, for
//! shared values, their data. With it comes the [`Parker`] its sleepers
//! use. A block travels to a child as one or two handles (the region; on
//! Windows also the parker's semaphore), through the out-of-band handle
//! table like every other handle argument.

use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sys::imp::{Parker, Region};
use crate::wire::handles;

/// Marks a region as a multiproc block: "mpsy".
const MAGIC: u32 = u32::from_le_bytes(*b"mpsy");

/// Where the state starts, and the data after it: a cache line, so that
/// values next to a lock do not share its line.
pub(super) const ALIGN: usize = 64;

/// The first bytes of every block.
#[repr(C)]
struct Header {
    /// [`MAGIC`], stored last when the block is made.
    magic: AtomicU32,
    /// Which primitive this is ([`State::KIND`]).
    kind: AtomicU32,
    /// How many processes sleep on any word of the block (a waker with no
    /// sleepers makes no system call).
    sleepers: AtomicU32,
    /// The length of the data after the state, in bytes.
    data_len: AtomicU64,
}

/// A primitive's state: `#[repr(C)]`, atomics only, valid all-zero.
///
/// # Safety
///
/// The type must be valid when all its bytes are zero, and every field
/// must be safe to share between processes (atomics).
pub(super) unsafe trait State: Sized {
    /// Tells the blocks of one primitive from another's.
    const KIND: u32;
}

/// The offset of the state, and of the data after it.
const fn offsets<S>() -> (usize, usize) {
    let state = std::mem::size_of::<Header>().next_multiple_of(ALIGN);
    (state, (state + std::mem::size_of::<S>()).next_multiple_of(ALIGN))
}

/// One primitive's shared block, mapped in this process.
#[derive(Debug)]
pub(super) struct Block<S> {
    region: Region,
    parker: Parker,
    _state: PhantomData<S>,
}

impl<S: State> Block<S> {
    /// A fresh block with `data_len` bytes of zeroed data after the state;
    /// `init` sets the state up before anyone else can see it.
    pub(super) fn new(data_len: usize, init: impl FnOnce(&S)) -> io::Result<Block<S>> {
        let (_, data) = offsets::<S>();
        let len = data.checked_add(data_len).ok_or(io::ErrorKind::InvalidInput)?;
        let block = Block { region: Region::new(len)?, parker: Parker::new()?, _state: PhantomData };
        let h = block.header();
        h.kind.store(S::KIND, Ordering::Relaxed);
        h.data_len.store(data_len as u64, Ordering::Relaxed);
        init(block.state());
        h.magic.store(MAGIC, Ordering::Release);
        Ok(block)
    }

    /// Maps a block another process passed; refuses one of another kind
    /// or too short for what it claims.
    fn adopt(region: Region, parker: Parker) -> io::Result<Block<S>> {
        let (_, data) = offsets::<S>();
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("the handle passed is not {what}"));
        if region.len() < data {
            return Err(bad("a multiproc primitive"));
        }
        let block = Block { region, parker, _state: PhantomData };
        let h = block.header();
        if h.magic.load(Ordering::Acquire) != MAGIC || h.kind.load(Ordering::Relaxed) != S::KIND {
            return Err(bad(std::any::type_name::<S>()));
        }
        let claimed = h.data_len.load(Ordering::Relaxed);
        if claimed > (block.region.len() - data) as u64 {
            return Err(bad("a whole multiproc primitive"));
        }
        Ok(block)
    }

    fn header(&self) -> &Header {
        // SAFETY: the region is page-aligned, at least `offsets().1` bytes
        // long (checked in `adopt`, made so in `new`), lives as long as
        // `self`, and a `Header` is atomics only, valid all-zero.
        unsafe { &*self.region.ptr().cast::<Header>() }
    }

    /// The primitive's state.
    pub(super) fn state(&self) -> &S {
        // SAFETY: as for the header; `S: State` promises atomics only, valid
        // all-zero, and `offsets` keeps it aligned and inside the region.
        unsafe { &*self.region.ptr().add(offsets::<S>().0).cast::<S>() }
    }

    /// The data after the state: its start (aligned to [`ALIGN`]) and length.
    pub(super) fn data(&self) -> (*mut u8, usize) {
        // SAFETY: `offsets().1` is inside the region (see `header`).
        let ptr = unsafe { self.region.ptr().add(offsets::<S>().1) };
        (ptr, self.header().data_len.load(Ordering::Relaxed) as usize)
    }

    /// Sleeps while `*word == expected`, until `deadline` and at most
    /// `cap`; it may return early, and the caller re-checks.
    pub(super) fn sleep(&self, word: &AtomicU32, expected: u32, deadline: Option<Instant>, cap: Duration) {
        self.sleep_while(word, deadline, cap, || word.load(Ordering::SeqCst) == expected);
    }

    /// Counts itself among the sleepers, then, if `blocked()` still holds,
    /// sleeps until `word` changes from what it holds now (until `deadline`,
    /// at most `cap`). A waker that changes what `blocked` reads with a
    /// `SeqCst` read-modify-write and then finds no sleeper
    /// ([`has_sleepers`](Self::has_sleepers)) may skip changing `word` and
    /// waking: this sleeper's check comes after it in that case.
    pub(super) fn sleep_while(
        &self,
        word: &AtomicU32,
        deadline: Option<Instant>,
        cap: Duration,
        blocked: impl FnOnce() -> bool,
    ) {
        let left = deadline.map_or(cap, |d| d.saturating_duration_since(Instant::now()).min(cap));
        if left.is_zero() {
            return;
        }
        let h = self.header();
        h.sleepers.fetch_add(1, Ordering::SeqCst);
        let expected = word.load(Ordering::SeqCst);
        if blocked() {
            self.parker.wait(word, expected, Some(left));
        }
        h.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Whether anyone sleeps on the block (see [`sleep_while`](Self::sleep_while)).
    pub(super) fn has_sleepers(&self) -> bool {
        self.header().sleepers.load(Ordering::SeqCst) > 0
    }

    /// Wakes at most `n` sleepers on `word`, after the caller changed it
    /// with a `SeqCst` read-modify-write: that pairs with the sleeper's
    /// count-then-check, so either it sees the change or this sees it
    /// counted.
    pub(super) fn wake(&self, word: &AtomicU32, n: u32) {
        let sleepers = self.header().sleepers.load(Ordering::SeqCst);
        if sleepers > 0 {
            self.parker.wake(word, n, sleepers);
        }
    }
}

/// Encodes the block as indices into the handle table of a child being
/// started; an error anywhere but in a task's arguments.
impl<S> Serialize for Block<S> {
    fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        use serde::ser::Error;
        let region = handles::share(|| self.region.duplicate()).map_err(Error::custom)?;
        let parker = match self.parker.duplicate().map_err(Error::custom)? {
            Some(h) => Some(handles::share(|| Ok(h)).map_err(Error::custom)?),
            None => None,
        };
        (region, parker).serialize(serializer)
    }
}

/// Maps the block the parent passed, in a child decoding its arguments.
impl<'de, S: State> Deserialize<'de> for Block<S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (region, parker) = <(u32, Option<u32>)>::deserialize(deserializer)?;
        let region = Region::adopt(handles::claim(region).map_err(Error::custom)?).map_err(Error::custom)?;
        let parker = parker.map(handles::claim).transpose().map_err(Error::custom)?;
        let parker = Parker::adopt(parker).map_err(Error::custom)?;
        Block::adopt(region, parker).map_err(Error::custom)
    }
}

/// A number for the calling thread, never 0: what an owned lock records
/// beside the process's token. It is unique in this process and carries
/// the pid too, so that the number a dead holder left behind is not taken
/// for a thread of the process that takes the lock over.
pub(super) fn thread_number() -> u64 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    thread_local! {
        static NUMBER: u64 = (u64::from(std::process::id()) << 32) | u64::from(NEXT.fetch_add(1, Ordering::Relaxed));
    }
    NUMBER.with(|n| *n)
}
