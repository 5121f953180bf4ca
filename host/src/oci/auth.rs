//! Registry credentials, looked up in the order GitLab CI and `docker login` provide them:
//!
//! 1. `DOCKER_AUTH_CONFIG`: a docker config JSON (GitLab's variable for private registries);
//! 2. `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (`docker login`);
//! 3. `CI_REGISTRY_USER` / `CI_REGISTRY_PASSWORD`, for the registry named by `CI_REGISTRY`.
//!
//! In a docker config, `auths.<registry>` holds `auth` (base64 of `user:password`) or
//! `username` and `password`; the key may be a bare `host[:port]` or a URL. Every password and
//! `auth` string found is registered with the masker (in all its forms) before it is used, so
//! no error message, log or artifact can show it. Credential helpers (`credsStore`,
//! `credHelpers`) run programs: kstep does not, and says so when one is the only source.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use serde::Deserialize;

use super::OciError;

/// A user name and password for a registry.
#[derive(Clone)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token (registered with the masker).
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The registry (`host[:port]`) a docker config key names: `https://host/v1/` → `host`.
fn key_host(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// The credentials for `registry` in a docker config's text; `source` names it in messages.
fn from_docker_config(
    text: &str,
    registry: &str,
    source: &str,
) -> Result<Option<Credentials>, OciError> {
    // The whole text may hold other registries' secrets: masked before it can be reported.
    crate::secrets::register(text.trim());
    let config: DockerConfig = serde_json::from_str(text).map_err(|e| {
        // serde_json's message names a line and column, never the content.
        OciError::Setup(format!("{source}: not a docker config JSON: {e}"))
    })?;
    for entry in config.auths.values() {
        register_entry(entry);
    }
    let Some(entry) = config
        .auths
        .iter()
        .find(|(key, _)| key_host(key) == registry)
        .map(|(_, e)| e)
    else {
        if config.cred_helpers.contains_key(registry) || config.creds_store.is_some() {
            crate::output::stderr_line(&format!(
                "warning: {source} names a credential helper; kstep does not run credential \
                 helpers: give the registry's credentials under `auths`"
            ));
        }
        return Ok(None);
    };
    let (username, password) = match (&entry.auth, &entry.username, &entry.password) {
        (Some(auth), _, _) if !auth.is_empty() => {
            let decoded = STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .ok_or_else(|| {
                    OciError::Setup(format!(
                        "{source}: `auths.{registry}.auth` is not base64 of USER:PASSWORD"
                    ))
                })?;
            crate::secrets::register(&decoded);
            let (user, password) = decoded.split_once(':').ok_or_else(|| {
                OciError::Setup(format!(
                    "{source}: `auths.{registry}.auth` is not base64 of USER:PASSWORD"
                ))
            })?;
            (user.to_owned(), password.to_owned())
        }
        (_, Some(user), Some(password)) => (user.clone(), password.clone()),
        _ => {
            return Err(OciError::Setup(format!(
                "{source}: `auths.{registry}` has neither `auth` nor `username` and `password`"
            )));
        }
    };
    crate::secrets::register(&password);
    Ok(Some(Credentials { username, password }))
}

fn register_entry(entry: &AuthEntry) {
    if let Some(auth) = &entry.auth {
        crate::secrets::register(auth.trim());
        if let Some(decoded) = STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
        {
            crate::secrets::register(&decoded);
            if let Some((_, password)) = decoded.split_once(':') {
                crate::secrets::register(password);
            }
        }
    }
    if let Some(password) = &entry.password {
        crate::secrets::register(password);
    }
}

fn docker_config_file() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    var("DOCKER_CONFIG")
        .map(|d| PathBuf::from(d).join("config.json"))
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json")))
}

/// The credentials for `registry` (`host[:port]`), `None` to go anonymously.
///
/// # Errors
/// [`OciError::Setup`] for a docker config that cannot be read or used.
pub fn find(registry: &str) -> Result<Option<Credentials>, OciError> {
    if let Ok(text) = std::env::var("DOCKER_AUTH_CONFIG")
        && !text.trim().is_empty()
        && let Some(found) = from_docker_config(&text, registry, "DOCKER_AUTH_CONFIG")?
    {
        return Ok(Some(found));
    }
    if let Some(path) = docker_config_file()
        && path.is_file()
    {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| OciError::Setup(format!("{}: cannot read: {e}", path.display())))?;
        if let Some(found) = from_docker_config(&text, registry, &path.display().to_string())? {
            return Ok(Some(found));
        }
    }
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(ci), Some(user), Some(password)) = (
        var("CI_REGISTRY"),
        var("CI_REGISTRY_USER"),
        var("CI_REGISTRY_PASSWORD"),
    ) && key_host(&ci) == registry
    {
        crate::secrets::register(&password);
        crate::secrets::register(&format!("{user}:{password}"));
        return Ok(Some(Credentials {
            username: user,
            password,
        }));
    }
    Ok(None)
}

/// Whether the registry answered "no such manifest or repository".
pub fn is_not_found(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        }),
        OciDistributionError::ServerError { code, .. } => *code == 404,
        _ => false,
    }
}

/// Where credentials come from, for a refused login.
const CHECK: &str =
    "check DOCKER_AUTH_CONFIG, ~/.docker/config.json or CI_REGISTRY_USER/CI_REGISTRY_PASSWORD";

/// A one-line description of a client error: the registry's own words, or the cause of a
/// connection failure (a certificate it does not trust, a refused connection), and what to do
/// about a refused login. Secrets are masked where it is printed, as everywhere.
pub fn describe(error: &OciDistributionError) -> String {
    match error {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => {
            format!("the registry refused the credentials (HTTP 401): {CHECK}")
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let unauthorized = envelope
                .errors
                .iter()
                .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied));
            let text = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            if unauthorized {
                format!("the registry refused the credentials ({text}): {CHECK}")
            } else {
                text
            }
        }
        OciDistributionError::ServerError {
            code: code @ (401 | 403),
            ..
        } => format!("the registry refused the credentials (HTTP {code}): {CHECK}"),
        OciDistributionError::ServerError { code, message, .. } => {
            format!("HTTP {code}: {}", message.trim())
        }
        // reqwest hides the cause (an untrusted certificate, a refused connection) in its
        // source chain.
        other => crate::kube_client::safe_chain(other, &crate::credentials::Auth::None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn docker_config_auth_and_username_password() {
        let auth = STANDARD.encode("ci-user:s3cret-Pa55word");
        let text = format!(
            r#"{{"auths": {{"https://127.0.0.1:5000/v1/": {{"auth": "{auth}"}},
                 "other.example": {{"username": "u", "password": "other-Pa55word"}}}}}}"#
        );
        let c = from_docker_config(&text, "127.0.0.1:5000", "DOCKER_AUTH_CONFIG")
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("ci-user", "s3cret-Pa55word")
        );
        // Registered with the masker, the other registry's password too.
        for secret in ["s3cret-Pa55word", &auth, "other-Pa55word"] {
            assert!(
                !crate::secrets::mask(&format!("x {secret} y")).contains(secret),
                "{secret}"
            );
        }
        let c = from_docker_config(&text, "other.example", "f")
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "u");
        assert!(
            from_docker_config(&text, "third.example", "f")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn bad_docker_configs_are_clear_errors_without_content() {
        let e = from_docker_config("{not json hunter2-secret", "r", "DOCKER_AUTH_CONFIG")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("DOCKER_AUTH_CONFIG: not a docker config JSON"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let e = from_docker_config(r#"{"auths": {"r": {"auth": "!!"}}}"#, "r", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not base64 of USER:PASSWORD"), "{e}");
    }
}
