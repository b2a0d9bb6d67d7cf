//! Tools an agent may call: typed Rust functions, whose JSON Schema comes from their argument
//! type, and commands from the config, which get JSON arguments on stdin and print the result.
//!
//! A tool's failure is never the run's: a tool that errors, times out or prints garbage gives a
//! result marked as an error, which the model reads and can act on.

use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use agentfleet_client::ToolDefinition;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Something an agent can call.
pub trait Tool: Send + Sync + fmt::Debug {
    /// Name, description and argument schema, as the model sees them.
    fn definition(&self) -> &ToolDefinition;

    /// Runs the tool. `Err` is a message for the model, not a failure of the run.
    fn call(&self, arguments: serde_json::Value) -> BoxFuture<'_, Result<String, String>>;
}

type Handler =
    dyn Fn(serde_json::Value) -> BoxFuture<'static, Result<String, String>> + Send + Sync;

/// A tool backed by an async Rust function of one typed argument.
pub struct FunctionTool {
    definition: ToolDefinition,
    handler: Arc<Handler>,
}

impl fmt::Debug for FunctionTool {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("FunctionTool")
            .field("name", &self.definition.name)
            .finish()
    }
}

/// Makes a tool of `function`: its arguments are deserialized into `A`, whose JSON Schema (from
/// `#[derive(JsonSchema)]`) is what the model is told to send.
///
/// ```ignore
/// #[derive(Deserialize, JsonSchema)]
/// struct Add { a: i64, b: i64 }
/// let add = function("add", "Adds two numbers", |args: Add| async move { Ok((args.a + args.b).to_string()) });
/// ```
pub fn function<A, F, Fut>(name: &str, description: &str, function: F) -> Arc<dyn Tool>
where
    A: DeserializeOwned + JsonSchema + Send + 'static,
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, String>> + Send + 'static,
{
    let mut parameters = serde_json::to_value(schemars::schema_for!(A)).unwrap_or_default();
    if let Some(object) = parameters.as_object_mut() {
        // Providers want the bare object schema, not a standalone document.
        object.remove("$schema");
        object.remove("title");
    }
    let function = Arc::new(function);
    let handler: Arc<Handler> = Arc::new(move |arguments| {
        let function = function.clone();
        async move {
            let arguments: A = serde_json::from_value(arguments).map_err(|error| {
                format!("the arguments do not match the tool's schema: {error}")
            })?;
            function(arguments).await
        }
        .boxed()
    });
    Arc::new(FunctionTool {
        definition: ToolDefinition {
            name: name.to_owned(),
            description: description.to_owned(),
            parameters,
        },
        handler,
    })
}

impl Tool for FunctionTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn call(&self, arguments: serde_json::Value) -> BoxFuture<'_, Result<String, String>> {
        (self.handler)(arguments)
    }
}

/// A tool that runs a command: JSON arguments on stdin, the result on stdout.
///
/// The command gets an environment built from its allow-list alone, never the ambient one, so
/// no provider key reaches it unless the config names that variable.
#[derive(Debug)]
pub struct CommandTool {
    definition: ToolDefinition,
    command: Vec<String>,
    timeout: Duration,
    max_output_bytes: u64,
    env: Vec<(String, OsString)>,
    working_dir: PathBuf,
}

impl CommandTool {
    /// A command tool. `env` is the complete environment the command gets.
    pub fn new(
        definition: ToolDefinition,
        command: Vec<String>,
        timeout: Duration,
        max_output_bytes: u64,
        env: Vec<(String, OsString)>,
        working_dir: PathBuf,
    ) -> Self {
        Self {
            definition,
            command,
            timeout,
            max_output_bytes,
            env,
            working_dir,
        }
    }

    async fn run(&self, arguments: serde_json::Value) -> Result<String, String> {
        let Some((program, args)) = self.command.split_first() else {
            return Err("the tool has no command".to_owned());
        };
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .current_dir(&self.working_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("the command {program} could not start: {}", error.kind()))?;
        let input = serde_json::to_vec(&arguments).unwrap_or_default();
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let limit = self.max_output_bytes;
        let work = async {
            if let Some(stdin) = stdin.as_mut() {
                // A tool may exit without reading its input; that is its business.
                let _ = stdin.write_all(&input).await;
            }
            drop(stdin.take());
            let mut output = Vec::new();
            let mut errors = Vec::new();
            let read_out = async {
                if let Some(out) = stdout.as_mut() {
                    let _ = out.take(limit + 1).read_to_end(&mut output).await;
                }
            };
            let read_err = async {
                if let Some(err) = stderr.as_mut() {
                    let _ = err.take(64 * 1024).read_to_end(&mut errors).await;
                }
            };
            tokio::join!(read_out, read_err);
            let status = child.wait().await;
            (status, output, errors)
        };
        let (status, output, errors) = match tokio::time::timeout(self.timeout, work).await {
            Ok(done) => done,
            Err(_) => {
                return Err(format!(
                    "the tool timed out after {} ms and was stopped",
                    self.timeout.as_millis()
                ));
            }
        };
        let status =
            status.map_err(|error| format!("waiting for the tool failed: {}", error.kind()))?;
        if output.len() as u64 > limit {
            return Err(format!("the tool printed more than {limit} bytes"));
        }
        if !status.success() {
            let tail: String = String::from_utf8_lossy(&errors)
                .trim()
                .chars()
                .rev()
                .take(500)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(if tail.is_empty() {
                format!("the tool failed ({status})")
            } else {
                format!("the tool failed ({status}): {tail}")
            });
        }
        String::from_utf8(output)
            .map_err(|_| "the tool printed something that is not UTF-8 text".to_owned())
    }
}

