//! Under `cargo test`, a child's output is captured with the test's own:
//! a passing test whose child prints or panics shows nothing, `--nocapture`
//! shows all of it, and a failing test shows its child's output with its
//! own.
//!
//! The tests run `cargo test` on a small crate of their own, built outside
//! this workspace (`multiproc_tests::outside`).

// Runs cargo: cargo itself cannot run inside a Windows test binary.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use multiproc_tests::outside::{TestRun, cargo_test, this_multiproc, write_package};

const CHATTY: &str = r#"
#[multiproc::process_task]
fn chatter() {
    println!("CHILD-STDOUT-LINE");
    eprintln!("CHILD-STDERR-LINE");
}

#[multiproc::process_task]
fn explode() {
    panic!("CHILD-PANIC-MESSAGE");
}

/// A child of a child prints too.
#[multiproc::process_task]
fn chatter_below() {
    multiproc::spawn(chatter, ()).unwrap().join().unwrap();
}

#[test]
fn passes_with_a_chatty_child() {
    multiproc::spawn(chatter, ()).unwrap().join().unwrap();
}

#[test]
fn passes_with_a_panicking_child() {
    assert!(multiproc::spawn(explode, ()).unwrap().join().is_err());
}

#[test]
fn passes_with_a_chatty_grandchild() {
    multiproc::spawn(chatter_below, ()).unwrap().join().unwrap();
}

#[test]
#[ignore]
fn fails_after_a_chatty_child() {
    multiproc::spawn(chatter, ()).unwrap().join().unwrap();
    panic!("THE-TEST-FAILED");
}
"#;

/// The crate, written once per run of these tests.
fn chatty() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        write_package("chatty", &[this_multiproc("multiproc")], &[("src/lib.rs", ""), ("tests/chatty.rs", CHATTY)])
    })
}

fn shows_child_output(run: &TestRun) -> bool {
    ["CHILD-STDOUT-LINE", "CHILD-STDERR-LINE", "CHILD-PANIC-MESSAGE"].iter().any(|m| run.output.contains(m))
}

#[test]
fn passing_tests_show_nothing_of_their_children() {
    let run = cargo_test(chatty(), "chatty", &[]);
    assert!(run.passed, "{}", run.output);
    assert!(!shows_child_output(&run), "a passing test's children must be quiet:\n{}", run.output);
}

#[test]
fn nocapture_shows_everything() {
    let run = cargo_test(chatty(), "chatty", &["--nocapture", "--test-threads=1"]);
    assert!(run.passed, "{}", run.output);
    for marker in ["CHILD-STDOUT-LINE", "CHILD-STDERR-LINE", "CHILD-PANIC-MESSAGE"] {
        assert!(run.output.contains(marker), "{marker} is missing with --nocapture:\n{}", run.output);
    }
    // Two chatty children (one of them a grandchild): two lines each.
    assert_eq!(run.output.matches("CHILD-STDOUT-LINE").count(), 2, "{}", run.output);
}

#[test]
fn a_failing_test_shows_its_childrens_output_with_its_own() {
    let run = cargo_test(chatty(), "chatty", &["--ignored", "fails_after_a_chatty_child"]);
    assert!(!run.passed, "{}", run.output);
    let section = run
        .output
        .split("---- fails_after_a_chatty_child stdout ----")
        .nth(1)
        .unwrap_or_else(|| panic!("no captured output section:\n{}", run.output));
    assert!(section.contains("THE-TEST-FAILED"), "{}", run.output);
    assert!(section.contains("CHILD-STDOUT-LINE"), "the child's stdout belongs with the test's:\n{}", run.output);
    assert!(section.contains("CHILD-STDERR-LINE"), "the child's stderr belongs with the test's:\n{}", run.output);
}
