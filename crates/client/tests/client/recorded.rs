//! Each provider's client against recorded response bodies, asserting the request it sent.

use agentfleet_client::{ChatRequest, FinishReason, Message, StreamEvent, ToolDefinition, Usage};
use agentfleet_config::ProviderKind;
use futures_util::StreamExt;

use crate::recorder::{Canned, Recorder, build, fixture, spec};

const KEY: &str = "sk-proj-RecordedKey0123456789abcdefXYZ";
const AZURE_KEY: &str = "0123456789abcdef0123456789abcdef";
const ANTHROPIC_KEY: &str = "sk-ant-api03-RecordedKey0123456789abcdefAA";

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![
            Message::system("Be brief."),
            Message::user("What is the capital of France?"),
        ],
        tools: vec![ToolDefinition {
            name: "get_weather".into(),
            description: "Weather for a place".into(),
            parameters: serde_json::json!({"type": "object", "properties": {"location": {"type": "string"}}}),
        }],
        temperature: Some(0.0),
        max_tokens: Some(64),
    }
}

#[tokio::test]
async fn openai_sends_bearer_and_reads_a_completion() {
    let recorder = Recorder::start(vec![
        Canned::json(200, &fixture("openai_chat.json")).header("x-request-id", "req_abc"),
    ])
    .await;
    let mut spec = spec(
        ProviderKind::OpenAi,
        Some(&format!("{}/v1", recorder.url)),
        Some(KEY),
    );
    spec.organization = Some("org-123".into());
    spec.project = Some("proj_456".into());
    let reply = build(spec).chat(&request()).await.unwrap();
    assert_eq!(reply.content, "The capital of France is Paris.");
    assert_eq!(reply.finish_reason, FinishReason::Stop);
    assert_eq!(
        reply.usage,
        Usage {
            prompt_tokens: 24,
            completion_tokens: 8
        }
    );
    assert_eq!(reply.request_id.as_deref(), Some("req_abc"));

    let sent = recorder.only_request();
    assert_eq!(
        (sent.method.as_str(), sent.path_and_query.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(sent.header("openai-organization"), Some("org-123"));
    assert_eq!(sent.header("openai-project"), Some("proj_456"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    let body = sent.json();
    assert_eq!(body["model"], "m");
    assert_eq!(
        body["messages"][0],
        serde_json::json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(body["max_completion_tokens"], 64);
    assert_eq!(body["temperature"], 0.0);
    assert!(body.get("stream").is_none());
    assert!(
        !sent.everything_but("authorization").contains(KEY),
        "the key appears outside its header"
    );
}

#[tokio::test]
async fn openai_tool_calls_are_read() {
    let recorder =
        Recorder::start(vec![Canned::json(200, &fixture("openai_tool_calls.json"))]).await;
    let reply = build(spec(ProviderKind::OpenAi, Some(&recorder.url), Some(KEY)))
        .chat(&request())
        .await
        .unwrap();
    assert_eq!(reply.finish_reason, FinishReason::ToolCalls);
    assert_eq!(reply.content, "");
    assert_eq!(reply.tool_calls.len(), 1);
    assert_eq!(reply.tool_calls[0].id, "call_abc123");
    assert_eq!(reply.tool_calls[0].name, "get_current_weather");
    let arguments: serde_json::Value =
        serde_json::from_str(&reply.tool_calls[0].arguments).unwrap();
    assert_eq!(arguments["location"], "Boston, MA");
}

#[tokio::test]
async fn openai_streams_text_then_usage() {
    let recorder = Recorder::start(vec![Canned::sse(&fixture("openai_stream.sse"))]).await;
    let client = build(spec(
        ProviderKind::OpenAiCompatible,
        Some(&recorder.url),
        Some(KEY),
    ));
    let events: Vec<StreamEvent> = client
        .chat_stream(&request())
        .await
        .unwrap()
        .map(|e| e.unwrap())
        .collect()
        .await;
    assert_eq!(events[0], StreamEvent::Text("Hello".into()));
    assert_eq!(events[1], StreamEvent::Text(" there!".into()));
    let StreamEvent::Finished(reply) = events.last().unwrap() else {
        panic!("{events:?}")
    };
    assert_eq!(reply.content, "Hello there!");
    assert_eq!(
        reply.usage,
        Usage {
            prompt_tokens: 9,
            completion_tokens: 3
        }
    );
    let body = recorder.only_request().json();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["max_tokens"], 64, "compatible servers get max_tokens");
}

#[tokio::test]
async fn openai_streams_tool_call_fragments() {
    let recorder =
        Recorder::start(vec![Canned::sse(&fixture("openai_stream_tool_calls.sse"))]).await;
    let client = build(spec(ProviderKind::OpenAi, Some(&recorder.url), Some(KEY)));
    let events: Vec<StreamEvent> = client
        .chat_stream(&request())
        .await
        .unwrap()
        .map(|e| e.unwrap())
        .collect()
        .await;
    assert!(events.iter().any(|e| matches!(e, StreamEvent::ToolCallFragment { index: 0, id: Some(id), .. } if id == "call_DdmO9pD3xa9XTPNJ32zg2hcA")));
    let StreamEvent::Finished(reply) = events.last().unwrap() else {
        panic!("{events:?}")
    };
    assert_eq!(reply.finish_reason, FinishReason::ToolCalls);
    assert_eq!(reply.tool_calls.len(), 2);
    assert_eq!(reply.tool_calls[0].name, "get_weather");
    assert_eq!(reply.tool_calls[0].arguments, "{\"location\":\"Paris\"}");
    assert_eq!(reply.tool_calls[1].id, "call_second");
    assert_eq!(reply.usage.completion_tokens, 20);
}

#[tokio::test]
async fn azure_classic_path_sends_api_key_and_api_version() {
    let recorder = Recorder::start(vec![
        Canned::json(200, &fixture("azure_chat.json")).header("apim-request-id", "apim-1"),
    ])
    .await;
    let mut spec = spec(
        ProviderKind::AzureOpenAi,
        Some(&recorder.url),
        Some(AZURE_KEY),
    );
    spec.deployment = Some("gpt4o-mini".into());
    spec.api_version = Some("2024-10-21".into());
    let reply = build(spec).chat(&request()).await.unwrap();
    assert_eq!(reply.content, "Hello from Azure.");
    assert_eq!(reply.request_id.as_deref(), Some("apim-1"));
    let sent = recorder.only_request();
    assert_eq!(
        sent.path_and_query,
        "/openai/deployments/gpt4o-mini/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(sent.header("api-key"), Some(AZURE_KEY));
    assert_eq!(
        sent.header("authorization"),
        None,
        "Azure keys never go as Bearer"
    );
    assert_eq!(sent.json()["max_tokens"], 64);
    assert!(!sent.everything_but("api-key").contains(AZURE_KEY));
}

#[tokio::test]
async fn azure_v1_path_needs_no_api_version() {
    let recorder = Recorder::start(vec![Canned::json(200, &fixture("azure_chat.json"))]).await;
    let spec = spec(
        ProviderKind::AzureOpenAi,
        Some(&format!("{}/openai/v1", recorder.url)),
        Some(AZURE_KEY),
    );
    build(spec).chat(&request()).await.unwrap();
    let sent = recorder.only_request();
    assert_eq!(sent.path_and_query, "/openai/v1/chat/completions");
    assert_eq!(sent.header("api-key"), Some(AZURE_KEY));
    assert_eq!(sent.json()["model"], "m");
}

#[tokio::test]
async fn anthropic_sends_its_headers_and_reads_tool_use() {
    let recorder = Recorder::start(vec![
        Canned::json(200, &fixture("anthropic_message.json")).header("request-id", "req_ant"),
    ])
    .await;
    let reply = build(spec(
        ProviderKind::Anthropic,
        Some(&recorder.url),
        Some(ANTHROPIC_KEY),
    ))
    .chat(&request())
    .await
    .unwrap();
    assert_eq!(reply.content, "I'll check the weather.");
    assert_eq!(reply.finish_reason, FinishReason::ToolCalls);
    assert_eq!(reply.tool_calls[0].id, "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&reply.tool_calls[0].arguments).unwrap()["unit"],
        "celsius"
    );
    assert_eq!(
        reply.usage,
        Usage {
            prompt_tokens: 2095,
            completion_tokens: 503
        }
    );
    assert_eq!(reply.request_id.as_deref(), Some("req_ant"));
    let sent = recorder.only_request();
    assert_eq!(sent.path_and_query, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("authorization"), None);
    let body = sent.json();
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["messages"][0]["role"], "user");
    assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    assert!(!sent.everything_but("x-api-key").contains(ANTHROPIC_KEY));
}

#[tokio::test]
async fn anthropic_streams_named_events() {
    let recorder = Recorder::start(vec![Canned::sse(&fixture("anthropic_stream.sse"))]).await;
    let client = build(spec(
        ProviderKind::Anthropic,
        Some(&recorder.url),
        Some(ANTHROPIC_KEY),
    ));
    let events: Vec<StreamEvent> = client
        .chat_stream(&request())
        .await
        .unwrap()
        .map(|e| e.unwrap())
        .collect()
        .await;
    let text: String = events
        .iter()
        .filter_map(|e| {
            if let StreamEvent::Text(t) = e {
                Some(t.as_str())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(text, "Okay, let's check.");
    let StreamEvent::Finished(reply) = events.last().unwrap() else {
        panic!("{events:?}")
    };
    assert_eq!(reply.tool_calls.len(), 1);
    assert_eq!(reply.tool_calls[0].name, "get_weather");
    assert_eq!(
        reply.tool_calls[0].arguments,
        "{\"location\": \"San Francisco, CA\"}"
    );
    assert_eq!(
        reply.usage,
        Usage {
            prompt_tokens: 25,
            completion_tokens: 89
        }
    );
    assert_eq!(recorder.only_request().json()["stream"], true);
}

#[tokio::test]
async fn a_rotated_key_is_used_by_the_next_request_without_a_new_client() {
    let recorder = Recorder::start(vec![Canned::json(200, &fixture("openai_chat.json"))]).await;
    let spec = spec(ProviderKind::OpenAi, Some(&recorder.url), Some(KEY));
    let credential = spec.credential.clone().unwrap();
    let client = build(spec);
    client.chat(&request()).await.unwrap();
    credential.replace(std::sync::Arc::new(agentfleet_config::Secret::new(
        "sk-proj-RotatedKey9876543210".into(),
    )));
    client.chat(&request()).await.unwrap();
    let requests = recorder.requests();
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(
        requests[1].header("authorization"),
        Some("Bearer sk-proj-RotatedKey9876543210")
    );
}

#[tokio::test]
async fn azure_entra_tokens_go_as_bearer_and_are_reread_when_the_file_changes() {
    let recorder = Recorder::start(vec![Canned::json(200, &fixture("azure_chat.json"))]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "eyJhbGciOiJub25lIn0.eyJ0YWciOiJmaXJzdCJ9.c2ln").unwrap();
    let source = std::sync::Arc::new(agentfleet_config::TokenSource::new(
        agentfleet_config::CredentialSource::File {
            path: "token".into(),
        },
        dir.path().to_owned(),
        None,
    ));
    let mut spec = spec(
        ProviderKind::AzureOpenAi,
        Some(&format!("{}/openai/v1", recorder.url)),
        None,
    );
    spec.token = Some(source);
    let client = build(spec);
    client.chat(&request()).await.unwrap();
    std::fs::write(
        &path,
        "eyJhbGciOiJub25lIn0.eyJ0YWciOiJzZWNvbmQtbG9uZ2VyIn0.c2ln",
    )
    .unwrap();
    client.chat(&request()).await.unwrap();
    let requests = recorder.requests();
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer eyJhbGciOiJub25lIn0.eyJ0YWciOiJmaXJzdCJ9.c2ln")
    );
    assert_eq!(requests[0].header("api-key"), None, "a token is not a key");
    assert_eq!(
        requests[1].header("authorization"),
        Some("Bearer eyJhbGciOiJub25lIn0.eyJ0YWciOiJzZWNvbmQtbG9uZ2VyIn0.c2ln")
    );
}
