//! Secure-execution mode: a process started setuid, setgid or with file
//! capabilities must never act as a child, whatever its environment says.

/// Whether this process runs in secure-execution mode (`AT_SECURE` on
/// Linux; `issetugid` on the BSDs and Apple platforms).
pub(crate) fn is_secure_execution() -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // libc: nix has no getauxval.
        // SAFETY: getauxval only reads the auxiliary vector.
        unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
    }
    #[cfg(any(target_vendor = "apple", target_os = "freebsd", target_os = "openbsd", target_os = "netbsd"))]
    {
        // libc: nix has no issetugid.
        // SAFETY: issetugid has no preconditions.
        unsafe { libc::issetugid() != 0 }
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd"
    )))]
    {
        // Unknown platform: trust nothing the environment says when the
        // effective ids differ from the real ones.
        nix::unistd::getuid() != nix::unistd::geteuid() || nix::unistd::getgid() != nix::unistd::getegid()
    }
}
