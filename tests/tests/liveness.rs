//! A child's life is read from the process (its pidfd, or its process
//! handle on Windows), never inferred from its channel: a task that execs,
//! closes its descriptors or leaves a helper holding the channel does not
//! change what `join`, `join_timeout` and `is_alive` report, and no wait
//! holds a lock that another operation needs.
//!
//! Children here run until the test releases them (a file appears), so no
//! assertion depends on how fast the machine is; the only time bounds are
//! generous ones that tell a hang from an answer.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use multiproc::{Child, Error, ExitStatus, process_task};
use multiproc_tests::{Release, await_release};

/// Far longer than any answer takes, far shorter than the children wait.
const HANG: Duration = Duration::from_secs(20);

/// Closes every inherited descriptor from 3 up, the channel among them,
/// then works until released and returns.
#[process_task]
fn close_everything_then_work(release: PathBuf) -> u32 {
    #[cfg(target_os = "linux")]
    // SAFETY: close_range only closes descriptors; nothing in this process
    // uses the ones from 3 up afterwards.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    for fd in 3..4096 {
        // SAFETY: as above, one descriptor at a time.
        unsafe { libc::close(fd) };
    }
    #[cfg(windows)]
    close_inherited_channel();
    await_release(&release);
    7
}

/// On Windows: closes the channel the child inherited.
#[cfg(windows)]
fn close_inherited_channel() {
    // The bootstrap variable is gone by now, but the channel is the one
    // pipe handle the child was given: close every handle that is a pipe.
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::Storage::FileSystem::{FILE_TYPE_PIPE, GetFileType};
    for value in (4..4096usize).step_by(4) {
        let h = value as windows_sys::Win32::Foundation::HANDLE;
        // SAFETY: GetFileType on an arbitrary value fails harmlessly when
        // it is not a handle of this process.
        if unsafe { GetFileType(h) } == FILE_TYPE_PIPE {
            // SAFETY: closing a pipe handle of this process, which this task
            // never uses again.
            unsafe { CloseHandle(h) };
        }
    }
}

/// Replaces itself with a shell that waits for the release file, then
/// exits with 7.
#[cfg(unix)]
#[process_task]
fn exec_a_waiting_shell(release: PathBuf) {
    use std::os::unix::process::CommandExt;
    let script = format!("while [ ! -e '{}' ]; do sleep 0.01; done; exit 7", release.display());
    let err = std::process::Command::new("/bin/sh").args(["-c", &script]).exec();
    panic!("exec failed: {err}");
}

/// Forks a helper that keeps every descriptor (the channel too) and lives
/// until released, then returns the helper's pid.
#[cfg(unix)]
#[process_task]
fn leave_a_helper(release: PathBuf) -> u32 {
    let path = std::ffi::CString::new(release.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: this process has one thread; the forked helper only calls
    // async-signal-safe functions (access, usleep, _exit).
    match unsafe { libc::fork() } {
        0 => {
            for _ in 0..12_000 {
                // SAFETY: `path` is a valid C string.
                if unsafe { libc::access(path.as_ptr(), libc::F_OK) } == 0 {
                    break;
                }
                // SAFETY: no preconditions.
                unsafe { libc::usleep(10_000) };
            }
            // SAFETY: no preconditions.
            unsafe { libc::_exit(0) }
        }
        pid if pid > 0 => pid as u32,
        _ => panic!("fork failed"),
    }
}

/// Starts a helper with std's `Command`, which on Windows hands it every
/// inheritable handle, that lives until released; returns its pid.
#[cfg(windows)]
#[process_task]
// The helper outlives this process on purpose (and Windows has no zombies).
#[allow(clippy::zombie_processes)]
fn leave_a_helper(release: PathBuf) -> u32 {
    let helper = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_waits_for_release", "--ignored"])
        .env("LIVENESS_RELEASE", &release)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    helper.id()
}

/// The helper of the Windows `leave_a_helper`, run by it.
#[cfg(windows)]
#[test]
#[ignore = "run as a helper process by a_helper_holding_the_channel_does_not_keep_the_child_alive"]
fn helper_waits_for_release() {
    if let Some(path) = std::env::var_os("LIVENESS_RELEASE") {
        await_release(std::path::Path::new(&path));
    }
}

#[process_task]
fn wait_for(release: PathBuf) -> u32 {
    await_release(&release);
    5
}

/// Asserts that `f` answers well before `HANG`.
fn answers<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG).unwrap_or_else(|_| panic!("{what} did not answer within {HANG:?}"))
}

/// A child that closes its channel and runs until released.
fn child_that_stops_talking(release: &Release) -> Child<u32> {
    multiproc::spawn(close_everything_then_work, (release.path(),)).unwrap()
}

