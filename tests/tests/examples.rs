//! Runs every program of the `multiproc-examples` crate and checks its
//! output.
//!
//! The examples crate is not a dependency of this one, so the first test to
//! need a binary runs `cargo build -p multiproc-examples --bins` (once, into
//! this test's own target directory and profile) and the tests run the
//! binaries from there, with `EXAMPLE_TIME_SCALE` shrinking their sleeps and
//! `EXAMPLE_ROUNDS=2` bounding their endless loops. Each run has a hard
//! deadline; a program still running then is killed and the test fails. A
//! program whose stdout stays open after it exits (a child outlived it)
//! fails too.
//!
//! Cross-checking another target: set `MULTIPROC_EXAMPLE_TARGET` (for
//! example `x86_64-pc-windows-gnu`) to build with `--target`, and
//! `MULTIPROC_EXAMPLE_RUNNER` to the program that runs its binaries (for
//! example `ci/wine/runner.sh`; it is split on whitespace). Checks that
//! depend on Unix signals are skipped then.

// Builds and runs the examples natively (or for a target given in the
// environment): cargo itself cannot run inside a Windows test binary.
#![cfg(unix)]

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Every program in `examples/src/bin`, each checked by a test below.
const EXAMPLES: &[&str] = &[
    "args_kwargs",
    "barrier_start",
    "chat_client",
    "chat_server",
    "condition_queue",
    "daemon",
    "folder_copier",
    "join",
    "join_serial",
    "many_processes",
    "parallel_join",
    "pids",
    "pool_progress",
    "pool_tasks",
    "progress_bars",
    "queue_message",
    "random_sleep_workers",
    "shared_counter",
    "start_one",
    "start_two",
    "subclass",
    "terminate",
    "thread_loop",
    "tour",
];

/// The hard limit for one run of one example.
const DEADLINE: Duration = Duration::from_secs(60);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the workspace").to_path_buf()
}

/// The target named by `MULTIPROC_EXAMPLE_TARGET`, if any.
fn cross_target() -> Option<String> {
    std::env::var("MULTIPROC_EXAMPLE_TARGET").ok().filter(|t| !t.trim().is_empty())
}

/// True when the examples run natively on Unix, where the exit codes of
/// signals are known.
fn native_unix() -> bool {
    cfg!(unix) && cross_target().is_none()
}

/// Builds the examples once; returns the directory of their binaries.
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match DIR.get_or_init(build_examples) {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    }
}

fn build_examples() -> Result<PathBuf, String> {
    let root = workspace_root();
    // This test runs from <target-dir>/<profile-dir>/deps/; build into the
    // same target directory and profile.
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let (target_dir, profile_dir) = match exe.parent() {
        Some(deps) if deps.file_name().is_some_and(|n| n == "deps") => {
            let profile = deps.parent().ok_or("no profile directory")?;
            let name = profile.file_name().ok_or("no profile name")?.to_string_lossy().into_owned();
            (profile.parent().ok_or("no target directory")?.to_path_buf(), name)
        }
        _ => (
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from),
            "debug".to_string(),
        ),
    };
    let profile = match profile_dir.as_str() {
        "debug" => "dev",
        other => other,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "-p", "multiproc-examples", "--bins", "--profile", profile, "--target-dir"])
        .arg(&target_dir);
    let mut out_dir = target_dir;
    if let Some(target) = cross_target() {
        cmd.args(["--target", &target]);
        out_dir.push(target);
    }
    out_dir.push(profile_dir);
    let output = cmd.stdin(Stdio::null()).output().map_err(|e| format!("running cargo build: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build -p multiproc-examples --bins failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(out_dir)
}

fn exe_path(name: &str) -> PathBuf {
    let suffix = match cross_target() {
        Some(t) if t.contains("windows") => ".exe",
        Some(_) => "",
        None => std::env::consts::EXE_SUFFIX,
    };
    bin_dir().join(format!("{name}{suffix}"))
}

/// What one run of an example printed.
struct Run {
    name: String,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().map(str::trim_end).collect()
    }

    /// Fails the test with `what` and the whole output.
    #[track_caller]
    fn fail(&self, what: &str) -> ! {
        panic!(
            "example {}: {what}\n--- stdout ---\n{}--- stderr ---\n{}--- ({:.2?}) ---",
            self.name, self.stdout, self.stderr, self.elapsed
        )
    }

    /// The index of the first line equal to `line`, after trimming.
    #[track_caller]
    fn find(&self, line: &str) -> usize {
        self.lines().iter().position(|l| l.trim() == line).unwrap_or_else(|| self.fail(&format!("no line {line:?}")))
    }

    /// The first line that starts with `prefix`, after trimming.
    #[track_caller]
    fn line_starting(&self, prefix: &str) -> String {
        self.lines()
            .into_iter()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .map(str::to_string)
            .unwrap_or_else(|| self.fail(&format!("no line starting with {prefix:?}")))
    }

    /// How many lines equal `line`, after trimming.
    fn count(&self, line: &str) -> usize {
        self.lines().iter().filter(|l| l.trim() == line).count()
    }

    #[track_caller]
    fn expect_count(&self, line: &str, n: usize) {
        let found = self.count(line);
        if found != n {
            self.fail(&format!("expected {n} lines {line:?}, found {found}"));
        }
    }

    #[track_caller]
    fn expect_absent(&self, text: &str) {
        if self.stdout.contains(text) {
            self.fail(&format!("{text:?} should not be printed"));
        }
    }

    /// Checks that the lines appear in this order.
    #[track_caller]
    fn expect_order(&self, lines: &[&str]) {
        let at: Vec<usize> = lines.iter().map(|l| self.find(l)).collect();
        if at.windows(2).any(|w| w[0] >= w[1]) {
            self.fail(&format!("expected these lines in this order: {lines:#?}"));
        }
    }

    #[track_caller]
    fn expect_last(&self, line: &str) {
        if self.lines().last().map(|l| l.trim()) != Some(line) {
            self.fail(&format!("the last line should be {line:?}"));
        }
    }
}

