//! `kstep plan` and `--plan FILE` against the real control plane: creates on a fresh
//! namespace, unchanged after a deploy, the diff of an image change and nothing of what another
//! field manager set, Secret changes as key names only, and plans refused after a live or a
//! manifest change.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::cluster::{self, Namespace, kubectl_json, kubectl_ok};
use crate::support::Text::{Has, Lacks};
use crate::support::{Run, TempDir, kstep, test_fixture};

fn as_admin(args: &[&str]) -> Run {
    let kubeconfig = cluster::admin_kubeconfig();
    kstep(args, &[("KUBECONFIG", &kubeconfig)], None)
}

/// `kstep VERB -f app/ --env-file docker.env --no-env -n NS EXTRA…` (the reference app).
fn app(verb: &str, ns: &Namespace, extra: &[&str]) -> Run {
    let files = test_fixture("deploy/app");
    let env = test_fixture("deploy/docker.env");
    let mut args = vec![
        verb,
        "-f",
        files.to_str().unwrap(),
        "--env-file",
        env.to_str().unwrap(),
        "--no-env",
        "-n",
        &ns.name,
    ];
    args.extend_from_slice(extra);
    as_admin(&args)
}

fn image(ns: &Namespace) -> String {
    let d = kubectl_json(&["get", "deployment", "web", "-n", &ns.name]);
    d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The `+`/`-` lines of the diffs in a text plan (indented by 6 there; headers left out).
fn changed_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("      "))
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect()
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn plan_shows_creates_then_unchanged_then_only_what_kstep_changes() {
    let ns = Namespace::create("plan");
    let run = app("plan", &ns, &[]);
    run.ok();
    run.stdout(Has(&format!("Plan for namespace {}", ns.name)));
    run.stdout(Has(": 5 to create, 0 to update, 0 unchanged\n"));
    run.stdout(Has("\n  create     deployment.apps/web\n"));
    app("plan", &ns, &["--exit-code"]).exits_with(4);
    assert!(
        !cluster::exists(&ns.name, "deployment", "web"),
        "plan changes nothing"
    );

    app("deploy", &ns, &["--timeout", "90s"]).ok();
    // Fields another manager sets are not kstep's changes.
    kubectl_ok(&[
        "annotate",
        "deployment",
        "web",
        "-n",
        &ns.name,
        "team/owner=payments",
    ]);
    kubectl_ok(&[
        "label",
        "configmap",
        "web-config",
        "-n",
        &ns.name,
        "audited=yes",
    ]);
    let run = app("plan", &ns, &["--exit-code"]);
    run.ok();
    run.stdout(Has(": 0 to create, 0 to update, 5 unchanged\n"));
    run.stdout(Lacks("payments"));
    run.stdout(Lacks("audited"));

    let image2 = ["--image", "web=registry.example/team/web:2"];
    let mut args = image2.to_vec();
    args.push("--exit-code");
    let run = app("plan", &ns, &args);
    run.exits_with(4);
    run.stdout(Has(": 0 to create, 1 to update, 4 unchanged\n"));
    run.stdout(Has("\n  update     deployment.apps/web\n"));
    assert_eq!(
        changed_lines(&run.stdout),
        [
            "-        image: registry.example/team/web:1.0",
            "+        image: registry.example/team/web:2"
        ],
        "{}",
        run.stdout
    );
    run.stdout(Lacks("payments"));
    assert_eq!(image(&ns), "registry.example/team/web:1.0");

    let mut args = image2.to_vec();
    args.extend(["-o", "markdown"]);
    let run = app("plan", &ns, &args);
    run.ok();
    run.stdout(Has(
        "| create | update | unchanged |\n|---:|---:|---:|\n| 0 | 1 | 4 |\n",
    ));
    run.stdout(Has(
        "<details><summary>update <code>deployment.apps/web</code>",
    ));
    run.stdout(Has("+        image: registry.example/team/web:2\n"));

    let mut args = image2.to_vec();
    args.extend(["-o", "json"]);
    let run = app("plan", &ns, &args);
    run.ok();
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["summary"]["update"], 1);
    assert_eq!(json["changes"], true);
    let web = json["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap();
    assert_eq!(web["action"], "update");
    assert!(web["diff"].as_str().unwrap().contains("web:2"));
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn a_changed_secret_shows_key_names_and_never_a_value() {
    let ns = Namespace::create("plan-secret");
    let dir = TempDir::new("plan-secret");
    let marker = |what: &str| format!("plan-marker-{}-{what}-value", std::process::id());
    let secret = |data: &[(&str, String)]| {
        // `data`, not `stringData`: server-side apply removes a key dropped from `data` only.
        let mut text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  labels:\n    app: web\ntype: Opaque\ndata:\n".to_owned();
        for (k, v) in data {
            text.push_str(&format!("  {k}: {}\n", STANDARD.encode(v)));
        }
        text
    };
    let file = dir.write(
        "secret.yaml",
        secret(&[
            ("password", marker("old")),
            ("gone", marker("gone")),
            ("same", marker("same")),
        ]),
    );
    as_admin(&["apply", "-f", &file, "-n", &ns.name]).ok();
    // Client-side kubectl's copy of the object (with the values) on the live Secret too.
    kubectl_ok(&[
        "annotate",
        "secret",
        "creds",
        "-n",
        &ns.name,
        &format!(
            "kubectl.kubernetes.io/last-applied-configuration={{\"stringData\":{{\"password\":\"{}\"}}}}",
            marker("old")
        ),
    ]);

    std::fs::write(
        &file,
        secret(&[
            ("password", marker("new")),
            ("token", marker("token")),
            ("same", marker("same")),
        ]),
    )
    .unwrap();
    let out = dir.join("plan.json");
    let mut outputs = Vec::new();
    let mut json = Value::Null;
    for format in ["text", "json", "markdown"] {
        let run = as_admin(&[
            "plan",
            "-f",
            &file,
            "-n",
            &ns.name,
            "--no-env",
            "-o",
            format,
            "--exit-code",
            "--out",
            out.to_str().unwrap(),
        ]);
        run.exits_with(4);
        if format == "json" {
            json = serde_json::from_str(&run.stdout).unwrap();
        }
        outputs.push(run.all_output());
        outputs.push(std::fs::read_to_string(&out).unwrap());
    }
    assert!(outputs[0].contains("  update     secret/creds: Secret keys added: token; changed: password; removed: gone\n"), "{}", outputs[0]);
    assert!(
        outputs[0].contains("-  password: (hidden)\n"),
        "{}",
        outputs[0]
    );
    assert!(
        outputs[0].contains("+  password: (hidden, changed)\n"),
        "{}",
        outputs[0]
    );
    assert_eq!(json["objects"][0]["secret_keys"]["changed"][0], "password");
    for text in &outputs {
        for what in ["old", "new", "gone", "same", "token"] {
            let value = marker(what);
            for form in [
                value.clone(),
                STANDARD.encode(&value),
                STANDARD.encode(&value)[..20].to_owned(),
            ] {
                assert!(!text.contains(&form), "{what} leaks:\n{text}");
            }
        }
        // Nothing needed masking either: the values never reached the output.
        assert!(!text.contains("[MASKED]"), "{text}");
    }
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn deploy_applies_the_plan_only_while_it_still_holds() {
    let ns = Namespace::create("plan-file");
    let dir = TempDir::new("plan-file");
    let plan = dir.join("plan.json");
    let plan = plan.to_str().unwrap();
    app("deploy", &ns, &["--timeout", "90s"]).ok();

    // Nothing changed since the plan: accepted.
    app("plan", &ns, &["--out", plan]).ok();
    let file: Value = serde_json::from_str(&std::fs::read_to_string(plan).unwrap()).unwrap();
    assert_eq!(file["kstep-plan"], 1);
    assert_eq!(file["objects"].as_array().unwrap().len(), 5);
    assert!(
        file["objects"][0]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(file["objects"][0]["resourceVersion"].is_string());
    let run = app("deploy", &ns, &["--plan", plan, "--timeout", "90s"]);
    run.ok();
    run.stdout(Has(&format!(
        "Plan {plan} matches: 5 object(s) as reviewed\n"
    )));

    // A live change between the plan and the deploy: refused, nothing applied.
    let v2 = ["--image", "web=registry.example/team/web:2"];
    let mut args = v2.to_vec();
    args.extend(["--out", plan]);
    app("plan", &ns, &args).ok();
    kubectl_ok(&[
        "annotate",
        "configmap",
        "web-config",
        "-n",
        &ns.name,
        "edited=by-hand",
    ]);
    let mut args = v2.to_vec();
    args.extend(["--plan", plan, "--no-wait"]);
    let run = app("deploy", &ns, &args);
    // (The render section is on stdout already: the check needs the rendered objects.)
    run.exits_with(2);
    run.stdout(Lacks("Applying"));
    run.stderr(Has(&format!(
        "configmap/web-config in namespace {}: changed in the cluster since the plan (resourceVersion ",
        ns.name
    )));
    run.stderr(Has("nothing was changed"));
    assert_eq!(image(&ns), "registry.example/team/web:1.0");

    // Another render than the one planned: refused, naming the object.
    let mut args = v2.to_vec();
    args.extend(["--out", plan]);
    app("plan", &ns, &args).ok();
    let run = app(
        "deploy",
        &ns,
        &[
            "--image",
            "web=registry.example/team/web:3",
            "--plan",
            plan,
            "--no-wait",
        ],
    );
    run.exits_with(2);
    run.stdout(Lacks("Applying"));
    run.stderr(Has(&format!(
        "deployment.apps/web in namespace {}: its content differs from the plan's",
        ns.name
    )));
    assert_eq!(image(&ns), "registry.example/team/web:1.0");

    // The reviewed plan applies.
    let mut args = v2.to_vec();
    args.extend(["--plan", plan, "--no-wait"]);
    app("deploy", &ns, &args).ok();
    assert_eq!(image(&ns), "registry.example/team/web:2");

    // A file that is not a plan: exit 2, nothing sent.
    let bad = dir.write("bad.json", "{\"objects\": []}");
    let run = app("deploy", &ns, &["--plan", &bad, "--no-wait"]);
    run.fails_with(2);
    run.stderr(Has(&format!("{bad}: not a kstep plan file")));
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn apply_checks_the_plan_too() {
    let ns = Namespace::create("plan-apply");
    let dir = TempDir::new("plan-apply");
    let cm = |value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  level: {value}\n"
        )
    };
    let file = dir.write("cm.yaml", cm("one"));
    let plan = dir.join("plan.json");
    let plan = plan.to_str().unwrap();
    as_admin(&["plan", "-f", &file, "-n", &ns.name, "--out", plan]).ok();
    // Another object appears in the manifests after the plan.
    let two = dir.write(
        "two.yaml",
        format!("{}---\n{}", cm("one"), cm("x").replace("settings", "extra")),
    );
    let run = as_admin(&["apply", "-f", &two, "-n", &ns.name, "--plan", plan]);
    run.fails_with(2);
    run.stderr(Has(&format!(
        "configmap/extra in namespace {}: not in the plan",
        ns.name
    )));
    assert!(!cluster::exists(&ns.name, "configmap", "settings"));
    let run = as_admin(&["apply", "-f", &file, "-n", &ns.name, "--plan", plan]);
    run.ok();
    run.stdout(Has("  created      configmap/settings\n"));
}
