//! The kubeconfig file format (client-go `clientcmd/api/v1`), as much of it as kstep reads, with
//! source positions on the values that diagnostics point at. Unknown fields (extensions,
//! preferences) are ignored, as kubectl ignores them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

/// A string with the position where it was written.
pub type Text = Spanned<String>;

/// A kubeconfig file.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct File {
    /// `v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: Option<String>,
    /// `Config`.
    pub kind: Option<Text>,
    /// The clusters.
    pub clusters: Option<Vec<NamedCluster>>,
    /// The users.
    pub users: Option<Vec<NamedUser>>,
    /// The contexts.
    pub contexts: Option<Vec<NamedContext>>,
    /// The context used when none is named.
    #[serde(rename = "current-context")]
    pub current_context: Option<Text>,
}

/// `clusters[]`.
#[derive(Debug, Deserialize)]
pub struct NamedCluster {
    /// The name contexts refer to.
    pub name: Text,
    /// The entry.
    #[serde(default)]
    pub cluster: Option<Cluster>,
}

/// `clusters[].cluster`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Cluster {
    /// The API server URL.
    pub server: Option<Text>,
    /// base64 of the CA bundle (PEM).
    #[serde(rename = "certificate-authority-data")]
    pub certificate_authority_data: Option<Text>,
    /// A CA bundle file.
    #[serde(rename = "certificate-authority")]
    pub certificate_authority: Option<Text>,
    /// No TLS verification.
    #[serde(rename = "insecure-skip-tls-verify")]
    pub insecure_skip_tls_verify: Option<Spanned<bool>>,
    /// The name the server certificate is checked against.
    #[serde(rename = "tls-server-name")]
    pub tls_server_name: Option<String>,
    /// A proxy URL.
    #[serde(rename = "proxy-url")]
    pub proxy_url: Option<Text>,
}

/// `users[]`.
#[derive(Debug, Deserialize)]
pub struct NamedUser {
    /// The name contexts refer to.
    pub name: Text,
    /// The entry.
    #[serde(default)]
    pub user: Option<User>,
}

/// `users[].user`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct User {
    /// A bearer token.
    pub token: Option<Text>,
    /// A file holding a bearer token.
    #[serde(rename = "tokenFile")]
    pub token_file: Option<Text>,
    /// base64 of the client certificate (PEM).
    #[serde(rename = "client-certificate-data")]
    pub client_certificate_data: Option<Text>,
    /// A client certificate file.
    #[serde(rename = "client-certificate")]
    pub client_certificate: Option<Text>,
    /// base64 of the client key (PEM).
    #[serde(rename = "client-key-data")]
    pub client_key_data: Option<Text>,
    /// A client key file.
    #[serde(rename = "client-key")]
    pub client_key: Option<Text>,
    /// Basic authentication user.
    pub username: Option<Text>,
    /// Basic authentication password.
    pub password: Option<Text>,
    /// A credential plugin.
    pub exec: Option<Exec>,
    /// A legacy auth-provider.
    #[serde(rename = "auth-provider")]
    pub auth_provider: Option<AuthProvider>,
    /// Impersonation (`as`), unsupported.
    #[serde(rename = "as")]
    pub impersonate: Option<Text>,
    /// Impersonated groups, unsupported.
    #[serde(rename = "as-groups")]
    pub impersonate_groups: Option<Vec<String>>,
}

/// `users[].user.exec`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Exec {
    /// The command.
    pub command: Option<Text>,
    /// Its arguments.
    pub args: Option<Vec<String>>,
    /// Extra environment.
    pub env: Option<Vec<EnvVar>>,
    /// ExecCredential version.
    #[serde(rename = "apiVersion")]
    pub api_version: Option<String>,
    /// Shown when the command is missing.
    #[serde(rename = "installHint")]
    pub install_hint: Option<String>,
    /// Pass the cluster's details to the plugin.
    #[serde(rename = "provideClusterInfo")]
    pub provide_cluster_info: Option<bool>,
    /// `Never`, `IfAvailable`, `Always`.
    #[serde(rename = "interactiveMode")]
    pub interactive_mode: Option<String>,
}

/// `exec.env[]`.
#[derive(Debug, Deserialize)]
pub struct EnvVar {
    /// The variable.
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

/// `users[].user.auth-provider`.
#[derive(Debug, Deserialize)]
pub struct AuthProvider {
    /// `gcp`, `azure`, `oidc`…
    pub name: Text,
    /// Its settings.
    #[serde(default)]
    pub config: Option<BTreeMap<String, String>>,
}

/// `contexts[]`.
#[derive(Debug, Deserialize)]
pub struct NamedContext {
    /// The context's name.
    pub name: Text,
    /// The entry.
    #[serde(default)]
    pub context: Option<Context>,
}

/// `contexts[].context`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Context {
    /// The cluster's name.
    pub cluster: Option<Text>,
    /// The user's name.
    pub user: Option<Text>,
    /// The namespace.
    pub namespace: Option<Text>,
}

/// 1-based line and column of a spanned value.
pub fn position(location: &Location) -> (u32, u32) {
    (
        u32::try_from(location.line()).unwrap_or(0),
        u32::try_from(location.column()).unwrap_or(0),
    )
}

