//! The queue commands end to end: submitting one task or a file of them, idempotent keys, bad
//! lines, results and stats in both formats, cancelling, and a queue URL whose password must
//! never be printed.

use agentfleet_config::{Environment, ProcessEnv};

use crate::util::{Output, Workspace, run};

const CONFIG: &str = r#"
[providers.main]
kind = "standin"

[agents.writer]
provider = "main"

[agents.critic]
provider = "main"

[teams.review]
members = ["writer", "critic"]
termination = { max_messages = 4 }

[queue]
url = "sqlite://tasks.db"
max_attempts = 3
"#;

fn queue_commands(workspace: &Workspace, extra_env: &[(&str, &str)]) {
    let command = |args: &[&str]| -> Output {
        let mut command = workspace.agentfleet(args);
        for (name, value) in extra_env {
            command.env(name, value);
        }
        run(&mut command)
    };
    let one = command(&[
        "submit",
        "--team",
        "review",
        "--task",
        "Write a haiku.",
        "--key",
        "haiku-1",
    ]);
    assert_eq!(one.code, 0, "{}{}", one.stdout, one.stderr);
    let id = one.stdout.trim().to_owned();
    assert_eq!(id.len(), 36, "one uuid: {}", one.stdout);
    let again = command(&[
        "submit",
        "--team",
        "review",
        "--task",
        "Write a haiku.",
        "--key",
        "haiku-1",
    ]);
    assert_eq!(again.stdout.trim(), id, "the same key gives the same task");
    assert!(again.stderr.contains("already existed"));

    workspace.write("tasks.jsonl", "{\"task\": \"a\", \"agent\": \"writer\"}\n\n{\"task\": \"b\", \"key\": \"b-1\", \"priority\": 2, \"metadata\": {\"ticket\": 7}}\n");
    let file = command(&[
        "submit",
        "--file",
        "tasks.jsonl",
        "--agent",
        "critic",
        "--json",
    ]);
    assert_eq!(file.code, 0, "{}", file.stderr);
    let submitted = file.json();
    assert_eq!(submitted.as_array().unwrap().len(), 2);
    assert_eq!(submitted[0]["created"], true);

    workspace.write("bad.jsonl", "{\"task\": \"fine\", \"agent\": \"writer\"}\n{\"task\": \"x\", \"agent\": \"writr\"}\nnot json\n");
    let bad = command(&["submit", "--file", "bad.jsonl"]);
    assert_eq!(bad.code, 65, "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("bad.jsonl:2: there is no agent named writr"),
        "{}",
        bad.stderr
    );
    assert!(
        bad.stderr.contains("bad.jsonl:3: not a task line"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("nothing was submitted"));

    let stats = command(&["queue", "stats", "--json"]);
    assert_eq!(stats.code, 0, "{}", stats.stderr);
    let stats = stats.json();
    assert_eq!(
        stats["pending"], 3,
        "the bad file submitted nothing: {stats}"
    );
    assert!(stats["oldest_pending_ms"].as_i64().is_some());

    let results = command(&["results", "--json"]).json();
    let records = results.as_array().unwrap();
    assert_eq!(records.len(), 3);
    let critic = records.iter().find(|r| r["task"] == "b").unwrap();
    assert_eq!(critic["target"], serde_json::json!({"agent": "critic"}));
    assert_eq!(critic["state"], "pending");
    assert_eq!(critic["max_attempts"], 3, "from [queue] max_attempts");
    assert_eq!(critic["needs"], serde_json::json!(["main"]));
    assert_eq!(critic["metadata"]["ticket"], 7);
    assert_eq!(critic["priority"], 2);

    let cancelled = command(&["cancel", &id]);
    assert_eq!(cancelled.code, 0, "{}", cancelled.stderr);
    let twice = command(&["cancel", &id]);
    assert_eq!(twice.code, 1);
    assert!(
        twice.stderr.contains("is already cancelled"),
        "{}",
        twice.stderr
    );
    let table = command(&["results", "--state", "cancelled"]);
    assert!(table.stdout.starts_with("ID "), "{}", table.stdout);
    assert!(table.stdout.contains(&id) && table.stdout.contains("team review"));
    let unknown = command(&["results", "--state", "finished"]);
    assert_eq!(unknown.code, 2);
}

#[test]
fn queue_commands_on_sqlite() {
    let workspace = Workspace::new();
    workspace.write("agentfleet.toml", CONFIG);
    queue_commands(&workspace, &[]);
    assert!(
        workspace.path().join("tasks.db").exists(),
        "the SQLite file lives beside the config"
    );
}

#[test]
fn queue_commands_on_postgres() {
    let base = "postgres://postgres@127.0.0.1:5432/test";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let schema = format!("af_cli_{}_{:x}", std::process::id(), fastrand::u64(..));
    let created = runtime.block_on(async {
        let pool = sqlx::PgPool::connect(base).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&pool)
            .await?;
        Ok::<_, sqlx::Error>(pool)
    });
    let pool = match created {
        Ok(pool) => pool,
        Err(error) if ProcessEnv.get("CI").is_none() => {
            eprintln!(
                "\n*** SKIPPING queue_commands_on_postgres: {base} is unreachable ({error}) ***\n"
            );
            return;
        }
        Err(error) => panic!("PostgreSQL at {base} is unreachable and CI is set: {error}"),
    };
    let workspace = Workspace::new();
    workspace.write("agentfleet.toml", CONFIG);
    let url = format!("{base}?options=-csearch_path%3D{schema}");
    queue_commands(&workspace, &[("AGENTFLEET_QUEUE_URL", &url)]);
    assert!(
        !workspace.path().join("tasks.db").exists(),
        "the variable overrides the config"
    );
    runtime.block_on(async {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&pool)
            .await
            .unwrap();
    });
}

#[test]
fn an_unreachable_queue_is_named_with_its_password_masked() {
    let workspace = Workspace::new();
    workspace.write("agentfleet.toml", CONFIG);
    let output = run(&mut workspace.agentfleet(&[
        "queue",
        "stats",
        "--queue-url",
        "postgres://fleet:hunter2-secret@127.0.0.1:1/fleet",
    ]));
    assert_eq!(output.code, 69, "{}", output.stderr);
    assert!(
        output
            .stderr
            .contains("postgres://fleet:****@127.0.0.1:1/fleet"),
        "{}",
        output.stderr
    );
    assert!(!output.stderr.contains("hunter2") && !output.stdout.contains("hunter2"));
    let output = run(&mut workspace.agentfleet(&[
        "queue",
        "stats",
        "--queue-url",
        "mysql://fleet:hunter2-secret@db/fleet",
    ]));
    assert_eq!(output.code, 78, "{}", output.stderr);
    assert!(!output.stderr.contains("hunter2"), "{}", output.stderr);
}
