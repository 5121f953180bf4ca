//! Writing document trees as YAML.
//!
//! Block style as kubectl writes it (sequences at their key's indentation), keys in source
//! order. A string is written plain only when every YAML reader (YAML 1.1 like kubectl's,
//! YAML 1.2) reads it back as that same string: a conservative character set, no indicator in
//! first position, nothing that resolves to a boolean, null, number or date. Multi-line
//! strings are literal blocks when that is exact; everything else is double-quoted with
//! escapes. Written by hand because it runs on every rendered byte: a generic serializer
//! spent a fifth of a render deciding how to quote.

use std::fmt::Write as _;

use crate::scalar::{self, Resolved};
use crate::tree::{Node, Value};

/// Appends `---` and `root` to `out`.
pub fn document(out: &mut String, root: &Node) {
    out.push_str("---\n");
    match &root.value {
        Value::Map(m) if !m.is_empty() => map_body(out, root, 0, false),
        Value::Seq(items) if !items.is_empty() => seq_body(out, items, 0, false),
        _ => {
            scalar(out, root, 0);
            out.push('\n');
        }
    }
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// A non-empty mapping's entries at `level`; with `inline`, the first entry continues the
/// current line (after `- `).
fn map_body(out: &mut String, node: &Node, level: usize, inline: bool) {
    let Value::Map(m) = &node.value else { return };
    for (i, e) in m.entries.iter().enumerate() {
        if i > 0 || !inline {
            indent(out, level);
        }
        key(out, &e.key);
        out.push(':');
        value_after_key(out, &e.value, level);
    }
}

/// What follows `key:`: ` scalar`, or a nested collection on the next lines.
fn value_after_key(out: &mut String, value: &Node, level: usize) {
    match &value.value {
        Value::Map(m) if !m.is_empty() => {
            out.push('\n');
            map_body(out, value, level + 2, false);
        }
        // Sequences under a key stay at the key's indentation, as kubectl writes them.
        Value::Seq(items) if !items.is_empty() => {
            out.push('\n');
            seq_body(out, items, level, false);
        }
        _ => {
            out.push(' ');
            scalar(out, value, level + 2);
            out.push('\n');
        }
    }
}

fn seq_body(out: &mut String, items: &[Node], level: usize, inline: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !inline {
            indent(out, level);
        }
        out.push_str("- ");
        match &item.value {
            Value::Map(m) if !m.is_empty() => map_body(out, item, level + 2, true),
            Value::Seq(inner) if !inner.is_empty() => seq_body(out, inner, level + 2, true),
            _ => {
                scalar(out, item, level + 2);
                out.push('\n');
            }
        }
    }
}

/// A scalar (or an empty collection) whose continuation lines, if any, are indented by
/// `level`.
fn scalar(out: &mut String, node: &Node, level: usize) {
    match &node.value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Float(f) => float(out, *f),
        Value::Str(s) => string(out, s, level),
        Value::Seq(_) => out.push_str("[]"),
        Value::Map(_) => out.push_str("{}"),
    }
}

/// As in JSON: integral values without a fraction, others in the shortest exact form, which
/// every YAML reader reads as a float.
fn float(out: &mut String, f: f64) {
    let spelled = scalar::json_float(f);
    if spelled.contains(['.', 'e', 'E']) || spelled.parse::<i64>().is_ok() {
        out.push_str(&spelled);
    } else {
        let _ = write!(out, "{f:e}");
    }
}

fn key(out: &mut String, k: &str) {
    if plain_safe(k) {
        out.push_str(k);
    } else {
        double_quoted(out, k);
    }
}

fn string(out: &mut String, s: &str, level: usize) {
    if plain_safe(s) {
        out.push_str(s);
    } else if let Some(chomping) = literal_chomping(s) {
        out.push('|');
        out.push_str(chomping);
        out.push('\n');
        let body = s.strip_suffix('\n').unwrap_or(s);
        for (i, line) in body.split('\n').enumerate() {
            if i > 0 {
                out.push('\n');
            }
            if !line.is_empty() {
                indent(out, level);
                out.push_str(line);
            }
        }
        // The line break after the block is the caller's.
    } else {
        double_quoted(out, s);
    }
}

/// Whether `s` can be written plain and read back as this very string by YAML 1.1 and 1.2
/// readers, in block context, as a key or a value.
fn plain_safe(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    // Digits, signs and dots start numbers, dates and times: quote them all rather than
    // enumerate what each reader resolves.
    if !(first.is_ascii_alphabetic() || first == b'/' || first == b'_') {
        return false;
    }
    let last = bytes[bytes.len() - 1];
    if last == b' ' || last == b':' {
        return false;
    }
    let mut previous = 0u8;
    for &b in bytes {
        let ok = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'_' | b'.'
                    | b'/'
                    | b'-'
                    | b'+'
                    | b'='
                    | b'@'
                    | b'~'
                    | b'('
                    | b')'
                    | b';'
                    | b'$'
                    | b'%'
                    | b'^'
                    | b'<'
                    | b'>'
                    | b'*'
                    | b'&'
                    | b'!'
                    | b'?'
            )
            || (b == b':' && previous != b' ')
            || (b == b' ' && previous != b' ' && previous != b':');
        if !ok {
            return false;
        }
        // `: ` starts a mapping value; ` #` a comment (`#` is refused above anyway).
        if previous == b':' && b == b' ' {
            return false;
        }
        previous = b;
    }
    matches!(scalar::kubectl(s), Resolved::Str) && matches!(scalar::yaml12(s), Resolved::Str)
}

