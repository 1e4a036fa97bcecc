use multiproc::process_task;

struct Math;

impl Math {
    #[process_task]
    fn square(x: u64) -> u64 {
        x * x
    }
}

fn main() {}
