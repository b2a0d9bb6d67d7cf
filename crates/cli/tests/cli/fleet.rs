//! The fleet end to end: real worker processes, the stand-in over HTTP, SQLite and PostgreSQL.
//! A worker without its key takes nothing; a worker with a revoked key gives its tasks back and
//! steps aside; a mounted secret updated in place reaches every worker, and a bad value is
//! refused; a key file rotated under load, the old key revoked, fails nothing, and neither does
//! a revoked key with a fallback; when every key is bad tasks wait, and drain once the key file
//! is fixed; a killed worker's task completes elsewhere; stopping `up` loses nothing, and killing
//! it leaves no worker running orphaned; a rollout under load moves every worker to a new key
//! one at a time and loses nothing, a rollout of a bad key changes nothing, and SIGHUP rolls
//! too; the health endpoint is ready only while the worker is healthy and drains on request;
//! and a canary credential appears in no worker's environment, output, status or database row.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentfleet_config::{Environment, Fingerprint, ProcessEnv};
use serde_json::Value;

use crate::probe::StandinProcess;
use crate::util::Workspace;

const GOOD: &str = "sk-standin-FleetGoodKey0123456789abcdef";
const BAD: &str = "sk-standin-FleetRevokedKey9876543210fedc";
const ROTATED: &str = "sk-standin-FleetRotatedKey0123456789abcd";

/// A queue for one test: a SQLite file in the workspace, or a fresh PostgreSQL schema.
enum Backend {
    Sqlite,
    Postgres { url: String, schema: String },
}

impl Backend {
    fn postgres() -> Option<Self> {
        let base = "postgres://postgres@127.0.0.1:5432/test";
        let schema = format!("af_fleet_{}_{:x}", std::process::id(), fastrand::u64(..));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let created = runtime.block_on(async {
            let pool = sqlx::PgPool::connect(base).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&pool)
                .await?;
            Ok::<_, sqlx::Error>(())
        });
        match created {
            Ok(()) => Some(Backend::Postgres {
                url: format!("{base}?options=-csearch_path%3D{schema}"),
                schema,
            }),
            Err(error) if ProcessEnv.get("CI").is_none() => {
                eprintln!(
                    "\n*** SKIPPING a PostgreSQL fleet test: {base} is unreachable ({error}) ***\n"
                );
                None
            }
            Err(error) => panic!("PostgreSQL at {base} is unreachable and CI is set: {error}"),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Backend::Postgres { schema, .. } = self {
            let schema = schema.clone();
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                runtime.block_on(async {
                    let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/test")
                        .await
                        .ok()?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {schema} CASCADE"
                    )))
                    .execute(&pool)
                    .await
                    .ok()
                })
            })
            .join();
        }
    }
}

/// A workspace with a config pointing at a running stand-in, and the backend's queue.
struct Fleet {
    workspace: Workspace,
    /// Kept running as long as the fleet.
    _standin: StandinProcess,
    backend: Backend,
    children: Vec<Child>,
}

