//! Helpers for tests against the real control plane (`tests/cluster/README.md`).
//!
//! Cluster tests are `#[ignore = "needs a cluster (tests/cluster/up.sh)"]` and read the admin
//! kubeconfig from `KUBECONFIG` (`. target/test-cluster/env` exports it, and `KSTEP_KUBECTL`).
//! Each test works in its own namespace ([`Namespace::create`]), deleted when the guard drops,
//! and inspects the cluster with the matching kubectl ([`kubectl`], [`kubectl_json`]) as the
//! admin: an oracle independent of the code under test.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The admin kubeconfig path (`KUBECONFIG`), or a panic that says how to get one.
pub fn admin_kubeconfig() -> String {
    std::env::var("KUBECONFIG").unwrap_or_else(|_| {
        panic!("KUBECONFIG is not set: run tests/cluster/up.sh and `. target/test-cluster/env`")
    })
}

/// The kubectl matching the cluster (`KSTEP_KUBECTL`, else `kubectl` on the PATH).
pub fn kubectl_bin() -> String {
    std::env::var("KSTEP_KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// Runs kubectl as the admin.
pub fn kubectl(args: &[&str]) -> Output {
    Command::new(kubectl_bin())
        .args(args)
        .env("KUBECONFIG", admin_kubeconfig())
        .output()
        .expect("run kubectl")
}

/// Runs kubectl as the admin with `stdin` as its input.
pub fn kubectl_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(kubectl_bin())
        .args(args)
        .env("KUBECONFIG", admin_kubeconfig())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs kubectl as the admin and returns its stdout; panics when kubectl fails.
pub fn kubectl_ok(args: &[&str]) -> String {
    checked(args, kubectl(args))
}

/// [`kubectl_ok`] with `stdin` as kubectl's input.
pub fn kubectl_stdin_ok(args: &[&str], stdin: &str) -> String {
    checked(args, kubectl_stdin(args, stdin))
}

fn checked(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs kubectl as the admin with `-o json` and parses the answer; panics when kubectl fails.
pub fn kubectl_json(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = kubectl(&all);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("kubectl JSON")
}

/// Whether `kubectl get KIND NAME -n NS` finds the object.
pub fn exists(namespace: &str, kind: &str, name: &str) -> bool {
    let out = kubectl(&[
        "get",
        kind,
        name,
        "-n",
        namespace,
        "--ignore-not-found",
        "-o",
        "name",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    !out.stdout.is_empty()
}

/// A namespace of one test, deleted (without waiting) when dropped.
pub struct Namespace {
    /// `kstep-test-<name>-<pid>-<n>`.
    pub name: String,
}

impl Namespace {
    /// Creates `kstep-test-<name>-<pid>-<n>` and waits until its `default` ServiceAccount
    /// exists (pods are refused before).
    pub fn create(name: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "kstep-test-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let out = kubectl(&["create", "namespace", &name]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let namespace = Self { name };
        for _ in 0..100 {
            if exists(&namespace.name, "serviceaccount", "default") {
                return namespace;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "namespace {}: no default ServiceAccount after 10 s",
            namespace.name
        );
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}

/// Deletes what a test made in the cluster when dropped, so on every exit path (a failed
/// assertion included): in the order added, ignoring what is already gone, without waiting.
#[derive(Default)]
pub struct Cleanup(Vec<Target>);

enum Target {
    Object(String, String),
    File(PathBuf),
}

impl Cleanup {
    /// `kubectl delete KIND NAME` (a namespace, a cluster-scoped object).
    pub fn object(mut self, kind: &str, name: &str) -> Self {
        self.0.push(Target::Object(kind.into(), name.into()));
        self
    }

    /// `kubectl delete -f FILE`, if the file exists by then.
    pub fn file(mut self, path: &Path) -> Self {
        self.0.push(Target::File(path.into()));
        self
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for target in &self.0 {
            let args: Vec<&str> = match target {
                Target::Object(kind, name) => vec![kind, name],
                Target::File(path) if path.exists() => vec!["-f", path.to_str().unwrap()],
                Target::File(_) => continue,
            };
            // Not kubectl(): a panic here, while a failed test unwinds, would abort the run.
            let _ = Command::new(kubectl_bin())
                .arg("delete")
                .args(args)
                .args(["--ignore-not-found", "--wait=false"])
                .env("KUBECONFIG", admin_kubeconfig())
                .output();
        }
    }
}

/// A ValidatingAdmissionPolicy (CEL: no webhook server needed) and its Deny binding, both named
/// `name`, created now and deleted when the returned cleanup is dropped. `rules` is the flow
/// list of `matchConstraints.resourceRules`, `validation` one item of `validations` (`expression:
/// … , message…: …`), `selector` the binding's `matchResources`.
pub fn admission_policy(name: &str, rules: &str, validation: &str, selector: &str) -> Cleanup {
    let cleanup = Cleanup::default()
        .object("validatingadmissionpolicybinding", name)
        .object("validatingadmissionpolicy", name);
    kubectl_stdin_ok(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {name}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: {rules}
  validations: [{{{validation}}}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {name}}}
spec:
  policyName: {name}
  validationActions: [Deny]
  matchResources: {selector}
"#
        ),
    );
    cleanup
}

/// `matchResources` of the objects in namespace `ns` (and of every cluster-scoped object: a
/// policy meant for a namespace only also limits its rules to `scope: Namespaced`).
pub fn in_namespace(ns: &str) -> String {
    format!("{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {ns}}}}}}}")
}
