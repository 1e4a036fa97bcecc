//! Starting one process, without `join`.
//!
//! Mirrors two tutorial programs:
//!
//! 1. "使用process模块创建进程 1)" (tutorial "multiprocess.process模块"): the
//!    main process sleeps a second, so the child's lines come first.
//!
//!    ```python
//!    def f(name):
//!        print('hello', name)
//!        print('子进程')
//!
//!    p = Process(target=f, args=('aaron',))
//!    p.start()
//!    time.sleep(1)
//!    print('主程序')
//!    ```
//!
//!    The sleep only makes that likely: the child here also says, on a
//!    one-way pipe, when it has printed, and main waits for that after its
//!    sleep, so the order holds on a slow machine too.
//!
//! 2. "创建进程的第一种方式" (tutorial "进程之multiprocessing模块"): the main
//!    process just starts the child and ends; the program still waits for the
//!    child, as Python does for non-daemonic children.
//!
//!    ```python
//!    def zi():
//!        print('进程开启')
//!        time.sleep(3)
//!        print('进程结束')
//!
//!    p = Process(target=zi)
//!    p.start()
//!    ```
//!
//! ```sh
//! cargo run -p multiproc-examples --bin start_one
//! ```

use std::thread::sleep;

use multiproc::{Builder, Connection, WriteOnly, pipe_one_way, process_task};
use multiproc_examples::secs;

#[process_task]
fn f(name: String, printed: Connection<(), WriteOnly>) {
    println!("hello {name}");
    println!("child process");
    let _ = printed.send(&());
}

#[process_task]
fn zi() {
    println!("zi: process started");
    sleep(secs(3.0));
    println!("zi: process finished");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (child_printed, printed) = pipe_one_way()?;
    let p = Builder::new(f, ("aaron".to_string(), printed)).start()?;
    sleep(secs(1.0));
    child_printed.recv()?;
    println!("main program (after sleeping 1 s; {} printed first)", p.name());

    let p = Builder::new(zi, ()).start()?;
    println!("main: started {}; main returns now, and the program waits for it", p.name());
    Ok(())
}
