//! A real SFTP server on 127.0.0.1 serving a local folder read-only: russh's server side with
//! russh-sftp's server handler, the same crates the client uses. Password and public-key
//! logins, a fixed host key (from a seed, so tests can pin it), and counters tests assert on.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, Msg, Server as _, Session};
use russh::{Channel, ChannelId};
use russh_sftp::protocol::{Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode};
use tokio::task::JoinHandle;

/// Who may log in, and the server's identity.
#[derive(Debug, Clone)]
pub struct SftpFakeConfig {
    pub username: String,
    /// Accepted password, if password logins are allowed.
    pub password: Option<String>,
    /// Accepted client key, if key logins are allowed.
    pub authorized_key: Option<PublicKey>,
    /// Seed of the Ed25519 host key: the same seed, the same key.
    pub host_key_seed: [u8; 32],
}

impl Default for SftpFakeConfig {
    fn default() -> Self {
        Self {
            username: "brand".into(),
            password: Some(DEFAULT_PASSWORD.into()),
            authorized_key: None,
            host_key_seed: [7; 32],
        }
    }
}

pub const DEFAULT_PASSWORD: &str = "sftp-demo-password";

/// The Ed25519 key a seed gives (host keys and test client keys).
pub fn ed25519_key(seed: [u8; 32]) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&seed))
}

/// What clients did, for assertions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SftpStats {
    pub connections: u64,
    pub logins: u64,
    pub failed_logins: u64,
    pub dir_listings: u64,
    /// Files opened for reading, by name, in order.
    pub opened: Vec<String>,
}

/// A running fake SFTP server; stops when dropped or on [`FakeSftpServer::shutdown`].
pub struct FakeSftpServer {
    pub port: u16,
    /// The host key's public half (`host_key.to_openssh()` is what a job pins).
    pub host_key: PublicKey,
    stats: Arc<Mutex<SftpStats>>,
    task: JoinHandle<()>,
}

impl FakeSftpServer {
    pub fn stats(&self) -> SftpStats {
        self.stats.lock().expect("stats lock").clone()
    }

    /// The pinned-key line a job file puts in `sftp.host_key`.
    pub fn host_key_line(&self) -> String {
        self.host_key.to_openssh().expect("ed25519 keys encode")
    }

    pub fn shutdown(self) {
        self.task.abort();
    }
}

