//! The real clients against every surface of the stand-in over loopback HTTP: chat and stream,
//! tool calls from a script, probes, refused and missing keys, rotation through the keys file,
//! injected faults, and the exact error bodies each surface sends.

use std::sync::Arc;

use agentfleet_client::{ChatRequest, ErrorKind, FinishReason, Message, ModelClient, StreamEvent};
use agentfleet_config::{Fingerprint, LiveCredential, ProviderKind, Secret};
use agentfleet_standin::{Faults, Script, Standin, StandinConfig};
use futures_util::StreamExt;

use crate::recorder::{build, spec};

const KEY: &str = "sk-standin-GoodKey0123456789abcdef";
const OTHER: &str = "sk-standin-OtherKey9876543210fedcba";

const SCRIPT: &str = r#"
[[rule]]
last_role = "tool"
reply = "It is sunny in Paris."

[[rule]]
last_contains = "weather"
tool_calls = [{ name = "get_weather", arguments = '{"city": "Paris"}' }]

[[rule]]
system_contains = "critic"
reply = "Looks good. APPROVE"
"#;

async fn standin() -> Standin {
    let config = StandinConfig {
        keys: vec![KEY.to_owned()],
        script: Script::parse(SCRIPT).unwrap(),
        deployments: Some(vec!["gpt4o".to_owned()]),
        ..StandinConfig::default()
    };
    Standin::start("127.0.0.1:0", config).await.unwrap()
}

/// A client for each surface: OpenAI, compatible, the stand-in kind, Azure classic, Azure v1,
/// Anthropic.
fn clients(server: &Standin, key: &str) -> Vec<(&'static str, Arc<dyn ModelClient>)> {
    let url = server.url();
    let mut classic = spec(ProviderKind::AzureOpenAi, Some(&url), Some(key));
    classic.deployment = Some("gpt4o".into());
    classic.api_version = Some("2024-10-21".into());
    vec![
        (
            "openai",
            build(spec(
                ProviderKind::OpenAi,
                Some(&format!("{url}/v1")),
                Some(key),
            )),
        ),
        (
            "compatible",
            build(spec(
                ProviderKind::OpenAiCompatible,
                Some(&format!("{url}/v1")),
                Some(key),
            )),
        ),
        (
            "standin",
            build(spec(ProviderKind::Standin, Some(&url), Some(key))),
        ),
        ("azure classic", build(classic)),
        (
            "azure v1",
            build(spec(
                ProviderKind::AzureOpenAi,
                Some(&format!("{url}/openai/v1")),
                Some(key),
            )),
        ),
        (
            "anthropic",
            build(spec(ProviderKind::Anthropic, Some(&url), Some(key))),
        ),
    ]
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![Message::system("You are the writer."), Message::user(text)],
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn every_surface_answers_deterministically_with_usage() {
    let server = standin().await;
    for (name, client) in clients(&server, KEY) {
        let first = client
            .chat(&ask("hello there"))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let second = client.chat(&ask("hello there")).await.unwrap();
        assert_eq!(
            first.content, second.content,
            "{name}: the default reply depends only on the request"
        );
        assert!(
            first.content.starts_with("Stand-in reply ")
                && first.content.ends_with("to: hello there"),
            "{name}: {}",
            first.content
        );
        assert_eq!(first.finish_reason, FinishReason::Stop, "{name}");
        assert!(
            first.usage.prompt_tokens > 0 && first.usage.completion_tokens > 0,
            "{name}: {:?}",
            first.usage
        );
        assert!(first.request_id.is_some(), "{name}");
        client
            .probe()
            .await
            .unwrap_or_else(|e| panic!("{name} probe: {e}"));
    }
    let stats = server.stats();
    let ours = &stats.by_key[&Fingerprint::of(KEY).to_string()];
    assert_eq!(ours.by_status[&200], 18, "{stats:?}");
    assert_eq!(stats.by_surface["anthropic"], 3);
    assert_eq!(stats.by_surface["azure"], 6);
}

#[tokio::test]
async fn every_surface_streams_the_same_reply_it_sends_whole() {
    let server = standin().await;
    for (name, client) in clients(&server, KEY) {
        let whole = client.chat(&ask("stream this please")).await.unwrap();
        let events: Vec<StreamEvent> = client
            .chat_stream(&ask("stream this please"))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .map(|event| event.unwrap_or_else(|e| panic!("{name}: {e}")))
            .collect()
            .await;
        let text: String = events
            .iter()
            .filter_map(|e| {
                if let StreamEvent::Text(t) = e {
                    Some(t.clone())
                } else {
                    None
                }
            })
            .collect();
        assert!(events.len() > 3, "{name}: streamed in pieces: {events:?}");
        let Some(StreamEvent::Finished(reply)) = events.last() else {
            panic!("{name}: {events:?}")
        };
        assert_eq!(text, whole.content, "{name}");
        assert_eq!(reply.content, whole.content, "{name}");
        assert_eq!(
            reply.usage, whole.usage,
            "{name}: usage arrives at the end of the stream"
        );
    }
}

#[tokio::test]
async fn scripted_tool_calls_round_trip_on_every_surface() {
    let server = standin().await;
    for (name, client) in clients(&server, KEY) {
        let request = ask("what is the weather?");
        let reply = client.chat(&request).await.unwrap();
        assert_eq!(reply.finish_reason, FinishReason::ToolCalls, "{name}");
        assert_eq!(reply.tool_calls.len(), 1, "{name}");
        assert_eq!(reply.tool_calls[0].name, "get_weather");
        let arguments: serde_json::Value =
            serde_json::from_str(&reply.tool_calls[0].arguments).unwrap();
        assert_eq!(arguments["city"], "Paris", "{name}");

        let streamed: Vec<StreamEvent> = client
            .chat_stream(&request)
            .await
            .unwrap()
            .map(|e| e.unwrap())
            .collect()
            .await;
        let Some(StreamEvent::Finished(streamed)) = streamed.last() else {
            panic!()
        };
        assert_eq!(streamed.tool_calls[0].name, "get_weather", "{name}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&streamed.tool_calls[0].arguments).unwrap(),
            arguments,
            "{name}"
        );

        let mut follow_up = request.clone();
        follow_up.messages.push(Message {
            tool_calls: reply.tool_calls.clone(),
            ..Message::assistant("")
        });
        follow_up.messages.push(Message::tool_result(
            reply.tool_calls[0].id.clone(),
            "sunny, 24C",
        ));
        let answer = client
            .chat(&follow_up)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(answer.content, "It is sunny in Paris.", "{name}");
    }
}

#[tokio::test]
async fn a_refused_key_is_auth_rejected_with_its_fingerprint_on_every_surface() {
    let server = standin().await;
    for (name, client) in clients(&server, OTHER) {
        let error = client.chat(&ask("hi")).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::AuthRejected, "{name}: {error}");
        assert_eq!(error.status, Some(401), "{name}");
        assert_eq!(error.fingerprint, Some(Fingerprint::of(OTHER)), "{name}");
        assert!(error.hint.is_some(), "{name}");
        assert!(!error.to_string().contains("OtherKey"), "{name}: {error}");
        assert_eq!(
            client.probe().await.unwrap_err().kind,
            ErrorKind::AuthRejected,
            "{name}"
        );
    }
    let stats = server.stats();
    assert_eq!(
        stats.by_key[&Fingerprint::of(OTHER).to_string()].by_status[&401],
        12
    );
}

