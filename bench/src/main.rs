//! multiproc's benchmark. Prints one JSON line per workload in the shared
//! format (`../shared/bench/README.md`), each next to its raw floor measured
//! in the same run, with samples of the two interleaved so that drift on a
//! noisy machine hits both alike.
//!
//! ```text
//! cargo run --release -p multiproc-bench [-- --quick] [--only spawn_join,raw_reexec]
//! ```
//!
//! Workloads:
//! - `spawn_join`: start a child running an empty task, join it.
//! - `spawn_many_N` (N = 1, 8, 32, 128) beside `raw_spawn_many_N`: N
//!   children started at once, then joined; µs per child (see `spawn`).
//! - `spawn_join_result`: start a child computing `x * x`, join it for the
//!   typed result (CPython's version sends it back over a `Pipe`).
//! - `raw_reexec` (floor): the same binary re-executed with
//!   `std::process::Command`, exiting at once, waited for.
//! - `spawn_child_peak_rss`: the peak resident set of a spawned child
//!   running an empty task, in KiB (one measurement per run).
//! - `pipe_pingpong`: one round trip of an 8-byte message over a duplex
//!   [`Connection`] (`send_bytes`/`recv_bytes`) to a running child that
//!   echoes it; floor `raw_pingpong`: the same over a bare Unix socket pair
//!   between the same two processes, alternating with it.
//! - `pipe_bulk`: 1 GiB as 1,024 messages of 1 MiB (`send_bytes`) to a
//!   running child, until it acknowledges; floor `raw_bulk`: the same bytes
//!   written to a bare Unix socket, alternating with it.
//! - `pipe_bulk_N` (N = 64 B … 16 MiB) beside `raw_bulk_N`: the same at
//!   every message size, a fresh buffer per message (see `bulk`).
//! - `queue_small`, `queue_producers_P` (P = 1, 2, 4, 8) beside
//!   `raw_queue_producers_P`: one or many running children put integers on
//!   a `Queue<u64>` and the parent gets them all (Linux only; see `queue`).
//! - `pool_map_tiny`, `pool_map_tiny_chunk1`, `pool_apply_async_latency`,
//!   `pool_startup`: the pool, each with a hand-written floor (see `pool`),
//!   and procspawn's pool on the same workloads as a peer (Linux only; rows
//!   under the start method `procspawn`; `--only procspawn` runs them all).
//! - `lock_contention`, `shared_array_sum`: locks and shared memory, each
//!   with a floor in one process (see `shared`).

use std::process::Command;
use std::time::Instant;

#[cfg(unix)]
mod big;
#[cfg(unix)]
mod bulk;
#[cfg(target_os = "linux")]
mod peer;
#[cfg(unix)]
mod pool;
#[cfg(target_os = "linux")]
mod queue;
mod shared;
mod spawn;

use multiproc::process_task;
#[cfg(unix)]
use multiproc::{Connection, Handle};
#[cfg(unix)]
use std::io::{Read, Write};
#[cfg(unix)]
use std::os::unix::net::UnixStream;

const FLOOR_ENV: &str = "MULTIPROC_BENCH_FLOOR";

#[process_task]
fn noop() {}

#[process_task]
fn square(x: u64) -> u64 {
    x * x
}

#[cfg(unix)]
const MIB: usize = 1 << 20;
#[cfg(unix)]
const BULK_MESSAGES: usize = 1024;

/// Echoes 8-byte messages, alternating between the bare socket and the
/// connection in lockstep with the parent, until the connection closes.
#[cfg(unix)]
#[process_task]
fn echo(conn: Connection<()>, raw: Handle<UnixStream>) {
    let mut raw = raw.into_inner();
    let mut buf = [0u8; 8];
    loop {
        if raw.read_exact(&mut buf).is_err() {
            return;
        }
        raw.write_all(&buf).unwrap();
        let Ok(msg) = conn.recv_bytes() else { return };
        conn.send_bytes(&msg).unwrap();
    }
}

