//! The findings as SARIF 2.1.0, the format code-scanning tools (GitHub code scanning, IDEs)
//! read: one run, every rule described in the driver, one result per finding.

use serde_json::{Value, json};

use crate::{Finding, Rule, Severity};

/// A SARIF 2.1.0 log of `findings`. `version` is agentfleet's.
pub fn to_sarif(findings: &[Finding], version: &str) -> Value {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id(),
                "name": rule.id(),
                "shortDescription": {"text": rule.summary()},
                "helpUri": format!(
                    "https://github.com/agentfleet/agentfleet/blob/main/docs/doctor.md#{}",
                    rule.id()
                ),
                "defaultConfiguration": {"level": "error"},
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|finding| {
            json!({
                "ruleId": finding.rule.id(),
                "ruleIndex": Rule::ALL.iter().position(|r| *r == finding.rule).unwrap_or(0),
                "level": match finding.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                },
                "message": {"text": format!("{} Fix: {}.", finding.message, finding.fix)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": finding.file},
                        "region": {"startLine": finding.line, "startColumn": finding.column},
                    },
                }],
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "agentfleet doctor",
                "version": version,
                "informationUri": "https://github.com/agentfleet/agentfleet",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}
