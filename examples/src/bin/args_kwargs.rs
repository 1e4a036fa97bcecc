//! Passing arguments to a process: positionally (Python's `args`) and by
//! name (Python's `kwargs`).
//!
//! Mirrors sections 2.2 and 2.3 of the tutorial "Python多进程与多线程":
//!
//! ```python
//! def print1(s):
//!     while True:
//!         time.sleep(3)
//!         print(s)
//!
//! sing_process1 = multiprocessing.Process(target=print1, args=("哈哈哈哈", ))
//! sing_process2 = multiprocessing.Process(target=print2, kwargs={"s": "我是进程2"})
//! ```
//!
//! and the parameter table of the "进程之multiprocessing模块" tutorial
//! (`args=(1,2,'egon',)`, `kwargs={'name':'egon','age':18}`).
//!
//! In Rust, `args` is a tuple of the function's arguments and `kwargs` is
//! the struct that `#[process_task]` generates for each task:
//! `PrintLoopArgs { s }` for `fn print_loop(s: String)`. Either way the types are checked at
//! compile time. The Python loops run forever; here they go round
//! `EXAMPLE_ROUNDS` times (default 3).
//!
//! ```sh
//! cargo run -p multiproc-examples --bin args_kwargs
//! ```

use std::thread::sleep;

use multiproc::{Builder, process_task};
use multiproc_examples::{rounds, secs};

#[process_task]
fn print_loop(s: String) {
    for _ in 0..rounds(3) {
        sleep(secs(3.0));
        println!("{s}");
    }
}

#[process_task]
fn introduce(name: String, age: u32) -> String {
    format!("{name} is {age}")
}

fn main() -> Result<(), multiproc::Error> {
    // args=("hahaha",): a tuple, with the trailing comma as in Python.
    let p1 = Builder::new(print_loop, ("hahaha (args)".to_string(),)).start()?;
    // kwargs={"s": "I am process 2"}: the generated named-arguments struct.
    let p2 = Builder::new(print_loop, PrintLoopArgs { s: "I am process 2 (kwargs)".to_string() }).start()?;
    p1.wait()?;
    p2.wait()?;

    // Several arguments: by position, or by name in any order.
    let by_position = Builder::new(introduce, ("egon".to_string(), 18)).start()?;
    let by_name = Builder::new(introduce, IntroduceArgs { age: 18, name: "egon".to_string() }).start()?;
    println!("args   -> {}", by_position.join()?);
    println!("kwargs -> {}", by_name.join()?);
    // The task is still an ordinary function, too.
    println!("called directly -> {}", introduce("egon".to_string(), 18));
    println!("main: done");
    Ok(())
}