/// Receives `reps` rounds of 1 GiB, alternating the bare socket and the
/// connection, checking every message, acknowledging each round.
#[cfg(unix)]
#[process_task]
fn sink(conn: Connection<()>, raw: Handle<UnixStream>, reps: u32) {
    let mut raw = raw.into_inner();
    let mut buf = vec![0u8; MIB];
    for _ in 0..reps {
        for i in 0..BULK_MESSAGES {
            raw.read_exact(&mut buf).unwrap();
            assert_eq!(buf[..8], (i as u64).to_le_bytes(), "raw_bulk: message out of order");
        }
        raw.write_all(&[1]).unwrap();
        let mut total = 0;
        for i in 0..BULK_MESSAGES {
            let msg = conn.recv_bytes().unwrap();
            assert_eq!(msg.len(), MIB, "pipe_bulk: wrong length");
            assert_eq!(msg[..8], (i as u64).to_le_bytes(), "pipe_bulk: wrong sequence number");
            assert_eq!(msg[MIB - 8..], (i as u64).to_le_bytes(), "pipe_bulk: wrong trailer");
            total += msg.len();
        }
        assert_eq!(total, BULK_MESSAGES * MIB);
        conn.send_bytes(&[1]).unwrap();
    }
}

#[cfg(unix)]
fn pingpong(n: usize, warmup: usize) {
    let (conn, theirs) = multiproc::pipe::<()>().expect("pipe");
    let (mut raw, raw_theirs) = UnixStream::pair().expect("socketpair");
    let child = multiproc::spawn(echo, (theirs, Handle::new(raw_theirs))).expect("start echo");
    let (mut floor, mut ours) = (Vec::new(), Vec::new());
    let mut back = [0u8; 8];
    for i in 0..warmup + n {
        let msg = (i as u64).to_le_bytes();
        let f = micros(|| {
            raw.write_all(&msg).unwrap();
            raw.read_exact(&mut back).unwrap();
        });
        assert_eq!(back, msg, "raw_pingpong: wrong echo");
        let mut echoed = Vec::new();
        let o = micros(|| {
            conn.send_bytes(&msg).unwrap();
            echoed = conn.recv_bytes().unwrap();
        });
        assert_eq!(echoed, msg, "pipe_pingpong: wrong echo");
        if i >= warmup {
            floor.push(f);
            ours.push(o);
        }
    }
    drop((raw, conn));
    child.join().expect("echo child");
    let o = emit("pipe_pingpong", "multiproc", "us", ours);
    let f = emit("raw_pingpong", "floor", "us", floor);
    eprintln!("# pipe_pingpong / raw_pingpong = {:.2}", o / f);
}

#[cfg(unix)]
fn bulk(reps: u32) {
    let (conn, theirs) = multiproc::pipe::<()>().expect("pipe");
    let (mut raw, raw_theirs) = UnixStream::pair().expect("socketpair");
    let child = multiproc::spawn(sink, (theirs, Handle::new(raw_theirs), reps + 1)).expect("start sink");
    let mut msg = vec![0xA5u8; MIB];
    let gb = (BULK_MESSAGES * MIB) as f64 / 1e9;
    let (mut floor, mut ours) = (Vec::new(), Vec::new());
    for rep in 0..=reps {
        let f = micros(|| {
            for i in 0..BULK_MESSAGES {
                msg[..8].copy_from_slice(&(i as u64).to_le_bytes());
                raw.write_all(&msg).unwrap();
            }
            let mut ack = [0u8];
            raw.read_exact(&mut ack).unwrap();
        });
        let o = micros(|| {
            for i in 0..BULK_MESSAGES {
                let seq = (i as u64).to_le_bytes();
                msg[..8].copy_from_slice(&seq);
                msg[MIB - 8..].copy_from_slice(&seq);
                conn.send_bytes(&msg).unwrap();
            }
            assert_eq!(conn.recv_bytes().unwrap(), [1], "pipe_bulk: no acknowledgement");
        });
        // The first round warms both paths up.
        if rep > 0 {
            floor.push(gb / (f / 1e6));
            ours.push(gb / (o / 1e6));
        }
    }
    child.join().expect("sink child");
    let o = emit("pipe_bulk", "multiproc", "GB/s", ours);
    let f = emit("raw_bulk", "floor", "GB/s", floor);
    eprintln!("# pipe_bulk / raw_bulk = {:.2}", o / f);
}

