//! Where the kubeconfig comes from, and how the host holds the credentials in it.
//!
//! Sources, first found wins: `--kubeconfig PATH`, then `$KSTEP_KUBECONFIG`, then `$KUBECONFIG`,
//! then `~/.kube/config` (`$HOME/.kube/config`, the last fallback of every Kubernetes client).
//! A variable may hold the kubeconfig itself (YAML/JSON), its base64 form (a masked GitLab
//! variable), or a path (a GitLab File-type variable) or colon-separated list of paths, as
//! kubectl reads `KUBECONFIG`. Which one is detected without printing the value, and reported;
//! a value that can only be a path (`/…`, `./…`, `….yaml`) to a missing file is reported as
//! that, not as bad base64.
//!
//! Every secret is registered with the masker ([`crate::secrets`]) as soon as the host holds it
//! and before anything can print: the raw value (and so its encoded forms) right after it is
//! read, then every credential the kubeconfig step finds (see [`steps::kubeconfig::decode`]),
//! then the content of referenced key and token files when they are read. In memory the
//! credentials live in `secrecy` wrappers, which zeroize on drop and print as `[REDACTED]` in
//! `Debug`.
//!
//! Credentials are never sent over plain `http://` by a command that connects unless the user
//! says so ([`PlainHttp`]); the kubeconfig step refuses a server URL with user-info outright.

use std::path::{Path, PathBuf};

use crate::fsutil::CappedReadError;
use crate::runtime::{Runtime, StepError};
use crate::secrets;
use crate::steps::kubeconfig::{self as step, InputForm};
use kstep_kubeconfig::decode::PLAIN_HTTP;
use secrecy::{ExposeSecret as _, SecretSlice, SecretString};

/// The largest kubeconfig kstep reads (real ones are a few KiB). Checked before reading.
pub const MAX_KUBECONFIG_BYTES: u64 = 1 << 20;

/// The variable kstep reads before `KUBECONFIG`, so a job can keep `KUBECONFIG` for kubectl.
pub const KSTEP_VARIABLE: &str = "KSTEP_KUBECONFIG";
/// kubectl's variable.
pub const KUBECONFIG_VARIABLE: &str = "KUBECONFIG";
/// Auto DevOps' variable naming the context (often environment-scoped, so one job definition
/// reaches a different agent per environment); read when neither `--context` nor
/// `$KSTEP_CONTEXT` names one.
pub const KUBE_CONTEXT_VARIABLE: &str = "KUBE_CONTEXT";

/// Why the credentials could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// No flag, no variable, no `~/.kube/config`.
    #[error(
        "no kubeconfig: pass --kubeconfig PATH, or set {KSTEP_VARIABLE} or {KUBECONFIG_VARIABLE} \
         (to the kubeconfig, its base64 form, or a path), or create ~/.kube/config"
    )]
    NoSource,
    /// A variable names a file that is not there.
    #[error("{what} is `{value}`, which looks like a path, but {problem}")]
    NotAFile {
        /// `$KUBECONFIG`…
        what: &'static str,
        /// The value (a path, not content: see `as_missing_path`).
        value: String,
        /// "no such file exists (relative to DIR)"…
        problem: String,
    },
    /// A file could not be read.
    #[error("{}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error: part of the message, not a `source`, so that a report of the error
        /// chain says it once.
        error: std::io::Error,
    },
    /// The input is larger than [`MAX_KUBECONFIG_BYTES`]; it was not read.
    #[error(
        "{what} is {size} bytes or more; kstep reads kubeconfigs of at most {limit} bytes (1 MiB)"
    )]
    TooBig {
        /// The file or variable.
        what: String,
        /// Its size (or a lower bound).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The kubeconfig is not usable: one `SOURCE:LINE:COL: message` per line.
    #[error("{}", lines.join("\n"))]
    Invalid {
        /// The formatted diagnostics.
        lines: Vec<String>,
    },
    /// The sandbox failed.
    #[error(transparent)]
    Step(#[from] StepError),
}

impl CredentialError {
    /// Whether the user's input is at fault (exit code 2) rather than kstep or the machine.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, Self::Step(_))
    }
}

