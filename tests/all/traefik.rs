//! `kstep traefik render | migrate` through the real binary, and the rendered output against real
//! systems:
//!
//! - a real Traefik v3.6 binary built from its Go module (`tests/traefik/build.sh`) started with
//!   the rendered static and dynamic configuration on loopback ports: ping, the HTTP→HTTPS
//!   redirect, the dashboard behind basic auth, `extraArgs` taking effect, the ACME storage
//!   script (`#[ignore = "needs traefik …"]`);
//! - the real API server (`tests/cluster/up.sh`): server-side dry-run with strict field
//!   validation of every manifest, a real apply and rollout under the `restricted` Pod Security
//!   level, and the local Traefik watching the cluster with the rendered ServiceAccount's token
//!   only, routing an Ingress (`#[ignore = "needs a cluster …"]`).
//!
//! Only loopback traffic: Traefik's ACME CA is a closed port on 127.0.0.1, version checks are off.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{self, Cleanup, kubectl_ok, kubectl_stdin, kubectl_stdin_ok};
use crate::support::Text::{Has, StartsWith};
use crate::support::{TempDir, kstep, positions, repo_root, run};

/// The reference workflow's traefik.toml (shared/seed), verbatim; the migrate unit tests read
/// the same file.
const REFERENCE_TOML: &str = include_str!("../fixtures/traefik/traefik.toml");

/// htpasswd line for `admin` / [`DASHBOARD_PASSWORD`] (`openssl passwd -apr1 -salt kstepsal`).
const DASHBOARD_USERS: &str = "admin:$apr1$kstepsal$zWSFi7NEWe/2t1cVJo4I2.\n";
const DASHBOARD_PASSWORD: &str = "kstep-test-pass";
const DASHBOARD_HOST: &str = "dashboard.kstep.test";

/// `kstep traefik render --values FILE --output json`, as the list of manifests.
fn render_json(values_file: &str) -> Vec<Value> {
    let r = run(&[
        "traefik",
        "render",
        "--values",
        values_file,
        "--output",
        "json",
    ]);
    r.ok();
    let list: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(list["kind"], "List");
    list["items"].as_array().unwrap().clone()
}

fn find<'a>(items: &'a [Value], kind: &str, name: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["kind"] == kind && i["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// A YAML text (the ConfigMap's configuration) as JSON.
fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap()
}

// ---------------------------------------------------------------- the CLI

#[test]
fn several_documents_in_a_values_file_are_refused_in_words() {
    let d = TempDir::new("traefik-multi-doc");
    let file = d.write("values.yaml", "namespace: a\n---\nreplicas: 2\n");
    let r = run(&["traefik", "render", "--values", &file]);
    r.fails_with(2);
    r.stderr(StartsWith(&format!("{file}:")));
    r.stderr(Has("a values file is one YAML document"));
    assert!(!r.stderr.contains("from_str"), "{}", r.stderr);
}

#[test]
fn render_defaults_in_yaml_and_json_are_the_same_manifests() {
    let yaml_run = run(&["traefik", "render"]);
    yaml_run.ok();
    assert_eq!(yaml_run.stderr, "");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml_run.stdout).unwrap();
    let json_run = run(&["traefik", "render", "--output", "json"]);
    let list: Value = serde_json::from_str(&json_run.stdout).unwrap();
    assert_eq!(Value::Array(docs.clone()), list["items"]);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "IngressClass",
            "Deployment",
            "Service",
            "Service"
        ]
    );
    // No apiVersion that current Kubernetes removed (the original used extensions/v1beta1).
    for d in &docs {
        let v = d["apiVersion"].as_str().unwrap();
        assert!(!v.contains("beta"), "{v}");
    }
    let dep = find(&docs, "Deployment", "traefik");
    let pod = &dep["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "docker.io/traefik:v3.6.12");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ping");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "traefik");
    assert!(c["resources"]["requests"]["memory"].is_string());
    let static_config = yaml(
        find(&docs, "ConfigMap", "traefik-config")["data"]["traefik.yaml"]
            .as_str()
            .unwrap(),
    );
    assert!(
        static_config.get("api").is_none(),
        "no dashboard by default"
    );
}

