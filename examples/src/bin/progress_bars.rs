//! Two processes, each with a progress bar: the children report, the parent
//! draws.
//!
//! Mirrors the tutorials' `tqdm` in child processes:
//!
//! ```python
//! def work(n):
//!     for i in tqdm(range(100), desc=f'worker-{n}', position=n):
//!         time.sleep(0.05)
//!
//! if __name__ == '__main__':
//!     ps = [Process(target=work, args=(n,)) for n in range(2)]
//!     for p in ps: p.start()
//!     for p in ps: p.join()
//! ```
//!
//! In Python each child writes its own bar to the terminal and the two
//! overwrite each other (`position=n` only helps until something else
//! prints). Here a child only calls `multiproc::progress` (`set_length`,
//! `inc`, `finish`); the parent's [`Bars`] draws both bars, from one thread.
//!
//! Bars are drawn only where stderr is a terminal; `--force-draw` draws
//! them anyway (into a pipe or a file, as the test of this example does).
//!
//! ```sh
//! cargo run -p multiproc-examples --bin progress_bars
//! ```

use std::thread::sleep;

use multiproc::progress::{self, Bars};
use multiproc::{Builder, process_task};
use multiproc_examples::secs;

#[process_task]
fn work(n: u32) {
    progress::set_length(100);
    for i in 0..100 {
        progress::set_message(format!("item {i} of worker {n}"));
        sleep(secs(0.05));
        progress::inc(1);
    }
    progress::set_message("done");
    progress::finish();
}

fn main() -> Result<(), multiproc::Error> {
    let force = std::env::args().any(|a| a == "--force-draw");
    let bars = Bars::new().force_draw(force);
    let ps = (0..2)
        .map(|n| Builder::new(work, (n,)).name(format!("worker-{n}")).progress(&bars).start())
        .collect::<Result<Vec<_>, _>>()?;
    for p in ps {
        p.join()?;
    }
    bars.wait();
    for bar in bars.bars() {
        let length = bar.length().unwrap_or(0);
        println!("main: {} ended at {}/{length}", bar.label(), bar.position());
    }
    Ok(())
}
