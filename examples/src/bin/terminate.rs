//! `terminate`, `is_alive` and `exitcode`.
//!
//! Mirrors the first program of "多进程中的其他方法" (tutorial
//! "multiprocess.process模块"):
//!
//! ```python
//! class Myprocess(Process):
//!     def __init__(self, person):
//!         self.name = person
//!         super().__init__()
//!     def run(self):
//!         print('%s正在和陈松聊天' % self.name)
//!         time.sleep(random.randrange(1, 5))
//!         print('%s还在和陈松聊天' % self.name)
//!
//! p1 = Myprocess('陈松')
//! p1.start()
//! p1.terminate()        # does not stop it at once...
//! print(p1.is_alive())  # ...so this is usually True
//! print('开始')
//! print(p1.is_alive())  # False, once it is gone
//! ```
//!
//! Python's second `is_alive()` is `False` only if the child happens to be
//! gone by then. Here the parent [`wait`](multiproc::Child::wait)s for it
//! first, so the answer is always `false`, and the exit code shows how it
//! ended: `-15` (SIGTERM) in Python's convention on Unix. The second part
//! lets the child print its first line before terminating it: the child
//! says so on a pipe, then waits on it for an answer that never comes, so
//! it is still running, and its second line is never printed, however
//! slow the machine. `kill` is the same with SIGKILL (`-9`).
//!
//! ```sh
//! cargo run -p multiproc-examples --bin terminate
//! ```

use std::thread::sleep;

use multiproc::{Connection, Process, current_process, pipe};
use multiproc_examples::{randint, secs};
use serde::{Deserialize, Serialize};

#[derive(Process, Serialize, Deserialize)]
struct Chat;

impl Process for Chat {
    fn run(&mut self) {
        println!("{} is chatting", current_process().name());
        sleep(secs(randint(1, 4) as f64));
        println!("{} is still chatting (never printed)", current_process().name());
    }
}

/// Parts 2 and 3: chats until it is stopped, after telling `main` it has
/// started.
#[derive(Process, Serialize, Deserialize)]
struct LongChat {
    /// Told when the first line is out; never answered.
    main: Connection<()>,
}

impl Process for LongChat {
    fn run(&mut self) {
        println!("{} is chatting", current_process().name());
        let _ = self.main.send(&());
        // Blocks until terminated (main keeps its end open until then).
        if self.main.recv().is_ok() {
            println!("{} is still chatting (never printed)", current_process().name());
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("--- 1. terminate right after start");
    let p1 = Chat.builder().name("Chen Song").start()?;
    p1.terminate()?;
    // Usually true: the signal was sent, but the child may not be gone yet.
    println!("is_alive right after terminate: {}", p1.is_alive());
    println!("start");
    p1.wait()?;
    println!("is_alive after wait: {}", p1.is_alive());
    println!("exitcode: {:?}", p1.exitcode());

    println!("--- 2. terminate while it runs");
    let (chatting, child_end) = pipe()?;
    let p2 = LongChat { main: child_end }.builder().name("Song Ge").start()?;
    chatting.recv()?;
    p2.terminate()?;
    let status = p2.wait()?;
    println!("{} ended with {status}; exitcode {:?}; is_alive {}", p2.name(), p2.exitcode(), p2.is_alive());

    println!("--- 3. kill while it runs");
    let (chatting, child_end) = pipe()?;
    let p3 = LongChat { main: child_end }.builder().name("Song Song").start()?;
    chatting.recv()?;
    p3.kill()?;
    let status = p3.wait()?;
    println!("{} ended with {status}; exitcode {:?}", p3.name(), p3.exitcode());
    // A finished child's handle can be closed (Python's p.close()).
    p3.close().expect("p3 has ended");
    println!("main: done");
    Ok(())
}
