//! The pool workloads, each next to a floor measured in the same run:
//!
//! - `pool_map_tiny` / `pool_map_tiny_chunk1`: `map(square, 0..n)` on a
//!   warm `Pool(2)` (default chunk size over 100,000 tasks; chunk size 1
//!   over 10,000); floor `raw_pool_map` / `raw_pool_map_chunk1`: the same
//!   tasks in chunks of the same size, hand-written over bare OS pipes (a
//!   pair per child: the cheapest transport there is for them, and the
//!   one the pool's links use) to two running children (one thread per
//!   child, one chunk in flight).
//! - `pool_apply_async_latency`: one `apply_async(square, 3).get()`; floor
//!   `raw_pool_roundtrip`: one 12-byte round trip over bare OS pipes to a
//!   running child that squares the number.
//! - `pool_startup`: create `Pool(2)` and get the first result; floor
//!   `raw_pool_startup`: re-execute the binary twice at once (exiting at
//!   once) and wait for the first to end.

use std::io::{PipeReader, PipeWriter, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use multiproc::pool::{MapOptions, Pool};
use multiproc::{Handle, process_task};

use super::{emit, micros, square};

/// Squares chunks of numbers from a bare pipe: `count: u32` then `count`
/// × u64, answered in the same form on the other, until the pipe closes.
#[process_task]
fn raw_squarer(rx: Handle<PipeReader>, tx: Handle<PipeWriter>) {
    let (mut rx, mut tx) = (rx.into_inner(), tx.into_inner());
    let mut head = [0u8; 4];
    let mut buf = Vec::new();
    while rx.read_exact(&mut head).is_ok() {
        let n = u32::from_le_bytes(head) as usize;
        buf.resize(4 + 8 * n, 0);
        rx.read_exact(&mut buf[4..]).unwrap();
        buf[..4].copy_from_slice(&head);
        for i in 0..n {
            let at = 4 + 8 * i;
            let x = u64::from_le_bytes(buf[at..at + 8].try_into().unwrap());
            buf[at..at + 8].copy_from_slice(&(x * x).to_le_bytes());
        }
        tx.write_all(&buf).unwrap();
    }
}

/// A running child's pipes: what it answers on, what it is sent.
struct RawLink {
    rx: PipeReader,
    tx: PipeWriter,
}

/// Two running children squaring chunks over bare pipes.
struct RawPool {
    socks: Vec<RawLink>,
    children: Vec<multiproc::Child<()>>,
}

impl RawPool {
    fn new() -> RawPool {
        let (mut socks, mut children) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            let (rx, their_tx) = std::io::pipe().expect("pipe");
            let (their_rx, tx) = std::io::pipe().expect("pipe");
            let child = multiproc::spawn(raw_squarer, (Handle::new(their_rx), Handle::new(their_tx)));
            children.push(child.expect("start squarer"));
            socks.push(RawLink { rx, tx });
        }
        RawPool { socks, children }
    }

    /// Squares `0..n` in chunks of `chunk`, one chunk in flight per child.
    fn map(&mut self, n: usize, chunk: usize) -> Vec<u64> {
        let next = AtomicUsize::new(0);
        let mut out = vec![0u64; n];
        let parts: Vec<Vec<(usize, Vec<u64>)>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .socks
                .iter_mut()
                .map(|sock| {
                    let next = &next;
                    s.spawn(move || {
                        let mut got = Vec::new();
                        let mut buf = Vec::new();
                        loop {
                            let start = next.fetch_add(chunk, Ordering::Relaxed);
                            if start >= n {
                                return got;
                            }
                            let end = (start + chunk).min(n);
                            buf.clear();
                            buf.extend_from_slice(&((end - start) as u32).to_le_bytes());
                            for x in start..end {
                                buf.extend_from_slice(&(x as u64).to_le_bytes());
                            }
                            sock.tx.write_all(&buf).unwrap();
                            sock.rx.read_exact(&mut buf).unwrap();
                            let values = buf[4..].chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap()));
                            got.push((start, values.collect()));
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (start, values) in parts.into_iter().flatten() {
            out[start..start + values.len()].copy_from_slice(&values);
        }
        out
    }

    fn roundtrip(&mut self, x: u64) -> u64 {
        let sock = &mut self.socks[0];
        let mut buf = [0u8; 12];
        buf[..4].copy_from_slice(&1u32.to_le_bytes());
        buf[4..].copy_from_slice(&x.to_le_bytes());
        sock.tx.write_all(&buf).unwrap();
        sock.rx.read_exact(&mut buf).unwrap();
        u64::from_le_bytes(buf[4..].try_into().unwrap())
    }
}

impl Drop for RawPool {
    fn drop(&mut self) {
        self.socks.clear();
        for c in self.children.drain(..) {
            c.join().expect("squarer");
        }
    }
}

fn check(got: &[u64], n: usize, what: &str) {
    assert_eq!(got.len(), n, "{what}: wrong length");
    assert!(got.iter().enumerate().all(|(i, &v)| v == (i * i) as u64), "{what}: wrong result");
}

/// `pool_map_tiny` and `pool_map_tiny_chunk1` with their floors.
pub(crate) fn map(quick: bool, chunk1: bool) {
    let (n, reps, name, floor) = if chunk1 {
        (10_000usize, if quick { 1 } else { 5 }, "pool_map_tiny_chunk1", "raw_pool_map_chunk1")
    } else {
        (100_000, if quick { 3 } else { 15 }, "pool_map_tiny", "raw_pool_map")
    };
    let pool = Pool::new(2).expect("pool");
    let mut raw = RawPool::new();
    // CPython's default: divmod(n, 2 * 4), rounded up.
    let chunk = if chunk1 { 1 } else { n.div_ceil(8) };
    let options = MapOptions::new().chunksize(chunk);
    check(&pool.map(square, 0..1000).expect("warm-up"), 1000, name);
    check(&raw.map(1000, chunk), 1000, floor);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let t = Instant::now();
        let got = raw.map(n, chunk);
        theirs.push(n as f64 / t.elapsed().as_secs_f64());
        check(&got, n, floor);
        let t = Instant::now();
        let got =
            if chunk1 { pool.map_with(square, 0..n as u64, options.clone()) } else { pool.map(square, 0..n as u64) };
        ours.push(n as f64 / t.elapsed().as_secs_f64());
        check(&got.expect("map"), n, name);
    }
    let o = emit(name, "multiproc", "tasks/s", ours);
    let f = emit(floor, "floor", "tasks/s", theirs);
    eprintln!("# {name} / {floor} = {:.2}", o / f);
}

/// `pool_apply_async_latency` with its floor.
pub(crate) fn apply_latency(quick: bool) {
    let (warmup, n) = if quick { (100, 500) } else { (300, 3000) };
    let pool = Pool::new(2).expect("pool");
    let mut raw = RawPool::new();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..warmup + n {
        let f = micros(|| assert_eq!(raw.roundtrip(3), 9, "raw_pool_roundtrip: wrong value"));
        let o = micros(|| assert_eq!(pool.apply_async(square, 3).expect("apply").get().expect("get"), 9));
        if i >= warmup {
            ours.push(o);
            theirs.push(f);
        }
    }
    let o = emit("pool_apply_async_latency", "multiproc", "us", ours);
    let f = emit("raw_pool_roundtrip", "floor", "us", theirs);
    eprintln!("# pool_apply_async_latency / raw_pool_roundtrip = {:.2}", o / f);
}

/// `pool_startup` with its floor.
pub(crate) fn startup(quick: bool) {
    let (warmup, n) = if quick { (1, 3) } else { (1, 10) };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..warmup + n {
        let f = micros(|| {
            let exe = std::env::current_exe().expect("current exe");
            let mut kids: Vec<_> = (0..2)
                .map(|_| std::process::Command::new(&exe).env(super::FLOOR_ENV, "1").spawn().expect("re-exec"))
                .collect();
            assert!(kids[0].wait().expect("wait").success());
            assert!(kids[1].wait().expect("wait").success());
        });
        let mut pool = None;
        let o = micros(|| {
            let p = Pool::new(2).expect("pool");
            assert_eq!(p.apply_async(square, 3).expect("apply").get().expect("get"), 9, "pool_startup");
            pool = Some(p);
        });
        let p = pool.expect("the pool");
        p.close();
        p.join().expect("join");
        if i >= warmup {
            ours.push(o);
            theirs.push(f);
        }
    }
    let o = emit("pool_startup", "multiproc", "us", ours);
    let f = emit("raw_pool_startup", "floor", "us", theirs);
    eprintln!("# pool_startup / raw_pool_startup = {:.2}", o / f);
}
