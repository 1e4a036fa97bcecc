//! Process types: Python's subclass of `multiprocessing.Process` that
//! overrides `run`.
//!
//! Mirrors three tutorial programs:
//!
//! 1. "创建进程的第二种方式" (tutorial "进程之multiprocessing模块"):
//!
//!    ```python
//!    class My(Process):
//!        def run(self):
//!            print('进程启动-----')
//!            time.sleep(3)
//!            print('进程结束-----')
//!
//!    p = My()
//!    p.start()
//!    ```
//!
//! 2. "以继承Process类的形式开启进程的方式" (tutorial
//!    "multiprocess.process模块"): three named processes print their pid and
//!    name, and are joined.
//!
//!    ```python
//!    class MyProcess(Process):
//!        def __init__(self, name):
//!            super().__init__()
//!            self.name = name
//!        def run(self):
//!            print(os.getpid())
//!            print('%s 正在和女主播聊天' % self.name)
//!
//!    p1 = MyProcess('陈松'); p2 = MyProcess('松哥'); p3 = MyProcess('松松')
//!    p1.start(); p2.start(); p3.start()
//!    p1.join(); p2.join(); p3.join()
//!    print('主进程')
//!    ```
//!
//! 3. The last program of "多进程中的其他方法" (same tutorial): a process
//!    that chats, sleeps `random.randrange(1, 5)` seconds and chats again,
//!    while the parent prints `p1.pid`. The tutorial's point about
//!    `super().__init__()` overwriting `self.name` does not arise here: the
//!    process name is set on the builder, and the type's fields are its own.
//!
//! A process type derives [`multiproc::Process`] and serde's traits, and
//! implements `run(&mut self)`. The value is serialized at `start` and
//! `run` is called on the copy in the child. Python's `self.name` (the
//! process name) is `.builder().name(..)` in the parent and
//! `multiproc::current_process().name()` in the child.
//!
//! ```sh
//! cargo run -p multiproc-examples --bin subclass
//! ```

use std::thread::sleep;

use multiproc::{Process, current_process};
use multiproc_examples::{randint, secs};
use serde::{Deserialize, Serialize};

/// `class My(Process)`: no fields at all.
#[derive(Process, Serialize, Deserialize)]
struct My;

impl Process for My {
    fn run(&mut self) {
        println!("My: process started-----");
        sleep(secs(3.0));
        println!("My: process finished-----");
    }
}

/// `class MyProcess(Process)` whose `name` is the process name.
#[derive(Process, Serialize, Deserialize)]
struct MyProcess;

impl Process for MyProcess {
    fn run(&mut self) {
        println!("{}: pid {}", current_process().name(), std::process::id());
        println!("{} is chatting", current_process().name());
    }
}

/// `class Myprocess(Process)` with a field of its own, next to the name.
#[derive(Process, Serialize, Deserialize)]
struct Chat {
    person: String,
}

impl Process for Chat {
    fn run(&mut self) {
        let me = current_process();
        println!("{} (process {}, pid {}) is chatting", self.person, me.name(), me.pid());
        sleep(secs(randint(1, 4) as f64));
        println!("{} (process {}) is still chatting", self.person, me.name());
    }
}

fn main() -> Result<(), multiproc::Error> {
    println!("--- 1. class My(Process)");
    let p = My.start()?;
    println!("main: started {}", p.name());
    p.wait()?;

    println!("--- 2. three named processes");
    let p1 = MyProcess.builder().name("Chen Song").start()?;
    let p2 = MyProcess.builder().name("Song Ge").start()?;
    let p3 = MyProcess.builder().name("Song Song").start()?;
    p1.join()?;
    p2.join()?;
    p3.join()?;
    println!("main process");

    println!("--- 3. a field and a name");
    let p1 = Chat { person: "Chen Song".into() }.builder().name("chat-1").start()?;
    println!("main: p1.pid() = {}", p1.pid());
    p1.join()?;
    println!("main: done");
    Ok(())
}
