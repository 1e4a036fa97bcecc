//! Events, conditions and barriers between real processes: Python's rules
//! (EV, CV, BA), and parties that die, which break a barrier instead of
//! leaving the others waiting. Every wait is bounded.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use multiproc::{Barrier, BrokenBarrier, Child, Condition, Event, Lock, RawArray, RawValue, Value, process_task};
use multiproc_tests::eventually;

const LONG: Duration = Duration::from_secs(60);

fn join_within<R: 'static>(child: Child<R>, what: &str) -> R {
    multiproc_tests::join_within(child, LONG, what)
}

// ----------------------------------------------------------------- Event

#[process_task]
fn set_later(go: Event, seen: Event) {
    assert!(seen.wait_timeout(LONG));
    go.set();
}

#[test]
fn an_event_starts_clear_times_out_and_is_set_from_another_process() {
    let (go, seen) = (Event::new().unwrap(), Event::new().unwrap());
    assert!(!go.is_set());
    assert!(!go.wait_timeout(Duration::ZERO));
    assert!(!go.wait_timeout(Duration::from_millis(20)));
    let child = multiproc::spawn(set_later, (go.clone(), seen.clone())).unwrap();
    seen.set();
    assert!(go.wait_timeout(LONG));
    join_within(child, "the setter");
    go.wait(); // set: returns at once
    go.clear();
    assert!(!go.is_set());
}

// ------------------------------------------------------------- Condition

#[process_task]
fn wait_to_be_woken(cond: Condition, waiting: Value<u32>, woken: Value<u32>) {
    let mut guard = cond.acquire().unwrap();
    waiting.update(|n| n + 1).unwrap();
    assert!(guard.wait_timeout(LONG).unwrap(), "never notified");
    woken.update(|n| n + 1).unwrap();
}

#[test]
fn notify_n_wakes_exactly_n_of_the_waiting_processes() {
    let cond = Condition::new().unwrap();
    let (waiting, woken) = (Value::new(0u32).unwrap(), Value::new(0u32).unwrap());
    let children: Vec<_> = (0..6)
        .map(|_| multiproc::spawn(wait_to_be_woken, (cond.clone(), waiting.clone(), woken.clone())).unwrap())
        .collect();
    // Each counts itself under the lock, then `wait` releases it: once the
    // count is 6 and the lock is ours, all six sleep in `wait`.
    assert!(eventually(LONG, || waiting.get() == 6));
    let settle = |want: u32| {
        assert!(eventually(LONG, || woken.get() == want), "woken {}, want {want}", woken.get());
        // Nobody more wakes: a later notify would find them still waiting.
    };
    cond.acquire().unwrap().notify(2);
    settle(2);
    cond.acquire().unwrap().notify(4);
    settle(6);
    cond.acquire().unwrap().notify(3); // nobody left: nothing happens
    for child in children {
        join_within(child, "a waiter");
    }
    assert_eq!(woken.get(), 6);
}

#[test]
fn a_waiter_that_timed_out_leaves_no_notification_behind() {
    let cond = Condition::with_lock(Lock::new().unwrap()).unwrap();
    let mut guard = cond.acquire().unwrap();
    assert!(!guard.wait_timeout(Duration::from_millis(20)).unwrap());
    guard.notify(1); // nobody waits
    // Had the notify been kept for a waiter, this one would take it.
    assert!(!guard.wait_timeout(Duration::from_millis(20)).unwrap());
}

#[process_task]
fn wait_for_one(cond: Condition, waiting: Value<u32>) -> bool {
    let mut guard = cond.acquire().unwrap();
    waiting.set(1);
    guard.wait_timeout(LONG).unwrap()
}

#[test]
fn a_notification_goes_to_a_waiter_that_was_there_not_to_the_notifier_waiting_next() {
    let cond = Condition::new().unwrap();
    let waiting = Value::new(0u32).unwrap();
    let child = multiproc::spawn(wait_for_one, (cond.clone(), waiting.clone())).unwrap();
    assert!(eventually(LONG, || waiting.get() == 1));
    let mut guard = cond.acquire().unwrap();
    guard.notify_one();
    // The notifier waits next, before the child could run: the
    // notification is the child's, so this wait times out.
    assert!(!guard.wait_timeout(Duration::from_millis(20)).unwrap());
    drop(guard);
    assert!(join_within(child, "the waiter"), "the waiter was never notified");
}

#[process_task]
fn wait_then_be_killed(cond: Condition, waiting: Value<u32>) {
    let mut guard = cond.acquire().unwrap();
    waiting.set(1);
    let _ = guard.wait_timeout(LONG * 10);
}

