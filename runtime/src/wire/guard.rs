//! A guard around a serde `Deserializer`: every value the decoder proper
//! hands to a visitor or a seed goes back through it, so it sees each level
//! of a nested value as it is entered and each length before the decoder
//! acts on it.
//!
//! - **Depth.** Each option, newtype, sequence, tuple, struct, map and
//!   enum entered counts one level; past [`MAX_DEPTH`] the decode fails
//!   instead of recursing further. The limit is a count, not a stack
//!   measurement, so a message decodes the same on every thread and in every
//!   build.
//! - **Claimed lengths.** Strings and byte buffers are read by the guard
//!   itself, from the [`Input`]: a length prefix that claims more bytes
//!   than the body has left is refused before anything is reserved for it,
//!   and the bytes are then read straight into the value's own buffer. A sequence or map tells its visitor it
//!   holds no more elements than there are bytes left (serde caps what it
//!   reserves from that hint, so nothing is reserved for elements that
//!   cannot be there).
//! - **Elements that take no bytes** (a `Vec<()>`) are the one case where
//!   a length may exceed the bytes left; one decode may produce at most
//!   [`ZERO_SIZED_BUDGET`] of them, so a claimed length cannot spin.
//!
//! The guard knows nothing of the serializer: the codec gives it an
//! [`Input`], which says how much of the body is left, reads a length
//! prefix, and hands out bytes.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

/// The deepest a decoded value may nest, counted in options, newtypes,
/// sequences, tuples, structs, maps and enums entered on the way down.
///
/// A `struct Node { next: Option<Box<Node>> }` list takes two levels per
/// node. Measured here, one level costs up to about 2.4 KiB of stack in an
/// unoptimised build (an enum whose variant holds boxed children) and up
/// to about 550 bytes optimised, so the deepest decode stays within about
/// 1.2 MiB and a thread with the default 2 MiB stack survives any input.
pub(crate) const MAX_DEPTH: usize = 512;

/// How many elements that take no bytes at all one decode may produce.
pub(crate) const ZERO_SIZED_BUDGET: usize = 1 << 20;

/// Why the guard stopped a decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A length prefix claimed `len` bytes with only `left` in the body.
    Claim { len: u64, left: usize },
    /// More than [`ZERO_SIZED_BUDGET`] elements that take no bytes.
    ZeroSized,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::TooDeep => write!(f, "the value is nesting deeper than {MAX_DEPTH} levels"),
            Refusal::Claim { len, left } => {
                write!(f, "a length of {len} bytes is claimed but only {left} bytes are left")
            }
            Refusal::ZeroSized => {
                write!(
                    f,
                    "more than {ZERO_SIZED_BUDGET} elements that take no bytes (a length claims more than is there)"
                )
            }
        }
    }
}

/// What the guard reads strings and byte buffers from, and asks how much
/// of the body is left: a body in memory, or one still arriving on a
/// channel. A failure of the input itself (the channel closed early) is
/// recorded by the input, which the codec asks afterwards; the guard only
/// passes its message on.
pub(super) trait Input {
    /// Bytes of the body not yet read.
    fn left(&self) -> usize;
    /// Reads a string's or byte buffer's length prefix.
    fn read_len(&self) -> Result<u64, String>;
    /// Reads the next `len` bytes into a buffer of their own (`len` is at
    /// most [`left`](Input::left)).
    fn take_owned(&self, len: usize) -> Result<Vec<u8>, String>;
    /// Lends the next `len` bytes to `f`.
    fn take_lent<R>(&self, len: usize, f: impl FnOnce(&[u8]) -> R) -> Result<R, String>;
}

/// What one decode has left: the input, the current depth, the zero-size
/// budget, and the reason it was stopped, if it was.
pub(super) struct Progress<I> {
    input: I,
    depth: Cell<usize>,
    zero_sized_left: Cell<usize>,
    refusal: Cell<Option<Refusal>>,
}

impl<I: Input> Progress<I> {
    pub(super) fn new(input: I) -> Self {
        Progress { input, depth: Cell::new(0), zero_sized_left: Cell::new(ZERO_SIZED_BUDGET), refusal: Cell::new(None) }
    }

    /// Gives the next of several values decoded one after the other the
    /// budget a value decoded alone has.
    pub(super) fn next_value(&self) {
        self.zero_sized_left.set(ZERO_SIZED_BUDGET);
    }

    /// Why the guard stopped the decode, if it did.
    pub(super) fn refusal(&self) -> Option<Refusal> {
        self.refusal.get()
    }

