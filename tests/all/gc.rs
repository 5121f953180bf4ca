//! `kstep gc` against the real control plane: an apply with `--expires-in` records the expiry
//! on its set's parent; the sweep deletes exactly the expired kstep sets with the prefix (with
//! their members, listed first), and leaves alone a set not yet expired, a set without expiry,
//! another prefix, and kubectl's set even when it carries kstep's expiry annotation.

use std::time::Duration;

use crate::cluster::{self, Namespace, exists, kubectl_json, kubectl_ok};
use crate::support::Text::{Has, Lacks};
use crate::support::{Run, TempDir, kstep};

const EXPIRES: &str = "kstep.dev/expires-at";

fn as_admin(args: &[&str]) -> Run {
    let kubeconfig = cluster::admin_kubeconfig();
    kstep(args, &[("KUBECONFIG", &kubeconfig)], None)
}

fn config_map(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: value\n")
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn gc_deletes_only_expired_kstep_sets_with_the_prefix() {
    let ns = Namespace::create("gc");
    let dir = TempDir::new("gc");
    let apply = |set: &str, members: &[&str], extra: &[&str]| {
        let docs: Vec<String> = members.iter().map(|m| config_map(m)).collect();
        let file = dir.write(&format!("{set}.yaml"), docs.join("---\n"));
        let mut args = vec!["apply", "-f", &file, "-n", &ns.name, "--applyset", set];
        args.extend_from_slice(extra);
        as_admin(&args).ok();
    };
    apply("review-old", &["old-a", "old-b"], &["--expires-in", "1s"]);
    apply("review-new", &["new-a"], &["--expires-in", "1h"]);
    apply("review-forever", &["forever-a"], &[]);
    apply("other-old", &["other-a"], &["--expires-in", "1s"]);
    // kubectl's set, with kstep's annotation copied onto it: still not kstep's to delete.
    let file = dir.write("kubectl.yaml", config_map("kubectl-a"));
    let out = std::process::Command::new(cluster::kubectl_bin())
        .args([
            "apply",
            "--server-side",
            "--applyset=review-kubectl",
            "--prune",
        ])
        .args(["-n", &ns.name, "-f", &file])
        .env("KUBECONFIG", cluster::admin_kubeconfig())
        .env("KUBECTL_APPLYSET", "true")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    kubectl_ok(&[
        "annotate",
        "secret",
        "review-kubectl",
        "-n",
        &ns.name,
        &format!("{EXPIRES}=2000-01-01T00:00:00Z"),
    ]);

    // The expiry is on the parent, an RFC 3339 UTC time about an hour ahead.
    let parent = kubectl_json(&["get", "secret", "review-new", "-n", &ns.name]);
    let at = parent["metadata"]["annotations"][EXPIRES]
        .as_str()
        .expect("the expiry annotation");
    assert!(at.ends_with('Z') && at.len() == 20, "{at}");
    let forever = kubectl_json(&["get", "secret", "review-forever", "-n", &ns.name]);
    assert!(forever["metadata"]["annotations"][EXPIRES].is_null());
    std::thread::sleep(Duration::from_secs(2));

    // A dry run lists the expired set and its members, and deletes nothing.
    as_admin(&["gc", "--prefix", "review-", "-n", &ns.name, "--dry-run"])
        .ok()
        .stdout(Has("1 expired ApplySet(s) with prefix `review-`"))
        .stdout(Has("secrets/review-old in namespace"))
        .stdout(Has("would delete"))
        .stdout(Has("configmap/old-a"))
        .stdout(Lacks("- secrets/review-new"))
        .stdout(Lacks("review-kubectl"))
        .stdout(Has("nothing was"));
    assert!(exists(&ns.name, "configmap", "old-a"));

    let run = as_admin(&["gc", "--prefix", "review-", "-n", &ns.name, "--wait"]);
    run.ok()
        .stdout(Has("secrets/review-old in namespace"))
        .stdout(Has("Not expired: 1 set(s)"))
        .stdout(Has("Deleted 1 expired ApplySet(s)"));
    // Listed before the first deletion.
    let out = &run.stdout;
    assert!(
        out.find("secrets/review-old").unwrap() < out.find("deleted").unwrap(),
        "{out}"
    );
    for gone in ["old-a", "old-b"] {
        assert!(
            !exists(&ns.name, "configmap", gone),
            "{gone} is still there"
        );
    }
    assert!(!exists(&ns.name, "secret", "review-old"));
    for kept in ["new-a", "forever-a", "other-a", "kubectl-a"] {
        assert!(exists(&ns.name, "configmap", kept), "{kept} was deleted");
    }
    for kept in [
        "review-new",
        "review-forever",
        "other-old",
        "review-kubectl",
    ] {
        assert!(exists(&ns.name, "secret", kept), "{kept} was deleted");
    }

    // Nothing left to do is a success; a re-apply without --expires-in ends the expiry.
    as_admin(&["gc", "--prefix", "review-", "-n", &ns.name])
        .ok()
        .stdout(Has("No expired ApplySet with prefix `review-`"));
    let run = as_admin(&["gc", "--prefix", "review-", "-n", &ns.name, "-o", "json"]);
    let summary: serde_json::Value =
        serde_json::from_str(run.ok().stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["event"], "summary", "{summary}");
    assert_eq!(summary["expired"], serde_json::json!([]), "{summary}");
    assert_eq!(summary["not_expired"], 1, "{summary}");
    apply("other-old", &["other-a"], &[]);
    let parent = kubectl_json(&["get", "secret", "other-old", "-n", &ns.name]);
    assert!(parent["metadata"]["annotations"][EXPIRES].is_null());
    as_admin(&["gc", "--prefix", "", "-n", &ns.name])
        .ok()
        .stdout(Has("0 expired ApplySet(s)"));
    assert!(exists(&ns.name, "configmap", "other-a"));
}

#[test]
fn gc_needs_a_prefix_and_expires_in_an_applyset() {
    // Usage errors: refused before any kubeconfig is read.
    let dir = TempDir::new("gc-usage");
    let file = dir.write("cm.yaml", config_map("a"));
    let run = |args: &[&str]| kstep(args, &[], None);
    run(&["gc"]).fails_with(2).stderr(Has("--prefix"));
    run(&["apply", "-f", &file, "--expires-in", "1h"])
        .fails_with(2)
        .stderr(Has("--applyset"));
    run(&["apply", "-f", &file, "--applyset", "x", "--expires-in", "3"])
        .fails_with(2)
        .stderr(Has("needs a unit"));
}
