//! A throw-away PostgreSQL server for the tests that need one (export, BI DDL), started from
//! Debian's package in a temporary folder, on a free loopback port; stopped on drop.

use std::path::PathBuf;
use std::process::Command;

/// The test user's password: tests assert it never reaches a log line.
pub const PASSWORD: &str = "pw-Never-In-Logs-7";

/// A throw-away PostgreSQL server: its own data folder, a free loopback port, its socket in the
/// folder; stopped on drop.
pub struct Pg {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// Who runs the server: PostgreSQL refuses to run as root.
    run_as: Option<String>,
    port: u16,
}

impl Pg {
    /// Starts a server, or says why not: `None` (skip) locally, a panic under `CI=true`.
    pub fn start_or_skip() -> Option<Pg> {
        let Some(bin) = pg_bin() else {
            let reason = "PostgreSQL is not installed (no initdb in $LCE_PG_BIN or /usr/lib/postgresql/*/bin); \
                          scripts/test.sh installs Debian's `postgresql`";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{reason}");
            }
            eprintln!("skipping: {reason}");
            return None;
        };
        Some(Pg::start(bin))
    }

    pub fn start(bin: PathBuf) -> Pg {
        let dir = tempfile::Builder::new().prefix("lce-pg-").tempdir().unwrap();
        let run_as = if is_root() { Some(server_user()) } else { None };
        std::fs::write(dir.path().join("pwfile"), PASSWORD).unwrap();
        std::fs::create_dir(dir.path().join("sock")).unwrap();
        if let Some(user) = &run_as {
            must(Command::new("chown").args(["-R", &format!("{user}:"), &dir.path().display().to_string()]), "chown");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = Pg { bin, dir, run_as, port };
        let data = pg.path("data");
        must(
            &mut pg.command(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-U",
                    "lce",
                    "--pwfile",
                    &pg.path("pwfile"),
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
            ),
            "initdb",
        );
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            pg.port,
            pg.path("sock")
        );
        let log = pg.path("server.log");
        let started =
            pg.command("pg_ctl", &["-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start"]).output();
        match started {
            Ok(o) if o.status.success() => pg,
            other => panic!(
                "PostgreSQL did not start: {other:?}\nserver log:\n{}",
                std::fs::read_to_string(pg.dir.path().join("server.log")).unwrap_or_default()
            ),
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    pub fn command(&self, tool: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(tool);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe).args(args);
                c
            }
            None => {
                let mut c = Command::new(exe);
                c.args(args);
                c
            }
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://lce:{PASSWORD}@127.0.0.1:{}/postgres?sslmode=disable", self.port)
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let data = self.path("data");
        let _ = self.command("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]).output();
    }
}

/// `$LCE_PG_BIN`, else the newest Debian `/usr/lib/postgresql/<major>/bin`.
pub fn pg_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("LCE_PG_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").exists().then_some(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Debian's `postgres` account, or a system account made for the test when there is none.
fn server_user() -> String {
    if Command::new("id").arg("postgres").output().is_ok_and(|o| o.status.success()) {
        return "postgres".into();
    }
    let user = "lce-pgtest";
    if !Command::new("id").arg(user).output().is_ok_and(|o| o.status.success()) {
        must(
            Command::new("useradd").args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user]),
            "useradd",
        );
    }
    user.into()
}

fn must(c: &mut Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
