//! The tutorials' queue program: the parent puts a message on a queue, a
//! child gets it and prints it.
//!
//! Python:
//!
//! ```python
//! def foo(aa):
//!     message = aa.get()
//!     print('子进程已收到数据...')
//!     print(message)
//!
//! if __name__ == '__main__':
//!     xt = multiprocessing.Queue()
//!     jc = multiprocessing.Process(target=foo, args=(xt,))
//!     jc.start()
//!     print('主进程准备发送数据...')
//!     xt.put('有内鬼，终止交易！')
//!     jc.join()
//! ```
//!
//! Run: `cargo run -p multiproc-examples --bin queue_message` (Linux: the
//! queues live in shared memory built on Linux primitives).

#[cfg(target_os = "linux")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use multiproc::{Builder, Queue, process_task};

    /// The child: takes the message off the queue and prints it.
    #[process_task]
    fn foo(aa: Queue<String>) {
        let message = aa.get().expect("a message");
        println!("子进程已收到数据...");
        println!("{message}");
    }

    let xt = Queue::new()?;
    // The child gets its own handle to the same queue (Python passes the
    // queue in `args` the same way).
    let jc = Builder::new(foo, (xt.clone(),)).start()?;
    println!("主进程准备发送数据...");
    xt.put("有内鬼，终止交易！".to_string())?;
    jc.join()?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("queues are not available on this platform yet");
    std::process::exit(2);
}
