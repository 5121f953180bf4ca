//! The checks on values that the schema alone cannot express: names Kubernetes accepts, the
//! image tag, ports, ACME's single-replica rule, the dashboard's both-or-neither rule.
//!
//! Every problem is collected (not only the first), each at the position of the value at fault.

use crate::problem::Problem;
use crate::values::{Challenge, Port, Values, pos};

/// Namespaces kstep will not take over: the rendered Namespace enforces the `restricted` Pod
/// Security level, which would break what already runs there.
const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Traefik's log levels (v3).
pub const LOG_LEVELS: [&str; 7] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "PANIC"];

/// Checks `values`. Errors refuse the values; warnings go with the rendered output.
pub fn check(values: &Values) -> (Vec<Problem>, Vec<Problem>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut err = |message: String, at: (u32, u32)| errors.push(Problem::error(message, at));

    let ns = &values.namespace;
    if let Err(why) = dns_label(&ns.value) {
        err(format!("namespace `{}` {why}", ns.value), pos(ns));
    } else if SYSTEM_NAMESPACES.contains(&ns.value.as_str()) {
        err(
            format!(
                "namespace `{}` is refused: the rendered Namespace enforces the `restricted` Pod \
                 Security Standard, which would reject other workloads there; give Traefik a \
                 namespace of its own (default `traefik`)",
                ns.value
            ),
            pos(ns),
        );
    }

    check_image(values, &mut err);

    let replicas = &values.replicas;
    if replicas.value == 0 {
        err(
            "replicas must be at least 1 (scale to zero with kubectl if you must)".into(),
            pos(replicas),
        );
    }
    if let Some(acme) = &values.acme
        && replicas.value > 1
    {
        let at = if pos(replicas) == (0, 0) {
            pos(acme)
        } else {
            pos(replicas)
        };
        err(
            format!(
                "ACME with {} replicas is refused: Traefik keeps the ACME account and \
                 certificates in one file ({}) on a ReadWriteOnce volume that replicas cannot \
                 share, and each replica would request certificates of its own (and run into \
                 Let's Encrypt rate limits). Use `replicas: 1`, or remove `acme` and let \
                 cert-manager issue the certificates (Ingress `tls.secretName`), which works \
                 with any number of replicas",
                replicas.value, acme.value.storage.value
            ),
            at,
        );
    }

    let level = &values.log_level;
    if !LOG_LEVELS.contains(&level.value.to_ascii_uppercase().as_str()) {
        err(
            format!(
                "logLevel `{}` is not a Traefik log level; use one of {}",
                level.value,
                LOG_LEVELS.join(", ")
            ),
            pos(level),
        );
    }

    check_ports(values, &mut err);
    check_acme(values, &mut err, &mut warnings);
    check_dashboard(values, &mut err);

    let class = &values.ingress_class.name;
    if let Err(why) = dns_subdomain(&class.value) {
        err(
            format!("ingressClass.name `{}` {why}", class.value),
            pos(class),
        );
    }

    for (what, q) in [
        ("resources.requests.cpu", &values.resources.requests.cpu),
        (
            "resources.requests.memory",
            &values.resources.requests.memory,
        ),
        ("resources.limits.cpu", &values.resources.limits.cpu),
        ("resources.limits.memory", &values.resources.limits.memory),
    ] {
        if let Some(q) = q
            && !is_quantity(&q.value)
        {
            err(
                format!(
                    "{what} `{}` is not a Kubernetes quantity (e.g. 100m, 0.5, 128Mi, 1Gi)",
                    q.value
                ),
                pos(q),
            );
        }
    }

    if values.insecure_skip_verify.value {
        warnings.push(Problem::warning(
            "insecureSkipVerify: true turns off certificate verification for every HTTPS \
             backend (serversTransport.insecureSkipVerify); prefer a ServersTransport with the \
             backend's CA where only some backends need it",
            pos(&values.insecure_skip_verify),
        ));
    }
    (errors, warnings)
}

