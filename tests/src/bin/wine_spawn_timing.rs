//! Spawn+join of a trivial task next to a bare re-exec of this same
//! executable with `std::process::Command`: medians over `N` runs (default
//! 30). Written to measure the Windows backend under Wine; runs anywhere.
//!
//! `wine_spawn_timing [N]`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use multiproc::process_task;

#[process_task]
fn trivial(x: u64) -> u64 {
    x + 1
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let first = args.next();
    if first.as_deref() == Some("--bare") {
        return;
    }
    let n: usize = first.and_then(|a| a.parse().ok()).unwrap_or(30).max(1);
    let exe = std::env::current_exe().expect("current_exe");

    // Warm-up: first spawns pay for loading and (under Wine) server start-up.
    for _ in 0..3 {
        multiproc::spawn(trivial, (1,)).unwrap().join().unwrap();
        Command::new(&exe).arg("--bare").stdin(Stdio::null()).status().unwrap();
    }

    let mut ours = Vec::with_capacity(n);
    let mut bare = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let r = multiproc::spawn(trivial, (i as u64,)).unwrap().join().unwrap();
        ours.push(t.elapsed());
        assert_eq!(r, i as u64 + 1);

        let t = Instant::now();
        let s = Command::new(&exe).arg("--bare").stdin(Stdio::null()).status().unwrap();
        bare.push(t.elapsed());
        assert!(s.success());
    }
    let (min_o, min_b) = (*ours.iter().min().unwrap(), *bare.iter().min().unwrap());
    println!("runs: {n}");
    println!("multiproc spawn+join (trivial task): median {}, min {}", ms(median(ours)), ms(min_o));
    println!("std::process::Command re-exec + wait: median {}, min {}", ms(median(bare)), ms(min_b));
}
