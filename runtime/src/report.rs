//! What a child prints on its own stderr when its target fails.
//!
//! A panic is printed as std prints one, after a `Process <name>:` line:
//! the message and location, then, as `RUST_BACKTRACE` asks, nothing more
//! (unset or `0`), the short backtrace (`1`: the frames between std's
//! markers, the task's own), or every frame (`full`). A task's returned
//! `Err` is not printed unless [`ChildReports::All`] asks for it. The
//! parent's `join` gets the same failures whatever is printed.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Serialize};

/// What children print on their stderr when their target fails. Set it
/// with [`set_child_reports`]; children pass it on to their own children.
///
/// ```
/// use multiproc::ChildReports;
///
/// #[multiproc::process_task]
/// fn fail() {
///     panic!("expected, and handled by the parent");
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// // This program handles its children's failures itself.
/// multiproc::set_child_reports(ChildReports::Quiet);
/// let err = multiproc::spawn(fail, ())?.join().unwrap_err();
/// assert!(matches!(err, multiproc::Error::Panicked { .. }));
/// multiproc::set_child_reports(ChildReports::default());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChildReports {
    /// A panic is printed as std would print it; a returned `Err` is not.
    #[default]
    Panics,
    /// Panics, and a returned `Err` too (its `Debug`, after `Error:`).
    All,
    /// Nothing is printed.
    Quiet,
}

static SETTING: AtomicU8 = AtomicU8::new(0);

impl ChildReports {
    fn to_u8(self) -> u8 {
        match self {
            ChildReports::Panics => 0,
            ChildReports::All => 1,
            ChildReports::Quiet => 2,
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => ChildReports::All,
            2 => ChildReports::Quiet,
            _ => ChildReports::Panics,
        }
    }
}

/// Sets what children started from now on print when their target fails
/// (see [`ChildReports`]). In a child, its parent's setting is in force
/// until it is set again.
///
/// ```
/// use multiproc::{ChildReports, child_reports, set_child_reports};
///
/// #[multiproc::process_task]
/// fn fail() {
///     panic!("handled by the parent");
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// // This program reports failures itself: children print nothing.
/// set_child_reports(ChildReports::Quiet);
/// assert_eq!(child_reports(), ChildReports::Quiet);
/// assert!(matches!(multiproc::spawn(fail, ())?.join(), Err(multiproc::Error::Panicked { .. })));
/// # Ok(())
/// # }
/// ```
pub fn set_child_reports(reports: ChildReports) {
    SETTING.store(reports.to_u8(), Ordering::Relaxed);
}

/// What children started now print when their target fails.
///
/// ```
/// assert_eq!(multiproc::child_reports(), multiproc::ChildReports::Panics);
/// ```
pub fn child_reports() -> ChildReports {
    ChildReports::from_u8(SETTING.load(Ordering::Relaxed))
}

/// How much of a backtrace std would print, from `RUST_BACKTRACE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BacktraceStyle {
    Off,
    Short,
    Full,
}

impl BacktraceStyle {
    pub(crate) fn from_env() -> Self {
        match std::env::var_os("RUST_BACKTRACE") {
            None => BacktraceStyle::Off,
            Some(v) if v == "0" => BacktraceStyle::Off,
            Some(v) if v == "full" => BacktraceStyle::Full,
            Some(_) => BacktraceStyle::Short,
        }
    }
}

/// Prints a child's panic as std would, after `Process <name>:`, with as
/// much of `backtrace` as `style` asks for.
pub(crate) fn print_panic(
    name: &str,
    thread: &str,
    location: Option<&str>,
    message: &str,
    style: BacktraceStyle,
    backtrace: Option<&str>,
) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "Process {name}:");
    let _ = writeln!(err, "thread '{thread}' panicked at {}:\n{message}", location.unwrap_or("<unknown>"));
    let _ = match (style, backtrace) {
        (BacktraceStyle::Off, _) | (_, None) => {
            writeln!(err, "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace")
        }
        (BacktraceStyle::Full, Some(bt)) => writeln!(err, "stack backtrace:\n{bt}"),
        (BacktraceStyle::Short, Some(bt)) => writeln!(
            err,
            "stack backtrace:\n{}note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.",
            short(bt)
        ),
    };
}

/// Prints a task's returned `Err`, if the parent asked for that.
pub(crate) fn print_error(name: &str, error: &str) {
    if child_reports() == ChildReports::All {
        let _ = writeln!(io::stderr(), "Process {name}:\nError: {error}");
    }
}

/// Whether a panic is printed at all.
pub(crate) fn panics_printed() -> bool {
    child_reports() != ChildReports::Quiet
}

/// The short form of a full backtrace's text, as std prints it: the frames
/// after the panic machinery (`__rust_end_short_backtrace`) and before the
/// start-up code (`__rust_begin_short_backtrace`, or the child's own
/// dispatcher), numbered from 0.
pub(crate) fn short(full: &str) -> String {
    // A frame is its numbered line and the `at` lines under it.
    let mut frames: Vec<Vec<&str>> = Vec::new();
    for line in full.lines() {
        let numbered = line.trim_start().split_once(": ").is_some_and(|(n, _)| n.bytes().all(|b| b.is_ascii_digit()));
        match frames.last_mut() {
            Some(frame) if !numbered => frame.push(line),
            _ => frames.push(vec![line]),
        }
    }
    let has = |frame: &Vec<&str>, what: &str| frame.first().is_some_and(|l| l.contains(what));
    let start = frames.iter().rposition(|f| has(f, "__rust_end_short_backtrace")).map_or(0, |i| i + 1);
    let end = frames[start..]
        .iter()
        .position(|f| has(f, "__rust_begin_short_backtrace") || has(f, "multiproc::bootstrap::run_child"))
        .map_or(frames.len(), |i| start + i);
    let mut out = String::new();
    for (i, frame) in frames[start..end].iter().enumerate() {
        let name = frame[0].trim_start().split_once(": ").map_or(frame[0], |(_, rest)| rest);
        out.push_str(&format!("{i:>4}: {name}\n"));
        for at in &frame[1..] {
            out.push_str(at);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_short_backtrace_keeps_the_frames_between_the_markers() {
        let full = "   0: std::panicking::begin_panic_handler\n             at panicking.rs:1:1\n   1: \
                    std::sys::backtrace::__rust_end_short_backtrace\n   2: core::panicking::panic_fmt\n   3: \
                    my::task\n             at src/main.rs:7:5\n   4: multiproc::bootstrap::run_child\n   5: main\n";
        assert_eq!(short(full), "   0: core::panicking::panic_fmt\n   1: my::task\n             at src/main.rs:7:5\n");
    }
}
