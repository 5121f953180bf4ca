//! The dotenv step: reading dotenv files exactly as GitLab or Docker Compose do, checking them
//! against GitLab's `artifacts:reports:dotenv` rules and limits, and writing GitLab-valid ones.
//!
//! Plain-Rust core, unit-tested natively (`cargo test -p kstep-dotenv`):
//! - [`text`]: bytes to text (BOM, UTF-16/32, invalid UTF-8 with its position), positions;
//! - [`gitlab`]: GitLab's parser (`Ci::ParseDotenvArtifactService`), its limits, `set` and rendering;
//! - [`compose`]: compose-go's `dotenv` parser, with [`template`], its interpolation engine.
//!
//! `wit` is the thin WIT glue that exports all of it as the `kstep:steps/dotenv` interface.

pub mod compose;
#[cfg(test)]
mod compose_vectors;
pub mod gitlab;
#[cfg(test)]
mod gitlab_vectors;
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
#[derive(Debug, Default)]
pub(crate) struct OrderedVars {
    entries: Vec<Entry>,
    index: std::collections::HashMap<String, usize>,
}

impl OrderedVars {
    /// Sets `key`, returning the line of the previous definition if there was one.
    pub(crate) fn set(&mut self, key: &str, value: String, line: u32) -> Option<u32> {
        match self.index.get(key) {
            Some(&i) => {
                let entry = &mut self.entries[i];
                let previous = entry.line;
                entry.value = value;
                entry.line = line;
                Some(previous)
            }
            None => {
                self.index.insert(key.to_owned(), self.entries.len());
                self.entries.push(Entry {
                    key: key.to_owned(),
                    value,
                    line,
                });
                None
            }
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.index.get(key).map(|&i| self.entries[i].value.as_str())
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
