//! Hot rotation of file-sourced keys: a worker watches the directory of every file a key is read
//! from, and re-reads its keys whenever something there changes, and every so often besides.
//!
//! Directories, not files, are watched: Kubernetes updates a mounted secret by swapping the
//! `..data` symlink beside the files, and editors save by renaming a new file over the old one;
//! neither is seen by a watch on the file itself. A new key is taken only if it passes the same
//! checks as at preflight; a bad value is refused, loudly and once, and the last good key kept.
//! Requests already sent finish with the key they were sent with.

use std::collections::{BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agentfleet_agent::Runtime;
use agentfleet_config::{Config, Environment, Fingerprint, Severity, check_provider};
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::worker::Log;

/// How long to let a burst of changes (a symlink swap is several events) settle before reading.
const SETTLE: Duration = Duration::from_millis(20);

/// Watches the key files of `config` as `env` points to them, and swaps the keys of `runtime`'s
/// credentials when they change. Runs until dropped; returns at once when no key comes from a file.
pub async fn rotation_loop(
    config: Arc<Config>,
    env: Arc<agentfleet_config::FixedEnv>,
    runtime: Arc<Runtime>,
    every: Duration,
    log: Log,
) {
    // A zero interval would spin; a tenth of a second is already far more often than needed.
    let every = every.max(Duration::from_millis(100));
    let files = crate::sources::key_files(&config, env.as_ref());
    if files.is_empty() {
        return;
    }
    let (changed, mut changes) = tokio::sync::mpsc::unbounded_channel::<()>();
    // Kept so that `changes` stays open even when no watcher could be set up.
    let _open = changed.clone();
    let _watcher = watch_directories(&files, changed, &log, every);
    let mut refused: HashMap<String, String> = HashMap::new();
    loop {
        tokio::select! {
            _ = changes.recv() => {
                tokio::time::sleep(SETTLE).await;
                while changes.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(every) => {}
        }
        reread(&config, env.as_ref(), &runtime, &mut refused, &log);
    }
}

/// A watcher on the directory of each file, reporting every change but reads. `None`, after
/// saying why, when watching is impossible here; the periodic re-read still runs.
fn watch_directories(
    files: &[PathBuf],
    changed: tokio::sync::mpsc::UnboundedSender<()>,
    log: &Log,
    every: Duration,
) -> Option<RecommendedWatcher> {
    // A directory may hold much else (a SQLite queue beside the config, say): only changes to a
    // key file's own name, or to the `..`-prefixed entries through which the kubelet swaps a
    // mounted secret, call for a re-read.
    let names: BTreeSet<OsString> = files
        .iter()
        .filter_map(|file| file.file_name().map(OsStr::to_os_string))
        .collect();
    let concerns_a_key = move |path: &PathBuf| {
        path.file_name()
            .is_some_and(|name| names.contains(name) || name.as_encoded_bytes().starts_with(b".."))
    };
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let read_only = matches!(
            event.kind,
            EventKind::Access(kind) if kind != AccessKind::Close(AccessMode::Write)
        );
        if !read_only && (event.need_rescan() || event.paths.iter().any(&concerns_a_key)) {
            let _ = changed.send(());
        }
    };
    let fallback = |why: String| {
        log(format!(
            "{why}; key files are re-read every {every:?} instead"
        ))
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            fallback(format!("cannot watch key files for rotation ({error})"));
            return None;
        }
    };
    let directories: BTreeSet<PathBuf> = files
        .iter()
        .map(|file| match file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => Path::new(".").to_path_buf(),
        })
        .collect();
    for directory in &directories {
        if let Err(error) = watcher.watch(directory, RecursiveMode::NonRecursive) {
            fallback(format!("cannot watch {} ({error})", directory.display()));
        }
    }
    Some(watcher)
}

/// Reads every key again and swaps in those that changed and pass their checks. A refusal is
/// said once per distinct reason, not on every pass.
fn reread(
    config: &Config,
    env: &dyn Environment,
    runtime: &Runtime,
    refused: &mut HashMap<String, String>,
    log: &Log,
) {
    for credential in runtime.credentials() {
        // Keys only: an Entra token source re-reads itself before it expires.
        let Some(live) = &credential.live else {
            continue;
        };
        let Some(provider) = config.provider(&credential.provider) else {
            continue;
        };
        let check = check_provider(config, provider, env);
        let current = live.current();
        match check.key.as_ref().filter(|_| check.is_usable()) {
            Some(key) => {
                refused.remove(&provider.name);
                let fingerprint = Fingerprint::of(key.expose().trim());
                if fingerprint != current.fingerprint && !live.refused(fingerprint) {
                    let generation = live.replace(key.clone());
                    log(format!(
                        "provider {}: key rotated from {} to {fingerprint} (generation \
                         {generation}), read from {}",
                        provider.name, current.fingerprint, check.source
                    ));
                }
            }
            None => {
                let why = check
                    .problems
                    .iter()
                    .find(|problem| problem.severity == Severity::Error)
                    .map(|problem| format!("{}: {}", problem.code, problem.message))
                    .unwrap_or_default();
                if refused.get(&provider.name) != Some(&why) {
                    log(format!(
                        "WARNING provider {}: the key at {} is refused ({why}); keeping key {} \
                         (generation {}) until it is fixed",
                        provider.name, check.source, current.fingerprint, current.generation
                    ));
                    refused.insert(provider.name.clone(), why);
                }
            }
        }
    }
}