/// A command that runs example `name`, through the runner if one is set
/// (Wine for the Windows build).
fn command(name: &str) -> Command {
    let exe = exe_path(name);
    let runner = std::env::var("MULTIPROC_EXAMPLE_RUNNER").unwrap_or_default();
    let mut runner = runner.split_whitespace();
    match runner.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(runner).arg(&exe);
            c
        }
        None => Command::new(&exe),
    }
}

/// Runs example `name` with `args`, sleeps scaled by `scale`, and checks
/// that it exits with 0 before the deadline.
fn run(name: &str, args: &[&str], scale: f64) -> Run {
    let mut cmd = command(name);
    cmd.args(args)
        .env("EXAMPLE_TIME_SCALE", scale.to_string())
        .env("EXAMPLE_ROUNDS", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let start = Instant::now();
    let deadline = start + DEADLINE;
    let mut child =
        cmd.spawn().unwrap_or_else(|e| panic!("example {name}: cannot run {}: {e}", exe_path(name).display()));
    let read_all = |mut r: Box<dyn Read + Send>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
        });
        rx
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped stderr")));

    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("example {name}: waiting for it: {e}"),
        }
    };
    let elapsed = start.elapsed();
    // Whatever still holds the pipes open after the example ended is one of
    // its children: give them until the deadline (a little more after a kill).
    let until = deadline.max(Instant::now() + Duration::from_secs(2));
    let collect = |rx: mpsc::Receiver<String>| rx.recv_timeout(until.saturating_duration_since(Instant::now())).ok();
    let (out, err) = (collect(stdout), collect(stderr));
    let pipes_closed = out.is_some() && err.is_some();
    let run = Run {
        name: name.to_string(),
        stdout: out.unwrap_or_else(|| "<stdout still open>\n".into()),
        stderr: err.unwrap_or_else(|| "<stderr still open>\n".into()),
        elapsed,
    };
    match status {
        None => run.fail(&format!("still running after {DEADLINE:?}; killed")),
        Some(s) if !s.success() => run.fail(&format!("exited with {s}")),
        Some(_) if !pipes_closed => run.fail("exited, but a child process kept its output open until the deadline"),
        Some(_) => run,
    }
}

/// Parses `total: T s (longest: L s, sum: S s)`.
fn parse_totals(run: &Run, line: &str) -> (f64, f64, f64) {
    let numbers: Vec<f64> = line
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|s| !s.is_empty() && *s != ".")
        .map(|s| s.parse().unwrap_or_else(|_| run.fail(&format!("bad number {s:?} in {line:?}"))))
        .collect();
    match numbers[..] {
        [total, longest, sum] => (total, longest, sum),
        _ => run.fail(&format!("cannot parse {line:?}")),
    }
}

