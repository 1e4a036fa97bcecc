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

use multiproc::{Builder, process_task};
use multiproc_examples::secs;

#[process_task]
fn f(name: String) {
    println!("hello {name}");
    println!("child process");
}

#[process_task]
fn zi() {
    println!("zi: process started");
    sleep(secs(3.0));
    println!("zi: process finished");
}

fn main() -> Result<(), multiproc::Error> {
    let p = Builder::new(f, ("aaron".to_string(),)).start()?;
    sleep(secs(1.0));
    println!("main program (after sleeping 1 s; {} printed first)", p.name());

    let p = Builder::new(zi, ()).start()?;
    println!("main: started {}; main returns now, and the program waits for it", p.name());
    Ok(())
}
