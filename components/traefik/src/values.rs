//! The values `render` takes: a YAML document, every key optional, unknown keys refused with
//! their position, and every value type-checked.
//!
//! The document is read into one generic tree with the position of every key and value
//! ([`Yaml`]), then walked by a hand-written schema. Deriving `Deserialize` for each struct
//! would have been shorter, but it monomorphises serde-saphyr's deserializer for every type
//! (the component was 1.3 MB that way, against about half without) and stops at the first
//! error, where this reports every unknown key and bad value at once.
//!
//! Defaults are documented on each field and in `docs/traefik.md`; keep the two in step.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::problem::Problem;

/// The newest Traefik v3.6 release when this was written (the Go proxy serves v3.6.12).
pub const DEFAULT_TAG: &str = "v3.6.12";

/// A value and the 1-based position it was given at ((0, 0) for a default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<T> {
    /// The value.
    pub value: T,
    /// Line and column, 1-based; (0, 0) when it is a default.
    pub at: (u32, u32),
}

impl<T> At<T> {
    /// A default value, which has no position.
    pub fn default_value(value: T) -> Self {
        Self { value, at: (0, 0) }
    }
}

/// The position of a value.
pub fn pos<T>(v: &At<T>) -> (u32, u32) {
    v.at
}

/// All values. Every field has a default, so an empty document renders a working deployment.
#[derive(Debug)]
pub struct Values {
    /// Namespace for everything namespaced (default `traefik`).
    pub namespace: At<String>,
    /// Container image.
    pub image: Image,
    /// Pod count (default 1). More than one is refused with ACME.
    pub replicas: At<u32>,
    /// Traefik's log level (default `INFO`): TRACE, DEBUG, INFO, WARN, ERROR, FATAL, PANIC.
    pub log_level: At<String>,
    /// The three entry points and their ports.
    pub entry_points: EntryPoints,
    /// Redirect every request on `web` to `websecure` (default true, permanent).
    pub redirect_to_https: bool,
    /// Let's Encrypt (or another ACME CA). Absent: no ACME, no PVC.
    pub acme: Option<At<Acme>>,
    /// The PVC holding `acme.json` (used only with ACME).
    pub persistence: Option<At<Persistence>>,
    /// The dashboard, exposed only when both `host` and `basicAuthSecret` are given.
    pub dashboard: Option<At<Dashboard>>,
    /// The IngressClass Traefik answers for.
    pub ingress_class: IngressClass,
    /// Also run the Kubernetes CRD provider (IngressRoute…; the CRDs must be installed). Default false.
    pub kubernetes_crd: bool,
    /// Let Ingresses route to `ExternalName` Services (default false).
    pub allow_external_name_services: bool,
    /// Skip TLS verification of HTTPS backends (`serversTransport.insecureSkipVerify`, default false).
    pub insecure_skip_verify: At<bool>,
    /// Container resources.
    pub resources: Resources,
    /// More static configuration, as Traefik command-line flags (`--accesslog=true`). They are
    /// written into the configuration file, because Traefik ignores flags when it reads a file.
    pub extra_args: Vec<At<String>>,
}

/// The container image.
#[derive(Debug)]
pub struct Image {
    /// Default `docker.io/traefik`.
    pub repository: At<String>,
    /// Default [`DEFAULT_TAG`]; `latest` and empty are refused, as are 1.x and 2.x tags.
    pub tag: At<String>,
    /// Default `IfNotPresent`.
    pub pull_policy: PullPolicy,
}

/// `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull when the node does not have the image.
    IfNotPresent,
    /// Pull on every start.
    Always,
    /// Never pull.
    Never,
}

/// The entry points. Each port defaults on its own.
#[derive(Debug, Default)]
pub struct EntryPoints {
    /// HTTP: container port 8000, Service port 80.
    pub web: ServedEntryPoint,
    /// HTTPS: container port 8443, Service port 443.
    pub websecure: ServedEntryPoint,
    /// Ping (and the API when the dashboard is on): container port 8080, on no Service.
    pub traefik: InternalEntryPoint,
}

