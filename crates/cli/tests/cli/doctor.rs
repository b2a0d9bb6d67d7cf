//! `agentfleet explain` and `doctor` end to end: exit codes, text, JSON and SARIF, standard input,
//! and no key in any output.

use crate::util::{Workspace, run};

const KEY: &str = "sk-proj-ExplainCanary0123456789abcdefGHIJKLmnop";

#[test]
fn explain_names_each_failure_and_exits_one_only_for_a_credential_failure() {
    let workspace = Workspace::new();
    workspace.write(
        "worker.log",
        format!(
            "INFO starting\n\
             openai.AuthenticationError: Error code: 401 - {{'error': {{'message': 'Incorrect API key provided: {KEY}. You can find your API key at https://platform.openai.com/account/api-keys.', 'code': 'invalid_api_key'}}}}\n\
             openai.RateLimitError: Error code: 429 - {{'error': {{'message': 'You exceeded your current quota', 'type': 'insufficient_quota'}}}}\n"
        ),
    );
    let output = run(&mut workspace.agentfleet(&["explain", "worker.log"]));
    assert_eq!(output.code, 1, "{}", output.stderr);
    assert!(
        output
            .stdout
            .contains("worker.log:2: invalid-key (openai)\n"),
        "{}",
        output.stdout
    );
    assert!(
        output
            .stdout
            .contains("worker.log:3: quota-exhausted (openai), not a credential failure\n"),
        "{}",
        output.stdout
    );
    assert!(
        output
            .stdout
            .ends_with("1 credential failure found in worker.log\n"),
        "{}",
        output.stdout
    );
    assert!(
        !output.stdout.contains("ExplainCanary"),
        "{}",
        output.stdout
    );

    let json = run(workspace
        .agentfleet(&["explain", "-", "--json"])
        .write_stdin(std::fs::read(workspace.path().join("worker.log")).unwrap()))
    .json();
    let diagnoses = json["diagnoses"].as_array().unwrap();
    assert_eq!(diagnoses.len(), 2, "{json:#}");
    assert_eq!(diagnoses[0]["cause"], "invalid-key");
    assert_eq!(diagnoses[0]["provider"], "openai");
    assert_eq!(diagnoses[0]["line"], 2);
    assert!(
        diagnoses[0]["evidence"]
            .as_str()
            .unwrap()
            .contains("Incorrect API key provided: sk-proj-[masked]."),
        "{json:#}"
    );
    assert!(!json.to_string().contains("ExplainCanary"));

    // Only look-alikes, or nothing at all: exit 0, and it says so.
    workspace.write(
        "quiet.log",
        "openai.RateLimitError: Error code: 429 - {'error': {'code': 'rate_limit_exceeded'}}\n",
    );
    let output = run(&mut workspace.agentfleet(&["explain", "quiet.log"]));
    assert_eq!(output.code, 0, "{}", output.stdout);
    assert!(
        output
            .stdout
            .ends_with("no credential failure found in quiet.log\n"),
        "{}",
        output.stdout
    );
    let output = run(&mut workspace.agentfleet(&["explain", "missing.log"]));
    assert_eq!(output.code, 2);
    assert!(
        output.stderr.contains("cannot read missing.log"),
        "{}",
        output.stderr
    );
}

#[test]
fn doctor_reports_findings_in_three_formats_and_exits_one_for_an_error() {
    let workspace = Workspace::new();
    workspace.write(
        "app/worker.py",
        "from openai import OpenAI\n\nclient = OpenAI()\n\n\ndef handle(task):\n    return client\n",
    );
    workspace.write(
        "app/ok.ts",
        "import OpenAI from \"openai\";\nexport const make = () => new OpenAI();\n",
    );
    let text = run(&mut workspace.agentfleet(&["doctor"]));
    assert_eq!(text.code, 1, "{}", text.stdout);
    assert!(
        text.stdout.starts_with(
            "app/worker.py:3:10: error[client-at-module-scope]: OpenAI is constructed at module scope"
        ),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.ends_with("2 files read: 1 error, 0 warnings\n"),
        "{}",
        text.stdout
    );

    let json = run(&mut workspace.agentfleet(&["doctor", "app", "--format", "json"])).json();
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{json:#}");
    let finding = &findings[0];
    for field in [
        "rule", "severity", "file", "line", "column", "message", "fix",
    ] {
        assert!(finding.get(field).is_some(), "{field} in {finding}");
    }
    assert_eq!(finding["file"], "app/worker.py");
    assert_eq!(
        (&finding["line"], &finding["column"]),
        (&3.into(), &10.into())
    );

    let sarif = run(&mut workspace.agentfleet(&["doctor", "--format", "sarif"])).json();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(
        sarif["runs"][0]["results"][0]["ruleId"],
        "client-at-module-scope"
    );

    // Fixed: nothing to report, exit 0.
    workspace.write(
        "app/worker.py",
        "from openai import OpenAI\n\n\ndef handle(task):\n    return OpenAI()\n",
    );
    let clean = run(&mut workspace.agentfleet(&["doctor"]));
    assert_eq!(clean.code, 0, "{}", clean.stdout);
    assert_eq!(clean.stdout, "2 files read: 0 errors, 0 warnings\n");

    let missing = run(&mut workspace.agentfleet(&["doctor", "nowhere"]));
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("nowhere: no such file or directory"),
        "{}",
        missing.stderr
    );
}
