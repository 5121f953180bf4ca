//! `kstep step push`, `kstep step pull` and `kstep step lock`: custom steps in OCI registries
//! (see [`crate::oci`]).
//!
//! - `push STEP.wasm oci://REGISTRY/REPO:TAG` uploads a component in the CNCF wasm layout and
//!   prints `oci://REGISTRY/REPO@sha256:…` on stdout (what to sign, or to pin);
//! - `pull oci://… [-o FILE]` downloads one, checked against its digest;
//! - `lock [FILE]` resolves every `wasm: oci://…` of a pipeline file and writes `kstep.lock`
//!   beside it.
//!
//! Exit codes: 2 for a bad reference, file or artifact, 1 when the registry refuses or cannot
//! be reached.

use std::path::PathBuf;

use crate::cli::{CliError, CliResult};
use crate::oci::lock::{self, Entry, Lock};
use crate::oci::{OciError, Registry, StepRef};
use crate::output;
use crate::pipeline::file;

/// Arguments of `kstep step push`.
#[derive(Debug, clap::Args)]
pub(crate) struct PushArgs {
    /// The component (a `kstep:steps/custom-step` .wasm file).
    component: PathBuf,
    /// Where to push it: `oci://REGISTRY/REPOSITORY:TAG`.
    #[arg(value_name = "oci://REGISTRY/REPO:TAG")]
    reference: String,
}

/// Arguments of `kstep step pull`.
#[derive(Debug, clap::Args)]
pub(crate) struct PullArgs {
    /// The step: `oci://REGISTRY/REPOSITORY:TAG` or `…@sha256:…`.
    #[arg(value_name = "oci://REGISTRY/REPO[:TAG][@DIGEST]")]
    reference: String,
    /// Where to write the component (default: the repository's last component + `.wasm`).
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Arguments of `kstep step lock`.
#[derive(Debug, clap::Args)]
pub(crate) struct LockArgs {
    /// The pipeline file; kstep.lock is written beside it.
    #[arg(default_value = "kstep.yaml", value_name = "FILE")]
    file: PathBuf,
}

/// An [`OciError`] with its exit class.
fn cli_error(e: OciError) -> CliError {
    if e.is_invalid() {
        CliError::invalid(e)
    } else {
        anyhow::Error::from(e).into()
    }
}

fn parse_reference(text: &str) -> Result<StepRef, CliError> {
    text.parse::<StepRef>().map_err(CliError::invalid)
}

/// Whether `bytes` start like a WebAssembly component (not a core module).
fn is_component(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm") && bytes.get(4..8) == Some(&[0x0d, 0x00, 0x01, 0x00][..])
}

/// Runs `kstep step push`.
///
/// # Errors
/// See the module documentation.
pub(crate) fn push(args: &PushArgs) -> CliResult {
    let reference = parse_reference(&args.reference)?;
    if reference.tag.is_none() || reference.digest.is_some() {
        return Err(CliError::invalid(anyhow::anyhow!(
            "`{}`: push to a tag (oci://REGISTRY/REPO:TAG); the digest is computed",
            args.reference
        )));
    }
    let wasm = crate::fsutil::read_capped(&args.component, false, crate::oci::MAX_STEP_BYTES)
        .map_err(|e| CliError::invalid(anyhow::anyhow!("{}: {e}", args.component.display())))?;
    if !is_component(&wasm) {
        return Err(CliError::invalid(anyhow::anyhow!(
            "{}: not a WebAssembly component (a custom step is built for wasm32-wasip2)",
            args.component.display()
        )));
    }
    let registry = Registry::new().map_err(cli_error)?;
    let digest = registry.push(&reference, &wasm).map_err(cli_error)?;
    output::stderr_line(&format!(
        "pushed {} ({} bytes) as {reference}",
        args.component.display(),
        wasm.len()
    ));
    output::stdout(&format!("{}\n", reference.at_digest(&digest)));
    Ok(())
}

/// Runs `kstep step pull`.
///
/// # Errors
/// See the module documentation.
pub(crate) fn pull(args: &PullArgs) -> CliResult {
    let reference = parse_reference(&args.reference)?;
    let registry = Registry::new().map_err(cli_error)?;
    let digest = registry.resolve(&reference).map_err(cli_error)?;
    let artifact = registry.fetch(&reference, &digest).map_err(cli_error)?;
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.wasm", reference.name())));
    crate::fsutil::write_atomic(&out, &artifact.wasm, None)
        .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", out.display()))?;
    output::stderr_line(&format!(
        "pulled {reference} ({} bytes) into {}",
        artifact.wasm.len(),
        out.display()
    ));
    output::stdout(&format!("{}\n", reference.at_digest(&digest)));
    Ok(())
}

/// Runs `kstep step lock`.
///
/// # Errors
/// See the module documentation.
pub(crate) fn lock(args: &LockArgs) -> CliResult {
    let pipeline = file::load(&args.file).map_err(|e| {
        output::stderr_line(&e.to_string());
        CliError::reported_invalid()
    })?;
    let path = lock::path_in(&pipeline.project);
    let old = Lock::read(&path).map_err(CliError::invalid)?;
    let mut new = Lock::default();
    // No request is sent before a reference needs resolving.
    let registry = Registry::new().map_err(cli_error)?;
    for (reference, step) in pipeline.references() {
        let text = reference.to_string();
        if new.entries.iter().any(|e| e.reference == text) {
            continue;
        }
        let digest = match &reference.digest {
            Some(d) => d.clone(),
            None => registry.resolve(reference).map_err(|e| {
                output::stderr_line(&format!(
                    "{}: step `{}`: {e}",
                    crate::pipeline::at(&pipeline.file, step.pos),
                    step.name
                ));
                if e.is_invalid() {
                    CliError::reported_invalid()
                } else {
                    CliError::reported()
                }
            })?,
        };
        let change = match old.get(reference) {
            None => "added".to_owned(),
            Some(e) if e.digest == digest => "unchanged".to_owned(),
            Some(e) => format!("was {}", e.digest),
        };
        output::stderr_line(&format!("{text} -> {digest} ({change})"));
        new.entries.push(Entry {
            reference: text,
            digest,
            resolved_from: lock::manifest_url(reference),
        });
    }
    for gone in old
        .entries
        .iter()
        .filter(|o| !new.entries.iter().any(|n| n.reference == o.reference))
    {
        output::stderr_line(&format!(
            "{} (removed: no longer in the pipeline)",
            gone.reference
        ));
    }
    new.write(&path).map_err(anyhow::Error::from)?;
    output::stderr_line(&format!(
        "wrote {} ({} step reference(s))",
        crate::pipeline::display_path(&path),
        new.entries.len()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_told_from_core_modules() {
        assert!(is_component(b"\0asm\x0d\x00\x01\x00rest"));
        assert!(!is_component(b"\0asm\x01\x00\x00\x00rest"));
        assert!(!is_component(b"hello"));
    }
}
