//! Property tests (fuzzing on stable) of `traefik migrate`: on any text, migrating to YAML and to
//! TOML returns (no panic, no hang), an error points at one of the input's lines, every note
//! points at one of them too, and the output (header comment included) reads back as the
//! configuration it states.
//!
//! Inputs are Traefik 1.x `traefik.toml` files made of the sections and keys the migration knows
//! (in the case variants v1 accepted) with values of every TOML type, and TOML punctuation soup.
//! Sizes are bounded: a case takes milliseconds. The number of cases:
//! `components/proptest_config.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../proptest_config.rs"]
mod proptest_config;

use kstep_traefik::migrate::{Format, migrate_to};
use kstep_traefik::problem::Problem;
use proptest::prelude::*;

const SECTIONS: &[&str] = &[
    "[entryPoints]",
    "[entryPoints.http]",
    "[entryPoints.https]",
    "[entryPoints.http.redirect]",
    "[entryPoints.https.tls]",
    "[[entryPoints.https.tls.certificates]]",
    "[entryPoints.http.auth.basic]",
    "[entryPoints.http.forwardedHeaders]",
    "[entryPoints.http.proxyProtocol]",
    "[entrypoints.HTTP]",
    "[acme]",
    "[[acme.domains]]",
    "[acme.httpChallenge]",
    "[acme.dnsChallenge]",
    "[api]",
    "[ping]",
    "[rest]",
    "[metrics]",
    "[metrics.prometheus]",
    "[metrics.datadog]",
    "[metrics.statsd]",
    "[accessLog]",
    "[traefikLog]",
    "[file]",
    "[docker]",
    "[kubernetes]",
    "[consul]",
    "[lifeCycle]",
    "[respondingTimeouts]",
    "[forwardingTimeouts]",
    "[hostResolver]",
    "[retry]",
    "[healthcheck]",
    "[backends.b.servers.s]",
    "[frontends.f.routes.r]",
];

const KEYS: &[&str] = &[
    "address",
    "entryPoint",
    "entrypoint",
    "regex",
    "replacement",
    "permanent",
    "minVersion",
    "cipherSuites",
    "certFile",
    "keyFile",
    "users",
    "insecure",
    "trustedIPs",
    "email",
    "storage",
    "caServer",
    "onHostRule",
    "onDemand",
    "provider",
    "main",
    "sans",
    "delayBeforeCheck",
    "dashboard",
    "debug",
    "buckets",
    "pushInterval",
    "filePath",
    "format",
    "filename",
    "directory",
    "watch",
    "endpoint",
    "domain",
    "exposedByDefault",
    "namespaces",
    "labelSelector",
    "ingressClass",
    "graceTimeOut",
    "readTimeout",
    "idleTimeout",
    "dialTimeout",
    "logLevel",
    "LOGLEVEL",
    "defaultEntryPoints",
    "insecureSkipVerify",
    "rootCAs",
    "maxIdleConnsPerHost",
    "checkNewVersion",
    "sendAnonymousUsage",
    "providersThrottleDuration",
    "InsecureSkipVerify",
    "unknownKey",
    "\"quoted.key\"",
    "a.b",
];

const VALUES: &[&str] = &[
    "\":80\"",
    "\":443\"",
    "\"https\"",
    "\"http\"",
    "\"^http://(.*)\"",
    "\"DEBUG\"",
    "\"\"",
    "\"é\\u00e9\\n\"",
    "'literal\\'",
    "\"\"\"multi\nline\"\"\"",
    "true",
    "false",
    "0",
    "-1",
    "9223372036854775807",
    "0x1F",
    "0o17",
    "0b101",
    "1_000",
    "1.5",
    "1e400",
    "-0.0",
    "nan",
    "+inf",
    "1979-05-27T07:32:00Z",
    "1979-05-27",
    "07:32:00",
    "[]",
    "[\"http\", \"https\"]",
    "[1, \"a\", true]",
    "[[1], [2]]",
    "{}",
    "{ a = 1 }",
    "{ main = \"example.com\", sans = [\"a.example.com\"] }",
    "[{ a = 1 }, { b = [] }]",
];

