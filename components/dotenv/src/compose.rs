//! Docker Compose's `.env` / `env_file` format: a port of compose-go v2 `dotenv/parser.go`
//! (`parser.parse`) and `dotenv/godotenv.go` (`ParseWithLookup`, `expandVariables`).
//!
//! The parser walks statements, not lines:
//! - whitespace (Go's `unicode.IsSpace`) is skipped; `#` there starts a comment to the end of
//!   the line; a leading `export` followed by whitespace (`\t \n \f \r` and space) is dropped;
//! - the name runs to `=`, `:` (YAML style) or a newline; it may hold letters and numbers (any
//!   script), `_ . - [ ]`, and "spaces" other than newlines, which are skipped but kept; a name
//!   with a real space is refused, any other character is an error. A name alone on its line
//!   is inherited: taken from the environment when set there, else ignored. A name that reaches
//!   the end of the input without `=` is not a name at all: the text becomes the value of the
//!   empty key (compose-go's behaviour, kept);
//! - an unquoted value runs to the end of the line, is cut at the first `" #"`, right-trimmed
//!   and interpolated; a single-quoted value is literal except `\'`; a double-quoted value may
//!   span lines, its escapes (`\a \b \f \n \r \t \v \\ \" \$` and `\0NNN` octal) are expanded,
//!   then it is interpolated. Whatever follows a closing quote on the line is parsed as the next
//!   statement;
//! - interpolation ([`crate::template`]) looks names up in the environment first, then in the
//!   variables defined earlier in the file.
//!
//! compose-go stops at the first error and only knows its line; kstep reports the same error
//! with the line and column where it starts (an unterminated quote: where it opens).

use crate::template::{self, Lookup};
use crate::text::{self, position};
use crate::{OrderedVars, Parsed, Problem};

/// The environment consulted by interpolation and inherited names.
pub trait Environment {
    /// The value of `name`, if set.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Environment for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        // The last definition wins, like a process environment built from these pairs.
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Environment for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        std::collections::HashMap::get(self, name).map(String::as_str)
    }
}

/// compose-go's `isSpace`: whitespace that is not a line break.
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

/// Go's `unicode.IsLetter(c) || unicode.IsNumber(c)`, from Go's own tables.
fn is_letter_or_number(c: char) -> bool {
    let c = u32::from(c);
    if c < 0x80 {
        return (c as u8).is_ascii_alphanumeric();
    }
    let ranges = crate::go_unicode::LETTER_OR_NUMBER;
    let i = ranges.partition_point(|&(_, hi)| hi < c);
    ranges.get(i).is_some_and(|&(lo, _)| lo <= c)
}

/// `^export\s+` (Go's `\s` is `[\t\n\f\r ]`).
fn starts_with_export(s: &str) -> bool {
    s.strip_prefix("export")
        .and_then(|rest| rest.bytes().next())
        .is_some_and(|b| matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' '))
}

struct Vars<'a> {
    env: &'a dyn Environment,
    out: &'a OrderedVars,
}

impl Lookup for Vars<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.env.get(name).or_else(|| self.out.get(name))
    }
}

/// Parses a Compose env file with `env` as the environment.
///
/// # Errors
/// The first problem (compose-go stops there), with its position.
pub fn parse(bytes: &[u8], env: &dyn Environment) -> Result<Parsed, Problem> {
    let decoded = text::decode_utf8(bytes)?;
    parse_str(&decoded.text, env)
}

