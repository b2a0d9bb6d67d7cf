//! One worker: preflight, then lease, run, and record tasks until told to stop.
//!
//! A worker resolves and checks every credential it needs in its own process before it
//! registers, so a replica without its key never takes a task. When a provider refuses a key
//! mid-run, the worker reads the key's source again: a key rotated there is used at once and the
//! request retried. Otherwise the task goes back to the queue uncounted and the worker
//! quarantines that provider:
//! it leases nothing that needs it, says why in its heartbeat, and re-checks the credential
//! (re-reading file sources) until it works again. Other failures follow the queue's retries.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentfleet_agent::{Runtime, RuntimeError, Target, no_events};
use agentfleet_client::{ClientOptions, ErrorKind, ModelError};
use agentfleet_config::{Config, Environment, ProviderCheck};
use agentfleet_queue::{
    Lease, LeaseFilter, Queue, QueueError, RetryBackoff, Target as QueueTarget, WorkerReport,
};
use tokio::sync::{Notify, watch};

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Unique within the fleet.
    pub name: String,
    /// The machine's name.
    pub host: String,
    /// Tasks at once.
    pub concurrency: usize,
    /// Make one authenticated call per provider before taking work.
    pub probe: bool,
    /// How long a lease lasts before renewal.
    pub lease: Duration,
    /// How often to heartbeat.
    pub heartbeat: Duration,
    /// How long a stopping worker lets in-flight tasks finish before giving them back.
    pub grace: Duration,
    /// How often a quarantined provider's credential is checked again.
    pub recheck: Duration,
    /// How often key files are re-read even when no change was seen in their directories.
    pub reread: Duration,
    /// Retry delays for failed attempts.
    pub backoff: RetryBackoff,
    /// Which rollout of its supervisor started it; `None` for a worker started on its own.
    pub generation: Option<u64>,
}

/// Why a worker ended.
#[derive(Debug)]
pub enum WorkerExit {
    /// It was told to stop and did.
    Stopped {
        /// Tasks it finished.
        done: u64,
        /// Task attempts that failed on it.
        failed: u64,
    },
    /// A credential it needs failed its check; it took no task.
    Preflight(Vec<ProviderCheck>),
    /// A provider refused its credential when probed; it took no task.
    ProbeRejected(Vec<ModelError>),
    /// A provider could not be reached when probed; it took no task.
    ProbeUnreachable(Vec<ModelError>),
    /// The runtime could not be built for another reason.
    Runtime(RuntimeError),
    /// The queue failed.
    Queue(QueueError),
}

/// Lines a worker says as it goes (the binary prints them).
pub type Log = Arc<dyn Fn(String) + Send + Sync>;

/// What the worker knows about itself, reported in every heartbeat.
#[derive(Debug, Default)]
struct Shared {
    in_flight: u64,
    done: u64,
    failed: u64,
    /// Its preflight passed and it registered.
    registered: bool,
    draining: bool,
    /// It drained and deregistered.
    stopped: bool,
    /// Quarantined providers and why.
    quarantine: BTreeMap<String, String>,
}

/// Runs a worker until `stop` turns true (or its health endpoint is asked to drain). `env` is
/// the worker's own view of the environment. With `health`, the endpoint of `crate::health` is
/// served there from the start, answering `starting` until the preflight has passed.
pub async fn run(
    config: &Config,
    env: &dyn Environment,
    queue: Queue,
    options: WorkerOptions,
    stop: watch::Receiver<bool>,
    health: Option<tokio::net::TcpListener>,
    log: Log,
) -> WorkerExit {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let (drained, drained_watch) = watch::channel(false);
    let drain = Arc::new(Notify::new());
    let health = health.map(|listener| {
        let view = {
            let shared = shared.clone();
            Arc::new(move || {
                let shared = shared.lock().unwrap_or_else(|p| p.into_inner());
                let (state, reason) = state(&shared);
                crate::health::HealthView {
                    state: state.to_owned(),
                    reason,
                    in_flight: shared.in_flight,
                    done: shared.done,
                    failed: shared.failed,
                }
            })
        };
        let hooks = crate::health::HealthHooks {
            view,
            drain: drain.clone(),
            drained: drained_watch,
        };
        let log = log.clone();
        tokio::spawn(async move {
            if let Err(error) = crate::health::serve(listener, hooks).await {
                log(format!("health endpoint failed: {error}"));
            }
        })
    });
    let exit = work(
        config,
        env,
        queue,
        options,
        merge(stop, drain),
        &shared,
        log,
    )
    .await;
    shared.lock().unwrap_or_else(|p| p.into_inner()).stopped = true;
    let _ = drained.send(true);
    if let Some(health) = health {
        // Lets an answer to `/drain` under way reach the orchestrator before the process ends.
        let _ = tokio::time::timeout(Duration::from_secs(2), health).await;
    }
    exit
}

