use multiproc::process_task;

#[process_task]
fn name(id: u64) -> &'static str {
    if id == 0 { "root" } else { "user" }
}

fn main() {}