/// [`parse`] on text that is already decoded (no BOM handling).
///
/// # Errors
/// The first problem, with its position.
pub fn parse_str(src: &str, env: &dyn Environment) -> Result<Parsed, Problem> {
    let mut out = OrderedVars::default();
    let mut warnings = Vec::new();
    let at = |offset: usize, message: String| {
        let (line, column) = position(src, offset);
        Problem::error(line, column, message)
    };
    let mut lines = LineTracker::default();
    let mut pos = 0;
    // getStatementStart: skip whitespace and comment lines.
    while let Some(start) = statement_start(src, pos) {
        // locateKeyName
        let mut s = start;
        if starts_with_export(&src[s..]) {
            s += "export".len();
            s += src[s..].len() - src[s..].trim_start_matches(is_space).len();
        }
        if s == src.len() {
            return Err(at(
                s,
                "zero length string (\"export\" without a name)".into(),
            ));
        }
        let mut key_end = None;
        for (i, c) in src[s..].char_indices() {
            if is_space(c) {
                continue;
            }
            match c {
                '=' | ':' | '\n' => {
                    key_end = Some((s + i, c));
                    break;
                }
                '_' | '.' | '-' | '[' | ']' => {}
                _ if is_letter_or_number(c) => {}
                _ => {
                    return Err(at(
                        s + i,
                        format!("unexpected character {c:?} in variable name"),
                    ));
                }
            }
        }
        let (key, inherited, mut rest) = match key_end {
            Some((end, c)) => (
                src[s..end].trim_end_matches(char::is_whitespace),
                c == '\n',
                end + c.len_utf8(),
            ),
            // No terminator before the end of the input: empty key, the text is the value.
            None => ("", false, s),
        };
        rest += src[rest..].len() - src[rest..].trim_start_matches(is_space).len();
        if key.contains(' ') {
            return Err(at(s, "key cannot contain a space".into()));
        }
        let line = lines.line_at(src, s);
        if inherited {
            if let Some(value) = env.get(key) {
                out.set(key, value.to_owned(), line);
            }
            pos = rest;
            continue;
        }
        // extractVarValue
        let (raw, next, interpolate) = match src[rest..].chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let (raw, next) = quoted(src, rest, quote as u8)
                    .ok_or_else(|| at(rest, "unterminated quoted value".into()))?;
                if quote == '"' {
                    (expand_escapes(&raw), next, true)
                } else {
                    (raw, next, false)
                }
            }
            _ => {
                let end = src[rest..].find('\n').map_or(src.len(), |i| rest + i);
                let mut value = &src[rest..end];
                if let Some(i) = inline_comment(value) {
                    value = &value[..i];
                }
                let value = value.trim_end_matches(char::is_whitespace).to_owned();
                // strings.Cut: the rest starts after the newline.
                (value, (end + 1).min(src.len()), true)
            }
        };
        let value = if interpolate && raw.contains('$') {
            let mut unset = Vec::new();
            let vars = Vars { env, out: &out };
            let value = template::substitute(&raw, &vars, &mut unset)
                .map_err(|e| at(rest, format!("{e} (in the value of {key})")))?;
            for name in unset {
                warnings.push(Problem::warning(
                    line,
                    0,
                    format!(
                        "{key}: the {name:?} variable is not set. Defaulting to a blank string."
                    ),
                ));
            }
            value
        } else {
            raw
        };
        out.set(key, value, line);
        pos = next;
    }
    Ok(Parsed {
        entries: out.into_entries(),
        warnings,
    })
}

/// Line numbers for increasing offsets, counted incrementally (a file of n lines costs O(n),
/// not O(n²)).
#[derive(Default)]
struct LineTracker {
    offset: usize,
    newlines: usize,
}

