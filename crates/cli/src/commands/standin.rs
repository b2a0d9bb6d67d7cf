//! `agentfleet standin`: serve the stand-in provider until SIGINT or SIGTERM.

use std::io::Write;
use std::time::Duration;

use agentfleet_standin::{Faults, Script, Standin, StandinConfig, StandinError};
use anyhow::Context;

use crate::cli::StandinArgs;
use crate::exit::Exit;

pub fn run(args: &StandinArgs) -> anyhow::Result<Exit> {
    let usage = |message: String| {
        eprintln!("agentfleet standin: {message}");
        Ok(Exit::Usage)
    };
    let faults = match args.fail_rate.as_deref().map(Faults::parse).transpose() {
        Ok(faults) => faults.unwrap_or_default(),
        Err(error) => return usage(error.to_string()),
    };
    let script = match args.script.as_deref().map(Script::load).transpose() {
        Ok(script) => script.unwrap_or_default(),
        Err(error) => return usage(error.to_string()),
    };
    let config = StandinConfig {
        keys: args.keys.clone(),
        keys_file: args.keys_file.clone(),
        latency: Duration::from_millis(args.latency_ms),
        faults,
        script,
        deployments: (!args.deployments.is_empty()).then(|| args.deployments.clone()),
    };
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let standin = match Standin::start(&args.addr, config).await {
            Ok(standin) => standin,
            Err(error @ (StandinError::NoKeys | StandinError::KeysFile(_))) => {
                return usage(error.to_string());
            }
            Err(error) => return Err(error.into()),
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", standin.url())?;
        out.flush()?;
        drop(out);
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("cannot listen for SIGTERM")?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        standin.stop().await;
        Ok(Exit::Ok)
    })
}
