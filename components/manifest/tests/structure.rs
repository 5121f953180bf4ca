//! Property test: no substituted value can change a document's structure.
//!
//! A small seeded generator puts placeholders at random scalar positions of real manifests
//! (whole plain scalars, inside longer plain scalars, inside quoted scalars), renders each
//! variant once with a neutral value and once with random nasty values (`: `, `#`, newlines,
//! `---`, brackets, quotes, `1.10`, `on`, `*anchor`, `&a`, `!!tag`…), and checks that both trees
//! have the same shape: the same keys and sequence lengths at every level. It also checks that
//! the YAML kstep writes for the nasty variant reads back, with an independent reader, as
//! exactly the rendered documents.
//!
//! `KSTEP_PROPERTY_CASES` sets the number of cases (default 2000), `KSTEP_PROPERTY_SEED` the
//! seed; a failure prints both, so it can be replayed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;

use kstep_manifest::load;
use kstep_manifest::render::{self, OutputFormat, Request, Source};
use kstep_manifest::tree::{Node, Value};
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};

const CORPUS: &[&str] = &[
    "reference/deployment.yml",
    "reference/gitlab-integration.yml",
    "reference/traefik/rbac.yml",
    "reference/traefik/traefik-deployment.yml",
    "reference/traefik/traefik-api-ingress.yml",
    "reference/traefik/traefik-service-clusterip.yml",
    "reference/traefik/traefik-certificates-pvc.yml",
    "templates/app.yaml",
];

const NASTY: &[&str] = &[
    ": ",
    "a: b # c",
    "#",
    " # comment",
    "x\ny: z",
    "\n",
    "\n\n",
    "---",
    "---\nkind: Secret",
    "...",
    "{",
    "}",
    "[",
    "]",
    "{a: 1}",
    "[1, 2]",
    ",",
    "'",
    "\"",
    "''",
    "\\",
    "\\n",
    "1.10",
    "on",
    "yes",
    "no",
    "y",
    "~",
    "null",
    "",
    " ",
    "  lead",
    "trail  ",
    "*anchor",
    "&a",
    "&a x",
    "!!tag",
    "!!binary x",
    "!local",
    "%YAML 1.2",
    "- item",
    "-",
    "? key",
    "|",
    ">",
    "|-\n  x",
    "@",
    "`",
    "\t",
    "${OTHER}",
    "$$",
    "$",
    "0x1F",
    "0644",
    "1e3",
    "1_000",
    "<<",
    "\u{feff}",
    "é",
    "\r\n",
    "\r",
    "key: [1, {a: b}]\n- x",
    "true",
    "3",
    "-1",
    ".5",
    "2024-01-01",
    "a\u{0}b",
    "\u{85}",
    "\u{2028}",
];

/// xorshift64*: small, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn fixture(path: &str) -> String {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/manifests"
    );
    std::fs::read_to_string(format!("{dir}/{path}")).unwrap()
}

/// A scalar in value position: its byte range and style.
#[derive(Debug, Clone, Copy)]
struct Slot {
    start: usize,
    end: usize,
    style: ScalarStyle,
}

/// The value scalars of `text` (not keys, not block scalars, none that already hold `$`).
fn value_slots(text: &str) -> Vec<Slot> {
    // For each open collection: is it a mapping, and is its next node a key?
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let mut slots = Vec::new();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.unwrap();
        let key_position = matches!(stack.last(), Some((true, true)));
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
        );
        if let Event::Scalar(value, style, ..) = &event
            && !key_position
            && matches!(
                style,
                ScalarStyle::Plain | ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted
            )
            && !value.contains('$')
            && let (Some(start), Some(end)) = (span.start.byte_offset(), span.end.byte_offset())
        {
            slots.push(Slot {
                start,
                end,
                style: *style,
            });
        }
        if is_node && let Some((true, expecting_key)) = stack.last_mut() {
            *expecting_key = !*expecting_key;
        }
        match event {
            Event::MappingStart(..) => stack.push((true, true)),
            Event::SequenceStart(..) => stack.push((false, false)),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            _ => {}
        }
    }
    slots
}