fn check_image(values: &Values, err: &mut impl FnMut(String, (u32, u32))) {
    let tag = &values.image.tag;
    let t = tag.value.trim();
    if t.is_empty() {
        err(
            format!(
                "image.tag must not be empty: pin a Traefik v3 release such as {}",
                crate::values::DEFAULT_TAG
            ),
            pos(tag),
        );
    } else if t.eq_ignore_ascii_case("latest") {
        err(
            format!(
                "image.tag `latest` is refused: it changes under you (a new major version can \
                 arrive on any restart) and nodes cache different images under one name; pin \
                 a release such as {}",
                crate::values::DEFAULT_TAG
            ),
            pos(tag),
        );
    } else if !is_tag(t) {
        err(
            format!(
                "image.tag `{t}` is not a valid image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})"
            ),
            pos(tag),
        );
    } else {
        let digits = t.strip_prefix('v').unwrap_or(t);
        let major: String = digits.chars().take_while(char::is_ascii_digit).collect();
        let rest = &digits[major.len()..];
        if (major == "1" || major == "2") && (rest.is_empty() || rest.starts_with('.')) {
            err(
                format!(
                    "image.tag `{t}` is Traefik {major}.x: kstep renders Traefik v3 \
                     configuration, which Traefik {major}.x does not read; use a v3 release such \
                     as {}",
                    crate::values::DEFAULT_TAG
                ),
                pos(tag),
            );
        }
    }
    let repo = &values.image.repository;
    let r = repo.value.as_str();
    let last = r.rsplit('/').next().unwrap_or(r);
    if r.is_empty() || r.chars().any(|c| c.is_whitespace() || c == '@') {
        err(
            format!("image.repository `{r}` is not an image name (no tag or digest here)"),
            pos(repo),
        );
    } else if last.contains(':') {
        err(
            format!("image.repository `{r}` contains a tag: put it in image.tag"),
            pos(repo),
        );
    }
}

fn check_ports(values: &Values, err: &mut impl FnMut(String, (u32, u32))) {
    let ep = &values.entry_points;
    let container: [(&str, Port); 3] = [
        ("entryPoints.web.port", ep.web_port()),
        ("entryPoints.websecure.port", ep.websecure_port()),
        ("entryPoints.traefik.port", ep.traefik_port()),
    ];
    for (i, (name, p)) in container.iter().enumerate() {
        if !(1024..=65535).contains(&p.number) {
            err(
                format!(
                    "{name} {} must be within 1024–65535: Traefik runs without privileges (no \
                     NET_BIND_SERVICE), so it cannot bind low ports; the Services map 80 and 443 \
                     to it",
                    p.number
                ),
                p.at,
            );
        }
        for &(other, q) in &container[..i] {
            if q.number == p.number {
                clash(err, (name, *p), (other, q));
            }
        }
    }
    let web = ep.web_service_port();
    let websecure = ep.websecure_service_port();
    for (name, p) in [
        ("entryPoints.web.servicePort", web),
        ("entryPoints.websecure.servicePort", websecure),
    ] {
        if !(1..=65535).contains(&p.number) {
            err(format!("{name} {} must be within 1–65535", p.number), p.at);
        }
    }
    if web.number == websecure.number {
        clash(
            err,
            ("entryPoints.websecure.servicePort", websecure),
            ("entryPoints.web.servicePort", web),
        );
    }
}

/// Two ports that are the same number, reported at the later one, or at the one the values
/// give when the other is a default (which has no position).
fn clash(err: &mut impl FnMut(String, (u32, u32)), later: (&str, Port), earlier: (&str, Port)) {
    let ((name, p), (other, q)) = if later.1.at == (0, 0) {
        (earlier, later)
    } else {
        (later, earlier)
    };
    let default = if q.at == (0, 0) { " (its default)" } else { "" };
    err(
        format!("{name} {} is already {other}{default}", p.number),
        p.at,
    );
}

