//! The one place kstep talks to Kubernetes: building the kube-rs client from a decoded
//! [`Connection`], the async runtime to drive it, and turning client errors into messages a
//! user can act on (which never contain a credential).
//!
//! The client is built from an in-memory `kube::config::Kubeconfig` with exactly one cluster,
//! user and context, so kube-rs applies its own kubeconfig semantics (CA bundles, client
//! certificates, exec plugins with their caching and refresh) without reading any file or
//! environment variable behind kstep's back. Files the kubeconfig refers to must have been read
//! with [`Connection::read_files`] first, so their secrets are registered with the masker.
//!
//! Component calls must not run on a tokio worker thread: decode the kubeconfig before
//! entering async code (the sandbox runs each call on its own thread anyway, but a blocking
//! call from async code stalls the runtime).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube::config::{
    AuthInfo, Cluster, Context, ExecConfig, ExecInteractiveMode, KubeConfigOptions, Kubeconfig,
    NamedAuthInfo, NamedCluster, NamedContext,
};
use secrecy::{ExposeSecret as _, SecretString};

use crate::credentials::{Auth, Connection, Material, SecretMaterial};

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection uses something kube-rs (as kstep builds it) cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// kube-rs refused the configuration (bad PEM, bad URL…).
    #[error("the kubeconfig cannot be used: {0}")]
    Config(String),
}

