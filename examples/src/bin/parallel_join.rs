//! Several processes run at the same time: start them all, then join them
//! all, and the total time is the longest sleep, not the sum.
//!
//! Mirrors three tutorial programs:
//!
//! 1. "进程之join方法, 方法二" (tutorial "进程之multiprocessing模块"):
//!
//!    ```python
//!    def foo(x):
//!        print(f'----进程{x}开始----')
//!        time.sleep(x)
//!        print(f'----进程{x}结束----')
//!
//!    start = time.time()
//!    p_list = []
//!    for i in range(1,4):
//!        p = Process(target=foo, args=(i,))
//!        p.start()
//!        p_list.append(p)
//!    for p in p_list:
//!        p.join()
//!    print(time.time() - start)   # about 3, not 1+2+3
//!    ```
//!
//! 2. "示例" (tutorial "multiprocessing"): five workers `work_0`..`work_4`,
//!    each sleeping `random.randint(1, 6)` seconds, all joined; "总耗时" (the
//!    total) is that of the slowest worker.
//!
//! 3. "还是想要借助join的同时，进程之间是异步的" (tutorial
//!    "multiprocess.process模块"): five `f('aaron')` sleeping 1 s, joined
//!    after the loop (`[p.join() for p in p_lst]`).
//!
//! Each part ends with a line `total: T s (longest: L s, sum: S s)`, with
//! the sleeps as actually slept (scaled by `EXAMPLE_TIME_SCALE`). Here the
//! workers return their sleep time, and [`Child::join`](multiproc::Child::join)
//! hands it back to the parent.
//!
//! ```sh
//! cargo run -p multiproc-examples --bin parallel_join
//! ```

use std::thread::sleep;
use std::time::Instant;

use multiproc::{Builder, Child, process_task};
use multiproc_examples::{randint, secs};

#[process_task]
fn foo(x: u64) -> f64 {
    println!("---- process {x} started ----");
    let d = secs(x as f64);
    sleep(d);
    println!("---- process {x} finished ----");
    d.as_secs_f64()
}

#[process_task]
fn work(name: String) -> f64 {
    println!("{name} is starting");
    let sleep_time = randint(1, 6);
    println!("{name} is sleeping {sleep_time} s");
    let d = secs(sleep_time as f64);
    sleep(d);
    println!("{name} is ending");
    d.as_secs_f64()
}

#[process_task]
fn f(name: String) -> f64 {
    println!("hello {name}");
    let d = secs(1.0);
    sleep(d);
    d.as_secs_f64()
}

/// Joins every child (after all were started) and prints the summary line.
fn join_all(start: Instant, children: Vec<Child<f64>>) -> Result<(), multiproc::Error> {
    let slept = children.into_iter().map(Child::join).collect::<Result<Vec<f64>, _>>()?;
    let total = start.elapsed().as_secs_f64();
    let longest = slept.iter().copied().fold(0.0, f64::max);
    let sum: f64 = slept.iter().sum();
    println!("total: {total:.3} s (longest: {longest:.3} s, sum: {sum:.3} s)");
    Ok(())
}

fn main() -> Result<(), multiproc::Error> {
    println!("--- 1. three processes sleeping 1, 2 and 3 s");
    let start = Instant::now();
    let mut p_list = Vec::new();
    for i in 1..4 {
        p_list.push(Builder::new(foo, (i,)).start()?);
    }
    join_all(start, p_list)?;
    println!("main");

    println!("--- 2. five workers sleeping a random 1..=6 s");
    println!("main process __main__ starts");
    let start = Instant::now();
    let mut task_list = Vec::new();
    for i in 0..5 {
        task_list.push(Builder::new(work, (format!("work_{i}"),)).start()?);
    }
    join_all(start, task_list)?;
    println!("main process __main__ ends");

    println!("--- 3. five f('aaron') sleeping 1 s, joined after the loop");
    let start = Instant::now();
    let mut p_lst = Vec::new();
    for _ in 0..5 {
        p_lst.push(Builder::new(f, ("aaron".to_string(),)).start()?);
    }
    join_all(start, p_lst)?;
    println!("main process");
    Ok(())
}
