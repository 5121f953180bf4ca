//! Decoding: recognise each input, parse it, merge them as kubectl merges a colon-separated
//! `KUBECONFIG`, select the context and normalise it into a [`Connection`], checking what kubectl
//! would check and warning about what will not work in CI.
//!
//! Only the selected context, its cluster and its user are checked, as kubectl does: a broken
//! entry elsewhere in the file does not stop a job that does not use it.

use base64::Engine as _;

use crate::connection::{
    Auth, AuthProvider, BasicAuth, ClientCertificate, Connection, Decoded, Diagnostic, ExecPlugin,
    Failure, Form, Input, Material,
};
use crate::input::{self, Text};
use crate::model::{self, position};
use crate::pem::{self, Expect};

/// Longest name shown in a message; longer ones are more likely pasted secrets than names.
const MAX_SHOWN_NAME: usize = 128;

/// The ExecCredential versions client-go still accepts (v1alpha1 was removed in 1.24).
const EXEC_API_VERSIONS: &[&str] = &[
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
];

/// The fields of one piece of PEM material: inline data, or a file that stands for it.
struct Fields {
    data: &'static str,
    file: &'static str,
    expect: Expect,
}

const CERTIFICATE_AUTHORITY: Fields = Fields {
    data: "certificate-authority-data",
    file: "certificate-authority",
    expect: Expect::Certificates,
};

const CLIENT_CERTIFICATE: Fields = Fields {
    data: "client-certificate-data",
    file: "client-certificate",
    expect: Expect::Certificates,
};

const CLIENT_KEY: Fields = Fields {
    data: "client-key-data",
    file: "client-key",
    expect: Expect::PrivateKey,
};

/// One parsed input.
struct Parsed {
    /// How positions in this input are attributed.
    source: String,
    dir: Option<String>,
    file: model::File,
}

/// An entry found in input `input`.
struct Found<'a, T> {
    item: &'a T,
    input: usize,
}

