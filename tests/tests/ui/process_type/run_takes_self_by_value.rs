use multiproc::Process;
use serde::{Deserialize, Serialize};

#[derive(Process, Serialize, Deserialize)]
struct Worker {
    jobs: u32,
}

impl Process for Worker {
    fn run(self) {
        let _ = self.jobs;
    }
}

fn main() {}
