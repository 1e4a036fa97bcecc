//! The out-of-band handle table: how OS handles (a [`Connection`] end, …)
//! travel as task arguments.
//!
//! In the parent, [`collecting`] runs the encoding of a task's arguments
//! with a thread-local collector active. A handle type's `Serialize`
//! duplicates its OS handle (close-on-exec) into the collector through
//! [`share`] and writes only the handle's index. The collected handles are
//! passed to the spawn, which places them at fixed slots of the child's
//! handle table (descriptors 4, 5, … on Unix; on Windows they are put into
//! the started child, see `sys::spawn_child`); the bootstrap frame records
//! how many there are. Nothing but these handles reaches the child. The
//! payload is measured under [`collecting`] when the builder is made and
//! written under [`replaying`] at `start`, which hands out the same indices
//! without duplicating anything again.
//!
//! In the child, the bootstrap adopts them ([`install`]) before the
//! payload is decoded; a handle type's `Deserialize` takes its handle by
//! index through [`claim`], each at most once. Handles no argument claimed
//! are closed right after the decode ([`decode_payload`]).
//!
//! Serializing a handle outside these contexts is an error: a handle can
//! only be shared with a child process as an argument (Python's "should
//! only be shared between processes through inheritance").
//!
//! [`Connection`]: crate::Connection

use std::cell::RefCell;

use serde::de::DeserializeOwned;

use crate::error::DecodeError;
use crate::sys::OsHandle;

/// Why a handle could not be shared or claimed.
pub(crate) const NOT_SHARING: &str = "an OS handle can only be shared with a child process as an argument of `Builder::new`, `Builder::process`, `spawn` or a pool's initializer";

/// What a share does while a payload is encoded.
enum Collector {
    /// The measuring pass: each handle is duplicated for the child and kept.
    Keeping(Vec<OsHandle>),
    /// The writing pass, after the spawn: each handle only gets its index
    /// again (the same order as when it was kept), nothing is duplicated.
    Counting(u32),
}

thread_local! {
    /// The parent's collector, while a task's arguments are encoded.
    static COLLECTOR: RefCell<Option<Collector>> = const { RefCell::new(None) };
    /// The child's inherited handles, until the payload is decoded.
    static INHERITED: RefCell<Option<Vec<Option<OsHandle>>>> = const { RefCell::new(None) };
}

/// Runs `encode` with `collector` active on this thread and returns its
/// result with the collector as `encode` left it.
fn with_collector<R>(collector: Collector, encode: impl FnOnce() -> R) -> (R, Option<Collector>) {
    struct Restore(Option<Collector>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            COLLECTOR.with(|c| *c.borrow_mut() = outer);
        }
    }
    // Save an outer collector (an argument whose `Serialize` starts another
    // builder) and put it back even if `encode` panics.
    let restore = Restore(COLLECTOR.with(|c| c.borrow_mut().replace(collector)));
    let result = encode();
    let used = COLLECTOR.with(|c| c.borrow_mut().take());
    drop(restore);
    (result, used)
}

/// Runs `encode` with a fresh collector active on this thread and returns
/// its result with the handles it collected, in index order.
pub(crate) fn collecting<R>(encode: impl FnOnce() -> R) -> (R, Vec<OsHandle>) {
    match with_collector(Collector::Keeping(Vec::new()), encode) {
        (result, Some(Collector::Keeping(handles))) => (result, handles),
        (result, _) => (result, Vec::new()),
    }
}

/// Runs `encode` again after [`collecting`] ran it: each handle gets the
/// index it got then, and none is duplicated a second time.
pub(crate) fn replaying<R>(encode: impl FnOnce() -> R) -> R {
    with_collector(Collector::Counting(0), encode).0
}

/// Adds a handle to the active collector and returns its index. `dup`
/// makes the copy the child will get; it is only called while handles are
/// being kept.
pub(crate) fn share(dup: impl FnOnce() -> std::io::Result<OsHandle>) -> Result<u32, String> {
    COLLECTOR.with(|c| {
        let too_many = || "too many handles in one argument list".to_owned();
        match c.borrow_mut().as_mut() {
            None => Err(NOT_SHARING.to_owned()),
            Some(Collector::Keeping(handles)) => {
                let index = u32::try_from(handles.len()).map_err(|_| too_many())?;
                handles.push(dup().map_err(|e| format!("could not duplicate a handle for the child: {e}"))?);
                Ok(index)
            }
            Some(Collector::Counting(next)) => {
                let index = *next;
                *next = next.checked_add(1).ok_or_else(too_many)?;
                Ok(index)
            }
        }
    })
}

