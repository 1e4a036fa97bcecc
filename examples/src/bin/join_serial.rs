//! `join` inside the start loop makes the processes run one after another.
//!
//! Mirrors "多进程同时运行使用join方法" (tutorial "multiprocess.process模块"):
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
//!     p.join()          # waits for this one before starting the next
//! print('主进程')
//! ```
//!
//! Each child is joined before the next one starts, so this takes five
//! sleeps in total: compare with `parallel_join`, which joins after the
//! loop. The last line, `total: T s (sum of sleeps: S s)`, shows it.
//!
//! ```sh
//! cargo run -p multiproc-examples --bin join_serial
//! ```

use std::thread::sleep;
use std::time::Instant;

use multiproc::{Builder, process_task};
use multiproc_examples::secs;

#[process_task]
fn f(name: String) {
    println!("hello {name} (process {})", multiproc::current_process().name());
    sleep(secs(1.0));
}

fn main() -> Result<(), multiproc::Error> {
    let start = Instant::now();
    let mut p_lst = Vec::new();
    for _ in 0..5 {
        let p = Builder::new(f, ("aaron".to_string(),)).start()?;
        // Python's p.join(); `wait` leaves the handle usable.
        p.wait()?;
        p_lst.push(p);
    }
    println!("main process");
    let total = start.elapsed().as_secs_f64();
    let sum = 5.0 * secs(1.0).as_secs_f64();
    println!("total: {total:.3} s (sum of sleeps: {sum:.3} s)");
    Ok(())
}
