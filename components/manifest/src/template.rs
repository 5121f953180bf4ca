//! Placeholders inside one scalar's text: `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?message}`, `${VAR?message}`, and `$${` for a literal `${`.
//!
//! Only braced placeholders expand, and `$` is an escape only right before `{`: a run of `$`
//! followed by `{` gives half of them (rounded down) as literal `$`, and an odd run ends in a
//! placeholder (`$${A}` is the text `${A}`, `$$${A}` a `$` and A's value). Anywhere else `$` is
//! never touched: a bare `$VAR` (say `$HOME` in a container command), a shell's `$$`, and
//! Kubernetes' own `$(VAR)` and `$$(VAR)` escape in container `command`, `args` and `env` stay
//! as written, so third-party manifests render unchanged. Values are inserted as text and never
//! scanned again, so a value containing `${X}` stays literal. Defaults and messages are literal
//! text; a nested placeholder in them is an error rather than the silently broken output other
//! tools produce.

use std::fmt;

/// What a placeholder does when its variable is unset or empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `${VAR}`: unset is an error; empty gives the empty string.
    Plain,
    /// `${VAR:-default}`: the default when unset or empty.
    DefaultUnlessNonEmpty,
    /// `${VAR-default}`: the default when unset.
    DefaultUnlessSet,
    /// `${VAR:?message}`: an error (with the message) when unset or empty.
    RequireNonEmpty,
    /// `${VAR?message}`: an error (with the message) when unset.
    RequireSet,
}

/// One placeholder in a scalar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// Byte offset of its `$` in the scalar's text.
    pub offset: usize,
    /// The variable name.
    pub name: String,
    /// What to do when the variable is unset or empty.
    pub operator: Operator,
    /// The default or the message, as written; empty for [`Operator::Plain`].
    pub argument: String,
}

/// A piece of a scalar's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text (with `$${` already turned into `${`).
    Text(String),
    /// A placeholder.
    Placeholder(Placeholder),
}

/// A scalar's text split into literal text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The pieces, in order.
    pub pieces: Vec<Piece>,
}

impl Template {
    /// The single placeholder when the text is nothing but one placeholder (`${N}`), which is
    /// what lets a plain scalar take its value's type.
    pub fn whole(&self) -> Option<&Placeholder> {
        match self.pieces.as_slice() {
            [Piece::Placeholder(p)] => Some(p),
            _ => None,
        }
    }

    /// The placeholders, in order.
    pub fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Placeholder(p) => Some(p),
            Piece::Text(_) => None,
        })
    }
}

/// Why `${…}` is not a placeholder kstep accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// `${` without a closing `}`.
    #[error("`${{` is not closed by `}}` (write `$${{` for a literal `${{`)")]
    Unterminated,
    /// `${}`.
    #[error("`${{}}` names no variable (write `$${{` for a literal `${{`)")]
    EmptyName,
    /// `${1X}`, `${A B}`, `${#A}`…
    #[error(
        "`{0}` is not a placeholder: names are letters, digits and `_`, not starting with a digit \
         (write `$${{` for a literal `${{`)"
    )]
    InvalidName(String),
    /// `${A:=x}`, `${A/x/y}`, `${A+x}`…
    #[error(
        "`{0}` is not supported: use `${{VAR}}`, `${{VAR:-default}}`, `${{VAR-default}}`, \
         `${{VAR:?message}}` or `${{VAR?message}}` (write `$${{` for a literal `${{`)"
    )]
    UnsupportedOperator(String),
    /// `${A:-${B}}`.
    #[error("nested placeholders are not supported in `{0}`: defaults are literal text")]
    Nested(String),
}

/// A syntax error at a byte offset of the scalar's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<E> {
    /// Byte offset of the placeholder's `$`.
    pub offset: usize,
    /// What is wrong.
    pub error: E,
}

/// Whether `text` contains template syntax at all (`${`, which `$${` contains too): most
/// scalars do not, and skip all further work.
pub fn has_syntax(text: &str) -> bool {
    text.contains("${")
}

/// The length of the run of `$` starting at `at`, and whether `{` follows it.
fn dollar_run(bytes: &[u8], at: usize) -> (usize, bool) {
    let n = bytes[at..].iter().take_while(|b| **b == b'$').count();
    (n, bytes.get(at + n) == Some(&b'{'))
}

/// Byte offsets of the `$` of each placeholder (or broken placeholder) in `text`, as [`parse`]
/// reads them: the last `$` of each odd run of `$` followed by `{`.
pub fn placeholder_offsets(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let (n, brace) = dollar_run(bytes, i);
        if brace && n % 2 == 1 {
            found.push(i + n - 1);
        }
        i += n;
    }
    found
}

