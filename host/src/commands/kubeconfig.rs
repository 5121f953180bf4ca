//! `kstep kubeconfig encode | show | decode | check`: the replacement for hand-editing a
//! kubeconfig, `base64 -w 0` into a masked variable and `echo $KUBECONFIG | base64 --decode`.
//!
//! - `encode FILE|-` prints the one-line base64 value for a masked GitLab variable: the one
//!   command that prints a credential, because that is what the user asked for;
//! - `show` prints a redacted summary (source and form, context, server, namespace, auth kind,
//!   CA fingerprint, warnings);
//! - `decode --write PATH` writes the minimal kubeconfig of the selected context (mode 0600,
//!   atomically) for tools that need a file;
//! - `check` connects: server version, who the credentials authenticate as, the namespace, and
//!   whether they allow `apply` there.
//!
//! Invalid input exits 2 with `SOURCE:LINE:COL: message` lines on stderr, nothing on stdout;
//! a connection failure exits 1. No message contains a credential: every secret is registered
//! with the masker before anything is printed (see [`crate::credentials`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use serde::Serialize;

use super::args::ReportFormat;
use crate::cli::{CliError, CliResult, parse_duration};
use crate::credentials::{
    self, Carrier, Connection, CredentialError, Credentials, Material, PlainHttp,
};
use crate::fsutil::CappedReadError;
use crate::output;
use crate::runtime::Runtime;
use crate::secrets;
use crate::steps::kubeconfig::{self as step, format_diagnostic};

/// The subcommands of `kstep kubeconfig`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Print the one-line base64 value to store in a masked GitLab variable, after checking the
    /// kubeconfig and GitLab's masked-variable rules.
    Encode(EncodeArgs),
    /// Print a redacted summary of the kubeconfig kstep would use: where it was found and in
    /// which form, context, server, namespace, auth kind, CA fingerprint, warnings.
    Show(ShowArgs),
    /// Write the decoded kubeconfig (the selected context only, mode 0600) for tools that need a
    /// file.
    Decode(DecodeArgs),
    /// Connect to the cluster: server version, authenticated identity, namespace, and whether
    /// the credentials may apply manifests there.
    Check(CheckArgs),
}

