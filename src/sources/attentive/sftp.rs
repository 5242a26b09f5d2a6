//! The SFTP side: connect with the pinned host key, log in, list the feed folder, download.
//!
//! russh and russh-sftp (pure Rust, client and server in the same crates, so the fake server
//! speaks the very protocol the client does). The host key is checked inside the handshake,
//! before authentication: a mismatch sends no credentials and reads nothing.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::SOURCE;
use super::hostkey::{PinnedHostKey, fingerprint};
use crate::config::{AttentiveSftpConfig, Secrets};
use crate::error::{Error, Result};

/// Connecting (TCP, key exchange, login) must finish within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// One SFTP request's answer must arrive within this (seconds).
const REQUEST_TIMEOUT_SECS: u64 = 60;

/// A file in the feed folder.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteFile {
    pub name: String,
    pub size: u64,
    /// Modification time, Unix seconds, when the server tells.
    pub mtime: Option<u32>,
}

/// A downloaded file: where it is on local disk, its size and SHA-256 (hex).
#[derive(Debug)]
pub struct Download {
    pub path: std::path::PathBuf,
    pub size: u64,
    pub sha256: String,
}

/// An open SFTP session on the feed server.
pub struct FeedServer {
    handle: client::Handle<Pinning>,
    sftp: SftpSession,
    directory: String,
    /// `host:port`, for messages.
    pub address: String,
}

/// Checks the presented host key against the pin and remembers what was presented.
struct Pinning {
    pin: PinnedHostKey,
    presented: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Pinning {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> std::result::Result<bool, Self::Error> {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => PublicKey::from(cert.public_key().clone()),
        };
        *self.presented.lock().expect("presented key lock") = Some(fingerprint(&key));
        Ok(self.pin.matches(&key))
    }
}

fn sftp_error(address: &str, message: String) -> Error {
    Error::Source {
        source_name: SOURCE.into(),
        stream: "sftp".into(),
        message: format!("{address}: {message}"),
        cause: None,
    }
}

