//! Verification of the signatures `cosign sign --key` stores next to a step in its registry,
//! with the signer's public key (`cosign generate-key-pair`'s `cosign.pub`: ECDSA P-256, PEM).
//! No transparency log and no network beyond the registry: a key pair is the trust root.
//!
//! Two storage formats are read:
//!
//! - **Sigstore bundle, as an OCI referrer** (cosign 3's default): a manifest whose `subject`
//!   is the step's manifest and whose one layer (`application/vnd.dev.sigstore.bundle.v0.3+json`)
//!   is a bundle holding a DSSE envelope. The envelope's signature covers its pre-authentication
//!   encoding (`DSSEv1 <len> <type> <len> <payload>`); the payload is an in-toto statement of
//!   predicate type `https://sigstore.dev/cosign/sign/v1` whose subject is the step's digest.
//!   Found through the registry's referrers API, or the `sha256-<hex>` tag of the referrers tag
//!   schema where the registry has no such API.
//! - **The legacy tag** (cosign 2, or `--new-bundle-format=false`): the manifest at tag
//!   `sha256-<hex>.sig`, whose simple-signing layers carry the signature of their own bytes in
//!   the `dev.cosignproject.cosign/signature` annotation; the payload's
//!   `critical.image.docker-manifest-digest` must be the step's digest.
//!
//! A step verifies when at least one signature in either place is valid for the key and names
//! the step's digest; anything else is a refusal that says what was found.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use serde_json::Value;

use super::{Registry, StepRef};

/// The artifact type (and layer media type) of cosign 3's bundles.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
const INTOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The largest signature blob read (a bundle is a few KiB).
const MAX_SIGNATURE_BYTES: u64 = 1 << 20;
/// The DER prefix of an ECDSA P-256 SubjectPublicKeyInfo, before the 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Why a step is not verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The public key cannot be used.
    #[error("{path}: {reason}")]
    Key {
        /// The key file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// No valid signature.
    #[error("{reference}: no valid cosign signature for {digest} with the key {key}: {found}")]
    Unverified {
        /// The step.
        reference: String,
        /// Its digest.
        digest: String,
        /// The key file.
        key: String,
        /// What was found instead.
        found: String,
    },
    /// The registry could not be asked.
    #[error(transparent)]
    Registry(#[from] super::OciError),
}

/// A cosign public key.
pub struct PublicKey {
    point: Vec<u8>,
    path: String,
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (ECDSA P-256) from `path`.
    ///
    /// # Errors
    /// [`VerifyError::Key`] when it cannot be read or is not such a key.
    pub fn read(path: &Path) -> Result<Self, VerifyError> {
        let shown = path.display().to_string();
        let fail = |reason: String| VerifyError::Key {
            path: shown.clone(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        Self::from_pem(&text).map_err(fail).map(|point| Self {
            point,
            path: shown.clone(),
        })
    }

    /// The curve point of a PEM P-256 public key.
    fn from_pem(text: &str) -> Result<Vec<u8>, String> {
        let body = text
            .split("-----BEGIN PUBLIC KEY-----")
            .nth(1)
            .and_then(|rest| rest.split("-----END PUBLIC KEY-----").next())
            .ok_or("not a PEM public key (`-----BEGIN PUBLIC KEY-----`)")?;
        let der = STANDARD
            .decode(body.split_whitespace().collect::<String>())
            .map_err(|e| format!("the PEM body is not base64: {e}"))?;
        match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
            Some(point) if point.len() == 65 && point[0] == 4 => Ok(point.to_vec()),
            _ => Err(
                "not an ECDSA P-256 public key (the kind `cosign generate-key-pair` writes)".into(),
            ),
        }
    }

    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(message, signature)
            .is_ok()
    }
}

/// DSSE's pre-authentication encoding.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Checks a Sigstore bundle: a DSSE envelope signed by `key` whose in-toto statement is
/// cosign's signing predicate for `digest`.
///
/// # Errors
/// What is wrong with it, for the refusal message.
pub fn check_bundle(bundle: &[u8], key: &PublicKey, digest: &str) -> Result<(), String> {
    let bundle: Value =
        serde_json::from_slice(bundle).map_err(|e| format!("a bundle that is not JSON: {e}"))?;
    let envelope = bundle
        .get("dsseEnvelope")
        .ok_or("a bundle without a DSSE envelope")?;
    let payload_type = envelope
        .get("payloadType")
        .and_then(Value::as_str)
        .unwrap_or("");
    if payload_type != INTOTO_PAYLOAD_TYPE {
        return Err(format!("a DSSE envelope of payload type `{payload_type}`"));
    }
    let payload = envelope
        .get("payload")
        .and_then(Value::as_str)
        .and_then(|p| STANDARD.decode(p).ok())
        .ok_or("a DSSE envelope without a base64 payload")?;
    let message = pae(payload_type, &payload);
    let signed = envelope
        .get("signatures")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("sig").and_then(Value::as_str))
        .filter_map(|s| STANDARD.decode(s).ok())
        .any(|sig| key.verifies(&message, &sig));
    if !signed {
        return Err("a bundle signed with another key (or altered after signing)".into());
    }
    let statement: Value = serde_json::from_slice(&payload)
        .map_err(|e| format!("a signed payload that is not JSON: {e}"))?;
    let predicate = statement
        .get("predicateType")
        .and_then(Value::as_str)
        .unwrap_or("");
    if predicate != SIGN_PREDICATE {
        return Err(format!(
            "a signed statement of predicate type `{predicate}`"
        ));
    }
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let names_digest = statement
        .get("subject")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|s| s.pointer("/digest/sha256").and_then(Value::as_str) == Some(hex));
    if names_digest {
        Ok(())
    } else {
        Err("a valid signature of another digest".into())
    }
}

