//! Process ids: `os.getpid()`, `os.getppid()`, `p.pid` and
//! `current_process().pid`.
//!
//! Mirrors three tutorial programs:
//!
//! 1. "查看进程的pid号" (tutorial "进程之multiprocessing模块"): the child prints
//!    `current_process().pid`, the parent prints `p.pid`; they are the same
//!    number.
//!
//!    ```python
//!    def task():
//!        print('子进程开始')
//!        print('查看子进程自己的pid', current_process().pid)
//!
//!    p = Process(target=task)
//!    p.start()
//!    print('主进程中查看自己的pid', p.pid)
//!    ```
//!
//! 2. "查看进程号" (tutorial "multiprocess.process模块"): five children print
//!    their own id and their parent's, which is the main process's.
//!
//!    ```python
//!    def f(x):
//!        print('子进程id：', os.getpid(), '父进程id：', os.getppid())
//!        return x*x
//!
//!    print('主进程id: ', os.getpid())
//!    for i in range(5):
//!        p = Process(target=f, args=(i,))
//!        p.start()
//!    ```
//!
//!    Python throws `x*x` away; here [`Child::join`](multiproc::Child::join)
//!    hands it back.
//!
//! 3. Section 3.1 of "Python多进程与多线程": a worker that loops forever
//!    printing `os.getpid()` and `os.getppid()` every 3 seconds. Here it goes
//!    round `EXAMPLE_ROUNDS` times (default 3).
//!
//! `os.getpid()` is `std::process::id()` (or
//! `multiproc::current_process().pid()`), `os.getppid()` is
//! `std::os::unix::process::parent_id()` on Unix; the portable way, which
//! works on every platform, is `multiproc::parent_process()`.
//!
//! ```sh
//! cargo run -p multiproc-examples --bin pids
//! ```

use std::thread::sleep;

use multiproc::{Builder, current_process, parent_process, process_task};
use multiproc_examples::{rounds, secs};

/// `os.getppid()`: the parent's pid, as the OS reports it where it can.
fn getppid() -> u32 {
    #[cfg(unix)]
    return std::os::unix::process::parent_id();
    #[cfg(not(unix))]
    return parent_process().map_or(0, |p| p.pid());
}

#[process_task]
fn task() {
    println!("child: started");
    println!("child: my pid (current_process().pid()) = {}", current_process().pid());
}

#[process_task]
fn f(x: u64) -> u64 {
    println!("child {x}: pid = {}, parent pid = {}", std::process::id(), getppid());
    x * x
}

#[process_task]
fn work(s: String) {
    for _ in 0..rounds(3) {
        sleep(secs(3.0));
        let parent = parent_process().expect("a child has a parent");
        println!("{s}: pid = {}, parent pid = {} ({})", std::process::id(), getppid(), parent.name());
    }
}

fn main() -> Result<(), multiproc::Error> {
    println!("main: my pid = {}", std::process::id());

    println!("--- 1. p.pid in the parent == current_process().pid in the child");
    let p = Builder::new(task, ()).start()?;
    println!("main: p.pid() = {}", p.pid());
    p.wait()?;

    println!("--- 2. five children, each with the main process as parent");
    let children = (0..5).map(|i| Builder::new(f, (i,)).start()).collect::<Result<Vec<_>, _>>()?;
    let squares = children.into_iter().map(|p| p.join()).collect::<Result<Vec<_>, _>>()?;
    println!("main: the children returned {squares:?}");

    println!("--- 3. a worker printing its ids in a loop");
    Builder::new(work, ("p1".to_string(),)).start()?.wait()?;
    println!("main: done");
    Ok(())
}