/// Whether credentials may be sent over a plain `http://` server URL, where anyone on the path
/// reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainHttp {
    /// Refused (exit 2): the default of every command that connects.
    Refuse,
    /// Accepted with a warning: `--insecure-plain-http`, and the commands that only read the
    /// kubeconfig.
    Allow,
}

impl PlainHttp {
    /// From an `--insecure-plain-http` flag.
    pub fn allowed_if(flag: bool) -> Self {
        if flag { Self::Allow } else { Self::Refuse }
    }
}

/// Where the kubeconfig was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--kubeconfig PATH`.
    Flag,
    /// `$KSTEP_KUBECONFIG`.
    KstepVariable,
    /// `$KUBECONFIG`.
    KubeconfigVariable,
    /// `~/.kube/config`.
    Home,
}

impl Origin {
    /// How the origin is named in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Flag => "--kubeconfig",
            Self::KstepVariable => "$KSTEP_KUBECONFIG",
            Self::KubeconfigVariable => "$KUBECONFIG",
            Self::Home => "~/.kube/config",
        }
    }
}

/// What carried the kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carrier {
    /// One or more files (a flag, or a variable holding a path or path list).
    Files(Vec<PathBuf>),
    /// The variable's value is the kubeconfig (raw or base64).
    Value,
}

/// Where the kubeconfig came from and what form each input had.
#[derive(Debug, Clone)]
pub struct Source {
    /// Flag or variable.
    pub origin: Origin,
    /// Files or a value.
    pub carrier: Carrier,
    /// Paths of a list that do not exist (kubectl skips them too).
    pub missing: Vec<PathBuf>,
    /// The form of each input, in order.
    pub forms: Vec<InputForm>,
}

/// How an input form is named.
pub fn describe_form(form: InputForm) -> &'static str {
    match form {
        InputForm::Base64OneLine => "base64, one line",
        InputForm::Base64Wrapped => "base64, wrapped",
        InputForm::Yaml => "YAML",
        InputForm::Json => "JSON",
    }
}

impl Source {
    /// `$KUBECONFIG: value (base64, one line)`, `--kubeconfig: file kind.yaml (YAML)`…
    pub fn describe(&self) -> String {
        let form = |i: usize| self.forms.get(i).map_or("?", |f| describe_form(*f));
        let what = match &self.carrier {
            Carrier::Value => format!("value of the variable ({})", form(0)),
            Carrier::Files(paths) => {
                let kind = match self.origin {
                    Origin::Flag | Origin::Home => "file",
                    Origin::KstepVariable | Origin::KubeconfigVariable => {
                        "path in the variable (File-type variable)"
                    }
                };
                let files: Vec<String> = paths
                    .iter()
                    .enumerate()
                    .map(|(i, p)| format!("{} ({})", p.display(), form(i)))
                    .collect();
                if files.len() == 1 {
                    format!("{kind} {}", files.join(""))
                } else {
                    format!("{} files merged: {}", files.len(), files.join(", "))
                }
            }
        };
        format!("{}: {what}", self.origin.describe())
    }

    /// The `form` field of machine-readable output.
    pub fn kind(&self) -> &'static str {
        match (&self.carrier, self.forms.first()) {
            (Carrier::Files(_), _) => "file",
            (Carrier::Value, Some(InputForm::Base64OneLine)) => "base64-one-line",
            (Carrier::Value, Some(InputForm::Base64Wrapped)) => "base64-wrapped",
            (Carrier::Value, Some(InputForm::Json)) => "json",
            (Carrier::Value, _) => "yaml",
        }
    }
}

/// Bytes given inline or a file (public data: a CA bundle).
#[derive(Debug, Clone)]
pub enum Material {
    /// The content.
    Inline(Vec<u8>),
    /// A file not read yet.
    File(PathBuf),
}

/// Secret bytes given inline or a file (a client key or certificate).
#[derive(Debug)]
pub enum SecretMaterial {
    /// The content.
    Inline(SecretSlice<u8>),
    /// A file not read yet.
    File(PathBuf),
}

/// A credential plugin; environment values are kept secret (they may hold keys).
#[derive(Debug)]
pub struct ExecPlugin {
    /// The command.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, SecretString)>,
    /// ExecCredential API version.
    pub api_version: String,
    /// Shown when the command is missing.
    pub install_hint: Option<String>,
    /// Pass the cluster's details to the plugin.
    pub provide_cluster_info: bool,
    /// `Never`, `IfAvailable`, `Always`.
    pub interactive_mode: Option<String>,
}

