//! Many processes at once, without `join`: they run concurrently, in no
//! particular order.
//!
//! Mirrors "进阶，多个进程同时运行" (tutorial "multiprocess.process模块"):
//!
//! ```python
//! def f(name):
//!     print('hello', name)
//!     time.sleep(1)
//!
//! p_lst = []
//! for i in range(5):
//!     p = Process(target=f, args=('aaron',))
//!     p.start()
//!     p_lst.append(p)
//! ```
//!
//! "注意，子进程的执行顺序不是根据启动顺序决定的": the order of the children's
//! lines is not the start order. `main` ends right away; the program still
//! waits for the five children, as Python does. `active_children()` (Python's
//! `multiprocessing.active_children()`) lists them while they run: so that
//! the list is always all five, however slow the machine, each child, after
//! its sleep, also waits until `main` has listed them and says so on a
//! one-way pipe (Python would use an `Event`).
//!
//! ```sh
//! cargo run -p multiproc-examples --bin many_processes
//! ```

use std::thread::sleep;

use multiproc::{Builder, Connection, ReadOnly, active_children, pipe_one_way, process_task};
use multiproc_examples::secs;

#[process_task]
fn f(name: String, listed: Connection<(), ReadOnly>) {
    println!("hello {name} from {}", multiproc::current_process().name());
    sleep(secs(1.0));
    // Still running until main has listed the active children and says so
    // (should main fail before, the pipe's end of file ends the wait too).
    let _ = listed.recv();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut p_lst = Vec::new();
    let mut release = Vec::new();
    for _ in 0..5 {
        let (listed, lister) = pipe_one_way::<()>()?;
        p_lst.push(Builder::new(f, ("aaron".to_string(), listed)).start()?);
        release.push(lister);
    }
    let names: Vec<String> = active_children().into_iter().map(|c| c.name).collect();
    println!("main: {} active children: {}", names.len(), names.join(", "));
    // Lets the children end (each after its sleep).
    for lister in &release {
        lister.send(&())?;
    }
    println!("main: returning without join; the program waits for the children");
    Ok(())
}
