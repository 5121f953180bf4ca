//! `kstep step new NAME --lang rust|python`: scaffolds a custom step in the directory `NAME`
//! — the `kstep:steps` WIT kstep speaks, a build script, test cases for `kstep step test` and a
//! `.gitlab-ci.yml` that builds, tests, pushes and signs it — ready to build as it is.
//!
//! The step it writes is small and real: it refuses the documents whose kind is in its
//! `deny-kinds` parameter, with a finding at each, and logs how many it checked. Nothing is
//! overwritten: an existing `NAME` is refused.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::{CliError, CliResult};
use crate::output;

/// The WIT of the steps, as this kstep speaks it.
const STEP_WIT: &str = include_str!("../../../wit/step.wit");
const TYPES_WIT: &str = include_str!("../../../wit/types.wit");

/// Languages a step can be scaffolded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Lang {
    /// Rust, built with cargo for wasm32-wasip2.
    Rust,
    /// Python, built with componentize-py.
    Python,
}

/// Arguments of `kstep step new`.
#[derive(Debug, clap::Args)]
pub(crate) struct NewArgs {
    /// The step's name (lowercase letters, digits and `-`): the directory created and the
    /// component's name.
    #[arg(value_parser = parse_name)]
    name: String,
    /// The language.
    #[arg(long, value_enum)]
    lang: Lang,
}

