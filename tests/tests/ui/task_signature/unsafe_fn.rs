use multiproc::process_task;

#[process_task]
unsafe fn read(address: usize) -> u8 {
    // SAFETY: never called; the attribute rejects this function.
    unsafe { *(address as *const u8) }
}

fn main() {}