/// A `traefik.toml`: mostly well-formed (each table and key once, so most cases reach the
/// migration), now and then with punctuation soup or an arbitrary character.
fn traefik_toml() -> impl Strategy<Value = String> {
    let pair = (
        proptest::sample::select(KEYS),
        proptest::sample::select(VALUES),
    );
    let pairs = proptest::collection::vec(pair, 0..6);
    let well_formed = (
        pairs.clone(),
        proptest::collection::vec((proptest::sample::select(SECTIONS), pairs), 0..8),
    )
        .prop_map(|(top, sections)| {
            let mut text = String::new();
            let mut seen_sections = Vec::new();
            for (header, pairs) in std::iter::once(("", top)).chain(sections) {
                // A table is defined once; an array of tables (`[[…]]`) may repeat.
                if !header.starts_with("[[") && seen_sections.contains(&header) {
                    continue;
                }
                seen_sections.push(header);
                text.push_str(header);
                text.push('\n');
                let mut seen_keys = Vec::new();
                for (key, value) in pairs {
                    if !seen_keys.contains(&key) {
                        seen_keys.push(key);
                        text.push_str(&format!("{key} = {value}\n"));
                    }
                }
            }
            text
        });
    let line = prop_oneof![
        2 => proptest::sample::select(SECTIONS).prop_map(str::to_owned),
        6 => (proptest::sample::select(KEYS), proptest::sample::select(VALUES))
            .prop_map(|(k, v)| format!("{k} = {v}")),
        1 => proptest::collection::vec(
            proptest::sample::select(&["[", "]", "=", "\"", "'", "#", ".", ",", "{", "}", " ", "\t", "a", "\r", "\n"][..]),
            0..8,
        )
        .prop_map(|p| p.concat()),
        1 => any::<char>().prop_map(String::from),
    ];
    let soup = proptest::collection::vec(line, 0..30).prop_map(|lines| lines.join("\n"));
    prop_oneof![3 => well_formed, 1 => soup]
}

fn lines(text: &str) -> u32 {
    u32::try_from(text.matches('\n').count() + 1).unwrap()
}

fn assert_on_a_line(what: &str, line: u32, column: u32, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        line >= 1 && line <= lines(text) && column >= 1,
        "{what} at {line}:{column}, outside the input's {} line(s)",
        lines(text)
    );
    Ok(())
}

fn check(text: &str, format: Format) -> Result<(), TestCaseError> {
    match migrate_to(text, format) {
        Ok((output, migration)) => {
            for note in migration.dropped.iter().chain(&migration.changed) {
                assert_on_a_line(&format!("{note:?}"), note.line, note.column, text)?;
            }
            // What kstep writes reads back as the configuration it reports, header included;
            // compared through JSON, which has no infinity or NaN (TOML must still parse).
            if ["nan", "inf", "1e400"].iter().any(|f| text.contains(f)) {
                let parsed: Result<toml::Table, _> = output.parse();
                prop_assert!(
                    format == Format::Yaml || parsed.is_ok(),
                    "{}: {:?}",
                    output,
                    parsed
                );
                return Ok(());
            }
            let direct: serde_json::Value =
                serde_json::from_str(&migration.config.to_json().unwrap()).unwrap();
            let back: Result<serde_json::Value, String> = match format {
                Format::Yaml => serde_saphyr::from_str(&output).map_err(|e| e.to_string()),
                Format::Toml => toml::from_str(&output).map_err(|e| e.to_string()),
            };
            prop_assert_eq!(back, Ok(direct), "{}", output);
        }
        Err(Problem {
            message,
            line,
            column,
            ..
        }) => {
            assert_on_a_line(&message, line, column, text)?;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config::config(1000))]

    #[test]
    fn migrate_positions_errors_and_notes(text in traefik_toml()) {
        check(&text, Format::Yaml)?;
        check(&text, Format::Toml)?;
    }
}
