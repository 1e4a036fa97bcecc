use multiproc::process_task;

#[process_task]
struct Job {
    id: u64,
}

fn main() {
    let _ = Job { id: 1 }.id;
}
