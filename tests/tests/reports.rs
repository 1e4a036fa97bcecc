//! What a failing child prints on its stderr: a panic as std would print
//! it (the backtrace as `RUST_BACKTRACE` asks), a returned `Err` only when
//! asked, nothing at all when the program keeps its children quiet.

use std::process::Command;

/// Runs the `failing` program with `RUST_BACKTRACE` set to `backtrace`
/// (unset for `None`) and `arg`; its stderr.
fn stderr_of(backtrace: Option<&str>, arg: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_failing"));
    cmd.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
    if let Some(b) = backtrace {
        cmd.env("RUST_BACKTRACE", b);
    }
    cmd.args(arg);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[test]
fn without_rust_backtrace_a_panic_is_its_message_and_location() {
    let err = stderr_of(None, None);
    assert!(err.contains("Process Process-1:\nthread 'main' panicked at "), "{err}");
    assert!(err.contains("failing.rs") && err.contains("\nthe task gave up\n"), "{err}");
    assert!(err.contains("note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"), "{err}");
    assert!(!err.contains("stack backtrace"), "{err}");
}

#[test]
fn with_rust_backtrace_1_the_backtrace_is_the_short_one() {
    let err = stderr_of(Some("1"), None);
    assert!(err.contains("stack backtrace:\n"), "{err}");
    assert!(err.contains("deep_inside"), "the task's own frames are kept: {err}");
    assert!(!err.contains("__rust_end_short_backtrace") && !err.contains("run_child"), "{err}");
    assert!(err.contains("note: Some details are omitted, run with `RUST_BACKTRACE=full`"), "{err}");
}

#[test]
fn with_rust_backtrace_full_every_frame_is_printed() {
    let err = stderr_of(Some("full"), None);
    assert!(err.contains("stack backtrace:\n") && err.contains("deep_inside"), "{err}");
    assert!(err.contains("run_child"), "the dispatcher's frames are there too: {err}");
    assert!(!err.contains("Some details are omitted"), "{err}");
}

#[test]
fn a_returned_err_is_printed_only_when_asked() {
    assert!(!stderr_of(None, None).contains("a handled failure"));
    let err = stderr_of(None, Some("all"));
    assert!(err.contains("Process Process-2:\nError: \"a handled failure\""), "{err}");
}

#[test]
fn quiet_children_print_nothing() {
    assert_eq!(stderr_of(Some("1"), Some("quiet")), "");
}
