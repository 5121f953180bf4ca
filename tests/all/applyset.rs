//! ApplySets, prune and teardown against the real control plane, with the kubectl built for it
//! as the reference: kubectl and kstep compute the same set id; prune deletes exactly the
//! members an apply dropped and nothing unlabelled; `kstep delete` leaves the namespace empty
//! of the set and succeeds again when the set is gone.

use crate::cluster::{
    self, Namespace, exists, kubectl, kubectl_json, kubectl_ok, kubectl_stdin_ok,
};
use crate::support::Text::{Has, Lacks};
use crate::support::{Run, TempDir, kstep};

fn as_admin(args: &[&str]) -> Run {
    let kubeconfig = cluster::admin_kubeconfig();
    kstep(args, &[("KUBECONFIG", &kubeconfig)], None)
}

fn config_map(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: value\n")
}

fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app: {name}\n  ports:\n    - port: 80\n"
    )
}

fn documents(docs: &[String]) -> String {
    docs.join("---\n")
}

fn label(ns: &Namespace, kind: &str, name: &str, key: &str) -> Option<String> {
    let object = kubectl_json(&["get", kind, name, "-n", &ns.name]);
    object["metadata"]["labels"][key]
        .as_str()
        .map(str::to_owned)
}

/// `KUBECTL_APPLYSET=true kubectl apply --server-side --applyset=kset --prune -f FILE`.
fn kubectl_applyset(ns: &Namespace, file: &str) -> std::process::Output {
    std::process::Command::new(cluster::kubectl_bin())
        .args([
            "apply",
            "--server-side",
            "--applyset=kset",
            "--prune",
            "-n",
            &ns.name,
            "-f",
            file,
        ])
        .env("KUBECONFIG", cluster::admin_kubeconfig())
        .env("KUBECTL_APPLYSET", "true")
        .output()
        .unwrap()
}

/// `kstep apply -f FILE -n NS --applyset app EXTRA…` as the admin.
fn apply_to_app(ns: &Namespace, file: &str, extra: &[&str]) -> Run {
    let mut args = vec!["apply", "-f", file, "-n", &ns.name, "--applyset", "app"];
    args.extend_from_slice(extra);
    as_admin(&args)
}

