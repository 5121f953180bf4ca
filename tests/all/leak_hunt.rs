//! The leak hunt against the real control plane (tests/cluster): the commands a CI job runs
//! (`kubeconfig check`, `apply`, `deploy`, `run`, text and `--output json`), on their success
//! path and on every error path a cluster can give — a bad token, password or client key (401),
//! a ServiceAccount without rights (403), an admission policy whose denial quotes the Secret
//! value, a TLS failure (wrong CA, wrong server name), a failed rollout, an exec plugin that
//! prints its token on stderr and fails (at start, or after N successful refreshes so the
//! failure lands at each stage of a deploy) — with a kubeconfig (as a file and as base64), an exec
//! plugin's output, a CI job token and Secret manifest values (`stringData` and base64 `data`)
//! that are unique markers. Stdout, stderr and every file a run wrote (the dotenv output, the
//! compile cache, the home and temporary directories, the working directory) are searched for
//! every form the masker registers (`kstep::secrets::forms`, through
//! [`crate::support::secret_forms`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::cluster::{self, Cleanup, Namespace, kubectl, kubectl_ok};
use crate::support::{Run, TempDir, assert_no_secret, kstep_bin, secret_forms, test_fixture};

const BAD_TOKEN: &str = "kstepHuntBadTOKEN-3f9a6c1e5b7d2048";
const PASSWORD: &str = "kstepHuntPASSWORD-8d2e4f6a1c";
const EXEC_FAILURE_TOKEN: &str = "kstepHuntExecFailTOKEN-5c7e9a1b3d";
const FLAKY_TOKEN: &str = "kstepHuntFlakyTOKEN-7a5c3e1f9b";
const JOB_TOKEN: &str = "glcbt-64_kstepHuntJobToken7Rq2";
const STRING_DATA: &str = "kstepHuntStringData-2b4d6f8a0c";
const DATA: &str = "kstepHuntData-9e7c5a3b1d";

/// A field of the leak fixture kubeconfig (its client key, its CA).
fn leak_fixture_field(key: &str) -> String {
    fs::read_to_string(test_fixture("kubeconfigs/leak.yaml"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{key}: "))
                .map(str::to_owned)
        })
        .unwrap()
}

/// The test cluster's server URL and CA (base64), from the admin kubeconfig.
fn server_and_ca() -> (String, String) {
    let admin = fs::read_to_string(cluster::admin_kubeconfig()).unwrap();
    let field = |key: &str| {
        admin
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(&format!("{key}: "))
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("no {key} in the admin kubeconfig"))
    };
    (field("server"), field("certificate-authority-data"))
}

/// A kubeconfig for `server` with `ca`, extra cluster fields and the user `user` (YAML lines
/// at the indentation of a user entry's fields).
fn kubeconfig(server: &str, ca: &str, cluster_extra: &str, user: &str, ns: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: hunt\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\n{cluster_extra}users:\n- name: hunter\n  user:\n{user}contexts:\n- name: hunt\n  context: {{cluster: hunt, user: hunter, namespace: {ns}}}\ncurrent-context: hunt\n"
    )
}

/// A token for ServiceAccount `name` in `ns`, issued by the API server.
fn token(ns: &str, name: &str) -> String {
    kubectl_ok(&["create", "token", name, "-n", ns, "--duration", "1h"])
        .trim()
        .to_owned()
}

/// Every regular file under `dir` with its contents.
fn files(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            files(&path, out);
        } else if kind.is_file() {
            out.insert(path.clone(), fs::read(&path).unwrap_or_default());
        }
    }
}

/// One test's world: inputs under `input/`, and the places a run may write (its working
/// directory, home, temporary directory and compile cache) under the same root, so that every
/// file a run creates or changes is found by comparing the tree before and after.
struct Hunt {
    root: TempDir,
    /// Every form of every secret of the hunt.
    forms: Vec<String>,
    /// How many runs were checked.
    cases: usize,
}

