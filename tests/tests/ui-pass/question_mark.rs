//! `?` on every multiproc operation converts into `multiproc::Error`, so a
//! `main` returning it keeps working when a program uses pipes and queues;
//! the specific error, matched before `?`, still hands a value back.

use multiproc::{ConnectionError, Error, process_task};

#[process_task]
fn double(x: u64) -> u64 {
    2 * x
}

fn recv_after_close() -> Result<u64, Error> {
    let (a, b) = multiproc::pipe::<u64>()?;
    drop(b);
    Ok(a.recv()?)
}

#[cfg(target_os = "linux")]
fn queues() -> Result<(), Error> {
    use multiproc::{JoinableQueue, PutError, Queue};

    let q = Queue::<String>::with_maxsize(1)?;
    q.put("a".to_string())?;
    // The specific error gives the value back ...
    assert_eq!(q.put_nowait("b".to_string()).unwrap_err().into_inner(), "b");
    // ... and `?` turns it into `Error::Put` without it.
    let put_again = || -> Result<(), Error> { Ok(q.put_nowait("c".to_string())?) };
    assert!(matches!(put_again(), Err(Error::Put(PutError::Full(())))));
    assert_eq!(q.get()?, "a");
    let get_again = || -> Result<String, Error> { Ok(q.get_nowait()?) };
    assert!(matches!(get_again(), Err(Error::Get(multiproc::GetError::Empty))));

    let jq = JoinableQueue::<u8>::new()?;
    jq.put(1)?;
    jq.get()?;
    jq.task_done()?;
    let done_again = || -> Result<(), Error> { Ok(jq.task_done()?) };
    assert!(matches!(done_again(), Err(Error::TaskDone(multiproc::TaskDoneError::TooManyCalls))));
    Ok(())
}

fn main() -> Result<(), Error> {
    let (mine, theirs) = multiproc::pipe::<u64>()?;
    mine.send(&21)?;
    assert_eq!(theirs.recv()?, 21);
    assert_eq!(multiproc::spawn(double, (21,))?.join()?, 42);
    assert!(matches!(recv_after_close(), Err(Error::Connection(ConnectionError::Eof))));
    #[cfg(target_os = "linux")]
    queues()?;
    Ok(())
}
