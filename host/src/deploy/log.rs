//! Job-log conventions: GitLab collapsible sections and durations.
//!
//! Inside GitLab CI (`GITLAB_CI` set) a section is
//! `ESC[0Ksection_start:UNIX:NAME[collapsed=true]\rESC[0KHEADER` … `ESC[0Ksection_end:UNIX:NAME\rESC[0K`;
//! anywhere else the header is printed as a plain `==> HEADER` line and nothing marks the end.
//! Everything goes through [`crate::output`] (masking).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::output;

/// Whether to emit GitLab section markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sections {
    gitlab: bool,
}

/// Whether this runs inside a GitLab CI job (`GITLAB_CI` set and not empty).
pub fn in_gitlab_ci() -> bool {
    std::env::var_os("GITLAB_CI").is_some_and(|v| !v.is_empty())
}

impl Sections {
    /// GitLab markers when `GITLAB_CI` is set (GitLab's runner sets it to `true`), or when
    /// `KSTEP_LOG_SECTIONS=gitlab` forces them; plain headers otherwise (`KSTEP_LOG_SECTIONS=plain`
    /// forces those).
    pub fn from_env() -> Self {
        let gitlab = match std::env::var("KSTEP_LOG_SECTIONS").as_deref() {
            Ok("gitlab") => true,
            Ok("plain") => false,
            _ => in_gitlab_ci(),
        };
        Self { gitlab }
    }

    /// Plain headers, never markers.
    pub fn plain() -> Self {
        Self { gitlab: false }
    }

    /// Opens section `name` (`[a-z0-9_.-]`) with a visible `header`.
    pub fn start(&self, name: &str, header: &str, collapsed: bool) {
        output::stdout(&self.start_text(name, header, collapsed, unix_now()));
    }

    /// Closes section `name`.
    pub fn end(&self, name: &str) {
        output::stdout(&self.end_text(name, unix_now()));
    }

    fn start_text(&self, name: &str, header: &str, collapsed: bool, now: u64) -> String {
        if self.gitlab {
            let options = if collapsed { "[collapsed=true]" } else { "" };
            format!("\x1b[0Ksection_start:{now}:{name}{options}\r\x1b[0K{header}\n")
        } else {
            format!("==> {header}\n")
        }
    }

    fn end_text(&self, name: &str, now: u64) -> String {
        if self.gitlab {
            format!("\x1b[0Ksection_end:{now}:{name}\r\x1b[0K\n")
        } else {
            String::new()
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `0.84 s`, `12.3 s`, `2m05s`: short and stable in logs.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.2} s")
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else {
        // What `--timeout` and `wait: {timeout:}` read back.
        crate::duration::format(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitlab_markers() {
        let s = Sections { gitlab: true };
        assert_eq!(
            s.start_text("apply", "Apply 3 objects", true, 1700000000),
            "\x1b[0Ksection_start:1700000000:apply[collapsed=true]\r\x1b[0KApply 3 objects\n"
        );
        assert_eq!(
            s.end_text("apply", 1700000001),
            "\x1b[0Ksection_end:1700000001:apply\r\x1b[0K\n"
        );
        let p = Sections::plain();
        assert_eq!(p.start_text("apply", "Apply", false, 0), "==> Apply\n");
        assert_eq!(p.end_text("apply", 0), "");
    }

    #[test]
    fn durations() {
        assert_eq!(seconds(Duration::from_millis(840)), "0.84 s");
        assert_eq!(seconds(Duration::from_millis(12_340)), "12.3 s");
        assert_eq!(seconds(Duration::from_secs(125)), "2m05s");
    }
}
