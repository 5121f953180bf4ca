//! `kstep render` end to end: the real binary, the embedded manifest component.

use crate::cluster;
use crate::support::Text::{Has, Lacks, StartsWith};
use crate::support::{Run, TempDir, kstep, test_fixture};

/// `tests/fixtures/manifests/<path>`, as an argument.
fn manifests(path: &str) -> String {
    test_fixture(&format!("manifests/{path}"))
        .display()
        .to_string()
}

fn json(run: &Run) -> Vec<serde_json::Value> {
    run.ok();
    serde_json::from_str(&run.stdout).unwrap()
}

/// The reference workflow's manifests plus `--image` instead of `sed`.
fn reference_args() -> Vec<String> {
    [
        "render",
        "--no-env",
        "-f",
        &manifests("reference"),
        "-f",
        &manifests("reference/traefik"),
        "--upgrade-api-versions",
        "--image",
        "blog=registry.gitlab.com/group/project:3f2a9c1-42-7",
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn reference_workflow_renders_to_current_api_versions() {
    let mut args = reference_args();
    args.extend(["-o".into(), "json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = kstep(&args, &[], None);
    let docs = json(&run);
    assert_eq!(docs.len(), 14);
    let versions: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["apiVersion"].as_str().unwrap(),
                d["kind"].as_str().unwrap()
            )
        })
        .collect();
    for old in ["extensions/v1beta1", "rbac.authorization.k8s.io/v1beta1"] {
        assert!(!versions.iter().any(|v| v.starts_with(old)), "{versions:?}");
    }
    // Directory order: deployment.yml before gitlab-integration.yml, then the traefik files.
    assert_eq!(docs[0]["metadata"]["name"], "blog");
    assert_eq!(docs[0]["apiVersion"], "apps/v1");
    assert_eq!(
        docs[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.gitlab.com/group/project:3f2a9c1-42-7"
    );
    run.stderr(Has(
        "image IMAGE -> registry.gitlab.com/group/project:3f2a9c1-42-7",
    ));
    run.stderr(Has(
        "Ingress `blog`: extensions/v1beta1 -> networking.k8s.io/v1 (removed in Kubernetes 1.22)",
    ));
}

#[test]
fn yaml_output_is_a_multi_document_stream() {
    let args = reference_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = kstep(&args, &[], None);
    run.ok();
    assert_eq!(run.stdout.matches("---\n").count(), 14);
    run.stdout(StartsWith("---\napiVersion: apps/v1\nkind: Deployment\n"));
    run.stdout(Has(
        "  traefik.toml: |\n    defaultEntryPoints = [\"http\", \"https\"]\n",
    ));
    // The report is on stderr only.
    run.stdout(Lacks("kstep render:"));
}

#[test]
fn removed_api_versions_are_reported_without_the_flag() {
    let run = kstep(
        &[
            "render",
            "--no-env",
            "-q",
            "-f",
            &manifests("reference/traefik"),
        ],
        &[],
        None,
    );
    run.ok();
    let file = manifests("reference/traefik/traefik-api-ingress.yml");
    run.stderr(Has(&format!(
            "{file}:2:13: warning: Ingress `traefik-web-ui`: extensions/v1beta1 was removed in Kubernetes 1.22: use networking.k8s.io/v1 (--upgrade-api-versions rewrites it)"
        )));
}

#[test]
fn errors_exit_2_with_every_location_and_nothing_on_stdout() {
    let file = manifests("templates/app.yaml");
    let run = kstep(
        &["render", "--no-env", "-f", &file, "--image", "nothing=x:1"],
        &[],
        None,
    );
    run.exits_with(2);
    assert_eq!(run.stdout, "");
    for place in [
        "5:9", "8:10", "9:15", "14:12", "18:14", "25:15", "38:9", "53:9",
    ] {
        assert!(
            run.stderr.contains(&format!("{file}:{place}: variable `")),
            "{place}: {}",
            run.stderr
        );
    }
    // A container is named `${APP}`, unset: it could be `nothing`, so only the variables are
    // reported. With them set, the override that matches nothing is.
    run.stderr(Lacks("no container is named"));
    let run = kstep(
        &[
            "render",
            "--no-env",
            "-f",
            &file,
            "--image",
            "nothing=x:1",
            "--set",
            "APP=web",
            "--set",
            "VERSION=1",
        ],
        &[],
        None,
    );
    run.fails_with(2);
    run.stderr(Has(
        "--image: --image nothing=x:1: no container is named `nothing`",
    ));
    // The classic sed placeholder, left in place.
    let run = kstep(
        &[
            "render",
            "--no-env",
            "-f",
            &manifests("reference/deployment.yml"),
        ],
        &[],
        None,
    );
    assert_eq!((run.code, run.stdout.as_str()), (2, ""));
    run.stderr(Has("`IMAGE` is not a valid image reference"));
}

#[test]
fn a_missing_env_file_is_named_with_its_os_error_once() {
    let run = kstep(
        &[
            "render",
            "--no-env",
            "-f",
            &manifests("templates/app.yaml"),
            "--env-file",
            "/nonexistent/docker.env",
        ],
        &[],
        None,
    );
    run.fails_with(2)
        .stderr(Has("/nonexistent/docker.env: No such file or directory"));
    assert_eq!(
        run.stderr.matches("No such file").count(),
        1,
        "{}",
        run.stderr
    );
}

#[test]
fn variables_precedence_set_then_env_files_then_environment() {
    let dir = TempDir::new("render-precedence");
    let template = dir.join("t.yaml");
    std::fs::write(
        &template,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: ${A}\n  b: ${B}\n  c: ${C}\n  d: ${D}\n  home: $HOME\n  dollar: $$5\n",
    )
    .unwrap();
    let first = dir.join("first.env");
    let second = dir.join("second.env");
    std::fs::write(&first, "B=first\nC=first\nD=first\n").unwrap();
    std::fs::write(&second, "D=second\n").unwrap();
    let (t, f1, f2) = (
        template.display().to_string(),
        first.display().to_string(),
        second.display().to_string(),
    );
    let env = [
        ("A", "environment"),
        ("B", "environment"),
        ("C", "environment"),
    ];
    let run = kstep(
        &[
            "render",
            "-o",
            "json",
            "-f",
            &t,
            "--env-file",
            &f1,
            "--env-file",
            &f2,
            "--set",
            "C=set",
        ],
        &env,
        None,
    );
    let data = &json(&run)[0]["data"];
    assert_eq!(
        *data,
        serde_json::json!({"a": "environment", "b": "first", "c": "set", "d": "second", "home": "$HOME", "dollar": "$$5"})
    );
    run.stderr(Has("${C} from --set"));
    run.stderr(Has(&format!("${{D}} from --env-file {f2}")));
    // --no-env: A is no longer defined.
    let run = kstep(
        &[
            "render",
            "--no-env",
            "-f",
            &t,
            "--env-file",
            &f1,
            "--set",
            "D=x",
        ],
        &env,
        None,
    );
    assert_eq!(run.code, 2);
    run.stderr(Has(&format!("{t}:6:6: variable `A` is not set")));
}

#[test]
fn values_cannot_change_the_structure_and_are_not_echoed() {
    let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: ${V}\n  b: \"${V}\"\n  token: ${TOKEN}\n";
    let nasty = "x\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: b} # c";
    let run = kstep(
        &[
            "render",
            "--no-env",
            "-o",
            "json",
            "-f",
            "-",
            "--set",
            &format!("V={nasty}"),
            "--set",
            "TOKEN=s3cr3t-t0ken-value",
        ],
        &[],
        Some(doc.as_bytes()),
    );
    let docs = json(&run);
    assert_eq!(docs.len(), 1);
    assert_eq!(
        docs[0]["data"],
        serde_json::json!({"a": nasty, "b": nasty, "token": "s3cr3t-t0ken-value"})
    );
    run.stderr(Lacks("s3cr3t"));
    run.stderr(Has("<stdin>"));
}

#[test]
fn whole_plain_placeholders_are_typed_like_yaml() {
    let doc = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  labels:\n    version: \"${V}\"\nspec:\n  replicas: ${N}\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n      - {name: c, image: \"nginx:${V}\"}\n";
    let run = kstep(
        &[
            "render", "--no-env", "-o", "json", "-f", "-", "--set", "N=3", "--set", "V=1.10",
        ],
        &[],
        Some(doc.as_bytes()),
    );
    let d = &json(&run)[0];
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["labels"]["version"], "1.10");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.10"
    );
}

