//! A short tour of multiproc: Python's `multiprocessing.Process`, in Rust.
//!
//! Not a port of one tutorial program but a walk through what all of them
//! use, one numbered step at a time, each printing what it shows:
//!
//! 1. start a function in another process and get its typed result back
//!    (`Process(target=greet, args=(..,))`, `start()`, `join()`);
//! 2. positional arguments and named ones (`args=` and `kwargs=`);
//! 3. a panic in the child comes back as an error, with message and location;
//! 4. exit codes (`p.exitcode`) after a return, a returned `Err`, a panic,
//!    `exit(3)`, `terminate()` and `kill()`;
//! 5. daemonic processes (`p.daemon = True`): terminated when the main
//!    process ends, and not allowed to start children;
//! 6. process names in a tree: `Process-2` starts `Process-2:1`;
//!    `current_process()` and `parent_process()`;
//! 7. a process type (a `Process` subclass with `run`);
//! 8. `active_children()` and `cpu_count()`.
//!
//! It takes about a second.
//!
//! ```sh
//! cargo run -p multiproc-examples --bin tour
//! ```

use std::thread::sleep;

use multiproc::{
    Builder, Connection, Error, Process, ReadOnly, active_children, cpu_count, current_process, parent_process,
    pipe_one_way, process_task,
};
use multiproc_examples::secs;
use serde::{Deserialize, Serialize};

#[process_task]
fn greet(name: String) -> String {
    format!("hello, {name}, from process {} (pid {})", current_process().name(), std::process::id())
}

#[process_task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[process_task]
fn boom(msg: String) -> u64 {
    panic!("{msg}");
}

#[process_task]
fn parse(text: String) -> Result<u64, String> {
    text.parse().map_err(|e| format!("{text:?} is not a number: {e}"))
}

#[process_task]
fn exit_with(code: i32) {
    std::process::exit(code);
}

#[process_task]
fn sleep_forever() {
    loop {
        sleep(secs(60.0));
    }
}

/// Sleeps, then stays until main has listed the active children (a message,
/// or end of file if main is gone), so that the list always has it.
#[process_task]
fn nap(seconds: f64, listed: Connection<(), ReadOnly>) {
    sleep(secs(seconds));
    let _ = listed.recv();
}

#[process_task]
fn try_to_start_a_child() -> String {
    match Builder::new(add, (1, 1)).start() {
        Ok(_) => "started a child (unexpected)".to_string(),
        Err(e) => format!("Err({e})"),
    }
}

/// Who am I, and who is my parent?
#[process_task]
fn whoami() -> (String, String) {
    let parent = parent_process().map_or("none".to_string(), |p| p.name().to_string());
    (current_process().name().to_string(), parent)
}

/// Starts a grandchild of the main process and reports both names.
#[process_task]
fn nested() -> Result<(String, String, String), String> {
    let child = Builder::new(whoami, ()).start().map_err(|e| e.to_string())?;
    let (child_name, child_parent) = child.join().map_err(|e| e.to_string())?;
    Ok((current_process().name().to_string(), child_name, child_parent))
}

/// A process type: the value is sent to the child, which calls `run`.
#[derive(Process, Serialize, Deserialize)]
struct Countdown {
    from: u32,
}

impl Process for Countdown {
    fn run(&mut self) {
        let counts: Vec<String> = (1..=self.from).rev().map(|n| n.to_string()).collect();
        println!("   [child {}] countdown: {} ... liftoff", current_process().name(), counts.join(" "));
    }
}