/// How the client authenticates.
#[derive(Debug)]
pub enum Auth {
    /// Anonymous.
    None,
    /// A bearer token.
    Token(SecretString),
    /// A file holding the bearer token, not read yet.
    TokenFile(PathBuf),
    /// A client certificate and key.
    ClientCertificate {
        /// The certificate (PEM).
        certificate: SecretMaterial,
        /// The key (PEM).
        key: SecretMaterial,
    },
    /// HTTP basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: SecretString,
    },
    /// A credential plugin.
    Exec(ExecPlugin),
    /// A legacy auth-provider kstep cannot use.
    AuthProvider {
        /// Its name.
        name: String,
        /// Its settings.
        config: Vec<(String, SecretString)>,
    },
}

impl Auth {
    /// A short, non-secret description: `token`, `client certificate (file)`, `exec (aws)`…
    pub fn describe(&self) -> String {
        let where_ = |m: &SecretMaterial| match m {
            SecretMaterial::Inline(_) => "embedded",
            SecretMaterial::File(_) => "files",
        };
        match self {
            Self::None => "none (anonymous)".into(),
            Self::Token(_) => "token".into(),
            Self::TokenFile(p) => format!("token file {}", p.display()),
            Self::ClientCertificate { key, .. } => format!("client certificate ({})", where_(key)),
            Self::Basic { .. } => "basic (username and password)".into(),
            Self::Exec(e) => format!("exec plugin `{}`", e.command),
            Self::AuthProvider { name, .. } => format!("auth-provider `{name}` (unsupported)"),
        }
    }

    /// The `auth` field of machine-readable output.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Token(_) => "token",
            Self::TokenFile(_) => "token-file",
            Self::ClientCertificate { .. } => "client-certificate",
            Self::Basic { .. } => "basic",
            Self::Exec(_) => "exec",
            Self::AuthProvider { .. } => "auth-provider",
        }
    }
}

/// The selected context, normalised, with its credentials held as secrets.
#[derive(Debug)]
pub struct Connection {
    /// The context's name.
    pub context: String,
    /// The cluster entry's name.
    pub cluster: String,
    /// The user entry's name (empty: none).
    pub user: String,
    /// The API server URL.
    pub server: String,
    /// The CA bundle (PEM); none means the system roots.
    pub certificate_authority: Option<Material>,
    /// TLS verification disabled.
    pub insecure_skip_tls_verify: bool,
    /// The name the server certificate is checked against.
    pub tls_server_name: Option<String>,
    /// A proxy URL (unsupported; reported as a warning).
    pub proxy_url: Option<String>,
    /// The context's namespace.
    pub namespace: Option<String>,
    /// The credentials.
    pub auth: Auth,
}

/// A decoded kubeconfig: where it came from, the selected connection, and what was noticed.
#[derive(Debug)]
pub struct Credentials {
    /// Where it came from.
    pub source: Source,
    /// The selected context.
    pub connection: Connection,
    /// Every context in the kubeconfig.
    pub contexts: Vec<String>,
    /// The variable the context name came from, when it was not `--context`, `$KSTEP_CONTEXT`
    /// or the current-context (so the log says why this context).
    pub context_variable: Option<&'static str>,
    /// SHA-256 fingerprints of the inline CA certificates.
    pub ca_fingerprints: Vec<String>,
    /// Warnings, formatted as `SOURCE:LINE:COL: warning: message`.
    pub warnings: Vec<String>,
}

impl Credentials {
    /// The first line of every command that talks to a cluster: which kubeconfig, context and
    /// server, so a job that reaches the wrong cluster says so at once. Never a credential: the
    /// source is named by its origin, form and paths (a value is not shown), and a server URL
    /// with user-info was refused when the kubeconfig was decoded.
    pub fn in_use(&self) -> String {
        let from = self
            .context_variable
            .map(|v| format!(" (from ${v})"))
            .unwrap_or_default();
        format!(
            "Using the kubeconfig from {}; context {}{from}, server {}",
            self.source.describe(),
            self.connection.context,
            self.connection.server
        )
    }
}

