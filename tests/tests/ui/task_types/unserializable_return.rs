use multiproc::process_task;

struct Report {
    lines: usize,
}

#[process_task]
fn analyse(text: String) -> Report {
    Report {
        lines: text.lines().count(),
    }
}

fn main() {}
