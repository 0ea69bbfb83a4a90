//! Small, fast, deterministic mixing functions.
//!
//! The simulator needs stable pseudo-random decisions (which request gets a 429, which
//! continuation token is genuine) that do not depend on request interleaving, so it hashes
//! the inputs instead of drawing from a shared generator. Not cryptographic; it only has to
//! be stable and well spread.

/// SplitMix64 finaliser: spreads every input bit over the whole output.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes bytes under a key (FNV-1a, then mixed).
pub(crate) fn hash_bytes(key: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xCBF2_9CE4_8422_2325 ^ mix64(key);
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix64(h)
}

/// Hashes a string and a few numbers under a key.
pub(crate) fn hash_parts(key: u64, text: &str, numbers: &[u64]) -> u64 {
    numbers
        .iter()
        .fold(hash_bytes(key, text.as_bytes()), |h, n| {
            mix64(h ^ mix64(*n))
        })
}

/// Maps a hash to a uniform float in `[0, 1)`.
pub(crate) fn unit_float(h: u64) -> f64 {
    // 53 significant bits, as f64 holds exactly.
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_key_dependent() {
        assert_eq!(hash_bytes(1, b"abc"), hash_bytes(1, b"abc"));
        assert_ne!(hash_bytes(1, b"abc"), hash_bytes(2, b"abc"));
        assert_ne!(hash_parts(1, "a", &[1]), hash_parts(1, "a", &[2]));
        let f = unit_float(u64::MAX);
        assert!((0.0..1.0).contains(&f));
    }
}