fn parse_name(text: &str) -> Result<String, String> {
    let ok = text.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.ends_with('-')
        && text.len() <= 63;
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}`: a step's name is lowercase letters, digits and `-`, starting with a letter"
        ))
    }
}

/// Runs `kstep step new`.
///
/// # Errors
/// Exit 2 when the directory exists or the name is invalid, 1 when a file cannot be written.
pub(crate) fn run(args: &NewArgs) -> CliResult {
    let dir = PathBuf::from(&args.name);
    if dir.exists() {
        return Err(CliError::invalid(anyhow::anyhow!(
            "{}: already exists; nothing was written",
            dir.display()
        )));
    }
    let files = files(&args.name, args.lang);
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let mode = path.extension().is_some_and(|e| e == "sh").then_some(0o755);
        crate::fsutil::write_atomic(&path, text.as_bytes(), mode)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let wasm = wasm_name(&args.name);
    output::stdout(&format!(
        "Created {} ({} files). Next:\n  cd {}\n  ./build.sh                                  # -> {wasm}\n  kstep step test tests --step {wasm}\n",
        dir.display(),
        files.len(),
        dir.display()
    ));
    Ok(())
}

/// `NAME.wasm`.
fn wasm_name(name: &str) -> String {
    format!("{name}.wasm")
}

/// The files of the scaffold, by path in the step's directory.
fn files(name: &str, lang: Lang) -> Vec<(PathBuf, String)> {
    let crate_name = name.replace('-', "_");
    let wasm = wasm_name(name);
    let mut files: Vec<(&str, String)> = vec![
        ("wit/step.wit", STEP_WIT.to_owned()),
        ("wit/types.wit", TYPES_WIT.to_owned()),
        ("tests/denied-kind/case.yaml", CASE_DENIED.to_owned()),
        ("tests/denied-kind/manifests.yaml", MANIFESTS.to_owned()),
        ("tests/allowed/case.yaml", CASE_ALLOWED.to_owned()),
        ("tests/allowed/manifests.yaml", MANIFESTS.to_owned()),
        (".gitlab-ci.yml", gitlab_ci(name, lang)),
    ];
    match lang {
        Lang::Rust => {
            files.push(("Cargo.toml", CARGO_TOML.replace("NAME", name)));
            files.push(("src/lib.rs", LIB_RS.to_owned()));
            files.push((
                "build.sh",
                BUILD_RUST
                    .replace("CRATE", &crate_name)
                    .replace("WASM", &wasm),
            ));
        }
        Lang::Python => {
            files.push(("app.py", APP_PY.to_owned()));
            files.push(("build.sh", BUILD_PYTHON.replace("WASM", &wasm)));
        }
    }
    files
        .into_iter()
        .map(|(p, t)| (Path::new(p).to_owned(), t))
        .collect()
}

fn gitlab_ci(name: &str, lang: Lang) -> String {
    let build = match lang {
        Lang::Rust => {
            "  image: rust:1\n  script:\n    - rustup target add wasm32-wasip2\n    - ./build.sh\n"
        }
        Lang::Python => "  image: python:3.12\n  script:\n    - ./build.sh\n",
    };
    GITLAB_CI
        .replace("BUILD", build)
        .replace("WASM", &wasm_name(name))
        .replace("NAME", name)
}

const CARGO_TOML: &str = r#"[package]
name = "NAME"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
serde_json = "1"
wit-bindgen = { version = "0.61", default-features = false, features = ["macros", "realloc"] }

[profile.release]
opt-level = "s"
lto = true
strip = true

# A step of its own, also inside another workspace.
[workspace]
"#;

const LIB_RS: &str = r#"//! A kstep custom step: refuses the documents whose kind is in `deny-kinds` (parameter, a
//! list of kinds; default: none), with a finding at each. Edit `check` to make it yours.

#[allow(unsafe_code, missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "custom-step" });
    use super::Step;
    export!(Step);
}

use bindings::exports::kstep::steps::step::{Error, Finding, Guest, Input, Output};
use bindings::kstep::steps::log::{Level, log};
use bindings::kstep::steps::types::Severity;
use serde_json::Value;

struct Step;

impl Guest for Step {
    fn run(input: Input) -> Result<Output, Error> {
        let params: Value = serde_json::from_str(&input.params).map_err(|e| fail(e.to_string()))?;
        let deny: Vec<&str> = match params.get("deny-kinds") {
            None => Vec::new(),
            Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
            Some(_) => return Err(fail("`deny-kinds` must be a list of kinds".into())),
        };
        let mut findings = Vec::new();
        for (index, text) in input.documents.iter().enumerate() {
            let doc: Value = serde_json::from_str(text).map_err(|e| fail(e.to_string()))?;
            findings.extend(check(&deny, &doc, index));
        }
        log(
            Level::Info,
            &format!("checked {} document(s): {} problem(s)", input.documents.len(), findings.len()),
        );
        Ok(Output { variables: Vec::new(), documents: None, findings })
    }
}

/// The findings about one document.
fn check(deny: &[&str], doc: &Value, index: usize) -> Option<Finding> {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    deny.contains(&kind).then(|| Finding {
        severity: Severity::Error,
        message: format!("kind {kind} is not allowed here"),
        document: u32::try_from(index).ok(),
        field: Some("/kind".into()),
    })
}

fn fail(message: String) -> Error {
    Error { message, findings: Vec::new() }
}
"#;

const BUILD_RUST: &str = r#"#!/bin/sh
# Builds the step into a component: ./WASM (needs `rustup target add wasm32-wasip2`).
set -eu
cd "$(dirname "$0")"
cargo build --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/CRATE.wasm" WASM
echo WASM
"#;

const APP_PY: &str = r#""""A kstep custom step: refuses the documents whose kind is in `deny-kinds` (parameter, a
list of kinds; default: none), with a finding at each. Edit `check` to make it yours."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import step
from wit_world.imports import log, types


def check(deny: list, doc: dict, index: int):
    kind = doc.get("kind", "")
    if kind in deny:
        return step.Finding(
            severity=types.Severity.ERROR,
            message=f"kind {kind} is not allowed here",
            document=index,
            field="/kind",
        )
    return None


class Step(exports.Step):
    def run(self, input: step.Input) -> step.Output:
        params = json.loads(input.params)
        deny = params.get("deny-kinds", [])
        if not isinstance(deny, list):
            raise Err(step.Error(message="`deny-kinds` must be a list of kinds", findings=[]))
        findings = []
        for index, text in enumerate(input.documents):
            finding = check(deny, json.loads(text), index)
            if finding is not None:
                findings.append(finding)
        log.log(log.Level.INFO, f"checked {len(input.documents)} document(s): {len(findings)} problem(s)")
        return step.Output(variables=[], documents=None, findings=findings)
"#;

const BUILD_PYTHON: &str = r#"#!/bin/sh
# Builds the step into a component with componentize-py (from PyPI): ./WASM.
# --stub-wasi: the step needs no WASI import, and kstep refuses the sockets CPython links.
set -eu
cd "$(dirname "$0")"
venv=${STEP_VENV:-.venv}
[ -x "$venv/bin/componentize-py" ] || {
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet componentize-py==0.25.1
}
"$venv/bin/componentize-py" --wit-path wit --world custom-step componentize --stub-wasi app --output WASM
echo WASM
"#;

const MANIFESTS: &str = r"apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: plain
---
apiVersion: v1
kind: Pod
metadata:
  name: debug
spec:
  containers:
    - {name: shell, image: busybox:1.37}
";

const CASE_DENIED: &str = r"# A bare Pod is refused when Pods are denied; the ConfigMap is not.
params:
  deny-kinds: [Pod]
manifests: [manifests.yaml]
expect:
  findings:
    - severity: error
      document: Pod/debug
      field: /kind
      message: not allowed
";

const CASE_ALLOWED: &str = r"# Nothing denied: accepted, nothing found.
manifests: [manifests.yaml]
expect:
  findings: []
";

const GITLAB_CI: &str = r#"# Builds, tests, pushes and signs the step NAME. The push and sign jobs run for tags:
# another project then uses `wasm: oci://$CI_REGISTRY_IMAGE/NAME:TAG` (pinned by `kstep step lock`).
stages: [build, test, publish]
variables:
  KSTEP_RUNNER_IMAGE: registry.gitlab.com/kstep/kstep:0.1.0