/// The chomping indicator when `s` can be a literal block scalar read back exactly.
fn literal_chomping(s: &str) -> Option<&'static str> {
    if !s.contains('\n') || s.starts_with([' ', '\t', '\n']) {
        return None;
    }
    for line in s.split('\n') {
        // Whitespace-only lines are ambiguous with indentation; lines starting with a tab
        // would be read as content after a smaller indentation by some readers.
        if (!line.is_empty() && line.trim_matches([' ', '\t']).is_empty()) || line.starts_with('\t')
        {
            return None;
        }
        if line.chars().any(|c| c != '\t' && !printable(c)) {
            return None;
        }
    }
    let trailing = s.len() - s.trim_end_matches('\n').len();
    Some(match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    })
}

/// YAML's `c-printable`, minus the characters some readers treat as line breaks or a BOM.
fn printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// `s` as the body of a YAML double-quoted scalar (without the quotes), as the emitter writes
/// it: the host's masker registers this form of every secret.
pub fn double_quoted_body(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    double_quoted(&mut out, s);
    // The quotes are one byte each.
    out[1..out.len() - 1].to_owned()
}

fn double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if printable(c) => out.push(c),
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::diag::Pos;
    use crate::tree::Map;

    fn s(text: &str) -> Node {
        Node::str(text, Pos::default())
    }

    fn yaml(root: &Node) -> String {
        let mut out = String::new();
        document(&mut out, root);
        out
    }

    fn map(entries: Vec<(&str, Node)>) -> Node {
        let mut m = Map::default();
        for (k, v) in entries {
            m.insert(k, v);
        }
        Node::new(Value::Map(m), Pos::default())
    }

    fn seq(items: Vec<Node>) -> Node {
        Node::new(Value::Seq(items), Pos::default())
    }

    #[test]
    fn layout() {
        let root = map(vec![
            ("kind", s("Deployment")),
            ("empty", map(vec![])),
            ("none", seq(vec![])),
            (
                "containers",
                seq(vec![
                    map(vec![
                        ("name", s("app")),
                        (
                            "ports",
                            seq(vec![map(vec![(
                                "containerPort",
                                Node::new(Value::Int(80), Pos::default()),
                            )])]),
                        ),
                    ]),
                    seq(vec![s("a"), seq(vec![s("b")])]),
                ]),
            ),
            ("script", s("echo a\n  indented\n\nlast\n")),
        ]);
        assert_eq!(
            yaml(&root),
            "---\nkind: Deployment\nempty: {}\nnone: []\ncontainers:\n- name: app\n  ports:\n  - containerPort: 80\n- - a\n  - - b\nscript: |\n  echo a\n    indented\n\n  last\n"
        );
    }

    #[test]
    fn quoting() {
        for (text, want) in [
            ("nginx:1.27", "nginx:1.27"),
            ("Hello from app-1", "Hello from app-1"),
            ("/healthz", "/healthz"),
            ("http://x.example/a?b=c&d", "http://x.example/a?b=c&d"),
            ("1.10", "\"1.10\""),
            ("on", "\"on\""),
            ("y", "\"y\""),
            ("null", "\"null\""),
            ("", "\"\""),
            ("2024-01-01", "\"2024-01-01\""),
            ("3f2a9c1", "\"3f2a9c1\""),
            ("a: b # c", "\"a: b # c\""),
            ("a #b", "\"a #b\""),
            ("trail ", "\"trail \""),
            ("x:", "\"x:\""),
            ("*a", "\"*a\""),
            ("-", "\"-\""),
            ("é", "\"é\""),
            ("a\u{85}b", "\"a\\u0085b\""),
            ("\"'\\", "\"\\\"'\\\\\""),
            ("a\r\nb", "\"a\\r\\nb\""),
        ] {
            let got = yaml(&map(vec![("k", s(text))]));
            assert_eq!(got, format!("---\nk: {want}\n"), "{text:?}");
        }
        assert_eq!(
            yaml(&map(vec![
                ("a b", s("x")),
                ("on", s("x")),
                ("app.kubernetes.io/name", s("x"))
            ])),
            "---\na b: x\n\"on\": x\napp.kubernetes.io/name: x\n"
        );
    }

    #[test]
    fn blocks_and_their_chomping() {
        for (text, head) in [("a\nb", "|-"), ("a\nb\n", "|"), ("a\nb\n\n", "|+")] {
            let got = yaml(&map(vec![("k", s(text))]));
            assert!(
                got.starts_with(&format!("---\nk: {head}\n  a\n  b\n")),
                "{text:?}: {got}"
            );
        }
        for text in [
            " lead\nx",
            "\nx",
            "a\n   \nb",
            "a\n\tb",
            "a\r\nb",
            "a\u{2028}\nb",
        ] {
            assert!(
                yaml(&map(vec![("k", s(text))])).starts_with("---\nk: \""),
                "{text:?}"
            );
        }
    }

    #[test]
    fn numbers() {
        let n = |v| map(vec![("v", Node::new(v, Pos::default()))]);
        assert_eq!(yaml(&n(Value::Float(1000.0))), "---\nv: 1000\n");
        assert_eq!(yaml(&n(Value::Float(1.1))), "---\nv: 1.1\n");
        assert_eq!(yaml(&n(Value::Float(1e300))), "---\nv: 1e300\n");
        assert_eq!(
            yaml(&n(Value::UInt(u64::MAX))),
            format!("---\nv: {}\n", u64::MAX)
        );
        assert_eq!(yaml(&n(Value::Null)), "---\nv: null\n");
        // `n` is a YAML 1.1 boolean: kubectl would read the key as "false".
        assert_eq!(yaml(&map(vec![("n", s("x"))])), "---\n\"n\": x\n");
    }
}
