//! The shared-state workloads, each beside a floor measured in the same
//! run:
//!
//! - `lock_contention`: 2 running children each do 100,000 × (acquire one
//!   shared [`Lock`]; increment a [`RawValue<i64>`]; release), timed from
//!   the go command until both report back; ops/s. Floor
//!   `raw_atomic_increment`: an uncontended atomic increment loop of the
//!   same 200,000 operations in one process.
//! - `shared_array_sum`: 2 running children attached to one
//!   [`RawArray<f64>`] of 10,000,000 elements (`a[i] = i`) each sum one
//!   half, timed from go until both sums are back; GB/s of data read.
//!   Floor `raw_array_sum`: one process summing the same memory the same
//!   way (in eight lanes: exact here, every partial sum is an integer
//!   below 2^53).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use multiproc::{Connection, Lock, RawArray, RawValue, process_task};

use crate::interleaved;

const PER_CHILD: u64 = 100_000;
const ELEMENTS: usize = 10_000_000;

/// On each command `n`, does `n` locked increments and answers `n`; ends on 0.
#[process_task]
fn lock_worker(lock: Lock, value: RawValue<i64>, cmd: Connection<u64>) {
    while let Ok(n) = cmd.recv() {
        if n == 0 {
            return;
        }
        for _ in 0..n {
            let _held = lock.acquire().expect("no worker dies in the benchmark");
            value.set(value.get() + 1);
        }
        cmd.send(&n).unwrap();
    }
}

pub(crate) fn lock_contention(quick: bool) {
    let lock = Lock::new().expect("lock");
    let value = RawValue::new(0i64).expect("value");
    let mut conns = Vec::new();
    let mut children = Vec::new();
    for _ in 0..2 {
        let (mine, theirs) = multiproc::pipe::<u64>().expect("pipe");
        children.push(multiproc::spawn(lock_worker, (lock.clone(), value.clone(), theirs)).expect("start"));
        conns.push(mine);
    }
    let one_run = |n: u64| {
        value.set(0);
        let t = Instant::now();
        for c in &conns {
            c.send(&n).unwrap();
        }
        for c in &conns {
            assert_eq!(c.recv().unwrap(), n, "lock_contention: bad ack");
        }
        let dt = t.elapsed().as_secs_f64();
        assert_eq!(value.get(), 2 * n as i64, "lock_contention: lost an increment");
        dt
    };
    one_run(2_000); // warm-up
    let counter = AtomicU64::new(0);
    let floor = || {
        let t = Instant::now();
        for _ in 0..2 * PER_CHILD {
            std::hint::black_box(&counter).fetch_add(1, Ordering::AcqRel);
        }
        (2 * PER_CHILD) as f64 / t.elapsed().as_secs_f64()
    };
    interleaved(
        if quick { 3 } else { 15 },
        "ops/s",
        ("lock_contention", &mut || (2 * PER_CHILD) as f64 / one_run(PER_CHILD)),
        ("raw_atomic_increment", &mut { floor }),
    );
    for c in &conns {
        c.send(&0).unwrap();
    }
    for child in children {
        child.join().expect("lock worker");
    }
}

/// Sums `array[lo..hi]` on each command (1.0), answering the sum; ends on 0.0.
#[process_task]
fn sum_worker(array: RawArray<f64>, lo: u64, hi: u64, cmd: Connection<f64>) {
    while let Ok(go) = cmd.recv() {
        if go == 0.0 {
            return;
        }
        cmd.send(&sum(&array, lo as usize, hi as usize)).unwrap();
    }
}

/// Sums `array[lo..hi]` in eight lanes, so that the adds do not wait on
/// each other and the figure is the memory's, not one add's latency. The
/// result is exact whatever the order: every partial sum here is an
/// integer below 2^53.
fn sum(array: &RawArray<f64>, lo: usize, hi: usize) -> f64 {
    // SAFETY: the parent filled the array before starting the workers and
    // does not write it again; nothing else does.
    let all = unsafe { array.as_slice() };
    let chunks = all[lo..hi].chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().sum();
    let mut lanes = [0.0f64; 8];
    for chunk in chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *lane += x;
        }
    }
    lanes.iter().sum::<f64>() + rest
}

pub(crate) fn shared_array_sum(quick: bool) {
    let array = RawArray::<f64>::new(ELEMENTS).expect("array");
    // SAFETY: nobody else has the array yet.
    for (i, x) in unsafe { array.as_mut_slice() }.iter_mut().enumerate() {
        *x = i as f64;
    }
    let half = ELEMENTS / 2;
    let n = ELEMENTS as u64;
    // Integers below 2^53: every partial sum is exact.
    let want = [(half * (half - 1) / 2) as f64, ((n * (n - 1) - (half * (half - 1)) as u64) / 2) as f64];
    let mut conns = Vec::new();
    let mut children = Vec::new();
    for (lo, hi) in [(0, half), (half, ELEMENTS)] {
        let (mine, theirs) = multiproc::pipe::<f64>().expect("pipe");
        children.push(multiproc::spawn(sum_worker, (array.clone(), lo as u64, hi as u64, theirs)).expect("start"));
        conns.push(mine);
    }
    let bytes = (ELEMENTS * 8) as f64;
    let mut one_run = || {
        let t = Instant::now();
        for c in &conns {
            c.send(&1.0).unwrap();
        }
        let got: Vec<f64> = conns.iter().map(|c| c.recv().unwrap()).collect();
        let dt = t.elapsed().as_secs_f64();
        assert_eq!(got, want, "shared_array_sum: wrong partial sums");
        assert_eq!(got[0] + got[1], (n * (n - 1) / 2) as f64, "shared_array_sum: wrong total");
        bytes / dt / 1e9
    };
    one_run(); // warm-up
    let mut floor = || {
        let t = Instant::now();
        let total = std::hint::black_box(sum(&array, 0, ELEMENTS));
        let dt = t.elapsed().as_secs_f64();
        assert_eq!(total, (n * (n - 1) / 2) as f64, "raw_array_sum: wrong total");
        bytes / dt / 1e9
    };
    interleaved(if quick { 2 } else { 7 }, "GB/s", ("shared_array_sum", &mut one_run), ("raw_array_sum", &mut floor));
    for c in &conns {
        c.send(&0.0).unwrap();
    }
    for child in children {
        child.join().expect("sum worker");
    }
}
