//! Agents, tools and teams against the stand-in over loopback HTTP: scripted replies, tool calls,
//! each termination condition, selector choices, failures mid-run, and the environment a config
//! tool gets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentfleet_agent::{
    AssistantAgent, MessageKind, RunEvent, Runtime, RuntimeError, Speakers, Target, Team,
    Termination, function, no_events,
};
use agentfleet_client::{ClientOptions, ClientSpec, ErrorKind, ModelClient, RetryPolicy};
use agentfleet_config::{Fingerprint, FixedEnv, LiveCredential, ProviderKind, Secret};
use agentfleet_standin::{Script, Standin, StandinConfig};
use schemars::JsonSchema;
use serde::Deserialize;

const KEY: &str = "sk-standin-AgentTests0123456789abcdef";

async fn standin(script: &str) -> Standin {
    standin_with(script, Duration::ZERO).await
}

async fn standin_with(script: &str, latency: Duration) -> Standin {
    let config = StandinConfig {
        keys: vec![KEY.to_owned()],
        script: Script::parse(script).unwrap(),
        latency,
        ..StandinConfig::default()
    };
    Standin::start("127.0.0.1:0", config).await.unwrap()
}

fn client(server: &Standin, key: &str) -> Arc<dyn ModelClient> {
    let spec = ClientSpec {
        name: "local".into(),
        kind: ProviderKind::Standin,
        model: "standin".into(),
        url: Some(server.url()),
        deployment: None,
        api_version: None,
        organization: None,
        project: None,
        credential: Some(Arc::new(LiveCredential::new(Arc::new(Secret::new(
            key.to_owned(),
        ))))),
        token: None,
    };
    let options = ClientOptions {
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    };
    agentfleet_client::build(spec, options).unwrap()
}

#[derive(Deserialize, JsonSchema)]
struct City {
    /// The city.
    city: String,
}

fn weather_tool() -> Arc<dyn agentfleet_agent::Tool> {
    function(
        "get_weather",
        "The weather in a city",
        |args: City| async move { Ok(format!("sunny in {}", args.city)) },
    )
}

const WEATHER: &str = r#"
[[rule]]
last_role = "tool"
reply = "It is sunny in Paris."

[[rule]]
last_contains = "weather"
tool_calls = [{ name = "get_weather", arguments = '{"city": "Paris"}' }]
"#;

#[tokio::test]
async fn a_single_agent_replies_with_usage() {
    let server = standin("").await;
    let agent = AssistantAgent::builder("writer", client(&server, KEY))
        .system_message("Be brief.")
        .build()
        .unwrap();
    let result = agent.run("hello", &no_events()).await.unwrap();
    assert_eq!(result.messages.len(), 2);
    assert_eq!(result.messages[0].source, "user");
    assert_eq!(result.messages[1].source, "writer");
    assert!(result.messages[1].content.ends_with("to: hello"));
    assert_eq!(result.stop_reason, "writer replied");
    assert!(result.usage.prompt_tokens > 0 && result.usage.completion_tokens > 0);
}

#[tokio::test]
async fn a_tool_call_then_a_summary_or_a_reflection() {
    let server = standin(WEATHER).await;
    let summarise = AssistantAgent::builder("a", client(&server, KEY))
        .tool(weather_tool())
        .build()
        .unwrap();
    let result = summarise
        .run("what is the weather?", &no_events())
        .await
        .unwrap();
    let kinds: Vec<MessageKind> = result.messages.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [
            MessageKind::Text,
            MessageKind::ToolCall,
            MessageKind::ToolResult,
            MessageKind::ToolCallSummary
        ]
    );
    assert_eq!(result.messages[1].tool_calls[0].name, "get_weather");
    assert_eq!(result.messages[2].tool_results[0].content, "sunny in Paris");
    assert!(!result.messages[2].tool_results[0].is_error);
    assert_eq!(result.messages[3].content, "sunny in Paris");

    let reflect = AssistantAgent::builder("a", client(&server, KEY))
        .tool(weather_tool())
        .reflect_on_tool_use(true)
        .build()
        .unwrap();
    let result = reflect
        .run("what is the weather?", &no_events())
        .await
        .unwrap();
    assert_eq!(
        result.messages.last().unwrap().content,
        "It is sunny in Paris."
    );
    assert_eq!(result.messages.last().unwrap().kind, MessageKind::Text);

    let iterate = AssistantAgent::builder("a", client(&server, KEY))
        .tool(weather_tool())
        .max_tool_iterations(3)
        .build()
        .unwrap();
    let result = iterate
        .run("what is the weather?", &no_events())
        .await
        .unwrap();
    assert_eq!(
        result.messages.len(),
        4,
        "the second model call answers in text and the loop ends"
    );
    assert_eq!(result.messages[3].content, "It is sunny in Paris.");
}

