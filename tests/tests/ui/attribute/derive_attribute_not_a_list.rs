use multiproc::Process;
use serde::{Deserialize, Serialize};

#[derive(Process, Serialize, Deserialize)]
#[multiproc = "crate"]
struct Worker {
    jobs: u32,
}

impl Process for Worker {
    fn run(&mut self) {
        self.jobs += 1;
    }
}

fn main() {}
