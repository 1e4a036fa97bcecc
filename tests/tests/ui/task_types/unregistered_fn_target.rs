use multiproc::Builder;

fn double(x: u64) -> u64 {
    x * 2
}

fn main() {
    let _ = Builder::new(double, (21,)).start();
}
