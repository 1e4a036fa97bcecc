//! `join`: the main process waits for the child, or does not.
//!
//! Mirrors "进程之join方法, 方法一" (tutorial "进程之multiprocessing模块"),
//! which runs the same program with and without `p.join()`, and "使用join方法"
//! (tutorial "multiprocess.process模块"):
//!
//! ```python
//! def dask():
//!     print('进程开启——————————')
//!     time.sleep(5)
//!     print('进程结束——————————')
//!
//! p = Process(target=dask)
//! p.start()
//! p.join()        # without this line, '主进程' is printed first
//! print('主进程')
//! ```
//!
//! With `join` the output is "started, finished, main"; without it,
//! "main, started, finished". Python's `join()` is
//! [`Child::wait`](multiproc::Child::wait) (which may be repeated) or
//! [`Child::join`](multiproc::Child::join) (which also returns the task's
//! value).
//!
//! Without `join`, Python's order comes from the child's 5 s sleep. Here the
//! child also waits, before its last line, for `main` to say on a one-way
//! pipe that it has printed its own (Python would use an `Event`), so the
//! order, and `is_alive()` being true, hold on a slow machine too.
//!
//! ```sh
//! cargo run -p multiproc-examples --bin join
//! ```

use std::thread::sleep;

use multiproc::{Builder, Connection, ReadOnly, pipe_one_way, process_task};
use multiproc_examples::secs;

#[process_task]
fn dask(label: String, main_printed: Connection<(), ReadOnly>) {
    println!("{label}: process started");
    sleep(secs(5.0));
    // A message from main, or end of file if main's end is gone.
    let _ = main_printed.recv();
    println!("{label}: process finished");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("--- with join");
    let (main_printed, to_child) = pipe_one_way()?;
    let p = Builder::new(dask, ("with join".to_string(), main_printed)).start()?;
    // Nothing to wait for here: join waits for the child.
    to_child.send(&())?;
    p.join()?;
    println!("main process (after join)");

    println!("--- without join");
    let (main_printed, to_child) = pipe_one_way()?;
    let p = Builder::new(dask, ("without join".to_string(), main_printed)).start()?;
    // No join: this line comes first. The child keeps running, and the
    // program waits for it after `main` returns.
    println!("main process (without join; {} is still running: {})", p.name(), p.is_alive());
    to_child.send(&())?;
    Ok(())
}
