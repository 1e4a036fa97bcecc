//! The process lifecycle, with real processes: names, pids, exit codes,
//! join/timeout, terminate/kill, nesting, daemons, misuse.

use std::time::{Duration, Instant};

use multiproc::{Builder, Error, ExitStatus, process_task};
use multiproc_tests::eventually;
use serde::{Deserialize, Serialize};

/// What `kill` reports: SIGKILL on Unix; on Windows there is only
/// `TerminateProcess`, reported as -15 for both, as CPython does.
const KILL_SIGNAL: i32 = if cfg!(windows) { 15 } else { 9 };

#[process_task]
fn noop() {}

#[process_task]
fn square(x: u64) -> u64 {
    x * x
}

#[process_task]
fn boom(message: String) {
    panic!("{message}");
}

#[process_task]
fn exit_with(code: i32) {
    std::process::exit(code);
}

#[process_task]
fn fails(message: String) -> Result<u64, String> {
    Err(message)
}

#[process_task]
fn succeeds(v: u64) -> Result<u64, String> {
    Ok(v)
}

/// Blocks until its parent kills it (or a minute passes).
#[process_task]
fn hang() {
    std::thread::sleep(Duration::from_secs(60));
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Facts {
    name: String,
    pid: u32,
    daemon: bool,
    authkey: Vec<u8>,
    identity: Vec<u32>,
    parent: Option<(u32, String)>,
    stdin_bytes: usize,
}

#[process_task]
fn facts() -> Facts {
    use std::io::Read;
    let me = multiproc::current_process();
    let mut stdin = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut stdin);
    Facts {
        name: me.name().into(),
        pid: me.pid(),
        daemon: me.daemon(),
        authkey: me.authkey().as_bytes().to_vec(),
        identity: me.identity().to_vec(),
        parent: multiproc::parent_process().map(|p| (p.pid(), p.name().to_owned())),
        stdin_bytes: stdin.len(),
    }
}

/// Starts `width` children per level down to `depth`, returning every
/// process's name in pre-order.
#[process_task]
fn tree(depth: u32, width: u32) -> Vec<String> {
    let mut names = vec![multiproc::current_process().name().to_owned()];
    if depth > 0 {
        for _ in 0..width {
            names.extend(multiproc::spawn(tree, (depth - 1, width)).unwrap().join().unwrap());
        }
    }
    names
}

