//! GitLab's `artifacts:reports:dotenv` rules, as implemented by `Ci::ParseDotenvArtifactService`
//! (gitlab `app/services/ci/parse_dotenv_artifact_service.rb`) and the key validations of
//! `Ci::HasVariable` (`app/models/concerns/ci/has_variable.rb`).
//!
//! What GitLab does, in order, and what this module reproduces:
//! 1. `artifact.file.size < dotenv_size` (default 5120), else
//!    `Dotenv Artifact Too Big. Maximum Allowable Size: 5120`;
//! 2. the blob is converted to UTF-8 and one BOM is stripped ([`crate::text::decode_gitlab`]);
//! 3. `blob.each_line` (split AFTER each `\n`; a bare `\r` is not a line break), each line
//!    scanned with `/^(.*?)=(.*)$/`: key = text before the FIRST `=`, value = the rest, both
//!    `strip`ped (Ruby strips `\0 \t \n \v \f \r` and space, nothing else). A line without `=`
//!    raises `Invalid Format` — that includes blank lines, comments and the empty "line" after a
//!    trailing `\n\n`;
//! 4. `variables[key] = …`: the last definition wins, at the position of the first one;
//! 5. more than `dotenv_variables` (default 20) distinct keys:
//!    `Dotenv files cannot have more than 20 variables`;
//! 6. `bulk_insert!` validates each record in that order: the key must be present, at most 255
//!    characters and match `/\A[a-zA-Z0-9_]+\z/`, else `Validation failed: Key …`.
//!
//! Any failure rejects the whole upload (HTTP 400). GitLab stops at the first; kstep reports
//! every problem with its line, and also which message GitLab would give ([`Report`]).
//!
//! Values are taken verbatim: quotes stay, `#` is text, no escapes, no `${}` expansion.

use crate::text::{self, Encoding};
use crate::{Entry, OrderedVars, Parsed, Problem, to_u32};

/// GitLab's default `dotenv_size` plan limit: a report must be SMALLER than this many bytes.
pub const DEFAULT_MAX_BYTES: u64 = 5120;
/// GitLab's default `dotenv_variables` plan limit on self-managed instances.
pub const DEFAULT_MAX_VARS: u32 = 20;
/// The longest key `Ci::HasVariable` accepts, in characters.
pub const MAX_KEY_CHARS: usize = 255;

/// The limits of a GitLab instance (its plan limits `dotenv_size` and `dotenv_variables`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A report must be strictly smaller than this many bytes.
    pub max_bytes: u64,
    /// At most this many distinct variables.
    pub max_vars: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            max_vars: DEFAULT_MAX_VARS,
        }
    }
}

/// Ruby's `String#strip` set (Ruby ≥ 3.1 strips NUL at both ends): ASCII whitespace and NUL.
fn is_ruby_space(c: char) -> bool {
    matches!(c, '\0' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

fn ruby_strip(s: &str) -> &str {
    s.trim_matches(is_ruby_space)
}

/// GitLab's validation messages for `key`, in ActiveModel's order (presence, length, format).
pub fn key_errors(key: &str) -> Vec<&'static str> {
    let mut errors = Vec::new();
    // ActiveSupport's blank?: empty or only Unicode whitespace.
    if key.chars().all(char::is_whitespace) {
        errors.push("Key can't be blank");
    }
    if key.chars().count() > MAX_KEY_CHARS {
        errors.push("Key is too long (maximum is 255 characters)");
    }
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        errors.push("Key can contain only letters, digits and '_'.");
    }
    errors
}

/// GitLab's `RecordInvalid` message for `key`, if it is invalid.
pub fn validation_message(key: &str) -> Option<String> {
    let errors = key_errors(key);
    (!errors.is_empty()).then(|| format!("Validation failed: {}", errors.join(", ")))
}

/// Why GitLab cannot carry `value` in a dotenv report unchanged, if it cannot.
pub fn value_problem(value: &str) -> Option<&'static str> {
    if value.contains('\n') {
        Some("contains a newline: a GitLab dotenv value is one line")
    } else if value.starts_with(is_ruby_space) || value.ends_with(is_ruby_space) {
        Some("starts or ends with whitespace (or NUL), which GitLab strips")
    } else if value.contains('\0') {
        Some("contains a NUL byte, which no job's environment can hold")
    } else {
        None
    }
}