/// The number after the last `=` of `line`.
fn number_after_eq(run: &Run, line: &str) -> u32 {
    line.rsplit('=')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| run.fail(&format!("no number after '=' in {line:?}")))
}

#[test]
fn every_example_is_tested_and_documented() {
    let dir = workspace_root().join("examples/src/bin");
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("examples/src/bin") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_stem().expect("file name").to_string_lossy().into_owned();
            let source = std::fs::read_to_string(&path).expect("example source");
            let command = format!("cargo run -p multiproc-examples --bin {name}");
            assert!(source.starts_with("//!"), "{name}.rs should start with a doc comment");
            assert!(source.contains(&command), "{name}.rs should document `{command}`");
            found.insert(name);
        }
    }
    let listed: BTreeSet<String> = EXAMPLES.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        found, listed,
        "EXAMPLES in tests/tests/examples.rs should list exactly the programs in examples/src/bin"
    );
}

#[test]
fn start_two() {
    let r = run("start_two", &[], 0.1);
    r.expect_count("11111", 2);
    r.expect_count("22222", 2);
    // main returns without joining, and the children's lines are there: the
    // program waited for them. (Whether they come after main's lines is up
    // to the scheduler, so that is not checked.)
    r.find("main: returning; the program exits once both children are done");
}

#[test]
fn progress_bars() {
    let r = run("progress_bars", &["--force-draw"], 0.02);
    r.find("main: worker-0 ended at 100/100");
    r.find("main: worker-1 ended at 100/100");
    // Drawn by the parent into its stderr (a pipe here, drawn as asked):
    // each bar's last state, labelled by its child's name.
    for worker in ["worker-0", "worker-1"] {
        let last = r.stderr.lines().rev().find(|l| l.contains(worker)).unwrap_or_else(|| r.fail("no bar drawn"));
        if !last.contains("100/100") {
            r.fail(&format!("{worker}'s bar should end at 100/100, not {last:?}"));
        }
    }
}

#[test]
fn progress_bars_not_drawn_into_a_pipe() {
    let r = run("progress_bars", &[], 0.02);
    r.find("main: worker-0 ended at 100/100");
    if r.stderr.contains("worker-") {
        r.fail("stderr is not a terminal: nothing should be drawn unless asked");
    }
}

#[test]
fn args_kwargs() {
    let r = run("args_kwargs", &[], 0.02);
    r.expect_count("hahaha (args)", 2);
    r.expect_count("I am process 2 (kwargs)", 2);
    r.find("args   -> egon is 18");
    r.find("kwargs -> egon is 18");
    r.find("called directly -> egon is 18");
    r.expect_last("main: done");
}

#[test]
fn pids() {
    let r = run("pids", &[], 0.02);
    let main_pid = number_after_eq(&r, &r.line_starting("main: my pid ="));
    let p_pid = number_after_eq(&r, &r.line_starting("main: p.pid() ="));
    let child_pid = number_after_eq(&r, &r.line_starting("child: my pid (current_process().pid()) ="));
    assert_eq!(p_pid, child_pid, "p.pid() in the parent is the child's own pid");
    assert_ne!(p_pid, main_pid);
    for i in 0..5 {
        let line = r.line_starting(&format!("child {i}: pid = "));
        assert_eq!(number_after_eq(&r, &line), main_pid, "the parent of child {i}: {line}");
    }
    r.find("main: the children returned [0, 1, 4, 9, 16]");
    let loops: Vec<&str> = r.lines().into_iter().filter(|l| l.starts_with("p1: pid = ")).collect();
    assert_eq!(loops.len(), 2, "two rounds of the worker loop:\n{}", r.stdout);
    for line in loops {
        assert!(line.ends_with(&format!("parent pid = {main_pid} (MainProcess)")), "{line}");
    }
    r.expect_last("main: done");
}

