//! A fast hash for the route index's value keys. The values in the map come
//! from the config; requests only look values up, so a request can never
//! lengthen a probe sequence and an unkeyed hash is safe here. Eight bytes
//! are mixed per step, then the result is avalanched so every bit of the
//! value reaches the low bits the map indexes by.

use std::hash::{BuildHasherDefault, Hasher};

/// Builds [`ValueHasher`]s.
pub(crate) type BuildValueHasher = BuildHasherDefault<ValueHasher>;

/// Hashes route values (strings) a word at a time.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ValueHasher(u64);

/// An odd constant with well-spread bits (the golden ratio in 64 bits).
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

impl ValueHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for ValueHasher {
    fn write(&mut self, bytes: &[u8]) {
        // The length keeps `ab` apart from `ab\0` (both pad to one word).
        self.mix(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.mix(u64::from(byte));
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        // Spread the high bits down (xor-shift, multiply, xor-shift).
        let mut h = self.0;
        h ^= h >> 32;
        h = h.wrapping_mul(0xd6e8_feb8_6659_fd93);
        h ^= h >> 29;
        h
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn similar_values_spread_over_the_low_bits() {
        let build = BuildValueHasher::default();
        let buckets: HashSet<u64> = (0..4096)
            .map(|i| build.hash_one(format!("/svc/{i}")) & 4095)
            .collect();
        assert!(buckets.len() > 2000, "{} buckets of 4096", buckets.len());
        assert_ne!(build.hash_one("ab"), build.hash_one("ab\0"));
    }
}
