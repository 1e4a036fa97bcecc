use multiproc::process_task;

#[process_task]
fn identity<T>(value: T) -> T {
    value
}

fn main() {}
