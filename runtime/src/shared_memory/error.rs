//! Why a shared-memory call failed, and how names are checked and made.

use std::io;

/// Why creating, opening or unlinking [`SharedMemory`](crate::SharedMemory)
/// failed.
///
/// ```
/// use multiproc::{SharedMemory, SharedMemoryError};
///
/// let owner = SharedMemory::create_with_random_name(16)?;
/// let name = owner.name().unwrap().to_owned();
/// assert!(matches!(SharedMemory::create_named(&name, 16), Err(SharedMemoryError::AlreadyExists { .. })));
/// assert!(matches!(SharedMemory::create_named("a\0b", 16), Err(SharedMemoryError::InvalidInput(_))));
/// assert!(matches!(SharedMemory::create_named(&name, 0), Err(SharedMemoryError::InvalidInput(_))));
/// drop(owner); // unlinks the name
/// assert!(matches!(SharedMemory::open(&name), Err(SharedMemoryError::NotFound { .. })));
/// # Ok::<(), SharedMemoryError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharedMemoryError {
    /// Creating: the name is taken (Python's `FileExistsError`).
    #[error("shared memory named {name:?} already exists")]
    AlreadyExists {
        /// The name, without a leading `/`.
        name: String,
    },
    /// Opening: no shared memory has this name; unlinking: the name is
    /// gone already (Python's `FileNotFoundError`).
    #[error("no shared memory is named {name:?}")]
    NotFound {
        /// The name, without a leading `/`.
        name: String,
    },
    /// A size of 0 or too large, or a name that cannot be one: empty, `.`
    /// or `..`, too long, or holding a NUL, `/` (but for a leading one) or
    /// `\` (Python's `ValueError`).
    #[error("{0}")]
    InvalidInput(String),
    /// The operating system refused for another reason.
    #[error("shared memory: {0}")]
    Io(#[from] io::Error),
}

/// Makes an error of the system's about the memory called `name`.
pub(super) fn from_os(e: io::Error, name: &str) -> SharedMemoryError {
    match e.kind() {
        io::ErrorKind::AlreadyExists => SharedMemoryError::AlreadyExists { name: name.to_owned() },
        io::ErrorKind::NotFound => SharedMemoryError::NotFound { name: name.to_owned() },
        io::ErrorKind::InvalidInput => SharedMemoryError::InvalidInput(format!("shared memory named {name:?}: {e}")),
        _ => SharedMemoryError::Io(e),
    }
}

/// The longest name taken, in bytes: with its leading `/`, within every
/// Unix's limit on a file name (a shorter limit, as macOS's 31 bytes, is
/// the system's `InvalidInput`).
pub(super) const MAX_NAME: usize = 248;

/// What random names start with (Python's POSIX prefix).
pub(super) const RANDOM_PREFIX: &str = "psm_";

/// `name` without its leading `/`, if it can be a name everywhere.
pub(super) fn check_name(name: &str) -> Result<&str, SharedMemoryError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let refuse = |why: &str| Err(SharedMemoryError::InvalidInput(format!("{name:?} cannot name shared memory: {why}")));
    if bare.is_empty() {
        return refuse("it is empty");
    }
    if bare == "." || bare == ".." {
        return refuse("it names a directory");
    }
    if bare.len() > MAX_NAME {
        return refuse(&format!("it is longer than {MAX_NAME} bytes"));
    }
    if let Some(c) = bare.chars().find(|c| matches!(c, '\0' | '/' | '\\')) {
        return refuse(&format!("it holds {c:?}"));
    }
    Ok(bare)
}

/// Refuses a size of 0, as Python does.
pub(super) fn check_size(size: usize) -> Result<usize, SharedMemoryError> {
    match size {
        0 => Err(SharedMemoryError::InvalidInput("the size of shared memory must be at least 1 byte".into())),
        n if n > isize::MAX as usize => {
            Err(SharedMemoryError::InvalidInput(format!("a size of {n} bytes is too large")))
        }
        n => Ok(n),
    }
}

/// A fresh random name: the prefix and 8 hexadecimal digits (12
/// characters, within the 14 macOS allows once a `/` is added).
pub(super) fn random_name() -> Result<String, SharedMemoryError> {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).map_err(|e| SharedMemoryError::Io(io::Error::other(e.to_string())))?;
    Ok(format!("{RANDOM_PREFIX}{:08x}", u32::from_le_bytes(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_one_leading_slash_and_bad_ones_are_refused() {
        assert_eq!(check_name("/abc").unwrap(), "abc");
        assert_eq!(check_name("abc").unwrap(), "abc");
        for bad in ["", "/", "//x", "a/b", "a\\b", "a\0b", ".", "/..", &"x".repeat(MAX_NAME + 1)] {
            assert!(matches!(check_name(bad), Err(SharedMemoryError::InvalidInput(_))), "{bad:?}");
        }
        assert!(check_name(&"x".repeat(MAX_NAME)).is_ok());
    }

    #[test]
    fn random_names_are_short_prefixed_and_differ() {
        let (a, b) = (random_name().unwrap(), random_name().unwrap());
        assert!(a.starts_with(RANDOM_PREFIX) && a.len() <= 14, "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn sizes_must_be_positive() {
        assert!(matches!(check_size(0), Err(SharedMemoryError::InvalidInput(_))));
        assert!(matches!(check_size(usize::MAX), Err(SharedMemoryError::InvalidInput(_))));
        assert_eq!(check_size(1).unwrap(), 1);
    }
}
