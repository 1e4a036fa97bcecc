//! Programs built outside this workspace, as a user's crate would be:
//! written to a directory of their own (cargo resolves a path dependency
//! inside another workspace's tree against that workspace), rewritten only
//! when they change, and built into one shared target directory, so that a
//! second run is quick.
//!
//! Cross-checking another target: `MULTIPROC_EXAMPLE_TARGET` (for example
//! `x86_64-pc-windows-gnu`) builds with `--target`, and
//! `MULTIPROC_EXAMPLE_RUNNER` (for example `ci/wine/runner.sh`) runs the
//! results.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The workspace this crate is part of.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the workspace").to_path_buf()
}

/// The target named by `MULTIPROC_EXAMPLE_TARGET`, if any.
pub fn cross_target() -> Option<String> {
    std::env::var("MULTIPROC_EXAMPLE_TARGET").ok().filter(|t| !t.trim().is_empty())
}

/// Writes `bytes` to `path` unless it holds them already, so that cargo
/// sees a second run's copy as unchanged.
pub fn write_if_changed(path: &Path, bytes: &[u8]) {
    if fs::read(path).ok().as_deref() != Some(bytes) {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).unwrap();
        }
        fs::write(path, bytes).unwrap();
    }
}

/// Where the programs are built: one target directory for all of them,
/// beside this test's (`<target>/tmp/outside-builds`), so that the
/// dependencies they share are built once.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    // <target>/<profile>/deps/<test>
    let target = exe.ancestors().nth(3).expect("a test runs from <target>/<profile>/deps");
    target.join("tmp").join("outside-builds")
}

/// The directory the projects are written to.
pub fn projects_dir() -> PathBuf {
    std::env::temp_dir().join(format!("multiproc-outside-builds-{}", env!("CARGO_PKG_VERSION")))
}

/// Writes a package `name` depending on `deps` (lines of a
/// `[dependencies]` table) with `files` (path, contents); returns its
/// directory.
pub fn write_package(name: &str, deps: &[String], files: &[(&str, &str)]) -> PathBuf {
    let dir = projects_dir().join(name);
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [workspace]\n\n[dependencies]\n{}\n",
        deps.join("\n")
    );
    write_if_changed(&dir.join("Cargo.toml"), manifest.as_bytes());
    for (path, text) in files {
        write_if_changed(&dir.join(path), text.as_bytes());
    }
    // The workspace's lock file pins every shared dependency to a version
    // that is already downloaded.
    if !dir.join("Cargo.lock").exists() {
        fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    }
    dir
}

/// `name = { package = "multiproc", path = <this workspace's runtime> }`.
pub fn this_multiproc(name: &str) -> String {
    format!(
        "{name} = {{ package = \"multiproc\", path = {:?} }}",
        workspace_root().join("runtime").display().to_string()
    )
}

/// serde with `derive`, as a `[dependencies]` line.
pub fn serde_dep() -> String {
    "serde = { version = \"1\", features = [\"derive\"] }".to_string()
}

/// `cargo build` of `bin` in the package at `dir`, for the cross target if
/// one is set: the binary's path, or cargo's stderr.
pub fn build(dir: &Path, bin: &str) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = target_dir();
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(dir).args(["build", "--offline", "--quiet", "--bin", bin, "--target-dir"]).arg(&target_dir);
    let mut exe = target_dir;
    if let Some(target) = cross_target() {
        cmd.args(["--target", &target]);
        exe.push(target);
    }
    exe.push("debug");
    exe.push(if cross_target().is_some_and(|t| t.contains("windows")) {
        format!("{bin}.exe")
    } else {
        bin.to_string()
    });
    let out = cmd.stdin(Stdio::null()).output().expect("run cargo build");
    if out.status.success() { Ok(exe) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

/// Runs a built program (through the runner, if one is set); its stdout
/// lines, after checking that it succeeded.
pub fn run(exe: &Path) -> Vec<String> {
    let mut cmd = match std::env::var("MULTIPROC_EXAMPLE_RUNNER").ok().filter(|r| !r.trim().is_empty()) {
        Some(runner) => {
            let mut words = runner.split_whitespace();
            let mut cmd = Command::new(words.next().unwrap());
            cmd.args(words).arg(exe);
            cmd
        }
        None => Command::new(exe),
    };
    let out = cmd.stdin(Stdio::null()).output().expect("run the program");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the program failed ({}):\n{stdout}\n{stderr}", out.status);
    stdout.lines().map(|l| l.trim_end().to_string()).collect()
}

/// What a `cargo test` run printed.
pub struct TestRun {
    /// Whether every test passed.
    pub passed: bool,
    /// stdout and stderr together (libtest's report is on stdout, a child's
    /// stray output could be on either).
    pub output: String,
}

/// `cargo test --test <test> -- <args>` in the package at `dir`; for the
/// cross target, its test binary runs through the runner.
pub fn cargo_test(dir: &Path, test: &str, args: &[&str]) -> TestRun {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(dir).args(["test", "--offline", "--quiet", "--test", test, "--target-dir"]).arg(target_dir());
    if let Some(target) = cross_target() {
        cmd.args(["--target", &target]);
        if let Some(runner) = std::env::var("MULTIPROC_EXAMPLE_RUNNER").ok().filter(|r| !r.trim().is_empty()) {
            let var = format!("CARGO_TARGET_{}_RUNNER", target.to_uppercase().replace('-', "_"));
            cmd.env(var, runner);
        }
    }
    cmd.arg("--").args(args);
    // The run must see libtest's defaults, whatever this test was given.
    cmd.env_remove("RUST_TEST_NOCAPTURE").env_remove("RUST_TEST_THREADS");
    let out = cmd.stdin(Stdio::null()).output().expect("run cargo test");
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    TestRun { passed: out.status.success(), output }
}