#[test]
fn a_notification_skips_a_waiter_that_was_killed_while_waiting() {
    let cond = Condition::new().unwrap();
    let waiting = Value::new(0u32).unwrap();
    let doomed = multiproc::spawn(wait_then_be_killed, (cond.clone(), waiting.clone())).unwrap();
    // Its wait began once the flag is set and the lock is free again.
    assert!(eventually(LONG, || waiting.get() == 1));
    drop(cond.acquire().unwrap());
    doomed.kill().unwrap();
    assert!(doomed.join_timeout(LONG).unwrap().is_some());
    std::thread::scope(|s| {
        let live = s.spawn(|| {
            let mut guard = cond.acquire().unwrap();
            waiting.set(2);
            guard.wait_timeout(LONG).unwrap()
        });
        assert!(eventually(LONG, || waiting.get() == 2));
        // The dead waiter came first; the notification is the live one's.
        cond.acquire().unwrap().notify_one();
        assert!(live.join().unwrap(), "the live waiter was never notified");
    });
}

#[process_task]
fn count_to(cond: Condition, n: Value<u32>, to: u32) {
    for _ in 0..to {
        let guard = cond.acquire().unwrap();
        n.update(|x| x + 1).unwrap();
        guard.notify_all();
    }
}

#[test]
fn wait_for_sees_a_value_another_process_changes() {
    let cond = Condition::new().unwrap();
    let n = Value::new(0u32).unwrap();
    let mut guard = cond.acquire().unwrap();
    let child = multiproc::spawn(count_to, (cond.clone(), n.clone(), 50)).unwrap();
    assert!(guard.wait_for_timeout(LONG, || n.get() == 50).unwrap());
    assert!(!guard.wait_for_timeout(Duration::from_millis(10), || n.get() == 51).unwrap());
    drop(guard);
    join_within(child, "the counter");
}

#[process_task]
fn take_the_lock(cond: Condition) -> bool {
    cond.lock().acquire_timeout(LONG).is_ok()
}

#[test]
fn wait_releases_a_recursive_hold_entirely_and_takes_it_back() {
    let cond = Condition::new().unwrap();
    let outer = cond.lock().acquire().unwrap();
    let mut guard = cond.acquire().unwrap();
    assert_eq!(cond.lock().owner().unwrap().count, 2);
    let child = multiproc::spawn(take_the_lock, (cond.clone(),)).unwrap();
    // The child can only take the lock while we wait.
    let deadline = Instant::now() + LONG;
    while child.join_timeout(Duration::ZERO).unwrap().is_none() && Instant::now() < deadline {
        guard.wait_timeout(Duration::from_millis(5)).unwrap();
    }
    assert!(join_within(child, "the child"));
    assert_eq!(cond.lock().owner().unwrap().count, 2);
    drop(guard);
    drop(outer);
    assert!(!cond.lock().locked());
}

#[process_task]
fn sleep_holding_nothing(cond: Condition, started: Event) {
    let _ = cond;
    started.set();
    std::thread::sleep(LONG * 10);
}

#[test]
fn a_waiter_whose_notifier_was_killed_wakes_at_its_timeout() {
    let (cond, started) = (Condition::new().unwrap(), Event::new().unwrap());
    let notifier = multiproc::spawn(sleep_holding_nothing, (cond.clone(), started.clone())).unwrap();
    assert!(started.wait_timeout(LONG));
    notifier.kill().unwrap();
    let mut guard = cond.acquire().unwrap();
    assert!(!guard.wait_timeout(Duration::from_millis(50)).unwrap());
    assert!(notifier.join_timeout(LONG).unwrap().is_some());
}

// --------------------------------------------------------------- Barrier

#[process_task]
fn passes(barrier: Barrier, rounds: u32, me: usize, progress: RawArray<u32>) -> u32 {
    let mut zeros = 0;
    for round in 1..=rounds {
        if barrier.wait_timeout(LONG).expect("a pass") == 0 {
            zeros += 1;
        }
        progress.set(me, round);
        // Lockstep: whoever passed this round, all arrived at it, so each
        // has finished the one before; and none can be two passes ahead.
        for other in progress.to_vec() {
            assert!(other + 1 >= round && other <= round + 1, "round {round}: a party at {other}");
        }
    }
    zeros
}

#[test]
fn five_processes_pass_a_barrier_a_thousand_times_with_one_zero_each_pass() {
    let barrier = Barrier::new(5).unwrap();
    assert_eq!(barrier.parties(), 5);
    let progress = RawArray::<u32>::new(5).unwrap();
    let rounds = 1000;
    let children: Vec<_> =
        (0..5).map(|me| multiproc::spawn(passes, (barrier.clone(), rounds, me, progress.clone())).unwrap()).collect();
    let zeros: u32 = children.into_iter().map(|c| join_within(c, "a party")).sum();
    assert_eq!(zeros, rounds);
    assert_eq!(progress.to_vec(), [rounds; 5]);
    assert!(!barrier.broken());
}

/// The counter the barrier's action bumps, in whichever process runs it.
static ACTIONS: OnceLock<RawValue<u32>> = OnceLock::new();

#[process_task]
fn count_action() {
    let n = ACTIONS.get().expect("set before the barrier is used");
    n.set(n.get() + 1);
}