#[test]
fn a_child_without_its_channel_is_alive_until_it_exits() {
    let go = Release::new("liveness-closed");
    let child = child_that_stops_talking(&go);
    let t = Instant::now();
    assert_eq!(child.join_timeout(Duration::from_millis(200)).unwrap(), None);
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert!(t.elapsed() < HANG, "join_timeout(200 ms) took {:?}", t.elapsed());
    assert!(child.is_alive());
    assert_eq!(child.status(), None);
    go.go();
    assert_eq!(child.wait().unwrap(), ExitStatus::Code(0));
    assert!(!child.is_alive());
    // It closed its channel, so the result could not come back.
    assert!(matches!(child.join(), Err(Error::NoResult { status: ExitStatus::Code(0), .. })));
}

#[cfg(unix)]
#[test]
fn a_task_that_execs_is_alive_until_the_program_ends() {
    let go = Release::new("liveness-exec");
    let child = multiproc::spawn(exec_a_waiting_shell, (go.path(),)).unwrap();
    let t = Instant::now();
    assert_eq!(child.join_timeout(Duration::from_millis(200)).unwrap(), None);
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert!(t.elapsed() < HANG, "join_timeout(200 ms) took {:?}", t.elapsed());
    assert!(child.is_alive());
    go.go();
    // The real status of the program that replaced the task.
    assert_eq!(child.wait().unwrap(), ExitStatus::Code(7));
    assert!(matches!(child.join(), Err(Error::NoResult { status: ExitStatus::Code(7), .. })));
}

#[test]
fn a_helper_holding_the_channel_does_not_keep_the_child_alive() {
    let go = Release::new("liveness-helper");
    let child = multiproc::spawn(leave_a_helper, (go.path(),)).unwrap();
    let status = answers("join_timeout", {
        let child = std::sync::Arc::new(child);
        let c = std::sync::Arc::clone(&child);
        move || (c.join_timeout(Duration::from_secs(60)).unwrap(), child)
    });
    let (status, child) = status;
    assert_eq!(status, Some(ExitStatus::Code(0)), "the child returned, so it is over");
    assert!(!child.is_alive());
    let child = std::sync::Arc::try_unwrap(child).unwrap();
    let helper = child.join().expect("its result came back");
    assert_ne!(helper, 0);
    go.go();
}

#[test]
fn no_wait_holds_a_lock_others_need() {
    let go = Release::new("liveness-locks");
    let child = std::sync::Arc::new(child_that_stops_talking(&go));
    // One thread waits without bound, another with a long timeout.
    let waiter = {
        let c = std::sync::Arc::clone(&child);
        std::thread::spawn(move || c.wait())
    };
    let timed = {
        let c = std::sync::Arc::clone(&child);
        std::thread::spawn(move || c.join_timeout(Duration::from_secs(60)))
    };
    // Give both a chance to be inside their waits (if they are not yet, the
    // test is only weaker, never wrong).
    std::thread::sleep(Duration::from_millis(100));
    let c = std::sync::Arc::clone(&child);
    assert!(answers("is_alive", move || c.is_alive()));
    let active = answers("active_children", multiproc::active_children);
    assert!(active.iter().any(|a| a.pid == child.pid()), "{active:?}");
    let other = answers("an unrelated start and join", || {
        let go = Release::new("liveness-locks-other");
        go.go();
        multiproc::spawn(wait_for, (go.path(),)).unwrap().join().unwrap()
    });
    assert_eq!(other, 5);
    let c = std::sync::Arc::clone(&child);
    answers("terminate", move || c.terminate().unwrap());
    let signalled = ExitStatus::Signal(15);
    let waited = answers("the waiting thread", move || waiter.join().unwrap()).unwrap();
    assert_eq!(waited, signalled, "terminate reached the child");
    assert_eq!(answers("the timed waiter", move || timed.join().unwrap()).unwrap(), Some(signalled));
    let c = std::sync::Arc::clone(&child);
    answers("kill after the end", move || c.kill().unwrap());
    go.go();
}

/// In a child (so the test harness keeps its SIGCHLD): ignore SIGCHLD,
/// start a grandchild that returns at once, and report what the handle
/// said.
#[cfg(unix)]
#[process_task]
fn with_sigchld_ignored() -> (bool, String, String) {
    // SAFETY: setting a disposition has no memory-safety preconditions.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let go = Release::new("liveness-sigign");
    go.go();
    let grandchild = multiproc::spawn(wait_for, (go.path(),)).unwrap();
    let ended = multiproc_tests::eventually(Duration::from_secs(60), || !grandchild.is_alive());
    let waited = format!("{:?}", grandchild.wait());
    let joined = format!("{:?}", grandchild.join());
    (ended, waited, joined)
}

#[cfg(unix)]
#[test]
fn with_sigchld_ignored_the_end_is_still_seen() {
    let (ended, waited, joined) = multiproc::spawn(with_sigchld_ignored, ()).unwrap().join().unwrap();
    assert!(ended, "is_alive() stayed true after the child ended");
    assert!(waited.starts_with("Err(StatusUnavailable"), "wait: {waited}");
    // The result arrived before the kernel reaped the child.
    assert_eq!(joined, "Ok(5)");
}
