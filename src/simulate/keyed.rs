//! Keyed randomness and id encoding for the simulator.
//!
//! Every random stream is derived from `(seed, what, identity)` rather than drawn from one
//! sequential generator, so adding simulated days (or people) never shifts the numbers an
//! earlier record was built from: that is what makes a store prefix-stable.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// SplitMix64's finaliser: a bijection on `u64`, so distinct inputs give distinct outputs.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a tag; tags are short literals, so this only needs to be stable, not strong.
fn tag_hash(tag: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tag.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// A 64-bit hash of `(seed, tag, parts)`.
pub fn key(seed: u64, tag: &str, parts: &[u64]) -> u64 {
    let mut h = mix(seed ^ tag_hash(tag));
    for p in parts {
        h = mix(h ^ mix(*p));
    }
    h
}

/// A uniform number in `[0, 1)` from `(seed, tag, parts)`.
pub fn unit(seed: u64, tag: &str, parts: &[u64]) -> f64 {
    (key(seed, tag, parts) >> 11) as f64 / (1u64 << 53) as f64
}

/// An independent generator for `(seed, tag, parts)`.
pub fn rng(seed: u64, tag: &str, parts: &[u64]) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(key(seed, tag, parts))
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A 26-character ULID-style id: 48-bit millisecond time then 80 bits from `entropy`.
///
/// `entropy` should come from [`mix`] of a unique number so ids never collide.
pub fn ulid(millis: i64, entropy: u64, extra: u16) -> String {
    let mut v: u128 = (u128::from(millis.max(0) as u64) & ((1u128 << 48) - 1)) << 80;
    v |= u128::from(entropy) << 16;
    v |= u128::from(extra);
    let mut out = [0u8; 26];
    for (i, slot) in out.iter_mut().enumerate().rev() {
        let shift = (25 - i) * 5;
        *slot = CROCKFORD[((v >> shift) & 31) as usize];
    }
    String::from_utf8(out.to_vec()).expect("ascii")
}

/// Base62 digits of `v`, left-padded with `0` to at least `width` characters.
pub fn base62(mut v: u64, width: usize) -> String {
    let mut digits = Vec::new();
    while v > 0 {
        digits.push(BASE62[(v % 62) as usize]);
        v /= 62;
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).expect("ascii")
}

/// A 6-character Klaviyo-style id (metrics, flows, flow messages) for `(seed, tag, n)`.
pub fn short_id(seed: u64, tag: &str, n: u64) -> String {
    // 62^6 ≈ 5.7e10; ids are drawn for a few dozen objects, and callers check uniqueness.
    let v = key(seed, tag, &[n]) % 56_800_235_584;
    let s = base62(v, 6);
    // Klaviyo ids start with a letter; rotate a leading digit into one.
    let mut b = s.into_bytes();
    if b[0].is_ascii_digit() {
        b[0] = b'A' + (b[0] - b'0');
    }
    String::from_utf8(b).expect("ascii")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulid_is_26_crockford_chars() {
        let id = ulid(1_700_000_000_000, mix(42), 7);
        assert_eq!(id.len(), 26);
        assert!(id.bytes().all(|c| CROCKFORD.contains(&c)));
        assert_ne!(id, ulid(1_700_000_000_000, mix(43), 7));
    }

    #[test]
    fn short_ids_have_six_chars() {
        for n in 0..50 {
            let id = short_id(1, "flow", n);
            assert_eq!(id.len(), 6);
            assert!(id.as_bytes()[0].is_ascii_alphabetic());
        }
    }
}