#[process_task]
fn try_start_child() -> String {
    match multiproc::spawn(noop, ()) {
        Ok(_) => "started".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn typed_result_comes_back() {
    assert_eq!(multiproc::spawn(square, (12,)).unwrap().join().unwrap(), 144);
    assert_eq!(Builder::new(square, SquareArgs { x: 5 }).start().unwrap().join().unwrap(), 25);
    // The task is still an ordinary function.
    assert_eq!(square(3), 9);
}

#[test]
fn before_and_after_start() {
    let b = Builder::new(noop, ());
    let dbg = format!("{b:?}");
    assert!(dbg.contains("Process-"), "{dbg}");
    let child = b.start().unwrap();
    assert_ne!(child.pid(), std::process::id());
    assert!(child.name().starts_with("Process-"));
    assert_eq!(child.status().is_none(), child.is_alive());
    let status = child.wait().unwrap();
    assert_eq!(status, ExitStatus::Code(0));
    assert_eq!(child.exitcode(), Some(0));
    assert!(!child.is_alive());
    assert!(multiproc::active_children().iter().all(|c| c.pid != child.pid()));
    // Joining again is fine (Python's repeated join()).
    assert_eq!(child.wait().unwrap(), ExitStatus::Code(0));
    child.join().unwrap();
}

#[test]
fn running_child_is_active() {
    let child = multiproc::spawn(hang, ()).unwrap();
    assert!(child.is_alive());
    assert_eq!(child.exitcode(), None);
    assert!(multiproc::active_children().iter().any(|c| c.pid == child.pid() && c.name == child.name()));
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap(), ExitStatus::Signal(KILL_SIGNAL));
    assert!(multiproc::active_children().iter().all(|c| c.pid != child.pid()));
}

#[test]
fn names_count_in_creation_order() {
    let a = Builder::new(noop, ());
    let b = Builder::new(noop, ());
    let n = |b: &Builder<()>| -> u32 {
        let d = format!("{b:?}");
        let start = d.find("Process-").unwrap() + "Process-".len();
        d[start..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    assert!(n(&b) > n(&a));
    let named = Builder::new(noop, ()).name("worker").start().unwrap();
    assert_eq!(named.name(), "worker");
    named.wait().unwrap();
    drop((a, b));
}

#[test]
fn child_knows_itself_and_its_parent() {
    let child = Builder::new(facts, ()).name("inspector").start().unwrap();
    let pid = child.pid();
    let f = child.join().unwrap();
    assert_eq!(f.name, "inspector");
    assert_eq!(f.pid, pid);
    assert!(!f.daemon);
    assert_eq!(f.authkey, multiproc::current_process().authkey().as_bytes());
    assert_eq!(f.parent, Some((std::process::id(), "MainProcess".to_owned())));
    assert_eq!(f.identity.len(), 1);
    assert_eq!(f.stdin_bytes, 0, "stdin is the null device");
}

#[test]
fn authkey_can_be_overridden() {
    let key = multiproc::AuthKey::new(b"sesame".to_vec());
    let child = Builder::new(facts, ()).authkey(key.clone()).start().unwrap();
    assert_eq!(child.authkey(), &key);
    assert_eq!(child.join().unwrap().authkey, b"sesame");
}

#[test]
fn exit_code_of_a_return_is_zero() {
    let c = multiproc::spawn(noop, ()).unwrap();
    assert_eq!(c.wait().unwrap().exitcode(), 0);
}

#[test]
fn panic_comes_back_with_message_and_location() {
    let c = Builder::new(boom, ("the sky fell".to_string(),)).name("faller").start().unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Code(1));
    match c.join() {
        Err(Error::Panicked { name, panic }) => {
            assert_eq!(name, "faller");
            assert_eq!(panic.message, "the sky fell");
            let loc = panic.location.expect("a location");
            assert!(loc.contains("lifecycle.rs"), "{loc}");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
}

/// What `unwrap()` prints of a child's panic reads as text: the variant,
/// the message, and the child's backtrace on lines of its own, not one
/// escaped line of thousands of characters.
#[test]
fn the_debug_of_a_child_panic_is_readable() {
    let err = multiproc::spawn(boom, ("the sky fell".to_string(),)).unwrap().join().unwrap_err();
    let debug = format!("{err:?}");
    assert!(debug.starts_with("Panicked: process Process-"), "{debug}");
    assert!(debug.contains("lifecycle.rs") && debug.contains(": the sky fell"), "{debug}");
    assert!(!debug.contains("\\n") && !debug.contains("PanicInfo"), "{debug}");
    let Error::Panicked { panic, .. } = &err else { unreachable!() };
    match &panic.backtrace {
        // The test harness runs with or without RUST_BACKTRACE.
        Some(_) => assert!(debug.contains("\n\nthe child's backtrace:\n"), "{debug}"),
        None => assert_eq!(debug.lines().count(), 1, "{debug}"),
    }
    assert!(debug.lines().all(|l| l.len() < 400), "{debug}");
}

#[test]
fn exit_n_gives_code_n_and_no_result() {
    let c = multiproc::spawn(exit_with, (3,)).unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Code(3));
    assert_eq!(c.exitcode(), Some(3));
    assert!(matches!(c.join(), Err(Error::NoResult { status: ExitStatus::Code(3), .. })));
}

/// 111–119 are the bootstrap's codes only when the child never reached its
/// task: a task that exits with one of them is reported as that code.
#[test]
fn a_task_exiting_with_a_bootstrap_code_is_reported_as_that_code() {
    let children: Vec<_> = (111..=119).map(|code| (code, multiproc::spawn(exit_with, (code,)).unwrap())).collect();
    for (code, c) in children {
        match c.join() {
            Err(Error::NoResult { status: ExitStatus::Code(n), .. }) if n == code => {}
            other => panic!("exit({code}) came back as {other:?}"),
        }
    }
}

#[test]
fn returned_err_is_typed_and_exits_1() {
    let c = multiproc::spawn(fails, ("nope".to_string(),)).unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Code(1));
    assert_eq!(c.join().unwrap(), Err("nope".to_string()));
    let c = multiproc::spawn(succeeds, (7,)).unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Code(0));
    assert_eq!(c.join().unwrap(), Ok(7));
}

#[test]
fn terminate_gives_minus_sigterm() {
    let c = multiproc::spawn(hang, ()).unwrap();
    c.terminate().unwrap();
    assert_eq!(c.wait().unwrap().exitcode(), -15);
    assert_eq!(c.exitcode(), Some(-15));
    // Signalling a finished child is not an error.
    c.terminate().unwrap();
    c.kill().unwrap();
    assert!(matches!(c.join(), Err(Error::NoResult { status: ExitStatus::Signal(15), .. })));
}

#[test]
fn kill_gives_minus_sigkill() {
    let c = multiproc::spawn(hang, ()).unwrap();
    c.kill().unwrap();
    assert_eq!(c.wait().unwrap().exitcode(), -KILL_SIGNAL);
}

#[test]
fn join_timeout_returns_while_alive() {
    let c = multiproc::spawn(hang, ()).unwrap();
    let t = Instant::now();
    assert_eq!(c.join_timeout(Duration::from_millis(200)).unwrap(), None);
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(100), "returned after {waited:?}");
    assert!(c.is_alive());
    assert_eq!(c.join_timeout(Duration::ZERO).unwrap(), None);
    c.terminate().unwrap();
    assert_eq!(c.join_timeout(Duration::from_secs(60)).unwrap(), Some(ExitStatus::Signal(15)));
}