/// Checks a legacy simple-signing payload and its base64 signature.
///
/// # Errors
/// What is wrong with it, for the refusal message.
pub fn check_simple_signing(
    payload: &[u8],
    signature_b64: &str,
    key: &PublicKey,
    digest: &str,
) -> Result<(), String> {
    let signature = STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| "a signature annotation that is not base64")?;
    if !key.verifies(payload, &signature) {
        return Err(
            "a signature made with another key (or a payload altered after signing)".into(),
        );
    }
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| format!("a signed payload that is not JSON: {e}"))?;
    let signed = value
        .pointer("/critical/image/docker-manifest-digest")
        .and_then(Value::as_str)
        .unwrap_or("");
    if signed == digest {
        Ok(())
    } else {
        Err(format!("a valid signature of another digest ({signed})"))
    }
}

/// Verifies that the step at `digest` in `reference`'s repository carries a cosign signature
/// made with `key`.
///
/// # Errors
/// [`VerifyError::Unverified`] saying what was found; [`VerifyError::Registry`].
pub fn verify(
    registry: &Registry,
    reference: &StepRef,
    digest: &str,
    key: &PublicKey,
) -> Result<(), VerifyError> {
    let pinned = reference.at_digest(digest);
    let mut found: Vec<String> = Vec::new();

    for (manifest_digest, size) in registry.referrers(&pinned, BUNDLE_MEDIA_TYPE)? {
        if u64::try_from(size).map_or(true, |s| s > MAX_SIGNATURE_BYTES) {
            found.push(format!("a referrer manifest of {size} bytes"));
            continue;
        }
        let manifest = registry.manifest(&pinned.at_digest(&manifest_digest))?;
        let value: Value = serde_json::from_slice(&manifest).unwrap_or_default();
        if value.pointer("/subject/digest").and_then(Value::as_str) != Some(digest) {
            found.push("a referrer whose subject is another digest".into());
            continue;
        }
        for layer in layers(&value, BUNDLE_MEDIA_TYPE) {
            let bundle = registry.blob(
                &pinned,
                &layer.0,
                layer.1,
                MAX_SIGNATURE_BYTES,
                "fetching a signature",
            )?;
            match check_bundle(&bundle, key, digest) {
                Ok(()) => return Ok(()),
                Err(why) => found.push(why),
            }
        }
    }

    let legacy_tag = format!("{}.sig", digest.replace(':', "-"));
    if let Some(manifest) = registry.tagged_manifest(reference, &legacy_tag)? {
        let value: Value = serde_json::from_slice(&manifest).unwrap_or_default();
        for layer in value
            .get("layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|l| {
                l.get("mediaType").and_then(Value::as_str) == Some(SIMPLE_SIGNING_MEDIA_TYPE)
            })
        {
            let Some((blob_digest, size)) = descriptor(layer) else {
                continue;
            };
            let Some(signature) = layer
                .pointer(&format!(
                    "/annotations/{}",
                    SIGNATURE_ANNOTATION.replace('/', "~1")
                ))
                .and_then(Value::as_str)
            else {
                found.push("a signature layer without its signature annotation".into());
                continue;
            };
            let payload = registry.blob(
                reference,
                &blob_digest,
                size,
                MAX_SIGNATURE_BYTES,
                "fetching a signature",
            )?;
            match check_simple_signing(&payload, signature, key, digest) {
                Ok(()) => return Ok(()),
                Err(why) => found.push(why),
            }
        }
    }

    Err(VerifyError::Unverified {
        reference: reference.to_string(),
        digest: digest.to_owned(),
        key: key.path.clone(),
        found: if found.is_empty() {
            "the step is not signed (no signature referrer, no `sha256-….sig` tag)".into()
        } else {
            format!("found {}", found.join("; "))
        },
    })
}

fn descriptor(value: &Value) -> Option<(String, i64)> {
    Some((
        value.get("digest")?.as_str()?.to_owned(),
        value.get("size")?.as_i64()?,
    ))
}

fn layers(manifest: &Value, media_type: &str) -> Vec<(String, i64)> {
    manifest
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|l| l.get("mediaType").and_then(Value::as_str) == Some(media_type))
        .filter_map(descriptor)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn keys_other_than_p256_pem_are_refused() {
        assert!(
            PublicKey::from_pem("hello")
                .unwrap_err()
                .contains("not a PEM public key")
        );
        // An Ed25519 key.
        let ed = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        assert!(PublicKey::from_pem(ed).unwrap_err().contains("ECDSA P-256"));
    }

    #[test]
    fn dsse_pre_authentication_encoding() {
        assert_eq!(pae("t", b"ab"), b"DSSEv1 1 t 2 ab");
    }
}
