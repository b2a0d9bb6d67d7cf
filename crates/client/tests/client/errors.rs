//! Error bodies as providers and proxies send them: classification, hints, retries, and the
//! fingerprint that stands in for the key.

use std::time::Duration;

use agentfleet_client::{ChatRequest, ErrorKind, Message, ModelError};
use agentfleet_config::{Fingerprint, ProviderKind};

use crate::recorder::{Canned, Recorder, build, spec};

const AZURE_SHAPED: &str = "04e0e8440123456789abcdef01232687";
const KEY: &str = "sk-proj-ErrorTestKey0123456789abcdefXYZ";

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![Message::user("hi")],
        ..ChatRequest::default()
    }
}

async fn fail(kind: ProviderKind, key: &str, answers: Vec<Canned>) -> (ModelError, Recorder) {
    let recorder = Recorder::start(answers).await;
    let url = match kind {
        ProviderKind::AzureOpenAi => format!("{}/openai/v1", recorder.url),
        _ => recorder.url.clone(),
    };
    let error = build(spec(kind, Some(&url), Some(key)))
        .chat(&request())
        .await
        .unwrap_err();
    (error, recorder)
}

#[tokio::test]
async fn an_azure_key_sent_to_openai_is_named_from_the_masked_echo() {
    let body = r#"{"error":{"message":"Incorrect API key provided: 04e0e844********************2687. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
    let (error, recorder) = fail(
        ProviderKind::OpenAi,
        AZURE_SHAPED,
        vec![Canned::json(401, body).header("x-request-id", "req_401")],
    )
    .await;
    assert_eq!(error.kind, ErrorKind::AuthRejected);
    assert_eq!(error.status, Some(401));
    assert_eq!(error.code.as_deref(), Some("invalid_api_key"));
    assert_eq!(error.request_id.as_deref(), Some("req_401"));
    assert_eq!(error.fingerprint, Some(Fingerprint::of(AZURE_SHAPED)));
    assert!(
        error
            .hint
            .as_deref()
            .unwrap()
            .contains("Azure OpenAI key was sent to OpenAI"),
        "{error}"
    );
    assert_eq!(error.attempts, 1, "auth errors are never retried");
    assert_eq!(recorder.requests().len(), 1);
    let shown = error.to_string();
    assert!(
        !shown.contains("04e0e844") && !shown.contains("2687."),
        "the echo is masked: {shown}"
    );
    assert!(
        shown.starts_with(
            "p: auth-rejected (HTTP 401, invalid_api_key, request req_401, key sha256:"
        ),
        "{shown}"
    );
}

#[tokio::test]
async fn a_missing_key_is_auth_missing() {
    let body = r#"{"error":{"message":"You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).","type":"invalid_request_error","param":null,"code":null}}"#;
    let recorder = Recorder::start(vec![Canned::json(401, body)]).await;
    let error = build(spec(
        ProviderKind::OpenAiCompatible,
        Some(&recorder.url),
        None,
    ))
    .chat(&request())
    .await
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::AuthMissing);
    assert_eq!(error.fingerprint, None);
    assert!(error.hint.unwrap().contains("no key was sent"));
    assert_eq!(recorder.only_request().header("authorization"), None);
}

