//! The compile cache: precompiled components on disk, so a warm run compiles nothing.
//!
//! Entries are keyed by sha256 of (wasmtime version, the engine's compatibility hash, the
//! component bytes): a wasmtime upgrade or an engine setting change (epochs, stack size…) misses
//! instead of loading incompatible code. Entries are written atomically (temporary file, then
//! rename) into a directory only the user can write.

use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where precompiled components live.
pub struct CompileCache {
    dir: PathBuf,
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
        Self { dir }
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
        let path = self.entry_path(engine, wasm);
        if path.is_file() {
            // SAFETY: entries are only ever written by `store` below, from `precompile_component`
            // output of this same wasmtime build (the key includes its version and engine
            // settings), into a directory private to the user. wasmtime validates the header and
            // returns an error, not UB, for a version or settings mismatch.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize_file(engine, &path) };
            if let Ok(component) = loaded {
                return Ok(component);
            }
            // A stale or truncated entry: fall through and replace it.
        }
        let compiled = engine.precompile_component(wasm)?;
        // Best effort: a read-only cache only costs the next run a compile.
        let _ = self.store(&path, &compiled);
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
        let path = self.entry_path(engine, wasm);
        if path.is_file() {
            return Ok(Warmed::Hit);
        }
        let compiled = engine.precompile_component(wasm)?;
        self.store(&path, &compiled)?;
        Ok(Warmed::Compiled)
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
        crate::fsutil::write_atomic(path, bytes, None)
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
