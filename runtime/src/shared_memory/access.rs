//! The bytes of shared memory, the same for the owner and a view.
//!
//! Another process may write the memory at any moment, and this one sees
//! nothing of it: what the compiler assumes of a `&[u8]` (that nobody
//! changes it while it is borrowed) or of a `&mut [u8]` (that nobody else
//! reads or writes it) cannot be promised here. So the safe accessors are
//! atomic: [`as_atomic_bytes`](crate::SharedMemory::as_atomic_bytes) gives
//! the memory as `[AtomicU8]`, and `read_at` and `write_at` copy through
//! relaxed byte loads and stores, which no concurrent access (in this
//! process or another) makes undefined. Bytes written by one process are
//! seen by another in the end, with no ordering between them; order them
//! with a lock, a message, or `Acquire`/`Release` atomics in the memory.
//! The slices, faster for bulk data, are `unsafe`: the caller promises
//! that nobody writes (`as_slice`) or touches (`as_mut_slice`) the bytes
//! while the slice lives.

use std::sync::atomic::{AtomicU8, Ordering};

use super::{Segment, SharedMemory, SharedMemoryView};

impl Segment {
    fn atomic(&self) -> &[AtomicU8] {
        // SAFETY: the mapping is `len` bytes, readable and writable, and
        // lives as long as `self`; `AtomicU8` has the size and alignment
        // of `u8`, and every access through it is atomic, so it is sound
        // whatever other threads and processes do to the bytes.
        unsafe { std::slice::from_raw_parts(self.ptr().cast_const().cast::<AtomicU8>(), self.len()) }
    }

    fn range(&self, offset: usize, len: usize) -> &[AtomicU8] {
        let size = self.len();
        match offset.checked_add(len) {
            Some(end) if end <= size => &self.atomic()[offset..end],
            _ => panic!("{len} bytes at offset {offset} are out of range for shared memory of {size} bytes"),
        }
    }

    fn read_at(&self, offset: usize, buf: &mut [u8]) {
        let shared = self.range(offset, buf.len());
        for (b, shared) in buf.iter_mut().zip(shared) {
            *b = shared.load(Ordering::Relaxed);
        }
    }

    fn write_at(&self, offset: usize, data: &[u8]) {
        for (b, shared) in data.iter().zip(self.range(offset, data.len())) {
            shared.store(*b, Ordering::Relaxed);
        }
    }
}