#[tokio::test]
async fn tool_calls_requested_together_run_concurrently() {
    let server = standin(
        r#"
        [[rule]]
        last_role = "tool"
        reply = "both done"
        [[rule]]
        tool_calls = [{ name = "meet", arguments = '{"city": "a"}' }, { name = "meet", arguments = '{"city": "b"}' }]
        "#,
    )
    .await;
    // Each call waits for the other: run one at a time, they would never finish.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let meet = function("meet", "Waits for the other call", move |args: City| {
        let barrier = barrier.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(5), barrier.wait())
                .await
                .map_err(|_| "the other call never started".to_owned())?;
            Ok(format!("met {}", args.city))
        }
    });
    let agent = AssistantAgent::builder("a", client(&server, KEY))
        .tool(meet)
        .reflect_on_tool_use(true)
        .build()
        .unwrap();
    let result = agent.run("go", &no_events()).await.unwrap();
    let results = &result.messages[2].tool_results;
    assert_eq!(
        results
            .iter()
            .map(|r| r.content.as_str())
            .collect::<Vec<_>>(),
        ["met a", "met b"]
    );
}

#[tokio::test]
async fn a_bad_tool_call_is_an_error_the_model_sees_not_a_crash() {
    let server = standin(
        r#"
        [[rule]]
        last_role = "tool"
        reply = "noted the errors"
        [[rule]]
        tool_calls = [{ name = "nope", arguments = '{}' }, { name = "get_weather", arguments = '{"town": 1}' }]
        "#,
    )
    .await;
    let agent = AssistantAgent::builder("a", client(&server, KEY))
        .tool(weather_tool())
        .reflect_on_tool_use(true)
        .build()
        .unwrap();
    let result = agent.run("go", &no_events()).await.unwrap();
    let results = &result.messages[2].tool_results;
    assert!(results.iter().all(|r| r.is_error), "{results:?}");
    assert_eq!(results[0].content, "error: there is no tool named nope");
    assert!(
        results[1]
            .content
            .starts_with("error: the arguments do not match the tool's schema")
    );
    assert_eq!(result.messages[3].content, "noted the errors");
}

#[tokio::test]
async fn duplicate_tool_names_are_refused() {
    let server = standin("").await;
    let error = AssistantAgent::builder("a", client(&server, KEY))
        .tool(weather_tool())
        .tool(weather_tool())
        .build()
        .unwrap_err();
    assert_eq!(error.to_string(), "agent a has two tools named get_weather");
}

const REVIEW: &str = r#"
[[rule]]
system_contains = "critic"
min_messages = 4
reply = "Good enough. APPROVE"
"#;

fn review_team(server: &Standin, termination: Termination) -> Team {
    let writer = AssistantAgent::builder("writer", client(server, KEY))
        .system_message("You are the writer.")
        .build()
        .unwrap();
    let critic = AssistantAgent::builder("critic", client(server, KEY))
        .system_message("You are the critic.")
        .build()
        .unwrap();
    Team::new(
        "review",
        vec![writer, critic],
        Speakers::RoundRobin,
        termination,
    )
    .unwrap()
}

