//! Shared values and arrays between real processes (VA): a child's writes
//! are the parent's, arrays start zeroed, `update` is atomic where `get`
//! then `set` is not, and the lock is the one given. Every wait is bounded.

use std::time::Duration;

use multiproc::{
    Array, Barrier, Builder, Child, Connection, Event, Lock, Process, RawArray, RawValue, TryAcquireError, Value, pipe,
    process_task,
};
use serde::{Deserialize, Serialize};

const LONG: Duration = Duration::from_secs(60);

fn join_within<R: 'static>(child: Child<R>, what: &str) -> R {
    multiproc_tests::join_within(child, LONG, what)
}

/// A `#[repr(C)]` struct of plain data (Python's ctypes Structure).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
struct Point {
    x: f64,
    y: f64,
    tag: u32,
    _pad: u32,
}

#[process_task]
fn write_all(i: Value<i32>, d: RawValue<f64>, c: Value<u8>, p: Value<Point>, a: Array<u16>) {
    i.set(-7);
    d.set(1.5);
    c.set(b'x');
    p.set(Point { x: 1.0, y: -2.0, tag: 3, _pad: 0 });
    let mut held = a.lock().unwrap();
    held[1] = 10;
    held[3] = 30;
}

#[test]
fn a_childs_writes_are_seen_by_the_parent() {
    let (i, d, c) = (Value::new(0i32).unwrap(), RawValue::new(0.0f64).unwrap(), Value::new(0u8).unwrap());
    let p = Value::new(Point { x: 0.0, y: 0.0, tag: 0, _pad: 0 }).unwrap();
    let a = Array::<u16>::new(4).unwrap();
    let child = multiproc::spawn(write_all, (i.clone(), d.clone(), c.clone(), p.clone(), a.clone())).unwrap();
    join_within(child, "the writer");
    assert_eq!((i.get(), d.get(), c.get()), (-7, 1.5, b'x'));
    assert_eq!(p.get(), Point { x: 1.0, y: -2.0, tag: 3, _pad: 0 });
    assert_eq!(*a.lock().unwrap(), [0, 10, 0, 30]);
    assert_eq!(a.get_obj().to_vec(), [0, 10, 0, 30]);
}

#[test]
fn arrays_start_zeroed_every_time() {
    for round in 0..20 {
        let a = RawArray::<u64>::new(4096).unwrap();
        assert!(a.to_vec().iter().all(|&x| x == 0), "round {round}");
        // Dirty it before it is freed, so a reused page would show.
        // SAFETY: only this thread has the array.
        unsafe { a.as_mut_slice() }.fill(u64::MAX);
    }
}

#[test]
fn indexing_past_the_end_is_refused() {
    let a = RawArray::from_slice(&[1u8, 2, 3]).unwrap();
    assert_eq!(a.get(3), None);
    assert!(std::panic::catch_unwind(|| a.set(3, 0)).is_err());
    assert_eq!(a.len(), 3);
    assert!(RawArray::<u8>::new(0).unwrap().is_empty());
}

#[process_task]
fn add_locked(v: Value<u64>, n: u32) {
    for _ in 0..n {
        v.update(|x| x + 1).unwrap();
    }
}

#[test]
fn update_is_atomic_across_processes() {
    let v = Value::new(0u64).unwrap();
    let n = 20_000;
    let children: Vec<_> = (0..3).map(|_| multiproc::spawn(add_locked, (v.clone(), n)).unwrap()).collect();
    for child in children {
        join_within(child, "an adder");
    }
    assert_eq!(v.get(), 3 * u64::from(n));
}

#[process_task]
fn hold_given_lock(v: Value<u8, Lock>) -> bool {
    let _held = v.lock().unwrap();
    v.get_lock().locked()
}

#[test]
fn a_value_given_a_lock_uses_that_lock() {
    let lock = Lock::new().unwrap();
    let v = Value::with_lock(0u8, lock.clone()).unwrap();
    {
        let _held = v.lock().unwrap();
        assert!(lock.locked());
    }
    assert!(!lock.locked());
    let child = multiproc::spawn(hold_given_lock, (v.clone(),)).unwrap();
    assert!(join_within(child, "the child"));
    assert!(!lock.locked());
}

