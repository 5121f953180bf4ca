//! Conformance: kstep's two dotenv flavors against the real implementations.
//!
//! The answers are not hand-written: `compose_vectors.json` holds compose-go's real parser's
//! answers on ~1600 inputs, `gitlab_vectors.json` those of GitLab's upload rules run in Ruby on
//! ~1600 blobs. The oracles in `conformance/` write both files (see its README); one case per
//! line, so a regenerated file reviews as a diff of cases.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use kstep_dotenv::{compose, gitlab};
use serde::Deserialize;

/// `compose_vectors.json`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComposeVectors {
    /// The oracle and the compose-go version that answered.
    generator: String,
    /// The environment every case was parsed with.
    environment: BTreeMap<String, String>,
    cases: Vec<ComposeCase>,
}

/// One input and compose-go's answer: the variables (a map: Go maps have no order), or the
/// kind of error (kstep's messages differ on purpose: they carry line and column and never
/// quote a value).
#[derive(Deserialize)]
struct ComposeCase {
    input: String,
    #[serde(flatten)]
    answer: ComposeAnswer,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ComposeAnswer {
    Vars(BTreeMap<String, String>),
    Error(String),
}

/// `gitlab_vectors.json`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GitlabVectors {
    /// The oracle and the Ruby that ran it.
    generator: String,
    /// The plan limits the oracle applied.
    limits: Limits,
    cases: Vec<GitlabCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Limits {
    max_bytes: u64,
    max_vars: u32,
}

/// One uploaded blob and GitLab's answer: the variables in GitLab's order, or its exact message.
#[derive(Deserialize)]
struct GitlabCase {
    #[serde(flatten)]
    blob: Blob,
    #[serde(flatten)]
    answer: GitlabAnswer,
}

/// The uploaded bytes, written as the text they hold.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Blob {
    /// The text's UTF-8 bytes.
    Text(String),
    /// The bytes FF FE (a UTF-16LE byte-order mark), then the text in UTF-16LE.
    Utf16le(String),
}

impl Blob {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Blob::Text(text) => text.as_bytes().to_vec(),
            Blob::Utf16le(text) => [0xFF, 0xFE]
                .into_iter()
                .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum GitlabAnswer {
    Vars(Vec<(String, String)>),
    Error(String),
}

/// compose-go's error message reduced to its kind (as the oracle does).
fn kind(message: &str) -> &'static str {
    [
        ("unterminated quoted value", "unterminated"),
        ("unexpected character", "unexpected-character"),
        ("key cannot contain a space", "key-space"),
        ("Invalid template", "invalid-template"),
        ("required variable", "required"),
        ("zero length string", "zero-length"),
    ]
    .iter()
    .find(|(needle, _)| message.contains(needle))
    .map_or("other", |(_, kind)| kind)
}

fn assert_no_failures(failures: &[String], cases: usize, generator: &str) {
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ from {generator}:\n{}",
        failures.len(),
        failures[..failures.len().min(15)].join("\n")
    );
}

#[test]
fn matches_the_compose_go_oracle() {
    let vectors: ComposeVectors =
        serde_json::from_str(include_str!("compose_vectors.json")).unwrap();
    assert!(vectors.cases.len() > 1500, "{}", vectors.cases.len());
    let environment: Vec<(String, String)> = vectors.environment.into_iter().collect();
    let mut failures = Vec::new();
    for case in &vectors.cases {
        let got = compose::parse(case.input.as_bytes(), &environment);
        let same = match (&got, &case.answer) {
            (Ok(parsed), ComposeAnswer::Vars(want)) => {
                let got: BTreeMap<&str, &str> = parsed
                    .entries
                    .iter()
                    .map(|e| (e.key.as_str(), e.value.as_str()))
                    .collect();
                got.len() == parsed.entries.len()
                    && got
                        .iter()
                        .map(|(k, v)| (*k, *v))
                        .eq(want.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            }
            (Err(problem), ComposeAnswer::Error(want)) => kind(&problem.message) == want,
            _ => false,
        };
        if !same {
            failures.push(format!(
                "{:?}: compose-go {:?}, kstep {got:?}",
                case.input, case.answer
            ));
        }
    }
    assert_no_failures(&failures, vectors.cases.len(), &vectors.generator);
}

#[test]
fn matches_the_gitlab_oracle() {
    let vectors: GitlabVectors = serde_json::from_str(include_str!("gitlab_vectors.json")).unwrap();
    assert!(vectors.cases.len() > 1500, "{}", vectors.cases.len());
    // The oracle applies GitLab's default plan limits, which are kstep's defaults.
    let limits = gitlab::Limits {
        max_bytes: vectors.limits.max_bytes,
        max_vars: vectors.limits.max_vars,
    };
    assert_eq!(limits, gitlab::Limits::default());
    let mut failures = Vec::new();
    for case in &vectors.cases {
        let blob = case.blob.bytes();
        let report = gitlab::check(&blob, limits);
        let same = match &case.answer {
            GitlabAnswer::Vars(want) => {
                let got: Vec<(String, String)> = gitlab::parse(&blob)
                    .map(|p| p.entries.into_iter().map(|e| (e.key, e.value)).collect())
                    .unwrap_or_default();
                report.accepted() && report.gitlab_message.is_none() && got == *want
            }
            GitlabAnswer::Error(message) => {
                !report.accepted() && report.gitlab_message.as_deref() == Some(message.as_str())
            }
        };
        if !same {
            failures.push(format!(
                "{:?}: GitLab {:?}, kstep {:?} {:?}",
                String::from_utf8_lossy(&blob),
                case.answer,
                report.gitlab_message,
                gitlab::parse(&blob)
            ));
        }
    }
    assert_no_failures(&failures, vectors.cases.len(), &vectors.generator);
}
