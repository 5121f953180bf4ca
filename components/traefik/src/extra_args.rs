//! `extraArgs`: Traefik command-line flags, merged into the static configuration file.
//!
//! Traefik reads its static configuration from exactly one source: when `--configFile` finds a
//! file, every other static flag is ignored without a word (paerser stops at the first loader
//! that finds something). Passing `extraArgs` on the command line next to the rendered file
//! would therefore do nothing. Instead each `--a.b.c=value` becomes `a: {b: {c: value}}` in the
//! file — Traefik matches file keys without regard to case, as it does flags — and a flag that
//! touches a setting kstep renders from the values is refused, naming the value to use.

use crate::node::Node;
use crate::problem::Problem;
use crate::values::{At, pos};

/// Settings rendered from values, matched case-insensitively as path prefixes, with what to do
/// instead of setting them by flag.
const OWNED: [(&str, &str); 13] = [
    (
        "entryPoints.web.address",
        "set the value `entryPoints.web.port`",
    ),
    (
        "entryPoints.websecure.address",
        "set the value `entryPoints.websecure.port`",
    ),
    (
        "entryPoints.traefik.address",
        "set the value `entryPoints.traefik.port`",
    ),
    (
        "entryPoints.web.http.redirections",
        "set the value `redirectToHttps`",
    ),
    ("log.level", "set the value `logLevel`"),
    ("certificatesResolvers", "set the value `acme`"),
    (
        "serversTransport.insecureSkipVerify",
        "set the value `insecureSkipVerify`",
    ),
    ("providers.kubernetesCRD", "set the value `kubernetesCRD`"),
    (
        "providers.kubernetesIngress.allowExternalNameServices",
        "set the value `allowExternalNameServices`",
    ),
    (
        "providers.kubernetesIngress.ingressEndpoint",
        "kstep points it at the LoadBalancer Service, whose address Ingresses then report",
    ),
    (
        "providers.file",
        "kstep uses the file provider for the dashboard (value `dashboard`)",
    ),
    ("api.dashboard", "set the value `dashboard`"),
    (
        "ping.entryPoint",
        "ping is served on the traefik entry point, which the probes use",
    ),
];

/// Merges every flag into `config`. Returns one problem per refused flag.
pub fn merge(config: &mut Node, args: &[At<String>]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut given = Vec::new();
    for arg in args {
        if let Err(message) = merge_one(config, &arg.value, &mut given) {
            problems.push(Problem::error(
                format!("extraArgs `{}`: {message}", arg.value),
                pos(arg),
            ));
        }
    }
    problems
}

/// `given`: the lowercased paths set by earlier flags, to tell a flag given twice from one
/// that collides with a rendered setting.
fn merge_one(config: &mut Node, arg: &str, given: &mut Vec<String>) -> Result<(), String> {
    let Some(flag) = arg.strip_prefix("--") else {
        return Err("not a flag: write `--name=value` (or `--name` for true)".into());
    };
    let (path, value) = flag.split_once('=').unwrap_or((flag, "true"));
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| {
        s.is_empty()
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    }) {
        return Err(format!(
            "`{path}` is not a Traefik option path (dot-separated names)"
        ));
    }
    let lower = path.to_ascii_lowercase();
    if lower == "configfile" || lower.starts_with("configfile.") {
        return Err("kstep passes the configuration file itself".into());
    }
    if lower == "api.insecure" {
        return Err(
            "api.insecure serves the API and dashboard without authentication on the traefik \
             entry point; kstep never turns it on. Set dashboard.host and \
             dashboard.basicAuthSecret instead"
                .into(),
        );
    }
    if let Some((setting, instead)) = OWNED.iter().find(|(setting, _)| {
        let setting = setting.to_ascii_lowercase();
        lower == setting
            || lower.starts_with(&format!("{setting}."))
            || setting.starts_with(&format!("{lower}."))
    }) {
        return Err(format!("`{setting}` is rendered by kstep: {instead}"));
    }
    let collision = |at: &str| {
        if given.iter().any(|g| g == &at.to_ascii_lowercase()) {
            format!("`{at}` is already set by another extra argument")
        } else {
            format!("`{at}` is already in the rendered configuration")
        }
    };
    let value = typed(value);
    let mut node = config;
    let (last, parents) = segments
        .split_last()
        .ok_or_else(|| "empty option path".to_owned())?;
    for (depth, segment) in parents.iter().enumerate() {
        let Node::Map(entries) = node else {
            unreachable!("only maps are descended into")
        };
        let index = match entries
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(segment))
        {
            Some(i) => {
                match &entries[i].1 {
                    Node::Map(_) => {}
                    // `--accesslog=true` then `--accesslog.format=json`: the section is enabled
                    // by its options as well.
                    Node::Bool(true) => entries[i].1 = Node::map(),
                    _ => return Err(collision(&segments[..=depth].join("."))),
                }
                i
            }
            None => {
                entries.push(((*segment).to_owned(), Node::map()));
                entries.len() - 1
            }
        };
        node = &mut entries[index].1;
    }
    let Node::Map(entries) = node else {
        unreachable!("only maps are descended into")
    };
    match entries
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(last))
    {
        // `--accesslog=true` after `--accesslog.format=json`: already enabled.
        Some((_, Node::Map(_))) if value == Node::Bool(true) => Ok(()),
        Some(_) => Err(collision(path)),
        None => {
            entries.push(((*last).to_owned(), value));
            given.push(lower);
            Ok(())
        }
    }
}

