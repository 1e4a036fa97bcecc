use multiproc::process_task;

#[process_task]
fn total(values: &[u64]) -> u64 {
    values.iter().sum()
}

fn main() {}