#[test]
fn kubernetes_dollar_parens_render_unchanged() {
    // Kubernetes reads `$(VAR)` in command/args/env as a reference and `$$(VAR)` as the literal
    // `$(VAR)`: kstep must hand both over as written, next to its own `${…}` and `$${`.
    let doc = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: \"nginx:${TAG}\"\n    command: [\"/bin/sh\", \"-c\", \"echo $$(HOME) $(HOME) $${HOME}\"]\n    args: [\"--name=$$(POD_NAME)\", \"--tag=${TAG}\"]\n    env:\n    - name: LITERAL\n      value: \"$$(POD_NAME)\"\n    - name: BOTH\n      value: $$(A)-${TAG}-$$\n";
    let run = kstep(
        &[
            "render", "--no-env", "-o", "json", "-f", "-", "--set", "TAG=1.27",
        ],
        &[],
        Some(doc.as_bytes()),
    );
    let pod = &json(&run)[0];
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx:1.27");
    assert_eq!(c["command"][2], "echo $$(HOME) $(HOME) ${HOME}");
    assert_eq!(c["args"][0], "--name=$$(POD_NAME)");
    assert_eq!(c["args"][1], "--tag=1.27");
    assert_eq!(c["env"][0]["value"], "$$(POD_NAME)");
    assert_eq!(c["env"][1]["value"], "$$(A)-1.27-$$");
    // A third-party manifest full of `$` and `$$` and no placeholder renders unchanged.
    let run = kstep(
        &[
            "render",
            "--no-env",
            "-o",
            "json",
            "-f",
            &manifests("third-party/dollars.yaml"),
        ],
        &[],
        None,
    );
    let docs = json(&run);
    let c = &docs[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        docs[0]["metadata"]["annotations"]["example.com/note"],
        "costs 5$ and $$ per hour"
    );
    assert_eq!(
        c["command"][2],
        "echo $$ > /tmp/pid; exec exporter --literal=$$(NOT_EXPANDED) --ref=$(POD_NAME)"
    );
    assert_eq!(
        c["args"],
        serde_json::json!([
            "--listen=$(POD_IP):9100",
            "--label=$$(POD_NAME)",
            "$$$(POD_NAME)"
        ])
    );
    assert_eq!(c["env"][1]["value"], "pid $$, home $HOME, ref $$(POD_NAME)");
    assert_eq!(
        docs[1]["data"]["Makefile"],
        "VERSION := $$(git describe)\nall:\n\t@echo $$PATH $$$$\n"
    );
    assert_eq!(
        docs[1]["data"]["run.sh"],
        "#!/bin/sh\nkill -0 $$ && echo \"$$PPID\" \"$1\" \"$@\"\n"
    );
    // The YAML output keeps them too (what `deploy` sends is the same document).
    let run = kstep(
        &[
            "render",
            "--no-env",
            "-f",
            &manifests("third-party/dollars.yaml"),
        ],
        &[],
        None,
    );
    run.ok();
    run.stdout(Has("--label=$$(POD_NAME)"));
    run.stdout(Has("echo $$PATH $$$$"));
}

