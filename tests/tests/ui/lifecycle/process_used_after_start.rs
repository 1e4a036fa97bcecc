use multiproc::{Error, Process};
use serde::{Deserialize, Serialize};

#[derive(Process, Serialize, Deserialize)]
struct Worker {
    jobs: u32,
}

impl Process for Worker {
    fn run(&mut self) {
        self.jobs += 1;
    }
}

fn main() -> Result<(), Error> {
    let worker = Worker { jobs: 0 };
    let child = worker.start()?;
    child.wait()?;
    println!("{}", worker.jobs);
    Ok(())
}
