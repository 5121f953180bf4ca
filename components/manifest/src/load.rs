//! Reading YAML (and JSON, a subset of it) into document trees, with placeholders substituted
//! inside scalars.
//!
//! Substitution happens on the parsed event stream, scalar by scalar: a value is inserted into
//! one scalar's text and can never add a key, an item or a document, whatever it contains.
//! Scalars are then typed ([`crate::scalar`]): a plain scalar without placeholders, or one that
//! is a single whole placeholder, is typed the way kubectl types plain YAML; any other scalar
//! with a placeholder (text around it, quoted, block) is a string.
//!
//! Anchors and aliases are expanded (with a size budget against "billion laughs"), merge keys
//! (`<<`) are applied as kubectl's reader does, comments are dropped.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{
    Event, Marker, Options, Parser, ScalarStyle, ScanError, Span, Tag,
};

use crate::diag::{Diagnostic, Pos};
use crate::scalar::{self, Resolved};
use crate::template::{self, Resolution};
use crate::tree::{Entry, Map, Node, Value};

/// Nodes that alias expansion may create per source before it is refused.
const ALIAS_BUDGET: usize = 1_000_000;

/// One document of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 1-based position of the document in its source, counting empty ones.
    pub index: u32,
    /// The document's root (always a mapping).
    pub root: Node,
}

/// One placeholder that was expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitution {
    /// The variable.
    pub variable: String,
    /// Where the placeholder is.
    pub pos: Pos,
    /// Value or default.
    pub resolution: Resolution,
}

/// What reading one source produced.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The non-empty documents.
    pub documents: Vec<Document>,
    /// Every expanded placeholder.
    pub substitutions: Vec<Substitution>,
    /// Errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
    /// A YAML error made the reader skip part of the text: some content is missing from
    /// `documents` (a missing variable leaves a stand-in instead, see [`Node::unresolved`]).
    pub lost: bool,
}

/// Reads every document of `text` (reported as `source`), substituting `variables`; with
/// `None`, the text is taken literally (no placeholders, `$$` stays `$$`, as `kubectl apply`
/// reads it).
pub fn load(source: &str, text: &str, variables: Option<&HashMap<String, String>>) -> Loaded {
    let mut options = Options::default();
    options.emit_comments = false;
    // A block scalar on the last line without a line break gets none, as libyaml (and so
    // kubectl) read it.
    options.block_scalar_eof_without_line_feed = true;
    let mut parser = Parser::new_from_str_with_options(text, options);
    let mut loader = Loader {
        source,
        text,
        variables,
        out: Loaded::default(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        document: 0,
        abandoned: false,
        budget: ALIAS_BUDGET,
    };
    loop {
        match parser.next_event() {
            None => break,
            Some(Ok((event, span))) => loader.event(event, span),
            Some(Err(e)) => {
                loader.scan_error(&e);
                match parser.proceed_next_document() {
                    Ok(true) => continue,
                    Ok(false) | Err(_) => break,
                }
            }
        }
    }
    loader.out
}

/// The first tab in the indentation of line `line` (1-based) or the next one.
fn indentation_tab(text: &str, line: u32) -> Option<Pos> {
    let first = usize::try_from(line).ok()?.saturating_sub(1);
    text.lines()
        .enumerate()
        .skip(first)
        .take(2)
        .find_map(|(i, l)| {
            let indent = &l[..l.len() - l.trim_start().len()];
            let column = indent[..indent.find('\t')?].chars().count() + 1;
            Some(Pos::new(
                u32::try_from(i + 1).ok()?,
                u32::try_from(column).ok()?,
            ))
        })
}

fn pos(marker: &Marker) -> Pos {
    Pos::new(
        u32::try_from(marker.line()).unwrap_or(u32::MAX),
        u32::try_from(marker.col() + 1).unwrap_or(u32::MAX),
    )
}

/// A collection being built.
enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        map: Map,
        key: Option<Key>,
        /// `<<` values, applied when the mapping ends.
        merges: Vec<Node>,
    },
}