/// One input read from a file or a variable, held as a secret.
struct RawInput {
    label: String,
    dir: Option<String>,
    data: SecretSlice<u8>,
}

/// Finds the kubeconfig (flag, then variables), decodes it in the sandbox and selects `context`
/// (`--context` or `$KSTEP_CONTEXT`), else `$KUBE_CONTEXT`, else the current-context.
///
/// # Errors
/// [`CredentialError`]: no source, unreadable or oversized input, an invalid kubeconfig (each
/// diagnostic a line, never with secret content), or credentials over plain `http://` when
/// `plain_http` refuses them.
pub fn load(
    runtime: &Runtime,
    flag: Option<&Path>,
    context: Option<&str>,
    plain_http: PlainHttp,
) -> Result<Credentials, CredentialError> {
    let (source, raw) = read_source(flag)?;
    let (context, variable) = select_context(context, std::env::var(KUBE_CONTEXT_VARIABLE).ok());
    let mut credentials = decode(runtime, source, &raw, context.as_deref(), plain_http)?;
    credentials.context_variable = variable;
    Ok(credentials)
}

/// The context name to ask for, and the variable it came from when that was `$KUBE_CONTEXT`.
/// Empty values count as unset: a GitLab variable scoped to another environment, or declared
/// empty in `variables:`, must not select a context named "".
fn select_context(
    explicit: Option<&str>,
    kube_context: Option<String>,
) -> (Option<String>, Option<&'static str>) {
    if let Some(name) = explicit.filter(|n| !n.is_empty()) {
        return (Some(name.to_owned()), None);
    }
    match kube_context.filter(|n| !n.is_empty()) {
        Some(name) => (Some(name), Some(KUBE_CONTEXT_VARIABLE)),
        None => (None, None),
    }
}

/// Reads the bytes of the first source found, registering a value before returning it.
///
/// # Errors
/// A file that cannot be read, a value too large, a value that is the path of a missing file,
/// or no source at all.
fn read_source(flag: Option<&Path>) -> Result<(Source, Vec<RawInput>), CredentialError> {
    if let Some(path) = flag {
        let raw = read_file(path)?;
        return Ok((
            Source {
                origin: Origin::Flag,
                carrier: Carrier::Files(vec![path.to_owned()]),
                missing: Vec::new(),
                forms: Vec::new(),
            },
            vec![raw],
        ));
    }
    for (name, origin) in [
        (KSTEP_VARIABLE, Origin::KstepVariable),
        (KUBECONFIG_VARIABLE, Origin::KubeconfigVariable),
    ] {
        let Some(value) = std::env::var_os(name).filter(|v| !v.is_empty()) else {
            continue;
        };
        // A path list is detected from the file system alone: nothing is printed before the
        // value, if it is content, is registered below.
        if let Some((paths, missing)) = as_paths(&value) {
            return read_files(origin, paths, missing);
        }
        if let Some(problem) = as_missing_path(&value) {
            return Err(CredentialError::NotAFile {
                what: origin.describe(),
                value: value.to_string_lossy().into_owned(),
                problem,
            });
        }
        let value = value.into_encoded_bytes();
        secrets::register_kubeconfig(&value);
        if value.len() as u64 > MAX_KUBECONFIG_BYTES {
            return Err(CredentialError::TooBig {
                what: origin.describe().to_owned(),
                size: value.len() as u64,
                limit: MAX_KUBECONFIG_BYTES,
            });
        }
        return Ok((
            Source {
                origin,
                carrier: Carrier::Value,
                missing: Vec::new(),
                forms: Vec::new(),
            },
            vec![RawInput {
                label: origin.describe().to_owned(),
                dir: None,
                data: SecretSlice::from(value),
            }],
        ));
    }
    // kubectl's last resort, so an admin's laptop works as it does with kubectl.
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let path = Path::new(&home).join(".kube").join("config");
        if path.is_file() {
            return read_files(Origin::Home, vec![path], Vec::new());
        }
    }
    Err(CredentialError::NoSource)
}