#[test]
fn daemon() {
    let r = run("daemon", &[], 0.2);
    // main waits for these before its last line (the daemons tell it on
    // pipes), so they are there however slow the machine.
    r.expect_order(&["daemon sleeper: started", "main: the main process ends; its daemons are terminated now"]);
    r.expect_order(&[
        "daemon chat: Chen Song is chatting",
        "daemon chat: starting a child failed: daemonic processes are not allowed to have children",
        "main: the main process ends; its daemons are terminated now",
    ]);
    r.expect_order(&["daemon work: working", "main: the main process ends; its daemons are terminated now"]);
    // Whether the sleeper's last line is printed depends on sleeps (4 s
    // against main's 3 s), so it is not checked. That daemons are
    // terminated is: `work` loops forever, and `run` fails if the program
    // does not end, or a child keeps its output open.
}

#[test]
fn daemon_mixed() {
    let r = run("daemon", &["mixed"], 0.2);
    // main waits for foo's `123` before printing; bar waits for main's line
    // before `end456`.
    r.expect_order(&["123", "main-------", "end456"]);
    r.find("456");
    // `end123` (daemon foo terminated when main ends, after 0.1 s against
    // foo's 1 s) depends on sleeps, so it is not checked, nor is whether
    // `end456` is the very last line.
}

#[test]
fn start_one() {
    let r = run("start_one", &[], 0.1);
    r.expect_order(&["hello aaron", "child process", "main program (after sleeping 1 s; Process-1 printed first)"]);
    // main prints right after starting zi, which prints at once too: their
    // order is up to the scheduler. That the program waits for zi is not.
    r.find("main: started Process-2; main returns now, and the program waits for it");
    r.expect_order(&[
        "main program (after sleeping 1 s; Process-1 printed first)",
        "zi: process started",
        "zi: process finished",
    ]);
}

#[test]
fn join() {
    let r = run("join", &[], 0.05);
    r.expect_order(&[
        "--- with join",
        "with join: process started",
        "with join: process finished",
        "main process (after join)",
        "--- without join",
        "main process (without join; Process-2 is still running: true)",
        "without join: process finished",
    ]);
    r.expect_last("without join: process finished");
}

#[test]
fn parallel_join() {
    let r = run("parallel_join", &[], 0.2);
    let totals: Vec<String> = r.lines().into_iter().filter(|l| l.starts_with("total: ")).map(String::from).collect();
    if totals.len() != 3 {
        r.fail("expected three `total:` lines");
    }
    for line in &totals {
        let (total, longest, sum) = parse_totals(&r, line);
        // At least the longest sleep. How far under the sum it is depends on
        // how fast processes start, which is for benchmarks, not tests.
        if total + 0.005 < longest || longest > sum {
            r.fail(&format!("{line:?}: the total should be at least the longest sleep"));
        }
    }
    for x in 1..4 {
        r.expect_order(&[&format!("---- process {x} started ----"), &format!("---- process {x} finished ----")]);
    }
    for i in 0..5 {
        let sleeping = r.line_starting(&format!("work_{i} is sleeping "));
        let secs: u32 = sleeping.split(' ').nth(3).and_then(|n| n.parse().ok()).unwrap_or(0);
        assert!((1..=6).contains(&secs), "{sleeping}");
        r.expect_order(&[&format!("work_{i} is starting"), &format!("work_{i} is ending")]);
    }
    r.expect_count("hello aaron", 5);
    r.expect_order(&["main", "main process __main__ starts", "main process __main__ ends", "main process"]);
    r.expect_last("main process");
}

#[test]
fn join_serial() {
    let r = run("join_serial", &[], 0.05);
    let hellos: Vec<String> = (1..=5).map(|i| format!("hello aaron (process Process-{i})")).collect();
    let mut order: Vec<&str> = hellos.iter().map(String::as_str).collect();
    order.push("main process");
    r.expect_order(&order);
    let line = r.line_starting("total: ");
    let numbers: Vec<f64> =
        line.split(|c: char| !(c.is_ascii_digit() || c == '.')).filter_map(|s| s.parse().ok()).collect();
    match numbers[..] {
        // Serial: at least the sum of the sleeps.
        [total, sum] if total + 0.005 >= sum => {}
        _ => r.fail(&format!("{line:?}: the total should be at least the sum of the sleeps")),
    }
}

#[test]
fn many_processes() {
    let r = run("many_processes", &[], 0.2);
    let hellos = r.lines().iter().filter(|l| l.starts_with("hello aaron from Process-")).count();
    if hellos != 5 {
        r.fail("expected 5 hello lines");
    }
    r.find("main: 5 active children: Process-1, Process-2, Process-3, Process-4, Process-5");
    r.find("main: returning without join; the program waits for the children");
}

