//! `agentfleet standin` as a real process, and `agentfleet check --probe` telling a good key
//! from a revoked one and a reachable provider from an unreachable one.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentfleet_config::Fingerprint;

use crate::util::{Workspace, agentfleet, run};

const KEY: &str = "sk-standin-ProbeKey0123456789abcdef";

/// A running `agentfleet standin`, stopped with SIGTERM when dropped.
pub struct StandinProcess {
    child: Child,
    pub url: String,
}

impl StandinProcess {
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_agentfleet"))
            .arg("standin")
            .args(args)
            .env_clear()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start agentfleet standin");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .expect("first line");
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {first:?}"))
            .to_owned();
        Self { child, url }
    }

    /// Sends SIGTERM and returns the exit code.
    fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the stand-in did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for StandinProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(url: &str) -> String {
    format!(
        "[providers.local]\nkind = \"standin\"\nbase_url = \"{url}\"\napi_key = {{ env = \"STANDIN_KEY\" }}\n\
         [providers.anthropic]\nkind = \"anthropic\"\nmodel = \"m\"\nbase_url = \"{url}\"\napi_key = {{ env = \"ANTHROPIC_KEY\" }}\n\
         [agents.writer]\nprovider = \"local\"\n"
    )
}

#[test]
fn check_probe_tells_a_good_key_from_a_revoked_one() {
    let workspace = Workspace::new();
    let anthropic_key = "sk-ant-api03-ProbeKey0123456789AA";
    let keys = workspace.write("keys", format!("{KEY}\n{anthropic_key}\n"));
    let standin = StandinProcess::start(&["--keys-file", keys.to_str().unwrap()]);
    workspace.write("agentfleet.toml", config(&standin.url));
    let probe = |args: &[&str]| {
        run(workspace
            .agentfleet(args)
            .env("STANDIN_KEY", KEY)
            .env("ANTHROPIC_KEY", anthropic_key))
    };

    let good = probe(&["check", "--probe"]);
    assert_eq!(good.code, 0, "{}{}", good.stdout, good.stderr);
    assert!(good.stdout.contains("PROBE"), "{}", good.stdout);
    assert!(good.stdout.contains("every credential usable and accepted"));

    // Revoke the stand-in key; the server re-reads its keys file within moments.
    std::fs::write(&keys, format!("{anthropic_key}\n")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let revoked = loop {
        let output = probe(&["check", "--probe", "--json"]);
        if output.code != 0 || Instant::now() > deadline {
            break output;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(revoked.code, 77, "{}", revoked.stdout);
    let json = revoked.json();
    let local = &json["providers"][0];
    assert_eq!(local["fingerprint"], Fingerprint::of(KEY).to_string());
    assert_eq!(local["probe"]["ok"], false);
    assert_eq!(local["probe"]["kind"], "auth-rejected");
    assert_eq!(local["probe"]["status"], 401);
    assert!(
        local["probe"]["hint"]
            .as_str()
            .is_some_and(|hint| !hint.is_empty())
    );
    assert_eq!(
        json["providers"][1]["probe"]["ok"], true,
        "the anthropic key still works"
    );
    assert!(!revoked.stdout.contains(KEY));

    let text = probe(&["check", "--probe"]);
    assert_eq!(text.code, 77);
    assert!(
        text.stdout.contains(&format!(
            "error[probe]: local: auth-rejected (HTTP 401, invalid_api_key, key {})",
            Fingerprint::of(KEY)
        )),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains(KEY));

    assert_eq!(
        standin.terminate(),
        Some(0),
        "SIGTERM stops the stand-in cleanly"
    );
}

#[test]
fn check_probe_exits_69_when_a_provider_cannot_be_reached() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let workspace = Workspace::new();
    workspace.write("agentfleet.toml", config(&url));
    let output = run(workspace
        .agentfleet(&["check", "--probe", "--json"])
        .env("STANDIN_KEY", KEY)
        .env("ANTHROPIC_KEY", "sk-ant-api03-xAA"));
    assert_eq!(output.code, 69, "{}", output.stdout);
    assert_eq!(output.json()["providers"][0]["probe"]["kind"], "connection");
}

#[test]
fn check_probe_skips_what_failed_offline_and_keeps_exit_78() {
    let workspace = Workspace::new();
    workspace.write("agentfleet.toml", config("http://127.0.0.1:9"));
    let output = run(&mut workspace.agentfleet(&["check", "--probe", "--json"]));
    assert_eq!(output.code, 78);
    assert_eq!(output.json()["providers"][0]["probe"]["kind"], "skipped");
}

#[test]
fn the_standin_refuses_to_start_without_keys_or_with_bad_options() {
    let output = run(agentfleet().args(["standin"]));
    assert_eq!(output.code, 2);
    assert!(
        output
            .stderr
            .contains("no keys: pass --key KEY or --keys-file FILE"),
        "{}",
        output.stderr
    );
    let output = run(agentfleet().args(["standin", "--key", "k", "--fail-rate", "429=2"]));
    assert_eq!(output.code, 2);
    assert!(
        output.stderr.contains("between 0 and 1"),
        "{}",
        output.stderr
    );
    let workspace = Workspace::new();
    let script = workspace.write("script.toml", "[[rule]]\nanswer = \"x\"\n");
    let output = run(agentfleet().args([
        "standin",
        "--key",
        "k",
        "--script",
        script.to_str().unwrap(),
    ]));
    assert_eq!(output.code, 2);
    assert!(output.stderr.contains("script"), "{}", output.stderr);
}

#[test]
fn the_standin_serves_scripted_replies_with_latency_and_stats() {
    let workspace = Workspace::new();
    let script = workspace.write(
        "script.toml",
        "[[rule]]\nlast_contains = \"ping\"\nreply = \"pong\"\n",
    );
    let standin = StandinProcess::start(&[
        "--key",
        KEY,
        "--latency-ms",
        "5",
        "--script",
        script.to_str().unwrap(),
        "--threads",
        "2",
    ]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = agentfleet_client::build(
            agentfleet_client::ClientSpec {
                name: "local".into(),
                kind: agentfleet_config::ProviderKind::Standin,
                model: "standin".into(),
                url: Some(standin.url.clone()),
                deployment: None,
                api_version: None,
                organization: None,
                project: None,
                credential: Some(std::sync::Arc::new(agentfleet_config::LiveCredential::new(
                    std::sync::Arc::new(agentfleet_config::Secret::new(KEY.to_owned())),
                ))),
                token: None,
            },
            agentfleet_client::ClientOptions::default(),
        )
        .unwrap();
        let request = agentfleet_client::ChatRequest {
            messages: vec![agentfleet_client::Message::user("ping")],
            ..Default::default()
        };
        assert_eq!(client.chat(&request).await.unwrap().content, "pong");
        let stats = reqwest::get(format!("{}/stats", standin.url))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
        assert_eq!(
            stats["by_key"][Fingerprint::of(KEY).to_string()]["by_status"]["200"],
            1,
            "{stats}"
        );
    });
}