struct Key {
    text: String,
    pos: Pos,
    merge: bool,
}

struct Loader<'a> {
    source: &'a str,
    text: &'a str,
    /// `None`: literal, no templating.
    variables: Option<&'a HashMap<String, String>>,
    out: Loaded,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    document: u32,
    /// After an error inside a document, the rest of it is skipped.
    abandoned: bool,
    budget: usize,
}

impl Loader<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.out
            .diagnostics
            .push(Diagnostic::error(self.source, pos, message));
    }

    fn warning(&mut self, pos: Pos, message: impl Into<String>) {
        self.out
            .diagnostics
            .push(Diagnostic::warning(self.source, pos, message));
    }

    /// Reports an error and skips the rest of the current document.
    fn abandon(&mut self, pos: Pos, message: impl Into<String>) {
        self.error(pos, message);
        self.out.lost = true;
        self.abandoned = true;
        self.stack.clear();
    }

    fn scan_error(&mut self, e: &ScanError) {
        let at = pos(e.marker());
        // The scanner reports a tab at the scalar before it, often on the line above.
        let tab = e
            .info()
            .contains("tab")
            .then(|| indentation_tab(self.text, at.line))
            .flatten();
        let (at, message) = match (tab, e.info()) {
            (Some(tab), _) => (
                tab,
                "invalid YAML: a tab in the indentation (YAML indents with spaces only)".to_owned(),
            ),
            (None, m) if m.is_empty() => (at, "invalid YAML".to_owned()),
            (None, m) => (at, format!("invalid YAML: {m}")),
        };
        // `{b: ${N}}`: in a flow collection `{` ends a plain scalar, so the placeholder breaks.
        let placeholder = e
            .marker()
            .byte_offset()
            .and_then(|o| self.text.get(..o))
            .is_some_and(|before| before.ends_with('$'));
        let message = if placeholder && e.info().contains("flow") {
            format!(
                "{message} (a `${{…}}` placeholder inside `{{…}}` or `[…]` must be quoted, \
                 `\"${{N}}\"`, which makes it a string; for a number or boolean write the \
                 collection in block style)"
            )
        } else {
            message
        };
        self.error(at, message);
        self.out.lost = true;
        self.stack.clear();
        self.root = None;
        self.anchors.clear();
        self.abandoned = false;
    }

    fn event(&mut self, event: Event<'_>, span: Span) {
        match event {
            Event::DocumentStart(..) => {
                self.document += 1;
                self.root = None;
                self.stack.clear();
                self.anchors.clear();
                self.abandoned = false;
            }
            Event::DocumentEnd => self.end_document(),
            _ if self.abandoned => {}
            Event::Scalar(value, style, anchor, tag) => {
                self.scalar(&value, style, anchor, tag.as_deref(), &span);
            }
            Event::Alias(id) => self.alias(id, &span),
            Event::UnresolvedAlias(name) => {
                self.abandon(pos(&span.start), format!("alias `*{name}` has no anchor"));
            }
            Event::SequenceStart(_, anchor, tag) => {
                if self.in_key_position() {
                    return self.abandon(pos(&span.start), "a mapping key must be a string");
                }
                self.collection_tag(tag.as_deref(), "seq", &span);
                self.stack.push(Frame::Seq {
                    pos: pos(&span.start),
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(_, anchor, tag) => {
                if self.in_key_position() {
                    return self.abandon(pos(&span.start), "a mapping key must be a string");
                }
                self.collection_tag(tag.as_deref(), "map", &span);
                self.stack.push(Frame::Map {
                    pos: pos(&span.start),
                    anchor,
                    map: Map::default(),
                    key: None,
                    merges: Vec::new(),
                });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { pos, anchor, items }) = self.stack.pop() {
                    let node = Node::new(Value::Seq(items), pos);
                    self.complete(node, anchor);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    pos,
                    anchor,
                    map,
                    merges,
                    ..
                }) = self.stack.pop()
                {
                    let map = self.merge(map, merges);
                    self.complete(Node::new(Value::Map(map), pos), anchor);
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::Anchor(..) => {}
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    fn end_document(&mut self) {
        let root = self.root.take();
        self.stack.clear();
        if self.abandoned {
            return;
        }
        match root {
            None => {}
            Some(Node {
                value: Value::Null, ..
            }) => {}
            Some(
                root @ Node {
                    value: Value::Map(_),
                    ..
                },
            ) => self.out.documents.push(Document {
                index: self.document,
                root,
            }),
            Some(other) => self.error(
                other.pos,
                format!(
                    "document {} is {}: a manifest document must be a mapping",
                    self.document,
                    other.type_name()
                ),
            ),
        }
    }

    fn in_key_position(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    fn collection_tag(&mut self, tag: Option<&Tag>, expected: &str, span: &Span) {
        if let Some(tag) = tag
            && tag.suffix_in_namespace("tag:yaml.org,2002:").as_deref() != Some(expected)
        {
            self.warning(
                pos(&span.start),
                format!("tag `{}` is ignored", tag.original()),
            );
        }
    }

    /// A finished node goes into its parent (or becomes the document's root).
    fn complete(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                map, key, merges, ..
            }) => {
                let Some(k) = key.take() else {
                    // Keys are handled before they get here; a collection key was refused.
                    return;
                };
                if k.merge {
                    merges.push(node);
                } else if let Some(first) = map.entry(&k.text) {
                    let message = format!(
                        "duplicate key `{}` (first at line {}, column {})",
                        k.text, first.key_pos.line, first.key_pos.column
                    );
                    self.error(k.pos, message);
                } else {
                    map.entries.push(Entry {
                        key: k.text,
                        key_pos: k.pos,
                        value: node,
                    });
                }
            }
        }
    }

    /// Applies `<<` merges: keys written in the mapping win, then earlier merge sources.
    fn merge(&mut self, mut map: Map, merges: Vec<Node>) -> Map {
        for source in merges {
            let sources = match source.value {
                Value::Map(m) => vec![m],
                Value::Seq(items) => {
                    let mut maps = Vec::new();
                    for item in items {
                        match item.value {
                            Value::Map(m) => maps.push(m),
                            _ => self.error(item.pos, "a `<<` merge takes mappings only"),
                        }
                    }
                    maps
                }
                _ => {
                    self.error(
                        source.pos,
                        "a `<<` merge takes a mapping or a list of mappings",
                    );
                    continue;
                }
            };
            for m in sources {
                for e in m.entries {
                    if !map.contains(&e.key) {
                        map.entries.push(e);
                    }
                }
            }
        }
        map
    }

    fn alias(&mut self, id: usize, span: &Span) {
        let at = pos(&span.start);
        if self.in_key_position() {
            return self.abandon(at, "an alias cannot be a mapping key here");
        }
        let Some(node) = self.anchors.get(&id) else {
            return self.abandon(at, "alias to an unknown anchor");
        };
        let size = node.size();
        if size > self.budget {
            return self.abandon(
                at,
                "aliases expand to too many nodes (more than 1000000): refusing a \"billion laughs\" document",
            );
        }
        self.budget -= size;
        let mut node = node.clone();
        node.pos = at;
        self.complete(node, 0);
    }

    fn scalar(
        &mut self,
        value: &str,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&Tag>,
        span: &Span,
    ) {
        let at = pos(&span.start);
        let key_position = self.in_key_position();
        let (text, whole, substituted) = match self.substitute(value, span) {
            Some(r) => r,
            None => {
                // A broken placeholder: reported; keep reading to find more problems.
                if key_position {
                    self.set_key(String::new(), at, false);
                } else {
                    let mut stand_in = Node::new(Value::Null, at);
                    stand_in.unresolved = true;
                    self.complete(stand_in, anchor);
                }
                return;
            }
        };
        if key_position {
            let merge = style == ScalarStyle::Plain && tag.is_none() && value == "<<";
            if style == ScalarStyle::Plain && tag.is_none() && !substituted {
                self.key_warning(&text, at);
            }
            self.set_key(text, at, merge);
            return;
        }
        let typed = match tag {
            Some(tag) => self.tagged(text, tag, substituted, at),
            None if style != ScalarStyle::Plain => Value::Str(text),
            None if substituted && whole.is_none() => Value::Str(text),
            None => self.plain(text, whole.as_deref(), at),
        };
        let mut node = Node::new(typed, at);
        node.substituted = substituted;
        self.complete(node, anchor);
    }

    fn set_key(&mut self, text: String, pos: Pos, merge: bool) {
        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
            *key = Some(Key { text, pos, merge });
        }
    }

    /// kubectl renames plain keys that read as booleans or null (`on:` becomes `"true"`).
    fn key_warning(&mut self, text: &str, at: Pos) {
        let reading = scalar::kubectl(text);
        if matches!(reading, Resolved::Bool(_) | Resolved::Null) && !text.is_empty() {
            let json = match reading {
                Resolved::Bool(b) => b.to_string(),
                _ => "null".into(),
            };
            self.warning(
                at,
                format!(
                    "kubectl reads the key `{text}` as `{json}`; kstep keeps `{text}`: quote it \
                     so every tool agrees"
                ),
            );
        }
    }

    /// Substitutes placeholders in a scalar's text. Returns the text, the variable name when
    /// the scalar was one whole placeholder, and whether anything was substituted; `None` after
    /// reporting errors.
    fn substitute(&mut self, value: &str, span: &Span) -> Option<(String, Option<String>, bool)> {
        let Some(variables) = self.variables.filter(|_| template::has_syntax(value)) else {
            return Some((value.to_owned(), None, false));
        };
        let template = match template::parse(value) {
            Ok(t) => t,
            Err(errors) => {
                for e in errors {
                    let at = self.placeholder_pos(value, e.offset, span);
                    self.error(at, e.error.to_string());
                }
                return None;
            }
        };
        let whole = template.whole().map(|p| p.name.clone());
        match template::expand(&template, |name| variables.get(name).map(String::as_str)) {
            Ok((text, uses)) => {
                for u in uses {
                    let at = self.placeholder_pos(value, u.offset, span);
                    self.out.substitutions.push(Substitution {
                        variable: u.name,
                        pos: at,
                        resolution: u.resolution,
                    });
                }
                let substituted = template.placeholders().next().is_some();
                Some((text, whole, substituted))
            }
            Err(missing) => {
                for m in missing {
                    let at = self.placeholder_pos(value, m.offset, span);
                    self.error(at, m.to_string());
                }
                None
            }
        }
    }

    /// Where the placeholder at `offset` of a scalar's processed text is in the source: the
    /// k-th `${` of the text is the k-th `${` of the scalar's source slice, unless escapes make
    /// them differ (then the scalar's start).
    fn placeholder_pos(&self, value: &str, offset: usize, span: &Span) -> Pos {
        let start = pos(&span.start);
        let (Some(from), Some(to)) = (span.start.byte_offset(), span.end.byte_offset()) else {
            return start;
        };
        let Some(raw) = self.text.get(from..to.max(from)) else {
            return start;
        };
        let in_value = template::placeholder_offsets(value);
        let in_raw = template::placeholder_offsets(raw);
        let (Some(k), true) = (
            in_value.iter().position(|o| *o == offset),
            in_value.len() == in_raw.len(),
        ) else {
            return start;
        };
        let before = &raw[..in_raw[k]];
        let lines = before.matches('\n').count();
        let column = match before.rfind('\n') {
            Some(nl) => before[nl + 1..].chars().count() + 1,
            None => start.column as usize + before.chars().count(),
        };
        Pos::new(
            start.line + u32::try_from(lines).unwrap_or(0),
            u32::try_from(column).unwrap_or(start.column),
        )
    }

    /// An untagged plain scalar: typed like kubectl types it.
    fn plain(&mut self, text: String, whole: Option<&str>, at: Pos) -> Value {
        let reading = scalar::kubectl(&text);
        match (whole, reading) {
            (_, Resolved::Str) => return Value::Str(text),
            (None, Resolved::Bool(b)) if scalar::yaml12(&text) != reading => {
                self.warning(
                    at,
                    format!(
                        "`{text}` is the boolean {b} for kubectl (YAML 1.1) but a string for \
                         YAML 1.2 readers; kstep follows kubectl: write `{b}`, or quote it for \
                         a string"
                    ),
                );
            }
            (Some(name), reading) => {
                if reading
                    .json_spelling()
                    .is_some_and(|spelled| spelled != text)
                {
                    let what = if text.is_empty() {
                        format!("`${{{name}}}` is empty, so the value is null")
                    } else {
                        format!(
                            "`${{{name}}}` is a whole plain scalar, so its value is typed as YAML: \
                             {}",
                            reading.describe()
                        )
                    };
                    self.warning(
                        at,
                        format!("{what}; quote the placeholder (\"${{{name}}}\") to keep the text as a string"),
                    );
                }
            }
            (None, _) => {}
        }
        match reading {
            Resolved::Null => Value::Null,
            Resolved::Bool(b) => Value::Bool(b),
            Resolved::Int(i) => Value::Int(i),
            Resolved::UInt(u) => Value::UInt(u),
            Resolved::Float(f) if f.is_finite() => Value::Float(f),
            Resolved::Float(_) => {
                self.error(
                    at,
                    format!(
                        "{} is an infinite or NaN number, which JSON (and the Kubernetes API) cannot carry; quote it for a string",
                        // A variable's value is never quoted back: it may be a secret.
                        whole.map_or_else(|| format!("`{text}`"), |name| format!("the value of `${{{name}}}`"))
                    ),
                );
                Value::Null
            }
            Resolved::Str => Value::Str(text),
        }
    }

    /// A scalar with an explicit tag (`!!int "3"`, `!!str 5`…).
    fn tagged(&mut self, text: String, tag: &Tag, substituted: bool, at: Pos) -> Value {
        let core = tag
            .suffix_in_namespace("tag:yaml.org,2002:")
            .map(|s| s.into_owned());
        let reading = scalar::kubectl(&text);
        // Text that came from a variable is never quoted back: the value may be a secret.
        let shown = if substituted {
            "the value after substitution".to_owned()
        } else {
            format!("`{text}`")
        };
        let mismatch = |what: &str| format!("{shown} is not {what} (tag `{}`)", tag.original());
        match core.as_deref() {
            Some("str" | "timestamp") => Value::Str(text),
            Some("int") => match reading {
                Resolved::Int(i) => Value::Int(i),
                Resolved::UInt(u) => Value::UInt(u),
                _ => {
                    self.error(at, mismatch("an integer"));
                    Value::Null
                }
            },
            Some("float") => match reading {
                Resolved::Int(i) => Value::Float(i as f64),
                Resolved::UInt(u) => Value::Float(u as f64),
                Resolved::Float(f) if f.is_finite() => Value::Float(f),
                _ => {
                    self.error(at, mismatch("a finite number"));
                    Value::Null
                }
            },
            Some("bool") => match reading {
                Resolved::Bool(b) => Value::Bool(b),
                _ => {
                    self.error(at, mismatch("a boolean"));
                    Value::Null
                }
            },
            Some("null") => match reading {
                Resolved::Null => Value::Null,
                _ => {
                    self.error(at, mismatch("null"));
                    Value::Null
                }
            },
            Some(other) => {
                self.error(
                    at,
                    format!("the tag `!!{other}` is not supported on a scalar"),
                );
                Value::Null
            }
            None => {
                self.warning(
                    at,
                    format!(
                        "tag `{}` is ignored: the value is read as a string (as kubectl does)",
                        tag.original()
                    ),
                );
                Value::Str(text)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn json(text: &str, pairs: &[(&str, &str)]) -> String {
        let loaded = load("t.yaml", text, Some(&vars(pairs)));
        let errors: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity == crate::diag::Severity::Error)
            .map(ToString::to_string)
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        let docs: Vec<&Node> = loaded.documents.iter().map(|d| &d.root).collect();
        serde_json::to_string(&docs).unwrap()
    }

    fn errors(text: &str, pairs: &[(&str, &str)]) -> Vec<String> {
        load("t.yaml", text, Some(&vars(pairs)))
            .diagnostics
            .iter()
            .filter(|d| d.severity == crate::diag::Severity::Error)
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn whole_plain_placeholders_are_typed() {
        assert_eq!(
            json("replicas: ${N}\n", &[("N", "3")]),
            r#"[{"replicas":3}]"#
        );
        assert_eq!(json("v: ${V}\n", &[("V", "1.10")]), r#"[{"v":1.1}]"#);
        assert_eq!(json("v: \"${V}\"\n", &[("V", "1.10")]), r#"[{"v":"1.10"}]"#);
        assert_eq!(json("v: '${V}'\n", &[("V", "on")]), r#"[{"v":"on"}]"#);
        assert_eq!(json("v: ${V}\n", &[("V", "on")]), r#"[{"v":true}]"#);
        assert_eq!(json("v: x${V}\n", &[("V", "3")]), r#"[{"v":"x3"}]"#);
        assert_eq!(
            json("v: ${A}${B}\n", &[("A", "3"), ("B", "4")]),
            r#"[{"v":"34"}]"#
        );
        assert_eq!(json("v: ${E}\n", &[("E", "")]), r#"[{"v":null}]"#);
        assert_eq!(json("v: !!int \"${N}\"\n", &[("N", "3")]), r#"[{"v":3}]"#);
        assert_eq!(json("v: !!str ${N}\n", &[("N", "3")]), r#"[{"v":"3"}]"#);
        assert_eq!(json("v: ${N:-5}\n", &[]), r#"[{"v":5}]"#);
    }

    #[test]
    fn nasty_values_stay_inside_their_scalar() {
        for value in [
            "a: b # c",
            "x\ny: z",
            "---\nkind: Secret",
            "{a: 1}",
            "[1, 2]",
            "&a",
            "*a",
            "!!binary",
            "\"'",
            "- item",
        ] {
            let got = json(
                "a: ${V}\nb: \"${V}\"\nc: pre ${V}\nd: |\n  ${V}\n",
                &[("V", value)],
            );
            let want = serde_json::json!([{"a": value, "b": value, "c": format!("pre {value}"), "d": format!("{value}\n")}]);
            assert_eq!(got, want.to_string(), "{value:?}");
        }
    }

    #[test]
    fn literal_text_is_typed_like_kubectl() {
        assert_eq!(
            json(
                "a: on\nb: 0644\nc: 1.10\nd: 2024-01-01\ne: \"on\"\nf: $HOME\ng: 1e3\n",
                &[]
            ),
            r#"[{"a":true,"b":420,"c":1.1,"d":"2024-01-01","e":"on","f":"$HOME","g":1000}]"#
        );
        let loaded = load("t.yaml", "a: on\n", Some(&HashMap::new()));
        assert!(
            loaded.diagnostics[0]
                .message
                .contains("kstep follows kubectl")
        );
    }

    #[test]
    fn a_placeholder_in_a_flow_collection_gets_a_hint() {
        let vars: HashMap<String, String> = [("N".to_owned(), "3".to_owned())].into();
        for text in ["a: {b: ${N}}\n", "a: [x, ${N}, y]\n"] {
            let loaded = load("m.yaml", text, Some(&vars));
            let d = loaded.diagnostics[0].to_string();
            assert!(
                d.starts_with("m.yaml:1:")
                    && d.contains("placeholder inside `{…}` or `[…]` must be quoted"),
                "{text:?}: {d}"
            );
        }
        // Not for other flow errors.
        let loaded = load("m.yaml", "a: {b: c d: e}\n", Some(&vars));
        assert!(
            loaded
                .diagnostics
                .iter()
                .all(|d| !d.message.contains("placeholder")),
            "{:?}",
            loaded.diagnostics
        );
    }

    #[test]
    fn a_tab_is_reported_where_it_is() {
        for (text, at) in [
            ("a: 1\n\tb: 2\n", "m.yaml:2:1:"),
            ("a: 1\nb:\n\tc: 2\n", "m.yaml:3:1:"),
            (
                "kind: X\nmetadata:\n  name: x\n \tlabels: {}\n",
                "m.yaml:4:2:",
            ),
        ] {
            let loaded = load("m.yaml", text, None);
            let d = loaded.diagnostics[0].to_string();
            assert!(
                d.starts_with(at) && d.contains("a tab in the indentation"),
                "{text:?}: {d}"
            );
        }
    }

    #[test]
    fn every_missing_variable_is_reported_with_its_position() {
        let text =
            "a: ${A}\nb:\n  - x ${B} y ${C:?C is needed}\nc: \"${D}\"\nd: |\n  line\n  ${E}\n";
        assert_eq!(
            errors(text, &[]),
            vec![
                "t.yaml:1:4: error: variable `A` is not set and its placeholder has no default (set it, or write `${A:-default}`)",
                "t.yaml:3:7: error: variable `B` is not set and its placeholder has no default (set it, or write `${B:-default}`)",
                "t.yaml:3:14: error: variable `C` is not set: C is needed",
                "t.yaml:4:5: error: variable `D` is not set and its placeholder has no default (set it, or write `${D:-default}`)",
                "t.yaml:7:3: error: variable `E` is not set and its placeholder has no default (set it, or write `${E:-default}`)",
            ]
        );
    }

    #[test]
    fn errors_about_a_substituted_value_do_not_quote_it() {
        let secret = "s3cr3t-value";
        for (text, value) in [("a: !!int ${X}\n", secret), ("a: ${X}\n", ".inf")] {
            let e = errors(text, &[("X", value)]);
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(!e[0].contains(value), "{e:?}");
        }
        assert_eq!(
            errors("a: !!int ${X}\n", &[("X", secret)]),
            ["t.yaml:1:10: error: the value after substitution is not an integer (tag `!!int`)"]
        );
        assert_eq!(
            errors("a: ${X}\n", &[("X", ".inf")]),
            [
                "t.yaml:1:4: error: the value of `${X}` is an infinite or NaN number, which JSON (and the Kubernetes API) cannot carry; quote it for a string"
            ]
        );
        // Text written in the file is still quoted.
        assert_eq!(
            errors("a: !!int x1\n", &[]),
            ["t.yaml:1:10: error: `x1` is not an integer (tag `!!int`)"]
        );
    }

    #[test]
    fn literal_text_keeps_every_dollar_and_the_file_positions() {
        let loaded = load("t.yaml", "a: ${HOME} $$ $X\nb: '${Y:?unset}'\n", None);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        assert!(loaded.substitutions.is_empty());
        assert_eq!(
            serde_json::to_string(&loaded.documents[0].root).unwrap(),
            r#"{"a":"${HOME} $$ $X","b":"${Y:?unset}"}"#
        );
        // Nothing is rewritten before parsing: an error after `$$` is at its column in the file.
        let errors: Vec<String> = load("t.yaml", "a: [$$, @z]\n", None)
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("t.yaml:1:9: error: "), "{errors:?}");
    }

    #[test]
    fn substitutions_are_recorded_with_positions() {
        let loaded = load(
            "t.yaml",
            "a:\n  b: img-${TAG}\n  ${K}: v\n",
            Some(&vars(&[("TAG", "1"), ("K", "key")])),
        );
        let subs: Vec<(String, Pos)> = loaded
            .substitutions
            .iter()
            .map(|s| (s.variable.clone(), s.pos))
            .collect();
        assert_eq!(
            subs,
            vec![
                ("TAG".into(), Pos::new(2, 10)),
                ("K".into(), Pos::new(3, 3))
            ]
        );
        assert_eq!(
            serde_json::to_string(&loaded.documents[0].root).unwrap(),
            r#"{"a":{"b":"img-1","key":"v"}}"#
        );
    }

    #[test]
    fn documents_empty_ones_and_errors() {
        let loaded = load(
            "t.yaml",
            "# only a comment\n---\na: 1\n---\n---\nb: 2\n...\n",
            None,
        );
        let indexes: Vec<u32> = loaded.documents.iter().map(|d| d.index).collect();
        // Comments before the first `---` are not a document; the empty third one counts.
        assert_eq!(indexes, vec![1, 3]);
        assert_eq!(
            errors("a: 1\n---\n- x\n", &[]),
            vec![
                "t.yaml:3:1: error: document 2 is a sequence: a manifest document must be a mapping"
            ]
        );
        let e = errors("a: [1\n---\nb: {\n---\nc: 3\n", &[]);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(
            e[0],
            "t.yaml:1:4: error: invalid YAML: unclosed bracket '['"
        );
        assert_eq!(
            e[1],
            "t.yaml:3:4: error: invalid YAML: unclosed bracket '{'"
        );
        assert_eq!(
            errors("a: 1\na: 2\n", &[]),
            vec!["t.yaml:2:1: error: duplicate key `a` (first at line 1, column 1)"]
        );
        assert_eq!(
            errors("${A}: 1\n${B}: 2\n", &[("A", "k"), ("B", "k")]),
            vec!["t.yaml:2:1: error: duplicate key `k` (first at line 1, column 1)"]
        );
    }

    #[test]
    fn anchors_aliases_and_merges() {
        assert_eq!(
            json(
                "base: &b\n  x: 1\n  y: 2\nuse:\n  <<: *b\n  y: 3\nlist: [*b]\n",
                &[]
            ),
            r#"[{"base":{"x":1,"y":2},"use":{"y":3,"x":1},"list":[{"x":1,"y":2}]}]"#
        );
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
        let e = errors(bomb, &[]);
        assert!(e.iter().any(|m| m.contains("billion laughs")), "{e:?}");
    }

    #[test]
    fn json_input_and_block_scalars() {
        assert_eq!(
            json(
                "{\"a\": [1, \"${X}\", true], \"b\": {\"c\": null}}",
                &[("X", "2")]
            ),
            r#"[{"a":[1,"2",true],"b":{"c":null}}]"#
        );
        // No line break after the last line of a block scalar at EOF: none added (libyaml).
        assert_eq!(json("a: |\n  x\n  y", &[]), r#"[{"a":"x\ny"}]"#);
        assert_eq!(json("a: |\n  x\n", &[]), r#"[{"a":"x\n"}]"#);
    }

    #[test]
    fn broken_placeholders_are_positioned() {
        assert_eq!(
            errors("a: echo ${#arr[@]}\n", &[]),
            vec![
                "t.yaml:1:9: error: `${#arr[@]}` is not a placeholder: names are letters, digits and `_`, not starting with a digit (write `$${` for a literal `${`)"
            ]
        );
        assert_eq!(
            json("a: echo $${#arr[@]} $$ $1\n", &[]),
            r#"[{"a":"echo ${#arr[@]} $$ $1"}]"#
        );
    }

    #[test]
    fn infinities_and_tags() {
        assert!(errors("a: .inf\n", &[])[0].contains("JSON"));
        assert!(errors("a: !!int x\n", &[])[0].contains("is not an integer"));
        assert_eq!(json("a: !custom 5\n", &[]), r#"[{"a":"5"}]"#);
    }
}
