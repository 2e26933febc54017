//! A moto server for the local stack and the tests, started as a child process on a free port.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const RUNNER: &str = include_str!("../moto_runner.py");

/// A running moto server; it stops when this is dropped or when this process exits.
pub struct MotoServer {
    pub endpoint: String,
    _child: Child,
}

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("could not start {python} (set SHIPSYNC_PYTHON to a Python 3 with moto[server] installed): {source}")]
    Spawn { python: String, source: std::io::Error },
    #[error("moto did not report its port within {0:?}; is moto[server] installed? (pip install -r requirements-dev.txt)")]
    NoPort(Duration),
}

impl MotoServer {
    /// Starts moto on `port` (0: any free port) and waits until it listens.
    pub async fn start(port: u16) -> Result<Self, MotoError> {
        let python = std::env::var("SHIPSYNC_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let mut child = Command::new(&python)
            .arg("-c")
            .arg(RUNNER)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| MotoError::Spawn { python: python.clone(), source })?;
        let wait = Duration::from_secs(60);
        let stdout = child.stdout.take().ok_or(MotoError::NoPort(wait))?;
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(wait, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(port) = line.strip_prefix("MOTO_PORT=") {
                    return port.trim().parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or(MotoError::NoPort(wait))?;
        Ok(Self { endpoint: format!("http://127.0.0.1:{port}"), _child: child })
    }
}
