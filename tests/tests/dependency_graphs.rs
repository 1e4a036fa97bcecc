//! multiproc seen from other crates' dependency graphs, each built and run
//! as a real program outside this workspace:
//!
//! - two semver-incompatible versions in one program (this workspace's
//!   multiproc as `mp_a`, a copy of it at 0.99.0 as `mp_b`): each dispatches
//!   its own tasks, and neither mistakes the other's child or task for its
//!   own;
//! - a renamed dependency (`mp = { package = "multiproc" }`): the macros find
//!   it without being told;
//! - a crate that only reaches multiproc through another crate's re-export:
//!   `crate = facade::multiproc` works, and without it the build fails with
//!   one error that names that option.
//!
//! How the programs are built and run (and cross-checked under Wine):
//! `multiproc_tests::outside`.

// Runs cargo: cargo itself cannot run inside a Windows test binary.
#![cfg(unix)]

use std::fs;
use std::path::{Path, PathBuf};

use multiproc_tests::outside::{
    build, projects_dir, run, serde_dep, this_multiproc, workspace_root, write_if_changed, write_package,
};

const TWO_VERSIONS: &str = r#"
use serde::{Deserialize, Serialize};

#[mp_a::process_task(crate = mp_a)]
fn from_a(x: u64) -> String {
    format!("a{x} in {}", mp_a::current_process().name())
}

#[mp_b::process_task(crate = mp_b)]
fn from_b(x: u64) -> String {
    format!("b{x} in {}", mp_b::current_process().name())
}

/// A task of version a that starts a child of version b (to b, the process
/// it runs in is a main process, whose first child is Process-1).
#[mp_a::process_task(crate = mp_a)]
fn nested(x: u64) -> String {
    mp_b::spawn(from_b, x).unwrap().join().unwrap()
}

#[derive(Serialize, Deserialize, mp_b::Process)]
#[multiproc(crate = mp_b)]
struct Greeter {
    who: String,
}

impl mp_b::Process for Greeter {
    fn run(&mut self) {
        println!("hello {} from b", self.who);
    }
}

fn main() {
    let a = mp_a::Builder::new(from_a, 1).name("one").start().unwrap().join().unwrap();
    println!("{a}");
    let b = mp_b::Builder::new(from_b, 2).name("two").start().unwrap().join().unwrap();
    println!("{b}");
    println!("{}", mp_a::spawn(nested, 3).unwrap().join().unwrap());
    mp_b::Builder::process(Greeter { who: "world".into() }).start().unwrap().join().unwrap();
    match mp_b::spawn(from_a, 4) {
        Err(mp_b::Error::Registry(e)) => println!("b refuses a's task: {e}"),
        Err(e) => println!("b fails otherwise on a's task: {e}"),
        Ok(child) => println!("b ran a's task: {:?}", child.join()),
    }
}
"#;

/// Copies a crate directory (its manifest and `src/`, plus `build.rs` and
/// the files its docs include). What an earlier copy left in `src/` that
/// the crate no longer has is removed (a module moved into a directory of
/// its own would otherwise be found twice).
fn copy_crate(from: &Path, to: &Path) {
    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(to).unwrap() {
            let entry = entry.unwrap();
            if !from.join(entry.file_name()).exists() {
                let stale = entry.path();
                match entry.file_type().unwrap().is_dir() {
                    true => fs::remove_dir_all(&stale).unwrap(),
                    false => fs::remove_file(&stale).unwrap(),
                }
            }
        }
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&path, &to.join(entry.file_name()));
            } else {
                write_if_changed(&to.join(entry.file_name()), &fs::read(&path).unwrap());
            }
        }
    }
    copy_dir(&from.join("src"), &to.join("src"));
    for file in ["Cargo.toml", "build.rs", "GUIDE.md"] {
        if from.join(file).exists() {
            write_if_changed(&to.join(file), &fs::read(from.join(file)).unwrap());
        }
    }
}

