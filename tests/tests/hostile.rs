//! Hostile bodies inside well-formed frames: values nested far deeper than
//! any real message, and length fields claiming far more bytes than the
//! body holds. Each must give a typed error, on a thread with a 2 MiB
//! stack, without reserving what the lengths claim; legitimate large flat
//! values must still decode.
//!
//! A decoder without these limits overflows the stack (which aborts the
//! whole process) or dies on a failed allocation, so every risky decode
//! runs in a fresh process of this test binary ([`multiproc_tests::isolated`]): a failure is
//! reported, not a crash of the harness.

#![cfg(target_os = "linux")]

use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::time::Instant;

use multiproc::{Builder, ConnectionError, DecodeError, Error, MAX_DEPTH, process_task};
use serde::de::{Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// Runs `f` on a thread with a 2 MiB stack (the default for spawned
/// threads) and returns what it returned.
fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new().stack_size(2 << 20).spawn(f).unwrap().join().unwrap()
}

/// Sends `body` as one raw message (from another thread: it may not fit
/// the socket's buffer) and receives it as a `T`.
fn recv_as<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ConnectionError> {
    let (a, b) = multiproc::pipe::<()>().unwrap();
    let body = body.to_vec();
    let sender = std::thread::spawn(move || a.send_bytes(&body).unwrap());
    let b: multiproc::Connection<T> = OwnedFd::from(b).into();
    let got = b.recv();
    sender.join().unwrap();
    got
}

#[derive(Debug, Serialize, Deserialize)]
struct Deep(Option<Box<Deep>>);

#[derive(Debug, Serialize, Deserialize)]
enum Tree {
    Leaf,
    Node(Box<Tree>, Box<Tree>),
}

#[derive(Debug, Serialize, Deserialize)]
struct Nest(Vec<Nest>);

