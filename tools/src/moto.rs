//! A moto server for the local stack and the tests, started as a child process on a free port.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const RUNNER: &str = include_str!("../moto_runner.py");

/// How long moto may take to start (a cold Python import of moto takes a few seconds).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A running moto server. It stops when this is dropped, and also when this process exits
/// (the runner watches its parent), so no server outlives a test run.
pub struct MotoServer {
    pub endpoint: String,
    /// With IAM enforced (`start_enforcing_iam_blocking`): an administrator's access key, the
    /// only credentials moto accepts until it is used to create other users.
    pub admin: Option<AccessKey>,
    child: Child,
}

/// An IAM user's access key.
#[derive(Debug, Clone)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("could not start {python} (set SHIPSYNC_PYTHON to a Python 3 with moto[server] installed): {source}")]
    Spawn { python: String, source: std::io::Error },
    #[error(
        "moto did not report its port within {0:?}; is moto[server] installed? (pip install -r requirements-dev.txt)"
    )]
    NoPort(Duration),
}

impl MotoServer {
    /// Starts moto on `port` (0: any free port) and waits until it listens. Blocks.
    pub fn start_blocking(port: u16) -> Result<Self, MotoError> {
        Self::spawn(port, false, false)
    }

    /// Starts a moto server that enforces IAM on every request (moto's
    /// `INITIAL_NO_AUTH_ACTION_COUNT=0`): each must be signed with an IAM user's key and allowed
    /// by the user's policies. `admin` holds an administrator's key to create the others. Blocks.
    pub fn start_enforcing_iam_blocking(port: u16) -> Result<Self, MotoError> {
        Self::spawn(port, true, false)
    }

    /// Starts a moto server for searches over a large table (the benchmark's): it keeps each
    /// Query's sort of the table until the next write (`remember_sort_orders` in the runner),
    /// which answers the same but takes well under a second a page at 100,000 items, not four.
    pub async fn start_for_large_searches() -> Result<Self, MotoError> {
        tokio::task::spawn_blocking(|| Self::spawn(0, false, true))
            .await
            .unwrap_or(Err(MotoError::NoPort(START_TIMEOUT)))
    }

    fn spawn(port: u16, enforce_iam: bool, remember_sort_orders: bool) -> Result<Self, MotoError> {
        let python = std::env::var("SHIPSYNC_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let mut command = Command::new(&python);
        // moto reads this when it is imported; unset, it never enforces IAM.
        if enforce_iam {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        } else {
            command.env_remove("INITIAL_NO_AUTH_ACTION_COUNT");
        }
        if remember_sort_orders {
            command.env("SHIPSYNC_MOTO_REMEMBER_SORT_ORDERS", "1");
        } else {
            command.env_remove("SHIPSYNC_MOTO_REMEMBER_SORT_ORDERS");
        }
        let mut child = command
            .arg("-c")
            .arg(RUNNER)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| MotoError::Spawn { python: python.clone(), source })?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(MotoError::NoPort(START_TIMEOUT));
        };
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut admin = None;
            let port = BufReader::new(stdout).lines().map_while(Result::ok).find_map(|line| {
                if let Some((id, secret)) = line.strip_prefix("MOTO_ADMIN=").and_then(|key| key.trim().split_once(':'))
                {
                    admin = Some(AccessKey { id: id.to_owned(), secret: secret.to_owned() });
                }
                line.strip_prefix("MOTO_PORT=").and_then(|p| p.trim().parse::<u16>().ok())
            });
            // The receiver may be gone after a time-out; nothing is lost then.
            let _ = sender.send(port.map(|port| (port, admin)));
        });
        match receiver.recv_timeout(START_TIMEOUT) {
            Ok(Some((port, admin))) if admin.is_some() || !enforce_iam => {
                Ok(Self { endpoint: format!("http://127.0.0.1:{port}"), admin, child })
            }
            _ => {
                let _ = child.kill();
                Err(MotoError::NoPort(START_TIMEOUT))
            }
        }
    }

    /// Starts moto without blocking the async runtime.
    pub async fn start(port: u16) -> Result<Self, MotoError> {
        tokio::task::spawn_blocking(move || Self::start_blocking(port))
            .await
            .unwrap_or(Err(MotoError::NoPort(START_TIMEOUT)))
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Already gone is fine: the point is only that it does not outlive us.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
