//! `agentfleet check`: the credential report, as a table or as JSON.

use std::io::Write;

use agentfleet_config::{
    self as config, CheckReport, ConfigError, Diagnostic, ProcessEnv, ProviderCheck, Severity,
};
use serde::Serialize;

use crate::cli::CheckArgs;
use crate::exit::Exit;

pub fn run(args: &CheckArgs) -> anyhow::Result<Exit> {
    let env = ProcessEnv;
    let loaded = config::locate(args.config.config.as_deref(), &env)
        .and_then(|location| config::load(&location).map(|config| (location, config)));
    let (location, config) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => {
            print_config_error(&error, args.json)?;
            return Ok(Exit::Config);
        }
    };
    let report = config::check(&config, &env);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_table(&mut out, &report, location.named_by)?;
    }
    out.flush()?;
    Ok(if report.ok { Exit::Ok } else { Exit::Config })
}

fn print_config_error(error: &ConfigError, as_json: bool) -> anyhow::Result<()> {
    let diagnostics = error.diagnostics();
    if as_json {
        #[derive(Serialize)]
        struct Unusable<'a> {
            ok: bool,
            errors: &'a [Diagnostic],
        }
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(
            &mut out,
            &Unusable {
                ok: false,
                errors: &diagnostics,
            },
        )?;
        writeln!(out)?;
        out.flush()?;
    } else {
        let mut err = std::io::stderr().lock();
        for diagnostic in &diagnostics {
            writeln!(err, "error: {diagnostic}")?;
        }
        if let ConfigError::Invalid { .. } = error {
            writeln!(err, "\n{error}; no credential was checked")?;
        }
    }
    Ok(())
}

fn write_table(out: &mut impl Write, report: &CheckReport, named_by: &str) -> std::io::Result<()> {
    writeln!(
        out,
        "config: {} (from {named_by})\n",
        report.config.display()
    )?;
    if report.providers.is_empty() {
        writeln!(
            out,
            "no providers are declared: add a [providers.NAME] table"
        )?;
        return Ok(());
    }
    let header = [
        "PROVIDER",
        "KIND",
        "SOURCE",
        "PRESENT",
        "FINGERPRINT",
        "PROBLEMS",
        "USED BY",
    ];
    let rows: Vec<[String; 7]> = report.providers.iter().map(row).collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 7]| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.trim_end().to_owned()
    };
    writeln!(out, "{}", line(header))?;
    for row in &rows {
        writeln!(out, "{}", line(row.each_ref().map(String::as_str)))?;
    }
    let mut any_problem = false;
    for provider in &report.providers {
        for problem in &provider.problems {
            if !any_problem {
                writeln!(out)?;
                any_problem = true;
            }
            writeln!(
                out,
                "{}[{}]: {}",
                problem.severity, problem.code, problem.message
            )?;
            writeln!(out, "  fix: {}", problem.fix)?;
        }
    }
    let unusable = report.providers.iter().filter(|p| !p.is_usable()).count();
    let total = report.providers.len();
    let noun = if total == 1 { "provider" } else { "providers" };
    writeln!(out)?;
    if unusable == 0 {
        writeln!(out, "ok: {total} {noun}, every credential usable")?;
    } else {
        writeln!(
            out,
            "not ok: {unusable} of {total} {noun} unusable; nothing may start work with them (exit 78)"
        )?;
    }
    Ok(())
}

fn row(provider: &ProviderCheck) -> [String; 7] {
    let fingerprint = match (&provider.fingerprint, &provider.shape) {
        (Some(fingerprint), Some(shape)) => format!("{} {fingerprint}", shape.label()),
        (Some(fingerprint), None) => fingerprint.to_string(),
        _ => "-".to_owned(),
    };
    let mut worst: Vec<&str> = Vec::new();
    for problem in provider
        .problems
        .iter()
        .filter(|problem| problem.severity > Severity::Note)
    {
        if !worst.contains(&problem.code.as_str()) {
            worst.push(problem.code.as_str());
        }
    }
    let problems = if worst.is_empty() {
        "ok".to_owned()
    } else {
        worst.join(", ")
    };
    let used_by = if provider.used_by.is_empty() {
        "-".to_owned()
    } else {
        provider.used_by.join(", ")
    };
    [
        provider.name.clone(),
        provider.kind.to_string(),
        provider.source.clone(),
        if provider.present { "yes" } else { "no" }.to_owned(),
        fingerprint,
        problems,
        used_by,
    ]
}
