//! Where a field path points in a source text: the API server names the field it refuses
//! (`.spec.replicas`, `spec.template.spec.containers[0].image`,
//! `.spec.template.spec.containers[name="web"].ports[containerPort=80,protocol="TCP"].name`),
//! and the host reports the problem at that field's own line and column instead of the
//! document's first line. Linked natively by the host; nothing here runs in the sandbox.
//!
//! Two path dialects reach kstep, and both are read:
//! - the server-side apply schema's (`.a.b`, list items by key `[name="web"]`, by value
//!   `[="x"]` or by index `[0]`), in strict-validation errors;
//! - the API's validation field paths (`a.b[0].c`, map keys as `[key]`), in `422 Invalid`
//!   causes.
//!
//! A mapping key may itself hold dots (`app.kubernetes.io/name`): at each mapping the longest
//! key the rest of the path starts with wins.

use crate::diag::Pos;
use crate::load;
use crate::scalar::json_float;
use crate::tree::{Node, Value};

/// Where a path led.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    /// Where the key of the last mapping entry on the path was written (`None` when the path
    /// ends at a sequence item or at the document itself).
    pub key: Option<Pos>,
    /// Where the value starts (a mapping or sequence: its first entry).
    pub value: Pos,
    /// What the value is: `a string`, `a number`, `a boolean`, `a mapping`, `a sequence`,
    /// `null` ([`Node::type_name`]).
    pub type_name: &'static str,
    /// Whether the whole path exists; otherwise this is its deepest existing ancestor.
    pub exact: bool,
}

/// Finds `path` in document `index` (1-based, counted as the render counts them) of `text`,
/// inside its `item`-th item when the document is a `List` and `item > 0`.
///
/// The text is read literally (no placeholder is expanded): a placeholder never changes a
/// document's structure, so every field is where the rendered document has it. `None` when the
/// document is not there or is not a mapping.
pub fn field(text: &str, index: u32, item: u32, path: &str) -> Option<Located> {
    let loaded = load::load("", text, None);
    let document = loaded.documents.iter().find(|d| d.index == index)?;
    let root = if item > 0 {
        match &document.root.get_path(&["items"])?.value {
            Value::Seq(items) => items.get(usize::try_from(item - 1).ok()?)?,
            _ => return None,
        }
    } else {
        &document.root
    };
    root.as_map()?;
    Some(walk(root, path))
}

/// Follows `path` from `node` as far as it exists.
fn walk(mut node: &Node, path: &str) -> Located {
    let mut key = None;
    let mut rest = path;
    loop {
        rest = rest.strip_prefix('.').unwrap_or(rest);
        if rest.is_empty() {
            return located(node, key, true);
        }
        let step = match rest.strip_prefix('[') {
            Some(inside) => split_selector(inside)
                .and_then(|(selector, after)| Some((select(node, selector)?, after))),
            None => member(node, rest),
        };
        match step {
            Some(((next, next_key), after)) => {
                node = next;
                key = next_key;
                rest = after;
            }
            None => return located(node, key, false),
        }
    }
}

fn located(node: &Node, key: Option<Pos>, exact: bool) -> Located {
    Located {
        key,
        value: node.pos,
        type_name: node.type_name(),
        exact,
    }
}

/// A node reached by one step, with the position of its key when it is a mapping entry.
type Step<'a> = (&'a Node, Option<Pos>);

/// The longest key of the mapping `node` that `rest` starts with, followed by the end of the
/// path, `.` or `[`.
fn member<'n, 'p>(node: &'n Node, rest: &'p str) -> Option<(Step<'n>, &'p str)> {
    let entry = node
        .as_map()?
        .entries
        .iter()
        .filter(|e| {
            rest.strip_prefix(e.key.as_str())
                .is_some_and(|after| after.is_empty() || after.starts_with(['.', '[']))
        })
        .max_by_key(|e| e.key.len())?;
    Some((
        (&entry.value, Some(entry.key_pos)),
        &rest[entry.key.len()..],
    ))
}

