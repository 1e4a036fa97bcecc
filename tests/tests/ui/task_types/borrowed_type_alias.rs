// The attribute cannot see through an alias, so the serde bound catches it.
use multiproc::process_task;

type Name = &'static str;

#[process_task]
fn greet(name: Name) -> String {
    format!("hello, {name}")
}

fn main() {}
