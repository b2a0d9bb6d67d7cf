//! The fixture corpus of `doctor`: each directory under `tests/doctor/` is a small project
//! (code in each language, manifests, compose files, Dockerfiles) with the findings it must
//! give in `expected.txt`, one `file:line:column rule severity` a line. Bad and good files sit
//! side by side, so every near miss that must not fire is checked with the cases that must.

use std::path::{Path, PathBuf};

use agentfleet_doctor::{Rule, doctor};

fn findings_of(directory: &Path) -> Vec<String> {
    let report = doctor(&[directory.to_path_buf()]).unwrap();
    let prefix = format!("{}/", directory.display());
    report
        .findings
        .iter()
        .map(|f| {
            format!(
                "{}:{}:{} {} {}",
                f.file.strip_prefix(&prefix).unwrap_or(&f.file),
                f.line,
                f.column,
                f.rule.id(),
                match f.severity {
                    agentfleet_doctor::Severity::Error => "error",
                    agentfleet_doctor::Severity::Warning => "warning",
                }
            )
        })
        .collect()
}

#[test]
fn every_fixture_project_gives_exactly_its_expected_findings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/doctor");
    let mut projects: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    projects.sort();
    assert!(projects.len() >= 4);
    let mut rules_seen = std::collections::BTreeSet::new();
    for project in projects {
        let expected: Vec<String> = std::fs::read_to_string(project.join("expected.txt"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        let found = findings_of(&project);
        assert_eq!(found, expected, "{}", project.display());
        for line in &found {
            rules_seen.insert(line.split(' ').nth(1).unwrap().to_owned());
        }
    }
    for rule in Rule::ALL {
        assert!(
            rules_seen.contains(rule.id()),
            "no fixture fires {}",
            rule.id()
        );
    }
}

#[test]
fn gitignored_files_are_not_read_and_no_finding_quotes_a_key() {
    let directory = tempfile::tempdir().unwrap();
    let key = "sk-proj-DoctorCanary0123456789abcdefGHIJKL";
    std::fs::write(directory.path().join(".gitignore"), "generated/\n").unwrap();
    std::fs::create_dir(directory.path().join("generated")).unwrap();
    std::fs::write(
        directory.path().join("generated/client.py"),
        "from openai import OpenAI\nclient = OpenAI()\n",
    )
    .unwrap();
    std::fs::write(
        directory.path().join("app.py"),
        format!("from openai import OpenAI\nclient = OpenAI(api_key=\"{key}\")\n"),
    )
    .unwrap();
    let report = doctor(&[directory.path().to_path_buf()]).unwrap();
    let files: Vec<&str> = report.findings.iter().map(|f| f.file.as_str()).collect();
    assert!(
        files.iter().all(|file| file.ends_with("app.py")),
        "{files:?}"
    );
    assert_eq!(
        report.findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
        [Rule::ClientAtModuleScope, Rule::HardcodedKey]
    );
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("DoctorCanary"), "{json}");
    assert!(json.contains(&agentfleet_config::Fingerprint::of(key).to_string()));
}

#[test]
fn sarif_names_every_rule_and_locates_every_result() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/doctor/node");
    let report = doctor(&[root]).unwrap();
    let sarif = agentfleet_doctor::sarif::to_sarif(&report.findings, "0.1.0");
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), Rule::ALL.len());
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), report.findings.len());
    for (result, finding) in results.iter().zip(&report.findings) {
        assert_eq!(result["ruleId"], finding.rule.id());
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], finding.rule.id());
        let region = &result["locations"][0]["physicalLocation"]["region"];
        assert_eq!(region["startLine"], finding.line);
        assert_eq!(region["startColumn"], finding.column);
        assert!(["error", "warning"].contains(&result["level"].as_str().unwrap()));
    }
}

#[test]
fn a_path_that_does_not_exist_is_an_error() {
    let error = doctor(&[PathBuf::from("/no/such/project")]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "/no/such/project: no such file or directory"
    );
}
