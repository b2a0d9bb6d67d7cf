//! `agentfleet check`, end to end.

use agentfleet_config::Fingerprint;
use serde_json::Value;

use crate::util::{Workspace, agentfleet, repository_root, run};

const OPENAI_KEY: &str = "sk-proj-Abc123_def-456T3BlbkFJxyz789Qrs";
const AZURE_KEY: &str = "04e0e8440123456789abcdef01232687";
const ANTHROPIC_KEY: &str = "sk-ant-api03-Zq8vN3kL0pX9tYzA4cE8fG1hJ2kL3mN4AA";
const GOOGLE_KEY: &str = "AIzaSyA1234567890abcdefghijklmnopqrstuv";

const OPENAI_TEAM: &str = r#"
[providers.openai]
kind = "openai"
model = "gpt-4o-mini"
api_key = { env = "OPENAI_API_KEY" }

[agents.writer]
provider = "openai"

[agents.critic]
provider = "openai"

[teams.review]
members = ["writer", "critic"]
termination = { max_messages = 6, text_mention = "APPROVE" }
"#;

fn openai_with_key(source: &str) -> String {
    OPENAI_TEAM.replace(r#"{ env = "OPENAI_API_KEY" }"#, source)
}

fn codes(json: &Value, provider: usize) -> Vec<String> {
    json["providers"][provider]["problems"]
        .as_array()
        .expect("problems array")
        .iter()
        .map(|problem| problem["code"].as_str().expect("code").to_owned())
        .collect()
}

#[test]
fn the_embedded_default_config_checks_clean() {
    let root = repository_root();
    let output = run(agentfleet().current_dir(&root).args(["check"]));
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    assert!(
        output
            .stdout
            .contains("config: agentfleet.toml (from the working directory)"),
        "{}",
        output.stdout
    );
    assert!(
        output.stdout.contains("main      standin  generated"),
        "{}",
        output.stdout
    );
    assert!(
        output
            .stdout
            .contains("ok: 1 provider, every credential usable")
    );
}

#[test]
fn every_example_config_parses() {
    let examples = repository_root().join("examples/configs");
    for entry in std::fs::read_dir(&examples).expect("examples/configs") {
        let path = entry.expect("entry").path();
        let output = run(agentfleet()
            .arg("check")
            .arg("--json")
            .arg("--config")
            .arg(&path));
        let json = output.json();
        assert!(
            json.get("providers").is_some(),
            "{} does not parse: {}",
            path.display(),
            output.stdout
        );
    }
}

#[test]
fn a_missing_key_is_one_line_naming_variable_provider_and_users() {
    let workspace = Workspace::new();
    workspace.write("agentfleet.toml", OPENAI_TEAM);
    let output = run(&mut workspace.agentfleet(&["check"]));
    assert_eq!(output.code, 78);
    assert!(
        output.stdout.contains(
            "error[missing]: OPENAI_API_KEY is not set in this process (provider openai, used by agents writer, critic and team review)\n"
        ),
        "{}",
        output.stdout
    );
    assert!(output.stdout.contains("openai    openai  env:OPENAI_API_KEY  no       -            missing   writer, critic, review"), "{}", output.stdout);
    assert!(output.stdout.contains("not ok: 1 of 1 provider unusable"));
}

#[test]
fn a_fallback_key_is_shown_beside_the_key_and_its_problems_only_warn() {
    let workspace = Workspace::new();
    workspace.write(
        "agentfleet.toml",
        OPENAI_TEAM.replace(
            "api_key = { env = \"OPENAI_API_KEY\" }\n",
            "api_key = { env = \"OPENAI_API_KEY\" }\napi_key_fallback = { file = \"key2\" }\n",
        ),
    );
    workspace.write("key2", format!("{AZURE_KEY}\n"));
    let output = run(workspace
        .agentfleet(&["check"])
        .env("OPENAI_API_KEY", OPENAI_KEY));
    assert_eq!(output.code, 0, "{}", output.stdout);
    let key = Fingerprint::of(OPENAI_KEY);
    let fallback = Fingerprint::of(AZURE_KEY);
    for expected in [
        "env:OPENAI_API_KEY, fallback file:key2".to_owned(),
        format!("openai-project-key {key}, fallback {fallback}"),
        "api_key_fallback: ".to_owned(),
        "provider-mismatch".to_owned(),
    ] {
        assert!(
            output.stdout.contains(&expected),
            "{expected}: {}",
            output.stdout
        );
    }
    assert!(!output.stdout.contains(AZURE_KEY));

    let json = run(workspace
        .agentfleet(&["check", "--json"])
        .env("OPENAI_API_KEY", OPENAI_KEY))
    .json();
    assert_eq!(json["providers"][0]["fallback"]["source"], "file:key2");
    assert_eq!(json["providers"][0]["problems"][0]["severity"], "warning");
}

#[test]
fn a_good_key_reports_its_fingerprint_and_exits_zero() {
    let workspace = Workspace::new();
    workspace.write("agentfleet.toml", OPENAI_TEAM);
    let output = run(workspace
        .agentfleet(&["check"])
        .env("OPENAI_API_KEY", OPENAI_KEY));
    assert_eq!(output.code, 0, "{}", output.stdout);
    let fingerprint = Fingerprint::of(OPENAI_KEY).to_string();
    assert!(
        output
            .stdout
            .contains(&format!("openai-project-key {fingerprint}")),
        "{}",
        output.stdout
    );
    assert!(!output.stdout.contains(OPENAI_KEY));
}

#[test]
fn json_follows_the_documented_contract() {
    let workspace = Workspace::new();
    workspace.write(
        "agentfleet.toml",
        format!(
            "{OPENAI_TEAM}\n[providers.spare]\nkind = \"anthropic\"\nmodel = \"m\"\napi_key = {{ env = \"ANTHROPIC_API_KEY\" }}\n"
        ),
    );
    let output = run(workspace
        .agentfleet(&["check", "--json"])
        .env("OPENAI_API_KEY", OPENAI_KEY));
    assert_eq!(output.code, 78);
    let json = output.json();
    assert_eq!(json["ok"], false);
    let openai = &json["providers"][0];
    assert_eq!(openai["name"], "openai");
    assert_eq!(openai["kind"], "openai");
    assert_eq!(openai["source"], "env:OPENAI_API_KEY");
    assert_eq!(openai["present"], true);
    assert_eq!(
        openai["fingerprint"],
        Fingerprint::of(OPENAI_KEY).to_string()
    );
    assert_eq!(openai["problems"], serde_json::json!([]));
    assert_eq!(
        openai["used_by"],
        serde_json::json!(["writer", "critic", "review"])
    );
    let spare = &json["providers"][1];
    assert_eq!(spare["present"], false);
    assert_eq!(spare["fingerprint"], Value::Null);
    assert_eq!(spare["used_by"], serde_json::json!([]));
    let problem = &spare["problems"][0];
    assert_eq!(problem["code"], "missing");
    assert_eq!(problem["severity"], "error");
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .starts_with("ANTHROPIC_API_KEY is not set in this process")
    );
}