fn check_acme(
    values: &Values,
    err: &mut impl FnMut(String, (u32, u32)),
    warnings: &mut Vec<Problem>,
) {
    let Some(acme) = &values.acme else {
        if let Some(p) = &values.persistence {
            warnings.push(Problem::warning(
                "persistence is used only for ACME storage and acme is not set: no PVC is rendered",
                pos(p),
            ));
        }
        return;
    };
    let acme_at = pos(acme);
    let acme = &acme.value;
    let email = &acme.email;
    let e = email.value.as_str();
    let valid_email = e.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty() && domain.contains('.') && !domain.contains('@')
    }) && !e.chars().any(char::is_whitespace);
    if !valid_email {
        err(
            format!("acme.email `{e}` is not an e-mail address (Let's Encrypt needs one)"),
            pos(email),
        );
    }
    let storage = &acme.storage;
    if let Err(why) = storage_path(&storage.value) {
        err(
            format!("acme.storage `{}` {why}", storage.value),
            pos(storage),
        );
    }
    match (acme.challenge, &acme.dns_provider) {
        (Challenge::Dns, None) => err(
            "acme.challenge dns needs acme.dnsProvider (a lego provider name such as \
             cloudflare or ovh) and usually acme.dnsCredentialsSecret"
                .into(),
            acme_at,
        ),
        (Challenge::Dns, Some(p)) => {
            if p.value.is_empty()
                || !p
                    .value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                err(
                    format!("acme.dnsProvider `{}` is not a provider name", p.value),
                    pos(p),
                );
            }
        }
        (_, Some(p)) => err(
            "acme.dnsProvider is only used with `challenge: dns`".into(),
            pos(p),
        ),
        (_, None) => {}
    }
    if let Some(s) = &acme.dns_credentials_secret {
        if acme.challenge != Challenge::Dns {
            err(
                "acme.dnsCredentialsSecret is only used with `challenge: dns`".into(),
                pos(s),
            );
        } else if let Err(why) = dns_subdomain(&s.value) {
            err(
                format!("acme.dnsCredentialsSecret `{}` {why}", s.value),
                pos(s),
            );
        }
    }
    if let Some(ca) = &acme.ca_server {
        let rest = ca.value.strip_prefix("https://").unwrap_or_default();
        if rest.is_empty() || rest.chars().any(char::is_whitespace) {
            err(
                format!(
                    "acme.caServer `{}` is not an https:// URL of an ACME directory (e.g. \
                     https://acme-staging-v02.api.letsencrypt.org/directory)",
                    ca.value
                ),
                pos(ca),
            );
        }
    }
    let resolver = &acme.resolver;
    if resolver.value.is_empty()
        || !resolver
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        err(
            format!(
                "acme.resolver `{}` must be letters, digits, - and _ (it is referenced as \
                 `certResolver`)",
                resolver.value
            ),
            pos(resolver),
        );
    }
    if let Some(p) = &values.persistence {
        let size = &p.value.size;
        if !is_quantity(&size.value) {
            err(
                format!(
                    "persistence.size `{}` is not a Kubernetes quantity (e.g. 128Mi, 1Gi)",
                    size.value
                ),
                pos(size),
            );
        }
        if let Some(class) = &p.value.storage_class
            && let Err(why) = dns_subdomain(&class.value)
        {
            err(
                format!("persistence.storageClass `{}` {why}", class.value),
                pos(class),
            );
        }
    }
}

fn check_dashboard(values: &Values, err: &mut impl FnMut(String, (u32, u32))) {
    let Some(d) = &values.dashboard else {
        return;
    };
    match (&d.value.host, &d.value.basic_auth_secret) {
        (Some(host), Some(secret)) => {
            if let Err(why) = dns_subdomain(&host.value) {
                err(
                    format!("dashboard.host `{}` {why} (no wildcards)", host.value),
                    pos(host),
                );
            }
            if let Err(why) = dns_subdomain(&secret.value) {
                err(
                    format!("dashboard.basicAuthSecret `{}` {why}", secret.value),
                    pos(secret),
                );
            }
        }
        (Some(host), None) => err(
            "dashboard.host needs dashboard.basicAuthSecret: kstep exposes the dashboard only \
             behind basic auth (a Secret with an htpasswd file under the key `users`)"
                .into(),
            pos(host),
        ),
        (None, Some(secret)) => err(
            "dashboard.basicAuthSecret needs dashboard.host: the dashboard is served only on \
             its own host name"
                .into(),
            pos(secret),
        ),
        (None, None) => {}
    }
}

