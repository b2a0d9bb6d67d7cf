//! `agentfleet worker`, `up` and `status`: the fleet from the command line.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentfleet_config::{Environment, ProcessEnv, ProviderCheck};
use agentfleet_fleet::{
    ControlError, ControlSocket, Handoff, Progress, RolloutEvent, RolloutRequest, UpExit,
    UpOptions, WorkerEnv, WorkerExit, WorkerOptions,
};
use agentfleet_queue::{Queue, RetryBackoff};
use anyhow::Context;
use tokio::sync::{mpsc, watch};

use crate::cli::{RolloutArgs, StatusArgs, UpArgs, WorkerArgs};
use crate::commands::queue::{
    Report, load_config, queue_exit, report_problems, submit_tasks, tasks_from_file,
};
use crate::exit::Exit;

/// A watch that turns true on SIGTERM or SIGINT, or, for a worker started by `up`, when its
/// supervisor is gone: the supervisor holds the worker's standard input open for as long as it
/// lives, so end of input means it exited or was killed, and the worker drains and stops instead
/// of running on, orphaned.
fn stop_signal(from_supervisor: bool) -> anyhow::Result<watch::Receiver<bool>> {
    let (sender, receiver) = watch::channel(false);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot listen for SIGINT")?;
    let (orphaned, supervisor_gone) = tokio::sync::oneshot::channel::<()>();
    if from_supervisor {
        std::thread::spawn(move || {
            use std::io::Read as _;
            let mut sink = [0u8; 64];
            let mut stdin = std::io::stdin().lock();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            let _ = orphaned.send(());
        });
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
            Ok(()) = supervisor_gone => {
                eprintln!("the supervisor is gone: stopping");
            }
        }
        let _ = sender.send(true);
    });
    Ok(receiver)
}

/// One line per problem, as `check` prints them.
fn print_problems(checks: &[ProviderCheck]) {
    for check in checks {
        for problem in &check.problems {
            eprintln!(
                "{}[{}]: {}",
                problem.severity, problem.code, problem.message
            );
            eprintln!("  fix: {}", problem.fix);
        }
    }
}

fn logger(prefix: String) -> agentfleet_fleet::Log {
    Arc::new(move |line: String| eprintln!("{prefix}{line}"))
}

