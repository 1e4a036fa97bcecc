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
//! - `spawn_join_result`: start a child computing `x * x`, join it for the
//!   typed result (CPython's version sends it back over a `Pipe`).
//! - `raw_reexec` (floor): the same binary re-executed with
//!   `std::process::Command`, exiting at once, waited for.
//! - `spawn_child_peak_rss`: the peak resident set of a spawned child
//!   running an empty task, in KiB (one measurement per run).

use std::process::Command;
use std::time::Instant;

use multiproc::process_task;

const FLOOR_ENV: &str = "MULTIPROC_BENCH_FLOOR";

#[process_task]
fn noop() {}

#[process_task]
fn square(x: u64) -> u64 {
    x * x
}

struct Options {
    quick: bool,
    only: Vec<String>,
}

impl Options {
    fn parse() -> Options {
        let mut o = Options {
            quick: false,
            only: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => o.quick = true,
                "--only" => o.only.extend(
                    args.next()
                        .unwrap_or_default()
                        .split(',')
                        .map(str::to_owned),
                ),
                other => {
                    eprintln!(
                        "usage: multiproc-bench [--quick] [--only NAME[,NAME]] (unknown: {other})"
                    );
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

fn emit(workload: &str, imp: &str, unit: &str, mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    let median = percentile(&samples, 0.5);
    println!(
        "{{\"workload\": \"{workload}\", \"impl\": \"{imp}\", \"start_method\": \"spawn\", \"unit\": \"{unit}\", \
         \"median\": {median:.3}, \"p10\": {:.3}, \"p90\": {:.3}, \"n\": {}}}",
        percentile(&samples, 0.1),
        percentile(&samples, 0.9),
        samples.len()
    );
    median
}

fn micros(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e6
}

fn raw_reexec() {
    let exe = std::env::current_exe().expect("current exe");
    let status = Command::new(exe)
        .env(FLOOR_ENV, "1")
        .status()
        .expect("re-exec");
    assert!(status.success(), "raw re-exec failed: {status}");
}

fn spawn_join() {
    let c = multiproc::spawn(noop, ()).expect("start");
    let status = c.wait().expect("join");
    assert!(status.success(), "spawn_join: {status}");
}

fn spawn_join_result(x: u64) {
    let v = multiproc::spawn(square, (x,))
        .expect("start")
        .join()
        .expect("join");
    assert_eq!(v, x * x, "spawn_join_result: wrong value");
}

/// Peak RSS of one spawned child, measured in a fresh process whose only
/// child is that one (so `RUSAGE_CHILDREN` is exactly its figure).
#[cfg(unix)]
fn child_peak_rss_kib() -> f64 {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .env(FLOOR_ENV, "rss")
        .output()
        .expect("rss meter");
    assert!(out.status.success(), "rss meter failed");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("rss figure")
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
    match std::env::var(FLOOR_ENV).as_deref() {
        Ok("1") => return,
        #[cfg(unix)]
        Ok("rss") => return measure_rss_here(),
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
        let (mut floor, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..n {
            floor.push(micros(raw_reexec));
            ours.push(micros(spawn_join));
        }
        // Ours first: comparison tools name the column after the first line.
        let s = emit("spawn_join", "multiproc", "us", ours);
        let f = emit("raw_reexec", "floor", "us", floor);
        eprintln!("# spawn_join / raw_reexec = {:.2}", s / f);
    }
    if o.wants("spawn_join_result") {
        for x in 0..warmup {
            spawn_join_result(x);
        }
        let samples = (0..n as u64)
            .map(|x| micros(|| spawn_join_result(x)))
            .collect();
        emit("spawn_join_result", "multiproc", "us", samples);
    }
    #[cfg(unix)]
    if o.wants("spawn_child_peak_rss") {
        let samples: Vec<f64> = (0..3).map(|_| child_peak_rss_kib()).collect();
        emit("spawn_child_peak_rss", "multiproc", "KiB", samples);
    }
}