/// The characters of `text` outside its JSON string literals, with their byte offsets.
fn outside_quotes(text: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut quoted = false;
    let mut escaped = false;
    text.char_indices().filter(move |&(_, c)| {
        let outside = !quoted && c != '"';
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ => {}
        }
        outside
    })
}

/// Splits `inside` (what follows a `[`) at its closing `]`, outside quotes.
fn split_selector(inside: &str) -> Option<(&str, &str)> {
    let (i, _) = outside_quotes(inside).find(|&(_, c)| c == ']')?;
    Some((&inside[..i], &inside[i + 1..]))
}

/// One `[…]` step: an index, a value (`=x`) or keys (`k=v,k2=v2`) of a sequence item, or a key
/// of a mapping.
fn select<'a>(node: &'a Node, selector: &str) -> Option<Step<'a>> {
    match &node.value {
        Value::Seq(items) => {
            if let Ok(i) = selector.parse::<usize>() {
                return items.get(i).map(|n| (n, None));
            }
            if let Some(wanted) = selector.strip_prefix('=') {
                let wanted = literal(wanted);
                return items
                    .iter()
                    .find(|n| scalar_text(n).as_deref() == Some(wanted.as_str()))
                    .map(|n| (n, None));
            }
            by_keys(items, &key_values(selector)).map(|n| (n, None))
        }
        Value::Map(map) => {
            let key = literal(selector);
            map.entry(&key).map(|e| (&e.value, Some(e.key_pos)))
        }
        _ => None,
    }
}

/// The item whose keys match: every key it has must equal the selector's (the server fills
/// defaults, such as a port's `protocol`, that the source leaves out); among those, the one
/// with the most keys present, the first on a tie.
fn by_keys<'a>(items: &'a [Node], keys: &[(String, String)]) -> Option<&'a Node> {
    let mut best: Option<(&Node, usize)> = None;
    for item in items {
        let Some(map) = item.as_map() else { continue };
        let mut present = 0;
        let mut mismatch = false;
        for (name, wanted) in keys {
            if let Some(value) = map.get(name) {
                present += 1;
                mismatch |= scalar_text(value).as_deref() != Some(wanted.as_str());
            }
        }
        if !mismatch && present > 0 && best.is_none_or(|(_, n)| present > n) {
            best = Some((item, present));
        }
    }
    best.map(|(item, _)| item)
}

/// `k=v,k2="w"` as pairs, values unquoted; commas inside quotes belong to the value.
fn key_values(selector: &str) -> Vec<(String, String)> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, _) in outside_quotes(selector).filter(|&(_, c)| c == ',') {
        parts.push(&selector[start..i]);
        start = i + 1;
    }
    parts.push(&selector[start..]);
    parts
        .into_iter()
        .filter_map(|part| {
            let (name, value) = part.split_once('=')?;
            Some((name.to_owned(), literal(value)))
        })
        .collect()
}

/// A selector's value as text: a JSON string unquoted, anything else as written.
fn literal(text: &str) -> String {
    if text.starts_with('"') {
        serde_json::from_str::<String>(text).unwrap_or_else(|_| text.to_owned())
    } else {
        text.to_owned()
    }
}

