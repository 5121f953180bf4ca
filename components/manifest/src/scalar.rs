//! Typing plain scalars.
//!
//! kstep types a plain (unquoted) scalar exactly as kubectl's YAML reader does
//! (`sigs.k8s.io/yaml`, a YAML 1.1 reader derived from go-yaml v2), because manifests are
//! written for kubectl and must mean the same thing: `on`/`yes`/`y` are booleans, `0644` is the
//! octal integer 420, `1_000` is 1000, `1.10` is the float 1.1, `2024-01-01` stays a string
//! (kubectl keeps it too, checked with kubectl 1.36). The same rule types a placeholder that is
//! a whole plain scalar, so `replicas: ${N}` with `N=3` is the integer 3, as if `3` had been
//! written there. [`yaml12`] gives the YAML 1.2 core-schema reading, used only to warn where the
//! two disagree.

/// The type a plain scalar resolves to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resolved {
    /// `~`, `null`, the empty scalar.
    Null,
    /// `true`, `yes`, `on`…
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// An integer above `i64::MAX` that fits `u64`.
    UInt(u64),
    /// A float (possibly infinite or NaN: `.inf`, `.nan`, which JSON cannot carry).
    Float(f64),
    /// Anything else: a string.
    Str,
}

impl Resolved {
    /// A short name for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Null => "null".into(),
            Self::Bool(b) => format!("the boolean {b}"),
            Self::Int(i) => format!("the integer {i}"),
            Self::UInt(u) => format!("the integer {u}"),
            Self::Float(f) => format!("the number {}", json_float(*f)),
            Self::Str => "a string".into(),
        }
    }

    /// How the value is written in JSON, for a non-string (`None` for a string).
    pub fn json_spelling(&self) -> Option<String> {
        Some(match self {
            Self::Null => "null".to_owned(),
            Self::Bool(b) => b.to_string(),
            Self::Int(i) => i.to_string(),
            Self::UInt(u) => u.to_string(),
            Self::Float(f) => json_float(*f),
            Self::Str => return None,
        })
    }
}

/// How a float is written in JSON, the way Go's `encoding/json` (kubectl) writes it: integral
/// values without a fraction (`1000`, not `1000.0`), so integer API fields accept them.
pub fn json_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f:.0}")
    } else {
        format!("{f}")
    }
}

/// go-yaml v2's `resolve` for an untagged plain scalar, without timestamps.
pub fn kubectl(text: &str) -> Resolved {
    // go-yaml's own first-character table: nothing else can resolve to anything but a string.
    // Most scalars (names, images, paths) leave here.
    if !matches!(
        text.as_bytes().first(),
        None | Some(
            b'0'..=b'9'
                | b'+'
                | b'-'
                | b'.'
                | b'~'
                | b'y'
                | b'Y'
                | b'n'
                | b'N'
                | b't'
                | b'T'
                | b'f'
                | b'F'
                | b'o'
                | b'O'
        )
    ) {
        return Resolved::Str;
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Resolved::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Resolved::Bool(false);
        }
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        _ => {}
    }
    match text.as_bytes()[0] {
        // Go's ParseFloat on the text as is.
        b'.' => go_parse_float(text).map_or(Resolved::Str, Resolved::Float),
        b'0'..=b'9' | b'+' | b'-' => {
            let plain = if text.contains('_') {
                std::borrow::Cow::Owned(text.replace('_', ""))
            } else {
                std::borrow::Cow::Borrowed(text)
            };
            if let Some(i) = go_parse_int(&plain) {
                return i;
            }
            if is_yaml_float(&plain)
                && let Some(f) = go_parse_float(&plain)
            {
                return Resolved::Float(f);
            }
            Resolved::Str
        }
        _ => Resolved::Str,
    }
}