struct Options {
    quick: bool,
    only: Vec<String>,
}

impl Options {
    fn parse() -> Options {
        let mut o = Options { quick: false, only: Vec::new() };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => o.quick = true,
                "--only" => o.only.extend(args.next().unwrap_or_default().split(',').map(str::to_owned)),
                other => {
                    eprintln!("usage: multiproc-bench [--quick] [--only NAME[,NAME]] (unknown: {other})");
                    std::process::exit(2);
                }
            }
        }
        o
    }

    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }
}

/// Percentile with linear interpolation between ranks, as the reference does.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

fn emit(workload: &str, imp: &str, unit: &str, samples: Vec<f64>) -> f64 {
    emit_as(workload, imp, "spawn", unit, samples)
}

/// [`emit`] under a start method of its own (a peer's, so that its lines
/// are rows of their own beside ours).
fn emit_as(workload: &str, imp: &str, method: &str, unit: &str, mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    let median = percentile(&samples, 0.5);
    println!(
        "{{\"workload\": \"{workload}\", \"impl\": \"{imp}\", \"start_method\": \"{method}\", \"unit\": \"{unit}\", \
         \"median\": {median:.3}, \"p10\": {:.3}, \"p90\": {:.3}, \"n\": {}}}",
        percentile(&samples, 0.1),
        percentile(&samples, 0.9),
        samples.len()
    );
    median
}

/// Takes `n` samples of a workload and of its floor, alternating (floor
/// first), and emits both, ours first: comparison tools name the column
/// after the first line. Prints their ratio.
fn interleaved(n: usize, unit: &str, ours: (&str, &mut dyn FnMut() -> f64), floor: (&str, &mut dyn FnMut() -> f64)) {
    let (mut theirs, mut mine) = (Vec::new(), Vec::new());
    for _ in 0..n {
        theirs.push((floor.1)());
        mine.push((ours.1)());
    }
    let o = emit(ours.0, "multiproc", unit, mine);
    let f = emit(floor.0, "floor", unit, theirs);
    eprintln!("# {} / {} = {:.2}", ours.0, floor.0, o / f);
}

fn micros(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e6
}

fn raw_reexec() {
    let exe = std::env::current_exe().expect("current exe");
    let status = Command::new(exe).env(FLOOR_ENV, "1").status().expect("re-exec");
    assert!(status.success(), "raw re-exec failed: {status}");
}

fn spawn_join() {
    let c = multiproc::spawn(noop, ()).expect("start");
    let status = c.wait().expect("join");
    assert!(status.success(), "spawn_join: {status}");
}

fn spawn_join_result(x: u64) {
    let v = multiproc::spawn(square, (x,)).expect("start").join().expect("join");
    assert_eq!(v, x * x, "spawn_join_result: wrong value");
}

/// Peak RSS of one spawned child, measured in a fresh process whose only
/// child is that one (so `RUSAGE_CHILDREN` is exactly its figure).
#[cfg(unix)]
fn child_peak_rss_kib() -> f64 {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe).env(FLOOR_ENV, "rss").output().expect("rss meter");
    assert!(out.status.success(), "rss meter failed");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("rss figure")
}

#[cfg(unix)]
fn measure_rss_here() {
    spawn_join();
    // SAFETY: an all-zero rusage is valid to be overwritten; the pointer is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    println!("{}", ru.ru_maxrss);
}

