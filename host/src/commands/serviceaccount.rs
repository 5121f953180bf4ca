//! `kstep serviceaccount create`: a namespace-scoped CI identity, its kubeconfig and the masked
//! variable value, verified with the new identity before anything is written.
//!
//! The admin's kubeconfig (`--kubeconfig`, `$KSTEP_KUBECONFIG`, `$KUBECONFIG`) gives the server,
//! its CA and the rights to create the ServiceAccount and RoleBinding; the new kubeconfig keeps
//! the server and CA and swaps the credentials for the ServiceAccount's token.
//!
//! Secrets: the token is registered with the masker the moment it arrives, so no log line can
//! show it (or the base64 kubeconfig, which embeds it). The only ways out are the files in
//! `--out-dir` (mode 0600) and `--print-secret`, which writes the masked-variable value to
//! stdout unmasked because that is what was asked for.
//!
//! stdout carries that value alone (`--print-secret > file` gives a usable variable value):
//! progress, the apply engine's lines and the verification table all go to stderr.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

use crate::cli::{CliError, CliResult, parse_duration};
use crate::credentials::{Auth, Connection, Credentials};
use crate::deploy::DEFAULT_CONCURRENCY;
use crate::deploy::apply::{self as engine, Options};
use crate::deploy::objects::NamespacePolicy;
use crate::deploy::serviceaccount::{self as sa, Request, TokenKind};
use crate::output;
use crate::runtime::Runtime;
use crate::shell::Shell;
use crate::steps::kubeconfig as kubeconfig_step;

/// The subcommands of `kstep serviceaccount`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create (or update) a ServiceAccount bound to a ClusterRole in one namespace, issue its
    /// token, build and verify its kubeconfig, and write it with the masked-variable value.
    Create(CreateArgs),
}

/// Arguments of `kstep serviceaccount create`.
#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    /// The namespace the identity is confined to.
    #[arg(short = 'n', long, value_name = "NS")]
    namespace: String,
    /// The ServiceAccount's name.
    #[arg(long, value_name = "NAME")]
    name: String,
    /// The ClusterRole the RoleBinding grants in the namespace.
    #[arg(long, value_name = "ROLE", default_value = "admin")]
    cluster_role: String,
    /// Lifetime of the TokenRequest token (the server may cap it).
    #[arg(long, value_parser = parse_duration, default_value = "8760h", value_name = "DURATION",
          conflicts_with = "long_lived")]
    token_duration: Duration,
    /// Use a `kubernetes.io/service-account-token` Secret instead: the token is valid until the
    /// Secret is deleted.
    #[arg(long)]
    long_lived: bool,
    /// Create the namespace when it does not exist.
    #[arg(long)]
    create_namespace: bool,
    /// Write `kubeconfig` and `KUBECONFIG.b64` (the masked variable's value) here, mode 0600.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Print the masked variable's value on stdout (a credential: not in a CI log).
    #[arg(long)]
    print_secret: bool,
    /// The API server URL for the new kubeconfig, when CI reaches the cluster by another address
    /// than the admin's kubeconfig.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// The admin's kubeconfig. Default: $KSTEP_KUBECONFIG, then $KUBECONFIG, then
    /// ~/.kube/config.
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Use this context of the admin's kubeconfig.
    #[arg(long, value_name = "NAME", env = "KSTEP_CONTEXT")]
    context: Option<String>,
    /// Time allowed for each request, and for a long-lived token Secret to be filled.
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    timeout: Duration,
}

/// Runs `kstep serviceaccount …`.
///
/// # Errors
/// Exit 2 for invalid arguments or a missing namespace; exit 1 for cluster failures and a
/// failed verification (nothing is written then).
pub(crate) fn run(command: &Command) -> CliResult {
    match command {
        Command::Create(a) => create(a),
    }
}