impl Fleet {
    /// `key_source` is the TOML of the provider's `api_key`. The shutdown grace is ten
    /// minutes: a worker that stops must be done as soon as its tasks are, and one that waited
    /// out its grace instead would fail the test that stopped it.
    fn new(backend: Backend, key_source: &str, standin_args: &[&str]) -> Self {
        let workspace = Workspace::new();
        let keys = workspace.write("standin-keys", format!("{GOOD}\n"));
        let mut args = vec!["--keys-file", keys.to_str().unwrap()];
        args.extend_from_slice(standin_args);
        let standin = StandinProcess::start(&args);
        workspace.write(
            "agentfleet.toml",
            format!(
                "[providers.main]\nkind = \"standin\"\nbase_url = \"{}\"\napi_key = {key_source}\n\n\
                 [agents.writer]\nprovider = \"main\"\n\n\
                 [queue]\nurl = \"sqlite://queue.db\"\nlease_timeout = \"2s\"\nmax_attempts = 3\n\n\
                 [fleet]\nheartbeat_interval = \"300ms\"\nshutdown_grace = \"10m\"\n",
                standin.url
            ),
        );
        Self {
            workspace,
            _standin: standin,
            backend,
            children: Vec::new(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_agentfleet"));
        command
            .current_dir(self.workspace.path())
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin");
        if let Backend::Postgres { url, .. } = &self.backend {
            command.env("AGENTFLEET_QUEUE_URL", url);
        }
        command
    }

    fn run(&self, args: &[&str]) -> crate::util::Output {
        let output = self.command(args).output().expect("run agentfleet");
        crate::util::Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn submit(&self, count: usize) {
        let lines: String = (0..count)
            .map(|i| format!("{{\"task\": \"task {i}\", \"agent\": \"writer\"}}\n"))
            .collect();
        self.workspace.write("tasks.jsonl", lines);
        let output = self.run(&["submit", "--file", "tasks.jsonl"]);
        assert_eq!(output.code, 0, "{}", output.stderr);
    }

    /// Starts `agentfleet worker` with `key` in STANDIN_KEY (or none).
    fn worker(&mut self, name: &str, key: Option<&str>) -> usize {
        let mut command = self.command(&["worker", "--name", name, "--concurrency", "4"]);
        if let Some(key) = key {
            command.env("STANDIN_KEY", key);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start worker");
        self.children.push(child);
        self.children.len() - 1
    }

    /// Starts `agentfleet up` with 2 workers of concurrency 4 and the variables `env`, and waits
    /// until `done` tasks are finished.
    fn up_under_way(&mut self, env: &[(&str, &str)], done: u64) {
        let mut command = self.command(&["up", "--workers", "2", "--concurrency", "4"]);
        command.envs(env.iter().copied());
        let up = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start up");
        self.children.push(up);
        self.wait_for(Duration::from_secs(30), "work under way", |s| {
            s["queue"]["done"].as_u64().unwrap() >= done
        });
    }

    /// Waits until `total` tasks are done, and asserts that none failed or went dead.
    fn all_done_none_failed(&self, total: u64) -> Value {
        let status = self.wait_for(Duration::from_secs(60), "every task done", |s| {
            s["queue"]["done"] == total
        });
        let queue = &status["queue"];
        assert_eq!(
            (&queue["failed"], &queue["dead"]),
            (&Value::from(0), &Value::from(0)),
            "{status:#}"
        );
        status
    }

    fn status(&self) -> Value {
        let output = self.run(&["status", "--json"]);
        assert_eq!(output.code, 0, "{}", output.stderr);
        output.json()
    }

    /// Polls `status` until `condition` holds, for at most `within`.
    fn wait_for(&self, within: Duration, what: &str, condition: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let status = self.status();
            if condition(&status) {
                return status;
            }
            assert!(
                started.elapsed() < within,
                "timed out waiting for {what}: {status:#}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn signal(&self, index: usize, signal: &str) {
        Command::new("kill")
            .args([signal, &self.children[index].id().to_string()])
            .status()
            .unwrap();
    }

    /// SIGTERM to every worker still running; returns their exit codes and stderr.
    fn stop_all(&mut self) -> Vec<(Option<i32>, String)> {
        for index in 0..self.children.len() {
            self.signal(index, "-TERM");
        }
        self.children
            .drain(..)
            .map(|child| {
                let output = child.wait_with_output().unwrap();
                (
                    output.status.code(),
                    String::from_utf8_lossy(&output.stderr).into_owned(),
                )
            })
            .collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn each_backend(test: impl Fn(Backend)) {
    test(Backend::Sqlite);
    if let Some(postgres) = Backend::postgres() {
        test(postgres);
    }
}

fn worker_named<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == name)
        .unwrap_or(&Value::Null)
}

#[test]
fn a_worker_without_its_key_refuses_to_start_and_leases_nothing() {
    each_backend(|backend| {
        let mut fleet = Fleet::new(backend, "{ env = \"STANDIN_KEY\" }", &[]);
        fleet.submit(3);
        let index = fleet.worker("keyless", None);
        let output = fleet.children.remove(index).wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(78), "{stderr}");
        assert!(stderr.contains("error[missing]: STANDIN_KEY is not set in this process (provider main, used by agent writer)"), "{stderr}");
        let status = fleet.status();
        assert_eq!(status["queue"]["pending"], 3);
        assert_eq!(
            status["workers"],
            serde_json::json!([]),
            "it never registered"
        );
        let results = fleet.run(&["results", "--json"]).json();
        assert!(
            results
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["attempts"] == 0)
        );
    });
}

#[test]
fn one_revoked_worker_of_three_loses_no_task_and_shows_drift() {
    each_backend(|backend| {
        let mut fleet = Fleet::new(
            backend,
            "{ env = \"STANDIN_KEY\" }",
            &["--latency-ms", "20"],
        );
        fleet.submit(60);
        fleet.worker("bad", Some(BAD));
        // Let the bad worker meet its refusal first: it gives its tasks back and steps aside.
        fleet.wait_for(Duration::from_secs(30), "the bad worker quarantined", |s| {
            worker_named(s, "bad")["state"] == "quarantined"
        });
        fleet.worker("good-1", Some(GOOD));
        fleet.worker("good-2", Some(GOOD));
        let status = fleet.wait_for(Duration::from_secs(60), "every task done", |s| {
            s["queue"]["done"] == 60
        });
        assert_eq!(
            (
                &status["queue"]["failed"],
                &status["queue"]["dead"],
                &status["queue"]["pending"]
            ),
            (&Value::from(0), &Value::from(0), &Value::from(0))
        );
        let bad = worker_named(&status, "bad");
        assert_eq!(bad["state"], "quarantined", "{status:#}");
        let reason = bad["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("main auth-rejected (HTTP 401) with key "),
            "{reason}"
        );
        assert!(
            reason.contains(&Fingerprint::of(BAD).to_string()),
            "{reason}"
        );
        assert_eq!(bad["done"], 0);
        assert_eq!(bad["failed"], 0, "a task given back is no failed attempt");
        assert_eq!(
            bad["credentials"]["main"]["fingerprint"],
            Fingerprint::of(BAD).to_string()
        );
        let drift = &status["drift"][0];
        assert_eq!(drift["provider"], "main");
        assert_eq!(
            drift["fingerprints"][Fingerprint::of(BAD).to_string()],
            serde_json::json!(["bad"])
        );
        assert_eq!(
            drift["fingerprints"][Fingerprint::of(GOOD).to_string()],
            serde_json::json!(["good-1", "good-2"])
        );
        let results = fleet.run(&["results", "--json", "--limit", "100"]).json();
        assert!(
            results
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["attempts"] == 1),
            "a released attempt is not counted"
        );
        let text = fleet.run(&["status"]).stdout;
        assert!(
            text.contains("drift: provider main is held with 2 different keys"),
            "{text}"
        );
        for (code, stderr) in fleet.stop_all() {
            assert_eq!(code, Some(0), "{stderr}");
        }
        assert_eq!(
            fleet.status()["workers"],
            serde_json::json!([]),
            "stopped workers deregister"
        );
    });
}

#[test]
fn when_every_key_is_bad_tasks_wait_and_drain_once_the_key_file_is_fixed() {
    each_backend(|backend| {
        let mut fleet = Fleet::new(backend, "{ file = \"key\" }", &[]);
        fleet.workspace.write("key", format!("{BAD}\n"));
        fleet.submit(10);
        fleet.worker("one", None);
        fleet.worker("two", None);
        let status = fleet.wait_for(Duration::from_secs(30), "both workers quarantined", |s| {
            let workers = s["workers"].as_array().unwrap();
            workers.len() == 2 && workers.iter().all(|w| w["state"] == "quarantined")
        });
        assert_eq!(
            status["queue"]["pending"].as_u64().unwrap()
                + status["queue"]["leased"].as_u64().unwrap(),
            10
        );
        assert_eq!(
            (&status["queue"]["failed"], &status["queue"]["dead"]),
            (&Value::from(0), &Value::from(0))
        );
        let waiting = status["waiting_because"].as_str().unwrap();
        assert!(
            waiting.starts_with("every worker is quarantined"),
            "{waiting}"
        );
        assert!(
            waiting.contains(&Fingerprint::of(BAD).to_string()),
            "{waiting}"
        );

        fleet.workspace.write("key", format!("{GOOD}\n"));
        let status = fleet.wait_for(
            Duration::from_secs(30),
            "the queue drained and both workers healthy",
            |s| {
                s["queue"]["done"] == 10
                    && ["one", "two"]
                        .iter()
                        .all(|name| worker_named(s, name)["state"] == "healthy")
            },
        );
        for name in ["one", "two"] {
            let worker = worker_named(&status, name);
            assert_eq!(worker["state"], "healthy", "{status:#}");
            assert_eq!(
                worker["credentials"]["main"]["fingerprint"],
                Fingerprint::of(GOOD).to_string()
            );
            assert_eq!(
                worker["credentials"]["main"]["generation"], 2,
                "the re-read key is a new generation"
            );
        }
        assert_eq!(status["queue"]["failed"], 0);
        fleet.stop_all();
    });
}

#[test]
fn a_key_file_rotated_under_load_with_the_old_key_revoked_fails_nothing() {
    each_backend(|backend| {
        let mut fleet = Fleet::new(backend, "{ file = \"key\" }", &["--latency-ms", "100"]);
        fleet.workspace.write("key", format!("{GOOD}\n"));
        fleet.submit(300);
        fleet.up_under_way(&[], 40);

        // The provider takes the new key, the secret file gets it, the old key is revoked.
        fleet
            .workspace
            .replace("standin-keys", format!("{GOOD}\n{ROTATED}\n"));
        fleet.workspace.write("key", format!("{ROTATED}\n"));
        std::thread::sleep(Duration::from_millis(300));
        fleet
            .workspace
            .replace("standin-keys", format!("{ROTATED}\n"));

        let status = fleet.all_done_none_failed(300);
        let workers = status["workers"].as_array().unwrap();
        assert_eq!(workers.len(), 2, "{status:#}");
        for worker in workers {
            assert_eq!(worker["state"], "healthy", "{status:#}");
            assert_eq!(
                worker["credentials"]["main"]["fingerprint"],
                Fingerprint::of(ROTATED).to_string(),
                "{status:#}"
            );
            assert_eq!(worker["credentials"]["main"]["generation"], 2);
        }
        let results = fleet.run(&["results", "--json"]).json();
        assert!(
            results
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["attempts"] == 1),
            "no task was run twice: the refused request was retried with the new key"
        );
        let (code, stderr) = fleet.stop_all().remove(0);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(!stderr.contains("quarantin"), "{stderr}");
    });
}

/// Writes `key` into `secrets/api-key` the way the kubelet updates a mounted secret: a new
/// timestamped directory, then the `..data` symlink swapped to it by an atomic rename.
fn kubelet_write(workspace: &crate::util::Workspace, generation: u32, key: &str) {
    use std::os::unix::fs::symlink;
    let secrets = workspace.path().join("secrets");
    let version = format!("..2026_11_29_{generation:02}");
    std::fs::create_dir_all(secrets.join(&version)).unwrap();
    std::fs::write(secrets.join(&version).join("api-key"), key).unwrap();
    let _ = std::fs::remove_file(secrets.join("..data_tmp"));
    symlink(&version, secrets.join("..data_tmp")).unwrap();
    std::fs::rename(secrets.join("..data_tmp"), secrets.join("..data")).unwrap();
    if !secrets.join("api-key").exists() {
        symlink("..data/api-key", secrets.join("api-key")).unwrap();
    }
}

#[test]
fn a_mounted_secret_updated_in_place_is_picked_up_by_every_worker_and_a_bad_value_refused() {
    each_backend(|backend| {
        let mut fleet = Fleet::new(
            backend,
            "{ file = \"secrets/api-key\" }",
            &["--latency-ms", "100"],
        );
        // Only the directory watch can explain a quick change: the periodic re-read is an hour.
        let config = fleet.workspace.path().join("agentfleet.toml");
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("[fleet]\n", "[fleet]\nkey_reread_interval = \"1h\"\n");
        fleet.workspace.write("agentfleet.toml", text);
        fleet
            .workspace
            .replace("standin-keys", format!("{GOOD}\n{ROTATED}\n"));
        kubelet_write(&fleet.workspace, 1, GOOD);
        fleet.submit(300);
        fleet.up_under_way(&[], 20);

        // Both keys are accepted, so no refusal can be what moves the workers to the new one.
        kubelet_write(&fleet.workspace, 2, &format!("{ROTATED}\n"));
        let rotated = Fingerprint::of(ROTATED).to_string();
        fleet.wait_for(
            Duration::from_secs(10),
            "every worker on the new key",
            |s| {
                let workers = s["workers"].as_array().unwrap();
                workers.len() == 2
                    && workers.iter().all(|w| {
                        w["credentials"]["main"]["fingerprint"] == rotated.as_str()
                            && w["credentials"]["main"]["generation"] == 2
                    })
            },
        );

        // A bad value is refused and the last good key kept.
        kubelet_write(&fleet.workspace, 3, "\n");
        std::thread::sleep(Duration::from_millis(500));
        fleet
            .workspace
            .replace("standin-keys", format!("{ROTATED}\n"));
        let status = fleet.all_done_none_failed(300);
        for worker in status["workers"].as_array().unwrap() {
            assert_eq!(
                worker["credentials"]["main"]["fingerprint"],
                rotated.as_str()
            );
            assert_eq!(worker["credentials"]["main"]["generation"], 2);
        }
        let (code, stderr) = fleet.stop_all().remove(0);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(
            stderr
                .matches(&format!(
                    "key rotated from {} to {rotated} (generation 2), read from \
                     file:secrets/api-key",
                    Fingerprint::of(GOOD)
                ))
                .count(),
            2,
            "{stderr}"
        );
        let refusals: Vec<&str> = stderr
            .lines()
            .filter(|line| line.contains("WARNING provider main: the key at file:secrets/api-key"))
            .collect();
        assert_eq!(refusals.len(), 2, "once per worker: {stderr}");
        assert!(
            refusals
                .iter()
                .all(|line| line.contains("empty")
                    && line.contains(&format!("keeping key {rotated}"))),
            "{refusals:#?}"
        );
        assert!(!stderr.contains("quarantin"), "{stderr}");
    });
}

#[test]
fn a_revoked_key_falls_back_to_the_second_key_under_load_and_fails_nothing() {
    each_backend(|backend| {
        let mut fleet = Fleet::new(
            backend,
            "{ env = \"STANDIN_KEY\" }",
            &["--latency-ms", "100"],
        );
        let config = fleet.workspace.path().join("agentfleet.toml");
        let text = std::fs::read_to_string(&config).unwrap().replace(
            "api_key = { env = \"STANDIN_KEY\" }\n",
            "api_key = { env = \"STANDIN_KEY\" }\napi_key_fallback = { env = \"STANDIN_KEY_2\" }\n",
        );
        fleet.workspace.write("agentfleet.toml", text);
        fleet
            .workspace
            .replace("standin-keys", format!("{GOOD}\n{ROTATED}\n"));
        fleet.submit(200);
        fleet.up_under_way(&[("STANDIN_KEY", GOOD), ("STANDIN_KEY_2", ROTATED)], 30);

        // The first key is revoked (regenerated, say); the second stays valid.
        fleet
            .workspace
            .replace("standin-keys", format!("{ROTATED}\n"));

        let status = fleet.all_done_none_failed(200);
        for worker in status["workers"].as_array().unwrap() {
            assert_eq!(worker["state"], "healthy", "{status:#}");
            assert_eq!(
                worker["credentials"]["main"]["fingerprint"],
                Fingerprint::of(ROTATED).to_string(),
                "{status:#}"
            );
        }
        let (code, stderr) = fleet.stop_all().remove(0);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(!stderr.contains("quarantin"), "{stderr}");
    });
}

#[test]
fn a_worker_killed_mid_task_loses_its_task_to_another() {
    each_backend(|backend| {
        let mut fleet = Fleet::new(
            backend,
            "{ env = \"STANDIN_KEY\" }",
            &["--latency-ms", "1500"],
        );
        fleet.submit(4);
        let doomed = fleet.worker("doomed", Some(GOOD));
        fleet.wait_for(
            Duration::from_secs(20),
            "the doomed worker to hold tasks",
            |s| s["queue"]["leased"] == 4,
        );
        fleet.signal(doomed, "-KILL");
        fleet.worker("survivor", Some(GOOD));
        let status = fleet.wait_for(Duration::from_secs(40), "every task done elsewhere", |s| {
            s["queue"]["done"] == 4 && worker_named(s, "survivor")["done"] == 4
        });
        assert_eq!(worker_named(&status, "survivor")["done"], 4);
        let results = fleet.run(&["results", "--json"]).json();
        assert!(
            results
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["attempts"] == 2),
            "each ran again after the lease expired"
        );
        fleet.stop_all();
    });
}