#[tokio::test]
async fn no_key_is_auth_missing_on_every_surface() {
    let server = standin().await;
    for (name, client) in clients(&server, KEY) {
        let _ = client;
        let keyless = match name {
            "azure classic" => {
                let mut s = spec(ProviderKind::AzureOpenAi, Some(&server.url()), None);
                s.deployment = Some("gpt4o".into());
                s.api_version = Some("2024-10-21".into());
                build(s)
            }
            "azure v1" => build(spec(
                ProviderKind::AzureOpenAi,
                Some(&format!("{}/openai/v1", server.url())),
                None,
            )),
            "anthropic" => build(spec(ProviderKind::Anthropic, Some(&server.url()), None)),
            _ => build(spec(
                ProviderKind::OpenAiCompatible,
                Some(&format!("{}/v1", server.url())),
                None,
            )),
        };
        let error = keyless.chat(&ask("hi")).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::AuthMissing, "{name}: {error}");
    }
}

#[tokio::test]
async fn an_unknown_azure_deployment_is_not_found() {
    let server = standin().await;
    let mut classic = spec(ProviderKind::AzureOpenAi, Some(&server.url()), Some(KEY));
    classic.deployment = Some("gpt5".into());
    classic.api_version = Some("2024-10-21".into());
    let error = build(classic).chat(&ask("hi")).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);
    assert_eq!(error.code.as_deref(), Some("DeploymentNotFound"));
    assert!(error.hint.unwrap().contains("deployment"));
}

