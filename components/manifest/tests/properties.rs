//! Property tests (fuzzing on stable) of the manifest step: on any text and any variables,
//! rendering returns (no panic, no hang), every diagnostic about the source points at one of its
//! lines, and what kstep writes reads back as the same documents.
//!
//! Inputs are lines of real manifests (identity, containers, `List`s, placeholders of every
//! form, anchors, merge keys, tags, block scalars, document markers) shuffled with YAML's
//! punctuation and the odd arbitrary character, so most cases get past the YAML reader. Sizes
//! are bounded: a case takes milliseconds. The number of cases: `components/proptest_config.rs`.
//! (`tests/structure.rs` is the other property: a value never changes a document's shape.)
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../proptest_config.rs"]
mod proptest_config;

use kstep_manifest::diag::{Diagnostic, Severity};
use kstep_manifest::render::{self, Options, OutputFormat, Request, Source};
use kstep_manifest::template;
use proptest::prelude::*;

const SOURCE: &str = "in.yaml";

const PIECES: &[&str] = &[
    "apiVersion: v1\n",
    "apiVersion: apps/v1\n",
    "apiVersion: extensions/v1beta1\n",
    "apiVersion: policy/v1beta1\n",
    "kind: ConfigMap\n",
    "kind: Deployment\n",
    "kind: PodDisruptionBudget\n",
    "kind: List\n",
    "kind: Secret\n",
    "metadata:\n",
    "  name: web\n",
    "  name: ${NAME}\n",
    "  namespace: ${NS:-default}\n",
    "  labels: {app: web}\n",
    "data:\n",
    "  k: ${A}\n",
    "  k2: \"${A}x\"\n",
    "  k3: '${B:?needed}'\n",
    "  k4: |\n    ${A}\n",
    "  k5: >-\n    a\n    b\n",
    "  k6: ${B-}\n",
    "stringData: {password: ${A}}\n",
    "spec:\n",
    "  replicas: ${N}\n",
    "  template:\n",
    "    spec:\n",
    "      containers:\n",
    "      - name: app\n",
    "        image: nginx:${TAG}\n",
    "        image: ${IMAGE}\n",
    "      initContainers: []\n",
    "items:\n",
    "- apiVersion: v1\n",
    "  kind: ConfigMap\n",
    "---\n",
    "...\n",
    "&a ",
    "*a\n",
    "<<: *a\n",
    "x: &a {b: 1}\n",
    "y: *a\n",
    "!!str ",
    "!!binary ",
    "!custom ",
    "? ",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "'",
    "\"",
    "# c\n",
    "\t",
    "  ",
    "\n",
    "\n",
    "\r\n",
    "$$",
    "${",
    "${}",
    "${A:-${B}}",
    "${1}",
    "${A+x}",
    "${A:?}",
    "$A",
    "%YAML 1.2\n",
    "é",
    "\u{feff}",
    "\u{85}",
    "0x1F",
    "1e3",
    "on",
    "~",
    "null",
    "1.10",
    "-.inf",
    "\"\\u00e9\\x\"",
];

/// Bits of one scalar's text: placeholders, YAML indicators, quotes, escapes.
const SCALAR_PIECES: &[&str] = &[
    "x", "1", ".", "-", " ", "${A}", "${B:-d}", "${N}", "$$", "${", "$", "'", "\"", "\\", "#",
    " #", ": ", ":", "[", "]", "{", "}", ",", "&", "*", "!", "|", ">", "%", "@", "`", "?", "é",
    "on", "0x1F", "\t",
];

/// YAML-ish text: either a stream of well-formed documents whose scalars are random, or
/// manifest lines, punctuation and the odd arbitrary character.
fn manifest_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        10 => proptest::sample::select(PIECES).prop_map(str::to_owned),
        1 => any::<char>().prop_map(String::from),
    ];
    let soup = proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat());
    // Plain (often not valid YAML, which exercises the errors), double- or single-quoted.
    let scalar = (
        proptest::collection::vec(proptest::sample::select(SCALAR_PIECES), 0..6),
        0..3,
    )
        .prop_map(|(pieces, style)| {
            let text = pieces.concat();
            match style {
                0 => text,
                1 => format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")),
                _ => format!("'{}'", text.replace('\'', "''")),
            }
        });
    let document = (
        proptest::sample::select(&["v1", "apps/v1", "policy/v1beta1", "${A}"][..]),
        proptest::sample::select(&["ConfigMap", "Deployment", "PodDisruptionBudget", "List"][..]),
        prop_oneof![3 => Just("web".to_owned()), 1 => scalar.clone()],
        proptest::collection::vec(scalar, 0..5),
    )
        .prop_map(|(api_version, kind, name, values)| {
            let mut text =
                format!("apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {name}\n");
            if kind == "Deployment" {
                text.push_str("spec:\n  template:\n    spec:\n      containers:\n");
                for (i, v) in values.iter().enumerate() {
                    text.push_str(&format!("      - name: c{i}\n        image: {v}\n"));
                }
            } else {
                text.push_str("data:\n");
                for (i, v) in values.iter().enumerate() {
                    text.push_str(&format!("  k{i}: {v}\n"));
                }
            }
            text
        });
    let stream = proptest::collection::vec(document, 1..4).prop_map(|d| d.join("---\n"));
    prop_oneof![soup, stream]
}