const ID: &str = "applyset.kubernetes.io/id";
const PART_OF: &str = "applyset.kubernetes.io/part-of";

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn kubectl_and_kstep_agree_on_the_id_and_refuse_each_others_sets() {
    let ns = Namespace::create("applyset-id");
    let dir = TempDir::new("applyset-id");
    let file = dir.write("cm.yaml", config_map("one"));

    // kubectl's set `kset`: its id is the reference.
    let out = kubectl_applyset(&ns, &file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kubectl_id = label(&ns, "secret", "kset", ID).expect("kubectl labels its parent");

    // kstep refuses to change kubectl's set, before anything is applied.
    as_admin(&["apply", "-f", &file, "-n", &ns.name, "--applyset", "kset"])
        .fails_with(2)
        .stderr(Has("managed by kubectl/"));

    // The same parent made by kstep has the same id, and its member the matching label.
    kubectl_ok(&["delete", "secret", "kset", "-n", &ns.name]);
    as_admin(&["apply", "-f", &file, "-n", &ns.name, "--applyset", "kset"]).ok();
    assert_eq!(label(&ns, "secret", "kset", ID), Some(kubectl_id.clone()));
    assert_eq!(label(&ns, "configmap", "one", PART_OF), Some(kubectl_id));
    let parent = kubectl_json(&["get", "secret", "kset", "-n", &ns.name]);
    let annotations = &parent["metadata"]["annotations"];
    assert!(
        annotations["applyset.kubernetes.io/tooling"]
            .as_str()
            .unwrap()
            .starts_with("kstep/v")
    );
    assert_eq!(
        annotations["applyset.kubernetes.io/contains-group-kinds"],
        "ConfigMap"
    );

    // And kubectl, in turn, refuses kstep's set.
    let out = kubectl_applyset(&ns, &file);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("kstep"));
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn prune_deletes_exactly_the_dropped_members() {
    let ns = Namespace::create("applyset-prune");
    let dir = TempDir::new("applyset-prune");
    let v1 = dir.write(
        "v1.yaml",
        documents(&[config_map("a"), config_map("b"), service("web")]),
    );
    let v2 = dir.write("v2.yaml", documents(&[config_map("a")]));
    let v3 = dir.write("v3.yaml", documents(&[config_map("z")]));
    apply_to_app(&ns, &v1, &["--prune"]).ok();

    // Neighbours prune must leave alone: unlabelled, and labelled for another set.
    kubectl_stdin_ok(
        &["apply", "-n", &ns.name, "-f", "-"],
        &config_map("unlabelled"),
    );
    kubectl_stdin_ok(
        &["apply", "-n", &ns.name, "-f", "-"],
        &config_map("other-set").replace(
            "  name: other-set\n",
            "  name: other-set\n  labels:\n    applyset.kubernetes.io/part-of: applyset-other-v1\n",
        ),
    );

    // A dry run lists what would go, and deletes nothing.
    apply_to_app(&ns, &v2, &["--prune", "--dry-run"])
        .ok()
        .stdout(Has("would prune 2 member(s)"))
        .stdout(Has("configmap/b in namespace"))
        .stdout(Has("service/web in namespace"));
    assert!(exists(&ns.name, "configmap", "b"));
    assert!(exists(&ns.name, "service", "web"));

    let run = apply_to_app(&ns, &v2, &["--prune"]);
    run.ok()
        .stdout(Has("Pruning 2 member(s) no longer applied"))
        .stdout(Lacks("unlabelled"))
        .stdout(Lacks("other-set"));
    // Listed before the first deletion.
    let listed = run.stdout.find("  - service/web").unwrap();
    let deleted = run.stdout.find("deleted      service/web").unwrap();
    assert!(listed < deleted, "{}", run.stdout);
    assert!(exists(&ns.name, "configmap", "a"));
    assert!(!exists(&ns.name, "configmap", "b"));
    assert!(!exists(&ns.name, "service", "web"));
    assert!(exists(&ns.name, "configmap", "unlabelled"));
    assert!(exists(&ns.name, "configmap", "other-set"));
    let parent = kubectl_json(&["get", "secret", "app", "-n", &ns.name]);
    assert_eq!(
        parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"],
        "ConfigMap"
    );

    // Without --prune, what is dropped stays, and stays a member for the next prune.
    apply_to_app(&ns, &v3, &[]).ok();
    assert!(exists(&ns.name, "configmap", "a"));
    apply_to_app(&ns, &v3, &["--prune"])
        .ok()
        .stdout(Has("configmap/a in namespace"));
    assert!(!exists(&ns.name, "configmap", "a"));
    assert!(exists(&ns.name, "configmap", "z"));

    // --prune without a set is a usage error.
    as_admin(&["apply", "-f", &v3, "-n", &ns.name, "--prune"]).fails_with(2);
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn delete_tears_the_set_down_and_is_idempotent() {
    let ns = Namespace::create("applyset-delete");
    let dir = TempDir::new("applyset-delete");
    let set = dir.write("set.yaml", documents(&[config_map("a"), service("web")]));
    as_admin(&["apply", "-f", &set, "-n", &ns.name, "--applyset", "review"]).ok();
    kubectl_stdin_ok(
        &["apply", "-n", &ns.name, "-f", "-"],
        &config_map("unlabelled"),
    );

    as_admin(&[
        "delete",
        "--applyset",
        "review",
        "-n",
        &ns.name,
        "--dry-run",
    ])
    .ok()
    .stdout(Has("Dry run: would delete 2 member(s)"));
    assert!(exists(&ns.name, "service", "web"));

    as_admin(&[
        "delete",
        "--applyset",
        "review",
        "-n",
        &ns.name,
        "--wait",
        "--timeout",
        "60s",
    ])
    .ok()
    .stdout(Has("  - configmap/a in namespace"))
    .stdout(Has("Deleted ApplySet secrets/review in namespace"));
    assert!(!exists(&ns.name, "configmap", "a"));
    assert!(!exists(&ns.name, "service", "web"));
    assert!(!exists(&ns.name, "secret", "review"));
    assert!(exists(&ns.name, "configmap", "unlabelled"));
    let left = kubectl(&[
        "get",
        "all,configmaps,secrets",
        "-n",
        &ns.name,
        "-l",
        "applyset.kubernetes.io/part-of",
        "-o",
        "name",
    ]);
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "");

    // A stop job retried: nothing to delete, still a success.
    as_admin(&["delete", "--applyset", "review", "-n", &ns.name])
        .ok()
        .stdout(Has("does not exist"));
    let json = as_admin(&[
        "delete",
        "--applyset",
        "review",
        "-n",
        &ns.name,
        "-o",
        "json",
    ]);
    json.ok();
    let summary: serde_json::Value =
        serde_json::from_str(json.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["existed"], false);
}

/// A Deployment `web` with image `registry.local/IMAGE`.
fn web(image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n        - name: web\n          image: registry.local/{image}\n"
    )
}

