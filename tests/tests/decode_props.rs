//! Property test of every receive path against hostile bytes: random
//! garbage, mutated valid frames, truncations and absurd length prefixes
//! must give a typed error (or a value, when the mutation happens to be
//! valid) — never a panic, a hang, or a jump in memory.
//!
//! Deterministic: a fixed-seed generator, so a failure names its case and
//! reproduces. Raise `MULTIPROC_PROP_CASES` for a longer soak.

#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use multiproc::ConnectionError;
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
        header.extend([1, 3]);
        header.extend(len.to_le_bytes());
        raw.write_all(&header).unwrap();
        let before = rss_kib();
        assert!(matches!(reader.recv_bytes(), Err(ConnectionError::TooLarge { .. })));
        assert!(rss_kib().saturating_sub(before) < 1024);
    }
}