#[test]
fn subclass() {
    let r = run("subclass", &[], 0.05);
    // main's line and the child's come in either order.
    r.expect_order(&["main: started My-1", "--- 2. three named processes"]);
    r.expect_order(&["My: process started-----", "My: process finished-----", "--- 2. three named processes"]);
    for name in ["Chen Song", "Song Ge", "Song Song"] {
        r.line_starting(&format!("{name}: pid "));
        r.expect_order(&[&format!("{name} is chatting"), "main process"]);
    }
    let p_pid = number_after_eq(&r, &r.line_starting("main: p1.pid() ="));
    r.find(&format!("Chen Song (process chat-1, pid {p_pid}) is chatting"));
    r.find("Chen Song (process chat-1) is still chatting");
    r.expect_last("main: done");
}

#[test]
fn terminate() {
    // Nothing here sleeps unless terminate fails: part 1's child would sleep
    // 1..=4 s times the scale, and is terminated right after its start. At
    // this scale it cannot have ended by itself before (exit code 0), which
    // would take longer than the deadline of the whole run.
    let r = run("terminate", &[], 60.0);
    r.line_starting("is_alive right after terminate: ");
    // main terminates (kills) these once they said they are chatting.
    r.expect_order(&["Song Ge is chatting", "--- 3. kill while it runs", "Song Song is chatting", "main: done"]);
    r.expect_order(&["start", "is_alive after wait: false"]);
    r.expect_absent("never printed");
    if native_unix() {
        r.find("exitcode: Some(-15)");
        r.find("Song Ge ended with signal 15 (SIGTERM); exitcode Some(-15); is_alive false");
        r.find("Song Song ended with signal 9 (SIGKILL); exitcode Some(-9)");
    } else {
        r.line_starting("Song Ge ended with ");
        r.line_starting("Song Song ended with ");
    }
    r.expect_last("main: done");
}

#[test]
fn thread_loop() {
    let r = run("thread_loop", &[], 0.02);
    let mut expected = vec!["thread main is running...".to_string(), "thread LoopThread is running...".to_string()];
    expected.extend((1..=5).map(|n| format!("thread LoopThread >>> {n}")));
    expected.push("thread LoopThread ended.".into());
    expected.push("thread main ended.".into());
    if r.lines() != expected {
        r.fail(&format!("expected exactly {expected:#?}"));
    }
}

#[test]
fn random_sleep_workers() {
    let r = run("random_sleep_workers", &[], 0.05);
    for name in ["work_1", "work_2"] {
        r.expect_count(&format!("{name} is starting"), 2);
        r.expect_count(&format!("{name} is ending"), 2);
        let sleeps: Vec<u32> = r
            .lines()
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("{name} is sleeping ")))
            .filter_map(|rest| rest.strip_suffix(" s")?.parse().ok())
            .collect();
        if sleeps.len() != 2 || sleeps.iter().any(|s| !(1..=6).contains(s)) {
            r.fail(&format!("{name} should sleep twice, 1..=6 s each"));
        }
    }
    let way2 = r.find("--- way 2: a process type");
    let ends: Vec<usize> =
        r.lines().iter().enumerate().filter(|(_, l)| l.ends_with(" is ending")).map(|(i, _)| i).collect();
    if ends.iter().filter(|&&i| i < way2).count() != 2 {
        r.fail("the first pair should end before the second starts");
    }
    r.expect_last("main: done");
}