/// Rewrites `text` with placeholders `${V0}`, `${V1}`… at random slots; returns the variant
/// and the number of variables.
fn variant(text: &str, rng: &mut Rng) -> (String, usize) {
    let mut slots = value_slots(text);
    let count = 1 + rng.below(6).min(slots.len().saturating_sub(1));
    let mut chosen = Vec::new();
    for _ in 0..count {
        if slots.is_empty() {
            break;
        }
        chosen.push(slots.swap_remove(rng.below(slots.len())));
    }
    chosen.sort_by_key(|s| std::cmp::Reverse(s.start));
    let mut out = text.to_owned();
    for (i, slot) in chosen.iter().enumerate() {
        let p = format!("${{V{i}}}");
        let original = &text[slot.start..slot.end];
        let replacement = match (slot.style, rng.below(5)) {
            (ScalarStyle::Plain, 0 | 1) => p,
            (ScalarStyle::Plain, 2) => format!("pre-{p}-post"),
            (ScalarStyle::Plain, 3) => format!("\"{p}\""),
            (ScalarStyle::Plain, _) => format!("'a {p} b'"),
            // Inside existing quotes: keep them, add the placeholder to the content.
            (_, n) if original.len() >= 2 => {
                let (open, body, close) = (
                    &original[..1],
                    &original[1..original.len() - 1],
                    &original[original.len() - 1..],
                );
                if n % 2 == 0 {
                    format!("{open}{p}{close}")
                } else {
                    format!("{open}{body}{p}{close}")
                }
            }
            _ => p,
        };
        out.replace_range(slot.start..slot.end, &replacement);
    }
    (out, chosen.len())
}

fn nasty(rng: &mut Rng) -> String {
    let parts = 1 + rng.below(3);
    (0..parts).map(|_| NASTY[rng.below(NASTY.len())]).collect()
}

