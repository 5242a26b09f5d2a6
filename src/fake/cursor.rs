//! Opaque, expiring pagination cursors.
//!
//! Vendors hand out cursors clients must not build or persist; the fakes make that visible by
//! wrapping a position in base64url (so it looks opaque) with the wall-clock issue time (so a
//! cursor kept across runs goes stale and is refused, as short-lived real cursors are).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why a cursor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorError {
    /// Not a cursor this fake issued (garbled, hand-built, or for another endpoint).
    Invalid,
    /// Issued longer ago than the configured time to live.
    Stale,
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    /// Issue time, milliseconds since the epoch.
    t: u64,
    p: T,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Wraps `position` into an opaque token stamped with the current time.
pub fn encode<T: Serialize>(position: &T) -> String {
    let json = serde_json::to_vec(&Envelope { t: now_ms(), p: position }).expect("cursor positions serialize");
    b64_encode(&json)
}

/// Unwraps a token from [`encode`], refusing it once older than `ttl`.
pub fn decode<T: DeserializeOwned>(token: &str, ttl: Duration) -> Result<T, CursorError> {
    let bytes = b64_decode(token).ok_or(CursorError::Invalid)?;
    let env: Envelope<T> = serde_json::from_slice(&bytes).map_err(|_| CursorError::Invalid)?;
    if now_ms().saturating_sub(env.t) > ttl.as_millis() as u64 {
        return Err(CursorError::Stale);
    }
    Ok(env.p)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Hand-rolled because the crate has no base64 dependency and the cursors only need
// URL-safe, unpadded round-tripping.
fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = ALPHABET.iter().position(|a| a == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_every_length() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(b64_decode(&b64_encode(&bytes)).unwrap(), bytes);
        }
        assert!(b64_decode("a").is_none());
        assert!(b64_decode("ab*d").is_none());
    }

    #[test]
    fn cursor_expires() {
        let token = encode(&("k", 5));
        assert_eq!(decode::<(String, i32)>(&token, Duration::from_secs(60)).unwrap(), ("k".into(), 5));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(decode::<(String, i32)>(&token, Duration::from_millis(5)), Err(CursorError::Stale));
        assert_eq!(decode::<(String, i32)>("garbage!", Duration::from_secs(60)), Err(CursorError::Invalid));
    }
}
