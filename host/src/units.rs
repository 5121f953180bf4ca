//! Durations and sizes as users write them (`--timeout 5m`, `limits: {memory: 64MiB}`): the
//! one parser of each, for the command line and `kstep.yaml` alike.

use std::time::Duration;

/// Parses a duration: [`crate::duration::parse`] (`500ms`, `1m30s`; a unit is required).
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse(text)
}

/// Parses `128MiB`, `1GiB`, `512KiB` or a number of bytes.
///
/// # Errors
/// A message naming the accepted units.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: usize = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 128MiB"))?;
    let shift = match unit {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use KiB, MiB or GiB)"
            ));
        }
    };
    n.checked_shl(shift)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("`{text}`: out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("0s").is_err());
        assert_eq!(
            parse_duration("18446744073709551615h"),
            Err("`18446744073709551615h`: out of range".to_owned())
        );
        assert_eq!(parse_size("128MiB"), Ok(128 << 20));
        assert!(parse_size("1TB").is_err());
    }
}