/// Reads the files of a path or path list.
fn read_files(
    origin: Origin,
    paths: Vec<PathBuf>,
    missing: Vec<PathBuf>,
) -> Result<(Source, Vec<RawInput>), CredentialError> {
    let raw = paths
        .iter()
        .map(|p| read_file(p))
        .collect::<Result<_, _>>()?;
    Ok((
        Source {
            origin,
            carrier: Carrier::Files(paths),
            missing,
            forms: Vec::new(),
        },
        raw,
    ))
}

/// The value as paths, when it names an existing file or is a colon-separated list with at
/// least one existing file (kubectl skips the missing ones). Content never matches: YAML and
/// JSON have colons, but their pieces are not files; base64 has no colon and is not a file.
fn as_paths(value: &std::ffi::OsStr) -> Option<(Vec<PathBuf>, Vec<PathBuf>)> {
    let bytes = value.as_encoded_bytes();
    if bytes.contains(&b'\n') || bytes.len() > 64 * 1024 {
        return None;
    }
    let single = Path::new(value);
    if single.is_file() {
        return Some((vec![single.to_owned()], Vec::new()));
    }
    let value = value.to_str()?;
    if !value.contains(':') {
        return None;
    }
    let (found, missing): (Vec<PathBuf>, Vec<PathBuf>) = value
        .split(':')
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .partition(|p| p.is_file());
    (!found.is_empty()).then_some((found, missing))
}

/// What is wrong when the value can only be a path (or path list) and names no file: `None`
/// when it may be content. Only a value that no kubeconfig, base64 or token looks like counts:
/// one line, no whitespace, each piece starting like a path (`/`, `./`, `../`, `~/`) or ending
/// like a kubeconfig's file name (`.yaml`, `.yml`, `.json`, `config`), so printing it in the
/// message shows no credential.
fn as_missing_path(value: &std::ffi::OsStr) -> Option<String> {
    let text = value.to_str()?.trim();
    let path_like = |p: &str| {
        ["/", "./", "../", "~/"].iter().any(|s| p.starts_with(s))
            || [".yaml", ".yml", ".json", "config"]
                .iter()
                .any(|s| p.ends_with(s))
    };
    let pieces: Vec<&str> = text.split(':').filter(|p| !p.is_empty()).collect();
    if text.is_empty()
        || text.contains(char::is_whitespace)
        || text.starts_with('{')
        || !pieces.iter().all(|p| path_like(p))
    {
        return None;
    }
    let relative = pieces.iter().any(|p| !Path::new(p).is_absolute());
    let cwd = std::env::current_dir()
        .ok()
        .filter(|_| relative)
        .map(|d| format!(" (relative to {})", d.display()))
        .unwrap_or_default();
    let tilde = if text.contains('~') {
        "; `~` is not expanded there: give the full path"
    } else {
        ""
    };
    Some(match pieces.as_slice() {
        [one] if Path::new(one).is_dir() => "it is a directory, not a kubeconfig file".into(),
        [_] => format!("no such file exists{cwd}{tilde}"),
        _ => format!("none of these files exists{cwd}{tilde}"),
    })
}

/// Reads a kubeconfig file, refusing it before reading when it is too large, and registers
/// its content.
fn read_file(path: &Path) -> Result<RawInput, CredentialError> {
    let data = read_capped(path)?;
    secrets::register_kubeconfig(&data);
    let dir = path
        .parent()
        .map(|d| d.to_string_lossy().into_owned())
        .filter(|d| !d.is_empty());
    Ok(RawInput {
        label: path.display().to_string(),
        dir,
        data: SecretSlice::from(data),
    })
}

/// The bytes of `path`, at most [`MAX_KUBECONFIG_BYTES`] (checked on the metadata first, and
/// on what is read, for files that grow or lie about their size).
fn read_capped(path: &Path) -> Result<Vec<u8>, CredentialError> {
    // `-` is a file here: a kubeconfig never comes from stdin implicitly.
    crate::fsutil::read_capped(path, false, MAX_KUBECONFIG_BYTES).map_err(|e| match e {
        CappedReadError::Io(error) => CredentialError::Read {
            path: path.to_owned(),
            error,
        },
        CappedReadError::TooBig { size, limit } => CredentialError::TooBig {
            what: path.display().to_string(),
            size,
            limit,
        },
    })
}

