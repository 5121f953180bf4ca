//! Property tests (fuzzing on stable) of the kubeconfig decoder: on any input, `decode` returns
//! (no panic, no hang), every error names its input, and every error about a place in the input
//! points at one of its lines.
//!
//! Inputs are the real-world fixture kubeconfigs (tests/fixtures/kubeconfigs) mutated line by
//! line (lines dropped, repeated, cut, values replaced, YAML punctuation inserted), given as
//! YAML or as base64 (one line or wrapped), one to three at a time as a `KUBECONFIG` list
//! would; and arbitrary bytes. Sizes are bounded: a case takes milliseconds. The number of
//! cases: `components/proptest_config.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../proptest_config.rs"]
mod proptest_config;

use kstep_kubeconfig::connection::{Diagnostic, Input, Severity};
use kstep_kubeconfig::decode::{decode, to_base64};
use proptest::prelude::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../../tests/fixtures/kubeconfigs/", $name))
    };
}

const FIXTURES: &[&str] = &[
    fixture!("kind.yaml"),
    fixture!("k3s.yaml"),
    fixture!("minikube.yaml"),
    fixture!("gke.yaml"),
    fixture!("eks.yaml"),
    fixture!("ovh.yaml"),
    fixture!("gitlab-agent.yaml"),
    fixture!("leak.yaml"),
];

/// Values and bits of YAML put into the fixtures.
const PIECES: &[&str] = &[
    "",
    "x",
    "~",
    "null",
    "true",
    "1",
    "[]",
    "{}",
    "[a, b]",
    "{a: 1}",
    "\"\"",
    "''",
    "https://127.0.0.1:6443",
    "http://127.0.0.1:8080",
    "https://user:secret@127.0.0.1",
    "127.0.0.1",
    "https://[::1",
    "client.authentication.k8s.io/v1alpha1",
    "aGVsbG8=",
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
    "not base64!",
    "/etc/ssl/ca.pem",
    "../ca.pem",
    "kind: Secret",
    "current-context: nope",
    "current-context: \"\"",
    "- name: dup",
    "  - name: dup",
    "---",
    "&a x",
    "*a",
    "*nope",
    "<<: *a",
    "? x",
    ": ",
    "- ",
    "\t",
    "'",
    "\"",
    "#",
    "{",
    "[",
    "é",
    "\u{feff}",
    "\u{85}",
];

/// One edit of a fixture's lines.
#[derive(Debug, Clone)]
enum Edit {
    Drop(usize),
    Repeat(usize),
    /// The value after the line's first `: ` (or the whole line) becomes the piece.
    Replace(usize, String),
    Insert(usize, String),
    /// The line is cut after this many characters.
    Cut(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let piece = proptest::sample::select(PIECES).prop_map(str::to_owned);
    prop_oneof![
        any::<usize>().prop_map(Edit::Drop),
        any::<usize>().prop_map(Edit::Repeat),
        (any::<usize>(), piece.clone()).prop_map(|(i, p)| Edit::Replace(i, p)),
        (any::<usize>(), piece).prop_map(|(i, p)| Edit::Insert(i, p)),
        (any::<usize>(), 0_usize..40).prop_map(|(i, n)| Edit::Cut(i, n)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for e in edits {
        let len = lines.len().max(1);
        match e {
            Edit::Drop(i) if !lines.is_empty() => {
                lines.remove(i % len);
            }
            Edit::Repeat(i) if !lines.is_empty() => lines.insert(i % len, lines[i % len].clone()),
            Edit::Replace(i, piece) if !lines.is_empty() => {
                let line = &mut lines[i % len];
                *line = match line.find(": ") {
                    Some(at) => format!("{}: {piece}", &line[..at]),
                    None => piece.clone(),
                };
            }
            Edit::Insert(i, piece) => lines.insert(i % (lines.len() + 1), piece.clone()),
            Edit::Cut(i, n) if !lines.is_empty() => {
                let line = &mut lines[i % len];
                *line = line.chars().take(*n).collect();
            }
            _ => {}
        }
    }
    lines.join("\n") + "\n"
}

/// One input: its bytes, and the text its positions refer to.
fn input() -> impl Strategy<Value = (Vec<u8>, String)> {
    let text = (
        proptest::sample::select(FIXTURES),
        proptest::collection::vec(edit(), 0..6),
    )
        .prop_map(|(fixture, edits)| apply(fixture, &edits))
        .boxed();
    prop_oneof![
        6 => text.clone().prop_map(|t| (t.clone().into_bytes(), t)),
        1 => text.clone().prop_map(|t| (to_base64(t.as_bytes()).into_bytes(), t)),
        1 => text.prop_map(|t| {
            let encoded = to_base64(t.as_bytes());
            let wrapped: Vec<String> = encoded
                .as_bytes()
                .chunks(76)
                .map(|c| String::from_utf8(c.to_vec()).unwrap())
                .collect();
            (wrapped.join("\n").into_bytes(), t)
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| {
            let text = String::from_utf8_lossy(&b).into_owned();
            (b, text)
        }),
    ]
}

/// Errors about the input as a whole (or about `--context`), which have no line.
const WHOLE_INPUT: &[&str] = &[
    "the kubeconfig is empty",
    "the value is valid base64 but",
    "the value decodes to base64 again",
    "this is not a kubeconfig: it has no clusters, users or contexts",
    "the kubeconfig defines no contexts and no current-context",
    "the kubeconfig has no current-context",
    "context ",
];

/// Lines as YAML counts them: `\r\n`, `\n` and a lone `\r` end one.
fn lines(text: &str) -> u32 {
    u32::try_from(text.replace("\r\n", "\n").matches(['\n', '\r']).count() + 1).unwrap()
}

fn assert_positioned(
    d: &Diagnostic,
    labels: &[String],
    texts: &[String],
) -> Result<(), TestCaseError> {
    let source = d.source.as_deref().unwrap_or_default();
    let input = labels
        .iter()
        .position(|l| source == l || source == format!("{l} (base64-decoded)"));
    prop_assert!(input.is_some(), "{:?} names no input", d);
    let text = &texts[input.unwrap()];
    if d.line == 0 {
        prop_assert!(
            WHOLE_INPUT.iter().any(|w| d.message.starts_with(w)),
            "{:?} has no position",
            d
        );
    } else {
        prop_assert!(
            d.line <= lines(text) && d.column >= 1,
            "{:?} is outside the input's {} line(s)",
            d,
            lines(text)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config::config(600))]

    #[test]
    fn decode_names_and_positions_every_error(
        inputs in proptest::collection::vec(input(), 1..4),
        context in proptest::option::weighted(0.2, proptest::sample::select(&["kind-kind", "nope", ""][..])),
    ) {
        let labels: Vec<String> = (1..=inputs.len()).map(|i| format!("input {i}")).collect();
        let texts: Vec<String> = inputs.iter().map(|(_, t)| t.clone()).collect();
        let list: Vec<Input<'_>> = inputs
            .iter()
            .zip(&labels)
            .map(|((data, _), label)| Input { label, dir: None, data })
            .collect();
        match decode(&list, context) {
            Ok(decoded) => {
                for w in &decoded.warnings {
                    prop_assert_eq!(w.severity, Severity::Warning);
                }
            }
            Err(failure) => {
                prop_assert!(!failure.diagnostics.is_empty());
                for d in &failure.diagnostics {
                    prop_assert_eq!(d.severity, Severity::Error);
                    assert_positioned(d, &labels, &texts)?;
                }
            }
        }
    }
}
