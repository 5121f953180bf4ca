//! Custom steps as OCI artifacts: references (`oci://REGISTRY/REPO:TAG`), the registry client
//! (push, resolve, fetch) and the CNCF wasm artifact layout — an OCI image manifest whose config
//! is `application/vnd.wasm.config.v0+json` and whose one layer is the `application/wasm`
//! component, as `wkg oci push` and `oras` write it.
//!
//! - [`auth`]: registry credentials (docker config JSON, GitLab's `CI_REGISTRY_*`), masked;
//! - [`store`]: pulled steps cached by digest, checked on every load;
//! - [`lock`]: `kstep.lock`, the digest each reference of `kstep.yaml` resolved to;
//! - [`cosign`]: verification of `cosign sign --key` signatures;
//! - [`resolve`]: what `kstep run` does with a reference (lock, cache, registry, signature).
//!
//! Everything fetched is checked against its digest before use: the manifest's bytes against
//! the digest asked for, the component's bytes against the layer digest the manifest names.

pub mod auth;
pub mod cosign;
pub mod lock;
pub mod resolve;
pub mod store;

use std::fmt;
use std::str::FromStr;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::json;
use sha2::{Digest as _, Sha256};

/// The manifest media type of a wasm artifact.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config media type of the CNCF wasm layout.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The media type of the one layer: the component.
pub const WASM_MEDIA_TYPE: &str = "application/wasm";
/// The largest manifest kstep reads (a wasm artifact's is well under 1 KiB).
const MAX_MANIFEST_BYTES: usize = 1 << 20;
/// The largest component kstep pulls (a Python step is about 20 MiB).
pub const MAX_STEP_BYTES: u64 = 256 << 20;
/// A PEM bundle of extra certificate authorities for registries (a self-signed registry, the
/// test registry); the system's roots are trusted too.
pub const CA_FILE_VARIABLE: &str = "KSTEP_REGISTRY_CA_FILE";

/// What went wrong talking to a registry or with what it returned.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// Not an `oci://` reference kstep accepts.
    #[error("`{text}`: {reason}")]
    Reference {
        /// The reference as written.
        text: String,
        /// Why it is refused.
        reason: String,
    },
    /// The registry refused the request or could not be reached.
    #[error("{reference}: {what}: {message}")]
    Registry {
        /// The reference.
        reference: String,
        /// What kstep was doing (`pushing the component`…).
        what: &'static str,
        /// The client's message.
        message: String,
    },
    /// The registry's credentials or TLS settings cannot be used.
    #[error("{0}")]
    Setup(String),
    /// The artifact is not a wasm step in the CNCF layout.
    #[error("{reference}: not a wasm step artifact: {reason}")]
    Layout {
        /// The reference.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Bytes whose sha256 is not the digest they were fetched or cached by.
    #[error("{what} has digest {actual}, not {expected}: refused (tampered with or corrupt)")]
    Digest {
        /// What (`the manifest of …`, `the cached component …`).
        what: String,
        /// The digest it should have.
        expected: String,
        /// The digest it has.
        actual: String,
    },
    /// The local cache of pulled steps.
    #[error("{0}")]
    Cache(String),
}

impl OciError {
    /// Whether the user's input is at fault (exit 2) rather than the registry or the network
    /// (exit 1): a bad reference, a wrong artifact, bytes that do not match their digest.
    pub fn is_invalid(&self) -> bool {
        matches!(
            self,
            Self::Reference { .. } | Self::Layout { .. } | Self::Digest { .. }
        )
    }
}

/// A step reference: `oci://REGISTRY/REPOSITORY[:TAG][@sha256:HEX]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StepRef {
    /// `host[:port]`.
    pub registry: String,
    /// `group/steps/name`.
    pub repository: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// The pinned manifest digest, if any.
    pub digest: Option<String>,
}

impl FromStr for StepRef {
    type Err = OciError;