/// A stop that turns true when `stop` does or `drain` is notified.
fn merge(mut stop: watch::Receiver<bool>, drain: Arc<Notify>) -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(*stop.borrow());
    tokio::spawn(async move {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => {}
            _ = drain.notified() => {}
        }
        let _ = sender.send(true);
    });
    receiver
}

async fn work(
    config: &Config,
    env: &dyn Environment,
    queue: Queue,
    options: WorkerOptions,
    mut stop: watch::Receiver<bool>,
    shared: &Arc<Mutex<Shared>>,
    log: Log,
) -> WorkerExit {
    let runtime = match Runtime::build_all(config, env, ClientOptions::default()).await {
        Ok(runtime) => Arc::new(runtime),
        Err(RuntimeError::Credentials { unusable }) => return WorkerExit::Preflight(unusable),
        Err(error) => return WorkerExit::Runtime(error),
    };
    if options.probe {
        let mut rejected = Vec::new();
        let mut unreachable = Vec::new();
        for credential in runtime.credentials() {
            let Some(client) = runtime.client(&credential.provider) else {
                continue;
            };
            if let Err(error) = client.probe().await {
                if error.kind.is_auth() || error.kind == ErrorKind::PermissionDenied {
                    rejected.push(error);
                } else {
                    unreachable.push(error);
                }
            }
        }
        if !rejected.is_empty() {
            return WorkerExit::ProbeRejected(rejected);
        }
        if !unreachable.is_empty() {
            return WorkerExit::ProbeUnreachable(unreachable);
        }
    }
    let queue = Arc::new(queue);
    let shared = shared.clone();
    shared.lock().unwrap_or_else(|p| p.into_inner()).registered = true;
    if let Err(error) = queue
        .report_worker(&report(&options, &shared, &runtime))
        .await
    {
        return WorkerExit::Queue(error);
    }
    log(format!(
        "registered; serving {} providers, concurrency {}",
        runtime.credentials().len(),
        options.concurrency
    ));

    let heartbeat = tokio::spawn(heartbeat_loop(
        queue.clone(),
        options.clone(),
        shared.clone(),
        runtime.clone(),
        log.clone(),
    ));
    // Rechecks and re-reads after a refused key run on a config of their own, parsed again from
    // the same file (a `Config` holds literal secrets and is deliberately not `Clone`).
    let reread_config = std::fs::read_to_string(&config.path)
        .ok()
        .and_then(|text| agentfleet_config::parse::parse(&config.path, &text).ok())
        .map(Arc::new);
    let rereads = match reread_config {
        Some(reread_config) => {
            let env = Arc::new(env_snapshot(env, config));
            install_rereads(&runtime, &reread_config, &env);
            vec![
                tokio::spawn(crate::rotation::rotation_loop(
                    reread_config.clone(),
                    env.clone(),
                    runtime.clone(),
                    options.reread,
                    log.clone(),
                )),
                tokio::spawn(recheck_loop(
                    reread_config,
                    options.clone(),
                    shared.clone(),
                    runtime.clone(),
                    env,
                    log.clone(),
                )),
            ]
        }
        None => {
            log(
                "cannot re-read the config file: keys will not rotate, a refused key will not be \
                 read again, and a quarantined provider will stay quarantined"
                    .to_owned(),
            );
            Vec::new()
        }
    };

    let finished = Arc::new(Notify::new());
    // Runs whose model call is under way: the concurrency limit. A run whose call has returned
    // frees its slot while its result is being recorded.
    let calling = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut running: HashMap<String, (Lease, tokio::task::JoinHandle<()>)> = HashMap::new();
    // A leasing task keeps a few tasks leased ahead in a channel, so a freed slot starts its
    // next task at once, never waiting for a lease round trip.
    let prefetch = options.concurrency.max(2);
    let (ahead, mut leased) = tokio::sync::mpsc::channel::<Lease>(prefetch);
    let leaser = tokio::spawn(lease_loop(
        queue.clone(),
        options.clone(),
        shared.clone(),
        ahead,
        stop.clone(),
        log.clone(),
    ));
    let (acker, acks) = tokio::sync::mpsc::unbounded_channel();
    let ack_loop = tokio::spawn(ack_loop(queue.clone(), acks));
    let context = Context {
        queue: queue.clone(),
        runtime: runtime.clone(),
        options: options.clone(),
        shared: shared.clone(),
        acker: acker.clone(),
        log: log.clone(),
    };
    'work: loop {
        running.retain(|_, (_, handle)| !handle.is_finished());
        while calling.load(std::sync::atomic::Ordering::SeqCst) >= options.concurrency {
            tokio::select! {
                _ = finished.notified() => {}
                _ = stop.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            if *stop.borrow() {
                break 'work;
            }
        }
        let lease = tokio::select! {
            lease = leased.recv() => match lease {
                Some(lease) => lease,
                None => break 'work,
            },
            _ = stop.changed() => break 'work,
        };
        let quarantined = shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .quarantine
            .keys()
            .cloned()
            .collect::<Vec<_>>();
        if lease
            .record
            .needs
            .iter()
            .any(|provider| quarantined.contains(provider))
        {
            // Leased before its provider was quarantined: give it back for a healthy worker.
            let _ = queue
                .release(
                    &lease,
                    "quarantined",
                    &format!("worker {} quarantined a provider it needs", options.name),
                )
                .await;
            continue;
        }
        shared.lock().unwrap_or_else(|p| p.into_inner()).in_flight += 1;
        calling.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let handle = tokio::spawn(run_task(
            context.clone(),
            lease.clone(),
            Slot {
                calling: calling.clone(),
                finished: finished.clone(),
            },
        ));
        running.insert(lease.record.id.clone(), (lease, handle));
    }
    let _ = leaser.await;
    leased.close();
    while let Some(lease) = leased.recv().await {
        let _ = queue
            .release(
                &lease,
                "worker-stopping",
                &format!("worker {} stopped before starting the task", options.name),
            )
            .await;
    }

    // Stopping: lease nothing more, let in-flight tasks finish within the grace period, give
    // the rest back uncounted.
    shared.lock().unwrap_or_else(|p| p.into_inner()).draining = true;
    let _ = queue
        .report_worker(&report(&options, &shared, &runtime))
        .await;
    // Waits on the runs themselves: a run's last notification can come just before its task
    // is seen as finished, and a wait on notifications alone would then sleep out the grace.
    let deadline = tokio::time::Instant::now() + options.grace;
    let mut unfinished = Vec::new();
    for (id, (_, handle)) in running.iter_mut() {
        if handle.is_finished() {
            continue;
        }
        if tokio::time::timeout_at(deadline, &mut *handle)
            .await
            .is_err()
        {
            unfinished.push(id.clone());
        }
    }
    for (id, (lease, handle)) in running.drain() {
        if unfinished.contains(&id) {
            handle.abort();
            let _ = handle.await;
            match queue
                .release(
                    &lease,
                    "worker-stopping",
                    &format!("worker {} stopped before the task finished", options.name),
                )
                .await
            {
                Ok(()) => log(format!("gave task {} back: stopping", lease.record.id)),
                Err(error) => log(format!(
                    "could not give task {} back ({error}); its lease will expire",
                    lease.record.id
                )),
            }
        }
    }
    drop(acker);
    drop(context);
    let _ = ack_loop.await;
    heartbeat.abort();
    for task in rereads {
        task.abort();
    }
    let _ = queue.deregister_worker(&options.name).await;
    let shared = shared.lock().unwrap_or_else(|p| p.into_inner());
    WorkerExit::Stopped {
        done: shared.done,
        failed: shared.failed,
    }
}

