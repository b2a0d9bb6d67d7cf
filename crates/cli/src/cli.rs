//! The command line, as clap types. Argument parsing only: no command logic here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run LLM agent workers that scale out and never fail on credentials in silence.
#[derive(Debug, Parser)]
#[command(name = "agentfleet", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Resolve and validate every credential the config needs, in this process.
    ///
    /// Exits 0 when every provider is usable and 78 when the config or any credential is not.
    /// Keys are never printed: a fingerprint (sha256: and 8 hex digits) stands in for each.
    Check(CheckArgs),
    /// Run an agent or a team on one task, printing the conversation as it happens.
    ///
    /// Only the providers that agent or team needs are checked, in this process, first. A
    /// provider of kind `standin` starts the stand-in inside this process.
    Run(RunArgs),
    /// Put tasks on the queue: one with --task, or many from a JSON Lines file.
    Submit(SubmitArgs),
    /// List tasks and their results, newest first.
    Results(ResultsArgs),
    /// Cancel a task that has not finished.
    Cancel(CancelArgs),
    /// Look at the queue.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Run one worker: check credentials, register, then lease and run tasks until SIGTERM.
    ///
    /// Exits 78 (77 for a refused probe) without taking a task when a credential it needs is
    /// unusable.
    Worker(WorkerArgs),
    /// Run a fleet of workers on this machine until stopped (or, with --until-empty, until the
    /// queue is empty).
    Up(UpArgs),
    /// Show the queue, the workers, their credentials' fingerprints, and drift between them.
    Status(StatusArgs),
    /// Restart the workers of a running `up` one at a time, with credentials resolved anew.
    ///
    /// The variables the config reads credentials from are taken from this process (so run it
    /// where the new keys are set) and checked here and by the supervisor before any worker is
    /// touched. Each replacement must pass its preflight and probe and register as healthy
    /// before the worker it replaces is drained. SIGHUP to `up` does the same with up's own
    /// environment. Exits 0 when every worker runs the new generation, 78 when a credential
    /// fails its check (nothing changed), 69 when no `up` runs this config here, 1 when a
    /// replacement failed (the rest keep running as they were).
    Rollout(RolloutArgs),
    /// Print Kubernetes manifests that run this config's workers: a ConfigMap and a Deployment.
    ///
    /// Every credential is wired the way `check` says it is sourced: a variable from the
    /// Secret through secretKeyRef, a file from the Secret mounted as a directory (never
    /// subPath, which never updates). No secret value is printed.
    K8s(K8sArgs),
    /// Find the code and deployments that will fail on credentials when they scale.
    ///
    /// Walks the paths (respecting .gitignore), reads TypeScript, TSX, JavaScript and Python,
    /// Kubernetes manifests, compose files and Dockerfiles, and reports each finding with
    /// file:line:column, rule, severity, what is wrong and the fix. Exits 0 when no finding is
    /// an error, 1 otherwise. docs/doctor.md describes every rule.
    Doctor(DoctorArgs),
    /// Read logs or an error chain and say, for each credential failure, its cause, provider,
    /// evidence and fix.
    ///
    /// Reads Python and Node tracebacks, SDK exceptions and raw bodies from OpenAI, Azure
    /// OpenAI, Anthropic, Gemini, LiteLLM, vLLM and Ollama. Quota and rate limits are named as
    /// the look-alikes they are. Exits 0 when the input holds no credential failure, 1 when it
    /// does. Key-shaped text in the evidence is masked.
    Explain(ExplainArgs),
    /// Serve a local stand-in for OpenAI, Azure OpenAI and Anthropic.
    ///
    /// It speaks their wire formats (JSON and SSE, tool calls) and enforces their auth with
    /// their real error bodies. The first line on stdout is `listening on http://ADDR`.
    Standin(StandinArgs),
}

/// Where the config file is.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The config file [default: $AGENTFLEET_CONFIG, then ./agentfleet.toml]
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also make one cheap authenticated call per provider (exit 77 if one refuses its key,
    /// 69 if one cannot be reached).
    #[arg(long)]
    pub probe: bool,
}

#[derive(Debug, Args)]
pub struct StandinArgs {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub addr: String,
    /// A key to accept (repeatable). Prefer --keys-file: arguments are visible to other users.
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
    /// A file of keys to accept, one a line, re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub keys_file: Option<PathBuf>,
    /// Delay before every answer, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,
    /// Fail a share of requests with a status, e.g. 429=0.05,500=0.01.
    #[arg(long, value_name = "STATUS=SHARE,...")]
    pub fail_rate: Option<String>,
    /// Scripted replies (TOML rules; see docs/standin.md).
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// An Azure deployment that exists (repeatable); others answer 404. Default: all exist.
    #[arg(long = "deployment", value_name = "NAME")]
    pub deployments: Vec<String>,
    /// Worker threads serving requests.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["agent", "team"]))]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The agent to run.
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,
    /// The team to run.
    #[arg(long, value_name = "NAME")]
    pub team: Option<String>,
    /// The task.
    pub task: String,
    /// Print the result as one JSON object instead of the conversation.
    #[arg(long)]
    pub json: bool,
}