#[derive(Debug, Serialize, Deserialize)]
enum Json {
    Null,
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

/// A singly linked list, as a user would write one.
#[derive(Debug, Serialize, Deserialize)]
struct Node {
    value: u32,
    next: Option<Box<Node>>,
}

/// Bodies nesting `levels` levels of each recursive type; built
/// iteratively (bincode: a tag or a length of 1 per level).
fn deep_bodies(levels: usize) -> Vec<(&'static str, Vec<u8>)> {
    let mut deep = vec![1u8; levels];
    deep.push(0);
    // Node(Node(…Leaf…), Leaf): a variant index per level, then the leaves.
    let mut tree = vec![1u8; levels];
    tree.extend(std::iter::repeat_n(0, levels + 1));
    // A vector holding one vector, `levels` times.
    let mut nest = vec![1u8; levels];
    nest.push(0);
    // {"k": {"k": … null}}: variant 2, one entry, the key "k".
    let mut json = [2u8, 1, 1, b'k'].repeat(levels);
    json.push(0);
    vec![("Deep", deep), ("Tree", tree), ("Nest", nest), ("Json", json)]
}

fn recv_named(name: &str, body: &[u8]) -> Result<(), ConnectionError> {
    match name {
        "Deep" => recv_as::<Deep>(body).map(drop),
        "Tree" => recv_as::<Tree>(body).map(drop),
        "Nest" => recv_as::<Nest>(body).map(drop),
        "Json" => recv_as::<Json>(body).map(drop),
        other => unreachable!("no type {other}"),
    }
}

#[test]
fn deep_nesting_is_a_typed_error_on_a_small_stack() {
    multiproc_tests::isolated("deep_nesting_is_a_typed_error_on_a_small_stack", || {
        for levels in [48_000, 100_000, 1_000_000] {
            for (name, body) in deep_bodies(levels) {
                let started = Instant::now();
                let got = on_small_stack(move || recv_named(name, &body));
                match got {
                    Err(ConnectionError::Decode(DecodeError::TooDeep { limit })) => assert_eq!(limit, MAX_DEPTH),
                    other => panic!("{name} nested {levels} deep: {other:?}"),
                }
                println!("{name} nested {levels} deep: refused in {:?}", started.elapsed());
            }
        }
    });
}

#[test]
fn nesting_within_the_limit_decodes_on_a_small_stack() {
    multiproc_tests::isolated("nesting_within_the_limit_decodes_on_a_small_stack", || {
        for (name, body) in deep_bodies(200) {
            on_small_stack(move || recv_named(name, &body)).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    });
}

#[test]
fn a_large_flat_list_decodes_on_a_small_stack() {
    let numbers: Vec<u64> = (0..20_000).map(|i| i * 7919).collect();
    let words: Vec<String> = (0..20_000).map(|i| format!("word {i}")).collect();
    let shapes: Vec<Option<(u8, Vec<u8>)>> = (0..20_000).map(|i| (i % 3 != 0).then(|| (i as u8, vec![1, 2]))).collect();
    let (n, w, s) = (numbers.clone(), words.clone(), shapes.clone());
    on_small_stack(move || {
        let (a, b) = multiproc::pipe::<(Vec<u64>, Vec<String>, Vec<Option<(u8, Vec<u8>)>>)>().unwrap();
        let value = (n, w, s);
        // The message is larger than the socket's buffer: send from another thread.
        let sender = std::thread::spawn({
            let value = value.clone();
            move || a.send(&value).unwrap()
        });
        assert_eq!(b.recv().unwrap(), value);
        sender.join().unwrap();
    });
}

/// A linked list of `len` nodes as it crosses the wire. The child encodes
/// it without building it (encoding a real 20,000-node list recurses too,
/// and overflows the child's own stack in an unoptimised build: bincode
/// lays a `Node` out as its `value` then the `Option` tag, so the encoding
/// is flat); the parent decodes it as a real [`Node`] list.
#[derive(Debug)]
struct List {
    len: u32,
}

impl Serialize for List {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(2 * self.len as usize)?;
        for value in (0..self.len).rev() {
            t.serialize_element(&value)?;
            t.serialize_element(&u8::from(value > 0))?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut node = Node::deserialize(d)?;
        let mut len = 1;
        while let Some(next) = node.next.take() {
            node = *next;
            len += 1;
        }
        Ok(List { len })
    }
}

#[process_task]
fn long_list(len: u32) -> List {
    List { len }
}

#[test]
fn a_result_nested_past_the_limit_is_a_typed_error() {
    multiproc_tests::isolated("a_result_nested_past_the_limit_is_a_typed_error", || {
        on_small_stack(|| {
            let child = Builder::new(long_list, (20_000,)).start().unwrap();
            match child.join() {
                Err(Error::BadResult { error: DecodeError::TooDeep { limit }, .. }) => assert_eq!(limit, MAX_DEPTH),
                other => panic!("{other:?}"),
            }
        });
    });
}

#[test]
fn a_short_result_list_decodes() {
    let list = on_small_stack(|| Builder::new(long_list, (100,)).start().unwrap().join().unwrap());
    assert_eq!(list.len, 100);
}

#[process_task]
fn depth_of(deep: Deep) -> u32 {
    let mut n = 0;
    let mut at = &deep;
    while let Some(next) = &at.0 {
        n += 1;
        at = next;
    }
    n
}

#[test]
fn arguments_nested_past_the_limit_are_refused_by_the_child() {
    // The parent builds, encodes and drops 100,000 levels on a large stack;
    // the child decodes them on its main thread.
    let child = std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(|| {
            let mut deep = Deep(None);
            for _ in 0..100_000 {
                deep = Deep(Some(Box::new(deep)));
            }
            Builder::new(depth_of, (deep,)).start().unwrap()
        })
        .unwrap()
        .join()
        .unwrap();
    match child.join() {
        Err(Error::Bootstrap { kind: multiproc::BootstrapFailure::BadArguments, message, .. }) => {
            assert!(message.contains("nests deeper than 512 levels"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

/// A `Vec<u8>` decoded through `deserialize_byte_buf` (as `serde_bytes`
/// does), not element by element.
#[derive(Debug)]
struct ByteBuf(#[allow(dead_code)] Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// A body holding only a length: `0xFC` and a `u32`, or `0xFD` and a `u64`
/// (bincode's variable-length integers), then `extra` bytes.
fn claim(len: u64, extra: &[u8]) -> Vec<u8> {
    let mut body = match u32::try_from(len) {
        Ok(l) => [&[0xFC][..], &l.to_le_bytes()].concat(),
        Err(_) => [&[0xFD][..], &len.to_le_bytes()].concat(),
    };
    body.extend_from_slice(extra);
    body
}

fn vm_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Caps this process's address space at what it maps now plus `extra`
/// bytes: an attempt to reserve more fails instead of succeeding lazily.
fn cap_address_space(extra: u64) {
    let limit = vm_kib("VmSize:") * 1024 + extra;
    let rlim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
    // SAFETY: setrlimit reads the struct it is given and nothing else.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &rlim) }, 0);
}

#[test]
fn a_claimed_length_past_the_body_is_refused_before_allocating() {
    multiproc_tests::isolated("a_claimed_length_past_the_body_is_refused_before_allocating", || {
        cap_address_space(1 << 30);
        let before = vm_kib("VmHWM:");
        for len in [u64::from(u32::MAX) - 64, 3 << 30, 1 << 32, 1 << 40, u64::MAX] {
            let body = claim(len, b"abc");
            let results = [
                ("String", recv_as::<String>(&body).map(drop)),
                ("ByteBuf", recv_as::<ByteBuf>(&body).map(drop)),
                ("Vec<u8>", recv_as::<Vec<u8>>(&body).map(drop)),
                ("Vec<u64>", recv_as::<Vec<u64>>(&body).map(drop)),
                ("HashMap", recv_as::<HashMap<u64, String>>(&body).map(drop)),
                ("Vec<String>", recv_as::<Vec<String>>(&[&[1u8][..], &body].concat()).map(drop)),
            ];
            for (name, got) in results {
                assert!(matches!(got, Err(ConnectionError::Decode(_))), "{name} claiming {len}: {got:?}");
            }
        }
        let grown = vm_kib("VmHWM:").saturating_sub(before);
        assert!(grown < 16 * 1024, "peak memory grew by {grown} KiB");
    });
}

#[test]
fn a_claimed_string_length_names_the_bytes_left() {
    match recv_as::<String>(&claim(u64::from(u32::MAX) - 64, b"")) {
        Err(ConnectionError::Decode(DecodeError::LengthPastEnd { claimed, left: 0 })) => {
            assert_eq!(claimed, u64::from(u32::MAX) - 64)
        }
        other => panic!("{other:?}"),
    }
}

/// A length may exceed the bytes left when the elements take no bytes (a
/// `Vec<()>`), but the time spent on them is bounded.
#[test]
fn zero_sized_elements_are_bounded() {
    multiproc_tests::isolated("zero_sized_elements_are_bounded", || {
        assert_eq!(recv_as::<Vec<()>>(&[100]).unwrap().len(), 100);
        assert!(matches!(
            recv_as::<Vec<()>>(&claim(u64::MAX, b"")),
            Err(ConnectionError::Decode(DecodeError::TooManyEmpty { .. }))
        ));
        // Many short vectors, each claiming many units: the budget is per
        // decode, not per vector.
        let mut body = claim(1 << 12, b"");
        for _ in 0..1 << 12 {
            body.extend(claim(1 << 10, b""));
        }
        assert!(matches!(
            recv_as::<Vec<Vec<()>>>(&body),
            Err(ConnectionError::Decode(DecodeError::TooManyEmpty { .. }))
        ));
    });
}

#[test]
fn recv_bytes_max_takes_a_message_up_to_the_maximum() {
    let (a, b) = multiproc::pipe::<()>().unwrap();
    a.send_bytes(&[7; 100]).unwrap();
    a.send_bytes(b"").unwrap();
    assert_eq!(b.recv_bytes_max(100).unwrap(), [7; 100]);
    assert_eq!(b.recv_bytes_max(0).unwrap(), b"");
    drop(a);
    assert!(matches!(b.recv_bytes_max(10), Err(ConnectionError::Eof)));
}

#[test]
fn recv_bytes_max_refuses_a_longer_message_from_its_header() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    const BODY: usize = 100_000;
    let (writer, reader) = multiproc::pipe::<()>().unwrap();
    let mut raw = UnixStream::from(OwnedFd::from(writer));
    // A header claiming 1 GiB, and only part of the body behind it.
    let mut frame = b"MP".to_vec();
    frame.extend([multiproc::__private::testing::PROTOCOL_VERSION, 3]);
    frame.extend((1u64 << 30).to_le_bytes());
    frame.extend(vec![9u8; BODY]);
    raw.write_all(&frame).unwrap();
    match reader.recv_bytes_max(1024) {
        Err(ConnectionError::LongerThanMax { len, max }) => assert_eq!((len, max), (1 << 30, 1024)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(reader.recv_bytes(), Err(ConnectionError::Broken)));
    // The whole body was left in the socket: a receive takes nothing of it.
    drop(raw);
    let mut rest = Vec::new();
    UnixStream::from(OwnedFd::from(reader)).read_to_end(&mut rest).unwrap();
    assert_eq!(rest.len(), BODY, "only {} of {BODY} body bytes were left unread", rest.len());
}

/// Writes, on its own channel (descriptor 3), a report claiming a 4 GiB
/// result of which three bytes follow, then exits.
#[process_task]
fn forge_a_huge_report() -> Vec<u8> {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let claim: u64 = 4 << 30;
    // `Outcome::Returned`, then the byte string's length and its start.
    let mut body = vec![0u8, 0xFD];
    body.extend(claim.to_le_bytes());
    body.extend(b"abc");
    let mut frame = b"MP".to_vec();
    frame.extend([multiproc::__private::testing::PROTOCOL_VERSION, 2]);
    frame.extend((10 + claim).to_le_bytes());
    frame.extend(body);
    // SAFETY: descriptor 3 is this child's channel, open for its whole
    // life; ManuallyDrop keeps it open.
    let mut chan = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(3) });
    chan.write_all(&frame).unwrap();
    std::process::exit(0)
}

#[test]
fn a_report_claiming_more_than_can_be_reserved_is_an_error() {
    multiproc_tests::isolated("a_report_claiming_more_than_can_be_reserved_is_an_error", || {
        cap_address_space(1 << 30);
        match multiproc::spawn(forge_a_huge_report, ()).unwrap().join() {
            Err(Error::BadResult { error: DecodeError::Io(message), .. }) => {
                assert!(message.contains("cannot reserve"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    });
}
