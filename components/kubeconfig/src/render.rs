//! Rendering a [`Connection`] as a minimal kubeconfig: one cluster, one user, one context (with
//! its namespace), selected as current-context. Inline material becomes `*-data` fields, so the
//! result is self-contained unless the connection itself refers to files.

use serde::Serialize;

use crate::connection::{Auth, Connection, Material};
use crate::decode::to_base64;

#[derive(Serialize)]
struct File<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    clusters: [Named<'a, Cluster<'a>>; 1],
    users: [NamedUser<'a>; 1],
    contexts: [NamedContext<'a>; 1],
    #[serde(rename = "current-context")]
    current_context: &'a str,
}

#[derive(Serialize)]
struct Named<'a, T> {
    name: &'a str,
    cluster: T,
}

#[derive(Serialize)]
struct NamedUser<'a> {
    name: &'a str,
    user: User<'a>,
}

#[derive(Serialize)]
struct NamedContext<'a> {
    name: &'a str,
    context: Context<'a>,
}

#[derive(Serialize)]
struct Cluster<'a> {
    server: &'a str,
    #[serde(
        rename = "certificate-authority-data",
        skip_serializing_if = "Option::is_none"
    )]
    certificate_authority_data: Option<String>,
    #[serde(
        rename = "certificate-authority",
        skip_serializing_if = "Option::is_none"
    )]
    certificate_authority: Option<&'a str>,
    #[serde(rename = "insecure-skip-tls-verify", skip_serializing_if = "is_false")]
    insecure_skip_tls_verify: bool,
    #[serde(rename = "tls-server-name", skip_serializing_if = "Option::is_none")]
    tls_server_name: Option<&'a str>,
    #[serde(rename = "proxy-url", skip_serializing_if = "Option::is_none")]
    proxy_url: Option<&'a str>,
}

#[derive(Serialize, Default)]
struct User<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
    #[serde(rename = "tokenFile", skip_serializing_if = "Option::is_none")]
    token_file: Option<&'a str>,
    #[serde(
        rename = "client-certificate-data",
        skip_serializing_if = "Option::is_none"
    )]
    client_certificate_data: Option<String>,
    #[serde(rename = "client-certificate", skip_serializing_if = "Option::is_none")]
    client_certificate: Option<&'a str>,
    #[serde(rename = "client-key-data", skip_serializing_if = "Option::is_none")]
    client_key_data: Option<String>,
    #[serde(rename = "client-key", skip_serializing_if = "Option::is_none")]
    client_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exec: Option<Exec<'a>>,
    #[serde(rename = "auth-provider", skip_serializing_if = "Option::is_none")]
    auth_provider: Option<AuthProvider<'a>>,
}

#[derive(Serialize)]
struct Exec<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    command: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    args: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env: Vec<EnvVar<'a>>,
    #[serde(rename = "installHint", skip_serializing_if = "Option::is_none")]
    install_hint: Option<&'a str>,
    #[serde(rename = "provideClusterInfo", skip_serializing_if = "is_false")]
    provide_cluster_info: bool,
    #[serde(rename = "interactiveMode", skip_serializing_if = "Option::is_none")]
    interactive_mode: Option<&'a str>,
}

#[derive(Serialize)]
struct EnvVar<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct AuthProvider<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    config: std::collections::BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct Context<'a> {
    cluster: &'a str,
    user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_false(b: &bool) -> bool {
    !*b
}

/// The name used for an entry the connection leaves unnamed.
const DEFAULT_NAME: &str = "kstep";

fn split(material: Option<&Material>) -> (Option<String>, Option<&str>) {
    match material {
        Some(Material::Data(bytes)) => (Some(to_base64(bytes)), None),
        Some(Material::File(path)) => (None, Some(path.as_str())),
        None => (None, None),
    }
}

fn or_default(name: &str) -> &str {
    if name.is_empty() { DEFAULT_NAME } else { name }
}

/// The minimal kubeconfig for `connection`.
///
/// # Errors
/// Only if serialisation fails (it does not for these plain types).
pub fn render(connection: &Connection) -> Result<String, String> {
    let (ca_data, ca_file) = split(connection.certificate_authority.as_ref());
    let mut user = User::default();
    match &connection.auth {
        Auth::None => {}
        Auth::Token(token) => user.token = Some(token),
        Auth::TokenFile(path) => user.token_file = Some(path),
        Auth::ClientCertificate(cc) => {
            (user.client_certificate_data, user.client_certificate) = split(Some(&cc.certificate));
            (user.client_key_data, user.client_key) = split(Some(&cc.key));
        }
        Auth::Basic(basic) => {
            user.username = Some(&basic.username);
            user.password = Some(&basic.password);
        }
        Auth::Exec(exec) => {
            user.exec = Some(Exec {
                api_version: &exec.api_version,
                command: &exec.command,
                args: &exec.args,
                env: exec
                    .env
                    .iter()
                    .map(|(name, value)| EnvVar { name, value })
                    .collect(),
                install_hint: exec.install_hint.as_deref(),
                provide_cluster_info: exec.provide_cluster_info,
                interactive_mode: exec.interactive_mode.as_deref(),
            });
        }
        Auth::AuthProvider(provider) => {
            user.auth_provider = Some(AuthProvider {
                name: &provider.name,
                config: provider
                    .config
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            });
        }
    }
    let context = or_default(&connection.context);
    let cluster = or_default(&connection.cluster);
    let user_name = if connection.user.is_empty() {
        context
    } else {
        &connection.user
    };
    let file = File {
        api_version: "v1",
        kind: "Config",
        clusters: [Named {
            name: cluster,
            cluster: Cluster {
                server: &connection.server,
                certificate_authority_data: ca_data,
                certificate_authority: ca_file,
                insecure_skip_tls_verify: connection.insecure_skip_tls_verify,
                tls_server_name: connection.tls_server_name.as_deref(),
                proxy_url: connection.proxy_url.as_deref(),
            },
        }],
        users: [NamedUser {
            name: user_name,
            user,
        }],
        contexts: [NamedContext {
            name: context,
            context: Context {
                cluster,
                user: user_name,
                namespace: connection.namespace.as_deref(),
            },
        }],
        current_context: context,
    };
    // Long base64 values must stay on one line: folding them would still be valid YAML, but
    // `grep`-ing or diffing a kubeconfig is easier without.
    let options = serde_saphyr::ser_options! {
        min_fold_chars: usize::MAX,
        folded_wrap_chars: usize::MAX,
    };
    serde_saphyr::to_string_with_options(&file, options).map_err(|e| {
        // Serialisation errors come from the types, not the values; still, keep content out.
        let _ = e;
        "the kubeconfig could not be written (internal error)".to_owned()
    })
}
