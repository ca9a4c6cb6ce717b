//! Byte tests on 8 bytes at once ("SIMD within a register"), for the scans on the hot path
//! (field names, field values, request targets) without `unsafe` intrinsics. Words are
//! loaded little-endian; each test answers yes or no for the whole word (which byte matched
//! is not reported: a borrow may also flag a byte after a true match).

/// 0x01 in every byte.
pub(crate) const LO: u64 = 0x0101_0101_0101_0101;
/// 0x80 in every byte: the high bit of each byte.
pub(crate) const HI: u64 = 0x8080_8080_8080_8080;

/// `b` in every byte of a word.
#[inline(always)]
pub(crate) const fn splat(b: u8) -> u64 {
    LO * b as u64
}

/// Whether some byte of `word` equals `b`.
#[inline(always)]
pub(crate) const fn has_byte(word: u64, b: u8) -> bool {
    let x = word ^ splat(b);
    // A zero byte in `x` is a `b` in `word`.
    x.wrapping_sub(LO) & !x & HI != 0
}

/// Whether some byte of `word` is below `n` (`n` at most 0x80).
#[inline(always)]
pub(crate) const fn has_byte_below(word: u64, n: u8) -> bool {
    word.wrapping_sub(splat(n)) & !word & HI != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the byte-by-byte answer, for every byte value at every position of a word
    /// whose other bytes are a fixed filler, and for two fillers on each side of the probe.
    #[test]
    fn word_tests_agree_with_bytes() {
        for filler in [b'a', 0x7e, 0xff, 0x21] {
            for probe in [b'_', 0x7f, b'#', 0x00] {
                for b in 0..=255u8 {
                    for at in 0..8 {
                        let mut w = [filler; 8];
                        w[at] = b;
                        let word = u64::from_le_bytes(w);
                        assert_eq!(has_byte(word, probe), w.contains(&probe));
                        assert_eq!(has_byte_below(word, 0x20), w.iter().any(|&c| c < 0x20));
                    }
                }
            }
        }
    }
}
