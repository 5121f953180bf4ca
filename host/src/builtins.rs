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
    /// The component.
    pub wasm: &'static [u8],
    /// Its native code (`Engine::precompile_component` output of this build), or empty when
    /// the build could not precompile for its target.
    pub native: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The built-in step called `name`.
pub fn get(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}