#[test]
fn stopping_up_under_load_loses_nothing() {
    each_backend(|backend| {
        let mut fleet = Fleet::new(
            backend,
            "{ env = \"STANDIN_KEY\" }",
            &["--latency-ms", "300"],
        );
        fleet.submit(200);
        fleet.up_under_way(&[("STANDIN_KEY", GOOD)], 8);
        let (code, stderr) = fleet.stop_all().remove(0);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stderr.contains("up: stopped"), "{stderr}");
        let status = fleet.status();
        let queue = &status["queue"];
        assert_eq!(
            queue["leased"], 0,
            "in-flight tasks were finished or given back: {status:#}"
        );
        assert_eq!(
            queue["done"].as_u64().unwrap() + queue["pending"].as_u64().unwrap(),
            200,
            "{status:#}"
        );
        assert_eq!(
            (&queue["failed"], &queue["dead"]),
            (&Value::from(0), &Value::from(0))
        );
        assert_eq!(status["workers"], serde_json::json!([]));
    });
}

#[test]
fn workers_of_a_killed_supervisor_drain_and_stop_instead_of_running_orphaned() {
    let mut fleet = Fleet::new(
        Backend::Sqlite,
        "{ env = \"STANDIN_KEY\" }",
        &["--latency-ms", "200"],
    );
    fleet.submit(100);
    fleet.up_under_way(&[("STANDIN_KEY", GOOD)], 4);
    let status = fleet.status();
    let pids: Vec<String> = status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|worker| worker["pid"].to_string())
        .collect();
    assert_eq!(pids.len(), 2, "{status:#}");
    fleet.signal(0, "-KILL");
    let status = fleet.wait_for(Duration::from_secs(30), "the workers to stop", |s| {
        s["workers"] == serde_json::json!([])
    });
    assert_eq!(status["queue"]["leased"], 0, "{status:#}");
    assert_eq!(status["queue"]["failed"], 0, "{status:#}");
    let started = Instant::now();
    while pids.iter().any(|pid| {
        Command::new("kill")
            .args(["-0", pid])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a worker outlived its supervisor: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_canary_credential_is_in_no_worker_environment_output_status_or_row() {
    let canary = "sk-standin-CANARYfleet0123456789abcdefXYZ";
    let fallback = "sk-standin-FALLBACKcanary0123456789abcdef";
    let mut fleet = Fleet::new(
        Backend::Sqlite,
        "{ env = \"STANDIN_KEY\" }\napi_key_fallback = { env = \"STANDIN_KEY_2\" }",
        &[],
    );
    fleet
        .workspace
        .replace("standin-keys", format!("{canary}\n"));
    std::thread::sleep(Duration::from_millis(500));
    fleet.submit(5);
    let up = fleet
        .command(&["up", "--workers", "2", "--concurrency", "2"])
        .env("STANDIN_KEY", canary)
        .env("STANDIN_KEY_2", fallback)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    fleet.children.push(up);
    let status = fleet.wait_for(
        Duration::from_secs(30),
        "two workers and the tasks done",
        |s| s["workers"].as_array().unwrap().len() == 2 && s["queue"]["done"] == 5,
    );
    for worker in status["workers"].as_array().unwrap() {
        let pid = worker["pid"].as_u64().unwrap();
        let environ =
            std::fs::read(format!("/proc/{pid}/environ")).expect("the worker's environment");
        let environ = String::from_utf8_lossy(&environ);
        assert!(
            !environ.contains(canary)
                && !environ.contains(fallback)
                && !environ.contains("STANDIN_KEY"),
            "worker {pid} has the key in its environment"
        );
        assert!(
            environ.contains("PATH="),
            "it got the allow-listed variables"
        );
    }
    // A rollout hands the same secrets over the control socket to new workers.
    let rollout = fleet
        .command(&["rollout"])
        .env("STANDIN_KEY", canary)
        .env("STANDIN_KEY_2", fallback)
        .output()
        .unwrap();
    assert_eq!(rollout.status.code(), Some(0));
    let rolled = fleet.wait_for(
        Duration::from_secs(30),
        "two workers of generation 2",
        |s| {
            let workers = live_workers(s);
            workers.len() == 2 && workers.iter().all(|w| w.2 == 2)
        },
    );
    for worker in rolled["workers"].as_array().unwrap() {
        let pid = worker["pid"].as_u64().unwrap();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let environ = String::from_utf8_lossy(&environ);
        assert!(
            !environ.contains(canary) && !environ.contains(fallback),
            "a rolled-out worker {pid} has the key in its environment"
        );
    }
    let rollout_output = String::from_utf8_lossy(&rollout.stderr).into_owned()
        + &String::from_utf8_lossy(&rollout.stdout);
    let status_text = fleet.run(&["status"]).stdout + &fleet.run(&["status", "--json"]).stdout;
    let results = fleet.run(&["results", "--json"]).stdout;
    let (_, stderr) = fleet.stop_all().remove(0);
    let database: Vec<u8> = ["queue.db", "queue.db-wal"]
        .iter()
        .filter_map(|file| std::fs::read(fleet.workspace.path().join(file)).ok())
        .flatten()
        .collect();
    for (what, text) in [
        ("status", status_text),
        ("results", results),
        ("rollout's output", rollout_output),
        ("up's output", stderr),
        (
            "the database",
            String::from_utf8_lossy(&database).into_owned(),
        ),
    ] {
        assert!(
            !text.contains(canary)
                && !text.contains("CANARYfleet")
                && !text.contains("FALLBACKcanary"),
            "the canary appears in {what}"
        );
    }
    assert!(
        status["workers"][0]["credentials"]["main"]["fingerprint"]
            == Fingerprint::of(canary).to_string()
    );
}

/// The live workers' (name, state, generation, fingerprint of `main`).
fn live_workers(status: &Value) -> Vec<(String, String, u64, String)> {
    status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["state"] != "gone")
        .map(|w| {
            (
                w["name"].as_str().unwrap_or_default().to_owned(),
                w["state"].as_str().unwrap_or_default().to_owned(),
                w["generation"].as_u64().unwrap_or_default(),
                w["credentials"]["main"]["fingerprint"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_rollout_under_load_moves_every_worker_to_the_new_key_one_at_a_time_and_loses_nothing() {
    each_backend(|backend| {
        let mut fleet = Fleet::new(
            backend,
            "{ env = \"STANDIN_KEY\" }",
            &["--latency-ms", "300"],
        );
        fleet
            .workspace
            .replace("standin-keys", format!("{GOOD}\n{ROTATED}\n"));
        fleet.submit(300);
        fleet.up_under_way(&[("STANDIN_KEY", GOOD)], 20);

        // The variable can only change for new processes: roll them, with the new key set
        // where the rollout runs.
        let mut rollout = fleet
            .command(&["rollout"])
            .env("STANDIN_KEY", ROTATED)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut fewest_healthy = usize::MAX;
        let mut seen_half_done = false;
        let started = Instant::now();
        while rollout.try_wait().unwrap().is_none() {
            let workers = live_workers(&fleet.status());
            fewest_healthy =
                fewest_healthy.min(workers.iter().filter(|w| w.1 == "healthy").count());
            let generations: std::collections::BTreeSet<u64> =
                workers.iter().map(|w| w.2).collect();
            seen_half_done |= generations.len() > 1;
            assert!(started.elapsed() < Duration::from_secs(60), "rollout hangs");
        }
        let output = rollout.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "every credential passes its checks: main {} (env:STANDIN_KEY)",
                Fingerprint::of(ROTATED)
            )),
            "{stderr}"
        );
        assert!(stderr.contains("-1-g2 is healthy; draining "), "{stderr}");
        assert!(
            stderr.contains("done: 2 workers run generation 2"),
            "{stderr}"
        );
        assert!(
            fewest_healthy >= 1,
            "the healthy count dropped by more than one: {fewest_healthy}"
        );
        assert!(seen_half_done, "status showed the generations side by side");

        // Every worker holds the new key: the old one can go.
        fleet
            .workspace
            .replace("standin-keys", format!("{ROTATED}\n"));
        let status = fleet.all_done_none_failed(300);
        let workers = live_workers(&status);
        assert_eq!(workers.len(), 2, "{status:#}");
        for (name, state, generation, fingerprint) in &workers {
            assert!(name.ends_with("-g2"), "{name}");
            assert_eq!(state, "healthy");
            assert_eq!(*generation, 2);
            assert_eq!(*fingerprint, Fingerprint::of(ROTATED).to_string());
        }
        let text = fleet.run(&["status"]).stdout;
        assert!(text.contains("healthy  generation 2"), "{text}");
        let (code, stderr) = fleet.stop_all().remove(0);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(!stderr.contains("quarantin"), "{stderr}");
    });
}

#[test]
fn a_rollout_of_a_bad_key_changes_nothing_and_sighup_rolls_with_the_fleets_own() {
    let mut fleet = Fleet::new(
        Backend::Sqlite,
        "{ env = \"STANDIN_KEY\" }",
        &["--latency-ms", "100"],
    );
    fleet.submit(200);
    fleet.up_under_way(&[("STANDIN_KEY", GOOD)], 10);
    let generations = |fleet: &Fleet| -> Vec<(u64, String)> {
        live_workers(&fleet.status())
            .into_iter()
            .map(|w| (w.2, w.3))
            .collect()
    };
    let before = vec![(1, Fingerprint::of(GOOD).to_string()); 2];

    // Empty where the rollout runs: refused there, nothing sent.
    let mut command = fleet.command(&["rollout"]);
    command.env("STANDIN_KEY", "");
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("error[empty]: STANDIN_KEY"), "{stderr}");
    assert!(stderr.contains("nothing was sent to the fleet"), "{stderr}");
    assert_eq!(generations(&fleet), before);

    // Well formed, but the provider refuses it: the first replacement's probe fails, and the
    // old workers keep serving.
    let mut command = fleet.command(&["rollout"]);
    command.env("STANDIN_KEY", BAD);
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("did not start: the provider refused the new key when it probed")
            && stderr.contains("keeps running on generation 1"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&Fingerprint::of(BAD).to_string()),
        "the refusal names the key: {stderr}"
    );
    assert!(!stderr.contains(BAD), "{stderr}");
    assert_eq!(generations(&fleet), before);

    // SIGHUP rolls with the credentials the fleet runs with.
    fleet.signal(0, "-HUP");
    let status = fleet.wait_for(Duration::from_secs(30), "generation 3 everywhere", |s| {
        let workers = live_workers(s);
        workers.len() == 2 && workers.iter().all(|w| w.2 == 3 && w.1 == "healthy")
    });
    for (_, _, _, fingerprint) in live_workers(&status) {
        assert_eq!(fingerprint, Fingerprint::of(GOOD).to_string());
    }

    // One up per config: a second is refused, and rollout finds none for another config.
    let second = fleet.run(&["up"]);
    assert_eq!(second.code, 1, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("another agentfleet up is already running for this config"),
        "{}",
        second.stderr
    );
    let elsewhere = Workspace::new();
    elsewhere.write("agentfleet.toml", "[providers]\n");
    let output = crate::util::run(&mut elsewhere.agentfleet(&["rollout", "--keep-env"]));
    assert_eq!(output.code, 69, "{}", output.stderr);
    assert!(
        output
            .stderr
            .contains("no agentfleet up is running for this config on this machine"),
        "{}",
        output.stderr
    );

    let status = fleet.all_done_none_failed(200);
    assert_eq!(status["queue"]["leased"], 0);
    let (code, stderr) = fleet.stop_all().remove(0);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("asked by SIGHUP"), "{stderr}");
    assert!(!stderr.contains(BAD) && !stderr.contains(GOOD), "{stderr}");
}

