//! Property tests (fuzzing on stable) of `traefik render`: on any values file, rendering returns
//! (no panic, no hang) and every problem points at one of the file's lines.
//!
//! Values files are built from the keys the step knows, nested as it expects (plus unknown
//! keys), with scalars of every kind: valid and invalid ports, quantities, e-mails, log levels,
//! flags for `extraArgs`, YAML null, lists and maps where a scalar belongs. Sizes are bounded.
//! The number of cases: `components/proptest_config.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../proptest_config.rs"]
mod proptest_config;

use kstep_traefik::render::{Format, render};
use proptest::prelude::*;

const SCALARS: &[&str] = &[
    "traefik",
    "''",
    "1",
    "0",
    "2",
    "-1",
    "65535",
    "65536",
    "80",
    "8443",
    "true",
    "false",
    "null",
    "~",
    "INFO",
    "debug",
    "Always",
    "IfNotPresent",
    "v3.4",
    "ops@example.com",
    "not-an-email",
    "100m",
    "1Gi",
    "1.5",
    "x y",
    "\"quoted\"",
    "[]",
    "{}",
    "[a, b]",
    "{a: 1}",
    "tls",
    "dns",
    "http",
    "--accesslog=true",
    "--entrypoints.web.address=:81",
    "--providers.file.filename=/x",
    "--bad",
    "https://acme.example/directory",
    "traefik.example.com",
    "é",
];

/// The keys the step knows, each with its sub-keys (`&[]`: a scalar or a list).
const KEYS: &[(&str, &[&str])] = &[
    ("namespace", &[]),
    ("image", &["repository", "tag", "pullPolicy"]),
    ("replicas", &[]),
    ("logLevel", &[]),
    ("entryPoints", &["web", "websecure", "traefik"]),
    ("redirectToHttps", &[]),
    (
        "acme",
        &[
            "email",
            "storage",
            "challenge",
            "dnsProvider",
            "dnsCredentialsSecret",
            "caServer",
            "resolver",
        ],
    ),
    ("persistence", &["size", "storageClass"]),
    ("dashboard", &["host", "basicAuthSecret"]),
    ("ingressClass", &["name", "default"]),
    ("kubernetesCRD", &[]),
    ("allowExternalNameServices", &[]),
    ("insecureSkipVerify", &[]),
    ("resources", &["requests", "limits"]),
    ("extraArgs", &[]),
];

/// Sub-keys of the third level (`entryPoints.web.port`, `resources.limits.cpu`).
const LEAVES: &[&str] = &["port", "servicePort", "cpu", "memory", "other"];

/// Values of the right type for a key (most of them valid), so that most files get past the
/// type checks to the checks between values.
fn fitting(key: &str) -> &'static [&'static str] {
    match key {
        "namespace" => &["traefik", "kube-system", "Bad_NS"],
        "replicas" => &["1", "2", "0"],
        "logLevel" => &["INFO", "DEBUG", "verbose"],
        "redirectToHttps"
        | "kubernetesCRD"
        | "allowExternalNameServices"
        | "insecureSkipVerify"
        | "default" => &["true", "false"],
        "extraArgs" => &[
            "--accesslog=true",
            "--entrypoints.web.address=:81",
            "--bad",
            "--api.insecure",
        ],
        "repository" => &["traefik", "registry.example:5000/traefik", "UPPER/case"],
        "tag" => &["v3.4", "latest", "bad tag"],
        "pullPolicy" => &["Always", "IfNotPresent", "Sometimes"],
        "port" | "servicePort" => &["80", "8000", "443", "65536", "0"],
        "email" => &["ops@example.com", "nope"],
        "storage" => &["/data/acme.json", "relative.json"],
        "challenge" => &["tls", "http", "dns", "smoke"],
        "dnsProvider" => &["ovh", "route53"],
        "dnsCredentialsSecret" | "basicAuthSecret" => &["creds", "Bad_Secret"],
        "caServer" => &["https://acme.example/directory", "ftp://x"],
        "resolver" | "name" | "storageClass" => &["letsencrypt", "traefik", "standard"],
        "size" => &["1Gi", "128Mi", "1XB"],
        "host" => &["traefik.example.com", "bad host", "'*.example.com'"],
        "cpu" => &["100m", "1", "x"],
        "memory" => &["128Mi", "1Gi", "lots"],
        _ => SCALARS,
    }
}

