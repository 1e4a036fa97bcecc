use multiproc::process_task;

#[process_task]
fn greet(name: &str) -> String {
    format!("hello, {name}")
}

fn main() {}
