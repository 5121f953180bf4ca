//! `kstep apply`, `kstep deploy` and `kstep serviceaccount create` against the real control
//! plane (tests/cluster), through the real binary, the way a GitLab job runs them.
//!
//! Every test that holds a ServiceAccount token also checks that the token (and its base64
//! forms, and the masked-variable value) appears in no output and no non-secret file.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::cluster::{self, Cleanup, Namespace, exists, kubectl_json};
use crate::support::Text::{Has, Lacks, StartsWith};
use crate::support::{Run, TempDir, kstep, test_fixture};

/// `tests/fixtures/deploy/<name>`, as an argument.
fn fixture(name: &str) -> String {
    test_fixture(&format!("deploy/{name}"))
        .to_string_lossy()
        .into_owned()
}

/// `kstep ARGS` as the cluster admin.
fn as_admin(args: &[&str]) -> Run {
    let kubeconfig = cluster::admin_kubeconfig();
    kstep(args, &[("KUBECONFIG", &kubeconfig)], None)
}

/// A ServiceAccount made by `kstep serviceaccount create`, with its outputs.
struct Identity {
    /// The masked variable's value (base64 kubeconfig).
    b64: String,
    /// The bearer token inside it.
    token: String,
    /// Everything `serviceaccount create` printed.
    run: Run,
}

