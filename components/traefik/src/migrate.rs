//! `migrate`: a Traefik 1.x `traefik.toml` → the equivalent Traefik v3 static configuration,
//! plus every v1 setting that could not be carried over (and why) and every one that was carried
//! over with a change worth knowing.
//!
//! Follows Traefik's v1→v2 migration guide (and the v2→v3 one where v3 differs). Traefik 1.x
//! matched keys without regard to case (BurntSushi/toml), so this does too. Everything that is
//! dynamic configuration in v3 (middlewares, TLS options and certificates, routers) has no place
//! in the static file and is reported, not guessed.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::node::Node;
use crate::problem::{Problem, position};

/// One v1 setting, where it is, and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Dotted v1 key, as written (`entryPoints.http.redirect.regex`).
    pub key: String,
    /// 1-based line of the key.
    pub line: u32,
    /// 1-based column of the key.
    pub column: u32,
    /// Why it was not carried over, or what changed.
    pub reason: String,
}

impl Note {
    fn new(key: &str, (line, column): (u32, u32), reason: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            line,
            column,
            reason: reason.into(),
        }
    }
}

/// The result of a migration.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    /// The v3 static configuration.
    pub config: Node,
    /// v1 settings that are not in `config`, each with the reason.
    pub dropped: Vec<Note>,
    /// v1 settings carried over with a change in name or behaviour.
    pub changed: Vec<Note>,
}

/// Output format of the migrated configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (`traefik.yaml`).
    Yaml,
    /// TOML (`traefik.toml`).
    Toml,
}

/// A parsed v1 value with the position of its key.
#[derive(Debug, Clone)]
struct Item {
    value: V,
    at: (u32, u32),
}

#[derive(Debug, Clone)]
enum V {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Array(Vec<Item>),
    /// Entries in source order.
    Table(Vec<(String, Item)>),
}

type Table = [(String, Item)];

/// Top-level sections of the output, in the order Traefik's documentation uses.
const SECTIONS: [&str; 11] = [
    "global",
    "log",
    "accessLog",
    "entryPoints",
    "serversTransport",
    "providers",
    "api",
    "ping",
    "metrics",
    "hostResolver",
    "certificatesResolvers",
];

/// Migrates `text` and serialises the result with a header comment listing what was dropped.
///
/// # Errors
/// The TOML syntax error, with its position.
pub fn migrate_to(text: &str, format: Format) -> Result<(String, Migration), Problem> {
    let m = migrate(text)?;
    let body = match format {
        Format::Yaml => m.config.to_yaml(),
        Format::Toml => m.config.to_toml(),
    }
    .map_err(|e| Problem::error(e, (0, 0)))?;
    let mut out = String::from(
        "# Traefik v3 static configuration, migrated from a Traefik 1.x traefik.toml by kstep.\n",
    );
    if m.dropped.is_empty() {
        out.push_str("# Every v1 setting was carried over.\n");
    } else {
        out.push_str("# Not carried over (v1 key, line: why):\n");
        for n in &m.dropped {
            out.push_str(&format!(
                "#   {} (line {}): {}\n",
                one_line(&n.key),
                n.line,
                one_line(&n.reason)
            ));
        }
    }
    out.push_str(&body);
    Ok((out, m))
}

/// `text` with control characters and Unicode line separators escaped (`\n`, `\u{2028}`): a
/// key or a value quoted in a comment must not end the comment and turn the rest of it into
/// configuration (nor put in a comment what TOML forbids there).
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Migrates a Traefik 1.x `traefik.toml`.
///
/// # Errors
/// The TOML syntax error, with its position.
pub fn migrate(text: &str) -> Result<Migration, Problem> {
    let root = parse(text)?;
    let mut m = Migrator::default();
    m.run(&root);
    let mut config = Node::map();
    for section in SECTIONS {
        if let Some(node) = m.out.get(section) {
            // An empty [api], [ping] or [accessLog] turns the feature on.
            if !node.is_empty_map() || matches!(section, "api" | "ping" | "accessLog") {
                config.set(section, node.clone());
            }
        }
    }
    m.dropped.sort_by_key(|n| (n.line, n.column));
    m.changed.sort_by_key(|n| (n.line, n.column));
    Ok(Migration {
        config,
        dropped: m.dropped,
        changed: m.changed,
    })
}

fn parse(text: &str) -> Result<Vec<(String, Item)>, Problem> {
    let table = DeTable::parse(text).map_err(|e| {
        let at = e.span().map_or((0, 0), |s| position(text, s.start));
        Problem::error(format!("not valid TOML: {}", e.message().trim()), at)
    })?;
    Ok(table_items(text, table.get_ref()))
}

fn table_items(text: &str, table: &DeTable<'_>) -> Vec<(String, Item)> {
    let mut entries: Vec<(usize, String, Item)> = table
        .iter()
        .map(|(k, v)| {
            let start = k.span().start;
            (
                start,
                k.get_ref().to_string(),
                Item {
                    value: value(text, v),
                    at: position(text, start),
                },
            )
        })
        .collect();
    // The parser's map is sorted by key; the source order reads better in notes and output.
    entries.sort_by_key(|(start, _, _)| *start);
    entries.into_iter().map(|(_, k, i)| (k, i)).collect()
}

fn value(text: &str, v: &Spanned<DeValue<'_>>) -> V {
    match v.get_ref() {
        DeValue::String(s) => V::Str(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map_or_else(|_| V::Str(i.to_string()), V::Int),
        DeValue::Float(f) => f
            .as_str()
            .replace('_', "")
            .parse()
            .map_or_else(|_| V::Str(f.to_string()), V::Float),
        DeValue::Boolean(b) => V::Bool(*b),
        DeValue::Datetime(d) => V::Str(d.to_string()),
        DeValue::Array(a) => V::Array(
            a.iter()
                .map(|item| Item {
                    value: value(text, item),
                    at: position(text, item.span().start),
                })
                .collect(),
        ),
        DeValue::Table(t) => V::Table(table_items(text, t)),
    }
}

fn to_node(v: &V) -> Node {
    match v {
        V::Str(s) => Node::Str(s.clone()),
        V::Int(i) => Node::Int(*i),
        V::Float(f) => Node::Float(*f),
        V::Bool(b) => Node::Bool(*b),
        V::Array(items) => Node::Seq(items.iter().map(|i| to_node(&i.value)).collect()),
        V::Table(entries) => Node::Map(
            entries
                .iter()
                .map(|(k, i)| (k.clone(), to_node(&i.value)))
                .collect(),
        ),
    }
}

fn lower(key: &str) -> String {
    key.to_ascii_lowercase()
}

fn get<'a>(table: &'a Table, key: &str) -> Option<&'a Item> {
    table
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, i)| i)
}

