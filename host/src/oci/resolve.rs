//! How `kstep run` turns a step reference into the component it runs: the digest from
//! `kstep.lock` (or the reference's own `@sha256:…`), the bytes from the cache or the registry,
//! both checked against the digest, and the cosign signature when `verify:` asks for one.
//!
//! Locked mode (`kstep run --locked`, the default when `CI` is set) refuses a reference that is
//! not in the lock and one whose tag now points to another digest than the locked one: what
//! runs in CI is what was locked, reviewed and committed. Unlocked, a reference missing from
//! the lock is resolved now (with a warning) and a locked one is used without asking the
//! registry where its tag points.

use std::path::Path;

use super::cosign::{self, PublicKey, VerifyError};
use super::lock::{Lock, LockError};
use super::store::Store;
use super::{Artifact, OciError, Registry, StepRef};

/// Why a step reference cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Locked mode, and the reference is not in the lock.
    #[error(
        "{reference} is not in {lock}: run `kstep step lock` and commit {lock} (or run without \
         --locked, which is the default when CI is set)"
    )]
    NotLocked {
        /// The reference.
        reference: String,
        /// The lock file.
        lock: String,
    },
    /// Locked mode, and the tag moved since it was locked.
    #[error(
        "{reference} now points to {now}, but {lock} pins {locked}: the tag was moved; review \
         the new step and run `kstep step lock` to accept it"
    )]
    Moved {
        /// The reference.
        reference: String,
        /// The lock file.
        lock: String,
        /// The digest in the lock.
        locked: String,
        /// The digest the registry returns now.
        now: String,
    },
    /// The lock file cannot be read.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The registry, the cache or what they hold.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// The signature.
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

impl ResolveError {
    /// Whether the input is at fault (exit 2): anything but a registry that cannot be reached
    /// or a cache that cannot be written (exit 1).
    pub fn is_invalid(&self) -> bool {
        match self {
            Self::Oci(e) | Self::Verify(VerifyError::Registry(e)) => e.is_invalid(),
            _ => true,
        }
    }
}

/// A step ready to load.
#[derive(Debug)]
pub struct Resolved {
    /// The component, checked against the digest.
    pub wasm: Vec<u8>,
    /// The manifest digest.
    pub digest: String,
    /// How it was found, for the log (`from kstep.lock, cached, signature verified`).
    pub how: Vec<&'static str>,
}

fn connect(slot: &mut Option<Registry>) -> Result<&Registry, OciError> {
    if slot.is_none() {
        *slot = Some(Registry::new()?);
    }
    slot.as_ref()
        .ok_or_else(|| OciError::Setup("no registry client".into()))
}

/// Resolves `reference` for a pipeline whose lock file is `lock_path`.
///
/// # Errors
/// See [`ResolveError`].
pub fn resolve(
    reference: &StepRef,
    lock_path: &Path,
    locked: bool,
    key: Option<&Path>,
) -> Result<Resolved, ResolveError> {
    // A key that cannot be used stops the run before any request.
    let key = key.map(PublicKey::read).transpose()?;
    let lock_name = lock_path.display().to_string();
    let lock = Lock::read(lock_path)?;
    // Connected only when needed: a locked, cached, unverified step needs no registry.
    let mut registry: Option<Registry> = None;
    let mut how = Vec::new();
    let digest = match (&reference.digest, lock.get(reference)) {
        (Some(pinned), _) => {
            how.push("pinned in the pipeline file");
            pinned.clone()
        }
        (None, Some(entry)) => {
            if locked {
                let now = connect(&mut registry)?.resolve(reference)?;
                if now != entry.digest {
                    return Err(ResolveError::Moved {
                        reference: reference.to_string(),
                        lock: lock_name,
                        locked: entry.digest.clone(),
                        now,
                    });
                }
                how.push("from the lock, tag checked");
            } else {
                how.push("from the lock");
            }
            entry.digest.clone()
        }
        (None, None) => {
            if locked {
                return Err(ResolveError::NotLocked {
                    reference: reference.to_string(),
                    lock: lock_name,
                });
            }
            how.push("resolved now: not in the lock (run `kstep step lock`)");
            connect(&mut registry)?.resolve(reference)?
        }
    };
    let store = Store::default_location()?;
    let text = reference.to_string();
    let artifact = if let Some(cached) = store.load(&text, &digest)? {
        how.push("cached");
        cached
    } else {
        let fetched: Artifact = connect(&mut registry)?.fetch(reference, &digest)?;
        // A cache that cannot be written only costs the next run a download.
        if let Err(e) = store.save(&fetched) {
            crate::output::stderr_line(&format!("warning: {e}"));
        }
        how.push("pulled");
        fetched
    };
    if let Some(key) = &key {
        cosign::verify(connect(&mut registry)?, reference, &digest, key)?;
        how.push("signature verified");
    }
    Ok(Resolved {
        wasm: artifact.wasm,
        digest,
        how,
    })
}