/// A tokio runtime for one command: current-thread, since kstep's requests are few and
/// sequential, and it keeps the sandbox threads the only other threads.
///
/// # Errors
/// When the OS refuses the runtime's resources.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// The in-memory kubeconfig kube-rs is given.
fn kubeconfig(conn: &Connection) -> Result<Kubeconfig, ClientError> {
    const NAME: &str = "kstep";
    // No `proxy_url`: the decoder reports one as a warning, and kube-rs would refuse the URL
    // without its proxy features, so kstep connects directly.
    let mut cluster = Cluster {
        server: Some(conn.server.clone()),
        insecure_skip_tls_verify: Some(conn.insecure_skip_tls_verify),
        tls_server_name: conn.tls_server_name.clone(),
        ..Cluster::default()
    };
    match &conn.certificate_authority {
        Some(Material::Inline(pem)) => {
            cluster.certificate_authority_data = Some(STANDARD.encode(pem));
        }
        Some(Material::File(path)) => {
            cluster.certificate_authority = Some(path.to_string_lossy().into_owned());
        }
        None => {}
    }
    let mut user = AuthInfo::default();
    match &conn.auth {
        Auth::None => {}
        Auth::Token(token) => user.token = Some(token.clone()),
        Auth::TokenFile(path) => user.token_file = Some(path.to_string_lossy().into_owned()),
        Auth::ClientCertificate { certificate, key } => {
            match certificate {
                SecretMaterial::Inline(pem) => {
                    user.client_certificate_data = Some(STANDARD.encode(pem.expose_secret()));
                }
                SecretMaterial::File(p) => {
                    user.client_certificate = Some(p.to_string_lossy().into_owned());
                }
            }
            match key {
                SecretMaterial::Inline(pem) => {
                    user.client_key_data =
                        Some(SecretString::from(STANDARD.encode(pem.expose_secret())));
                }
                SecretMaterial::File(p) => user.client_key = Some(p.to_string_lossy().into_owned()),
            }
        }
        Auth::Basic { username, password } => {
            user.username = Some(username.clone());
            user.password = Some(password.clone());
        }
        Auth::Exec(exec) => {
            user.exec = Some(ExecConfig {
                api_version: Some(exec.api_version.clone()),
                command: Some(exec.command.clone()),
                args: Some(exec.args.clone()),
                env: Some(
                    exec.env
                        .iter()
                        .map(|(name, value)| {
                            [
                                ("name".to_owned(), name.clone()),
                                ("value".to_owned(), value.expose_secret().to_owned()),
                            ]
                            .into_iter()
                            .collect()
                        })
                        .collect(),
                ),
                install_hint: exec.install_hint.clone(),
                // A CI job has no terminal: never let a plugin wait for input.
                interactive_mode: Some(ExecInteractiveMode::Never),
                provide_cluster_info: exec.provide_cluster_info,
                ..ExecConfig::default()
            });
        }
        Auth::AuthProvider { name, .. } => {
            return Err(ClientError::Unsupported(format!(
                "the user's auth-provider `{name}` was removed from kubectl (1.26) and kstep cannot \
                 use it: switch the kubeconfig to the provider's exec plugin \
                 (gke-gcloud-auth-plugin, kubelogin)"
            )));
        }
    }
    Ok(Kubeconfig {
        clusters: vec![NamedCluster {
            name: NAME.into(),
            cluster: Some(cluster),
            ..NamedCluster::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: NAME.into(),
            auth_info: Some(user),
            ..NamedAuthInfo::default()
        }],
        contexts: vec![NamedContext {
            name: NAME.into(),
            context: Some(Context {
                cluster: NAME.into(),
                user: Some(NAME.into()),
                namespace: Some(conn.namespace_or_default().to_owned()),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some(NAME.into()),
        ..Kubeconfig::default()
    })
}

/// The kube-rs configuration for `conn`: connect and read timeouts of `timeout`.
///
/// # Errors
/// [`ClientError`] for an unsupported auth method or a configuration kube-rs refuses.
pub async fn config(conn: &Connection, timeout: Duration) -> Result<kube::Config, ClientError> {
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig(conn)?, &KubeConfigOptions::default())
            .await
            .map_err(|e| ClientError::Config(safe_chain(&e, &conn.auth)))?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    config.reset_reader_on_write = true;
    // kstep decides itself what to retry; a check must fail fast.
    config.default_retry = false;
    Ok(config)
}

/// A client for `conn`. kube-rs runs an exec plugin here already, so a plugin failure is
/// described as [`explain`] does, without the plugin's output.
///
/// # Errors
/// [`ClientError`] when the configuration is refused, the TLS setup or the exec plugin fails.
pub async fn client(conn: &Connection, timeout: Duration) -> Result<kube::Client, ClientError> {
    let config = config(conn, timeout).await?;
    kube::Client::try_from(config).map_err(|e| ClientError::Config(safe_chain(&e, &conn.auth)))
}

/// The authentication failure in `error`'s chain, if any: its message may carry an exec
/// plugin's output, so it is only ever shown through [`explain_auth`].
fn auth_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a kube::client::AuthError> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(auth) = e.downcast_ref::<kube::client::AuthError>() {
            return Some(auth);
        }
        current = e.source();
    }
    None
}

/// The messages of `error` and its sources, joined with `: `, without repeats (hyper and tower
/// nest the same message several times). The one way kstep prints a client error that is not
/// the server's answer: an authentication failure anywhere in the chain is described by
/// [`explain_auth`] alone, because its message, and every message wrapping it, may carry an
/// exec plugin's output (a fresh token nobody registered with the masker). `auth` names the
/// plugin when the caller knows it ([`Auth::None`] otherwise).
pub fn safe_chain(error: &(dyn std::error::Error + 'static), auth: &Auth) -> String {
    if let Some(failure) = auth_error(error) {
        return explain_auth(failure, auth);
    }
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// What went wrong in a request, for a user: the server's status for API errors, the cause for
/// TLS and connection failures, and a hint of what to check. Exec-plugin failures are
/// described from their kind only: kube-rs would print the plugin's output, which may hold a
/// credential.
pub fn explain(error: &kube::Error, conn: &Connection, doing: &str) -> String {
    let server = &conn.server;
    if let kube::Error::Api(status) = error {
        return match status.code {
            401 => format!(
                "{doing}: the API server at {server} rejected the credentials (401 Unauthorized): {}",
                unauthorized_hint(&conn.auth)
            ),
            403 => format!(
                "{doing}: forbidden (403): {}",
                if status.message.is_empty() {
                    &status.reason
                } else {
                    &status.message
                }
            ),
            code => format!(
                "{doing}: the API server answered {code} {}: {}",
                status.reason, status.message
            ),
        };
    }
    let chain = safe_chain(error, &conn.auth);
    if auth_error(error).is_some() {
        return format!("{doing}: {chain}");
    }
    let mut sources: Vec<&(dyn std::error::Error + 'static)> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        sources.push(e);
        current = e.source();
    }
    let lower = chain.to_lowercase();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        let cause = sources
            .iter()
            .rev()
            .map(|e| e.to_string())
            .find(|m| m.to_lowercase().contains("certificate"))
            .unwrap_or_else(|| chain.clone());
        let ca = match &conn.certificate_authority {
            Some(_) => "the certificate-authority-data in the kubeconfig",
            None => {
                "the system's root certificates (the kubeconfig has no certificate-authority-data)"
            }
        };
        return format!(
            "{doing}: TLS failure with {server}: {cause}. The server's certificate must be \
             signed by {ca} and name the host in the server URL"
        );
    }
    if lower.contains("connection refused") {
        return format!(
            "{doing}: cannot reach {server}: connection refused (is the API server running, \
             and is the address and port in the kubeconfig right?)"
        );
    }
    if lower.contains("timed out") || lower.contains("elapsed") || lower.contains("timeout") {
        return format!(
            "{doing}: no answer from {server} in time (a firewall, or a server only reachable \
             from another network: a CI runner is not your laptop)"
        );
    }
    if lower.contains("dns") || lower.contains("lookup") || lower.contains("resolve") {
        return format!("{doing}: cannot resolve the host of {server}: {chain}");
    }
    format!("{doing}: cannot talk to {server}: {chain}")
}

fn unauthorized_hint(auth: &Auth) -> &'static str {
    match auth {
        Auth::Token(_) | Auth::TokenFile(_) => {
            "the token is expired, revoked, or belongs to another cluster (a ServiceAccount \
             token from `kubectl create token` expires; its Secret-based form does not)"
        }
        Auth::ClientCertificate { .. } => {
            "the client certificate is expired or not signed by the cluster's client CA"
        }
        Auth::Basic { .. } => "wrong username or password, or basic authentication is disabled",
        Auth::Exec(_) => "the exec plugin's credentials are not accepted by this cluster",
        Auth::None => "the cluster does not allow anonymous requests: the kubeconfig needs a user",
        Auth::AuthProvider { .. } => "auth-providers are not supported",
    }
}

fn explain_auth(error: &kube::client::AuthError, auth: &Auth) -> String {
    use kube::client::AuthError as E;
    // Named when the caller knows the connection (an error from a running request does not).
    let (plugin, hint) = match auth {
        Auth::Exec(e) => (
            format!("the exec plugin `{}`", e.command),
            e.install_hint
                .as_deref()
                .map(|h| format!(" ({})", h.trim()))
                .unwrap_or_default(),
        ),
        _ => ("the exec plugin".to_owned(), String::new()),
    };
    match error {
        E::AuthExecStart(io) => {
            format!("cannot run {plugin}: {io}; the job's image must contain it{hint}")
        }
        E::AuthExecRun { out, .. } => format!(
            "{plugin} failed ({}); run it by hand to see why (its output is \
             not shown: it may contain credentials)",
            out.status
        ),
        E::AuthExecParse(_) | E::ExecPluginFailed | E::AuthExec(_) => format!(
            "{plugin} did not print a valid ExecCredential (output not shown: \
             it may contain credentials)"
        ),
        E::InvalidBearerToken(_) => {
            "the token is not a valid HTTP header value (a line break or control character)".into()
        }
        E::InvalidBasicAuth(_) => {
            "the username or password is not a valid HTTP header value".into()
        }
        E::ReadTokenFile(io, path) => {
            format!("cannot read the token file {}: {io}", path.display())
        }
        E::ExecMissingClusterInfo => {
            "the exec plugin asks for cluster information (provideClusterInfo) kube-rs cannot give"
                .into()
        }
        _ => "authentication failed".into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::credentials::ExecPlugin;

    fn conn(auth: Auth) -> Connection {
        Connection {
            context: "c".into(),
            cluster: "c".into(),
            user: "u".into(),
            server: "https://127.0.0.1:6443".into(),
            certificate_authority: None,
            insecure_skip_tls_verify: false,
            tls_server_name: None,
            proxy_url: None,
            namespace: Some("ns".into()),
            auth,
        }
    }

    #[test]
    fn in_memory_kubeconfig() {
        let k = kubeconfig(&conn(Auth::Token(SecretString::from("tok-123456")))).unwrap();
        let user = k.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(user.token.as_ref().unwrap().expose_secret(), "tok-123456");
        assert_eq!(
            k.contexts[0].context.as_ref().unwrap().namespace.as_deref(),
            Some("ns")
        );
        let exec = Auth::Exec(ExecPlugin {
            command: "aws".into(),
            args: vec!["eks".into()],
            env: vec![("AWS_PROFILE".into(), SecretString::from("deploy"))],
            api_version: "client.authentication.k8s.io/v1beta1".into(),
            install_hint: None,
            provide_cluster_info: false,
            interactive_mode: Some("Always".into()),
        });
        let k = kubeconfig(&conn(exec)).unwrap();
        let exec = k.auth_infos[0]
            .auth_info
            .as_ref()
            .unwrap()
            .exec
            .as_ref()
            .unwrap();
        assert_eq!(exec.interactive_mode, Some(ExecInteractiveMode::Never));
        assert_eq!(exec.env.as_ref().unwrap()[0]["value"], "deploy");
        let provider = Auth::AuthProvider {
            name: "gcp".into(),
            config: Vec::new(),
        };
        assert!(kubeconfig(&conn(provider)).is_err());
    }

    #[test]
    fn a_failing_exec_plugin_output_is_not_shown() {
        // kube-rs runs the plugin while it builds the client, and its error carries the
        // plugin's output, which may hold a credential nobody registered with the masker.
        let exec = Auth::Exec(ExecPlugin {
            command: "sh".into(),
            args: vec!["-c".into(), "echo fresh-token-4f7a9c; exit 3".into()],
            env: Vec::new(),
            api_version: "client.authentication.k8s.io/v1".into(),
            install_hint: None,
            provide_cluster_info: false,
            interactive_mode: None,
        });
        let rt = runtime().unwrap();
        let Err(error) = rt.block_on(client(&conn(exec), Duration::from_secs(15))) else {
            panic!("the plugin failed, the client cannot build");
        };
        let error = error.to_string();
        assert!(!error.contains("fresh-token"), "{error}");
        assert!(error.contains("exec plugin `sh` failed"), "{error}");
    }

    #[test]
    fn client_builds_without_network() {
        let rt = runtime().unwrap();
        let c = conn(Auth::Token(SecretString::from("tok-123456")));
        let client = rt.block_on(client(&c, Duration::from_secs(15))).unwrap();
        assert_eq!(client.default_namespace(), "ns");
    }
}
