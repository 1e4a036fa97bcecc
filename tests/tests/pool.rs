//! The pool: Python's API, and what CPython's pool gets wrong (a dead
//! worker hangs it): here a dead worker fails exactly its task.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use multiproc::pool::{MapOptions, Pool, set_worker_state, with_worker_state};
use multiproc::{Error, process_task};

const LONG: Duration = Duration::from_secs(120);

#[process_task]
fn square(x: u64) -> u64 {
    x * x
}

#[process_task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[process_task]
fn pid() -> u32 {
    std::process::id()
}

#[process_task]
fn boom(x: u32) -> u32 {
    if x == 3 {
        panic!("three is right out");
    }
    x
}

#[process_task]
fn exit_on(x: u32, fatal: u32) -> u32 {
    if x == fatal {
        std::process::exit(7);
    }
    x
}

#[process_task]
fn abort_on(x: u32) -> u32 {
    if x == 5 {
        std::process::abort();
    }
    x
}

#[process_task]
fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[process_task]
fn parse(s: String) -> Result<i32, std::num::ParseIntError> {
    s.parse()
}

#[test]
fn map_returns_values_in_order() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(square, 0..100).unwrap(), (0..100).map(|x| x * x).collect::<Vec<_>>());
    assert_eq!(pool.map(square, Vec::<u64>::new()).unwrap(), Vec::<u64>::new());
    assert_eq!(pool.starmap(add, [(1, 2), (3, 4)]).unwrap(), [3, 7]);
    for chunksize in [1, 3, 7, 1000] {
        let got = pool.map_with(square, 0..50, MapOptions::new().chunksize(chunksize)).unwrap();
        assert_eq!(got, (0..50).map(|x| x * x).collect::<Vec<_>>(), "chunksize {chunksize}");
    }
}

#[test]
fn user_errors_come_back_typed() {
    let pool = Pool::new(1).unwrap();
    let got = pool.map(parse, ["1", "x"]).unwrap();
    assert_eq!(got[0].as_ref().ok(), Some(&1));
    let err = got[1].as_ref().unwrap_err();
    assert!(err.to_string().contains("invalid digit"), "{err}");
}

#[test]
fn apply_and_apply_async() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.apply(add, (2, 3)).unwrap(), 5);
    let pending: Vec<_> = (0..13).map(|i| pool.apply_async(square, i).unwrap()).collect();
    for (i, p) in pending.iter().enumerate() {
        assert_eq!(p.get().unwrap(), (i * i) as u64);
        assert!(p.ready());
        assert_eq!(p.successful(), Some(true));
        assert_eq!(p.get().unwrap(), (i * i) as u64, "a result can be asked for twice");
    }
}

#[test]
fn callbacks_run_once_with_the_value_or_the_error() {
    let pool = Pool::new(2).unwrap();
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    pool.apply_async(square, 3).unwrap().callback(move |v| tx.send(Ok(v)).unwrap());
    pool.apply_async(boom, 3).unwrap().error_callback(move |e| tx2.send(Err(e.to_string())).unwrap());
    let mut got: Vec<_> = (0..2).map(|_| rx.recv_timeout(LONG).unwrap()).collect();
    got.sort();
    assert_eq!(got[0], Ok(9));
    assert!(got[1].as_ref().unwrap_err().contains("three is right out"), "{got:?}");
    let (tx, rx) = mpsc::channel();
    pool.map_async(square, [1, 2]).unwrap().callback(move |v| tx.send(v).unwrap());
    assert_eq!(rx.recv_timeout(LONG).unwrap(), [1, 4]);
}

#[test]
fn get_with_a_timeout_can_be_retried() {
    let pool = Pool::new(1).unwrap();
    let r = pool.apply_async(sleep_ms, 1_000).unwrap();
    assert!(matches!(r.get_timeout(Duration::from_millis(1)), Err(Error::Timeout(_))));
    assert_eq!(r.successful(), None);
    assert_eq!(r.get_timeout(LONG).unwrap(), 1_000);
}