fn decode(
    runtime: &Runtime,
    mut source: Source,
    raw: &[RawInput],
    context: Option<&str>,
    plain_http: PlainHttp,
) -> Result<Credentials, CredentialError> {
    let inputs: Vec<step::Input> = raw
        .iter()
        .map(|r| step::Input {
            label: r.label.clone(),
            dir: r.dir.clone(),
            data: r.data.expose_secret().to_vec(),
        })
        .collect();
    let decoded = step::decode(runtime, &inputs, context)?;
    drop(inputs);
    let decoded = match decoded {
        Ok(decoded) => decoded,
        Err(failure) => {
            let lines: Vec<String> = failure
                .diagnostics
                .iter()
                .map(step::format_diagnostic)
                .collect();
            return Err(CredentialError::Invalid { lines });
        }
    };
    if plain_http == PlainHttp::Refuse
        && decoded.connection.server.starts_with("http://")
        && !matches!(decoded.connection.auth, step::Auth::None)
    {
        return Err(CredentialError::Invalid {
            lines: vec![plain_http_refusal(&source, &decoded)],
        });
    }
    source.forms = decoded.forms;
    let mut warnings: Vec<String> = decoded
        .warnings
        .iter()
        .map(step::format_diagnostic)
        .collect();
    for missing in &source.missing {
        warnings.push(format!(
            "warning: {} lists {}, which does not exist (skipped, as kubectl does)",
            source.origin.describe(),
            missing.display()
        ));
    }
    Ok(Credentials {
        source,
        connection: Connection::from_step(decoded.connection),
        contexts: decoded.contexts,
        context_variable: None,
        ca_fingerprints: decoded.ca_fingerprints,
        warnings,
    })
}

/// The refusal of credentials over plain `http://`: the step's warning about it, at the
/// server field, as an error that says how to accept the risk.
fn plain_http_refusal(source: &Source, decoded: &step::Decoded) -> String {
    let hint = "use an https:// server, or pass --insecure-plain-http to send them anyway";
    match decoded
        .warnings
        .iter()
        .find(|w| w.message.contains(PLAIN_HTTP))
    {
        Some(warning) => step::format_diagnostic(&step::Diagnostic {
            severity: step::Severity::Error,
            message: format!("{}; {hint}", warning.message),
            ..warning.clone()
        }),
        None => format!(
            "{}: the server {} is plain http://: credentials would cross the network in clear; \
             {hint}",
            source.origin.describe(),
            decoded.connection.server
        ),
    }
}

/// Registers `secret` with the masker and wraps it.
fn secret_string(secret: String) -> SecretString {
    secrets::register(&secret);
    SecretString::from(secret)
}

/// Exec environment or auth-provider settings, every value in a secret wrapper; the masker
/// registers those whose name says they are credentials ([`secrets::register_setting`]).
fn secret_settings(settings: Vec<(String, String)>) -> Vec<(String, SecretString)> {
    settings
        .into_iter()
        .map(|(k, v)| {
            secrets::register_setting(&k, &v);
            (k, SecretString::from(v))
        })
        .collect()
}

/// The settings with their values exposed, for handing back to the step.
fn exposed_settings(settings: &[(String, SecretString)]) -> Vec<(String, String)> {
    settings
        .iter()
        .map(|(k, v)| (k.clone(), v.expose_secret().to_owned()))
        .collect()
}

fn secret_material(material: step::Material) -> SecretMaterial {
    match material {
        step::Material::Data(bytes) => {
            secrets::register_bytes(&bytes);
            SecretMaterial::Inline(SecretSlice::from(bytes))
        }
        step::Material::File(path) => SecretMaterial::File(PathBuf::from(path)),
    }
}