/// An RFC 1123 label, as Kubernetes wants for namespaces.
pub fn dns_label(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 63 {
        return Err("must be 1–63 characters".into());
    }
    label_chars(s)
}

/// An RFC 1123 subdomain, as Kubernetes wants for most names.
pub fn dns_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 253 {
        return Err("must be 1–253 characters".into());
    }
    s.split('.').try_for_each(|label| {
        if label.len() > 63 {
            Err("has a dot-separated part longer than 63 characters".into())
        } else {
            label_chars(label)
        }
    })
}

fn label_chars(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(
            "must be lowercase letters, digits and '-', starting and ending with a letter or digit"
                .into(),
        )
    }
}

fn is_tag(t: &str) -> bool {
    t.len() <= 128
        && t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

/// A Kubernetes resource quantity in its common forms: `100m`, `0.5`, `128Mi`, `1G`, `1e3`.
pub fn is_quantity(q: &str) -> bool {
    let number_end = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(number_end);
    let number_ok = !number.is_empty()
        && number.matches('.').count() <= 1
        && !number.starts_with('.')
        && !number.ends_with('.');
    let suffix_ok = matches!(
        suffix,
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .is_some_and(|e| !e.is_empty() && e.chars().all(|c| c.is_ascii_digit()));
    number_ok && suffix_ok
}

/// The ACME storage path: an absolute file path whose directory is mounted from the PVC.
fn storage_path(p: &str) -> Result<(), String> {
    let Some((dir, file)) = p.rsplit_once('/') else {
        return Err("must be an absolute path such as /data/acme.json".into());
    };
    if !p.starts_with('/') || dir.is_empty() || file.is_empty() {
        return Err(
            "must be an absolute file path in a directory of its own, such as /data/acme.json (the directory is the PVC mount)"
                .into(),
        );
    }
    if !p
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_'))
        || p.split('/').any(|part| part == "." || part == "..")
        || p.contains("//")
    {
        return Err("must be a plain path (letters, digits, '/', '.', '-', '_')".into());
    }
    for taken in [
        "/config", "/tmp", "/etc", "/bin", "/usr", "/lib", "/proc", "/sys", "/dev",
    ] {
        if dir == taken || dir.starts_with(&format!("{taken}/")) {
            return Err(format!(
                "is in {taken}, where the PVC cannot be mounted; use a directory of its own such as /data"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::values::parse;

    fn errors(text: &str) -> Vec<Problem> {
        check(&parse(text).unwrap()).0
    }

    fn one_error(text: &str) -> Problem {
        let e = errors(text);
        assert_eq!(e.len(), 1, "{e:#?}");
        e.into_iter().next().unwrap()
    }

    #[test]
    fn defaults_pass() {
        let (e, w) = check(&parse("").unwrap());
        assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
    }

    #[test]
    fn image_tags() {
        let e = one_error("image:\n  tag: latest\n");
        assert_eq!((e.line, e.column), (2, 8));
        assert!(e.message.contains("`latest` is refused"), "{e:?}");
        assert!(
            one_error("image:\n  tag: ''\n")
                .message
                .contains("must not be empty")
        );
        assert!(
            one_error("image:\n  tag: v1.7.7\n")
                .message
                .contains("Traefik 1.x")
        );
        assert!(
            one_error("image:\n  tag: '2.11'\n")
                .message
                .contains("Traefik 2.x")
        );
        assert!(errors("image:\n  tag: v3.6.12\n").is_empty());
        assert!(errors("image:\n  tag: '3.6'\n").is_empty());
        assert!(errors("image:\n  tag: v20.1\n").is_empty());
        assert!(
            one_error("image:\n  repository: traefik:v3\n")
                .message
                .contains("image.tag")
        );
    }

    #[test]
    fn acme_needs_one_replica() {
        let e = one_error("replicas: 2\nacme:\n  email: ops@example.com\n");
        assert_eq!((e.line, e.column), (1, 11));
        assert!(e.message.contains("cert-manager"), "{e:?}");
        assert!(e.message.contains("ReadWriteOnce"), "{e:?}");
        assert!(errors("replicas: 2\n").is_empty());
        assert!(errors("replicas: 1\nacme:\n  email: ops@example.com\n").is_empty());
    }

    #[test]
    fn acme_fields() {
        let e = errors(
            "acme:\n  email: nobody\n  storage: acme.json\n  challenge: dns\n  caServer: http://x\n",
        );
        assert_eq!(e.len(), 4, "{e:#?}");
        assert_eq!(e[0].line, 2);
        assert_eq!(e[1].line, 3);
        assert!(e[2].message.contains("dnsProvider"));
        assert_eq!(e[3].line, 5);
        assert!(
            one_error("acme:\n  email: a@b.example\n  dnsProvider: ovh\n")
                .message
                .contains("only used with `challenge: dns`")
        );
        assert!(
            one_error("acme:\n  email: a@b.example\n  storage: /tmp/acme.json\n")
                .message
                .contains("/tmp")
        );
        assert!(
            errors("acme:\n  email: a@b.example\n  challenge: dns\n  dnsProvider: ovh\n  dnsCredentialsSecret: ovh-creds\n")
                .is_empty()
        );
    }

    #[test]
    fn dashboard_needs_both() {
        let e = one_error("dashboard:\n  host: traefik.example.com\n");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("basicAuthSecret"));
        let e = one_error("dashboard:\n  basicAuthSecret: auth\n");
        assert!(e.message.contains("dashboard.host"));
        assert!(errors("dashboard:\n  host: t.example.com\n  basicAuthSecret: auth\n").is_empty());
        assert!(errors("dashboard: {}\n").is_empty());
        assert_eq!(
            errors("dashboard:\n  host: '*.example.com'\n  basicAuthSecret: Auth\n").len(),
            2
        );
    }

    #[test]
    fn ports_and_names() {
        let e = one_error("entryPoints:\n  web:\n    port: 80\n");
        assert_eq!((e.line, e.column), (3, 11));
        assert!(e.message.contains("NET_BIND_SERVICE"));
        let e = one_error("entryPoints:\n  traefik:\n    port: 8443\n");
        assert!(
            e.message.contains("already entryPoints.websecure.port"),
            "{e:?}"
        );
        let e = one_error("entryPoints:\n  websecure:\n    servicePort: 80\n");
        assert!(
            e.message.contains("already entryPoints.web.servicePort"),
            "{e:?}"
        );
        // Found by tests/values_properties.rs: a given port that clashes with a later default
        // was reported at the default, which has no position (0:0).
        let e = one_error("namespace: traefik\nentryPoints:\n  web:\n    servicePort: 443\n");
        assert_eq!((e.line, e.column), (4, 18), "{e:?}");
        assert_eq!(
            e.message,
            "entryPoints.web.servicePort 443 is already entryPoints.websecure.servicePort (its default)"
        );
        let e = one_error("entryPoints:\n  web:\n    port: 8443\n");
        assert_eq!((e.line, e.column), (3, 11), "{e:?}");
        assert!(
            e.message
                .contains("entryPoints.web.port 8443 is already entryPoints.websecure.port"),
            "{e:?}"
        );
        assert!(
            one_error("namespace: Traefik\n")
                .message
                .contains("lowercase")
        );
        assert!(
            one_error("namespace: kube-system\n")
                .message
                .contains("restricted")
        );
        assert!(one_error("logLevel: verbose\n").message.contains("TRACE"));
        assert!(errors("logLevel: debug\n").is_empty());
        assert!(
            one_error("resources:\n  limits:\n    memory: 1 GB\n")
                .message
                .contains("quantity")
        );
    }

    #[test]
    fn warnings() {
        let (e, w) =
            check(&parse("insecureSkipVerify: true\npersistence:\n  size: 1Gi\n").unwrap());
        assert!(e.is_empty());
        assert_eq!(w.len(), 2, "{w:?}");
    }

    #[test]
    fn quantities() {
        for ok in ["100m", "0.5", "1", "128Mi", "1Gi", "2G", "1e3"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Mi", "1 Gi", "1GB", ".5", "1..2", "1e"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