#[test]
fn a_panic_fails_its_task_only_and_the_worker_lives_on() {
    let pool = Pool::new(1).unwrap();
    let before = pool.apply(pid, ()).unwrap();
    match pool.apply(boom, 3) {
        Err(Error::Panicked { panic, .. }) => {
            assert_eq!(panic.message, "three is right out");
            assert!(panic.location.as_deref().is_some_and(|l| l.contains("pool.rs")), "{panic:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.apply(pid, ()).unwrap(), before, "the same worker runs on");
    let each = pool.map_async(boom, 0..6).unwrap().get_each();
    for (i, r) in each.iter().enumerate() {
        assert_eq!(r.is_err(), i == 3, "{i}: {r:?}");
    }
}

#[test]
fn a_worker_that_exits_fails_exactly_its_task() {
    let pool = Pool::new(2).unwrap();
    for chunksize in [1, 4, 100] {
        let items: Vec<(u32, u32)> = (0..20).map(|x| (x, 6)).collect();
        let each = pool.map_async_with(exit_on, items, MapOptions::new().chunksize(chunksize)).unwrap().get_each();
        for (i, r) in each.iter().enumerate() {
            match r {
                Ok(v) => assert_eq!(*v as usize, i),
                Err(Error::WorkerDied { status, .. }) => {
                    assert_eq!(i, 6, "chunksize {chunksize}: the wrong task failed");
                    assert_eq!(status.exitcode(), 7);
                }
                Err(e) => panic!("{i}: {e:?}"),
            }
        }
        assert!(each[6].is_err(), "chunksize {chunksize}");
    }
    // The pool still works, with fresh workers.
    assert_eq!(pool.map(square, 0..10).unwrap().len(), 10);
}

#[cfg(unix)]
#[test]
fn an_aborting_task_names_the_signal() {
    let pool = Pool::new(1).unwrap();
    let each = pool.map_async_with(abort_on, 0..8, MapOptions::new().chunksize(8)).unwrap().get_each();
    for (i, r) in each.iter().enumerate() {
        match r {
            Err(Error::WorkerDied { status, pid }) if i == 5 => {
                assert_eq!(status.exitcode(), -libc::SIGABRT);
                assert!(status.to_string().contains("SIGABRT"), "{status}");
                assert!(*pid > 0);
            }
            Ok(v) if i != 5 => assert_eq!(*v as usize, i),
            other => panic!("{i}: {other:?}"),
        }
    }
}

/// Writes this worker's pid to `path`, then sleeps `ms`.
#[cfg(unix)]
#[process_task]
fn sleep_after_saying_pid(path: String, ms: u64) -> u64 {
    std::fs::write(&path, std::process::id().to_string()).unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// The pid `path` holds once the task that writes it has started.
#[cfg(unix)]
fn pid_in(path: &std::path::Path) -> u32 {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        if let Some(pid) = std::fs::read_to_string(path).ok().and_then(|s| s.parse().ok()) {
            return pid;
        }
        assert!(std::time::Instant::now() < deadline, "the task never started");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(unix)]
#[test]
fn a_worker_killed_from_outside_fails_its_task_and_is_replaced() {
    let path = std::env::temp_dir().join(format!("multiproc-victim-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let pool = Pool::new(2).unwrap();
    let victim = pool.apply_async(sleep_after_saying_pid, (path.to_string_lossy().into_owned(), 60_000)).unwrap();
    let others = pool.map_async(square, 0..20).unwrap();
    assert_eq!(others.get().unwrap().len(), 20, "the other worker answers meanwhile");
    let busy = pid_in(&path);
    std::fs::remove_file(&path).unwrap();
    assert!(pool.pids().contains(&busy));
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(busy as i32, libc::SIGKILL) };
    match victim.get() {
        Err(Error::WorkerDied { pid, status }) => {
            assert_eq!(pid, busy);
            assert_eq!(status.exitcode(), -libc::SIGKILL);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.map(square, 0..10).unwrap().len(), 10);
    assert!(!pool.pids().contains(&busy), "the worker is replaced");
}

#[test]
fn a_task_past_its_timeout_is_killed_alone() {
    let pool = Pool::new(2).unwrap();
    let stuck = pool.apply_async_with(sleep_ms, 600_000, Some(Duration::from_millis(200))).unwrap();
    let fine = pool.apply_async_with(sleep_ms, 1, Some(LONG)).unwrap();
    assert!(matches!(stuck.get(), Err(Error::TaskTimedOut { timeout }) if timeout == Duration::from_millis(200)));
    assert_eq!(fine.get().unwrap(), 1);
    let each = pool
        .map_async_with(sleep_ms, [1, 600_000, 2, 3], MapOptions::new().timeout(Duration::from_millis(300)))
        .unwrap()
        .get_each();
    assert!(matches!(each[1], Err(Error::TaskTimedOut { .. })), "{each:?}");
    assert_eq!([&each[0], &each[2], &each[3]].map(|r| *r.as_ref().unwrap()), [1, 2, 3]);
}

#[test]
fn close_and_join_follow_pythons_rules() {
    let pool = Pool::new(1).unwrap();
    assert!(matches!(pool.join(), Err(Error::PoolStillRunning)));
    let queued = pool.apply_async(sleep_ms, 50).unwrap();
    pool.close();
    assert!(matches!(pool.apply_async(square, 1), Err(Error::PoolNotRunning)));
    assert!(matches!(pool.map(square, [1]), Err(Error::PoolNotRunning)));
    assert!(matches!(pool.imap(square, [1]), Err(Error::PoolNotRunning)));
    pool.join().unwrap();
    assert_eq!(queued.get().unwrap(), 50, "closing runs what is queued");
}

#[cfg(target_os = "linux")]
#[test]
fn terminate_and_drop_leave_no_worker_behind() {
    let pool = Pool::new(2).unwrap();
    let running = pool.apply_async(sleep_ms, 600_000).unwrap();
    let queued: Vec<_> = (0..5).map(|_| pool.apply_async(sleep_ms, 600_000).unwrap()).collect();
    let workers = pool.pids();
    assert_eq!(workers.len(), 2);
    pool.terminate();
    assert!(matches!(running.get(), Err(Error::PoolTerminated)));
    for q in &queued {
        assert!(matches!(q.get(), Err(Error::PoolTerminated)));
    }
    for w in workers {
        assert!(!multiproc_tests::process_running(w), "worker {w} outlived terminate");
    }
    let pool = Pool::new(2).unwrap();
    let workers: Vec<u32> = (0..2).map(|_| pool.apply(pid, ()).unwrap()).collect();
    drop(pool);
    for w in workers {
        assert!(!multiproc_tests::process_running(w), "worker {w} outlived the pool");
    }
    assert!(multiproc_tests::zombie_children().is_empty());
}

#[process_task]
fn load_model(scale: u64) {
    set_worker_state(scale * 100);
}

#[process_task]
fn predict(x: u64) -> u64 {
    with_worker_state(|scale: &mut u64| {
        *scale += 1;
        *scale + x
    })
    .unwrap()
}

#[process_task]
fn broken_init() {
    panic!("no model today");
}

#[test]
fn the_initializer_builds_state_every_task_of_the_worker_uses() {
    let pool = Pool::builder().processes(1).initializer(load_model, 2).build().unwrap();
    assert_eq!(pool.map_with(predict, [0, 0, 0], MapOptions::new().chunksize(1)).unwrap(), [201, 202, 203]);
}

#[test]
fn a_failing_initializer_fails_every_task_without_a_hang() {
    let pool = Pool::builder().processes(2).initializer(broken_init, ()).build().unwrap();
    match pool.apply(square, 2) {
        Err(Error::WorkerStart { message }) => assert!(message.contains("no model today"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(pool.map(square, 0..10).is_err());
}

#[test]
fn workers_are_recycled_after_max_tasks() {
    let pool = Pool::builder().processes(1).max_tasks_per_child(2).build().unwrap();
    let pids: Vec<u32> = (0..6).map(|_| pool.apply(pid, ()).unwrap()).collect();
    assert_eq!(pids[0], pids[1]);
    assert_ne!(pids[1], pids[2]);
    assert_eq!(pids[2], pids[3]);
    assert_ne!(pids[3], pids[4]);
}

#[process_task]
fn tasks_seen() -> u32 {
    std::process::id()
}

#[test]
fn exit_hooks_report_to_the_parent() {
    let pool = Pool::builder().processes(2).exit_hook(tasks_seen).build().unwrap();
    let pids: std::collections::BTreeSet<u32> = pool.pids().into_iter().collect();
    pool.close();
    pool.join().unwrap();
    let hooks: std::collections::BTreeSet<u32> = pool.exit_results::<u32>().unwrap().into_iter().collect();
    assert_eq!(hooks.len(), 2);
    assert_eq!(hooks, pids);
}

#[process_task]
fn hook_that_panics() -> u32 {
    panic!("no goodbye");
}

#[test]
fn an_exit_hook_that_panics_is_its_error() {
    let pool = Pool::builder().processes(1).exit_hook(hook_that_panics).build().unwrap();
    pool.close();
    pool.join().unwrap();
    match pool.exit_results::<u32>() {
        Err(Error::Panicked { panic, .. }) => assert_eq!(panic.message, "no goodbye"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn imap_streams_in_order_and_reads_a_bounded_way_ahead() {
    let pool = Pool::new(2).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let input = (0u64..).inspect(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let options = MapOptions::new().read_ahead(8);
    let first: Vec<u64> = pool.imap_with(square, input, options).unwrap().take(5).collect::<Result<_, _>>().unwrap();
    assert_eq!(first, [0, 1, 4, 9, 16]);
    assert!(pulled.load(Ordering::Relaxed) <= 5 + 8, "read {} items", pulled.load(Ordering::Relaxed));

    let all: Vec<u64> = pool.imap(square, 0..30).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(all, (0..30).map(|x| x * x).collect::<Vec<_>>());
    let mut any: Vec<u64> = pool
        .imap_unordered_with(square, 0..30, MapOptions::new().chunksize(4))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    any.sort();
    assert_eq!(any, all);
    let each: Vec<_> = pool.imap(boom, 0..5).unwrap().collect();
    assert!(each[3].is_err() && each.iter().filter(|r| r.is_ok()).count() == 4);
}

#[cfg(target_os = "linux")]
#[test]
fn random_kills_fail_only_the_tasks_they_hit() {
    let pool = Pool::new(2).unwrap();
    let pending = pool.map_async_with(sleep_ms, vec![2u64; 2_000], MapOptions::new().chunksize(5)).unwrap();
    let mut kills = 0;
    let mut seed = 0x9e37_79b9_u32;
    while kills < 20 {
        let workers = pool.pids();
        if !workers.is_empty() {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let victim = workers[seed as usize % workers.len()];
            // SAFETY: plain kill(2) of our own child.
            if unsafe { libc::kill(victim as i32, libc::SIGKILL) } == 0 {
                kills += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(15));
    }
    let each = pending.get_each();
    assert_eq!(each.len(), 2_000);
    let died = each.iter().filter(|r| matches!(r, Err(Error::WorkerDied { .. }))).count();
    for r in &each {
        assert!(matches!(r, Ok(2) | Err(Error::WorkerDied { .. })), "{r:?}");
    }
    assert!(died <= 20, "{died} tasks failed for 20 kills");
    drop(pool);
    assert!(multiproc_tests::eventually(LONG, || multiproc_tests::zombie_children().is_empty()));
}

#[process_task]
fn steps(n: u64) -> u64 {
    multiproc::progress::set_length(n);
    for _ in 0..n {
        multiproc::progress::inc(1);
    }
    n
}

#[test]
fn a_map_draws_one_bar_for_all_its_tasks() {
    let bars = multiproc::progress::Bars::hidden();
    let pool = Pool::new(2).unwrap();
    pool.map_with(square, 0..250, MapOptions::new().chunksize(7).progress(&bars)).unwrap();
    let n: Vec<u64> =
        pool.imap_with(square, 0..40, MapOptions::new().progress(&bars)).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(n.len(), 40);
    let all = bars.bars();
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].label(), all[0].position(), all[0].length()), ("square".into(), 250, Some(250)));
    assert_eq!((all[1].position(), all[1].length()), (40, Some(40)));
    assert!(all.iter().all(|b| b.is_finished()));
}

#[test]
fn each_worker_has_a_bar_its_tasks_move() {
    let bars = multiproc::progress::Bars::hidden();
    let pool = Pool::builder().processes(2).progress(&bars).build().unwrap();
    assert_eq!(pool.map_with(steps, [500, 500], MapOptions::new().chunksize(1)).unwrap(), [500, 500]);
    pool.close();
    pool.join().unwrap();
    assert!(bars.wait_timeout(LONG));
    let all = bars.bars();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().all(|b| b.label().starts_with("SpawnPoolWorker-")), "{all:?}");
    // Which worker ran which task is the pool's choice; every step moved
    // the bar of the worker that ran it.
    assert_eq!(all.iter().map(|b| b.position()).sum::<u64>(), 1000, "{all:?}");
    assert!(all.iter().any(|b| b.length() == Some(500)), "{all:?}");
}

/// A value whose encoding fails for 13.
#[derive(Debug, PartialEq)]
struct Picky(u32);

impl serde::Serialize for Picky {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == 13 {
            return Err(serde::ser::Error::custom("thirteen is unlucky"));
        }
        s.serialize_u32(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Picky {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u32::deserialize(d).map(Picky)
    }
}

#[process_task]
fn picky(x: u32) -> Picky {
    Picky(x)
}

#[test]
fn a_result_that_cannot_be_encoded_fails_only_its_task() {
    let pool = Pool::new(1).unwrap();
    let before = pool.apply(pid, ()).unwrap();
    let each = pool.map_async_with(picky, 10..16, MapOptions::new().chunksize(6)).unwrap().get_each();
    for (i, r) in each.iter().enumerate() {
        match r {
            Err(Error::Unencodable { message, .. }) if i == 3 => assert!(message.contains("unlucky"), "{message}"),
            Ok(v) if i != 3 => assert_eq!(v.0 as usize, 10 + i),
            other => panic!("{i}: {other:?}"),
        }
    }
    assert_eq!(pool.apply(pid, ()).unwrap(), before, "the worker lives on");
}

/// Returns `x`; the item `hold` first waits until `gate` exists.
#[process_task]
fn held(x: u32, hold: u32, gate: String) -> u32 {
    assert!(x != 3 || hold != 31 || !gate.ends_with("fail"), "three fails");
    if x == hold {
        let deadline = std::time::Instant::now() + LONG;
        while !std::path::Path::new(&gate).exists() {
            assert!(std::time::Instant::now() < deadline, "the gate never opened");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    x
}

#[test]
fn a_map_result_is_whole_for_every_reader_whatever_arrived_first() {
    let dir = std::env::temp_dir().join(format!("multiproc-gate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pool = Pool::new(2).unwrap();
    for fails in [false, true] {
        let gate = dir.join(if fails { "gate-fail" } else { "gate" }).to_string_lossy().into_owned();
        let items: Vec<_> = (0..32).map(|x| (x, 31, gate.clone())).collect();
        let r = Arc::new(pool.map_async_with(held, items, MapOptions::new().chunksize(2)).unwrap());
        // The last task is held: the others' values are in, the map is not.
        assert!(matches!(r.get_timeout(Duration::from_millis(20)), Err(Error::Timeout(_))));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let r = Arc::clone(&r);
                std::thread::spawn(move || r.get())
            })
            .collect();
        std::fs::write(&gate, b"").unwrap();
        for got in readers.into_iter().map(|t| t.join().unwrap()).chain([r.get()]) {
            match (fails, got) {
                (false, Ok(values)) => assert_eq!(values, (0..32).collect::<Vec<_>>()),
                (true, Err(Error::Panicked { panic, .. })) => assert_eq!(panic.message, "three fails"),
                other => panic!("{other:?}"),
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[process_task]
fn echo_bytes(bytes: Vec<u8>) -> Vec<u8> {
    bytes
}

/// Quick tasks whose arguments and results are larger than a pipe holds:
/// a chunk sent ahead must not leave parent and worker each blocked on a
/// write the other does not read.
#[test]
fn big_quick_tasks_do_not_deadlock_the_worker_and_its_driver() {
    let pool = Pool::new(1).unwrap();
    let items: Vec<Vec<u8>> = (0..24u8).map(|i| vec![i; 1 << 20]).collect();
    let r = pool.map_async_with(echo_bytes, items, MapOptions::new().chunksize(1)).unwrap();
    let got = r.get_timeout(LONG).expect("the map ends");
    assert_eq!(got.len(), 24);
    assert!(got.iter().enumerate().all(|(i, b)| b.len() == 1 << 20 && b.iter().all(|&x| x == i as u8)));
}

#[process_task]
fn unwrap_picky(p: Picky) -> u32 {
    p.0
}

#[test]
fn an_argument_that_cannot_be_encoded_fails_only_its_task() {
    let pool = Pool::new(2).unwrap();
    // 13 and 17 do not encode: each fails alone, and the other tasks of
    // their chunks run.
    let items = (10..20).map(|x| Picky(if x == 16 { 13 } else { x }));
    let each = pool.map_async_with(unwrap_picky, items, MapOptions::new().chunksize(4)).unwrap().get_each();
    assert_eq!(each.len(), 10);
    for (i, r) in each.iter().enumerate() {
        match r {
            Err(Error::Encode { message, .. }) if i == 3 || i == 6 => assert!(message.contains("unlucky"), "{message}"),
            Ok(v) if i != 3 && i != 6 => assert_eq!(*v as usize, 10 + i),
            other => panic!("{i}: {other:?}"),
        }
    }
}

/// `0..n`, claiming to be exactly `claim` long.
struct Misstated {
    next: u64,
    n: u64,
    claim: usize,
}

impl Iterator for Misstated {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        (self.next < self.n).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.claim, Some(self.claim))
    }
}

#[test]
fn a_map_over_an_input_that_misstates_its_length_has_every_result() {
    let pool = Pool::new(2).unwrap();
    for (n, claim) in [(1000, 3), (3, 1000), (0, 50), (50, 0)] {
        let got = pool.map(square, Misstated { next: 0, n, claim }).unwrap();
        assert_eq!(got, (0..n).map(|x| x * x).collect::<Vec<_>>(), "{n} items claiming {claim}");
    }
}

#[process_task]
fn mix(a: u8, b: i128, c: (f32, [u16; 3]), d: usize) -> (i128, [u16; 3], f32, usize) {
    (b - a as i128, c.1, c.0 * 2.0, d + 1)
}

#[process_task]
fn nothing_back(_x: u64) {}

#[test]
fn plain_arguments_and_results_of_every_shape_cross_a_batch() {
    let pool = Pool::new(2).unwrap();
    let items: Vec<_> = (0..500u32)
        .map(|i| (i as u8, -(i as i128) << 70, (i as f32 / 4.0, [i as u16, u16::MAX, 0]), usize::MAX - 1))
        .collect();
    let got = pool.starmap(mix, items.clone()).unwrap();
    for (i, (item, out)) in items.iter().zip(&got).enumerate() {
        assert_eq!(*out, (item.1 - item.0 as i128, item.2.1, item.2.0 * 2.0, usize::MAX), "item {i}");
    }
    assert_eq!(pool.map(nothing_back, 0..10_000).unwrap().len(), 10_000);
    assert_eq!(pool.apply(mix, (1, 5, (0.5, [1, 2, 3]), 0)).unwrap(), (4, [1, 2, 3], 1.0, 1));
}

#[test]
fn a_lone_result_dropped_unread_leaves_the_pool_whole() {
    let pool = Pool::new(2).unwrap();
    // Each goes straight to an idle worker; no one receives its result.
    drop(pool.apply_async(sleep_ms, 100).unwrap());
    drop(pool.apply_async(sleep_ms, 100).unwrap());
    assert_eq!(pool.map(square, 0..1000).unwrap().len(), 1000);
    let unread = pool.apply_async(sleep_ms, 50).unwrap();
    pool.close();
    pool.join().unwrap();
    assert_eq!(unread.get().unwrap(), 50, "joining received what no one waited for");
}

#[test]
fn a_lone_result_is_ready_without_a_get() {
    let pool = Pool::new(1).unwrap();
    let r = pool.apply_async(square, 5).unwrap();
    let deadline = std::time::Instant::now() + LONG;
    while !r.ready() {
        assert!(std::time::Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(r.successful(), Some(true));
    assert_eq!(r.get().unwrap(), 25);
    // And the worker takes the next task, from the queue or straight.
    assert_eq!(pool.map(square, [1, 2, 3]).unwrap(), [1, 4, 9]);
    assert_eq!(pool.apply(square, 6).unwrap(), 36);
}

#[test]
fn terminating_a_pool_ends_a_get_that_waits_on_a_lone_task() {
    let pool = std::sync::Arc::new(Pool::new(1).unwrap());
    let stuck = pool.apply_async(sleep_ms, 600_000).unwrap();
    let killer = {
        let pool = std::sync::Arc::clone(&pool);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            pool.terminate();
        })
    };
    // This thread receives the lone task's result itself, from the worker
    // that terminate kills.
    assert!(stuck.get().is_err(), "a killed worker's task fails");
    killer.join().unwrap();
    assert!(pool.pids().is_empty(), "no worker outlives terminate");
}

#[test]
fn lone_tasks_and_maps_share_the_workers_from_many_threads() {
    let pool = Pool::new(2).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let pool = &pool;
            s.spawn(move || {
                for i in 0..200u64 {
                    let x = t * 1000 + i;
                    if i % 50 == 0 {
                        assert_eq!(pool.map(square, 0..100).unwrap()[99], 99 * 99);
                    }
                    assert_eq!(pool.apply_async(square, x).unwrap().get().unwrap(), x * x);
                }
            });
        }
    });
}
