//! Locks and semaphores between real processes: Python's rules (LK, SE),
//! and a holder killed at random points, which hands the lock on with
//! `OwnerDied` instead of a hang. Every wait is bounded.

use std::time::{Duration, Instant};

use multiproc::{
    BoundedSemaphore, Child, Event, Lock, OwnerDied, RLock, ReleaseError, Semaphore, TryAcquireError, process_task,
};
use multiproc_tests::eventually;

const LONG: Duration = Duration::from_secs(60);

fn join_within<R: 'static>(child: Child<R>, what: &str) -> R {
    multiproc_tests::join_within(child, LONG, what)
}

/// Kills a child and reaps it.
fn kill(child: Child<()>) {
    child.kill().unwrap();
    assert!(child.join_timeout(LONG).unwrap().is_some(), "a killed child was not reaped");
}

// ------------------------------------------------------------------ Lock

#[test]
fn a_lock_is_not_recursive_and_a_free_one_cannot_be_released() {
    let lock = Lock::new().unwrap();
    let held = lock.acquire().unwrap();
    // Even the holder cannot take it twice (LK-01).
    assert!(matches!(lock.try_acquire(), Err(TryAcquireError::WouldBlock)));
    assert!(matches!(lock.acquire_timeout(Duration::from_millis(20)), Err(TryAcquireError::WouldBlock)));
    let owner = lock.owner().unwrap();
    assert!(owner.this_process && owner.this_thread);
    drop(held);
    assert!(!lock.locked());
    assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
}

#[test]
fn another_thread_may_release_a_lock() {
    let lock = Lock::new().unwrap();
    lock.acquire().unwrap().forget();
    std::thread::scope(|s| {
        s.spawn(|| lock.release().unwrap());
    });
    assert!(!lock.locked());
}

#[process_task]
fn hold_until_told(lock: Lock, held: Event, go: Event) -> bool {
    lock.acquire().unwrap().forget();
    held.set();
    assert!(go.wait_timeout(LONG));
    // The parent released it: it is free for us again.
    lock.try_acquire().is_ok()
}

#[test]
fn a_lock_a_child_holds_is_locked_in_the_parent_and_the_parent_may_release_it() {
    let (lock, held, go) = (Lock::new().unwrap(), Event::new().unwrap(), Event::new().unwrap());
    let child = multiproc::spawn(hold_until_told, (lock.clone(), held.clone(), go.clone())).unwrap();
    assert!(held.wait_timeout(LONG));
    assert!(lock.locked());
    let owner = lock.owner().unwrap();
    assert_eq!(owner.pid, child.pid());
    assert!(!owner.this_process);
    assert!(matches!(lock.try_acquire(), Err(TryAcquireError::WouldBlock)));
    lock.release().unwrap();
    go.set();
    assert!(join_within(child, "the holder"));
}

#[process_task]
fn hold_forever(lock: Lock, held: Event) {
    lock.acquire().unwrap().forget();
    held.set();
    std::thread::sleep(LONG * 10);
}

#[test]
fn a_holder_killed_holding_the_lock_hands_it_on_with_owner_died() {
    let (lock, held) = (Lock::new().unwrap(), Event::new().unwrap());
    let child = multiproc::spawn(hold_forever, (lock.clone(), held.clone())).unwrap();
    assert!(held.wait_timeout(LONG));
    let pid = child.pid();
    kill(child);
    // A plain acquire would wait forever in Python; here it returns.
    let t = Instant::now();
    let died = match lock.acquire_timeout(LONG) {
        Err(TryAcquireError::OwnerDied(d)) => d,
        other => panic!("expected OwnerDied, got {:?}", other.map(|_| ())),
    };
    assert!(t.elapsed() < LONG);
    assert_eq!(died.pid(), pid);
    drop(died.into_guard());
    // Usable from here on, and clean.
    assert!(lock.try_acquire().is_ok());
}

#[test]
fn a_try_acquire_reports_a_dead_holder_at_once() {
    let (lock, held) = (Lock::new().unwrap(), Event::new().unwrap());
    let child = multiproc::spawn(hold_forever, (lock.clone(), held.clone())).unwrap();
    assert!(held.wait_timeout(LONG));
    kill(child);
    assert!(matches!(lock.try_acquire(), Err(TryAcquireError::OwnerDied(_))));
}

#[process_task]
fn hammer(lock: Lock, rlock: RLock, started: Event) {
    let mut n = 0u64;
    loop {
        let a = lock.acquire().unwrap_or_else(OwnerDied::into_guard);
        let b = rlock.acquire().unwrap_or_else(OwnerDied::into_guard);
        let c = rlock.acquire().unwrap_or_else(OwnerDied::into_guard);
        n = n.wrapping_add(1);
        if n == 100 {
            started.set();
        }
        drop((c, b, a));
    }
}