impl Drop for FakeSftpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `root` on an ephemeral 127.0.0.1 port on the current runtime.
pub async fn serve(root: PathBuf, cfg: SftpFakeConfig) -> std::io::Result<FakeSftpServer> {
    let host = ed25519_key(cfg.host_key_seed);
    let host_key = host.public_key().clone();
    let config = Arc::new(russh::server::Config {
        keys: vec![host],
        auth_rejection_time: Duration::from_millis(10),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(Duration::from_secs(120)),
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    let stats = Arc::new(Mutex::new(SftpStats::default()));
    let mut server = Server { cfg: Arc::new(cfg), root: Arc::new(root), stats: stats.clone() };
    let task = tokio::spawn(async move {
        let _ = server.run_on_socket(config, &listener).await;
    });
    Ok(FakeSftpServer { port, host_key, stats, task })
}

#[derive(Clone)]
struct Server {
    cfg: Arc<SftpFakeConfig>,
    root: Arc<PathBuf>,
    stats: Arc<Mutex<SftpStats>>,
}

impl russh::server::Server for Server {
    type Handler = SshSession;

    fn new_client(&mut self, _: Option<SocketAddr>) -> SshSession {
        self.stats.lock().expect("stats lock").connections += 1;
        SshSession { server: self.clone(), channels: HashMap::new() }
    }
}

struct SshSession {
    server: Server,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl SshSession {
    fn decide(&self, user: &str, ok: bool) -> Auth {
        let mut stats = self.server.stats.lock().expect("stats lock");
        if ok && user == self.server.cfg.username {
            stats.logins += 1;
            Auth::Accept
        } else {
            stats.failed_logins += 1;
            Auth::reject()
        }
    }
}

impl russh::server::Handler for SshSession {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let ok = self.server.cfg.password.as_deref() == Some(password);
        Ok(self.decide(user, ok))
    }

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        let known =
            self.server.cfg.authorized_key.as_ref().is_some_and(|k| k.key_data() == offer.public_key.key_data());
        Ok(if known { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let ok = self.server.cfg.authorized_key.as_ref().is_some_and(|k| k.key_data() == key.public_key.key_data());
        Ok(self.decide(user, ok))
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_eof(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        session.close(channel)?;
        Ok(())
    }

    async fn subsystem_request(&mut self, id: ChannelId, name: &str, session: &mut Session) -> Result<(), Self::Error> {
        match self.channels.remove(&id).filter(|_| name == "sftp") {
            Some(channel) => {
                session.channel_success(id)?;
                let handler = Folder {
                    root: self.server.root.clone(),
                    stats: self.server.stats.clone(),
                    handles: HashMap::new(),
                    next: 0,
                };
                russh_sftp::server::run(channel.into_stream(), handler).await;
            }
            None => session.channel_failure(id)?,
        }
        Ok(())
    }
}

enum Open {
    Dir { path: PathBuf, listed: bool },
    File(PathBuf),
}

/// The SFTP handler: a read-only view of `root`.
struct Folder {
    root: Arc<PathBuf>,
    stats: Arc<Mutex<SftpStats>>,
    handles: HashMap<String, Open>,
    next: u64,
}

impl Folder {
    /// A client path inside `root`; `..` and anything outside are refused.
    fn resolve(&self, path: &str) -> Result<PathBuf, StatusCode> {
        let mut out = self.root.as_ref().clone();
        for c in Path::new(path).components() {
            match c {
                Component::Normal(p) => out.push(p),
                Component::RootDir | Component::CurDir => {}
                _ => return Err(StatusCode::PermissionDenied),
            }
        }
        Ok(out)
    }

    fn handle(&mut self, open: Open) -> String {
        self.next += 1;
        let h = format!("h{}", self.next);
        self.handles.insert(h.clone(), open);
        h
    }
}

fn attrs(path: &Path) -> Result<FileAttributes, StatusCode> {
    std::fs::metadata(path).map(|m| FileAttributes::from(&m)).map_err(|_| StatusCode::NoSuchFile)
}

fn ok(id: u32) -> Status {
    Status { id, status_code: StatusCode::Ok, error_message: "Ok".into(), language_tag: "en-US".into() }
}

impl russh_sftp::server::Handler for Folder {
    type Error = StatusCode;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let rel = self.resolve(&path)?;
        let shown = format!("/{}", rel.strip_prefix(self.root.as_ref()).unwrap_or(&rel).display());
        Ok(Name { id, files: vec![File::dummy(shown)] })
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        let path = self.resolve(&path)?;
        if !path.is_dir() {
            return Err(StatusCode::NoSuchFile);
        }
        self.stats.lock().expect("stats lock").dir_listings += 1;
        Ok(Handle { id, handle: self.handle(Open::Dir { path, listed: false }) })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        let Some(Open::Dir { path, listed }) = self.handles.get_mut(&handle) else {
            return Err(StatusCode::Failure);
        };
        if *listed {
            return Err(StatusCode::Eof);
        }
        *listed = true;
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&*path).map_err(|_| StatusCode::Failure)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            files.push(File::new(name, attrs(&entry.path())?));
        }
        Ok(Name { id, files })
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        flags: OpenFlags,
        _: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        if flags.intersects(OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::APPEND) {
            return Err(StatusCode::PermissionDenied);
        }
        let path = self.resolve(&filename)?;
        if !path.is_file() {
            return Err(StatusCode::NoSuchFile);
        }
        self.stats.lock().expect("stats lock").opened.push(filename);
        Ok(Handle { id, handle: self.handle(Open::File(path)) })
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> Result<Data, Self::Error> {
        let Some(Open::File(path)) = self.handles.get(&handle) else { return Err(StatusCode::Failure) };
        let mut file = std::fs::File::open(path).map_err(|_| StatusCode::NoSuchFile)?;
        file.seek(SeekFrom::Start(offset)).map_err(|_| StatusCode::Failure)?;
        let mut data = Vec::with_capacity(len as usize);
        file.take(u64::from(len)).read_to_end(&mut data).map_err(|_| StatusCode::Failure)?;
        if data.is_empty() {
            return Err(StatusCode::Eof);
        }
        Ok(Data { id, data })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        self.handles.remove(&handle);
        Ok(ok(id))
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        Ok(Attrs { id, attrs: attrs(&self.resolve(&path)?)? })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        Ok(Attrs { id, attrs: attrs(&self.resolve(&path)?)? })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        let path = match self.handles.get(&handle) {
            Some(Open::File(p)) | Some(Open::Dir { path: p, .. }) => p.clone(),
            None => return Err(StatusCode::Failure),
        };
        Ok(Attrs { id, attrs: attrs(&path)? })
    }
}