fn create(args: &CreateArgs) -> CliResult {
    if args.out_dir.is_none() && !args.print_secret {
        return Err(CliError::invalid(anyhow::anyhow!(
            "nowhere to put the credential: pass --out-dir DIR (files, mode 0600) and/or \
             --print-secret"
        )));
    }
    let request = Request {
        namespace: args.namespace.clone(),
        name: args.name.clone(),
        cluster_role: args.cluster_role.clone(),
        token: if args.long_lived {
            TokenKind::LongLived
        } else {
            TokenKind::Bound(args.token_duration)
        },
    };
    // Before anything prints: the apply engine's lines too.
    output::progress_to_stderr();
    let runtime = Runtime::new()?;
    let target = crate::deploy::session::Target {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        request_timeout: args.timeout,
        plain_http: crate::credentials::PlainHttp::Refuse,
    };
    let mut admin = crate::deploy::session::load_credentials(&runtime, &target, &Shell::new(false))
        .map_err(|e| {
            Shell::new(false).error(&e);
            CliError::from(e.failure())
        })?;
    let rt = crate::kube_client::runtime().map_err(anyhow::Error::from)?;

    // 1. The identity and its token, as the admin.
    let issued = rt.block_on(bootstrap(&mut admin, args, &request))?;
    for w in &issued.warnings {
        output::stderr_line(&format!("warning: {w}"));
    }

    // 2. The kubeconfig, rendered and encoded by the kubeconfig step, and decoded back to prove
    //    the masked-variable value is what CI will read.
    let connection = new_connection(&admin.connection, &request, args, &issued.token);
    let kubeconfig = kubeconfig_step::render(&runtime, &connection.to_step())?;
    output::register_secret(&kubeconfig);
    let encoded = match kubeconfig_step::encode(&runtime, kubeconfig.as_bytes())? {
        Ok(value) => value,
        Err(d) => {
            return Err(CliError::from(anyhow::anyhow!(
                "the kubeconfig cannot be a masked variable: {}",
                kubeconfig_step::format_diagnostic(&d)
            )));
        }
    };
    output::register_secret(&encoded);
    round_trip(&runtime, &encoded, &connection)?;

    // 3. Verification with the new identity.
    let checks = rt.block_on(async {
        let client = crate::kube_client::client(&connection, args.timeout)
            .await
            .map_err(|e| CliError::from(anyhow::Error::from(e)))?;
        sa::verify(&client, &request).await.map_err(|e| {
            CliError::from(anyhow::Error::msg(crate::kube_client::explain(
                &e,
                &connection,
                "verifying the new identity",
            )))
        })
    })?;
    output::stderr_line(&format!(
        "Verification as {} on {}:\n{}",
        request.username(),
        connection.server,
        sa::table(&checks).trim_end()
    ));
    let failed: Vec<&sa::Check> = checks.iter().filter(|c| !c.ok()).collect();
    if !failed.is_empty() {
        output::stderr_line(&format!(
            "error: the new identity does not behave like a namespace-scoped deploy identity \
             ({} check(s) failed: {}); nothing was written. Check the ClusterRole `{}` and any \
             other binding of {}",
            failed.len(),
            failed
                .iter()
                .map(|c| c.what.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            request.cluster_role,
            request.username()
        ));
        return Err(CliError::reported());
    }

    // 4. The outputs.
    if let Some(dir) = &args.out_dir {
        write_outputs(dir, &kubeconfig, &encoded)?;
        output::stderr_line(&format!(
            "Wrote {} and {} (mode 0600). Store the content of KUBECONFIG.b64 in a CI/CD variable \
             KUBECONFIG with \"Masked and hidden\" (or \"Mask variable\") checked.",
            dir.join("kubeconfig").display(),
            dir.join("KUBECONFIG.b64").display()
        ));
    }
    if args.print_secret {
        print_secret(&encoded)?;
    }
    Ok(())
}

/// Applies the objects (dry run first), then issues the token.
async fn bootstrap(
    admin: &mut Credentials,
    args: &CreateArgs,
    request: &Request,
) -> Result<sa::Issued, CliError> {
    let conn = &admin.connection;
    let client = crate::kube_client::client(conn, args.timeout)
        .await
        .map_err(|e| CliError::from(anyhow::Error::from(e)))?;
    let fail = |e: &kube::Error, doing: &str| {
        CliError::from(anyhow::Error::msg(crate::kube_client::explain(
            e, conn, doing,
        )))
    };
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(client.clone());
    let exists = namespaces
        .get_opt(&request.namespace)
        .await
        .map_err(|e| fail(&e, "reading the namespace"))?
        .is_some();
    if !exists && !args.create_namespace {
        return Err(CliError::invalid(anyhow::anyhow!(
            "namespace {} does not exist (pass --create-namespace to create it)",
            request.namespace
        )));
    }
    match sa::cluster_role_exists(&client, request)
        .await
        .map_err(|e| fail(&e, "reading the ClusterRole"))?
    {
        Some(true) => {}
        Some(false) => {
            return Err(CliError::invalid(anyhow::anyhow!(
                "ClusterRole {} does not exist; nothing was created (`kubectl get clusterroles` \
                 lists them; the default, `admin`, is built in)",
                request.cluster_role
            )));
        }
        None => output::stderr_line(&format!(
            "warning: this kubeconfig may not read ClusterRoles: cannot check that {} exists \
             before creating the binding",
            request.cluster_role
        )),
    }
    let objects =
        sa::objects(request, !exists).map_err(|e| CliError::from(anyhow::Error::from(e)))?;
    let options = Options {
        policy: NamespacePolicy {
            default_namespace: request.namespace.clone(),
            allowed: Default::default(),
            allow_cluster_scoped: !exists,
        },
        dry_run: false,
        force_conflicts: false,
        field_manager: crate::deploy::FIELD_MANAGER.to_owned(),
        adopt_helm: false,
        concurrency: DEFAULT_CONCURRENCY,
        establish_timeout: args.timeout,
        watch_timeout: crate::deploy::watch::timeout_for(args.timeout),
    };
    output::stderr_line(&format!(
        "Creating ServiceAccount {} in namespace {} bound to ClusterRole {} on {}",
        request.name, request.namespace, request.cluster_role, conn.server
    ));
    apply(&client, objects, &options).await?;
    if request.token == TokenKind::LongLived {
        // The token controller deletes a token Secret whose ServiceAccount it cannot find: the
        // account must exist before its Secret does.
        sa::wait_for_account(&client, request, args.timeout)
            .await
            .map_err(|e| match e {
                sa::TokenError::Api(inner) => fail(&inner, "watching the ServiceAccount"),
                other => CliError::from(anyhow::Error::from(other)),
            })?;
        let secret =
            sa::token_secret(request).map_err(|e| CliError::from(anyhow::Error::from(e)))?;
        apply(&client, vec![secret], &options).await?;
    }
    let issued = sa::issue_token(&client, request, args.timeout)
        .await
        .map_err(|e| match e {
            sa::TokenError::Api(inner) => fail(&inner, "issuing the token"),
            other => CliError::from(anyhow::Error::from(other)),
        })?;
    match (&request.token, &issued.expires) {
        (TokenKind::Bound(_), Some(expires)) => {
            output::stderr_line(&format!("Token: TokenRequest, expires {expires}"));
        }
        _ => output::stderr_line(&format!(
            "Token: long-lived, from Secret {} (valid until the Secret is deleted)",
            request.secret_name()
        )),
    }
    Ok(issued)
}

/// Applies `objects` with the engine, reporting a failure on stderr.
async fn apply(
    client: &::kube::Client,
    objects: Vec<crate::deploy::objects::Object>,
    options: &Options,
) -> Result<(), CliError> {
    match engine::apply(client, objects, options, &Shell::new(false)).await {
        Ok(_) => Ok(()),
        Err(e) => {
            output::stderr_line(&format!("error: {e}"));
            for line in e.details() {
                output::stderr_line(&line);
            }
            Err(if e.is_invalid_input() {
                CliError::reported_invalid()
            } else {
                CliError::reported()
            })
        }
    }
}

/// The new identity's connection: the admin's server and CA, the ServiceAccount's token.
fn new_connection(
    admin: &Connection,
    request: &Request,
    args: &CreateArgs,
    token: &SecretString,
) -> Connection {
    Connection {
        context: format!("{}@{}", request.name, admin.cluster),
        cluster: admin.cluster.clone(),
        user: request.name.clone(),
        server: args.server.clone().unwrap_or_else(|| admin.server.clone()),
        // `read_files` made a file CA inline: the kubeconfig must carry it, CI has no such file.
        certificate_authority: admin.certificate_authority.clone(),
        insecure_skip_tls_verify: admin.insecure_skip_tls_verify,
        tls_server_name: admin.tls_server_name.clone(),
        proxy_url: admin.proxy_url.clone(),
        namespace: Some(request.namespace.clone()),
        auth: Auth::Token(token.clone()),
    }
}

/// Decodes the masked-variable value as CI will, and checks it yields the same connection.
fn round_trip(runtime: &Runtime, encoded: &str, expected: &Connection) -> Result<(), CliError> {
    let inputs = [kubeconfig_step::Input {
        label: "KUBECONFIG.b64".into(),
        dir: None,
        data: encoded.as_bytes().to_vec(),
    }];
    let decoded = match kubeconfig_step::decode(runtime, &inputs, None)? {
        Ok(d) => d,
        Err(failure) => {
            let lines: Vec<String> = failure
                .diagnostics
                .iter()
                .map(kubeconfig_step::format_diagnostic)
                .collect();
            return Err(CliError::from(anyhow::anyhow!(
                "the generated kubeconfig does not decode: {}",
                lines.join("; ")
            )));
        }
    };
    let c = &decoded.connection;
    let token_matches = match (&c.auth, &expected.auth) {
        (kubeconfig_step::Auth::Token(t), Auth::Token(e)) => t == e.expose_secret(),
        _ => false,
    };
    if c.server != expected.server
        || c.namespace.as_deref() != expected.namespace.as_deref()
        || !token_matches
    {
        return Err(CliError::from(anyhow::anyhow!(
            "the generated kubeconfig decodes to another connection (server {}, namespace {:?}); \
             this is a bug",
            c.server,
            c.namespace
        )));
    }
    Ok(())
}

/// Writes `kubeconfig` and `KUBECONFIG.b64` into `dir` (created 0700 if missing), each 0600 and
/// atomically.
fn write_outputs(dir: &Path, kubeconfig: &str, encoded: &str) -> Result<(), CliError> {
    let io = |what: &Path, e: std::io::Error| {
        CliError::from(anyhow::anyhow!("writing {}: {e}", what.display()))
    };
    crate::fsutil::create_private_dir(dir).map_err(|e| io(dir, e))?;
    let path = dir.join("kubeconfig");
    crate::fsutil::write_atomic(&path, kubeconfig.as_bytes(), Some(0o600))
        .map_err(|e| io(&path, e))?;
    let path = dir.join("KUBECONFIG.b64");
    crate::fsutil::write_atomic(&path, format!("{encoded}\n").as_bytes(), Some(0o600))
        .map_err(|e| io(&path, e))?;
    Ok(())
}

/// Writes the masked variable's value to stdout, bypassing the masker on purpose: it is the
/// output the user asked for, and masking would turn it into `[MASKED]`.
fn print_secret(encoded: &str) -> Result<(), CliError> {
    if std::env::var_os("CI").is_some() {
        output::stderr_line(
            "warning: --print-secret in a CI job puts a credential in the job log; use --out-dir",
        );
    }
    let mut out = std::io::stdout().lock();
    out.write_all(encoded.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| CliError::from(anyhow::anyhow!("writing to stdout: {e}")))
}
