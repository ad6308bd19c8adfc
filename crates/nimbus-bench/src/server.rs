//! Spawns a `nimbus` server for a benchmark on a free loopback port with temporary dirs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running server, killed (by its pid, which this process spawned) when dropped.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// The admin token.
    pub token: String,
    /// The data directory.
    pub data_dir: std::path::PathBuf,
    _dirs: tempfile::TempDir,
}

impl Server {
    /// Starts `nimbus start --port 0` and waits for its listen line.
    pub fn start(binary: &str) -> Result<Self, String> {
        Self::start_with(binary, &[])
    }

    /// Starts `nimbus start --port 0 <extra>` and waits for its listen line.
    pub fn start_with(binary: &str, extra: &[&str]) -> Result<Self, String> {
        let dirs = tempfile::tempdir().map_err(|e| e.to_string())?;
        let home = dirs.path().join("home");
        let mut child = Command::new(binary)
            .args(["start", "--port", "0"])
            .args(extra)
            .arg("--data-dir")
            .arg(dirs.path().join("data"))
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_RUNTIME_DIR", home.join("run"))
            .env("XDG_STATE_HOME", home.join("state"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {binary}: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let address = loop {
            let line = lines.next().ok_or("the server exited before listening")?.map_err(|e| e.to_string())?;
            if let Some(url) = line.split("listening on http://").nth(1) {
                break url.trim().to_owned();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe; errors it logs are
        // echoed, so a failed run shows its cause.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if line.contains("ERROR") || line.contains("WARN") {
                    eprintln!("server: {line}");
                }
            }
        });
        let token_file = std::fs::read_to_string(home.join("data/nimbus/auth/token")).map_err(|e| e.to_string())?;
        let token: serde_json::Value = serde_json::from_str(&token_file).map_err(|e| e.to_string())?;
        let token = token["token"].as_str().ok_or("token file without token")?.to_owned();
        let data_dir = dirs.path().join("data");
        Ok(Self { child, address, token, data_dir, _dirs: dirs })
    }
}

impl Server {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
