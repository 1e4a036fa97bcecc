//! Several processes add to one shared counter, first without a lock, then
//! with one. Without it, two processes read the same old value and one
//! increment is lost ("v.value += 1 is not atomic", as Python's docs warn);
//! with it, the count is exact.
//!
//! Python:
//!
//! ```python
//! def add(counter, lock, n):
//!     for _ in range(n):
//!         if lock is None:
//!             counter.value += 1
//!         else:
//!             with lock:
//!                 counter.value += 1
//!
//! if __name__ == '__main__':
//!     for lock in (None, multiprocessing.Lock()):
//!         counter = multiprocessing.Value('q', 0, lock=False)
//!         ps = [multiprocessing.Process(target=add, args=(counter, lock, 100000)) for _ in range(4)]
//!         for p in ps: p.start()
//!         for p in ps: p.join()
//!         print(counter.value)
//! ```
//!
//! Run: `cargo run -p multiproc-examples --bin shared_counter`

use multiproc::{Event, Lock, RawValue, process_task};

/// How many increments each process makes.
const N: u64 = 1_000_000;
/// How many processes add at once.
const PROCESSES: u64 = 4;

/// Adds `n` to `counter` one at a time, under `lock` if there is one.
#[process_task]
fn add(counter: RawValue<u64>, lock: Option<Lock>, go: Event, n: u64) {
    // Start together, so that the processes really overlap.
    go.wait();
    for _ in 0..n {
        let _held = lock.as_ref().map(|l| l.acquire().expect("no process dies here"));
        // A read, then a write: another process can come in between.
        counter.set(counter.get() + 1);
    }
}

fn run(lock: Option<Lock>) -> Result<u64, Box<dyn std::error::Error>> {
    let counter = RawValue::new(0u64)?;
    let go = Event::new()?;
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| multiproc::spawn(add, (counter.clone(), lock.clone(), go.clone(), N)))
        .collect::<Result<_, _>>()?;
    go.set();
    for child in children {
        child.join()?;
    }
    Ok(counter.get())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let want = N * PROCESSES;
    let unlocked = run(None)?;
    println!("without a lock: {unlocked} of {want} ({} increments lost)", want - unlocked);
    let locked = run(Some(Lock::new()?))?;
    println!("with a lock: {locked} of {want}");
    Ok(())
}
