//! The supervisor behind `agentfleet up`: workers on this machine, started with an environment
//! built on purpose, watched, restarted when they crash, and stopped gracefully.
//!
//! It checks every credential itself before it starts anything. Each worker gets an allow-listed
//! environment (never the whole ambient one, never an empty one) plus the `_FILE` paths of file
//! credentials, which the worker reads itself; credentials the supervisor read from variables
//! reach the worker over a pipe on its standard input, so nothing the worker spawns inherits them.
//!
//! A rollout (`agentfleet rollout`, or SIGHUP) restarts every worker with credentials resolved
//! anew: the supervisor reads its config file again and checks every credential from the new
//! sources first, and refuses the rollout, changing nothing, when one fails. Then, one worker at
//! a time, it starts a replacement (which probes its providers before it takes work), waits until
//! the replacement has registered as healthy, and only then drains and stops the worker it
//! replaces. The fleet runs one worker over its size during each swap, so the healthy count never
//! drops; a replacement that fails stops the rollout and leaves the rest as they were. Each
//! worker reports the generation it was started with, so `status` shows a rollout half done.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentfleet_config::{Config, ConfigLocation, Environment, ProviderCheck, Secret};
use agentfleet_queue::{Queue, QueueError, QueueStats};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::control::{RolloutEvent, RolloutRequest};
use crate::handoff::Handoff;
use crate::worker::Log;

/// How long a replacement may take to pass its preflight and probe and register as healthy
/// before the rollout gives up on it.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

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

/// What one generation of workers starts with: the environment and what goes over the pipe.
struct Launch {
    generation: u64,
    child_env: Vec<(String, OsString)>,
    handoff: Handoff,
}

/// One place in the fleet, held by one worker process at a time (two during its swap).
struct Slot {
    index: usize,
    name: String,
    launch: Arc<Launch>,
    child: Option<Child>,
    restarts: Vec<Instant>,
    next_start: Option<Instant>,
    given_up: bool,
}

/// A rollout under way.
struct Rollout {
    launch: Arc<Launch>,
    /// The credential variables it was asked with, when a client handed them over.
    env: Option<Arc<BTreeMap<String, Secret>>>,
    events: Option<mpsc::UnboundedSender<RolloutEvent>>,
    /// The slot being replaced, or the next to be.
    next: usize,
    step: Step,
    started: Instant,
}

enum Step {
    /// Between slots.
    Next,
    /// A replacement is starting beside the slot's worker.
    Starting {
        name: String,
        child: Child,
        since: Instant,
    },
    /// The replacement is healthy and holds the slot; the worker it replaced is draining.
    Draining {
        name: String,
        child: Child,
        since: Instant,
    },
}

impl Rollout {
    fn say(&self, log: &Log, event: RolloutEvent) {
        let line = match &event {
            RolloutEvent::Progress { message } => format!("rollout: {message}"),
            RolloutEvent::Refused { message, .. } => format!("rollout refused: {message}"),
            RolloutEvent::Failed { message } => format!("rollout failed: {message}"),
            RolloutEvent::Done { message, .. } => format!("rollout done: {message}"),
        };
        log(line);
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }
}

/// A worker that is being stopped outside any slot: a replacement that failed, or the worker a
/// rollout replaced when `up` stops mid-swap.
struct Retiring {
    name: String,
    child: Child,
    since: Instant,
}

