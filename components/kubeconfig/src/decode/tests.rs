//! Decoding the fixture kubeconfigs (tests/fixtures/kubeconfigs) and every bad input the issue
//! lists; each error must name the place and never quote a secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::connection::Severity;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../../../tests/fixtures/kubeconfigs/", $name))
    };
}

const KIND: &str = fixture!("kind.yaml");
const K3S: &str = fixture!("k3s.yaml");
const MINIKUBE: &str = fixture!("minikube.yaml");
const GKE: &str = fixture!("gke.yaml");
const EKS: &str = fixture!("eks.yaml");
const OVH: &str = fixture!("ovh.yaml");
const AGENT: &str = fixture!("gitlab-agent.yaml");
const LEAK: &str = fixture!("leak.yaml");

const LEAK_TOKEN: &str = "kstepLeakTOKEN-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const LEAK_PASSWORD: &str = "kstepLeakPASSWORD-5e4d3c2b1a";

fn one(label: &str, data: &[u8], context: Option<&str>) -> Result<Decoded, Vec<Diagnostic>> {
    decode(
        &[Input {
            label,
            dir: None,
            data,
        }],
        context,
    )
    .map_err(|f| f.diagnostics)
}

/// What the host would print: messages with every returned secret masked.
fn masked_messages(data: &[u8], context: Option<&str>) -> Vec<String> {
    let (diagnostics, secrets) = match decode(
        &[Input {
            label: "kc",
            dir: None,
            data,
        }],
        context,
    ) {
        Ok(d) => (d.warnings, d.secrets),
        Err(f) => (f.diagnostics, f.secrets),
    };
    diagnostics
        .into_iter()
        .map(|d| {
            let mut m = format!("{}: {}", d.source.unwrap_or_default(), d.message);
            for s in &secrets {
                m = m.replace(s.as_str(), "[MASKED]");
            }
            m
        })
        .collect()
}

fn ok(text: &str) -> Decoded {
    one("kc", text.as_bytes(), None).unwrap()
}

/// The single error of decoding `text`, checked for content leaks.
fn err(text: &str, context: Option<&str>) -> Diagnostic {
    let errors = one("kc", text.as_bytes(), context).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = errors.into_iter().next().unwrap();
    assert_eq!(e.severity, Severity::Error);
    for secret in [LEAK_TOKEN, LEAK_PASSWORD, "tok3n"] {
        assert!(!e.message.contains(secret), "{e:?}");
    }
    e
}

