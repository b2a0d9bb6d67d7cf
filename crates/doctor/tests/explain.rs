//! The fixture corpus of `explain`: each file under `tests/explain/` is a log, a traceback or a
//! raw body, headed by the diagnoses it must give (`# expect: LINE CAUSE PROVIDER`, or
//! `# expect: none` for near misses that must give none). Every cause has a case that must
//! fire, and the near misses hold text that resembles a failure without being one.

use std::path::Path;

use agentfleet_doctor::explain;

#[test]
fn every_fixture_gives_exactly_its_expected_diagnoses() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/explain");
    let mut files: Vec<_> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus is there");
    let mut causes_seen = std::collections::BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut expected: Vec<String> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# expect: "))
            .filter(|line| *line != "none")
            .map(str::to_owned)
            .collect();
        expected.sort();
        let mut found: Vec<String> = explain(&text)
            .iter()
            .map(|d| {
                causes_seen.insert(d.cause.as_str());
                format!(
                    "{} {} {}",
                    d.line,
                    d.cause.as_str(),
                    d.provider.unwrap_or("-")
                )
            })
            .collect();
        found.sort();
        assert_eq!(found, expected, "{}", file.display());
    }
    for cause in [
        "missing-key",
        "invalid-key",
        "provider-mismatch",
        "variable-name-as-key",
        "wrong-auth-header",
        "expired-token",
        "organization-mismatch",
        "account-deactivated",
        "permission-denied",
        "quota-exhausted",
        "rate-limited",
    ] {
        assert!(causes_seen.contains(cause), "no fixture fires {cause}");
    }
}

#[test]
fn evidence_never_holds_a_key() {
    let key = "sk-proj-CanaryExplain0123456789abcdefGHIJKL";
    let text = format!(
        "openai.AuthenticationError: Error code: 401 - {{'error': {{'message': 'Incorrect API key provided: {key}. You can find ...'}}}}\n\
         Authorization: Bearer {key}\n\
         You didn't provide an API key. key was {key}\n"
    );
    let found = explain(&text);
    assert!(!found.is_empty());
    for diagnosis in found {
        assert!(
            !diagnosis.evidence.contains("CanaryExplain"),
            "{}",
            diagnosis.evidence
        );
        assert!(!diagnosis.fix.contains("CanaryExplain"));
    }
}
