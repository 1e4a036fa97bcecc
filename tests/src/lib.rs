//! Helpers shared by the integration tests: waiting on conditions with a
//! deadline (never sleeping "to make sure"), and looking at processes and
//! descriptors through `/proc`.

use std::time::{Duration, Instant};

#[cfg(unix)]
pub mod outside;

/// Joins `child` for its result within `within`; kills it and fails the
/// test, naming it `what`, if it has not ended by then.
#[track_caller]
pub fn join_within<R: 'static>(child: multiproc::Child<R>, within: Duration, what: &str) -> R {
    if child.join_timeout(within).expect("join_timeout").is_none() {
        let _ = child.kill();
        panic!("{what} did not finish within {within:?}");
    }
    child.join().unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

/// Polls `cond` until it holds or `within` passes; true if it held.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(1);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Whether a process with this pid exists and is not a zombie.
#[cfg(target_os = "linux")]
pub fn process_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// The zombie children of this process.
#[cfg(target_os = "linux")]
pub fn zombie_children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&me.as_str()) {
            zombies.extend(entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()));
        }
    }
    zombies
}

/// The descriptors open in this process.
#[cfg(target_os = "linux")]
pub fn open_fds() -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

/// A fresh, empty scratch directory for one test.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("multiproc-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Waits until `path` exists, for at most two minutes: how a child that
/// must run until its test says so waits for the word.
pub fn await_release(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !path.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A release file for children waiting in [`await_release`], created when
/// [`go`](Release::go) is called or the value is dropped, so that a failing
/// test never leaves children waiting.
#[derive(Debug)]
pub struct Release(pub std::path::PathBuf);

impl Release {
    /// A release file in a fresh scratch directory.
    pub fn new(name: &str) -> Release {
        Release(scratch_dir(name).join("go"))
    }

    /// The path children wait on.
    pub fn path(&self) -> std::path::PathBuf {
        self.0.clone()
    }

    /// Releases the children now.
    pub fn go(&self) {
        std::fs::write(&self.0, b"go").expect("write the release file");
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, b"go");
    }
}

/// Set in the process [`isolated`] starts.
const ISOLATED_ENV: &str = "MULTIPROC_TEST_ISOLATED";

/// Runs `body` in a fresh process of the calling test binary that runs only
/// the test `name` (which must be the calling test), so that a body that
/// overflows its stack or aborts fails that test instead of ending the
/// harness; the calling test passes if that process's test passed.
pub fn isolated(name: &str, body: impl FnOnce()) {
    use std::process::{Command, Stdio};
    if std::env::var_os(ISOLATED_ENV).is_some() {
        body();
        return;
    }
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ISOLATED_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the test binary");
    // A hang detector, not a speed limit.
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().expect("wait for the test binary").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("collect the test binary's output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} in its own process ended with {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}