impl Hunt {
    fn input(&self, name: &str, contents: &str) -> String {
        let path = self.root.join("input").join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn path(&self, rel: &str) -> String {
        self.root.join(rel).to_str().unwrap().to_owned()
    }

    /// Runs `kstep args…` with `envs` (and only those, plus the job token), in `work/`, and
    /// checks that no form of any secret is in its output or in any file it wrote.
    #[track_caller]
    fn run(
        &mut self,
        what: &str,
        args: &[&str],
        envs: &[(&str, &str)],
        code: i32,
        says: &str,
    ) -> Run {
        let mut before = BTreeMap::new();
        files(&self.root, &mut before);
        let mut cmd = std::process::Command::new(kstep_bin());
        cmd.args(args)
            .current_dir(self.root.join("work"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.root.join("home"))
            .env("TMPDIR", self.root.join("tmp"))
            .env("KSTEP_CACHE_DIR", self.root.join("cache"))
            .env("CI_JOB_TOKEN", JOB_TOKEN)
            .envs(envs.iter().copied())
            .stdin(std::process::Stdio::null());
        let run: Run = cmd.output().unwrap().into();
        // A negative `code`: any clean exit (0 to 3).
        if code < 0 {
            assert!((0..=3).contains(&run.code), "{what}: {args:?}: {run:?}");
        } else {
            assert_eq!(run.code, code, "{what}: {args:?}: {run:?}");
        }
        assert!(
            run.all_output().contains(says),
            "{what}: expected {says:?} in the output (is this error path still the one tested?): {run:?}"
        );
        assert_no_secret(
            &format!("{what} ({args:?})"),
            &run.all_output(),
            &self.forms,
        );
        let mut after = BTreeMap::new();
        files(&self.root, &mut after);
        for (path, contents) in &after {
            if before.get(path) != Some(contents) {
                assert_no_secret(
                    &format!("{what}: the file {}", path.display()),
                    &String::from_utf8_lossy(contents),
                    &self.forms,
                );
            }
        }
        self.cases += 1;
        run
    }
}

/// The manifests of the hunt: a Secret whose values are markers, a ConfigMap, and a Deployment
/// that reads the Secret, its image `image`; with `denied`, the Secret carries the label the
/// admission policy refuses.
fn manifests(image: &str, denied: bool) -> String {
    let labels = if denied {
        "  labels: {kstep-hunt: deny}\n"
    } else {
        ""
    };
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: hunt-db\n{labels}stringData:\n  password: {STRING_DATA}\ndata:\n  token: {}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hunt-settings\ndata:\n  mode: hunting\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: hunt-web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: hunt-web}}\n  template:\n    metadata:\n      labels: {{app: hunt-web}}\n    spec:\n      containers:\n      - name: app\n        image: {image}\n        env:\n        - name: PASSWORD\n          valueFrom:\n            secretKeyRef: {{name: hunt-db, key: password}}\n",
        STANDARD.encode(DATA)
    )
}