#[test]
fn a_shared_value_cannot_be_sent_down_a_pipe() {
    let (a, b): (Connection<RawValue<u8>>, Connection<RawValue<u8>>) = pipe().unwrap();
    let v = RawValue::new(1u8).unwrap();
    assert!(a.send(&v).is_err(), "a handle travels only as a task's argument");
    drop(b);
}

#[test]
fn a_locked_value_or_array_can_be_waited_for_with_a_timeout() {
    let v = Value::new(0u8).unwrap();
    let a = Array::<u8>::new(2).unwrap();
    let (held_v, held_a) = (v.lock().unwrap(), a.lock().unwrap());
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(matches!(v.lock_timeout(Duration::from_millis(10)), Err(TryAcquireError::WouldBlock)));
            assert!(matches!(a.lock_timeout(Duration::from_millis(10)), Err(TryAcquireError::WouldBlock)));
        });
    });
    drop((held_v, held_a));
    assert!(v.lock_timeout(LONG).is_ok() && a.lock_timeout(LONG).is_ok());
}

/// A process type whose fields are primitives (Python's `Process`
/// subclass holding a lock and a value).
#[derive(multiproc::Process, Serialize, Deserialize)]
struct Adder {
    lock: Lock,
    total: RawValue<u64>,
    start: Barrier,
    done: Event,
    times: u64,
}

impl Process for Adder {
    fn run(&mut self) {
        self.start.wait_timeout(LONG).unwrap();
        for _ in 0..self.times {
            let _held = self.lock.acquire().unwrap();
            self.total.set(self.total.get() + 1);
        }
        self.done.set();
    }
}

#[test]
fn primitives_can_be_fields_of_a_process_type() {
    let (lock, total, start) = (Lock::new().unwrap(), RawValue::new(0u64).unwrap(), Barrier::new(2).unwrap());
    let done: Vec<Event> = (0..2).map(|_| Event::new().unwrap()).collect();
    let children: Vec<_> = done
        .iter()
        .map(|d| {
            let adder = Adder {
                lock: lock.clone(),
                total: total.clone(),
                start: start.clone(),
                done: d.clone(),
                times: 10_000,
            };
            Builder::process(adder).start().unwrap()
        })
        .collect();
    for (child, d) in children.into_iter().zip(&done) {
        join_within(child, "an adder");
        assert!(d.is_set());
    }
    assert_eq!(total.get(), 20_000);
}

/// The pool's initializer keeps the primitives it was given for the
/// worker's tasks (Python's `Pool(initializer=init, initargs=(lock, v))`).
#[process_task]
fn keep_shared(lock: Lock, total: RawValue<u64>) {
    multiproc::pool::set_worker_state((lock, total));
}

#[process_task]
fn add_under_the_workers_lock(n: u64) -> u64 {
    multiproc::pool::with_worker_state(|(lock, total): &mut (Lock, RawValue<u64>)| {
        let _held = lock.acquire().unwrap();
        total.set(total.get() + n);
        n
    })
    .unwrap()
}

#[test]
fn primitives_reach_pool_workers_through_the_initializer_replacements_too() {
    let (lock, total) = (Lock::new().unwrap(), RawValue::new(0u64).unwrap());
    let pool = multiproc::pool::Pool::builder()
        .processes(2)
        .initializer(keep_shared, (lock.clone(), total.clone()))
        // Each worker is replaced after 5 tasks: the replacements get them too.
        .max_tasks_per_child(5)
        .build()
        .unwrap();
    let got = pool.map(add_under_the_workers_lock, 1..=100u64).unwrap();
    assert_eq!(got.iter().sum::<u64>(), 5050);
    assert_eq!(total.get(), 5050);
    assert!(!lock.locked());
    pool.close();
    pool.join().unwrap();
}
