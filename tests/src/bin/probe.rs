//! A program the integration tests run as a whole process, to observe what
//! only a whole process shows: its exit, its stderr, its death.
//!
//! `probe SCENARIO [ARGS]`; see each function for what it does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use multiproc::{Builder, process_task};

#[process_task]
fn square(x: u64) -> u64 {
    x * x
}

#[process_task]
fn boom(message: String) {
    panic!("{message}");
}

/// Writes its pid to `pid_file`, then waits to be killed.
#[process_task]
fn sleeper(pid_file: PathBuf) {
    write_atomically(&pid_file, &std::process::id().to_string());
    std::thread::sleep(Duration::from_secs(60));
}

/// Waits until `wait_for` exists, sleeps a little, then writes `done`.
#[process_task]
fn slow_worker(wait_for: PathBuf, done: PathBuf) {
    while !wait_for.exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    write_atomically(&done, "done");
}

/// Writes its pid, waits for its parent to die, then writes `gone`.
#[process_task]
fn orphan_watcher(pid_file: PathBuf, gone: PathBuf) {
    write_atomically(&pid_file, &std::process::id().to_string());
    let parent = multiproc::parent_process().expect("a child has a parent");
    assert!(parent.is_alive());
    if parent.join_timeout(Duration::from_secs(30)) {
        assert!(!parent.is_alive());
        write_atomically(&gone, "parent gone");
    }
}

/// Sleeps `ms` milliseconds.
#[process_task]
fn nap(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| PathBuf::from(&args[i]);
    match args.first().map(String::as_str) {
        // A child that panics: its stderr is what the test reads.
        Some("panic") => {
            let c = Builder::new(boom, ("disk on fire".to_string(),)).name("burner").start().unwrap();
            let e = c.join().unwrap_err();
            println!("parent saw: {e}");
        }
        // main returns with a daemon sleeping and a non-daemon working:
        // the daemon must be terminated and the worker waited for.
        Some("exit-cleanup") => {
            let dir = arg(1);
            let daemon = Builder::new(sleeper, (dir.join("daemon.pid"),)).daemon(true).start().unwrap();
            let worker = Builder::new(slow_worker, (dir.join("daemon.pid"), dir.join("worker.done"))).start().unwrap();
            // Return only once the daemon is surely running (it has written
            // its pid), so the exit-time cleanup has a live daemon to stop.
            let started = std::time::Instant::now();
            while !dir.join("daemon.pid").exists() {
                assert!(started.elapsed() < Duration::from_secs(60), "the daemon never started");
                std::thread::sleep(Duration::from_millis(2));
            }
            println!("main returns; daemon {} worker {}", daemon.pid(), worker.pid());
        }
        // Starts a daemon and a parent watcher, says ready, and waits to be
        // SIGKILLed. With `thread`, the children are started from a
        // non-main thread that stays alive.
        Some("parent-killed") => {
            let dir = arg(1);
            let start = {
                let dir = dir.clone();
                move || {
                    Builder::new(sleeper, (dir.join("daemon.pid"),)).daemon(true).start().unwrap();
                    multiproc::spawn(orphan_watcher, (dir.join("watcher.pid"), dir.join("parent.gone"))).unwrap();
                }
            };
            if args.get(2).map(String::as_str) == Some("thread") {
                std::thread::spawn(move || {
                    start();
                    std::thread::sleep(Duration::from_secs(60));
                });
            } else {
                start();
            }
            write_atomically(&dir.join("ready"), "ready");
            std::thread::sleep(Duration::from_secs(60));
        }
        // A pool running long tasks, waiting for them: Ctrl-C must end it
        // all. Writes the workers' pids, then `ready`.
        Some("pool-wait") => {
            let dir = arg(1);
            let pool = multiproc::pool::Pool::new(2).unwrap();
            let pending = pool.map_async(nap, [60_000u64; 4]).unwrap();
            let pids: Vec<String> = pool.pids().iter().map(u32::to_string).collect();
            write_atomically(&dir.join("pids"), &pids.join(" "));
            write_atomically(&dir.join("ready"), "ready");
            let _ = pending.get();
        }
        // A child that reached user code without being dispatched: start()
        // must refuse instead of spawning again.
        Some("undispatched") => {
            // SAFETY: single-threaded at this point.
            unsafe { std::env::set_var(multiproc::__private::testing::BOOTSTRAP_ENV, "3") };
            match multiproc::spawn(square, (2,)) {
                Err(e @ multiproc::Error::NotBootstrapped) => println!("refused: {e}"),
                other => {
                    println!("unexpected: {other:?}");
                    std::process::exit(1)
                }
            }
        }
        // Prints a bootstrap frame (hex) for the tests to feed to a child.
        Some("frame") => {
            use multiproc::__private::testing;
            let frame = match args[1].as_str() {
                "square" => testing::bootstrap_frame(testing::task_id(square), testing::encode(&(7u64,)), None),
                "unknown" => testing::bootstrap_frame("no::such::task#0", Vec::new(), None),
                "mismatch" => testing::bootstrap_frame(testing::task_id(square), testing::encode(&(7u64,)), Some(42)),
                "bad-args" => {
                    testing::bootstrap_frame(testing::task_id(square), testing::encode(&"not a number"), None)
                }
                other => panic!("unknown frame {other}"),
            };
            println!("{}", frame.iter().map(|b| format!("{b:02x}")).collect::<String>());
        }
        Some("noop") | None => {}
        Some(other) => {
            eprintln!("unknown scenario {other}");
            std::process::exit(2);
        }
    }
}
