//! `kstep.lock`, beside `kstep.yaml`: the manifest digest each `oci://` step reference
//! resolved to when `kstep step lock` ran, so that a pipeline runs the bytes that were reviewed.
//! Written for a merge request diff: one entry per reference, sorted, three lines each.
//!
//! ```yaml
//! # kstep.lock: written by `kstep step lock`, read by `kstep run`. Commit it.
//! version: 1
//! steps:
//!   - reference: oci://registry.example.com/group/steps/deny-latest:1.2
//!     digest: sha256:4f1c…
//!     resolved-from: https://registry.example.com/v2/group/steps/deny-latest/manifests/1.2
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{StepRef, is_digest};

/// The lock file's name, in the project directory.
pub const FILE_NAME: &str = "kstep.lock";

const HEADER: &str = "# kstep.lock: written by `kstep step lock`, read by `kstep run` (which runs these digests). Commit it.\n";

/// One locked reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Entry {
    /// The reference as written in `kstep.yaml`.
    pub reference: String,
    /// The manifest digest it resolved to.
    pub digest: String,
    /// The URL the digest was read from.
    pub resolved_from: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    version: u32,
    #[serde(default)]
    steps: Vec<Entry>,
}

/// The lock file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    /// The entries, sorted by reference.
    pub entries: Vec<Entry>,
}

/// A lock file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct LockError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// The lock file of the project in `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

impl Lock {
    /// Reads `path`; an empty lock when it does not exist.
    ///
    /// # Errors
    /// When it cannot be read or is not a lock file (with the position of the problem).
    pub fn read(path: &Path) -> Result<Self, LockError> {
        let fail = |message: String| LockError {
            path: path.display().to_string(),
            message,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(fail(e.to_string())),
        };
        let raw: RawLock = serde_saphyr::from_str(&text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("{}:{}: ", l.line(), l.column()))
                .unwrap_or_default();
            fail(format!("{at}{}", e.without_snippet()))
        })?;
        if raw.version != 1 {
            return Err(fail(format!(
                "version {} is not one this kstep reads (1)",
                raw.version
            )));
        }
        for entry in &raw.steps {
            if !is_digest(&entry.digest) {
                return Err(fail(format!(
                    "`{}`: `{}` is not a sha256 digest",
                    entry.reference, entry.digest
                )));
            }
            entry
                .reference
                .parse::<StepRef>()
                .map_err(|e| fail(e.to_string()))?;
        }
        let mut lock = Self { entries: raw.steps };
        lock.entries.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(lock)
    }

    /// The entry of `reference`.
    pub fn get(&self, reference: &StepRef) -> Option<&Entry> {
        let text = reference.to_string();
        self.entries.iter().find(|e| e.reference == text)
    }

    /// The file's text.
    ///
    /// # Errors
    /// When the YAML writer fails (it does not for these types).
    pub fn to_text(&self) -> Result<String, LockError> {
        let mut entries = self.entries.clone();
        entries.sort_by(|a, b| a.reference.cmp(&b.reference));
        entries.dedup_by(|a, b| a.reference == b.reference);
        let body = serde_saphyr::to_string(&RawLock {
            version: 1,
            steps: entries,
        })
        .map_err(|e| LockError {
            path: FILE_NAME.into(),
            message: e.to_string(),
        })?;
        Ok(format!("{HEADER}{body}"))
    }

    /// Writes the lock to `path` atomically.
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        let text = self.to_text()?;
        crate::fsutil::write_atomic(path, text.as_bytes(), None).map_err(|e| LockError {
            path: path.display().to_string(),
            message: format!("cannot write: {e}"),
        })
    }
}

/// The URL a tag or digest is resolved at (for `resolved-from`).
pub fn manifest_url(reference: &StepRef) -> String {
    let what = reference
        .digest
        .as_deref()
        .or(reference.tag.as_deref())
        .unwrap_or("latest");
    format!(
        "https://{}/v2/{}/manifests/{what}",
        reference.registry, reference.repository
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn writes_and_reads_back_one_entry_per_reference() {
        let dir = std::env::temp_dir().join(format!("kstep-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = path_in(&dir);
        let _ = std::fs::remove_file(&path);
        assert_eq!(Lock::read(&path).unwrap(), Lock::default());
        let r: StepRef = "oci://127.0.0.1:5000/steps/b:1".parse().unwrap();
        let entry = |reference: &str| Entry {
            reference: reference.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            resolved_from: manifest_url(&reference.parse().unwrap()),
        };
        let lock = Lock {
            entries: vec![
                entry("oci://127.0.0.1:5000/steps/b:1"),
                entry("oci://r.example/a:2"),
            ],
        };
        lock.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# kstep.lock"), "{text}");
        assert!(
            text.contains("resolved-from: https://127.0.0.1:5000/v2/steps/b/manifests/1"),
            "{text}"
        );
        let back = Lock::read(&path).unwrap();
        assert_eq!(back.entries.len(), 2);
        assert_eq!(
            back.get(&r).unwrap().digest,
            format!("sha256:{}", "a".repeat(64))
        );
        std::fs::write(&path, "version: 1\nsteps:\n  - reference: oci://r/a:1\n    digest: md5:x\n    resolved-from: x\n").unwrap();
        let e = Lock::read(&path).unwrap_err().to_string();
        assert!(e.contains("`md5:x` is not a sha256 digest"), "{e}");
        std::fs::write(&path, "version: 1\nstepz: []\n").unwrap();
        let e = Lock::read(&path).unwrap_err().to_string();
        assert!(e.contains("2:1: "), "{e}");
    }
}
