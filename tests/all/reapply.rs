//! Re-applying what is already in the cluster (`deploy/in_sync.rs`): an object the apply would
//! leave as it is is read, not sent. An admission policy that refuses every write shows it —
//! an unchanged re-apply never meets it, a changed object does — and whatever changed, in the
//! cluster or in the manifests, is applied as before.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cluster::{self, Cleanup, Namespace, kubectl, kubectl_json, kubectl_ok};
use crate::support::Text::{Has, Lacks};
use crate::support::{Run, TempDir, kstep, repo_root};

fn as_admin(args: &[&str]) -> Run {
    let kubeconfig = cluster::admin_kubeconfig();
    kstep(args, &[("KUBECONFIG", &kubeconfig)], None)
}

/// A policy refusing every create and update matched by `rules` and `selector`.
fn deny_everything(name: &str, rules: &str, selector: &str) -> Cleanup {
    cluster::admission_policy(
        name,
        rules,
        &format!(r#"expression: "false", message: "{name} refuses every write""#),
        selector,
    )
}

/// Waits until `probe` (a `kubectl … --dry-run=server` command) is refused by policy `name`
/// (`refused`), or accepted (`!refused`): policies take a moment to be enforced or dropped.
fn until_policy(name: &str, probe: &[&str], refused: bool) {
    let started = Instant::now();
    loop {
        let out = kubectl(probe);
        let is_refused = String::from_utf8_lossy(&out.stderr).contains("refuses every write");
        if is_refused == refused && (refused || out.status.success()) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "policy {name} not {}: {out:?}",
            if refused { "enforced" } else { "gone" }
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn an_unchanged_reapply_sends_nothing_and_every_change_is_applied() {
    let ns = Namespace::create("reapply");
    let n = ns.name.as_str();
    let dir = TempDir::new("reapply");
    let objects = dir.join("objects.yaml");
    // The benchmark's 100 objects: ConfigMaps, Secrets (stringData), ServiceAccounts (nothing
    // but a name), Services and Deployments (defaulted port protocols), Roles, RoleBindings,
    // Ingresses.
    let status = Command::new("python3")
        .arg(repo_root().join("bench/objects.py"))
        .arg(&objects)
        .status()
        .unwrap();
    assert!(status.success());
    let file = objects.to_str().unwrap();
    as_admin(&["apply", "-f", file, "-n", n]).ok();

    // Changes in the cluster: one that kstep's apply undoes (the replicas it set), one that
    // is not kstep's business (a label it never set).
    kubectl_ok(&["scale", "deployment", "app-3", "--replicas=2", "-n", n]);
    kubectl_ok(&["label", "configmap", "config-5", "team=web", "-n", n]);

    let policy = format!("kstep-test-reapply-{}", std::process::id());
    let cleanup = deny_everything(
        &policy,
        r#"[{apiGroups: ["*"], apiVersions: ["*"], operations: [CREATE, UPDATE], resources: ["*"], scope: Namespaced}]"#,
        &cluster::in_namespace(n),
    );
    let probe = ["create", "configmap", "probe", "-n", n, "--dry-run=server"];
    until_policy(&policy, &probe, true);

    // Only the Deployment whose replicas changed is sent: its dry run conflicts with the
    // manager that scaled it. Everything else was proven unchanged from what was read — had it
    // been sent, the policy would have refused it.
    let run = as_admin(&["apply", "-f", file, "-n", n]);
    run.exits_with(1);
    run.stderr(Has("rejected 1 object(s) in the dry run"));
    run.stderr(Has("deployment.apps/app-3: 409 Conflict"));
    run.stderr(Lacks("refuses every write"));

    drop(cleanup);
    until_policy(&policy, &probe, false);
    let run = as_admin(&["apply", "-f", file, "-n", n, "--force-conflicts"]);
    run.ok();
    run.stdout(Has("0 created, 1 configured, 99 unchanged"));
    run.stdout(Has("configured   deployment.apps/app-3"));
    let replicas =
        kubectl_json(&["get", "deployment", "app-3", "-n", n])["spec"]["replicas"].clone();
    assert_eq!(replicas, 1, "the manifest's replicas are back");
    let labels =
        kubectl_json(&["get", "configmap", "config-5", "-n", n])["metadata"]["labels"].clone();
    assert_eq!(labels["team"], "web", "another manager's label stays");

    // Changes in the manifests: a new value, a removed key (the apply removes it).
    let text = fs::read_to_string(&objects).unwrap();
    let changed = text
        .replace("  key: value-0\n", "  key: value-zero\n")
        .replace("  key: value-1\n  other: \"1\"\n", "  key: value-1\n");
    assert_ne!(changed, text);
    fs::write(&objects, changed).unwrap();
    let run = as_admin(&["apply", "-f", file, "-n", n]);
    run.ok();
    run.stdout(Has("0 created, 2 configured, 98 unchanged"));
    let data = |name: &str| kubectl_json(&["get", "configmap", name, "-n", n])["data"].clone();
    assert_eq!(data("config-0")["key"], "value-zero");
    assert!(
        data("config-1").get("other").is_none(),
        "{}",
        data("config-1")
    );
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn an_unchanged_crd_is_read_not_sent() {
    let id = format!("kstep-test-reapply-crd-{}", std::process::id());
    let plural = format!("r{}s", std::process::id());
    let crd_name = format!("{plural}.reapply.kstep.dev");
    let _crd = Cleanup::default().object("customresourcedefinition", &crd_name);
    let properties: String = (0..200)
        .map(|p| format!("              field{p}: {{type: object, description: \"Field {p}, documented at length.\", properties: {{a: {{type: string}}, b: {{type: integer, minimum: 1}}}}}}\n"))
        .collect();
    let crd = format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {crd_name}
  labels: {{kstep-test-reapply: {id}}}
spec:
  group: reapply.kstep.dev
  names: {{kind: Reapply, plural: {plural}, singular: r{pid}, listKind: ReapplyList}}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        required: [spec]
        properties:
          spec:
            type: object
            properties:
{properties}"#,
        pid = std::process::id()
    );
    let dir = TempDir::new("reapply-crd");
    let file = dir.join("crd.yaml");
    fs::write(&file, crd).unwrap();
    let file = file.to_str().unwrap();
    as_admin(&["apply", "-f", file, "--allow-cluster-scoped"]).ok();

    let _policy = deny_everything(
        &id,
        r#"[{apiGroups: [apiextensions.k8s.io], apiVersions: ["*"], operations: [CREATE, UPDATE], resources: [customresourcedefinitions]}]"#,
        &format!("{{objectSelector: {{matchLabels: {{kstep-test-reapply: {id}}}}}}}"),
    );
    until_policy(
        &id,
        &["label", "crd", &crd_name, "probe=1", "--dry-run=server"],
        true,
    );
    let run = as_admin(&["apply", "-f", file, "--allow-cluster-scoped"]);
    run.ok();
    run.stdout(Has("0 created, 0 configured, 1 unchanged"));
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn an_identity_that_may_not_list_reads_each_object() {
    let ns = Namespace::create("reapply-get");
    let n = ns.name.as_str();
    kubectl_ok(&["create", "serviceaccount", "getter", "-n", n]);
    kubectl_ok(&[
        "create",
        "role",
        "getter",
        "--verb=get,create,patch",
        "--resource=configmaps",
        "-n",
        n,
    ]);
    kubectl_ok(&[
        "create",
        "rolebinding",
        "getter",
        "--role=getter",
        &format!("--serviceaccount={n}:getter"),
        "-n",
        n,
    ]);
    let token = kubectl_ok(&["create", "token", "getter", "-n", n, "--duration", "1h"]);
    let admin = kubectl_json(&["config", "view", "--raw", "--minify"]);
    let cluster = &admin["clusters"][0]["cluster"];
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: getter\n  user:\n    token: {}\ncontexts:\n- name: c\n  context: {{cluster: c, user: getter, namespace: {n}}}\ncurrent-context: c\n",
        cluster["server"].as_str().unwrap(),
        cluster["certificate-authority-data"].as_str().unwrap(),
        token.trim()
    );
    let dir = TempDir::new("reapply-get");
    let config = dir.join("kubeconfig");
    fs::write(&config, kubeconfig).unwrap();
    let objects = dir.join("objects.yaml");
    let documents: Vec<String> = (0..4)
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  key: v{i}\n"
            )
        })
        .collect();
    fs::write(&objects, documents.join("---\n")).unwrap();
    let apply = || {
        kstep(
            &["apply", "-f", objects.to_str().unwrap()],
            &[("KUBECONFIG", config.to_str().unwrap())],
            None,
        )
    };
    let run = apply();
    run.ok();
    run.stdout(Has("4 created, 0 configured, 0 unchanged"));
    // The list of the four ConfigMaps is forbidden: each is read instead, and proven
    // unchanged — had one been sent, the policy would have refused it.
    let policy = format!("kstep-test-reapply-get-{}", std::process::id());
    let _policy = deny_everything(
        &policy,
        r#"[{apiGroups: ["*"], apiVersions: ["*"], operations: [CREATE, UPDATE], resources: ["*"], scope: Namespaced}]"#,
        &cluster::in_namespace(n),
    );
    let probe = ["create", "configmap", "probe", "-n", n, "--dry-run=server"];
    until_policy(&policy, &probe, true);
    let run = apply();
    run.ok();
    run.stdout(Has("0 created, 0 configured, 4 unchanged"));
}
