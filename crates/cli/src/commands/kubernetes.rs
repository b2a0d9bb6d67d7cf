//! `agentfleet k8s`: the manifests of `agentfleet_fleet::kubernetes` as YAML on stdout, with a
//! header saying which keys the Secret must hold; notes and refusals on stderr.

use std::io::Write;

use agentfleet_config::ProcessEnv;
use agentfleet_fleet::kubernetes::{ManifestOptions, manifests};
use anyhow::Context;

use crate::cli::K8sArgs;
use crate::commands::queue::load_config;
use crate::exit::Exit;

pub fn run(args: &K8sArgs) -> anyhow::Result<Exit> {
    let config = match load_config(&args.config, true, false) {
        Ok(Some(config)) => config,
        Ok(None) => return Ok(Exit::Config),
        Err(exit) => return Ok(exit),
    };
    let text = std::fs::read_to_string(&config.path)
        .with_context(|| format!("cannot read {}", config.path.display()))?;
    let options = ManifestOptions {
        name: args.name.clone(),
        namespace: args.namespace.clone(),
        image: args.image.clone(),
        secret: args.secret.clone(),
        replicas: args.workers.unwrap_or(config.fleet.workers),
    };
    let built = match manifests(&config, &text, &ProcessEnv, &options) {
        Ok(built) => built,
        Err(errors) => {
            for error in &errors {
                eprintln!("error: {error}");
            }
            eprintln!("agentfleet k8s: no manifest was written (exit 78)");
            return Ok(Exit::Config);
        }
    };
    for note in &built.notes {
        eprintln!("note: {note}");
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "# Workers for {}, made by agentfleet k8s.",
        config.path.display()
    )?;
    if built.secret_keys.is_empty() {
        writeln!(out, "# No credential is read from a variable or a file.")?;
    } else {
        let width = built
            .secret_keys
            .iter()
            .map(|k| k.key.len())
            .max()
            .unwrap_or(0);
        writeln!(
            out,
            "# The Secret {:?} must hold these keys (no value appears here):",
            args.secret
        )?;
        for key in &built.secret_keys {
            writeln!(
                out,
                "#   {:width$}  as {}, for {}",
                key.key, key.wired_as, key.source
            )?;
        }
        let literals: Vec<String> = built
            .secret_keys
            .iter()
            .map(|key| {
                if key.wired_as.starts_with("variable ") {
                    format!("--from-literal={}=...", key.key)
                } else {
                    format!("--from-file={}=PATH", key.key)
                }
            })
            .collect();
        writeln!(
            out,
            "# For example: kubectl create secret generic {} {}",
            args.secret,
            literals.join(" ")
        )?;
    }
    for document in &built.documents {
        let yaml = serde_saphyr::to_string(&Conventional(document))
            .context("cannot write the manifests")?;
        writeln!(out, "---")?;
        write!(out, "{yaml}")?;
        if !yaml.ends_with('\n') {
            writeln!(out)?;
        }
    }
    Ok(Exit::Ok)
}

/// A manifest with its keys in the order people write them: `apiVersion`, `kind`, `metadata`
/// and `name` first, `spec` and `data` last, the rest alphabetical between.
struct Conventional<'a>(&'a serde_json::Value);

impl serde::Serialize for Conventional<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            serde_json::Value::Object(map) => {
                let rank = |key: &str| match key {
                    "apiVersion" => 0,
                    "kind" => 1,
                    "metadata" => 2,
                    "name" => 3,
                    "spec" | "data" => 5,
                    _ => 4,
                };
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by_key(|(key, _)| rank(key));
                let mut out = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    out.serialize_entry(key, &Conventional(value))?;
                }
                out.end()
            }
            serde_json::Value::Array(values) => {
                let mut out = serializer.serialize_seq(Some(values.len()))?;
                for value in values {
                    out.serialize_element(&Conventional(value))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}
