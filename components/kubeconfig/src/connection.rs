//! The normalised result of decoding a kubeconfig: the selected context's connection, the
//! diagnostics, and what each input was. Plain Rust mirrors of the WIT types.

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The input cannot be used.
    Error,
    /// The input works here but may not in CI, or weakens security.
    Warning,
}

/// A problem found in an input. Never quotes input content: positions and names only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong and what to do.
    pub message: String,
    /// The input's label (with ` (base64-decoded)` when positions refer to decoded content).
    pub source: Option<String>,
    /// 1-based line, 0 when unknown.
    pub line: u32,
    /// 1-based column, 0 when unknown.
    pub column: u32,
}

impl Diagnostic {
    /// An error without position.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            message: message.into(),
            source: None,
            line: 0,
            column: 0,
        }
    }

    /// A warning without position.
    pub fn warning(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(message)
        }
    }

    /// The same diagnostic attributed to `source` at `line`:`column`.
    #[must_use]
    pub fn at(mut self, source: Option<&str>, line: u32, column: u32) -> Self {
        self.source = source.map(str::to_owned);
        self.line = line;
        self.column = column;
        self
    }
}

/// What an input turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// base64 on one line (`base64 -w 0`).
    Base64OneLine,
    /// base64 with line breaks or spaces.
    Base64Wrapped,
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

/// Inline bytes or a file reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Material {
    /// The decoded content.
    Data(Vec<u8>),
    /// A path (absolute, or relative to the working directory when the input had no directory).
    File(String),
}

/// A client certificate and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The certificate (chain), PEM when inline.
    pub certificate: Material,
    /// The private key, PEM when inline.
    pub key: Material,
}

/// HTTP basic authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

/// A credential plugin.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecPlugin {
    /// The command.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment, in order.
    pub env: Vec<(String, String)>,
    /// The ExecCredential API version.
    pub api_version: String,
    /// Shown when the command is missing.
    pub install_hint: Option<String>,
    /// Whether the plugin receives the cluster's details.
    pub provide_cluster_info: bool,
    /// `Never`, `IfAvailable` or `Always`.
    pub interactive_mode: Option<String>,
}

/// A legacy auth-provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthProvider {
    /// `gcp`, `azure`, `oidc`…
    pub name: String,
    /// Its settings (may hold tokens).
    pub config: Vec<(String, String)>,
}

/// How the client authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Anonymous.
    None,
    /// A bearer token.
    Token(String),
    /// A file holding the bearer token.
    TokenFile(String),
    /// A client certificate.
    ClientCertificate(ClientCertificate),
    /// HTTP basic authentication.
    Basic(BasicAuth),
    /// A credential plugin.
    Exec(ExecPlugin),
    /// A legacy auth-provider (unsupported).
    AuthProvider(AuthProvider),
}

/// The selected context, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The context's name.
    pub context: String,
    /// The cluster entry's name.
    pub cluster: String,
    /// The user entry's name, empty for none.
    pub user: String,
    /// The API server URL.
    pub server: String,
    /// The CA bundle.
    pub certificate_authority: Option<Material>,
    /// TLS verification disabled.
    pub insecure_skip_tls_verify: bool,
    /// The name to verify the server certificate against.
    pub tls_server_name: Option<String>,
    /// A proxy URL.
    pub proxy_url: Option<String>,
    /// The context's namespace.
    pub namespace: Option<String>,
    /// The credentials.
    pub auth: Auth,
}

/// Everything [`crate::decode::decode`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The form of each input, in order.
    pub forms: Vec<Form>,
    /// The selected context.
    pub connection: Connection,
    /// Every context name, in order, after merging.
    pub contexts: Vec<String>,
    /// SHA-256 fingerprints of the inline CA certificates.
    pub ca_fingerprints: Vec<String>,
    /// Warnings.
    pub warnings: Vec<Diagnostic>,
    /// Every secret value found in any input (see [`Failure::secrets`]).
    pub secrets: Vec<String>,
}

/// Why decoding failed, and the secrets found on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Every problem found.
    pub diagnostics: Vec<Diagnostic>,
    /// Every secret value found in the inputs that parsed, whichever context they belong to:
    /// tokens, passwords, key and certificate data (as written and decoded), auth-provider
    /// settings, exec environment values, and the decoded text of base64 inputs. The host
    /// masks them before printing anything, so even a message that had to name a value
    /// (a context name that is in fact a pasted token) cannot show one.
    pub secrets: Vec<String>,
}

/// One input to decode.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// How diagnostics name it.
    pub label: &'a str,
    /// The directory relative file references are resolved against.
    pub dir: Option<&'a str>,
    /// The raw bytes.
    pub data: &'a [u8],
}