/// Writes a copy of this workspace's runtime and macros at version 0.99.0;
/// returns the copy's runtime directory.
fn write_copy_at_0_99() -> PathBuf {
    let root = workspace_root();
    let copy = projects_dir().join("copy");
    copy_crate(&root.join("runtime"), &copy.join("runtime"));
    copy_crate(&root.join("macros"), &copy.join("macros"));
    // The runtime's docs include the README from the workspace root.
    write_if_changed(&copy.join("README.md"), &fs::read(root.join("README.md")).unwrap());
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let members = manifest.lines().find(|l| l.starts_with("members")).expect("a members line");
    let manifest = manifest
        .replace(members, r#"members = ["macros", "runtime"]"#)
        .replace("version = \"0.1.0\"\n", "version = \"0.99.0\"\n")
        .replace("version = \"=0.1.0\"", "version = \"=0.99.0\"");
    assert!(manifest.contains("0.99.0"), "the copy's version was not rewritten");
    write_if_changed(&copy.join("Cargo.toml"), manifest.as_bytes());
    copy.join("runtime")
}

#[test]
fn each_version_dispatches_its_own_tasks() {
    let copy = write_copy_at_0_99();
    let deps = [
        this_multiproc("mp_a"),
        format!("mp_b = {{ package = \"multiproc\", path = {:?}, version = \"0.99\" }}", copy.display().to_string()),
        serde_dep(),
    ];
    let app = write_package("two-versions", &deps, &[("src/main.rs", TWO_VERSIONS)]);
    let exe = build(&app, "two-versions").unwrap_or_else(|e| panic!("cargo build failed:\n{e}"));
    let lines = run(&exe);
    assert_eq!(lines[..4], ["a1 in one", "b2 in two", "b3 in Process-1", "hello world from b"]);
    assert!(
        lines[4].starts_with("b refuses a's task: ") && lines[4].contains("from_a"),
        "version b must refuse version a's task with a registry error: {:?}",
        lines[4]
    );
    assert_eq!(lines.len(), 5, "{lines:?}");
}

const RENAMED: &str = r#"
use serde::{Deserialize, Serialize};

#[mp::process_task]
fn double(x: u64) -> u64 {
    x * 2
}

#[derive(Serialize, Deserialize, mp::Process)]
struct Hello;

impl mp::Process for Hello {
    fn run(&mut self) {
        println!("hello from {}", mp::current_process().name());
    }
}

fn main() {
    println!("{}", mp::spawn(double, 21).unwrap().join().unwrap());
    mp::Builder::process(Hello).name("renamed").start().unwrap().join().unwrap();
}
"#;

#[test]
fn a_renamed_dependency_needs_no_crate_option() {
    let app = write_package("renamed", &[this_multiproc("mp"), serde_dep()], &[("src/main.rs", RENAMED)]);
    let exe = build(&app, "renamed").unwrap_or_else(|e| panic!("cargo build failed:\n{e}"));
    assert_eq!(run(&exe), ["42", "hello from renamed"]);
}

const FACADE: &str = "pub use multiproc;\n";

const THROUGH_FACADE: &str = r#"
use facade::multiproc;

#[multiproc::process_task(crate = facade::multiproc)]
fn double(x: u64) -> u64 {
    x * 2
}

fn main() {
    println!("{}", multiproc::spawn(double, 21).unwrap().join().unwrap());
}
"#;

/// The same program without the `crate` option.
const THROUGH_FACADE_WITHOUT_PATH: &str = r#"
use facade::multiproc;

#[multiproc::process_task]
fn double(x: u64) -> u64 {
    x * 2
}

fn main() {
    println!("{}", multiproc::spawn(double, 21).unwrap().join().unwrap());
}
"#;

#[test]
fn a_crate_that_reaches_multiproc_through_a_reexport_names_the_path() {
    let facade = write_package("facade", &[this_multiproc("multiproc")], &[("src/lib.rs", FACADE)]);
    let facade_dep = format!("facade = {{ path = {:?} }}", facade.display().to_string());
    let app = write_package(
        "through-facade",
        &[facade_dep],
        &[("src/main.rs", THROUGH_FACADE), ("src/bin/without_path.rs", THROUGH_FACADE_WITHOUT_PATH)],
    );
    let exe = build(&app, "through-facade").unwrap_or_else(|e| panic!("cargo build failed:\n{e}"));
    assert_eq!(run(&exe), ["42"]);

    let stderr = build(&app, "without_path").expect_err("a task without the crate path must not build");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 2, "one error, then cargo's \"could not compile\":\n{stderr}");
    assert!(errors[0].contains("`multiproc` is not a dependency of this crate"), "{stderr}");
    assert!(errors[0].contains("#[process_task(crate = that_crate::multiproc)]"), "{stderr}");
}
