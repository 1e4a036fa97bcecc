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
//! The tutorials order these lines by sleeping; a slow machine could still
//! shuffle them. So each child here also tells `main`, on a one-way pipe
//! (Python would use an `Event`), when it has printed what `main` must see
//! before it ends, and `main` waits for that: the daemons' first lines
//! (and one `working` line) always come before `main`'s last one, `123`
//! before `main-------`, and `bar` ends only after `main-------` (the
//! tutorial's 0.1 s against 3 s). The lines that never appear (`end123`,
//! the sleeper's last one) are still a matter of sleeps, as in Python: a
//! machine stalled for longer than the difference would print them.
//!
//! ```sh
//! cargo run -p multiproc-examples --bin daemon
//! cargo run -p multiproc-examples --bin daemon -- mixed
//! ```

use std::thread::sleep;

use multiproc::{Builder, Connection, Process, ReadOnly, WriteOnly, current_process, pipe_one_way, process_task};
use multiproc_examples::secs;
use serde::{Deserialize, Serialize};

#[process_task]
fn work(worked: Connection<(), WriteOnly>) {
    // Loops forever, as in the tutorial: only the end of `main` stops it.
    loop {
        sleep(secs(1.0));
        println!("daemon work: working");
        let _ = worked.send(&());
    }
}

#[process_task]
fn sleeper(started: Connection<(), WriteOnly>) {
    println!("daemon sleeper: started");
    let _ = started.send(&());
    sleep(secs(4.0));
    println!("daemon sleeper: ended (not printed: main ends after 3 s)");
}

#[process_task]
fn do_nothing() {}

/// A daemonic process type (Python's `class Myprocess(Process)`).
#[derive(Process, Serialize, Deserialize)]
struct Chat {
    person: String,
    /// Told when `run` has printed everything.
    done: Connection<(), WriteOnly>,
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
        let _ = self.done.send(&());
    }
}

#[process_task]
fn foo(printed: Connection<(), WriteOnly>) {
    println!("123");
    let _ = printed.send(&());
    sleep(secs(1.0));
    println!("end123");
}

#[process_task]
fn bar(main_printed: Connection<(), ReadOnly>) {
    println!("456");
    sleep(secs(3.0));
    // Until main's line is out (a message, or main's end closing the pipe).
    let _ = main_printed.recv();
    println!("end456");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("mixed") {
        let (foo_printed, printed) = pipe_one_way()?;
        let (main_printed, to_bar) = pipe_one_way()?;
        let p1 = Builder::new(foo, (printed,)).daemon(true).start()?;
        let p2 = Builder::new(bar, (main_printed,)).start()?;
        println!("main: started daemon {} and non-daemon {}", p1.name(), p2.name());
        sleep(secs(0.1));
        foo_printed.recv()?;
        // Ending the main code terminates daemon p1 now; p2 is waited for.
        println!("main-------");
        to_bar.send(&())?;
        return Ok(());
    }

    let (worked, work_end) = pipe_one_way()?;
    let (started, sleeper_end) = pipe_one_way()?;
    let (chatted, chat_end) = pipe_one_way()?;
    let m_work = Builder::new(work, (work_end,)).daemon(true).start()?;
    let p = Builder::new(sleeper, (sleeper_end,)).daemon(true).start()?;
    let chat = Chat { person: "Chen Song".into(), done: chat_end }.builder().daemon(true).start()?;
    println!("main: started daemons {}, {} and {} (pid {})", m_work.name(), p.name(), chat.name(), chat.pid());
    sleep(secs(3.0));
    for told in [&worked, &started, &chatted] {
        told.recv()?;
    }
    println!("main: the main process ends; its daemons are terminated now");
    Ok(())
}
