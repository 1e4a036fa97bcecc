//! A child is held by one pidfd: signals go through it (so a recycled pid
//! is never signalled), and a handle costs at most two descriptors while
//! its child runs and one once it has ended. One test per concern, each in
//! a child process of its own where it changes process-wide state, so the
//! descriptor counts are not blurred by other tests.

#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use multiproc::process_task;
use multiproc_tests::{Release, await_release, eventually, open_fds, process_running};

#[process_task]
fn wait_for(release: PathBuf) -> u32 {
    await_release(&release);
    1
}

/// Runs in a child of the test, so that its descriptor table holds only
/// what this count puts there: starts `n` children, counts descriptors
/// while they run and after they end (unjoined, handles kept).
#[process_task]
fn descriptors_per_child(n: usize) -> (usize, usize, usize) {
    let go = Release::new(&format!("pidfd-count-{}", std::process::id()));
    let before = open_fds().len();
    let children: Vec<_> = (0..n).map(|_| multiproc::spawn(wait_for, (go.path(),)).unwrap()).collect();
    let running = open_fds().len() - before;
    drop(go);
    assert!(eventually(Duration::from_secs(60), || children.iter().all(|c| !c.is_alive())));
    let ended = open_fds().len() - before;
    drop(children);
    let dropped = open_fds().len() - before;
    (running, ended, dropped)
}

#[test]
fn a_running_child_costs_two_descriptors_an_ended_one_one() {
    let n = 20;
    let (running, ended, dropped) = multiproc::spawn(descriptors_per_child, (n,)).unwrap().join().unwrap();
    assert!(running <= 2 * n, "{running} descriptors for {n} running children");
    assert!(ended <= n, "{ended} descriptors for {n} ended, unjoined handles");
    assert_eq!(dropped, 0, "descriptors left after the handles were dropped");
}

/// In a child: with SIGCHLD ignored the kernel reaps a grandchild the
/// moment it exits, so its pid is free for reuse while our handle still
/// names it. Give the pid to a new process, then kill through the handle:
/// the stranger must survive. Returns `None` if the pid could not be
/// recycled here (no permission for `ns_last_pid`, or another process took
/// the pid every time).
#[process_task]
fn kill_after_pid_reuse() -> Option<bool> {
    // SAFETY: setting a disposition has no memory-safety preconditions.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    for _ in 0..50 {
        let go = Release::new(&format!("pidfd-reuse-{}", std::process::id()));
        let child = multiproc::spawn(wait_for, (go.path(),)).unwrap();
        let pid = child.pid();
        drop(go);
        // Gone from the process table (reaped by the kernel), but not yet
        // asked about: the handle has not seen the end.
        assert!(eventually(Duration::from_secs(60), || !Path::new(&format!("/proc/{pid}")).exists()));
        if std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).is_err() {
            return None;
        }
        let mut stranger = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        if stranger.id() != pid {
            let _ = stranger.kill();
            continue;
        }
        let _ = child.kill();
        let _ = child.terminate();
        std::thread::sleep(Duration::from_millis(50));
        let survived = process_running(pid);
        let _ = stranger.kill();
        let _ = stranger.wait();
        return Some(survived);
    }
    None
}

#[test]
fn a_recycled_pid_is_never_signalled() {
    match multiproc::spawn(kill_after_pid_reuse, ()).unwrap().join().unwrap() {
        Some(survived) => assert!(survived, "kill() through a handle hit the process that reused its pid"),
        None => eprintln!("skipped: could not recycle a pid here (needs root for ns_last_pid)"),
    }
}

/// In a child whose descriptor limit is 1024: starts children that wait
/// until released, until a start fails; returns how many ran at once and
/// the descriptors open before the first.
#[process_task]
fn children_at_once_under_1024() -> (usize, usize) {
    let limit = libc::rlimit { rlim_cur: 1024, rlim_max: 1024 };
    // SAFETY: a valid rlimit; lowering our own limit has no other effect.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let go = Release::new(&format!("pidfd-many-{}", std::process::id()));
    let baseline = open_fds().len();
    let mut children = Vec::new();
    while children.len() < 1024 {
        match multiproc::spawn(wait_for, (go.path(),)) {
            Ok(c) => children.push(c),
            Err(_) => break,
        }
    }
    let n = children.len();
    go.go();
    for c in children {
        c.join().unwrap();
    }
    (n, baseline)
}

#[test]
fn under_1024_descriptors_two_per_running_child() {
    let (n, baseline) = multiproc::spawn(children_at_once_under_1024, ()).unwrap().join().unwrap();
    eprintln!("{n} children ran at once under ulimit -n 1024 ({baseline} descriptors open before)");
    // Two per running child, and the two a spawn needs for a moment.
    assert!(n >= (1024 - baseline - 2) / 2, "only {n} children under 1024 descriptors");
}
