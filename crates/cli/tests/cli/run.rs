//! `agentfleet run` end to end: the README's main job on embedded defaults, the JSON result,
//! and what a missing or refused key does to a run.

use agentfleet_config::Fingerprint;

use crate::probe::StandinProcess;
use crate::util::{Workspace, agentfleet, repository_root, run};

#[test]
fn the_main_job_runs_a_team_on_embedded_defaults() {
    let output = run(agentfleet().current_dir(repository_root()).args([
        "run",
        "--team",
        "review",
        "Explain in one sentence why a durable task queue helps agent workers.",
    ]));
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    assert!(
        output.stdout.starts_with("---------- user ----------\n"),
        "{}",
        output.stdout
    );
    assert!(
        output
            .stdout
            .contains("---------- writer ----------\nStand-in reply ")
    );
    assert!(
        output
            .stdout
            .contains("---------- critic ----------\nClear and short. APPROVE\n")
    );
    assert!(
        output
            .stdout
            .contains("stop: text_mention: critic said 'APPROVE'\n")
    );
    assert!(output.stdout.contains("usage: "));
}

#[test]
fn json_prints_the_task_result() {
    let output = run(agentfleet()
        .current_dir(repository_root())
        .args(["run", "--team", "review", "--json", "Go."]));
    assert_eq!(output.code, 0, "{}", output.stderr);
    let result = output.json();
    let messages = result["messages"].as_array().unwrap();
    assert_eq!(
        messages[0],
        serde_json::json!({"source": "user", "kind": "text", "content": "Go."})
    );
    assert_eq!(messages.last().unwrap()["source"], "critic");
    assert_eq!(result["stop_reason"], "text_mention: critic said 'APPROVE'");
    assert!(result["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(result["usage"]["completion_tokens"].as_u64().unwrap() > 0);
}

const TEAM: &str = r#"
[agents.writer]
provider = "main"

[agents.critic]
provider = "main"
stream = true

[teams.review]
members = ["writer", "critic"]
termination = { max_messages = 3 }
"#;

#[test]
fn switching_to_a_provider_without_its_key_stops_before_any_call() {
    let workspace = Workspace::new();
    workspace.write(
        "agentfleet.toml",
        format!("[providers]\nmain = {{ kind = \"openai\", model = \"gpt-4o-mini\", api_key = {{ env = \"OPENAI_API_KEY\" }} }}\n{TEAM}"),
    );
    let output = run(&mut workspace.agentfleet(&["run", "--team", "review", "Go."]));
    assert_eq!(output.code, 78, "{}{}", output.stdout, output.stderr);
    assert!(output.stdout.is_empty(), "nothing ran: {}", output.stdout);
    assert!(
        output.stderr.contains("error[missing]: OPENAI_API_KEY is not set in this process (provider main, used by agents writer, critic and team review)"),
        "{}",
        output.stderr
    );
    let json = run(&mut workspace.agentfleet(&["run", "--team", "review", "--json", "Go."]));
    assert_eq!(json.code, 78);
    assert_eq!(
        json.json()["providers"][0]["problems"][0]["code"],
        "missing"
    );
}

#[test]
fn a_refused_key_fails_the_run_with_provider_fingerprint_and_hint() {
    let workspace = Workspace::new();
    let keys = workspace.write("keys", "sk-standin-TheRightKey0123456789\n");
    let standin = StandinProcess::start(&["--keys-file", keys.to_str().unwrap()]);
    workspace.write(
        "agentfleet.toml",
        format!("[providers]\nmain = {{ kind = \"standin\", base_url = \"{}\", api_key = {{ env = \"STANDIN_KEY\" }} }}\n{TEAM}", standin.url),
    );
    let wrong = "sk-standin-TheWrongKey9876543210";
    let output = run(workspace
        .agentfleet(&["run", "--team", "review", "Go."])
        .env("STANDIN_KEY", wrong));
    assert_eq!(output.code, 77, "{}{}", output.stdout, output.stderr);
    let line = output.stderr.lines().next().unwrap();
    assert!(
        line.starts_with("agentfleet run: agent writer: main: auth-rejected (HTTP 401"),
        "{line}"
    );
    assert!(
        line.contains(&format!("key {}", Fingerprint::of(wrong))),
        "{line}"
    );
    assert!(line.contains("; hint: "), "{line}");
    assert!(!output.stdout.contains(wrong) && !output.stderr.contains(wrong));

    let json = run(workspace
        .agentfleet(&["run", "--team", "review", "--json", "Go."])
        .env("STANDIN_KEY", wrong));
    assert_eq!(json.code, 77);
    let failure = json.json();
    assert_eq!(failure["model_error"]["kind"], "auth-rejected");
    assert_eq!(
        failure["model_error"]["fingerprint"],
        Fingerprint::of(wrong).to_string()
    );
    assert_eq!(failure["messages"][0]["source"], "user");

    // The right key, and a streaming critic: its reply is printed once, as it streams.
    let good = run(workspace
        .agentfleet(&["run", "--team", "review", "Go."])
        .env("STANDIN_KEY", "sk-standin-TheRightKey0123456789"));
    assert_eq!(good.code, 0, "{}{}", good.stdout, good.stderr);
    assert_eq!(
        good.stdout.matches("---------- critic ----------").count(),
        1,
        "{}",
        good.stdout
    );
    assert!(
        good.stdout
            .contains("stop: max_messages: 3 messages reached (limit 3)")
    );
}

#[test]
fn unknown_targets_are_usage_errors() {
    let output = run(agentfleet()
        .current_dir(repository_root())
        .args(["run", "--team", "reveiw", "Go."]));
    assert_eq!(output.code, 2);
    assert!(
        output
            .stderr
            .contains("there is no team named reveiw (defined: review)"),
        "{}",
        output.stderr
    );
    let output = run(agentfleet()
        .current_dir(repository_root())
        .args(["run", "Go."]));
    assert_eq!(output.code, 2, "{}", output.stderr);
}
