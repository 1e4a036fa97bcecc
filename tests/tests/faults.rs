//! Whole-process behaviour, observed from outside through the `probe`
//! program: what a child prints when it fails, what happens when `main`
//! returns, and what happens when the parent is SIGKILLed.

use std::process::Command;
#[cfg(target_os = "linux")]
use std::process::Stdio;
#[cfg(target_os = "linux")]
use std::time::Duration;

#[cfg(target_os = "linux")]
use multiproc_tests::{eventually, scratch_dir};

const PROBE: &str = env!("CARGO_BIN_EXE_probe");

#[cfg(target_os = "linux")]
fn read_pid(path: &std::path::Path) -> u32 {
    std::fs::read_to_string(path).unwrap().trim().parse().unwrap()
}

#[test]
fn child_panic_is_printed_with_the_process_name() {
    let out = Command::new(PROBE).arg("panic").env_remove("RUST_BACKTRACE").output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stderr.contains("Process burner:\n"), "{stderr}");
    assert!(stderr.contains("disk on fire"), "{stderr}");
    assert!(stdout.contains("parent saw: process burner panicked at"), "{stdout}");
    assert!(stdout.contains("probe.rs"), "{stdout}");
}

#[cfg(target_os = "linux")]
#[test]
fn normal_exit_terminates_daemons_and_waits_for_the_rest() {
    let dir = scratch_dir("exit-cleanup");
    let status = Command::new(PROBE).arg("exit-cleanup").arg(&dir).stdout(Stdio::null()).status().unwrap();
    assert!(status.success());
    // When the probe's exit is visible, its worker had already finished…
    assert!(dir.join("worker.done").exists(), "main did not wait for its non-daemonic child");
    // …and its daemon was terminated.
    let daemon = read_pid(&dir.join("daemon.pid"));
    assert!(eventually(Duration::from_secs(30), || { !multiproc_tests::process_running(daemon) }));
}

#[cfg(target_os = "linux")]
fn parent_killed(mode: &str) {
    let dir = scratch_dir(&format!("parent-killed-{mode}"));
    let mut probe = Command::new(PROBE).args(["parent-killed", dir.to_str().unwrap(), mode]).spawn().unwrap();
    let ready = eventually(Duration::from_secs(60), || {
        dir.join("ready").exists() && dir.join("daemon.pid").exists() && dir.join("watcher.pid").exists()
    });
    if !ready {
        probe.kill().unwrap();
        probe.wait().unwrap();
        panic!("the probe never got ready");
    }
    let daemon = read_pid(&dir.join("daemon.pid"));
    let watcher = read_pid(&dir.join("watcher.pid"));
    probe.kill().unwrap();
    probe.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(30), || !multiproc_tests::process_running(daemon)),
        "daemon {daemon} outlived its SIGKILLed parent"
    );
    // The non-daemonic child survives, and sees its parent die.
    assert!(eventually(Duration::from_secs(60), || dir.join("parent.gone").exists()));
    assert!(eventually(Duration::from_secs(60), || { !multiproc_tests::process_running(watcher) }));
}

#[cfg(target_os = "linux")]
#[test]
fn daemon_dies_with_a_sigkilled_parent() {
    parent_killed("main");
}

#[cfg(target_os = "linux")]
#[test]
fn daemon_started_from_a_thread_dies_with_a_sigkilled_parent() {
    parent_killed("thread");
}

#[test]
fn undispatched_child_cannot_start_processes() {
    let out = Command::new(PROBE).arg("undispatched").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("refused: an attempt was made to start a new process before"), "{stdout}");
}

/// A constructor of the program's own that asks for `current_process()`
/// (and makes a `Builder`) before the runtime's dispatcher has run: the
/// child still dispatches, and everyone sees the identity the parent gave.
#[test]
fn code_before_main_does_not_break_children() {
    let out = Command::new(env!("CARGO_BIN_EXE_early_ctor")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    // The constructor's builder took `Process-1`.
    assert_eq!(stdout.trim(), "early=Process-2 task=Process-2 child=Process-2", "stderr: {stderr}");
}

/// Ctrl-C (SIGINT to the whole process group, or to the parent alone)
/// while a pool runs: the program ends as it would without the pool, and
/// no worker outlives it.
#[cfg(target_os = "linux")]
fn pool_interrupted(group: bool) {
    use std::os::unix::process::{CommandExt, ExitStatusExt};

    let dir = scratch_dir(&format!("pool-interrupted-{group}"));
    let mut probe = Command::new(PROBE).args(["pool-wait", dir.to_str().unwrap()]).process_group(0).spawn().unwrap();
    if !eventually(Duration::from_secs(60), || dir.join("ready").exists()) {
        probe.kill().unwrap();
        probe.wait().unwrap();
        panic!("the probe never got ready");
    }
    let workers: Vec<u32> =
        std::fs::read_to_string(dir.join("pids")).unwrap().split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert_eq!(workers.len(), 2);
    let target = if group { -(probe.id() as i32) } else { probe.id() as i32 };
    // SAFETY: plain kill(2) of our own child (or its process group).
    assert_eq!(unsafe { libc::kill(target, libc::SIGINT) }, 0);
    let status = probe.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    for w in workers {
        assert!(
            eventually(Duration::from_secs(30), || !multiproc_tests::process_running(w)),
            "worker {w} outlived the interrupted program"
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn ctrl_c_ends_a_pool_and_its_workers() {
    pool_interrupted(true);
}

#[cfg(target_os = "linux")]
#[test]
fn sigint_to_the_parent_alone_leaves_no_worker() {
    pool_interrupted(false);
}
