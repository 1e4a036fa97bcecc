use multiproc::process_task;

#[process_task]
async fn fetch(url: String) -> String {
    url
}

fn main() {}