#[tokio::test]
async fn keys_rotate_through_the_keys_file_while_the_client_lives() {
    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("keys");
    std::fs::write(&keys_file, format!("{KEY}\n")).unwrap();
    let config = StandinConfig {
        keys_file: Some(keys_file.clone()),
        ..StandinConfig::default()
    };
    let server = Standin::start("127.0.0.1:0", config).await.unwrap();
    let spec = spec(
        ProviderKind::OpenAi,
        Some(&format!("{}/v1", server.url())),
        Some(KEY),
    );
    let credential: Arc<LiveCredential> = spec.credential.clone().unwrap();
    let client = build(spec);
    client.chat(&ask("before")).await.unwrap();

    // The new key appears, then the old one is revoked.
    std::fs::write(&keys_file, format!("{KEY}\n{OTHER}\n")).unwrap();
    wait_for(|| async { probe_with(&server, OTHER).await }).await;
    std::fs::write(&keys_file, format!("{OTHER}\n")).unwrap();
    wait_for(|| async { !probe_with(&server, KEY).await }).await;

    let error = client.chat(&ask("stale")).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::AuthRejected);
    assert_eq!(error.fingerprint, Some(Fingerprint::of(KEY)));
    assert_eq!(
        credential.replace(Arc::new(Secret::new(OTHER.to_owned()))),
        2
    );
    client.chat(&ask("rotated")).await.unwrap();
}

#[tokio::test]
async fn a_refused_key_rotated_at_its_source_is_read_again_and_the_request_retried_once() {
    let server = standin().await;
    let dir = tempfile::tempdir().unwrap();
    for (name, client_spec) in [
        (
            "openai",
            spec(
                ProviderKind::OpenAi,
                Some(&format!("{}/v1", server.url())),
                Some(OTHER),
            ),
        ),
        (
            "azure v1",
            spec(
                ProviderKind::AzureOpenAi,
                Some(&format!("{}/openai/v1", server.url())),
                Some(OTHER),
            ),
        ),
        (
            "anthropic",
            spec(ProviderKind::Anthropic, Some(&server.url()), Some(OTHER)),
        ),
    ] {
        // The process holds a key the provider no longer takes; its source file holds `source`.
        let source_file = dir.path().join(name);
        let credential: Arc<LiveCredential> = client_spec.credential.clone().unwrap();
        let reader = source_file.clone();
        credential.set_reread(Box::new(move || {
            let text = std::fs::read_to_string(&reader).unwrap_or_default();
            let key = text.trim();
            (!key.is_empty())
                .then(|| Arc::new(Secret::new(key.to_owned())))
                .into_iter()
                .collect()
        }));
        let client = build(client_spec);

        std::fs::write(&source_file, format!("{OTHER}\n")).unwrap();
        let error = client.chat(&ask("unchanged")).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::AuthRejected, "{name}: {error}");
        assert_eq!(error.attempts, 1, "{name}: nothing new to retry with");

        std::fs::write(&source_file, "\n").unwrap();
        let error = client.chat(&ask("emptied")).await.unwrap_err();
        assert_eq!(
            error.kind,
            ErrorKind::AuthRejected,
            "{name}: an empty file is refused"
        );
        assert_eq!(credential.current().generation, 1, "{name}");

        std::fs::write(&source_file, format!("{KEY}\n")).unwrap();
        let reply = client.chat(&ask("rotated")).await;
        assert!(reply.is_ok(), "{name}: {:?}", reply.err());
        let current = credential.current();
        assert_eq!(current.fingerprint, Fingerprint::of(KEY), "{name}");
        assert_eq!(current.generation, 2, "{name}");
        assert!(client.probe().await.is_ok(), "{name}");
    }
    let stats = server.stats();
    assert_eq!(
        stats.by_key[&Fingerprint::of(OTHER).to_string()].by_status[&401],
        9,
        "each surface: one refusal per request, and no retry of an unchanged key"
    );
}

async fn probe_with(server: &Standin, key: &str) -> bool {
    build(spec(
        ProviderKind::OpenAi,
        Some(&format!("{}/v1", server.url())),
        Some(key),
    ))
    .probe()
    .await
    .is_ok()
}

/// Polls `condition` until it holds, for at most five seconds: file watching is asynchronous.
async fn wait_for<F, Fut>(condition: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if condition().await {
            return;
        }
        tokio::time::sleep(agentfleet_standin::KEYS_FILE_POLL).await;
    }
    panic!("the keys file change was not picked up");
}

#[tokio::test]
async fn injected_faults_use_each_surface_shape_and_are_retried() {
    let config = StandinConfig {
        keys: vec![KEY.to_owned()],
        faults: Faults::parse("429=1.0").unwrap(),
        ..StandinConfig::default()
    };
    let server = Standin::start("127.0.0.1:0", config).await.unwrap();
    for (name, client) in clients(&server, KEY) {
        let error = client.chat(&ask("hi")).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::RateLimited, "{name}: {error}");
        assert_eq!(error.attempts, 3, "{name}");
    }
    let config = StandinConfig {
        keys: vec![KEY.to_owned()],
        faults: Faults::parse("500=1.0").unwrap(),
        ..StandinConfig::default()
    };
    let server = Standin::start("127.0.0.1:0", config).await.unwrap();
    for (name, client) in clients(&server, KEY) {
        assert_eq!(
            client.chat(&ask("hi")).await.unwrap_err().kind,
            ErrorKind::Server,
            "{name}"
        );
    }
}