fn as_str(item: &Item) -> Option<&str> {
    match &item.value {
        V::Str(s) => Some(s),
        _ => None,
    }
}

const DYNAMIC: &str = "dynamic configuration in Traefik v3 (routers, services, middlewares in a \
                       file-provider file or in Kubernetes objects), not static configuration";

/// An entry point: v1 name, v3 name, its table.
#[derive(Clone)]
struct EntryPoint {
    v1: String,
    v3: String,
    at: (u32, u32),
    table: Vec<(String, Item)>,
}

#[derive(Default)]
struct Migrator {
    out: Node,
    dropped: Vec<Note>,
    changed: Vec<Note>,
    entry_points: Vec<EntryPoint>,
}

impl Migrator {
    fn drop(&mut self, key: &str, at: (u32, u32), reason: impl Into<String>) {
        self.dropped.push(Note::new(key, at, reason));
    }

    fn change(&mut self, key: &str, at: (u32, u32), reason: impl Into<String>) {
        self.changed.push(Note::new(key, at, reason));
    }

    /// Sets `path` (dotted, v3) to a copy of `item`.
    fn put(&mut self, path: &str, item: &Item) {
        self.put_node(path, to_node(&item.value));
    }

    fn put_node(&mut self, path: &str, node: Node) {
        let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
        let target = if parent.is_empty() {
            &mut self.out
        } else {
            self.out.path_mut(parent)
        };
        target.set(key, node);
    }

    /// The v3 name of v1 entry point `name`, if it is defined.
    fn ep(&self, name: &str) -> Option<String> {
        self.entry_points
            .iter()
            .find(|e| e.v1.eq_ignore_ascii_case(name))
            .map(|e| e.v3.clone())
    }

    /// Copies the keys of `table` listed in `fields` (v1 lower-case → v3 path under `dest`);
    /// drops the others as unknown.
    fn fields(&mut self, prefix: &str, table: &Table, dest: &str, fields: &[(&str, &str)]) {
        for (k, item) in table {
            let key = format!("{prefix}.{k}");
            match fields.iter().find(|(v1, _)| *v1 == lower(k)) {
                Some((_, v3)) => self.put(&format!("{dest}.{v3}"), item),
                None => self.drop(
                    &key,
                    item.at,
                    format!("not a Traefik 1.7 setting of [{prefix}] (check the spelling)"),
                ),
            }
        }
    }