    fn refuse<E: de::Error>(&self, why: Refusal) -> E {
        self.refusal.set(Some(why));
        E::custom(why)
    }

    /// Runs `f` one level deeper.
    #[inline]
    fn nest<R, E: de::Error>(&self, f: impl FnOnce() -> Result<R, E>) -> Result<R, E> {
        let depth = self.depth.get();
        if depth >= MAX_DEPTH {
            return Err(self.refuse(Refusal::TooDeep));
        }
        self.depth.set(depth + 1);
        let result = f();
        self.depth.set(depth);
        result
    }

    /// Reads a string's or byte buffer's length and refuses it if it
    /// claims more than is left.
    #[inline]
    fn claim<E: de::Error>(&self) -> Result<usize, E> {
        let len = self.input.read_len().map_err(E::custom)?;
        let left = self.input.left();
        match usize::try_from(len) {
            Ok(n) if n <= left => Ok(n),
            _ => Err(self.refuse(Refusal::Claim { len, left })),
        }
    }

    /// A string, owned.
    fn string<E: de::Error>(&self) -> Result<String, E> {
        let bytes = self.input.take_owned(self.claim()?).map_err(E::custom)?;
        String::from_utf8(bytes).map_err(|e| E::custom(format!("a string is not UTF-8: {}", e.utf8_error())))
    }

    /// A byte buffer, owned.
    fn byte_buf<E: de::Error>(&self) -> Result<Vec<u8>, E> {
        self.input.take_owned(self.claim()?).map_err(E::custom)
    }

    /// Accounts for an element of a length-prefixed container that took
    /// no bytes.
    #[inline]
    fn took_no_bytes<E: de::Error>(&self) -> Result<(), E> {
        match self.zero_sized_left.get().checked_sub(1) {
            Some(left) => {
                self.zero_sized_left.set(left);
                Ok(())
            }
            None => Err(self.refuse(Refusal::ZeroSized)),
        }
    }

    /// A container's element count as a hint: no more than the bytes left.
    #[inline]
    fn hint(&self, claimed: Option<usize>) -> Option<usize> {
        claimed.map(|n| n.min(self.input.left()))
    }

    #[inline]
    fn left(&self) -> usize {
        self.input.left()
    }
}

/// A deserializer whose every nested value goes through the guard.
pub(super) struct Guarded<'p, D, I> {
    inner: D,
    progress: &'p Progress<I>,
}

impl<'p, D, I> Guarded<'p, D, I> {
    pub(super) fn new(inner: D, progress: &'p Progress<I>) -> Self {
        Guarded { inner, progress }
    }

    fn visitor<V>(&self, inner: V, counted: bool) -> GuardedVisitor<'p, V, I> {
        GuardedVisitor { inner, progress: self.progress, counted }
    }
}

/// Forwards methods whose visitor is handed no nested value.
macro_rules! forward_scalars {
    ($($method:ident)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method(visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>, I: Input> Deserializer<'de> for Guarded<'_, D, I> {
    type Error = D::Error;

    forward_scalars! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_unit deserialize_identifier
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let len = self.progress.claim()?;
        let visited = self.progress.input.take_lent(len, |bytes| match std::str::from_utf8(bytes) {
            Ok(s) => visitor.visit_str(s),
            Err(e) => Err(<D::Error as de::Error>::custom(format!("a string is not UTF-8: {e}"))),
        });
        visited.map_err(<D::Error as de::Error>::custom)?
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        visitor.visit_string(self.progress.string()?)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let len = self.progress.claim()?;
        let visited = self.progress.input.take_lent(len, |bytes| visitor.visit_bytes(bytes));
        visited.map_err(<D::Error as de::Error>::custom)?
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        visitor.visit_byte_buf(self.progress.byte_buf()?)
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, true);
        self.progress.nest(|| self.inner.deserialize_any(visitor))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, true);
        self.progress.nest(|| self.inner.deserialize_ignored_any(visitor))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_unit_struct(name, visitor)
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, false);
        self.progress.nest(|| self.inner.deserialize_option(visitor))
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, false);
        self.progress.nest(|| self.inner.deserialize_newtype_struct(name, visitor))
    }

    #[inline]
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, true);
        self.progress.nest(|| self.inner.deserialize_seq(visitor))
    }

    #[inline]
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, false);
        self.progress.nest(|| self.inner.deserialize_tuple(len, visitor))
    }

    #[inline]
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, false);
        self.progress.nest(|| self.inner.deserialize_tuple_struct(name, len, visitor))
    }

    #[inline]
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, true);
        self.progress.nest(|| self.inner.deserialize_map(visitor))
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, false);
        self.progress.nest(|| self.inner.deserialize_struct(name, fields, visitor))
    }

    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, false);
        self.progress.nest(|| self.inner.deserialize_enum(name, variants, visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A visitor that hands on nested values guarded. `counted`: the
/// container's length came from the input (a sequence or map, not a tuple
/// or struct), so elements that take no bytes are accounted for.
struct GuardedVisitor<'p, V, I> {
    inner: V,
    progress: &'p Progress<I>,
    counted: bool,
}

macro_rules! forward_visits {
    ($($method:ident($ty:ty))*) => {$(
        #[inline]
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>, I: Input> Visitor<'de> for GuardedVisitor<'_, V, I> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visits! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64) visit_i128(i128)
        visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64) visit_u128(u128)
        visit_f32(f32) visit_f64(f64) visit_char(char)
        visit_str(&str) visit_borrowed_str(&'de str) visit_string(String)
        visit_bytes(&[u8]) visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    #[inline]
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    #[inline]
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    #[inline]
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_some(Guarded::new(d, self.progress))
    }

    #[inline]
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_newtype_struct(Guarded::new(d, self.progress))
    }

    #[inline]
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_seq(GuardedSeq { inner: seq, progress: self.progress, counted: self.counted })
    }

    #[inline]
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_map(GuardedMap { inner: map, progress: self.progress, counted: self.counted, before: 0 })
    }

    #[inline]
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_enum(GuardedEnum { inner: data, progress: self.progress })
    }
}

