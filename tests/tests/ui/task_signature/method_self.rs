use multiproc::process_task;

struct Counter {
    n: u64,
}

impl Counter {
    #[process_task]
    fn get(&self) -> u64 {
        self.n
    }
}

fn main() {
    let _ = Counter { n: 1 }.get();
}
