use multiproc::Builder;

fn main() {
    let _ = Builder::new(|x: u64| x * 2, (21,)).start();
}
