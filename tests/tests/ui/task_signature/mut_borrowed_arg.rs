use multiproc::process_task;

#[process_task]
fn push(values: &mut Vec<u64>) {
    values.push(1);
}

fn main() {}