impl Tool for CommandTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn call(&self, arguments: serde_json::Value) -> BoxFuture<'_, Result<String, String>> {
        self.run(arguments).boxed()
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Add {
        /// The first number.
        a: i64,
        /// The second number.
        b: i64,
    }

    #[tokio::test]
    async fn a_function_tool_gets_its_schema_from_its_argument_type() {
        let add = function("add", "Adds two numbers", |args: Add| async move {
            Ok((args.a + args.b).to_string())
        });
        let parameters = &add.definition().parameters;
        assert_eq!(parameters["type"], "object");
        assert_eq!(parameters["properties"]["a"]["type"], "integer");
        assert_eq!(
            parameters["properties"]["a"]["description"],
            "The first number."
        );
        assert!(parameters.get("$schema").is_none());
        assert_eq!(
            add.call(serde_json::json!({"a": 2, "b": 3})).await,
            Ok("5".to_owned())
        );
        let wrong = add.call(serde_json::json!({"a": "two"})).await.unwrap_err();
        assert!(
            wrong.starts_with("the arguments do not match the tool's schema"),
            "{wrong}"
        );
    }

    fn command(script: &str, timeout_ms: u64, env: Vec<(String, OsString)>) -> CommandTool {
        CommandTool::new(
            ToolDefinition {
                name: "t".into(),
                description: String::new(),
                parameters: serde_json::json!({}),
            },
            vec!["/bin/sh".into(), "-c".into(), script.into()],
            Duration::from_millis(timeout_ms),
            1024,
            env,
            std::env::temp_dir(),
        )
    }

    #[tokio::test]
    async fn a_command_reads_arguments_on_stdin_and_prints_its_result() {
        let tool = command("cat", 5_000, Vec::new());
        assert_eq!(
            tool.call(serde_json::json!({"x": 1})).await,
            Ok("{\"x\":1}".to_owned())
        );
    }

    #[tokio::test]
    async fn failures_timeouts_garbage_and_floods_are_messages_not_crashes() {
        let failed = command("echo broken >&2; exit 3", 5_000, Vec::new())
            .call(serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(
            failed.contains("exit status: 3") && failed.ends_with("broken"),
            "{failed}"
        );
        let slow = command("sleep 5", 100, Vec::new())
            .call(serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(
            slow.starts_with("the tool timed out after 100 ms"),
            "{slow}"
        );
        let garbage = command("printf '\\377\\376'", 5_000, Vec::new())
            .call(serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(garbage.contains("not UTF-8"), "{garbage}");
        let flood = command("head -c 5000 /dev/zero | tr '\\0' x", 5_000, Vec::new())
            .call(serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(flood.contains("more than 1024 bytes"), "{flood}");
        let missing = CommandTool::new(
            ToolDefinition {
                name: "t".into(),
                description: String::new(),
                parameters: serde_json::json!({}),
            },
            vec!["no-such-program-anywhere".into()],
            Duration::from_secs(1),
            1024,
            Vec::new(),
            std::env::temp_dir(),
        );
        assert!(
            missing
                .call(serde_json::json!({}))
                .await
                .unwrap_err()
                .contains("could not start")
        );
    }

    #[tokio::test]
    async fn a_command_gets_only_its_allowed_environment() {
        let tool = command("env", 5_000, vec![("ALLOWED".into(), "yes".into())]);
        let output = tool.call(serde_json::json!({})).await.unwrap();
        let names: Vec<&str> = output
            .lines()
            .filter_map(|line| line.split('=').next())
            .collect();
        assert!(names.contains(&"ALLOWED"), "{output}");
        assert!(
            !names.contains(&"HOME") && !names.contains(&"OPENAI_API_KEY"),
            "{output}"
        );
    }
}