impl Connection {
    /// Takes the step's connection, registering and wrapping every secret in it.
    fn from_step(c: step::Connection) -> Self {
        let auth = match c.auth {
            step::Auth::None => Auth::None,
            step::Auth::Token(token) => {
                secrets::register_token(&token);
                Auth::Token(SecretString::from(token))
            }
            step::Auth::TokenFile(path) => Auth::TokenFile(PathBuf::from(path)),
            step::Auth::ClientCertificate(cc) => Auth::ClientCertificate {
                certificate: secret_material(cc.certificate),
                key: secret_material(cc.key),
            },
            step::Auth::Basic(b) => Auth::Basic {
                username: b.username,
                password: secret_string(b.password),
            },
            step::Auth::Exec(e) => Auth::Exec(ExecPlugin {
                command: e.command,
                args: e.args,
                env: secret_settings(e.env),
                api_version: e.api_version,
                install_hint: e.install_hint,
                provide_cluster_info: e.provide_cluster_info,
                interactive_mode: e.interactive_mode,
            }),
            step::Auth::AuthProvider(p) => Auth::AuthProvider {
                name: p.name,
                config: secret_settings(p.config),
            },
        };
        Self {
            context: c.context,
            cluster: c.cluster,
            user: c.user,
            server: c.server,
            certificate_authority: c.certificate_authority.map(|m| match m {
                step::Material::Data(d) => Material::Inline(d),
                step::Material::File(f) => Material::File(PathBuf::from(f)),
            }),
            insecure_skip_tls_verify: c.insecure_skip_tls_verify,
            tls_server_name: c.tls_server_name,
            proxy_url: c.proxy_url,
            namespace: c.namespace,
            auth,
        }
    }

    /// The step's form of this connection, secrets exposed: only for handing back to the
    /// kubeconfig step ([`step::render`]).
    pub fn to_step(&self) -> step::Connection {
        let material = |m: &SecretMaterial| match m {
            SecretMaterial::Inline(d) => step::Material::Data(d.expose_secret().to_vec()),
            SecretMaterial::File(p) => step::Material::File(p.to_string_lossy().into_owned()),
        };
        let auth = match &self.auth {
            Auth::None => step::Auth::None,
            Auth::Token(t) => step::Auth::Token(t.expose_secret().to_owned()),
            Auth::TokenFile(p) => step::Auth::TokenFile(p.to_string_lossy().into_owned()),
            Auth::ClientCertificate { certificate, key } => {
                step::Auth::ClientCertificate(step::ClientCertificate {
                    certificate: material(certificate),
                    key: material(key),
                })
            }
            Auth::Basic { username, password } => step::Auth::Basic(step::BasicAuth {
                username: username.clone(),
                password: password.expose_secret().to_owned(),
            }),
            Auth::Exec(e) => step::Auth::Exec(step::ExecPlugin {
                command: e.command.clone(),
                args: e.args.clone(),
                env: exposed_settings(&e.env),
                api_version: e.api_version.clone(),
                install_hint: e.install_hint.clone(),
                provide_cluster_info: e.provide_cluster_info,
                interactive_mode: e.interactive_mode.clone(),
            }),
            Auth::AuthProvider { name, config } => step::Auth::AuthProvider(step::AuthProvider {
                name: name.clone(),
                config: exposed_settings(config),
            }),
        };
        step::Connection {
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
            server: self.server.clone(),
            certificate_authority: self.certificate_authority.as_ref().map(|m| match m {
                Material::Inline(d) => step::Material::Data(d.clone()),
                Material::File(p) => step::Material::File(p.to_string_lossy().into_owned()),
            }),
            insecure_skip_tls_verify: self.insecure_skip_tls_verify,
            tls_server_name: self.tls_server_name.clone(),
            proxy_url: self.proxy_url.clone(),
            namespace: self.namespace.clone(),
            auth,
        }
    }

