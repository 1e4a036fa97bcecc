//! Runners that start at different times all leave together: each waits
//! at a `Barrier` until every one has arrived, then records when it left.
//! The last to arrive runs the barrier's action once.
//!
//! Python:
//!
//! ```python
//! def runner(barrier, i):
//!     time.sleep(random.random())
//!     print(f'runner {i} ready')
//!     barrier.wait()
//!     print(f'runner {i} go')
//!
//! if __name__ == '__main__':
//!     barrier = multiprocessing.Barrier(4, action=lambda: print('all ready'))
//!     ps = [multiprocessing.Process(target=runner, args=(barrier, i)) for i in range(4)]
//!     for p in ps: p.start()
//!     for p in ps: p.join()
//! ```
//!
//! Run: `cargo run -p multiproc-examples --bin barrier_start`

use std::time::Duration;

use multiproc::{Barrier, process_task};

/// How many runners there are.
const RUNNERS: u32 = 4;

/// Runs once per pass, in the last runner to arrive, before any leaves.
#[process_task]
fn all_ready() {
    println!("all ready");
}

#[process_task]
fn runner(barrier: Barrier, i: u32) -> u32 {
    // Arrive at different times (the tutorials' `time.sleep`, scaled for tests).
    let scale: f64 = std::env::var("EXAMPLE_TIME_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    std::thread::sleep(Duration::from_millis(u64::from(i) * 200).mul_f64(scale));
    println!("runner {i} ready");
    let index = barrier.wait().expect("nobody breaks this barrier");
    println!("runner {i} go");
    index
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let barrier = Barrier::with_action(RUNNERS, all_ready)?;
    let runners: Vec<_> =
        (0..RUNNERS).map(|i| multiproc::spawn(runner, (barrier.clone(), i))).collect::<Result<_, _>>()?;
    let mut indices = Vec::new();
    for r in runners {
        indices.push(r.join()?);
    }
    indices.sort();
    println!("indices {indices:?}");
    Ok(())
}