pub fn worker(args: &WorkerArgs) -> anyhow::Result<Exit> {
    let handoff = if args.from_supervisor {
        Handoff::read_stdin().context("cannot read what the supervisor handed over")?
    } else {
        Handoff::default()
    };
    let handed_queue_url = handoff.queue_url.clone();
    let env = WorkerEnv::new(handoff);
    let config = match load_config(&args.queue.config, true, false) {
        Ok(Some(config)) => config,
        Ok(None) => return Ok(Exit::Config),
        Err(exit) => return Ok(exit),
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", agentfleet_fleet::hostname(), std::process::id()));
    let log = logger(format!("worker {name}: "));
    let options = WorkerOptions {
        name: name.clone(),
        host: agentfleet_fleet::hostname(),
        concurrency: args
            .concurrency
            .unwrap_or(config.fleet.concurrency as usize)
            .max(1),
        probe: args.probe || config.fleet.probe,
        lease: config.queue.lease_timeout,
        heartbeat: config.fleet.heartbeat_interval,
        grace: config.fleet.shutdown_grace,
        recheck: Duration::from_secs(5).min(
            config
                .fleet
                .heartbeat_interval
                .max(Duration::from_millis(500)),
        ),
        reread: config.fleet.key_reread_interval,
        backoff: RetryBackoff::default(),
        generation: args.generation,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let stop = stop_signal(args.from_supervisor)?;
        let health = match &args.health_addr {
            Some(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => {
                    let bound = listener
                        .local_addr()
                        .map_or_else(|_| addr.clone(), |a| a.to_string());
                    log(format!("health endpoint on http://{bound}/readyz"));
                    Some(listener)
                }
                Err(error) => {
                    log(format!(
                        "cannot serve the health endpoint on {addr}: {error}"
                    ));
                    return Ok(Exit::Usage);
                }
            },
            None => None,
        };
        let url = match handed_queue_url {
            Some(url) => agentfleet_config::QueueUrl {
                url: agentfleet_config::Secret::new(url),
                named_by: "the supervisor".to_owned(),
            },
            None => match agentfleet_config::queue_url(
                Some(&config),
                args.queue.queue_url.as_deref(),
                &env as &dyn Environment,
            ) {
                Ok(url) => url,
                Err(message) => {
                    log(message);
                    return Ok(Exit::Config);
                }
            },
        };
        let queue = match Queue::connect(url.url.expose()).await {
            Ok(queue) => queue,
            Err(error) => {
                log(format!("{error} (queue named by {})", url.named_by));
                return Ok(queue_exit(&error));
            }
        };
        let exit =
            agentfleet_fleet::worker::run(&config, &env, queue, options, stop, health, log.clone())
                .await;
        Ok(match exit {
            WorkerExit::Stopped { done, failed } => {
                let usage = agentfleet_fleet::resource_usage()
                    .map(|(cpu, rss)| {
                        format!(
                            "; cpu {:.2} s, peak rss {:.1} MB",
                            cpu.as_secs_f64(),
                            rss as f64 / 1_048_576.0
                        )
                    })
                    .unwrap_or_default();
                log(format!("stopped: {done} done, {failed} failed{usage}"));
                Exit::Ok
            }
            WorkerExit::Preflight(checks) => {
                log("a credential it needs is unusable: it took no task".to_owned());
                print_problems(&checks);
                Exit::Config
            }
            WorkerExit::ProbeRejected(errors) => {
                for error in &errors {
                    log(format!("probe refused: {error}"));
                }
                Exit::Rejected
            }
            WorkerExit::ProbeUnreachable(errors) => {
                for error in &errors {
                    log(format!("probe failed: {error}"));
                }
                Exit::Unavailable
            }
            WorkerExit::Runtime(error) => {
                log(error.to_string());
                Exit::Config
            }
            WorkerExit::Queue(error) => {
                log(error.to_string());
                queue_exit(&error)
            }
        })
    })
}

