use multiproc::process_task;

#[process_task]
fn count(words: Vec<&'static str>) -> usize {
    words.len()
}

fn main() {}
