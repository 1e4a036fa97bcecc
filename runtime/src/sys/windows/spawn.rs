//! Starting a child: `CreateProcessW` of this executable with exactly the
//! handles it needs, and the Job Object of daemonic children.

use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, BorrowedHandle, OwnedHandle};
use std::ptr::{null, null_mut};
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, OnceLock, PoisonError};

use windows_sys::Win32::Foundation::{
    DUPLICATE_SAME_ACCESS, DuplicateHandle, ERROR_INTERNAL_ERROR, GENERIC_READ, HANDLE, HANDLE_FLAG_INHERIT,
    INVALID_HANDLE_VALUE, SetHandleInformation, TRUE,
};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::Storage::FileSystem::{CreateFileW, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING};
use windows_sys::Win32::System::Console::{GetStdHandle, STD_ERROR_HANDLE, STD_HANDLE, STD_OUTPUT_HANDLE};
use windows_sys::Win32::System::Environment::GetCommandLineW;
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation, SetInformationJobObject,
};
use windows_sys::Win32::System::Threading::{
    CREATE_SUSPENDED, CREATE_UNICODE_ENVIRONMENT, CreateProcessW, DeleteProcThreadAttributeList,
    EXTENDED_STARTUPINFO_PRESENT, GetCurrentProcess, InitializeProcThreadAttributeList, LPPROC_THREAD_ATTRIBUTE_LIST,
    PROC_THREAD_ATTRIBUTE_HANDLE_LIST, PROCESS_INFORMATION, ResumeThread, STARTF_USESTDHANDLES, STARTUPINFOEXW,
    TerminateProcess, UpdateProcThreadAttribute,
};

use super::{ChildEnd, RawChild, TERMINATE_CODE, exe_path, owned, wide};

/// The kill-on-close job of this process's daemonic children. Its handle is
/// never closed: the system closes it when this process ends, however it
/// ends, and that kills every process in the job. `None` if it could not
/// be created.
fn daemon_job() -> Option<HANDLE> {
    static JOB: OnceLock<Option<OwnedHandle>> = OnceLock::new();
    JOB.get_or_init(|| {
        // SAFETY: null attributes (not inheritable) and no name.
        let job = owned(unsafe { CreateJobObjectW(null(), null()) }).ok()?;
        // SAFETY: plain data; zero means no limits.
        let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        // SAFETY: a valid job handle and an information block of the size
        // and class given.
        let ok = unsafe {
            SetInformationJobObject(
                job.as_raw_handle(),
                JobObjectExtendedLimitInformation,
                (&info as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
                size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            )
        };
        (ok != 0).then_some(job)
    })
    .as_ref()
    .map(|j| j.as_raw_handle())
}

/// An inheritable handle to the NUL device, for the child's stdin.
fn nul_device() -> io::Result<OwnedHandle> {
    let sa = SECURITY_ATTRIBUTES {
        nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: null_mut(),
        bInheritHandle: TRUE,
    };
    let name = wide("NUL");
    // SAFETY: a NUL-terminated name and valid security attributes.
    owned(unsafe {
        CreateFileW(name.as_ptr(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, OPEN_EXISTING, 0, null_mut())
    })
}

/// An inheritable duplicate of one of our standard handles, or `None` if
/// we have none there.
fn inheritable_std(which: STD_HANDLE) -> Option<OwnedHandle> {
    // SAFETY: no preconditions.
    let h = unsafe { GetStdHandle(which) };
    if h.is_null() || h == INVALID_HANDLE_VALUE {
        return None;
    }
    inheritable(h)
}

/// An inheritable duplicate of `h`, a handle of this process.
fn inheritable(h: HANDLE) -> Option<OwnedHandle> {
    let mut dup: HANDLE = null_mut();
    // SAFETY: `h` is a handle of this process; `dup` is a valid out-pointer.
    let ok = unsafe {
        DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &mut dup, 0, TRUE, DUPLICATE_SAME_ACCESS)
    };
    if ok == 0 { None } else { owned(dup).ok() }
}

/// The child's environment block: ours as of now, plus the bootstrap
/// variable naming the channel's handle value.
fn environment(channel: HANDLE) -> Vec<u16> {
    let key = super::super::BOOTSTRAP_ENV;
    let mut block = Vec::new();
    for (k, v) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.eq_ignore_ascii_case(key)) {
            continue;
        }
        block.extend(k.encode_wide());
        block.push(u16::from(b'='));
        block.extend(v.encode_wide().map(|c| if c == 0 { u16::from(b'?') } else { c }));
        block.push(0);
    }
    block.extend(format!("{key}={}", channel as usize).encode_utf16());
    block.extend([0, 0]);
    block
}