/// Runs the fleet until `stop` turns true or, with `until_empty`, the queue is empty, rolling
/// its workers whenever `rollouts` delivers a request.
#[allow(clippy::too_many_arguments)]
pub async fn supervise(
    config: &Config,
    env: &dyn Environment,
    queue: &Queue,
    options: UpOptions,
    mut stop: watch::Receiver<bool>,
    mut rollouts: mpsc::UnboundedReceiver<RolloutRequest>,
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
    let first = Arc::new(launch(config, env, &options.queue_url, 1));
    let mut slots: Vec<Slot> = (0..options.workers.max(1))
        .map(|index| Slot {
            index,
            name: worker_name(&options.host, index, 1),
            launch: first.clone(),
            child: None,
            restarts: Vec::new(),
            next_start: Some(Instant::now()),
            given_up: false,
        })
        .collect();
    let mut generation = 1;
    // The credential variables of the last completed rollout that was handed some: what a
    // rollout that names none (SIGHUP, `--keep-env`) starts from, so it never reverts a fleet
    // to the keys up started with.
    let mut fleet_env: Option<Arc<BTreeMap<String, Secret>>> = None;
    let mut rollout: Option<Rollout> = None;
    let mut retiring: Vec<Retiring> = Vec::new();
    let mut last_stats: Option<(Instant, u64)> = None;
    let mut rate = 0.0;
    let mut last_progress = Instant::now() - Duration::from_secs(10);
    // Counting a large queue is not free: the counts are read at most every 200 ms, and never
    // more often than ten times the last count took, so they cost the database 10% at most.
    let mut progress_every = Duration::from_millis(200);
    let outcome = loop {
        if *stop.borrow() {
            break UpExit::Stopped;
        }
        let now = Instant::now();
        for slot in &mut slots {
            tend(slot, &options, now, &log).await;
        }
        retiring.retain_mut(|worker| !reap(worker, options.grace, &log));
        if let Some(current) = &mut rollout
            && let Some(completed) =
                advance(current, &mut slots, &mut retiring, queue, &options, &log).await
        {
            if completed && current.env.is_some() {
                fleet_env = current.env.clone();
            }
            rollout = None;
        }
        if rollout.is_none() && slots.iter().all(|slot| slot.given_up) {
            break UpExit::NoWorkers(
                "every worker refused to start or kept crashing; see the lines above".to_owned(),
            );
        }
        if now.duration_since(last_progress) >= progress_every {
            last_progress = now;
            let counted = queue.stats().await;
            progress_every =
                (now.elapsed() * 10).clamp(Duration::from_millis(200), Duration::from_secs(5));
            match counted {
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
            Some(request) = rollouts.recv() => {
                if let Some(current) = &rollout {
                    let event = RolloutEvent::Refused {
                        message: format!(
                            "a rollout to generation {} is under way ({} of {} workers replaced); \
                             wait for it to finish",
                            current.launch.generation,
                            current.next,
                            slots.len()
                        ),
                        problems: Vec::new(),
                    };
                    refuse(request, event, &log);
                } else if let Some(started) =
                    begin(request, env, fleet_env.clone(), &options, generation + 1, &log)
                {
                    generation += 1;
                    rollout = Some(started);
                }
            }
        }
    };
    let mut stopping: Vec<(String, Child)> = Vec::new();
    if let Some(mut current) = rollout.take() {
        current.say(
            &log,
            RolloutEvent::Failed {
                message: format!(
                    "up is stopping; {} of {} workers were replaced",
                    current.next,
                    slots.len()
                ),
            },
        );
        match std::mem::replace(&mut current.step, Step::Next) {
            Step::Next => {}
            Step::Starting { name, child, .. } | Step::Draining { name, child, .. } => {
                stopping.push((name, child));
            }
        }
    }
    stopping.extend(
        retiring
            .into_iter()
            .map(|worker| (worker.name, worker.child)),
    );
    stopping.extend(
        slots
            .into_iter()
            .filter_map(|slot| slot.child.map(|child| (slot.name, child))),
    );
    stop_all(stopping, options.grace, &log).await;
    outcome
}

fn worker_name(host: &str, index: usize, generation: u64) -> String {
    if generation == 1 {
        format!("{host}-{}", index + 1)
    } else {
        format!("{host}-{}-g{generation}", index + 1)
    }
}

fn launch(config: &Config, env: &dyn Environment, queue_url: &Secret, generation: u64) -> Launch {
    let (child_env, handoff) = worker_environment(config, env, queue_url);
    Launch {
        generation,
        child_env,
        handoff,
    }
}

/// Notices a slot's worker that exited and restarts it with backoff, or gives up on it: at once
/// when it refused to start for its credentials, after five exits within a minute otherwise.
async fn tend(slot: &mut Slot, options: &UpOptions, now: Instant, log: &Log) {
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
            return;
        }
        slot.restarts
            .retain(|at| now.duration_since(*at) < Duration::from_secs(60));
        if slot.restarts.len() >= 5 {
            log(format!(
                "{} exited ({status}) 5 times within a minute: not restarting it",
                slot.name
            ));
            slot.given_up = true;
            return;
        }
        let delay = Duration::from_secs(1 << slot.restarts.len().min(5));
        log(format!(
            "{} exited ({status}); restarting in {} s",
            slot.name,
            delay.as_secs()
        ));
        slot.next_start = Some(now + delay);
    }
    if slot.child.is_none() && !slot.given_up && slot.next_start.is_some_and(|at| at <= now) {
        slot.next_start = None;
        match spawn(options, &slot.name, &slot.launch, false, log.clone()).await {
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

/// Whether a retiring worker has exited; one that outlives its grace period is killed.
fn reap(worker: &mut Retiring, grace: Duration, log: &Log) -> bool {
    if matches!(worker.child.try_wait(), Ok(Some(_)) | Err(_)) {
        return true;
    }
    if worker.since.elapsed() > grace + Duration::from_secs(10) {
        log(format!("{} did not stop in time: killing it", worker.name));
        let _ = worker.child.start_kill();
    }
    false
}

fn refuse(request: RolloutRequest, event: RolloutEvent, log: &Log) {
    if let RolloutEvent::Refused { message, problems } = &event {
        log(format!(
            "rollout asked by {} refused: {message}",
            request.origin
        ));
        for problem in problems {
            log(problem.clone());
        }
    }
    if let Some(events) = request.events {
        let _ = events.send(event);
    }
}

/// Reads the config file again and checks every credential from the sources the request names
/// (or, when it names none, those the fleet runs with now); a rollout when they all pass, a
/// refusal (and `None`) otherwise.
fn begin(
    mut request: RolloutRequest,
    env: &dyn Environment,
    fleet_env: Option<Arc<BTreeMap<String, Secret>>>,
    options: &UpOptions,
    generation: u64,
    log: &Log,
) -> Option<Rollout> {
    let location = ConfigLocation {
        path: options.config_path.clone(),
        named_by: "up",
    };
    let config = match agentfleet_config::load(&location) {
        Ok(config) => config,
        Err(error) => {
            let problems = error
                .diagnostics()
                .iter()
                .map(|diagnostic| format!("error: {diagnostic}"))
                .collect();
            let event = RolloutEvent::Refused {
                message: format!("the config file cannot be used: {error}; no worker was touched"),
                problems,
            };
            refuse(request, event, log);
            return None;
        }
    };
    let asked_with_variables = request.env.is_some();
    let handed = request.env.take().map(Arc::new).or(fleet_env);
    let view = RolloutEnv {
        handed: handed.as_deref(),
        credential_variables: crate::sources::variables(&config).into_iter().collect(),
        base: env,
    };
    let checks = agentfleet_config::check(&config, &view).providers;
    let unusable: Vec<&ProviderCheck> = checks.iter().filter(|c| !c.is_usable()).collect();
    if !unusable.is_empty() {
        let names: Vec<&str> = unusable.iter().map(|c| c.name.as_str()).collect();
        let problems = unusable
            .iter()
            .flat_map(|check| &check.problems)
            .map(|problem| {
                format!(
                    "{}[{}]: {}\n  fix: {}",
                    problem.severity, problem.code, problem.message, problem.fix
                )
            })
            .collect();
        let whose = if asked_with_variables {
            "as the rollout's process sees them"
        } else {
            "as the fleet holds them now"
        };
        let event = RolloutEvent::Refused {
            message: format!(
                "a credential of provider {} fails its check {whose}; no worker was touched",
                names.join(", ")
            ),
            problems,
        };
        refuse(request, event, log);
        return None;
    }
    let launch = Arc::new(launch(&config, &view, &options.queue_url, generation));
    let rollout = Rollout {
        launch,
        env: handed,
        events: request.events,
        next: 0,
        step: Step::Next,
        started: Instant::now(),
    };
    let keys: Vec<String> = checks
        .iter()
        .map(|check| {
            let fingerprint = check
                .fingerprint
                .map_or_else(|| "no key".to_owned(), |f| f.to_string());
            format!("{} {fingerprint} ({})", check.name, check.source)
        })
        .collect();
    rollout.say(
        log,
        RolloutEvent::Progress {
            message: format!(
                "generation {generation}, asked by {}: every credential passes its checks: {}",
                request.origin,
                keys.join(", ")
            ),
        },
    );
    Some(rollout)
}

/// Takes the rollout one step further: `None` while it goes on, then whether every worker
/// runs the new generation.
async fn advance(
    rollout: &mut Rollout,
    slots: &mut [Slot],
    retiring: &mut Vec<Retiring>,
    queue: &Queue,
    options: &UpOptions,
    log: &Log,
) -> Option<bool> {
    let generation = rollout.launch.generation;
    match &mut rollout.step {
        Step::Next => {
            let Some(slot) = slots.get_mut(rollout.next) else {
                let message = format!(
                    "{} workers run generation {generation}, after {:.1} s",
                    slots.len(),
                    rollout.started.elapsed().as_secs_f64()
                );
                rollout.say(
                    log,
                    RolloutEvent::Done {
                        generation,
                        message,
                    },
                );
                return Some(true);
            };
            let name = worker_name(&options.host, slot.index, generation);
            if slot.child.is_none() {
                // Nothing runs here to keep serving: the slot restarts on the new generation.
                let message = format!("{} was not running; {name} takes its place", slot.name);
                slot.name = name;
                slot.launch = rollout.launch.clone();
                slot.given_up = false;
                slot.restarts.clear();
                slot.next_start = Some(Instant::now());
                rollout.next += 1;
                rollout.say(log, RolloutEvent::Progress { message });
                return None;
            }
            let replacement_log: Log = {
                let (log, events) = (log.clone(), rollout.events.clone());
                Arc::new(move |line: String| {
                    if let Some(events) = &events {
                        let _ = events.send(RolloutEvent::Progress {
                            message: line.clone(),
                        });
                    }
                    log(line);
                })
            };
            match spawn(options, &name, &rollout.launch, true, replacement_log).await {
                Ok(child) => {
                    let message = format!(
                        "started {name} (pid {}) to replace {}",
                        child.id().unwrap_or_default(),
                        slot.name
                    );
                    rollout.step = Step::Starting {
                        name,
                        child,
                        since: Instant::now(),
                    };
                    rollout.say(log, RolloutEvent::Progress { message });
                    None
                }
                Err(error) => {
                    let message = format!(
                        "cannot start {name}: {error}; {} keeps running on generation {}",
                        slot.name, slot.launch.generation
                    );
                    rollout.say(log, RolloutEvent::Failed { message });
                    Some(false)
                }
            }
        }
        Step::Starting { name, child, since } => {
            let slot = &mut slots[rollout.next];
            let kept = format!(
                "{} keeps running on generation {}",
                slot.name, slot.launch.generation
            );
            if let Ok(Some(status)) = child.try_wait() {
                let why = match status.code() {
                    Some(78) => "its credential check failed".to_owned(),
                    Some(77) => "the provider refused the new key when it probed".to_owned(),
                    Some(69) => "a provider could not be reached when it probed".to_owned(),
                    _ => format!("it exited ({status})"),
                };
                let message = format!("{name} did not start: {why}; {kept}");
                rollout.say(log, RolloutEvent::Failed { message });
                return Some(false);
            }
            let state = match queue.workers().await {
                Ok(workers) => workers
                    .into_iter()
                    .find(|worker| worker.report.name == *name && !worker.gone)
                    .map(|worker| (worker.report.state, worker.report.reason)),
                Err(_) => None,
            };
            let failure = match state {
                Some((state, _)) if state == "healthy" => None,
                Some((state, reason)) if state == "quarantined" => Some(format!(
                    "{name} quarantined a provider: {}",
                    reason.unwrap_or_default()
                )),
                _ if since.elapsed() > READY_TIMEOUT => Some(format!(
                    "{name} was not healthy within {} s",
                    READY_TIMEOUT.as_secs()
                )),
                _ => return None,
            };
            let Step::Starting { name, child, .. } =
                std::mem::replace(&mut rollout.step, Step::Next)
            else {
                return Some(false);
            };
            if let Some(failure) = failure {
                terminate(&child);
                retiring.push(Retiring {
                    name,
                    child,
                    since: Instant::now(),
                });
                rollout.say(
                    log,
                    RolloutEvent::Failed {
                        message: format!("{failure}; {kept}"),
                    },
                );
                return Some(false);
            }
            let old_name = std::mem::replace(&mut slot.name, name);
            let old = slot.child.replace(child);
            slot.launch = rollout.launch.clone();
            slot.restarts.clear();
            slot.given_up = false;
            slot.next_start = None;
            let Some(old) = old else {
                // The worker it was to replace exited meanwhile: nothing to drain.
                rollout.next += 1;
                let message = format!("{} is healthy and takes the place of {old_name}", slot.name);
                rollout.say(log, RolloutEvent::Progress { message });
                return None;
            };
            terminate(&old);
            let message = format!("{} is healthy; draining {old_name}", slot.name);
            rollout.step = Step::Draining {
                name: old_name,
                child: old,
                since: Instant::now(),
            };
            rollout.say(log, RolloutEvent::Progress { message });
            None
        }
        Step::Draining { name, child, since } => {
            let exited = matches!(child.try_wait(), Ok(Some(_)) | Err(_));
            if !exited {
                if since.elapsed() > options.grace + Duration::from_secs(10) {
                    log(format!("{name} did not stop in time: killing it"));
                    let _ = child.start_kill();
                }
                return None;
            }
            let message = format!("{name} stopped");
            rollout.next += 1;
            rollout.step = Step::Next;
            rollout.say(log, RolloutEvent::Progress { message });
            None
        }
    }
}

/// The environment a rollout checks and starts workers with: the variables the config reads
/// credentials from exactly as the request holds them (absent ones absent, so nothing of the
/// old environment mixes in), everything else from the supervisor's own.
struct RolloutEnv<'a> {
    handed: Option<&'a BTreeMap<String, Secret>>,
    credential_variables: BTreeSet<String>,
    base: &'a dyn Environment,
}

impl Environment for RolloutEnv<'_> {
    fn get(&self, name: &str) -> Option<OsString> {
        match self.handed {
            Some(handed) if self.credential_variables.contains(name) => {
                handed.get(name).map(|value| OsString::from(value.expose()))
            }
            _ => self.base.get(name),
        }
    }
}