/// Where the kubeconfig comes from.
#[derive(Debug, clap::Args)]
struct SourceArgs {
    /// The kubeconfig file. Default: $KSTEP_KUBECONFIG, then $KUBECONFIG (each may hold the
    /// kubeconfig, its base64 form, or a path), then ~/.kube/config.
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Use this context instead of the current-context.
    #[arg(long, value_name = "NAME", env = "KSTEP_CONTEXT")]
    context: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct EncodeArgs {
    /// The kubeconfig file, or `-` for standard input.
    input: String,
    /// Check this context instead of the current-context.
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Encode only the selected context (one cluster, user and context): smaller, and the
    /// variable carries no credential the job does not need.
    #[arg(long)]
    minify: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    output: ReportFormat,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DecodeArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Where to write the kubeconfig (replaced atomically, mode 0600).
    #[arg(long, value_name = "PATH")]
    write: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    output: ReportFormat,
    /// Time allowed for connecting and for each request.
    #[arg(long, value_parser = parse_duration, default_value = "15s")]
    timeout: Duration,
    /// Send the credentials to a plain http:// server, where anyone on the path reads them
    /// (refused by default).
    #[arg(long)]
    insecure_plain_http: bool,
}

/// Runs `kstep kubeconfig …`.
///
/// # Errors
/// Exit 2 for a missing, unreadable or invalid kubeconfig; exit 1 for sandbox and connection
/// failures.
pub(crate) fn run(command: &Command) -> CliResult {
    match command {
        Command::Encode(a) => encode(a),
        Command::Show(a) => show(a),
        Command::Decode(a) => decode(a),
        Command::Check(a) => check(a),
    }
}

/// Loads the credentials and prints the warnings. `plain_http` refuses credentials over plain
/// http:// for the command that connects; the others only warn. The command that connects
/// (`connects`) first says which kubeconfig and context it uses, on stderr (stdout is its
/// report), as every command that talks to a cluster does.
fn load(
    runtime: &Runtime,
    source: &SourceArgs,
    plain_http: PlainHttp,
    connects: bool,
) -> Result<Credentials, CliError> {
    let credentials = credentials::load(
        runtime,
        source.kubeconfig.as_deref(),
        source.context.as_deref(),
        plain_http,
    )
    .map_err(credential_error)?;
    if connects {
        output::stderr_line(&credentials.in_use());
    }
    for warning in &credentials.warnings {
        output::stderr_line(warning);
    }
    Ok(credentials)
}

/// Diagnostics are printed as they are (`SOURCE:LINE:COL: message`); other input errors get
/// the usual `error:` prefix with exit code 2.
fn credential_error(e: CredentialError) -> CliError {
    match e {
        CredentialError::Invalid { lines } => {
            for line in &lines {
                output::stderr_line(line);
            }
            CliError::reported_invalid()
        }
        e if e.is_input_error() => CliError::invalid(e),
        e => CliError::from(anyhow::Error::from(e)),
    }
}

// ---------------------------------------------------------------------------------- encode

fn encode(args: &EncodeArgs) -> CliResult {
    let (label, dir, data) = read_encode_input(&args.input)?;
    let runtime = Runtime::new()?;
    // Nothing is registered with the masker here: the output is the secret the user asked for.
    let inputs = [step::Input {
        label: label.clone(),
        dir,
        data,
    }];
    let decoded = match step::inspect(&runtime, &inputs, args.context.as_deref())? {
        Ok(decoded) => decoded,
        Err(failure) => {
            // Nothing goes to stdout now: mask as every other command does.
            for secret in &failure.secrets {
                secrets::register(secret);
            }
            for d in &failure.diagnostics {
                output::stderr_line(&format_diagnostic(d));
            }
            if failure
                .diagnostics
                .iter()
                .any(|d| d.message.contains("no current-context"))
            {
                output::stderr_line(
                    "note: to store a kubeconfig without a current-context, check the context the \
                     job will use with --context NAME",
                );
            }
            return Err(CliError::reported_invalid());
        }
    };
    // Warnings name entries, never values, but a name can be a pasted secret: mask them here
    // without registering anything globally (stdout must carry the value unmasked).
    let masker = secrets::Masker::new(decoded.secrets.iter().map(String::as_str));
    for w in &decoded.warnings {
        output::stderr_line(&masker.mask(&format_diagnostic(w)));
    }
    let rendered;
    let bytes: &[u8] = if args.minify {
        rendered = step::render(&runtime, &decoded.connection)?;
        rendered.as_bytes()
    } else {
        &inputs[0].data
    };
    match step::encode(&runtime, bytes)? {
        Ok(value) => {
            if std::env::var_os("CI").is_some() {
                output::stderr_line(
                    "warning: this prints a credential; in a CI job log anyone who can read the \
                     log gets it (run `encode` on your machine)",
                );
            }
            output::stdout(&format!("{value}\n"));
            Ok(())
        }
        Err(d) => {
            let mut d = d;
            if d.source.is_none() && d.line > 0 {
                d.source = Some(label);
            } else if let Some(s) = &d.source {
                d.source = Some(format!("{label} ({s})"));
            }
            output::stderr_line(&format_diagnostic(&d));
            Err(CliError::reported_invalid())
        }
    }
}

/// The bytes to encode: a file (size checked before reading) or standard input (read up to the
/// limit and one byte more, to tell).
fn read_encode_input(input: &str) -> Result<(String, Option<String>, Vec<u8>), CliError> {
    let path = Path::new(input);
    let stdin = input == "-";
    let what = if stdin { "standard input" } else { input };
    let data =
        crate::fsutil::read_capped(path, true, credentials::MAX_KUBECONFIG_BYTES).map_err(|e| {
            CliError::invalid(match e {
                CappedReadError::Io(error) => CredentialError::Read {
                    path: what.into(),
                    error,
                },
                CappedReadError::TooBig { size, limit } => CredentialError::TooBig {
                    what: what.to_owned(),
                    size,
                    limit,
                },
            })
        })?;
    if stdin {
        return Ok(("<stdin>".into(), None, data));
    }
    let dir = path
        .parent()
        .map(|d| d.to_string_lossy().into_owned())
        .filter(|d| !d.is_empty());
    Ok((input.to_owned(), dir, data))
}

// ------------------------------------------------------------------------------------ show

/// The redacted summary, as JSON (`--output json`) and as the source of the text form.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    source: SourceSummary,
    context: String,
    contexts: Vec<String>,
    cluster: String,
    server: String,
    namespace: String,
    namespace_set: bool,
    user: String,
    auth: AuthSummary,
    ca: CaSummary,
    insecure_skip_tls_verify: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_server_name: Option<String>,
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct SourceSummary {
    origin: &'static str,
    form: &'static str,
    forms: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    paths: Vec<String>,
    description: String,
}

#[derive(Serialize)]
struct AuthSummary {
    kind: &'static str,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<String>,
}

#[derive(Serialize)]
struct CaSummary {
    /// `inline`, `file` or `system`.
    kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fingerprints: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
}

fn summary(c: &Credentials) -> Summary {
    let conn = &c.connection;
    let ca = match &conn.certificate_authority {
        Some(Material::Inline(_)) => CaSummary {
            kind: "inline",
            fingerprints: c.ca_fingerprints.clone(),
            path: None,
        },
        Some(Material::File(p)) => CaSummary {
            kind: "file",
            fingerprints: Vec::new(),
            path: Some(p.display().to_string()),
        },
        None => CaSummary {
            kind: "system",
            fingerprints: Vec::new(),
            path: None,
        },
    };
    let origin = match c.source.origin {
        credentials::Origin::Flag => "flag",
        credentials::Origin::KstepVariable => "KSTEP_KUBECONFIG",
        credentials::Origin::KubeconfigVariable => "KUBECONFIG",
        credentials::Origin::Home => "home",
    };
    Summary {
        source: SourceSummary {
            origin,
            form: c.source.kind(),
            forms: c
                .source
                .forms
                .iter()
                .map(|f| match f {
                    step::InputForm::Base64OneLine => "base64-one-line",
                    step::InputForm::Base64Wrapped => "base64-wrapped",
                    step::InputForm::Yaml => "yaml",
                    step::InputForm::Json => "json",
                })
                .collect(),
            paths: match &c.source.carrier {
                Carrier::Files(paths) => paths.iter().map(|p| p.display().to_string()).collect(),
                Carrier::Value => Vec::new(),
            },
            description: c.source.describe(),
        },
        context: conn.context.clone(),
        contexts: c.contexts.clone(),
        cluster: conn.cluster.clone(),
        server: conn.server.clone(),
        namespace: conn.namespace_or_default().to_owned(),
        namespace_set: conn.namespace.is_some(),
        user: conn.user.clone(),
        auth: AuthSummary {
            kind: conn.auth.kind(),
            description: conn.auth.describe(),
            command: match &conn.auth {
                credentials::Auth::Exec(e) => Some(e.command.clone()),
                _ => None,
            },
        },
        ca,
        insecure_skip_tls_verify: conn.insecure_skip_tls_verify,
        tls_server_name: conn.tls_server_name.clone(),
        warnings: c.warnings.clone(),
    }
}

fn show(args: &ShowArgs) -> CliResult {
    let runtime = Runtime::new()?;
    let credentials = load(&runtime, &args.source, PlainHttp::Allow, false)?;
    let s = summary(&credentials);
    match args.output {
        ReportFormat::Json => {
            let json = serde_json::to_string_pretty(&s).map_err(anyhow::Error::from)?;
            output::stdout(&format!("{json}\n"));
        }
        ReportFormat::Text => output::stdout(&summary_text(&s)),
    }
    Ok(())
}

fn summary_text(s: &Summary) -> String {
    let mut lines = vec![
        ("source", s.source.description.clone()),
        (
            "context",
            if s.contexts.len() > 1 {
                format!("{} (one of {})", s.context, s.contexts.len())
            } else {
                s.context.clone()
            },
        ),
        ("cluster", s.cluster.clone()),
        ("server", s.server.clone()),
        (
            "namespace",
            if s.namespace_set {
                s.namespace.clone()
            } else {
                format!("{} (not set in the context)", s.namespace)
            },
        ),
        (
            "user",
            if s.user.is_empty() {
                "(none)".into()
            } else {
                s.user.clone()
            },
        ),
        ("auth", s.auth.description.clone()),
    ];
    let ca = match (s.ca.kind, &s.ca.path) {
        (_, Some(path)) => format!("file {path}"),
        ("inline", _) => {
            s.ca.fingerprints
                .iter()
                .map(|f| format!("SHA256 {f}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
        _ => "none (the system's root certificates)".into(),
    };
    lines.push(("ca", ca));
    lines.push((
        "tls",
        if s.insecure_skip_tls_verify {
            "NOT VERIFIED (insecure-skip-tls-verify)".into()
        } else if let Some(name) = &s.tls_server_name {
            format!("verified, as {name}")
        } else {
            "verified".into()
        },
    ));
    lines.push(("warnings", s.warnings.len().to_string()));
    lines
        .into_iter()
        .map(|(k, v)| format!("{k:<10} {v}\n"))
        .collect()
}

// ---------------------------------------------------------------------------------- decode

fn decode(args: &DecodeArgs) -> CliResult {
    let runtime = Runtime::new()?;
    let credentials = load(&runtime, &args.source, PlainHttp::Allow, false)?;
    let rendered = step::render(&runtime, &credentials.connection.to_step())?;
    // The rendered file is the decoded kubeconfig: as secret as its parts.
    secrets::register_kubeconfig(rendered.as_bytes());
    if rendered.trim().is_empty() {
        return Err(anyhow::anyhow!("the kubeconfig step rendered nothing (a bug)").into());
    }
    // `--write "$CI_PROJECT_DIR/.kube/config"` in a fresh job: the directory is not there yet.
    if let Some(dir) = args.write.parent() {
        crate::fsutil::create_private_dir(dir)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    }
    crate::fsutil::write_atomic(&args.write, rendered.as_bytes(), Some(0o600))
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", args.write.display()))?;
    output::stderr_line(&format!(
        "wrote {} (context {}, mode 0600)",
        args.write.display(),
        credentials.connection.context
    ));
    Ok(())
}

// ----------------------------------------------------------------------------------- check

/// Verbs `kubectl apply` (server-side or client-side) needs on each resource it manages.
const APPLY_VERBS: &[&str] = &["get", "create", "patch"];

/// The resources a typical deployment applies: (API group, resource).
const APPLY_RESOURCES: &[(&str, &str)] = &[
    ("apps", "deployments"),
    ("", "services"),
    ("networking.k8s.io", "ingresses"),
    ("", "configmaps"),
    ("", "secrets"),
];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckReport {
    server: String,
    server_version: String,
    identity: Option<Identity>,
    namespace: String,
    /// `exists`, `missing` or `unknown` (not allowed to read namespaces).
    namespace_status: &'static str,
    can_apply: Vec<CanApply>,
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct Identity {
    username: String,
    groups: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CanApply {
    resource: String,
    allowed: bool,
    missing_verbs: Vec<String>,
}

fn check(args: &CheckArgs) -> CliResult {
    let runtime = Runtime::new()?;
    let plain_http = PlainHttp::allowed_if(args.insecure_plain_http);
    let mut credentials = load(&runtime, &args.source, plain_http, true)?;
    // Component calls are done: the rest is async and talks to the cluster only.
    credentials
        .connection
        .read_files()
        .map_err(credential_error)?;
    let rt = crate::kube_client::runtime().map_err(anyhow::Error::from)?;
    let report = rt.block_on(check_async(&credentials, args.timeout))?;
    match args.output {
        ReportFormat::Json => {
            let json = serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?;
            output::stdout(&format!("{json}\n"));
        }
        ReportFormat::Text => output::stdout(&check_text(&report)),
    }
    Ok(())
}

async fn check_async(
    credentials: &Credentials,
    timeout: Duration,
) -> Result<CheckReport, CliError> {
    let conn = &credentials.connection;
    let fail = |e: &kube::Error, doing: &str| {
        CliError::from(anyhow::Error::msg(crate::kube_client::explain(
            e, conn, doing,
        )))
    };
    let client = crate::kube_client::client(conn, timeout)
        .await
        .map_err(|e| CliError::from(anyhow::Error::from(e)))?;
    let version = with_timeout(timeout, client.apiserver_version(), conn)
        .await?
        .map_err(|e| fail(&e, "getting the server version"))?;
    let identity = identity(&client, conn, timeout).await?;
    let namespace = conn.namespace_or_default().to_owned();
    let namespaces: kube::Api<Namespace> = kube::Api::all(client.clone());
    let namespace_status = match with_timeout(timeout, namespaces.get_opt(&namespace), conn).await?
    {
        Ok(Some(_)) => "exists",
        Ok(None) => "missing",
        Err(kube::Error::Api(s)) if s.code == 403 => "unknown",
        Err(e) => return Err(fail(&e, "reading the namespace")),
    };
    let reviews: kube::Api<SelfSubjectAccessReview> = kube::Api::all(client.clone());
    let mut can_apply = Vec::new();
    for (group, resource) in APPLY_RESOURCES {
        let mut missing = Vec::new();
        for verb in APPLY_VERBS {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        group: Some((*group).to_owned()),
                        resource: Some((*resource).to_owned()),
                        verb: Some((*verb).to_owned()),
                        namespace: Some(namespace.clone()),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let answer = with_timeout(
                timeout,
                reviews.create(&kube::api::PostParams::default(), &review),
                conn,
            )
            .await?
            .map_err(|e| fail(&e, "asking what the credentials may do"))?;
            if !answer.status.is_some_and(|s| s.allowed) {
                missing.push((*verb).to_owned());
            }
        }
        can_apply.push(CanApply {
            resource: if group.is_empty() {
                (*resource).to_owned()
            } else {
                format!("{resource}.{group}")
            },
            allowed: missing.is_empty(),
            missing_verbs: missing,
        });
    }
    Ok(CheckReport {
        server: conn.server.clone(),
        server_version: version.git_version,
        identity,
        namespace,
        namespace_status,
        can_apply,
        warnings: credentials.warnings.clone(),
    })
}

/// Who the server says the credentials are (SelfSubjectReview, GA in 1.28); `None` when the
/// server does not offer it or does not allow it.
async fn identity(
    client: &kube::Client,
    conn: &Connection,
    timeout: Duration,
) -> Result<Option<Identity>, CliError> {
    let reviews: kube::Api<SelfSubjectReview> = kube::Api::all(client.clone());
    let created = with_timeout(
        timeout,
        reviews.create(
            &kube::api::PostParams::default(),
            &SelfSubjectReview::default(),
        ),
        conn,
    )
    .await?;
    match created {
        Ok(review) => {
            let user = review.status.and_then(|s| s.user_info).unwrap_or_default();
            Ok(Some(Identity {
                username: user.username.unwrap_or_default(),
                groups: user.groups.unwrap_or_default(),
            }))
        }
        Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => Ok(None),
        Err(e) => Err(CliError::from(anyhow::Error::msg(
            crate::kube_client::explain(&e, conn, "asking who the credentials are"),
        ))),
    }
}

/// `future`, or a clear error when the server does not answer within `timeout`.
async fn with_timeout<T>(
    timeout: Duration,
    future: impl std::future::Future<Output = T>,
    conn: &Connection,
) -> Result<T, CliError> {
    tokio::time::timeout(timeout, future).await.map_err(|_| {
        CliError::from(anyhow::anyhow!(
            "no answer from {} within {} s (a firewall, or a server only reachable from another \
             network)",
            conn.server,
            timeout.as_secs()
        ))
    })
}

fn check_text(r: &CheckReport) -> String {
    let mut text = format!(
        "server     {} (Kubernetes {})\n",
        r.server, r.server_version
    );
    match &r.identity {
        Some(i) => {
            text.push_str(&format!("identity   {}", i.username));
            if !i.groups.is_empty() {
                text.push_str(&format!(" (groups: {})", i.groups.join(", ")));
            }
            text.push('\n');
        }
        None => text.push_str("identity   unknown (SelfSubjectReview not available)\n"),
    }
    let status = match r.namespace_status {
        "exists" => "exists",
        "missing" => "does not exist",
        _ => "not allowed to check that it exists",
    };
    text.push_str(&format!("namespace  {} ({status})\n", r.namespace));
    text.push_str(&format!("can apply in {}:\n", r.namespace));
    for c in &r.can_apply {
        let verdict = if c.allowed {
            "yes".to_owned()
        } else {
            format!("no (cannot {})", c.missing_verbs.join(", "))
        };
        text.push_str(&format!("  {:<30} {verdict}\n", c.resource));
    }
    text
}
