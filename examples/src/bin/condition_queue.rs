//! A producer and a consumer in two processes share a small ring of slots
//! in shared memory, coordinated by one `Condition`: the producer waits
//! while the ring is full, the consumer while it is empty, and each
//! notifies the other.
//!
//! Python:
//!
//! ```python
//! def producer(cond, ring, head, tail, n):
//!     for i in range(1, n + 1):
//!         with cond:
//!             cond.wait_for(lambda: tail.value - head.value < len(ring))
//!             ring[tail.value % len(ring)] = i
//!             tail.value += 1
//!             cond.notify_all()
//!
//! def consumer(cond, ring, head, tail, n):
//!     total = 0
//!     for _ in range(n):
//!         with cond:
//!             cond.wait_for(lambda: tail.value > head.value)
//!             total += ring[head.value % len(ring)]
//!             head.value += 1
//!             cond.notify_all()
//!     print('consumed', n, 'items, total', total)
//! ```
//!
//! Run: `cargo run -p multiproc-examples --bin condition_queue`

use multiproc::{Condition, RawArray, RawValue, process_task};

/// How many items pass through the ring.
const ITEMS: u64 = 10_000;
/// How many slots the ring has.
const SLOTS: usize = 8;

/// The ring and its two counters (items put, items taken); only touched
/// with the condition's lock held.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Ring {
    cond: Condition,
    slots: RawArray<u64>,
    put: RawValue<u64>,
    taken: RawValue<u64>,
}

#[process_task]
fn producer(ring: Ring) {
    for item in 1..=ITEMS {
        let mut guard = ring.cond.acquire().expect("no process dies here");
        guard.wait_for(|| ring.put.get() - ring.taken.get() < SLOTS as u64).expect("no process dies here");
        let at = ring.put.get();
        ring.slots.set(at as usize % SLOTS, item);
        ring.put.set(at + 1);
        guard.notify_all();
    }
}

#[process_task]
fn consumer(ring: Ring) -> u64 {
    let mut total = 0;
    for _ in 0..ITEMS {
        let mut guard = ring.cond.acquire().expect("no process dies here");
        guard.wait_for(|| ring.put.get() > ring.taken.get()).expect("no process dies here");
        let at = ring.taken.get();
        total += ring.slots.get(at as usize % SLOTS).expect("in the ring");
        ring.taken.set(at + 1);
        guard.notify_all();
    }
    total
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ring = Ring {
        cond: Condition::new()?,
        slots: RawArray::new(SLOTS)?,
        put: RawValue::new(0)?,
        taken: RawValue::new(0)?,
    };
    let consuming = multiproc::spawn(consumer, (ring.clone(),))?;
    let producing = multiproc::spawn(producer, (ring.clone(),))?;
    producing.join()?;
    let total = consuming.join()?;
    println!("consumed {ITEMS} items, total {total}");
    println!("expected total {}", ITEMS * (ITEMS + 1) / 2);
    Ok(())
}
