//! The pinned SFTP host key: the only defence against a server impersonating Attentive's, so
//! it is mandatory and compared before authentication (nothing is sent or read otherwise).

use russh::keys::{HashAlg, PublicKey};

/// What `sftp.host_key` pins: a whole public key, or only its SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub enum PinnedHostKey {
    Key(PublicKey),
    /// `SHA256:<base64>` as `ssh-keygen -lf` prints it.
    Fingerprint(String),
}

impl PinnedHostKey {
    /// Parses an OpenSSH public key line (`ssh-ed25519 AAAA... [comment]`) or a `SHA256:`
    /// fingerprint.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(b64) = text.strip_prefix("SHA256:") {
            let ok = !b64.is_empty() && b64.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='));
            return if ok {
                Ok(Self::Fingerprint(format!("SHA256:{}", b64.trim_end_matches('='))))
            } else {
                Err("a SHA256: fingerprint in base64".into())
            };
        }
        PublicKey::from_openssh(text)
            .map(Self::Key)
            .map_err(|e| format!("an OpenSSH public key line (`ssh-ed25519 AAAA...`) or a SHA256: fingerprint ({e})"))
    }

    /// The pinned key's fingerprint, as printed in errors.
    pub fn fingerprint(&self) -> String {
        match self {
            Self::Key(k) => fingerprint(k),
            Self::Fingerprint(f) => f.clone(),
        }
    }

    /// Whether the server's key is the pinned one.
    pub fn matches(&self, presented: &PublicKey) -> bool {
        match self {
            Self::Key(k) => k.key_data() == presented.key_data(),
            Self::Fingerprint(f) => *f == fingerprint(presented),
        }
    }
}

/// `SHA256:<base64 without padding>`, OpenSSH's spelling.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::PrivateKey;
    use russh::keys::ssh_key::private::Ed25519Keypair;

    fn key(seed: u8) -> PublicKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32])).public_key().clone()
    }

    #[test]
    fn a_key_line_or_its_fingerprint_pins_the_same_key() {
        let (good, other) = (key(1), key(2));
        let line = good.to_openssh().unwrap();
        for pin in [PinnedHostKey::parse(&line).unwrap(), PinnedHostKey::parse(&fingerprint(&good)).unwrap()] {
            assert!(pin.matches(&good));
            assert!(!pin.matches(&other));
            assert_eq!(pin.fingerprint(), fingerprint(&good));
        }
        assert!(PinnedHostKey::parse("ssh-ed25519 notbase64!").is_err());
        assert!(PinnedHostKey::parse("SHA256:").is_err());
        assert!(PinnedHostKey::parse("MD5:aa:bb").is_err());
    }
}