impl LineTracker {
    fn line_at(&mut self, src: &str, offset: usize) -> u32 {
        if offset < self.offset {
            *self = Self::default();
        }
        self.newlines += src.as_bytes()[self.offset..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.offset = offset;
        crate::to_u32(self.newlines + 1)
    }
}

/// Where `" #"` starts in `value` (`strings.Cut(value, " #")`), searching for `#` (memchr).
fn inline_comment(value: &str) -> Option<usize> {
    let bytes = value.as_bytes();
    let mut from = 0;
    while let Some(i) = value[from..].find('#') {
        let at = from + i;
        if at > 0 && bytes[at - 1] == b' ' {
            return Some(at - 1);
        }
        from = at + 1;
    }
    None
}

/// The next statement's start at or after `pos`: past whitespace and `#` comment lines.
fn statement_start(src: &str, mut pos: usize) -> Option<usize> {
    loop {
        let offset = src[pos..].find(|c: char| !c.is_whitespace())?;
        pos += offset;
        if src.as_bytes()[pos] != b'#' {
            return Some(pos);
        }
        pos += src[pos..].find('\n')?;
    }
}

/// The quoted value opening at `open` (bytes between the quotes, `\` before anything but the
/// quote kept) and where parsing continues; `None` when the quote is not closed.
fn quoted(src: &str, open: usize, quote: u8) -> Option<(String, usize)> {
    let bytes = src.as_bytes();
    let mut chars = Vec::new();
    let mut escape = false;
    let mut i = open + 1;
    while i < bytes.len() {
        let b = bytes[i];
        if b != quote {
            if !escape && b == b'\\' {
                escape = true;
            } else {
                if escape {
                    escape = false;
                    chars.push(b'\\');
                }
                chars.push(b);
            }
        } else if escape {
            escape = false;
            chars.push(b);
        } else {
            // Only ASCII bytes were dropped: the rest is still UTF-8.
            let value = String::from_utf8(chars)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            return Some((value, i + 1));
        }
        i += 1;
    }
    None
}

/// compose-go's `expandEscapes`: the regexp `\\(?:[abcfnrtv$"\\]|0\d{0,3})`, each match
/// unquoted by Go's `strconv.UnquoteChar` (kept as is when that fails), `\$` turned into `$$`.
fn expand_escapes(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while let Some(found) = s[i..].find('\\') {
        let at = i + found;
        let Some(&next) = bytes.get(at + 1) else {
            break;
        };
        let (end, replacement): (usize, Option<&str>) = match next {
            b'a' => (at + 2, Some("\u{7}")),
            b'b' => (at + 2, Some("\u{8}")),
            b'f' => (at + 2, Some("\u{c}")),
            b'n' => (at + 2, Some("\n")),
            b'r' => (at + 2, Some("\r")),
            b't' => (at + 2, Some("\t")),
            b'v' => (at + 2, Some("\u{b}")),
            b'\\' => (at + 2, Some("\\")),
            b'"' => (at + 2, Some("\"")),
            b'$' => (at + 2, Some("$$")),
            // `\c` matches the regexp but is no Go escape: kept.
            b'c' => (at + 2, None),
            b'0' => {
                let digits = bytes[at + 2..]
                    .iter()
                    .take(3)
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                (at + 2 + digits, None)
            }
            _ => {
                i = at + 1;
                continue;
            }
        };
        out.push_str(&s[copied..at]);
        match replacement {
            Some(r) => out.push_str(r),
            None => match octal(&s[at..end]) {
                Some(c) => out.push(c),
                // compose-go rewrites `\0` to `\` before trying, and keeps the rewritten form
                // when that fails: `\01` gives `\1`, `\0` a lone `\`. `\c` stays as it is.
                None => {
                    out.push('\\');
                    out.push_str(s[at + 1..end].strip_prefix('0').unwrap_or(&s[at + 1..end]));
                }
            },
        }
        copied = end;
        i = end;
    }
    out.push_str(&s[copied..]);
    out
}

/// `\0NNN` → `\NNN` → Go's UnquoteChar: exactly three octal digits, at most 0o377, giving the
/// code point U+0000–U+00FF.
fn octal(m: &str) -> Option<char> {
    let digits = m.strip_prefix("\\0")?;
    if digits.len() != 3 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    let v = u32::from_str_radix(digits, 8).ok()?;
    if v > 0o377 {
        return None;
    }
    char::from_u32(v)
}

#[cfg(test)]
mod tests {
    //! Vectors from compose-go v2 `dotenv/godotenv_test.go` and `dotenv/parser_test.go` (test
    //! names kept), with their fixtures inlined.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse_map(input: &str, environment: &[(&str, &str)]) -> HashMap<String, String> {
        let env = env(environment);
        parse(input.as_bytes(), &env)
            .unwrap_or_else(|e| panic!("{input:?}: {e:?}"))
            .entries
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// parseAndCompare
    fn compare(input: &str, key: &str, value: &str) {
        let got = parse_map(input, &[]);
        assert_eq!(got.get(key).map(String::as_str), Some(value), "{input:?}");
    }