/// A value for `key`: usually one of the right type, else anything.
fn value_for() -> impl Strategy<Value = (proptest::sample::Index, bool)> {
    (
        any::<proptest::sample::Index>(),
        proptest::bool::weighted(0.95),
    )
}

fn pick(key: &str, (index, fits): &(proptest::sample::Index, bool)) -> &'static str {
    let choices = if *fits { fitting(key) } else { SCALARS };
    choices[index.index(choices.len())]
}

/// One `key:` entry of the values, as YAML lines.
fn entry() -> impl Strategy<Value = String> {
    let third = proptest::collection::vec((proptest::sample::select(LEAVES), value_for()), 0..3);
    let second = proptest::collection::vec(
        (
            any::<proptest::sample::Index>(),
            third,
            value_for(),
            proptest::bool::weighted(0.1),
        ),
        0..4,
    );
    (
        proptest::sample::select(KEYS),
        second,
        value_for(),
        proptest::bool::weighted(0.1),
        proptest::collection::vec(value_for(), 0..3),
    )
        .prop_map(|((key, subkeys), second, value, odd, items)| {
            if subkeys.is_empty() {
                // extraArgs is a list, the others are scalars; now and then the other way.
                return if odd != (key == "extraArgs") {
                    let items: String = items
                        .iter()
                        .map(|i| format!("\n  - {}", pick(key, i)))
                        .collect();
                    format!("{key}:{items}\n")
                } else {
                    format!("{key}: {}\n", pick(key, &value))
                };
            }
            let mut text = format!("{key}:\n");
            let mut seen = Vec::new();
            for (index, third, value, nested) in second {
                let sub = subkeys[index.index(subkeys.len())];
                if seen.contains(&sub) {
                    continue;
                }
                seen.push(sub);
                // entryPoints.web and resources.limits are maps; the others are scalars.
                if nested || matches!(key, "entryPoints" | "resources") {
                    text.push_str(&format!("  {sub}:\n"));
                    let mut seen = Vec::new();
                    for (leaf, value) in third {
                        if !seen.contains(&leaf) {
                            seen.push(leaf);
                            text.push_str(&format!("    {leaf}: {}\n", pick(leaf, &value)));
                        }
                    }
                } else {
                    text.push_str(&format!("  {sub}: {}\n", pick(sub, &value)));
                }
            }
            text
        })
}

/// A values file: each top-level key at most once.
fn values() -> impl Strategy<Value = String> {
    proptest::collection::vec(entry(), 0..10).prop_map(|entries| {
        let mut seen = Vec::new();
        let mut text = String::new();
        for e in entries {
            let key = e.split(':').next().unwrap_or_default().to_owned();
            if !seen.contains(&key) {
                seen.push(key);
                text.push_str(&e);
            }
        }
        text
    })
}

proptest! {
    #![proptest_config(proptest_config::config(500))]

    #[test]
    fn render_positions_every_problem(text in values(), json in any::<bool>()) {
        let format = if json { Format::Json } else { Format::Yaml };
        let lines = u32::try_from(text.matches('\n').count() + 1).unwrap();
        let problems = match render(&text, format) {
            Ok(rendered) => rendered.warnings,
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                errors
            }
        };
        for p in &problems {
            prop_assert!(
                p.line >= 1 && p.line <= lines && p.column >= 1,
                "{:?} outside the values' {} line(s):\n{}",
                p,
                lines,
                text
            );
        }
    }
}