pub fn up(args: &UpArgs) -> anyhow::Result<Exit> {
    let config = match load_config(&args.queue.config, true, false) {
        Ok(Some(config)) => config,
        Ok(None) => return Ok(Exit::Config),
        Err(exit) => return Ok(exit),
    };
    let mut tasks = Vec::new();
    if let Some(path) = &args.tasks {
        let mut problems = Vec::new();
        tasks_from_file(&config, path, None, 0, &mut tasks, &mut problems)?;
        if !problems.is_empty() {
            report_problems(&problems);
            return Ok(Exit::Data);
        }
    }
    let url = match agentfleet_config::queue_url(
        Some(&config),
        args.queue.queue_url.as_deref(),
        &ProcessEnv,
    ) {
        Ok(url) => url,
        Err(message) => {
            eprintln!("agentfleet up: {message}");
            return Ok(Exit::Config);
        }
    };
    let config_path = std::fs::canonicalize(&config.path)
        .with_context(|| format!("cannot resolve {}", config.path.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let stop = stop_signal(false)?;
        // One up per config file per machine: `rollout` finds it by its control socket.
        let control = match ControlSocket::bind(&config_path).await {
            Ok(control) => control,
            Err(error) => {
                eprintln!("agentfleet up: {error}");
                return Ok(Exit::Failure);
            }
        };
        let (rollouts, rollout_requests) = mpsc::unbounded_channel();
        tokio::spawn(control.serve(rollouts.clone()));
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("cannot listen for SIGHUP")?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                let _ = rollouts.send(RolloutRequest {
                    env: None,
                    origin: "SIGHUP".to_owned(),
                    events: None,
                });
            }
        });
        let queue = match Queue::connect(url.url.expose()).await {
            Ok(queue) => queue,
            Err(error) => {
                eprintln!("agentfleet up: {error} (queue named by {})", url.named_by);
                return Ok(queue_exit(&error));
            }
        };
        if !tasks.is_empty() {
            let exit = submit_tasks(&queue, &tasks, Report::Count).await?;
            if exit != Exit::Ok {
                return Ok(exit);
            }
        }
        let options = UpOptions {
            exe: std::env::current_exe().context("cannot find the agentfleet binary")?,
            config_path,
            workers: args.workers.unwrap_or(config.fleet.workers as usize),
            concurrency: args
                .concurrency
                .unwrap_or(config.fleet.concurrency as usize),
            until_empty: args.until_empty,
            queue_url: url.url,
            host: agentfleet_fleet::hostname(),
            grace: config.fleet.shutdown_grace,
        };
        let terminal = std::io::stderr().is_terminal();
        let started = Instant::now();
        let last_line = std::sync::Mutex::new(Instant::now() - Duration::from_secs(60));
        let show = |progress: &Progress| {
            let line = progress_line(progress, started.elapsed());
            if terminal {
                eprint!("\r\x1b[2K{line}");
                let _ = std::io::stderr().flush();
            } else {
                let mut last = last_line.lock().unwrap_or_else(|p| p.into_inner());
                if last.elapsed() >= Duration::from_secs(5) {
                    *last = Instant::now();
                    eprintln!("{line}");
                }
            }
        };
        let log: agentfleet_fleet::Log = Arc::new(move |line: String| {
            if terminal {
                eprint!("\r\x1b[2K");
            }
            eprintln!("up: {line}");
        });
        let exit = agentfleet_fleet::supervise(
            &config,
            &ProcessEnv,
            &queue,
            options,
            stop,
            rollout_requests,
            show,
            log,
        )
        .await;
        if terminal {
            eprintln!();
        }
        Ok(match exit {
            UpExit::Finished(stats) => {
                                eprintln!(
                    "up: every task is finished after {:.2} s: {} done, {} failed, {} dead, {} cancelled",
                    started.elapsed().as_secs_f64(),
                    stats.done,
                    stats.failed,
                    stats.dead,
                    stats.cancelled
                );
                Exit::Ok
            }
            UpExit::Stopped => {
                eprintln!("up: stopped");
                Exit::Ok
            }
            UpExit::Preflight(checks) => {
                eprintln!("up: a credential the fleet needs is unusable; no worker was started");
                print_problems(&checks);
                Exit::Config
            }
            UpExit::NoWorkers(message) => {
                eprintln!("up: {message}");
                Exit::Failure
            }
            UpExit::Queue(error) => {
                eprintln!("up: {error}");
                queue_exit(&error)
            }
        })
    })
}

/// `[#######.....] 120 done, 0 failed, 380 pending, 32 running | 75.2/s | ETA 5s | 2 workers`
fn progress_line(progress: &Progress, elapsed: Duration) -> String {
    let stats = &progress.stats;
    let finished = stats.done + stats.failed + stats.dead + stats.cancelled;
    let total = finished + stats.pending + stats.leased;
    let width = 24usize;
    let filled = if total == 0 {
        width
    } else {
        (finished as usize * width / total as usize).min(width)
    };
    let eta = if progress.rate > 0.0 {
        format!(
            "ETA {:.0}s",
            (stats.pending + stats.leased) as f64 / progress.rate
        )
    } else {
        "ETA -".to_owned()
    };
    format!(
        "[{}{}] {} done, {} failed, {} pending, {} running | {:.1}/s | {eta} | {} workers | {:.0}s",
        "#".repeat(filled),
        ".".repeat(width - filled),
        stats.done,
        stats.failed + stats.dead,
        stats.pending,
        stats.leased,
        progress.rate,
        progress.running,
        elapsed.as_secs_f64()
    )
}