/// `GET path` over loopback: the status code and the body.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the health endpoint");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let code = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// Starts a worker with a health endpoint on a free loopback port; returns its address once
/// the worker says where it serves, and the rest of its stderr as it comes.
fn worker_with_health(
    fleet: &mut Fleet,
    name: &str,
    key: &str,
) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = fleet
        .command(&[
            "worker",
            "--name",
            name,
            "--concurrency",
            "4",
            "--health-addr",
            "127.0.0.1:0",
        ])
        .env("STANDIN_KEY", key)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    fleet.children.push(child);
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line);
        }
    });
    let first = received
        .recv_timeout(Duration::from_secs(20))
        .expect("the worker's first line");
    let addr = first
        .split("health endpoint on http://")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("/readyz"))
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    (addr, received)
}

#[test]
fn the_health_endpoint_is_ready_only_while_healthy_and_drain_answers_once_drained() {
    let mut fleet = Fleet::new(
        Backend::Sqlite,
        "{ env = \"STANDIN_KEY\" }",
        &["--latency-ms", "300"],
    );
    // A refused key: the worker registers, meets the refusal, and is no longer ready.
    let (bad, _) = worker_with_health(&mut fleet, "bad", BAD);
    fleet.submit(1);
    fleet.wait_for(Duration::from_secs(30), "the bad worker quarantined", |s| {
        worker_named(s, "bad")["state"] == "quarantined"
    });
    let (code, body) = http_get(&bad, "/readyz");
    assert_eq!(code, 503, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["state"], "quarantined");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains(&Fingerprint::of(BAD).to_string()),
        "{body}"
    );
    assert_eq!(http_get(&bad, "/livez").0, 200);

    // A good key: ready; then, mid-work, /drain answers only once the worker has let its
    // tasks finish or given them back, and the worker exits cleanly.
    let (good, _) = worker_with_health(&mut fleet, "good", GOOD);
    let started = Instant::now();
    while http_get(&good, "/readyz").0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(20), "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    fleet.submit(40);
    fleet.wait_for(Duration::from_secs(20), "work under way", |s| {
        worker_named(s, "good")["done"].as_u64().unwrap_or(0) >= 4
    });
    let (code, body) = http_get(&good, "/drain");
    assert_eq!(code, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["state"], "stopped", "{body}");
    assert_eq!(body["in_flight"], 0, "{body}");
    let status = fleet.status();
    assert!(worker_named(&status, "good").is_null(), "it deregistered");
    assert_eq!(status["queue"]["leased"], 0, "{status:#}");
    assert_eq!(status["queue"]["failed"], 0, "{status:#}");
    let good_child = fleet.children.remove(1);
    let output = good_child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    fleet.stop_all();
}
