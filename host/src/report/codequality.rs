//! GitLab's Code Quality report (`artifacts:reports:codequality`): a JSON array of Code Climate
//! issues, each with `description`, `check_name`, `fingerprint`, `severity` and
//! `location.path` / `location.lines.begin`; GitLab shows them in the merge request's diff.
//!
//! Only findings in a file of the project are written (GitLab can place nothing else). The
//! fingerprint is what GitLab compares between the source and the target branch to tell new
//! findings from fixed ones, so it leaves out what moves without the finding changing — its
//! line and column — and counts equal findings in a file instead (GitLab shows one finding per
//! fingerprint).

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Collected, Level};
use crate::output::mask;

/// GitLab's severity of a level: an error stops the command (`critical`), a warning is
/// `minor`, a note `info`.
pub fn severity(level: Level) -> &'static str {
    match level {
        Level::Error => "critical",
        Level::Warning => "minor",
        Level::Info => "info",
    }
}

/// The report's JSON text (paths relative to `project`, texts masked).
pub fn render(collected: &Collected, project: &Path) -> String {
    let mut seen: HashMap<(String, String, String), u32> = HashMap::new();
    let mut issues = Vec::new();
    for f in &collected.findings {
        let Some(path) = super::relative_to(project, &f.path) else {
            continue;
        };
        let path = mask(&path).into_owned();
        let description = mask(&f.message).into_owned();
        let check = mask(&f.check).into_owned();
        let occurrence = seen
            .entry((check.clone(), path.clone(), description.clone()))
            .or_insert(0);
        *occurrence += 1;
        let mut hash = Sha256::new();
        for part in [check.as_str(), path.as_str(), description.as_str()] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hash.update(occurrence.to_string().as_bytes());
        let fingerprint: String = hash.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut location = json!({"path": path, "lines": {"begin": f.line.max(1)}});
        if f.line > 0 {
            location["positions"] = json!({"begin": {"line": f.line, "column": f.column.max(1)}});
        }
        issues.push(json!({
            "type": "issue",
            "description": description,
            "check_name": check,
            "categories": ["Bug Risk"],
            "fingerprint": fingerprint,
            "severity": severity(f.level),
            "location": location,
        }));
    }
    let mut text = serde_json::to_string_pretty(&Value::Array(issues)).unwrap_or_default();
    text.push('\n');
    text
}