#[test]
fn render_reports_every_problem_with_its_position_and_prints_nothing() {
    let d = TempDir::new("traefik-render-errors");
    let f = d.write(
        "values.yaml",
        "namespace: edge\nimage:\n  tag: latest\nreplicas: 2\nacme:\n  email: ops@example.com\ndashboard:\n  hosst: t.example.com\nextraArgs:\n  - --api.insecure=true\n",
    );
    let r = run(&["traefik", "render", "--values", &f]);
    r.fails_with(2).stderr(Has("did you mean `host`"));
    assert_eq!(positions(&r.stderr, &f), [(8, 3)], "{r:?}");
    // Fixed, the next round of problems: each at its value.
    let f = d.write(
        "values.yaml",
        "namespace: edge\nimage:\n  tag: latest\nreplicas: 2\nacme:\n  email: ops@example.com\ndashboard:\n  host: t.example.com\nextraArgs:\n  - --api.insecure=true\n",
    );
    let r = run(&["traefik", "render", "--values", &f]);
    r.fails_with(2)
        .stderr(Has("`latest` is refused"))
        .stderr(Has("cert-manager"))
        .stderr(Has("basicAuthSecret"))
        .stderr(Has("never turns it on"));
    assert_eq!(
        positions(&r.stderr, &f),
        [(3, 8), (4, 11), (8, 9), (10, 5)],
        "{r:?}"
    );
}

#[test]
fn render_warns_and_reads_stdin() {
    kstep(
        &["traefik", "render", "--values", "-"],
        &[],
        Some(b"insecureSkipVerify: true\n"),
    )
    .ok()
    .stderr(StartsWith("<stdin>:1:21: warning: insecureSkipVerify"))
    .stdout(Has("insecureSkipVerify: true"));
    run(&["traefik", "render", "--values", "/nonexistent/values.yaml"]).fails_with(2);
}

