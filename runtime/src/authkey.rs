//! The per-process authentication key.

use std::fmt;

/// A process's authentication key, as Python's `Process.authkey`.
///
/// The main process gets 32 random bytes; children inherit their parent's
/// key unless one is set on the [`Builder`](crate::Builder). It has no
/// `Serialize` impl on purpose: the only way it leaves a process is the
/// private bootstrap channel to a child, and its `Debug` output hides it.
///
/// ```
/// let key = multiproc::current_process().authkey();
/// assert_eq!(key.as_bytes().len(), 32);
/// assert_eq!(format!("{key:?}"), "AuthKey(..)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey(Vec<u8>);

impl AuthKey {
    /// A key made of these bytes (the empty key is allowed).
    ///
    /// ```
    /// let key = multiproc::AuthKey::new(*b"abc");
    /// assert_eq!(key.as_bytes(), b"abc");
    /// assert!(multiproc::AuthKey::new(Vec::new()).as_bytes().is_empty());
    /// ```
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        AuthKey(bytes.into())
    }

    /// 32 fresh random bytes.
    ///
    /// ```
    /// let (a, b) = (multiproc::AuthKey::random(), multiproc::AuthKey::random());
    /// assert_eq!(a.as_bytes().len(), 32);
    /// assert_ne!(a, b);
    /// ```
    pub fn random() -> Self {
        let mut k = vec![0u8; 32];
        getrandom::fill(&mut k).expect("the operating system's random source failed");
        AuthKey(k)
    }

    /// The key's bytes.
    ///
    /// ```
    /// assert_eq!(multiproc::AuthKey::new(vec![1, 2, 3]).as_bytes(), [1, 2, 3]);
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey(..)")
    }
}
