//! Daemonic processes: they are terminated when the main process ends, and
//! they may not start children of their own.
//!
//! Mirrors four tutorial programs.
//!
//! Without an argument (`cargo run -p multiproc-examples --bin daemon`):
//!
//! - section 4.1 of "Python多进程与多线程": a daemon that loops forever,
//!   printing every second, while the main process sleeps 3 s and ends;
//!
//!   ```python
//!   def work():
//!       while True:
//!           time.sleep(1)
//!           print("子进程正在工作中")
//!
//!   m_work = multiprocessing.Process(target=work)
//!   m_work.daemon = True
//!   m_work.start()
//!   time.sleep(3)
//!   print("主进程结束了")
//!   ```
//!
//! - "守护进程" in "进程之multiprocessing模块": a daemon that would sleep 4 s,
//!   so its last line never appears (`p.daemon = True; p.start();
//!   time.sleep(2); print('主')`);
//! - "守护进程" in "multiprocess.process模块": a daemonic `Process` subclass
//!   that prints its pid and name (`p.daemon=True` before `p.start()`; the
//!   daemon also may not create children, which it checks here).
//!
//! With the argument `mixed` (`cargo run -p multiproc-examples --bin daemon
//! -- mixed`), the daemon `foo` next to the non-daemon `bar` from
//! "multiprocess.process模块":
//!
//! ```python
//! def foo():
//!     print(123); time.sleep(1); print("end123")
//! def bar():
//!     print(456); time.sleep(3); print("end456")
//!
//! p1 = Process(target=foo); p2 = Process(target=bar)
//! p1.daemon = True
//! p1.start(); p2.start()
//! time.sleep(0.1)
//! print("main-------")
//! ```
//!
//! When `main` returns, daemon `foo` is terminated at once (so `end123` is
//! never printed) while the program still waits for `bar` (so `end456` is).
//!
//! ```sh
//! cargo run -p multiproc-examples --bin daemon
//! cargo run -p multiproc-examples --bin daemon -- mixed
//! ```

use std::thread::sleep;

use multiproc::{Builder, Process, current_process, process_task};
use multiproc_examples::secs;
use serde::{Deserialize, Serialize};

#[process_task]
fn work() {
    // Loops forever, as in the tutorial: only the end of `main` stops it.
    loop {
        sleep(secs(1.0));
        println!("daemon work: working");
    }
}

#[process_task]
fn sleeper() {
    println!("daemon sleeper: started");
    sleep(secs(4.0));
    println!("daemon sleeper: ended (never printed: main ends after 3 s)");
}

#[process_task]
fn do_nothing() {}

/// A daemonic process type (Python's `class Myprocess(Process)`).
#[derive(Process, Serialize, Deserialize)]
struct Chat {
    person: String,
}

impl Process for Chat {
    fn run(&mut self) {
        println!("daemon chat: pid {}, name {}", std::process::id(), current_process().name());
        println!("daemon chat: {} is chatting", self.person);
        // A daemon may not have children: Python raises an AssertionError,
        // multiproc returns a typed error.
        match Builder::new(do_nothing, ()).start() {
            Err(e @ multiproc::Error::DaemonCannotHaveChildren) => {
                println!("daemon chat: starting a child failed: {e}")
            }
            Err(e) => println!("daemon chat: unexpected error: {e}"),
            Ok(_) => println!("daemon chat: unexpectedly started a child"),
        }
    }
}

#[process_task]
fn foo() {
    println!("123");
    sleep(secs(1.0));
    println!("end123");
}

#[process_task]
fn bar() {
    println!("456");
    sleep(secs(3.0));
    println!("end456");
}

fn main() -> Result<(), multiproc::Error> {
    if std::env::args().nth(1).as_deref() == Some("mixed") {
        let p1 = Builder::new(foo, ()).daemon(true).start()?;
        let p2 = Builder::new(bar, ()).start()?;
        println!("main: started daemon {} and non-daemon {}", p1.name(), p2.name());
        sleep(secs(0.1));
        // Ending the main code terminates daemon p1 now; p2 is waited for.
        println!("main-------");
        return Ok(());
    }

    let m_work = Builder::new(work, ()).daemon(true).start()?;
    let p = Builder::new(sleeper, ()).daemon(true).start()?;
    let chat = Chat { person: "Chen Song".into() }.builder().daemon(true).start()?;
    println!("main: started daemons {}, {} and {} (pid {})", m_work.name(), p.name(), chat.name(), chat.pid());
    sleep(secs(3.0));
    println!("main: the main process ends; its daemons are terminated now");
    Ok(())
}