#[test]
fn close_refuses_a_running_child() {
    let c = multiproc::spawn(hang, ()).unwrap();
    let err = c.close().unwrap_err();
    assert!(err.to_string().contains("still running"));
    let c = err.into_child();
    c.kill().unwrap();
    c.wait().unwrap();
    c.close().unwrap();
}

#[test]
fn nested_three_levels_report_names_in_preorder() {
    let c = multiproc::spawn(tree, (2, 2)).unwrap();
    let top = c.name().to_owned();
    let names = c.join().unwrap();
    let expected: Vec<String> =
        ["", ":1", ":1:1", ":1:2", ":2", ":2:1", ":2:2"].iter().map(|s| format!("{top}{s}")).collect();
    assert_eq!(names, expected);
}

#[test]
fn daemon_cannot_have_children() {
    let c = Builder::new(try_start_child, ()).daemon(true).start().unwrap();
    assert!(c.daemon());
    assert_eq!(c.join().unwrap(), "daemonic processes are not allowed to have children");
    let c = Builder::new(try_start_child, ()).start().unwrap();
    assert_eq!(c.join().unwrap(), "started");
}

#[test]
fn daemon_flag_reaches_the_child() {
    let f = Builder::new(facts, ()).daemon(true).start().unwrap().join().unwrap();
    assert!(f.daemon);
}

#[test]
fn many_short_children_all_exit_zero() {
    let children: Vec<_> = (0..20).map(|i| multiproc::spawn(square, (i,)).unwrap()).collect();
    for (i, c) in children.into_iter().enumerate() {
        assert_eq!(c.join().unwrap(), (i * i) as u64);
    }
}

#[test]
fn many_sleepers_terminated_right_after_start() {
    let children: Vec<_> = (0..20).map(|_| multiproc::spawn(hang, ()).unwrap()).collect();
    for c in &children {
        c.terminate().unwrap();
    }
    for c in &children {
        assert_eq!(c.join_timeout(Duration::from_secs(60)).unwrap(), Some(ExitStatus::Signal(15)));
    }
}