    fn from_str(text: &str) -> Result<Self, OciError> {
        let refuse = |reason: &str| OciError::Reference {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = text
            .strip_prefix("oci://")
            .ok_or_else(|| refuse("a step reference starts with `oci://`"))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| refuse("expected oci://REGISTRY/REPOSITORY[:TAG][@DIGEST]"))?;
        if registry.is_empty()
            || !registry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        {
            return Err(refuse(
                "the registry must be a host name, with an optional port",
            ));
        }
        let (name, digest) = match path.split_once('@') {
            Some((name, digest)) => {
                if !is_digest(digest) {
                    return Err(refuse("a digest is `sha256:` and 64 lower-case hex digits"));
                }
                (name, Some(digest.to_owned()))
            }
            None => (path, None),
        };
        let (repository, tag) = match name.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag.to_owned())),
            _ => (name, None),
        };
        if tag.is_none() && digest.is_none() {
            return Err(refuse("name a tag (`:1.2`) or a digest (`@sha256:…`)"));
        }
        // The distribution spec's grammar for the rest, checked by `Reference`'s own parser
        // (with a registry it cannot mistake for a path component).
        let parsed: Reference = format!(
            "registry.invalid/{repository}{}{}",
            tag.as_deref().map(|t| format!(":{t}")).unwrap_or_default(),
            digest
                .as_deref()
                .map(|d| format!("@{d}"))
                .unwrap_or_default()
        )
        .parse()
        .map_err(|e: oci_client::ParseError| refuse(&e.to_string()))?;
        if parsed.repository() != repository {
            return Err(refuse(
                "the repository must be lower-case path components (a-z, 0-9, `.`, `_`, `-`)",
            ));
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }
}

impl fmt::Display for StepRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl StepRef {
    /// The last component of the repository: the step's default name.
    pub fn name(&self) -> &str {
        self.repository
            .rsplit('/')
            .next()
            .unwrap_or(&self.repository)
    }

    /// The same repository at `digest`.
    pub fn at_digest(&self, digest: &str) -> Self {
        Self {
            tag: None,
            digest: Some(digest.to_owned()),
            ..self.clone()
        }
    }

    /// The same repository with another tag (cosign's `sha256-HEX.sig`).
    fn with_tag(&self, tag: &str) -> Self {
        Self {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        }
    }

    fn client_ref(&self) -> Reference {
        match (&self.tag, &self.digest) {
            (_, Some(d)) => {
                Reference::with_digest(self.registry.clone(), self.repository.clone(), d.clone())
            }
            (Some(t), None) => {
                Reference::with_tag(self.registry.clone(), self.repository.clone(), t.clone())
            }
            (None, None) => Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                "latest".into(),
            ),
        }
    }
}

/// Whether `text` is `sha256:` and 64 lower-case hex digits.
pub fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// `sha256:HEX` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    Sha256::digest(bytes)
        .iter()
        .fold(String::from("sha256:"), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Checks that `bytes` have `expected` as digest.
///
/// # Errors
/// [`OciError::Digest`] naming `what`.
pub fn check_digest(
    what: impl FnOnce() -> String,
    bytes: &[u8],
    expected: &str,
) -> Result<(), OciError> {
    let actual = digest_of(bytes);
    if actual == expected {
        Ok(())
    } else {
        Err(OciError::Digest {
            what: what(),
            expected: expected.to_owned(),
            actual,
        })
    }
}

/// A component and its manifest, both checked against their digests.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The manifest's digest: the step's identity (what tags point to, what cosign signs).
    pub digest: String,
    /// The manifest as the registry stores it.
    pub manifest: Vec<u8>,
    /// The component.
    pub wasm: Vec<u8>,
}

/// The manifest and config of the CNCF wasm layout for `wasm`: deterministic (no timestamp), so
/// pushing the same component twice gives the same digest.
pub fn layout(wasm: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let layer = digest_of(wasm);
    let config = json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer],
    })
    .to_string()
    .into_bytes();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": digest_of(&config), "size": config.len()},
        "layers": [{"mediaType": WASM_MEDIA_TYPE, "digest": layer, "size": wasm.len()}],
    })
    .to_string()
    .into_bytes();
    (manifest, config)
}

