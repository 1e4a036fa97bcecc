//! Small helpers shared by the example programs in `src/bin/`.
//!
//! Each program in `src/bin/` mirrors a program from a Python
//! `multiprocessing` tutorial. The tutorials sleep for whole seconds and
//! some loop forever; these helpers let the test suite run the same programs
//! quickly and finitely:
//!
//! - [`secs`] scales every sleep by `EXAMPLE_TIME_SCALE` (default `1.0`);
//! - [`rounds`] bounds the tutorials' `while True:` loops by `EXAMPLE_ROUNDS`;
//! - [`randint`] replaces `random.randint` without pulling in a crate.
//!
//! Children inherit the environment, so a child reads the same settings as
//! the main process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `s` seconds, multiplied by the environment variable
/// `EXAMPLE_TIME_SCALE` (default `1.0`; a value that is not a finite,
/// non-negative number counts as `1.0`).
///
/// Python's `time.sleep(3)` becomes `std::thread::sleep(secs(3.0))`.
///
/// ```
/// // Without EXAMPLE_TIME_SCALE in the environment:
/// # if std::env::var_os("EXAMPLE_TIME_SCALE").is_none() {
/// assert_eq!(multiproc_examples::secs(1.5), std::time::Duration::from_millis(1500));
/// # }
/// ```
pub fn secs(s: f64) -> Duration {
    let scale = std::env::var("EXAMPLE_TIME_SCALE")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .unwrap_or(1.0);
    Duration::from_secs_f64((s * scale).max(0.0))
}

/// How many times to go round a loop that the Python tutorial runs forever
/// (`while True:`): the environment variable `EXAMPLE_ROUNDS` if it is a
/// number, `default` otherwise.
pub fn rounds(default: u32) -> u32 {
    std::env::var("EXAMPLE_ROUNDS").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// A pseudo-random integer in `lo..=hi`, like Python's
/// `random.randint(lo, hi)` (so `randint(1, 6)` is a die roll).
///
/// A xorshift generator seeded from the pid and the clock: good enough to
/// vary sleep times, not for anything else. `randint(lo, hi)` with
/// `hi < lo` returns `lo`.
pub fn randint(lo: u64, hi: u64) -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        x = (nanos ^ (u64::from(std::process::id()) << 32)) | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    if hi <= lo {
        return lo;
    }
    lo + x % (hi - lo + 1)
}
