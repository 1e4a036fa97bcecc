//! Plain values: numbers, and tuples and arrays of them, which a pool's
//! batch carries as their bytes, fixed width and little-endian, rather
//! than through the serializer one call per value.
//!
//! Every bit pattern of a plain value's width is a value, so decoding one
//! cannot fail once its bytes are there: a batch of `count` values is
//! checked for length once, then read with no branch per value. Both ends
//! of a batch are the same program, so they agree on the form by the
//! task's signature alone (`#[process_task]` picks it for a signature
//! whose types are all plain; see `__private::probe`).

use crate::error::DecodeError;

/// A value of fixed width whose every bit pattern is a value of the type.
///
/// Implemented for the integer and floating-point types, `()`, tuples of
/// one to twelve plain values and arrays of them (up to 32 long: what serde
/// serializes).
pub trait Plain: Copy + 'static {
    /// The width in bytes.
    const SIZE: usize;

    /// Appends the value's [`SIZE`](Plain::SIZE) bytes.
    fn put(self, out: &mut Vec<u8>);

    /// The value whose bytes are `bytes`, exactly [`SIZE`](Plain::SIZE) of them.
    fn get(bytes: &[u8]) -> Self;
}

macro_rules! plain_number {
    ($($t:ty),*) => {$(
        impl Plain for $t {
            const SIZE: usize = std::mem::size_of::<$t>();

            #[inline]
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }

            #[inline]
            fn get(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
        }
    )*};
}

// `usize` and `isize` are the platform's width: both ends are one program.
plain_number!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);

macro_rules! plain_tuple {
    ($($t:ident $v:ident),*) => {
        impl<$($t: Plain),*> Plain for ($($t,)*) {
            const SIZE: usize = 0 $(+ $t::SIZE)*;

            #[inline]
            fn put(self, out: &mut Vec<u8>) {
                let ($($v,)*) = self;
                $($v.put(out);)*
            }

            #[inline]
            #[allow(unused_assignments)]
            fn get(bytes: &[u8]) -> Self {
                let mut at = 0;
                $(
                    let $v = $t::get(&bytes[at..at + $t::SIZE]);
                    at += $t::SIZE;
                )*
                ($($v,)*)
            }
        }
    };
}

impl Plain for () {
    const SIZE: usize = 0;

    #[inline]
    fn put(self, _: &mut Vec<u8>) {}

    #[inline]
    fn get(_: &[u8]) -> Self {}
}

plain_tuple!(A a);
plain_tuple!(A a, B b);
plain_tuple!(A a, B b, C c);
plain_tuple!(A a, B b, C c, D d);
plain_tuple!(A a, B b, C c, D d, E e);
plain_tuple!(A a, B b, C c, D d, E e, F f);
plain_tuple!(A a, B b, C c, D d, E e, F f, G g);
plain_tuple!(A a, B b, C c, D d, E e, F f, G g, H h);
plain_tuple!(A a, B b, C c, D d, E e, F f, G g, H h, I i);
plain_tuple!(A a, B b, C c, D d, E e, F f, G g, H h, I i, J j);
plain_tuple!(A a, B b, C c, D d, E e, F f, G g, H h, I i, J j, K k);
plain_tuple!(A a, B b, C c, D d, E e, F f, G g, H h, I i, J j, K k, L l);

impl<T: Plain, const N: usize> Plain for [T; N] {
    const SIZE: usize = T::SIZE * N;

    #[inline]
    fn put(self, out: &mut Vec<u8>) {
        for v in self {
            v.put(out);
        }
    }

    #[inline]
    fn get(bytes: &[u8]) -> Self {
        std::array::from_fn(|i| T::get(&bytes[i * T::SIZE..(i + 1) * T::SIZE]))
    }
}

/// Appends `value`'s bytes (a batch's encoder; it cannot fail).
#[inline]
pub(crate) fn encode_into<T: Plain, E>(value: T, out: &mut Vec<u8>) -> Result<(), E> {
    value.put(out);
    Ok(())
}

/// Decodes `count` values from the front of `bytes`, handing each to
/// `each`; `bytes` then holds what follows them. Too few bytes for them
/// all is an error before any value is handed over.
pub(crate) fn decode_each<T: Plain>(
    bytes: &mut &[u8],
    count: usize,
    each: &mut dyn FnMut(T),
) -> Result<(), DecodeError> {
    let len = count.checked_mul(T::SIZE).filter(|&len| len <= bytes.len()).ok_or_else(|| {
        DecodeError::Invalid(format!(
            "{count} values of {} bytes run past the end of their message ({} bytes left)",
            T::SIZE,
            bytes.len()
        ))
    })?;
    let (values, rest) = bytes.split_at(len);
    if T::SIZE == 0 {
        (0..count).for_each(|_| each(T::get(&[])));
    } else {
        values.chunks_exact(T::SIZE).for_each(|b| each(T::get(b)));
    }
    *bytes = rest;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Plain + PartialEq + std::fmt::Debug>(values: &[T]) {
        let mut bytes = Vec::new();
        for &v in values {
            encode_into::<T, ()>(v, &mut bytes).unwrap();
        }
        assert_eq!(bytes.len(), values.len() * T::SIZE);
        bytes.push(0xAB);
        let mut input = &bytes[..];
        let mut got = Vec::new();
        decode_each::<T>(&mut input, values.len(), &mut |v| got.push(v)).unwrap();
        assert_eq!(got, values);
        assert_eq!(input, [0xAB], "what follows the values is left");
    }

    #[test]
    fn numbers_tuples_and_arrays_round_trip() {
        round_trip(&[0u64, 1, u64::MAX, 1 << 40]);
        round_trip(&[-1i8, i8::MIN, 7]);
        round_trip(&[(1u16, -2.5f64, [3u8, 4, 5]), (u16::MAX, f64::MIN_POSITIVE, [0; 3])]);
        round_trip(&[(), (), ()]);
        round_trip(&[(usize::MAX, isize::MIN, 1.5f32, u128::MAX)]);
        assert_eq!(<(u8, [i32; 4], ())>::SIZE, 17);
    }

    #[test]
    fn too_few_bytes_is_an_error_and_nothing_is_handed_over() {
        let bytes = [1u8; 15];
        let mut input = &bytes[..];
        let mut handed = 0;
        let e = decode_each::<u64>(&mut input, 2, &mut |_| handed += 1).unwrap_err();
        assert!(matches!(e, DecodeError::Invalid(_)), "{e:?}");
        assert_eq!(handed, 0);
        assert_eq!(input.len(), 15, "the input is left as it was");
        // A count whose length overflows is refused, not wrapped.
        assert!(decode_each::<u64>(&mut input, usize::MAX, &mut |_| handed += 1).is_err());
    }
}
