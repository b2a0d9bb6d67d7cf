//! `agentfleet k8s`: the manifests parse as Kubernetes YAML, hold no secret value, and wire each
//! credential exactly the way `check` says it is sourced; a config that cannot be shipped to a
//! pod is refused.

use agentfleet_config::Fingerprint;
use serde_json::Value;

use crate::util::{Output, Workspace, run};

const OPENAI: &str = "sk-proj-K8sCanaryOpenAi0123456789abcdefghijklmnopqrstuv";
const AZURE_2: &str = "0123456789abcdef0123456789abcdef";
const QUEUE: &str = "postgres://agentfleet:K8sCanaryPassword@db.internal:5432/fleet";

/// Providers of every source kind, a queue read from a variable, and a shutdown grace of 20 s.
const CONFIG: &str = r#"[providers.openai]
kind = "openai"
model = "gpt-4o-mini"
api_key = { env = "OPENAI_API_KEY" }

[providers.azure]
kind = "azure_openai"
endpoint = "https://example.openai.azure.com"
deployment = "gpt-4o-mini"
api_version = "2024-10-21"
api_key = { file = "/var/run/secrets/azure/api-key" }
api_key_fallback = { env = "AZURE_OPENAI_API_KEY_2" }

[providers.claude]
kind = "anthropic"
model = "claude-sonnet-4-5"
api_key = { dotenv = "secrets/anthropic.env", key = "ANTHROPIC_API_KEY" }

[agents.writer]
provider = "openai"

[agents.reviewer]
provider = "azure"

[agents.checker]
provider = "claude"

[queue]
url = { env = "QUEUE_URL" }

[fleet]
shutdown_grace = "20s"
"#;

fn k8s(workspace: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = workspace.agentfleet(&["k8s"]);
    command.args(args).envs(env.iter().copied());
    run(&mut command)
}

fn documents(output: &Output) -> Vec<Value> {
    serde_saphyr::from_multiple(&output.stdout)
        .unwrap_or_else(|error| panic!("not YAML ({error}):\n{}", output.stdout))
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

/// The Secret key a variable of the container comes from.
fn secret_key_of_variable<'a>(deployment: &'a Value, variable: &str) -> Option<&'a Value> {
    container(deployment)["env"]
        .as_array()?
        .iter()
        .find(|entry| entry["name"] == variable)
        .map(|entry| &entry["valueFrom"]["secretKeyRef"])
}

/// The Secret key that lands at `path` in the pod, and whether it is reached without `subPath`.
fn secret_key_of_file(deployment: &Value, path: &str) -> Option<String> {
    let pod = &deployment["spec"]["template"]["spec"];
    for mount in container(deployment)["volumeMounts"].as_array()? {
        assert!(mount.get("subPath").is_none(), "a subPath mount: {mount}");
        let directory = mount["mountPath"].as_str()?;
        let Some(relative) = path.strip_prefix(&format!("{directory}/")) else {
            continue;
        };
        let volume = pod["volumes"]
            .as_array()?
            .iter()
            .find(|volume| volume["name"] == mount["name"])?;
        let secrets: Vec<&Value> = match volume.get("projected") {
            Some(projected) => projected["sources"]
                .as_array()?
                .iter()
                .filter_map(|source| source.get("secret"))
                .collect(),
            None => vec![&volume["secret"]],
        };
        for secret in secrets {
            let name = secret.get("secretName").or(secret.get("name"));
            assert_eq!(name, Some(&Value::from("agentfleet")), "{volume}");
            for item in secret["items"].as_array()? {
                if item["path"] == relative {
                    return item["key"].as_str().map(str::to_owned);
                }
            }
        }
    }
    None
}