/// Parses a kubeconfig text (YAML or JSON, which is YAML).
///
/// # Errors
/// Line, column and a description built without the input's content.
pub fn parse(text: &str) -> Result<File, (u32, u32, String)> {
    let options = serde_saphyr::options! {
        // Keys that appear twice are an error in client-go too, and a quiet "last wins" could
        // pick credentials the user did not mean.
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
    };
    match serde_saphyr::from_str_with_options::<Option<File>>(text, options) {
        Ok(Some(file)) => Ok(file),
        Ok(None) => Ok(File::default()),
        Err(e) => {
            let (line, column) = e.location().map_or((0, 0), |l| position(&l));
            Err((line, column, describe(&e)))
        }
    }
}

/// Describes a serde-saphyr error. Library messages can quote the offending snippet (serde's
/// `invalid type: string "…"`, the annotated source lines), so messages are built from the
/// error's kind and only from fields that come from kstep's types or the parser's fixed texts.
fn describe(error: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    let mut error = error.without_snippet();
    while let E::AliasError { error: inner, .. } = error {
        error = inner.without_snippet();
    }
    match error {
        E::SerdeMissingField { field, .. } => format!("missing field `{field}`"),
        E::SerdeInvalidType { expected, .. }
        | E::SerdeInvalidValue { expected, .. }
        | E::SerdeInvalidLength { expected, .. } => match plain_words(expected) {
            Some(expected) => format!("wrong type of value: expected {expected}"),
            None => "wrong type of value".into(),
        },
        E::InvalidScalar { ty, .. } => format!("wrong type of value: expected {ty}"),
        E::InvalidBooleanStrict { .. } => "wrong type of value: expected true or false".into(),
        E::Unexpected { expected, .. } => format!("wrong type of value: expected {expected}"),
        E::DuplicateMappingKey { .. } => "a key appears twice in the same mapping".into(),
        E::MultipleDocuments { .. } => {
            "several YAML documents (`---`); a kubeconfig is one document".into()
        }
        E::UnknownAnchor { .. } => "YAML syntax error: an alias refers to an unknown anchor".into(),
        E::Eof { .. } => "YAML syntax error: unexpected end of input".into(),
        E::Budget { .. } => "the YAML is too complex (alias expansion or nesting limit)".into(),
        E::ExternalMessage { msg, .. } => {
            // Parser texts are fixed, except that they quote punctuation as `'['`.
            let mut cleaned = msg.clone();
            for p in [
                "[", "]", "{", "}", "\"", "'", ":", "-", "#", "&", "*", "!", "|", ">", "%", "@",
                "`", ",",
            ] {
                cleaned = cleaned.replace(&format!("'{p}'"), &format!("({p})"));
                cleaned = cleaned.replace(&format!("\"{p}\""), &format!("({p})"));
            }
            match plain_words(&cleaned) {
                Some(words) => format!("YAML syntax error: {words}"),
                None => "YAML syntax error".into(),
            }
        }
        _ => "the value does not fit the kubeconfig format".into(),
    }
}

/// `text` when it consists only of words, spaces, `,;_-` and single punctuation characters in
/// parentheses (`(:)`, as [`describe`] writes the parser's `':'`): nothing that can carry a
/// credential.
fn plain_words(text: &str) -> Option<&str> {
    let text = text.trim();
    if text.is_empty() || text.len() > 120 {
        return None;
    }
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_ascii_alphabetic() || " ,;_-".contains(c) {
            i += 1;
        } else if c == '(' && chars.get(i + 2) == Some(&')') {
            i += 3;
        } else {
            return None;
        }
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn reads_positions() {
        let file = parse("clusters:\n- name: a\n  cluster:\n    server: https://x\n").unwrap();
        let clusters = file.clusters.unwrap();
        let server = clusters[0]
            .cluster
            .as_ref()
            .unwrap()
            .server
            .as_ref()
            .unwrap();
        assert_eq!(server.value, "https://x");
        assert_eq!(position(&server.referenced), (4, 13));
    }

    #[test]
    fn errors_never_quote_content() {
        let secret = "tok3n-SECRET-value";
        for text in [
            format!("users:\n- name: u\n  user:\n    token: [{secret}\n"),
            format!("users: {secret}\n"),
            format!("clusters:\n- name: a\n  cluster:\n    insecure-skip-tls-verify: {secret}\n"),
            format!("users:\n- name: u\n  user: {{token: \"{secret}\"\n"),
            format!("a: b\n  c: {secret}\n"),
            format!("users:\n- user:\n    token: {secret}\n"),
            format!("kind: Config\nkind: {secret}\n"),
            format!("contexts: \"{secret}\n"),
            format!("users:\n- name: u\n  user:\n    token: *{secret}\n"),
        ] {
            let (line, _, message) = parse(&text).unwrap_err();
            assert!(!message.contains(secret), "{message}");
            assert!(!message.contains("tok3n"), "{message}");
            assert!(line > 0, "{text}: {message}");
        }
    }

    #[test]
    fn messages_are_useful() {
        let (_, _, m) = parse("users:\n- user:\n    token: x\n").unwrap_err();
        assert_eq!(m, "missing field `name`");
        let (_, _, m) = parse("users: nope\n").unwrap_err();
        assert!(m.starts_with("wrong type of value: expected"), "{m}");
        let (_, _, m) = parse("a:\n- b\nc: [\n- d\n").unwrap_err();
        assert_eq!(m, "YAML syntax error: (-) is only valid inside a block");
        let (l, c, m) = parse("a: [b\n").unwrap_err();
        assert!(m.starts_with("YAML syntax error"), "{m}");
        assert!(l >= 1 && c >= 1);
        let (_, _, m) = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(m.contains("several YAML documents"), "{m}");
        let (_, _, m) = parse("kind: Config\nkind: Config\n").unwrap_err();
        assert!(m.contains("twice"), "{m}");
    }
}