/// A small pseudo-random generator: the test needs spread, not quality.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn a_hundred_holders_killed_at_random_points_never_leave_a_lock_stuck() {
    let (lock, rlock) = (Lock::new().unwrap(), RLock::new().unwrap());
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut rng = Lcg(seed);
    let mut died = 0;
    for round in 0..100 {
        let started = Event::new().unwrap();
        let child = multiproc::spawn(hammer, (lock.clone(), rlock.clone(), started.clone())).unwrap();
        assert!(started.wait_timeout(LONG), "round {round}: the child never got going");
        std::thread::sleep(Duration::from_micros(rng.below(2000)));
        kill(child);
        // Whatever the child was doing, both locks come back, promptly.
        for name in ["Lock", "RLock"] {
            let outcome = if name == "Lock" {
                lock.acquire_timeout(LONG).map(drop).map_err(|e| matches!(e, TryAcquireError::OwnerDied(_)))
            } else {
                rlock.acquire_timeout(LONG).map(drop).map_err(|e| matches!(e, TryAcquireError::OwnerDied(_)))
            };
            match outcome {
                Ok(()) => {}
                Err(true) => died += 1,
                Err(false) => panic!("round {round}: the {name} stayed held by a dead process (seed {seed})"),
            }
        }
        assert!(!lock.locked() && !rlock.locked(), "round {round}");
    }
    // Most kills land inside the loop's critical sections.
    assert!(died > 0, "no kill ever landed while a lock was held (seed {seed})");
}

// ----------------------------------------------------------------- RLock

#[test]
fn an_rlock_is_taken_again_by_its_holder_and_released_as_often() {
    let lock = RLock::new().unwrap();
    let a = lock.acquire().unwrap();
    let b = lock.try_acquire().unwrap();
    let c = lock.acquire_timeout(Duration::ZERO).unwrap();
    assert_eq!(lock.owner().unwrap().count, 3);
    drop(c);
    drop(b);
    assert!(lock.locked());
    drop(a);
    assert!(!lock.locked());
    assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
}

#[test]
fn another_thread_can_neither_take_nor_release_a_held_rlock() {
    let lock = RLock::new().unwrap();
    lock.acquire().unwrap().forget();
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(matches!(lock.try_acquire(), Err(TryAcquireError::WouldBlock)));
            assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
            assert!(!lock.owner().unwrap().this_thread);
        });
    });
    lock.release().unwrap();
    assert!(!lock.locked());
}

#[process_task]
fn release_not_mine(lock: RLock) -> (bool, bool) {
    (lock.release() == Err(ReleaseError::NotOwner), lock.locked())
}

#[test]
fn a_child_cannot_release_the_parents_rlock_but_sees_it_locked() {
    let lock = RLock::new().unwrap();
    let _held = lock.acquire().unwrap();
    let child = multiproc::spawn(release_not_mine, (lock.clone(),)).unwrap();
    assert_eq!(join_within(child, "the child"), (true, true));
    assert_eq!(lock.owner().unwrap().count, 1);
}

#[process_task]
fn hold_rlock_forever(lock: RLock, held: Event) {
    lock.acquire().unwrap().forget();
    lock.acquire().unwrap().forget();
    held.set();
    std::thread::sleep(LONG * 10);
}

#[test]
fn an_rlock_whose_holder_died_is_handed_on_at_depth_one() {
    let (lock, held) = (RLock::new().unwrap(), Event::new().unwrap());
    let child = multiproc::spawn(hold_rlock_forever, (lock.clone(), held.clone())).unwrap();
    assert!(held.wait_timeout(LONG));
    assert_eq!(lock.owner().unwrap().count, 2);
    kill(child);
    let guard = lock.acquire().map(|_| ()).unwrap_err().into_guard();
    assert_eq!(lock.owner().unwrap().count, 1);
    drop(guard);
    assert!(!lock.locked());
}

// ------------------------------------------------------------- Semaphore

#[test]
fn a_semaphore_counts_without_a_bound() {
    let sem = Semaphore::new(2).unwrap();
    let a = sem.acquire();
    let b = sem.try_acquire().unwrap();
    assert!(sem.try_acquire().is_none());
    assert!(sem.acquire_timeout(Duration::from_millis(20)).is_none());
    drop((a, b));
    assert_eq!(sem.value(), 2);
    sem.release().unwrap();
    sem.release().unwrap();
    assert_eq!(sem.value(), 4);
}

#[test]
fn a_bounded_semaphore_refuses_a_release_past_its_value() {
    let sem = BoundedSemaphore::new(2).unwrap();
    assert_eq!(sem.release(), Err(ReleaseError::TooManyReleases));
    sem.acquire().forget();
    sem.release().unwrap();
    assert_eq!(sem.release(), Err(ReleaseError::TooManyReleases));
    assert_eq!(sem.value(), 2);
    let zero = BoundedSemaphore::new(0).unwrap();
    assert_eq!(zero.release(), Err(ReleaseError::TooManyReleases));
}

#[process_task]
fn take_then_give(sem: Semaphore, bounded: BoundedSemaphore) -> bool {
    // Waits for the parent's release.
    let got = sem.acquire_timeout(LONG).map(|g| g.forget()).is_some();
    got && bounded.release() == Err(ReleaseError::TooManyReleases)
}

#[test]
fn a_release_in_one_process_wakes_an_acquire_in_another() {
    let sem = Semaphore::new(0).unwrap();
    let bounded = BoundedSemaphore::new(1).unwrap();
    let child = multiproc::spawn(take_then_give, (sem.clone(), bounded.clone())).unwrap();
    // Until the child sleeps in acquire, its value stays 0; release anyway.
    sem.release().unwrap();
    assert!(join_within(child, "the child"));
    assert!(eventually(LONG, || sem.value() == 0));
}