#[test]
fn image_overrides_by_repository_with_registry_port() {
    let file = manifests("templates/app.yaml");
    let digest = format!(
        "registry.local:5000/team/app:2.0@sha256:{}",
        "ab".repeat(32)
    );
    let run = kstep(
        &[
            "render",
            "--no-env",
            "-q",
            "-o",
            "json",
            "-f",
            &file,
            "--set",
            "APP=web",
            "--set",
            "VERSION=1",
            "--image",
            &format!("registry.local:5000/team/app={digest}"),
        ],
        &[],
        None,
    );
    let docs = json(&run);
    let pod = &docs[0]["spec"]["template"]["spec"];
    assert_eq!(pod["initContainers"][0]["image"], digest.as_str());
    assert_eq!(pod["containers"][0]["image"], digest.as_str());
    assert_eq!(pod["containers"][1]["image"], "nginx:1.27");
    assert_eq!(
        docs[1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"],
        digest.as_str()
    );
    // An override that matches nothing: error, or a warning with --allow-unmatched.
    let run = kstep(
        &[
            "render",
            "--no-env",
            "-f",
            &file,
            "--set",
            "APP=web",
            "--set",
            "VERSION=1",
            "--image",
            "registry.local:5000/team/ap=x:1",
        ],
        &[],
        None,
    );
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{}", run.stderr);
    let run = kstep(
        &[
            "render",
            "--no-env",
            "-f",
            &file,
            "--set",
            "APP=web",
            "--set",
            "VERSION=1",
            "--image",
            "registry.local:5000/team/ap=x:1",
            "--allow-unmatched",
        ],
        &[],
        None,
    );
    run.ok();
    run.stderr(Has(
        "--image: warning: --image registry.local:5000/team/ap=x:1: no container",
    ));
}

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${APP}-report\n\
    spec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: ${IMAGE}\n";

#[test]
fn only_the_root_cause_of_a_problem_is_reported() {
    let d = TempDir::new("render-root-cause");
    let f = d.write("app.yaml", DEPLOYMENT);
    // `render("--set APP=a …")`: the flags after `-f FILE`, split at spaces.
    let render = |extra: &str| {
        let mut args = vec!["render", "--no-env", "-f", &f];
        args.extend(extra.split(' '));
        kstep(&args, &[], None)
    };
    // A container matched by two overrides: one error, not "no container is named" too.
    let run = render("--set APP=a --set IMAGE=nginx:1 --image web=y:1 --image nginx=z:1");
    run.fails_with(2);
    run.stderr(Has("matched by several --image overrides (`web`, `nginx`)"));
    run.stderr(Lacks("no container is named `web`"));
    run.stderr(Lacks("no container is named `nginx`"));
    // IMAGE unset with --image web=…: the variable only; the container does exist.
    let run = render("--set APP=a --image web=x:1");
    run.fails_with(2);
    run.stderr(Has("variable `IMAGE` is not set"));
    run.stderr(Lacks("no container is named"));
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    // APP unset in `${APP}-report`: not "metadata.name must be a string, not null".
    let run = render("--set IMAGE=nginx:1");
    run.fails_with(2);
    run.stderr(Has("variable `APP` is not set"));
    run.stderr(Lacks("must be a string"));
    run.stderr(Lacks("no container is named"));
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    // `--image web=$IMAGE` with IMAGE empty in the job.
    let run = render("--set APP=a --set IMAGE=nginx:1 --image web=");
    run.fails_with(2);
    run.stderr(Has("`web=`: the image reference is empty: is the variable"));
}

#[test]
fn unreadable_and_empty_files_are_named_with_positions() {
    let d = TempDir::new("render-bad-files");
    for (name, text, says) in [
        // Latin-1 `é` on line 2: the position, like dotenv's.
        (
            "latin1.yaml",
            &b"kind: ConfigMap\nname: caf\xe9\n"[..],
            ":2:10: not valid UTF-8 (byte 26)",
        ),
        // A tab on line 4 is reported on line 4, not on the scalar before it.
        (
            "tab.yaml",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: x\n",
            ":4:1: invalid YAML: a tab in the indentation",
        ),
        // An empty file says so.
        ("empty.yaml", b"", ": the file is empty"),
        // A placeholder in a flow mapping: the YAML error says to quote it.
        (
            "flow.yaml",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {b: ${N}}\n",
            ":4:12: invalid YAML: while parsing a flow mapping",
        ),
    ] {
        let file = d.write(name, text);
        let run = kstep(
            &["render", "--no-env", "--set", "N=1", "-f", &file],
            &[],
            None,
        );
        run.fails_with(2);
        run.stderr(Has(&format!("{file}{says}")));
        if name == "flow.yaml" {
            run.stderr(Has("placeholder inside `{…}` or `[…]` must be quoted"));
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["render"],
        vec!["render", "-f", "/nonexistent.yaml"],
        vec!["render", "-f", "-", "--set", "NOT-A-NAME=1"],
        vec!["render", "-f", "-", "--image", "noequals"],
        vec!["render", "-f", "-", "-f", "-"],
    ] {
        let run = kstep(&args, &[], Some(b""));
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (2, ""),
            "{args:?}: {}",
            run.stderr
        );
    }
}

/// The rendered reference manifests are accepted by a current API server (server-side dry
/// run), where the originals are refused.
#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn reference_workflow_is_accepted_by_a_current_cluster() {
    let ns = cluster::Namespace::create("render");
    let args = reference_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = kstep(&args, &[], None);
    run.ok();
    // The reference files hard-code namespaces `example` and `traefik`; point them at the
    // test's namespace.
    let yaml = run
        .stdout
        .replace("namespace: example", &format!("namespace: {}", ns.name))
        .replace("namespace: traefik", &format!("namespace: {}", ns.name));
    let out = cluster::kubectl_stdin(
        &["apply", "--dry-run=server", "-n", &ns.name, "-f", "-"],
        &yaml,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("(server dry run)").count(), 14, "{stdout}");
    assert!(
        stdout.contains("ingress.networking.k8s.io/traefik-web-ui created (server dry run)"),
        "{stdout}"
    );
}