fn main() {
    #[cfg(target_os = "linux")]
    peer::init();
    match std::env::var(FLOOR_ENV).as_deref() {
        Ok("1") => return,
        #[cfg(unix)]
        Ok("rss") => return measure_rss_here(),
        #[cfg(unix)]
        Ok("raw_argument") => return big::raw_argument_child(),
        #[cfg(unix)]
        Ok(w) if w.starts_with("rss_") => return big::measure_rss(&w[4..]),
        _ => {}
    }
    let o = Options::parse();
    let (warmup, n) = if o.quick { (5, 60) } else { (20, 400) };

    let spawn_floor = o.wants("spawn_join") || o.wants("raw_reexec");
    if spawn_floor {
        for _ in 0..warmup {
            raw_reexec();
            spawn_join();
        }
        interleaved(n, "us", ("spawn_join", &mut || micros(spawn_join)), ("raw_reexec", &mut || micros(raw_reexec)));
    }
    for n in spawn::COUNTS {
        if o.wants(&format!("spawn_many_{n}")) || o.wants(&format!("raw_spawn_many_{n}")) {
            spawn::point(n, o.quick);
        }
    }
    if o.wants("spawn_join_result") {
        for x in 0..warmup {
            spawn_join_result(x);
        }
        let samples = (0..n as u64).map(|x| micros(|| spawn_join_result(x))).collect();
        emit("spawn_join_result", "multiproc", "us", samples);
    }
    #[cfg(unix)]
    if o.wants("pipe_pingpong") || o.wants("raw_pingpong") {
        pingpong(if o.quick { 2_000 } else { 20_000 }, 200);
    }
    #[cfg(unix)]
    if o.wants("pipe_bulk") || o.wants("raw_bulk") {
        bulk(if o.quick { 2 } else { 5 });
    }
    #[cfg(unix)]
    for size in bulk::SIZES {
        if o.wants(&format!("pipe_bulk_{size}")) || o.wants(&format!("raw_bulk_{size}")) {
            bulk::point(size, o.quick);
        }
    }
    #[cfg(target_os = "linux")]
    if o.wants("queue_small") {
        queue::queue_small(if o.quick { 1 } else { 5 });
    }
    #[cfg(target_os = "linux")]
    for p in [1, 2, 4, 8] {
        if o.wants(&format!("queue_producers_{p}")) || o.wants(&format!("raw_queue_producers_{p}")) {
            queue::producers(p, if o.quick { 2 } else { 5 });
        }
    }
    #[cfg(unix)]
    if o.wants("big_result") {
        big::big_result(if o.quick { 1 } else { 3 }, if o.quick { 256 << 20 } else { big::RESULT_SIZE });
    }
    #[cfg(unix)]
    if o.wants("big_argument") {
        big::big_argument(if o.quick { 1 } else { 5 });
    }
    #[cfg(unix)]
    if o.wants("pool_map_tiny") || o.wants("raw_pool_map") {
        pool::map(o.quick, false);
    }
    #[cfg(unix)]
    if o.wants("pool_map_tiny_chunk1") || o.wants("raw_pool_map_chunk1") {
        pool::map(o.quick, true);
    }
    #[cfg(unix)]
    if o.wants("pool_apply_async_latency") || o.wants("raw_pool_roundtrip") {
        pool::apply_latency(o.quick);
    }
    #[cfg(unix)]
    if o.wants("pool_startup") || o.wants("raw_pool_startup") {
        pool::startup(o.quick);
    }
    if o.wants("lock_contention") || o.wants("raw_atomic_increment") {
        shared::lock_contention(o.quick);
    }
    if o.wants("shared_array_sum") || o.wants("raw_array_sum") {
        shared::shared_array_sum(o.quick);
    }
    // The peer runs in a full run, or when named: alone (every workload of
    // it) or beside the workloads wanted.
    #[cfg(target_os = "linux")]
    if o.only.is_empty() || o.only.iter().any(|w| w == "procspawn") {
        peer::run(o.quick, &|name| o.only.len() <= 1 || o.wants(name));
    }
    #[cfg(unix)]
    if o.wants("spawn_child_peak_rss") {
        let samples: Vec<f64> = (0..3).map(|_| child_peak_rss_kib()).collect();
        emit("spawn_child_peak_rss", "multiproc", "KiB", samples);
    }
}