/// Decodes `inputs` and selects `context` (or the current-context).
///
/// # Errors
/// Every problem found, each with the input and position it concerns.
pub fn decode(inputs: &[Input<'_>], context: Option<&str>) -> Result<Decoded, Failure> {
    let mut secrets = Vec::new();
    let fail = |diagnostics: Vec<Diagnostic>, secrets: Vec<String>| Failure {
        diagnostics,
        secrets,
    };
    if inputs.is_empty() {
        return Err(fail(
            vec![Diagnostic::error("no kubeconfig was given")],
            secrets,
        ));
    }
    let mut errors = Vec::new();
    let mut forms = Vec::new();
    let mut parsed = Vec::new();
    for input in inputs {
        let Text { form, text } = match input::recognise(input.data) {
            Ok(text) => text,
            Err(d) => {
                let (line, column) = (d.line, d.column);
                errors.push(d.at(Some(input.label), line, column));
                continue;
            }
        };
        let source = match form {
            Form::Base64OneLine | Form::Base64Wrapped => {
                // The decoded text is the kubeconfig: as secret as the value it came from.
                secrets.push(text.clone());
                format!("{} (base64-decoded)", input.label)
            }
            Form::Yaml | Form::Json => input.label.to_owned(),
        };
        match model::parse(&text) {
            Ok(file) => {
                collect_secrets(&file, &mut secrets);
                forms.push(form);
                parsed.push(Parsed {
                    source,
                    dir: input.dir.map(str::to_owned),
                    file,
                });
            }
            Err((line, column, message)) => {
                errors.push(Diagnostic::error(message).at(Some(&source), line, column));
            }
        }
    }
    if !errors.is_empty() {
        return Err(fail(errors, secrets));
    }
    let mut state = State {
        parsed: &parsed,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let connection = state.select(context);
    match connection {
        Some((connection, contexts, ca_fingerprints)) if state.errors.is_empty() => Ok(Decoded {
            forms,
            connection,
            contexts,
            ca_fingerprints,
            warnings: state.warnings,
            secrets,
        }),
        _ => Err(fail(state.errors, secrets)),
    }
}

/// Every credential in `file`, of every user: the host masks them all, not only the selected
/// user's, since any of them may end up in a message.
fn collect_secrets(file: &model::File, secrets: &mut Vec<String>) {
    let mut push = |value: &str| {
        let value = value.trim();
        if !value.is_empty() && !secrets.iter().any(|s| s == value) {
            secrets.push(value.to_owned());
        }
    };
    // A password in a server URL is refused, but the URL may still reach a message.
    for cluster in file.clusters.iter().flatten() {
        if let Some((user_info, _)) = cluster
            .cluster
            .as_ref()
            .and_then(|c| c.server.as_ref())
            .and_then(|s| split_user_info(s.value.trim()))
        {
            push(user_info);
            if let Some((_, password)) = user_info.split_once(':') {
                push(password);
            }
        }
    }
    for user in file.users.iter().flatten().filter_map(|u| u.user.as_ref()) {
        for text in [&user.token, &user.password].into_iter().flatten() {
            push(&text.value);
        }
        for data in [&user.client_key_data, &user.client_certificate_data]
            .into_iter()
            .flatten()
        {
            push(&data.value);
            if let Some(pem) = input::decode_base64(&data.value)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
            {
                push(&pem);
                // The PEM body alone, as a tool that strips the armour would show it.
                let body: String = pem
                    .lines()
                    .filter(|l| !l.starts_with("-----") && !l.contains(':'))
                    .collect();
                push(&body);
            }
        }
        if let Some(provider) = &user.auth_provider {
            for (_, value) in provider
                .config
                .iter()
                .flatten()
                .filter(|(k, _)| is_secret_name(k))
            {
                push(value);
            }
        }
        if let Some(exec) = &user.exec {
            for var in exec
                .env
                .iter()
                .flatten()
                .filter(|v| is_secret_name(&v.name))
            {
                push(&var.value);
            }
        }
    }
}

/// The end of the warning about credentials sent over a plain `http://` server URL. The host
/// recognises the warning by it and turns it into a refusal on commands that connect, unless
/// the user accepts the risk (`--insecure-plain-http`).
pub const PLAIN_HTTP: &str = "plain http://: credentials would cross the network in clear";

/// The user-info of a URL (`user:password` in `https://user:password@host/`) and the URL
/// without it, when it has one.
pub fn split_user_info(url: &str) -> Option<(&str, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (user_info, host) = rest[..authority_end].rsplit_once('@')?;
    Some((
        user_info,
        format!("{scheme}://{host}{}", &rest[authority_end..]),
    ))
}

/// Whether a setting's name says its value is a credential (`id-token`, `client-secret`,
/// `AWS_SECRET_ACCESS_KEY`). Exec environments and auth-provider settings mostly hold plain
/// values (`AWS_PROFILE=deploy`, a region): masking those would blank out ordinary words in
/// every message, so only credential-named ones are reported.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "passwd",
        "key",
        "credential",
        "auth",
    ]
    .iter()
    .any(|word| name.contains(word))
}

struct State<'a> {
    parsed: &'a [Parsed],
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

type Selected = (Connection, Vec<String>, Vec<String>);

/// The selected cluster's half of a [`Connection`], and the SHA-256 fingerprints of its CA.
struct Cluster {
    server: String,
    certificate_authority: Option<Material>,
    insecure: bool,
    tls_server_name: Option<String>,
    proxy_url: Option<String>,
    fingerprints: Vec<String>,
}

