//! The supervisor behind `agentfleet up`: workers on this machine, started with an environment
//! built on purpose, watched, restarted when they crash, and stopped gracefully.
//!
//! It checks every credential itself before it starts anything. Each worker gets an allow-listed
//! environment (never the whole ambient one, never an empty one) plus the `_FILE` paths of file
//! credentials, which the worker reads itself; credentials the supervisor read from variables
//! reach the worker over a pipe on its standard input, so nothing the worker spawns inherits them.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use agentfleet_config::{Config, Environment, ProviderCheck, Secret};
use agentfleet_queue::{Queue, QueueError, QueueStats};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::handoff::Handoff;
use crate::worker::Log;

/// Variables every worker gets when the supervisor has them; the config's `[fleet] env` adds more.
pub const BASE_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"];

/// How `up` runs.
#[derive(Debug)]
pub struct UpOptions {
    /// The `agentfleet` binary, to start workers with.
    pub exe: PathBuf,
    /// The config file, absolute.
    pub config_path: PathBuf,
    /// Worker processes.
    pub workers: usize,
    /// Tasks per worker at once.
    pub concurrency: usize,
    /// Stop once no task is pending or leased.
    pub until_empty: bool,
    /// The queue URL the workers use.
    pub queue_url: Secret,
    /// This machine's name, for worker names.
    pub host: String,
    /// How long workers get to finish in-flight tasks when stopping.
    pub grace: Duration,
}

/// What `up` reports as it runs.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Queue counts.
    pub stats: QueueStats,
    /// Tasks finished per second, recently.
    pub rate: f64,
    /// Workers running now.
    pub running: usize,
}

/// How `up` ended.
#[derive(Debug)]
pub enum UpExit {
    /// `--until-empty`: every task is finished.
    Finished(QueueStats),
    /// It was told to stop.
    Stopped,
    /// Credentials failed the supervisor's own check; no worker was started.
    Preflight(Vec<ProviderCheck>),
    /// No worker can run: each one refused to start or kept crashing.
    NoWorkers(String),
    /// The queue failed.
    Queue(QueueError),
}

struct Slot {
    name: String,
    child: Option<Child>,
    restarts: Vec<Instant>,
    next_start: Option<Instant>,
    given_up: bool,
}

