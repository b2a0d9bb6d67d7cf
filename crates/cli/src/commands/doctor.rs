//! `agentfleet doctor` and `agentfleet explain`: the findings and diagnoses of
//! `agentfleet_doctor`, as text, JSON or SARIF.

use std::io::{Read, Write};

use serde::Serialize;

use crate::cli::{DoctorArgs, DoctorFormat, ExplainArgs};
use crate::exit::Exit;

pub fn run(args: &DoctorArgs) -> anyhow::Result<Exit> {
    let paths = if args.paths.is_empty() {
        vec![std::path::PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let report = match agentfleet_doctor::doctor(&paths) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("agentfleet doctor: {error}");
            return Ok(Exit::Usage);
        }
    };
    let errors = report
        .findings
        .iter()
        .filter(|f| f.severity == agentfleet_doctor::Severity::Error)
        .count();
    let mut out = std::io::stdout().lock();
    match args.format {
        DoctorFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        DoctorFormat::Sarif => {
            let sarif =
                agentfleet_doctor::sarif::to_sarif(&report.findings, env!("CARGO_PKG_VERSION"));
            serde_json::to_writer_pretty(&mut out, &sarif)?;
            writeln!(out)?;
        }
        DoctorFormat::Text => {
            for finding in &report.findings {
                let severity = match finding.severity {
                    agentfleet_doctor::Severity::Error => "error",
                    agentfleet_doctor::Severity::Warning => "warning",
                };
                writeln!(
                    out,
                    "{}:{}:{}: {severity}[{}]: {}",
                    finding.file,
                    finding.line,
                    finding.column,
                    finding.rule.id(),
                    finding.message
                )?;
                writeln!(out, "  fix: {}", finding.fix)?;
            }
            let warnings = report.findings.len() - errors;
            writeln!(
                out,
                "{} file{} read: {errors} error{}, {warnings} warning{}",
                report.files_read,
                if report.files_read == 1 { "" } else { "s" },
                if errors == 1 { "" } else { "s" },
                if warnings == 1 { "" } else { "s" }
            )?;
        }
    }
    Ok(if errors == 0 { Exit::Ok } else { Exit::Failure })
}

pub fn explain(args: &ExplainArgs) -> anyhow::Result<Exit> {
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
    let diagnoses = agentfleet_doctor::explain(&text);
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