impl<'a> State<'a> {
    fn source(&self, input: usize) -> Option<&'a str> {
        self.parsed.get(input).map(|p| p.source.as_str())
    }

    /// `diagnostic` attributed to input `input`, at `text` when given.
    fn locate(
        &self,
        diagnostic: Diagnostic,
        input: usize,
        text: Option<&model::Text>,
    ) -> Diagnostic {
        let (line, column) = text.map_or((0, 0), |t| position(&t.referenced));
        diagnostic.at(self.source(input), line, column)
    }

    fn error_at(&mut self, input: usize, text: Option<&model::Text>, message: String) {
        let error = self.locate(Diagnostic::error(message), input, text);
        self.errors.push(error);
    }

    fn warn_at(&mut self, input: usize, text: Option<&model::Text>, message: String) {
        let warning = self.locate(Diagnostic::warning(message), input, text);
        self.warnings.push(warning);
    }

    /// `context C names WHAT R, which is not defined (WHATs: …)`, at the reference.
    fn undefined(
        &mut self,
        input: usize,
        context: &str,
        what: &str,
        reference: &model::Text,
        defined: &[String],
    ) {
        self.error_at(
            input,
            Some(reference),
            format!(
                "context {} names {what} {}, which is not defined ({what}s: {})",
                shown(context),
                shown(&reference.value),
                list_names(defined)
            ),
        );
    }

    /// kubectl's merge: the first input that defines a name wins. A name defined twice in the
    /// same input is an error (client-go refuses it too).
    fn merge<T>(
        &mut self,
        what: &str,
        list: impl Fn(&'a model::File) -> Option<&'a Vec<T>>,
        name: impl Fn(&T) -> &model::Text,
    ) -> Vec<Found<'a, T>> {
        let mut merged: Vec<Found<'a, T>> = Vec::new();
        for (input, parsed) in self.parsed.iter().enumerate() {
            let items = list(&parsed.file).map_or(&[][..], Vec::as_slice);
            for (i, item) in items.iter().enumerate() {
                let n = name(item);
                if items[..i]
                    .iter()
                    .any(|earlier| name(earlier).value == n.value)
                {
                    self.error_at(
                        input,
                        Some(n),
                        format!("{what} {} is defined twice in this file", shown(&n.value)),
                    );
                    continue;
                }
                if !merged.iter().any(|f| name(f.item).value == n.value) {
                    merged.push(Found { item, input });
                }
            }
        }
        merged
    }

    fn select(&mut self, wanted: Option<&str>) -> Option<Selected> {
        for (input, parsed) in self.parsed.iter().enumerate() {
            let file = &parsed.file;
            if let Some(kind) = file.kind.as_ref().filter(|k| k.value != "Config") {
                self.error_at(
                    input,
                    Some(kind),
                    format!(
                        "this is a {}, not a kubeconfig (`kind: Config`)",
                        shown(&kind.value)
                    ),
                );
            }
            if file.clusters.is_none()
                && file.users.is_none()
                && file.contexts.is_none()
                && file.current_context.is_none()
            {
                self.error_at(
                    input,
                    None,
                    "this is not a kubeconfig: it has no clusters, users or contexts".into(),
                );
            }
        }
        let clusters = self.merge("cluster", |f| f.clusters.as_ref(), |c| &c.name);
        let users = self.merge("user", |f| f.users.as_ref(), |u| &u.name);
        let contexts = self.merge("context", |f| f.contexts.as_ref(), |c| &c.name);
        if !self.errors.is_empty() {
            return None;
        }
        let names: Vec<String> = contexts.iter().map(|c| c.item.name.value.clone()).collect();
        let current = self.parsed.iter().enumerate().find_map(|(i, p)| {
            p.file
                .current_context
                .as_ref()
                .filter(|c| !c.value.is_empty())
                .map(|c| (i, c))
        });
        let (name, named_at) = match (wanted, current) {
            (Some(name), _) => (name.to_owned(), None),
            (None, Some((input, text))) => (text.value.clone(), Some((input, text))),
            (None, None) => {
                let message = match names.len() {
                    0 => "the kubeconfig defines no contexts and no current-context".to_owned(),
                    _ => format!(
                        "the kubeconfig has no current-context: choose one of its {} context(s) \
                         with --context NAME, $KSTEP_CONTEXT or $KUBE_CONTEXT: {}",
                        names.len(),
                        list_names(&names)
                    ),
                };
                self.error_at(0, None, message);
                return None;
            }
        };
        if wanted.is_some() && current.is_none() && names.len() > 1 {
            self.warn_at(
                0,
                None,
                format!(
                    "the kubeconfig has {} contexts and no current-context: kubectl run in the \
                     same job would need --context too",
                    names.len()
                ),
            );
        }
        let Some(context) = contexts.iter().find(|c| c.item.name.value == name) else {
            let message = format!(
                "context {} does not exist; the kubeconfig has {}",
                shown(&name),
                if names.is_empty() {
                    "no contexts".to_owned()
                } else {
                    list_names(&names)
                }
            );
            match named_at {
                Some((input, text)) => {
                    self.error_at(input, Some(text), format!("current-context: {message}"))
                }
                None => self.error_at(0, None, message),
            }
            return None;
        };
        let input = context.input;
        let Some(entry) = &context.item.context else {
            self.error_at(
                input,
                Some(&context.item.name),
                format!("context {} has no `context:` entry", shown(&name)),
            );
            return None;
        };
        let Some(cluster_ref) = entry.cluster.as_ref().filter(|c| !c.value.is_empty()) else {
            self.error_at(
                input,
                Some(&context.item.name),
                format!("context {} names no cluster", shown(&name)),
            );
            return None;
        };
        let Some(cluster) = clusters
            .iter()
            .find(|c| c.item.name.value == cluster_ref.value)
        else {
            let defined: Vec<String> = clusters.iter().map(|c| c.item.name.value.clone()).collect();
            self.undefined(input, &name, "cluster", cluster_ref, &defined);
            return None;
        };
        let user = match entry.user.as_ref().filter(|u| !u.value.is_empty()) {
            None => {
                self.warn_at(
                    input,
                    Some(&context.item.name),
                    format!(
                        "context {} names no user: requests will be anonymous",
                        shown(&name)
                    ),
                );
                None
            }
            Some(user_ref) => match users.iter().find(|u| u.item.name.value == user_ref.value) {
                Some(user) => Some(user),
                None => {
                    let defined: Vec<String> =
                        users.iter().map(|u| u.item.name.value.clone()).collect();
                    self.undefined(input, &name, "user", user_ref, &defined);
                    return None;
                }
            },
        };
        let namespace = entry
            .namespace
            .as_ref()
            .filter(|n| !n.value.is_empty())
            .map(|n| {
                if !is_dns_label(&n.value) {
                    self.error_at(
                        input,
                        Some(n),
                        format!(
                            "namespace {} is not a valid namespace name (lower-case letters, \
                             digits and `-`, at most 63)",
                            shown(&n.value)
                        ),
                    );
                }
                n.value.clone()
            });
        let Cluster {
            server,
            certificate_authority,
            insecure,
            tls_server_name,
            proxy_url,
            fingerprints,
        } = self.cluster(cluster)?;
        let auth = match user {
            Some(user) => self.auth(user)?,
            None => Auth::None,
        };
        if server.starts_with("http://") && !matches!(auth, Auth::None) {
            let at = cluster
                .item
                .cluster
                .as_ref()
                .and_then(|c| c.server.as_ref());
            self.warn_at(
                cluster.input,
                at,
                format!(
                    "cluster {} uses {PLAIN_HTTP}",
                    shown(&cluster.item.name.value)
                ),
            );
        }
        Some((
            Connection {
                context: name,
                cluster: cluster.item.name.value.clone(),
                user: user.map(|u| u.item.name.value.clone()).unwrap_or_default(),
                server,
                certificate_authority,
                insecure_skip_tls_verify: insecure,
                tls_server_name,
                proxy_url,
                namespace,
                auth,
            },
            names,
            fingerprints,
        ))
    }

    fn cluster(&mut self, found: &Found<'a, model::NamedCluster>) -> Option<Cluster> {
        let input = found.input;
        let name = &found.item.name;
        let label = format!("cluster {}", shown(&name.value));
        let Some(cluster) = &found.item.cluster else {
            self.error_at(
                input,
                Some(name),
                format!("{label} has no `cluster:` entry"),
            );
            return None;
        };
        let server = match &cluster.server {
            Some(s) if s.value.trim().is_empty() => {
                self.error_at(input, Some(s), format!("{label} has an empty server"));
                return None;
            }
            None => {
                self.error_at(input, Some(name), format!("{label} has no server"));
                return None;
            }
            Some(s) => {
                let url = s.value.trim();
                let rest = url
                    .strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"));
                if let Some((_, without)) = split_user_info(url) {
                    // The URL is shown in messages and logs (`kubeconfig show`, every connection
                    // error): credentials in it would be printed with it.
                    self.error_at(
                        input,
                        Some(s),
                        format!(
                            "{label}: the server URL carries a user name or password \
                             (`user:password@`): remove it and put the credentials in the user \
                             entry; the server is {without}"
                        ),
                    );
                    return None;
                }
                match rest {
                    Some(host) if !host.is_empty() && !host.starts_with('/') => {}
                    _ => {
                        self.error_at(
                            input,
                            Some(s),
                            format!(
                                "{label}: the server is not an https:// URL with a host \
                                 (like https://203.0.113.10:6443)"
                            ),
                        );
                        return None;
                    }
                }
                url.to_owned()
            }
        };
        let insecure = cluster
            .insecure_skip_tls_verify
            .as_ref()
            .is_some_and(|i| i.value);
        let ca = self
            .material(
                input,
                &label,
                cluster.certificate_authority_data.as_ref(),
                cluster.certificate_authority.as_ref(),
                &CERTIFICATE_AUTHORITY,
            )
            .ok()?;
        let mut fingerprints = Vec::new();
        if let Some(Material::Data(pem)) = &ca
            && let Ok(blocks) = pem::parse(pem, Expect::Certificates)
        {
            fingerprints = blocks.iter().map(|b| pem::fingerprint(&b.der)).collect();
        }
        if insecure {
            let at = cluster
                .insecure_skip_tls_verify
                .as_ref()
                .map(|i| position(&i.referenced));
            let (line, column) = at.unwrap_or((0, 0));
            if ca.is_some() {
                let source = self.source(input);
                self.errors.push(
                    Diagnostic::error(format!(
                        "{label} sets insecure-skip-tls-verify together with a certificate \
                         authority; kubectl refuses this: remove one of them"
                    ))
                    .at(source, line, column),
                );
                return None;
            }
            let source = self.source(input);
            self.warnings.push(
                Diagnostic::warning(format!(
                    "{label} has insecure-skip-tls-verify: the server's identity is not checked, \
                     so anyone on the path can take the credentials; set certificate-authority-data"
                ))
                .at(source, line, column),
            );
        }
        if let Some(proxy) = &cluster.proxy_url {
            self.warn_at(
                input,
                Some(proxy),
                format!(
                    "{label} sets proxy-url; kstep does not support proxies and connects directly"
                ),
            );
        }
        let tls_server_name = cluster.tls_server_name.clone().filter(|n| !n.is_empty());
        let proxy_url = cluster.proxy_url.as_ref().map(|p| p.value.clone());
        Some(Cluster {
            server,
            certificate_authority: ca,
            insecure,
            tls_server_name,
            proxy_url,
            fingerprints,
        })
    }

    /// Decodes a `*-data` field (base64 of PEM) and checks the PEM.
    fn pem_field(
        &mut self,
        input: usize,
        data: &model::Text,
        owner: &str,
        field: &str,
        expect: Expect,
    ) -> Option<Vec<u8>> {
        let bytes = match input::decode_base64(&data.value) {
            Ok(bytes) => bytes,
            Err(e) => {
                // The position inside the field's value, not the file: say which character.
                let offset = e
                    .byte
                    .map(|n| format!(" (character {n} of the value)"))
                    .unwrap_or_default();
                self.error_at(
                    input,
                    Some(data),
                    format!("{owner}: {field} is not valid base64{offset}"),
                );
                return None;
            }
        };
        if let Err(why) = pem::parse(&bytes, expect) {
            self.error_at(
                input,
                Some(data),
                format!("{owner}: {field} {}", pem_reason(&why)),
            );
            return None;
        }
        Some(bytes)
    }

    fn file_warning(
        &mut self,
        input: usize,
        file: &model::Text,
        owner: &str,
        field: &str,
        data_field: &str,
    ) {
        let path = self.resolve(input, &file.value);
        self.warn_at(
            input,
            Some(file),
            format!(
                "{owner}: {field} refers to the file {}, which will not exist in a CI job unless \
                 the job creates it; embed it as {data_field} (`kubectl config view --raw \
                 --minify --flatten`)",
                shown(&path)
            ),
        );
    }

    /// A file reference resolved against the directory of the input that made it.
    fn resolve(&self, input: usize, path: &str) -> String {
        match self.parsed.get(input).and_then(|p| p.dir.as_deref()) {
            Some(dir) if !path.starts_with('/') && !dir.is_empty() => {
                format!("{}/{path}", dir.trim_end_matches('/'))
            }
            _ => path.to_owned(),
        }
    }

    fn auth(&mut self, found: &Found<'a, model::NamedUser>) -> Option<Auth> {
        let input = found.input;
        let name = &found.item.name;
        let label = format!("user {}", shown(&name.value));
        let Some(user) = &found.item.user else {
            self.warn_at(
                input,
                Some(name),
                format!("{label} has no credentials: requests will be anonymous"),
            );
            return Some(Auth::None);
        };
        if let Some(r#as) = &user.impersonate {
            self.error_at(
                input,
                Some(r#as),
                format!(
                    "{label} impersonates another user (`as`); kstep does not support impersonation"
                ),
            );
            return None;
        }
        if user.impersonate_groups.is_some() {
            self.error_at(
                input,
                Some(name),
                format!("{label} impersonates groups (`as-groups`); kstep does not support impersonation"),
            );
            return None;
        }
        let mut methods: Vec<(&str, Auth)> = Vec::new();
        // A token wins over tokenFile, as in client-go; an empty token is a mistake, not absence.
        match (&user.token, &user.token_file) {
            (Some(token), _) if token.value.trim().is_empty() && user.token_file.is_none() => {
                self.error_at(
                    input,
                    Some(token),
                    format!("{label} has an empty token (was the variable holding it unset when the kubeconfig was written?)"),
                );
                return None;
            }
            (Some(token), _) if !token.value.trim().is_empty() => {
                if let Some(i) = token
                    .value
                    .find(|c: char| c.is_whitespace() || c.is_control())
                {
                    let what = if token.value[i..].trim().is_empty() {
                        "ends with whitespace or a line break"
                    } else {
                        "contains whitespace or a line break"
                    };
                    self.error_at(
                        input,
                        Some(token),
                        format!(
                            "{label}: the token {what} (character {}); copy it again without it",
                            i + 1
                        ),
                    );
                    return None;
                }
                methods.push(("token", Auth::Token(token.value.clone())));
            }
            (_, Some(file)) => {
                self.file_warning(input, file, &label, "tokenFile", "token");
                methods.push(("token", Auth::TokenFile(self.resolve(input, &file.value))));
            }
            _ => {}
        }
        if user.username.is_some() || user.password.is_some() {
            match (&user.username, &user.password) {
                (Some(u), Some(p)) if !p.value.is_empty() => methods.push((
                    "basic",
                    Auth::Basic(BasicAuth {
                        username: u.value.clone(),
                        password: p.value.clone(),
                    }),
                )),
                (u, p) => {
                    let at = p.as_ref().or(u.as_ref());
                    self.error_at(
                        input,
                        at,
                        format!("{label}: basic authentication needs both a username and a non-empty password"),
                    );
                    return None;
                }
            }
        }
        let certificate = self.material(
            input,
            &label,
            user.client_certificate_data.as_ref(),
            user.client_certificate.as_ref(),
            &CLIENT_CERTIFICATE,
        );
        let key = self.material(
            input,
            &label,
            user.client_key_data.as_ref(),
            user.client_key.as_ref(),
            &CLIENT_KEY,
        );
        match (certificate, key) {
            (Err(()), _) | (_, Err(())) => return None,
            (Ok(Some(certificate)), Ok(Some(key))) => methods.push((
                "client-certificate",
                Auth::ClientCertificate(ClientCertificate { certificate, key }),
            )),
            (Ok(Some(_)), Ok(None)) => {
                self.error_at(
                    input,
                    Some(name),
                    format!("{label} has a client certificate but no client key (client-key-data)"),
                );
                return None;
            }
            (Ok(None), Ok(Some(_))) => {
                self.error_at(input, Some(name), format!("{label} has a client key but no client certificate (client-certificate-data)"));
                return None;
            }
            (Ok(None), Ok(None)) => {}
        }
        if let Some(exec) = &user.exec {
            methods.push(("exec", Auth::Exec(self.exec(input, name, &label, exec)?)));
        }
        if let Some(provider) = &user.auth_provider {
            self.warn_at(
                input,
                Some(&provider.name),
                format!(
                    "{label} uses the auth-provider {}, removed from kubectl in 1.26; kstep cannot \
                     use it: switch to its exec plugin (gke-gcloud-auth-plugin, kubelogin)",
                    shown(&provider.name.value)
                ),
            );
            methods.push((
                "auth-provider",
                Auth::AuthProvider(AuthProvider {
                    name: provider.name.value.clone(),
                    config: provider
                        .config
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                }),
            ));
        }
        match methods.len() {
            0 => {
                self.warn_at(
                    input,
                    Some(name),
                    format!("{label} has no credentials: requests will be anonymous"),
                );
                Some(Auth::None)
            }
            1 => methods.pop().map(|(_, auth)| auth),
            _ => {
                let kinds: Vec<&str> = methods.iter().map(|(k, _)| *k).collect();
                self.error_at(
                    input,
                    Some(name),
                    format!(
                        "{label} has more than one authentication method ({}); keep one",
                        kinds.join(", ")
                    ),
                );
                None
            }
        }
    }

    /// A `*-data` / file pair: the data wins, a file is resolved and warned about. `Err(())`
    /// when an error was recorded.
    fn material(
        &mut self,
        input: usize,
        owner: &str,
        data: Option<&model::Text>,
        file: Option<&model::Text>,
        fields: &Fields,
    ) -> Result<Option<Material>, ()> {
        let Fields {
            data: data_field,
            file: file_field,
            expect,
        } = *fields;
        match (data, file) {
            (Some(data), file) => {
                if let Some(file) = file {
                    self.warn_at(
                        input,
                        Some(file),
                        format!(
                            "{owner} sets both {data_field} and {file_field}; the data is used"
                        ),
                    );
                }
                if data.value.trim().is_empty() {
                    self.error_at(input, Some(data), format!("{owner}: {data_field} is empty"));
                    return Err(());
                }
                self.pem_field(input, data, owner, data_field, expect)
                    .map(|pem| Some(Material::Data(pem)))
                    .ok_or(())
            }
            (None, Some(file)) => {
                self.file_warning(input, file, owner, file_field, data_field);
                Ok(Some(Material::File(self.resolve(input, &file.value))))
            }
            (None, None) => Ok(None),
        }
    }

    fn exec(
        &mut self,
        input: usize,
        name: &model::Text,
        label: &str,
        exec: &model::Exec,
    ) -> Option<ExecPlugin> {
        let Some(command) = exec.command.as_ref().filter(|c| !c.value.is_empty()) else {
            self.error_at(
                input,
                Some(name),
                format!("{label}: the exec plugin has no command"),
            );
            return None;
        };
        let api_version = exec.api_version.clone().unwrap_or_default();
        if !EXEC_API_VERSIONS.contains(&api_version.as_str()) {
            self.error_at(
                input,
                Some(command),
                format!(
                    "{label}: the exec plugin's apiVersion must be {} (v1alpha1 was removed in \
                     Kubernetes 1.24)",
                    EXEC_API_VERSIONS.join(" or ")
                ),
            );
            return None;
        }
        // client-go defaults interactiveMode for v1beta1 only; v1 must say it.
        let interactive_mode = match exec.interactive_mode.as_deref() {
            None | Some("") if api_version.ends_with("/v1") => {
                self.error_at(
                    input,
                    Some(command),
                    format!("{label}: an exec plugin with apiVersion v1 must set interactiveMode (Never, IfAvailable or Always)"),
                );
                return None;
            }
            None | Some("") => None,
            Some(mode @ ("Never" | "IfAvailable" | "Always")) => Some(mode.to_owned()),
            Some(_) => {
                self.error_at(
                    input,
                    Some(command),
                    format!("{label}: the exec plugin's interactiveMode must be Never, IfAvailable or Always"),
                );
                return None;
            }
        };
        let basename = command.value.rsplit('/').next().unwrap_or(&command.value);
        let always = if interactive_mode.as_deref() == Some("Always") {
            "; its interactiveMode is Always, which needs a terminal a CI job does not have"
        } else {
            ""
        };
        self.warn_at(
            input,
            Some(command),
            format!(
                "{label} gets its credentials from the exec plugin {}: the job's image must \
                 contain it, and its own credentials (cloud login) must be available to it{always}",
                shown(basename)
            ),
        );
        Some(ExecPlugin {
            command: command.value.clone(),
            args: exec.args.clone().unwrap_or_default(),
            env: exec
                .env
                .iter()
                .flatten()
                .map(|e| (e.name.clone(), e.value.clone()))
                .collect(),
            api_version,
            install_hint: exec.install_hint.clone(),
            provide_cluster_info: exec.provide_cluster_info.unwrap_or(false),
            interactive_mode,
        })
    }
}

/// How PEM problems read after a field name.
fn pem_reason(why: &str) -> String {
    if why.starts_with("is not PEM") {
        why.to_owned()
    } else {
        format!("is not usable PEM: {why}")
    }
}

/// A name for a message: quoted when it looks like a name, withheld when it may be a pasted
/// secret (very long, or shaped like a JWT).
pub fn shown(name: &str) -> String {
    let looks_like_name = name.chars().count() <= MAX_SHOWN_NAME
        && !name.starts_with("eyJ")
        && name.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    if looks_like_name {
        format!("`{name}`")
    } else {
        format!("(a name of {} characters, not shown)", name.chars().count())
    }
}

fn list_names(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names
        .iter()
        .map(|n| shown(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// RFC 1123 label: what a namespace name must be.
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// base64 of `bytes`, as kubeconfig `*-data` fields hold them.
pub fn to_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests;
