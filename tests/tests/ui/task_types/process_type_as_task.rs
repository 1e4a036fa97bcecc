use multiproc::{Builder, Process};
use serde::{Deserialize, Serialize};

#[derive(Process, Serialize, Deserialize)]
struct Worker {
    jobs: u32,
}

impl Process for Worker {
    fn run(&mut self) {}
}

fn main() {
    // A process type is started with `Builder::process` or `.start()`.
    let _ = Builder::new(Worker { jobs: 1 }, ()).start();
}
