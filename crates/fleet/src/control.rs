//! The control socket of a running `agentfleet up`, through which `agentfleet rollout` asks it for
//! a rolling restart and follows it to the end.
//!
//! One Unix socket per config file per machine, in a directory only this user can enter
//! (`/tmp/agentfleet-UID/`, mode 0700, refused if anyone else owns it), and a connection is served
//! only when the peer runs as the same user. The request carries the variables the config reads
//! credentials from, as the process running `rollout` sees them: a secret crosses this socket,
//! like the supervisor's pipe to its workers, and nothing else sees it. Answers are progress
//! lines and one final verdict, all made of names, fingerprints and reasons.
//!
//! The protocol is JSON Lines: one `Request` from the client, then `RolloutEvent`s until one that
//! `is_final`.

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use agentfleet_config::{Fingerprint, Secret};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// Ways the control socket fails.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Another `up` already serves this config on this machine.
    #[error(
        "another agentfleet up is already running for this config on this machine (control \
         socket {path}); stop it first, or change its worker count with --workers"
    )]
    AlreadyRunning {
        /// The socket.
        path: PathBuf,
    },
    /// No `up` serves this config on this machine.
    #[error(
        "no agentfleet up is running for this config on this machine (no control socket at \
         {path}); rollout restarts the workers of a running up, started with the same config file"
    )]
    NotRunning {
        /// Where the socket would be.
        path: PathBuf,
    },
    /// The socket's directory is not private to this user.
    #[error("{path} is not safe for a control socket: {reason}")]
    Unsafe {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing the socket failed.
    #[error("control socket {path}: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The other side said something that is not the protocol.
    #[error("control socket {path}: {reason}")]
    Protocol {
        /// The socket.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// What a client asks for.
#[derive(Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    /// A rolling restart of every worker. `env`: the variables the config reads credentials
    /// from, as the client sees them (absent ones left out); `None` to re-read the supervisor's
    /// own environment, as SIGHUP does.
    Rollout {
        /// The client's variables, or `None`.
        env: Option<BTreeMap<String, String>>,
    },
}

impl std::fmt::Debug for Request {
    /// Names only: the values are secrets.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Request::Rollout { env } = self;
        formatter
            .debug_struct("Rollout")
            .field(
                "env",
                &env.as_ref().map(|env| env.keys().collect::<Vec<_>>()),
            )
            .finish()
    }
}

/// What a rollout reports as it goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum RolloutEvent {
    /// A step done or begun.
    Progress {
        /// One line.
        message: String,
    },
    /// Nothing was changed: the new credentials failed their checks, the config does not
    /// parse, or another rollout is under way.
    Refused {
        /// Why, in one line.
        message: String,
        /// Each problem as `check` prints it.
        problems: Vec<String>,
    },
    /// The rollout stopped part way; the workers not yet replaced keep running as they were.
    Failed {
        /// Why, in one line.
        message: String,
    },
    /// Every worker runs the new generation.
    Done {
        /// The generation they run.
        generation: u64,
        /// One line.
        message: String,
    },
}

impl RolloutEvent {
    /// Whether the rollout ends with this event.
    pub fn is_final(&self) -> bool {
        !matches!(self, RolloutEvent::Progress { .. })
    }
}

/// A rollout asked of the supervisor, by a client on the socket or by SIGHUP.
pub struct RolloutRequest {
    /// The variables the config reads credentials from, as the asker sees them; `None` for
    /// the supervisor's own environment.
    pub env: Option<BTreeMap<String, Secret>>,
    /// Who asked, for the log: `SIGHUP`, `agentfleet rollout`.
    pub origin: String,
    /// Where to report progress, when someone is listening.
    pub events: Option<mpsc::UnboundedSender<RolloutEvent>>,
}

impl std::fmt::Debug for RolloutRequest {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RolloutRequest")
            .field(
                "env",
                &self.env.as_ref().map(|env| env.keys().collect::<Vec<_>>()),
            )
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// The socket of the `up` running `config_path` on this machine: the same path for every
/// process that names the same file, however it names it.
pub fn socket_path(config_path: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(config_path).unwrap_or_else(|_| config_path.to_owned());
    let digest = Fingerprint::of(&canonical.to_string_lossy()).to_string();
    let digest = digest.trim_start_matches("sha256:");
    runtime_directory().join(format!("up-{digest}.sock"))
}

fn runtime_directory() -> PathBuf {
    PathBuf::from(format!("/tmp/agentfleet-{}", own_uid()))
}

fn own_uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(u32::MAX, |metadata| metadata.uid())
}

