use std::borrow::Cow;

use multiproc::process_task;

#[process_task]
fn shout(text: Cow<'_, str>) -> String {
    text.to_uppercase()
}

fn main() {}