fn bootstrap(ns: &Namespace, name: &str, extra: &[&str]) -> Identity {
    let out = TempDir::new(&format!("deploy-{name}"));
    let out_dir = out.to_str().unwrap();
    let mut args = vec![
        "serviceaccount",
        "create",
        "--namespace",
        &ns.name,
        "--name",
        name,
        "--out-dir",
        out_dir,
    ];
    args.extend_from_slice(extra);
    let run = as_admin(&args);
    run.ok().stderr_after_kubeconfig(Has("serviceaccount/"));
    let kubeconfig = std::fs::read_to_string(out.join("kubeconfig")).unwrap();
    let token = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("a token in the kubeconfig")
        .trim_matches('"')
        .to_owned();
    assert!(token.len() > 100, "a JWT, not {token:?}");
    let b64 = std::fs::read_to_string(out.join("KUBECONFIG.b64"))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(STANDARD.decode(&b64).unwrap(), kubeconfig.as_bytes());
    #[cfg(unix)]
    for file in ["kubeconfig", "KUBECONFIG.b64"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(out.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    Identity { b64, token, run }
}

impl Identity {
    /// Runs kstep with this identity's kubeconfig as a base64 `KUBECONFIG`, as in CI.
    fn kstep(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let mut all = vec![("KUBECONFIG", self.b64.as_str())];
        all.extend_from_slice(envs);
        kstep(args, &all, None)
    }

    /// Asserts that no form of the credential is in `text`.
    fn assert_not_in(&self, what: &str, text: &str) {
        let forms = [
            self.token.clone(),
            STANDARD.encode(&self.token),
            self.b64.clone(),
            // The middle of the token: a partial print is a leak too.
            self.token[self.token.len() / 3..self.token.len() / 3 + 40].to_owned(),
        ];
        for form in forms {
            assert!(
                !text.contains(&form),
                "{what} leaks the credential:\n{text}"
            );
        }
    }
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn bootstrap_then_deploy_with_its_base64_kubeconfig() {
    let ns = Namespace::create("deploy");
    let id = bootstrap(&ns, "gitlab-example", &[]);
    // Progress is on stderr: stdout is kept for --print-secret's value.
    id.run
        .stderr(Has("created      serviceaccount/gitlab-example"));
    id.run.stderr(Has(
        "created      rolebinding.rbac.authorization.k8s.io/gitlab-example-admin",
    ));
    // The verification table: every row ok, the denied ones included.
    let rows: Vec<&str> = id
        .run
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("Verification as"))
        .skip(2)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(rows.len(), 6, "{}", id.run.stderr);
    assert!(rows.iter().all(|r| r.ends_with(" ok")), "{}", id.run.stderr);
    id.run.stderr(Has("list pods in kube-system (request)"));
    id.run.stderr(Has("403 Forbidden"));
    id.assert_not_in("serviceaccount create", &id.run.all_output());
    let binding = kubectl_json(&["get", "rolebinding", "gitlab-example-admin", "-n", &ns.name]);
    assert_eq!(binding["roleRef"]["name"], "admin");

    // The deploy job, as in CI: base64 KUBECONFIG, dotenv from the build job, GitLab log.
    let out = TempDir::new("deploy-dotenv");
    let dotenv = out.join("deploy.env");
    let args = [
        "deploy",
        "-f",
        &fixture("app"),
        "--env-file",
        &fixture("docker.env"),
        "--no-env",
        "--dotenv-out",
        dotenv.to_str().unwrap(),
        "--timeout",
        "90s",
    ];
    let started = Instant::now();
    let run = id.kstep(&args, &[("GITLAB_CI", "true")]);
    run.ok();
    run.stderr(StartsWith(
        "Using the kubeconfig from $KUBECONFIG: value of the variable (base64, one line); context ",
    ));
    assert!(started.elapsed() < Duration::from_secs(60));
    for line in [
        "  created      serviceaccount/web",
        "  created      configmap/web-config",
        "  created      service/web",
        "  created      deployment.apps/web",
        "  created      ingress.networking.k8s.io/web",
        "  deployment.apps/web: rolled out, 2/2 available in",
        "  image      registry.example/team/web:1.0",
    ] {
        assert!(
            run.stdout.contains(line),
            "missing {line:?} in\n{}",
            run.stdout
        );
    }
    // Applied in dependency order: configuration, services, workloads, then the Ingress.
    let position = |s: &str| run.stdout.find(s).unwrap();
    assert!(position("configmap/web-config") < position("service/web"));
    assert!(position("service/web") < position("deployment.apps/web"));
    assert!(position("deployment.apps/web") < position("ingress.networking.k8s.io/web"));
    // GitLab collapsible sections.
    run.stdout(Has("section_start:"));
    run.stdout(Has(":kstep_render[collapsed=true]\r\x1b[0K"));
    run.stdout(Has("section_end:"));
    let env = std::fs::read_to_string(&dotenv).unwrap();
    assert!(
        env.contains("DEPLOYED_IMAGE=registry.example/team/web:1.0\n"),
        "{env}"
    );
    assert!(
        env.contains(&format!("DEPLOYED_NAMESPACE={}\n", ns.name)),
        "{env}"
    );
    assert!(
        env.lines().any(|l| l.starts_with("ROLLOUT_SECONDS=")),
        "{env}"
    );
    // The Ingress' one host, no TLS: the environment URL for `environment:url`.
    assert!(
        env.contains("DEPLOYED_URL=http://web.example.test\n"),
        "{env}"
    );
    id.assert_not_in("deploy", &run.all_output());
    id.assert_not_in("the dotenv artifact", &env);

    let deployment = kubectl_json(&[
        "get",
        "deployment",
        "web",
        "-n",
        &ns.name,
        "--show-managed-fields",
    ]);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/team/web:1.0"
    );
    let config = kubectl_json(&["get", "configmap", "web-config", "-n", &ns.name]);
    assert_eq!(
        config["data"]["start.sh"],
        "echo \"$GREETING from ${HOSTNAME} (pid $$)\"\n"
    );
    let managers: Vec<&str> = deployment["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["operation"] == "Apply")
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["kstep"]);

    // The same again: unchanged. Then a new image: configured, and a new rollout.
    let run = id.kstep(&args, &[("KSTEP_LOG_SECTIONS", "plain")]);
    run.ok();
    run.stdout(Has("0 created, 0 configured, 5 unchanged"));
    assert!(
        !run.stdout.contains("section_start"),
        "plain output outside GitLab"
    );
    let mut with_image = args.to_vec();
    with_image.extend(["--image", "web=registry.example/team/web:1.1"]);
    let run = id.kstep(&with_image, &[]);
    run.ok();
    run.stdout(Has("  configured   deployment.apps/web"));
    run.stdout(Has("  unchanged    service/web"));
    run.stdout(Has("deployment.apps/web: rolled out, 2/2 available"));
    id.assert_not_in("deploy --image", &run.all_output());
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn image_pull_failure_exits_3_with_the_reason() {
    let ns = Namespace::create("imagepull");
    let started = Instant::now();
    let run = as_admin(&[
        "apply",
        "-f",
        &fixture("imagepull.yaml"),
        "-n",
        &ns.name,
        "--wait",
        "--timeout",
        "60s",
        "--failure-grace",
        "2s",
    ]);
    run.exits_with(3).stderr_after_kubeconfig(StartsWith(
        "error: rollout failed: deployment.apps/broken-image\n",
    ));
    // Failed by the grace, long before the 5-minute default timeout.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    for check in [
        Has("deployment.apps/broken-image: failed: pod broken-image-"),
        Has("container app in ImagePullBackOff for"),
        Has("example.invalid/does-not-exist:1"),
        Has("recent warning events:"),
        Has(": Failed: "), // the kubelet's Warning event
    ] {
        run.stderr(check);
    }
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn crash_loop_failure_exits_3_with_restarts_and_exit_code() {
    let ns = Namespace::create("crashloop");
    let id = bootstrap(&ns, "ci", &[]);
    let run = id.kstep(
        &[
            "apply",
            "-f",
            &fixture("crashloop.yaml"),
            "--wait",
            "--timeout",
            "60s",
            "--failure-grace",
            "1s",
        ],
        &[],
    );
    run.exits_with(3);
    run.stderr(Has(
        "statefulset.apps/crashing: failed: pod crashing-0 container db in CrashLoopBackOff",
    ));
    run.stderr(Has("restarted 3 time(s), last exit code 1"));
    run.stderr(Has(": BackOff: "));
    id.assert_not_in("a failed rollout", &run.all_output());
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn timeout_exits_3_with_what_was_pending() {
    let ns = Namespace::create("timeout");
    let started = Instant::now();
    let run = as_admin(&[
        "apply",
        "-f",
        &fixture("unschedulable.yaml"),
        "-n",
        &ns.name,
        "--wait",
        "--timeout",
        "5s",
    ]);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(5) && elapsed < Duration::from_secs(20),
        "{elapsed:?}"
    );
    run.exits_with(3)
        .stderr_after_kubeconfig(StartsWith(
            "error: rollout not finished after 5.00 s: deployment.apps/nowhere\n",
        ))
        .stderr(Has(
            "deployment.apps/nowhere: 0 of 1 updated replicas available",
        ))
        .stderr(Has(": Unschedulable: 0/1 nodes are available"))
        .stderr(Has(": FailedScheduling: "));
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn dry_run_rejection_leaves_the_cluster_untouched() {
    let ns = Namespace::create("rejected");
    let file = fixture("invalid.yaml");
    let run = as_admin(&["apply", "-f", &file, "-n", &ns.name]);
    run.exits_with(2);
    run.stderr_after_kubeconfig(StartsWith(
        "error: the server rejected 2 object(s) in the dry run; nothing was applied\n",
    ));
    // Each at the field the server names: the misspelt key, the labels that do not match.
    run.stderr(Has(&format!(
        "{file}:14:1: configmap/typo: datta: unknown field: the API's schema has no such field"
    )));
    run.stderr(Has(&format!(
        "{file}:26:15: deployment.apps/mismatch: spec.template.metadata.labels: 422 Invalid: Invalid value: "
    )));
    run.stdout(Lacks("created"));
    for (kind, name) in [
        ("configmap", "valid"),
        ("configmap", "typo"),
        ("deployment", "mismatch"),
    ] {
        assert!(!exists(&ns.name, kind, name), "{kind}/{name} was applied");
    }
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn type_errors_are_reported_in_words_at_the_fields_own_position() {
    let ns = Namespace::create("typeerror");
    let dir = TempDir::new("typeerror");
    let file = dir.write(
        "app.yaml",
        "# --set V=1.10 makes a number, and ConfigMap data holds strings.
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  ok: \"1\"
  VERSION: ${V}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: \"three\"
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.example/web:1
          ports:
            - containerPort: 80
            - {containerPort: \"81\", name: metrics}
",
    );
    let run = as_admin(&[
        "deploy",
        "-f",
        &file,
        "--set",
        "V=1.10",
        "--no-env",
        "-n",
        &ns.name,
        "--no-wait",
    ]);
    run.exits_with(2);
    // Each field at its own line and column, in words; not the document's first line, not Go.
    let expected = [
        format!(
            "{file}:8:12: configmap/settings: data.VERSION: type error: expected a string, got a number (quote the value"
        ),
        format!(
            "{file}:15:13: deployment.apps/web: spec.replicas: type error: expected a number, got a string (write the number without quotes)"
        ),
        format!(
            "{file}:27:31: deployment.apps/web: spec.template.spec.containers[name=\"web\"].ports[containerPort=\"81\",protocol=\"TCP\"].containerPort: type error: expected a number, got a string"
        ),
    ];
    for line in &expected {
        run.stderr(Has(line));
    }
    run.stderr(Lacks("valueUnstructured"))
        .stderr(Lacks("unknown field"))
        .stderr_after_kubeconfig(Has(
            "error: the server rejected 2 object(s) in the dry run; nothing was applied\n",
        ));
    assert!(!exists(&ns.name, "configmap", "settings"));
}

#[test]
fn render_problems_are_visible_in_a_gitlab_log() {
    // Issue 19, item 12: GitLab fixes a section's collapsed-ness when it starts, and a
    // collapsed section hides its lines. Render warnings open the render section expanded;
    // render errors come after the section. stdout and stderr are one stream here, as in the
    // job log. The server is a closed port: nothing gets further than connecting.
    let dir = TempDir::new("gitlab-sections");
    let kubeconfig = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n\
        users:\n- name: u\n  user:\n    token: not-a-real-token-123456\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n\
        current-context: c\n";
    let config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: ${A}\n";
    let old_api = "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata:\n  name: old\n";
    let log = |file: &str, set: &[&str]| -> (i32, String) {
        let mut cmd = std::process::Command::new("bash");
        cmd.args([
            "-c",
            "exec \"$0\" \"$@\" 2>&1",
            crate::support::kstep_bin(),
            "deploy",
            "-f",
            file,
            "--no-env",
            "--no-wait",
        ])
        .args(set)
        .env_remove("HOME")
        .env("KSTEP_CACHE_DIR", crate::support::cache_dir())
        .env("GITLAB_CI", "true")
        .env("KUBECONFIG", kubeconfig);
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let section = |text: &str, marker: &str| {
        text.find(marker)
            .unwrap_or_else(|| panic!("no {marker:?} in\n{text}"))
    };

    // A warning: the section starts expanded and the warning is inside it.
    let file = dir.write("old.yaml", format!("{config}---\n{old_api}"));
    let (code, text) = log(&file, &["--set", "A=1"]);
    assert_eq!(code, 1, "{text}");
    let start = section(&text, ":kstep_render\r\x1b[0KRendering ");
    let warning = section(
        &text,
        "CronJob `old`: batch/v1beta1 was removed in Kubernetes 1.25",
    );
    let end = section(&text, ":kstep_render\r\x1b[0K\n");
    assert!(start < warning && warning < end, "{text}");
    assert!(!text.contains("kstep_render[collapsed=true]"), "{text}");

    // An error: after the section, which closed.
    let file = dir.write("missing.yaml", config);
    let (code, text) = log(&file, &[]);
    assert_eq!(code, 2, "{text}");
    let end = section(&text, "section_end:");
    let error = section(&text, &format!("{file}:6:6: variable `A` is not set"));
    assert!(end < error, "{text}");
}

#[test]
fn out_of_namespace_objects_are_refused_before_any_request() {
    // The server is a closed port: had kstep sent anything, it would fail with a connection
    // error, not with the policy.
    let kubeconfig = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n\
        users:\n- name: u\n  user:\n    token: not-a-real-token-123456\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: app\n\
        current-context: c\n";
    let run = kstep(
        &["apply", "-f", &fixture("other-namespace.yaml")],
        &[("KUBECONFIG", kubeconfig)],
        None,
    );
    run.exits_with(2);
    let file = fixture("other-namespace.yaml");
    assert_eq!(
        run.stderr,
        format!(
            "Using the kubeconfig from $KUBECONFIG: value of the variable (YAML); context c, server https://127.0.0.1:1\n\
             error: 2 object(s) refused by the namespace policy; nothing was sent\n\
             {file}:7:1: configmap/theirs: is in namespace \"kube-system\", not the target namespace \"app\" (pass --allow-namespace kube-system to allow it)\n\
             {file}:14:1: clusterrole.rbac.authorization.k8s.io/kstep-test-everything: ClusterRole is cluster-scoped; a namespace-scoped identity cannot apply it (pass --allow-cluster-scoped if this identity may)\n"
        )
    );
    run.stderr(Lacks("cannot reach"));
}

#[test]
fn apply_reports_the_files_own_columns_after_a_dollar() {
    // `apply` takes files literally (no placeholders, every `$` kept, as kubectl does); the
    // text reaches the YAML parser unchanged, so a position after a `$` is the file's own.
    let dir = TempDir::new("apply-literal");
    let file = dir.write(
        "script.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: script\ndata:\n  run: echo ${HOME} $$\n  list: [$$, @z]\n",
    );
    let run = kstep(&["apply", "-f", &file], &[], None);
    run.fails_with(2).stderr(Has(&format!(
        "{file}:7:14: invalid YAML: unexpected character"
    )));
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn forbidden_is_reported_with_identity_verb_and_namespace() {
    let ns = Namespace::create("forbidden");
    let id = bootstrap(&ns, "ci", &[]);
    // Allowed by the flags, so the request is sent and the server says no.
    let run = id.kstep(
        &[
            "apply",
            "-f",
            &fixture("other-namespace.yaml"),
            "--allow-namespace",
            "kube-system",
            "--allow-cluster-scoped",
        ],
        &[],
    );
    run.exits_with(1);
    let user = format!("User \"system:serviceaccount:{}:ci\"", ns.name);
    run.stderr_after_kubeconfig(StartsWith(
        "error: the server rejected 2 object(s) in the dry run; nothing was applied\n",
    ));
    run.stderr(Has(&format!("configmap/theirs: 403 Forbidden: configmaps \"theirs\" is forbidden: {user} cannot patch resource \"configmaps\" in API group \"\" in the namespace \"kube-system\"")));
    run.stderr(Has(&format!(
        "{user} cannot patch resource \"clusterroles\""
    )));
    // All or nothing: the allowed ConfigMap in its own namespace was not applied either.
    assert!(!exists(&ns.name, "configmap", "mine"));
    id.assert_not_in("a 403", &run.all_output());
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn long_lived_token_and_repeated_bootstrap() {
    let ns = Namespace::create("longlived");
    let id = bootstrap(&ns, "ci", &["--long-lived"]);
    assert!(
        id.run.stderr.contains("created      secret/ci-token"),
        "{:?}",
        id.run
    );
    assert!(
        id.run
            .stderr
            .contains("Token: long-lived, from Secret ci-token"),
        "{:?}",
        id.run
    );
    let secret = kubectl_json(&["get", "secret", "ci-token", "-n", &ns.name]);
    assert_eq!(secret["type"], "kubernetes.io/service-account-token");
    let stored = String::from_utf8(
        STANDARD
            .decode(secret["data"]["token"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored, id.token);
    id.assert_not_in("serviceaccount create --long-lived", &id.run.all_output());
    // Again: everything unchanged, the same token.
    let again = bootstrap(&ns, "ci", &["--long-lived"]);
    assert!(
        again.run.stderr.contains("unchanged    serviceaccount/ci"),
        "{:?}",
        again.run
    );
    assert_eq!(again.token, id.token);
    id.assert_not_in("a second bootstrap", &again.run.all_output());
    // --print-secret prints exactly the masked-variable value, unmasked.
    let printed = as_admin(&[
        "serviceaccount",
        "create",
        "-n",
        &ns.name,
        "--name",
        "ci",
        "--long-lived",
        "--print-secret",
    ]);
    printed.ok();
    assert_eq!(printed.stdout, format!("{}\n", id.b64));
    id.assert_not_in("stderr of --print-secret", &printed.stderr);
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn bootstrap_refuses_a_missing_namespace_and_writes_nothing() {
    let out = TempDir::new("deploy-missing");
    let name = format!("kstep-test-absent-{}", std::process::id());
    let run = as_admin(&[
        "serviceaccount",
        "create",
        "-n",
        &name,
        "--name",
        "ci",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    run.exits_with(2);
    run.stderr(Has("--create-namespace"));
    assert!(!out.join("kubeconfig").exists());
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn dry_run_flag_reports_and_changes_nothing() {
    let ns = Namespace::create("dryrun");
    let args = [
        "deploy",
        "-f",
        &fixture("app"),
        "--env-file",
        &fixture("docker.env"),
        "--no-env",
        "-n",
        &ns.name,
        "--timeout",
        "90s",
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let run = as_admin(&dry);
    run.ok();
    run.stdout(Has("  created      deployment.apps/web (dry run)"));
    run.stdout(Has("Summary (dry run: nothing was changed)"));
    assert!(!exists(&ns.name, "deployment", "web"));
    // After a real deploy, a dry run with another image says what would change.
    assert_eq!(as_admin(&args).code, 0);
    dry.extend(["--image", "web=registry.example/team/web:2"]);
    let run = as_admin(&dry);
    run.ok();
    run.stdout(Has("  configured   deployment.apps/web (dry run)"));
    run.stdout(Has("  unchanged    service/web (dry run)"));
    let image = kubectl_json(&["get", "deployment", "web", "-n", &ns.name]);
    assert_eq!(
        image["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/team/web:1.0"
    );
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn crd_namespace_and_custom_resource_in_one_run() {
    let tag = format!(
        "{}{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let group = format!("w{tag}.kstep.test");
    let ns = format!("kstep-test-crd-{tag}");
    let set_group = format!("GROUP={group}");
    let set_ns = format!("NS={ns}");
    let run = as_admin(&[
        "deploy",
        "-f",
        &fixture("crd"),
        "--set",
        &set_group,
        "--set",
        &set_ns,
        "--no-env",
        "--allow-cluster-scoped",
        "--allow-namespace",
        &ns,
        "--no-wait",
    ]);
    let _cleanup = Cleanup::default()
        .object("namespace", &ns)
        .object("crd", &format!("widgets.{group}"));
    run.ok();
    run.stdout(Has(
        "1 validated once the CRDs/Namespaces they need are applied",
    ));
    let crd = run
        .stdout
        .find(&format!(
            "created      customresourcedefinition.apiextensions.k8s.io/widgets.{group}"
        ))
        .unwrap();
    let namespace = run
        .stdout
        .find(&format!("created      namespace/{ns}"))
        .unwrap();
    let widget = run
        .stdout
        .find(&format!(
            "created      widget.{group}/first (namespace {ns})"
        ))
        .unwrap();
    assert!(crd < widget && namespace < widget, "{}", run.stdout);
    let w = kubectl_json(&["get", &format!("widgets.{group}"), "first", "-n", &ns]);
    assert_eq!(w["spec"]["size"], 3);
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn secret_values_are_masked_even_in_server_errors() {
    let ns = Namespace::create("masked");
    let run = as_admin(&[
        "apply",
        "-f",
        &fixture("secret-in-error.yaml"),
        "-n",
        &ns.name,
    ]);
    run.exits_with(2);
    // At the field the server names (the labels; the value is the first entry's).
    run.stderr(Has(&format!(
        "{}:8:5: secret/leaky: metadata.labels: 422 Invalid: ",
        fixture("secret-in-error.yaml")
    )));
    run.stderr(Has("Invalid value: \"[MASKED]!\""));
    assert!(
        !run.all_output().contains("s3cr3t-passw0rd-value"),
        "{run:?}"
    );
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn the_token_never_appears_in_any_output() {
    let ns = Namespace::create("leak");
    let id = bootstrap(&ns, "ci", &[]);
    id.assert_not_in("serviceaccount create", &id.run.all_output());
    let out = TempDir::new("deploy-leak");
    let dotenv = out.join("deploy.env");
    let bad_env = out.join("bad.env");
    std::fs::write(&bad_env, "not a dotenv line\n").unwrap();
    let (app, env) = (fixture("app"), fixture("docker.env"));
    let (invalid, other) = (fixture("invalid.yaml"), fixture("other-namespace.yaml"));
    let unschedulable = fixture("unschedulable.yaml");
    let deploy = [
        "deploy",
        "-f",
        &app,
        "--env-file",
        &env,
        "--no-env",
        "--timeout",
        "90s",
        "--dotenv-out",
        dotenv.to_str().unwrap(),
    ];
    // Every command and failure path a CI job can hit, with the identity's base64 KUBECONFIG.
    let runs: Vec<(&str, Vec<&str>, i32)> = vec![
        ("deploy", deploy.to_vec(), 0),
        (
            "apply --dry-run",
            vec!["apply", "-f", &unschedulable, "--dry-run"],
            0,
        ),
        // `apply` takes files literally: `${IMAGE}` is not an image.
        ("apply of a template", vec!["apply", "-f", &app], 2),
        (
            "deploy --dry-run",
            vec![
                "deploy",
                "-f",
                &app,
                "--env-file",
                &env,
                "--no-env",
                "--dry-run",
            ],
            0,
        ),
        ("invalid manifests", vec!["apply", "-f", &invalid], 2),
        ("a policy refusal", vec!["apply", "-f", &other], 2),
        (
            "a 403",
            vec![
                "apply",
                "-f",
                &other,
                "--allow-namespace",
                "kube-system",
                "--allow-cluster-scoped",
            ],
            1,
        ),
        (
            "a rollout timeout",
            vec!["apply", "-f", &unschedulable, "--wait", "--timeout", "2s"],
            3,
        ),
        (
            "a bad env file",
            vec![
                "deploy",
                "-f",
                &app,
                "--env-file",
                bad_env.to_str().unwrap(),
            ],
            2,
        ),
        ("a missing file", vec!["apply", "-f", "/nonexistent/k8s"], 2),
        (
            "an unknown context",
            vec!["apply", "-f", &app, "--context", "nope"],
            2,
        ),
    ];
    for (what, args, code) in &runs {
        let run = id.kstep(args, &[]);
        assert_eq!(run.code, *code, "{what}: {run:?}");
        id.assert_not_in(what, &run.all_output());
    }
    // The same credentials against a closed port: the error names the server, not the token.
    let kubeconfig = String::from_utf8(STANDARD.decode(&id.b64).unwrap()).unwrap();
    let moved: Vec<String> = kubeconfig
        .lines()
        .map(|l| match l.find("server:") {
            Some(at) => format!("{}server: https://127.0.0.1:1", &l[..at]),
            None => l.to_owned(),
        })
        .collect();
    let moved = STANDARD.encode(moved.join("\n"));
    let run = kstep(
        &["apply", "-f", &unschedulable, "--request-timeout", "2s"],
        &[("KUBECONFIG", &moved)],
        None,
    );
    run.exits_with(1);
    run.stderr(Has("127.0.0.1:1"));
    id.assert_not_in("an unreachable server", &run.all_output());
    id.assert_not_in(
        "the dotenv artifact",
        &std::fs::read_to_string(&dotenv).unwrap(),
    );
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn outputs_are_checked_before_the_cluster_changes_and_json_lines_on_request() {
    let ns = Namespace::create("outputs");
    let dir = TempDir::new("deploy-outputs");
    // An existing --dotenv-out file GitLab would refuse: the deploy stops before any change,
    // naming the file's line and column.
    let bad = dir.write("deploy.env", "GOOD=1\nexport BAD=2\n");
    let args = [
        "deploy",
        "-f",
        &fixture("app"),
        "--env-file",
        &fixture("docker.env"),
        "--no-env",
        "-n",
        &ns.name,
        "--no-wait",
    ];
    let mut with_out = args.to_vec();
    with_out.extend(["--dotenv-out", &bad]);
    let run = as_admin(&with_out);
    run.fails_with(2)
        .stderr(Has(&format!("{bad}:2:")))
        .stderr(Has("nothing was applied"));
    assert!(!exists(&ns.name, "deployment", "web"));

    // --output json: one JSON object per line on stdout, every object's outcome among them.
    let mut json = args.to_vec();
    json.extend(["--output", "json"]);
    let run = as_admin(&json);
    run.ok();
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // First, which kubeconfig and context.
    assert_eq!(events[0]["event"], "kubeconfig", "{events:?}");
    assert_eq!(events[0]["context"], "kstep-test", "{events:?}");
    assert!(
        events[0]["source"]
            .as_str()
            .unwrap()
            .starts_with("$KUBECONFIG: path in the variable"),
        "{events:?}"
    );
    let applied: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "applied")
        .map(|e| e["object"].as_str().unwrap())
        .collect();
    assert!(applied.contains(&"deployment.apps/web"), "{events:?}");
    assert_eq!(events.last().unwrap()["event"], "summary", "{events:?}");

    // A dry-run rejection (exit 2) leaves stdout empty: the apply header waits for the dry run.
    let invalid = dir.write(
        "invalid.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\ndatta:\n  a: b\n",
    );
    let run = as_admin(&["apply", "-f", &invalid, "-n", &ns.name]);
    run.fails_with(2);
    assert!(run.stdout.is_empty(), "{run:?}");
}

/// `--stamp` inside GitLab CI: deploy-board annotations on the Deployment and its pods, the
/// pipeline, job and commit on every object; `--stamp=objects` leaves the pod template (and so
/// the pods) alone across pipelines; `--no-stamp` writes nothing.
#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn stamps_for_deploy_boards_and_traceability() {
    let ns = Namespace::create("stamp");
    let kubeconfig = cluster::admin_kubeconfig();
    let (app, env_file) = (fixture("app"), fixture("docker.env"));
    // `kstep VERB` (deploy or plan) of the app, as the admin, with `envs`.
    let run_app = |verb: &str, extra: &[&str], envs: &[(&str, &str)]| {
        let mut args = vec![
            verb,
            "-f",
            &app,
            "--env-file",
            &env_file,
            "--no-env",
            "-n",
            &ns.name,
        ];
        args.extend(extra);
        let mut all = vec![("KUBECONFIG", kubeconfig.as_str())];
        all.extend(envs);
        kstep(&args, &all, None)
    };
    let deploy = |pipeline: &str, extra: &[&str]| {
        let job_url = format!("https://gitlab.example.com/group/blog/-/jobs/{pipeline}9");
        let job_id = format!("{pipeline}9");
        let mut extra = extra.to_vec();
        extra.extend(["--timeout", "90s"]);
        run_app(
            "deploy",
            &extra,
            &[
                ("GITLAB_CI", "true"),
                ("CI_PROJECT_PATH_SLUG", "group-blog"),
                ("CI_ENVIRONMENT_SLUG", "production"),
                ("CI_PIPELINE_ID", pipeline),
                ("CI_COMMIT_SHA", "3f2a9c1e0b"),
                ("CI_JOB_ID", &job_id),
                ("CI_JOB_URL", &job_url),
            ],
        )
        .ok();
    };
    let get = |kind: &str, name: &str| kubectl_json(&["get", kind, name, "-n", &ns.name]);

    // A rollout is a new ReplicaSet (the generation is no signal: a Deployment's grows with
    // its annotations too).
    let replica_sets = || {
        let listed = kubectl_json(&["get", "replicasets", "-n", &ns.name, "-l", "app=web"]);
        let mut names: Vec<String> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    // `--stamp=objects`, pipeline after pipeline: the objects say which one, the pod template
    // (and so the pods) stays as rendered.
    deploy("101", &["--stamp=objects"]);
    let d = get("deployment", "web");
    assert_eq!(d["metadata"]["annotations"]["kstep.dev/pipeline-id"], "101");
    assert_eq!(
        d["metadata"]["annotations"]["app.gitlab.com/env"],
        "production"
    );
    let first = replica_sets();
    assert_eq!(first.len(), 1, "{first:?}");
    deploy("102", &["--stamp=objects"]);
    let d = get("deployment", "web");
    assert_eq!(d["metadata"]["annotations"]["kstep.dev/pipeline-id"], "102");
    assert!(
        d["spec"]["template"]["metadata"]
            .get("annotations")
            .is_none(),
        "{d}"
    );
    assert_eq!(replica_sets(), first, "the pod template changed");

    // The default inside GitLab CI (`all`): the pod template too, so a new rollout.
    deploy("103", &[]);
    let d = get("deployment", "web");
    let a = &d["metadata"]["annotations"];
    assert_eq!(a["app.gitlab.com/app"], "group-blog", "{a}");
    assert_eq!(a["app.gitlab.com/env"], "production", "{a}");
    assert_eq!(a["kstep.dev/pipeline-id"], "103", "{a}");
    assert_eq!(a["kstep.dev/job-id"], "1039", "{a}");
    assert_eq!(
        a["kstep.dev/job-url"],
        "https://gitlab.example.com/group/blog/-/jobs/1039"
    );
    assert_eq!(a["kstep.dev/commit-sha"], "3f2a9c1e0b", "{a}");
    let pods = &d["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(pods["app.gitlab.com/app"], "group-blog", "{pods}");
    assert_eq!(pods["app.gitlab.com/env"], "production", "{pods}");
    assert_eq!(pods["kstep.dev/pipeline-id"], "103", "{pods}");
    assert_eq!(pods["kstep.dev/commit-sha"], "3f2a9c1e0b", "{pods}");
    assert!(pods.get("kstep.dev/job-id").is_none(), "{pods}");
    assert_eq!(replica_sets().len(), 2, "no new rollout");
    // The new pods carry them: what GitLab's deploy board reads.
    let listed = kubectl_json(&["get", "pods", "-n", &ns.name, "-l", "app=web"]);
    let stamped = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["annotations"]["app.gitlab.com/env"] == "production")
        .count();
    assert!(stamped >= 1, "{listed}");
    // Every object, not only workloads.
    let cm = get("configmap", "web-config");
    assert_eq!(
        cm["metadata"]["annotations"]["kstep.dev/pipeline-id"],
        "103"
    );
    assert!(
        cm["metadata"]["annotations"]
            .get("app.gitlab.com/app")
            .is_none()
    );

    // `--no-stamp`: nothing kstep would have written (server-side apply drops what it no longer
    // sends).
    deploy("104", &["--no-stamp"]);
    let d = get("deployment", "web");
    assert!(
        d["metadata"]["annotations"]
            .get("kstep.dev/pipeline-id")
            .is_none(),
        "{d}"
    );
    assert!(
        d["spec"]["template"]["metadata"]
            .get("annotations")
            .and_then(|a| a.get("app.gitlab.com/app"))
            .is_none(),
        "{d}"
    );

    // `apply` stamps too; outside GitLab CI only when asked.
    let dir = TempDir::new("apply-stamp");
    let file = dir.write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stamped\ndata:\n  a: b\n",
    );
    for (flag, expected) in [(None, None), (Some("--stamp"), Some("105"))] {
        let mut args = vec!["apply", "-f", &file, "-n", &ns.name];
        args.extend(flag);
        kstep(
            &args,
            &[("KUBECONFIG", &kubeconfig), ("CI_PIPELINE_ID", "105")],
            None,
        )
        .ok();
        let cm = get("configmap", "stamped");
        assert_eq!(
            cm["metadata"]["annotations"]["kstep.dev/pipeline-id"].as_str(),
            expected,
            "{flag:?}: {cm}"
        );
    }
    // Bad values are usage errors.
    for bad in [&["--stamp=pods"][..], &["--stamp", "--no-stamp"]] {
        let mut args = vec!["apply", "-f", &file, "-n", &ns.name];
        args.extend(bad);
        kstep(&args, &[("KUBECONFIG", &kubeconfig)], None).fails_with(2);
    }

    // `--environment-url` replaces the manifests' host in the report (KSTEP_ENVIRONMENT_URL in
    // the template); anything but an http(s) URL is a usage error.
    let dotenv = dir.join("deploy.env");
    let dotenv = dotenv.to_str().unwrap();
    let with_url = |url: &str| {
        run_app(
            "deploy",
            &[
                "--no-wait",
                "--dotenv-out",
                dotenv,
                "--environment-url",
                url,
            ],
            &[],
        )
    };
    with_url("https://review-42.example.test/app").ok();
    let env = std::fs::read_to_string(dotenv).unwrap();
    assert!(
        env.contains("DEPLOYED_URL=https://review-42.example.test/app\n"),
        "{env}"
    );
    with_url("ftp://x")
        .fails_with(2)
        .stderr(Has("expected http://HOST"));

    // A plan (`kstep plan` stamps nothing; in GitLab it comes from another pipeline) is checked
    // before the deploy stamps, pipeline after pipeline.
    let plan = dir.join("plan.json");
    let plan = plan.to_str().unwrap();
    for pipeline in ["106", "107"] {
        run_app("plan", &["--out", plan], &[]).ok();
        deploy(pipeline, &["--plan", plan]);
        let d = get("deployment", "web");
        assert_eq!(
            d["spec"]["template"]["metadata"]["annotations"]["kstep.dev/pipeline-id"], pipeline,
            "{d}"
        );
    }
}
