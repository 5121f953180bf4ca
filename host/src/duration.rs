//! Durations as kstep reads and prints them: `500ms`, `45s`, `5m`, `1m30s`, `1h5m`, `8760h`.
//!
//! [`parse`] takes one or more `NUMBER UNIT` parts (units `h`, `m`, `s`, `ms`, largest first,
//! each at most once), and requires a unit: a bare `90` could mean seconds or minutes, so it is
//! refused rather than guessed. [`format`] writes what [`parse`] reads back (`5m00s`, `1m30s`),
//! so a duration kstep prints can be pasted into a flag or `kstep.yaml`.

use std::time::Duration;

/// The units, largest first, with their length in milliseconds.
const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Parses `2s`, `500ms`, `5m`, `1h`, or a compound like `1m30s`, `1h5m`, `5m00s`.
///
/// # Errors
/// A message quoting `text` and naming the accepted forms: no unit, an unknown unit, units out
/// of order or repeated, zero, or out of range.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let like = "like 90s, 500ms, 5m or 1m30s";
    if text.is_empty() {
        return Err(format!("an empty duration: give one {like}"));
    }
    let mut rest = text;
    let mut total: u64 = 0;
    // Index into UNITS of the last unit used: the next must be smaller.
    let mut previous: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{text}` is not a duration {like}"));
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(if previous.is_none() {
                format!("`{text}` needs a unit: `{number}s`, `{number}m`… ({like})")
            } else {
                format!("`{text}`: `{number}` at the end needs a unit ({like})")
            });
        }
        let Some(index) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(format!(
                "`{text}`: unknown unit `{}` (use h, m, s or ms, {like})",
                unit.trim()
            ));
        };
        if previous.is_some_and(|p| index <= p) {
            return Err(format!(
                "`{text}`: write the units largest first, each once (h, m, s, ms)"
            ));
        }
        previous = Some(index);
        let part = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(UNITS[index].1))
            .and_then(|ms| total.checked_add(ms));
        total = part.ok_or_else(|| format!("`{text}`: out of range"))?;
        rest = next;
    }
    if total == 0 {
        return Err(format!("`{text}`: a duration must be positive"));
    }
    Ok(Duration::from_millis(total))
}

/// `500ms` under a second, `45s` under a minute, then `5m00s`, `1m30s`, `2h05m00s`: whole
/// seconds from a second on, and always text [`parse`] reads back (to the second).
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m{:02}s", s / 3600, s % 3600 / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn secs(n: u64) -> Result<Duration, String> {
        Ok(Duration::from_secs(n))
    }

    #[test]
    fn single_and_compound_durations() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2s"), secs(2));
        assert_eq!(parse("5m"), secs(300));
        assert_eq!(parse("8760h"), secs(8760 * 3600));
        assert_eq!(parse("1m30s"), secs(90));
        assert_eq!(parse("1h5m"), secs(3900));
        assert_eq!(parse("5m00s"), secs(300));
        assert_eq!(parse("1s500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse(" 2h05m00s "), secs(7500));
    }

    #[test]
    fn a_unit_is_required() {
        let e = parse("90").unwrap_err();
        assert!(e.starts_with("`90` needs a unit"), "{e}");
        let e = parse("1m30").unwrap_err();
        assert!(e.contains("`30` at the end needs a unit"), "{e}");
    }

    #[test]
    fn what_is_refused() {
        assert!(
            parse("2 parsecs")
                .unwrap_err()
                .starts_with("`2 parsecs`: unknown unit `parsecs`")
        );
        assert!(parse("5d").unwrap_err().contains("unknown unit `d`"));
        assert!(parse("30s1m").unwrap_err().contains("largest first"));
        assert!(parse("1m1m").unwrap_err().contains("largest first"));
        assert!(parse("0s").unwrap_err().contains("must be positive"));
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("m").unwrap_err().contains("is not a duration"));
        assert!(parse("-5s").unwrap_err().contains("is not a duration"));
        assert_eq!(
            parse("18446744073709551615h"),
            Err("`18446744073709551615h`: out of range".to_owned())
        );
    }

    #[test]
    fn what_is_printed_parses_back() {
        for (d, text) in [
            (Duration::from_millis(250), "250ms"),
            (Duration::from_secs(45), "45s"),
            (Duration::from_secs(300), "5m00s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600 + 5 * 60), "1h05m00s"),
            (Duration::from_secs(8760 * 3600), "8760h00m00s"),
        ] {
            assert_eq!(format(d), text);
            assert_eq!(parse(text), Ok(d), "{text}");
        }
        // From a second on, to the second.
        assert_eq!(format(Duration::from_millis(61_999)), "1m01s");
    }
}
