//! The compile-time test catalogue: every mistake the macros and the typed
//! API are meant to turn into a compile error (`tests/ui/<category>/`), each
//! with its expected diagnostic, and the forms that must keep compiling
//! (`tests/ui-pass/`).
//!
//! Regenerate the snapshots with
//! `TRYBUILD=overwrite cargo test -p multiproc-tests --test compile_fail`
//! and read every changed `.stderr` before committing it.

// trybuild runs cargo, which the Windows build cannot do under Wine.
#![cfg(unix)]

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/**/*.rs");
    t.pass("tests/ui-pass/*.rs");
}
