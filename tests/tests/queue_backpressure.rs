//! Producers that outpace the consumer: while a consumer is taking items,
//! a put that finds the ring full waits for the room it makes rather than
//! spilling the item to a file of its own; when no consumer takes anything
//! for a while, puts spill (an unbounded queue still takes everything with
//! nobody reading), and the wait is paid once, not once per item.
//!
//! The patience (how long a put waits for a get before it spills) is set
//! long or short per test, so that no assertion depends on how fast the
//! machine is: a consumer that is getting never goes 30 seconds without a
//! get, however loaded the machine.
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use multiproc::{Builder, Child, Queue, process_task};

const LONG: Duration = Duration::from_secs(60);

fn join_within<R: 'static>(child: Child<R>, what: &str) -> R {
    multiproc_tests::join_within(child, LONG, what)
}

/// Puts `(me << 32) + i` for i in 0..n.
#[process_task]
fn put_tagged(q: Queue<u64>, me: u64, n: u64) {
    for i in 0..n {
        q.put((me << 32) + i).unwrap();
    }
}

/// Gets `n` items, checking each producer's order (`next[p]` is the next
/// item expected of producer `p`), doing `work` of busy work per item (a
/// consumer slower than its producers).
fn get_in_order(q: &Queue<u64>, next: &mut [u64], n: u64, work: Duration) {
    for _ in 0..n {
        let v = q.get_timeout(LONG).expect("an item");
        let (who, i) = ((v >> 32) as usize, v & 0xFFFF_FFFF);
        assert_eq!(next[who], i, "producer {who}'s items out of order");
        next[who] += 1;
        let until = Instant::now() + work;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}

#[test]
fn producers_outpacing_a_busy_consumer_wait_for_room_instead_of_spilling() {
    const PER: u64 = 3_000;
    // About 450 items fit in the ring (records of 8 bytes): the producers fill it at once.
    let q = Queue::<u64>::with_ring_size(0, 4096).unwrap();
    q.set_room_patience(Duration::from_secs(30));
    let producers: Vec<_> =
        (0..4).map(|me| Builder::new(put_tagged, (q.clone(), me, PER)).daemon(true).start().unwrap()).collect();
    get_in_order(&q, &mut [0; 4], 4 * PER, Duration::from_micros(20));
    for p in producers {
        join_within(p, "a producer");
    }
    assert!(q.empty());
    assert_eq!(q.spilled_items(), 0, "items spilled while the consumer was taking them");
}

#[test]
fn a_producer_facing_an_idle_consumer_spills_after_one_wait_not_one_per_item() {
    // 1,792 items fit (records of 8 bytes, an eighth of the ring kept for
    // spill records); the rest spill once the producer has waited for a get
    // that does not come, and their references fill part of that eighth.
    const N: u64 = 1_850;
    let q = Queue::<u64>::with_ring_size(0, 16 << 10).unwrap();
    q.set_room_patience(Duration::from_millis(200));
    join_within(Builder::new(put_tagged, (q.clone(), 0, N)).daemon(true).start().unwrap(), "the producer");
    assert!(q.spilled_items() > 0, "nothing spilled: the ring held more than expected");
    assert_eq!(q.room_waits_given_up(), 1, "the producer waited for room once per item");
    get_in_order(&q, &mut [0], N, Duration::ZERO);
    assert!(q.empty());
}

#[test]
fn a_get_resumes_the_wait_for_room_after_an_idle_spell() {
    // Idle, then busy again: the producer's patience comes back with the
    // first get, so that a consumer that resumes is waited for again.
    const N: u64 = 1_850;
    let q = Queue::<u64>::with_ring_size(0, 16 << 10).unwrap();
    q.set_room_patience(Duration::from_millis(200));
    join_within(Builder::new(put_tagged, (q.clone(), 0, N)).daemon(true).start().unwrap(), "the first producer");
    assert!(q.spilled_items() > 0, "nothing spilled: the ring held more than expected");
    let spilled = q.spilled_items();
    q.set_room_patience(Duration::from_secs(30));
    // One get ends the idle spell; the ring is full again at once.
    let mut next = [0, 0];
    get_in_order(&q, &mut next, 1, Duration::ZERO);
    let second = Builder::new(put_tagged, (q.clone(), 1, 2_000)).daemon(true).start().unwrap();
    get_in_order(&q, &mut next, N - 1 + 2_000, Duration::from_micros(20));
    join_within(second, "the second producer");
    assert_eq!(q.spilled_items(), spilled, "the second producer spilled while the consumer was taking items");
}
