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
//! how many there are. Nothing but these handles reaches the child.
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
pub(crate) const NOT_SHARING: &str = "an OS handle can only be shared with a child process as an argument of `Builder::new`, `Builder::process` or `spawn`";

thread_local! {
    /// The parent's collector, while a task's arguments are encoded.
    static COLLECTOR: RefCell<Option<Vec<OsHandle>>> = const { RefCell::new(None) };
    /// The child's inherited handles, until the payload is decoded.
    static INHERITED: RefCell<Option<Vec<Option<OsHandle>>>> = const { RefCell::new(None) };
}

/// Runs `encode` with a fresh collector active on this thread and returns
/// its result with the handles it collected, in index order.
pub(crate) fn collecting<R>(encode: impl FnOnce() -> R) -> (R, Vec<OsHandle>) {
    struct Restore(Option<Vec<OsHandle>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            COLLECTOR.with(|c| *c.borrow_mut() = outer);
        }
    }
    // Save an outer collector (an argument whose `Serialize` starts another
    // builder) and put it back even if `encode` panics.
    let restore = Restore(COLLECTOR.with(|c| c.borrow_mut().replace(Vec::new())));
    let result = encode();
    let handles = COLLECTOR.with(|c| c.borrow_mut().take()).unwrap_or_default();
    drop(restore);
    (result, handles)
}

/// Adds a handle to the active collector and returns its index. `dup`
/// makes the copy the child will get; it is only called when a collector
/// is active.
pub(crate) fn share(dup: impl FnOnce() -> std::io::Result<OsHandle>) -> Result<u32, String> {
    COLLECTOR.with(|c| {
        let mut c = c.borrow_mut();
        let Some(handles) = c.as_mut() else {
            return Err(NOT_SHARING.to_owned());
        };
        let index = u32::try_from(handles.len()).map_err(|_| "too many handles in one argument list".to_owned())?;
        handles.push(dup().map_err(|e| format!("could not duplicate a handle for the child: {e}"))?);
        Ok(index)
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
