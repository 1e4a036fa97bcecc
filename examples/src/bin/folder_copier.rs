//! Copies a directory tree with a pool of workers, one task per file.
//!
//! Mirrors the tutorial's "多进程实现文件夹多任务拷贝器" (a multi-process
//! folder copier): the parent walks the source tree and makes the
//! directories; the files are copied by the pool's workers, with one
//! progress bar for them all, drawn by the parent (on a terminal). A file
//! that cannot be read is reported and the others are copied all the
//! same.
//!
//! ```sh
//! cargo run -p multiproc-examples --bin folder_copier -- SOURCE DESTINATION
//! ```

use std::path::{Path, PathBuf};

use multiproc::pool::{MapOptions, Pool};
use multiproc::progress::Bars;

/// Copies one file; its size, or why it could not be copied.
#[multiproc::process_task]
fn copy_file(from: PathBuf, to: PathBuf) -> Result<u64, std::io::Error> {
    std::fs::copy(&from, &to)?;
    // The size as written (what `copy` returns is not reliable everywhere).
    Ok(std::fs::metadata(&to)?.len())
}

/// Every file under `dir` (recursively), with the directories made under
/// `dest` on the way.
fn walk(dir: &Path, dest: &Path, files: &mut Vec<(PathBuf, PathBuf)>) -> std::io::Result<()> {
    std::fs::create_dir_all(dest)?;
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let (from, to) = (entry.path(), dest.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            walk(&from, &to, files)?;
        } else {
            files.push((from, to));
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, source, destination] = args.as_slice() else {
        eprintln!("usage: folder_copier SOURCE DESTINATION");
        std::process::exit(2);
    };
    let mut files = Vec::new();
    walk(Path::new(source), Path::new(destination), &mut files)?;
    println!("copying {} files from {source} to {destination}", files.len());

    let pool = Pool::builder().build()?;
    let bars = Bars::new();
    let names: Vec<PathBuf> = files.iter().map(|(from, _)| from.clone()).collect();
    let results = pool.imap_with(copy_file, files, MapOptions::new().chunksize(8).progress(&bars))?;
    let (mut copied, mut bytes, mut failures) = (0, 0, Vec::new());
    for (name, result) in names.iter().zip(results) {
        match result? {
            Ok(n) => {
                copied += 1;
                bytes += n;
            }
            Err(e) => failures.push(format!("could not copy {}: {e}", name.display())),
        }
    }
    // The bar's last state is drawn before anything else is printed.
    drop(bars);
    for f in &failures {
        println!("{f}");
    }
    println!("copied {copied} files ({bytes} bytes), {} failed", failures.len());
    Ok(())
}
