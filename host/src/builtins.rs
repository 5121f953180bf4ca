//! The built-in steps embedded in the binary by `build.rs`: each component, and its native code
//! precompiled at build time with the runtime's engine settings, both gzip-compressed.

/// One embedded component.
#[derive(Debug)]
pub struct Builtin {
    /// The step's name (`dotenv`, `manifest`…).
    pub name: &'static str,
    /// The WIT world it implements.
    pub world: &'static str,
    /// sha256 of the component, hex.
    pub sha256: &'static str,
    /// The component's size in bytes.
    pub size: usize,
    /// The component, gzip-compressed: needed only where the native code cannot run.
    pub wasm_gz: &'static [u8],
    /// The size of its native code (`Engine::precompile_component` output of this build).
    pub native_size: usize,
    /// That native code, gzip-compressed, or empty when the build could not precompile for its
    /// target.
    pub native_gz: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

impl Builtin {
    /// The component itself.
    ///
    /// # Errors
    /// Corrupt embedded data (a broken build).
    pub fn wasm(&self) -> std::io::Result<Vec<u8>> {
        gunzip(self.wasm_gz, self.size)
    }

    /// Its native code (empty when there is none).
    ///
    /// # Errors
    /// Corrupt embedded data (a broken build).
    pub fn native(&self) -> std::io::Result<Vec<u8>> {
        if self.native_gz.is_empty() {
            return Ok(Vec::new());
        }
        gunzip(self.native_gz, self.native_size)
    }
}

fn gunzip(data: &[u8], size: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::with_capacity(size);
    flate2::read::GzDecoder::new(data).read_to_end(&mut out)?;
    Ok(out)
}

/// The built-in step called `name`.
pub fn get(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use sha2::{Digest as _, Sha256};

    #[test]
    fn embedded_components_decompress_to_what_was_built() {
        for builtin in super::BUILTINS {
            let wasm = builtin.wasm().unwrap();
            assert_eq!(wasm.len(), builtin.size, "{}", builtin.name);
            let sha256: String = Sha256::digest(&wasm)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(sha256, builtin.sha256, "{}", builtin.name);
            assert!(builtin.wasm_gz.len() < builtin.size, "{}", builtin.name);
            assert_eq!(
                builtin.native().unwrap().len(),
                if builtin.native_gz.is_empty() {
                    0
                } else {
                    builtin.native_size
                },
                "{}",
                builtin.name
            );
        }
    }
}