#[tokio::test]
async fn round_robin_until_the_critic_approves() {
    let server = standin(REVIEW).await;
    let team = review_team(
        &server,
        Termination {
            max_messages: Some(20),
            text_mention: Some("APPROVE".into()),
            ..Termination::default()
        },
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    let events: agentfleet_agent::EventSink = Arc::new(move |event: &RunEvent| {
        if let RunEvent::Message(message) = event {
            recorder.lock().unwrap().push(message.source.clone());
        }
    });
    let result = team.run("write a haiku", &events).await.unwrap();
    let sources: Vec<&str> = result.messages.iter().map(|m| m.source.as_str()).collect();
    assert_eq!(sources, ["user", "writer", "critic", "writer", "critic"]);
    assert_eq!(result.stop_reason, "text_mention: critic said 'APPROVE'");
    assert_eq!(
        *seen.lock().unwrap(),
        sources,
        "watchers see every message as it happens"
    );
    assert!(result.usage.completion_tokens >= 4);
}

#[tokio::test]
async fn max_messages_and_all_of() {
    let server = standin(REVIEW).await;
    let team = review_team(
        &server,
        Termination {
            max_messages: Some(3),
            ..Termination::default()
        },
    );
    let result = team.run("go", &no_events()).await.unwrap();
    assert_eq!(result.messages.len(), 3);
    assert_eq!(
        result.stop_reason,
        "max_messages: 3 messages reached (limit 3)"
    );

    // Both must fire: three messages are not enough without the approval, which comes at the fifth.
    let team = review_team(
        &server,
        Termination {
            max_messages: Some(3),
            text_mention: Some("APPROVE".into()),
            all: true,
            ..Termination::default()
        },
    );
    let result = team.run("go", &no_events()).await.unwrap();
    assert_eq!(result.messages.len(), 5);
    assert_eq!(
        result.stop_reason,
        "max_messages: 3 messages reached (limit 3) and text_mention: critic said 'APPROVE'"
    );
}

#[tokio::test]
async fn a_timeout_stops_a_run_mid_turn() {
    let server = standin_with("", Duration::from_millis(400)).await;
    let team = review_team(
        &server,
        Termination {
            timeout: Some(Duration::from_millis(600)),
            ..Termination::default()
        },
    );
    let started = std::time::Instant::now();
    let result = team.run("go", &no_events()).await.unwrap();
    assert_eq!(result.stop_reason, "timeout: 600 ms elapsed");
    assert_eq!(
        result.messages.len(),
        2,
        "the second turn was abandoned when the time was up"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_selector_model_picks_speakers_with_its_own_credential() {
    let agents = standin(REVIEW).await;
    let selector_key = "sk-standin-Selector9876543210";
    let selector = Standin::start(
        "127.0.0.1:0",
        StandinConfig {
            keys: vec![selector_key.to_owned()],
            script: Script::parse(
                r#"
                [[rule]]
                last_contains = "writer: Stand-in reply"
                reply = "critic"
                [[rule]]
                reply = "writer"
                "#,
            )
            .unwrap(),
            ..StandinConfig::default()
        },
    )
    .await
    .unwrap();
    let writer = AssistantAgent::builder("writer", client(&agents, KEY))
        .system_message("You are the writer.")
        .description("Writes drafts.")
        .build()
        .unwrap();
    let critic = AssistantAgent::builder("critic", client(&agents, KEY))
        .system_message("You are the critic.")
        .build()
        .unwrap();
    let team = Team::new(
        "review",
        vec![writer, critic],
        Speakers::Selector {
            client: client(&selector, selector_key),
            prompt: None,
        },
        Termination {
            max_messages: Some(5),
            ..Termination::default()
        },
    )
    .unwrap();
    let chosen = Arc::new(Mutex::new(Vec::new()));
    let recorder = chosen.clone();
    let events: agentfleet_agent::EventSink = Arc::new(move |event: &RunEvent| {
        if let RunEvent::Selected { speaker, .. } = event {
            recorder.lock().unwrap().push(speaker.clone());
        }
    });
    let result = team.run("go", &events).await.unwrap();
    // The writer first, then the critic; then the selector names the critic again, who just
    // spoke and is no candidate, is told so, and names the writer; then the critic.
    assert_eq!(
        *chosen.lock().unwrap(),
        ["writer", "critic", "writer", "critic"]
    );
    let stats = selector.stats();
    assert_eq!(
        stats.by_key[&Fingerprint::of(selector_key).to_string()].requests,
        5,
        "{stats:?}"
    );
    assert!(
        !stats.by_key.contains_key(&Fingerprint::of(KEY).to_string()),
        "the selector used its own key"
    );
    let agent_usage: u64 = result
        .messages
        .iter()
        .filter_map(|m| m.usage)
        .map(|u| u.completion_tokens)
        .sum();
    assert!(
        result.usage.completion_tokens > agent_usage,
        "the selector's usage is counted"
    );
}

#[tokio::test]
async fn a_model_failure_mid_team_keeps_what_came_before_and_says_why() {
    let server = standin("").await;
    let writer = AssistantAgent::builder("writer", client(&server, KEY))
        .build()
        .unwrap();
    let critic = AssistantAgent::builder("critic", client(&server, "sk-standin-RevokedKey000"))
        .build()
        .unwrap();
    let team = Team::new(
        "review",
        vec![writer, critic],
        Speakers::RoundRobin,
        Termination {
            max_messages: Some(6),
            ..Termination::default()
        },
    )
    .unwrap();
    let failure = team.run("go", &no_events()).await.unwrap_err();
    assert_eq!(
        failure
            .messages
            .iter()
            .map(|m| m.source.as_str())
            .collect::<Vec<_>>(),
        ["user", "writer"]
    );
    let error = failure.error.model_error().unwrap();
    assert_eq!(error.kind, ErrorKind::AuthRejected);
    assert_eq!(
        error.fingerprint,
        Some(Fingerprint::of("sk-standin-RevokedKey000"))
    );
    assert!(
        failure
            .to_string()
            .starts_with("agent critic: local: auth-rejected"),
        "{failure}"
    );
}

fn config(text: &str) -> (tempfile::TempDir, agentfleet_config::Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("script.toml"),
        text.split("#SCRIPT\n").nth(1).unwrap_or(""),
    )
    .unwrap();
    let path = dir.path().join("agentfleet.toml");
    let config_text = text.split("#SCRIPT\n").next().unwrap();
    std::fs::write(&path, config_text).unwrap();
    let config = agentfleet_config::parse::parse(&path, config_text)
        .unwrap_or_else(|e| panic!("{:#?}", e.diagnostics()));
    (dir, config)
}

#[tokio::test]
async fn a_config_tool_gets_its_allow_list_and_never_a_credential() {
    let canary = "sk-proj-CANARYtoolEnv0123456789abcdef";
    let (_dir, config) = config(
        r#"
[providers.local]
kind = "standin"
script = "script.toml"

[tools.show_env]
command = ["/bin/sh", "-c", "env"]
description = "Shows its environment"
env = ["PATH", "LANG"]

[tools.slow]
command = ["/bin/sh", "-c", "sleep 5"]
timeout = "200ms"

[agents.a]
provider = "local"
tools = ["show_env", "slow"]
reflect_on_tool_use = true
#SCRIPT
[[rule]]
last_role = "tool"
reply = "done"
[[rule]]
tool_calls = [{ name = "show_env" }, { name = "slow" }]
"#,
    );
    let env = FixedEnv::new()
        .with("PATH", "/usr/bin:/bin")
        .with("OPENAI_API_KEY", canary)
        .with("HOME", "/root");
    let runtime = Runtime::build(&config, &env, Target::Agent("a"), ClientOptions::default())
        .await
        .unwrap();
    let result = runtime
        .run(Target::Agent("a"), "go", &no_events())
        .await
        .unwrap();
    let results = &result.messages[2].tool_results;
    let shown = &results[0].content;
    assert!(shown.contains("PATH=/usr/bin:/bin"), "{shown}");
    assert!(
        !shown.contains(canary) && !shown.contains("OPENAI_API_KEY") && !shown.contains("HOME="),
        "{shown}"
    );
    assert!(
        results[1].is_error && results[1].content.contains("timed out after 200 ms"),
        "{results:?}"
    );
    assert_eq!(result.messages[3].content, "done");
}

#[tokio::test]
async fn the_runtime_checks_only_what_the_target_needs() {
    let (_dir, config) = config(
        r#"
[providers.local]
kind = "standin"

[providers.openai]
kind = "openai"
model = "gpt-4o-mini"
api_key = { env = "OPENAI_API_KEY" }

[agents.offline]
provider = "local"

[agents.online]
provider = "openai"
"#,
    );
    let env = FixedEnv::new();
    let runtime = Runtime::build(
        &config,
        &env,
        Target::Agent("offline"),
        ClientOptions::default(),
    )
    .await
    .unwrap();
    runtime
        .run(Target::Agent("offline"), "hi", &no_events())
        .await
        .unwrap();

    let error = Runtime::build(
        &config,
        &env,
        Target::Agent("online"),
        ClientOptions::default(),
    )
    .await
    .unwrap_err();
    let RuntimeError::Credentials { unusable } = &error else {
        panic!("{error}")
    };
    assert_eq!(unusable[0].name, "openai");
    assert_eq!(unusable[0].problems[0].code.as_str(), "missing");

    let error = Runtime::build(
        &config,
        &env,
        Target::Team("nope"),
        ClientOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "there is no team named nope (defined: none)"
    );
    let error = Runtime::build(
        &config,
        &env,
        Target::Agent("ofline"),
        ClientOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "there is no agent named ofline (defined: offline, online)"
    );
}
