//! Adopting what is already deployed (docs/migrating.md), against the real control plane with
//! the kubectl built for it: client-side `kubectl apply` then `kstep deploy`, `kubectl apply
//! --server-side` then `kstep apply --field-manager kubectl`, and Helm-managed objects refused,
//! then adopted with `--adopt helm`.

use serde_json::{Value, json};

use crate::cluster::{self, Namespace, kubectl_json, kubectl_ok};
use crate::support::Text::{Has, Lacks};
use crate::support::{Run, TempDir, kstep};

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A Deployment `web` with image `registry.local/web:TAG`, and `extra_metadata` lines.
fn web(tag: &str, extra_metadata: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    app: web\n{extra_metadata}\
         spec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    \
         spec:\n      containers:\n        - name: web\n          image: registry.local/web:{tag}\n          ports:\n            - containerPort: 8080\n"
    )
}

fn as_admin(args: &[&str]) -> Run {
    let kubeconfig = cluster::admin_kubeconfig();
    kstep(args, &[("KUBECONFIG", &kubeconfig)], None)
}

fn live(ns: &Namespace) -> Value {
    kubectl_json(&[
        "get",
        "deployment",
        "web",
        "-n",
        &ns.name,
        "--show-managed-fields",
    ])
}

fn image(object: &Value) -> &str {
    object["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
}

/// The managers of `object` (subresources left out), with their operation.
fn managers(object: &Value) -> Vec<(String, String)> {
    object["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.get("subresource").is_none())
        .map(|e| {
            (
                e["manager"].as_str().unwrap().to_owned(),
                e["operation"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The Deployment once its controller has seen it (revision annotation written, generation
/// observed): from then on only its status moves on its own.
fn settled(ns: &Namespace) -> Value {
    for _ in 0..100 {
        let object = live(ns);
        if object["metadata"]["annotations"]["deployment.kubernetes.io/revision"].is_string()
            && object["status"]["observedGeneration"] == object["metadata"]["generation"]
        {
            return object;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the Deployment controller did not observe the Deployment within 10 s");
}

/// Asserts that nothing but the controllers wrote to the Deployment between `before` and
/// `now` (its status, and so its resourceVersion, moves on its own while pods start).
fn unchanged_since(before: &Value, now: &Value) {
    assert_eq!(
        now["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    assert_eq!(managers(now), managers(before));
    assert_eq!(image(now), image(before));
    assert_eq!(content(now), content(before));
    assert_eq!(
        now["metadata"]["annotations"],
        before["metadata"]["annotations"]
    );
}

/// The object without what the server and the controllers change on their own, and without
/// the container image (the one field the deploys change).
fn content(object: &Value) -> Value {
    let mut o = object.clone();
    o["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("image");
    json!({"labels": o["metadata"]["labels"], "spec": o["spec"]})
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn client_side_kubectl_apply_then_kstep_deploy() {
    let ns = Namespace::create("adopt-csa");
    let dir = TempDir::new("adopt-csa");
    let v1 = dir.write("v1.yaml", web("1", ""));
    let v2 = dir.write("v2.yaml", web("2", ""));
    kubectl_ok(&["apply", "-n", &ns.name, "-f", &v1]);
    let before = live(&ns);
    assert!(before["metadata"]["annotations"][LAST_APPLIED].is_string());

    let run = as_admin(&[
        "deploy",
        "-f",
        &v2,
        "--no-env",
        "-n",
        &ns.name,
        "--timeout",
        "90s",
    ]);
    run.ok();
    run.stdout(Has(
        "  adopted      deployment.apps/web: took over the fields of kubectl-client-side-apply for field manager kstep\n",
    ));
    assert_eq!(run.stdout.matches("adopted ").count(), 1, "{run:?}");
    run.stdout(Has("  configured   deployment.apps/web\n"));
    run.stderr(Lacks("conflict"));

    let after = live(&ns);
    assert_eq!(image(&after), "registry.local/web:2");
    assert_eq!(managers(&after), vec![("kstep".into(), "Apply".into())]);
    let kstep_fields = &after["metadata"]["managedFields"][0]["fieldsV1"];
    assert!(
        kstep_fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]
            ["f:ports"]
            .is_object(),
        "{kstep_fields}"
    );
    assert_eq!(content(&after), content(&before), "only the image changed");
    assert!(after["metadata"]["annotations"].get(LAST_APPLIED).is_none());
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);

    // The next deploy has nothing to take over.
    let again = as_admin(&["apply", "-f", &v2, "-n", &ns.name]);
    again.ok().stdout(Lacks("adopted")).stdout(Has("unchanged"));

    // A client-side `kubectl apply` by hand later (documented in docs/migrating.md): it warns
    // that the annotation is missing, applies its file (the image back to 1), re-creates the
    // annotation and owns what it changed again; kstep's next deploy takes it over again.
    let by_hand = cluster::kubectl(&["apply", "-n", &ns.name, "-f", &v1]);
    assert!(by_hand.status.success());
    let warning = String::from_utf8_lossy(&by_hand.stderr);
    assert!(
        warning.contains("missing the kubectl.kubernetes.io/last-applied-configuration annotation"),
        "{warning}"
    );
    let reverted = live(&ns);
    assert_eq!(image(&reverted), "registry.local/web:1");
    assert!(reverted["metadata"]["annotations"][LAST_APPLIED].is_string());
    assert!(managers(&reverted).contains(&("kubectl-client-side-apply".into(), "Update".into())));
    as_admin(&["apply", "-f", &v2, "-n", &ns.name])
        .ok()
        .stdout(Has("  adopted      deployment.apps/web"));
    let last = live(&ns);
    assert_eq!(image(&last), "registry.local/web:2");
    assert_eq!(managers(&last), vec![("kstep".into(), "Apply".into())]);
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn field_manager_kubectl_after_kubectl_server_side_apply() {
    let ns = Namespace::create("adopt-ssa");
    let dir = TempDir::new("adopt-ssa");
    let v1 = dir.write("v1.yaml", web("1", ""));
    let v2 = dir.write("v2.yaml", web("2", ""));
    kubectl_ok(&["apply", "--server-side", "-n", &ns.name, "-f", &v1]);

    // With kstep's own manager, the image belongs to `kubectl`: a conflict, nothing changed.
    let conflict = as_admin(&["apply", "-f", &v2, "-n", &ns.name]);
    conflict
        .exits_with(1)
        .stderr(Has("conflict with \"kubectl\""));
    assert_eq!(image(&live(&ns)), "registry.local/web:1");

    let run = as_admin(&[
        "apply",
        "-f",
        &v2,
        "-n",
        &ns.name,
        "--field-manager",
        "kubectl",
    ]);
    run.ok()
        .stdout(Has("field manager kubectl)"))
        .stdout(Has("  configured   deployment.apps/web\n"))
        .stdout(Lacks("adopted"));
    let after = live(&ns);
    assert_eq!(image(&after), "registry.local/web:2");
    assert_eq!(managers(&after), vec![("kubectl".into(), "Apply".into())]);

    let bad = as_admin(&["apply", "-f", &v2, "-n", &ns.name, "--field-manager", ""]);
    bad.fails_with(2).stderr(Has(
        "a field manager is 1 to 128 printable ASCII characters",
    ));
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn helm_managed_objects_are_refused_then_adopted() {
    let ns = Namespace::create("adopt-helm");
    let dir = TempDir::new("adopt-helm");
    let helm_metadata = format!(
        "    app.kubernetes.io/managed-by: Helm\n  annotations:\n    meta.helm.sh/release-name: production\n    meta.helm.sh/release-namespace: {}\n",
        ns.name
    );
    // Helm 3 writes with `Update` operations as the manager `helm`, as this does.
    let v1 = dir.write("v1.yaml", web("1", &helm_metadata));
    let v2 = dir.write("v2.yaml", web("2", ""));
    kubectl_ok(&[
        "apply",
        "--field-manager",
        "helm",
        "-n",
        &ns.name,
        "-f",
        &v1,
    ]);
    let before = settled(&ns);

    for args in [
        vec!["apply", "-f", &v2, "-n", &ns.name],
        vec!["apply", "-f", &v2, "-n", &ns.name, "--dry-run"],
    ] {
        let run = as_admin(&args);
        run.fails_with(2)
            .stderr(Has("error: 1 object(s) are managed by Helm; nothing was changed (to take them over from Helm, apply with --adopt helm; see docs/migrating.md)\n"))
            .stderr(Has(&format!(
                "{v2}:1:1: deployment.apps/web: managed by Helm release production in namespace {}\n",
                ns.name
            )));
    }
    unchanged_since(&before, &live(&ns));

    let dry = as_admin(&[
        "apply",
        "-f",
        &v2,
        "-n",
        &ns.name,
        "--adopt",
        "helm",
        "--dry-run",
    ]);
    dry.ok().stdout(Has(
        "  adopted      deployment.apps/web: would take over the fields of helm for field manager kstep; the label and annotations of Helm release production would be removed\n",
    ));
    unchanged_since(&before, &live(&ns));

    let run = as_admin(&[
        "apply", "-f", &v2, "-n", &ns.name, "--adopt", "helm", "--output", "json",
    ]);
    run.ok();
    let adopted: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "adopted")
        .collect();
    assert_eq!(
        adopted,
        vec![
            json!({"event": "adopted", "object": "deployment.apps/web", "namespace": ns.name,
                    "from": ["helm"], "helm_release": "production", "field_manager": "kstep",
                    "dry_run": false})
        ]
    );
    let after = live(&ns);
    assert_eq!(image(&after), "registry.local/web:2");
    assert_eq!(managers(&after), vec![("kstep".into(), "Apply".into())]);
    assert_eq!(after["metadata"]["labels"], json!({"app": "web"}));
    let annotations = after["metadata"]["annotations"].as_object().unwrap();
    assert!(
        annotations
            .keys()
            .all(|k| !k.starts_with("meta.helm.sh/") && k != LAST_APPLIED),
        "{annotations:?}"
    );
    assert_eq!(after["spec"]["replicas"], before["spec"]["replicas"]);
}