#[tokio::test]
async fn azure_bodies_carry_their_hints() {
    let wrong_key = r#"{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}"#;
    let (error, _) = fail(
        ProviderKind::AzureOpenAi,
        KEY,
        vec![Canned::json(401, wrong_key).header("apim-request-id", "apim-9")],
    )
    .await;
    assert_eq!(error.kind, ErrorKind::AuthRejected);
    assert_eq!(error.request_id.as_deref(), Some("apim-9"));
    let hint = error.hint.unwrap();
    assert!(
        hint.contains("another Azure resource") && hint.contains("shape of an OpenAI key"),
        "{hint}"
    );

    let bearer = r#"{"statusCode":401,"message":"Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired."}"#;
    let (error, _) = fail(
        ProviderKind::AzureOpenAi,
        AZURE_SHAPED,
        vec![Canned::json(401, bearer)],
    )
    .await;
    assert_eq!(error.kind, ErrorKind::AuthRejected);
    assert!(error.hint.unwrap().contains("api-key header"));

    let rbac = r#"{"error":{"code":"PermissionDenied","message":"Principal does not have access to API/Operation."}}"#;
    let (error, _) = fail(
        ProviderKind::AzureOpenAi,
        AZURE_SHAPED,
        vec![Canned::json(401, rbac)],
    )
    .await;
    assert_eq!(error.kind, ErrorKind::PermissionDenied);
    assert!(
        error
            .hint
            .unwrap()
            .contains("Cognitive Services OpenAI User")
    );

    let deployment = r#"{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}}"#;
    let (error, _) = fail(
        ProviderKind::AzureOpenAi,
        AZURE_SHAPED,
        vec![Canned::json(404, deployment)],
    )
    .await;
    assert_eq!(error.kind, ErrorKind::NotFound);
    assert_eq!(error.code.as_deref(), Some("DeploymentNotFound"));
}

#[tokio::test]
async fn anthropic_gemini_and_proxy_bodies() {
    let anthropic = r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_011CUBgWE2fdbDGiPKTUQTwy"}"#;
    let (error, _) = fail(
        ProviderKind::Anthropic,
        "sk-ant-api03-wrongAA",
        vec![Canned::json(401, anthropic).header("request-id", "req_011")],
    )
    .await;
    assert_eq!(error.kind, ErrorKind::AuthRejected);
    assert_eq!(error.code.as_deref(), Some("authentication_error"));
    assert!(error.hint.unwrap().contains("inherited"));

    let gemini = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}"#;
    let (error, _) = fail(
        ProviderKind::OpenAiCompatible,
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        vec![Canned::json(400, gemini)],
    )
    .await;
    assert_eq!(
        error.kind,
        ErrorKind::AuthRejected,
        "Gemini's invalid key is a 400"
    );

    let litellm = r#"{"error": "litellm.AuthenticationError: AuthenticationError: OpenAIException - The api_key client option must be set either by passing api_key to the client or by setting the OPENAI_API_KEY environment variable"}"#;
    let (error, recorder) = fail(
        ProviderKind::OpenAiCompatible,
        KEY,
        vec![Canned::json(500, litellm)],
    )
    .await;
    assert_eq!(
        error.kind,
        ErrorKind::AuthMissing,
        "a proxy's 500 wrapping an auth failure"
    );
    assert_eq!(
        recorder.requests().len(),
        1,
        "and it is not retried like a server error"
    );

    let unknown_key = r#"{"error":{"message":"Authentication Error, Invalid proxy server token passed. Received API Key = sk-...m31Q, Key Hash (Token) =abc. Unable to find token in cache or `LiteLLM_VerificationTokenTable`","type":"token_not_found_in_db","param":"key","code":"401"}}"#;
    let (error, _) = fail(
        ProviderKind::OpenAiCompatible,
        KEY,
        vec![Canned::json(401, unknown_key)],
    )
    .await;
    assert_eq!(error.kind, ErrorKind::AuthRejected);
}

