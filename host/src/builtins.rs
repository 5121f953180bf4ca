//! The built-in steps embedded in the binary by `build.rs`: each component, and its native code
//! precompiled at build time with the runtime's engine settings.

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
    /// Its native code (`Engine::precompile_component` output of this build), or empty when
    /// the build could not precompile for its target.
    pub native: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

impl Builtin {
    /// The component itself.
    ///
    /// # Errors
    /// Corrupt embedded data (a broken build).
    pub fn wasm(&self) -> std::io::Result<Vec<u8>> {
        use std::io::Read as _;
        let mut wasm = Vec::with_capacity(self.size);
        flate2::read::GzDecoder::new(self.wasm_gz).read_to_end(&mut wasm)?;
        Ok(wasm)
    }
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
        }
    }
}
