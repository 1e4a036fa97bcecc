//! procspawn's pool, the Rust peer, on the pool workloads, in the same run
//! as ours (rows under the start method `procspawn`):
//!
//! - `pool_map_tiny` / `pool_map_tiny_chunk1`: procspawn has no map; the
//!   closest is one `spawn` per task on a warm `Pool(2)`, joined in
//!   windows of 256 (each handle holds descriptors). Over 10,000 tasks for both rows (it has no chunks:
//!   the two rows differ only in the task count), fewer samples.
//! - `pool_apply_async_latency`: one `spawn(3, square)` and its `join`.
//! - `pool_startup`: `Pool::new(2)` and the first result.

use std::time::Instant;

use super::{emit_as, micros};

const METHOD: &str = "procspawn";

fn square(x: u64) -> u64 {
    x * x
}

/// Runs procspawn's child side if this process is one of its workers;
/// call first thing in `main`.
pub(crate) fn init() {
    procspawn::init();
}

fn new_pool() -> procspawn::Pool {
    procspawn::Pool::new(2).expect("procspawn pool")
}

/// Tasks a procspawn map has submitted and not joined, at most: each
/// handle holds descriptors of its own, so 10,000 at once run out of them.
const IN_FLIGHT: u64 = 256;

/// One `spawn` per task of `0..n`, at most [`IN_FLIGHT`] ahead of the
/// `join`s.
fn map(pool: &procspawn::Pool, n: u64) -> Vec<u64> {
    let mut out = Vec::with_capacity(n as usize);
    for start in (0..n).step_by(IN_FLIGHT as usize) {
        let handles: Vec<_> = (start..n.min(start + IN_FLIGHT)).map(|x| pool.spawn(x, square)).collect();
        out.extend(handles.into_iter().map(|h| h.join().expect("procspawn task")));
    }
    out
}

pub(crate) fn run(quick: bool, which: &dyn Fn(&str) -> bool) {
    let pool = new_pool();
    let n = if quick { 1_000 } else { 10_000 };
    let reps = if quick { 1 } else { 3 };
    for name in ["pool_map_tiny", "pool_map_tiny_chunk1"] {
        if !which(name) {
            continue;
        }
        assert_eq!(map(&pool, 100), (0..100).map(|x| x * x).collect::<Vec<_>>(), "procspawn map: wrong values");
        let samples = (0..reps)
            .map(|_| {
                let t = Instant::now();
                let got = map(&pool, n);
                let rate = n as f64 / t.elapsed().as_secs_f64();
                assert_eq!(got.len(), n as usize, "procspawn map: wrong count");
                rate
            })
            .collect();
        emit_as(name, "procspawn", METHOD, "tasks/s", samples);
    }
    if which("pool_apply_async_latency") {
        let (warmup, n) = if quick { (100, 500) } else { (300, 3000) };
        let mut samples = Vec::new();
        for i in 0..warmup + n {
            let s = micros(|| assert_eq!(pool.spawn(3u64, square).join().expect("procspawn task"), 9));
            if i >= warmup {
                samples.push(s);
            }
        }
        emit_as("pool_apply_async_latency", "procspawn", METHOD, "us", samples);
    }
    drop(pool);
    if which("pool_startup") {
        let samples = (0..if quick { 3 } else { 10 })
            .map(|_| {
                let t = Instant::now();
                let pool = new_pool();
                assert_eq!(pool.spawn(3u64, square).join().expect("procspawn task"), 9);
                let took = t.elapsed().as_secs_f64() * 1e6;
                // Shut down after the clock stops, as for the others.
                drop(pool);
                took
            })
            .collect();
        emit_as("pool_startup", "procspawn", METHOD, "us", samples);
    }
}
