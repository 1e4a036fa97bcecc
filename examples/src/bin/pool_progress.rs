//! Four pool workers drawing progress bars at once, without garbling: a
//! bar per worker, moved by the tasks it runs, and one for the whole map,
//! all drawn by the parent.
//!
//! The tutorials call `tqdm` inside each child, where the bars of several
//! processes overwrite each other on the terminal. Here the children only
//! report (`multiproc::progress`); the parent alone draws.
//!
//! ```sh
//! cargo run -p multiproc-examples --bin pool_progress [-- --force-draw]
//! ```
//!
//! Bars are drawn when stderr is a terminal, or with `--force-draw`.

use std::thread::sleep;

use multiproc::pool::{MapOptions, Pool};
use multiproc::progress::{self, Bars};
use multiproc_examples::secs;

/// One task: 100 steps, each reported to its worker's bar.
#[multiproc::process_task]
fn crunch(task: u32) -> u32 {
    progress::set_position(0);
    progress::set_length(100);
    for i in 0..100 {
        progress::set_message(format!("task {task}, step {i}"));
        sleep(secs(0.01));
        progress::inc(1);
    }
    progress::set_message(format!("task {task} done"));
    task
}

fn main() -> Result<(), multiproc::Error> {
    let force = std::env::args().any(|a| a == "--force-draw");
    let bars = Bars::new().force_draw(force);
    let pool = Pool::builder().processes(4).progress(&bars).build()?;
    let done = pool.map_with(crunch, 0..8, MapOptions::new().chunksize(1).progress(&bars))?;
    pool.close();
    pool.join()?;
    bars.wait();
    drop(bars);
    println!("main: {} tasks done: {done:?}", done.len());
    Ok(())
}
