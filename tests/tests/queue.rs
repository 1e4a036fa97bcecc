//! Queues with real processes: the tutorial program, timeouts, bounded
//! queues, ordering, close, JoinableQueue, and what survives killed
//! producers and consumers (a robust lock, items visible in one step).
//! Every wait is bounded; children are daemons and are killed or joined.
#![cfg(target_os = "linux")]

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use multiproc::{
    Builder, Child, Connection, GetError, JoinableQueue, PutError, Queue, SimpleQueue, TaskDoneError, WriteOnly, pipe,
    pipe_one_way, process_task,
};
use multiproc_tests::eventually;
use serde::{Deserialize, Serialize};

const LONG: Duration = Duration::from_secs(30);
/// An upper bound on a short timed wait that only catches a hang: how much
/// longer than its timeout a wait takes depends on the machine's load.
const HANG: Duration = Duration::from_secs(30);

fn join_within<R: 'static>(child: Child<R>, what: &str) -> R {
    multiproc_tests::join_within(child, LONG, what)
}

// ---------------------------------------------------------------- basics

#[process_task]
fn print_one(q: Queue<String>) -> String {
    let msg = q.get_timeout(LONG).expect("a message from the parent");
    println!("{msg}");
    msg
}

#[test]
fn tutorial_parent_puts_child_gets_and_prints() {
    let q = Queue::new().unwrap();
    let child = Builder::new(print_one, (q.clone(),)).start().unwrap();
    q.put("hello from the parent".to_string()).unwrap();
    assert_eq!(join_within(child, "the child"), "hello from the parent");
    assert!(q.empty());
}

#[test]
fn get_timeout_on_an_empty_queue_waits_then_reports_empty() {
    let q = Queue::<u32>::new().unwrap();
    let t = Instant::now();
    assert!(matches!(q.get_timeout(Duration::from_millis(200)), Err(GetError::Empty)));
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < HANG, "{took:?}");
    // get_nowait does not wait; that it returns at all is the check (a
    // bound on how fast would be a benchmark).
    assert!(matches!(q.get_nowait(), Err(GetError::Empty)));
}

#[test]
fn put_on_a_full_bounded_queue_reports_full_and_hands_the_value_back() {
    let q = Queue::with_maxsize(2).unwrap();
    q.put("a".to_string()).unwrap();
    q.put("b".to_string()).unwrap();
    assert!(q.full());

    match q.put_nowait("c".to_string()) {
        Err(PutError::Full(v)) => assert_eq!(v, "c"),
        other => panic!("{other:?}"),
    }

    let t = Instant::now();
    let err = q.put_timeout("d".to_string(), Duration::from_millis(200)).unwrap_err();
    let took = t.elapsed();
    assert!(err.is_full());
    assert_eq!(err.into_inner(), "d");
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < HANG, "{took:?}");

    assert_eq!(q.get().unwrap(), "a");
    q.put_nowait("e".to_string()).unwrap();
    assert_eq!(q.get().unwrap(), "b");
    assert_eq!(q.get().unwrap(), "e");
}

#[process_task]
fn put_range(q: Queue<u32>, from: u32, to: u32) {
    for i in from..to {
        q.put(i).unwrap();
    }
}

#[test]
fn a_put_blocked_in_a_child_resumes_when_the_parent_gets() {
    let q = Queue::with_maxsize(1).unwrap();
    let child = Builder::new(put_range, (q.clone(), 0, 50)).daemon(true).start().unwrap();
    let got: Vec<u32> = (0..50).map(|_| q.get_timeout(LONG).unwrap()).collect();
    assert_eq!(got, (0..50).collect::<Vec<_>>());
    join_within(child, "the producer");
}

#[test]
fn items_put_before_a_child_starts_and_by_the_child_all_arrive() {
    let q = Queue::new().unwrap();
    for i in 0..10 {
        q.put(i).unwrap();
    }
    let child = Builder::new(put_range, (q.clone(), 10, 20)).start().unwrap();
    join_within(child, "the producer");
    let got: Vec<u32> = (0..20).map(|_| q.get_timeout(LONG).unwrap()).collect();
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    assert!(matches!(q.get_nowait(), Err(GetError::Empty)));
}

