//! Eight bytes at a time: the word tricks that find a quote, a backslash or
//! a control character without looking at each byte.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// `bytes[at..at + 8]` as a little-endian word, if that many bytes are left.
pub fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// High bit set in the bytes of `word` equal to `byte`. Exact up to the
/// first such byte (the lowest), which is all it is used for: the borrow can
/// mark bytes above a true match.
pub fn equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// High bit set in the bytes of `word` below `limit` (at most 128), exact up
/// to the first such byte as for [`equal`].
pub fn below(word: u64, limit: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGHS
}

/// The index (0-7) of the first marked byte of a non-zero mask.
pub fn first(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_match_in_every_position_and_next_to_every_byte() {
        for position in 0..8 {
            for other in 0..=255u8 {
                for (target, limit) in [(b'"', 0x20), (b'\\', 0x20)] {
                    let mut bytes = [other; 8];
                    bytes[position] = target;
                    let word = word_at(&bytes, 0).unwrap();
                    let expected = bytes.iter().position(|&b| b == target).unwrap();
                    assert_eq!(first(equal(word, target)), expected);
                    let below_expected = bytes.iter().position(|&b| b < limit);
                    let mask = below(word, limit);
                    assert_eq!((mask != 0).then(|| first(mask)), below_expected);
                }
            }
        }
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..100_000 {
            let bytes: [u8; 8] = std::array::from_fn(|_| match rng.u8(0..4) {
                0 => rng.u8(..),
                1 => rng.u8(0..0x24),
                _ => rng.u8(0x20..0x80),
            });
            let word = word_at(&bytes, 0).unwrap();
            let mask = equal(word, b'"') | equal(word, b'\\') | below(word, 0x20);
            let expected = bytes
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            assert_eq!((mask != 0).then(|| first(mask)), expected, "{bytes:?}");
        }
        assert_eq!(word_at(b"1234567", 0), None);
        assert_eq!(word_at(b"12345678", usize::MAX), None);
    }
}
