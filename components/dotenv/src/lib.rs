//! The dotenv step: reading dotenv files exactly as GitLab or Docker Compose do, checking them
//! against GitLab's `artifacts:reports:dotenv` rules and limits, and writing GitLab-valid ones.
//!
//! Plain-Rust core, unit-tested natively (`cargo test -p kstep-dotenv`):
//! - [`text`]: bytes to text (BOM, UTF-16/32, invalid UTF-8 with its position), positions;
//! - [`gitlab`]: GitLab's parser (`Ci::ParseDotenvArtifactService`), its limits, `set` and rendering;
//! - [`compose`]: compose-go's `dotenv` parser, with [`template`], its interpolation engine.
//!
//! `wit` is the thin WIT glue that exports all of it as the `kstep:builtin/dotenv` interface.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

pub mod compose;
pub mod gitlab;
mod go_unicode;
pub mod template;
pub mod text;

// The WIT glue exists only in the wasm32-wasip2 build; native builds are the core, for tests.
#[cfg(target_arch = "wasm32")]
mod wit;

/// How serious a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The file (or argument) is refused.
    Error,
    /// Accepted, but probably not what the author meant.
    Warning,
}

/// One problem found in the input, with its 1-based position (0 when it has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// 1-based line; 0 for problems about the whole input.
    pub line: u32,
    /// 1-based column, counted in characters; 0 when unknown.
    pub column: u32,
    /// What is wrong. Never contains a variable's value.
    pub message: String,
    /// What the problem is about when it is not the file (e.g. `argument 2`).
    pub source: Option<String>,
}

impl Problem {
    /// An error at `line`:`column`.
    pub fn error(line: u32, column: u32, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            line,
            column,
            message: message.into(),
            source: None,
        }
    }

    /// A warning at `line`:`column`.
    pub fn warning(line: u32, column: u32, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(line, column, message)
        }
    }

    /// Whether this is an error (as opposed to a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// One variable, with the 1-based line it was (last) defined on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name.
    pub key: String,
    /// The value, after the flavor's processing.
    pub value: String,
    /// The line of the definition that won.
    pub line: u32,
}

/// What a successful parse returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The variables, in the order of their FIRST definition; a redefinition replaces the value
    /// (and the line) in place, as GitLab's Ruby hash does.
    pub entries: Vec<Entry>,
    /// Things accepted that probably surprise the author.
    pub warnings: Vec<Problem>,
}

/// Ordered variables where a redefinition keeps the first position and takes the new value.
///
/// Indexed by a 64-bit hash of the key (FNV-1a: no per-process seed, no allocation), with the
/// rare collisions in a second map: the key is stored once, in its entry. A 1 MiB file is tens of
/// thousands of keys, and this is the parsers' hottest path.
#[derive(Debug)]
pub(crate) struct OrderedVars {
    entries: Vec<Entry>,
    by_hash: HashMap<u64, usize, BuildHasherDefault<IdentityHasher>>,
    collisions: HashMap<String, usize>,
    hash: fn(&str) -> u64,
}

impl Default for OrderedVars {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            by_hash: HashMap::default(),
            collisions: HashMap::new(),
            hash: fnv1a,
        }
    }
}

fn fnv1a(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The keys of `by_hash` are already hashes.
#[derive(Debug, Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl OrderedVars {
    fn find(&self, key: &str, hash: u64) -> Option<usize> {
        match self.by_hash.get(&hash) {
            Some(&i) if self.entries[i].key == key => Some(i),
            Some(_) => self.collisions.get(key).copied(),
            None => None,
        }
    }

    /// Sets `key`, returning the line of the previous definition if there was one.
    pub(crate) fn set(&mut self, key: &str, value: String, line: u32) -> Option<u32> {
        let hash = (self.hash)(key);
        if let Some(i) = self.find(key, hash) {
            let entry = &mut self.entries[i];
            let previous = entry.line;
            entry.value = value;
            entry.line = line;
            return Some(previous);
        }
        let i = self.entries.len();
        match self.by_hash.entry(hash) {
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collisions.insert(key.to_owned(), i);
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
        self.entries.push(Entry {
            key: key.to_owned(),
            value,
            line,
        });
        None
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.find(key, (self.hash)(key))
            .map(|i| self.entries[i].value.as_str())
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn into_entries(self) -> Vec<Entry> {
        self.entries
    }
}

/// Saturating conversion for line and column numbers.
pub(crate) fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn ordered_vars_survive_hash_collisions() {
        // A hash with many collisions drives every path of the index.
        let mut vars = OrderedVars {
            hash: |k| (k.len() % 2) as u64,
            ..OrderedVars::default()
        };
        for (i, key) in ["a", "b", "cc", "d", "ee", "b", "a"].iter().enumerate() {
            vars.set(key, i.to_string(), 0);
        }
        assert_eq!(vars.get("a"), Some("6"));
        assert_eq!(vars.get("b"), Some("5"));
        assert_eq!(vars.get("ee"), Some("4"));
        assert_eq!(vars.get("zz"), None);
        let keys: Vec<String> = vars.into_entries().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["a", "b", "cc", "d", "ee"]);
        assert_ne!(fnv1a("a"), fnv1a("b"));
    }
}