#[test]
fn qsize_empty_and_full_follow_puts_and_gets_from_other_processes() {
    let q = Queue::with_maxsize(5).unwrap();
    assert_eq!((q.qsize(), q.empty(), q.full()), (0, true, false));
    let child = Builder::new(put_range, (q.clone(), 0, 5)).start().unwrap();
    join_within(child, "the producer");
    assert_eq!((q.qsize(), q.empty(), q.full()), (5, false, true));
    q.get().unwrap();
    assert_eq!((q.qsize(), q.empty(), q.full()), (4, false, false));
    for _ in 0..4 {
        q.get().unwrap();
    }
    assert_eq!((q.qsize(), q.empty(), q.full()), (0, true, false));
    assert_eq!(q.maxsize(), 5);
    assert!(!Queue::<u8>::new().unwrap().full());
}

#[test]
fn close_then_put_and_get_are_errors_for_this_handle_only() {
    let q = Queue::new().unwrap();
    q.put(1).unwrap();
    let other = q.clone();
    q.close();
    q.close();
    assert!(matches!(q.put(2), Err(PutError::Closed(2))));
    assert!(matches!(q.get(), Err(GetError::Closed)));
    assert!(matches!(q.get_nowait(), Err(GetError::Closed)));
    assert_eq!(other.get().unwrap(), 1, "items put before close stay");
}

/// A value whose encoding always fails.
struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("refuses to be encoded"))
    }
}

impl<'de> Deserialize<'de> for Unencodable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| Unencodable)
    }
}

#[derive(Serialize, Deserialize)]
enum Msg {
    Good(u32),
    Bad(Unencodable),
}