/// The shape of a tree: keys and lengths at every level, scalars as leaves of any type.
fn same_shape(a: &Node, b: &Node, path: &str) -> Result<(), String> {
    match (&a.value, &b.value) {
        (Value::Map(x), Value::Map(y)) => {
            let kx: Vec<&str> = x.entries.iter().map(|e| e.key.as_str()).collect();
            let ky: Vec<&str> = y.entries.iter().map(|e| e.key.as_str()).collect();
            if kx != ky {
                return Err(format!("{path}: keys {kx:?} != {ky:?}"));
            }
            for (ex, ey) in x.entries.iter().zip(&y.entries) {
                same_shape(&ex.value, &ey.value, &format!("{path}.{}", ex.key))?;
            }
            Ok(())
        }
        (Value::Seq(x), Value::Seq(y)) => {
            if x.len() != y.len() {
                return Err(format!("{path}: {} items != {} items", x.len(), y.len()));
            }
            for (i, (ix, iy)) in x.iter().zip(y).enumerate() {
                same_shape(ix, iy, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Map(_) | Value::Seq(_), _) | (_, Value::Map(_) | Value::Seq(_)) => {
            Err(format!("{path}: {} != {}", a.type_name(), b.type_name()))
        }
        _ => Ok(()),
    }
}

fn errors(loaded: &load::Loaded) -> Vec<String> {
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == kstep_manifest::diag::Severity::Error)
        .map(ToString::to_string)
        .collect()
}

#[test]
fn no_value_changes_the_structure() {
    let cases: usize = std::env::var("KSTEP_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let seed: u64 = std::env::var("KSTEP_PROPERTY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6b73_7465_7021);
    let corpus: Vec<(&str, String)> = CORPUS.iter().map(|p| (*p, fixture(p))).collect();
    let mut rng = Rng(seed);
    let mut round_trips = 0;
    for case in 0..cases {
        let (name, text) = &corpus[rng.below(corpus.len())];
        let (template, n) = variant(text, &mut rng);
        let mut neutral: HashMap<String, String> = ["APP", "VERSION"]
            .iter()
            .map(|k| ((*k).to_owned(), "neutral".to_owned()))
            .collect();
        let mut hostile = neutral.clone();
        for i in 0..n {
            neutral.insert(format!("V{i}"), "neutral".into());
            hostile.insert(format!("V{i}"), nasty(&mut rng));
        }
        let context = || {
            format!(
                "case {case} (KSTEP_PROPERTY_SEED={seed}) of {name}:\n{template}\nvalues: {hostile:?}"
            )
        };
        let base = load::load(name, &template, Some(&neutral));
        assert!(
            errors(&base).is_empty(),
            "{}\n{:?}",
            context(),
            errors(&base)
        );
        let attacked = load::load(name, &template, Some(&hostile));
        assert!(
            errors(&attacked).is_empty(),
            "{}\n{:?}",
            context(),
            errors(&attacked)
        );
        assert_eq!(
            base.documents.len(),
            attacked.documents.len(),
            "{}",
            context()
        );
        for (a, b) in base.documents.iter().zip(&attacked.documents) {
            if let Err(e) = same_shape(&a.root, &b.root, "") {
                panic!("{}\nshape changed: {e}", context());
            }
        }
        // What kstep writes must read back as exactly what it rendered (both sides read with
        // serde-saphyr: serde_json's default float parsing is not correctly rounded).
        let request = Request {
            sources: vec![Source {
                name: (*name).to_owned(),
                text: template.clone(),
            }],
            variables: hostile.clone().into_iter().collect(),
            options: render::Options {
                output: OutputFormat::Yaml,
                allow_unmatched_images: true,
                ..render::Options::default()
            },
            ..Request::default()
        };
        // Identity checks may refuse a nasty name or image; that is a refusal, not a change.
        if let Ok(rendered) = render::render(&request) {
            let text = rendered.text.unwrap();
            let again: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
                .unwrap_or_else(|e| panic!("{}\n{e}\n{text}", context()));
            let before: Vec<serde_json::Value> = rendered
                .documents
                .iter()
                .map(|d| serde_saphyr::from_str(&d.json).unwrap())
                .collect();
            assert_eq!(before, again, "{}\n{text}", context());
            round_trips += 1;
        }
    }
    // Most variants must get through the whole pipeline, or the round trip proves little.
    assert!(
        round_trips * 3 > cases,
        "only {round_trips} of {cases} cases rendered"
    );
}

#[test]
fn keys_with_nasty_values_stay_one_key() {
    for value in NASTY.iter().filter(|v| !v.is_empty()) {
        let vars: HashMap<String, String> = [("K".to_owned(), (*value).to_owned())].into();
        let loaded = load::load(
            "k.yaml",
            "a:\n  ${K}: 1\n  \"x-${K}\": 2\nb: 3\n",
            Some(&vars),
        );
        assert!(
            errors(&loaded).is_empty(),
            "{value:?}: {:?}",
            errors(&loaded)
        );
        let root = &loaded.documents[0].root;
        let a = root.as_map().unwrap().get("a").unwrap().as_map().unwrap();
        let keys: Vec<&str> = a.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![(*value).to_owned(), format!("x-{value}")],
            "{value:?}"
        );
        assert_eq!(root.as_map().unwrap().entries.len(), 2);
    }
}

/// The property can fail: substituting the same values as text (what `sed` and `envsubst` do)
/// breaks it in most cases.
#[test]
fn textual_substitution_fails_the_property() {
    let corpus: Vec<(&str, String)> = CORPUS.iter().map(|p| (*p, fixture(p))).collect();
    let mut rng = Rng(7);
    let (mut broken, cases) = (0, 300);
    for _ in 0..cases {
        let (name, text) = &corpus[rng.below(corpus.len())];
        let (template, n) = variant(text, &mut rng);
        let neutral: HashMap<String, String> = ["APP", "VERSION"]
            .iter()
            .map(|k| ((*k).to_owned(), "neutral".to_owned()))
            .chain((0..n).map(|i| (format!("V{i}"), "neutral".to_owned())))
            .collect();
        let mut sed = template.clone();
        for i in 0..n {
            sed = sed.replace(&format!("${{V{i}}}"), &nasty(&mut rng));
        }
        let base = load::load(name, &template, Some(&neutral));
        let textual = load::load(name, &sed, Some(&neutral));
        let changed = !errors(&textual).is_empty()
            || base.documents.len() != textual.documents.len()
            || base
                .documents
                .iter()
                .zip(&textual.documents)
                .any(|(a, b)| same_shape(&a.root, &b.root, "").is_err());
        broken += usize::from(changed);
    }
    assert!(
        broken * 4 > cases,
        "textual substitution broke only {broken} of {cases} cases"
    );
}