    fn error(input: &str) -> Problem {
        parse(input.as_bytes(), &env(&[])).unwrap_err()
    }

    const PLAIN: &str = "OPTION_A=1\nOPTION_B=2\nOPTION_C= 3\nOPTION_D =4\nOPTION_E = 5\n456 = ABC\nOPTION_F = \nOPTION_G=\nOPTION_H = my string # Inline comment\n";

    #[test]
    fn read_plain_env() {
        let got = parse_map(PLAIN, &[]);
        let mut want = map(&[
            ("OPTION_A", "1"),
            ("OPTION_B", "2"),
            ("OPTION_C", "3"),
            ("OPTION_D", "4"),
            ("OPTION_E", "5"),
            ("OPTION_F", ""),
            ("OPTION_G", ""),
            ("OPTION_H", "my string"),
        ]);
        // Read() drops keys starting with a digit; Parse (what compose uses) keeps them.
        want.insert("456".into(), "ABC".into());
        assert_eq!(got, want);
    }

    #[test]
    fn utf8_bom() {
        let input = format!("\u{feff}{PLAIN}");
        assert_eq!(parse_map(&input, &[]).get("OPTION_A").unwrap(), "1");
    }

    #[test]
    fn parse_simple() {
        assert_eq!(
            parse_map("ONE=1\nTWO='2'\nTHREE = \"3\"", &[]),
            map(&[("ONE", "1"), ("TWO", "2"), ("THREE", "3")])
        );
    }

