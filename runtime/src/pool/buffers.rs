//! Byte buffers kept for reuse between a pool's chunks: the arguments of a
//! chunk and the message of its results each need one, for as long as the
//! chunk is out, and a map of small tasks uses them by the megabyte. Memory
//! fresh from the system is faulted in a page at a time, which costs more
//! than encoding tiny tasks does; a buffer given back here is taken again
//! by the next chunk, its pages already in.
//!
//! What is kept is bounded: [`KEEP`] buffers, none larger than [`LARGEST`].

use std::sync::{Mutex, PoisonError};

/// How many buffers are kept.
const KEEP: usize = 32;

/// The largest buffer kept; a larger one is freed.
const LARGEST: usize = 1 << 20;

/// A buffer smaller than this is not worth keeping.
const SMALLEST: usize = 4 << 10;

static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty buffer: one given back, if there is one.
pub(super) fn take() -> Vec<u8> {
    SPARE.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default()
}

/// A buffer for a message of `len` bytes: one given back if the message
/// is big enough to be worth one, else a new one.
pub(super) fn for_len(len: u64) -> Vec<u8> {
    if len >= SMALLEST as u64 { take() } else { Vec::new() }
}

/// Gives `buffer` back for reuse (or frees it).
pub(super) fn give(mut buffer: Vec<u8>) {
    if !(SMALLEST..=LARGEST).contains(&buffer.capacity()) {
        return;
    }
    buffer.clear();
    let mut spare = SPARE.lock().unwrap_or_else(PoisonError::into_inner);
    if spare.len() < KEEP {
        spare.push(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes every kept buffer, asks `f` about each, and gives them back.
    fn any_kept(f: impl Fn(&Vec<u8>) -> bool) -> bool {
        let mut taken = Vec::new();
        loop {
            let t = take();
            if t.capacity() == 0 {
                break;
            }
            assert!(t.is_empty(), "a buffer is taken empty");
            taken.push(t);
        }
        let found = taken.iter().any(f);
        taken.into_iter().for_each(give);
        found
    }

    #[test]
    fn a_buffer_given_back_is_taken_again_empty_and_a_huge_one_is_not_kept() {
        let mut b = Vec::with_capacity(64 << 10);
        b.extend_from_slice(b"old bytes");
        let at = b.as_ptr();
        give(b);
        assert!(any_kept(|t| t.as_ptr() == at), "the buffer given back is kept");
        let huge = Vec::<u8>::with_capacity(LARGEST + 1);
        give(huge);
        assert!(!any_kept(|t| t.capacity() > LARGEST), "a buffer larger than LARGEST is freed");
    }
}