#[test]
fn example_values_reproduce_the_reference_workflow_on_traefik_v3() {
    let file = repo_root().join("ci-templates/examples/traefik-values.yaml");
    let r = run(&["traefik", "render", "--values", file.to_str().unwrap()]);
    // The one warning: the original's insecureSkipVerify.
    r.ok().stderr(Has("warning: insecureSkipVerify"));
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    let items = render_json(file.to_str().unwrap());
    let pvc = find(&items, "PersistentVolumeClaim", "traefik-acme");
    assert_eq!(pvc["spec"]["storageClassName"], "cinder-classic");
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "1Gi");
    assert_eq!(pvc["spec"]["accessModes"][0], "ReadWriteOnce");
    let dep = find(&items, "Deployment", "traefik");
    assert_eq!(dep["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(dep["spec"]["replicas"], 1);
    let cm = find(&items, "ConfigMap", "traefik-config");
    let s = yaml(cm["data"]["traefik.yaml"].as_str().unwrap());
    let acme = &s["certificatesResolvers"]["letsencrypt"]["acme"];
    assert_eq!(acme["email"], "contact@cerenit.fr");
    assert_eq!(acme["httpChallenge"]["entryPoint"], "web");
    assert_eq!(s["serversTransport"]["insecureSkipVerify"], true);
    assert_eq!(
        s["entryPoints"]["web"]["http"]["redirections"]["entryPoint"]["to"],
        "websecure"
    );
    let dynamic = yaml(cm["data"]["dynamic.yaml"].as_str().unwrap());
    let router = &dynamic["http"]["routers"]["dashboard"];
    assert_eq!(router["rule"], "Host(`traefik.k8s.cerenit.fr`)");
    assert_eq!(router["service"], "api@internal");
    assert_eq!(router["tls"]["certResolver"], "letsencrypt");
    let lb = find(&items, "Service", "traefik-lb");
    assert_eq!(lb["spec"]["type"], "LoadBalancer");
    let ports: Vec<i64> = lb["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, [80, 443]);
}

#[test]
fn migrate_the_reference_traefik_toml() {
    let d = TempDir::new("traefik-migrate-reference");
    let f = d.write("traefik.toml", REFERENCE_TOML);
    let r = run(&["traefik", "migrate", &f]);
    r.ok();
    let s = yaml(&r.stdout);
    assert_eq!(s["log"]["level"], "INFO");
    assert_eq!(s["entryPoints"]["web"]["address"], ":80");
    assert_eq!(s["entryPoints"]["web"]["asDefault"], true);
    assert_eq!(
        s["entryPoints"]["web"]["http"]["redirections"]["entryPoint"]["to"],
        "websecure"
    );
    assert_eq!(s["entryPoints"]["websecure"]["address"], ":443");
    assert_eq!(
        s["entryPoints"]["websecure"]["http"]["tls"]["certResolver"],
        "letsencrypt"
    );
    assert_eq!(s["entryPoints"]["traefik"]["address"], ":8080");
    assert_eq!(s["serversTransport"]["insecureSkipVerify"], true);
    assert_eq!(s["api"]["dashboard"], true);
    assert!(s["api"].get("insecure").is_none());
    assert!(s["providers"]["kubernetesIngress"].is_object());
    let acme = &s["certificatesResolvers"]["letsencrypt"]["acme"];
    assert_eq!(acme["email"], "contact@cerenit.fr");
    assert_eq!(acme["storage"], "/acme/acme.json");
    assert_eq!(acme["httpChallenge"]["entryPoint"], "web");
    // Exactly one setting has no v3 equivalent kstep emits: the unauthenticated API entry point.
    let warnings: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains(": warning: not carried over: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{r:?}");
    assert!(
        warnings[0].starts_with(&format!(
            "{f}:27:1: warning: not carried over: api.entryPoint: "
        )),
        "{warnings:?}"
    );
    r.stderr(Has(&format!("{f}:20:1: note: acme.storage: ")));
    // --quiet keeps the warnings, drops the notes; TOML output carries the same settings.
    let r = run(&["traefik", "migrate", &f, "--output", "toml", "--quiet"]);
    r.ok();
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    for line in [
        "[entryPoints.web]",
        "address = \":80\"",
        "[entryPoints.web.http.redirections.entryPoint]",
        "to = \"websecure\"",
        "[certificatesResolvers.letsencrypt.acme.httpChallenge]",
        "[providers.kubernetesIngress]",
    ] {
        assert!(
            r.stdout.lines().any(|l| l == line),
            "{line} in {}",
            r.stdout
        );
    }
}

#[test]
fn migrate_refuses_what_is_not_toml() {
    let d = TempDir::new("traefik-migrate-invalid");
    let f = d.write("traefik.toml", "logLevel = \"INFO\"\n[entryPoints\n");
    let r = run(&["traefik", "migrate", &f]);
    r.fails_with(2);
    assert_eq!(
        positions(&r.stderr, &f).first().map(|p| p.0),
        Some(2),
        "{r:?}"
    );
}

// ---------------------------------------------------------------- a real Traefik

/// The Traefik binary `tests/traefik/build.sh` builds.
fn traefik_bin() -> PathBuf {
    if let Ok(p) = std::env::var("KSTEP_TRAEFIK") {
        return p.into();
    }
    let testbin = std::env::var("KSTEP_TESTBIN").map_or_else(
        |_| Path::new(&std::env::var("HOME").unwrap()).join(".cache/kstep-testbin"),
        PathBuf::from,
    );
    let bin = testbin.join("traefik-v3.6.12/traefik");
    assert!(
        bin.is_file(),
        "no Traefik binary at {}: run `bash tests/traefik/build.sh` first (or set KSTEP_TRAEFIK)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Status, headers (names lowercased) and body of a response.
type Response = (u16, Vec<(String, String)>, String);

/// One HTTP/1.1 request on loopback.
fn http_get(port: u16, path: &str, host: &str) -> Option<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some((status, headers, body.to_owned()))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A running Traefik, killed on drop.
struct Traefik {
    child: Child,
    log: PathBuf,
}

impl Traefik {
    fn start(config: &Path, log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).unwrap();
        // Traefik's Kubernetes providers prefer $KUBECONFIG (and in-cluster variables) to
        // their configured endpoint and token: the test environment's admin kubeconfig must
        // not stand in for the rendered ServiceAccount.
        let child = Command::new(traefik_bin())
            .arg(format!("--configFile={}", config.display()))
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for `/ping` on the traefik entry point to answer 200.
    fn wait_ping(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some((200, _, body)) = http_get(port, "/ping", "localhost") {
                assert_eq!(body, "OK");
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("traefik exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "no /ping answer in 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the file provider's routers: `/ping` answers as soon as the static
    /// configuration is up, the dynamic file is loaded a moment later, and until then every
    /// host on websecure is a 404.
    fn wait_route(&mut self, port: u16, host: &str, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while curl_https(port, host, path, None).0 == 404 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("traefik exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "no router for {host}{path} in 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Traefik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// curl over TLS to Traefik's websecure port, for `host` resolved to 127.0.0.1 (Traefik serves
/// its default self-signed certificate: the ACME CA is unreachable on purpose).
fn curl_https(port: u16, host: &str, path: &str, user: Option<&str>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sk", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"])
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"));
    if let Some(u) = user {
        cmd.arg("-u").arg(u);
    }
    let out = cmd
        .arg(format!("https://{host}:{port}{path}"))
        .output()
        .expect("curl (needed for the TLS checks)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// Rewrites an `address: ":PORT"` to loopback, checking it was what the values asked for.
fn loopback(static_config: &mut Value, entry_point: &str, port: u16) {
    let address = &mut static_config["entryPoints"][entry_point]["address"];
    assert_eq!(*address, format!(":{port}"), "{entry_point}");
    *address = Value::String(format!("127.0.0.1:{port}"));
}

#[test]
#[ignore = "needs traefik (bash tests/traefik/build.sh)"]
fn rendered_configuration_runs_in_a_real_traefik() {
    traefik_bin(); // fail early, with the build command, when it is missing
    let d = TempDir::new("traefik-real");
    let (web, websecure, internal) = (free_port(), free_port(), free_port());
    let values = format!(
        "namespace: edge\nlogLevel: DEBUG\nentryPoints:\n  web:\n    port: {web}\n  websecure:\n    port: {websecure}\n  traefik:\n    port: {internal}\nacme:\n  email: ops@example.com\n  caServer: https://127.0.0.1:1/directory\ndashboard:\n  host: {DASHBOARD_HOST}\n  basicAuthSecret: dash-users\nextraArgs:\n  - --accesslog=true\n  - --accesslog.format=json\n"
    );
    let values_file = d.write("values.yaml", &values);
    let items = render_json(&values_file);

    // What the pod would see: the ConfigMap at /config, the PVC at /data, the Secret at
    // /etc/traefik/dashboard-auth. The test maps each mount to a directory of its own.
    let dep = find(&items, "Deployment", "traefik");
    let pod = &dep["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["args"][0], "--configFile=/config/traefik.yaml");
    let mounts: Vec<(String, String)> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["mountPath"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (name, path) in [
        ("config", "/config"),
        ("acme", "/data"),
        ("dashboard-auth", "/etc/traefik/dashboard-auth"),
    ] {
        assert!(
            mounts.contains(&(name.to_owned(), path.to_owned())),
            "{name} at {path}: {mounts:?}"
        );
    }
    let cm = find(&items, "ConfigMap", "traefik-config");
    let mut static_config = yaml(cm["data"]["traefik.yaml"].as_str().unwrap());
    let mut dynamic = yaml(cm["data"]["dynamic.yaml"].as_str().unwrap());

    // The Kubernetes provider needs a cluster (the cluster test runs it against one): check its
    // shape here and leave it out.
    let providers = static_config["providers"].as_object_mut().unwrap();
    let ingress = providers.remove("kubernetesIngress").unwrap();
    assert_eq!(
        ingress["ingressEndpoint"]["publishedService"],
        "edge/traefik-lb"
    );
    assert_eq!(providers["file"]["filename"], "/config/dynamic.yaml");
    let data = d.join("data");
    std::fs::create_dir_all(&data).unwrap();
    providers.get_mut("file").unwrap()["filename"] =
        Value::String(d.join("dynamic.yaml").to_str().unwrap().into());
    loopback(&mut static_config, "web", web);
    loopback(&mut static_config, "websecure", websecure);
    loopback(&mut static_config, "traefik", internal);
    let acme = &mut static_config["certificatesResolvers"]["letsencrypt"]["acme"];
    assert_eq!(acme["storage"], "/data/acme.json");
    let storage = data.join("acme.json");
    acme["storage"] = Value::String(storage.to_str().unwrap().into());
    let auth = &mut dynamic["http"]["middlewares"]["dashboard-auth"]["basicAuth"];
    assert_eq!(auth["usersFile"], "/etc/traefik/dashboard-auth/users");
    auth["usersFile"] = Value::String(d.write("users", DASHBOARD_USERS));
    d.write("dynamic.yaml", dynamic.to_string());
    // JSON is YAML; Traefik picks its parser by the extension.
    let config = PathBuf::from(d.write("traefik.yaml", static_config.to_string()));

    // The init container's script, on a volume where kubelet's fsGroup handling left the file
    // group-readable: afterwards Traefik must accept it (mode 600).
    let init = &pod["initContainers"][0];
    assert_eq!(init["command"][0], "/bin/sh");
    let script = init["command"][2]
        .as_str()
        .unwrap()
        .replace("/data/acme.json", storage.to_str().unwrap());
    std::fs::write(&storage, "").unwrap();
    set_mode(&storage, 0o660);
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&storage), 0o600);

    let mut traefik = Traefik::start(&config, d.join("traefik.log"));
    traefik.wait_ping(internal);
    traefik.wait_route(websecure, DASHBOARD_HOST, "/api/version");

    // HTTP → HTTPS, permanent, path kept.
    let (status, headers, _) = http_get(web, "/some/path?q=1", "app.kstep.test").unwrap();
    assert!(status == 301 || status == 308, "{status} {headers:?}");
    let location = header(&headers, "location").unwrap();
    assert!(
        location.starts_with("https://app.kstep.test") && location.ends_with("/some/path?q=1"),
        "{location}"
    );

    // The dashboard (the API of api@internal) only on its host, only with the password.
    let (code, _) = curl_https(websecure, DASHBOARD_HOST, "/api/version", None);
    assert_eq!(code, 401);
    let (code, _) = curl_https(
        websecure,
        DASHBOARD_HOST,
        "/api/version",
        Some("admin:wrong-password"),
    );
    assert_eq!(code, 401);
    let (code, body) = curl_https(
        websecure,
        DASHBOARD_HOST,
        "/api/version",
        Some(&format!("admin:{DASHBOARD_PASSWORD}")),
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"Version\":\"v3.6.12\""), "{body}");
    let (code, _) = curl_https(
        websecure,
        "other.kstep.test",
        "/api/version",
        Some(&format!("admin:{DASHBOARD_PASSWORD}")),
    );
    assert_eq!(code, 404);
    // Not on the traefik entry point either: api.insecure is off.
    let (status, _, _) = http_get(internal, "/api/version", "localhost").unwrap();
    assert_eq!(status, 404);

    // extraArgs reached the file: the access log is JSON.
    let log = traefik.log();
    let loaded = log
        .lines()
        .find(|l| l.contains("Static configuration loaded"))
        .unwrap_or_else(|| panic!("no static configuration in the log:\n{log}"));
    assert!(loaded.contains("\"accessLog\":{"), "{loaded}");
    assert!(loaded.contains("\"format\":\"json\""), "{loaded}");
    assert!(!log.contains("too open"), "{log}");
    assert!(!log.contains("field not found"), "{log}");
}

#[test]
#[ignore = "needs traefik (bash tests/traefik/build.sh)"]
fn migrated_reference_configuration_runs_in_a_real_traefik_in_both_formats() {
    traefik_bin();
    let d = TempDir::new("traefik-real-migrated");
    let toml_file = d.write("traefik.toml", REFERENCE_TOML);
    for format in ["yaml", "toml"] {
        let (web, websecure, internal) = (free_port(), free_port(), free_port());
        let r = run(&[
            "traefik", "migrate", &toml_file, "--output", format, "--quiet",
        ]);
        r.ok();
        let storage = d.join(format!("acme-{format}.json"));
        // The same adaptations as for a rendered configuration: loopback ports, no Kubernetes
        // provider, a local storage file, an unreachable CA, and ping to know when it is up
        // (the v1 file had no [ping]).
        let (config, text) = if format == "yaml" {
            let mut c = yaml(&r.stdout);
            loopback(&mut c, "web", 80);
            loopback(&mut c, "websecure", 443);
            loopback(&mut c, "traefik", 8080);
            for (ep, port) in [
                ("web", web),
                ("websecure", websecure),
                ("traefik", internal),
            ] {
                c["entryPoints"][ep]["address"] = Value::String(format!("127.0.0.1:{port}"));
            }
            c["providers"]
                .as_object_mut()
                .unwrap()
                .remove("kubernetesIngress")
                .unwrap();
            // `providers: {}` is refused ("cannot be a standalone element").
            assert!(c["providers"].as_object().unwrap().is_empty());
            c.as_object_mut().unwrap().remove("providers");
            let acme = &mut c["certificatesResolvers"]["letsencrypt"]["acme"];
            acme["storage"] = Value::String(storage.to_str().unwrap().into());
            acme["caServer"] = Value::String("https://127.0.0.1:1/directory".into());
            c["ping"] = serde_json::json!({ "entryPoint": "traefik" });
            ("traefik.yaml", c.to_string())
        } else {
            let mut t = r.stdout.clone();
            for (from, port) in [(":80", web), (":443", websecure), (":8080", internal)] {
                let line = format!("address = \"{from}\"");
                assert_eq!(t.matches(&line).count(), 1, "{line} in {t}");
                t = t.replace(&line, &format!("address = \"127.0.0.1:{port}\""));
            }
            assert!(t.contains("\n[providers.kubernetesIngress]\n"), "{t}");
            t = t.replace("\n[providers.kubernetesIngress]\n", "\n");
            let line = "storage = \"/acme/acme.json\"";
            assert!(t.contains(line), "{t}");
            t = t.replace(
                line,
                &format!(
                    "storage = \"{}\"\ncaServer = \"https://127.0.0.1:1/directory\"",
                    storage.display()
                ),
            );
            t.push_str("\n[ping]\nentryPoint = \"traefik\"\n");
            ("traefik.toml", t)
        };
        let config = PathBuf::from(d.write(&format!("{format}-{config}"), &text));
        let mut traefik = Traefik::start(&config, d.join(format!("traefik-{format}.log")));
        traefik.wait_ping(internal);
        // v1's redirect was temporary, and stays so.
        let (status, headers, _) = http_get(web, "/x", "app.kstep.test").unwrap();
        assert!(
            status == 302 || status == 307,
            "{format}: {status} {headers:?}"
        );
        let location = header(&headers, "location").unwrap();
        assert!(location.starts_with("https://app.kstep.test"), "{location}");
        // Every router on websecure gets TLS (from the resolver, else the default certificate).
        let (code, _) = curl_https(websecure, "app.kstep.test", "/", None);
        assert_eq!(code, 404, "{format}");
        let log = traefik.log();
        assert!(!log.contains("field not found"), "{log}");
        assert!(!log.contains("too open"), "{log}");
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------- the real API server

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// The `kstep traefik render … | kstep apply …` line of docs/traefik.md (continuation joined)
/// and of the example values file's header: the same command, as the words of its two halves.
fn documented_example() -> (Vec<String>, Vec<String>) {
    let root = repo_root();
    let doc = std::fs::read_to_string(root.join("docs/traefik.md")).unwrap();
    let start = "kstep traefik render --values ci-templates/examples/traefik-values.yaml";
    let in_doc = doc
        .split_once(start)
        .map(|(_, rest)| rest.split("\n```").next().unwrap())
        .map(|rest| format!("{start}{}", rest.replace("\\\n", " ")))
        .expect("the example in docs/traefik.md");
    let values =
        std::fs::read_to_string(root.join("ci-templates/examples/traefik-values.yaml")).unwrap();
    let in_values = values
        .lines()
        .find_map(|l| l.strip_prefix("#   ").filter(|c| c.starts_with(start)))
        .expect("the example in the values file's header");
    let words = |c: &str| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let (render, apply) = in_doc.split_once(" | ").unwrap();
    assert_eq!(words(&in_doc), words(in_values), "the two copies differ");
    (words(render), words(apply))
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh; . target/test-cluster/env)"]
fn the_documented_example_applies_as_written() {
    let kubeconfig = cluster::admin_kubeconfig();
    let (render, apply) = documented_example();
    assert_eq!(render[..2], ["kstep", "traefik"]);
    assert_eq!(apply[..2], ["kstep", "apply"]);
    let args: Vec<&str> = render[1..].iter().map(String::as_str).collect();
    let rendered = crate::support::kstep_command(&args)
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{rendered:?}");
    // As written, plus --dry-run: the namespace `traefik` and the ClusterRole are shared names
    // in the test cluster. The namespace policy is checked before any request either way.
    let mut args: Vec<&str> = apply[1..].iter().map(String::as_str).collect();
    args.push("--dry-run");
    let run = kstep(
        &args,
        &[("KUBECONFIG", &kubeconfig)],
        Some(&rendered.stdout),
    );
    run.ok();
    run.stdout(Has("deployment.apps/"));
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh; . target/test-cluster/env)"]
fn every_rendered_manifest_passes_server_side_dry_run_with_strict_validation() {
    cluster::admin_kubeconfig(); // fail early, with the way to get one, when it is missing
    let d = TempDir::new("traefik-dry-run");
    for (i, extra) in [
        "",
        "acme:\n  email: ops@example.com\n  challenge: dns\n  dnsProvider: ovh\n  dnsCredentialsSecret: ovh-credentials\npersistence:\n  size: 1Gi\n  storageClass: standard\ndashboard:\n  host: traefik.example.com\n  basicAuthSecret: dash-users\nkubernetesCRD: true\nallowExternalNameServices: true\ninsecureSkipVerify: true\nextraArgs:\n  - --accesslog=true\n",
        "acme:\n  email: ops@example.com\n  challenge: tls\nredirectToHttps: false\nreplicas: 1\nresources:\n  limits:\n    cpu: '2'\n    memory: 1Gi\n",
    ]
    .iter()
    .enumerate()
    {
        let ns = unique("kstep-traefik-dry");
        let class = unique("kstep-dry");
        let values = format!("namespace: {ns}\ningressClass:\n  name: {class}\n  default: false\n{extra}");
        let file = d.write(&format!("values-{i}.yaml"), &values);
        let r = run(&["traefik", "render", "--values", &file]);
        r.ok();
        let _cleanup = Cleanup::default().object("namespace", &ns);
        // Namespaced objects cannot be dry-run in a namespace that does not exist yet.
        kubectl_ok(&["create", "namespace", &ns]);
        let out = kubectl_stdin(
            &[
                "apply",
                "--server-side",
                "--dry-run=server",
                "--validate=strict",
                "--field-manager=kstep-test",
                "-f",
                "-",
            ],
            &r.stdout,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "values {i}:\n{stdout}\n{stderr}");
        // Every object, and not one warning (unknown fields, deprecated APIs, Pod Security).
        assert_eq!(
            stdout.lines().filter(|l| l.ends_with("(server dry run)")).count(),
            r.stdout.matches("---\n").count(),
            "{stdout}"
        );
        assert!(!stderr.contains("Warning"), "values {i}: {stderr}");
    }
}

#[test]
#[ignore = "needs a cluster and traefik (tests/cluster/up.sh; bash tests/traefik/build.sh)"]
fn rendered_deployment_rolls_out_and_traefik_routes_with_only_its_rbac() {
    let kubeconfig = cluster::admin_kubeconfig();
    let server = std::env::var("KSTEP_TEST_CLUSTER_SERVER").expect("KSTEP_TEST_CLUSTER_SERVER");
    // Next to the admin kubeconfig (target/test-cluster/ of the checkout that started the
    // cluster, which need not be this one).
    let ca = Path::new(&kubeconfig).with_file_name("pki/ca.crt");
    let d = TempDir::new("traefik-cluster-routing");
    let ns = unique("kstep-traefik");
    let class = unique("kstep-traefik");
    let (web, websecure, internal) = (free_port(), free_port(), free_port());
    let values = format!(
        "namespace: {ns}\ningressClass:\n  name: {class}\n  default: false\nredirectToHttps: false\nallowExternalNameServices: true\nentryPoints:\n  web:\n    port: {web}\n  websecure:\n    port: {websecure}\n  traefik:\n    port: {internal}\n"
    );
    let values_file = d.write("values.yaml", &values);
    let r = run(&["traefik", "render", "--values", &values_file]);
    r.ok();
    let _cleanup = Cleanup::default()
        .object("clusterrole", &format!("traefik-{ns}"))
        .object("clusterrolebinding", &format!("traefik-{ns}"))
        .object("ingressclass", &class)
        .object("namespace", &ns);

    // The product path: kstep apply (server-side, dry run first) and the rollout wait. The
    // namespace enforces Pod Security `restricted`: pods that break it are never created.
    kstep(
        &[
            "apply",
            "-f",
            "-",
            "--allow-cluster-scoped",
            "--allow-namespace",
            &ns,
            "--wait",
            "--timeout",
            "90s",
        ],
        &[("KUBECONFIG", &kubeconfig)],
        Some(r.stdout.as_bytes()),
    )
    .ok();
    let ready = kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "deployment",
        "traefik",
        "-o",
        "jsonpath={.status.readyReplicas}",
    ]);
    assert_eq!(ready, "1");

    // A local Traefik with the rendered configuration, watching the cluster as the rendered
    // ServiceAccount: only the rendered ClusterRole stands between it and the API.
    let token = kubectl_ok(&["-n", &ns, "create", "token", "traefik", "--duration=10m"]);
    let items = render_json(&values_file);
    let cm = find(&items, "ConfigMap", "traefik-config");
    let mut static_config = yaml(cm["data"]["traefik.yaml"].as_str().unwrap());
    loopback(&mut static_config, "web", web);
    loopback(&mut static_config, "websecure", websecure);
    loopback(&mut static_config, "traefik", internal);
    let provider = &mut static_config["providers"]["kubernetesIngress"];
    assert_eq!(provider["allowExternalNameServices"], true);
    provider["endpoint"] = Value::String(server.clone());
    provider["token"] = Value::String(token.trim().to_owned());
    provider["certAuthFilePath"] = Value::String(ca.to_str().unwrap().into());
    let config = PathBuf::from(d.write("traefik.yaml", static_config.to_string()));
    let mut traefik = Traefik::start(&config, d.join("traefik.log"));
    traefik.wait_ping(internal);

    // A backend on loopback, reached through an ExternalName Service and an Ingress of the
    // rendered class.
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_port = backend.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in backend.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n\r\nkstep-backend\n",
            );
        }
    });
    let objects = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: backend\n  namespace: {ns}\nspec:\n  type: ExternalName\n  externalName: localhost\n  ports:\n  - name: http\n    port: {backend_port}\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: app\n  namespace: {ns}\nspec:\n  ingressClassName: {class}\n  rules:\n  - host: app.kstep.test\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: backend\n            port:\n              number: {backend_port}\n"
    );
    kubectl_stdin_ok(&["apply", "-f", "-"], &objects);
    // No cloud controller gives the LoadBalancer Service an address: play its part, so that
    // Traefik has a status to copy to the Ingress (ingresses/status, publishedService).
    kubectl_ok(&[
        "-n",
        &ns,
        "patch",
        "service",
        "traefik-lb",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":[{"hostname":"lb.kstep.test"}]}}}"#,
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((200, _, body)) = http_get(web, "/", "app.kstep.test") {
            assert_eq!(body, "kstep-backend\n");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Ingress was not routed in 30 s:\n{}",
            traefik.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = kubectl_ok(&[
            "-n",
            &ns,
            "get",
            "ingress",
            "app",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].hostname}",
        ]);
        if status == "lb.kstep.test" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Ingress status was not updated in 30 s:\n{}",
            traefik.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = traefik.log();
    assert!(
        log.contains(&format!(
            "Creating cluster-external Provider client with endpoint {server}"
        )),
        "Traefik did not use the ServiceAccount token:\n{log}"
    );
    assert!(!log.to_ascii_lowercase().contains("forbidden"), "{log}");
}