fn warnings(d: &Decoded) -> String {
    d.warnings
        .iter()
        .map(|w| w.message.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn kind_client_certificate() {
    let d = ok(KIND);
    assert_eq!(d.forms, [Form::Yaml]);
    let c = &d.connection;
    assert_eq!(
        (c.context.as_str(), c.cluster.as_str(), c.user.as_str()),
        ("kind-kind", "kind-kind", "kind-kind")
    );
    assert_eq!(c.server, "https://127.0.0.1:41923");
    assert!(
        matches!(&c.certificate_authority, Some(Material::Data(pem)) if pem.starts_with(b"-----BEGIN CERTIFICATE-----"))
    );
    let Auth::ClientCertificate(cc) = &c.auth else {
        panic!("not a client certificate")
    };
    assert!(
        matches!(&cc.key, Material::Data(k) if k.starts_with(b"-----BEGIN RSA PRIVATE KEY-----"))
    );
    assert_eq!(d.ca_fingerprints.len(), 1);
    assert_eq!(d.ca_fingerprints[0].len(), 32 * 3 - 1);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(c.namespace, None);
}

#[test]
fn k3s_ec_key() {
    let d = ok(K3S);
    let Auth::ClientCertificate(cc) = &d.connection.auth else {
        panic!()
    };
    assert!(
        matches!(&cc.key, Material::Data(k) if k.starts_with(b"-----BEGIN EC PRIVATE KEY-----"))
    );
    assert!(d.warnings.is_empty());
}

#[test]
fn minikube_file_references_warn_and_resolve() {
    let d = ok(MINIKUBE);
    let c = &d.connection;
    assert_eq!(
        c.certificate_authority,
        Some(Material::File("/home/dev/.minikube/ca.crt".into()))
    );
    assert_eq!(c.namespace.as_deref(), Some("default"));
    let w = warnings(&d);
    assert_eq!(d.warnings.len(), 3, "{w}");
    assert!(
        w.contains("certificate-authority refers to the file `/home/dev/.minikube/ca.crt`"),
        "{w}"
    );
    assert!(w.contains("will not exist in a CI job"), "{w}");
    // Relative references resolve against the input's directory, as kubectl does.
    let rel = MINIKUBE.replace("/home/dev/.minikube/ca.crt", "ca.crt");
    let d = decode(
        &[Input {
            label: "f",
            dir: Some("/etc/kube/"),
            data: rel.as_bytes(),
        }],
        None,
    )
    .unwrap();
    assert_eq!(
        d.connection.certificate_authority,
        Some(Material::File("/etc/kube/ca.crt".into()))
    );
    assert_eq!(d.warnings[0].line, 4);
}

#[test]
fn exec_plugins_gke_and_eks() {
    let d = ok(GKE);
    let Auth::Exec(e) = &d.connection.auth else {
        panic!()
    };
    assert_eq!(e.command, "gke-gcloud-auth-plugin");
    assert!(e.provide_cluster_info);
    assert_eq!(e.interactive_mode.as_deref(), Some("IfAvailable"));
    assert!(
        e.install_hint
            .as_deref()
            .unwrap()
            .contains("cloud.google.com")
    );
    assert!(warnings(&d).contains("exec plugin `gke-gcloud-auth-plugin`"));
    let d = ok(EKS);
    let Auth::Exec(e) = &d.connection.auth else {
        panic!()
    };
    assert_eq!(e.command, "aws");
    assert_eq!(e.args[3], "get-token");
    assert_eq!(e.env, [("AWS_PROFILE".to_owned(), "deploy".to_owned())]);
    assert_eq!(
        d.connection.context,
        "arn:aws:eks:eu-west-1:123456789012:cluster/demo"
    );
}

#[test]
fn managed_token_and_namespace() {
    let d = ok(OVH);
    assert!(matches!(&d.connection.auth, Auth::Token(t) if t.starts_with("eyJ")));
    assert_eq!(d.connection.namespace.as_deref(), Some("blog"));
    assert!(d.warnings.is_empty());
}

#[test]
fn gitlab_agent_needs_a_context() {
    let e = err(AGENT, None);
    assert!(e.message.contains("no current-context"), "{e:?}");
    assert!(
        e.message
            .contains("`kstep/infra:production`, `kstep/infra:staging`"),
        "{e:?}"
    );
    assert!(!e.message.contains("glcbt"), "{e:?}");
    let d = one("kc", AGENT.as_bytes(), Some("kstep/infra:staging")).unwrap();
    assert_eq!(d.connection.user, "agent:4343");
    assert_eq!(d.connection.certificate_authority, None);
    assert!(
        warnings(&d).contains("2 contexts and no current-context"),
        "{:?}",
        d.warnings
    );
    let e = err(AGENT, Some("kstep/infra:nope"));
    assert!(
        e.message
            .starts_with("context `kstep/infra:nope` does not exist"),
        "{e:?}"
    );
}

#[test]
fn json_and_base64_forms() {
    let json = r#"{"apiVersion":"v1","kind":"Config","clusters":[{"name":"c","cluster":{"server":"https://h:6443"}}],
        "users":[{"name":"u","user":{"token":"abcdefgh"}}],
        "contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],"current-context":"x"}"#;
    let d = ok(json);
    assert_eq!(d.forms, [Form::Json]);
    assert_eq!(d.connection.server, "https://h:6443");
    let one_line = STANDARD.encode(OVH);
    assert_eq!(ok(&one_line).forms, [Form::Base64OneLine]);
    let wrapped: String = one_line
        .as_bytes()
        .chunks(76)
        .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    let d = ok(&wrapped);
    assert_eq!(d.forms, [Form::Base64Wrapped]);
    assert_eq!(d.connection, ok(OVH).connection);
}

#[test]
fn round_trip_render_encode_decode() {
    for (name, text) in [
        ("kind", KIND),
        ("k3s", K3S),
        ("minikube", MINIKUBE),
        ("gke", GKE),
        ("eks", EKS),
        ("ovh", OVH),
        ("leak", LEAK),
    ] {
        let first = ok(text);
        let rendered = crate::render::render(&first.connection).unwrap();
        let encoded = crate::masked::encode(rendered.as_bytes()).unwrap();
        let again = ok(&encoded);
        assert_eq!(again.forms, [Form::Base64OneLine], "{name}");
        assert_eq!(again.connection, first.connection, "{name}:\n{rendered}");
        assert_eq!(again.ca_fingerprints, first.ca_fingerprints, "{name}");
        // The rendered file is minimal: one of each, selected.
        let file = crate::model::parse(&rendered).unwrap();
        assert_eq!(file.clusters.unwrap().len(), 1, "{name}");
        assert_eq!(file.contexts.unwrap().len(), 1, "{name}");
    }
    let agent = one("kc", AGENT.as_bytes(), Some("kstep/infra:production")).unwrap();
    let rendered = crate::render::render(&agent.connection).unwrap();
    assert!(
        rendered.contains("current-context: kstep/infra:production"),
        "{rendered}"
    );
    assert_eq!(ok(&rendered).connection, agent.connection);
}

#[test]
fn render_quotes_what_yaml_would_misread() {
    let mut c = ok(OVH).connection;
    c.namespace = Some("true".into()); // invalid as a namespace, but must survive a round trip
    c.context = "null".into();
    c.auth = Auth::Token("123456789".into());
    let rendered = crate::render::render(&c).unwrap();
    let file = crate::model::parse(&rendered).unwrap();
    let users = file.users.unwrap();
    let token = users[0].user.as_ref().unwrap().token.as_ref().unwrap();
    assert_eq!(token.value, "123456789", "{rendered}");
    assert_eq!(file.current_context.unwrap().value, "null", "{rendered}");
}

#[test]
fn merge_first_file_wins() {
    let second = OVH.replace(
        "https://abc123.c1.gra9.k8s.ovh.net",
        "https://second.example:6443",
    );
    let inputs = [
        Input {
            label: "a",
            dir: None,
            data: AGENT.as_bytes(),
        },
        Input {
            label: "b",
            dir: None,
            data: second.as_bytes(),
        },
        Input {
            label: "c",
            dir: None,
            data: OVH.as_bytes(),
        },
    ];
    // The agent file has no current-context: the second file's is used, and its entries.
    let d = decode(&inputs, None).unwrap();
    assert_eq!(d.forms.len(), 3);
    assert!(
        d.secrets.iter().any(|s| s.starts_with("ci:4242:")),
        "{:?}",
        d.secrets
    );
    assert_eq!(d.connection.context, "gitlab-deployer@kubernetes");
    assert_eq!(d.connection.server, "https://second.example:6443");
    assert_eq!(d.contexts.len(), 3);
    let d = decode(&inputs, Some("kstep/infra:production")).unwrap();
    assert_eq!(d.connection.server, "https://kas.gitlab.com/k8s-proxy");
}

#[test]
fn invalid_base64_gives_position() {
    let mut value = STANDARD.encode(LEAK);
    value.insert(100, '%');
    let e = err(&value, None);
    assert_eq!(
        e.message,
        "invalid base64 at byte 101: not a base64 character"
    );
    assert_eq!(
        (e.source.as_deref(), e.line, e.column),
        (Some("kc"), 1, 101)
    );
}

#[test]
fn base64_of_non_yaml() {
    let e = err(&STANDARD.encode("just some words"), None);
    assert!(e.message.contains("not a kubeconfig"), "{e:?}");
    let e = err(&STANDARD.encode("users: [unclosed"), None);
    assert!(e.message.starts_with("YAML syntax error"), "{e:?}");
    assert_eq!(e.source.as_deref(), Some("kc (base64-decoded)"));
    let e = err(&STANDARD.encode("- a list\n- not: a mapping\n"), None);
    assert!(e.message.contains("wrong type"), "{e:?}");
}

#[test]
fn yaml_syntax_error_line_column() {
    let broken = LEAK.replace(
        &format!("token: {LEAK_TOKEN}"),
        &format!("token: \"{LEAK_TOKEN}"),
    );
    let e = err(&broken, None);
    assert!(e.message.starts_with("YAML syntax error"), "{e:?}");
    assert_eq!((e.line, e.column), (11, 12), "{e:?}");
    // A flow sequence where a string belongs: a type error, at the value.
    let broken = LEAK.replace(
        &format!("token: {LEAK_TOKEN}"),
        &format!("token: [{LEAK_TOKEN}"),
    );
    let e = err(&broken, None);
    assert_eq!(e.message, "wrong type of value: expected string scalar");
    assert_eq!((e.line, e.column), (11, 12), "{e:?}");
}

#[test]
fn missing_current_context() {
    let text = LEAK.replace("current-context: token\n", "");
    let e = err(&text, None);
    assert_eq!(
        e.message,
        "the kubeconfig has no current-context: choose one of its 3 context(s) with --context NAME, $KSTEP_CONTEXT or $KUBE_CONTEXT: `token`, `basic`, `cert`"
    );
    let e = err(
        &LEAK.replace("current-context: token", "current-context: gone"),
        None,
    );
    assert!(
        e.message
            .starts_with("current-context: context `gone` does not exist"),
        "{e:?}"
    );
    assert!(e.line > 0);
}

#[test]
fn dangling_cluster_and_user() {
    let e = err(
        &LEAK.replace(
            "{cluster: leak, user: token, namespace: leak}",
            "{cluster: lost, user: token}",
        ),
        None,
    );
    assert_eq!(
        e.message,
        "context `token` names cluster `lost`, which is not defined (clusters: `leak`)"
    );
    assert!(e.line > 0 && e.column > 0, "{e:?}");
    let e = err(
        &LEAK.replace(
            "{cluster: leak, user: token, namespace: leak}",
            "{cluster: leak, user: ghost}",
        ),
        None,
    );
    assert_eq!(
        e.message,
        "context `token` names user `ghost`, which is not defined (users: `token`, `basic`, `cert`)"
    );
}

#[test]
fn empty_token() {
    let e = err(&LEAK.replace(LEAK_TOKEN, "\"\""), None);
    assert!(
        e.message.starts_with("user `token` has an empty token"),
        "{e:?}"
    );
    assert!(e.line > 0);
    let e = err(
        &LEAK.replace(LEAK_TOKEN, &format!("\"{LEAK_TOKEN}\\n\"")),
        None,
    );
    assert!(
        e.message
            .contains("ends with whitespace or a line break (character 48)"),
        "{e:?}"
    );
}

#[test]
fn certificate_data_that_is_not_pem() {
    let ca = LEAK
        .lines()
        .find(|l| l.contains("certificate-authority-data"))
        .unwrap();
    let not_pem = format!(
        "    certificate-authority-data: {}",
        STANDARD.encode("definitely not a certificate")
    );
    let e = err(&LEAK.replace(ca, &not_pem), None);
    assert!(
        e.message
            .starts_with("cluster `leak`: certificate-authority-data is not PEM"),
        "{e:?}"
    );
    let not_b64 = "    certificate-authority-data: not*base64";
    let e = err(&LEAK.replace(ca, not_b64), None);
    assert_eq!(
        e.message,
        "cluster `leak`: certificate-authority-data is not valid base64 (character 4 of the value)"
    );
    let key = LEAK
        .lines()
        .find(|l| l.contains("client-key-data"))
        .unwrap();
    let cert = LEAK
        .lines()
        .find(|l| l.contains("client-certificate-data"))
        .unwrap()
        .replace("client-certificate-data", "client-key-data");
    let e = err(&LEAK.replace(key, &cert), Some("cert"));
    assert!(
        e.message.starts_with(
            "user `cert`: client-key-data is not usable PEM: expected one `PRIVATE KEY`"
        ),
        "{e:?}"
    );
}

#[test]
fn ten_mebibytes() {
    let big = format!("{LEAK}# {}\n", "x".repeat(10 << 20));
    let e = err(&big, None);
    assert!(e.message.contains("at most 1048576 bytes"), "{e:?}");
}

#[test]
fn other_mistakes() {
    let e = err(&LEAK.replace("kind: Config", "kind: Secret"), None);
    assert_eq!(
        e.message,
        "this is a `Secret`, not a kubeconfig (`kind: Config`)"
    );
    let e = err("apiVersion: v1\nkind: Config\n", None);
    assert!(
        e.message.contains("no clusters, users or contexts"),
        "{e:?}"
    );
    let dup = LEAK.replace("- name: basic\n  user:", "- name: token\n  user:");
    let e = err(&dup, None);
    assert!(
        e.message.starts_with("user `token` is defined twice"),
        "{e:?}"
    );
    let e = err(
        &LEAK.replace(
            "    server: https://127.0.0.1:1\n",
            "    server: 127.0.0.1:6443\n",
        ),
        None,
    );
    assert!(e.message.contains("not an https:// URL"), "{e:?}");
    let both = LEAK.replace(
        "    token: kstepLeak",
        "    username: x\n    password: y\n    token: kstepLeak",
    );
    let e = err(&both, None);
    assert_eq!(
        e.message,
        "user `token` has more than one authentication method (token, basic); keep one"
    );
    let e = err(
        &LEAK.replace("namespace: leak", "namespace: Not_Valid"),
        None,
    );
    assert!(
        e.message
            .starts_with("namespace `Not_Valid` is not a valid"),
        "{e:?}"
    );
    let insecure = LEAK.replace(
        "    server: https://127.0.0.1:1\n",
        "    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\n",
    );
    let e = err(&insecure, None);
    assert!(e.message.contains("kubectl refuses this"), "{e:?}");
}

#[test]
fn warnings_for_weak_setups() {
    let ca = LEAK
        .lines()
        .find(|l| l.contains("certificate-authority-data"))
        .unwrap();
    let insecure = LEAK.replace(ca, "    insecure-skip-tls-verify: true");
    let d = ok(&insecure);
    assert!(d.connection.insecure_skip_tls_verify);
    assert!(
        warnings(&d).contains("insecure-skip-tls-verify: the server's identity is not checked")
    );
    let plain = LEAK.replace("https://127.0.0.1:1", "http://127.0.0.1:1");
    let d = ok(&plain);
    assert!(warnings(&d).contains(PLAIN_HTTP));
    // At the server field, where the host points when it refuses it.
    let w = d
        .warnings
        .iter()
        .find(|w| w.message.contains(PLAIN_HTTP))
        .unwrap();
    let line = 1 + plain[..plain.find("http://").unwrap()]
        .matches('\n')
        .count();
    assert_eq!(w.line as usize, line, "{w:?}");
    let provider = "apiVersion: v1\nclusters: [{name: c, cluster: {server: 'https://h'}}]\n\
        users: [{name: u, user: {auth-provider: {name: gcp, config: {access-token: abcdefgh}}}}]\n\
        contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n";
    let d = ok(provider);
    assert!(matches!(&d.connection.auth, Auth::AuthProvider(p) if p.name == "gcp"));
    assert!(warnings(&d).contains("removed from kubectl"));
}

#[test]
fn secrets_are_returned_for_masking() {
    let d = ok(LEAK);
    for s in [LEAK_TOKEN, LEAK_PASSWORD] {
        assert!(d.secrets.iter().any(|x| x == s), "{s}");
    }
    assert!(
        d.secrets
            .iter()
            .any(|x| x.starts_with("-----BEGIN PRIVATE KEY-----"))
    );
    assert!(
        d.secrets
            .iter()
            .any(|x| x.starts_with("-----BEGIN CERTIFICATE-----"))
    );
    // Plain exec settings are not secrets (masking `deploy` would blank ordinary words).
    let d = ok(EKS);
    assert!(!d.secrets.iter().any(|x| x == "deploy"), "{:?}", d.secrets);
    let d = ok(&EKS.replace("name: AWS_PROFILE", "name: AWS_SECRET_ACCESS_KEY"));
    assert!(d.secrets.iter().any(|x| x == "deploy"));
    // The decoded text of a base64 input is itself a secret.
    let d = ok(&STANDARD.encode(OVH));
    assert!(d.secrets.iter().any(|x| x == OVH));
    // Failures carry them too.
    let f = decode(
        &[Input {
            label: "kc",
            dir: None,
            data: LEAK
                .replace("current-context: token", "current-context: x")
                .as_bytes(),
        }],
        None,
    )
    .unwrap_err();
    assert!(f.secrets.iter().any(|x| x == LEAK_TOKEN));
}

#[test]
fn secrets_never_in_messages_of_any_error() {
    // Mangle the leak fixture in many ways; no message, once the returned secrets are masked as
    // the host masks them, may contain a secret or its base64.
    let key_b64 = LEAK
        .lines()
        .find(|l| l.contains("client-key-data"))
        .unwrap()
        .split(": ")
        .nth(1)
        .unwrap()
        .to_owned();
    let secrets = [
        LEAK_TOKEN.to_owned(),
        LEAK_PASSWORD.to_owned(),
        key_b64.clone(),
        STANDARD.encode(LEAK_TOKEN),
    ];
    let variants = [
        LEAK.replace(
            "current-context: token",
            &format!("current-context: {LEAK_TOKEN}"),
        ),
        LEAK.replace("user: token,", &format!("user: {LEAK_TOKEN},")),
        LEAK.replace(&key_b64, &key_b64[..key_b64.len() - 7]),
        LEAK.replace(
            &format!("token: {LEAK_TOKEN}"),
            &format!("token: {{{LEAK_TOKEN}"),
        ),
        LEAK.replace(
            &format!("password: {LEAK_PASSWORD}"),
            &format!("password: [{LEAK_PASSWORD}]"),
        ),
        LEAK.replace("kind: Config", &format!("kind: {LEAK_TOKEN}")),
        LEAK.replace(
            "- name: cert\n",
            &format!("- name: cert\n  {LEAK_TOKEN}: x\n"),
        ),
        STANDARD.encode(LEAK.replace("apiVersion", "apiVersion%")) + "%",
        LEAK.replace(
            &format!("token: {LEAK_TOKEN}"),
            &format!("token: \"{LEAK_TOKEN}\n\""),
        ),
    ];
    for (i, text) in variants.iter().enumerate() {
        for context in [None, Some("cert"), Some("basic")] {
            for m in masked_messages(text.as_bytes(), context) {
                for s in &secrets {
                    assert!(!m.contains(s.as_str()), "variant {i}: {m}");
                }
            }
        }
    }
}

/// `kind.yaml` with the value of every `FIELD:` line replaced by `""`.
fn kind_with_empty(field: &str) -> String {
    KIND.lines()
        .map(|l| match l.split_once(':') {
            Some((key, _)) if key.trim() == field => format!("{key}: \"\""),
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn empty_pem_data() {
    // Empty data is named as such, not reported as "not PEM" (client-go would silently fall
    // back to the system roots for an empty CA: a pasted kubeconfig with an empty field is a
    // mistake worth stopping on).
    let e = err(&kind_with_empty("certificate-authority-data"), None);
    assert_eq!(
        e.message,
        "cluster `kind-kind`: certificate-authority-data is empty"
    );
    let e = err(&kind_with_empty("client-key-data"), None);
    assert_eq!(e.message, "user `kind-kind`: client-key-data is empty");
}

#[test]
fn a_server_url_with_user_info_is_refused_without_showing_it() {
    let text = LEAK.replace(
        "https://127.0.0.1:1",
        "https://deployer:urlPassw0rd-s3cret@127.0.0.1:1/api?x=1",
    );
    for context in [None, Some("cert"), Some("basic")] {
        let f = decode(
            &[Input {
                label: "kc",
                dir: None,
                data: text.as_bytes(),
            }],
            context,
        )
        .unwrap_err();
        let e = &f.diagnostics[0];
        assert!(e.message.contains("user name or password"), "{e:?}");
        assert!(e.message.contains("https://127.0.0.1:1/api?x=1"), "{e:?}");
        assert!(!e.message.contains("urlPassw0rd"), "{e:?}");
        assert!(!e.message.contains("deployer"), "{e:?}");
        assert!(e.line > 0 && e.column > 0, "{e:?}");
        assert!(f.secrets.iter().any(|s| s == "urlPassw0rd-s3cret"));
    }
    assert_eq!(split_user_info("https://h:1/a@b"), None);
    assert_eq!(
        split_user_info("http://u@h").map(|(u, rest)| (u.to_owned(), rest)),
        Some(("u".to_owned(), "http://h".to_owned()))
    );
}
