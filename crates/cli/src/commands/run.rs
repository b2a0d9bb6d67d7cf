//! `agentfleet run`: one task on one agent or team, the conversation printed as it happens.

use std::io::Write;
use std::sync::{Arc, Mutex};

use agentfleet_agent::{
    EventSink, MessageKind, RunEvent, RunFailure, Runtime, RuntimeError, Target, TaskResult,
};
use agentfleet_client::{ClientOptions, ErrorKind};
use agentfleet_config::{self as config, ProcessEnv};
use anyhow::Context;
use serde::Serialize;

use crate::cli::RunArgs;
use crate::commands::check::print_config_error;
use crate::exit::Exit;

pub fn run(args: &RunArgs) -> anyhow::Result<Exit> {
    let env = ProcessEnv;
    let loaded = config::locate(args.config.config.as_deref(), &env)
        .and_then(|location| config::load(&location));
    let config = match loaded {
        Ok(config) => config,
        Err(error) => {
            print_config_error(&error, args.json)?;
            return Ok(Exit::Config);
        }
    };
    let target = match (&args.agent, &args.team) {
        (Some(agent), _) => Target::Agent(agent),
        (None, Some(team)) => Target::Team(team),
        (None, None) => {
            eprintln!("agentfleet run: name an --agent or a --team");
            return Ok(Exit::Usage);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let built = match Runtime::build(&config, &env, target, ClientOptions::default()).await {
            Ok(built) => built,
            Err(error) => return report_build_error(&error, args.json),
        };
        let events = if args.json {
            agentfleet_agent::no_events()
        } else {
            console()
        };
        let outcome = built.run(target, &args.task, &events).await;
        let mut out = std::io::stdout().lock();
        match outcome {
            Ok(result) => {
                if args.json {
                    serde_json::to_writer_pretty(&mut out, &result)?;
                    writeln!(out)?;
                } else {
                    write_summary(&mut out, &result)?;
                }
                Ok(Exit::Ok)
            }
            Err(failure) => report_failure(&mut out, &failure, args.json),
        }
    })
}

/// Prints each message as it completes, and streamed text as it arrives.
fn console() -> EventSink {
    // The agent whose reply is streaming, if any, so its final message is not printed twice.
    let streaming: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    Arc::new(move |event: &RunEvent| {
        let mut out = std::io::stdout().lock();
        let mut streaming = streaming.lock().unwrap_or_else(|p| p.into_inner());
        // Output to a closed terminal is not worth failing a run for.
        let _ = match event {
            RunEvent::Delta { source, text } => {
                if streaming.as_deref() != Some(source.as_str()) {
                    *streaming = Some(source.clone());
                    let _ = writeln!(out, "---------- {source} ----------");
                }
                write!(out, "{text}").and_then(|()| out.flush())
            }
            RunEvent::Selected { speaker, .. } => writeln!(out, "[selector chose {speaker}]"),
            RunEvent::Message(message) => {
                let streamed = streaming
                    .take()
                    .is_some_and(|source| source == message.source);
                match message.kind {
                    MessageKind::Text | MessageKind::ToolCallSummary if streamed => writeln!(out),
                    MessageKind::Text | MessageKind::ToolCallSummary => {
                        writeln!(
                            out,
                            "---------- {} ----------\n{}",
                            message.source, message.content
                        )
                    }
                    MessageKind::ToolCall => {
                        let calls: Vec<String> = message
                            .tool_calls
                            .iter()
                            .map(|call| format!("{}({})", call.name, call.arguments))
                            .collect();
                        writeln!(
                            out,
                            "---------- {}: tool call ----------\n{}",
                            message.source,
                            calls.join("\n")
                        )
                    }
                    MessageKind::ToolResult => {
                        let results: Vec<String> = message
                            .tool_results
                            .iter()
                            .map(|result| {
                                format!(
                                    "{}{}: {}",
                                    result.name,
                                    if result.is_error { " (error)" } else { "" },
                                    result.content
                                )
                            })
                            .collect();
                        writeln!(
                            out,
                            "---------- {}: tool result ----------\n{}",
                            message.source,
                            results.join("\n")
                        )
                    }
                }
            }
        };
    })
}

fn write_summary(out: &mut impl Write, result: &TaskResult) -> std::io::Result<()> {
    writeln!(out, "----------")?;
    writeln!(out, "stop: {}", result.stop_reason)?;
    writeln!(
        out,
        "usage: {} prompt tokens, {} completion tokens, {} messages",
        result.usage.prompt_tokens,
        result.usage.completion_tokens,
        result.messages.len()
    )
}

fn report_build_error(error: &RuntimeError, as_json: bool) -> anyhow::Result<Exit> {
    let exit = match error {
        RuntimeError::UnknownAgent { .. } | RuntimeError::UnknownTeam { .. } => Exit::Usage,
        _ => Exit::Config,
    };
    if as_json {
        #[derive(Serialize)]
        struct Refused<'a> {
            ok: bool,
            error: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            providers: Option<&'a [agentfleet_config::ProviderCheck]>,
        }
        let providers = match error {
            RuntimeError::Credentials { unusable } => Some(unusable.as_slice()),
            _ => None,
        };
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(
            &mut out,
            &Refused {
                ok: false,
                error: error.to_string(),
                providers,
            },
        )?;
        writeln!(out)?;
        return Ok(exit);
    }
    let mut err = std::io::stderr().lock();
    writeln!(err, "agentfleet run: {error}")?;
    if let RuntimeError::Credentials { unusable } = error {
        for check in unusable {
            for problem in &check.problems {
                writeln!(
                    err,
                    "{}[{}]: {}",
                    problem.severity, problem.code, problem.message
                )?;
                writeln!(err, "  fix: {}", problem.fix)?;
            }
        }
        writeln!(err, "nothing was sent to any provider (exit 78)")?;
    }
    Ok(exit)
}

fn report_failure(
    out: &mut impl Write,
    failure: &RunFailure,
    as_json: bool,
) -> anyhow::Result<Exit> {
    let model = failure.error.model_error();
    let exit = match model.map(|error| error.kind) {
        Some(ErrorKind::AuthMissing | ErrorKind::AuthRejected | ErrorKind::PermissionDenied) => {
            Exit::Rejected
        }
        Some(
            ErrorKind::Connection | ErrorKind::Timeout | ErrorKind::Server | ErrorKind::RateLimited,
        ) => Exit::Unavailable,
        _ => Exit::Failure,
    };
    if as_json {
        #[derive(Serialize)]
        struct Failed<'a> {
            ok: bool,
            error: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            model_error: Option<&'a agentfleet_client::ModelError>,
            messages: &'a [agentfleet_agent::TaskMessage],
        }
        serde_json::to_writer_pretty(
            &mut *out,
            &Failed {
                ok: false,
                error: failure.error.to_string(),
                model_error: model,
                messages: &failure.messages,
            },
        )?;
        writeln!(out)?;
    } else {
        eprintln!("agentfleet run: {}", failure.error);
    }
    Ok(exit)
}