/// A seed whose deserializer is guarded.
struct GuardedSeed<'p, S, I> {
    inner: S,
    progress: &'p Progress<I>,
}

impl<'de, S: DeserializeSeed<'de>, I: Input> DeserializeSeed<'de> for GuardedSeed<'_, S, I> {
    type Value = S::Value;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Guarded::new(d, self.progress))
    }
}

struct GuardedSeq<'p, A, I> {
    inner: A,
    progress: &'p Progress<I>,
    counted: bool,
}

impl<'de, A: SeqAccess<'de>, I: Input> SeqAccess<'de> for GuardedSeq<'_, A, I> {
    type Error = A::Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
        let before = self.progress.left();
        let element = self.inner.next_element_seed(GuardedSeed { inner: seed, progress: self.progress })?;
        if self.counted && element.is_some() && self.progress.left() == before {
            self.progress.took_no_bytes()?;
        }
        Ok(element)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.progress.hint(self.inner.size_hint())
    }
}

struct GuardedMap<'p, A, I> {
    inner: A,
    progress: &'p Progress<I>,
    counted: bool,
    /// The bytes left when the current entry's key began.
    before: usize,
}

impl<'de, A: MapAccess<'de>, I: Input> MapAccess<'de> for GuardedMap<'_, A, I> {
    type Error = A::Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.before = self.progress.left();
        self.inner.next_key_seed(GuardedSeed { inner: seed, progress: self.progress })
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        let value = self.inner.next_value_seed(GuardedSeed { inner: seed, progress: self.progress })?;
        if self.counted && self.progress.left() == self.before {
            self.progress.took_no_bytes()?;
        }
        Ok(value)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.progress.hint(self.inner.size_hint())
    }
}

struct GuardedEnum<'p, A, I> {
    inner: A,
    progress: &'p Progress<I>,
}

impl<'p, 'de, A: EnumAccess<'de>, I: Input> EnumAccess<'de> for GuardedEnum<'p, A, I> {
    type Error = A::Error;
    type Variant = GuardedVariant<'p, A::Variant, I>;

    #[inline]
    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self::Variant), A::Error> {
        let (tag, variant) = self.inner.variant_seed(GuardedSeed { inner: seed, progress: self.progress })?;
        Ok((tag, GuardedVariant { inner: variant, progress: self.progress }))
    }
}

struct GuardedVariant<'p, A, I> {
    inner: A,
    progress: &'p Progress<I>,
}

impl<'de, A: VariantAccess<'de>, I: Input> VariantAccess<'de> for GuardedVariant<'_, A, I> {
    type Error = A::Error;

    #[inline]
    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    #[inline]
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        self.inner.newtype_variant_seed(GuardedSeed { inner: seed, progress: self.progress })
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = GuardedVisitor { inner: visitor, progress: self.progress, counted: false };
        self.inner.tuple_variant(len, visitor)
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = GuardedVisitor { inner: visitor, progress: self.progress, counted: false };
        self.inner.struct_variant(fields, visitor)
    }
}
