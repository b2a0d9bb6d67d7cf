//! `agentfleet submit`, `results`, `cancel` and `queue stats`: the task queue from the command
//! line. The queue's URL is shown only with its password masked.

use std::io::Write;

use agentfleet_config::{self as config, Config, ConfigError, ProcessEnv};
use agentfleet_queue::{NewTask, Queue, QueueError, Target, TaskRecord, TaskState};
use anyhow::Context;
use serde::Deserialize;

use crate::cli::{CancelArgs, ConfigArgs, QueueArgs, ResultsArgs, StatsArgs, SubmitArgs};
use crate::commands::check::print_config_error;
use crate::exit::Exit;

/// The config, if one can be found; `Err` carries the exit code after the error was printed.
pub(crate) fn load_config(
    args: &ConfigArgs,
    required: bool,
    json: bool,
) -> Result<Option<Config>, Exit> {
    let located = match config::locate(args.config.as_deref(), &ProcessEnv) {
        Ok(located) => located,
        Err(ConfigError::NotFound) if !required => return Ok(None),
        Err(error) => {
            let _ = print_config_error(&error, json);
            return Err(Exit::Config);
        }
    };
    match config::load(&located) {
        Ok(config) => Ok(Some(config)),
        Err(error) => {
            let _ = print_config_error(&error, json);
            Err(Exit::Config)
        }
    }
}

/// Connects to the queue the arguments and config name.
pub(crate) async fn open(args: &QueueArgs, config: Option<&Config>) -> Result<Queue, Exit> {
    let url = match config::queue_url(config, args.queue_url.as_deref(), &ProcessEnv) {
        Ok(url) => url,
        Err(message) => {
            eprintln!("agentfleet: {message}");
            return Err(Exit::Config);
        }
    };
    Queue::connect(url.url.expose()).await.map_err(|error| {
        eprintln!("agentfleet: {error} (queue named by {})", url.named_by);
        queue_exit(&error)
    })
}

