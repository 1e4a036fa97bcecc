//! Property test of every receive path against hostile bytes: random
//! garbage, mutated valid frames, truncations and absurd length prefixes
//! must give a typed error (or a value, when the mutation happens to be
//! valid) — never a panic, a hang, or a jump in memory.
//!
//! Deterministic: a fixed-seed generator, so a failure names its case and
//! reproduces. Raise `MULTIPROC_PROP_CASES` for a longer soak.

#![cfg(target_os = "linux")]

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use multiproc::{ConnectionError, DecodeError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Point { x: i64, y: i64 },
    Named(String, Vec<u32>),
    Nested(Vec<Shape>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Message {
    id: u64,
    tags: Vec<String>,
    shapes: Vec<Shape>,
    table: BTreeMap<String, Vec<u8>>,
    maybe: Option<Box<Message>>,
}

/// xorshift64*: small, fast, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn sample(rng: &mut Rng, depth: u32) -> Message {
    let shape = |rng: &mut Rng| match rng.below(4) {
        0 => Shape::Empty,
        1 => Shape::Point { x: rng.next() as i64, y: -(rng.below(1000) as i64) },
        2 => Shape::Named(format!("s{}", rng.below(1 << 20)), (0..rng.below(8)).map(|i| i as u32).collect()),
        _ => Shape::Nested(vec![Shape::Empty, Shape::Point { x: 1, y: 2 }]),
    };
    Message {
        id: rng.next(),
        tags: (0..rng.below(5)).map(|i| format!("tag-{i}")).collect(),
        shapes: (0..rng.below(6)).map(|_| shape(rng)).collect(),
        table: (0..rng.below(4)).map(|i| (format!("k{i}"), vec![i as u8; rng.below(64) as usize])).collect(),
        maybe: (depth < 2 && rng.below(2) == 0).then(|| Box::new(sample(rng, depth + 1))),
    }
}

/// A valid frame for `m`, taken from a real connection.
fn frame_of(m: &Message) -> Vec<u8> {
    let (a, b) = multiproc::pipe::<Message>().unwrap();
    a.send(m).unwrap();
    drop(a);
    let mut raw = UnixStream::from(OwnedFd::from(b));
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut raw, &mut bytes).unwrap();
    bytes
}

fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    match rng.below(6) {
        // Flip a few bytes anywhere, header included.
        0 | 1 => {
            for _ in 0..=rng.below(4) {
                let i = rng.below(bytes.len() as u64) as usize;
                bytes[i] ^= 1 << rng.below(8);
            }
        }
        // Cut it short.
        2 => bytes.truncate(rng.below(bytes.len() as u64) as usize),
        // Claim another length, from tiny to absurd.
        3 => {
            let len: u64 = match rng.below(4) {
                0 => rng.below(16),
                1 => 1 << 60,
                2 => u64::MAX,
                _ => rng.next() >> rng.below(64),
            };
            bytes[4..12].copy_from_slice(&len.to_le_bytes());
        }
        // Random garbage after a valid header.
        4 => {
            let n = 12 + rng.below(256) as usize;
            bytes.truncate(12.min(bytes.len()));
            while bytes.len() < n {
                bytes.push(rng.next() as u8);
            }
            let body = (bytes.len() - 12) as u64;
            bytes[4..12].copy_from_slice(&body.to_le_bytes());
        }
        // Pure garbage.
        _ => bytes = (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
    }
    bytes
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn hostile_bytes_give_typed_errors() {
    let cases: u64 = std::env::var("MULTIPROC_PROP_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let before = rss_kib();
    let (mut ok, mut errors) = (0u64, 0u64);
    for case in 0..cases {
        let original = sample(&mut rng, 0);
        let bytes = mutate(&mut rng, frame_of(&original));
        let (writer, reader) = multiproc::pipe::<Message>().unwrap();
        let mut raw = UnixStream::from(OwnedFd::from(writer));
        raw.write_all(&bytes).unwrap();
        drop(raw);
        // Read until the channel says EOF or breaks; at most a few messages
        // can hide in a few hundred bytes.
        for _ in 0..64 {
            match reader.recv() {
                Ok(_) => ok += 1,
                Err(ConnectionError::Eof | ConnectionError::Broken) => break,
                Err(
                    ConnectionError::Truncated { .. }
                    | ConnectionError::TooLarge { .. }
                    | ConnectionError::Malformed(_)
                    | ConnectionError::Decode(_),
                ) => errors += 1,
                Err(other) => panic!("case {case}: unexpected error {other:?} for {bytes:02x?}"),
            }
        }
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "memory grew by {grown} KiB over {cases} hostile frames");
    assert!(errors > cases / 2, "the mutations should mostly be rejected ({ok} accepted, {errors} rejected)");
}

#[test]
fn an_absurd_length_is_refused_before_any_allocation() {
    for len in [1u64 << 34 | 1, 1 << 40, 1 << 60, u64::MAX] {
        let (writer, reader) = multiproc::pipe::<Vec<u8>>().unwrap();
        let mut raw = UnixStream::from(OwnedFd::from(writer));
        let mut header = b"MP".to_vec();
        header.extend([multiproc::__private::testing::PROTOCOL_VERSION, 3]);
        header.extend(len.to_le_bytes());
        raw.write_all(&header).unwrap();
        let before = rss_kib();
        assert!(matches!(reader.recv_bytes(), Err(ConnectionError::TooLarge { .. })));
        assert!(rss_kib().saturating_sub(before) < 1024);
    }
}

/// Sends `body` as one raw message (from another thread: it may be larger
/// than the socket's buffer) and receives it as a `T`, on a thread with
/// the default 2 MiB stack.
fn recv_as<T: serde::de::DeserializeOwned + Send + 'static>(body: Vec<u8>) -> Result<(), ConnectionError> {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let (a, b) = multiproc::pipe::<()>().unwrap();
            let sender = std::thread::spawn(move || a.send_bytes(&body));
            let b: multiproc::Connection<T> = OwnedFd::from(b).into();
            // A decoded value is dropped here, on this thread, too.
            let got = b.recv().map(drop);
            sender.join().unwrap().unwrap();
            got
        })
        .unwrap()
        .join()
        .unwrap()
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Deep(Option<Box<Deep>>);

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
enum Tree {
    Leaf,
    Node(Box<Tree>, Box<Tree>),
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Nest(Vec<Nest>);

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
enum Json {
    Null,
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

/// A body nesting `levels` levels of the recursive type `kind`, built
/// iteratively in bincode's layout (a tag or a length of 1 per level).
/// Decodes `body` as a stream (the path of task arguments and results),
/// in pieces of 4 KiB.
fn streamed_as<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<(), DecodeError> {
    multiproc::__private::testing::decode_both::<T>(body, 4096).1.map(drop)
}

fn nested(kind: u64, levels: usize) -> Vec<u8> {
    match kind {
        0 | 2 => [vec![1u8; levels], vec![0]].concat(),
        1 => [vec![1u8; levels], vec![0; levels + 1]].concat(),
        _ => [[2u8, 1, 1, b'k'].repeat(levels), vec![0]].concat(),
    }
}

/// bincode's variable-length integer for `n`.
fn varint(n: u64) -> Vec<u8> {
    match n {
        0..=250 => vec![n as u8],
        251..=0xFFFF => [&[251u8][..], &(n as u16).to_le_bytes()].concat(),
        0x1_0000..=0xFFFF_FFFF => [&[252u8][..], &(n as u32).to_le_bytes()].concat(),
        _ => [&[253u8][..], &n.to_le_bytes()].concat(),
    }
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Deep nesting of several recursive types, and lengths claiming far more
/// than the body holds, at random depths and sizes: a value or a typed
/// error, on a 2 MiB stack, with the peak memory flat.
#[test]
fn hostile_shapes_give_typed_errors() {
    multiproc_tests::isolated("hostile_shapes_give_typed_errors", || {
        let cases: u64 = std::env::var("MULTIPROC_PROP_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let before = vm_hwm_kib();
        for case in 0..cases {
            if rng.below(2) == 0 {
                let kind = rng.below(4);
                let levels = match rng.below(3) {
                    0 => rng.below(300) as usize,
                    1 => 300 + rng.below(1_000) as usize,
                    _ => 10_000 + rng.below(190_000) as usize,
                };
                let body = nested(kind, levels);
                let streamed = match kind {
                    0 => streamed_as::<Deep>(&body),
                    1 => streamed_as::<Tree>(&body),
                    2 => streamed_as::<Nest>(&body),
                    _ => streamed_as::<Json>(&body),
                };
                assert!(
                    matches!(streamed, Ok(()) | Err(DecodeError::TooDeep { .. })),
                    "case {case}: streamed {streamed:?}"
                );
                let got = match kind {
                    0 => recv_as::<Deep>(body),
                    1 => recv_as::<Tree>(body),
                    2 => recv_as::<Nest>(body),
                    _ => recv_as::<Json>(body),
                };
                match got {
                    // One or two levels of the limit's count per level of
                    // the type.
                    Ok(()) => assert!(levels <= 512, "case {case}: type {kind} nested {levels} deep decoded"),
                    Err(ConnectionError::Decode(DecodeError::TooDeep { .. })) => {
                        assert!(levels >= 250, "case {case}: refused at {levels} levels")
                    }
                    Err(other) => panic!("case {case}: type {kind} nested {levels}: {other:?}"),
                }
            } else {
                let have = rng.below(64) as usize;
                let len = match rng.below(3) {
                    0 => have as u64 + 1 + rng.below(1 << 20),
                    1 => (1u64 << 32) - 1 - rng.below(1 << 16),
                    _ => rng.next() >> rng.below(32),
                };
                let mut body = varint(len);
                body.extend((0..have).map(|_| rng.next() as u8));
                let which = rng.below(4);
                let streamed = match which {
                    0 => streamed_as::<String>(&body),
                    1 => streamed_as::<Vec<u8>>(&body),
                    2 => streamed_as::<Vec<u64>>(&body),
                    _ => streamed_as::<HashMap<u64, String>>(&body),
                };
                if len > have as u64 {
                    assert!(streamed.is_err(), "case {case}: {len} claimed, streamed");
                }
                let got = match which {
                    0 => recv_as::<String>(body),
                    1 => recv_as::<Vec<u8>>(body),
                    2 => recv_as::<Vec<u64>>(body),
                    _ => recv_as::<HashMap<u64, String>>(body),
                };
                if len > have as u64 {
                    assert!(matches!(got, Err(ConnectionError::Decode(_))), "case {case}: {len} claimed: {got:?}");
                }
            }
        }
        let grown = vm_hwm_kib().saturating_sub(before);
        assert!(grown < 64 * 1024, "peak memory grew by {grown} KiB over {cases} hostile bodies");
    });
}

/// A bounded mutation loop over the frame reader and the decoders: each
/// mutated frame is read with the blocking reader and split as
/// accumulated bytes, which must agree, and every message body found is
/// decoded through a connection, and decoded whole and streamed in random
/// pieces (the path of task arguments and results), which must agree.
#[test]
fn mutated_frames_read_split_and_decode_consistently() {
    use multiproc::__private::testing::{decode_both, read_frame, split_frame};

    let iterations: u64 = std::env::var("MULTIPROC_PROP_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let (mut decoded, mut refused) = (0u64, 0u64);
    for case in 0..iterations {
        let original = sample(&mut rng, 0);
        let mut bytes = frame_of(&original);
        // Several rounds of mutation compound.
        for _ in 0..=rng.below(3) {
            if bytes.len() < 12 {
                break;
            }
            bytes = mutate(&mut rng, bytes);
            if rng.below(4) == 0 && bytes.len() >= 12 {
                // A kind other than a message, sometimes.
                bytes[3] = rng.below(5) as u8;
            }
        }
        let split = split_frame(&bytes);
        let read = read_frame(&bytes);
        match (&split, &read) {
            (Ok(Some((kind, len))), Ok((k, body))) => {
                assert_eq!((kind, *len), (k, body.len()), "case {case}: {bytes:02x?}");
                if *kind == 3 {
                    let (whole, streamed) = decode_both::<Message>(body, 1 + rng.below(70_000) as usize);
                    match (&whole, &streamed) {
                        (Ok(a), Ok(b)) => assert_eq!(a, b, "case {case}"),
                        (Err(a), Err(b)) => {
                            assert_eq!(std::mem::discriminant(a), std::mem::discriminant(b), "case {case}: {a} / {b}")
                        }
                        _ => panic!("case {case}: whole {whole:?}, streamed {streamed:?}"),
                    }
                    match recv_as::<Message>(body.clone()) {
                        Ok(()) => decoded += 1,
                        Err(ConnectionError::Decode(_)) => refused += 1,
                        Err(other) => panic!("case {case}: {other:?}"),
                    }
                }
            }
            (Ok(None), Err(e)) => assert!(e.contains("closed after"), "case {case}: {e}"),
            (Err(a), Err(b)) => assert_eq!(a, b, "case {case}"),
            _ => panic!("case {case}: split {split:?}, read {read:?} for {bytes:02x?}"),
        }
    }
    assert!(decoded + refused > 0, "no mutation left a readable message");
}
