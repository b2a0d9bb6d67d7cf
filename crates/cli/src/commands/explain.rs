//! `agentfleet explain`: the diagnoses of `agentfleet_doctor::explain`, as text or JSON.

use std::io::{Read, Write};

use agentfleet_doctor::explain;
use serde::Serialize;

use crate::cli::ExplainArgs;
use crate::exit::Exit;

pub fn run(args: &ExplainArgs) -> anyhow::Result<Exit> {
    let (name, bytes) = match args.file.as_deref() {
        None => ("standard input".to_owned(), read_stdin()?),
        Some(path) if path.as_os_str() == "-" => ("standard input".to_owned(), read_stdin()?),
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => (path.display().to_string(), bytes),
            Err(error) => {
                eprintln!(
                    "agentfleet explain: cannot read {}: {error}",
                    path.display()
                );
                return Ok(Exit::Usage);
            }
        },
    };
    let text = String::from_utf8_lossy(&bytes);
    let diagnoses = explain(&text);
    let failures = diagnoses
        .iter()
        .filter(|d| d.cause.is_credential_failure())
        .count();
    let mut out = std::io::stdout().lock();
    if args.json {
        #[derive(Serialize)]
        struct Report<'a> {
            diagnoses: &'a [agentfleet_doctor::Diagnosis],
        }
        serde_json::to_writer_pretty(
            &mut out,
            &Report {
                diagnoses: &diagnoses,
            },
        )?;
        writeln!(out)?;
    } else {
        for diagnosis in &diagnoses {
            let provider = diagnosis
                .provider
                .map_or_else(String::new, |p| format!(" ({p})"));
            let look_alike = if diagnosis.cause.is_credential_failure() {
                ""
            } else {
                ", not a credential failure"
            };
            writeln!(
                out,
                "{name}:{}: {}{provider}{look_alike}",
                diagnosis.line,
                diagnosis.cause.as_str()
            )?;
            writeln!(out, "    evidence: {}", diagnosis.evidence)?;
            writeln!(out, "    fix: {}", diagnosis.fix)?;
        }
        if failures == 0 {
            writeln!(out, "no credential failure found in {name}")?;
        } else {
            writeln!(
                out,
                "{failures} credential failure{} found in {name}",
                if failures == 1 { "" } else { "s" }
            )?;
        }
    }
    Ok(if failures == 0 {
        Exit::Ok
    } else {
        Exit::Failure
    })
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::stdin().lock().read_to_end(&mut bytes)?;
    Ok(bytes)
}
