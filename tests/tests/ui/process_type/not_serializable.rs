use multiproc::Process;

#[derive(Process)]
struct Worker {
    jobs: u32,
}

impl Process for Worker {
    fn run(&mut self) {
        self.jobs += 1;
    }
}

fn main() {}