/// An entry point that the Services expose.
#[derive(Debug, Default)]
pub struct ServedEntryPoint {
    /// The port Traefik listens on in the container (≥ 1024: it runs without privileges).
    pub port: Option<At<u32>>,
    /// The port of the Services.
    pub service_port: Option<At<u32>>,
}

/// The `traefik` entry point: never on a Service.
#[derive(Debug, Default)]
pub struct InternalEntryPoint {
    /// The port Traefik listens on in the container.
    pub port: Option<At<u32>>,
}

/// A port with the position it was given at ((0, 0) for a default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    /// The port number as given (checked later).
    pub number: u32,
    /// Where it was given.
    pub at: (u32, u32),
}

fn port_or(given: Option<&At<u32>>, default: u32) -> Port {
    given.map_or(
        Port {
            number: default,
            at: (0, 0),
        },
        |p| Port {
            number: p.value,
            at: p.at,
        },
    )
}

impl EntryPoints {
    /// `web`'s container port (default 8000).
    pub fn web_port(&self) -> Port {
        port_or(self.web.port.as_ref(), 8000)
    }

    /// `web`'s Service port (default 80).
    pub fn web_service_port(&self) -> Port {
        port_or(self.web.service_port.as_ref(), 80)
    }

    /// `websecure`'s container port (default 8443).
    pub fn websecure_port(&self) -> Port {
        port_or(self.websecure.port.as_ref(), 8443)
    }

    /// `websecure`'s Service port (default 443).
    pub fn websecure_service_port(&self) -> Port {
        port_or(self.websecure.service_port.as_ref(), 443)
    }

    /// `traefik`'s container port (default 8080).
    pub fn traefik_port(&self) -> Port {
        port_or(self.traefik.port.as_ref(), 8080)
    }
}

/// ACME settings.
#[derive(Debug)]
pub struct Acme {
    /// Account e-mail (required).
    pub email: At<String>,
    /// Storage file (default `/data/acme.json`); its directory is the PVC mount.
    pub storage: At<String>,
    /// Challenge type (default `http`).
    pub challenge: Challenge,
    /// lego DNS provider name, required with `challenge: dns`.
    pub dns_provider: Option<At<String>>,
    /// Secret whose keys become the container's environment (the DNS provider's credentials).
    pub dns_credentials_secret: Option<At<String>>,
    /// ACME directory URL (default Let's Encrypt production).
    pub ca_server: Option<At<String>>,
    /// Name of the certificate resolver (default `letsencrypt`).
    pub resolver: At<String>,
}

/// ACME challenge types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP-01 on the `web` entry point.
    #[default]
    Http,
    /// TLS-ALPN-01 on the `websecure` entry point.
    Tls,
    /// DNS-01 through a DNS provider.
    Dns,
}

/// The PVC for ACME storage.
#[derive(Debug)]
pub struct Persistence {
    /// Requested size (default `128Mi`).
    pub size: At<String>,
    /// StorageClass (default: the cluster's default class).
    pub storage_class: Option<At<String>>,
}

/// The dashboard.
#[derive(Debug, Default)]
pub struct Dashboard {
    /// Host name it is served on (HTTPS only).
    pub host: Option<At<String>>,
    /// Secret (in `namespace`) with an htpasswd file under the key `users`.
    pub basic_auth_secret: Option<At<String>>,
}

/// The IngressClass.
#[derive(Debug)]
pub struct IngressClass {
    /// Name (default `traefik`).
    pub name: At<String>,
    /// Mark it as the cluster's default class (default true).
    pub default: bool,
}

/// Container resources; defaults: requests cpu 100m, memory 128Mi; limits memory 256Mi.
#[derive(Debug)]
pub struct Resources {
    /// Requests.
    pub requests: Quantities,
    /// Limits.
    pub limits: Quantities,
}

