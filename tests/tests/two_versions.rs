//! Two semver-incompatible versions of multiproc in one program: each
//! dispatches its own tasks, and neither mistakes the other's child or task
//! for its own.
//!
//! The test makes a second copy of the crate (runtime and macros) at
//! version 0.99.0, then builds and runs a program that depends on both:
//! this workspace's multiproc as `mp_a` and the copy as `mp_b`. Both builds
//! go into this test's own target directory, so a second run is quick.
//!
//! Cross-checking another target: `MULTIPROC_EXAMPLE_TARGET` and
//! `MULTIPROC_EXAMPLE_RUNNER` as for the examples test (Windows under
//! Wine).

// Runs cargo: cargo itself cannot run inside a Windows test binary.
#![cfg(unix)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const APP: &str = r#"
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

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the workspace").to_path_buf()
}

fn cross_target() -> Option<String> {
    std::env::var("MULTIPROC_EXAMPLE_TARGET").ok().filter(|t| !t.trim().is_empty())
}

/// Writes `bytes` to `path` unless it holds them already, so that cargo
/// sees a second run's copy as unchanged.
fn write_if_changed(path: &Path, bytes: &[u8]) {
    if fs::read(path).ok().as_deref() != Some(bytes) {
        fs::write(path, bytes).unwrap();
    }
}

/// Copies a crate directory (its manifest and `src/`, plus `build.rs` and
/// the files its docs include).
fn copy_crate(from: &Path, to: &Path) {
    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
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

/// Writes the copy at 0.99.0 and the program; returns the program's
/// directory.
fn write_projects(dir: &Path) -> PathBuf {
    let root = workspace_root();
    let copy = dir.join("copy");
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

    let app = dir.join("app");
    fs::create_dir_all(app.join("src")).unwrap();
    let runtime = root.join("runtime");
    write_if_changed(
        &app.join("Cargo.toml"),
        format!(
            "[package]\nname = \"two-versions\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [workspace]\n\n\
             [dependencies]\n\
             mp_a = {{ package = \"multiproc\", path = {:?} }}\n\
             mp_b = {{ package = \"multiproc\", path = {:?}, version = \"0.99\" }}\n\
             serde = {{ version = \"1\", features = [\"derive\"] }}\n",
            runtime.display().to_string(),
            copy.join("runtime").display().to_string()
        )
        .as_bytes(),
    );
    write_if_changed(&app.join("src/main.rs"), APP.as_bytes());
    // The workspace's lock file pins every shared dependency to a version
    // that is already downloaded.
    if !app.join("Cargo.lock").exists() {
        fs::copy(root.join("Cargo.lock"), app.join("Cargo.lock")).unwrap();
    }
    app
}

#[test]
fn each_version_dispatches_its_own_tasks() {
    // The sources live outside this workspace (cargo resolves a path
    // dependency inside another workspace's tree against that workspace);
    // the build goes to this test's target directory.
    let dir = std::env::temp_dir().join(format!("multiproc-two-versions-{}", env!("CARGO_PKG_VERSION")));
    let app = write_projects(&dir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("two_versions");
    let mut build = Command::new(&cargo);
    build.current_dir(&app).args(["build", "--offline", "--quiet", "--target-dir"]).arg(&target_dir);
    let mut exe = target_dir.clone();
    if let Some(target) = cross_target() {
        build.args(["--target", &target]);
        exe.push(target);
    }
    exe.push("debug");
    exe.push(if cross_target().is_some_and(|t| t.contains("windows")) { "two-versions.exe" } else { "two-versions" });
    let built = build.stdin(Stdio::null()).output().expect("run cargo build");
    assert!(built.status.success(), "cargo build failed:\n{}", String::from_utf8_lossy(&built.stderr));

    let mut run = match std::env::var("MULTIPROC_EXAMPLE_RUNNER").ok().filter(|r| !r.trim().is_empty()) {
        Some(runner) => {
            let mut words = runner.split_whitespace();
            let mut cmd = Command::new(words.next().unwrap());
            cmd.args(words).arg(&exe);
            cmd
        }
        None => Command::new(&exe),
    };
    let out = run.stdin(Stdio::null()).output().expect("run the program");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the program failed ({}):\n{stdout}\n{stderr}", out.status);
    let lines: Vec<&str> = stdout.lines().map(str::trim_end).collect();
    assert_eq!(lines[..4], ["a1 in one", "b2 in two", "b3 in Process-1", "hello world from b"], "{stderr}");
    assert!(
        lines[4].starts_with("b refuses a's task: ") && lines[4].contains("from_a"),
        "version b must refuse version a's task with a registry error: {:?}",
        lines[4]
    );
    assert_eq!(lines.len(), 5, "{stdout}");
}
