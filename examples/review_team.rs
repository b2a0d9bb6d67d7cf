//! Two agents taking turns until one approves: a round-robin team with a termination condition.
//!
//! Runs offline on an in-process stand-in, like `agentfleet run --team review` on the default
//! config.
//!
//! ```sh
//! cargo run -p agentfleet-agent --example review_team
//! ```

use std::sync::Arc;

use agentfleet_agent::{AssistantAgent, RunEvent, Speakers, Team, Termination};
use agentfleet_client::{ClientOptions, ClientSpec, ModelClient};
use agentfleet_config::{LiveCredential, ProviderKind, Secret};
use agentfleet_standin::{Script, Standin, StandinConfig};

fn client(
    standin: &Standin,
    key: &str,
) -> Result<Arc<dyn ModelClient>, agentfleet_client::BuildError> {
    agentfleet_client::build(
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
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = "sk-example-0123456789abcdef";
    let script = Script::parse(
        r#"
        [[rule]]
        system_contains = "You review"
        min_messages = 4
        reply = "Good. APPROVE"
        [[rule]]
        system_contains = "You review"
        reply = "Shorter, please."
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

    let writer = AssistantAgent::builder("writer", client(&standin, key)?)
        .system_message("You write haiku.")
        .build()?;
    let critic = AssistantAgent::builder("critic", client(&standin, key)?)
        .system_message("You review haiku and reply APPROVE when one is good.")
        .build()?;
    let termination = Termination {
        max_messages: Some(10),
        text_mention: Some("APPROVE".into()),
        ..Default::default()
    };
    let team = Team::new(
        "review",
        vec![writer, critic],
        Speakers::RoundRobin,
        termination,
    )?;

    let print: agentfleet_agent::EventSink = Arc::new(|event: &RunEvent| {
        if let RunEvent::Message(message) = event {
            println!("[{}] {}", message.source, message.content);
        }
    });
    let result = team
        .run("A haiku about queues that never lose a task.", &print)
        .await?;
    println!("stop: {}", result.stop_reason);
    Ok(())
}
