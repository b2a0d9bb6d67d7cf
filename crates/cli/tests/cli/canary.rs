//! A canary secret, planted in every place a key can reach, must appear in no stdout, stderr or
//! JSON, whatever is wrong with the config: valid keys, wrong keys, keys with whitespace, keys in
//! files and dotenv files, literal keys, keys inside broken TOML, keys pasted where a name or a
//! URL belongs.

use crate::util::{Output, Workspace, run};

/// An OpenAI-shaped canary, and the distinctive part that must never be printed.
const CANARY: &str = "sk-proj-CANARYq7Zx9Lm2Vb8Nc4Td6Rf1Gh3Jk5T3BlbkFJwP0";
const CANARY_CORE: &str = "CANARYq7Zx9Lm2Vb8";
/// An Azure-shaped canary (32 hex digits).
const AZURE_CANARY: &str = "cafe0a1b2c3d4e5f6a7b8c9d0e1f2a3b";

struct Scenario {
    name: &'static str,
    config: String,
    files: Vec<(&'static str, String)>,
    env: Vec<(&'static str, String)>,
}

fn scenario(name: &'static str, config: impl Into<String>) -> Scenario {
    Scenario {
        name,
        config: config.into(),
        files: Vec::new(),
        env: Vec::new(),
    }
}

impl Scenario {
    fn file(mut self, name: &'static str, content: impl Into<String>) -> Self {
        self.files.push((name, content.into()));
        self
    }

    fn env(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.env.push((name, value.into()));
        self
    }
}

fn provider(kind: &str, key_source: &str, extra: &str) -> String {
    format!(
        "[providers.p]\nkind = \"{kind}\"\nmodel = \"m\"\napi_key = {key_source}\n{extra}\n\
         [agents.a]\nprovider = \"p\"\n"
    )
}

fn scenarios() -> Vec<Scenario> {
    let env_key = r#"{ env = "OPENAI_API_KEY" }"#;
    vec![
        scenario("a good key", provider("openai", env_key, "")).env("OPENAI_API_KEY", CANARY),
        scenario("an azure key on openai", provider("openai", env_key, ""))
            .env("OPENAI_API_KEY", AZURE_CANARY),
        scenario(
            "an openai key on azure",
            provider(
                "azure_openai",
                env_key,
                "endpoint = \"https://r.openai.azure.com\"\ndeployment = \"d\"",
            ),
        )
        .env("OPENAI_API_KEY", CANARY),
        scenario("whitespace inside", provider("openai", env_key, ""))
            .env("OPENAI_API_KEY", format!("{CANARY} {CANARY}")),
        scenario("a trailing newline", provider("openai", env_key, ""))
            .env("OPENAI_API_KEY", format!("{CANARY}\n")),
        scenario("non-ascii", provider("openai", env_key, ""))
            .env("OPENAI_API_KEY", format!("{CANARY}\u{2019}")),
        scenario("a masked variant", provider("openai", env_key, ""))
            .env("OPENAI_API_KEY", format!("{CANARY}****")),
        scenario("the file twin", provider("openai", env_key, ""))
            .file("key", format!("{CANARY}\n"))
            .env("OPENAI_API_KEY_FILE", "key"),
        scenario(
            "both the variable and its twin",
            provider("openai", env_key, ""),
        )
        .file("key", CANARY)
        .env("OPENAI_API_KEY_FILE", "key")
        .env("OPENAI_API_KEY", AZURE_CANARY),
        scenario(
            "a file source",
            provider("openai", r#"{ file = "key" }"#, ""),
        )
        .file("key", format!("{CANARY}\r\n")),
        scenario(
            "a dotenv source",
            provider("openai", r#"{ dotenv = ".env", key = "K" }"#, ""),
        )
        .file(".env", format!("K={CANARY}\n")),
        scenario(
            "a broken dotenv line holding the key",
            provider("openai", r#"{ dotenv = ".env", key = "K" }"#, ""),
        )
        .file(".env", format!("K=1\n{CANARY}\nJ=\"{CANARY}\n")),
        scenario(
            "a literal key",
            provider("openai", &format!("\"{CANARY}\""), ""),
        ),
        scenario(
            "a literal azure key",
            provider(
                "azure_openai",
                &format!("\"{AZURE_CANARY}\""),
                "endpoint = \"https://r.openai.azure.com\"",
            ),
        ),
        scenario(
            "a literal key in broken TOML",
            format!("[providers.p]\nkind = \"openai\"\napi_key = \"{CANARY}\nmodel = 3\n"),
        ),
        scenario(
            "a key in an unterminated table header",
            format!("[providers.{CANARY}\nkind = \"openai\"\n"),
        ),
        scenario(
            "a key as a key name",
            format!("[providers.p]\nkind = \"openai\"\n{CANARY} = true\n{AZURE_CANARY} = 1\n"),
        ),
        scenario(
            "a key as the kind",
            format!("[providers.p]\nkind = \"{CANARY}\"\n"),
        ),
        scenario(
            "a key as a provider name",
            format!(
                "[providers.\"{CANARY}\"]\nkind = \"openai\"\n[agents.a]\nprovider = \"{CANARY}\"\n"
            ),
        ),
        scenario(
            "a key as a variable name",
            provider("openai", &format!("{{ env = \"{CANARY}\" }}"), ""),
        ),
        scenario(
            "a key as a dotenv entry name",
            provider(
                "openai",
                &format!("{{ dotenv = \".env\", key = \"{CANARY}\" }}"),
                "",
            ),
        ),
        scenario(
            "a key in an allow-list",
            format!(
                "[fleet]\nenv = [\"{CANARY}\"]\n[tools.t]\ncommand = [\"x\"]\nenv = [\"{AZURE_CANARY}\"]\n"
            ),
        ),
        scenario(
            "a key in the endpoint variable",
            provider(
                "azure_openai",
                env_key,
                "endpoint = { env = \"AZURE_OPENAI_ENDPOINT\" }\ndeployment = \"d\"",
            ),
        )
        .env("OPENAI_API_KEY", AZURE_CANARY)
        .env("AZURE_OPENAI_ENDPOINT", CANARY),
        scenario(
            "a key in a URL",
            provider(
                "openai_compatible",
                env_key,
                "base_url = { env = \"BASE\" }",
            ),
        )
        .env("OPENAI_API_KEY", "token-1")
        .env(
            "BASE",
            format!("https://user:{CANARY}@llm.example.com/v1?key={CANARY}"),
        ),
        scenario(
            "a key in a literal URL",
            provider(
                "openai_compatible",
                env_key,
                &format!("base_url = \"https://u:{CANARY}@llm.example.com/v1\""),
            ),
        )
        .env("OPENAI_API_KEY", "token-1"),
        scenario(
            "a key in the organization variable",
            provider(
                "openai",
                env_key,
                "organization = { env = \"OPENAI_ORG_ID\" }",
            ),
        )
        .env("OPENAI_API_KEY", AZURE_CANARY)
        .env("OPENAI_ORG_ID", CANARY),
        scenario(
            "a key in an entra token file",
            "[providers.p]\nkind = \"azure_openai\"\nendpoint = \"https://r.openai.azure.com/openai/v1\"\nmodel = \"m\"\nentra_token = { file = \"token\" }\n",
        )
        .file("token", CANARY),
        scenario("a key printed by a token command", format!(
            "[providers.p]\nkind = \"azure_openai\"\nendpoint = \"https://r.openai.azure.com/openai/v1\"\nmodel = \"m\"\nentra_token = {{ command = [\"sh\", \"-c\", \"echo {CANARY}; echo {AZURE_CANARY} >&2; exit 1\"] }}\n"
        )),
        scenario(
            "a password in the queue URL",
            format!("[queue]\nurl = \"postgres://agentfleet:{CANARY}@db:5432/agentfleet\"\n"),
        ),
        scenario(
            "a key where a queue URL belongs",
            format!("[queue]\nurl = \"{CANARY}\"\n"),
        ),
    ]
}

fn assert_clean(name: &str, format: &str, output: &Output) {
    assert!(
        output.code == 0 || output.code == 78,
        "{name} ({format}): unexpected exit {} (a crash?)\n{}{}",
        output.code,
        output.stdout,
        output.stderr
    );
    assert!(
        !(output.stdout.is_empty() && output.stderr.is_empty()),
        "{name} ({format}): printed nothing"
    );
    for (stream, text) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        for secret in [CANARY, CANARY_CORE, AZURE_CANARY] {
            assert!(
                !text.contains(secret),
                "{name} ({format}): the canary appears in {stream}:\n{text}"
            );
        }
    }
}

#[test]
fn the_canary_appears_in_no_output() {
    let all = scenarios();
    let mut exits = Vec::new();
    for scenario in &all {
        let workspace = Workspace::new();
        workspace.write("agentfleet.toml", &scenario.config);
        for (name, content) in &scenario.files {
            workspace.write(name, content);
        }
        for (format, args) in [("text", &["check"][..]), ("json", &["check", "--json"][..])] {
            let mut command = workspace.agentfleet(args);
            for (name, value) in &scenario.env {
                command.env(name, value);
            }
            let output = run(&mut command);
            assert_clean(scenario.name, format, &output);
            if format == "json" {
                output.json();
            }
            exits.push(output.code);
        }
    }
    // The scenarios are not all trivially broken: some pass, most fail, none crash.
    assert!(exits.contains(&0) && exits.contains(&78), "{exits:?}");
}