/// Splits `text` into literal text and placeholders.
///
/// # Errors
/// Every malformed placeholder, each at the offset of its `$`.
pub fn parse(text: &str) -> Result<Template, Vec<Located<SyntaxError>>> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut errors = Vec::new();
    let mut literal = String::new();
    let mut run_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let (n, brace) = dollar_run(bytes, i);
        if !brace {
            // Not before `{`: every `$` stays as written (`$$(VAR)`, `$$`, `$HOME`).
            i += n;
            continue;
        }
        literal.push_str(&text[run_start..i]);
        literal.push_str(&text[i..i + n / 2]);
        if n % 2 == 0 {
            literal.push('{');
            i += n + 1;
            run_start = i;
            continue;
        }
        let start = i + n - 1;
        match placeholder(text, start) {
            Ok((p, end)) => {
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Placeholder(p));
                i = end;
            }
            Err((error, end)) => {
                errors.push(Located {
                    offset: start,
                    error,
                });
                i = end;
            }
        }
        run_start = i;
    }
    literal.push_str(&text[run_start..]);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    if errors.is_empty() {
        Ok(Template { pieces })
    } else {
        Err(errors)
    }
}

/// Whether `name` can be a placeholder's variable: `[A-Za-z_][A-Za-z0-9_]*`. The one rule for
/// variable names in kstep (the host's `--set`, shell output and custom-step variables use it).
pub fn is_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses the placeholder whose `$` is at `start`; returns it and the offset after its `}`,
/// or the error and where to resume scanning.
fn placeholder(text: &str, start: usize) -> Result<(Placeholder, usize), (SyntaxError, usize)> {
    let bytes = text.as_bytes();
    let body = start + 2;
    let Some(close) = text[body..].find('}').map(|c| body + c) else {
        return Err((SyntaxError::Unterminated, bytes.len()));
    };
    let whole = &text[start..=close];
    let name_len = text[body..close]
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    let name = &text[body..body + name_len];
    let rest = &text[body + name_len..close];
    if name.is_empty() && rest.is_empty() {
        return Err((SyntaxError::EmptyName, close + 1));
    }
    if !is_name(name) {
        return Err((SyntaxError::InvalidName(whole.to_owned()), close + 1));
    }
    let (operator, argument) = if rest.is_empty() {
        (Operator::Plain, "")
    } else if let Some(a) = rest.strip_prefix(":-") {
        (Operator::DefaultUnlessNonEmpty, a)
    } else if let Some(a) = rest.strip_prefix(":?") {
        (Operator::RequireNonEmpty, a)
    } else if let Some(a) = rest.strip_prefix('-') {
        (Operator::DefaultUnlessSet, a)
    } else if let Some(a) = rest.strip_prefix('?') {
        (Operator::RequireSet, a)
    } else if rest.starts_with(|c: char| c.is_whitespace()) {
        return Err((SyntaxError::InvalidName(whole.to_owned()), close + 1));
    } else {
        return Err((
            SyntaxError::UnsupportedOperator(whole.to_owned()),
            close + 1,
        ));
    };
    if argument.contains("${") {
        // The default ends at the first `}`, which belongs to the nested placeholder: skip
        // past the outer one too, so the rest of the text is not misread.
        let resume = text[close + 1..]
            .find('}')
            .map_or(close + 1, |c| close + 2 + c);
        return Err((SyntaxError::Nested(text[start..resume].to_owned()), resume));
    }
    Ok((
        Placeholder {
            offset: start,
            name: name.to_owned(),
            operator,
            argument: argument.to_owned(),
        },
        close + 1,
    ))
}

/// How a placeholder got its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The variable's value.
    Value,
    /// The placeholder's default.
    Default,
}

/// One expanded placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    /// Byte offset of the placeholder in the scalar's text.
    pub offset: usize,
    /// The variable.
    pub name: String,
    /// Where the text came from.
    pub resolution: Resolution,
}

/// A placeholder that cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// Byte offset of the placeholder in the scalar's text.
    pub offset: usize,
    /// The variable.
    pub name: String,
    /// Set, but empty (only an error for `${VAR:?message}`).
    pub empty: bool,
    /// The `?message`, if any.
    pub message: Option<String>,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.empty { "empty" } else { "not set" };
        match &self.message {
            Some(m) if !m.is_empty() => write!(f, "variable `{}` is {state}: {m}", self.name),
            _ if self.empty => write!(f, "variable `{}` is empty", self.name),
            _ => write!(
                f,
                "variable `{}` is not set and its placeholder has no default \
                 (set it, or write `${{{}:-default}}`)",
                self.name, self.name
            ),
        }
    }
}

