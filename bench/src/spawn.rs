//! `spawn_many_N`, N = 1, 8, 32, 128: start N children running an empty
//! task, all before joining any, then join them all; one sample is the
//! time divided by N (µs per child). Floor `raw_spawn_many_N`: N re-execs
//! of this binary with `std::process::Command` (exiting at once), all
//! started before any is waited for.

use std::process::Command;

use crate::{FLOOR_ENV, interleaved, micros, noop};

/// The counts of the curve.
pub(crate) const COUNTS: [usize; 4] = [1, 8, 32, 128];

fn spawn_many(n: usize) {
    let children: Vec<_> = (0..n).map(|_| multiproc::spawn(noop, ()).expect("start")).collect();
    for c in children {
        let status = c.wait().expect("join");
        assert!(status.success(), "spawn_many_{n}: {status}");
    }
}

fn raw_spawn_many(n: usize) {
    let exe = std::env::current_exe().expect("current exe");
    let children: Vec<_> = (0..n).map(|_| Command::new(&exe).env(FLOOR_ENV, "1").spawn().expect("re-exec")).collect();
    for mut c in children {
        let status = c.wait().expect("wait");
        assert!(status.success(), "raw_spawn_many_{n}: {status}");
    }
}

/// The curve's point `n`: about as many children per point at every N.
pub(crate) fn point(n: usize, quick: bool) {
    let children = if quick { 128 } else { 1024 };
    let reps = (children / n).clamp(3, 200);
    raw_spawn_many(n);
    spawn_many(n);
    interleaved(
        reps,
        "us",
        (&format!("spawn_many_{n}"), &mut || micros(|| spawn_many(n)) / n as f64),
        (&format!("raw_spawn_many_{n}"), &mut || micros(|| raw_spawn_many(n)) / n as f64),
    );
}