/// A scalar as the server prints it in a path (`80`, `web`, `true`); `None` for collections.
fn scalar_text(node: &Node) -> Option<String> {
    match &node.value {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(json_float(*f)),
        Value::Str(s) => Some(s.clone()),
        Value::Seq(_) | Value::Map(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app.kubernetes.io/name: web
    app: short
spec:
  replicas: \"three\"
  template:
    spec:
      containers:
        - name: sidecar
          image: busybox
        - name: web
          image: ${IMAGE}
          ports:
            - containerPort: \"80\"
            - {containerPort: 81, protocol: UDP}
            - containerPort: 81
              name: http
";

    fn at(path: &str) -> Located {
        field(DEPLOYMENT, 1, 0, path).unwrap()
    }

    #[test]
    fn a_server_side_apply_path_finds_the_value_and_its_key() {
        let l = at(".spec.replicas");
        assert_eq!(
            (l.key, l.value, l.type_name, l.exact),
            (Some(Pos::new(9, 3)), Pos::new(9, 13), "a string", true)
        );
    }

    #[test]
    fn list_items_by_key_with_defaults_the_source_leaves_out() {
        let l = at(".spec.template.spec.containers[name=\"web\"].image");
        assert_eq!((l.value, l.exact), (Pos::new(16, 18), true));
        // `protocol` is the server's default: the item without it matches.
        let l = at(
            ".spec.template.spec.containers[name=\"web\"].ports[containerPort=\"80\",protocol=\"TCP\"].containerPort",
        );
        assert_eq!((l.value, l.type_name), (Pos::new(18, 30), "a string"));
        // The item that has the key with another value does not; the one without it does.
        let l = at(
            ".spec.template.spec.containers[name=\"web\"].ports[containerPort=81,protocol=\"TCP\"].name",
        );
        assert_eq!((l.value, l.exact), (Pos::new(21, 21), true));
        let l = at(
            ".spec.template.spec.containers[name=\"web\"].ports[containerPort=81,protocol=\"UDP\"]",
        );
        assert_eq!((l.value, l.key), (Pos::new(19, 15), None));
    }

    #[test]
    fn validation_paths_with_indexes_and_map_keys() {
        assert_eq!(
            at("spec.template.spec.containers[1].image").value,
            Pos::new(16, 18)
        );
        assert_eq!(
            at("metadata.labels[app.kubernetes.io/name]").key,
            Some(Pos::new(6, 5))
        );
    }

    #[test]
    fn keys_with_dots_take_the_longest_match() {
        let l = at(".metadata.labels.app.kubernetes.io/name");
        assert_eq!((l.key, l.exact), (Some(Pos::new(6, 5)), true));
        assert_eq!(at(".metadata.labels.app").key, Some(Pos::new(7, 5)));
    }

    #[test]
    fn a_missing_field_stops_at_its_deepest_ancestor() {
        let l = at(".spec.template.spec.containers[name=\"db\"].image");
        assert_eq!((l.key, l.exact), (Some(Pos::new(12, 7)), false));
        let l = at(".spec.strategy");
        assert_eq!((l.key, l.exact), (Some(Pos::new(8, 1)), false));
    }

    #[test]
    fn documents_and_list_items_are_counted_as_the_render_counts_them() {
        let text = "---\n---\napiVersion: v1\nkind: List\nitems:\n- kind: ConfigMap\n  data: {a: 1}\n- kind: ConfigMap\n  data:\n    b: 2\n";
        let l = field(text, 2, 2, ".data.b").unwrap();
        assert_eq!((l.value, l.type_name), (Pos::new(10, 8), "a number"));
        assert!(field(text, 1, 0, ".data").is_none());
        assert!(field(text, 2, 3, ".data").is_none());
        // JSON is read too (the host finds a value's type in the object it sent this way).
        let l = field(r#"{"data": {"V": 1.1, "W": "x"}}"#, 1, 0, ".data.V").unwrap();
        assert_eq!(l.type_name, "a number");
        let l = field(r#"{"a": ["x", "y"]}"#, 1, 0, ".a[=\"y\"]").unwrap();
        assert_eq!((l.value, l.exact), (Pos::new(1, 13), true));
    }

    #[test]
    fn selectors_with_quotes_and_commas() {
        assert_eq!(
            key_values(r#"a="x,]y",b=2"#),
            [("a".into(), "x,]y".into()), ("b".into(), "2".into())]
        );
        assert_eq!(
            split_selector(r#"a="x]",b=2].c"#),
            Some((r#"a="x]",b=2"#, ".c"))
        );
        assert_eq!(split_selector("unclosed"), None);
    }
}