#[test]
fn a_config_that_does_not_parse_reports_every_error_with_its_location() {
    let workspace = Workspace::new();
    workspace.write(
        "agentfleet.toml",
        "[providers.openai]\nkind = \"openia\"\nmodle = \"gpt\"\n\n[agents.writer]\nprovider = \"opneai\"\ntools = 3\n\n[fleet]\nworkers = \"many\"\n",
    );
    let output = run(&mut workspace.agentfleet(&["check", "--json"]));
    assert_eq!(output.code, 78);
    let json = output.json();
    assert_eq!(json["ok"], false);
    let errors = json["errors"].as_array().expect("errors");
    let located: Vec<(u64, u64, &str)> = errors
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["column"].as_u64().unwrap(),
                e["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(located.len(), 5, "{located:#?}");
    assert_eq!(
        located[0],
        (
            2,
            8,
            "unknown provider kind 'openia'; did you mean 'openai'?"
        )
    );
    assert_eq!(
        located[1],
        (
            3,
            1,
            "unknown key 'modle' in [providers.openai]; did you mean 'model'?"
        )
    );
    assert_eq!((located[2].0, located[2].1), (6, 12));
    assert!(located[2].2.contains("did you mean 'openai'?"));
    assert_eq!(
        located[3],
        (
            7,
            9,
            "[agents.writer] tools must be an array of names, not an integer"
        )
    );
    assert_eq!(
        located[4],
        (
            10,
            11,
            "[fleet] workers must be a whole number, not a string"
        )
    );
    assert!(
        errors
            .iter()
            .all(|e| e["file"].as_str().unwrap().ends_with("agentfleet.toml"))
    );

    let text = run(&mut workspace.agentfleet(&["check"]));
    assert_eq!(text.code, 78);
    assert!(
        text.stderr.contains(
            "error: agentfleet.toml:2:8: unknown provider kind 'openia'; did you mean 'openai'?\n"
        ),
        "{}",
        text.stderr
    );
    assert!(
        text.stderr
            .contains("5 problems in agentfleet.toml; no credential was checked")
    );
}

#[test]
fn broken_toml_is_located_too() {
    let workspace = Workspace::new();
    workspace.write("agentfleet.toml", "[providers.openai\nkind = \"openai\"\n");
    let output = run(&mut workspace.agentfleet(&["check", "--json"]));
    assert_eq!(output.code, 78);
    let error = &output.json()["errors"][0];
    assert_eq!(error["line"], 1);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid TOML"),
        "{error}"
    );
}

#[test]
fn the_config_is_found_by_flag_then_variable_then_working_directory() {
    let workspace = Workspace::new();
    workspace.write("agentfleet.toml", OPENAI_TEAM);
    workspace.write(
        "elsewhere/other.toml",
        "[providers.local]\nkind = \"standin\"\n",
    );
    let other = workspace.path().join("elsewhere/other.toml");

    let by_variable = run(workspace
        .agentfleet(&["check"])
        .env("AGENTFLEET_CONFIG", &other));
    assert_eq!(by_variable.code, 0, "{}", by_variable.stdout);
    assert!(by_variable.stdout.contains("(from AGENTFLEET_CONFIG)"));

    let by_flag = run(workspace
        .agentfleet(&["check", "--config", "agentfleet.toml"])
        .env("AGENTFLEET_CONFIG", &other));
    assert_eq!(by_flag.code, 78, "the flag wins over the variable");
    assert!(by_flag.stdout.contains("(from --config)"));

    let by_directory = run(&mut workspace.agentfleet(&["check"]));
    assert!(by_directory.stdout.contains("(from the working directory)"));

    let nowhere = Workspace::new();
    let none = run(&mut nowhere.agentfleet(&["check"]));
    assert_eq!(none.code, 78);
    assert!(none.stderr.contains(
        "no config file: pass --config PATH, set AGENTFLEET_CONFIG, or create ./agentfleet.toml"
    ));

    let missing = run(&mut nowhere.agentfleet(&["check", "--config", "absent.toml"]));
    assert_eq!(missing.code, 78);
    assert!(
        missing
            .stderr
            .contains("cannot read config file absent.toml (named by --config): no such file"),
        "{}",
        missing.stderr
    );
}

#[test]
fn the_file_twin_of_a_variable_is_read_and_labelled() {
    let workspace = Workspace::new();
    workspace.write("agentfleet.toml", OPENAI_TEAM);
    let key_file = workspace.write("secrets/openai", format!("{OPENAI_KEY}\n"));
    let output = run(workspace
        .agentfleet(&["check", "--json"])
        .env("OPENAI_API_KEY_FILE", &key_file));
    assert_eq!(output.code, 0, "{}", output.stdout);
    let json = output.json();
    assert_eq!(
        json["providers"][0]["source"],
        format!("env-file:OPENAI_API_KEY_FILE={}", key_file.display())
    );
    assert_eq!(
        json["providers"][0]["fingerprint"],
        Fingerprint::of(OPENAI_KEY).to_string()
    );
    assert_eq!(codes(&json, 0), ["trailing-newline"]);
    assert_eq!(json["providers"][0]["problems"][0]["severity"], "note");

    let both = run(workspace
        .agentfleet(&["check", "--json"])
        .env("OPENAI_API_KEY_FILE", &key_file)
        .env("OPENAI_API_KEY", OPENAI_KEY));
    assert_eq!(both.code, 78);
    assert_eq!(codes(&both.json(), 0), ["ambiguous-source"]);
}

#[test]
fn file_and_dotenv_sources_resolve_relative_to_the_config() {
    let workspace = Workspace::new();
    workspace.write(
        "conf/agentfleet.toml",
        "[providers.a]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { file = \"keys/openai\" }\n\
         [providers.b]\nkind = \"anthropic\"\nmodel = \"m\"\napi_key = { dotenv = \".env\", key = \"ANTHROPIC_API_KEY\" }\n",
    );
    workspace.write("conf/keys/openai", OPENAI_KEY);
    workspace.write(
        "conf/.env",
        format!("# keys\nexport ANTHROPIC_API_KEY=\"{ANTHROPIC_KEY}\"\n"),
    );
    let output =
        run(&mut workspace.agentfleet(&["check", "--json", "--config", "conf/agentfleet.toml"]));
    assert_eq!(output.code, 0, "{}", output.stdout);
    let json = output.json();
    assert_eq!(json["providers"][0]["source"], "file:keys/openai");
    assert_eq!(
        json["providers"][1]["source"],
        "dotenv:.env#ANTHROPIC_API_KEY"
    );
    assert_eq!(
        json["providers"][1]["fingerprint"],
        Fingerprint::of(ANTHROPIC_KEY).to_string()
    );
}

/// One provider of `kind` with `extra` lines, its key in `KEY`.
fn single(kind: &str, extra: &str) -> String {
    format!(
        "[providers.p]\nkind = \"{kind}\"\nmodel = \"m\"\napi_key = {{ env = \"KEY\" }}\n{extra}\n[agents.a]\nprovider = \"p\"\n"
    )
}

#[test]
fn each_rule_fires_end_to_end_and_near_misses_do_not() {
    let azure_classic = "endpoint = \"https://res.openai.azure.com\"\ndeployment = \"d\"\napi_version = \"2024-10-21\"";
    let cases: Vec<(&str, String, &str, i32, &[&str])> = vec![
        (
            "azure key on openai",
            single("openai", ""),
            AZURE_KEY,
            78,
            &["provider-mismatch"],
        ),
        (
            "openai key on azure",
            single("azure_openai", azure_classic),
            OPENAI_KEY,
            78,
            &["provider-mismatch"],
        ),
        (
            "anthropic key on openai",
            single("openai", ""),
            ANTHROPIC_KEY,
            78,
            &["provider-mismatch"],
        ),
        (
            "openai key on anthropic",
            single("anthropic", ""),
            OPENAI_KEY,
            78,
            &["provider-mismatch"],
        ),
        (
            "google key on openai",
            single("openai", ""),
            GOOGLE_KEY,
            78,
            &["provider-mismatch"],
        ),
        (
            "google key on a non-gemini compatible server",
            single(
                "openai_compatible",
                "base_url = \"http://127.0.0.1:8000/v1\"",
            ),
            GOOGLE_KEY,
            0,
            &["provider-mismatch"],
        ),
        (
            "google key on gemini",
            single(
                "openai_compatible",
                "base_url = \"https://generativelanguage.googleapis.com/v1beta/openai\"",
            ),
            GOOGLE_KEY,
            0,
            &[],
        ),
        (
            "azure resource as an openai base_url",
            single("openai", "base_url = \"https://res.openai.azure.com\""),
            AZURE_KEY,
            78,
            &["endpoint-mismatch"],
        ),
        (
            "azure v1 path with the openai kind",
            single(
                "openai",
                "base_url = \"https://res.openai.azure.com/openai/v1\"",
            ),
            AZURE_KEY,
            0,
            &[],
        ),
        (
            "api.openai.com as an azure endpoint",
            single(
                "azure_openai",
                "endpoint = \"https://api.openai.com/v1\"\ndeployment = \"d\"",
            ),
            AZURE_KEY,
            78,
            &["endpoint-mismatch"],
        ),
        (
            "classic azure path without api_version",
            single(
                "azure_openai",
                "endpoint = \"https://res.openai.azure.com\"\ndeployment = \"d\"",
            ),
            AZURE_KEY,
            78,
            &["endpoint-mismatch"],
        ),
        (
            "azure classic, complete",
            single("azure_openai", azure_classic),
            AZURE_KEY,
            0,
            &[],
        ),
        (
            "masked round trip",
            single("openai", ""),
            "**********",
            78,
            &["placeholder"],
        ),
        (
            "placeholder word",
            single("openai", ""),
            "changeme",
            78,
            &["placeholder"],
        ),
        (
            "x filler",
            single("openai", ""),
            "sk-xxxxxxxxxxxxxxxxxxxx",
            78,
            &["placeholder"],
        ),
        (
            "template",
            single("openai", ""),
            "your-api-key-here",
            78,
            &["placeholder"],
        ),
        (
            "angle brackets",
            single("openai", ""),
            "<OPENAI_API_KEY>",
            78,
            &["placeholder"],
        ),
        (
            "the variable's own name",
            single("openai", ""),
            "KEY",
            78,
            &["placeholder"],
        ),
        (
            "whitespace inside",
            single("openai", ""),
            "sk-proj-abc def",
            78,
            &["whitespace"],
        ),
        (
            "trailing newline in a variable",
            single("openai", ""),
            "sk-proj-abcdef\n",
            78,
            &["whitespace"],
        ),
        (
            "non-ascii",
            single("openai", ""),
            "sk-proj-abc\u{201d}def",
            78,
            &["non-ascii"],
        ),
        ("empty", single("openai", ""), "", 78, &["empty"]),
        (
            "unrecognised shape on openai warns",
            single("openai", ""),
            "Zq8vN3kL0pX9tYzA4cE8",
            0,
            &["provider-mismatch"],
        ),
        (
            "a placeholder on a local server only warns",
            single(
                "openai_compatible",
                "base_url = \"http://127.0.0.1:8000/v1\"",
            ),
            "test",
            0,
            &["placeholder"],
        ),
    ];
    for (name, config, key, expected_exit, expected_codes) in cases {
        let workspace = Workspace::new();
        workspace.write("agentfleet.toml", &config);
        let output = run(workspace.agentfleet(&["check", "--json"]).env("KEY", key));
        assert_eq!(output.code, expected_exit, "{name}: {}", output.stdout);
        let json = output.json();
        assert_eq!(codes(&json, 0), expected_codes, "{name}: {}", output.stdout);
        if key.len() > 8 {
            assert!(
                !output.stdout.contains(key.trim()),
                "{name}: the key was printed"
            );
        }
    }
}

#[test]
fn unreadable_sources_say_why() {
    let workspace = Workspace::new();
    workspace.write(
        "agentfleet.toml",
        "[providers.dir]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { file = \"secrets\" }\n\
         [providers.link]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { file = \"dangling\" }\n\
         [providers.pointer]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { env = \"POINTER\" }\n\
         [providers.dotenv]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { dotenv = \"broken.env\", key = \"K\" }\n\
         [providers.absent]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { file = \"/run/secrets/nothing-here\" }\n",
    );
    std::fs::create_dir(workspace.path().join("secrets")).unwrap();
    std::os::unix::fs::symlink(
        workspace.path().join("..data/key"),
        workspace.path().join("dangling"),
    )
    .unwrap();
    workspace.write("broken.env", "K=1\nnot a line\n");
    let output = run(workspace
        .agentfleet(&["check", "--json"])
        .env("POINTER_FILE", "/run/secrets/pointing-nowhere"));
    assert_eq!(output.code, 78);
    let json = output.json();
    let message = |index: usize| {
        json["providers"][index]["problems"][0]["message"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(codes(&json, 0), ["unreadable"]);
    assert!(
        message(0).contains("secrets is a directory"),
        "{}",
        message(0)
    );
    assert_eq!(codes(&json, 1), ["unreadable"]);
    assert!(message(1).contains("is a symbolic link to a file that does not exist"));
    assert_eq!(codes(&json, 2), ["unreadable"]);
    assert!(
        message(2).starts_with(
            "POINTER_FILE points at /run/secrets/pointing-nowhere, which does not exist"
        )
    );
    assert_eq!(codes(&json, 3), ["unreadable"]);
    assert!(
        message(3).contains("broken.env line 2: expected NAME=VALUE"),
        "{}",
        message(3)
    );
    assert_eq!(codes(&json, 4), ["missing"]);
    assert!(message(4).starts_with("file /run/secrets/nothing-here does not exist"));
}

#[test]
fn a_literal_key_is_refused_with_the_reference_to_use() {
    let workspace = Workspace::new();
    workspace.write(
        "agentfleet.toml",
        openai_with_key(&format!("\"{OPENAI_KEY}\"")),
    );
    let output = run(&mut workspace.agentfleet(&["check"]));
    assert_eq!(output.code, 78);
    assert!(output.stdout.contains("error[literal-secret]: api_key at agentfleet.toml:5:11 is written into the config as a literal"), "{}", output.stdout);
    assert!(
        output
            .stdout
            .contains("api_key = { env = \"OPENAI_API_KEY\" }")
    );
    assert!(!output.stdout.contains(OPENAI_KEY));
}

#[test]
fn help_lists_check() {
    let output = run(agentfleet().arg("--help"));
    assert_eq!(output.code, 0);
    assert!(output.stdout.contains("check"));
    let output = run(agentfleet().arg("check").arg("--bogus"));
    assert_eq!(output.code, 2, "usage errors exit 2");
}

/// The real user id of this test process, from /proc.
fn real_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .expect("a Uid line")
}

#[test]
fn a_secret_file_this_user_cannot_read_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let workspace = Workspace::new();
    std::fs::set_permissions(workspace.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = workspace.write("agentfleet.toml", openai_with_key(r#"{ file = "locked" }"#));
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let locked = workspace.write("locked", OPENAI_KEY);
    let mut command = if real_uid() == 0 {
        // root reads any file, so run the check as an unprivileged user that the file's mode
        // (0600, owned by root) really shuts out.
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut command = assert_cmd::Command::new("setpriv");
        command
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .current_dir(workspace.path())
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_agentfleet"))
            .args(["check", "--json"]);
        command
    } else {
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        workspace.agentfleet(&["check", "--json"])
    };
    let output = run(&mut command);
    assert_eq!(output.code, 78, "{}{}", output.stdout, output.stderr);
    let json = output.json();
    assert_eq!(codes(&json, 0), ["unreadable"]);
    let message = json["providers"][0]["problems"][0]["message"]
        .as_str()
        .unwrap();
    assert!(message.starts_with("file "), "{message}");
    assert!(
        message.contains("locked cannot be read by this process (permission denied)"),
        "{message}"
    );
}
