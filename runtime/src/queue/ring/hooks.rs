//! Test hooks: stalling mid-operation (to be killed there), counters, and
//! writing over the shared state as a hostile peer could.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{KIND_ITEM, KIND_SPILL, MAX_PATIENCE, Ring, Spill, record_len};

impl Ring {
    /// Test hook: takes the lock, writes `bytes` as an item beyond the tail
    /// without committing it, runs `signal`, and hangs (to be killed).
    /// An item over half the ring is stalled after its memfd was sent.
    pub(crate) fn stall_mid_put(&self, bytes: &[u8], signal: impl FnOnce()) -> ! {
        let mut spill =
            (record_len(bytes.len()) > self.capacity / 2).then(|| Spill::write(bytes).expect("a spilled item"));
        let guard = self.lock().expect("the queue's lock");
        match &mut spill {
            Some(s) => {
                s.number(self.header().spill_seq.fetch_add(1, Ordering::Relaxed));
                self.place(&guard, self.state(), KIND_SPILL, &s.record).expect("room for a reference");
                assert!(s.send(self, &guard, self.state().count).expect("the spill socket"), "room in the socket");
            }
            None => drop(self.place(&guard, self.state(), KIND_ITEM, bytes)),
        }
        signal();
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    /// Test hook: takes the lock, copies the next (inline) item out
    /// without committing its removal, runs `signal`, and hangs.
    pub(crate) fn stall_mid_get(&self, signal: impl FnOnce()) -> ! {
        let guard = self.lock().expect("the queue's lock");
        let st = self.state();
        if st.count > 0 {
            let _ = self.take(&guard, st);
        }
        signal();
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    /// Test hook: spilled items so far (spill sequence numbers taken).
    pub(crate) fn spills(&self) -> u64 {
        self.header().spill_seq.load(Ordering::Relaxed)
    }

    /// Test hook: how many times a put waited for room in vain.
    pub(crate) fn room_given_up(&self) -> u64 {
        self.header().room_given_up.load(Ordering::Relaxed)
    }

    /// Test hook: sets how long a put facing a full ring waits for a get.
    pub(crate) fn set_patience(&self, patience: Duration) {
        let us = patience.min(MAX_PATIENCE).as_micros().max(1) as u64;
        self.header().patience_us.store(us, Ordering::Relaxed);
    }

    /// Test hook: the memfd behind the ring.
    pub(crate) fn memfd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Test hook: overwrites both state slots (head, tail, count,
    /// unfinished) with `words`, as a buggy or hostile peer could.
    pub(crate) fn scribble_state(&self, words: [u64; 4]) {
        for s in &self.header().states {
            s.head.store(words[0], Ordering::Relaxed);
            s.tail.store(words[1], Ordering::Relaxed);
            s.count.store(words[2], Ordering::Relaxed);
            s.unfinished.store(words[3], Ordering::Relaxed);
        }
    }
}
