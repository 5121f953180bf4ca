//! compose-go's interpolation (`template.Substitute`, compose-go v2
//! `template/template.go`), as the dotenv parser uses it on unquoted and double-quoted values.
//!
//! The engine is a regular expression, ``\$(?i:(?P<escaped>\$)|(?P<named>[_a-z][_a-z0-9]*)|
//! {(?:(?P<braced>[_a-z][_a-z0-9]*(?::?[-+?](.*))?)}|(?P<invalid>)))``, plus post-processing, and
//! its quirks are part of what users get, so they are reproduced:
//! - `$$` is a `$`; `$NAME`; `${NAME}`; `${NAME:-d}` / `${NAME-d}` (default when unset or empty /
//!   unset); `${NAME:?e}` / `${NAME?e}` (error); `${NAME:+a}` / `${NAME+a}` (alternative);
//! - a `$` followed by anything else is kept (`$1`, `$ `, `$}`); `${` not followed by a valid
//!   braced form is an error (`${}`, `${ A}`, `${A }`, `${A!}`);
//! - with an operator, `(.*)` is greedy up to the LAST `}` of the line; the match is then cut at
//!   the brace that closes the first `${` (counting `{`, and skipping the character after each
//!   `{`, exactly like `getFirstBraceClosingIndex`), and what follows is interpolated again;
//! - the operator is the one found first in the match; defaults, alternatives and error
//!   messages are interpolated only when used;
//! - names are ASCII letters, digits and `_`, case-insensitively, which in Go also admits the
//!   Kelvin sign and the long s.
//!
//! One deliberate limit: defaults nested more than [`MAX_DEPTH`] levels deep are refused
//! (compose-go would recurse on).

use std::fmt;

/// How deeply `${A:-${B:-…}}` may nest.
pub const MAX_DEPTH: usize = 64;

/// Where values come from.
pub trait Lookup {
    /// The value of `name`, if it is set (possibly empty).
    fn lookup(&self, name: &str) -> Option<&str>;
}

/// Why a value cannot be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// compose-go's `InvalidTemplateError`.
    Invalid,
    /// compose-go's `MissingRequiredError` (`${A:?reason}`).
    MissingRequired {
        /// The variable.
        variable: String,
        /// The interpolated message after `?`.
        reason: String,
    },
    /// Defaults nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid => f.write_str("Invalid template"),
            Self::MissingRequired { variable, reason } if reason.is_empty() => {
                write!(f, "required variable {variable} is missing a value")
            }
            Self::MissingRequired { variable, reason } => {
                write!(
                    f,
                    "required variable {variable} is missing a value: {reason}"
                )
            }
            Self::TooDeep => write!(f, "interpolation nested more than {MAX_DEPTH} levels deep"),
        }
    }
}

/// Interpolates `template`. Names that were looked up and found unset (compose-go logs "The
/// \"X\" variable is not set. Defaulting to a blank string.") are appended to `unset`.
///
/// # Errors
/// The first error, left to right.
pub fn substitute(
    template: &str,
    lookup: &dyn Lookup,
    unset: &mut Vec<String>,
) -> Result<String, Error> {
    Engine { lookup, unset }.substitute(template, 0)
}

struct Engine<'a> {
    lookup: &'a dyn Lookup,
    unset: &'a mut Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Escaped,
    /// `$NAME`: the name's byte range.
    Named(usize, usize),
    /// `${…}`: the byte range between `${` and the final `}`.
    Braced(usize, usize),
    Invalid,
}

#[derive(Debug, Clone, Copy)]
struct Match {
    end: usize,
    kind: Kind,
}

/// `(?i)[_a-z]` in Go: case folding adds U+017F (ſ) and U+212A (K).
fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic() || c == '\u{17f}' || c == '\u{212a}'
}