/// Whether a variable name suggests a credential (dotenv reports are downloadable artifacts).
pub fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    const WORDS: [&str; 8] = [
        "TOKEN",
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "CREDENTIAL",
        "PRIVATE",
        "APIKEY",
        "API_KEY",
    ];
    WORDS.iter().any(|w| k.contains(w)) || k == "KEY" || k.ends_with("_KEY")
}

fn secret_warning(key: &str) -> String {
    format!(
        "{key} looks like a secret: dotenv reports are artifacts anyone with access to the job can \
         download; pass secrets as masked CI/CD variables instead"
    )
}

/// One line as GitLab's regexp sees it.
#[derive(Debug)]
struct Line<'a> {
    number: u32,
    /// The line without its `\n`.
    content: &'a str,
    /// `None` when the line has no `=` (`Invalid Format`).
    var: Option<Var<'a>>,
}

#[derive(Debug)]
struct Var<'a> {
    key: &'a str,
    value: &'a str,
    key_column: u32,
    value_column: u32,
}

fn scan(text: &str) -> Vec<Line<'_>> {
    text.split_inclusive('\n')
        .enumerate()
        .map(|(index, raw)| {
            let content = raw.strip_suffix('\n').unwrap_or(raw);
            let var = content.split_once('=').map(|(before, after)| {
                let key = ruby_strip(before);
                let value = ruby_strip(after);
                let lead =
                    |whole: &str| whole.len() - whole.trim_start_matches(is_ruby_space).len();
                let key_lead = lead(before);
                let value_lead = lead(after);
                Var {
                    key,
                    value,
                    // Strip characters are ASCII: byte counts are character counts here.
                    key_column: to_u32(key_lead + 1),
                    value_column: to_u32(before.chars().count() + 2 + value_lead),
                }
            });
            Line {
                number: to_u32(index + 1),
                content,
                var,
            }
        })
        .collect()
}

fn invalid_format(line: &Line<'_>) -> Problem {
    let trimmed = line.content.trim();
    let hint = if trimmed.is_empty() {
        "an empty line (also the one after a trailing blank line) is not allowed"
    } else if trimmed.starts_with('#') {
        "GitLab's dotenv has no comments"
    } else {
        "every line must be KEY=VALUE"
    };
    Problem::error(
        line.number,
        1,
        format!("no \"=\" on this line: {hint} (GitLab: \"Invalid Format\")"),
    )
}

fn key_problem(line: &Line<'_>, var: &Var<'_>, message: &str) -> Problem {
    let hint = if var.key.starts_with("export ") || var.key.starts_with("export\t") {
        " (`export` is not allowed)"
    } else {
        ""
    };
    Problem::error(
        line.number,
        var.key_column,
        format!("invalid variable name{hint} (GitLab: \"{message}\")"),
    )
}

fn value_warnings(line: &Line<'_>, var: &Var<'_>, out: &mut Vec<Problem>) {
    let v = var.value;
    // Every warning here is about the value: at its column, prefixed with the key.
    let mut warn = |what: &str| {
        out.push(Problem::warning(
            line.number,
            var.value_column,
            format!("{}: {what}", var.key),
        ));
    };
    let quoted = v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')));
    if quoted {
        warn("the quotes are part of the value (GitLab does not remove them)");
    }
    if v.contains(" #") || v.contains("\t#") {
        warn("\"#\" does not start a comment: it and what follows are part of the value");
    }
    if v.contains('\0') {
        warn("the value contains a NUL byte, which no job's environment can hold");
    }
}

/// Parses a dotenv report exactly as GitLab does (encoding, lines, keys), without the size and
/// count limits (see [`check`]). Every problem is returned, not only the first.
///
/// # Errors
/// Every rejected line (and the first byte that is not UTF-8, if any).
pub fn parse(bytes: &[u8]) -> Result<Parsed, Vec<Problem>> {
    let decoded = text::decode_gitlab(bytes).map_err(|p| vec![p])?;
    let analysis = analyse(&decoded.text);
    if analysis.errors.is_empty() {
        Ok(Parsed {
            entries: analysis.vars.into_entries(),
            warnings: analysis.warnings,
        })
    } else {
        Err(analysis.errors)
    }
}

