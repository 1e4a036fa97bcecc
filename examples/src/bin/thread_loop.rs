//! Threads, for comparison: Python's `threading.Thread` is `std::thread`.
//!
//! Mirrors the threading program of "Python 进程和线程学习笔记":
//!
//! ```python
//! def loop():
//!     print('thread %s is running...' % threading.current_thread().name)
//!     n = 0
//!     while n < 5:
//!         n = n + 1
//!         print('thread %s >>> %s' % (threading.current_thread().name, n))
//!         time.sleep(1)
//!     print('thread %s ended.' % threading.current_thread().name)
//!
//! print('thread %s is running...' % threading.current_thread().name)
//! t = threading.Thread(target=loop, name='LoopThread')
//! t.start()
//! t.join()
//! print('thread %s ended.' % threading.current_thread().name)
//! ```
//!
//! No multiproc here: a thread shares the process, so it needs no
//! registration and can run a closure. `threading.Thread(target=..,
//! name=..).start()` is `std::thread::Builder::new().name(..).spawn(..)`,
//! `t.join()` is `JoinHandle::join` (which also returns the closure's value),
//! and `threading.current_thread().name` is `std::thread::current().name()`
//! (`main` for the main thread, where Python says `MainThread`).
//!
//! ```sh
//! cargo run -p multiproc-examples --bin thread_loop
//! ```

use std::thread;

use multiproc_examples::secs;

fn current_name() -> String {
    thread::current().name().unwrap_or("<unnamed>").to_string()
}

fn run_loop() {
    println!("thread {} is running...", current_name());
    let mut n = 0;
    while n < 5 {
        n += 1;
        println!("thread {} >>> {n}", current_name());
        thread::sleep(secs(1.0));
    }
    println!("thread {} ended.", current_name());
}

fn main() -> std::io::Result<()> {
    println!("thread {} is running...", current_name());
    let t = thread::Builder::new().name("LoopThread".into()).spawn(run_loop)?;
    t.join().expect("the loop thread panicked");
    println!("thread {} ended.", current_name());
    Ok(())
}
