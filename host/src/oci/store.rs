//! Pulled steps cached by digest, so a locked pipeline runs without the registry:
//!
//! ```text
//! <cache>/oci/manifests/sha256/<hex>   the manifest, named by its own digest
//! <cache>/oci/blobs/sha256/<hex>       the component, named by its layer digest
//! ```
//!
//! `<cache>` is the compile cache's directory ([`CompileCache::default_dir`]). The directories
//! are created 0700 and trusted only when owned by the user (or root) and not writable by
//! others, like the compile cache; and every load checks both files against their digests
//! anyway, so a tampered entry is refused, never run.

use std::path::{Path, PathBuf};

use super::{Artifact, OciError, check_digest, wasm_layer};
use crate::runtime::cache::{CompileCache, untrusted};

/// The cache of pulled steps.
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The cache under `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The cache in the user's cache directory.
    ///
    /// # Errors
    /// When no cache directory can be found (no `HOME`).
    pub fn default_location() -> Result<Self, OciError> {
        CompileCache::default_dir()
            .map(|d| Self::new(d.join("oci")))
            .ok_or_else(|| {
                OciError::Cache(
                    "no cache directory for pulled steps: set KSTEP_CACHE_DIR or HOME".into(),
                )
            })
    }

    fn path(&self, kind: &str, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.join(kind).join("sha256").join(hex)
    }

    /// The step at `digest`, if cached; checked against its digests.
    ///
    /// # Errors
    /// [`OciError::Digest`] for a tampered or corrupt entry, [`OciError::Cache`] for one that
    /// cannot be read or trusted.
    pub fn load(&self, reference: &str, digest: &str) -> Result<Option<Artifact>, OciError> {
        let manifest_path = self.path("manifests", digest);
        let Some(manifest) = read_trusted(&manifest_path)? else {
            return Ok(None);
        };
        check_digest(
            || format!("the cached manifest {}", manifest_path.display()),
            &manifest,
            digest,
        )?;
        let layer = wasm_layer(reference, &manifest)?;
        let blob_path = self.path("blobs", &layer.digest);
        let Some(wasm) = read_trusted(&blob_path)? else {
            return Ok(None);
        };
        check_digest(
            || format!("the cached component {}", blob_path.display()),
            &wasm,
            &layer.digest,
        )?;
        Ok(Some(Artifact {
            digest: digest.to_owned(),
            manifest,
            wasm,
        }))
    }

    /// Stores `artifact` (already checked against its digests), the component first, so a
    /// manifest is never there without its component.
    ///
    /// # Errors
    /// [`OciError::Cache`] when the entry cannot be written.
    pub fn save(&self, artifact: &Artifact) -> Result<(), OciError> {
        let layer = wasm_layer("", &artifact.manifest)?;
        for (path, bytes) in [
            (self.path("blobs", &layer.digest), &artifact.wasm),
            (self.path("manifests", &artifact.digest), &artifact.manifest),
        ] {
            let dir = path.parent().unwrap_or(&self.dir);
            crate::fsutil::create_private_dir(dir)
                .and_then(|()| crate::fsutil::write_atomic(&path, bytes, Some(0o600)))
                .map_err(|e| OciError::Cache(format!("cannot write {}: {e}", path.display())))?;
        }
        Ok(())
    }
}

/// The bytes of `path`, `None` when it does not exist; refused when it, or a directory above
/// it up to the cache, could have been written by someone else.
fn read_trusted(path: &Path) -> Result<Option<Vec<u8>>, OciError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(OciError::Cache(format!("{}: {e}", path.display()))),
    };
    let refuse = |why: String| {
        OciError::Cache(format!(
            "refusing the cached step {}: {why}; remove it to pull the step again",
            path.display()
        ))
    };
    if !meta.file_type().is_file() {
        return Err(refuse("it is not a plain file".into()));
    }
    if let Some(why) = untrusted(&meta) {
        return Err(refuse(why));
    }
    if let Some(dir) = path.parent()
        && let Ok(dir_meta) = std::fs::metadata(dir)
        && let Some(why) = untrusted(&dir_meta)
    {
        return Err(refuse(format!("its directory: {why}")));
    }
    std::fs::read(path)
        .map(Some)
        .map_err(|e| OciError::Cache(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::oci::{digest_of, layout};

    fn store(name: &str) -> Store {
        let dir =
            std::env::temp_dir().join(format!("kstep-oci-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Store::new(dir)
    }

    #[test]
    fn round_trip_and_tampering_is_refused() {
        let store = store("tamper");
        let wasm = b"\0asm not really a component".to_vec();
        let (manifest, _) = layout(&wasm);
        let artifact = Artifact {
            digest: digest_of(&manifest),
            manifest,
            wasm: wasm.clone(),
        };
        assert!(store.load("r", &artifact.digest).unwrap().is_none());
        store.save(&artifact).unwrap();
        let loaded = store.load("r", &artifact.digest).unwrap().unwrap();
        assert_eq!(loaded.wasm, wasm);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let dir = store.path("blobs", &digest_of(&wasm));
            let mode = std::fs::metadata(dir.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let blob = store.path("blobs", &digest_of(&wasm));
        #[cfg(unix)]
        {
            // Writable by others: refused before it is read, whatever it holds.
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o666)).unwrap();
            let e = store.load("r", &artifact.digest).unwrap_err().to_string();
            assert!(e.contains("writable by group or others"), "{e}");
            std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::write(&blob, b"\0asm evil").unwrap();
        let e = store.load("r", &artifact.digest).unwrap_err().to_string();
        assert!(e.starts_with("the cached component "), "{e}");
        assert!(e.contains("refused (tampered with or corrupt)"), "{e}");
    }
}