/// Leases tasks ahead into `ahead` until told to stop, a batch whenever half the room is free,
/// skipping tasks that need a quarantined provider.
async fn lease_loop(
    queue: Arc<Queue>,
    options: WorkerOptions,
    shared: Arc<Mutex<Shared>>,
    ahead: tokio::sync::mpsc::Sender<Lease>,
    mut stop: watch::Receiver<bool>,
    log: Log,
) {
    let batch = (ahead.max_capacity() / 2).max(1);
    loop {
        if *stop.borrow() {
            return;
        }
        let permits = tokio::select! {
            permits = ahead.reserve_many(batch) => match permits {
                Ok(permits) => permits,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        let exclude: Vec<String> = shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .quarantine
            .keys()
            .cloned()
            .collect();
        let filter = LeaseFilter {
            exclude_providers: exclude,
        };
        match queue
            .lease(
                &options.name,
                options.lease,
                u32::try_from(batch).unwrap_or(u32::MAX),
                &filter,
            )
            .await
        {
            Ok(leases) if leases.is_empty() => {
                drop(permits);
                tokio::select! {
                    _ = queue.wait_for_work(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
            }
            Ok(leases) => {
                for (permit, lease) in permits.zip(leases) {
                    permit.send(lease);
                }
            }
            Err(error) => {
                drop(permits);
                log(format!("cannot lease: {error}"));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}

/// A result to record, and where to say whether it was.
type AckRequest = (
    Lease,
    String,
    tokio::sync::oneshot::Sender<Result<(), QueueError>>,
);

/// Where finished runs send their results to be recorded.
type Acker = tokio::sync::mpsc::UnboundedSender<AckRequest>;

/// Records results as they arrive, together: whatever queued up while the last commit ran goes
/// into the next one, so a busy worker commits many results at once and an idle one waits for
/// nothing.
async fn ack_loop(queue: Arc<Queue>, mut acks: tokio::sync::mpsc::UnboundedReceiver<AckRequest>) {
    while let Some(first) = acks.recv().await {
        let mut batch = vec![first];
        while batch.len() < 64 {
            match acks.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let pairs: Vec<(&Lease, &str)> = batch
            .iter()
            .map(|(lease, output, _)| (lease, output.as_str()))
            .collect();
        match queue.ack_many(&pairs).await {
            Ok(results) => {
                for ((_, _, reply), result) in batch.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                let message = error.to_string();
                for (_, _, reply) in batch {
                    let _ = reply.send(Err(QueueError::Database(message.clone())));
                }
            }
        }
    }
}

/// A run's place in the worker's concurrency limit, given up once its model call returns.
struct Slot {
    calling: Arc<std::sync::atomic::AtomicUsize>,
    finished: Arc<Notify>,
}

impl Slot {
    fn free(&self) {
        self.calling
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.finished.notify_one();
    }
}

/// Runs one leased task and records the outcome, renewing the lease while it runs.
/// What every run of one worker shares.
#[derive(Clone)]
struct Context {
    queue: Arc<Queue>,
    runtime: Arc<Runtime>,
    options: WorkerOptions,
    shared: Arc<Mutex<Shared>>,
    acker: Acker,
    log: Log,
}

async fn run_task(context: Context, lease: Lease, slot: Slot) {
    let Context {
        queue,
        runtime,
        options,
        shared,
        acker,
        log,
    } = context;
    let renewer = {
        let queue = queue.clone();
        let lease = lease.clone();
        let every = options.lease / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if queue.renew(&lease, options.lease).await.is_err() {
                    return;
                }
            }
        })
    };
    let target = match &lease.record.target {
        QueueTarget::Agent(name) => Target::Agent(name),
        QueueTarget::Team(name) => Target::Team(name),
    };
    let outcome = runtime.run(target, &lease.record.task, &no_events()).await;
    slot.free();
    let mut done = false;
    // A task given back for the worker's own credential is no failure of the task's.
    let mut released = false;
    let recorded = match outcome {
        Ok(result) => {
            done = true;
            let (sender, receiver) = tokio::sync::oneshot::channel();
            let output = serde_json::to_string(&result).unwrap_or_default();
            match acker.send((lease.clone(), output, sender)) {
                Ok(()) => receiver.await.unwrap_or_else(|_| {
                    Err(QueueError::Database("the ack loop stopped".to_owned()))
                }),
                Err(_) => Err(QueueError::Database("the ack loop stopped".to_owned())),
            }
        }
        Err(failure) => match failure.error.model_error() {
            Some(error) if error.kind.is_auth() => {
                let reason = quarantine_reason(error);
                log(format!(
                    "quarantining provider {}: {reason}",
                    error.provider
                ));
                shared
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .quarantine
                    .insert(error.provider.clone(), reason.clone());
                released = true;
                queue.release(&lease, error.kind.as_str(), &reason).await
            }
            Some(error) => queue
                .fail(
                    &lease,
                    error.kind.as_str(),
                    &error.to_string(),
                    error.kind.is_retryable(),
                    &options.backoff,
                )
                .await
                .map(|_| ()),
            None => queue
                .fail(
                    &lease,
                    "run-failed",
                    &failure.error.to_string(),
                    true,
                    &options.backoff,
                )
                .await
                .map(|_| ()),
        },
    };
    {
        let mut shared = shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.in_flight = shared.in_flight.saturating_sub(1);
        match (&recorded, done) {
            (Ok(()), true) => shared.done += 1,
            (Ok(()), false) if !released => shared.failed += 1,
            _ => {}
        }
    }
    renewer.abort();
    if let Err(error) = recorded {
        log(format!("task {}: {error}", lease.record.id));
    }
    slot.finished.notify_one();
}

/// One line: who refused which key, and the likely cause.
fn quarantine_reason(error: &ModelError) -> String {
    let key = error
        .fingerprint
        .map_or_else(|| "no key".to_owned(), |f| format!("key {f}"));
    let status = error
        .status
        .map_or_else(String::new, |s| format!(" (HTTP {s})"));
    let hint = error
        .hint
        .as_deref()
        .map_or_else(String::new, |h| format!("; {h}"));
    format!("{} {}{status} with {key}{hint}", error.provider, error.kind)
}

/// The state a worker reports, and why it is not healthy.
fn state(shared: &Shared) -> (&'static str, Option<String>) {
    if shared.stopped {
        ("stopped", None)
    } else if shared.draining {
        ("draining", None)
    } else if !shared.registered {
        ("starting", None)
    } else if !shared.quarantine.is_empty() {
        (
            "quarantined",
            Some(
                shared
                    .quarantine
                    .values()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        )
    } else {
        ("healthy", None)
    }
}

fn report(options: &WorkerOptions, shared: &Mutex<Shared>, runtime: &Runtime) -> WorkerReport {
    let shared = shared.lock().unwrap_or_else(|p| p.into_inner());
    let (state, reason) = state(&shared);
    let credentials: serde_json::Map<String, serde_json::Value> = runtime
        .credentials()
        .iter()
        .map(|credential| {
            let current = credential.current();
            (
                credential.provider.clone(),
                serde_json::json!({
                    "source": credential.source,
                    "fingerprint": current.as_ref().map(|c| c.fingerprint.to_string()),
                    "generation": current.as_ref().map(|c| c.generation),
                }),
            )
        })
        .collect();
    WorkerReport {
        name: options.name.clone(),
        host: options.host.clone(),
        pid: std::process::id(),
        heartbeat_ms: i64::try_from(options.heartbeat.as_millis()).unwrap_or(i64::MAX),
        state: state.to_owned(),
        reason,
        in_flight: shared.in_flight,
        done: shared.done,
        failed: shared.failed,
        credentials: serde_json::Value::Object(credentials),
        generation: options.generation,
    }
}

async fn heartbeat_loop(
    queue: Arc<Queue>,
    options: WorkerOptions,
    shared: Arc<Mutex<Shared>>,
    runtime: Arc<Runtime>,
    log: Log,
) {
    let mut failing = false;
    loop {
        tokio::time::sleep(options.heartbeat).await;
        match queue
            .report_worker(&report(&options, &shared, &runtime))
            .await
        {
            Ok(()) if failing => {
                failing = false;
                log("heartbeats reach the queue again".to_owned());
            }
            Ok(()) => {}
            Err(error) if !failing => {
                failing = true;
                log(format!("heartbeat failed: {error}"));
            }
            Err(_) => {}
        }
    }
}

/// The variables a credential can come from, as this worker sees them now. Files named by them
/// are read afresh on every recheck.
fn env_snapshot(env: &dyn Environment, config: &Config) -> agentfleet_config::FixedEnv {
    let mut fixed = agentfleet_config::FixedEnv::new();
    for name in crate::sources::variables(config) {
        if let Some(value) = env.get(&name) {
            fixed = fixed.with(&name, value);
        }
    }
    fixed
}

/// Lets every key read its sources again when the provider refuses it, so that a key rotated at
/// its source (a secret file rewritten, a mounted secret updated), or else the provider's
/// `api_key_fallback`, is used by the very request that was refused, before the provider is
/// quarantined. A new value is taken only if it passes the same checks as at preflight.
fn install_rereads(
    runtime: &Runtime,
    config: &Arc<Config>,
    env: &Arc<agentfleet_config::FixedEnv>,
) {
    for credential in runtime.credentials() {
        let Some(live) = &credential.live else {
            continue;
        };
        let (config, env) = (config.clone(), env.clone());
        let provider = credential.provider.clone();
        live.set_reread(Box::new(move || {
            let Some(provider) = config.provider(&provider) else {
                return Vec::new();
            };
            let check = agentfleet_config::check_provider(&config, provider, env.as_ref());
            let usable = check.is_usable();
            let key = check.key.filter(|_| usable);
            let fallback = check.fallback.and_then(|fallback| fallback.key);
            key.into_iter().chain(fallback).collect()
        }));
    }
}

/// Checks each quarantined provider again: re-reads its credential, swaps in a changed key, and
/// probes; a provider that answers leaves quarantine.
async fn recheck_loop(
    config: Arc<Config>,
    options: WorkerOptions,
    shared: Arc<Mutex<Shared>>,
    runtime: Arc<Runtime>,
    env: Arc<agentfleet_config::FixedEnv>,
    log: Log,
) {
    loop {
        tokio::time::sleep(options.recheck).await;
        let quarantined: Vec<String> = shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .quarantine
            .keys()
            .cloned()
            .collect();
        for provider_name in quarantined {
            let Some(provider) = config.provider(&provider_name) else {
                continue;
            };
            let check = agentfleet_config::check_provider(&config, provider, env.as_ref());
            let Some(credential) = runtime
                .credentials()
                .iter()
                .find(|c| c.provider == provider_name)
            else {
                continue;
            };
            if let (true, Some(key), Some(live)) = (
                check.is_usable(),
                check.key.clone(),
                credential.live.as_ref(),
            ) {
                live.replace(key);
            }
            let Some(client) = runtime.client(&provider_name) else {
                continue;
            };
            match client.probe().await {
                Ok(()) => {
                    let fingerprint = credential
                        .current()
                        .map(|c| c.fingerprint.to_string())
                        .unwrap_or_default();
                    shared
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .quarantine
                        .remove(&provider_name);
                    log(format!(
                        "provider {provider_name} is back in service with key {fingerprint}"
                    ));
                }
                Err(error) => {
                    shared
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .quarantine
                        .insert(provider_name.clone(), quarantine_reason(&error));
                }
            }
        }
    }
}
