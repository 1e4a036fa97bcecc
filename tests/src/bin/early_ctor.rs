//! A program with a constructor of its own that runs before `main` and
//! asks the runtime for `current_process()` and a `Builder`, as a logging
//! set-up might. Its children must still dispatch and run their task, with
//! the identity their parent gave them.
//!
//! Prints, from `main`: `early=<name seen by the constructor in the child>
//! task=<name seen by the task> child=<name the parent gave it>`.

use std::sync::OnceLock;

use multiproc::{Builder, process_task};

/// What the constructor saw.
static EARLY: OnceLock<String> = OnceLock::new();

// SAFETY: the constructor only calls into the Rust runtime and multiproc,
// which need nothing that `main` sets up.
#[ctor::ctor(unsafe)]
fn early_setup() {
    let me = multiproc::current_process();
    let _ = EARLY.set(me.name().to_owned());
    // A builder made (and dropped) this early must not break anything.
    drop(Builder::new(names, ()));
}

#[process_task]
fn names() -> (String, String) {
    (EARLY.get().cloned().unwrap_or_default(), multiproc::current_process().name().to_owned())
}

fn main() {
    assert_eq!(EARLY.get().map(String::as_str), Some("MainProcess"));
    let child = Builder::new(names, ()).start().expect("start");
    let name = child.name().to_owned();
    let (early, task) = child.join().expect("join");
    println!("early={early} task={task} child={name}");
}
