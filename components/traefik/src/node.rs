//! An ordered document tree: what `render` and `migrate` build, and what is serialised to YAML,
//! JSON or TOML.
//!
//! `serde_json::Value` would sort keys (the workspace does not enable `preserve_order`, and
//! turning it on would change other crates' JSON); Kubernetes manifests and Traefik configuration
//! read best in their conventional order, so maps here keep insertion order.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// One value of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A mapping, in insertion order (keys are unique: [`Node::set`] replaces).
    Map(Vec<(String, Node)>),
    /// A sequence.
    Seq(Vec<Node>),
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A floating-point number (only ever copied from a Traefik 1.x file).
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl Node {
    /// An empty mapping.
    pub fn map() -> Self {
        Node::Map(Vec::new())
    }

    /// Builder form of [`Node::set`].
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Node>) -> Self {
        self.set(key, value);
        self
    }

    /// Builder form of [`Node::set`] that does nothing for `None`.
    #[must_use]
    pub fn with_opt<T: Into<Node>>(mut self, key: &str, value: Option<T>) -> Self {
        if let Some(v) = value {
            self.set(key, v);
        }
        self
    }

    /// Sets `key` (replacing an existing entry in place). No effect on non-maps.
    pub fn set(&mut self, key: &str, value: impl Into<Node>) {
        if let Node::Map(entries) = self {
            let value = value.into();
            match entries.iter_mut().find(|(k, _)| k == key) {
                Some(entry) => entry.1 = value,
                None => entries.push((key.to_owned(), value)),
            }
        }
    }

    /// The value of `key`, if this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value at a dotted path of map keys.
    pub fn at(&self, path: &str) -> Option<&Node> {
        path.split('.').try_fold(self, |node, key| node.get(key))
    }

    /// The map at `key`, created empty when missing (or replacing a non-map value).
    pub fn entry(&mut self, key: &str) -> &mut Node {
        if !matches!(self, Node::Map(_)) {
            *self = Node::map();
        }
        let Node::Map(entries) = self else {
            unreachable!("just made a map")
        };
        let index = match entries.iter().position(|(k, _)| k == key) {
            Some(i) => {
                if !matches!(entries[i].1, Node::Map(_)) {
                    entries[i].1 = Node::map();
                }
                i
            }
            None => {
                entries.push((key.to_owned(), Node::map()));
                entries.len() - 1
            }
        };
        &mut entries[index].1
    }

    /// The map at a dotted path, creating every missing level.
    pub fn path_mut(&mut self, path: &str) -> &mut Node {
        path.split('.').fold(self, |node, key| node.entry(key))
    }

    /// Whether this is an empty map.
    pub fn is_empty_map(&self) -> bool {
        matches!(self, Node::Map(e) if e.is_empty())
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Serialises to YAML (one document, no `---`).
    ///
    /// # Errors
    /// Only if the serialiser fails, which a tree of plain values does not make it do.
    pub fn to_yaml(&self) -> Result<String, String> {
        serde_saphyr::to_string(self).map_err(|e| format!("serialising YAML: {e}"))
    }

    /// Serialises to pretty JSON with a final newline.
    ///
    /// # Errors
    /// As [`Node::to_yaml`].
    pub fn to_json(&self) -> Result<String, String> {
        serde_json::to_string_pretty(self)
            .map(|s| s + "\n")
            .map_err(|e| format!("serialising JSON: {e}"))
    }

    /// Serialises to a TOML document (this must be a map).
    ///
    /// # Errors
    /// When the tree has no TOML form (a top level that is not a map).
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| format!("serialising TOML: {e}"))
    }
}

impl Default for Node {
    /// An empty map: the root every document starts from.
    fn default() -> Self {
        Node::map()
    }
}

impl From<&str> for Node {
    fn from(s: &str) -> Self {
        Node::Str(s.to_owned())
    }
}

impl From<String> for Node {
    fn from(s: String) -> Self {
        Node::Str(s)
    }
}

impl From<&String> for Node {
    fn from(s: &String) -> Self {
        Node::Str(s.clone())
    }
}

impl From<bool> for Node {
    fn from(b: bool) -> Self {
        Node::Bool(b)
    }
}

impl From<i64> for Node {
    fn from(n: i64) -> Self {
        Node::Int(n)
    }
}

impl From<u16> for Node {
    fn from(n: u16) -> Self {
        Node::Int(n.into())
    }
}

impl From<u32> for Node {
    fn from(n: u32) -> Self {
        Node::Int(n.into())
    }
}

impl<T: Into<Node>> From<Vec<T>> for Node {
    fn from(items: Vec<T>) -> Self {
        Node::Seq(items.into_iter().map(Into::into).collect())
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Node::Seq(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Str(s) => serializer.serialize_str(s),
            Node::Int(n) => serializer.serialize_i64(*n),
            Node::Float(f) => serializer.serialize_f64(*f),
            Node::Bool(b) => serializer.serialize_bool(*b),
        }
    }
}

/// Builds a [`Node::Map`] from `key => value` pairs, skipping nothing.
#[macro_export]
macro_rules! map {
    ($($k:expr => $v:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut node = $crate::node::Node::map();
        $( node.set($k, $v); )*
        node
    }};
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keeps_order_and_serialises() {
        let n = map! {
            "b" => 1i64,
            "a" => map! { "z" => true, "y" => vec!["x", "w"] },
            "empty" => Node::map(),
            "port" => ":8000",
        };
        let yaml = n.to_yaml().unwrap();
        assert!(
            yaml.find("b:").unwrap() < yaml.find("a:").unwrap(),
            "{yaml}"
        );
        assert!(yaml.contains("empty: {}"), "{yaml}");
        assert!(
            yaml.contains("port: \":8000\"") || yaml.contains("port: ':8000'"),
            "{yaml}"
        );
        let json = n.to_json().unwrap();
        assert!(json.find("\"b\"").unwrap() < json.find("\"a\"").unwrap());
        let toml = n.to_toml().unwrap();
        assert!(toml.contains("b = 1"), "{toml}");
        assert!(toml.contains("[a]") && toml.contains("[empty]"), "{toml}");
    }

    #[test]
    fn paths() {
        let mut n = Node::map();
        n.path_mut("a.b.c").set("d", 1i64);
        n.path_mut("a.b").set("e", "x");
        assert_eq!(n.at("a.b.c.d"), Some(&Node::Int(1)));
        assert_eq!(n.at("a.b.e").and_then(Node::as_str), Some("x"));
        n.set("a", false);
        assert_eq!(n.at("a.b"), None);
    }
}
