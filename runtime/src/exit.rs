//! How a process ended.

use std::fmt;

/// How a child process ended: the richer form of [`Child::exitcode`].
///
/// [`Child::exitcode`]: crate::Child::exitcode
///
/// ```
/// use multiproc::ExitStatus;
/// assert_eq!(ExitStatus::Code(3).exitcode(), 3);
/// assert_eq!(ExitStatus::Signal(15).exitcode(), -15);
/// assert!(ExitStatus::Code(0).success());
/// ```
/// `#[non_exhaustive]`: other platforms may add ways to end (a Windows
/// NTSTATUS, say), so a `match` needs a catch-all arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitStatus {
    /// The process exited with this code: 0 after a normal return, 1 after
    /// a panic or a returned `Err`, `n` after `std::process::exit(n)`.
    Code(i32),
    /// The process was killed by this signal (Unix).
    Signal(i32),
}

impl ExitStatus {
    /// The code in Python's convention: the exit code, or `-N` for signal `N`.
    ///
    /// ```
    /// use multiproc::ExitStatus;
    /// assert_eq!(ExitStatus::Code(0).exitcode(), 0);
    /// assert_eq!(ExitStatus::Signal(9).exitcode(), -9);
    /// ```
    pub fn exitcode(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => -s,
        }
    }

    /// True for exit code 0.
    ///
    /// ```
    /// use multiproc::ExitStatus;
    /// assert!(ExitStatus::Code(0).success());
    /// assert!(!ExitStatus::Code(1).success());
    /// assert!(!ExitStatus::Signal(15).success());
    /// ```
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal(s) => {
                write!(f, "signal {s}{}", signal_name(*s).map(|n| format!(" ({n})")).unwrap_or_default())
            }
        }
    }
}

fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => return None,
    })
}