fn secret(value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: {value}\n"
    )
}

fn live_image(ns: &Namespace) -> String {
    kubectl_json(&["get", "deployment", "web", "-n", &ns.name])["spec"]["template"]["spec"]
        ["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn revisions(ns: &Namespace) -> Vec<String> {
    let out = kubectl_ok(&[
        "get",
        "secrets",
        "-n",
        &ns.name,
        "-l",
        "kstep.dev/revision-of",
        "-o",
        "jsonpath={range .items[*]}{.metadata.labels.kstep\\.dev/revision}{\"\\n\"}{end}",
    ]);
    let mut numbers: Vec<String> = out.lines().map(str::to_owned).collect();
    numbers.sort();
    numbers
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn a_failed_rollout_rolls_back_to_the_last_good_revision() {
    let ns = Namespace::create("applyset-rollback");
    let dir = TempDir::new("applyset-rollback");
    let marker = "kstep-marker-rollback-6c1e0b9f";
    let good = dir.write(
        "good.yaml",
        documents(&[config_map("a"), secret(marker), web("web:1")]),
    );
    let bad = dir.write(
        "bad.yaml",
        documents(&[
            config_map("extra"),
            secret(marker),
            web("web-does-not-exist:2"),
        ]),
    );
    let deploy = |file: &str, extra: &[&str]| {
        let mut args = vec![
            "deploy",
            "-f",
            file,
            "-n",
            &ns.name,
            "--applyset",
            "app",
            "--prune",
            "--failure-grace",
            "2s",
            "--timeout",
            "60s",
        ];
        args.extend_from_slice(extra);
        as_admin(&args)
    };
    deploy(&good, &[])
        .ok()
        .stdout(Has("Recorded revision 1 of ApplySet"));
    // The API's ConfigMap-free record: the revision is a Secret owned by the parent.
    let parent_uid =
        kubectl_json(&["get", "secret", "app", "-n", &ns.name])["metadata"]["uid"].clone();
    let revision = kubectl_json(&["get", "secret", "app.kstep.r1", "-n", &ns.name]);
    assert_eq!(
        revision["metadata"]["ownerReferences"][0]["uid"],
        parent_uid
    );
    assert_eq!(revision["type"], "kstep.dev/revision");

    let run = deploy(&bad, &["--rollback-on-failure"]);
    run.exits_with(3)
        .stderr(Has("rollout failed"))
        .stderr(Has("rolled back to revision 1: applied and rolled out"))
        .stdout(Has("Recorded revision 2 of ApplySet"))
        .stdout(Has("(failed)"))
        .stdout(Has("back to revision 1"))
        .hides(&[marker]);
    // The cluster is as revision 1 had it: the good image, the dropped ConfigMap back, the
    // failed deploy's extra ConfigMap pruned.
    assert_eq!(live_image(&ns), "registry.local/web:1");
    assert!(exists(&ns.name, "configmap", "a"));
    assert!(!exists(&ns.name, "configmap", "extra"));

    let history = as_admin(&["history", "--applyset", "app", "-n", &ns.name]);
    history
        .ok()
        .stdout(Has("failed"))
        .stdout(Has("succeeded (rollback to 1)"))
        .stdout(Has("registry.local/web-does-not-exist:2"))
        .hides(&[marker]);
    assert_eq!(revisions(&ns), ["1", "2", "3"]);

    // A manual rollback to a revision by number, and the history limit.
    deploy(&good, &["--history-limit", "2"]).ok();
    assert_eq!(revisions(&ns), ["3", "4"]);
    as_admin(&["rollback", "--applyset", "app", "-n", &ns.name, "--to", "1"])
        .fails_with(2)
        .stderr(Has("has no revision 1"));
    as_admin(&[
        "rollback",
        "--applyset",
        "app",
        "-n",
        &ns.name,
        "--to",
        "3",
        "--timeout",
        "60s",
    ])
    .ok()
    .hides(&[marker]);
    assert_eq!(live_image(&ns), "registry.local/web:1");

    // Teardown takes the revisions with the parent (garbage collection).
    as_admin(&["delete", "--applyset", "app", "-n", &ns.name, "--wait"]).ok();
    let mut left = revisions(&ns);
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = revisions(&ns);
    }
    assert!(left.is_empty(), "revisions left: {left:?}");
}

/// Runs `kstep args…` as the admin, sends `signal` once stdout has a line with `when`, and
/// returns the run.
fn interrupted(args: &[&str], when: &str, signal: &str) -> Run {
    use std::io::{BufRead as _, BufReader, Read as _};
    let mut child = crate::support::kstep_command(args)
        .env("KUBECONFIG", cluster::admin_kubeconfig())
        .spawn()
        .unwrap();
    let mut stdout = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        stdout.push_str(&line);
        if line.contains(when) {
            let status = std::process::Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            break;
        }
        line.clear();
    }
    reader.read_to_string(&mut stdout).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn a_cancelled_deploy_stops_and_with_rollback_on_failure_restores_the_last_good_revision() {
    let ns = Namespace::create("applyset-cancel");
    let dir = TempDir::new("applyset-cancel");
    let good = dir.write("good.yaml", web("web:1"));
    let bad = dir.write("bad.yaml", web("web-does-not-exist:2"));
    let slow = [
        "--failure-grace",
        "5m",
        "--timeout",
        "5m",
        "-n",
        &ns.name,
        "--applyset",
        "app",
    ];
    let args = |file: &str, extra: &[&str]| -> Vec<String> {
        ["deploy", "-f", file]
            .iter()
            .chain(slow.iter())
            .chain(extra.iter())
            .map(|s| (*s).to_owned())
            .collect()
    };
    let good_args = args(&good, &[]);
    as_admin(&good_args.iter().map(String::as_str).collect::<Vec<_>>()).ok();

    // Without a rollback: the conventional exit code, a report, the cluster left as it is.
    let plain = args(&bad, &[]);
    let run = interrupted(
        &plain.iter().map(String::as_str).collect::<Vec<_>>(),
        "Waiting for",
        "-TERM",
    );
    run.exits_with(143).stderr(Has("cancelled by SIGTERM"));
    assert_eq!(live_image(&ns), "registry.local/web-does-not-exist:2");

    // With --rollback-on-failure: back to the last good revision first.
    let rollback = args(&bad, &["--rollback-on-failure"]);
    let run = interrupted(
        &rollback.iter().map(String::as_str).collect::<Vec<_>>(),
        "Waiting for",
        "-INT",
    );
    run.exits_with(130)
        .stderr(Has("cancelled by SIGINT"))
        .stderr(Has("rolled back to revision 1: applied and rolled out"));
    assert_eq!(live_image(&ns), "registry.local/web:1");
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn existing_objects_are_adopted_into_a_set_and_another_sets_members_refused() {
    let ns = Namespace::create("applyset-adopt");
    let dir = TempDir::new("applyset-adopt");
    // Deployed the reference workflow's way: client-side kubectl apply.
    let v1 = dir.write("v1.yaml", documents(&[config_map("a"), web("web:1")]));
    let v2 = dir.write("v2.yaml", documents(&[config_map("a"), web("web:2")]));
    kubectl_ok(&["apply", "-n", &ns.name, "-f", &v1]);

    as_admin(&[
        "deploy",
        "-f",
        &v2,
        "-n",
        &ns.name,
        "--applyset",
        "app",
        "--prune",
        "--timeout",
        "60s",
    ])
    .ok()
    .stdout(Has("adopted      configmap/a joins ApplySet secrets/app"))
    .stdout(Has(
        "adopted      deployment.apps/web joins ApplySet secrets/app",
    ))
    .stdout(Lacks("Pruning"));
    let id = label(&ns, "secret", "app", ID).unwrap();
    assert_eq!(label(&ns, "deployment", "web", PART_OF), Some(id.clone()));
    assert_eq!(live_image(&ns), "registry.local/web:2");
    // Members are not adopted again.
    apply_to_app(&ns, &v2, &[]).ok().stdout(Lacks("adopted"));

    // Another set's member is refused, naming that set, before anything changes.
    let shared = dir.write("shared.yaml", config_map("a"));
    as_admin(&[
        "apply",
        "-f",
        &shared,
        "-n",
        &ns.name,
        "--applyset",
        "other",
    ])
    .fails_with(2)
    .stderr(Has(
        "shared.yaml:1:1: configmap/a: a member of another ApplySet, secrets/app",
    ));
    assert_eq!(label(&ns, "configmap", "a", PART_OF), Some(id));
    assert!(!exists(&ns.name, "secret", "other"));
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn plan_lists_what_prune_would_delete_and_what_a_set_adopts() {
    let ns = Namespace::create("applyset-plan");
    let dir = TempDir::new("applyset-plan");
    let v1 = dir.write("v1.yaml", documents(&[config_map("a"), config_map("b")]));
    let v2 = dir.write("v2.yaml", documents(&[config_map("a"), config_map("c")]));
    kubectl_stdin_ok(&["apply", "-n", &ns.name, "-f", "-"], &config_map("c"));
    apply_to_app(&ns, &v1, &[]).ok();

    let plan = |extra: &[&str]| {
        let mut args = vec![
            "plan",
            "-f",
            &v2,
            "-n",
            &ns.name,
            "--applyset",
            "app",
            "--exit-code",
        ];
        args.extend_from_slice(extra);
        as_admin(&args)
    };
    plan(&["--prune"])
        .exits_with(4)
        .stdout(Has("delete     configmap/b"))
        .stdout(Has("1 to delete"))
        .stderr(Has(
            "configmap/c: applying would adopt it into ApplySet secrets/app",
        ));
    plan(&[]).exits_with(4).stdout(Lacks("to delete"));
    plan(&["--prune", "-o", "markdown"])
        .exits_with(4)
        .stdout(Has("| delete |"));
    // The plan changed nothing.
    assert!(exists(&ns.name, "configmap", "b"));
    assert_eq!(label(&ns, "configmap", "c", PART_OF), None);
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn a_revision_too_large_for_a_secret_is_recorded_without_its_objects() {
    let ns = Namespace::create("applyset-large");
    let dir = TempDir::new("applyset-large");
    // Three ConfigMaps of 700 KB of hex noise: about 1 MB once compressed, more than a Secret
    // holds.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut noise = || {
        (0..700_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b"0123456789abcdef"[(state & 15) as usize])
            })
            .collect::<String>()
    };
    let maps: Vec<String> = (0..3)
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big-{i}\ndata:\n  noise: \"{}\"\n",
                noise()
            )
        })
        .collect();
    let file = dir.write("big.yaml", documents(&maps));
    apply_to_app(&ns, &file, &[])
        .ok()
        .stdout(Has("Recorded revision 1 of ApplySet"))
        .stdout(Has("too large to keep its objects"));
    as_admin(&["rollback", "--applyset", "app", "-n", &ns.name, "--to", "1"])
        .fails_with(2)
        .stderr(Has("was too large to keep its objects"));
    as_admin(&["history", "--applyset", "app", "-n", &ns.name])
        .ok()
        .stdout(Has("succeeded (objects not kept)"));
}