/// A cpu/memory pair; a missing entry is left out of the manifest.
#[derive(Debug, Default)]
pub struct Quantities {
    /// CPU, e.g. `100m`.
    pub cpu: Option<At<String>>,
    /// Memory, e.g. `128Mi`.
    pub memory: Option<At<String>>,
}

fn dflt(s: &str) -> At<String> {
    At::default_value(s.to_owned())
}

impl Default for Values {
    fn default() -> Self {
        Self {
            namespace: dflt("traefik"),
            image: Image::default(),
            replicas: At::default_value(1),
            log_level: dflt("INFO"),
            entry_points: EntryPoints::default(),
            redirect_to_https: true,
            acme: None,
            persistence: None,
            dashboard: None,
            ingress_class: IngressClass::default(),
            kubernetes_crd: false,
            allow_external_name_services: false,
            insecure_skip_verify: At::default_value(false),
            resources: Resources::default(),
            extra_args: Vec::new(),
        }
    }
}

impl Default for Image {
    fn default() -> Self {
        Self {
            repository: dflt("docker.io/traefik"),
            tag: dflt(DEFAULT_TAG),
            pull_policy: PullPolicy::IfNotPresent,
        }
    }
}

impl Default for IngressClass {
    fn default() -> Self {
        Self {
            name: dflt("traefik"),
            default: true,
        }
    }
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            requests: Quantities {
                cpu: Some(dflt("100m")),
                memory: Some(dflt("128Mi")),
            },
            limits: Quantities {
                cpu: None,
                memory: Some(dflt("256Mi")),
            },
        }
    }
}

// ------------------------------------------------------------------ the generic tree

/// A YAML value as parsed, before the schema is applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Y {
    /// `~`, `null` or nothing.
    Null,
    /// A boolean (`true`/`false` only: the parser runs with strict booleans).
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Yaml>),
    /// A mapping, in document order.
    Map(Vec<(At<String>, Yaml)>),
}

/// A YAML value with its position.
pub type Yaml = At<Y>;

/// Deserialises any YAML value into [`Yaml`], keeping positions (serde-saphyr's `Spanned`).
struct Spanned(Yaml);

impl<'de> Deserialize<'de> for Spanned {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<YValue>::deserialize(d)?;
        Ok(Spanned(At {
            value: s.value.0,
            at: location(&s.referenced),
        }))
    }
}

struct SpannedKey(At<String>);

impl<'de> Deserialize<'de> for SpannedKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<YValue>::deserialize(d)?;
        let key = match s.value.0 {
            Y::Str(k) => k,
            Y::Int(n) => n.to_string(),
            Y::Bool(b) => b.to_string(),
            other => {
                return Err(de::Error::custom(format!(
                    "a key must be a string, not {}",
                    describe(&other)
                )));
            }
        };
        Ok(SpannedKey(At {
            value: key,
            at: location(&s.referenced),
        }))
    }
}

struct YValue(Y);

impl<'de> Deserialize<'de> for YValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(YVisitor)
    }
}

struct YVisitor;

