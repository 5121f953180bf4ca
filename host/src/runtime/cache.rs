//! The compile cache of custom steps: precompiled components on disk, so a warm run compiles
//! nothing. (The built-in steps never come from here: their native code is embedded at build
//! time, see [`super::Runtime::builtin`].)
//!
//! Entries are keyed by sha256 of (wasmtime version, the engine's compatibility hash, the
//! component bytes): a wasmtime upgrade or an engine setting change (epochs, stack size…) misses
//! instead of loading incompatible code. Entries are written atomically (temporary file, then
//! rename) into a directory only the user can write.
//!
//! Loading an entry runs its native code outside the sandbox, so an entry is only trusted when
//! nobody else could have written it: the directory and the entry must be owned by the current
//! user (or root) and not writable by group or others, and the entry must be a plain file.
//! Anything else is ignored, with one warning per process, and the step is compiled in memory.

use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where precompiled components live.
pub struct CompileCache {
    dir: PathBuf,
    /// Whether the one warning about an untrusted directory or entry was printed.
    warned: AtomicBool,
}

/// What [`CompileCache::warm`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warmed {
    /// The entry was already there.
    Hit,
    /// The component was compiled and stored.
    Compiled,
}

impl CompileCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            warned: AtomicBool::new(false),
        }
    }

    /// `$KSTEP_CACHE_DIR`, else `$XDG_CACHE_HOME/kstep`, else `$HOME/.cache/kstep`.
    pub fn default_dir() -> Option<PathBuf> {
        let from_env = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        from_env("KSTEP_CACHE_DIR")
            .or_else(|| from_env("XDG_CACHE_HOME").map(|d| d.join("kstep")))
            .or_else(|| from_env("HOME").map(|d| d.join(".cache").join("kstep")))
    }

    /// Loads `wasm` from the cache, compiling and storing it on a miss. A cache that cannot be
    /// written is not an error: the component is compiled in memory.
    ///
    /// # Errors
    /// When `wasm` is not a valid component.
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> anyhow::Result<Component> {
        let usable = self.usable_dir();
        let path = self.entry_path(engine, wasm);
        if usable && self.trusted_entry(&path) {
            // SAFETY: the entry is a plain file in a directory that only this user (or root) can
            // write, owned by this user (or root) and not writable by anyone else
            // (`trusted_entry`): it was written by `store` below, from `precompile_component`
            // output of this same wasmtime build (the key includes its version and engine
            // settings). wasmtime validates the header and returns an error, not UB, for a
            // version or settings mismatch.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize_file(engine, &path) };
            if let Ok(component) = loaded {
                return Ok(component);
            }
            // A stale or truncated entry: fall through and replace it.
        }
        let compiled = engine.precompile_component(wasm)?;
        if usable {
            // Best effort: a read-only cache only costs the next run a compile.
            let _ = self.store(&path, &compiled);
        }
        // SAFETY: `compiled` was produced just above by this engine.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        Ok(component)
    }

    /// Makes sure `wasm` is compiled into the cache.
    ///
    /// # Errors
    /// When `wasm` does not compile or the entry cannot be written.
    pub fn warm(&self, engine: &Engine, wasm: &[u8]) -> anyhow::Result<Warmed> {
        if !self.usable_dir() {
            anyhow::bail!(
                "the compile cache {} is not private to this user",
                self.dir.display()
            );
        }
        let path = self.entry_path(engine, wasm);
        if self.trusted_entry(&path) {
            return Ok(Warmed::Hit);
        }
        let compiled = engine.precompile_component(wasm)?;
        self.store(&path, &compiled)?;
        Ok(Warmed::Compiled)
    }

    /// Whether the directory may be read and written: missing (it is created private on first
    /// write) or trusted. Warns (once) when it is not.
    fn usable_dir(&self) -> bool {
        match fs::metadata(&self.dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => {
                self.warn(&self.dir, &e.to_string());
                false
            }
            Ok(meta) if !meta.is_dir() => {
                self.warn(&self.dir, "it is not a directory");
                false
            }
            Ok(meta) => match untrusted(&meta) {
                Some(why) => {
                    self.warn(&self.dir, &why);
                    false
                }
                None => true,
            },
        }
    }

    /// Whether `path` exists and may be loaded: a plain file (not a symbolic link) owned by this
    /// user or root, not writable by group or others. Warns (once) when it exists but is not.
    fn trusted_entry(&self, path: &Path) -> bool {
        let Ok(meta) = fs::symlink_metadata(path) else {
            return false;
        };
        let why = if meta.file_type().is_file() {
            untrusted(&meta)
        } else {
            Some("it is not a plain file".to_owned())
        };
        match why {
            Some(why) => {
                self.warn(path, &why);
                false
            }
            None => true,
        }
    }

    fn warn(&self, path: &Path, why: &str) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            crate::output::stderr_line(&format!(
                "warning: ignoring the compile cache {}: {why}; custom steps are compiled in \
                 memory instead",
                path.display()
            ));
        }
    }

    fn entry_path(&self, engine: &Engine, wasm: &[u8]) -> PathBuf {
        let mut hasher = Sha256Hasher(Sha256::new());
        hasher.0.update(b"kstep compile cache v1\0wasmtime ");
        hasher.0.update(crate::WASMTIME_VERSION.as_bytes());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hasher.0.update(Sha256::digest(wasm));
        let key = hex(&hasher.0.finalize());
        self.dir.join(format!("{key}.cwasm"))
    }

    fn store(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        create_private_dir(&self.dir)?;
        // Writable by the owner only, whatever the umask or a replaced entry's mode, so the
        // next run trusts it; readable by all, for a cache root fills for other users.
        crate::fsutil::write_atomic(path, bytes, Some(0o644))
            .with_context(|| format!("writing the compile cache entry {}", path.display()))
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating the compile cache {}", dir.display()))
}

/// Why a cache directory or entry with `meta` cannot be trusted, if it cannot: another owner
/// than this user or root (root can replace the kstep binary anyway), or writable by group or
/// others.
#[cfg(unix)]
pub(crate) fn untrusted(meta: &fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Some(format!(
            "it is owned by uid {}, not by this user (uid {me})",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "it is writable by group or others (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    None
}

/// Ownership and modes are not checked where they do not exist.
#[cfg(not(unix))]
pub(crate) fn untrusted(_meta: &fs::Metadata) -> Option<String> {
    None
}

/// Feeds `Hash` implementations (the engine's compatibility hash) into sha256, so the key is
/// stable across processes, unlike `DefaultHasher`'s guarantees.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        0
    }
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