/// The component's layer of a wasm artifact's manifest.
///
/// # Errors
/// [`OciError::Layout`] when the manifest is not the CNCF wasm layout.
pub fn wasm_layer(reference: &str, manifest: &[u8]) -> Result<OciDescriptor, OciError> {
    let refuse = |reason: String| OciError::Layout {
        reference: reference.to_owned(),
        reason,
    };
    let value: serde_json::Value = serde_json::from_slice(manifest)
        .map_err(|e| refuse(format!("the manifest is not JSON: {e}")))?;
    let media = value
        .get("mediaType")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if media != MANIFEST_MEDIA_TYPE {
        return Err(refuse(format!(
            "manifest media type `{media}`, expected `{MANIFEST_MEDIA_TYPE}`"
        )));
    }
    let config = value
        .pointer("/config/mediaType")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if config != CONFIG_MEDIA_TYPE {
        return Err(refuse(format!(
            "config media type `{config}`, expected `{CONFIG_MEDIA_TYPE}`"
        )));
    }
    let layers: Vec<OciDescriptor> = value
        .get("layers")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| refuse(format!("bad layers: {e}")))?
        .unwrap_or_default();
    match layers.as_slice() {
        [layer] if layer.media_type == WASM_MEDIA_TYPE && is_digest(&layer.digest) => {
            if u64::try_from(layer.size).map_or(true, |s| s > MAX_STEP_BYTES) {
                return Err(refuse(format!(
                    "the component is {} bytes, more than kstep pulls ({MAX_STEP_BYTES})",
                    layer.size
                )));
            }
            Ok(layer.clone())
        }
        _ => Err(refuse(format!(
            "expected one `{WASM_MEDIA_TYPE}` layer with a sha256 digest, found {}",
            layers
                .iter()
                .map(|l| format!("`{}`", l.media_type))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// A connection to registries: the OCI client, its own I/O runtime and the credentials found.
pub struct Registry {
    client: Client,
    rt: tokio::runtime::Runtime,
}

impl Registry {
    /// A client trusting the system's roots and the bundle in [`CA_FILE_VARIABLE`].
    ///
    /// # Errors
    /// [`OciError::Setup`] when the CA bundle cannot be read or the runtime cannot start.
    pub fn new() -> Result<Self, OciError> {
        // reqwest is built without a bundled crypto provider: ring, as for kube. Installing
        // fails only when one is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut extra = Vec::new();
        if let Some(path) = std::env::var_os(CA_FILE_VARIABLE).filter(|v| !v.is_empty()) {
            let data = std::fs::read(&path).map_err(|e| {
                OciError::Setup(format!(
                    "{CA_FILE_VARIABLE}={}: cannot read the CA bundle: {e}",
                    std::path::Path::new(&path).display()
                ))
            })?;
            extra.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let config = ClientConfig {
            protocol: ClientProtocol::Https,
            extra_root_certificates: extra,
            connect_timeout: Some(std::time::Duration::from_secs(15)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            user_agent: concat!("kstep/", env!("CARGO_PKG_VERSION")),
            // Steps are small: one request per blob, no chunked upload sessions.
            use_monolithic_push: true,
            ..ClientConfig::default()
        };
        let client = Client::try_from(config)
            .map_err(|e| OciError::Setup(format!("cannot set up the registry client: {e}")))?;
        let rt = crate::kube_client::runtime()
            .map_err(|e| OciError::Setup(format!("cannot start the I/O runtime: {e}")))?;
        Ok(Self { client, rt })
    }

    fn auth(reference: &StepRef) -> Result<RegistryAuth, OciError> {
        Ok(match auth::find(&reference.registry)? {
            Some(c) => RegistryAuth::Basic(c.username, c.password),
            None => RegistryAuth::Anonymous,
        })
    }

    fn fail(reference: &StepRef, what: &'static str) -> impl Fn(OciDistributionError) -> OciError {
        let reference = reference.to_string();
        move |e| match e {
            // The client checks blobs against their digests as they arrive.
            OciDistributionError::DigestError(DigestError::VerificationError {
                expected,
                actual,
            }) => OciError::Digest {
                what: format!("what the registry sent for {reference} ({what})"),
                expected,
                actual,
            },
            e => OciError::Registry {
                reference: reference.clone(),
                what,
                message: auth::describe(&e),
            },
        }
    }

    /// Pushes `wasm` to `reference` (which names a tag) in the CNCF wasm layout.
    ///
    /// # Errors
    /// What the registry refuses.
    pub fn push(&self, reference: &StepRef, wasm: &[u8]) -> Result<String, OciError> {
        let auth = Self::auth(reference)?;
        let (manifest, config) = layout(wasm);
        let target = reference.client_ref();
        self.rt.block_on(async {
            // Authenticates for push (and stores the credentials for the calls below).
            self.client
                .auth(&target, &auth, oci_client::RegistryOperation::Push)
                .await
                .map_err(Self::fail(reference, "logging in"))?;
            self.client
                .push_blob(&target, wasm.to_vec(), &digest_of(wasm))
                .await
                .map_err(Self::fail(reference, "pushing the component"))?;
            self.client
                .push_blob(&target, config.clone(), &digest_of(&config))
                .await
                .map_err(Self::fail(reference, "pushing the config"))?;
            self.client
                .push_manifest_raw(
                    &target,
                    manifest.clone(),
                    http::HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
                )
                .await
                .map_err(Self::fail(reference, "pushing the manifest"))?;
            Ok::<_, OciError>(digest_of(&manifest))
        })
    }

    /// The digest `reference`'s tag points to now (its own digest when it names one).
    ///
    /// # Errors
    /// What the registry refuses.
    pub fn resolve(&self, reference: &StepRef) -> Result<String, OciError> {
        // The digest of the bytes received, not what the registry says it is.
        Ok(digest_of(
            &self.pull_manifest(reference, "resolving the tag")?,
        ))
    }

    /// Fetches the step at `digest` in `reference`'s repository, checked against the digest and
    /// the layout.
    ///
    /// # Errors
    /// What the registry refuses; [`OciError::Digest`] or [`OciError::Layout`] for what it
    /// returns.
    pub fn fetch(&self, reference: &StepRef, digest: &str) -> Result<Artifact, OciError> {
        let pinned = reference.at_digest(digest);
        let manifest = self.manifest(&pinned)?;
        let layer = wasm_layer(&reference.to_string(), &manifest)?;
        let wasm = self.blob(
            &pinned,
            &layer.digest,
            layer.size,
            MAX_STEP_BYTES,
            "pulling the component",
        )?;
        Ok(Artifact {
            digest: digest.to_owned(),
            manifest,
            wasm,
        })
    }

    /// The manifest `reference` names by digest, checked against it.
    ///
    /// # Errors
    /// What the registry refuses; [`OciError::Digest`].
    pub fn manifest(&self, reference: &StepRef) -> Result<Vec<u8>, OciError> {
        self.pull_manifest(reference, "pulling the manifest")
    }

    /// The manifest at `reference` (`what`: what kstep was doing, for errors), at most
    /// [`MAX_MANIFEST_BYTES`], checked against the digest the reference names, if any.
    fn pull_manifest(&self, reference: &StepRef, what: &'static str) -> Result<Vec<u8>, OciError> {
        let auth = Self::auth(reference)?;
        let target = reference.client_ref();
        let (bytes, _) = self.rt.block_on(async {
            self.client
                .pull_manifest_raw(&target, &auth, &[MANIFEST_MEDIA_TYPE])
                .await
                .map_err(Self::fail(reference, what))
        })?;
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(OciError::Layout {
                reference: reference.to_string(),
                reason: format!("a manifest of {} bytes", bytes.len()),
            });
        }
        if let Some(digest) = &reference.digest {
            check_digest(|| format!("the manifest of {reference}"), &bytes, digest)?;
        }
        Ok(bytes.to_vec())
    }

    /// The manifest at `tag` in `reference`'s repository (cosign's legacy signature tag);
    /// `None` when the tag does not exist.
    ///
    /// # Errors
    /// What the registry refuses (other than "not found").
    pub fn tagged_manifest(
        &self,
        reference: &StepRef,
        tag: &str,
    ) -> Result<Option<Vec<u8>>, OciError> {
        let auth = Self::auth(reference)?;
        let target = reference.with_tag(tag).client_ref();
        let result = self.rt.block_on(async {
            self.client
                .pull_manifest_raw(&target, &auth, &[MANIFEST_MEDIA_TYPE])
                .await
        });
        match result {
            Ok((bytes, _)) if bytes.len() <= MAX_MANIFEST_BYTES => Ok(Some(bytes.to_vec())),
            Ok((bytes, _)) => Err(OciError::Layout {
                reference: reference.to_string(),
                reason: format!("a signature manifest of {} bytes", bytes.len()),
            }),
            Err(e) if auth::is_not_found(&e) => Ok(None),
            Err(e) => Err(Self::fail(reference, "fetching the signature")(e)),
        }
    }

    /// The manifests referring to `pinned` (a reference by digest) with `artifact_type`, as
    /// (digest, size): through the registry's referrers API, else the referrers tag schema.
    ///
    /// # Errors
    /// What the registry refuses.
    pub fn referrers(
        &self,
        pinned: &StepRef,
        artifact_type: &str,
    ) -> Result<Vec<(String, i64)>, OciError> {
        let auth = Self::auth(pinned)?;
        let target = pinned.client_ref();
        let index = self.rt.block_on(async {
            self.client
                .store_auth_if_needed(&pinned.registry, &auth)
                .await;
            self.client
                .pull_referrers(&target, Some(artifact_type))
                .await
                .map_err(Self::fail(pinned, "listing the signatures"))
        })?;
        Ok(index
            .manifests
            .into_iter()
            // The API filters by artifact type; a registry may not, the tag schema does not.
            .filter(|m| m.artifact_type.as_deref() == Some(artifact_type) && is_digest(&m.digest))
            .map(|m| (m.digest, m.size))
            .collect())
    }

    /// A blob of `reference`'s repository, checked against `digest`, at most `limit` bytes;
    /// `what` says what kstep is doing, for errors.
    ///
    /// # Errors
    /// What the registry refuses; [`OciError::Digest`].
    pub fn blob(
        &self,
        reference: &StepRef,
        digest: &str,
        size: i64,
        limit: u64,
        what: &'static str,
    ) -> Result<Vec<u8>, OciError> {
        if u64::try_from(size).map_or(true, |s| s > limit) {
            return Err(OciError::Layout {
                reference: reference.to_string(),
                reason: format!("{what}: {size} bytes, more than kstep reads ({limit})"),
            });
        }
        let auth = Self::auth(reference)?;
        let target = reference.client_ref();
        let descriptor = OciDescriptor {
            digest: digest.to_owned(),
            size,
            ..OciDescriptor::default()
        };
        let mut out = Vec::new();
        self.rt.block_on(async {
            self.client
                .store_auth_if_needed(&reference.registry, &auth)
                .await;
            self.client
                .pull_blob(&target, &descriptor, &mut out)
                .await
                .map_err(Self::fail(reference, what))
        })?;
        check_digest(
            || format!("what the registry sent for {reference} ({what})"),
            &out,
            digest,
        )?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn references_parse_and_print_back() {
        for text in [
            "oci://registry.example.com/group/steps/deny-latest:1.2",
            "oci://127.0.0.1:5000/steps/x:v1",
            &format!("oci://r.example/a/b@sha256:{}", "a".repeat(64)),
            &format!("oci://r.example:443/a/b:1@sha256:{}", "0".repeat(64)),
        ] {
            let r: StepRef = text.parse().unwrap();
            assert_eq!(r.to_string(), text);
        }
        let r: StepRef = "oci://127.0.0.1:5000/group/steps/deny-latest:1.2"
            .parse()
            .unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "group/steps/deny-latest");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        assert_eq!(r.name(), "deny-latest");
        for (bad, why) in [
            ("registry/x:1", "starts with `oci://`"),
            ("oci://registry", "expected oci://"),
            ("oci://registry/x", "name a tag"),
            ("oci://registry/x@sha256:abc", "64 lower-case hex"),
            ("oci://registry/Upper:1", "`oci://registry/Upper:1`: "),
            ("oci://reg istry/x:1", "host name"),
        ] {
            let e = bad.parse::<StepRef>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn the_layout_is_the_cncf_wasm_one_and_deterministic() {
        let (manifest, config) = layout(b"\0asm component");
        assert_eq!(layout(b"\0asm component").0, manifest);
        let layer = wasm_layer("x", &manifest).unwrap();
        assert_eq!(layer.digest, digest_of(b"\0asm component"));
        assert_eq!(layer.size, 14);
        let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(m["config"]["digest"], digest_of(&config));
        assert_eq!(m["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        let wrong = manifest.clone();
        let wrong = String::from_utf8(wrong)
            .unwrap()
            .replace(WASM_MEDIA_TYPE, "application/octet-stream");
        assert!(
            wasm_layer("x", wrong.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("found `application/octet-stream`")
        );
    }

    #[test]
    fn digests_are_checked() {
        let d = digest_of(b"abc");
        assert!(is_digest(&d));
        assert!(check_digest(|| "x".into(), b"abc", &d).is_ok());
        let e = check_digest(|| "the blob".into(), b"abd", &d).unwrap_err();
        assert!(
            e.to_string().starts_with("the blob has digest sha256:"),
            "{e}"
        );
        assert!(e.is_invalid());
    }
}
