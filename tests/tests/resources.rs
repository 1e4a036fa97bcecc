//! Nothing leaks: no zombie and no descriptor after many spawns, and a
//! child inherits no descriptor but its own. One test in this binary, so no
//! other test's children or descriptors blur the counts.

#![cfg(target_os = "linux")]

use std::time::Duration;

use multiproc::process_task;
use multiproc_tests::{eventually, open_fds, zombie_children};

#[process_task]
fn child_fds() -> Vec<i32> {
    open_fds()
}

#[process_task]
fn noop() {}

#[test]
fn no_leaks() {
    // A descriptor without close-on-exec, as a careless library might leave.
    // SAFETY: dup of stderr returns a new descriptor we close below.
    let leaky = unsafe { libc::dup(2) };
    assert!(leaky > 2);

    // The child sees stdin/stdout/stderr, its channel at 3, and the
    // descriptor it used to list the directory: nothing of ours.
    let fds = multiproc::spawn(child_fds, ()).unwrap().join().unwrap();
    assert!(fds.len() <= 5 && fds.starts_with(&[0, 1, 2, 3]), "child descriptors: {fds:?}");
    assert!(!fds[4..].contains(&leaky) || fds.len() == 4, "child inherited {leaky}: {fds:?}");

    let before = open_fds();
    for i in 0..500 {
        let c = multiproc::spawn(noop, ()).unwrap();
        if i % 2 == 0 {
            c.join().unwrap();
        }
        // Odd ones are dropped unjoined: the runtime must reap them.
    }
    assert!(
        eventually(Duration::from_secs(20), || multiproc::active_children().is_empty()),
        "children left running: {:?}",
        multiproc::active_children()
    );
    assert_eq!(zombie_children(), Vec::<u32>::new());
    // Under `cargo test` a thread copies each child's output and closes its
    // end of the pipe once it has read the last of it, which can be just
    // after the child has left the table: wait for that, bounded.
    assert!(
        eventually(Duration::from_secs(20), || open_fds() == before),
        "descriptor table changed: {:?}, was {before:?}",
        open_fds()
    );
    // SAFETY: `leaky` is ours.
    unsafe { libc::close(leaky) };
}