/// kubectl's own YAML reader (YAML 1.1, `sigs.k8s.io/yaml`) reads kstep's YAML output as the
/// same strings kstep rendered: the emitter quotes everything YAML 1.1 would retype.
#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn kubectl_reads_the_yaml_output_back_unchanged() {
    let values = [
        "on",
        "y",
        "NO",
        "~",
        "",
        "1.10",
        "0644",
        "0x1F",
        "1_000",
        "1:30",
        "2024-01-01",
        "-",
        "<<",
        "a: b # c",
        "x\n---\nkind: Secret",
        "trail ",
        " lead",
        "tab\there",
        "quote\"s'",
        "é ü",
        "line\n",
        "two\n\n",
        "=",
        "*alias",
        "&anchor",
        "!tag",
        "%percent",
        "@at",
        "`tick",
        "{a: 1}",
        "[1]",
        "null",
        "True",
        ".inf",
        "1e3",
        "+1",
        "a\u{85}b",
    ];
    let mut doc = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n");
    let mut args: Vec<String> = ["render", "--no-env", "-q", "-f", "-"]
        .map(str::to_owned)
        .to_vec();
    for (i, v) in values.iter().enumerate() {
        doc.push_str(&format!("  k{i}: \"${{V{i}}}\"\n"));
        args.push("--set".into());
        args.push(format!("V{i}={v}"));
    }
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let yaml = kstep(&args_ref, &[], Some(doc.as_bytes()));
    yaml.ok();
    let out = cluster::kubectl_stdin(
        &["label", "--local", "-f", "-", "checked=yes", "-o", "json"],
        &yaml.stdout,
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        yaml.stdout
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (i, v) in values.iter().enumerate() {
        assert_eq!(
            read["data"][format!("k{i}")],
            *v,
            "value {v:?} in\n{}",
            yaml.stdout
        );
    }
}