/// The byte accessors of `$ty`, whose doc examples start with `$setup`
/// (which binds `memory`).
macro_rules! bytes_of {
    ($ty:ident, $setup:literal) => {
        impl $ty {
            #[doc = concat!(
                        "The name, without a leading `/` (`None` for unnamed memory).\n\n",
                        "```\n", $setup, "\nassert!(memory.name().unwrap().starts_with(\"psm_\"));\n",
                        "# Ok::<(), multiproc::SharedMemoryError>(())\n```"
                    )]
            pub fn name(&self) -> Option<&str> {
                self.segment.name.as_deref()
            }

            #[doc = concat!(
                        "The size in bytes: at least what its creator asked for (the system may round it up to ",
                        "whole pages, as Windows does), the same in every process.\n\n",
                        "```\n", $setup, "\nassert!(memory.size() >= 64);\n",
                        "# Ok::<(), multiproc::SharedMemoryError>(())\n```"
                    )]
            pub fn size(&self) -> usize {
                self.segment.len()
            }

            #[doc = concat!(
                        "The first byte (page-aligned); [`size`](Self::size) bytes follow, valid while `self` ",
                        "lives. Reading or writing through it is the caller's to make sound: other processes ",
                        "may access the same bytes at any moment (see [`as_slice`](Self::as_slice)).\n\n",
                        "```\nuse std::sync::atomic::Ordering;\n\n", $setup, "\nlet p = memory.as_ptr();\n",
                        "// SAFETY: in range, and nothing else touches byte 0 meanwhile.\n",
                        "unsafe { p.write(9) };\nassert_eq!(memory.as_atomic_bytes()[0].load(Ordering::Relaxed), 9);\n",
                        "# Ok::<(), multiproc::SharedMemoryError>(())\n```"
                    )]
            pub fn as_ptr(&self) -> *mut u8 {
                self.segment.ptr()
            }

            #[doc = concat!(
                        "The bytes as atomics: safe whatever other threads and processes do to them. ",
                        "Loads and stores of `Relaxed` order cost what plain ones do; `Acquire` and `Release` ",
                        "order them with another process's.\n\n",
                        "```\nuse std::sync::atomic::Ordering;\n\n", $setup, "\n",
                        "memory.as_atomic_bytes()[3].store(42, Ordering::Release);\n",
                        "assert_eq!(memory.as_atomic_bytes()[3].load(Ordering::Acquire), 42);\n",
                        "# Ok::<(), multiproc::SharedMemoryError>(())\n```"
                    )]
            pub fn as_atomic_bytes(&self) -> &[std::sync::atomic::AtomicU8] {
                self.segment.atomic()
            }

            #[doc = concat!(
                        "Copies the bytes from `offset` into `buf` (byte by byte, atomically: a byte another ",
                        "process writes meanwhile is seen before or after, never torn).\n\n",
                        "# Panics\n\nIf `offset + buf.len()` is past [`size`](Self::size).\n\n",
                        "```\n", $setup, "\nmemory.write_at(10, b\"abc\");\nlet mut got = [0; 3];\n",
                        "memory.read_at(10, &mut got);\nassert_eq!(&got, b\"abc\");\n",
                        "# Ok::<(), multiproc::SharedMemoryError>(())\n```"
                    )]
            pub fn read_at(&self, offset: usize, buf: &mut [u8]) {
                self.segment.read_at(offset, buf)
            }

            #[doc = concat!(
                        "Copies `data` into the memory from `offset` (byte by byte, atomically).\n\n",
                        "# Panics\n\nIf `offset + data.len()` is past [`size`](Self::size).\n\n",
                        "```\n", $setup, "\nmemory.write_at(0, &[1, 2]);\nlet mut got = [0; 4];\n",
                        "memory.read_at(0, &mut got);\nassert_eq!(got, [1, 2, 0, 0]); // fresh memory is zero\n",
                        "# Ok::<(), multiproc::SharedMemoryError>(())\n```"
                    )]
            pub fn write_at(&self, offset: usize, data: &[u8]) {
                self.segment.write_at(offset, data)
            }

            #[doc = concat!(
                        "The bytes as a slice, for reading in bulk (Python's `buf`).\n\n",
                        "# Safety\n\nWhile the slice lives, nobody may write these bytes: no other process, ",
                        "no other thread, no other handle of this memory in this process. Arrange it with a ",
                        "protocol (the writer is done and said so, through a lock, a message or a `Release` ",
                        "store the reader `Acquire`s).\n\n",
                        "```\n", $setup, "\nmemory.write_at(0, b\"hi\");\n",
                        "// SAFETY: no one else writes the memory while `bytes` lives.\n",
                        "let bytes = unsafe { memory.as_slice() };\nassert_eq!(&bytes[..2], b\"hi\");\n",
                        "# Ok::<(), multiproc::SharedMemoryError>(())\n```"
                    )]
            pub unsafe fn as_slice(&self) -> &[u8] {
                // SAFETY: the mapping is `size` readable bytes that live as
                // long as `self`; the caller promises nobody writes them
                // while the slice lives.
                unsafe { std::slice::from_raw_parts(self.segment.ptr().cast_const(), self.segment.len()) }
            }

            #[doc = concat!(
                        "The bytes as a mutable slice, for writing in bulk (Python's `buf`).\n\n",
                        "# Safety\n\nWhile the slice lives, nobody else may read or write these bytes: no other ",
                        "process, and no other handle of this memory in this process (a [`SharedMemoryView`]",
                        "(crate::SharedMemoryView) clone or the owner share it, so `&mut self` alone does not ",
                        "promise it).\n\n",
                        "```\n", $setup, "\nlet mut memory = memory;\n",
                        "// SAFETY: no one else reads or writes the memory while `bytes` lives.\n",
                        "let bytes = unsafe { memory.as_mut_slice() };\nbytes[..5].copy_from_slice(b\"hello\");\n",
                        "let mut got = [0; 5];\nmemory.read_at(0, &mut got);\nassert_eq!(&got, b\"hello\");\n",
                        "# Ok::<(), multiproc::SharedMemoryError>(())\n```"
                    )]
            pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
                // SAFETY: the mapping is `size` writable bytes that live as
                // long as `self`; the caller promises nobody else reads or
                // writes them while the slice lives.
                unsafe { std::slice::from_raw_parts_mut(self.segment.ptr(), self.segment.len()) }
            }
        }
    };
}

bytes_of!(SharedMemory, "let memory = multiproc::SharedMemory::create_with_random_name(64)?;");
bytes_of!(
    SharedMemoryView,
    "let owner = multiproc::SharedMemory::create_with_random_name(64)?;\nlet memory = \
     multiproc::SharedMemory::open(owner.name().unwrap())?;"
);