build:
  stage: build
BUILD  artifacts:
    paths: [WASM]

test:
  stage: test
  image: $KSTEP_RUNNER_IMAGE
  script:
    - kstep step test tests --step WASM --report junit=step-junit.xml
  artifacts:
    when: always
    reports:
      junit: step-junit.xml

push:
  stage: publish
  image: $KSTEP_RUNNER_IMAGE
  rules:
    - if: $CI_COMMIT_TAG
  script:
    - kstep step push WASM oci://$CI_REGISTRY_IMAGE/NAME:$CI_COMMIT_TAG

sign:
  stage: publish
  needs: [push]
  image: ghcr.io/sigstore/cosign/cosign:v2.6.1
  rules:
    - if: $CI_COMMIT_TAG
  script:
    # COSIGN_PRIVATE_KEY and COSIGN_PASSWORD: masked CI/CD variables; no transparency log.
    - cosign sign --yes --tlog-upload=false --key env://COSIGN_PRIVATE_KEY $CI_REGISTRY_IMAGE/NAME:$CI_COMMIT_TAG
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_words() {
        assert!(parse_name("deny-pods").is_ok());
        assert!(parse_name("Deny").is_err());
        assert!(parse_name("-x").is_err());
        assert!(parse_name("x-").is_err());
        assert!(parse_name("a/b").is_err());
    }

    #[test]
    fn the_scaffold_names_the_step_everywhere() {
        let files = files("deny-pods", Lang::Rust);
        let text = |p: &str| {
            files
                .iter()
                .find(|(path, _)| path == Path::new(p))
                .map(|(_, t)| t.clone())
                .unwrap_or_default()
        };
        assert!(text("Cargo.toml").contains("name = \"deny-pods\""));
        assert!(text("build.sh").contains("release/deny_pods.wasm\" deny-pods.wasm"));
        assert!(text(".gitlab-ci.yml").contains("--step deny-pods.wasm"));
        assert!(text("wit/step.wit").contains("world custom-step"));
    }
}
