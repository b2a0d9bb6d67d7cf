//! `agentfleet check`: the credential report, as a table or as JSON.

use std::io::Write;

use std::time::Duration;

use agentfleet_client::{
    BuildError, ClientOptions, ClientSpec, ErrorKind, ModelError, RetryPolicy,
};
use agentfleet_config::{
    self as config, CheckReport, ConfigError, Diagnostic, ProcessEnv, ProviderCheck, ProviderKind,
    Severity,
};
use anyhow::Context;
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
    let probes = if args.probe {
        probe_all(&config, &report)?
    } else {
        Vec::new()
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        #[derive(Serialize)]
        struct Provider<'a> {
            #[serde(flatten)]
            check: &'a ProviderCheck,
            #[serde(skip_serializing_if = "Option::is_none")]
            probe: Option<&'a Probe>,
        }
        #[derive(Serialize)]
        struct Report<'a> {
            ok: bool,
            config: &'a std::path::Path,
            providers: Vec<Provider<'a>>,
        }
        let providers = report
            .providers
            .iter()
            .enumerate()
            .map(|(index, check)| Provider {
                check,
                probe: probes.get(index),
            })
            .collect();
        let ok = report.ok && probes.iter().all(|probe| probe.ok);
        serde_json::to_writer_pretty(
            &mut out,
            &Report {
                ok,
                config: &report.config,
                providers,
            },
        )?;
        writeln!(out)?;
    } else {
        write_table(&mut out, &report, &probes, location.named_by)?;
    }
    out.flush()?;
    let offline = if report.ok { Exit::Ok } else { Exit::Config };
    Ok(probes
        .iter()
        .map(|probe| probe.exit)
        .fold(offline, Exit::max))
}

/// The outcome of one provider's probe.
#[derive(Debug, Serialize)]
struct Probe {
    ok: bool,
    /// The error kind, or `skipped`; `null` when the probe passed.
    kind: Option<String>,
    status: Option<u16>,
    hint: Option<String>,
    #[serde(skip)]
    error: Option<ModelError>,
    #[serde(skip)]
    exit: Exit,
}

impl Probe {
    fn skipped(ok: bool, hint: &str) -> Self {
        Self {
            ok,
            kind: Some("skipped".to_owned()),
            status: None,
            hint: Some(hint.to_owned()),
            error: None,
            exit: Exit::Ok,
        }
    }
}

/// Probes every usable provider at once, in a runtime of this command's own.
fn probe_all(config: &config::Config, report: &CheckReport) -> anyhow::Result<Vec<Probe>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(20),
        retry: RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        },
    };
    runtime.block_on(async {
        let probes = config.providers.iter().zip(&report.providers).map(|(provider, check)| {
            let options = options.clone();
            async move {
                if !check.is_usable() {
                    return Probe::skipped(false, "not probed: fix the problems found offline first");
                }
                let client = match ClientSpec::from_check(provider, check).and_then(|spec| agentfleet_client::build(spec, options)) {
                    Ok(client) => client,
                    Err(BuildError::NoUrl { .. }) if provider.kind == ProviderKind::Standin => {
                        return Probe::skipped(true, "not probed: the in-process stand-in starts inside the command that uses it");
                    }
                    Err(error) => {
                        return Probe { ok: false, kind: Some("build".to_owned()), status: None, hint: Some(error.to_string()), error: None, exit: Exit::Config };
                    }
                };
                match client.probe().await {
                    Ok(()) => Probe { ok: true, kind: None, status: None, hint: None, error: None, exit: Exit::Ok },
                    Err(error) => Probe {
                        ok: false,
                        kind: Some(error.kind.to_string()),
                        status: error.status,
                        hint: error.hint.clone(),
                        exit: match error.kind {
                            ErrorKind::AuthMissing | ErrorKind::AuthRejected | ErrorKind::PermissionDenied => Exit::Rejected,
                            ErrorKind::NotFound | ErrorKind::BadRequest => Exit::Config,
                            _ => Exit::Unavailable,
                        },
                        error: Some(error),
                    },
                }
            }
        });
        Ok(futures_util::future::join_all(probes).await)
    })
}

pub(crate) fn print_config_error(error: &ConfigError, as_json: bool) -> anyhow::Result<()> {
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

fn write_table(
    out: &mut impl Write,
    report: &CheckReport,
    probes: &[Probe],
    named_by: &str,
) -> std::io::Result<()> {
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
    let mut header = vec![
        "PROVIDER",
        "KIND",
        "SOURCE",
        "PRESENT",
        "FINGERPRINT",
        "PROBLEMS",
        "USED BY",
    ];
    if !probes.is_empty() {
        header.insert(6, "PROBE");
    }
    let rows: Vec<Vec<String>> = report
        .providers
        .iter()
        .enumerate()
        .map(|(index, provider)| {
            let mut cells = row(provider);
            if let Some(probe) = probes.get(index) {
                cells.insert(6, probe.kind.clone().unwrap_or_else(|| "ok".to_owned()));
            }
            cells
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.trim_end().to_owned()
    };
    writeln!(out, "{}", line(&header))?;
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cells))?;
    }
    let mut first = true;
    let mut separate = |out: &mut dyn Write| -> std::io::Result<()> {
        if std::mem::take(&mut first) {
            writeln!(out)?;
        }
        Ok(())
    };
    for (index, provider) in report.providers.iter().enumerate() {
        for problem in &provider.problems {
            separate(out)?;
            writeln!(
                out,
                "{}[{}]: {}",
                problem.severity, problem.code, problem.message
            )?;
            writeln!(out, "  fix: {}", problem.fix)?;
        }
        if let Some(Probe {
            error: Some(error), ..
        }) = probes.get(index)
        {
            separate(out)?;
            writeln!(out, "error[probe]: {error}")?;
        }
    }
    let unusable = report.providers.iter().filter(|p| !p.is_usable()).count();
    let failed_probes = probes.iter().filter(|p| !p.ok && p.error.is_some()).count();
    let total = report.providers.len();
    let noun = if total == 1 { "provider" } else { "providers" };
    writeln!(out)?;
    if unusable > 0 {
        writeln!(
            out,
            "not ok: {unusable} of {total} {noun} unusable; nothing may start work with them (exit 78)"
        )?;
    } else if failed_probes > 0 {
        writeln!(
            out,
            "not ok: {failed_probes} of {total} {noun} failed the probe"
        )?;
    } else if probes.is_empty() {
        writeln!(out, "ok: {total} {noun}, every credential usable")?;
    } else {
        writeln!(
            out,
            "ok: {total} {noun}, every credential usable and accepted"
        )?;
    }
    Ok(())
}

fn row(provider: &ProviderCheck) -> Vec<String> {
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
    let (source, fingerprint) = match &provider.fallback {
        Some(fallback) => (
            format!("{}, fallback {}", provider.source, fallback.source),
            format!(
                "{fingerprint}, fallback {}",
                fallback
                    .fingerprint
                    .map_or_else(|| "-".to_owned(), |f| f.to_string())
            ),
        ),
        None => (provider.source.clone(), fingerprint),
    };
    vec![
        provider.name.clone(),
        provider.kind.to_string(),
        source,
        if provider.present { "yes" } else { "no" }.to_owned(),
        fingerprint,
        problems,
        used_by,
    ]
}
