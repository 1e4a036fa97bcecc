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
//! ```sh
//! cargo run -p multiproc-examples --bin join
//! ```

use std::thread::sleep;

use multiproc::{Builder, process_task};
use multiproc_examples::secs;

#[process_task]
fn dask(label: String) {
    println!("{label}: process started");
    sleep(secs(5.0));
    println!("{label}: process finished");
}

fn main() -> Result<(), multiproc::Error> {
    println!("--- with join");
    let p = Builder::new(dask, ("with join".to_string(),)).start()?;
    p.join()?;
    println!("main process (after join)");

    println!("--- without join");
    let p = Builder::new(dask, ("without join".to_string(),)).start()?;
    // No join: this line comes first. The child keeps running, and the
    // program waits for it after `main` returns.
    println!("main process (without join; {} is still running: {})", p.name(), p.is_alive());
    Ok(())
}
