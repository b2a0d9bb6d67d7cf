//! One agent with a typed Rust tool, embedded in your own program.
//!
//! Runs offline: a stand-in provider is started in this process and reached over loopback HTTP,
//! through the same client and credential path a real provider uses. To call OpenAI instead,
//! build the `ClientSpec` from your config with `ClientSpec::from_check` (see `agentfleet run`).
//!
//! ```sh
//! cargo run -p agentfleet-agent --example single_agent
//! ```

use std::sync::Arc;

use agentfleet_agent::{AssistantAgent, RunEvent, function};
use agentfleet_client::{ClientOptions, ClientSpec};
use agentfleet_config::{LiveCredential, ProviderKind, Secret};
use agentfleet_standin::{Script, Standin, StandinConfig};
use schemars::JsonSchema;
use serde::Deserialize;

/// The tool's arguments: their JSON Schema is what the model is told to send.
#[derive(Deserialize, JsonSchema)]
struct Forecast {
    /// The city to forecast.
    city: String,
    /// How many days ahead, from 0 (today).
    days: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A stand-in that asks for the tool, then answers from its result.
    let key = "sk-example-0123456789abcdef";
    let script = Script::parse(
        r#"
        [[rule]]
        last_role = "tool"
        reply = "Pack sunglasses: it will be sunny."
        [[rule]]
        tool_calls = [{ name = "forecast", arguments = '{"city": "Lisbon", "days": 1}' }]
        "#,
    )?;
    let standin = Standin::start(
        "127.0.0.1:0",
        StandinConfig {
            keys: vec![key.into()],
            script,
            ..Default::default()
        },
    )
    .await?;

    let client = agentfleet_client::build(
        ClientSpec {
            name: "local".into(),
            kind: ProviderKind::Standin,
            model: "standin".into(),
            url: Some(standin.url()),
            deployment: None,
            api_version: None,
            organization: None,
            project: None,
            credential: Some(Arc::new(LiveCredential::new(Arc::new(Secret::new(
                key.into(),
            ))))),
            token: None,
        },
        ClientOptions::default(),
    )?;

    let forecast = function(
        "forecast",
        "The weather forecast for a city",
        |args: Forecast| async move { Ok(format!("{} in {} day(s): sunny, 24C", args.city, args.days)) },
    );
    let agent = AssistantAgent::builder("planner", client)
        .system_message("You help people pack for trips.")
        .tool(forecast)
        .reflect_on_tool_use(true)
        .build()?;

    let print: agentfleet_agent::EventSink = Arc::new(|event: &RunEvent| {
        if let RunEvent::Message(message) = event {
            println!("[{}] {}", message.source, message.content);
        }
    });
    let result = agent
        .run("What should I pack for Lisbon tomorrow?", &print)
        .await?;
    println!(
        "stop: {}; {} completion tokens",
        result.stop_reason, result.usage.completion_tokens
    );
    Ok(())
}