/// Which queue: the config's `[queue] url`, overridden by `AGENTFLEET_QUEUE_URL` and `--queue-url`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The queue's database [default: $AGENTFLEET_QUEUE_URL, then [queue] url]. A password here
    /// is visible to other users of the machine: prefer the variable or a config source.
    #[arg(long, value_name = "URL")]
    pub queue_url: Option<String>,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["task", "file"]))]
pub struct SubmitArgs {
    #[command(flatten)]
    pub queue: QueueArgs,
    /// The task's text.
    #[arg(long, value_name = "TEXT")]
    pub task: Option<String>,
    /// A JSON Lines file: one {"task": "...", "agent" or "team": "...", "key": "..."} a line.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The agent to run it (the default for file lines that name none).
    #[arg(long, value_name = "NAME", conflicts_with = "team")]
    pub agent: Option<String>,
    /// The team to run it (the default for file lines that name none).
    #[arg(long, value_name = "NAME")]
    pub team: Option<String>,
    /// An idempotency key: submitting the same key again submits nothing.
    #[arg(long, value_name = "KEY", conflicts_with = "file")]
    pub key: Option<String>,
    /// Higher priorities are leased first.
    #[arg(long, default_value_t = 0)]
    pub priority: i32,
    /// Print the ids as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ResultsArgs {
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Only tasks in this state: pending, leased, done, failed, dead or cancelled.
    #[arg(long, value_name = "STATE")]
    pub state: Option<String>,
    /// How many tasks, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    #[command(flatten)]
    pub queue: QueueArgs,
    /// The task's id.
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Counts per state and the age of the oldest pending task.
    Stats(StatsArgs),
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Print JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Tasks at once [default: [fleet] concurrency].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// The worker's name [default: HOST-PID].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Make one authenticated call per provider before taking work [default: [fleet] probe].
    #[arg(long)]
    pub probe: bool,
    /// Serve a health endpoint here (/readyz, /livez, /drain), for an orchestrator's
    /// readiness probe and preStop hook. Off by default.
    #[arg(long, value_name = "ADDR")]
    pub health_addr: Option<String>,
    /// Read credentials handed over by `agentfleet up` from standard input.
    #[arg(long, hide = true)]
    pub from_supervisor: bool,
    /// The rollout generation of the `up` that started it.
    #[arg(long, hide = true, value_name = "N")]
    pub generation: Option<u64>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Worker processes [default: [fleet] workers].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Tasks per worker at once [default: [fleet] concurrency].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Stop once no task is pending or running.
    #[arg(long)]
    pub until_empty: bool,
    /// Submit the tasks in this JSON Lines file first.
    #[arg(long, value_name = "FILE")]
    pub tasks: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RolloutArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Keep the credentials of up's own environment (as SIGHUP does) instead of this
    /// process's: for a changed config file or a new agentfleet binary.
    #[arg(long)]
    pub keep_env: bool,
}

#[derive(Debug, Args)]
pub struct K8sArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Replicas [default: [fleet] workers].
    #[arg(long, value_name = "N")]
    pub workers: Option<u32>,
    /// The container image, with agentfleet on its PATH.
    #[arg(long, value_name = "IMAGE", default_value = concat!("agentfleet:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
    /// The Secret that holds every credential.
    #[arg(long, value_name = "NAME", default_value = "agentfleet")]
    pub secret: String,
    /// The name of the Deployment and ConfigMap, and the app label.
    #[arg(long, value_name = "NAME", default_value = "agentfleet-worker")]
    pub name: String,
    /// The namespace, when the manifests should name one.
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Files and directories to read [default: .].
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// How to print the findings.
    #[arg(long, value_enum, default_value_t = DoctorFormat::Text)]
    pub format: DoctorFormat,
}

/// `doctor --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DoctorFormat {
    /// One finding a paragraph.
    Text,
    /// {"findings": [{"rule", "severity", "file", "line", "column", "message", "fix"}]}
    Json,
    /// SARIF 2.1.0, for code-scanning tools.
    Sarif,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The log or error text; `-` or nothing for standard input.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Print {"diagnoses": [...]} instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}