struct Analysis {
    vars: OrderedVars,
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
    /// GitLab's message for the first line without `=`.
    first_invalid_format: bool,
    /// The line of the first definition of each distinct key, in order.
    first_lines: Vec<u32>,
}

fn analyse(text: &str) -> Analysis {
    let mut vars = OrderedVars::default();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut first_invalid_format = false;
    let mut first_lines = Vec::new();
    for line in scan(text) {
        let Some(var) = &line.var else {
            first_invalid_format = true;
            errors.push(invalid_format(&line));
            continue;
        };
        if let Some(message) = validation_message(var.key) {
            errors.push(key_problem(&line, var, &message));
        }
        value_warnings(&line, var, &mut warnings);
        match vars.set(var.key, var.value.to_owned(), line.number) {
            Some(previous) => warnings.push(Problem::warning(
                line.number,
                var.key_column,
                format!(
                    "{} is already defined on line {previous}; GitLab keeps this later value",
                    var.key
                ),
            )),
            None => first_lines.push(line.number),
        }
    }
    Analysis {
        vars,
        errors,
        warnings,
        first_invalid_format,
        first_lines,
    }
}

/// Whether GitLab accepts a file as a dotenv report, and every problem in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Errors and warnings, in line order (file-level problems first).
    pub problems: Vec<Problem>,
    /// Distinct variables (0 when the file could not be read as text).
    pub variables: u32,
    /// The file's size in bytes.
    pub bytes: u64,
    /// The encoding it was read in, when it could be.
    pub encoding: Option<Encoding>,
    /// The message GitLab would answer the upload with (it stops at the first failure), when
    /// GitLab would refuse it.
    pub gitlab_message: Option<String>,
}

impl Report {
    /// Whether GitLab (and kstep) accept the file.
    pub fn accepted(&self) -> bool {
        !self.problems.iter().any(Problem::is_error)
    }
}

/// Checks `bytes` against everything GitLab checks on upload, with `limits`.
pub fn check(bytes: &[u8], limits: Limits) -> Report {
    let size = bytes.len() as u64;
    let mut problems = Vec::new();
    let mut gitlab_message = None;
    let too_big = size >= limits.max_bytes;
    let big_message = format!(
        "Dotenv Artifact Too Big. Maximum Allowable Size: {}",
        limits.max_bytes
    );
    if too_big {
        gitlab_message = Some(big_message.clone());
    }
    let decoded = match text::decode_gitlab(bytes) {
        Ok(decoded) => decoded,
        Err(problem) => {
            if too_big {
                problems.push(size_problem(size, limits, None, &big_message));
            }
            problems.push(problem);
            return Report {
                problems,
                variables: 0,
                bytes: size,
                encoding: None,
                gitlab_message,
            };
        }
    };
    let analysis = analyse(&decoded.text);
    if too_big {
        // Point at the line where the file crosses the limit (when the bytes are the text).
        let at = match decoded.encoding {
            Encoding::Utf8 => Some(limits.max_bytes.saturating_sub(1)),
            Encoding::Utf8Bom => Some(limits.max_bytes.saturating_sub(4)),
            _ => None,
        }
        .and_then(|offset| usize::try_from(offset).ok())
        .map(|offset| {
            let mut offset = offset.min(decoded.text.len());
            while !decoded.text.is_char_boundary(offset) {
                offset -= 1;
            }
            text::position(&decoded.text, offset)
        });
        problems.push(size_problem(size, limits, at, &big_message));
    }
    if gitlab_message.is_none() && analysis.first_invalid_format {
        gitlab_message = Some("Invalid Format".into());
    }
    problems.extend(analysis.errors);
    let count = analysis.vars.len();
    if u64::try_from(count).unwrap_or(u64::MAX) > u64::from(limits.max_vars) {
        let message = format!(
            "Dotenv files cannot have more than {} variables",
            limits.max_vars
        );
        let line = usize::try_from(limits.max_vars)
            .ok()
            .and_then(|i| analysis.first_lines.get(i))
            .copied()
            .unwrap_or(0);
        problems.push(Problem::error(
            line,
            u32::from(line > 0),
            format!(
                "variable number {} of {count}: GitLab accepts at most {} (GitLab: \"{message}\")",
                u64::from(limits.max_vars) + 1,
                limits.max_vars
            ),
        ));
        if gitlab_message.is_none() {
            gitlab_message = Some(message);
        }
    }
    let entries = analysis.vars.into_entries();
    if gitlab_message.is_none() {
        // bulk_insert! validates the records in hash order: first definitions first.
        gitlab_message = entries.iter().find_map(|e| validation_message(&e.key));
    }
    problems.extend(analysis.warnings);
    for entry in &entries {
        if looks_secret(&entry.key) {
            problems.push(Problem::warning(entry.line, 1, secret_warning(&entry.key)));
        }
    }
    if !matches!(decoded.encoding, Encoding::Utf8 | Encoding::Utf8Bom) {
        problems.push(Problem::warning(
            0,
            0,
            format!(
                "the file is {}: GitLab converts it to UTF-8, most other tools do not",
                decoded.encoding.name()
            ),
        ));
    }
    problems.sort_by_key(|p| (p.line, p.column));
    Report {
        problems,
        variables: to_u32(entries.len()),
        bytes: size,
        encoding: Some(decoded.encoding),
        gitlab_message,
    }
}

