//! Names this version's process-wide symbols after its semver-compatible
//! part ("0_1" for 0.1.x, "2" for 2.x), so that two incompatible versions
//! of the crate in one program keep apart: each has its own dispatch table
//! (a link section named after it) and its own bootstrap variable, and each
//! dispatches its own children.
//!
//! Emits `MULTIPROC_COMPAT` for `env!` and `$OUT_DIR/tables.rs`, the
//! declarations of the tables, for `include!`.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let version = env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let compat = compat(&version);
    println!("cargo::rustc-env=MULTIPROC_COMPAT={compat}");
    let tables = format!(
        "/// Every task and process type of the program, for this version of multiproc.\n\
         #[doc(hidden)]\n\
         #[distributed_slice]\n\
         pub static MULTIPROC_{compat}_TASKS: [TaskEntry];\n\
         #[doc(hidden)]\n\
         pub use MULTIPROC_{compat}_TASKS as TASKS;\n\
         \n\
         /// Every `#[child_init]` function of the program, for this version of multiproc.\n\
         #[doc(hidden)]\n\
         #[distributed_slice]\n\
         pub static MULTIPROC_{compat}_CHILD_INITS: [ChildInit];\n\
         #[doc(hidden)]\n\
         pub use MULTIPROC_{compat}_CHILD_INITS as CHILD_INITS;\n"
    );
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("tables.rs");
    fs::write(out, tables).expect("write tables.rs");
    println!("cargo::rerun-if-changed=build.rs");
}

/// The part of a version that semver compatibility keeps fixed: the major
/// number, or for 0.y.z the minor one too, or for 0.0.z all three.
fn compat(version: &str) -> String {
    let core = version.split(['-', '+']).next().unwrap_or(version);
    let parts: Vec<&str> = core.split('.').collect();
    let keep = match parts.as_slice() {
        ["0", "0", ..] => 3,
        ["0", ..] => 2,
        _ => 1,
    };
    parts.iter().take(keep).copied().collect::<Vec<_>>().join("_")
}