fn is_name_continue(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

fn name_end(t: &str, from: usize) -> usize {
    let mut k = from;
    for c in t[from..].chars() {
        if !is_name_continue(c) {
            break;
        }
        k += c.len_utf8();
    }
    k
}

/// The last `}` between `from` and the end of its line, remembered per line so that a line with
/// many templates is scanned once.
#[derive(Default)]
struct LineCache {
    valid_from: usize,
    line_end: usize,
    last_brace: Option<usize>,
    filled: bool,
}

impl LineCache {
    fn last_brace(&mut self, t: &str, from: usize) -> Option<usize> {
        if !(self.filled && from >= self.valid_from && from <= self.line_end) {
            let line_end = t[from..].find('\n').map_or(t.len(), |i| from + i);
            self.valid_from = from;
            self.line_end = line_end;
            self.last_brace = t[from..line_end].rfind('}').map(|i| from + i);
            self.filled = true;
        }
        self.last_brace.filter(|&b| b >= from)
    }
}

/// The pattern's match starting at byte `i` (where `t[i] == '$'`), if any.
fn match_at(t: &str, i: usize, cache: &mut LineCache) -> Option<Match> {
    let bytes = t.as_bytes();
    let j = i + 1;
    let c = t.get(j..)?.chars().next()?;
    if c == '$' {
        return Some(Match {
            end: j + 1,
            kind: Kind::Escaped,
        });
    }
    if is_name_start(c) {
        let end = name_end(t, j + c.len_utf8());
        return Some(Match {
            end,
            kind: Kind::Named(j, end),
        });
    }
    if c != '{' {
        return None;
    }
    let open = j + 1;
    if let Some(first) = t[open..].chars().next().filter(|&c| is_name_start(c)) {
        let k = name_end(t, open + first.len_utf8());
        let is_op = |b: Option<&u8>| matches!(b, Some(b'-' | b'+' | b'?'));
        // `(?::?[-+?](.*))?` prefers to match, and `:?` prefers to take the colon.
        let body = if bytes.get(k) == Some(&b':') && is_op(bytes.get(k + 1)) {
            Some(k + 2)
        } else if is_op(bytes.get(k)) {
            Some(k + 1)
        } else {
            None
        };
        if let Some(close) = body.and_then(|b| cache.last_brace(t, b)) {
            return Some(Match {
                end: close + 1,
                kind: Kind::Braced(open, close),
            });
        }
        if bytes.get(k) == Some(&b'}') {
            return Some(Match {
                end: k + 1,
                kind: Kind::Braced(open, k),
            });
        }
    }
    Some(Match {
        end: open,
        kind: Kind::Invalid,
    })
}

/// `getFirstBraceClosingIndex`, including its skip of the character after each `{`.
fn first_brace_closing_index(s: &[u8]) -> Option<usize> {
    let mut open = 0i64;
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'}' {
            open -= 1;
            if open == 0 {
                return Some(i);
            }
        }
        if s[i] == b'{' {
            open += 1;
            i += 1;
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    RequiredNotEmpty,
    Required,
    DefaultIfEmpty,
    Default,
    AltIfNotEmpty,
    Alt,
}

impl Op {
    const ALL: [(Op, &'static str); 6] = [
        (Op::RequiredNotEmpty, ":?"),
        (Op::Required, "?"),
        (Op::DefaultIfEmpty, ":-"),
        (Op::Default, "-"),
        (Op::AltIfNotEmpty, ":+"),
        (Op::Alt, "+"),
    ];

    fn sep(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(op, _)| *op == self)
            .map_or("", |(_, s)| s)
    }

    /// `getSubstitutionFunctionForTemplate`: the separator found earliest in `sub` (the first in
    /// the list when none is found, as Go's stable insertion sort leaves it). One pass: at a
    /// given index a two-character separator starts before the one-character one inside it.
    fn choose(sub: &str) -> Op {
        let bytes = sub.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let next = bytes.get(i + 1).copied();
            let op = match (b, next) {
                (b':', Some(b'?')) => Op::RequiredNotEmpty,
                (b':', Some(b'-')) => Op::DefaultIfEmpty,
                (b':', Some(b'+')) => Op::AltIfNotEmpty,
                (b'?', _) => Op::Required,
                (b'-', _) => Op::Default,
                (b'+', _) => Op::Alt,
                _ => continue,
            };
            return op;
        }
        Op::RequiredNotEmpty
    }
}

impl Engine<'_> {
    fn lookup_or_warn(&mut self, name: &str) -> String {
        match self.lookup.lookup(name) {
            Some(v) => v.to_owned(),
            None => {
                self.unset.push(name.to_owned());
                String::new()
            }
        }
    }

    fn substitute(&mut self, t: &str, depth: usize) -> Result<String, Error> {
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep);
        }
        let Some(first) = t.find('$') else {
            return Ok(t.to_owned());
        };
        let mut out = String::with_capacity(t.len());
        let mut cache = LineCache::default();
        let mut copied = 0;
        let mut pos = first;
        while let Some(found) = t[pos..].find('$') {
            let i = pos + found;
            let Some(m) = match_at(t, i, &mut cache) else {
                pos = i + 1;
                continue;
            };
            out.push_str(&t[copied..i]);
            let sub = &t[i..m.end];
            let op = Op::choose(sub);
            let (sub, rest_start) = match first_brace_closing_index(sub.as_bytes()) {
                Some(c) => (&sub[..=c], i + c + 1),
                None => (sub, m.end),
            };
            let kind =
                match_at(sub, 0, &mut LineCache::default()).map_or(Kind::Invalid, |m| m.kind);
            match kind {
                Kind::Escaped => out.push('$'),
                Kind::Named(a, b) => {
                    let value = self.lookup_or_warn(&sub[a..b]);
                    out.push_str(&value);
                }
                Kind::Braced(a, b) => {
                    let content = &sub[a..b];
                    if let Some(value) = self.apply(op, content, depth)? {
                        out.push_str(&value);
                        // compose-go interpolates what follows the closing brace separately;
                        // continuing the scan there gives the same result, without recursion.
                        copied = rest_start;
                        pos = rest_start;
                        continue;
                    }
                    let value = self.lookup_or_warn(content);
                    out.push_str(&value);
                }
                Kind::Invalid => return Err(Error::Invalid),
            }
            copied = m.end;
            pos = m.end;
        }
        out.push_str(&t[copied..]);
        Ok(out)
    }

    /// The substitution function for `op`; `None` when `content` does not contain its separator.
    fn apply(&mut self, op: Op, content: &str, depth: usize) -> Result<Option<String>, Error> {
        let Some((name, arg)) = content.split_once(op.sep()) else {
            return Ok(None);
        };
        let value = self.lookup.lookup(name).map(str::to_owned);
        let empty = value.as_deref().is_none_or(str::is_empty);
        Ok(Some(match op {
            Op::RequiredNotEmpty | Op::Required => {
                let missing = match op {
                    Op::RequiredNotEmpty => empty,
                    _ => value.is_none(),
                };
                if missing {
                    let reason = self.substitute(arg, depth + 1)?;
                    return Err(Error::MissingRequired {
                        variable: name.to_owned(),
                        reason,
                    });
                }
                value.unwrap_or_default()
            }
            Op::DefaultIfEmpty | Op::Default => {
                let use_default = match op {
                    Op::DefaultIfEmpty => empty,
                    _ => value.is_none(),
                };
                if use_default {
                    self.substitute(arg, depth + 1)?
                } else {
                    value.unwrap_or_default()
                }
            }
            Op::AltIfNotEmpty | Op::Alt => {
                let use_alt = match op {
                    Op::AltIfNotEmpty => !empty,
                    _ => value.is_some(),
                };
                if use_alt {
                    self.substitute(arg, depth + 1)?
                } else {
                    value.unwrap_or_default()
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    //! Vectors from compose-go v2 `template/template_test.go` (test names kept) and
    //! `dotenv/godotenv_var_expansion_test.go`.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashMap;

    use super::*;

    struct Map(HashMap<&'static str, &'static str>);

    impl Lookup for Map {
        fn lookup(&self, name: &str) -> Option<&str> {
            self.0.get(name).copied()
        }
    }

    fn defaults() -> Map {
        Map(HashMap::from([
            ("FOO", "first"),
            ("BAR", ""),
            ("JSON", r#"{"json":2}"#),
        ]))
    }

    fn sub(t: &str) -> Result<String, Error> {
        substitute(t, &defaults(), &mut Vec::new())
    }

    fn ok(t: &str) -> String {
        sub(t).unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    #[test]
    fn escaped_unescaped_and_no_match() {
        assert_eq!(ok("$${foo}"), "${foo}");
        assert_eq!(ok("foo"), "foo");
        for t in ["a $ string", "^REGEX$", "$}", "$"] {
            assert_eq!(ok(t), t);
        }
    }

    #[test]
    fn invalid() {
        for t in ["${", "${}", "${ }", "${ foo}", "${foo }", "${foo!}"] {
            assert_eq!(sub(t), Err(Error::Invalid), "{t}");
        }
    }

    #[test]
    fn non_braced_and_values() {
        assert_eq!(ok("$FOO-bar"), "first-bar");
        assert_eq!(ok("This ${missing} var"), "This  var");
        assert_eq!(ok("This ${BAR} var"), "This  var");
        assert_eq!(ok("This $FOO var"), "This first var");
        assert_eq!(ok("This ${FOO} var"), "This first var");
        assert_eq!(ok("ok ${missing:-def}"), "ok def");
        assert_eq!(ok("ok ${missing-def}"), "ok def");
    }

    #[test]
    fn lazy_defaults_do_not_warn() {
        let mut unset = Vec::new();
        assert_eq!(
            substitute("${A:+${A},}B", &defaults(), &mut unset).unwrap(),
            "B"
        );
        assert!(unset.is_empty());
        assert_eq!(
            substitute("${A:-${B}}", &defaults(), &mut unset).unwrap(),
            ""
        );
        assert_eq!(unset, vec!["B"]);
        let a = Map(HashMap::from([("A", "value")]));
        let mut unset = Vec::new();
        assert_eq!(substitute("${A?${B}}", &a, &mut unset).unwrap(), "value");
        assert!(unset.is_empty());
    }

    #[test]
    fn soft_and_hard_defaults_and_presence() {
        assert_eq!(ok("ok ${BAR:-def}"), "ok def");
        assert_eq!(ok("ok ${FOO:-def}"), "ok first");
        assert_eq!(ok("ok ${BAR-def}"), "ok ");
        assert_eq!(ok("ok ${UNSET_VAR:+presence_value}"), "ok ");
        assert_eq!(ok("ok ${UNSET_VAR+presence_value}"), "ok ");
        assert_eq!(ok("ok ${FOO:+presence_value}"), "ok presence_value");
        assert_eq!(ok("ok ${FOO+presence_value}"), "ok presence_value");
        assert_eq!(ok("ok ${BAR+presence_value}"), "ok presence_value");
        assert_eq!(ok("ok ${BAR:+presence_value}"), "ok ");
        assert_eq!(ok("ok ${BAR:-/non:-alphanumeric}"), "ok /non:-alphanumeric");
    }

    #[test]
    fn interpolation_external_interference() {
        for (t, want) in [
            ("-ok ${BAR:-defaultValue}", "-ok defaultValue"),
            ("+ok ${UNSET:-${BAR-defaultValue}}", "+ok "),
            ("-ok ${FOO:-defaultValue}", "-ok first"),
            (":-ok ${UNSET-defaultValue}", ":-ok defaultValue"),
            (":-ok ${BAR-defaultValue}", ":-ok "),
            (":?ok ${BAR-defaultValue}", ":?ok "),
            (":?ok ${BAR:-defaultValue}", ":?ok defaultValue"),
            (":+ok ${BAR:-defaultValue}", ":+ok defaultValue"),
            ("+ok ${BAR-defaultValue}", "+ok "),
            ("?ok ${BAR:-defaultValue}", "?ok defaultValue"),
        ] {
            assert_eq!(ok(t), want, "{t}");
        }
    }

    #[test]
    fn defaults_with_nested_expansion() {
        for (t, want) in [
            ("ok ${UNSET_VAR-$FOO}", "ok first"),
            ("ok ${UNSET_VAR-${FOO}}", "ok first"),
            ("ok ${UNSET_VAR-${FOO} ${FOO}}", "ok first first"),
            ("ok ${BAR:-$FOO}", "ok first"),
            ("ok ${BAR:-${FOO}}", "ok first"),
            ("ok ${BAR:-${FOO} ${FOO}}", "ok first first"),
            ("ok ${BAR+$FOO}", "ok first"),
            ("ok ${BAR+$FOO ${FOO:+second}}", "ok first second"),
        ] {
            assert_eq!(ok(t), want, "{t}");
        }
    }

    #[test]
    fn mandatory_variable_errors() {
        for (t, want) in [
            (
                "not ok ${UNSET_VAR:?Mandatory Variable Unset}",
                "required variable UNSET_VAR is missing a value: Mandatory Variable Unset",
            ),
            (
                "not ok ${BAR:?Mandatory Variable Empty}",
                "required variable BAR is missing a value: Mandatory Variable Empty",
            ),
            (
                "not ok ${UNSET_VAR:?}",
                "required variable UNSET_VAR is missing a value",
            ),
            (
                "not ok ${UNSET_VAR?Mandatory Variable Unset}",
                "required variable UNSET_VAR is missing a value: Mandatory Variable Unset",
            ),
            (
                "not ok ${UNSET_VAR?}",
                "required variable UNSET_VAR is missing a value",
            ),
            (
                "not ok ${UNSET_VAR:?Mandatory Variable ${FOO}}",
                "required variable UNSET_VAR is missing a value: Mandatory Variable first",
            ),
            (
                "not ok ${UNSET_VAR?Mandatory Variable ${FOO}}",
                "required variable UNSET_VAR is missing a value: Mandatory Variable first",
            ),
        ] {
            assert_eq!(sub(t).unwrap_err().to_string(), want, "{t}");
        }
        assert_eq!(ok("ok ${FOO:?err}"), "ok first");
        assert_eq!(ok("ok ${FOO?err}"), "ok first");
        assert_eq!(ok("ok ${BAR?err}"), "ok ");
    }

    #[test]
    fn replacement_func_example() {
        // TestSubstituteWithReplacementFunc's last case uses the default engine.
        assert_eq!(ok("ok ${SUBDOMAIN:-redis}.${FOO:?}"), "ok redis.first");
    }

    #[test]
    fn precedence() {
        assert_eq!(
            sub("${UNSET_VAR?bar-baz}"),
            Err(Error::MissingRequired {
                variable: "UNSET_VAR".into(),
                reason: "bar-baz".into()
            })
        );
        assert_eq!(ok("${UNSET_VAR-myerror?msg}"), "myerror?msg");
        assert_eq!(ok("${FOO?bar-baz}"), "first");
        assert_eq!(
            ok("${BAR:-default_value_for_empty_var}"),
            "default_value_for_empty_var"
        );
        assert_eq!(
            ok("${UNSET_VAR-default_value_for_unset_var}"),
            "default_value_for_unset_var"
        );
    }

    #[test]
    fn substitution_function_choice() {
        for (input, sep) in [
            ("VARNAME:?val?ue", ":?"),
            ("VARNAME?val:?ue", "?"),
            ("VARNAME?va-lu+e:?e", "?"),
            ("VARNAME?va+lu-e:?e", "?"),
            ("VARNAME:-value", ":-"),
            ("VARNAME-va:-lu:?e", "-"),
            ("VARNAME-va+lu?e", "-"),
            ("VARNAME-va?lu+e", "-"),
            ("VARNAME:+va:?lu:-e", ":+"),
            ("VARNAME+va:+lue", "+"),
            ("VARNAME+va?lu-e", "+"),
            ("VARNAME+va-lu?e", "+"),
        ] {
            assert_eq!(Op::choose(input).sep(), sep, "{input}");
        }
    }

    #[test]
    fn curly_braces_in_defaults() {
        for t in [
            r#"ok ${missing:-{"json":1}}"#,
            r#"ok ${missing-{"json":1}}"#,
        ] {
            assert_eq!(ok(t), r#"ok {"json":1}"#);
        }
        for t in [r#"ok ${JSON:-{"json":1}}"#, r#"ok ${JSON-{"json":1}}"#] {
            assert_eq!(ok(t), r#"ok {"json":2}"#);
        }
    }

    #[test]
    fn var_expansion_tests() {
        // dotenv/godotenv_var_expansion_test.go
        let env = Map(HashMap::from([
            ("EMPTY_VAR", ""),
            ("TEST_VAR", "Test Value"),
        ]));
        let s = |t: &str| substitute(t, &env, &mut Vec::new());
        assert_eq!(
            s("RESULT=${UNSET_VAR:-Default Value}").unwrap(),
            "RESULT=Default Value"
        );
        assert_eq!(
            s("RESULT=${EMPTY_VAR:-Default Value}").unwrap(),
            "RESULT=Default Value"
        );
        assert_eq!(
            s("RESULT=${TEST_VAR:-Default Value}").unwrap(),
            "RESULT=Test Value"
        );
        assert_eq!(
            s("RESULT=${UNSET_VAR-Default Value}").unwrap(),
            "RESULT=Default Value"
        );
        assert_eq!(s("RESULT=${EMPTY_VAR-Default Value}").unwrap(), "RESULT=");
        assert_eq!(
            s("RESULT=${TEST_VAR-Default Value}").unwrap(),
            "RESULT=Test Value"
        );
        assert!(s("RESULT=${UNSET_VAR:?Test error}").is_err());
        assert!(s("RESULT=${EMPTY_VAR:?Test error}").is_err());
        assert_eq!(
            s("RESULT=${TEST_VAR:?Default Value}").unwrap(),
            "RESULT=Test Value"
        );
        assert!(s("RESULT=${UNSET_VAR?Test error}").is_err());
        assert_eq!(s("RESULT=${EMPTY_VAR?Test error}").unwrap(), "RESULT=");
        assert_eq!(
            s("RESULT=${TEST_VAR?Default Value}").unwrap(),
            "RESULT=Test Value"
        );
    }

    #[test]
    fn quirks() {
        // The greedy body runs to the last `}` of the line; the brace counter cuts it back.
        assert_eq!(ok("${UNSET:-x} and ${FOO}"), "x and first");
        assert_eq!(ok("${UNSET:-}}"), "}");
        // The body does not cross a newline.
        assert_eq!(sub("${UNSET:-a\nb}"), Err(Error::Invalid));
        assert_eq!(ok("${UNSET:-a}\n${FOO}"), "a\nfirst");
        // `$` before a non-name is literal.
        assert_eq!(ok("$1 $- $"), "$1 $- $");
        // Go's case folding admits the Kelvin sign in names.
        assert_eq!(ok("$\u{212a}x"), "");
        // Deep nesting is refused instead of exhausting the stack.
        let deep = format!(
            "{}x{}",
            "${U:-".repeat(MAX_DEPTH + 2),
            "}".repeat(MAX_DEPTH + 2)
        );
        assert_eq!(sub(&deep), Err(Error::TooDeep));
    }
}
