use multiproc::process_task;

trait Job {
    #[process_task]
    fn run(input: u64) -> u64;
}

fn main() {}
