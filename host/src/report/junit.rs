//! The JUnit XML report (`artifacts:reports:junit`): one `<testsuite>` for the command, one
//! `<testcase>` per step or check. A failure carries why the check stopped, then the error
//! findings recorded while it ran; warnings and notes go to the case's `<system-out>`, the
//! end of what kstep wrote on stderr meanwhile to its `<system-err>`. GitLab
//! shows the suite in the merge request's test widget.

use std::fmt::Write as _;

use super::{Collected, Level, Outcome};
use crate::output::mask;

/// The report's XML text (texts masked).
pub fn render(collected: &Collected) -> String {
    let suite = escape(&collected.command);
    let tests = collected.cases.len();
    let failures = collected
        .cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
        .count();
    let skipped = collected
        .cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
        .count();
    let time: f64 = collected.cases.iter().map(|c| c.time.as_secs_f64()).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"kstep\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" \
         skipped=\"{skipped}\" time=\"{time:.3}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" \
         skipped=\"{skipped}\" time=\"{time:.3}\">"
    );
    for case in &collected.cases {
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"{suite}\" time=\"{:.3}\"",
            escape(&case.name),
            case.time.as_secs_f64()
        );
        let findings = || case.findings.iter().map(|&i| &collected.findings[i]);
        let errors: Vec<String> = findings()
            .filter(|f| f.level == Level::Error)
            .map(super::Finding::line_text)
            .collect();
        // A check may pass with errors (a `step test` case that expects them): then they are
        // output like the rest.
        let passed = matches!(case.outcome, Outcome::Passed);
        let others: Vec<String> = findings()
            .filter(|f| passed || f.level != Level::Error)
            .map(super::Finding::line_text)
            .collect();
        if passed && others.is_empty() && case.log.is_empty() {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        match &case.outcome {
            Outcome::Passed => {}
            Outcome::Failed(why) => {
                // Why it stopped first (the failure's message), then its errors.
                let mut lines: Vec<String> = Vec::new();
                if !why.is_empty() {
                    lines.extend(why.lines().map(str::to_owned));
                }
                lines.extend(errors);
                if lines.is_empty() {
                    // Nothing positioned: the end of what it wrote says why.
                    lines.extend(case.log.last().cloned());
                }
                if lines.is_empty() {
                    lines.push("failed".to_owned());
                }
                let _ = writeln!(
                    out,
                    "      <failure type=\"failure\" message=\"{}\">{}</failure>",
                    escape(&lines[0]),
                    escape(&lines.join("\n"))
                );
            }
            Outcome::Skipped(why) => {
                let _ = writeln!(out, "      <skipped message=\"{}\"/>", escape(why));
            }
        }
        if !others.is_empty() {
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>",
                escape(&others.join("\n"))
            );
        }
        if !case.log.is_empty() {
            let _ = writeln!(
                out,
                "      <system-err>{}</system-err>",
                escape(&case.log.join("\n"))
            );
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// `text` masked, then escaped for an XML attribute or text node; characters XML 1.0 cannot
/// hold (most control characters) become U+FFFD.
fn escape(text: &str) -> String {
    let masked = mask(text);
    let mut out = String::with_capacity(masked.len());
    for c in masked.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c if u32::from(c) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_special_and_control_characters_are_escaped() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(escape("x\u{1}y"), "x\u{fffd}y");
        assert_eq!(escape("1\n2"), "1&#10;2");
    }
}
