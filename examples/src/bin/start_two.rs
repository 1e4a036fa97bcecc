//! Two processes printing in loops.
//!
//! Mirrors the first program of the tutorial "Python多进程与多线程" (section
//! 1.3, creating and starting processes):
//!
//! ```python
//! def print1():
//!     while True:
//!         time.sleep(3)
//!         print('11111')
//!
//! def print2():
//!     while True:
//!         time.sleep(3)
//!         print('22222')
//!
//! if __name__ == '__main__':
//!     sing_process1 = multiprocessing.Process(target=print1)
//!     sing_process2 = multiprocessing.Process(target=print2)
//!     sing_process1.start()
//!     sing_process2.start()
//! ```
//!
//! The Python loops run forever; here each child goes round
//! `EXAMPLE_ROUNDS` times (default 3). `main` returns right after starting
//! both, and, as in Python, the program then waits for its (non-daemonic)
//! children before it exits.
//!
//! ```sh
//! cargo run -p multiproc-examples --bin start_two
//! ```

use std::thread::sleep;

use multiproc::{Builder, process_task};
use multiproc_examples::{rounds, secs};

#[process_task]
fn print1() {
    for _ in 0..rounds(3) {
        sleep(secs(3.0));
        println!("11111");
    }
}

#[process_task]
fn print2() {
    for _ in 0..rounds(3) {
        sleep(secs(3.0));
        println!("22222");
    }
}

fn main() -> Result<(), multiproc::Error> {
    let sing_process1 = Builder::new(print1, ()).start()?;
    let sing_process2 = Builder::new(print2, ()).start()?;
    println!(
        "main: started {} (pid {}) and {} (pid {})",
        sing_process1.name(),
        sing_process1.pid(),
        sing_process2.name(),
        sing_process2.pid()
    );
    println!("main: returning; the program exits once both children are done");
    Ok(())
}