#[process_task]
fn pass_with_action(barrier: Barrier, actions: RawValue<u32>, rounds: u32) {
    let _ = ACTIONS.set(actions);
    for _ in 0..rounds {
        barrier.wait_timeout(LONG).unwrap();
    }
}

#[test]
fn the_action_runs_once_per_pass_in_some_party() {
    let actions = RawValue::new(0u32).unwrap();
    let _ = ACTIONS.set(actions.clone());
    let barrier = Barrier::with_action(3, count_action).unwrap();
    let children: Vec<_> =
        (0..2).map(|_| multiproc::spawn(pass_with_action, (barrier.clone(), actions.clone(), 20)).unwrap()).collect();
    for _ in 0..20 {
        barrier.wait_timeout(LONG).unwrap();
    }
    for child in children {
        join_within(child, "a party");
    }
    assert_eq!(actions.get(), 20);
}

#[test]
fn an_action_that_is_not_a_task_is_refused() {
    fn not_a_task() {}
    assert!(Barrier::with_action(2, not_a_task).is_err());
}

#[process_task]
fn wait_once(barrier: Barrier) -> Result<u32, String> {
    barrier.wait_timeout(LONG).map_err(|e| e.to_string())
}

#[test]
fn abort_breaks_current_and_later_waiters_until_reset() {
    let barrier = Barrier::new(3).unwrap();
    let child = multiproc::spawn(wait_once, (barrier.clone(),)).unwrap();
    assert!(eventually(LONG, || barrier.n_waiting() == 1));
    barrier.abort();
    assert!(join_within(child, "the waiter").is_err());
    assert!(barrier.broken());
    assert_eq!(barrier.wait(), Err(BrokenBarrier));
    barrier.reset();
    assert!(!barrier.broken());
    let one = Barrier::new(1).unwrap();
    for _ in 0..3 {
        assert_eq!(one.wait(), Ok(0));
    }
}

#[test]
fn reset_releases_the_waiters_with_an_error_and_the_barrier_works_again() {
    let barrier = Barrier::new(2).unwrap();
    let child = multiproc::spawn(wait_once, (barrier.clone(),)).unwrap();
    assert!(eventually(LONG, || barrier.n_waiting() == 1));
    barrier.reset();
    assert!(join_within(child, "the waiter").is_err());
    let child = multiproc::spawn(wait_once, (barrier.clone(),)).unwrap();
    let mine = barrier.wait_timeout(LONG).unwrap();
    let theirs = join_within(child, "the second waiter").unwrap();
    assert_eq!(mine + theirs, 1);
}

#[test]
fn a_timeout_breaks_the_barrier_for_every_party_and_latecomers() {
    let barrier = Barrier::with_timeout(3, Duration::from_millis(50)).unwrap();
    let child = multiproc::spawn(wait_once, (barrier.clone(),)).unwrap();
    // The child waits LONG itself; our default timeout breaks it for both.
    assert!(eventually(LONG, || barrier.n_waiting() == 1));
    assert_eq!(barrier.wait(), Err(BrokenBarrier));
    assert!(join_within(child, "the waiter").is_err());
    assert_eq!(barrier.wait_timeout(LONG), Err(BrokenBarrier), "a latecomer");
}

#[process_task]
fn hold_barrier_forever(barrier: Barrier, started: Event) {
    let _keep = barrier;
    started.set();
    std::thread::sleep(LONG * 10);
}

#[test]
fn a_party_that_dies_breaks_the_barrier_instead_of_a_hang() {
    let barrier = Barrier::new(3).unwrap();
    let started = Event::new().unwrap();
    let doomed = multiproc::spawn(hold_barrier_forever, (barrier.clone(), started.clone())).unwrap();
    let waiter = multiproc::spawn(wait_once, (barrier.clone(),)).unwrap();
    assert!(started.wait_timeout(LONG));
    assert!(eventually(LONG, || barrier.n_waiting() == 1));
    doomed.kill().unwrap();
    assert!(doomed.join_timeout(LONG).unwrap().is_some());
    let t = Instant::now();
    assert_eq!(barrier.wait_timeout(LONG), Err(BrokenBarrier));
    assert!(t.elapsed() < LONG, "broken by the timeout, not by the death");
    assert!(join_within(waiter, "the other party").is_err());
}

#[process_task]
fn leave_early(barrier: Barrier) {
    drop(barrier);
}

#[test]
fn a_process_that_let_go_of_the_barrier_and_exited_breaks_nothing() {
    let barrier = Barrier::new(2).unwrap();
    join_within(multiproc::spawn(leave_early, (barrier.clone(),)).unwrap(), "the child");
    let waiter = multiproc::spawn(wait_once, (barrier.clone(),)).unwrap();
    assert!(eventually(LONG, || barrier.n_waiting() == 1));
    // Long enough for the waiter to look at the holders several times.
    std::thread::sleep(Duration::from_millis(100));
    assert!(!barrier.broken());
    barrier.wait_timeout(LONG).unwrap();
    join_within(waiter, "the waiter").unwrap();
}
