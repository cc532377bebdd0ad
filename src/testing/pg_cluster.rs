//! A private PostgreSQL cluster for tests that stop and start the database under a running
//! server: `initdb` + `pg_ctl` on a free loopback port in a temporary directory, so a shared
//! server is never touched. As root (initdb refuses to run as root) the tools run as the
//! `postgres` OS user through `runuser`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A cluster this process created; stopped (immediately) and removed on drop.
pub struct PgCluster {
    bin: PathBuf,
    data: PathBuf,
    pub port: u16,
    as_postgres: bool,
    dir: tempfile::TempDir,
}

/// Where `initdb` lives: `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`.
pub fn find_bindir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && dir.join("initdb").is_file() {
            return Some(dir);
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    // SAFETY: getuid(2) has no preconditions.
    unsafe { libc::getuid() == 0 }
}

fn failed(what: &str, out: &Output) -> std::io::Error {
    std::io::Error::other(format!(
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

impl PgCluster {
    /// Creates and starts a cluster. `Ok(Err(reason))` when `initdb` is not
    /// installed (the caller skips, saying why).
    pub fn create() -> std::io::Result<Result<PgCluster, String>> {
        let Some(bin) = find_bindir() else {
            return Ok(Err("initdb is not installed (no pg_config --bindir, no /usr/lib/postgresql/*/bin)".into()));
        };
        let as_postgres = is_root();
        let dir = tempfile::Builder::new().prefix("provisor-pg-").tempdir()?;
        if as_postgres {
            let out = Command::new("chown").arg("postgres:").arg(dir.path()).output()?;
            if !out.status.success() {
                return Err(failed("chown of the cluster directory to postgres", &out));
            }
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let cluster = PgCluster { data: dir.path().join("data"), bin, port, as_postgres, dir };
        let data = cluster.data.display().to_string();
        let out = cluster
            .tool("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .output()?;
        if !out.status.success() {
            return Err(failed("initdb", &out));
        }
        cluster.start()?;
        Ok(Ok(cluster))
    }

    fn tool(&self, name: &str, args: &[&str]) -> Command {
        let program = self.bin.join(name);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.arg("-u").arg("postgres").arg("--").arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.args(args).current_dir(self.dir.path());
        cmd
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the cluster and waits until it accepts connections.
    pub fn start(&self) -> std::io::Result<()> {
        let data = self.data.display().to_string();
        let log = self.dir.path().join("postgres.log").display().to_string();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let out =
            self.tool("pg_ctl", &["-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start"]).output()?;
        if !out.status.success() {
            let log_text = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(std::io::Error::other(format!("{}\n{log_text}", failed("pg_ctl start", &out))));
        }
        Ok(())
    }

    /// Stops the cluster as a crash would (`pg_ctl stop -m immediate`): the next start
    /// recovers from the WAL.
    pub fn stop_immediate(&self) -> std::io::Result<()> {
        let data = self.data.display().to_string();
        let out = self.tool("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]).output()?;
        if !out.status.success() {
            return Err(failed("pg_ctl stop", &out));
        }
        Ok(())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.stop_immediate();
    }
}