fn terminate(child: &Child) {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
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

/// Starts one worker of `launch`'s generation; `probe` makes it call each provider once before
/// it takes work (rollouts do, so a key the provider refuses never replaces one it accepts).
async fn spawn(
    options: &UpOptions,
    name: &str,
    launch: &Launch,
    probe: bool,
    log: Log,
) -> std::io::Result<Child> {
    let mut command = Command::new(&options.exe);
    command
        .arg("worker")
        .arg("--config")
        .arg(&options.config_path)
        .arg("--name")
        .arg(name)
        .arg("--concurrency")
        .arg(options.concurrency.to_string())
        .arg("--generation")
        .arg(launch.generation.to_string())
        .arg("--from-supervisor");
    if probe {
        command.arg("--probe");
    }
    let mut child = command
        .env_clear()
        .envs(launch.child_env.iter().map(|(name, value)| (name, value)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        let mut line = serde_json::to_string(&launch.handoff).map_err(std::io::Error::other)?;
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
async fn stop_all(mut workers: Vec<(String, Child)>, grace: Duration, log: &Log) {
    for (_, child) in &workers {
        terminate(child);
    }
    let deadline = Instant::now() + grace + Duration::from_secs(10);
    for (name, child) in &mut workers {
        if tokio::time::timeout_at(deadline, child.wait())
            .await
            .is_err()
        {
            log(format!("{name} did not stop in time: killing it"));
            let _ = child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentfleet_config::FixedEnv;

    #[test]
    fn a_rollout_env_takes_credential_variables_only_from_the_request() {
        let base = FixedEnv::new()
            .with("PATH", "/usr/bin")
            .with("KEY", "old")
            .with("KEY_FILE", "/run/old");
        let handed: BTreeMap<String, Secret> =
            [("KEY".to_owned(), Secret::new("new".to_owned()))].into();
        let view = RolloutEnv {
            handed: Some(&handed),
            credential_variables: ["KEY".to_owned(), "KEY_FILE".to_owned()].into(),
            base: &base,
        };
        assert_eq!(view.get("KEY"), Some(OsString::from("new")));
        assert_eq!(
            view.get("KEY_FILE"),
            None,
            "nothing of the old sources mixes in"
        );
        assert_eq!(view.get("PATH"), Some(OsString::from("/usr/bin")));
        let own = RolloutEnv {
            handed: None,
            ..view
        };
        assert_eq!(own.get("KEY"), Some(OsString::from("old")));
    }

    #[test]
    fn replacements_are_named_for_their_generation() {
        assert_eq!(worker_name("vm", 0, 1), "vm-1");
        assert_eq!(worker_name("vm", 1, 3), "vm-2-g3");
    }
}
