// Names starting with `__multiproc` belong to the generated code.
use multiproc::process_task;

#[process_task]
fn __multiproc_work(n: u64) -> u64 {
    n
}

fn main() {}