impl<'de> Visitor<'de> for YVisitor {
    type Value = YValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<YValue, E> {
        Ok(YValue(Y::Null))
    }
    fn visit_none<E>(self) -> Result<YValue, E> {
        Ok(YValue(Y::Null))
    }
    fn visit_bool<E>(self, b: bool) -> Result<YValue, E> {
        Ok(YValue(Y::Bool(b)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<YValue, E> {
        Ok(YValue(Y::Int(n)))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<YValue, E> {
        i64::try_from(n)
            .map(|n| YValue(Y::Int(n)))
            .map_err(|_| E::custom("number too large"))
    }
    fn visit_f64<E>(self, n: f64) -> Result<YValue, E> {
        Ok(YValue(Y::Float(n)))
    }
    fn visit_str<E>(self, s: &str) -> Result<YValue, E> {
        Ok(YValue(Y::Str(s.to_owned())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<YValue, A::Error> {
        let mut items = Vec::new();
        while let Some(Spanned(item)) = a.next_element()? {
            items.push(item);
        }
        Ok(YValue(Y::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<YValue, A::Error> {
        let mut entries = Vec::new();
        while let Some((SpannedKey(k), Spanned(v))) = a.next_entry()? {
            entries.push((k, v));
        }
        Ok(YValue(Y::Map(entries)))
    }
}

fn location(l: &serde_saphyr::Location) -> (u32, u32) {
    (
        u32::try_from(l.line()).unwrap_or(0),
        u32::try_from(l.column()).unwrap_or(0),
    )
}

fn describe(y: &Y) -> &'static str {
    match y {
        Y::Null => "null",
        Y::Bool(_) => "a boolean",
        Y::Int(_) => "an integer",
        Y::Float(_) => "a number",
        Y::Str(_) => "a string",
        Y::Seq(_) => "a list",
        Y::Map(_) => "a mapping",
    }
}

/// Parses YAML text into the generic tree (`None` for an empty document).
///
/// # Errors
/// The parser's problem, with its position.
pub fn parse_yaml(text: &str) -> Result<Option<Yaml>, Problem> {
    let options = serde_saphyr::options! {
        // `yes`/`on` as booleans are a YAML 1.1 trap; with this they stay strings and the
        // schema says "expected true or false".
        strict_booleans: true,
        with_snippet: false,
    };
    let parsed: Result<Option<Spanned>, _> = serde_saphyr::from_str_with_options(text, options);
    match parsed {
        Ok(v) => Ok(v.map(|s| s.0).filter(|y| y.value != Y::Null)),
        Err(e) => {
            let message = match innermost(&e) {
                // The library's wording names its own API (`use from_str_multiple`).
                serde_saphyr::Error::MultipleDocuments { .. } => {
                    "a values file is one YAML document, and this one has more after a `---`: \
                     merge them into one"
                        .to_owned()
                }
                _ => plain_message(&e.to_string()),
            };
            Err(Problem::error(
                message,
                e.location().map_or((0, 0), |l| location(&l)),
            ))
        }
    }
}

/// The error inside any snippet wrappers.
fn innermost(e: &serde_saphyr::Error) -> &serde_saphyr::Error {
    match e {
        serde_saphyr::Error::WithSnippet { error, .. } => innermost(error),
        other => other,
    }
}

/// serde-saphyr's message without what the diagnostic carries already (the position) or what
/// speaks to a Rust programmer rather than to the author of the values file.
fn plain_message(message: &str) -> String {
    let message = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return format!("duplicate key `{key}`");
    }
    message.to_owned()
}

// ------------------------------------------------------------------ the schema

/// A known key of a mapping, its value, and the key's position.
type Field<'a> = (&'a str, &'a Yaml, (u32, u32));

/// Walks the tree, collecting every problem.
#[derive(Default)]
struct Reader {
    problems: Vec<Problem>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Reader {
    fn error(&mut self, at: (u32, u32), message: String) {
        self.problems.push(Problem::error(message, at));
    }

    /// The entries of a mapping whose keys must be among `known`; others are reported with a
    /// suggestion. `None` (reported) when `y` is not a mapping; null is an empty mapping.
    fn fields<'a>(
        &mut self,
        y: &'a Yaml,
        path: &str,
        known: &[&str],
    ) -> Option<Vec<(&'a str, &'a Yaml)>> {
        self.fields_at(y, path, known)
            .map(|f| f.into_iter().map(|(k, v, _)| (k, v)).collect())
    }

    /// [`Reader::fields`] with the position of each key (a mapping's own position is that of
    /// its first key, which is not where a "missing key" problem belongs).
    fn fields_at<'a>(&mut self, y: &'a Yaml, path: &str, known: &[&str]) -> Option<Vec<Field<'a>>> {
        let entries = match &y.value {
            Y::Map(entries) => entries,
            Y::Null => return Some(Vec::new()),
            other => {
                let what = if path.is_empty() { "the values" } else { path };
                self.error(
                    y.at,
                    format!("{what}: expected a mapping, found {}", describe(other)),
                );
                return None;
            }
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            if known.contains(&k.value.as_str()) {
                out.push((k.value.as_str(), v, k.at));
                continue;
            }
            let mut m = format!("unknown key `{}`", join(path, &k.value));
            if let Some(best) = closest(&k.value, known) {
                m.push_str(&format!(" (did you mean `{best}`?)"));
            }
            m.push_str(&format!("; expected one of: {}", known.join(", ")));
            self.error(k.at, m);
        }
        Some(out)
    }

    fn string(&mut self, y: &Yaml, path: &str) -> Option<At<String>> {
        match &y.value {
            Y::Str(s) => Some(At {
                value: s.clone(),
                at: y.at,
            }),
            Y::Null => None,
            Y::Int(_) | Y::Float(_) | Y::Bool(_) => {
                self.error(
                    y.at,
                    format!(
                        "{path}: expected a string, found {}; quote it (YAML reads 3.10 as the \
                         number 3.1)",
                        describe(&y.value)
                    ),
                );
                None
            }
            other => {
                self.error(
                    y.at,
                    format!("{path}: expected a string, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn uint(&mut self, y: &Yaml, path: &str) -> Option<At<u32>> {
        match &y.value {
            Y::Int(n) => match u32::try_from(*n) {
                Ok(v) => Some(At { value: v, at: y.at }),
                Err(_) => {
                    self.error(y.at, format!("{path}: {n} is out of range"));
                    None
                }
            },
            Y::Null => None,
            other => {
                self.error(
                    y.at,
                    format!("{path}: expected a whole number, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn boolean(&mut self, y: &Yaml, path: &str) -> Option<At<bool>> {
        match &y.value {
            Y::Bool(b) => Some(At {
                value: *b,
                at: y.at,
            }),
            Y::Null => None,
            Y::Str(s) => {
                self.error(
                    y.at,
                    format!("{path}: expected true or false, found the string `{s}`"),
                );
                None
            }
            other => {
                self.error(
                    y.at,
                    format!("{path}: expected true or false, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// One of `choices` (a string).
    fn choice(&mut self, y: &Yaml, path: &str, choices: &[&str]) -> Option<At<String>> {
        let s = self.string(y, path)?;
        if choices.contains(&s.value.as_str()) {
            Some(s)
        } else {
            self.error(
                s.at,
                format!(
                    "{path}: unknown value `{}`; expected one of: {}",
                    s.value,
                    choices.join(", ")
                ),
            );
            None
        }
    }

    fn values(&mut self, y: &Yaml) -> Values {
        let mut v = Values::default();
        let Some(fields) = self.fields_at(
            y,
            "",
            &[
                "namespace",
                "image",
                "replicas",
                "logLevel",
                "entryPoints",
                "redirectToHttps",
                "acme",
                "persistence",
                "dashboard",
                "ingressClass",
                "kubernetesCRD",
                "allowExternalNameServices",
                "insecureSkipVerify",
                "resources",
                "extraArgs",
            ],
        ) else {
            return v;
        };
        for (key, y, key_at) in fields {
            match key {
                "namespace" => set(&mut v.namespace, self.string(y, key)),
                "image" => self.image(y, &mut v.image),
                "replicas" => set(&mut v.replicas, self.uint(y, key)),
                "logLevel" => set(&mut v.log_level, self.string(y, key)),
                "entryPoints" => self.entry_points(y, &mut v.entry_points),
                "redirectToHttps" => {
                    set(
                        &mut v.redirect_to_https,
                        self.boolean(y, key).map(|b| b.value),
                    );
                }
                "acme" => v.acme = self.acme(y, key_at),
                "persistence" => v.persistence = self.persistence(y, key_at),
                "dashboard" => v.dashboard = self.dashboard(y, key_at),
                "ingressClass" => self.ingress_class(y, &mut v.ingress_class),
                "kubernetesCRD" => {
                    set(&mut v.kubernetes_crd, self.boolean(y, key).map(|b| b.value));
                }
                "allowExternalNameServices" => set(
                    &mut v.allow_external_name_services,
                    self.boolean(y, key).map(|b| b.value),
                ),
                "insecureSkipVerify" => set(&mut v.insecure_skip_verify, self.boolean(y, key)),
                "resources" => self.resources(y, &mut v.resources),
                "extraArgs" => v.extra_args = self.string_list(y, key),
                _ => {}
            }
        }
        v
    }

    fn string_list(&mut self, y: &Yaml, path: &str) -> Vec<At<String>> {
        match &y.value {
            Y::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.string(item, &format!("{path}[{i}]")))
                .collect(),
            Y::Null => Vec::new(),
            other => {
                self.error(
                    y.at,
                    format!("{path}: expected a list, found {}", describe(other)),
                );
                Vec::new()
            }
        }
    }

    fn image(&mut self, y: &Yaml, image: &mut Image) {
        for (key, y) in self
            .fields(y, "image", &["repository", "tag", "pullPolicy"])
            .unwrap_or_default()
        {
            let path = join("image", key);
            match key {
                "repository" => set(&mut image.repository, self.string(y, &path)),
                "tag" => set(&mut image.tag, self.string(y, &path)),
                "pullPolicy" => {
                    if let Some(p) = self.choice(y, &path, &["IfNotPresent", "Always", "Never"]) {
                        image.pull_policy = match p.value.as_str() {
                            "Always" => PullPolicy::Always,
                            "Never" => PullPolicy::Never,
                            _ => PullPolicy::IfNotPresent,
                        };
                    }
                }
                _ => {}
            }
        }
    }

    fn entry_points(&mut self, y: &Yaml, eps: &mut EntryPoints) {
        for (key, y) in self
            .fields(y, "entryPoints", &["web", "websecure", "traefik"])
            .unwrap_or_default()
        {
            let path = join("entryPoints", key);
            if key == "traefik" {
                for (k, y) in self.fields(y, &path, &["port"]).unwrap_or_default() {
                    eps.traefik.port = self.uint(y, &join(&path, k));
                }
                continue;
            }
            let ep = if key == "web" {
                &mut eps.web
            } else {
                &mut eps.websecure
            };
            for (k, y) in self
                .fields(y, &path, &["port", "servicePort"])
                .unwrap_or_default()
            {
                let value = self.uint(y, &join(&path, k));
                if k == "port" {
                    ep.port = value;
                } else {
                    ep.service_port = value;
                }
            }
        }
    }

    fn acme(&mut self, y: &Yaml, key_at: (u32, u32)) -> Option<At<Acme>> {
        if y.value == Y::Null {
            return None;
        }
        let fields = self.fields(
            y,
            "acme",
            &[
                "email",
                "storage",
                "challenge",
                "dnsProvider",
                "dnsCredentialsSecret",
                "caServer",
                "resolver",
            ],
        )?;
        let mut acme = Acme {
            email: dflt(""),
            storage: dflt("/data/acme.json"),
            challenge: Challenge::Http,
            dns_provider: None,
            dns_credentials_secret: None,
            ca_server: None,
            resolver: dflt("letsencrypt"),
        };
        let mut email = false;
        for (key, v) in fields {
            let path = join("acme", key);
            match key {
                "email" => {
                    if let Some(e) = self.string(v, &path) {
                        acme.email = e;
                        email = true;
                    }
                }
                "storage" => set(&mut acme.storage, self.string(v, &path)),
                "challenge" => {
                    if let Some(c) = self.choice(v, &path, &["http", "tls", "dns"]) {
                        acme.challenge = match c.value.as_str() {
                            "tls" => Challenge::Tls,
                            "dns" => Challenge::Dns,
                            _ => Challenge::Http,
                        };
                    }
                }
                "dnsProvider" => acme.dns_provider = self.string(v, &path),
                "dnsCredentialsSecret" => acme.dns_credentials_secret = self.string(v, &path),
                "caServer" => acme.ca_server = self.string(v, &path),
                "resolver" => set(&mut acme.resolver, self.string(v, &path)),
                _ => {}
            }
        }
        if !email {
            self.error(
                key_at,
                "acme.email is required: the ACME account is registered with it".into(),
            );
        }
        Some(At {
            value: acme,
            at: key_at,
        })
    }

    fn persistence(&mut self, y: &Yaml, key_at: (u32, u32)) -> Option<At<Persistence>> {
        if y.value == Y::Null {
            return None;
        }
        let mut p = Persistence {
            size: dflt("128Mi"),
            storage_class: None,
        };
        for (key, v) in self.fields(y, "persistence", &["size", "storageClass"])? {
            let path = join("persistence", key);
            match key {
                "size" => set(&mut p.size, self.string(v, &path)),
                "storageClass" => p.storage_class = self.string(v, &path),
                _ => {}
            }
        }
        Some(At {
            value: p,
            at: key_at,
        })
    }

    fn dashboard(&mut self, y: &Yaml, key_at: (u32, u32)) -> Option<At<Dashboard>> {
        if y.value == Y::Null {
            return None;
        }
        let mut d = Dashboard::default();
        for (key, v) in self.fields(y, "dashboard", &["host", "basicAuthSecret"])? {
            let value = self.string(v, &join("dashboard", key));
            if key == "host" {
                d.host = value;
            } else {
                d.basic_auth_secret = value;
            }
        }
        Some(At {
            value: d,
            at: key_at,
        })
    }

    fn ingress_class(&mut self, y: &Yaml, class: &mut IngressClass) {
        for (key, v) in self
            .fields(y, "ingressClass", &["name", "default"])
            .unwrap_or_default()
        {
            let path = join("ingressClass", key);
            if key == "name" {
                set(&mut class.name, self.string(v, &path));
            } else {
                set(&mut class.default, self.boolean(v, &path).map(|b| b.value));
            }
        }
    }

    fn resources(&mut self, y: &Yaml, r: &mut Resources) {
        for (key, v) in self
            .fields(y, "resources", &["requests", "limits"])
            .unwrap_or_default()
        {
            let path = join("resources", key);
            // A side that is given replaces the default side entirely: `limits: {cpu: 1}`
            // means no memory limit, not "cpu 1 plus the default memory limit".
            let mut q = Quantities::default();
            for (k, v) in self
                .fields(v, &path, &["cpu", "memory"])
                .unwrap_or_default()
            {
                let value = self.string(v, &join(&path, k));
                if k == "cpu" {
                    q.cpu = value;
                } else {
                    q.memory = value;
                }
            }
            if key == "requests" {
                r.requests = q;
            } else {
                r.limits = q;
            }
        }
    }
}

/// Overwrites `slot` when a value was read (a missing or invalid one keeps the default).
fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// Parses and reads the values document. Empty text (or only comments) means all defaults.
///
/// # Errors
/// Every problem found: YAML syntax (the first only: the parser stops there), unknown keys,
/// values of the wrong type.
pub fn parse(text: &str) -> Result<Values, Vec<Problem>> {
    let Some(y) = parse_yaml(text).map_err(|p| vec![p])? else {
        return Ok(Values::default());
    };
    let mut reader = Reader::default();
    let values = reader.values(&y);
    if reader.problems.is_empty() {
        Ok(values)
    } else {
        Err(reader.problems)
    }
}

/// The candidate nearest to `word` when it is close enough to be a typo.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&word, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn one(text: &str) -> Problem {
        let e = parse(text).unwrap_err();
        assert_eq!(e.len(), 1, "{e:#?}");
        e.into_iter().next().unwrap()
    }

    #[test]
    fn empty_and_comments_are_defaults() {
        for text in ["", "\n", "# nothing\n", "---\n", "~\n"] {
            let v = parse(text).unwrap();
            assert_eq!(v.namespace.value, "traefik");
            assert_eq!(v.image.tag.value, DEFAULT_TAG);
            assert_eq!(v.entry_points.websecure_port().number, 8443);
        }
    }

    #[test]
    fn several_documents_are_refused_in_words() {
        let e = one("namespace: a\n---\nreplicas: 2\n");
        assert!(
            e.message.starts_with("a values file is one YAML document"),
            "{e:?}"
        );
        assert!(!e.message.contains("from_str"), "{e:?}");
        assert!(e.line >= 2, "{e:?}");
    }

    #[test]
    fn unknown_keys_have_positions_and_suggestions() {
        let e = one("namespace: x\ndashboard:\n  hosst: a.example\n");
        assert_eq!((e.line, e.column), (3, 3), "{e:?}");
        assert!(e.message.contains("`dashboard.hosst`"), "{e:?}");
        assert!(e.message.contains("did you mean `host`"), "{e:?}");
        let e = one("replica: 2\n");
        assert_eq!((e.line, e.column), (1, 1), "{e:?}");
        assert!(e.message.contains("did you mean `replicas`"), "{e:?}");
        // Every unknown key at once.
        let e = parse("a: 1\nimage:\n  tagg: x\nacme:\n  emial: x\n").unwrap_err();
        let at: Vec<_> = e.iter().map(|p| (p.line, p.column)).collect();
        assert_eq!(at, [(1, 1), (3, 3), (5, 3), (4, 1)], "{e:#?}");
        assert!(e[3].message.contains("acme.email is required"));
    }

    #[test]
    fn type_errors_have_positions() {
        let e = one("replicas: two\n");
        assert_eq!((e.line, e.column), (1, 11));
        assert_eq!(
            e.message,
            "replicas: expected a whole number, found a string"
        );
        let e = one("acme:\n  email: a@b.example\n  challenge: smtp\n");
        assert_eq!(e.line, 3, "{e:?}");
        assert!(e.message.contains("http, tls, dns"), "{e:?}");
        let e = one("redirectToHttps: yes\n");
        assert_eq!(
            e.message,
            "redirectToHttps: expected true or false, found the string `yes`"
        );
        let e = one("image:\n  tag: 3.10\n");
        assert!(e.message.contains("quote it"), "{e:?}");
        assert_eq!(
            one("replicas: -1\n").message,
            "replicas: -1 is out of range"
        );
        let e = one("namespace: a\nnamespace: b\n");
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "duplicate key `namespace`")
        );
        assert!(
            one("extraArgs: --a=b\n")
                .message
                .contains("expected a list")
        );
        assert!(
            one("- a\n")
                .message
                .contains("the values: expected a mapping")
        );
        assert!(one("a: [\n").line > 0);
    }

    #[test]
    fn spans_point_at_values() {
        let v = parse("namespace: edge\nreplicas: 3\n").unwrap();
        assert_eq!(pos(&v.replicas), (2, 11));
        assert_eq!(pos(&v.namespace), (1, 12));
        assert_eq!(pos(&v.image.tag), (0, 0));
    }

    #[test]
    fn entry_point_ports_default_one_by_one() {
        let v = parse("entryPoints:\n  web:\n    port: 9000\n").unwrap();
        let ep = &v.entry_points;
        assert_eq!(
            ep.web_port(),
            Port {
                number: 9000,
                at: (3, 11)
            }
        );
        assert_eq!(ep.web_service_port().number, 80);
        assert_eq!(ep.websecure_service_port().number, 443);
        assert_eq!(ep.traefik_port().number, 8080);
        assert!(parse("kubernetesCRD: true\n").unwrap().kubernetes_crd);
    }

    #[test]
    fn nulls_are_absent() {
        let v = parse("acme:\ndashboard: ~\npersistence:\n  storageClass: ~\nimage:\n").unwrap();
        assert!(v.acme.is_none() && v.dashboard.is_none());
        assert!(v.persistence.unwrap().value.storage_class.is_none());
        let v = parse("resources:\n  limits:\n    cpu: '1'\n").unwrap();
        assert!(v.resources.limits.memory.is_none());
        assert_eq!(v.resources.requests.memory.unwrap().value, "128Mi");
    }
}
