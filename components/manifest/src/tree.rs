//! The document tree: JSON-shaped values that remember where they came from.
//!
//! Every node keeps its source position so that later stages (image overrides, apiVersion
//! upgrades, identity checks) report `file:line:column`. Mappings keep their source order.
//! The tree serializes (serde) to the canonical JSON the host applies and to YAML.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::diag::Pos;
use crate::scalar::json_float;

/// A value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// A finite float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping with string keys, in source order.
    Map(Map),
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it starts in its source (for a mapping or sequence: where its first entry starts).
    pub pos: Pos,
    /// Whether a placeholder produced (part of) this scalar.
    pub substituted: bool,
    /// A placeholder here could not be expanded (already reported): the value is a stand-in,
    /// and checks of it stay silent rather than report the consequence of that one problem.
    pub unresolved: bool,
}

impl Node {
    /// A node at `pos`.
    pub fn new(value: Value, pos: Pos) -> Self {
        Self {
            value,
            pos,
            substituted: false,
            unresolved: false,
        }
    }

    /// A string node at `pos`.
    pub fn str(text: impl Into<String>, pos: Pos) -> Self {
        Self::new(Value::Str(text.into()), pos)
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The mapping, if this is one.
    pub fn as_map(&self) -> Option<&Map> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The mapping, mutably, if this is one.
    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The sequence, mutably, if this is one.
    pub fn as_seq_mut(&mut self) -> Option<&mut Vec<Node>> {
        match &mut self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The node at `path` (mapping keys), if every step exists.
    pub fn get_path(&self, path: &[&str]) -> Option<&Node> {
        path.iter()
            .try_fold(self, |node, key| node.as_map()?.get(key))
    }

    /// The node at `path`, mutably.
    pub fn get_path_mut(&mut self, path: &[&str]) -> Option<&mut Node> {
        let mut node = self;
        for key in path {
            node = node.as_map_mut()?.get_mut(key)?;
        }
        Some(node)
    }

    /// The string at `path`, if there is one.
    pub fn str_at(&self, path: &[&str]) -> Option<&str> {
        self.get_path(path)?.as_str()
    }

    /// How many nodes this subtree holds (for the alias expansion budget).
    pub fn size(&self) -> usize {
        1 + match &self.value {
            Value::Seq(items) => items.iter().map(Node::size).sum(),
            Value::Map(m) => m.entries.iter().map(|e| e.value.size()).sum(),
            _ => 0,
        }
    }

    /// A short description of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }
}

/// One mapping entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// Where the key was written.
    pub key_pos: Pos,
    /// The value.
    pub value: Node,
}

/// A mapping: string keys in source order (manifests keep the author's order on output).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    /// The entries, keys unique.
    pub entries: Vec<Entry>,
}

impl Map {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    /// The value under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.entries
            .iter_mut()
            .find(|e| e.key == key)
            .map(|e| &mut e.value)
    }

    /// The entry under `key`.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.iter().any(|e| e.key == key)
    }

    /// Sets `key` (replacing its value in place, or appending).
    pub fn insert(&mut self, key: &str, value: Node) {
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(e) => e.value = value,
            None => self.entries.push(Entry {
                key: key.to_owned(),
                key_pos: value.pos,
                value,
            }),
        }
    }

    /// Sets `key` right after `after` (or appends when `after` is absent), for readable output.
    pub fn insert_after(&mut self, after: &str, key: &str, value: Node) {
        let at = self.position(after).map_or(self.entries.len(), |i| i + 1);
        self.insert_at(at, key, value);
    }

    /// Sets `key` right before `before` (or appends when `before` is absent).
    pub fn insert_before(&mut self, before: &str, key: &str, value: Node) {
        let at = self.position(before).unwrap_or(self.entries.len());
        self.insert_at(at, key, value);
    }

    /// Sets `key` as entry `index` (an existing `key` is replaced where it is instead).
    pub fn insert_at(&mut self, index: usize, key: &str, value: Node) {
        if self.contains(key) {
            self.insert(key, value);
            return;
        }
        self.entries.insert(
            index,
            Entry {
                key: key.to_owned(),
                key_pos: value.pos,
                value,
            },
        );
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.key == key)
    }

    /// Removes `key`, returning its entry.
    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        let i = self.position(key)?;
        Some(self.entries.remove(i))
    }

    /// Whether the mapping has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.value {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::UInt(u) => serializer.serialize_u64(*u),
            Value::Float(f) => serialize_float(*f, serializer),
            Value::Str(s) => serializer.serialize_str(s),
            Value::Seq(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(m) => {
                let mut map = serializer.serialize_map(Some(m.entries.len()))?;
                for e in &m.entries {
                    map.serialize_entry(&e.key, &e.value)?;
                }
                map.end()
            }
        }
    }
}

/// Integral floats are written as integers (`1e3` → `1000`), like kubectl writes them, so that
/// integer fields of the API accept them.
fn serialize_float<S: Serializer>(f: f64, serializer: S) -> Result<S::Ok, S::Error> {
    if f.fract() == 0.0
        && f.abs() < 9.0e15
        && let Ok(i) = json_float(f).parse::<i64>()
    {
        return serializer.serialize_i64(i);
    }
    serializer.serialize_f64(f)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn at(line: u32) -> Pos {
        Pos::new(line, 1)
    }

    #[test]
    fn serializes_in_source_order_with_go_numbers() {
        let mut m = Map::default();
        m.insert("z", Node::new(Value::Float(1000.0), at(1)));
        m.insert("a", Node::new(Value::Float(1.5), at(2)));
        m.insert_after(
            "z",
            "m",
            Node::new(Value::Seq(vec![Node::new(Value::Null, at(3))]), at(3)),
        );
        let node = Node::new(Value::Map(m), at(1));
        assert_eq!(
            serde_json::to_string(&node).unwrap(),
            r#"{"z":1000,"m":[null],"a":1.5}"#
        );
        assert_eq!(node.size(), 5);
        assert_eq!(
            node.get_path(&["m"]).map(Node::type_name),
            Some("a sequence")
        );
    }

    #[test]
    fn inserts_before_after_and_at() {
        let keys = |m: &Map| m.entries.iter().map(|e| e.key.clone()).collect::<Vec<_>>();
        let mut m = Map::default();
        m.insert("b", Node::str("1", at(1)));
        m.insert_before("b", "a", Node::str("2", at(2)));
        m.insert_before("absent", "d", Node::str("3", at(3)));
        m.insert_after("b", "c", Node::str("4", at(4)));
        m.insert_at(0, "first", Node::str("5", at(5)));
        assert_eq!(keys(&m), ["first", "a", "b", "c", "d"]);
        // An existing key keeps its place and takes the new value.
        m.insert_before("first", "c", Node::str("6", at(6)));
        assert_eq!(keys(&m), ["first", "a", "b", "c", "d"]);
        assert_eq!(m.get("c").and_then(Node::as_str), Some("6"));
    }
}