#[tokio::test]
async fn auth_failures_have_each_provider_exact_body() {
    let server = standin().await;
    let http = reqwest::Client::new();
    let url = server.url();
    let post = |path: &str| {
        http.post(format!("{url}{path}"))
            .header("content-type", "application/json")
            .body(r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#)
    };

    let missing: serde_json::Value = post("/v1/chat/completions")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|body| serde_json::from_slice::<serde_json::Value>(&body).unwrap())
        .unwrap();
    assert_eq!(missing["error"]["type"], "invalid_request_error");
    assert_eq!(missing["error"]["code"], serde_json::Value::Null);
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("You didn't provide an API key.")
    );

    let azure_key = "0123456789abcdef0123456789abcdef";
    let wrong = post("/v1/chat/completions")
        .bearer_auth(azure_key)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let wrong: serde_json::Value = wrong
        .bytes()
        .await
        .map(|body| serde_json::from_slice::<serde_json::Value>(&body).unwrap())
        .unwrap();
    assert_eq!(wrong["error"]["code"], "invalid_api_key");
    assert_eq!(
        wrong["error"]["message"],
        "Incorrect API key provided: 01234567********************cdef. You can find your API key at https://platform.openai.com/account/api-keys."
    );

    let azure: serde_json::Value =
        post("/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21")
            .header("api-key", "nope")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .map(|body| serde_json::from_slice::<serde_json::Value>(&body).unwrap())
            .unwrap();
    assert_eq!(azure["error"]["code"], "401");
    assert!(
        azure["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Access denied due to invalid subscription key or wrong API endpoint.")
    );
    let bearer: serde_json::Value = post("/openai/v1/chat/completions")
        .bearer_auth("nope")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|body| serde_json::from_slice::<serde_json::Value>(&body).unwrap())
        .unwrap();
    assert_eq!(bearer["statusCode"], 401);
    let no_version = post("/openai/deployments/gpt4o/chat/completions")
        .header("api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(no_version.status(), 404);

    let anthropic: serde_json::Value = post("/v1/messages")
        .header("x-api-key", "nope")
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|body| serde_json::from_slice::<serde_json::Value>(&body).unwrap())
        .unwrap();
    assert_eq!(anthropic["type"], "error");
    assert_eq!(
        anthropic["error"],
        serde_json::json!({"type": "authentication_error", "message": "invalid x-api-key"})
    );
    assert!(
        anthropic["request_id"]
            .as_str()
            .unwrap()
            .starts_with("req_")
    );
    let no_version = post("/v1/messages")
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(no_version.status(), 400);

    let stats: serde_json::Value = http
        .get(format!("{url}/stats"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|body| serde_json::from_slice::<serde_json::Value>(&body).unwrap())
        .unwrap();
    assert_eq!(stats["by_key"]["none"]["by_status"]["401"], 1);
    assert!(
        stats["by_key"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| k == "none" || k.starts_with("sha256:"))
    );
}

#[tokio::test]
async fn azure_accepts_a_bearer_token_and_refuses_a_stale_one_in_its_own_shape() {
    let token = "eyJhbGciOiJub25lIn0.eyJ0YWciOiJzdGFuZGluIn0.c2ln";
    let config = StandinConfig {
        keys: vec![token.to_owned()],
        ..StandinConfig::default()
    };
    let server = Standin::start("127.0.0.1:0", config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), token).unwrap();
    let source = Arc::new(agentfleet_config::TokenSource::new(
        agentfleet_config::CredentialSource::File {
            path: "token".into(),
        },
        dir.path().to_owned(),
        None,
    ));
    let mut with_token = spec(
        ProviderKind::AzureOpenAi,
        Some(&format!("{}/openai/v1", server.url())),
        None,
    );
    with_token.token = Some(source);
    let client = build(with_token);
    client.chat(&ask("hi")).await.unwrap();
    std::fs::write(
        dir.path().join("token"),
        "eyJhbGciOiJub25lIn0.eyJ0YWciOiJzdGFsZSJ9.c2ln",
    )
    .unwrap();
    let error = client.chat(&ask("hi")).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::AuthRejected);
    assert!(
        error
            .hint
            .unwrap()
            .contains("expired or has the wrong audience")
    );
}