fn main() -> Result<(), Error> {
    println!("multiproc tour: main process {} (pid {})", current_process().name(), std::process::id());

    println!("\n== 1. Start a function in a child process, get its result back");
    let child = Builder::new(greet, ("world".to_string(),)).start()?;
    println!("   started {} with pid {}", child.name(), child.pid());
    let greeting: String = child.join()?;
    println!("   join() returned a String: {greeting:?}");

    println!("\n== 2. Arguments: a tuple (args) or the generated struct (kwargs)");
    let by_position = Builder::new(add, (2, 3)).start()?.join()?;
    let by_name = Builder::new(add, AddArgs { a: 4, b: 5 }).name("adder").start()?;
    let name = by_name.name().to_string();
    println!("   add(2, 3) in a child = {by_position}");
    println!("   {name} ran add(AddArgs {{ a: 4, b: 5 }}) = {}", by_name.join()?);
    println!("   add is still an ordinary function: add(20, 22) = {}", add(20, 22));

    println!("\n== 3. A panic in the child comes back as an error");
    println!("   (the child also reports its panic on stderr, like a Python traceback)");
    match Builder::new(boom, ("something went wrong".to_string(),)).name("boomer").start()?.join() {
        Err(Error::Panicked { name, panic }) => {
            println!("   process {name} panicked: message {:?}", panic.message);
            println!("   at {}", panic.location.as_deref().unwrap_or("<unknown location>"));
        }
        other => println!("   unexpected: {other:?}"),
    }

    println!("\n== 4. Exit codes (Python's p.exitcode)");
    let returned = Builder::new(add, (1, 2)).start()?;
    returned.wait()?;
    println!("   returned normally           -> exitcode {:?}", returned.exitcode());
    let failed = Builder::new(parse, ("forty-two".to_string(),)).start()?;
    failed.wait()?;
    println!("   returned Err(..)            -> exitcode {:?}", failed.exitcode());
    println!("      and join() gives Ok(Err): {:?}", failed.join()?);
    let panicked = Builder::new(boom, ("again".to_string(),)).start()?;
    panicked.wait()?;
    println!("   panicked                    -> exitcode {:?}", panicked.exitcode());
    let exited = Builder::new(exit_with, (3,)).start()?;
    exited.wait()?;
    println!("   std::process::exit(3)       -> exitcode {:?}", exited.exitcode());
    println!("      and join() says: {}", exited.join().expect_err("exit(3) returns no result"));
    let terminated = Builder::new(sleep_forever, ()).start()?;
    println!("   a sleeper: is_alive {}", terminated.is_alive());
    terminated.terminate()?;
    terminated.wait()?;
    println!(
        "   terminate()                 -> exitcode {:?}, is_alive {}",
        terminated.exitcode(),
        terminated.is_alive()
    );
    let killed = Builder::new(sleep_forever, ()).start()?;
    killed.kill()?;
    let status = killed.wait()?;
    println!("   kill()                      -> exitcode {:?} ({status})", killed.exitcode());

    println!("\n== 5. Daemonic processes");
    let daemon = Builder::new(sleep_forever, ()).name("the-daemon").daemon(true).start()?;
    println!(
        "   started {} (pid {}); it sleeps forever, but is terminated when main ends",
        daemon.name(),
        daemon.pid()
    );
    let refused = Builder::new(try_to_start_a_child, ()).daemon(true).start()?.join()?;
    println!("   a daemon trying to start a child gets: {refused}");

    println!("\n== 6. Names in a process tree");
    let parent = Builder::new(nested, ()).start()?;
    match parent.join()? {
        Ok((me, child, childs_parent)) => {
            println!("   {me} started {child}, whose parent_process() is {childs_parent}");
        }
        Err(e) => println!("   the nested start failed: {e}"),
    }
    println!(
        "   here, current_process() is {} and parent_process() is {:?}",
        current_process().name(),
        parent_process().map(|p| p.name())
    );

    println!("\n== 7. A process type (a Process subclass with run)");
    let countdown = Countdown { from: 3 }.builder().name("countdown").start()?;
    countdown.wait()?;
    println!("   {} ran Countdown::run and ended with {}", countdown.name(), countdown.wait()?);

    println!("\n== 8. active_children() and cpu_count()");
    let mut nappers = Vec::new();
    for _ in 0..2 {
        let (listed, lister) = pipe_one_way::<()>().map_err(|source| Error::Io { context: "pipe", source })?;
        nappers.push((Builder::new(nap, (0.5, listed)).start()?, lister));
    }
    for c in active_children() {
        println!("   active: {} (pid {}, daemon {})", c.name, c.pid, c.daemon);
    }
    for (_, lister) in &nappers {
        // Ignored: a napper that is gone needs no word.
        let _ = lister.send(&());
    }
    println!("   cpu_count() = {}", cpu_count());

    println!("\n== Done. main returns: the two nappers are joined and the-daemon is terminated.");
    Ok(())
}
