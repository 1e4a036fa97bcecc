use multiproc::process_task;

#[process_task]
fn greet(name: impl Into<String>) -> String {
    name.into()
}

fn main() {}