/// Flags are text; the file reads best with booleans and integers as such (Traefik parses
/// either form).
fn typed(value: &str) -> Node {
    match value {
        "true" => Node::Bool(true),
        "false" => Node::Bool(false),
        v if !v.is_empty()
            && v.len() < 16
            && v.chars().all(|c| c.is_ascii_digit())
            && !(v.len() > 1 && v.starts_with('0')) =>
        {
            v.parse()
                .map_or_else(|_| Node::Str(v.to_owned()), Node::Int)
        }
        v => Node::Str(v.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::map;

    fn args(list: &[&str]) -> Vec<At<String>> {
        list.iter()
            .map(|a| At::default_value((*a).to_owned()))
            .collect()
    }

    fn base() -> Node {
        map! {
            "log" => map! { "level" => "INFO" },
            "entryPoints" => map! { "web" => map! { "address" => ":8000" } },
        }
    }

    #[test]
    fn merges_case_insensitively() {
        let mut c = base();
        let p = merge(
            &mut c,
            &args(&[
                "--accesslog=true",
                "--accesslog.format=json",
                "--entrypoints.web.transport.respondingTimeouts.readTimeout=60s",
                "--log.format=json",
                "--metrics.prometheus.buckets=0.1,0.3",
                "--entryPoints.web.http.maxHeaderBytes=65536",
            ]),
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            c.at("accesslog.format").and_then(Node::as_str),
            Some("json")
        );
        assert_eq!(c.at("log.format").and_then(Node::as_str), Some("json"));
        assert_eq!(c.at("log.level").and_then(Node::as_str), Some("INFO"));
        assert_eq!(
            c.at("entryPoints.web.transport.respondingTimeouts.readTimeout")
                .and_then(Node::as_str),
            Some("60s")
        );
        assert_eq!(
            c.at("entryPoints.web.http.maxHeaderBytes"),
            Some(&Node::Int(65536))
        );
        assert_eq!(
            c.at("entryPoints.web.address").and_then(Node::as_str),
            Some(":8000")
        );
        // Enabling after options is a no-op.
        assert!(merge(&mut c, &args(&["--accesslog"])).is_empty());
    }

    #[test]
    fn refuses_what_values_own_and_what_is_unsafe() {
        for (arg, needle) in [
            ("--log.level=DEBUG", "logLevel"),
            ("--LOG.LEVEL=DEBUG", "logLevel"),
            ("--entrypoints.web.address=:80", "entryPoints.web.port"),
            ("--entrypoints.web=true", "entryPoints.web.port"),
            ("--certificatesresolvers.le.acme.email=a@b.c", "acme"),
            ("--api.insecure=true", "never turns it on"),
            ("--api.insecure", "never turns it on"),
            ("--configFile=/etc/traefik.toml", "configuration file"),
            ("accesslog=true", "not a flag"),
            ("--a..b=1", "option path"),
        ] {
            let mut c = base();
            let p = merge(&mut c, &args(&[arg]));
            assert_eq!(p.len(), 1, "{arg}");
            assert!(p[0].message.contains(needle), "{arg}: {}", p[0].message);
        }
        let mut c = base();
        let p = merge(&mut c, &args(&["--log.format=json", "--log.format=common"]));
        assert!(
            p[0].message
                .contains("already set by another extra argument"),
            "{p:?}"
        );
        let p = merge(&mut c, &args(&["--entrypoints.web.address.x=1"]));
        assert!(p[0].message.contains("entryPoints.web.port"), "{p:?}");
        let mut c = base();
        c.path_mut("entryPoints.websecure.http.tls")
            .set("certResolver", "le");
        let p = merge(
            &mut c,
            &args(&["--entrypoints.websecure.http.tls.certresolver=x"]),
        );
        assert!(
            p[0].message
                .contains("already in the rendered configuration"),
            "{p:?}"
        );
        assert!(
            merge(
                &mut c,
                &args(&["--entrypoints.websecure.http.tls.options=modern@file"])
            )
            .is_empty()
        );
    }
}