/// The YAML 1.2 core schema's reading of a plain scalar.
pub fn yaml12(text: &str) -> Resolved {
    if !matches!(
        text.as_bytes().first(),
        None | Some(
            b'0'..=b'9' | b'+' | b'-' | b'.' | b'~' | b'n' | b'N' | b't' | b'T' | b'f' | b'F'
        )
    ) {
        return Resolved::Str;
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let digits = |s: &str, radix: u32| !s.is_empty() && s.chars().all(|c| c.is_digit(radix));
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits(unsigned, 10) {
        return int_or_str(text.parse::<i64>().ok(), text.parse::<u64>().ok());
    }
    if let Some(o) = text.strip_prefix("0o").filter(|s| digits(s, 8)) {
        return int_or_str(
            i64::from_str_radix(o, 8).ok(),
            u64::from_str_radix(o, 8).ok(),
        );
    }
    if let Some(h) = text.strip_prefix("0x").filter(|s| digits(s, 16)) {
        return int_or_str(
            i64::from_str_radix(h, 16).ok(),
            u64::from_str_radix(h, 16).ok(),
        );
    }
    if is_yaml_float(text)
        && let Ok(f) = text.parse::<f64>()
    {
        return Resolved::Float(f);
    }
    Resolved::Str
}

fn int_or_str(i: Option<i64>, u: Option<u64>) -> Resolved {
    match (i, u) {
        (Some(i), _) => Resolved::Int(i),
        (None, Some(u)) => Resolved::UInt(u),
        // YAML 1.2 calls it an int; no integer type holds it.
        (None, None) => Resolved::Str,
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$` (go-yaml's `yamlStyleFloat`, also
/// the YAML 1.2 core float without `.inf`/`.nan`).
fn is_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => !frac.is_empty() && all_digits(frac),
        Some((whole, frac)) => all_digits(whole) && all_digits(frac),
        None => !mantissa.is_empty() && all_digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok
}

/// Go's `strconv.ParseInt(s, 0, 64)`, falling back to `ParseUint(s, 0, 64)` (go-yaml tries
/// both): optional sign, `0x`/`0o`/`0b` prefixes, a leading `0` means octal.
fn go_parse_int(s: &str) -> Option<Resolved> {
    let (negative, unsigned) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = unsigned.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &unsigned[2..]),
        Some("0o") => (8, &unsigned[2..]),
        Some("0b") => (2, &unsigned[2..]),
        _ if unsigned.len() > 1 && unsigned.starts_with('0') => (8, &unsigned[1..]),
        _ => (10, unsigned),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        // i64::MIN's magnitude is one above i64::MAX.
        let i = 0i64.checked_sub_unsigned(magnitude)?;
        Some(Resolved::Int(i))
    } else {
        Some(match i64::try_from(magnitude) {
            Ok(i) => Resolved::Int(i),
            Err(_) => Resolved::UInt(magnitude),
        })
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for the spellings go-yaml passes it: out of range is an
/// error (the scalar stays a string), not an infinity.
fn go_parse_float(s: &str) -> Option<f64> {
    if !is_yaml_float(s) {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Every row was checked against kubectl 1.36 (`kubectl label --local -o json`).
    #[test]
    fn kubectl_readings() {
        let cases: &[(&str, Resolved)] = &[
            ("on", Resolved::Bool(true)),
            ("yes", Resolved::Bool(true)),
            ("y", Resolved::Bool(true)),
            ("n", Resolved::Bool(false)),
            ("Off", Resolved::Bool(false)),
            ("0644", Resolved::Int(420)),
            ("2024-01-01", Resolved::Str),
            ("2001-12-14t21:59:43.10-05:00", Resolved::Str),
            ("1.10", Resolved::Float(1.1)),
            ("1_000", Resolved::Int(1000)),
            ("0o17", Resolved::Int(15)),
            ("08", Resolved::Float(8.0)),
            (".5", Resolved::Float(0.5)),
            ("1e3", Resolved::Float(1000.0)),
            ("0b101", Resolved::Int(5)),
            ("1:30", Resolved::Str),
            ("~", Resolved::Null),
            ("", Resolved::Null),
            ("0x1F", Resolved::Int(31)),
            ("1e400", Resolved::Str),
            ("1.0", Resolved::Float(1.0)),
            (
                "12345678901234567890",
                Resolved::UInt(12_345_678_901_234_567_890),
            ),
            ("-9223372036854775808", Resolved::Int(i64::MIN)),
            ("+12", Resolved::Int(12)),
            ("-0x10", Resolved::Int(-16)),
            ("1.2.3", Resolved::Str),
            ("-", Resolved::Str),
            ("nginx:1.27", Resolved::Str),
            ("3", Resolved::Int(3)),
        ];
        for (text, want) in cases {
            let got = kubectl(text);
            match (got, want) {
                (Resolved::Float(a), Resolved::Float(b)) => {
                    assert!((a - b).abs() < 1e-12, "{text}")
                }
                _ => assert_eq!(got, *want, "{text}"),
            }
        }
        assert!(matches!(kubectl(".inf"), Resolved::Float(f) if f.is_infinite()));
        assert!(matches!(kubectl(".nan"), Resolved::Float(f) if f.is_nan()));
    }

    #[test]
    fn yaml12_readings() {
        assert_eq!(yaml12("on"), Resolved::Str);
        assert_eq!(yaml12("yes"), Resolved::Str);
        assert_eq!(yaml12("0644"), Resolved::Int(644));
        assert_eq!(yaml12("0o17"), Resolved::Int(15));
        assert_eq!(yaml12("1_000"), Resolved::Str);
        assert_eq!(yaml12("0b101"), Resolved::Str);
        assert_eq!(yaml12("1.10"), Resolved::Float(1.1));
        assert_eq!(yaml12("true"), Resolved::Bool(true));
    }

    #[test]
    fn floats_are_written_like_go() {
        assert_eq!(json_float(1000.0), "1000");
        assert_eq!(json_float(1.1), "1.1");
        assert_eq!(json_float(-0.5), "-0.5");
    }
}