/// In a child: makes the handles the parent passed available to
/// [`claim`] on this thread.
pub(crate) fn install(handles: Vec<OsHandle>) {
    INHERITED.with(|t| *t.borrow_mut() = Some(handles.into_iter().map(Some).collect()));
}

/// In a child, while the payload is decoded: takes the inherited handle at
/// `index`. Each handle can be taken once.
pub(crate) fn claim(index: u32) -> Result<OsHandle, String> {
    INHERITED.with(|t| {
        let mut t = t.borrow_mut();
        let table = t.as_mut().ok_or_else(|| NOT_SHARING.to_owned())?;
        let count = table.len();
        match table.get_mut(index as usize) {
            None => Err(format!("handle {index} was not passed (the parent passed {count})")),
            Some(slot) => slot.take().ok_or_else(|| format!("handle {index} was already taken")),
        }
    })
}

/// The inherited handles a decode left unclaimed, kept for a payload
/// inside the payload (a pool worker's initializer arguments).
#[derive(Debug, Default)]
pub(crate) struct Unclaimed(Option<Vec<Option<OsHandle>>>);

impl Unclaimed {
    /// Makes them the inherited handles again, for the inner payload's
    /// decode (which closes what it leaves in turn).
    pub(crate) fn reinstall(self) {
        INHERITED.with(|t| *t.borrow_mut() = self.0);
    }
}

/// As [`decode_payload`], but the handles the decode leaves unclaimed are
/// handed back instead of closed.
pub(crate) fn decode_payload_keeping<T: DeserializeOwned>(
    decode: impl FnOnce() -> Result<T, DecodeError>,
) -> (Result<T, DecodeError>, Unclaimed) {
    let result = decode();
    (result, Unclaimed(INHERITED.with(|t| t.borrow_mut().take())))
}

/// Decodes a task's payload with the inherited handles available, then
/// closes every handle no argument claimed.
pub(crate) fn decode_payload<T: DeserializeOwned>(
    decode: impl FnOnce() -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let result = decode();
    INHERITED.with(|t| t.borrow_mut().take());
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn handle() -> OsHandle {
        std::fs::File::open("/dev/null").expect("open /dev/null").into()
    }

    #[test]
    fn sharing_outside_a_collector_is_an_error() {
        assert_eq!(share(|| unreachable!("no dup without a collector")), Err(NOT_SHARING.to_owned()));
    }

    #[cfg(unix)]
    #[test]
    fn collects_in_order_and_restores_the_outer_collector() {
        let ((a, (inner, inner_handles)), outer) = collecting(|| {
            let a = share(|| Ok(handle())).unwrap();
            let inner = collecting(|| share(|| Ok(handle())).unwrap());
            (a, inner)
        });
        assert_eq!((a, inner), (0, 0));
        assert_eq!((outer.len(), inner_handles.len()), (1, 1));
        assert!(share(|| Ok(handle())).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn replaying_gives_the_same_indices_without_duplicating() {
        let (first, kept) = collecting(|| (share(|| Ok(handle())).unwrap(), share(|| Ok(handle())).unwrap()));
        assert_eq!((first, kept.len()), ((0, 1), 2));
        let again =
            replaying(|| (share(|| panic!("no second copy")).unwrap(), share(|| panic!("no second copy")).unwrap()));
        assert_eq!(again, (0, 1));
        assert!(share(|| Ok(handle())).is_err(), "no collector outside");
    }

    #[cfg(unix)]
    #[test]
    fn claims_each_handle_once() {
        assert!(claim(0).is_err());
        install(vec![handle(), handle()]);
        assert!(claim(1).is_ok());
        assert!(claim(1).unwrap_err().contains("already taken"));
        assert!(claim(2).unwrap_err().contains("not passed"));
        let _: Result<u8, _> = decode_payload(|| super::super::decode(&[0]));
        assert!(claim(0).is_err(), "unclaimed handles are dropped after the decode");
    }
}
