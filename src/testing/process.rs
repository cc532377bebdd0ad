//! The process harness: runs the real `provisor serve` binary on a scratch database, kills it
//! with `SIGKILL` and starts it again, for crash and multi-process tests. Fault hooks
//! (`PROVISOR_FAULT=after_commit:membership`, see `crate::fault`) make a test-support build
//! abort at a named point.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running (or killed) server process.
pub struct ServerProcess {
    child: Option<Child>,
    binary: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub port: u16,
    pub database_url: String,
    /// The platform operator token (set as `PROVISOR_BOOTSTRAP_TOKEN` on the first start).
    pub operator: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl ServerProcess {
    /// The `provisor` binary: `PROVISOR_BIN`, else the one cargo built next to the running
    /// test executable (`target/<profile>/provisor`).
    pub fn binary() -> PathBuf {
        if let Some(p) = std::env::var_os("PROVISOR_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().unwrap_or_default();
        let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
        if dir.ends_with("deps") {
            dir.pop();
        }
        dir.join("provisor")
    }

    /// Starts a server on `database_url` with extra environment variables and waits until
    /// `/readyz` answers.
    pub fn start(database_url: &str, env: &[(&str, &str)]) -> std::io::Result<ServerProcess> {
        Self::start_binary(Self::binary(), database_url, env)
    }

    pub fn start_binary(binary: PathBuf, database_url: &str, env: &[(&str, &str)]) -> std::io::Result<ServerProcess> {
        Self::start_sharing(binary, database_url, &crate::secrets::new_secret("pvs_"), env)
    }

    /// Starts a server whose bootstrap operator token is `operator`: several processes on
    /// one database started with the same token all accept it (the first one stores it).
    pub fn start_sharing(
        binary: PathBuf,
        database_url: &str,
        operator: &str,
        env: &[(&str, &str)],
    ) -> std::io::Result<ServerProcess> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let mut p = ServerProcess {
            child: None,
            binary,
            base: format!("http://127.0.0.1:{port}"),
            port,
            database_url: database_url.to_owned(),
            operator: operator.to_owned(),
            log: dir.path().join("server.log"),
            _dir: dir,
        };
        p.spawn(env)?;
        p.wait_ready(Duration::from_secs(60))?;
        Ok(p)
    }

    fn spawn(&mut self, env: &[(&str, &str)]) -> std::io::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("serve")
            .arg("--bind")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--database-url")
            .arg(&self.database_url)
            .env("PROVISOR_BOOTSTRAP_TOKEN", &self.operator)
            .env("PROVISOR_WORKERS", "2")
            .env_remove("PROVISOR_FAULT")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn()?);
        Ok(())
    }

    /// Waits until `/readyz` answers 200 (or the process dies, or the time is up).
    pub fn wait_ready(&mut self, timeout: Duration) -> std::io::Result<()> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(std::io::Error::other(format!("the server exited with {status}: {}", self.log_text())));
            }
            if self.get_status("/readyz") == Some(200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(std::io::Error::other(format!("the server was not ready in {timeout:?}: {}", self.log_text())))
    }

    /// The status of a plain GET (None when nothing answers).
    pub fn get_status(&self, path: &str) -> Option<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).ok()?;
        std::str::from_utf8(head.get(9..12)?).ok()?.parse().ok()
    }

    /// Kills the process with `SIGKILL` (as a crash would) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `SIGTERM` (a graceful stop, as an orchestrator would); the process keeps
    /// running until it has drained. Reap it with [`ServerProcess::wait_exit`].
    pub fn send_sigterm(&mut self) {
        if let Some(c) = self.child.as_ref() {
            if let Ok(pid) = libc::pid_t::try_from(c.id()) {
                // SAFETY: `kill` only sends a signal to our own, not yet reaped, child.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
    }

    /// Waits for the process to end on its own (a fault hook aborting it), up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Starts the process again on the same port and database (after a kill or an abort).
    pub fn restart(&mut self, env: &[(&str, &str)]) -> std::io::Result<()> {
        self.kill();
        self.spawn(env)?;
        self.wait_ready(Duration::from_secs(60))
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `SIGTERM` (a graceful stop) and waits up to `timeout` for the process to end.
    /// `None`: it was still running when the time was up (it is left running).
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let pid = libc::pid_t::try_from(self.pid()?).ok()?;
        // SAFETY: `kill(2)` with a pid this harness spawned and has not reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        self.wait_exit(timeout)
    }

    /// Whether the log shows a Rust panic.
    pub fn log_has_panic(&self) -> bool {
        self.log_text().contains("panicked at")
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