#[test]
fn the_manifests_wire_each_credential_as_check_sources_it_and_hold_no_secret() {
    let workspace = Workspace::new();
    workspace.write("agentfleet.toml", CONFIG);
    let env = [
        ("OPENAI_API_KEY", OPENAI),
        ("AZURE_OPENAI_API_KEY_2", AZURE_2),
        ("QUEUE_URL", QUEUE),
    ];
    let output = k8s(
        &workspace,
        &[
            "--workers",
            "3",
            "--image",
            "registry.example/agentfleet:1.2",
        ],
        &env,
    );
    assert_eq!(output.code, 0, "{}", output.stderr);
    for canary in [OPENAI, AZURE_2, "K8sCanaryPassword", "K8sCanaryOpenAi"] {
        assert!(
            !output.stdout.contains(canary) && !output.stderr.contains(canary),
            "a secret value is in the manifests"
        );
    }
    let parsed = documents(&output);
    assert_eq!(parsed.len(), 2, "{}", output.stdout);
    let (config_map, deployment) = (&parsed[0], &parsed[1]);
    assert_eq!(
        (&config_map["apiVersion"], &config_map["kind"]),
        (&Value::from("v1"), &Value::from("ConfigMap"))
    );
    assert_eq!(config_map["data"]["agentfleet.toml"], CONFIG);
    assert_eq!(
        (&deployment["apiVersion"], &deployment["kind"]),
        (&Value::from("apps/v1"), &Value::from("Deployment"))
    );
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"],
        deployment["spec"]["template"]["metadata"]["labels"]
            .as_object()
            .map(|labels| {
                let name = &labels["app.kubernetes.io/name"];
                serde_json::json!({"app.kubernetes.io/name": name})
            })
            .unwrap()
    );
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    let container = container(deployment);
    assert_eq!(container["image"], "registry.example/agentfleet:1.2");
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        args,
        [
            "worker",
            "--config",
            "/etc/agentfleet/agentfleet.toml",
            "--health-addr",
            "0.0.0.0:8080",
            "--probe"
        ]
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(
        container["lifecycle"]["preStop"]["httpGet"]["path"],
        "/drain"
    );
    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    assert!(grace > 20, "longer than the shutdown grace: {grace}");

    // Every source `check` reports is wired that way: a variable from the Secret, a file from
    // the Secret mounted as a directory, a relative file beside the config.
    let check = run(workspace.agentfleet(&["check", "--json"]).envs(env)).json();
    let mut labels: Vec<String> = Vec::new();
    for provider in check["providers"].as_array().unwrap() {
        labels.push(provider["source"].as_str().unwrap().to_owned());
        if let Some(fallback) = provider["fallback"]["source"].as_str() {
            labels.push(fallback.to_owned());
        }
    }
    labels.push("env:QUEUE_URL".to_owned());
    assert_eq!(labels.len(), 5, "{check:#}");
    for label in &labels {
        if let Some(variable) = label.strip_prefix("env:") {
            let reference = secret_key_of_variable(deployment, variable)
                .unwrap_or_else(|| panic!("{variable} is not wired: {container:#}"));
            assert_eq!(reference["name"], "agentfleet", "{label}");
            assert_eq!(reference["key"], variable, "{label}");
        } else if let Some(path) = label.strip_prefix("file:") {
            let key = secret_key_of_file(deployment, path)
                .unwrap_or_else(|| panic!("{path} is not mounted: {deployment:#}"));
            assert_eq!(key, "api-key");
        } else if let Some(rest) = label.strip_prefix("dotenv:") {
            let path = rest.split('#').next().unwrap();
            let in_pod = format!(
                "/etc/agentfleet/{}",
                path.rsplit_once(workspace.path().to_str().unwrap())
                    .map_or(path, |(_, relative)| relative.trim_start_matches('/'))
            );
            let key = secret_key_of_file(deployment, &in_pod)
                .unwrap_or_else(|| panic!("{in_pod} is not mounted: {deployment:#}"));
            assert_eq!(key, "anthropic.env");
        } else {
            panic!("a source this test does not know: {label}");
        }
    }
    assert!(
        output
            .stdout
            .contains("# The Secret \"agentfleet\" must hold these keys"),
        "{}",
        output.stdout
    );
    assert!(
        output.stdout.contains("--from-literal=OPENAI_API_KEY=..."),
        "{}",
        output.stdout
    );

    // The pods roll when the config changes, and when a variable's value does.
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(
        annotations["agentfleet.dev/config-checksum"],
        Fingerprint::of(CONFIG).to_string()
    );
    assert_eq!(
        annotations["secret.reloader.stakater.com/reload"],
        "agentfleet"
    );
    let checksum = |env: &[(&str, &str)]| {
        documents(&k8s(&workspace, &[], env))[1]["spec"]["template"]["metadata"]["annotations"]
            ["agentfleet.dev/secret-checksum"]
            .clone()
    };
    let first = annotations["agentfleet.dev/secret-checksum"].clone();
    assert!(first.as_str().unwrap().starts_with("sha256:"), "{first}");
    assert_eq!(checksum(&env), first, "the same values, the same checksum");
    let rotated = [
        (
            "OPENAI_API_KEY",
            "sk-proj-RotatedOpenAi0123456789abcdefghijklmnopqrstuvw",
        ),
        ("AZURE_OPENAI_API_KEY_2", AZURE_2),
        ("QUEUE_URL", QUEUE),
    ];
    assert_ne!(checksum(&rotated), first, "a rotated key rolls the pods");

    // Without the variables, no checksum, and a note that says what that means.
    let bare = k8s(&workspace, &[], &[]);
    assert_eq!(bare.code, 0, "{}", bare.stderr);
    assert!(
        documents(&bare)[1]["spec"]["template"]["metadata"]["annotations"]
            .get("agentfleet.dev/secret-checksum")
            .is_none()
    );
    assert!(
        bare.stderr
            .contains("OPENAI_API_KEY, AZURE_OPENAI_API_KEY_2 and QUEUE_URL are not set here"),
        "{}",
        bare.stderr
    );
}