impl FeedServer {
    /// Connects, checks the host key, logs in and opens the SFTP subsystem.
    pub async fn connect(cfg: &AttentiveSftpConfig, secrets: &Secrets) -> Result<Self> {
        let address = format!("{}:{}", cfg.host, cfg.port);
        let pin = PinnedHostKey::parse(&cfg.host_key)
            .map_err(|why| Error::config(format!("key `sources.attentive.sftp.host_key`: expected {why}")))?;
        let presented = Arc::new(Mutex::new(None));
        let handler = Pinning { pin: pin.clone(), presented: presented.clone() };
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(Duration::from_secs(REQUEST_TIMEOUT_SECS * 2)),
            ..Default::default()
        });
        let connecting = client::connect(config, (cfg.host.as_str(), cfg.port), handler);
        let mut handle = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Err(_) => return Err(sftp_error(&address, format!("no SSH handshake within {CONNECT_TIMEOUT:?}"))),
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                let seen = presented.lock().expect("presented key lock").clone();
                return Err(match (e, seen) {
                    (russh::Error::UnknownKey, Some(seen)) => Error::config(format!(
                        "source {SOURCE}: SFTP host {address} presented host key {seen}, but \
                         `sources.attentive.sftp.host_key` pins {}; refusing to connect (no credentials \
                         were sent, nothing was read). If Attentive rotated the key, confirm the new one \
                         with them and update the pin",
                        pin.fingerprint()
                    )),
                    (e, _) => sftp_error(&address, format!("SSH connection failed: {e}")),
                });
            }
        };
        let (accepted, key) = login(&mut handle, cfg, secrets, &address).await?;
        if !accepted {
            return Err(Error::config(format!(
                "source {SOURCE}: SFTP host {address} refused the login of user {} by {key}; check the \
                 variable `{}` names and the username",
                cfg.username,
                if key == "password" {
                    "sources.attentive.sftp.password_env"
                } else {
                    "sources.attentive.sftp.private_key_env"
                }
            )));
        }
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|e| sftp_error(&address, format!("no session channel: {e}")))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| sftp_error(&address, format!("the sftp subsystem was refused: {e}")))?;
        let sftp = SftpSession::new(channel.into_stream())
            .await
            .map_err(|e| sftp_error(&address, format!("SFTP start failed: {e}")))?;
        sftp.set_timeout(REQUEST_TIMEOUT_SECS);
        Ok(Self { handle, sftp, directory: cfg.directory.trim_end_matches('/').to_string(), address })
    }

    /// The regular files of the feed folder.
    pub async fn list(&self) -> Result<Vec<RemoteFile>> {
        let entries = self
            .sftp
            .read_dir(self.directory.clone())
            .await
            .map_err(|e| sftp_error(&self.address, format!("cannot list folder {:?}: {e}", self.directory)))?;
        let mut files: Vec<RemoteFile> = entries
            .filter(|e| !e.metadata().is_dir())
            .map(|e| {
                let m = e.metadata();
                RemoteFile { name: e.file_name(), size: m.size.unwrap_or(0), mtime: m.mtime }
            })
            .collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    }

    /// Downloads `name` to `dest` (created or truncated), hashing it on the way.
    pub async fn download(&self, name: &str, dest: &Path) -> Result<Download> {
        let remote = if self.directory.is_empty() || self.directory == "." {
            name.to_string()
        } else {
            format!("{}/{name}", self.directory)
        };
        let fail =
            |what: &str, e: &dyn std::fmt::Display| sftp_error(&self.address, format!("file {name}: {what}: {e}"));
        let mut file = self.sftp.open(remote.clone()).await.map_err(|e| fail("cannot open", &e))?;
        let mut out = tokio::fs::File::create(dest).await.map_err(|e| Error::Io {
            context: format!("source {SOURCE}: cannot create a temporary file for {name}"),
            cause: e,
        })?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf).await.map_err(|e| fail("read failed", &e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
            out.write_all(&buf[..n]).await.map_err(|e| Error::Io {
                context: format!("source {SOURCE}: cannot write the temporary copy of {name}"),
                cause: e,
            })?;
        }
        out.flush().await.map_err(|e| Error::Io { context: format!("source {SOURCE}: flushing {name}"), cause: e })?;
        let _ = file.shutdown().await;
        Ok(Download { path: dest.to_path_buf(), size, sha256: hex::encode(hasher.finalize()) })
    }

    /// Ends the session politely; errors do not matter any more.
    pub async fn close(self) {
        let _ = self.sftp.close().await;
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
}

/// Logs in with the configured key or password: whether it was accepted, and by what.
async fn login(
    handle: &mut client::Handle<Pinning>,
    cfg: &AttentiveSftpConfig,
    secrets: &Secrets,
    address: &str,
) -> Result<(bool, &'static str)> {
    if let Some(var) = &cfg.private_key_env {
        let key_name = "sources.attentive.sftp.private_key_env";
        let text = secrets.get(key_name, var)?;
        // The parse error never quotes the key.
        let key = russh::keys::decode_secret_key(&text, None).map_err(|e| {
            Error::config(format!("the private key in {var} (named by `{key_name}`) cannot be read: {e}"))
        })?;
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .map_err(|e| sftp_error(address, format!("no server-sig-algs: {e}")))?
            .flatten();
        let result = handle
            .authenticate_publickey(cfg.username.clone(), PrivateKeyWithHashAlg::new(Arc::new(key), hash))
            .await
            .map_err(|e| sftp_error(address, format!("public-key login failed: {e}")))?;
        return Ok((result.success(), "private key"));
    }
    let var = cfg.password_env.as_deref().ok_or_else(|| Error::Internal("no SFTP credential configured".into()))?;
    let password = secrets.get("sources.attentive.sftp.password_env", var)?;
    let result = handle
        .authenticate_password(cfg.username.clone(), password)
        .await
        .map_err(|e| sftp_error(address, format!("password login failed: {e}")))?;
    Ok((result.success(), "password"))
}