#[test]
fn tour() {
    let r = run("tour", &[], 1.0);
    r.line_starting("join() returned a String: \"hello, world, from process Process-1 (pid ");
    r.find("add(2, 3) in a child = 5");
    r.find("adder ran add(AddArgs { a: 4, b: 5 }) = 9");
    r.find("add is still an ordinary function: add(20, 22) = 42");
    r.find("process boomer panicked: message \"something went wrong\"");
    r.line_starting("at examples/src/bin/tour.rs:");
    assert!(r.stderr.contains("Process boomer:"), "the child reports its panic on stderr:\n{}", r.stderr);

    let code = |what: &str| r.line_starting(what).rsplit("-> exitcode ").next().unwrap_or_default().to_string();
    assert_eq!(code("returned normally"), "Some(0)");
    assert_eq!(code("returned Err(..)"), "Some(1)");
    assert_eq!(code("panicked "), "Some(1)");
    assert_eq!(code("std::process::exit(3)"), "Some(3)");
    r.line_starting("and join() gives Ok(Err): Err(\"\\\"forty-two\\\" is not a number");
    r.find("and join() says: process Process-8 ended with exit code 3 before returning a result");
    if native_unix() {
        assert_eq!(code("terminate()"), "Some(-15), is_alive false");
        assert_eq!(code("kill()"), "Some(-9) (signal 9 (SIGKILL))");
    }

    r.find("a daemon trying to start a child gets: Err(daemonic processes are not allowed to have children)");
    // `Process-N started Process-N:1, whose parent_process() is Process-N`.
    let tree = r.line_starting("Process-");
    let parent = tree.split(' ').next().unwrap_or_default();
    assert_eq!(tree, format!("{parent} started {parent}:1, whose parent_process() is {parent}"));
    r.find("here, current_process() is MainProcess and parent_process() is None");
    r.find("[child countdown] countdown: 3 2 1 ... liftoff");
    r.find("countdown ran Countdown::run and ended with exit code 0");
    r.line_starting("active: the-daemon (pid ");
    let active = r.lines().iter().filter(|l| l.trim().starts_with("active: ")).count();
    assert_eq!(active, 3, "the daemon and two nappers:\n{}", r.stdout);
    let cpus = number_after_eq(&r, &r.line_starting("cpu_count() ="));
    assert!(cpus >= 1);
    r.expect_last("== Done. main returns: the two nappers are joined and the-daemon is terminated.");
}

/// The chat server with several clients at once: each client's lines come
/// back upper-cased, each connection served by its own process.
#[test]
fn chat_server_with_several_clients() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    const CLIENTS: usize = 3;
    let mut server = command("chat_server")
        .args(["127.0.0.1:0", &CLIENTS.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start chat_server");
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr = first.trim().strip_prefix("listening on ").expect("address line").to_owned();

    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let mut c = command("chat_client")
                .arg(&addr)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start chat_client");
            let mut stdin = c.stdin.take().unwrap();
            std::io::Write::write_all(&mut stdin, format!("hello from client {i}\n\nsecond line {i}\n").as_bytes())
                .unwrap();
            drop(stdin);
            c
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("HELLO FROM CLIENT {i}")), "{text}");
        assert!(text.contains(&format!("SECOND LINE {i}")), "{text}");
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(multiproc_tests::eventually(DEADLINE, || server.try_wait().unwrap().is_some()), "server hung");
    assert!(server.wait().unwrap().success());
    assert_eq!(rest.matches(" left (served by process ").count(), CLIENTS, "{rest}");
    assert!(rest.contains("server done"), "{rest}");
}

#[test]
fn queue_message() {
    if !(cfg!(target_os = "linux") && cross_target().is_none()) {
        return;
    }
    let r = run("queue_message", &[], 1.0);
    r.expect_order(&["主进程准备发送数据...", "子进程已收到数据...", "有内鬼，终止交易！"]);
}

#[test]
fn pool_tasks() {
    let r = run("pool_tasks", &[], 0.05);
    let parent = r.line_starting("Parent process ");
    let parent_pid = parent.trim_start_matches("Parent process ").trim_end_matches('.').to_string();
    let mut pids = BTreeSet::new();
    for i in 0..13 {
        let started = r.line_starting(&format!("Run task {i} ("));
        let pid = started.split(['(', ')']).nth(1).unwrap_or_else(|| r.fail(&format!("no pid in {started:?}")));
        if pid == parent_pid {
            r.fail("a task ran in the parent");
        }
        pids.insert(pid.to_string());
        r.expect_count(&format!("Run task {i} ({pid})..."), 1);
        if !r.lines().iter().any(|l| l.starts_with(&format!("Task {i} runs ")) && l.ends_with(" seconds.")) {
            r.fail(&format!("task {i} did not report its time"));
        }
    }
    if pids.len() > 4 {
        r.fail(&format!("13 tasks on a pool of 4 ran in {} processes", pids.len()));
    }
    r.find("Waiting for all subprocesses done...");
    r.expect_last("All subprocesses done.");
}

