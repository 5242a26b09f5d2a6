//! Signature checks, in constant time: Attentive signs the raw body (hex HMAC-SHA256 with the
//! webhook's signing key); Postscript sends a shared token as is (apis.md 3.3 A, 4.4 A).
//!
//! Secrets are held in [`Secret`], whose `Debug` never shows the value, so a stray `{:?}` of
//! the server state cannot leak a key into a log line.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::Platform;

/// A secret value that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Hex HMAC-SHA256 of `body` keyed with `key`: what Attentive sends in `x-attentive-hmac-sha256`.
pub fn attentive_signature(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether a delivery's signature header proves it came from the platform. A header that is
/// not valid hex (Attentive) fails like a wrong one; upper-case hex is accepted.
pub fn verify(platform: Platform, secret: &Secret, header: &[u8], body: &[u8]) -> bool {
    match platform {
        Platform::Attentive => {
            let Ok(given) = std::str::from_utf8(header).map(str::trim).map(hex::decode) else { return false };
            let Ok(given) = given else { return false };
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.bytes()).expect("HMAC takes keys of any length");
            mac.update(body);
            // `verify_slice` compares in constant time.
            mac.verify_slice(&given).is_ok()
        }
        Platform::Postscript => {
            // `ct_eq` on slices of different lengths returns false without comparing contents;
            // the length of the token is not a secret worth hiding.
            bool::from(header.ct_eq(secret.bytes()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            attentive_signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn attentive_accepts_only_the_right_signature() {
        let key = Secret::new("k3y".into());
        let body = br#"{"type":"sms.sent"}"#;
        let good = attentive_signature("k3y", body);
        assert!(verify(Platform::Attentive, &key, good.as_bytes(), body));
        assert!(verify(Platform::Attentive, &key, good.to_uppercase().as_bytes(), body));
        assert!(!verify(Platform::Attentive, &key, good.as_bytes(), br#"{"type":"sms.sent" }"#));
        assert!(!verify(Platform::Attentive, &key, attentive_signature("other", body).as_bytes(), body));
        assert!(!verify(Platform::Attentive, &key, b"not hex", body));
        assert!(!verify(Platform::Attentive, &key, b"", body));
    }

    #[test]
    fn postscript_compares_the_token() {
        let token = Secret::new("tok_abc".into());
        assert!(verify(Platform::Postscript, &token, b"tok_abc", b"{}"));
        assert!(!verify(Platform::Postscript, &token, b"tok_abd", b"{}"));
        assert!(!verify(Platform::Postscript, &token, b"tok_ab", b"{}"));
        assert_eq!(format!("{token:?}"), "<redacted>");
    }
}
