//! The queue workloads (Linux: the queue's shared ring is a memfd).
//!
//! - `queue_small`: one running child puts the integers 0..99,999 on a
//!   `Queue<u64>` and the parent gets them all.
//! - `queue_producers_P`, P = 1, 2, 4, 8: P running children together put
//!   200,000 integers on one `Queue<u64>` (200,000 / P each, producer `me`
//!   putting `(me << 32) + i` for i in order) and the parent gets them all,
//!   checking that every producer's items arrive in order. Floor
//!   `raw_queue_producers_P`: the same children write the same 8-byte
//!   records into one OS pipe, 512 records (4 KiB, one atomic write) at a
//!   time, and the parent reads and checks them: what many producers into
//!   one consumer cost with a kernel buffer between them and no
//!   serialisation.
//!
//! Both are timed from the parent's go command to the last item.

use std::io::{PipeReader, PipeWriter, Read, Write};
use std::time::Instant;

use multiproc::{Connection, Handle, Queue, process_task};
use serde::{Deserialize, Serialize};

use crate::{emit, interleaved};

/// Items per run of `queue_producers_P`, shared among the producers.
const PRODUCER_ITEMS: u64 = 200_000;
/// Records per write of the floor: 4 KiB, which a pipe writes atomically.
const RAW_BATCH: usize = 512;

/// Puts 0..n on the queue for every `Some(n)` command; returns on `None`.
#[process_task]
fn queue_producer(q: Queue<u64>, cmd: Connection<Option<u64>>) {
    while let Ok(Some(n)) = cmd.recv() {
        for i in 0..n {
            q.put(i).unwrap();
        }
    }
}

pub(crate) fn queue_small(reps: usize) {
    const N: u64 = 100_000;
    let q = Queue::<u64>::new().expect("queue");
    let (cmd, theirs) = multiproc::pipe::<Option<u64>>().expect("pipe");
    let child = multiproc::spawn(queue_producer, (q.clone(), theirs)).expect("start producer");
    let one_run = |n: u64| {
        let t = Instant::now();
        cmd.send(&Some(n)).unwrap();
        for i in 0..n {
            let v = q.get().unwrap();
            assert_eq!(v, i, "queue_small: got {v} at position {i}");
        }
        t.elapsed().as_secs_f64()
    };
    one_run(5_000); // warm-up
    let samples = (0..reps).map(|_| N as f64 / one_run(N)).collect();
    assert!(q.empty(), "queue_small: extra items left in the queue");
    cmd.send(&None).unwrap();
    child.join().expect("producer child");
    emit("queue_small", "multiproc", "msg/s", samples);
}

/// What a tagged producer is told to do.
#[derive(Serialize, Deserialize)]
enum Command {
    /// Put `(me << 32) + i` for i in 0..n on the queue.
    Queue(u64),
    /// Write the same records to the raw pipe.
    Raw(u64),
}

/// Runs commands until the command connection closes.
#[process_task]
fn tagged_producer(q: Queue<u64>, raw: Handle<PipeWriter>, me: u64, cmd: Connection<Command>) {
    let mut raw = raw.into_inner();
    let base = me << 32;
    while let Ok(c) = cmd.recv() {
        match c {
            Command::Queue(n) => {
                for i in 0..n {
                    q.put(base + i).unwrap();
                }
            }
            Command::Raw(n) => {
                let mut batch = Vec::with_capacity(RAW_BATCH * 8);
                let mut i = 0;
                while i < n {
                    batch.clear();
                    let end = n.min(i + RAW_BATCH as u64);
                    for v in i..end {
                        batch.extend_from_slice(&(base + v).to_le_bytes());
                    }
                    raw.write_all(&batch).unwrap();
                    i = end;
                }
            }
        }
    }
}

/// Checks that the item `v` of one of `next.len()` producers is the next one
/// of its producer.
fn check_next(workload: &str, next: &mut [u64], v: u64) {
    let (who, i) = ((v >> 32) as usize, v & 0xFFFF_FFFF);
    assert!(who < next.len() && next[who] == i, "{workload}: got item {i} of producer {who}");
    next[who] += 1;
}

/// The parent's end of a `queue_producers_P` run.
struct Producers {
    p: usize,
    q: Queue<u64>,
    raw: PipeReader,
    buf: Vec<u8>,
    cmds: Vec<Connection<Command>>,
}

impl Producers {
    /// One run of the queue: every producer puts `per` items. Seconds.
    fn queue(&mut self, per: u64) -> f64 {
        let name = format!("queue_producers_{}", self.p);
        let mut next = vec![0; self.p];
        let t = Instant::now();
        for c in &self.cmds {
            c.send(&Command::Queue(per)).unwrap();
        }
        for _ in 0..per * self.p as u64 {
            check_next(&name, &mut next, self.q.get().unwrap());
        }
        t.elapsed().as_secs_f64()
    }

    /// One run of the floor: every producer writes `per` records. Seconds.
    fn raw(&mut self, per: u64) -> f64 {
        let name = format!("raw_queue_producers_{}", self.p);
        let mut next = vec![0; self.p];
        let t = Instant::now();
        for c in &self.cmds {
            c.send(&Command::Raw(per)).unwrap();
        }
        let (mut left, mut have) = (per * self.p as u64, 0);
        while left > 0 {
            let n = self.raw.read(&mut self.buf[have..]).unwrap();
            assert!(n > 0, "{name}: the pipe closed early");
            have += n;
            let whole = have / 8 * 8;
            for rec in self.buf[..whole].chunks_exact(8) {
                check_next(&name, &mut next, u64::from_le_bytes(rec.try_into().unwrap()));
            }
            left -= (whole / 8) as u64;
            self.buf.copy_within(whole..have, 0);
            have -= whole;
        }
        t.elapsed().as_secs_f64()
    }
}

/// `queue_producers_P` beside `raw_queue_producers_P`, interleaved.
pub(crate) fn producers(p: usize, reps: usize) {
    let q = Queue::<u64>::new().expect("queue");
    let (raw, raw_theirs) = std::io::pipe().expect("pipe");
    let mut children = Vec::new();
    let mut cmds = Vec::new();
    for me in 0..p {
        let (cmd, theirs) = multiproc::pipe::<Command>().expect("pipe");
        let writer = raw_theirs.try_clone().expect("dup");
        children.push(
            multiproc::spawn(tagged_producer, (q.clone(), Handle::new(writer), me as u64, theirs))
                .expect("start producer"),
        );
        cmds.push(cmd);
    }
    drop(raw_theirs);
    let mut run = Producers { p, q, raw, buf: vec![0; 64 << 10], cmds };
    let per = PRODUCER_ITEMS / p as u64;
    let total = (per * p as u64) as f64;
    // Warm-up.
    run.raw((5_000 / p) as u64);
    run.queue((5_000 / p) as u64);
    let run = std::cell::RefCell::new(run);
    interleaved(
        reps,
        "msg/s",
        (&format!("queue_producers_{p}"), &mut || total / run.borrow_mut().queue(per)),
        (&format!("raw_queue_producers_{p}"), &mut || total / run.borrow_mut().raw(per)),
    );
    let run = run.into_inner();
    assert!(run.q.empty(), "queue_producers_{p}: extra items left in the queue");
    drop(run.cmds);
    for c in children {
        c.join().expect("producer child");
    }
}
