use multiproc::process_task;

#[process_task]
fn describe(value: Box<dyn std::fmt::Debug + Send>) -> String {
    format!("{value:?}")
}

fn main() {}