/// Expands `template` with `lookup`.
///
/// # Errors
/// Every placeholder whose variable is missing (all of them, not only the first).
pub fn expand<'v>(
    template: &Template,
    lookup: impl Fn(&str) -> Option<&'v str>,
) -> Result<(String, Vec<Use>), Vec<Missing>> {
    let mut out = String::new();
    let mut uses = Vec::new();
    let mut missing = Vec::new();
    for piece in &template.pieces {
        let p = match piece {
            Piece::Text(t) => {
                out.push_str(t);
                continue;
            }
            Piece::Placeholder(p) => p,
        };
        let value = lookup(&p.name);
        let missing_here = |empty| Missing {
            offset: p.offset,
            name: p.name.clone(),
            empty,
            message: Some(p.argument.clone()),
        };
        let resolved = match (p.operator, value) {
            (Operator::Plain, Some(v)) | (Operator::DefaultUnlessSet, Some(v)) => {
                Ok((v, Resolution::Value))
            }
            (Operator::RequireSet, Some(v)) => Ok((v, Resolution::Value)),
            (Operator::DefaultUnlessNonEmpty | Operator::RequireNonEmpty, Some(v))
                if !v.is_empty() =>
            {
                Ok((v, Resolution::Value))
            }
            (Operator::DefaultUnlessNonEmpty, _) | (Operator::DefaultUnlessSet, None) => {
                Ok((p.argument.as_str(), Resolution::Default))
            }
            (Operator::Plain, None) => Err(Missing {
                message: None,
                ..missing_here(false)
            }),
            (Operator::RequireSet, None) | (Operator::RequireNonEmpty, None) => {
                Err(missing_here(false))
            }
            (Operator::RequireNonEmpty, Some(_)) => Err(missing_here(true)),
        };
        match resolved {
            Ok((text, resolution)) => {
                out.push_str(text);
                uses.push(Use {
                    offset: p.offset,
                    name: p.name.clone(),
                    resolution,
                });
            }
            Err(m) => missing.push(m),
        }
    }
    if missing.is_empty() {
        Ok((out, uses))
    } else {
        Err(missing)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn render(text: &str, vars: &[(&str, &str)]) -> Result<String, String> {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        let t = parse(text).map_err(|e| e[0].error.to_string())?;
        expand(&t, |n| vars.get(n).copied())
            .map(|(s, _)| s)
            .map_err(|m| {
                m.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
    }

    #[test]
    fn operators() {
        let v = [("A", "x"), ("E", "")];
        assert_eq!(render("${A}", &v).unwrap(), "x");
        assert_eq!(render("${E}", &v).unwrap(), "");
        assert_eq!(render("${A:-d}", &v).unwrap(), "x");
        assert_eq!(render("${E:-d}", &v).unwrap(), "d");
        assert_eq!(render("${U:-d}", &v).unwrap(), "d");
        assert_eq!(render("${E-d}", &v).unwrap(), "");
        assert_eq!(render("${U-d}", &v).unwrap(), "d");
        assert_eq!(render("${U-}", &v).unwrap(), "");
        assert_eq!(render("${A:?need A}", &v).unwrap(), "x");
        assert_eq!(render("${E?need E}", &v).unwrap(), "");
        let e = render("${E:?need E}", &v).unwrap_err();
        assert_eq!(e, "variable `E` is empty: need E");
        let e = render("${U?need U}", &v).unwrap_err();
        assert_eq!(e, "variable `U` is not set: need U");
        let e = render("${U}", &v).unwrap_err();
        assert!(
            e.starts_with("variable `U` is not set and its placeholder has no default"),
            "{e}"
        );
    }

    #[test]
    fn literal_dollars() {
        let v = [("HOME", "/root"), ("A", "x")];
        // `$` is an escape only right before `{`.
        assert_eq!(render("$HOME and $$HOME", &v).unwrap(), "$HOME and $$HOME");
        assert_eq!(render("$${A}", &v).unwrap(), "${A}");
        assert_eq!(render("$$$${A}", &v).unwrap(), "$${A}");
        assert_eq!(render("$$${A}", &v).unwrap(), "$x");
        assert_eq!(render("$$$$${A}!", &v).unwrap(), "$$x!");
        assert_eq!(render("cost: 5$", &v).unwrap(), "cost: 5$");
        assert_eq!(render("${A:-$$5}", &v).unwrap(), "x");
        assert_eq!(render("${U:-$$5 and $x}", &v).unwrap(), "$$5 and $x");
        assert!(!has_syntax("$HOME $1 5$ $$ $$(A)"));
        assert!(has_syntax("a$${b") && has_syntax("${A}"));
    }

    #[test]
    fn kubernetes_dollar_parens_stay_as_written() {
        let v = [("A", "x")];
        // Kubernetes reads `$(VAR)` in command/args/env as a reference and `$$(VAR)` as the
        // literal `$(VAR)`: both must reach it unchanged, next to kstep's own placeholders.
        for text in [
            "$$(VAR)",
            "echo $(VAR) $$(VAR) $$$(VAR) $$$$(VAR)",
            "kill -0 $$; echo $$PPID",
            "$$",
            "$",
            "a$$",
        ] {
            assert_eq!(render(text, &v).unwrap(), text, "{text}");
        }
        assert_eq!(
            render("--name=$$(POD_NAME) --tag=${A} --lit=$${A}", &v).unwrap(),
            "--name=$$(POD_NAME) --tag=x --lit=${A}"
        );
    }

    #[test]
    fn placeholder_offsets_follow_the_parser() {
        let text = "$$(A) ${A} $${B} $$${C} x$$$${D} ${#E}";
        let offsets = placeholder_offsets(text);
        assert_eq!(offsets, vec![6, 19, 33]);
        let from_parse: Vec<usize> = match parse(text) {
            Ok(t) => t.placeholders().map(|p| p.offset).collect(),
            Err(e) => e.iter().map(|e| e.offset).collect(),
        };
        // `${#E}` is an error: the parser reports only errors then; its offset is the last.
        assert_eq!(from_parse, vec![33]);
        let t = parse("$$(A) ${A} $${B} $$${C} x$$$${D}").unwrap();
        let parsed: Vec<usize> = t.placeholders().map(|p| p.offset).collect();
        assert_eq!(parsed, vec![6, 19]);
    }

    #[test]
    fn values_are_not_rescanned() {
        assert_eq!(render("${A}", &[("A", "${B}")]).unwrap(), "${B}");
        assert_eq!(render("${A}", &[("A", "$$")]).unwrap(), "$$");
        assert_eq!(render("${A}", &[("A", "$${B}")]).unwrap(), "$${B}");
    }

    #[test]
    fn whole_versus_embedded() {
        assert!(parse("${A}").unwrap().whole().is_some());
        assert!(parse("${A:-3}").unwrap().whole().is_some());
        assert!(parse("v${A}").unwrap().whole().is_none());
        assert!(parse("${A}${B}").unwrap().whole().is_none());
        assert!(parse("$$").unwrap().whole().is_none());
    }

    #[test]
    fn syntax_errors_are_all_reported_with_offsets() {
        let errors =
            parse("a ${} b ${1X} ${A:=x} ${A/b/c} ${#A} ${A B} ${A:-${B}} ${OK} ${").unwrap_err();
        let found: Vec<(usize, &SyntaxError)> =
            errors.iter().map(|e| (e.offset, &e.error)).collect();
        assert_eq!(
            found,
            vec![
                (2, &SyntaxError::EmptyName),
                (8, &SyntaxError::InvalidName("${1X}".into())),
                (14, &SyntaxError::UnsupportedOperator("${A:=x}".into())),
                (22, &SyntaxError::UnsupportedOperator("${A/b/c}".into())),
                (31, &SyntaxError::InvalidName("${#A}".into())),
                (37, &SyntaxError::InvalidName("${A B}".into())),
                (44, &SyntaxError::Nested("${A:-${B}}".into())),
                (61, &SyntaxError::Unterminated),
            ]
        );
    }

    #[test]
    fn every_missing_variable_is_reported() {
        let t = parse("${A}-${B:?b please}-${C:-c}-${D}").unwrap();
        let missing = expand(&t, |_| None).unwrap_err();
        let names: Vec<(&str, usize)> = missing
            .iter()
            .map(|m| (m.name.as_str(), m.offset))
            .collect();
        assert_eq!(names, vec![("A", 0), ("B", 5), ("D", 28)]);
    }

    #[test]
    fn uses_record_defaults() {
        let t = parse("${A}${B:-x}").unwrap();
        let (s, uses) = expand(&t, |n| (n == "A").then_some("a")).unwrap();
        assert_eq!(s, "ax");
        assert_eq!(uses[0].resolution, Resolution::Value);
        assert_eq!(
            (uses[1].name.as_str(), uses[1].offset, uses[1].resolution),
            ("B", 4, Resolution::Default)
        );
    }
}