/// Runs the fleet until `stop` turns true or, with `until_empty`, the queue is empty.
pub async fn supervise(
    config: &Config,
    env: &dyn Environment,
    queue: &Queue,
    options: UpOptions,
    mut stop: watch::Receiver<bool>,
    progress: impl Fn(&Progress),
    log: Log,
) -> UpExit {
    let checks = agentfleet_config::check(config, env);
    let unusable: Vec<ProviderCheck> = checks
        .providers
        .into_iter()
        .filter(|check| !check.is_usable())
        .collect();
    if !unusable.is_empty() {
        return UpExit::Preflight(unusable);
    }
    let (child_env, handoff) = worker_environment(config, env, &options.queue_url);
    let mut slots: Vec<Slot> = (0..options.workers.max(1))
        .map(|index| Slot {
            name: format!("{}-{}", options.host, index + 1),
            child: None,
            restarts: Vec::new(),
            next_start: Some(Instant::now()),
            given_up: false,
        })
        .collect();
    let mut last_stats: Option<(Instant, u64)> = None;
    let mut rate = 0.0;
    let mut last_progress = Instant::now() - Duration::from_secs(10);
    let outcome = loop {
        if *stop.borrow() {
            break UpExit::Stopped;
        }
        let now = Instant::now();
        for slot in &mut slots {
            if let Some(child) = &mut slot.child
                && let Ok(Some(status)) = child.try_wait()
            {
                slot.child = None;
                let code = status.code();
                if matches!(code, Some(77 | 78)) {
                    log(format!(
                        "{} refused to start (exit {}): its credential check failed; it will not be restarted",
                        slot.name,
                        code.unwrap_or_default()
                    ));
                    slot.given_up = true;
                    continue;
                }
                slot.restarts
                    .retain(|at| now.duration_since(*at) < Duration::from_secs(60));
                if slot.restarts.len() >= 5 {
                    log(format!(
                        "{} exited ({status}) 5 times within a minute: not restarting it",
                        slot.name
                    ));
                    slot.given_up = true;
                    continue;
                }
                let delay = Duration::from_secs(1 << slot.restarts.len().min(5));
                log(format!(
                    "{} exited ({status}); restarting in {} s",
                    slot.name,
                    delay.as_secs()
                ));
                slot.next_start = Some(now + delay);
            }
            if slot.child.is_none() && !slot.given_up && slot.next_start.is_some_and(|at| at <= now)
            {
                slot.next_start = None;
                match spawn(&options, &slot.name, &child_env, &handoff, log.clone()).await {
                    Ok(child) => {
                        slot.restarts.push(now);
                        slot.child = Some(child);
                    }
                    Err(error) => {
                        log(format!("cannot start {}: {error}", slot.name));
                        slot.restarts.push(now);
                        slot.next_start = Some(now + Duration::from_secs(5));
                    }
                }
            }
        }
        if slots.iter().all(|slot| slot.given_up) {
            break UpExit::NoWorkers(
                "every worker refused to start or kept crashing; see the lines above".to_owned(),
            );
        }
        if now.duration_since(last_progress) >= Duration::from_millis(200) {
            last_progress = now;
            match queue.stats().await {
                Ok(stats) => {
                    let finished = stats.done + stats.failed + stats.dead;
                    if let Some((at, before)) = last_stats {
                        let seconds = now.duration_since(at).as_secs_f64();
                        if seconds > 0.0 {
                            let instant = finished.saturating_sub(before) as f64 / seconds;
                            rate = if rate == 0.0 {
                                instant
                            } else {
                                rate * 0.7 + instant * 0.3
                            };
                        }
                    }
                    last_stats = Some((now, finished));
                    let running = slots.iter().filter(|slot| slot.child.is_some()).count();
                    progress(&Progress {
                        stats: stats.clone(),
                        rate,
                        running,
                    });
                    if options.until_empty && stats.pending == 0 && stats.leased == 0 {
                        break UpExit::Finished(stats);
                    }
                }
                Err(error) if error.is_transient() => log(format!("queue: {error}")),
                Err(error) => break UpExit::Queue(error),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stop.changed() => {}
        }
    };
    stop_all(&mut slots, options.grace, &log).await;
    outcome
}

/// The environment every worker starts with, and what goes over its pipe.
fn worker_environment(
    config: &Config,
    env: &dyn Environment,
    queue_url: &Secret,
) -> (Vec<(String, OsString)>, Handoff) {
    let mut allow: Vec<String> = BASE_ENV.iter().map(|name| (*name).to_owned()).collect();
    allow.extend(config.fleet.env.iter().cloned());
    let mut child_env = agentfleet_config::env::allowed(env, &allow);
    let mut handoff = Handoff {
        queue_url: Some(queue_url.expose().to_owned()),
        ..Handoff::default()
    };
    for name in crate::sources::variables(config) {
        let Some(value) = env.get(&name) else {
            continue;
        };
        if name.ends_with("_FILE") {
            // A path: the worker reads (and later re-reads) the file itself.
            child_env.push((name, value));
        } else if let Ok(value) = value.into_string() {
            handoff.env.insert(name, value);
        }
    }
    (child_env, handoff)
}

async fn spawn(
    options: &UpOptions,
    name: &str,
    child_env: &[(String, OsString)],
    handoff: &Handoff,
    log: Log,
) -> std::io::Result<Child> {
    let mut child = Command::new(&options.exe)
        .arg("worker")
        .arg("--config")
        .arg(&options.config_path)
        .arg("--name")
        .arg(name)
        .arg("--concurrency")
        .arg(options.concurrency.to_string())
        .arg("--from-supervisor")
        .env_clear()
        .envs(child_env.iter().map(|(name, value)| (name, value)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        let mut line = serde_json::to_string(handoff).map_err(std::io::Error::other)?;
        line.push('\n');
        stdin.write_all(line.as_bytes()).await?;
        line.replace_range(.., &" ".repeat(line.len()));
        // Held open for the worker's life: when this process ends, however it ends, the worker
        // reads end of input and stops (see `agentfleet worker --from-supervisor`).
        child.stdin = Some(stdin);
    }
    if let Some(stderr) = child.stderr.take() {
        let name = name.to_owned();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                log(format!("[{name}] {line}"));
            }
        });
    }
    Ok(child)
}

/// SIGTERM to every worker; each finishes or gives back its tasks within the grace period.
/// Workers still running well after it are killed.
async fn stop_all(slots: &mut [Slot], grace: Duration, log: &Log) {
    for slot in slots.iter() {
        if let Some(pid) = slot.child.as_ref().and_then(Child::id) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
    let deadline = Instant::now() + grace + Duration::from_secs(10);
    for slot in slots.iter_mut() {
        if let Some(child) = &mut slot.child {
            match tokio::time::timeout_at(deadline, child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    log(format!("{} did not stop in time: killing it", slot.name));
                    let _ = child.kill().await;
                }
            }
        }
    }
}