/// Values of `A`, `B`, `NAME`… (some unset), nasty ones included.
fn variables() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = proptest::sample::select(&["A", "B", "NAME", "NS", "TAG", "IMAGE", "N"][..]);
    let value = prop_oneof![
        proptest::sample::select(
            &[
                "", "web", "1", "1.10", "on", "~", "null", ": x", "a\nb", "---", "${A}", "$$", "'",
                "\"", "[", "*a", "&a", "!!str", "# c", " ", "é",
            ][..]
        )
        .prop_map(str::to_owned),
        ".{0,12}",
    ];
    proptest::collection::vec((name.prop_map(str::to_owned), value), 0..6).prop_map(|random| {
        // Set by default, so that more documents get past "unset variable".
        let mut variables: Vec<(String, String)> = [("A", "web"), ("B", "x"), ("N", "1")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        variables.extend(random);
        variables
    })
}

fn options() -> impl Strategy<Value = Options> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(upgrade, literal, json)| Options {
        upgrade_api_versions: upgrade,
        literal,
        output: if json {
            OutputFormat::Json
        } else {
            OutputFormat::Yaml
        },
        ..Options::default()
    })
}

fn request(text: &str, variables: Vec<(String, String)>, options: Options) -> Request {
    Request {
        sources: vec![Source {
            name: SOURCE.into(),
            text: text.into(),
        }],
        variables,
        images: Vec::new(),
        options,
    }
}

/// The findings about a whole file, which have no line: an empty file, one of only comments.
const WHOLE_FILE: &[&str] = &["the file is empty", "the file has no documents"];

/// Every diagnostic is about the source (no internal error) and on one of its lines, but for
/// the findings about the whole file.
fn assert_positioned(diagnostics: &[Diagnostic], text: &str) -> Result<(), TestCaseError> {
    // YAML's line breaks: `\r\n`, `\n` and a lone `\r`.
    let lines =
        u32::try_from(text.replace("\r\n", "\n").matches(['\n', '\r']).count() + 1).unwrap();
    for d in diagnostics {
        prop_assert_eq!(d.source.as_str(), SOURCE, "{}", d);
        if d.pos.line == 0 && WHOLE_FILE.iter().any(|m| d.message.starts_with(m)) {
            continue;
        }
        prop_assert!(
            d.pos.line >= 1 && d.pos.line <= lines && d.pos.column >= 1,
            "{} ({} line(s))",
            d,
            lines
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config::config(1000))]

    #[test]
    fn render_positions_every_diagnostic(
        text in manifest_text(),
        variables in variables(),
        options in options(),
    ) {
        match render::render(&request(&text, variables, options)) {
            Ok(rendered) => assert_positioned(&rendered.report.warnings, &text)?,
            Err(diagnostics) => {
                prop_assert!(diagnostics.iter().any(|d| d.severity == Severity::Error));
                assert_positioned(&diagnostics, &text)?;
            }
        }
    }

    #[test]
    fn rendered_output_reads_back_as_the_same_documents(
        text in manifest_text(),
        variables in variables(),
        json in any::<bool>(),
    ) {
        let options = Options {
            output: if json { OutputFormat::Json } else { OutputFormat::Yaml },
            ..Options::default()
        };
        if let Ok(rendered) = render::render(&request(&text, variables, options)) {
            let output = rendered.text.clone().unwrap_or_default();
            let documents: Vec<serde_json::Value> = rendered
                .documents
                .iter()
                .map(|d| serde_json::from_str(&d.json).unwrap())
                .collect();
            let read_back: Vec<serde_json::Value> = if json {
                serde_json::from_str(&output)
                    .map_err(|e| TestCaseError::fail(format!("{output:?}: {e}")))?
            } else {
                // The YAML stream, read again as `kstep apply` reads it (literally).
                let literal = Options { literal: true, ..Options::default() };
                render::render(&request(&output, Vec::new(), literal))
                    .map_err(|e| TestCaseError::fail(format!("{output:?}: {e:?}")))?
                    .documents
                    .iter()
                    .map(|d| serde_json::from_str(&d.json).unwrap())
                    .collect()
            };
            prop_assert_eq!(read_back, documents, "{:?}", output);
        }
    }

    #[test]
    fn template_errors_point_at_a_placeholder(text in manifest_text()) {
        if let Err(errors) = template::parse(&text) {
            prop_assert!(!errors.is_empty());
            for e in errors {
                prop_assert_eq!(text.as_bytes().get(e.offset), Some(&b'$'), "{:?} in {:?}", e, text);
            }
        }
    }

}

proptest! {
    // Each case is thousands of levels deep: fewer of them.
    #![proptest_config(proptest_config::config(200))]

    #[test]
    fn deep_nesting_is_refused_or_rendered(depth in 1_usize..3_000, flow in any::<bool>()) {
        // Collections inside collections: the reader, the tree, the writer and the JSON must
        // neither overflow the stack nor take long.
        let value = if flow {
            format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
        } else {
            format!("\n  {}1", "- ".repeat(depth))
        };
        let text = format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\ndeep: {value}\n");
        let options = Options { output: OutputFormat::Yaml, ..Options::default() };
        if let Err(diagnostics) = render::render(&request(&text, Vec::new(), options)) {
            assert_positioned(&diagnostics, &text)?;
        }
    }
}
