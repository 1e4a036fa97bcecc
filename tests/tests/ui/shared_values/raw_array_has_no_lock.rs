// A raw array has no lock either.
fn main() {
    let a = multiproc::RawArray::<f64>::new(4).unwrap();
    let _ = a.lock();
}