#[test]
fn an_item_that_fails_to_encode_takes_no_room() {
    let q = Queue::with_maxsize(1).unwrap();
    match q.put(Msg::Bad(Unencodable)) {
        Err(PutError::Encode(Msg::Bad(_), message)) => {
            assert!(message.contains("refuses"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(q.empty() && !q.full());
    q.put_nowait(Msg::Good(7)).unwrap();
    assert!(matches!(q.get().unwrap(), Msg::Good(7)));
}

#[process_task]
fn simple_echo(inbox: SimpleQueue<String>, outbox: SimpleQueue<String>) {
    while let Ok(s) = inbox.get() {
        if s.is_empty() {
            return;
        }
        outbox.put(s.to_uppercase()).unwrap();
    }
}

#[test]
fn simple_queue_put_get_empty_close_across_processes() {
    let (inbox, outbox) = (SimpleQueue::new().unwrap(), SimpleQueue::new().unwrap());
    let child = Builder::new(simple_echo, (inbox.clone(), outbox.clone())).daemon(true).start().unwrap();
    for w in ["one", "two", "three", ""] {
        inbox.put(w.to_string()).unwrap();
    }
    join_within(child, "the echo child");
    assert!(!outbox.empty());
    let got: Vec<String> = (0..3).map(|_| outbox.get().unwrap()).collect();
    assert_eq!(got, ["ONE", "TWO", "THREE"]);
    assert!(outbox.empty());
    outbox.close();
    outbox.close();
    assert!(outbox.get().is_err());
}

#[derive(multiproc::Process, Serialize, Deserialize)]
struct Doubler {
    input: Queue<u32>,
    output: JoinableQueue<u32>,
}

impl multiproc::Process for Doubler {
    fn run(&mut self) {
        while let Ok(Some(n)) = self.input.get_timeout(LONG).map(|n| (n != 0).then_some(n)) {
            self.output.put(2 * n).unwrap();
        }
    }
}

#[test]
fn queues_can_be_fields_of_a_process_type() {
    let (input, output) = (Queue::new().unwrap(), JoinableQueue::new().unwrap());
    let child =
        Builder::process(Doubler { input: input.clone(), output: output.clone() }).daemon(true).start().unwrap();
    for n in [1, 2, 3, 0] {
        input.put(n).unwrap();
    }
    join_within(child, "the process");
    let got: Vec<u32> = (0..3).map(|_| output.get().unwrap()).collect();
    assert_eq!(got, [2, 4, 6]);
    assert_eq!(output.unfinished_tasks(), 3);
}

// ------------------------------------------------------------ joinable

#[process_task]
fn square_jobs(jobs: JoinableQueue<u64>, results: Queue<u64>) {
    while let Ok(n) = jobs.get() {
        results.put(n * n).unwrap();
        jobs.task_done().unwrap();
    }
}

#[test]
fn joinable_queue_join_waits_for_every_task_done_in_other_processes() {
    let jobs = JoinableQueue::new().unwrap();
    let results = Queue::new().unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| Builder::new(square_jobs, (jobs.clone(), results.clone())).daemon(true).start().unwrap())
        .collect();
    for n in 0..100 {
        jobs.put(n).unwrap();
    }
    assert!(jobs.join_timeout(LONG).unwrap(), "join timed out");
    // Every result was put before its task_done.
    assert_eq!(results.qsize(), 100);
    let mut got: Vec<u64> = (0..100).map(|_| results.get().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (0..100).map(|n| n * n).collect::<Vec<_>>());
    assert_eq!(jobs.unfinished_tasks(), 0);
    for w in workers {
        w.kill().unwrap();
        w.wait().unwrap();
    }
}

#[test]
fn task_done_once_too_many_is_an_error() {
    let q = JoinableQueue::new().unwrap();
    assert!(matches!(q.task_done(), Err(TaskDoneError::TooManyCalls)));
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert!(!q.join_timeout(Duration::from_millis(50)).unwrap());
    q.get().unwrap();
    q.get().unwrap();
    q.task_done().unwrap();
    q.task_done().unwrap();
    let err = q.task_done().unwrap_err();
    assert_eq!(err.to_string(), "task_done() called too many times");
    q.join().unwrap();
}

// ------------------------------------------------------------ kills

#[process_task]
fn put_then_wait(q: Queue<String>) {
    q.put("acknowledged".to_string()).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn an_item_whose_put_returned_survives_killing_the_producer() {
    let q = Queue::new().unwrap();
    let child = Builder::new(put_then_wait, (q.clone(),)).daemon(true).start().unwrap();
    assert!(eventually(LONG, || q.qsize() == 1));
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().exitcode(), -9);
    assert_eq!(q.get_nowait().unwrap(), "acknowledged");
}

#[process_task]
fn stall_in_put(q: Queue<u64>, signal: Connection<(), WriteOnly>) {
    q.stall_mid_put(99, || signal.send(&()).unwrap())
}

#[process_task]
fn stall_in_get(q: Queue<u64>, signal: Connection<(), WriteOnly>) {
    q.stall_mid_get(|| signal.send(&()).unwrap())
}

#[test]
fn a_producer_killed_holding_the_lock_mid_put_leaves_no_item_and_no_deadlock() {
    let q = Queue::<u64>::new().unwrap();
    q.put(1).unwrap();
    let (ready, signal) = pipe_one_way().unwrap();
    let child = Builder::new(stall_in_put, (q.clone(), signal)).daemon(true).start().unwrap();
    assert!(ready.poll(Some(LONG)).unwrap());
    ready.recv().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // The lock is taken over; the half-written item never appears.
    assert_eq!(q.get_timeout(LONG).unwrap(), 1);
    assert!(q.lock_recoveries() >= 1);
    assert!(matches!(q.get_nowait(), Err(GetError::Empty)));
    q.put(2).unwrap();
    assert_eq!(q.get().unwrap(), 2);
}

#[process_task]
fn stall_in_big_put(q: Queue<Vec<u8>>, len: usize, signal: Connection<(), WriteOnly>) {
    q.stall_mid_put(vec![7; len], || signal.send(&()).unwrap())
}

#[test]
fn a_producer_killed_mid_put_of_a_spilled_item_leaves_no_item_and_no_file() {
    const LEN: usize = 200_003; // encodes to a size no other test uses
    let size = LEN as u64 + 5;
    let q = Queue::<Vec<u8>>::with_ring_size(0, 64 * 1024).unwrap();
    q.put(vec![2; LEN]).unwrap();
    let (ready, signal) = pipe_one_way().unwrap();
    let child = Builder::new(stall_in_big_put, (q.clone(), LEN, signal)).daemon(true).start().unwrap();
    assert!(ready.poll(Some(LONG)).unwrap());
    ready.recv().unwrap();
    // The child sent its item's memory and holds the lock, uncommitted.
    child.kill().unwrap();
    child.wait().unwrap();
    q.put(vec![3; LEN]).unwrap();
    assert!(q.lock_recoveries() >= 1);
    // The dead producer's item never appears; the ones around it do.
    assert_eq!(q.get_nowait().unwrap(), vec![2; LEN]);
    assert_eq!(q.get_nowait().unwrap(), vec![3; LEN]);
    assert!(matches!(q.get_nowait(), Err(GetError::Empty)));
    assert_eq!(spill_files_of_size(size).len(), 0);
}

#[test]
fn a_consumer_killed_holding_the_lock_mid_get_leaves_the_item_for_others() {
    let q = Queue::<u64>::new().unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    let (ready, signal) = pipe_one_way().unwrap();
    let child = Builder::new(stall_in_get, (q.clone(), signal)).daemon(true).start().unwrap();
    assert!(ready.poll(Some(LONG)).unwrap());
    ready.recv().unwrap();
    // While a live process holds the lock, timeouts still hold.
    let t = Instant::now();
    assert!(matches!(q.get_timeout(Duration::from_millis(200)), Err(GetError::Empty)));
    assert!(q.put_timeout(3, Duration::from_millis(200)).is_err());
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < HANG, "{took:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    // The copy the dead consumer made never counted: 1 is still first.
    assert_eq!(q.get_timeout(LONG).unwrap(), 1);
    assert_eq!(q.get_timeout(LONG).unwrap(), 2);
    assert!(q.lock_recoveries() >= 1);
    assert!(matches!(q.get_nowait(), Err(GetError::Empty)));
}

/// An item that can tell whether it arrived whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checked {
    producer: u32,
    seq: u64,
    payload: Vec<u8>,
    sum: u64,
}

fn checksum(producer: u32, seq: u64, payload: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in producer.to_le_bytes().iter().chain(&seq.to_le_bytes()).chain(payload) {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Checked {
    fn new(producer: u32, seq: u64) -> Checked {
        // Mostly small, some over half the ring (spilled to a file).
        let len = if seq % 101 == 7 { 40_000 } else { (seq % 24) as usize };
        let payload: Vec<u8> = (0..len).map(|i| (i as u64 ^ seq ^ u64::from(producer)) as u8).collect();
        let sum = checksum(producer, seq, &payload);
        Checked { producer, seq, payload, sum }
    }

    fn whole(&self) -> bool {
        self.sum == checksum(self.producer, self.seq, &self.payload)
    }
}

#[process_task]
fn produce_checked(q: Queue<Checked>, producer: u32, count: u64) {
    for seq in 0..count {
        q.put(Checked::new(producer, seq)).unwrap();
    }
}

/// Gets items in a tight loop and reports each through another queue.
#[process_task]
fn consume_and_report(q: Queue<Checked>, report: Queue<(u32, u64, bool)>) {
    loop {
        let item = q.get().unwrap();
        report.put((item.producer, item.seq, item.whole())).unwrap();
    }
}

/// Everything one process received.
#[derive(Default)]
struct Received {
    seen: HashSet<(u32, u64)>,
    last: BTreeMap<u32, u64>,
}

impl Received {
    fn record(&mut self, producer: u32, seq: u64, whole: bool, check_order: bool) {
        assert!(whole, "item {producer}/{seq} arrived torn");
        assert!(self.seen.insert((producer, seq)), "item {producer}/{seq} received twice");
        if let Some(prev) = self.last.insert(producer, seq).filter(|_| check_order) {
            assert!(prev < seq, "producer {producer}: {seq} after {prev}");
        }
    }
}

fn drain_reports(from: &Queue<(u32, u64, bool)>, all: &mut Received) {
    while let Ok((p, s, whole)) = from.get_nowait() {
        all.record(p, s, whole, false);
    }
}

#[test]
fn killing_producers_and_consumers_mid_operation_tears_nothing_and_hangs_nobody() {
    const STABLE: u64 = 4000;
    const ROUNDS: u32 = 8;
    let started = Instant::now();
    // A small ring: wrap-around, pads and spill files all happen often.
    let q = Queue::<Checked>::with_ring_size(500, 256 * 1024).unwrap();
    let reports = Queue::new().unwrap();
    let stable = Builder::new(produce_checked, (q.clone(), 0, STABLE)).daemon(true).start().unwrap();
    let mut here = Received::default();
    let mut everyone = Received::default();
    let take = |here: &mut Received, everyone: &mut Received| -> bool {
        match q.get_timeout(Duration::from_millis(200)) {
            Ok(item) => {
                here.record(item.producer, item.seq, item.whole(), true);
                everyone.record(item.producer, item.seq, true, false);
                true
            }
            Err(GetError::Empty) => false,
            Err(e) => panic!("get failed: {e}"),
        }
    };
    let mut killed_consumers = 0;
    for round in 1..=ROUNDS {
        let producer = Builder::new(produce_checked, (q.clone(), round, u64::MAX)).daemon(true).start().unwrap();
        let consumer = Builder::new(consume_and_report, (q.clone(), reports.clone())).daemon(true).start().unwrap();
        // Let both run flat out for a while, taking our share too.
        // (At least 100 ms, so that some kills land inside a put or a get.)
        let mut ours = 0;
        let deadline = Instant::now() + LONG;
        let busy_until = Instant::now() + Duration::from_millis(100);
        while ours < 300 || Instant::now() < busy_until {
            assert!(Instant::now() < deadline, "the queue went quiet");
            ours += u32::from(take(&mut here, &mut everyone));
            drain_reports(&reports, &mut everyone);
        }
        producer.kill().unwrap();
        consumer.kill().unwrap();
        producer.wait().unwrap();
        consumer.wait().unwrap();
        killed_consumers += 1;
        drain_reports(&reports, &mut everyone);
        assert!(started.elapsed() < Duration::from_secs(120), "too slow");
    }
    // Drain everything, until the stable producer is done and nothing is left.
    let deadline = Instant::now() + LONG;
    while !(stable.status().is_some() && q.empty()) {
        assert!(Instant::now() < deadline, "the stable producer never finished");
        take(&mut here, &mut everyone);
    }
    assert_eq!(stable.join_timeout(LONG).unwrap().map(|s| s.exitcode()), Some(0));
    let stable_got = (0..STABLE).filter(|s| everyone.seen.contains(&(0, *s))).count() as u64;
    // A consumer killed between its get and its report takes one item
    // with it; nothing else may go missing.
    assert!(
        stable_got + killed_consumers >= STABLE,
        "{} of the stable producer's {STABLE} items missing",
        STABLE - stable_got
    );
    // The queue is still healthy.
    q.put(Checked::new(99, 0)).unwrap();
    assert!(q.get_timeout(LONG).unwrap().whole());
    eprintln!(
        "kill test: {} items, {} + {} lock recoveries, {:?}",
        everyone.seen.len(),
        q.lock_recoveries(),
        reports.lock_recoveries(),
        started.elapsed()
    );
}

// ------------------------------------------------------------ volume

#[process_task]
fn produce_pairs(q: Queue<Option<(u32, u32)>>, producer: u32, count: u32) {
    for seq in 0..count {
        q.put(Some((producer, seq))).unwrap();
    }
}

#[process_task]
fn consume_pairs(q: Queue<Option<(u32, u32)>>) -> Vec<(u32, u32)> {
    let mut got = Vec::new();
    while let Some(item) = q.get_timeout(LONG).expect("an item or the end marker") {
        got.push(item);
    }
    got
}

#[test]
fn four_producers_four_consumers_ten_thousand_items_each() {
    const N: u32 = 10_000;
    let q = Queue::new().unwrap();
    let consumers: Vec<_> =
        (0..4).map(|_| Builder::new(consume_pairs, (q.clone(),)).daemon(true).start().unwrap()).collect();
    let producers: Vec<_> =
        (0..4).map(|p| Builder::new(produce_pairs, (q.clone(), p, N)).daemon(true).start().unwrap()).collect();
    for p in producers {
        join_within(p, "a producer");
    }
    for _ in 0..4 {
        q.put(None).unwrap();
    }
    let mut all = HashSet::new();
    for c in consumers {
        let got = join_within(c, "a consumer");
        let mut last: BTreeMap<u32, u32> = BTreeMap::new();
        for (p, s) in got {
            if let Some(prev) = last.insert(p, s) {
                assert!(prev < s, "producer {p}: {s} after {prev}");
            }
            assert!(all.insert((p, s)), "{p}/{s} received twice");
        }
    }
    assert_eq!(all.len(), 4 * N as usize, "items lost");
    assert!(q.empty());
}

#[process_task]
fn put_big(q: Queue<Vec<u8>>, len: usize) {
    let item: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    q.put(item).unwrap();
}

#[test]
fn joining_a_producer_before_draining_an_8_mib_item_does_not_deadlock() {
    const LEN: usize = 8 << 20;
    let q = Queue::new().unwrap();
    let child = Builder::new(put_big, (q.clone(), LEN)).daemon(true).start().unwrap();
    let status = child.join_timeout(LONG).unwrap();
    assert_eq!(status.map(|s| s.exitcode()), Some(0), "the producer did not exit before its item was read");
    let item = q.get_nowait().unwrap();
    assert_eq!(item.len(), LEN);
    assert!(item.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
}

/// Spill files of this test, told apart from other tests' by their size.
fn spill_files_of_size(size: u64) -> Vec<std::path::PathBuf> {
    std::fs::read_dir("/dev/shm")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("multiproc-queue-"))
        .filter(|e| e.metadata().is_ok_and(|m| m.len() == size))
        .map(|e| e.path())
        .collect()
}

#[test]
fn spilled_items_from_several_processes_arrive_whole_and_leave_no_file() {
    const LEN: usize = 300_001; // encodes to a size no other test uses
    let q = Queue::<Vec<u8>>::with_ring_size(0, 64 * 1024).unwrap();
    let child = Builder::new(put_big, (q.clone(), LEN)).start().unwrap();
    join_within(child, "the producer");
    q.put(vec![1; LEN]).unwrap();
    let size = LEN as u64 + 5; // and bincode's length prefix
    assert_eq!(spill_files_of_size(size).len(), 0, "spilled items have no name");
    let first = q.get().unwrap();
    assert!(first.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    assert_eq!(q.get().unwrap(), vec![1; LEN]);
    q.put(vec![4; LEN]).unwrap();
    drop(q);
}

#[test]
fn queues_cannot_travel_inside_other_messages() {
    let q = Queue::<u8>::new().unwrap();
    let (a, _b) = pipe::<Queue<u8>>().unwrap();
    assert!(a.send(&q).is_err());
    let carrier = Queue::<Queue<u8>>::new().unwrap();
    assert!(matches!(carrier.put(q), Err(PutError::Encode(..))));
}

// ------------------------------------------------------------ a stopped lock holder

/// Runs `f` on a thread; its answer, or `None` if it has not answered
/// within `HANG` (a hang detector, not a speed limit).
fn answers_within_hang<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG).ok()
}

/// Sends `signal` to the child `pid`.
fn signal_child(pid: u32, signal: libc::c_int) {
    // libc: the tests do not depend on nix.
    // SAFETY: kill(2) on a pid this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
}

#[test]
fn nowait_calls_and_task_done_answer_while_the_lock_holder_is_stopped() {
    let q = JoinableQueue::<u64>::new().unwrap();
    q.put(1).unwrap();
    let (ready, signal) = pipe_one_way().unwrap();
    let child = Builder::new(stall_in_get, ((*q).clone(), signal)).daemon(true).start().unwrap();
    assert!(ready.poll(Some(LONG)).unwrap());
    ready.recv().unwrap();
    // The child holds the lock; stop it there.
    signal_child(child.pid(), libc::SIGSTOP);

    let q2 = q.clone();
    let put = answers_within_hang(move || q2.put_nowait(2));
    let q2 = q.clone();
    let got = answers_within_hang(move || q2.get_nowait());
    let q2 = q.clone();
    let done = answers_within_hang(move || q2.task_done());

    // Clean up before judging, so that a failure leaves no stopped child.
    signal_child(child.pid(), libc::SIGCONT);
    child.kill().unwrap();
    child.wait().unwrap();
    let put = put.expect("put_nowait answers");
    assert!(put.unwrap_err().is_full(), "the lock is busy: no room now");
    let got = got.expect("get_nowait answers");
    assert!(matches!(got, Err(GetError::Empty)), "{got:?}");
    match done.expect("task_done answers") {
        Err(TaskDoneError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(q.get_timeout(LONG).unwrap(), 1);
    q.task_done().unwrap();
    assert!(matches!(q.get_nowait(), Err(GetError::Empty)));
}

// ------------------------------------------------------------ a faulty peer

#[process_task]
fn resize_shared_memory(q: Queue<u64>) -> Vec<i32> {
    use std::os::fd::AsRawFd;
    let fd = q.shared_memory_fd().as_raw_fd();
    [0, 1 << 30]
        .into_iter()
        .map(|len| {
            // libc: the tests do not depend on nix.
            // SAFETY: ftruncate(2) on a descriptor this process holds.
            let r = unsafe { libc::ftruncate(fd, len) };
            if r == 0 { 0 } else { std::io::Error::last_os_error().raw_os_error().unwrap_or(-1) }
        })
        .collect()
}

#[test]
fn a_peer_cannot_shrink_or_grow_the_shared_memory() {
    let q = Queue::<u64>::new().unwrap();
    q.put(1).unwrap();
    let errnos = join_within(Builder::new(resize_shared_memory, (q.clone(),)).start().unwrap(), "the resizer");
    // (Before the memfd was sealed, the shrink succeeded and the get below
    // died of SIGBUS.)
    assert_eq!(errnos, [libc::EPERM, libc::EPERM]);
    assert_eq!(q.get_nowait().unwrap(), 1);
    q.put(2).unwrap();
    assert_eq!(q.get().unwrap(), 2);
}

#[process_task]
fn scribble_state(q: Queue<u64>, words: [u64; 4]) {
    q.scribble_shared_state(words)
}

#[test]
fn a_peer_scribbling_over_the_shared_indices_is_a_typed_error_in_the_others() {
    // Each set of garbage would make an unchecked ring read a bogus record,
    // overflow an index, or take room that is not there.
    let garbage = [[8, u64::MAX - 3, 3, u64::MAX], [1000, 8, 1, 1], [0, 1 << 40, 1, 1], [2, 6, 1, 1], [0, 8, 100, 100]];
    for words in garbage {
        let q = Queue::<u64>::new().unwrap();
        q.put(1).unwrap();
        join_within(Builder::new(scribble_state, (q.clone(), words)).start().unwrap(), "the scribbler");
        assert!(matches!(q.get_nowait(), Err(GetError::Corrupt(_))), "{words:?}: {:?}", q.get_nowait());
        assert!(matches!(q.get_timeout(Duration::from_millis(10)), Err(GetError::Corrupt(_))), "{words:?}");
        assert!(matches!(q.put_nowait(2), Err(PutError::Corrupt(2, _))), "{words:?}");
        assert!(matches!(q.put(3), Err(PutError::Corrupt(3, _))), "{words:?}");
        let _ = q.qsize();
    }
}

// ------------------------------------------------------------ spills outlive nobody

/// The spill files under /dev/shm (the queue's name prefix) of one test,
/// told apart from other tests' by their size.
fn spill_file_count(size: u64) -> usize {
    spill_files_of_size(size).len()
}

#[process_task]
fn put_big_items_then_wait(q: Queue<Vec<u8>>, len: usize, n: usize, done: Connection<(), WriteOnly>) {
    for i in 0..n {
        q.put(vec![i as u8; len]).unwrap();
    }
    done.send(&()).unwrap();
    loop {
        std::thread::park();
    }
}

#[process_task]
fn hold_queue(_q: Queue<Vec<u8>>, ready: Connection<(), WriteOnly>) {
    ready.send(&()).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn no_spill_file_outlives_a_queue_whose_holders_were_all_killed() {
    const LEN: usize = 400_009; // encodes to a size no other test uses
    let size = LEN as u64 + 5;
    let before = spill_file_count(size);
    let q = Queue::<Vec<u8>>::with_ring_size(0, 64 * 1024).unwrap();
    let (produced, done) = pipe_one_way().unwrap();
    let (held, ready) = pipe_one_way().unwrap();
    let producer = Builder::new(put_big_items_then_wait, (q.clone(), LEN, 3, done)).daemon(true).start().unwrap();
    let holder = Builder::new(hold_queue, (q.clone(), ready)).daemon(true).start().unwrap();
    assert!(produced.poll(Some(LONG)).unwrap() && held.poll(Some(LONG)).unwrap());
    assert_eq!(q.qsize(), 3);
    // This process lets go; the producer and the other holder are killed.
    drop(q);
    producer.kill().unwrap();
    holder.kill().unwrap();
    producer.wait().unwrap();
    holder.wait().unwrap();
    assert_eq!(spill_file_count(size), before, "spill files left in /dev/shm");
}

#[process_task]
fn group_with_big_items_queued(len: usize, ready: Connection<u32, WriteOnly>) {
    // libc: the tests do not depend on nix.
    // SAFETY: setpgid(2) on this process: it leads a new process group,
    // which the producer it starts joins.
    assert_eq!(unsafe { libc::setpgid(0, 0) }, 0);
    let q = Queue::<Vec<u8>>::with_ring_size(0, 64 * 1024).unwrap();
    let (produced, done) = pipe_one_way().unwrap();
    let producer = Builder::new(put_big_items_then_wait, (q.clone(), len, 3, done)).daemon(true).start().unwrap();
    assert!(produced.poll(Some(LONG)).unwrap());
    assert_eq!(q.qsize(), 3);
    ready.send(&producer.pid()).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn no_spill_file_outlives_a_program_group_stopped_by_ctrl_c() {
    const LEN: usize = 500_009; // encodes to a size no other test uses
    let size = LEN as u64 + 5;
    let before = spill_file_count(size);
    let (ready, tell) = pipe_one_way().unwrap();
    let leader = Builder::new(group_with_big_items_queued, (LEN, tell)).start().unwrap();
    assert!(ready.poll(Some(LONG)).unwrap());
    let producer = ready.recv().unwrap();
    // Ctrl-C: SIGINT to the whole group.
    // libc: the tests do not depend on nix.
    // SAFETY: kill(2) of the process group this test's child leads.
    assert_eq!(unsafe { libc::kill(-(leader.pid() as libc::pid_t), libc::SIGINT) }, 0);
    assert_eq!(leader.join_timeout(LONG).unwrap().map(|s| s.exitcode()), Some(-2));
    assert!(eventually(LONG, || !multiproc_tests::process_running(producer)), "the producer outlived SIGINT");
    assert_eq!(spill_file_count(size), before, "spill files left in /dev/shm");
}