    /// The namespace commands act in: the context's, else `default` (as kubectl).
    pub fn namespace_or_default(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    /// Reads the files the kubeconfig refers to (CA, client certificate and key, token file)
    /// and keeps their content instead, registering the secret ones with the masker. kubectl
    /// reads them too; here it happens once, before any connection, so a missing file is one
    /// clear error.
    ///
    /// # Errors
    /// A file that cannot be read or is too large.
    pub fn read_files(&mut self) -> Result<(), CredentialError> {
        if let Some(Material::File(path)) = &self.certificate_authority {
            let data = read_capped(path)?;
            self.certificate_authority = Some(Material::Inline(data));
        }
        let read_secret = |m: &mut SecretMaterial| -> Result<(), CredentialError> {
            if let SecretMaterial::File(path) = m {
                let data = read_capped(path)?;
                secrets::register_bytes(&data);
                *m = SecretMaterial::Inline(SecretSlice::from(data));
            }
            Ok(())
        };
        match &mut self.auth {
            Auth::ClientCertificate { certificate, key } => {
                read_secret(certificate)?;
                read_secret(key)?;
            }
            Auth::TokenFile(path) => {
                let data = read_capped(path)?;
                // client-go trims the token file's content.
                let token = String::from_utf8_lossy(&data).trim().to_owned();
                secrets::register_token(&token);
                self.auth = Auth::Token(SecretString::from(token));
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn context_selection_order() {
        let kube = || Some("group/agents:prod".to_owned());
        // --context / $KSTEP_CONTEXT win over $KUBE_CONTEXT, which is named when it is used.
        assert_eq!(
            select_context(Some("mine"), kube()),
            (Some("mine".to_owned()), None)
        );
        assert_eq!(
            select_context(None, kube()),
            (Some("group/agents:prod".to_owned()), Some("KUBE_CONTEXT"))
        );
        // Empty values are unset: the current-context decides.
        assert_eq!(select_context(Some(""), Some(String::new())), (None, None));
        assert_eq!(
            select_context(Some(""), kube()),
            (Some("group/agents:prod".to_owned()), Some("KUBE_CONTEXT"))
        );
        assert_eq!(select_context(None, None), (None, None));
    }

    #[test]
    fn an_unreadable_file_says_its_os_error_once() {
        let missing = std::env::temp_dir().join("kstep-no-such-kubeconfig");
        let error = anyhow::Error::from(read_capped(&missing).unwrap_err());
        // What the CLI prints: the whole chain.
        let report = format!("{error:#}");
        assert_eq!(report.matches("No such file").count(), 1, "{report}");
    }

    #[test]
    fn path_detection() {
        let dir = std::env::temp_dir().join(format!("kstep-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.yaml");
        std::fs::write(&a, "apiVersion: v1\n").unwrap();
        let missing = dir.join("missing.yaml");
        let one = as_paths(a.as_os_str()).unwrap();
        assert_eq!(one.0, std::slice::from_ref(&a));
        let list = format!("{}:{}", missing.display(), a.display());
        let (found, skipped) = as_paths(std::ffi::OsStr::new(&list)).unwrap();
        assert_eq!((found, skipped), (vec![a.clone()], vec![missing.clone()]));
        // Content is never taken for paths.
        for content in [
            "apiVersion: v1\nkind: Config\n",
            "{\"apiVersion\":\"v1\",\"kind\":\"Config\"}",
            "YXBpVmVyc2lvbjogdjEK",
            &missing.display().to_string(),
        ] {
            assert!(
                as_paths(std::ffi::OsStr::new(content)).is_none(),
                "{content}"
            );
        }
        let os = |s: &str| std::ffi::OsString::from(s);
        let problem = as_missing_path(missing.as_os_str()).unwrap();
        assert_eq!(problem, "no such file exists");
        assert!(
            as_missing_path(&os("missing.yaml"))
                .unwrap()
                .starts_with("no such file exists (relative to /")
        );
        assert!(
            as_missing_path(&os("~/.kube/config"))
                .unwrap()
                .contains("`~` is not expanded")
        );
        assert_eq!(
            as_missing_path(&os("/a/kc:b.yml")).unwrap(),
            "none of these files exists (relative to ".to_owned()
                + &std::env::current_dir().unwrap().display().to_string()
                + ")"
        );
        assert_eq!(
            as_missing_path(dir.as_os_str()).unwrap(),
            "it is a directory, not a kubeconfig file"
        );
        // Content, base64 and tokens are never taken for paths.
        for content in [
            "YXBpVmVyc2lvbjogdjEK",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
            "apiVersion: v1\nkind: Config\n",
            "{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"x\":\"a/b.yaml\"}",
            "# only a comment",
        ] {
            assert_eq!(as_missing_path(&os(content)), None, "{content}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn capped_reads() {
        let dir = std::env::temp_dir().join(format!("kstep-cred-cap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(10 << 20).unwrap();
        let e = read_capped(&big).unwrap_err();
        assert!(
            matches!(e, CredentialError::TooBig { size, .. } if size == 10 << 20),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