#[test]
fn folder_copier() {
    let root = std::env::temp_dir().join(format!("multiproc-folder-copier-{}", std::process::id()));
    let (src, dst) = (root.join("src"), root.join("dst"));
    let _ = std::fs::remove_dir_all(&root);
    let mut expected = Vec::new();
    let mut seed = 0x2545_f491_u64;
    for i in 0..1_000u32 {
        let dir = src.join(format!("d{}", i % 7)).join(format!("e{}", i % 3));
        std::fs::create_dir_all(&dir).unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Mostly small, some empty, a few of a megabyte and more.
        let len = match i % 50 {
            0 => 0,
            1 => (1 << 20) + (seed % 4096) as usize,
            _ => (seed % 20_000) as usize,
        };
        let bytes: Vec<u8> = (0..len).map(|j| (j as u64 ^ seed) as u8).collect();
        let rel = dir.strip_prefix(&src).unwrap().join(format!("f{i}.bin"));
        std::fs::write(src.join(&rel), &bytes).unwrap();
        expected.push((rel, bytes));
    }
    // A file that cannot be read: a link to nothing (which Wine does not
    // list at all, so not under a runner).
    let broken = std::env::var_os("MULTIPROC_EXAMPLE_RUNNER").is_none();
    if broken {
        std::os::unix::fs::symlink(root.join("nowhere"), src.join("d0").join("broken")).unwrap();
    }

    let r = run("folder_copier", &[src.to_str().unwrap(), dst.to_str().unwrap()], 1.0);
    r.line_starting(&format!("copying {} files from ", 1000 + usize::from(broken)));
    if broken && !r.lines().iter().any(|l| l.starts_with("could not copy ") && l.contains("broken")) {
        r.fail("the unreadable file was not reported");
    }
    r.expect_last(&format!(
        "copied 1000 files ({} bytes), {} failed",
        expected.iter().map(|(_, b)| b.len()).sum::<usize>(),
        usize::from(broken)
    ));
    for (rel, bytes) in &expected {
        let got = std::fs::read(dst.join(rel)).unwrap_or_else(|e| r.fail(&format!("{}: {e}", rel.display())));
        if &got != bytes {
            r.fail(&format!("{} differs", rel.display()));
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn pool_progress() {
    let r = run("pool_progress", &["--force-draw"], 0.05);
    r.expect_last("main: 8 tasks done: [0, 1, 2, 3, 4, 5, 6, 7]");
    // One bar per worker and one for the map, all drawn by the parent.
    let workers: BTreeSet<String> = r
        .stderr
        .split("SpawnPoolWorker-")
        .skip(1)
        .map(|rest| rest.chars().take_while(char::is_ascii_digit).collect())
        .collect();
    if workers.len() != 4 {
        r.fail(&format!("expected 4 worker bars, saw {workers:?}"));
    }
    let last = r.stderr.lines().rev().find(|l| l.contains("crunch")).unwrap_or_else(|| r.fail("no map bar drawn"));
    if !last.contains("8/8") {
        r.fail(&format!("the map's bar should end at 8/8, not {last:?}"));
    }
}

#[test]
fn shared_counter() {
    let r = run("shared_counter", &[], 1.0);
    let unlocked = r.line_starting("without a lock: ");
    let got: u64 = unlocked["without a lock: ".len()..].split(' ').next().unwrap().parse().unwrap();
    // Four processes, each a million read-then-write increments, started
    // together on two or more CPUs: some are lost.
    assert!(got < 4_000_000, "no increment was lost without the lock: {unlocked}");
    r.find("with a lock: 4000000 of 4000000");
}

#[test]
fn condition_queue() {
    let r = run("condition_queue", &[], 1.0);
    r.expect_order(&["consumed 10000 items, total 50005000", "expected total 50005000"]);
}

#[test]
fn barrier_start() {
    let r = run("barrier_start", &[], 0.05);
    // Every runner is ready before any goes, and the action runs between.
    let ready: Vec<usize> = (0..4).map(|i| r.find(&format!("runner {i} ready"))).collect();
    let go: Vec<usize> = (0..4).map(|i| r.find(&format!("runner {i} go"))).collect();
    let action = r.find("all ready");
    assert!(ready.iter().all(|&i| i < action) && go.iter().all(|&i| i > action), "{:?}", r.lines());
    r.expect_count("all ready", 1);
    r.expect_last("indices [0, 1, 2, 3]");
}