/// The listening side, held by `up` for its life; the socket file goes with it.
#[derive(Debug)]
pub struct ControlSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ControlSocket {
    /// Listens on the socket for `config_path`, in a private directory made if absent. A socket
    /// left by an `up` that was killed is replaced; a live one is `AlreadyRunning`.
    pub async fn bind(config_path: &Path) -> Result<Self, ControlError> {
        let path = socket_path(config_path);
        let directory = runtime_directory();
        private_directory(&directory)?;
        if path.exists() {
            if UnixStream::connect(&path).await.is_ok() {
                return Err(ControlError::AlreadyRunning { path });
            }
            std::fs::remove_file(&path).map_err(|source| ControlError::Io {
                path: path.clone(),
                source,
            })?;
        }
        let listener = UnixListener::bind(&path).map_err(|source| ControlError::Io {
            path: path.clone(),
            source,
        })?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| ControlError::Io {
                path: path.clone(),
                source,
            },
        )?;
        Ok(Self { path, listener })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves clients until the process ends: each request becomes a `RolloutRequest` on
    /// `requests`, and its events go back to the client as they come.
    pub async fn serve(self, requests: mpsc::UnboundedSender<RolloutRequest>) {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                continue;
            };
            let requests = requests.clone();
            tokio::spawn(async move {
                let _ = serve_one(stream, requests).await;
            });
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn private_directory(directory: &Path) -> Result<(), ControlError> {
    let unsafe_because = |reason: String| ControlError::Unsafe {
        path: directory.to_owned(),
        reason,
    };
    match std::fs::DirBuilder::new().mode(0o700).create(directory) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(ControlError::Io {
                path: directory.to_owned(),
                source,
            });
        }
    }
    let metadata = std::fs::symlink_metadata(directory).map_err(|source| ControlError::Io {
        path: directory.to_owned(),
        source,
    })?;
    if !metadata.is_dir() {
        return Err(unsafe_because("it is not a directory".to_owned()));
    }
    if metadata.uid() != own_uid() {
        return Err(unsafe_because(format!(
            "it belongs to user {}, not to this user; remove it",
            metadata.uid()
        )));
    }
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(unsafe_because(format!(
            "other users can enter it (mode {:o}); run chmod 700 on it",
            metadata.permissions().mode() & 0o777
        )));
    }
    Ok(())
}

async fn serve_one(
    stream: UnixStream,
    requests: mpsc::UnboundedSender<RolloutRequest>,
) -> std::io::Result<()> {
    let peer = stream.peer_cred()?;
    let (reader, mut writer) = stream.into_split();
    let mut answer = async |event: &RolloutEvent| -> std::io::Result<()> {
        let mut line = serde_json::to_string(event).map_err(std::io::Error::other)?;
        line.push('\n');
        writer.write_all(line.as_bytes()).await
    };
    if peer.uid() != own_uid() {
        return answer(&RolloutEvent::Refused {
            message: format!(
                "user {} may not control a fleet run by user {}",
                peer.uid(),
                own_uid()
            ),
            problems: Vec::new(),
        })
        .await;
    }
    let mut line = String::new();
    BufReader::new(reader).read_line(&mut line).await?;
    let request: Result<Request, _> = serde_json::from_str(line.trim());
    line.replace_range(.., &" ".repeat(line.len()));
    let Ok(Request::Rollout { env }) = request else {
        return answer(&RolloutEvent::Refused {
            message: "the request is not one this version of agentfleet understands".to_owned(),
            problems: Vec::new(),
        })
        .await;
    };
    let (events, mut receiver) = mpsc::unbounded_channel();
    let env = env.map(|env| {
        env.into_iter()
            .map(|(name, value)| (name, Secret::new(value)))
            .collect()
    });
    let _ = requests.send(RolloutRequest {
        env,
        origin: format!(
            "agentfleet rollout (pid {})",
            peer.pid().unwrap_or_default()
        ),
        events: Some(events),
    });
    while let Some(event) = receiver.recv().await {
        answer(&event).await?;
        if event.is_final() {
            break;
        }
    }
    Ok(())
}

/// Asks the `up` running `config_path` for a rollout with `env` (`None`: its own environment),
/// and hands each event to `on_event` until the final one, which it returns.
pub async fn rollout(
    config_path: &Path,
    env: Option<BTreeMap<String, String>>,
    mut on_event: impl FnMut(&RolloutEvent),
) -> Result<RolloutEvent, ControlError> {
    let path = socket_path(config_path);
    let io = |source| ControlError::Io {
        path: path.clone(),
        source,
    };
    let stream = match UnixStream::connect(&path).await {
        Ok(stream) => stream,
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ControlError::NotRunning { path });
        }
        Err(error) => return Err(io(error)),
    };
    let (reader, mut writer) = stream.into_split();
    let mut line = serde_json::to_string(&Request::Rollout { env })
        .map_err(|error| io(std::io::Error::other(error)))?;
    line.push('\n');
    let written = writer.write_all(line.as_bytes()).await;
    line.replace_range(.., &" ".repeat(line.len()));
    written.map_err(io)?;
    let mut lines = BufReader::new(reader).lines();
    while let Some(line) = lines.next_line().await.map_err(io)? {
        let event: RolloutEvent =
            serde_json::from_str(&line).map_err(|error| ControlError::Protocol {
                path: path.clone(),
                reason: format!("an answer that is not a rollout event ({error})"),
            })?;
        on_event(&event);
        if event.is_final() {
            return Ok(event);
        }
    }
    Err(ControlError::Protocol {
        path,
        reason: "the supervisor closed the connection before the rollout ended (was it stopped?)"
            .to_owned(),
    })
}