pub(crate) fn queue_exit(error: &QueueError) -> Exit {
    match error {
        QueueError::Unavailable { .. } => Exit::Unavailable,
        QueueError::InvalidUrl { .. } => Exit::Config,
        _ => Exit::Failure,
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// One line of a tasks file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    task: String,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    priority: Option<i32>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

/// The task for `target`, with the providers it needs, or why it cannot be run.
fn new_task(config: &Config, text: String, target: Target) -> Result<NewTask, String> {
    let needs = match &target {
        Target::Agent(name) => match config.agent(name) {
            Some(agent) => vec![agent.provider.clone()],
            None => return Err(format!("there is no agent named {name}")),
        },
        Target::Team(name) => match config.team(name) {
            Some(team) => config
                .providers_of_team(team)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            None => return Err(format!("there is no team named {name}")),
        },
    };
    if text.trim().is_empty() {
        return Err("the task is empty".to_owned());
    }
    Ok(NewTask {
        needs,
        max_attempts: config.queue.max_attempts,
        ..NewTask::new(text, target)
    })
}

fn default_target(args: &SubmitArgs) -> Option<Target> {
    match (&args.agent, &args.team) {
        (Some(agent), _) => Some(Target::Agent(agent.clone())),
        (None, Some(team)) => Some(Target::Team(team.clone())),
        (None, None) => None,
    }
}

pub fn submit(args: &SubmitArgs) -> anyhow::Result<Exit> {
    let config = match load_config(&args.queue.config, true, args.json) {
        Ok(Some(config)) => config,
        Ok(None) => return Ok(Exit::Config),
        Err(exit) => return Ok(exit),
    };
    let mut tasks = Vec::new();
    let mut problems = Vec::new();
    if let Some(text) = &args.task {
        match default_target(args) {
            None => problems.push("name the --agent or --team that runs the task".to_owned()),
            Some(target) => match new_task(&config, text.clone(), target) {
                Ok(task) => tasks.push(NewTask {
                    idempotency_key: args.key.clone(),
                    priority: args.priority,
                    ..task
                }),
                Err(problem) => problems.push(problem),
            },
        }
    }
    if let Some(path) = &args.file {
        tasks_from_file(
            &config,
            path,
            default_target(args),
            args.priority,
            &mut tasks,
            &mut problems,
        )?;
    }
    if !problems.is_empty() {
        report_problems(&problems);
        return Ok(Exit::Data);
    }
    runtime()?.block_on(async {
        let queue = match open(&args.queue, Some(&config)).await {
            Ok(queue) => queue,
            Err(exit) => return Ok(exit),
        };
        submit_tasks(
            &queue,
            &tasks,
            if args.json { Report::Json } else { Report::Ids },
        )
        .await
    })
}

/// Prints each problem of a task list, and that nothing was submitted.
pub(crate) fn report_problems(problems: &[String]) {
    for problem in problems {
        eprintln!("error: {problem}");
    }
    eprintln!("nothing was submitted");
}

/// Reads a JSON Lines tasks file into `tasks`, each problem into `problems` by line.
pub(crate) fn tasks_from_file(
    config: &Config,
    path: &std::path::Path,
    default: Option<Target>,
    default_priority: i32,
    tasks: &mut Vec<NewTask>,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let before = tasks.len();
    for (index, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let at = format!("{}:{}", path.display(), index + 1);
        let line: Line = match serde_json::from_str(raw) {
            Ok(line) => line,
            Err(error) => {
                problems.push(format!("{at}: not a task line ({error}); write {{\"task\": \"...\", \"agent\": \"NAME\"}}"));
                continue;
            }
        };
        let target = match (line.agent, line.team) {
            (Some(_), Some(_)) => {
                problems.push(format!("{at}: name an agent or a team, not both"));
                continue;
            }
            (Some(agent), None) => Some(Target::Agent(agent)),
            (None, Some(team)) => Some(Target::Team(team)),
            (None, None) => default.clone(),
        };
        let Some(target) = target else {
            problems.push(format!(
                "{at}: no agent or team (add one to the line, or pass --agent or --team)"
            ));
            continue;
        };
        match new_task(config, line.task, target) {
            Ok(task) => tasks.push(NewTask {
                idempotency_key: line.key,
                priority: line.priority.unwrap_or(default_priority),
                metadata: line.metadata.unwrap_or_else(|| serde_json::json!({})),
                ..task
            }),
            Err(problem) => problems.push(format!("{at}: {problem}")),
        }
    }
    if tasks.len() == before && problems.is_empty() {
        problems.push(format!("{} holds no tasks", path.display()));
    }
    Ok(())
}

/// How `submit_tasks` reports what it submitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Report {
    /// One id a line.
    Ids,
    /// A JSON array.
    Json,
    /// One line with the count, on standard error.
    Count,
}

/// Submits `tasks` and reports them.
pub(crate) async fn submit_tasks(
    queue: &Queue,
    tasks: &[NewTask],
    report: Report,
) -> anyhow::Result<Exit> {
    let submitted = match queue.submit_many(tasks).await {
        Ok(submitted) => submitted,
        Err(error) => {
            eprintln!("agentfleet: {error}; nothing was submitted");
            return Ok(queue_exit(&error));
        }
    };
    let mut out = std::io::stdout().lock();
    match report {
        Report::Json => {
            serde_json::to_writer_pretty(&mut out, &submitted)?;
            writeln!(out)?;
        }
        Report::Ids => {
            for task in &submitted {
                writeln!(out, "{}", task.id)?;
            }
        }
        Report::Count => eprintln!(
            "submitted {} tasks",
            submitted.iter().filter(|task| task.created).count()
        ),
    }
    let existing = submitted.iter().filter(|task| !task.created).count();
    if existing > 0 {
        eprintln!(
            "note: {existing} of {} already existed under their keys and were not submitted again",
            submitted.len()
        );
    }
    Ok(Exit::Ok)
}

pub fn results(args: &ResultsArgs) -> anyhow::Result<Exit> {
    let state = match args
        .state
        .as_deref()
        .map(|name| TaskState::from_name(name).ok_or(name))
    {
        Some(Err(name)) => {
            eprintln!(
                "agentfleet results: unknown state {name}; use pending, leased, done, failed, dead or cancelled"
            );
            return Ok(Exit::Usage);
        }
        Some(Ok(state)) => Some(state),
        None => None,
    };
    let config = match load_config(&args.queue.config, false, args.json) {
        Ok(config) => config,
        Err(exit) => return Ok(exit),
    };
    runtime()?.block_on(async {
        let queue = match open(&args.queue, config.as_ref()).await {
            Ok(queue) => queue,
            Err(exit) => return Ok(exit),
        };
        let records = match queue.list(state, args.limit).await {
            Ok(records) => records,
            Err(error) => {
                eprintln!("agentfleet: {error}");
                return Ok(queue_exit(&error));
            }
        };
        let mut out = std::io::stdout().lock();
        if args.json {
            serde_json::to_writer_pretty(&mut out, &records)?;
            writeln!(out)?;
        } else {
            write_results(&mut out, &records)?;
        }
        Ok(Exit::Ok)
    })
}

fn write_results(out: &mut impl Write, records: &[TaskRecord]) -> std::io::Result<()> {
    if records.is_empty() {
        return writeln!(out, "no tasks");
    }
    let rows: Vec<[String; 7]> = records
        .iter()
        .map(|record| {
            [
                record.id.clone(),
                record.state.to_string(),
                format!("{}/{}", record.attempts, record.max_attempts),
                record.target.to_string(),
                timestamp(record.updated_at),
                record.error_kind.clone().unwrap_or_else(|| "-".to_owned()),
                one_line(&final_text(record), 60),
            ]
        })
        .collect();
    let header = [
        "ID",
        "STATE",
        "ATTEMPTS",
        "TARGET",
        "UPDATED (UTC)",
        "ERROR",
        "OUTPUT",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 7]| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index == 6 {
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
    Ok(())
}

/// What a table shows of a task's result: the last message of a run's result, or the raw
/// output, or the last error.
fn final_text(record: &TaskRecord) -> String {
    if let Some(output) = &record.output {
        let last = serde_json::from_str::<serde_json::Value>(output)
            .ok()
            .and_then(|result| {
                result["messages"].as_array()?.last()?["content"]
                    .as_str()
                    .map(str::to_owned)
            });
        return last.unwrap_or_else(|| output.clone());
    }
    record.error.clone().unwrap_or_else(|| "-".to_owned())
}

/// Text on one line, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > max {
        flat.chars().take(max - 1).collect::<String>() + "…"
    } else {
        flat
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` in UTC.
fn timestamp(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

pub fn cancel(args: &CancelArgs) -> anyhow::Result<Exit> {
    let config = match load_config(&args.queue.config, false, false) {
        Ok(config) => config,
        Err(exit) => return Ok(exit),
    };
    runtime()?.block_on(async {
        let queue = match open(&args.queue, config.as_ref()).await {
            Ok(queue) => queue,
            Err(exit) => return Ok(exit),
        };
        match queue.cancel(&args.id).await {
            Ok(()) => {
                println!("cancelled {}", args.id);
                Ok(Exit::Ok)
            }
            Err(error) => {
                eprintln!("agentfleet cancel: {error}");
                Ok(queue_exit(&error))
            }
        }
    })
}

pub fn stats(args: &StatsArgs) -> anyhow::Result<Exit> {
    let config = match load_config(&args.queue.config, false, args.json) {
        Ok(config) => config,
        Err(exit) => return Ok(exit),
    };
    runtime()?.block_on(async {
        let queue = match open(&args.queue, config.as_ref()).await {
            Ok(queue) => queue,
            Err(exit) => return Ok(exit),
        };
        let stats = match queue.stats().await {
            Ok(stats) => stats,
            Err(error) => {
                eprintln!("agentfleet: {error}");
                return Ok(queue_exit(&error));
            }
        };
        let mut out = std::io::stdout().lock();
        if args.json {
            serde_json::to_writer_pretty(&mut out, &stats)?;
            writeln!(out)?;
        } else {
            for (name, count) in [
                ("pending", stats.pending),
                ("leased", stats.leased),
                ("done", stats.done),
                ("failed", stats.failed),
                ("dead", stats.dead),
                ("cancelled", stats.cancelled),
            ] {
                writeln!(out, "{name:<10} {count}")?;
            }
            match stats.oldest_pending_ms {
                Some(age) => writeln!(
                    out,
                    "oldest pending task waited {:.1} s",
                    age as f64 / 1000.0
                )?,
                None => writeln!(out, "no task is pending")?,
            }
        }
        Ok(Exit::Ok)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(timestamp(1_764_388_800_000), "2025-11-29 04:00:00");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn outputs_fit_on_one_line() {
        assert_eq!(one_line("a\nb", 10), "a b");
        assert_eq!(one_line("abcdefghij", 5), "abcd…");
    }
}