/// This process's command line, as a mutable NUL-terminated copy
/// (`CreateProcessW` may write to it).
fn command_line() -> Vec<u16> {
    // SAFETY: GetCommandLineW returns a NUL-terminated string that lives as
    // long as the process.
    let p = unsafe { GetCommandLineW() };
    let mut len = 0;
    // SAFETY: reading up to and including the terminating NUL.
    while unsafe { *p.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: the `len` units before the NUL are readable.
    let mut v = unsafe { std::slice::from_raw_parts(p, len) }.to_vec();
    v.push(0);
    v
}

/// A `PROC_THREAD_ATTRIBUTE_LIST` with one entry: the handle list.
struct AttributeList {
    /// The list's storage, `usize`-aligned.
    mem: Vec<usize>,
    /// Whether `InitializeProcThreadAttributeList` succeeded on `mem`.
    initialised: bool,
}

impl AttributeList {
    /// `handles` must outlive the list (it points into the slice).
    fn handle_list(handles: &[HANDLE]) -> io::Result<AttributeList> {
        let mut size = 0usize;
        // SAFETY: a null list asks only for the size needed.
        unsafe { InitializeProcThreadAttributeList(null_mut(), 1, 0, &mut size) };
        if size == 0 {
            return Err(io::Error::last_os_error());
        }
        let mut list = AttributeList { mem: vec![0usize; size.div_ceil(size_of::<usize>())], initialised: false };
        // SAFETY: `mem` holds at least `size` bytes.
        if unsafe { InitializeProcThreadAttributeList(list.ptr(), 1, 0, &mut size) } == 0 {
            return Err(io::Error::last_os_error());
        }
        list.initialised = true;
        // SAFETY: the list was initialised for one attribute; the value
        // points to `handles.len()` handles that outlive the list.
        let ok = unsafe {
            UpdateProcThreadAttribute(
                list.ptr(),
                0,
                PROC_THREAD_ATTRIBUTE_HANDLE_LIST as usize,
                handles.as_ptr().cast(),
                size_of_val(handles),
                null_mut(),
                null(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(list)
    }

    fn ptr(&mut self) -> LPPROC_THREAD_ATTRIBUTE_LIST {
        self.mem.as_mut_ptr().cast()
    }
}

impl Drop for AttributeList {
    fn drop(&mut self) {
        if self.initialised {
            // SAFETY: the list was initialised and is deleted once, here.
            unsafe { DeleteProcThreadAttributeList(self.ptr()) };
        }
    }
}

/// Clears the inheritable flag of a handle when dropped.
struct InheritOnce(HANDLE);

impl InheritOnce {
    fn set(h: HANDLE) -> io::Result<InheritOnce> {
        // SAFETY: `h` is a valid handle of this process.
        if unsafe { SetHandleInformation(h, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(InheritOnce(h))
    }
}

impl Drop for InheritOnce {
    fn drop(&mut self) {
        // SAFETY: the handle is still open (its owner outlives this guard).
        unsafe { SetHandleInformation(self.0, HANDLE_FLAG_INHERIT, 0) };
    }
}

/// Re-executes this binary with this process's command line and current
/// environment plus the bootstrap variable. The child inherits exactly: the
/// channel end, the NUL device as stdin, and our stdout and stderr (or
/// `stdio`'s). A daemonic child is placed in the kill-on-close job before
/// it runs.
pub(crate) fn spawn_self(end: &ChildEnd, daemon: bool, stdio: Option<[BorrowedHandle<'_>; 2]>) -> io::Result<RawChild> {
    let chan = end.0.as_raw_handle();
    let mut cmdline = command_line();
    let env = environment(chan);
    let stdin = nul_device()?;
    let (stdout, stderr) = match stdio {
        Some([out, err]) => (inheritable(out.as_raw_handle()), inheritable(err.as_raw_handle())),
        None => (inheritable_std(STD_OUTPUT_HANDLE), inheritable_std(STD_ERROR_HANDLE)),
    };
    // One spawn at a time in this process, so that no other child's
    // channel end is inheritable while this child is created: a system
    // that did not honour the handle list would hand it to this child too,
    // and a copy there keeps that channel open past its child's end.
    static SPAWNING: Mutex<()> = Mutex::new(());
    let spawning = SPAWNING.lock().unwrap_or_else(PoisonError::into_inner);
    // Inheritable only while this child is created.
    let inherit = InheritOnce::set(chan)?;

    let mut handles = vec![chan, stdin.as_raw_handle()];
    handles.extend(stdout.iter().chain(&stderr).map(|h| h.as_raw_handle()));
    let mut attrs = AttributeList::handle_list(&handles)?;

    // SAFETY: plain data; all zeroes is a valid empty value.
    let mut si: STARTUPINFOEXW = unsafe { std::mem::zeroed() };
    si.StartupInfo.cb = size_of::<STARTUPINFOEXW>() as u32;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = stdin.as_raw_handle();
    si.StartupInfo.hStdOutput = stdout.as_ref().map_or(null_mut(), |h| h.as_raw_handle());
    si.StartupInfo.hStdError = stderr.as_ref().map_or(null_mut(), |h| h.as_raw_handle());
    si.lpAttributeList = attrs.ptr();
    let mut flags = CREATE_UNICODE_ENVIRONMENT | EXTENDED_STARTUPINFO_PRESENT;
    if daemon {
        flags |= CREATE_SUSPENDED;
    }
    // SAFETY: plain data, an out-parameter.
    let mut pi: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: every pointer is valid for the call: the NUL-terminated exe
    // path, the mutable NUL-terminated command line, the double-NUL
    // terminated UTF-16 environment (flagged as such), the extended startup
    // info whose attribute list and handle array are alive, and `pi`.
    // bInheritHandles is TRUE, restricted by the handle list to `handles`.
    let create = |cmdline: &mut Vec<u16>, pi: &mut PROCESS_INFORMATION| unsafe {
        CreateProcessW(
            exe_path().as_ptr(),
            cmdline.as_mut_ptr(),
            null(),
            null(),
            TRUE,
            flags,
            env.as_ptr().cast(),
            null(),
            &si.StartupInfo,
            pi,
        )
    };
    // Under Wine on a heavily loaded machine, process creation has been
    // seen to fail now and then with ERROR_INTERNAL_ERROR, creating
    // nothing, and to succeed when tried again: such a failure is retried,
    // twice at most.
    let mut attempts = 0;
    while create(&mut cmdline, &mut pi) == 0 {
        let e = io::Error::last_os_error();
        attempts += 1;
        if e.raw_os_error() != Some(ERROR_INTERNAL_ERROR as i32) || attempts == 3 {
            return Err(e);
        }
        std::thread::sleep(std::time::Duration::from_millis(10 * attempts));
    }
    drop((attrs, inherit, spawning));
    let process = owned(pi.hProcess)?;
    let thread = owned(pi.hThread)?;
    if daemon {
        // If the job cannot be had (or the child cannot join it), the
        // child's lifeline thread still ends it when our end of the channel
        // closes.
        if let Some(job) = daemon_job() {
            // SAFETY: valid job and process handles.
            unsafe { AssignProcessToJobObject(job, process.as_raw_handle()) };
        }
        // SAFETY: a valid thread handle of the suspended child.
        if unsafe { ResumeThread(thread.as_raw_handle()) } == u32::MAX {
            let e = io::Error::last_os_error();
            // SAFETY: a valid process handle; the child never ran.
            unsafe { TerminateProcess(process.as_raw_handle(), TERMINATE_CODE) };
            return Err(e);
        }
    }
    Ok(RawChild { pid: pi.dwProcessId, process, terminated: AtomicBool::new(false) })
}