fn size_problem(size: u64, limits: Limits, at: Option<(u32, u32)>, message: &str) -> Problem {
    let (line, column) = at.unwrap_or((0, 0));
    let where_ = if at.is_some() {
        "; the limit is crossed on this line"
    } else {
        ""
    };
    Problem::error(
        line,
        column,
        format!(
            "the file is {size} bytes: GitLab accepts a dotenv report smaller than {} bytes{where_} \
             (GitLab: \"{message}\")",
            limits.max_bytes
        ),
    )
}

/// What [`set`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOutcome {
    /// The new file, GitLab-valid, ending with one `\n`.
    pub text: String,
    /// Keys that were added at the end.
    pub added: Vec<String>,
    /// Keys whose definition was replaced in place.
    pub replaced: Vec<String>,
    /// Secret-looking names, a file that was converted from UTF-16…
    pub warnings: Vec<Problem>,
}

/// Adds or replaces `assignments` in `existing` (`None`: the file does not exist yet) so that
/// the result stays a valid GitLab dotenv report within `limits`.
///
/// A replaced key keeps the line of its first definition; later definitions of it are dropped;
/// new keys are appended in argument order (the last of repeated arguments wins); every other
/// line is kept byte for byte.
///
/// # Errors
/// Problems in the arguments (source `argument N`), in the existing file (with positions), or
/// with the result's size and variable count (line 0).
pub fn set(
    existing: Option<&[u8]>,
    assignments: &[(String, String)],
    limits: Limits,
) -> Result<SetOutcome, Vec<Problem>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for (i, (key, value)) in assignments.iter().enumerate() {
        let argument = |message: String| Problem {
            source: Some(format!("argument {}", i + 1)),
            ..Problem::error(0, 0, message)
        };
        if let Some(message) = validation_message(key) {
            errors.push(argument(format!(
                "{key:?}: GitLab refuses this name (GitLab: \"{message}\")"
            )));
        } else if let Some(reason) = value_problem(value) {
            errors.push(argument(format!("{key}: the value {reason}")));
        } else if looks_secret(key) {
            warnings.push(Problem {
                severity: crate::Severity::Warning,
                ..argument(secret_warning(key))
            });
        }
    }
    if assignments.is_empty() {
        errors.push(Problem::error(
            0,
            0,
            "nothing to set: give KEY=VALUE arguments",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let decoded = match existing {
        Some(bytes) => Some(text::decode_gitlab(bytes).map_err(|p| vec![p])?),
        None => None,
    };
    let text = decoded.as_ref().map_or("", |d| d.text.as_ref());
    let analysis = analyse(text);
    if !analysis.errors.is_empty() {
        return Err(analysis.errors);
    }
    if let Some(d) = decoded
        .as_ref()
        .filter(|d| !matches!(d.encoding, Encoding::Utf8 | Encoding::Utf8Bom))
    {
        warnings.push(Problem::warning(
            0,
            0,
            format!(
                "the file was {}; it is rewritten as UTF-8",
                d.encoding.name()
            ),
        ));
    }
    // The value each key ends with, in the order keys first appear among the arguments.
    let mut wanted = OrderedVars::default();
    for (key, value) in assignments {
        wanted.set(key, value.clone(), 0);
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut written = std::collections::HashSet::new();
    let mut replaced = Vec::new();
    for line in scan(text) {
        if let Some((var, value)) = line
            .var
            .as_ref()
            .and_then(|var| wanted.get(var.key).map(|value| (var, value)))
        {
            if written.insert(var.key.to_owned()) {
                out.push_str(&format!("{}={value}\n", var.key));
                replaced.push(var.key.to_owned());
            }
            continue;
        }
        out.push_str(line.content);
        out.push('\n');
    }
    let mut added = Vec::new();
    for entry in wanted.into_entries() {
        if !written.contains(&entry.key) {
            out.push_str(&format!("{}={}\n", entry.key, entry.value));
            added.push(entry.key);
        }
    }
    let report = check(out.as_bytes(), limits);
    let limit_errors: Vec<Problem> = report
        .problems
        .into_iter()
        .filter(Problem::is_error)
        .map(|p| Problem {
            line: 0,
            column: 0,
            message: format!("the result would break a limit: {}", p.message),
            ..p
        })
        .collect();
    if !limit_errors.is_empty() {
        return Err(limit_errors);
    }
    Ok(SetOutcome {
        text: out,
        added,
        replaced,
        warnings,
    })
}

/// Writes `entries` as a GitLab-valid dotenv file (`KEY=value` lines, in order).
///
/// # Errors
/// One problem per entry GitLab cannot carry unchanged, at the entry's line.
pub fn render(entries: &[Entry]) -> Result<String, Vec<Problem>> {
    let mut out = String::new();
    let mut errors = Vec::new();
    for entry in entries {
        if let Some(message) = validation_message(&entry.key) {
            errors.push(Problem::error(
                entry.line,
                1,
                format!(
                    "{:?}: GitLab refuses this name (GitLab: \"{message}\")",
                    entry.key
                ),
            ));
        } else if let Some(reason) = value_problem(&entry.value) {
            errors.push(Problem::error(
                entry.line,
                1,
                format!("{}: the value {reason}", entry.key),
            ));
        } else {
            out.push_str(&entry.key);
            out.push('=');
            out.push_str(&entry.value);
            out.push('\n');
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    //! Vectors from gitlab `spec/services/ci/parse_dotenv_artifact_service_spec.rb` (each test
    //! names its `context`), then the edge cases the spec leaves implicit.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn pairs(input: &[u8]) -> Vec<(String, String)> {
        parse(input)
            .unwrap()
            .entries
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    fn kv(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The GitLab message `check` predicts for `input` with the default limits.
    fn gitlab_says(input: &[u8]) -> Option<String> {
        check(input, Limits::default()).gitlab_message
    }

    #[test]
    fn spec_parses_the_artifact_fixture() {
        // spec/fixtures/build_artifacts/dotenv: "KEY1=VAR1\nKEY2=VAR2\n"
        assert_eq!(
            pairs(b"KEY1=VAR1\nKEY2=VAR2\n"),
            kv(&[("KEY1", "VAR1"), ("KEY2", "VAR2")])
        );
    }

    #[test]
    fn spec_duplicate_variables_latest_values_get_used() {
        let input = b"KEY1=VAR1\nKEY2=VAR2\nKEY2=VAR3\nKEY1=VAR4\n";
        // Ruby's hash keeps the first position: KEY1 stays first.
        assert_eq!(pairs(input), kv(&[("KEY1", "VAR4"), ("KEY2", "VAR3")]));
        let parsed = parse(input).unwrap();
        assert_eq!(parsed.entries[0].line, 4);
        assert_eq!(parsed.warnings.len(), 2);
    }

    #[test]
    fn spec_artifact_too_big() {
        let input = vec![b'A'; 10 * 1024];
        assert_eq!(
            gitlab_says(&input).as_deref(),
            Some("Dotenv Artifact Too Big. Maximum Allowable Size: 5120")
        );
        // The limit is exclusive: 5119 bytes pass, 5120 do not.
        let mut ok = b"K=".to_vec();
        ok.resize(5119, b'v');
        assert!(check(&ok, Limits::default()).accepted());
        ok.push(b'v');
        let report = check(&ok, Limits::default());
        assert!(!report.accepted());
        assert_eq!(report.problems[0].line, 1);
    }

    #[test]
    fn spec_white_space_trails_the_key() {
        assert_eq!(pairs(b"KEY1 =VAR1"), kv(&[("KEY1", "VAR1")]));
    }

    #[test]
    fn spec_multiple_key_value_pairs_in_one_line() {
        // Current spec: the first `=` splits.
        assert_eq!(
            pairs(b"KEY=VARCONTAINING=EQLS"),
            kv(&[("KEY", "VARCONTAINING=EQLS")])
        );
        // Older spec ('KEY1=VAR1KEY2=VAR1') is the same rule: the value is `VAR1KEY2=VAR1`.
        assert_eq!(
            pairs(b"KEY1=VAR1KEY2=VAR1"),
            kv(&[("KEY1", "VAR1KEY2=VAR1")])
        );
    }

    #[test]
    fn spec_key_contains_unicode() {
        assert_eq!(
            gitlab_says("🛹=skateboard".as_bytes()).as_deref(),
            Some("Validation failed: Key can contain only letters, digits and '_'.")
        );
    }

    #[test]
    fn spec_value_contains_unicode() {
        assert_eq!(
            pairs("skateboard=🛹".as_bytes()),
            kv(&[("skateboard", "🛹")])
        );
    }

    #[test]
    fn spec_key_contains_a_space() {
        assert_eq!(
            gitlab_says(b"K E Y 1=VAR1").as_deref(),
            Some("Validation failed: Key can contain only letters, digits and '_'.")
        );
    }

    #[test]
    fn spec_value_contains_a_space() {
        assert_eq!(pairs(b"KEY1=V A R 1"), kv(&[("KEY1", "V A R 1")]));
    }

    #[test]
    fn spec_quotes_are_kept() {
        assert_eq!(pairs(b"KEY1=\"VAR1\""), kv(&[("KEY1", "\"VAR1\"")]));
        assert_eq!(pairs(b"KEY1='VAR1'"), kv(&[("KEY1", "'VAR1'")]));
        assert_eq!(pairs(b"KEY1=\"  VAR1  \""), kv(&[("KEY1", "\"  VAR1  \"")]));
        assert_eq!(parse(b"KEY1='VAR1'").unwrap().warnings.len(), 1);
    }

    #[test]
    fn spec_key_is_missing() {
        let message = gitlab_says(b"=VAR1").unwrap();
        assert!(message.contains("Key can't be blank"), "{message}");
        assert_eq!(
            message,
            "Validation failed: Key can't be blank, Key can contain only letters, digits and '_'."
        );
    }

    #[test]
    fn spec_value_is_missing() {
        assert_eq!(pairs(b"KEY1="), kv(&[("KEY1", "")]));
    }

    #[test]
    fn spec_not_dotenv_format() {
        assert_eq!(
            gitlab_says(b"{ 'KEY1': 'VAR1' }").as_deref(),
            Some("Invalid Format")
        );
    }

    #[test]
    fn spec_blob_encoded_in_utf16_le() {
        // spec/fixtures/build_artifacts/dotenv_utf16_le.txt: PowerShell output, BOM + CRLF.
        let mut blob = vec![0xFF, 0xFE];
        blob.extend(
            "MY_ENV_VAR=true\r\nTEST2=false\r\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        assert_eq!(
            pairs(&blob),
            kv(&[("MY_ENV_VAR", "true"), ("TEST2", "false")])
        );
    }

    #[test]
    fn spec_more_than_the_limit_of_variables() {
        let mut blob = String::new();
        for i in 0..=DEFAULT_MAX_VARS {
            blob.push_str(&format!("KEY{i}=VAR{i}\n"));
        }
        let report = check(blob.as_bytes(), Limits::default());
        assert_eq!(
            report.gitlab_message.as_deref(),
            Some("Dotenv files cannot have more than 20 variables")
        );
        assert_eq!(report.problems[0].line, 21);
        // Duplicates count once.
        let mut blob = String::new();
        for i in 0..30 {
            blob.push_str(&format!("KEY{}=VAR{i}\n", i % 20));
        }
        assert!(check(blob.as_bytes(), Limits::default()).accepted());
    }

    #[test]
    fn spec_no_variable_expansion() {
        assert_eq!(
            pairs(b"KEY1=VAR1\nKEY2=${KEY1}_Test\n"),
            kv(&[("KEY1", "VAR1"), ("KEY2", "${KEY1}_Test")])
        );
    }

    #[test]
    fn spec_empty_line() {
        assert_eq!(
            gitlab_says(b"KEY1=VAR1\n\nKEY2=VAR2\n").as_deref(),
            Some("Invalid Format")
        );
    }

    #[test]
    fn spec_comment_is_part_of_the_value() {
        assert_eq!(
            pairs(b"KEY1=VAR1         # This is variable\n"),
            kv(&[("KEY1", "VAR1         # This is variable")])
        );
    }

    #[test]
    fn lines_and_whitespace() {
        // Empty file: valid, no variables. A lone newline is one empty line: invalid.
        assert_eq!(pairs(b""), kv(&[]));
        assert!(parse(b"\n").is_err());
        // A trailing blank line fails the whole upload; every bad line is reported.
        let errors = parse(b"# c\nA=b\n\n").unwrap_err();
        assert_eq!(
            errors.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![1, 3]
        );
        // CRLF: `\r` is stripped with the value; a bare `\r` is not a line break.
        assert_eq!(pairs(b"A=b\r\nC=d\r\n"), kv(&[("A", "b"), ("C", "d")]));
        assert_eq!(pairs(b"A=b\rC=d\n"), kv(&[("A", "b\rC=d")]));
        // Ruby strips NUL, \v and \f too, but not Unicode spaces.
        assert_eq!(pairs(b"\0A\x0b=\x0c v \0"), kv(&[("A", "v")]));
        assert_eq!(
            pairs("A=\u{a0}v\u{a0}".as_bytes()),
            kv(&[("A", "\u{a0}v\u{a0}")])
        );
        // A NUL inside a value is kept (with a warning).
        let parsed = parse(b"A=x\0y").unwrap();
        assert_eq!(parsed.entries[0].value, "x\0y");
        assert_eq!(parsed.warnings.len(), 1);
    }

    #[test]
    fn keys() {
        assert_eq!(pairs(b"1A=b\n_=c"), kv(&[("1A", "b"), ("_", "c")]));
        let long = "K".repeat(255);
        assert_eq!(pairs(format!("{long}=v").as_bytes())[0].0, long);
        assert_eq!(
            validation_message(&"K".repeat(256)).as_deref(),
            Some("Validation failed: Key is too long (maximum is 255 characters)")
        );
        assert_eq!(
            validation_message(&"-".repeat(256)).as_deref(),
            Some(
                "Validation failed: Key is too long (maximum is 255 characters), Key can contain \
                 only letters, digits and '_'."
            )
        );
        assert_eq!(
            validation_message("\u{a0}").as_deref(),
            Some(
                "Validation failed: Key can't be blank, Key can contain only letters, digits and '_'."
            )
        );
        let errors = parse(b"export A=b\nA.B=c\n").unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(
            errors[0].message.contains("export"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn columns_point_at_the_key() {
        let errors = parse(b"  K-1 = v").unwrap_err();
        assert_eq!((errors[0].line, errors[0].column), (1, 3));
        let parsed = parse(b"K =  \"v\"").unwrap();
        assert_eq!(parsed.warnings[0].column, 6);
    }

    #[test]
    fn gitlab_message_follows_gitlab_order() {
        // Invalid Format beats the variable count, which beats key validation.
        let mut blob = String::from("bad-key=1\n");
        for i in 0..25 {
            blob.push_str(&format!("K{i}=v\n"));
        }
        assert_eq!(
            gitlab_says(blob.as_bytes()).as_deref(),
            Some("Dotenv files cannot have more than 20 variables")
        );
        blob.push('\n');
        assert_eq!(
            gitlab_says(blob.as_bytes()).as_deref(),
            Some("Invalid Format")
        );
        let report = check(blob.as_bytes(), Limits::default());
        // bad-key, the 21st variable and the blank line: all three listed.
        assert_eq!(
            report.problems.iter().filter(|p| p.is_error()).count(),
            3,
            "{report:?}"
        );
    }

    #[test]
    fn not_utf8_is_refused_with_position() {
        let errors = parse(b"A=1\nB=\xC3\x28").unwrap_err();
        assert_eq!((errors[0].line, errors[0].column), (2, 3));
        assert!(errors[0].message.contains("offset 6"));
    }

    #[test]
    fn a_mebibyte_is_checked_in_linear_time() {
        let text: String = (0..40_000)
            .map(|i| format!("KEY_{i}=value {i}\n"))
            .collect();
        let started = std::time::Instant::now();
        let report = check(text.as_bytes(), Limits::default());
        assert_eq!(report.variables, 40_000);
        assert_eq!(report.problems.iter().filter(|p| p.is_error()).count(), 2);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn set_adds_replaces_and_keeps_other_lines() {
        let out = set(
            Some(b"A=1\nB = 2\nA=3\nC=x"),
            &kv(&[("A", "new"), ("D", "4"), ("D", "5")]),
            Limits::default(),
        )
        .unwrap();
        assert_eq!(out.text, "A=new\nB = 2\nC=x\nD=5\n");
        assert_eq!(out.replaced, vec!["A"]);
        assert_eq!(out.added, vec!["D"]);
        let created = set(
            None,
            &kv(&[("IMAGE", "reg:5000/app@sha256:ab")]),
            Limits::default(),
        )
        .unwrap();
        assert_eq!(created.text, "IMAGE=reg:5000/app@sha256:ab\n");
        assert!(parse(created.text.as_bytes()).is_ok());
    }

    #[test]
    fn set_refuses_what_gitlab_cannot_carry() {
        for (key, value) in [
            ("A", "line1\nline2"),
            ("A", " padded"),
            ("A", "tab\t"),
            ("A", "nul\0"),
            ("bad-key", "v"),
            ("", "v"),
        ] {
            let errors = set(None, &kv(&[(key, value)]), Limits::default()).unwrap_err();
            assert_eq!(errors[0].source.as_deref(), Some("argument 1"));
            assert!(
                !errors[0].message.contains(value) || value == "v",
                "{errors:?}"
            );
        }
        // The existing file must be valid first.
        let errors = set(Some(b"A=1\n\n"), &kv(&[("B", "2")]), Limits::default()).unwrap_err();
        assert_eq!(errors[0].line, 2);
        // The result must stay within the limits.
        let limits = Limits {
            max_bytes: 5120,
            max_vars: 1,
        };
        assert!(set(Some(b"A=1\n"), &kv(&[("B", "2")]), limits).is_err());
        assert!(set(Some(b"A=1\n"), &kv(&[("A", "2")]), limits).is_ok());
        let big = "x".repeat(6000);
        assert!(set(None, &kv(&[("A", &big)]), Limits::default()).is_err());
        // Secret-looking names are accepted with a warning.
        let out = set(None, &kv(&[("DEPLOY_TOKEN", "x")]), Limits::default()).unwrap();
        assert_eq!(out.warnings.len(), 1);
    }

    #[test]
    fn render_round_trips() {
        let entries = parse(b"B=2\nA=\"q\" # c\n").unwrap().entries;
        let text = render(&entries).unwrap();
        assert_eq!(text, "B=2\nA=\"q\" # c\n");
        let bad = [Entry {
            key: "a.b".into(),
            value: "x\ny".into(),
            line: 7,
        }];
        assert_eq!(render(&bad).unwrap_err()[0].line, 7);
        assert_eq!(render(&[]).unwrap(), "");
    }
}
