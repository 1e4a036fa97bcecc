//! Two workers sleeping a random time, started both ways: from a function
//! and from a process type.
//!
//! Mirrors "不同方式创建子进程" (tutorial "multiprocessing"):
//!
//! ```python
//! def work(name):
//!     print(f"{name} is starting \n")
//!     sleep_time = random.randint(1, 6)
//!     print(f"{name} is sleeping {sleep_time} s \n")
//!     time.sleep(sleep_time)
//!     print(f"{name} is ending \n")
//!
//! def main_object():       # 方式一: Process(target=...)
//!     process_one = Process(target=work, args=("work_1",))
//!     process_two = Process(target=work, kwargs={'name': 'work_2'})
//!     process_one.start()
//!     process_two.start()
//!
//! class MyProcess(multiprocessing.Process):   # 方式二: subclass, override run
//!     def __init__(self, name):
//!         super().__init__()
//!         self.name = name
//!     def run(self):
//!         ...  # the same body as work(self.name)
//!
//! def main_class():
//!     process_one = MyProcess(name='work_1')
//!     process_two = MyProcess(name='work_2')
//!     process_one.start()
//!     process_two.start()
//! ```
//!
//! The tutorial runs one of the two `main_*` functions; this program runs
//! both, one after the other (waiting for the first pair before starting
//! the second). `random.randint` is [`multiproc_examples::randint`], a tiny
//! generator seeded from the pid and the clock.
//!
//! ```sh
//! cargo run -p multiproc-examples --bin random_sleep_workers
//! ```

use std::thread::sleep;

use multiproc::{Builder, Process, current_process, process_task};
use multiproc_examples::{randint, secs};
use serde::{Deserialize, Serialize};

/// The body shared by both ways: Python's `work(name)`.
fn work_body(name: &str) {
    println!("{name} is starting");
    let sleep_time = randint(1, 6);
    println!("{name} is sleeping {sleep_time} s");
    sleep(secs(sleep_time as f64));
    println!("{name} is ending");
}

#[process_task]
fn work(name: String) {
    work_body(&name);
}

/// `class MyProcess(multiprocessing.Process)`: the process name comes
/// from the builder, so the type needs no fields.
#[derive(Process, Serialize, Deserialize)]
struct MyProcess;

impl Process for MyProcess {
    fn run(&mut self) {
        work_body(current_process().name());
    }
}

fn main_object() -> Result<(), multiproc::Error> {
    let process_one = Builder::new(work, ("work_1".to_string(),)).start()?;
    let process_two = Builder::new(work, WorkArgs { name: "work_2".to_string() }).start()?;
    process_one.wait()?;
    process_two.wait()?;
    Ok(())
}

fn main_class() -> Result<(), multiproc::Error> {
    let process_one = MyProcess.builder().name("work_1").start()?;
    let process_two = MyProcess.builder().name("work_2").start()?;
    process_one.wait()?;
    process_two.wait()?;
    Ok(())
}

fn main() -> Result<(), multiproc::Error> {
    println!("--- way 1: a function as the target (args and kwargs)");
    main_object()?;
    println!("--- way 2: a process type");
    main_class()?;
    println!("main: done");
    Ok(())
}