#[tokio::test]
async fn look_alikes_are_not_credential_failures() {
    let quota = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
    let (error, recorder) = fail(ProviderKind::OpenAi, KEY, vec![Canned::json(429, quota)]).await;
    assert_eq!(error.kind, ErrorKind::QuotaExhausted);
    assert_eq!(recorder.requests().len(), 1, "quota is not retried");
    assert!(error.hint.unwrap().contains("not the credential"));

    let region = r#"{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}"#;
    let (error, _) = fail(ProviderKind::OpenAi, KEY, vec![Canned::json(403, region)]).await;
    assert_eq!(error.kind, ErrorKind::PermissionDenied);
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_with_backoff() {
    let limited = r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
    let ok = crate::recorder::fixture("openai_chat.json");
    let recorder = Recorder::start(vec![
        Canned::json(429, limited).header("retry-after-ms", "5"),
        Canned::json(503, "upstream down"),
        Canned::json(200, &ok),
    ])
    .await;
    let reply = build(spec(ProviderKind::OpenAi, Some(&recorder.url), Some(KEY)))
        .chat(&request())
        .await
        .unwrap();
    assert_eq!(reply.content, "The capital of France is Paris.");
    assert_eq!(recorder.requests().len(), 3);

    let (error, recorder) = fail(ProviderKind::OpenAi, KEY, vec![Canned::json(500, r#"{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}"#)]).await;
    assert_eq!(error.kind, ErrorKind::Server);
    assert_eq!(error.attempts, 3);
    assert_eq!(recorder.requests().len(), 3);
}

#[tokio::test]
async fn timeouts_connections_and_garbage() {
    let recorder = Recorder::start(vec![
        Canned::json(200, "{}").delayed(Duration::from_secs(3)),
    ])
    .await;
    let mut options = crate::recorder::fast_options();
    options.request_timeout = Duration::from_millis(200);
    options.retry.max_attempts = 1;
    let client = agentfleet_client::build(
        spec(ProviderKind::OpenAi, Some(&recorder.url), Some(KEY)),
        options,
    )
    .unwrap();
    assert_eq!(
        client.chat(&request()).await.unwrap_err().kind,
        ErrorKind::Timeout
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let error = build(spec(
        ProviderKind::OpenAi,
        Some(&format!("http://{address}")),
        Some(KEY),
    ))
    .chat(&request())
    .await
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Connection);
    assert_eq!(error.attempts, 3);
    assert!(!error.to_string().contains(KEY));

    let (error, _) = fail(
        ProviderKind::OpenAi,
        KEY,
        vec![Canned::json(200, "this is not json")],
    )
    .await;
    assert_eq!(error.kind, ErrorKind::MalformedResponse);
    let (error, _) = fail(
        ProviderKind::OpenAi,
        KEY,
        vec![Canned::json(200, r#"{"choices": []}"#)],
    )
    .await;
    assert_eq!(error.kind, ErrorKind::MalformedResponse);
}

#[tokio::test]
async fn a_stream_cut_short_is_an_error_not_a_reply() {
    let cut = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n";
    let recorder = Recorder::start(vec![Canned::sse(cut)]).await;
    let client = build(spec(ProviderKind::OpenAi, Some(&recorder.url), Some(KEY)));
    use futures_util::StreamExt;
    let events: Vec<_> = client
        .chat_stream(&request())
        .await
        .unwrap()
        .collect()
        .await;
    assert!(
        matches!(events.last(), Some(Err(error)) if error.kind == ErrorKind::Connection),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_key_that_cannot_be_a_header_fails_locally_without_leaking() {
    let recorder = Recorder::start(vec![Canned::json(200, "{}")]).await;
    let error = build(spec(
        ProviderKind::OpenAi,
        Some(&recorder.url),
        Some("sk-proj-bad\nkey"),
    ))
    .chat(&request())
    .await
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::AuthRejected);
    assert_eq!(error.status, None);
    assert!(recorder.requests().is_empty(), "nothing was sent");
    assert!(!error.to_string().contains("bad"));
}

#[tokio::test]
async fn a_refused_request_is_bad_request_and_not_retried() {
    let body = r#"{"error":{"message":"Invalid value for 'temperature': expected a number between 0 and 2.","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}"#;
    let (error, recorder) = fail(ProviderKind::OpenAi, KEY, vec![Canned::json(400, body)]).await;
    assert_eq!(error.kind, ErrorKind::BadRequest);
    assert_eq!(error.code.as_deref(), Some("invalid_value"));
    assert_eq!(recorder.requests().len(), 1);
}
