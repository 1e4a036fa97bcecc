//! `#[child_init]`: set-up that runs in every child before its task, never
//! by itself in the parent.
//!
//! Every `#[child_init]` of this test binary runs in every child it starts,
//! so the set-up functions below act on the child's name: the tests name
//! their children to pick what the set-up does.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use multiproc::{Builder, Error, Process, child_init, process_task};
use serde::{Deserialize, Serialize};

/// Set by `configure` in each child.
static CONFIG: OnceLock<String> = OnceLock::new();

/// How many times `count_runs` ran in this process.
static RUNS: AtomicU32 = AtomicU32::new(0);

/// What `start_from_init` got when it tried to start a process.
static START_IN_INIT: OnceLock<String> = OnceLock::new();

#[child_init]
fn configure() {
    let _ = CONFIG.set(format!("configured for {}", multiproc::current_process().name()));
}

/// A second set-up function: every one runs.
#[child_init]
fn count_runs() {
    RUNS.fetch_add(1, Ordering::SeqCst);
}

#[child_init]
fn fail_when_asked() {
    if multiproc::current_process().name() == "failing-set-up" {
        panic!("the set-up failed");
    }
}

#[child_init]
fn start_from_init() {
    if multiproc::current_process().name() == "starts-in-set-up" {
        let outcome = match multiproc::spawn(config, ()) {
            Ok(child) => format!("started {}", child.name()),
            Err(Error::NotBootstrapped) => "NotBootstrapped".to_owned(),
            Err(e) => format!("another error: {e}"),
        };
        let _ = START_IN_INIT.set(outcome);
    }
}

#[process_task]
fn config() -> (String, u32) {
    (CONFIG.get().cloned().unwrap_or_else(|| "not configured".into()), RUNS.load(Ordering::SeqCst))
}

/// What the set-up left, and the same from a child of this child.
#[process_task]
fn config_here_and_below() -> ((String, u32), (String, u32)) {
    let below = Builder::new(config, ()).name("grandchild").start().unwrap().join().unwrap();
    (config(), below)
}

#[process_task]
fn what_start_from_init_got() -> Option<String> {
    START_IN_INIT.get().cloned()
}

#[derive(Serialize, Deserialize, Process)]
struct Reporter {
    path: std::path::PathBuf,
}

impl Process for Reporter {
    fn run(&mut self) {
        std::fs::write(&self.path, CONFIG.get().map_or("not configured", String::as_str)).unwrap();
    }
}

#[test]
fn every_set_up_function_runs_in_a_child_before_its_task() {
    let (config, runs) = Builder::new(config, ()).name("worker").start().unwrap().join().unwrap();
    assert_eq!(config, "configured for worker");
    assert_eq!(runs, 1, "each set-up function runs once per child");
}

#[test]
fn set_up_does_not_run_in_the_parent() {
    let _ = Builder::new(config, ()).name("another").start().unwrap().join().unwrap();
    assert_eq!(CONFIG.get(), None);
    assert_eq!(RUNS.load(Ordering::SeqCst), 0);
}

#[test]
fn children_of_children_run_it_too() {
    let (here, below) = Builder::new(config_here_and_below, ()).name("middle").start().unwrap().join().unwrap();
    assert_eq!(here, ("configured for middle".to_owned(), 1));
    assert_eq!(below, ("configured for grandchild".to_owned(), 1));
}

#[test]
fn a_process_type_runs_after_the_set_up() {
    let dir = multiproc_tests::scratch_dir("child-init-process-type");
    let path = dir.join("config");
    let child = Builder::process(Reporter { path: path.clone() }).name("reporter").start().unwrap();
    child.join().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "configured for reporter");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_panicking_set_up_fails_the_child_with_its_panic() {
    let child = Builder::new(config, ()).name("failing-set-up").start().unwrap();
    match child.join() {
        Err(Error::Panicked { panic, .. }) => {
            assert_eq!(panic.message, "the set-up failed");
            assert!(panic.location.as_deref().is_some_and(|l| l.contains("child_init.rs")), "{panic:?}");
        }
        other => panic!("expected the set-up's panic, got {other:?}"),
    }
}

#[test]
fn set_up_cannot_start_processes() {
    let got = Builder::new(what_start_from_init_got, ()).name("starts-in-set-up").start().unwrap().join().unwrap();
    let got = got.expect("the set-up function ran");
    assert_eq!(got, "NotBootstrapped", "starting a process from set-up must be refused");
}