pub fn status(args: &StatusArgs) -> anyhow::Result<Exit> {
    let config = match load_config(&args.queue.config, false, args.json) {
        Ok(config) => config,
        Err(exit) => return Ok(exit),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let queue = match crate::commands::queue::open(&args.queue, config.as_ref()).await {
            Ok(queue) => queue,
            Err(exit) => return Ok(exit),
        };
        let status = match agentfleet_fleet::status(&queue).await {
            Ok(status) => status,
            Err(error) => {
                eprintln!("agentfleet status: {error}");
                return Ok(queue_exit(&error));
            }
        };
        let mut out = std::io::stdout().lock();
        if args.json {
            serde_json::to_writer_pretty(&mut out, &status)?;
            writeln!(out)?;
            return Ok(Exit::Ok);
        }
        let q = &status.queue;
        writeln!(
            out,
            "queue: {} pending, {} leased, {} done, {} failed, {} dead, {} cancelled",
            q.pending, q.leased, q.done, q.failed, q.dead, q.cancelled
        )?;
        if let Some(reason) = &status.waiting_because {
            writeln!(out, "waiting: {reason}")?;
        }
        writeln!(out)?;
        if status.workers.is_empty() {
            writeln!(out, "no workers are registered")?;
        }
        for worker in &status.workers {
            let generation = worker.generation.map_or_else(String::new, |generation| {
                format!("  generation {generation}")
            });
            writeln!(
                out,
                "{}  {}  pid {}  {}{generation}  in flight {}  done {}  failed {}",
                worker.name,
                worker.host,
                worker.pid,
                worker.state,
                worker.in_flight,
                worker.done,
                worker.failed
            )?;
            if let Some(reason) = &worker.reason {
                writeln!(out, "    why: {reason}")?;
            }
            if let Some(credentials) = worker.credentials.as_object() {
                for (provider, credential) in credentials {
                    writeln!(
                        out,
                        "    {provider}: {} {} (key generation {})",
                        credential["source"].as_str().unwrap_or("-"),
                        credential["fingerprint"].as_str().unwrap_or("-"),
                        credential["generation"]
                    )?;
                }
            }
        }
        for drift in &status.drift {
            writeln!(
                out,
                "\ndrift: provider {} is held with {} different keys:",
                drift.provider,
                drift.fingerprints.len()
            )?;
            for (fingerprint, workers) in &drift.fingerprints {
                writeln!(out, "    {fingerprint}: {}", workers.join(", "))?;
            }
        }
        Ok(Exit::Ok)
    })
}

pub fn rollout(args: &RolloutArgs) -> anyhow::Result<Exit> {
    let config = match load_config(&args.config, true, false) {
        Ok(Some(config)) => config,
        Ok(None) => return Ok(Exit::Config),
        Err(exit) => return Ok(exit),
    };
    let env = if args.keep_env {
        None
    } else {
        // Checked here first: a credential that fails its check is not even sent.
        let unusable: Vec<ProviderCheck> = agentfleet_config::check(&config, &ProcessEnv)
            .providers
            .into_iter()
            .filter(|check| !check.is_usable())
            .collect();
        if !unusable.is_empty() {
            eprintln!(
                "agentfleet rollout: a credential the fleet needs fails its check in this process"
            );
            print_problems(&unusable);
            eprintln!(
                "nothing was sent to the fleet (exit 78); run rollout where the new keys are set, \
                 or pass --keep-env to keep up's own"
            );
            return Ok(Exit::Config);
        }
        Some(
            agentfleet_fleet::sources::variables(&config)
                .into_iter()
                .filter_map(|name| {
                    let value = ProcessEnv.get(&name)?.into_string().ok()?;
                    Some((name, value))
                })
                .collect(),
        )
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(agentfleet_fleet::control::rollout(
        &config.path,
        env,
        |event| match event {
            RolloutEvent::Progress { message } => eprintln!("rollout: {message}"),
            RolloutEvent::Refused { message, problems } => {
                eprintln!("agentfleet rollout: refused: {message}");
                for problem in problems {
                    eprintln!("{problem}");
                }
            }
            RolloutEvent::Failed { message } => eprintln!("agentfleet rollout: failed: {message}"),
            RolloutEvent::Done { message, .. } => eprintln!("rollout: done: {message}"),
        },
    ));
    Ok(match outcome {
        Ok(RolloutEvent::Done { .. }) => Exit::Ok,
        Ok(RolloutEvent::Refused { problems, .. }) if !problems.is_empty() => Exit::Config,
        Ok(_) => Exit::Failure,
        Err(error @ ControlError::NotRunning { .. }) => {
            eprintln!("agentfleet rollout: {error}");
            Exit::Unavailable
        }
        Err(error) => {
            eprintln!("agentfleet rollout: {error}");
            Exit::Failure
        }
    })
}