    #[test]
    fn exported_equals_quoted_unquoted_fixtures() {
        assert_eq!(
            parse_map("export OPTION_A=2\nexport OPTION_B='\\n'\n", &[]),
            map(&[("OPTION_A", "2"), ("OPTION_B", "\\n")])
        );
        assert_eq!(
            parse_map(
                "export OPTION_A='postgres://localhost:5432/database?sslmode=disable'\n\n",
                &[]
            ),
            map(&[(
                "OPTION_A",
                "postgres://localhost:5432/database?sslmode=disable"
            )])
        );
        let quoted = "OPTION_A='1'\nOPTION_B='2'\nOPTION_C=''\nOPTION_D='\\n'\nOPTION_E=\"1\"\nOPTION_F=\"2\"\nOPTION_G=\"\"\nOPTION_H=\"\\n\"\nOPTION_I = \"echo 'asd'\" # Inline comment\nOPTION_J = 'first line\nsecond line\nthird line\nand so on'\nOPTION_K='Let\\'s go!'\nOPTION_Z = \"last value\"\n";
        assert_eq!(
            parse_map(quoted, &[]),
            map(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "2"),
                ("OPTION_C", ""),
                ("OPTION_D", "\\n"),
                ("OPTION_E", "1"),
                ("OPTION_F", "2"),
                ("OPTION_G", ""),
                ("OPTION_H", "\n"),
                ("OPTION_I", "echo 'asd'"),
                ("OPTION_J", "first line\nsecond line\nthird line\nand so on"),
                ("OPTION_K", "Let's go!"),
                ("OPTION_Z", "last value"),
            ])
        );
        let unquoted = "OPTION_A = \"some quoted phrase\"\nOPTION_B=first one with an unquoted phrase\nOPTION_C = then another one with an unquoted phrase\nOPTION_D = then another one with an unquoted phrase special è char\nOPTION_E = \"then another one quoted phrase\"\n";
        assert_eq!(
            parse_map(unquoted, &[]),
            map(&[
                ("OPTION_A", "some quoted phrase"),
                ("OPTION_B", "first one with an unquoted phrase"),
                ("OPTION_C", "then another one with an unquoted phrase"),
                (
                    "OPTION_D",
                    "then another one with an unquoted phrase special è char"
                ),
                ("OPTION_E", "then another one quoted phrase"),
            ])
        );
    }

    const SUBSTITUTIONS: &str = "OPTION_A=1\nOPTION_B=${OPTION_A}\nOPTION_C=$OPTION_B\nOPTION_D=${OPTION_A}_${OPTION_B}\nOPTION_E=${OPTION_NOT_DEFINED}\n";
    const SUBSTITUTIONS_DEFAULT: &str = "OPTION_A=${OPTION_A:-1}\nOPTION_B=${OPTION_A}\nOPTION_C=$OPTION_B\nOPTION_D=${OPTION_A}_${OPTION_B}\nOPTION_E=${OPTION_NOT_DEFINED}\n";

    #[test]
    fn substitutions_and_env_precedence() {
        assert_eq!(
            parse_map(SUBSTITUTIONS, &[]),
            map(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "1"),
                ("OPTION_C", "1"),
                ("OPTION_D", "1_1"),
                ("OPTION_E", ""),
            ])
        );
        // TestSubstitutionsWithEnvFilePrecedence: the environment wins in lookups, not over
        // the file's own definition.
        assert_eq!(
            parse_map(SUBSTITUTIONS, &[("OPTION_A", "5")]),
            map(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "5"),
                ("OPTION_C", "5"),
                ("OPTION_D", "5_5"),
                ("OPTION_E", ""),
            ])
        );
        assert_eq!(
            parse_map(SUBSTITUTIONS_DEFAULT, &[("OPTION_A", "5")]),
            map(&[
                ("OPTION_A", "5"),
                ("OPTION_B", "5"),
                ("OPTION_C", "5"),
                ("OPTION_D", "5_5"),
                ("OPTION_E", ""),
            ])
        );
        assert_eq!(
            parse_map(SUBSTITUTIONS_DEFAULT, &[]),
            map(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "1"),
                ("OPTION_C", "1"),
                ("OPTION_D", "1_1"),
                ("OPTION_E", ""),
            ])
        );
        let parsed = parse(SUBSTITUTIONS.as_bytes(), &env(&[])).unwrap();
        assert_eq!(parsed.warnings.len(), 1);
        assert_eq!(parsed.warnings[0].line, 5);
    }

    #[test]
    fn expanding() {
        for (input, want) in [
            ("FOO=test\nBAR=$FOO", vec![("FOO", "test"), ("BAR", "test")]),
            (
                "FOO=test\nBAR=${FOO}bar",
                vec![("FOO", "test"), ("BAR", "testbar")],
            ),
            ("BAR=$FOO", vec![("BAR", "")]),
            (
                "FOO=test\nBAR=\"quote $FOO\"",
                vec![("FOO", "test"), ("BAR", "quote test")],
            ),
            ("BAR='quote $FOO'", vec![("BAR", "quote $FOO")]),
            (r#"FOO="foo\$BAR""#, vec![("FOO", "foo$BAR")]),
            (r#"FOO="foo\${BAR}""#, vec![("FOO", "foo${BAR}")]),
            (
                "FOO=test\nBAR=\"foo\\${FOO} ${FOO}\"",
                vec![("FOO", "test"), ("BAR", "foo${FOO} test")],
            ),
        ] {
            assert_eq!(parse_map(input, &[]), map(&want), "{input:?}");
        }
    }

    #[test]
    fn variable_string_value_separator() {
        let input = "TEST_URLS=\"stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443\"";
        assert_eq!(
            parse_map(input, &[]),
            map(&[(
                "TEST_URLS",
                "stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443"
            )])
        );
    }

    #[test]
    fn parsing() {
        compare("FOO=bar", "FOO", "bar");
        compare("FOO =bar", "FOO", "bar");
        compare("FOO= bar", "FOO", "bar");
        compare(r#"FOO="bar""#, "FOO", "bar");
        compare("FOO='bar'", "FOO", "bar");
        compare(r#"FOO="escaped\"bar""#, "FOO", r#"escaped"bar"#);
        compare(r#"FOO="\"quoted\"""#, "FOO", r#""quoted""#);
        compare(r#"FOO="'d'""#, "FOO", "'d'");
        compare("OPTION_A: 1", "OPTION_A", "1");
        compare("OPTION_A: Foo=bar", "OPTION_A", "Foo=bar");
        compare("OPTION_A=1:B", "OPTION_A", "1:B");
        compare("export OPTION_A=2", "OPTION_A", "2");
        compare(r"export OPTION_B='\n'", "OPTION_B", "\\n");
        compare("export exportFoo=2", "exportFoo", "2");
        compare("exportFOO=2", "exportFOO", "2");
        compare("export_FOO =2", "export_FOO", "2");
        compare("export.FOO= 2", "export.FOO", "2");
        compare("export\tOPTION_A=2", "OPTION_A", "2");
        compare("  export OPTION_A=2", "OPTION_A", "2");
        compare("\texport OPTION_A=2", "OPTION_A", "2");
        compare(r#"export OPTION_A="export A""#, "OPTION_A", "export A");
        compare(r#"FOO="bar\nbaz""#, "FOO", "bar\nbaz");
        compare(r"FOO=a\tb", "FOO", r"a\tb");
        compare(r#"FOO="a\tb""#, "FOO", "a\tb");
        compare(
            r#"KEY="Z\aZ\bZ\fZ\nZ\rZ\tZ\vZ\\Z\0123Z""#,
            "KEY",
            "Z\u{7}Z\u{8}Z\u{c}Z\nZ\rZ\tZ\u{b}Z\\ZSZ",
        );
        compare("FOO.BAR=foobar", "FOO.BAR", "foobar");
        compare("FOO=foobar=", "FOO", "foobar=");
        compare("FOO=bar ", "FOO", "bar");
        compare("FOO=bar # this is foo", "FOO", "bar");
        compare("FOO=bar #this is foo", "FOO", "bar");
        compare("FOO=bar #", "FOO", "bar");
        compare(
            "FOO=123#not-an-inline-comment",
            "FOO",
            "123#not-an-inline-comment",
        );
        compare(r##"FOO="bar#baz""##, "FOO", "bar#baz");
        compare(r##"FOO="bar#baz"#"##, "FOO", "bar#baz");
        compare(r##"FOO="bar#baz" # comment"##, "FOO", "bar#baz");
        compare("FOO='bar#baz' # comment", "FOO", "bar#baz");
        compare(r##"FOO="bar#baz#bang" # comment"##, "FOO", "bar#baz#bang");
        compare(r##"FOO="ba#r""##, "FOO", "ba#r");
        compare("FOO='ba#r'", "FOO", "ba#r");
        compare(r#"FOO="bar\n\ b\az""#, "FOO", "bar\n\\ b\u{7}z");
        compare(r#"FOO="bar\\\n\ b\az""#, "FOO", "bar\\\n\\ b\u{7}z");
        compare(r#"FOO="bar\\r\ b\az""#, "FOO", "bar\\r\\ b\u{7}z");
        compare(r#"FOO="bar\nbaz\\""#, "FOO", "bar\nbaz\\");
        compare(r#"="value""#, "", "value");
        compare(" KEY =value", "KEY", "value");
        compare("   KEY=value", "KEY", "value");
        compare("\tKEY=value", "KEY", "value");
        compare(r#"KEY="\0123""#, "KEY", "S");
        compare(r#"KEY="\x07""#, "KEY", r"\x07");
        compare(r#"KEY="\u12e4""#, "KEY", r"\u12e4");
        compare(r#"KEY="\U00101234""#, "KEY", r"\U00101234");
        // 'throws an error if line format is incorrect'
        let e = error("lol$wut");
        assert_eq!((e.line, e.column), (1, 4));
        assert!(
            e.message.contains("unexpected character '$'"),
            "{}",
            e.message
        );
    }

    #[test]
    fn unterminated_quotes() {
        for input in [
            r#"KEY=""#,
            r#"KEY="value"#,
            r#"KEY="value\""#,
            r#"KEY="value'"#,
            "KEY='",
            "KEY='value",
            r"KEY='value\'",
            r#"KEY='value""#,
        ] {
            let e = error(input);
            assert!(e.message.contains("unterminated quoted value"), "{input}");
            assert_eq!((e.line, e.column), (1, 5), "{input}");
        }
        // Reported where the quote opens, not where the file ends.
        let e = error("A=1\nB=\"open\nC=2\nD=3\n");
        assert_eq!((e.line, e.column), (2, 3));
    }

    #[test]
    fn lines_to_ignore() {
        for input in ["\n", "\r\n", "\t\t ", "# Comment", "\t # comment"] {
            assert!(parse_map(input, &[]).is_empty(), "{input:?}");
        }
        assert_eq!(statement_start(r"export OPTION_B='\n'", 0), Some(0));
    }

    #[test]
    fn error_parsing_invalid1() {
        let input = "# some comments\nfoo=\"\n  a\n  multine\n  value\n\"\nINVALID LINE\nzot=qix";
        let e = error(input);
        assert_eq!(e.line, 7);
        assert!(e.message.contains("key cannot contain a space"));
    }

    #[test]
    fn inherited() {
        let vars = [("VAR_TO_BE_LOADED_FROM_OS_ENV", "SOME_RANDOM_VALUE")];
        assert_eq!(
            parse_map("foo=bar\nVAR_TO_BE_LOADED_FROM_OS_ENV\nbar=baz\n", &vars),
            map(&[
                ("foo", "bar"),
                ("bar", "baz"),
                ("VAR_TO_BE_LOADED_FROM_OS_ENV", "SOME_RANDOM_VALUE")
            ])
        );
        assert_eq!(
            parse_map("VAR_TO_BE_LOADED_FROM_OS_ENV\n", &vars),
            map(&[("VAR_TO_BE_LOADED_FROM_OS_ENV", "SOME_RANDOM_VALUE")])
        );
        assert!(parse_map("VARIABLE_NOT_FOUND\n", &[]).is_empty());
        assert_eq!(
            parse_map("TEST=$ME", &[("ME", "YES")]),
            map(&[("TEST", "YES")])
        );
    }

    #[test]
    fn parse_bytes_and_names() {
        // parser_test.go TestParseBytes
        let input =
            "\na=b\na[1]=c\na.propertyKey=d\nárvíztűrő-TÜKÖRFÚRÓGÉP=ÁRVÍZTŰRŐ-tükörfúrógép\n";
        assert_eq!(
            parse_map(input, &[]),
            map(&[
                ("a", "b"),
                ("a[1]", "c"),
                ("a.propertyKey", "d"),
                ("árvíztűrő-TÜKÖRFÚRÓGÉP", "ÁRVÍZTŰRŐ-tükörfúrógép"),
            ])
        );
        // TestParseVariable (compose-go quotes the whole line; kstep never echoes values).
        let e = error("%!(EXTRA string)=foo");
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e.message.contains("'%'"));
        // TestDash
        assert_eq!(
            parse_map(
                "VAR.WITH.DOTS=dots\nVAR_WITH_UNDERSCORES=underscores\nVAR-WITH-DASHES=dashes\n",
                &[]
            )
            .len(),
            3
        );
    }

    /// A Compose file of 1 MiB mixing every construct, as the benchmark uses.
    pub(crate) fn one_mib_file() -> String {
        let mut out = String::new();
        let mut i = 0;
        while out.len() < 1 << 20 {
            match i % 5 {
                0 => out.push_str(&format!("# section {i}\n")),
                1 => out.push_str(&format!("export KEY_{i}=plain value {i} # comment\n")),
                2 => out.push_str(&format!(
                    "KEY_{i}=\"double ${{KEY_{}:-default}} with \\n escape and $$ dollar\"\n",
                    i - 1
                )),
                3 => out.push_str(&format!("KEY_{i}='single $NOT {i}'\n")),
                _ => out.push_str(&format!("KEY_{i}: ${{KEY_{}}}-suffix\n", i - 2)),
            }
            i += 1;
        }
        out
    }

    #[test]
    fn a_mebibyte_parses_in_linear_time() {
        // Quadratic work (a line count from the start per statement, a rescan per template)
        // takes minutes here; linear work takes well under a second even unoptimised.
        let text = one_mib_file();
        let started = std::time::Instant::now();
        let parsed = parse(text.as_bytes(), &env(&[])).unwrap();
        assert_eq!(parsed.entries.len(), 22_262);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn memory_explosion_is_linear() {
        let input: Vec<String> = (0..1000).map(|i| format!("KEY{i}=VALUE{i}")).collect();
        assert_eq!(parse_map(&input.join("\n"), &[]).len(), 1000);
    }

    #[test]
    fn multiple_files_semantics_within_one_file() {
        // TestMultipleFiles, one file at a time: the earlier definition feeds the later one,
        // and the environment wins in lookups.
        let base = "\nENV_HOSTNAME=localhost\nENV_MY_URL=\"http://${ENV_HOSTNAME}\"\n";
        assert_eq!(parse_map(base, &[])["ENV_MY_URL"], "http://localhost");
        assert_eq!(
            parse_map(base, &[("ENV_HOSTNAME", "host.local")])["ENV_MY_URL"],
            "http://host.local"
        );
    }

    #[test]
    fn quirks_kept_from_compose_go() {
        // A name that reaches the end of the input is the value of the empty key.
        assert_eq!(parse_map("FOO", &[]), map(&[("", "FOO")]));
        // Text after a closing quote is the next statement.
        assert_eq!(parse_map("A=\"x\"B=1", &[]), map(&[("A", "x"), ("B", "1")]));
        // The space before an inline comment is trimmed first, so `A= #c` keeps `#c`.
        assert_eq!(parse_map("A= #c", &[]), map(&[("A", "#c")]));
        // A tab inside a name is kept (only a real space is refused).
        assert_eq!(parse_map("A\tB=1", &[]), map(&[("A\tB", "1")]));
        // `export` then a newline: the name is inherited-empty, the next line is parsed.
        assert_eq!(parse_map("export\nA=1", &[]), map(&[("A", "1")]));
        assert!(error("export ").message.contains("zero length"));
        // Duplicates: last value, first position.
        let parsed = parse(b"A=1\nB=2\nA=3", &env(&[])).unwrap();
        assert_eq!(parsed.entries[0].key, "A");
        assert_eq!(parsed.entries[0].value, "3");
        // Octal escapes: exactly three digits after \0, at most 0o377.
        compare(r#"K="\0""#, "K", r"\");
        compare(r#"K="\01""#, "K", r"\1");
        compare(r#"K="\0400""#, "K", r"\400");
        compare(r#"K="\0101x""#, "K", "Ax");
        compare(r#"K="\01011""#, "K", "A1");
        compare(r#"K="\c""#, "K", r"\c");
        // CRLF everywhere.
        assert_eq!(
            parse_map("A=1\r\nB=\"2\"\r\n# c\r\nC\r\n", &[("C", "3")]),
            map(&[("A", "1"), ("B", "2"), ("C", "3")])
        );
    }

    #[test]
    fn interpolation_errors_have_positions() {
        let e = error("A=1\nB=${NOPE:?is required}\n");
        assert_eq!((e.line, e.column), (2, 3));
        assert!(
            e.message
                .contains("required variable NOPE is missing a value: is required")
        );
        let e = error("A=\"${\"");
        assert!(e.message.contains("Invalid template"));
    }
}