#[test]
fn a_sqlite_queue_is_replaced_by_a_variable_from_the_secret() {
    let workspace = Workspace::new();
    workspace.write(
        "agentfleet.toml",
        "[providers.main]\nkind = \"openai\"\nmodel = \"gpt-4o-mini\"\napi_key = { env = \"OPENAI_API_KEY\" }\n\n\
         [queue]\nurl = \"sqlite://agentfleet.db\"\n",
    );
    let output = k8s(&workspace, &[], &[]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    let deployment = &documents(&output)[1];
    let reference = secret_key_of_variable(deployment, "AGENTFLEET_QUEUE_URL").unwrap();
    assert_eq!(reference["key"], "AGENTFLEET_QUEUE_URL");
    assert!(
        output.stderr.contains(
            "[queue] url is a SQLite file (sqlite://agentfleet.db), which each pod would hold alone"
        ),
        "{}",
        output.stderr
    );
}

#[test]
fn a_config_that_cannot_ship_to_a_pod_is_refused_with_the_reason() {
    let workspace = Workspace::new();
    workspace.write(
        "agentfleet.toml",
        format!(
            "[providers.main]\nkind = \"openai\"\nmodel = \"gpt-4o-mini\"\napi_key = \"{OPENAI}\"\n\n\
             [providers.other]\nkind = \"openai\"\nmodel = \"gpt-4o-mini\"\napi_key = {{ file = \"../outside/key\" }}\n"
        ),
    );
    let output = k8s(&workspace, &[], &[]);
    assert_eq!(output.code, 78, "{}", output.stderr);
    assert_eq!(output.stdout, "", "no manifest");
    assert!(
        output
            .stderr
            .contains("the config file is shipped in a ConfigMap"),
        "{}",
        output.stderr
    );
    assert!(
        output
            .stderr
            .contains("outside the config's directory: a pod cannot mount it there"),
        "{}",
        output.stderr
    );
    assert!(!output.stderr.contains(OPENAI), "{}", output.stderr);
}