#[test]
fn dropped_handles_are_reaped() {
    let pid = {
        let c = multiproc::spawn(noop, ()).unwrap();
        c.pid()
    };
    assert!(eventually(Duration::from_secs(60), || { multiproc::active_children().iter().all(|c| c.pid != pid) }));
    #[cfg(target_os = "linux")]
    assert!(!multiproc_tests::zombie_children().contains(&pid));
}

#[test]
fn cpu_counts() {
    assert!(multiproc::cpu_count().get() >= 1);
    assert!(multiproc::usable_cpu_count().get() <= multiproc::cpu_count().get());
}

#[test]
fn main_process_facts() {
    let me = multiproc::current_process();
    assert_eq!(me.name(), "MainProcess");
    assert_eq!(me.pid(), std::process::id());
    assert!(!me.daemon());
    assert_eq!(me.authkey().as_bytes().len(), 32);
    assert!(multiproc::parent_process().is_none());
}

/// A process type (Python's subclass with an overridden `run`): its state
/// travels to the child; `run` exits with 2 if the state did not arrive.
#[derive(multiproc::Process, Serialize, Deserialize)]
struct Greeter {
    greeting: String,
    times: u32,
}

impl multiproc::Process for Greeter {
    fn run(&mut self) {
        let ok = self.greeting == "hello" && self.times == 3 && multiproc::current_process().name() == "greeter";
        if !ok {
            std::process::exit(2);
        }
        self.times += 1;
    }
}

#[test]
fn process_type_runs_with_its_state() {
    use multiproc::Process as _;
    let c = Greeter { greeting: "hello".into(), times: 3 }.builder().name("greeter").start().unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Code(0));
    c.join().unwrap();
    let c = Greeter { greeting: "bye".into(), times: 3 }.builder().name("greeter").start().unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Code(2));
}

#[process_task]
fn environment() -> (std::path::PathBuf, Option<String>, Vec<String>, Option<String>) {
    (
        std::env::current_dir().unwrap(),
        std::env::var("LIFECYCLE_MARKER").ok(),
        std::env::args().collect(),
        std::env::var("MULTIPROC_BOOTSTRAP").ok(),
    )
}

#[test]
fn child_sees_cwd_env_and_argv_but_not_the_bootstrap_variable() {
    // SAFETY: the variable is only read by children of this test.
    unsafe { std::env::set_var("LIFECYCLE_MARKER", "present") };
    let (cwd, marker, args, boot) = multiproc::spawn(environment, ()).unwrap().join().unwrap();
    assert_eq!(cwd, std::env::current_dir().unwrap());
    assert_eq!(marker.as_deref(), Some("present"));
    assert_eq!(args, std::env::args().collect::<Vec<_>>());
    assert_eq!(boot, None, "the bootstrap variable is removed before user code");
}

/// A process type that reports the name it runs under.
#[derive(multiproc::Process, serde::Serialize, serde::Deserialize)]
struct Namer {
    out: multiproc::Connection<String>,
}

impl multiproc::Process for Namer {
    fn run(&mut self) {
        self.out.send(&multiproc::current_process().name().to_owned()).unwrap();
    }
}

/// An unstarted builder tells its name, and a process type's default name
/// is `TypeName-N`, as CPython names a subclass's processes.
#[test]
fn names_are_known_before_start_and_a_process_type_names_its_processes() {
    use multiproc::Process;
    let b = Builder::new(noop, ());
    assert!(b.get_name().starts_with("Process-"), "{}", b.get_name());
    assert_eq!(b.name("mine").get_name(), "mine");

    let (here, there) = multiproc::pipe::<String>().unwrap();
    let builder = Namer { out: there }.builder();
    let name = builder.get_name().to_owned();
    assert!(name.starts_with("Namer-") && name["Namer-".len()..].parse::<u32>().is_ok(), "{name}");
    let child = builder.start().unwrap();
    assert_eq!(child.name(), name);
    assert_eq!(here.recv().unwrap(), name, "the child runs under the same name");
    child.join().unwrap();
}
