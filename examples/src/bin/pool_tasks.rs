//! Thirteen tasks on a pool of four workers, each sleeping a random time.
//!
//! Mirrors the tutorial's `Pool` program ("进程池"):
//!
//! ```python
//! def long_time_task(name):
//!     print('Run task %s (%s)...' % (name, os.getpid()))
//!     start = time.time()
//!     time.sleep(random.random() * 3)
//!     end = time.time()
//!     print('Task %s runs %0.2f seconds.' % (name, (end - start)))
//!
//! if __name__ == '__main__':
//!     print('Parent process %s.' % os.getpid())
//!     p = Pool(4)
//!     for i in range(13):
//!         p.apply_async(long_time_task, args=(i,))
//!     print('Waiting for all subprocesses done...')
//!     p.close()
//!     p.join()
//!     print('All subprocesses done.')
//! ```
//!
//! Four tasks run at once; the fifth starts when one of the first four
//! ends. `random.random() * 3` is [`multiproc_examples::randint`] in
//! milliseconds.
//!
//! ```sh
//! cargo run -p multiproc-examples --bin pool_tasks
//! ```

use std::time::Instant;

use multiproc::pool::Pool;
use multiproc_examples::{randint, secs};

#[multiproc::process_task]
fn long_time_task(name: u32) {
    println!("Run task {name} ({})...", std::process::id());
    let start = Instant::now();
    std::thread::sleep(secs(randint(0, 3000) as f64 / 1000.0));
    println!("Task {name} runs {:.2} seconds.", start.elapsed().as_secs_f64());
}

fn main() -> Result<(), multiproc::Error> {
    println!("Parent process {}.", std::process::id());
    let p = Pool::new(4)?;
    for i in 0..13 {
        p.apply_async(long_time_task, i)?;
    }
    println!("Waiting for all subprocesses done...");
    p.close();
    p.join()?;
    println!("All subprocesses done.");
    Ok(())
}