/// An admission policy that refuses Secrets labelled `kstep-hunt` in `ns`, its message quoting
/// the Secret's password: the server echoes a secret.
fn deny_policy(name: &str, ns: &str) -> Cleanup {
    cluster::admission_policy(
        name,
        r#"[{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [secrets]}]"#,
        r#"expression: "!has(object.metadata.labels) || !('kstep-hunt' in object.metadata.labels)", messageExpression: "'hunt policy refuses ' + object.metadata.name + ' holding ' + string(object.data['password'])""#,
        &cluster::in_namespace(ns),
    )
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn no_form_of_any_secret_on_any_path() {
    let ns = Namespace::create("hunt");
    let n = &ns.name;
    // A ServiceAccount that may deploy in the namespace, and one that may do nothing.
    kubectl_ok(&["create", "serviceaccount", "deployer", "-n", n]);
    kubectl_ok(&["create", "serviceaccount", "nobody", "-n", n]);
    kubectl_ok(&[
        "create",
        "rolebinding",
        "deployer-admin",
        "--clusterrole=admin",
        &format!("--serviceaccount={n}:deployer"),
        "-n",
        n,
    ]);
    let deployer = token(n, "deployer");
    let exec_token = token(n, "deployer");
    let nobody = token(n, "nobody");
    let policy = format!("kstep-hunt-{}", std::process::id());
    let _cleanup = deny_policy(&policy, n);

    let root = TempDir::new("leak-hunt");
    for dir in ["work", "home", "tmp", "cache", "input"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    let mut hunt = Hunt {
        root,
        forms: Vec::new(),
        cases: 0,
    };
    let (server, ca) = server_and_ca();
    let wrong_ca = leak_fixture_field("certificate-authority-data");
    let client_cert = leak_fixture_field("client-certificate-data");
    let client_key_b64 = leak_fixture_field("client-key-data");
    let client_key = String::from_utf8(STANDARD.decode(&client_key_b64).unwrap()).unwrap();
    let exec_ok = hunt.input(
        "exec-ok.sh",
        &format!(
            "#!/bin/sh\nprintf '%s\\n' '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{exec_token}\"}}}}'\n"
        ),
    );
    let exec_fail = hunt.input(
        "exec-fail.sh",
        &format!(
            "#!/bin/sh\necho 'could not refresh; the old token was {EXEC_FAILURE_TOKEN}' >&2\necho '{EXEC_FAILURE_TOKEN}'\nexit 1\n"
        ),
    );
    #[cfg(unix)]
    for script in [&exec_ok, &exec_fail] {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(script, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let exec_user = |command: &str| {
        format!(
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {command}\n      interactiveMode: Never\n"
        )
    };
    let token_user = |token: &str| format!("    token: {token}\n");
    let identities: Vec<(&str, String)> = vec![
        (
            "deployer",
            kubeconfig(&server, &ca, "", &token_user(&deployer), n),
        ),
        (
            "exec plugin",
            kubeconfig(&server, &ca, "", &exec_user(&exec_ok), n),
        ),
        (
            "bad token",
            kubeconfig(&server, &ca, "", &token_user(BAD_TOKEN), n),
        ),
        (
            "password",
            kubeconfig(
                &server,
                &ca,
                "",
                &format!("    username: hunter\n    password: {PASSWORD}\n"),
                n,
            ),
        ),
        (
            "untrusted client key",
            kubeconfig(
                &server,
                &ca,
                "",
                &format!(
                    "    client-certificate-data: {client_cert}\n    client-key-data: {client_key_b64}\n"
                ),
                n,
            ),
        ),
        (
            "no rights",
            kubeconfig(&server, &ca, "", &token_user(&nobody), n),
        ),
        (
            "wrong CA",
            kubeconfig(&server, &wrong_ca, "", &token_user(&deployer), n),
        ),
        (
            "wrong server name",
            kubeconfig(
                &server,
                &ca,
                "    tls-server-name: not-the-api-server.example\n",
                &token_user(&deployer),
                n,
            ),
        ),
        (
            "failing exec plugin",
            kubeconfig(&server, &ca, "", &exec_user(&exec_fail), n),
        ),
    ];
    let mut secrets: Vec<String> = vec![
        deployer.clone(),
        exec_token.clone(),
        nobody.clone(),
        BAD_TOKEN.into(),
        PASSWORD.into(),
        client_key.clone(),
        EXEC_FAILURE_TOKEN.into(),
        JOB_TOKEN.into(),
        STRING_DATA.into(),
        DATA.into(),
    ];
    // An exec plugin that works `limit` times, then fails printing a marker: the token it
    // gives expired long ago, so kube-rs runs it for every request, and by turns the failure
    // lands in discovery, the dry run, the apply and the rollout watch.
    let counter = hunt.path("input/flaky.count");
    let limit = hunt.path("input/flaky.limit");
    let flaky = hunt.input(
        "exec-flaky.sh",
        &format!(
            "#!/bin/sh\nn=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}\nif [ $n -le $(cat {limit}) ]; then\n  printf '%s\\n' '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{exec_token}\",\"expirationTimestamp\":\"2000-01-01T00:00:00Z\"}}}}'\nelse\n  echo 'refresh failed: {FLAKY_TOKEN}' >&2; echo '{FLAKY_TOKEN}'; exit 1\nfi\n"
        ),
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&flaky, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let flaky_config = kubeconfig(&server, &ca, "", &exec_user(&flaky), n);
    secrets.push(FLAKY_TOKEN.into());
    secrets.push(flaky_config.clone());
    secrets.extend(identities.iter().map(|(_, k)| k.clone()));
    hunt.forms = secret_forms(&secrets);

    let ok = hunt.input("ok/app.yaml", &manifests("registry.local/hunt:1", false));
    let denied = hunt.input("denied/app.yaml", &manifests("registry.local/hunt:1", true));
    let failing = hunt.input(
        "failing/app.yaml",
        &manifests("example.invalid/does-not-exist:1", false),
    );
    let pipeline = |manifests: &str| {
        format!(
            "steps:\n  - render: {manifests}\n  - apply: {{namespace: {n}}}\n  - wait: {{timeout: 4s}}\n"
        )
    };
    let run_ok = hunt.input("ok.kstep.yaml", &pipeline(&ok));
    let run_denied = hunt.input("denied.kstep.yaml", &pipeline(&denied));
    let run_failing = hunt.input("failing.kstep.yaml", &pipeline(&failing));
    let dotenv = hunt.path("work/deploy.env");
    let sa_out = hunt.path("work/sa");
    let deploy_ok = [
        "deploy",
        "-f",
        &ok,
        "-n",
        n,
        "--no-env",
        "--timeout",
        "20s",
        "--dotenv-out",
        &dotenv,
        "--output",
        "json",
    ];

    // The policy takes a moment to be enforced.
    let started = Instant::now();
    loop {
        let out = kubectl(&["apply", "--dry-run=server", "-n", n, "-f", &denied]);
        if String::from_utf8_lossy(&out.stderr).contains("hunt policy refuses") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the admission policy is not enforced: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    for (who, config) in &identities {
        let file = hunt.input(&format!("{}.kubeconfig", who.replace(' ', "-")), config);
        let encoded = STANDARD.encode(config);
        let by_file = ["--kubeconfig", file.as_str()];
        // The kubeconfig as GitLab passes it: base64 in the variable, for the main identity;
        // as a file for the others.
        let (flag, env): (&[&str], Vec<(&str, &str)>) = if *who == "deployer" {
            (&[], vec![("KUBECONFIG", encoded.as_str())])
        } else {
            (&by_file, vec![])
        };
        let with = |args: &[&str]| -> Vec<String> {
            args.iter().chain(flag).map(|s| (*s).to_owned()).collect()
        };
        // What each identity runs into, and a word of the message that proves it.
        let (code, says): (i32, &str) = match *who {
            "deployer" | "exec plugin" => (0, ""),
            "bad token" | "untrusted client key" => (1, "401"),
            // The API server ignores basic authentication: the request is anonymous.
            "password" => (1, "system:anonymous"),
            "no rights" => (1, "403"),
            "wrong CA" | "wrong server name" => (1, "certificate"),
            _ => (1, "exec plugin"),
        };
        // `kubeconfig check` reports an identity without rights; it fails on the others.
        let (check_code, check_says) = match (*who, code) {
            ("no rights", _) => (0, "cannot get, create, patch"),
            (_, 0) => (0, ""),
            _ => (1, says),
        };
        let cases: Vec<(Vec<String>, i32, &str)> = vec![
            (
                with(&["kubeconfig", "check", "--timeout", "5s"]),
                check_code,
                check_says,
            ),
            (
                with(&["kubeconfig", "check", "--timeout", "5s", "--output", "json"]),
                check_code,
                if check_code == 0 { "" } else { says },
            ),
            // Reading it without connecting.
            (with(&["kubeconfig", "show"]), 0, "hunt"),
            (with(&["kubeconfig", "show", "--output", "json"]), 0, "hunt"),
            (
                with(&["apply", "-f", &ok, "-n", n, "--request-timeout", "5s"]),
                code,
                says,
            ),
            (with(&deploy_ok), code, says),
            (with(&["run", &run_ok]), code, says),
        ];
        for (args, code, says) in &cases {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            hunt.run(who, &args, &env, *code, says);
        }
        if code != 0 {
            // Bootstrapping another identity with credentials that cannot.
            let args = with(&[
                "serviceaccount",
                "create",
                "--namespace",
                n,
                "--name",
                "hunted",
                "--out-dir",
                &sa_out,
            ]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            hunt.run(who, &args, &env, code, says);
            continue;
        }
        // The identities that may deploy: an admission denial quoting the Secret (exit 2,
        // at the dry run) and a failed rollout (exit 3), in text and JSON.
        let failures: Vec<(Vec<String>, i32, &str)> = vec![
            (
                with(&["apply", "-f", &denied, "-n", n]),
                2,
                "hunt policy refuses hunt-db holding",
            ),
            (
                with(&[
                    "deploy", "-f", &denied, "-n", n, "--no-env", "--output", "json",
                ]),
                2,
                "hunt policy refuses",
            ),
            (with(&["run", &run_denied]), 2, "hunt policy refuses"),
            (
                with(&[
                    "deploy",
                    "-f",
                    &failing,
                    "-n",
                    n,
                    "--no-env",
                    "--timeout",
                    "4s",
                    "--dotenv-out",
                    &dotenv,
                ]),
                3,
                "does-not-exist",
            ),
            (
                with(&[
                    "apply",
                    "-f",
                    &failing,
                    "-n",
                    n,
                    "--wait",
                    "--timeout",
                    "4s",
                    "--output",
                    "json",
                ]),
                3,
                "does-not-exist",
            ),
            (with(&["run", &run_failing]), 3, "does-not-exist"),
        ];
        for (args, code, says) in &failures {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            hunt.run(who, &args, &env, *code, says);
        }
        // The Secret was applied with its real values all along.
        let secret = cluster::kubectl_json(&["get", "secret", "hunt-db", "-n", n]);
        assert_eq!(secret["data"]["password"], STANDARD.encode(STRING_DATA));
        // Back to the good image for the next identity.
        hunt.run(
            who,
            &with(&["apply", "-f", &ok, "-n", n])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            &env,
            0,
            "",
        );
    }

    let flaky_file = hunt.input("flaky.kubeconfig", &flaky_config);
    let (mut failed, mut passed) = (0, 0);
    for calls in (0..=12).chain([50]) {
        for args in [
            vec!["apply", "-f", &ok, "-n", n, "--wait", "--timeout", "20s"],
            deploy_ok.to_vec(),
            vec!["run", &run_ok],
        ] {
            fs::write(&counter, "0").unwrap();
            fs::write(&limit, calls.to_string()).unwrap();
            let mut args = args.clone();
            args.extend(["--kubeconfig", &flaky_file]);
            let run = hunt.run(
                &format!("flaky exec plugin, {calls} call(s)"),
                &args,
                &[],
                -1,
                "",
            );
            if run.code == 0 {
                passed += 1;
            } else {
                assert!(run.all_output().contains("exec plugin"), "{run:?}");
                failed += 1;
            }
        }
    }
    assert!(
        failed >= 15 && passed >= 3,
        "{failed} failed, {passed} passed"
    );
    assert!(hunt.cases > 80, "{} cases", hunt.cases);
}