    fn expect_table<'a>(&mut self, key: &str, item: &'a Item) -> Option<&'a Table> {
        match &item.value {
            V::Table(t) => Some(t),
            _ => {
                self.drop(key, item.at, "expected a table ([section]) here");
                None
            }
        }
    }

    fn run(&mut self, root: &Table) {
        self.collect_entry_points(root);
        // In v1 order, whatever section mentions them first.
        let names: Vec<String> = self.entry_points.iter().map(|e| e.v3.clone()).collect();
        for name in names {
            self.out.path_mut(&format!("entryPoints.{name}"));
        }
        for (k, item) in root {
            self.top_level(k, item, root);
        }
        self.entry_points_out(root);
        self.tidy_entry_points();
    }

    /// Entry point keys in the order of Traefik's documentation.
    fn tidy_entry_points(&mut self) {
        const ORDER: [&str; 6] = [
            "address",
            "asDefault",
            "proxyProtocol",
            "forwardedHeaders",
            "transport",
            "http",
        ];
        let Some(Node::Map(eps)) = self.out.get("entryPoints").cloned() else {
            return;
        };
        let mut tidy = Node::map();
        for (name, ep) in eps {
            let Node::Map(mut entries) = ep else {
                tidy.set(&name, ep);
                continue;
            };
            entries.sort_by_key(|(k, _)| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
            tidy.set(&name, Node::Map(entries));
        }
        self.out.set("entryPoints", tidy);
    }

    /// Names the entry points first: sections refer to them by name, and v3 has conventional
    /// names (`web`, `websecure`, `traefik`) that the rest of kstep and Traefik's docs use.
    fn collect_entry_points(&mut self, root: &Table) {
        let Some(V::Table(eps)) = get(root, "entryPoints").map(|i| &i.value) else {
            return;
        };
        let api_ep = get(root, "api")
            .and_then(|a| match &a.value {
                V::Table(t) => get(t, "entryPoint").and_then(as_str),
                _ => None,
            })
            .unwrap_or("traefik")
            .to_owned();
        let taken = |name: &str| eps.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        for (name, item) in eps {
            let conventional = match lower(name).as_str() {
                "http" => Some("web"),
                "https" => Some("websecure"),
                n if n == lower(&api_ep) => Some("traefik"),
                _ => None,
            };
            let v3 = match conventional {
                Some(c) if !taken(c) => c.to_owned(),
                _ => name.clone(),
            };
            let table = match &item.value {
                V::Table(t) => t.clone(),
                _ => Vec::new(),
            };
            self.entry_points.push(EntryPoint {
                v1: name.clone(),
                v3,
                at: item.at,
                table,
            });
        }
    }

    fn top_level(&mut self, k: &str, item: &Item, root: &Table) {
        let at = item.at;
        match lower(k).as_str() {
            // Handled with the entry points.
            "entrypoints" | "defaultentrypoints" | "gracetimeout" | "idletimeout" | "lifecycle"
            | "respondingtimeouts" => {}
            "loglevel" => {
                let level = as_str(item).map(str::to_ascii_uppercase);
                match level.as_deref() {
                    Some(l @ ("DEBUG" | "INFO" | "WARN" | "ERROR" | "FATAL" | "PANIC")) => {
                        self.put_node("log.level", l.into());
                    }
                    _ => self.drop(
                        k,
                        at,
                        "not a log level (DEBUG, INFO, WARN, ERROR, FATAL, PANIC)",
                    ),
                }
            }
            "debug" => {
                if matches!(item.value, V::Bool(true)) {
                    if get(root, "logLevel").is_some() {
                        self.drop(k, at, "logLevel is also set; v3 has only log.level");
                    } else {
                        self.put_node("log.level", "DEBUG".into());
                        self.change(k, at, "v3 has no debug switch: log.level DEBUG");
                    }
                }
            }
            "checknewversion" => self.put("global.checkNewVersion", item),
            "sendanonymoususage" => self.put("global.sendAnonymousUsage", item),
            "insecureskipverify" => self.put("serversTransport.insecureSkipVerify", item),
            "rootcas" => self.put("serversTransport.rootCAs", item),
            "maxidleconnsperhost" => self.put("serversTransport.maxIdleConnsPerHost", item),
            "providersthrottleduration" => {
                self.put("providers.providersThrottleDuration", item);
            }
            "forwardingtimeouts" => {
                if let Some(t) = self.expect_table(k, item) {
                    self.fields(
                        k,
                        t,
                        "serversTransport.forwardingTimeouts",
                        &[
                            ("dialtimeout", "dialTimeout"),
                            ("responseheadertimeout", "responseHeaderTimeout"),
                            ("idleconntimeout", "idleConnTimeout"),
                        ],
                    );
                }
            }
            "traefiklogsfile" => {
                self.put("log.filePath", item);
                self.change(k, at, "log.filePath");
            }
            "accesslogsfile" => {
                self.put("accessLog.filePath", item);
                self.change(k, at, "accessLog.filePath");
            }
            "traefiklog" => {
                if let Some(t) = self.expect_table(k, item) {
                    self.fields(
                        k,
                        t,
                        "log",
                        &[("filepath", "filePath"), ("format", "format")],
                    );
                }
            }
            "accesslog" => self.access_log(k, item),
            "api" => self.api(k, item),
            "ping" => {
                self.out.entry("ping");
                if let Some(t) = self.expect_table(k, item) {
                    for (pk, pi) in t {
                        let key = format!("{k}.{pk}");
                        if lower(pk) == "entrypoint" {
                            self.ep_ref("ping.entryPoint", &key, pi);
                        } else {
                            self.drop(&key, pi.at, "not a Traefik 1.7 setting of [ping]");
                        }
                    }
                }
            }
            "metrics" => self.metrics(k, item),
            "acme" => self.acme(k, item),
            "kubernetes" => self.kubernetes(k, item),
            "file" => self.file(k, item),
            "docker" => self.docker(k, item),
            "hostresolver" => {
                if let Some(t) = self.expect_table(k, item) {
                    self.fields(
                        k,
                        t,
                        "hostResolver",
                        &[
                            ("cnameflattening", "cnameFlattening"),
                            ("resolvconfig", "resolvConfig"),
                            ("resolvdepth", "resolvDepth"),
                        ],
                    );
                }
            }
            "backends" | "frontends" | "tls" => self.drop(k, at, DYNAMIC),
            "retry" => self.drop(
                k,
                at,
                "v3 retries with the `retry` middleware (dynamic configuration), per router",
            ),
            "healthcheck" => self.drop(
                k,
                at,
                "v3 health checks are set per service (loadBalancer.healthCheck, or the \
                 Kubernetes readiness of the backends)",
            ),
            "tracing" => self.drop(
                k,
                at,
                "v3 traces with OpenTelemetry only (tracing.otlp); the v1 backends (Jaeger, \
                 Zipkin, Datadog) are gone",
            ),
            "web" => self.drop(k, at, "[web] was deprecated in 1.x and removed: see [api]"),
            "rest" => self.drop(
                k,
                at,
                "the REST provider's payload is v3 dynamic configuration now; enable \
                 providers.rest explicitly if you still push configuration",
            ),
            "constraints" => self.drop(
                k,
                at,
                "v3 constraints are per provider, as an expression (providers.docker.constraints…)",
            ),
            "keeptrailingslash" => self.drop(k, at, "v3 never adds or strips a trailing slash"),
            "allowminweightzero" => self.drop(k, at, "removed in Traefik 2"),
            "consul" | "consulcatalog" | "etcd" | "zookeeper" | "boltdb" | "marathon" | "mesos"
            | "eureka" | "ecs" | "rancher" | "dynamodb" | "servicefabric" => self.drop(
                k,
                at,
                "provider not translated by kstep (removed in v2/v3, or its keys and options \
                 changed): configure it from the v3 documentation",
            ),
            _ => self.drop(k, at, "not a Traefik 1.7 setting (check the spelling)"),
        }
    }

    /// Sets `dest` to the v3 name of the entry point `item` names.
    fn ep_ref(&mut self, dest: &str, key: &str, item: &Item) {
        let Some(name) = as_str(item) else {
            self.drop(key, item.at, "expected an entry point name");
            return;
        };
        match self.ep(name) {
            Some(v3) => {
                if v3 != name {
                    self.change(
                        key,
                        item.at,
                        format!("entry point `{name}` is `{v3}` in v3"),
                    );
                }
                self.put_node(dest, v3.into());
            }
            // v1 created `traefik` (:8080) implicitly; v3 does too for ping and metrics.
            None if name.eq_ignore_ascii_case("traefik") => self.put_node(dest, "traefik".into()),
            None => self.drop(key, item.at, format!("entry point `{name}` is not defined")),
        }
    }

    fn access_log(&mut self, k: &str, item: &Item) {
        self.out.entry("accessLog");
        let Some(t) = self.expect_table(k, item) else {
            return;
        };
        for (ak, ai) in t {
            let key = format!("{k}.{ak}");
            match lower(ak).as_str() {
                "filepath" => self.put("accessLog.filePath", ai),
                "format" => self.put("accessLog.format", ai),
                "bufferingsize" => self.put("accessLog.bufferingSize", ai),
                "filters" => {
                    if let Some(ft) = self.expect_table(&key, ai) {
                        self.fields(
                            &key,
                            ft,
                            "accessLog.filters",
                            &[
                                ("statuscodes", "statusCodes"),
                                ("retryattempts", "retryAttempts"),
                                ("minduration", "minDuration"),
                            ],
                        );
                    }
                }
                // Same shape in v3 (defaultMode, names, headers.{defaultMode, names}).
                "fields" => self.put("accessLog.fields", ai),
                _ => self.drop(&key, ai.at, "not a Traefik 1.7 setting of [accessLog]"),
            }
        }
    }

    fn api(&mut self, k: &str, item: &Item) {
        let Some(t) = self.expect_table(k, item) else {
            return;
        };
        self.out.entry("api");
        if get(t, "dashboard").is_none() {
            self.put_node("api.dashboard", true.into());
            self.change(
                k,
                item.at,
                "v1 turned the dashboard on by default: api.dashboard true",
            );
        }
        for (ak, ai) in t {
            let key = format!("{k}.{ak}");
            match lower(ak).as_str() {
                "dashboard" => self.put("api.dashboard", ai),
                "debug" => self.put("api.debug", ai),
                "entrypoint" => self.drop(
                    &key,
                    ai.at,
                    "v1 served the API and dashboard unauthenticated on this entry point; the \
                     v3 equivalent, api.insecure, does the same on the `traefik` entry point and \
                     kstep does not emit it. Reach the dashboard through a router to the \
                     service api@internal behind authentication (`kstep traefik render` with \
                     dashboard.host and dashboard.basicAuthSecret does this)",
                ),
                "statistics" => self.drop(&key, ai.at, "removed in Traefik 2"),
                "middlewares" => self.drop(&key, ai.at, DYNAMIC),
                _ => self.drop(&key, ai.at, "not a Traefik 1.7 setting of [api]"),
            }
        }
    }

    fn metrics(&mut self, k: &str, item: &Item) {
        let Some(t) = self.expect_table(k, item) else {
            return;
        };
        for (mk, mi) in t {
            let key = format!("{k}.{mk}");
            let Some(mt) = self.expect_table(&key, mi) else {
                continue;
            };
            match lower(mk).as_str() {
                "prometheus" => {
                    self.out.path_mut("metrics.prometheus");
                    for (pk, pi) in mt {
                        let pkey = format!("{key}.{pk}");
                        match lower(pk).as_str() {
                            "entrypoint" => self.ep_ref("metrics.prometheus.entryPoint", &pkey, pi),
                            "buckets" => self.put("metrics.prometheus.buckets", pi),
                            _ => self.drop(
                                &pkey,
                                pi.at,
                                "not a Traefik 1.7 setting of [metrics.prometheus]",
                            ),
                        }
                    }
                }
                "datadog" | "statsd" => {
                    let dest = if lower(mk) == "datadog" {
                        "metrics.datadog"
                    } else {
                        "metrics.statsD"
                    };
                    self.out.path_mut(dest);
                    self.fields(
                        &key,
                        mt,
                        dest,
                        &[("address", "address"), ("pushinterval", "pushInterval")],
                    );
                }
                "influxdb" => self.drop(
                    &key,
                    mi.at,
                    "Traefik v3 removed InfluxDB v1 metrics; use metrics.influxDB2 or metrics.otlp",
                ),
                _ => self.drop(&key, mi.at, "not a Traefik 1.7 metrics backend"),
            }
        }
    }

    fn acme(&mut self, k: &str, item: &Item) {
        let Some(t) = self.expect_table(k, item) else {
            return;
        };
        let lets_encrypt = get(t, "caServer")
            .and_then(as_str)
            .is_none_or(|ca| ca.contains("letsencrypt.org"));
        let resolver = if lets_encrypt { "letsencrypt" } else { "acme" };
        let base = format!("certificatesResolvers.{resolver}.acme");
        self.out.path_mut(&base);
        self.change(
            k,
            item.at,
            format!(
                "certificatesResolvers.{resolver}: v3 names its ACME resolvers; routers (or an \
                 entry point's http.tls.certResolver) refer to it"
            ),
        );
        let mut challenge = false;
        for (ak, ai) in t {
            let key = format!("{k}.{ak}");
            match lower(ak).as_str() {
                "email" => self.put(&format!("{base}.email"), ai),
                "caserver" => self.put(&format!("{base}.caServer"), ai),
                "keytype" => self.put(&format!("{base}.keyType"), ai),
                "storage" => {
                    self.put(&format!("{base}.storage"), ai);
                    self.change(
                        &key,
                        ai.at,
                        "v3 does not read the acme.json that Traefik 1.x wrote (another layout): \
                         convert it with traefik-migration-tool (`acme` command) or start from \
                         an empty file and let Traefik request the certificates again (mind \
                         Let's Encrypt's rate limits); the file must be mode 600",
                    );
                }
                "entrypoint" => {
                    let Some(name) = as_str(ai) else {
                        self.drop(&key, ai.at, "expected an entry point name");
                        continue;
                    };
                    match self.ep(name) {
                        Some(v3) => {
                            self.put_node(
                                &format!("entryPoints.{v3}.http.tls.certResolver"),
                                resolver.into(),
                            );
                            self.change(
                                &key,
                                ai.at,
                                format!(
                                    "entryPoints.{v3}.http.tls.certResolver: every router on \
                                     `{v3}` gets its certificate from `{resolver}`"
                                ),
                            );
                        }
                        None => {
                            self.drop(&key, ai.at, format!("entry point `{name}` is not defined"))
                        }
                    }
                }
                "onhostrule" => self.change(
                    &key,
                    ai.at,
                    "no such switch in v3: routers that use the resolver get certificates for \
                     the domains of their Host rules (or their tls.domains)",
                ),
                "ondemand" => self.drop(
                    &key,
                    ai.at,
                    "removed in Traefik 2 (certificates requested during the TLS handshake let \
                     any client trigger requests to the CA)",
                ),
                "acmelogging" => self.drop(&key, ai.at, "v3 logs ACME at the configured log level"),
                "httpchallenge" => {
                    challenge = true;
                    self.out.path_mut(&format!("{base}.httpChallenge"));
                    if let Some(ct) = self.expect_table(&key, ai) {
                        for (ck, ci) in ct {
                            let ckey = format!("{key}.{ck}");
                            if lower(ck) == "entrypoint" {
                                self.ep_ref(&format!("{base}.httpChallenge.entryPoint"), &ckey, ci);
                            } else {
                                self.drop(
                                    &ckey,
                                    ci.at,
                                    "not a Traefik 1.7 setting of [acme.httpChallenge]",
                                );
                            }
                        }
                    }
                }
                "tlschallenge" => {
                    challenge = true;
                    self.out.path_mut(&format!("{base}.tlsChallenge"));
                    if let Some(ct) = self.expect_table(&key, ai) {
                        for (ck, ci) in ct {
                            self.drop(
                                &format!("{key}.{ck}"),
                                ci.at,
                                "not a Traefik 1.7 setting of [acme.tlsChallenge]",
                            );
                        }
                    }
                }
                "dnschallenge" => {
                    challenge = true;
                    self.out.path_mut(&format!("{base}.dnsChallenge"));
                    if let Some(ct) = self.expect_table(&key, ai) {
                        for (ck, ci) in ct {
                            let ckey = format!("{key}.{ck}");
                            match lower(ck).as_str() {
                                "provider" => {
                                    self.put(&format!("{base}.dnsChallenge.provider"), ci)
                                }
                                "resolvers" => {
                                    self.put(&format!("{base}.dnsChallenge.resolvers"), ci)
                                }
                                "delaybeforecheck" => self.dns_delay(&base, &ckey, ci),
                                "disablepropagationcheck" => {
                                    self.put(
                                        &format!("{base}.dnsChallenge.propagation.disableChecks"),
                                        ci,
                                    );
                                    self.change(
                                        &ckey,
                                        ci.at,
                                        "dnsChallenge.propagation.disableChecks",
                                    );
                                }
                                _ => self.drop(
                                    &ckey,
                                    ci.at,
                                    "not a Traefik 1.7 setting of [acme.dnsChallenge]",
                                ),
                            }
                        }
                    }
                }
                // Before 1.5, the DNS challenge was configured at the top of [acme].
                "dnsprovider" => {
                    challenge = true;
                    self.put(&format!("{base}.dnsChallenge.provider"), ai);
                    self.change(&key, ai.at, "dnsChallenge.provider");
                }
                "delaydontcheckdns" => self.dns_delay(&base, &key, ai),
                "domains" => self.acme_domains(&key, ai, t),
                _ => self.drop(&key, ai.at, "not a Traefik 1.7 setting of [acme]"),
            }
        }
        if !challenge {
            self.drop(
                k,
                item.at,
                "no challenge configured: v3 needs one of httpChallenge (entryPoint web), \
                 tlsChallenge or dnsChallenge",
            );
        }
    }

    fn dns_delay(&mut self, base: &str, key: &str, item: &Item) {
        // A bare number was seconds in v1; v3 durations without a unit are seconds too.
        self.put(
            &format!("{base}.dnsChallenge.propagation.delayBeforeChecks"),
            item,
        );
        self.change(key, item.at, "dnsChallenge.propagation.delayBeforeChecks");
    }

    /// `[[acme.domains]]` → the certificate resolver's entry point's `http.tls.domains`.
    fn acme_domains(&mut self, key: &str, item: &Item, acme: &Table) {
        let ep = get(acme, "entryPoint")
            .and_then(as_str)
            .and_then(|n| self.ep(n));
        let Some(ep) = ep else {
            self.drop(
                key,
                item.at,
                "v3 attaches domains to routers or to an entry point's http.tls; [acme] names no \
                 entry point to attach them to",
            );
            return;
        };
        let V::Array(domains) = &item.value else {
            self.drop(key, item.at, "expected [[acme.domains]] entries");
            return;
        };
        let mut out = Vec::new();
        for d in domains {
            let V::Table(dt) = &d.value else { continue };
            let mut node = Node::map();
            for (dk, di) in dt {
                match lower(dk).as_str() {
                    "main" => node.set("main", to_node(&di.value)),
                    "sans" => node.set("sans", to_node(&di.value)),
                    _ => self.drop(
                        &format!("{key}.{dk}"),
                        di.at,
                        "not a Traefik 1.7 setting of [[acme.domains]]",
                    ),
                }
            }
            out.push(node);
        }
        self.put_node(
            &format!("entryPoints.{ep}.http.tls.domains"),
            Node::Seq(out),
        );
        self.change(
            key,
            item.at,
            format!("entryPoints.{ep}.http.tls.domains: requested for the routers on `{ep}`"),
        );
    }

    fn kubernetes(&mut self, k: &str, item: &Item) {
        let Some(t) = self.expect_table(k, item) else {
            return;
        };
        let dest = "providers.kubernetesIngress";
        self.out.path_mut(dest);
        self.change(
            k,
            item.at,
            "providers.kubernetesIngress: v3 reads networking.k8s.io/v1 Ingresses and \
             IngressClasses, and none of the v1 annotations (traefik.frontend.*, \
             traefik.ingress.kubernetes.io/redirect-*…): use \
             traefik.ingress.kubernetes.io/router.* annotations and Middlewares",
        );
        for (kk, ki) in t {
            let key = format!("{k}.{kk}");
            let v3 = match lower(kk).as_str() {
                "endpoint" => "endpoint",
                "token" => "token",
                "certauthfilepath" => "certAuthFilePath",
                "namespaces" => "namespaces",
                "labelselector" => "labelSelector",
                "ingressclass" => "ingressClass",
                "throttleduration" => "throttleDuration",
                "ingressendpoint" => {
                    if let Some(et) = self.expect_table(&key, ki) {
                        self.fields(
                            &key,
                            et,
                            &format!("{dest}.ingressEndpoint"),
                            &[
                                ("ip", "ip"),
                                ("hostname", "hostname"),
                                ("publishedservice", "publishedService"),
                            ],
                        );
                    }
                    continue;
                }
                "disablepasshostheaders" => {
                    self.drop(
                        &key,
                        ki.at,
                        "v3 sets passHostHeader per service (Ingress annotation \
                         traefik.ingress.kubernetes.io/service.passhostheader)",
                    );
                    continue;
                }
                "enablepasstlscert" => {
                    self.drop(&key, ki.at, "v3 uses the passTLSClientCert middleware");
                    continue;
                }
                "watch" => {
                    self.drop(&key, ki.at, "v3 always watches");
                    continue;
                }
                "filename" | "templateversion" => {
                    self.drop(
                        &key,
                        ki.at,
                        "configuration templates were removed in Traefik 2",
                    );
                    continue;
                }
                "constraints" => {
                    self.drop(&key, ki.at, "no constraints for the v3 Ingress provider; use labelSelector or ingressClass");
                    continue;
                }
                _ => {
                    self.drop(&key, ki.at, "not a Traefik 1.7 setting of [kubernetes]");
                    continue;
                }
            };
            self.put(&format!("{dest}.{v3}"), ki);
        }
    }

    fn file(&mut self, k: &str, item: &Item) {
        let Some(t) = self.expect_table(k, item) else {
            return;
        };
        self.out.path_mut("providers.file");
        let mut source = false;
        for (fk, fi) in t {
            let key = format!("{k}.{fk}");
            match lower(fk).as_str() {
                "filename" => {
                    source = true;
                    self.put("providers.file.filename", fi);
                    self.change(&key, fi.at, "the file's content must be rewritten as v3 dynamic configuration (routers, services, middlewares)");
                }
                "directory" => {
                    source = true;
                    self.put("providers.file.directory", fi);
                    self.change(&key, fi.at, "the files' content must be rewritten as v3 dynamic configuration (routers, services, middlewares)");
                }
                "watch" => self.put("providers.file.watch", fi),
                "debugloggeneratedtemplate" => {
                    self.put("providers.file.debugLogGeneratedTemplate", fi)
                }
                _ => self.drop(&key, fi.at, "not a Traefik 1.7 setting of [file]"),
            }
        }
        if !source {
            self.drop(
                k,
                item.at,
                "v1 read backends and frontends from traefik.toml itself; v3 keeps dynamic \
                 configuration out of the static file: set providers.file.filename to a file of \
                 v3 routers and services",
            );
        }
    }

    fn docker(&mut self, k: &str, item: &Item) {
        let Some(t) = self.expect_table(k, item) else {
            return;
        };
        let swarm = get(t, "swarmMode").is_some_and(|i| matches!(i.value, V::Bool(true)));
        let dest = if swarm {
            "providers.swarm"
        } else {
            "providers.docker"
        };
        self.out.path_mut(dest);
        for (dk, di) in t {
            let key = format!("{k}.{dk}");
            let v3 = match lower(dk).as_str() {
                "endpoint" => "endpoint",
                "watch" => "watch",
                "exposedbydefault" => "exposedByDefault",
                "network" => "network",
                "usebindportip" => "useBindPortIP",
                "tls" => "tls",
                "swarmmode" => {
                    if swarm {
                        self.change(
                            &key,
                            di.at,
                            "Swarm is a provider of its own in v3: providers.swarm",
                        );
                    }
                    continue;
                }
                "swarmmoderefreshseconds" => {
                    if swarm {
                        self.put(&format!("{dest}.refreshSeconds"), di);
                    } else {
                        self.drop(&key, di.at, "only used with swarmMode");
                    }
                    continue;
                }
                "domain" => {
                    if let Some(domain) = as_str(di) {
                        self.put_node(
                            &format!("{dest}.defaultRule"),
                            format!("Host(`{{{{ normalize .Name }}}}.{domain}`)").into(),
                        );
                        self.change(&key, di.at, "v3 derives router rules from defaultRule");
                    }
                    continue;
                }
                _ => {
                    self.drop(
                        &key,
                        di.at,
                        "not translated by kstep (see the v3 Docker provider options)",
                    );
                    continue;
                }
            };
            self.put(&format!("{dest}.{v3}"), di);
        }
    }

    /// Entry points, with the global timeouts that v3 sets per entry point.
    fn entry_points_out(&mut self, root: &Table) {
        let eps = self.entry_points.clone();
        for ep in &eps {
            self.entry_point(ep, &eps);
        }
        if let Some(list) = get(root, "defaultEntryPoints") {
            match &list.value {
                V::Array(names) => {
                    for n in names {
                        let name = as_str(n).unwrap_or_default();
                        match self.ep(name) {
                            Some(v3) => {
                                self.put_node(&format!("entryPoints.{v3}.asDefault"), true.into())
                            }
                            None => self.drop(
                                "defaultEntryPoints",
                                n.at,
                                format!("entry point `{name}` is not defined"),
                            ),
                        }
                    }
                    self.change(
                        "defaultEntryPoints",
                        list.at,
                        "asDefault: true on each listed entry point (routers without entry \
                         points use those)",
                    );
                }
                _ => self.drop(
                    "defaultEntryPoints",
                    list.at,
                    "expected a list of entry point names",
                ),
            }
        }
        // Global v1 timeouts → every entry point's transport.
        let mut per_ep: Vec<(String, &Item, String)> = Vec::new();
        for (k, item) in root {
            match lower(k).as_str() {
                "gracetimeout" => {
                    per_ep.push((k.clone(), item, "transport.lifeCycle.graceTimeOut".into()))
                }
                "idletimeout" => per_ep.push((
                    k.clone(),
                    item,
                    "transport.respondingTimeouts.idleTimeout".into(),
                )),
                "lifecycle" | "respondingtimeouts" => {
                    let Some(t) = self.expect_table(k, item) else {
                        continue;
                    };
                    let section = if lower(k) == "lifecycle" {
                        "transport.lifeCycle"
                    } else {
                        "transport.respondingTimeouts"
                    };
                    for (tk, ti) in t {
                        let v3 = match lower(tk).as_str() {
                            "requestacceptgracetimeout" => "requestAcceptGraceTimeout",
                            "gracetimeout" => "graceTimeOut",
                            "readtimeout" => "readTimeout",
                            "writetimeout" => "writeTimeout",
                            "idletimeout" => "idleTimeout",
                            _ => {
                                self.drop(
                                    &format!("{k}.{tk}"),
                                    ti.at,
                                    format!("not a Traefik 1.7 setting of [{k}]"),
                                );
                                continue;
                            }
                        };
                        per_ep.push((format!("{k}.{tk}"), ti, format!("{section}.{v3}")));
                    }
                }
                _ => {}
            }
        }
        for (key, item, path) in per_ep {
            if self.entry_points.is_empty() {
                self.drop(&key, item.at, "no entry points defined to carry it");
                continue;
            }
            let names: Vec<String> = self.entry_points.iter().map(|e| e.v3.clone()).collect();
            for name in &names {
                self.put(&format!("entryPoints.{name}.{path}"), item);
            }
            self.change(
                &key,
                item.at,
                format!("v3 sets it per entry point: entryPoints.*.{path}"),
            );
        }
    }

    fn entry_point(&mut self, ep: &EntryPoint, all: &[EntryPoint]) {
        let base = format!("entryPoints.{}", ep.v3);
        self.out.path_mut(&base);
        if ep.v3 != ep.v1 {
            self.change(
                &format!("entryPoints.{}", ep.v1),
                ep.at,
                format!(
                    "named `{}` in v3 (the conventional name; routers and Ingress annotations \
                     such as traefik.ingress.kubernetes.io/router.entrypoints refer to it)",
                    ep.v3
                ),
            );
        }
        let has_tls = |name: &str| {
            all.iter()
                .find(|e| e.v1.eq_ignore_ascii_case(name))
                .is_some_and(|e| get(&e.table, "tls").is_some())
        };
        for (k, item) in &ep.table {
            let key = format!("entryPoints.{}.{k}", ep.v1);
            match lower(k).as_str() {
                "address" => self.put(&format!("{base}.address"), item),
                "tls" => {
                    self.out.path_mut(&format!("{base}.http.tls"));
                    if let V::Table(t) = &item.value {
                        for (tk, ti) in t {
                            let reason = match lower(tk).as_str() {
                                "certificates" => {
                                    "v3 declares certificates in dynamic configuration (tls.certificates in a file-provider file) or as Kubernetes Secrets referenced by Ingress tls"
                                }
                                "minversion" | "ciphersuites" | "snistrict"
                                | "curvepreferences" => {
                                    "v3 sets TLS versions and ciphers in TLS options (dynamic configuration, tls.options.default)"
                                }
                                "clientca" => {
                                    "v3 sets client authentication in TLS options (tls.options.*.clientAuth)"
                                }
                                "defaultcertificate" => {
                                    "v3 sets the default certificate in a TLS store (tls.stores.default.defaultCertificate, dynamic configuration)"
                                }
                                _ => "not a Traefik 1.7 setting of [entryPoints.*.tls]",
                            };
                            self.drop(&format!("{key}.{tk}"), ti.at, reason);
                        }
                    }
                }
                "redirect" => {
                    let Some(t) = self.expect_table(&key, item) else {
                        continue;
                    };
                    let permanent =
                        get(t, "permanent").is_some_and(|p| matches!(p.value, V::Bool(true)));
                    for (rk, ri) in t {
                        let rkey = format!("{key}.{rk}");
                        match lower(rk).as_str() {
                            "entrypoint" => {
                                let Some(target) = as_str(ri) else { continue };
                                let Some(to) = self.ep(target) else {
                                    self.drop(
                                        &rkey,
                                        ri.at,
                                        format!("entry point `{target}` is not defined"),
                                    );
                                    continue;
                                };
                                let scheme = if has_tls(target) { "https" } else { "http" };
                                let mut redirect = Node::map();
                                redirect.set("to", to.as_str());
                                redirect.set("scheme", scheme);
                                redirect.set("permanent", permanent);
                                self.put_node(
                                    &format!("{base}.http.redirections.entryPoint"),
                                    redirect,
                                );
                                if !permanent {
                                    self.change(
                                        &rkey,
                                        ri.at,
                                        "kept temporary (302/307) as in v1, whose redirect was \
                                         not permanent unless `permanent = true`; set permanent: \
                                         true once HTTPS works for good",
                                    );
                                }
                            }
                            "permanent" => {}
                            "regex" | "replacement" => self.drop(
                                &rkey,
                                ri.at,
                                "v3 rewrites URLs with the redirectRegex middleware (dynamic \
                                 configuration), attached with entryPoints.*.http.middlewares",
                            ),
                            _ => self.drop(
                                &rkey,
                                ri.at,
                                "not a Traefik 1.7 setting of [entryPoints.*.redirect]",
                            ),
                        }
                    }
                }
                "auth" => self.drop(
                    &key,
                    item.at,
                    "v3 authenticates with the basicAuth, digestAuth and forwardAuth middlewares \
                     (dynamic configuration), attached with entryPoints.*.http.middlewares",
                ),
                "whitelist" | "whitelistsourcerange" => self.drop(
                    &key,
                    item.at,
                    "v3 filters client IPs with the ipAllowList middleware (dynamic configuration)",
                ),
                "compress" => self.drop(
                    &key,
                    item.at,
                    "v3 compresses with the compress middleware (dynamic configuration)",
                ),
                "proxyprotocol" | "forwardedheaders" => {
                    let v3 = if lower(k) == "proxyprotocol" {
                        "proxyProtocol"
                    } else {
                        "forwardedHeaders"
                    };
                    if let Some(t) = self.expect_table(&key, item) {
                        self.fields(
                            &key,
                            t,
                            &format!("{base}.{v3}"),
                            &[("trustedips", "trustedIPs"), ("insecure", "insecure")],
                        );
                    }
                }
                _ => self.drop(
                    &key,
                    item.at,
                    "not a Traefik 1.7 setting of [entryPoints.*]",
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The reference workflow's traefik.toml (shared/seed), verbatim; the integration tests
    /// (tests/all/traefik.rs) read the same file.
    const REFERENCE: &str = include_str!("../../../tests/fixtures/traefik/traefik.toml");

    fn keys(notes: &[Note]) -> Vec<&str> {
        notes.iter().map(|n| n.key.as_str()).collect()
    }

    #[test]
    fn reference_workflow() {
        let m = migrate(REFERENCE).unwrap();
        let c = &m.config;
        let s = |p: &str| c.at(p).and_then(Node::as_str).map(str::to_owned);
        assert_eq!(s("log.level").as_deref(), Some("INFO"));
        assert_eq!(
            c.at("serversTransport.insecureSkipVerify"),
            Some(&Node::Bool(true))
        );
        assert_eq!(s("entryPoints.web.address").as_deref(), Some(":80"));
        assert_eq!(c.at("entryPoints.web.asDefault"), Some(&Node::Bool(true)));
        assert_eq!(
            s("entryPoints.web.http.redirections.entryPoint.to").as_deref(),
            Some("websecure")
        );
        assert_eq!(
            s("entryPoints.web.http.redirections.entryPoint.scheme").as_deref(),
            Some("https")
        );
        assert_eq!(s("entryPoints.websecure.address").as_deref(), Some(":443"));
        assert_eq!(
            c.at("entryPoints.websecure.asDefault"),
            Some(&Node::Bool(true))
        );
        assert_eq!(
            s("entryPoints.websecure.http.tls.certResolver").as_deref(),
            Some("letsencrypt")
        );
        assert_eq!(s("entryPoints.traefik.address").as_deref(), Some(":8080"));
        assert_eq!(c.at("entryPoints.traefik.asDefault"), None);
        let acme = "certificatesResolvers.letsencrypt.acme";
        assert_eq!(
            s(&format!("{acme}.email")).as_deref(),
            Some("contact@cerenit.fr")
        );
        assert_eq!(
            s(&format!("{acme}.storage")).as_deref(),
            Some("/acme/acme.json")
        );
        assert_eq!(
            s(&format!("{acme}.httpChallenge.entryPoint")).as_deref(),
            Some("web")
        );
        assert_eq!(c.at("api.dashboard"), Some(&Node::Bool(true)));
        assert_eq!(c.at("api.debug"), Some(&Node::Bool(false)));
        assert_eq!(c.at("api.insecure"), None);
        assert!(c.at("providers.kubernetesIngress").unwrap().is_empty_map());
        // Exactly one v1 setting has no v3 equivalent kstep will emit.
        assert_eq!(keys(&m.dropped), ["api.entryPoint"], "{:#?}", m.dropped);
        assert_eq!(m.dropped[0].line, 27);
        assert!(m.dropped[0].reason.contains("api.insecure"));
        let changed = keys(&m.changed);
        for k in [
            "defaultEntryPoints",
            "entryPoints.http",
            "entryPoints.http.redirect.entryPoint",
            "acme.storage",
            "acme.onHostRule",
            "kubernetes",
        ] {
            assert!(changed.contains(&k), "{k} not in {changed:?}");
        }
        // The output order follows Traefik's documentation.
        let Node::Map(top) = c else { panic!() };
        let order: Vec<&str> = top.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            order,
            [
                "log",
                "entryPoints",
                "serversTransport",
                "providers",
                "api",
                "certificatesResolvers"
            ]
        );
        let Some(Node::Map(eps)) = c.get("entryPoints") else {
            panic!()
        };
        let names: Vec<&str> = eps.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["web", "websecure", "traefik"]);
        let Some(Node::Map(websecure)) = c.at("entryPoints.websecure") else {
            panic!()
        };
        let keys: Vec<&str> = websecure.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["address", "asDefault", "http"]);
    }

    #[test]
    fn both_output_formats_round_trip() {
        let (yaml, m) = migrate_to(REFERENCE, Format::Yaml).unwrap();
        assert!(yaml.starts_with("# Traefik v3 static configuration"));
        assert!(yaml.contains("#   api.entryPoint (line 27): "));
        let back: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        let direct: serde_json::Value = serde_json::from_str(&m.config.to_json().unwrap()).unwrap();
        assert_eq!(back, direct);
        let (toml_text, _) = migrate_to(REFERENCE, Format::Toml).unwrap();
        let back: serde_json::Value = toml::from_str::<serde_json::Value>(&toml_text).unwrap();
        assert_eq!(back, direct, "{toml_text}");
    }

    #[test]
    fn every_brief_table_row() {
        let m = migrate(
            r#"
debug = true
[entryPoints.http]
address = ":80"
[entryPoints.https]
address = ":443"
[entryPoints.https.tls]
minVersion = "VersionTLS12"
[[entryPoints.https.tls.certificates]]
certFile = "a.crt"
keyFile = "a.key"
[entryPoints.traefik]
address = ":8081"
[acme]
email = "a@b.example"
storage = "acme.json"
entryPoint = "https"
onDemand = true
caServer = "https://acme.example/dir"
[acme.dnsChallenge]
provider = "ovh"
delayBeforeCheck = 30
[[acme.domains]]
main = "example.com"
sans = ["www.example.com"]
[api]
[ping]
[kubernetes]
namespaces = ["a", "b"]
labelselector = "x=y"
ingressClass = "traefik"
[kubernetes.ingressEndpoint]
publishedService = "traefik/traefik-lb"
"#,
        )
        .unwrap();
        let c = &m.config;
        let s = |p: &str| c.at(p).and_then(Node::as_str).map(str::to_owned);
        assert_eq!(s("log.level").as_deref(), Some("DEBUG"));
        let acme = "certificatesResolvers.acme.acme";
        assert_eq!(
            s(&format!("{acme}.dnsChallenge.provider")).as_deref(),
            Some("ovh")
        );
        assert_eq!(
            c.at(&format!(
                "{acme}.dnsChallenge.propagation.delayBeforeChecks"
            )),
            Some(&Node::Int(30))
        );
        assert_eq!(
            s("entryPoints.websecure.http.tls.certResolver").as_deref(),
            Some("acme")
        );
        assert!(c.at("entryPoints.websecure.http.tls.domains").is_some());
        assert_eq!(c.at("api.dashboard"), Some(&Node::Bool(true)));
        assert!(c.at("ping").unwrap().is_empty_map());
        assert_eq!(
            s("providers.kubernetesIngress.ingressEndpoint.publishedService").as_deref(),
            Some("traefik/traefik-lb")
        );
        assert_eq!(
            s("providers.kubernetesIngress.labelSelector").as_deref(),
            Some("x=y")
        );
        // `traefik` is taken by a v1 entry point of that name: kept as is.
        assert_eq!(s("entryPoints.traefik.address").as_deref(), Some(":8081"));
        let dropped = keys(&m.dropped);
        for k in [
            "entryPoints.https.tls.minVersion",
            "entryPoints.https.tls.certificates",
            "acme.onDemand",
        ] {
            assert!(dropped.contains(&k), "{k} not in {dropped:?}");
        }
    }

    #[test]
    fn unknown_and_dynamic_keys_are_listed_with_positions() {
        let m = migrate(
            "logLevl = \"INFO\"\n[entryPoints.http]\naddress = \":80\"\ncompres = true\n[backends.b1.servers.s1]\nurl = \"http://x\"\n[entryPoints.http.auth.basic]\nusers = [\"a:b\"]\n",
        )
        .unwrap();
        let d: Vec<(&str, u32)> = m.dropped.iter().map(|n| (n.key.as_str(), n.line)).collect();
        assert_eq!(
            d,
            [
                ("logLevl", 1),
                ("entryPoints.http.compres", 4),
                ("backends", 5),
                ("entryPoints.http.auth", 7)
            ]
        );
        assert!(m.dropped[0].reason.contains("spelling"));
        assert!(m.dropped[2].reason.contains("dynamic configuration"));
        assert!(m.dropped[3].reason.contains("basicAuth"));
    }

    #[test]
    fn keys_match_without_case_and_timeouts_spread() {
        let m = migrate(
            "LogLevel = \"warn\"\ngraceTimeOut = \"5s\"\n[EntryPoints.Http]\nAddress = \":80\"\n[respondingTimeouts]\nreadTimeout = \"30s\"\n",
        )
        .unwrap();
        let c = &m.config;
        assert_eq!(c.at("log.level").and_then(Node::as_str), Some("WARN"));
        assert_eq!(
            c.at("entryPoints.web.address").and_then(Node::as_str),
            Some(":80")
        );
        assert_eq!(
            c.at("entryPoints.web.transport.lifeCycle.graceTimeOut")
                .and_then(Node::as_str),
            Some("5s")
        );
        assert_eq!(
            c.at("entryPoints.web.transport.respondingTimeouts.readTimeout")
                .and_then(Node::as_str),
            Some("30s")
        );
        assert!(m.dropped.is_empty(), "{:?}", m.dropped);
    }

    #[test]
    fn quoted_line_breaks_stay_inside_the_header_comment() {
        // Found by tests/properties.rs: an entry point name with a newline, quoted in a note,
        // ended the comment; the rest of the name became configuration (or invalid TOML).
        let text = "[ping]\nentryPoint = \"x\\napi:\\n  insecure: true\\r\\u2028\"\n\
                    [\"a\\nb\".c]\nd = 1\n";
        for format in [Format::Yaml, Format::Toml] {
            let (out, m) = migrate_to(text, format).unwrap();
            assert_eq!(m.dropped.len(), 2, "{:?}", m.dropped);
            assert!(
                out.contains("`x\\napi:\\n  insecure: true\\r\\u{2028}`"),
                "{out}"
            );
            let direct: serde_json::Value =
                serde_json::from_str(&m.config.to_json().unwrap()).unwrap();
            let back: serde_json::Value = match format {
                Format::Yaml => serde_saphyr::from_str(&out).unwrap(),
                Format::Toml => toml::from_str(&out).unwrap(),
            };
            assert_eq!(back, direct, "{out}");
        }
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = migrate("a = 1\n[b\n").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        assert!(e.message.starts_with("not valid TOML"), "{e:?}");
    }
}
