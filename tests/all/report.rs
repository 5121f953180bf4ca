//! `--report codequality=FILE` and `--report junit=FILE` on `render`, `deploy`, `run`,
//! `step run` and `dotenv check`: every report is checked against what GitLab reads — the Code
//! Quality entries against GitLab's own JSON schema (tests/fixtures/gitlab/codeclimate.json),
//! the JUnit XML read back with an XML parser — and written also when the command fails.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use quick_xml::events::Event;
use serde_json::Value;

use crate::support::Text::Has;
use crate::support::{Run, TempDir, fixture, kstep_in, test_fixture};

/// `kstep args… --report codequality=NAME.json --report junit=NAME.xml` in `dir`.
fn kstep_reporting(dir: &Path, args: &[&str], name: &str, envs: &[(&str, &str)]) -> Run {
    let codequality = format!("codequality={name}.json");
    let junit = format!("junit={name}.xml");
    let mut all = args.to_vec();
    all.extend(["--report", &codequality, "--report", &junit]);
    kstep_in(dir, &all, envs)
}

/// The Code Quality report at `path`, checked entry by entry against GitLab's schema and
/// GitLab's documented rules (severity values, unique fingerprints, relative paths of files
/// that exist under `project`).
fn codequality(path: &Path, project: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap();
    let report: Value = serde_json::from_str(&text).unwrap();
    let schema: Value =
        serde_json::from_str(&fs::read_to_string(test_fixture("gitlab/codeclimate.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let entries = report
        .as_array()
        .expect("a Code Quality report is an array")
        .clone();
    let mut fingerprints = HashSet::new();
    for entry in &entries {
        let errors: Vec<String> = validator
            .iter_errors(entry)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{entry}: {errors:?}");
        let severity = entry["severity"].as_str().unwrap();
        assert!(
            ["info", "minor", "major", "critical", "blocker"].contains(&severity),
            "{entry}"
        );
        assert!(entry["check_name"].is_string(), "{entry}");
        assert!(
            fingerprints.insert(entry["fingerprint"].as_str().unwrap().to_owned()),
            "duplicate fingerprint: {entry}"
        );
        let file = entry["location"]["path"].as_str().unwrap();
        assert!(!file.starts_with('/'), "{entry}");
        assert!(project.join(file).is_file(), "{entry}");
        assert!(
            entry["location"]["lines"]["begin"].as_u64().unwrap() >= 1,
            "{entry}"
        );
    }
    entries
}

/// One `<testcase>` of a JUnit report.
#[derive(Debug, Default)]
struct Testcase {
    name: String,
    failure: Option<String>,
    skipped: bool,
}

/// The suite name and the test cases of the JUnit report at `path`, read with an XML parser;
/// the counts of `<testsuite>` are checked against its cases.
fn junit(path: &Path) -> (String, Vec<Testcase>) {
    let text = fs::read_to_string(path).unwrap();
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut suite = String::new();
    let mut counts = (0, 0, 0);
    let mut cases: Vec<Testcase> = Vec::new();
    let mut in_failure = false;
    let attr = |e: &quick_xml::events::BytesStart<'_>, name: &str| -> Option<String> {
        e.try_get_attribute(name)
            .unwrap()
            .map(|a| a.unescape_value().unwrap().into_owned())
    };
    let mut roots = 0;
    loop {
        let (e, empty) = match reader.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                if e.name().as_ref() == b"failure" {
                    in_failure = false;
                }
                continue;
            }
            // A failure's text comes as text and entity references (`&#10;`, `&amp;`).
            Event::Text(t) if in_failure => {
                failure_text(&mut cases).push_str(&t.decode().unwrap());
                continue;
            }
            Event::GeneralRef(r) if in_failure => {
                let c = r
                    .resolve_char_ref()
                    .unwrap()
                    .map(String::from)
                    .or_else(|| {
                        let name = r.decode().unwrap().into_owned();
                        quick_xml::escape::resolve_xml_entity(&name).map(str::to_owned)
                    })
                    .unwrap();
                failure_text(&mut cases).push_str(&c);
                continue;
            }
            _ => continue,
        };
        match e.name().as_ref() {
            b"testsuites" => roots += 1,
            b"testsuite" => {
                suite = attr(&e, "name").unwrap();
                let n = |k| attr(&e, k).unwrap().parse::<usize>().unwrap();
                counts = (n("tests"), n("failures"), n("skipped"));
            }
            b"testcase" => cases.push(Testcase {
                name: attr(&e, "name").unwrap(),
                ..Testcase::default()
            }),
            b"failure" => {
                assert!(attr(&e, "message").is_some());
                cases.last_mut().unwrap().failure = Some(String::new());
                in_failure = !empty;
            }
            b"skipped" => cases.last_mut().unwrap().skipped = true,
            _ => {}
        }
    }
    assert_eq!(roots, 1, "{text}");
    assert_eq!(counts.0, cases.len(), "{text}");
    assert_eq!(
        counts.1,
        cases.iter().filter(|c| c.failure.is_some()).count(),
        "{text}"
    );
    assert_eq!(
        counts.2,
        cases.iter().filter(|c| c.skipped).count(),
        "{text}"
    );
    (suite, cases)
}

/// The failure text of the last testcase.
fn failure_text(cases: &mut [Testcase]) -> &mut String {
    cases.last_mut().unwrap().failure.as_mut().unwrap()
}

/// The failure of testcase `name` in the JUnit report at `path`, whose suite is `suite`.
fn failure_of(path: &Path, suite: &str, name: &str) -> String {
    let (found, cases) = junit(path);
    assert_eq!(found, suite);
    case(&cases, name)
        .failure
        .clone()
        .unwrap_or_else(|| panic!("{name} did not fail: {cases:?}"))
}

fn case<'a>(cases: &'a [Testcase], name: &str) -> &'a Testcase {
    cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no testcase {name}: {cases:?}"))
}

/// Asserts that none of the `files` in `dir` holds a form of the `secrets`; their texts.
fn hide(dir: &Path, files: &[&str], secrets: &[&str]) -> Vec<String> {
    let forms = crate::support::secret_forms(secrets);
    files
        .iter()
        .map(|file| {
            let text = fs::read_to_string(dir.join(file)).unwrap();
            crate::support::assert_no_secret(file, &text, &forms);
            text
        })
        .collect()
}

const SECRET: &str = "kstep-report-secret-5e6f7a8b";

/// Manifests with a removed apiVersion (a warning), an unset variable (an error) and a Secret.
fn broken_manifests(dir: &TempDir) {
    fs::create_dir_all(dir.join("k8s")).unwrap();
    dir.write(
        "k8s/app.yaml",
        "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: web\nspec:\n  rules: []\n\
         ---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    \
         spec:\n      containers:\n        - name: web\n          image: ${IMAGE}\n",
    );
    dir.write(
        "k8s/secret.yaml",
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {SECRET}\n"
        ),
    );
}

#[test]
fn render_writes_both_reports_when_it_fails_and_the_same_fingerprints_each_time() {
    let dir = TempDir::new("report-render");
    broken_manifests(&dir);
    let args = [
        "render",
        "-f",
        "k8s/",
        "--report",
        "codequality=out/cq.json",
        "--report",
        "junit=out/junit.xml",
    ];
    fs::create_dir_all(dir.join("out")).unwrap();
    let run = kstep_in(&dir, &args, &[]);
    run.fails_with(2);
    let entries = codequality(&dir.join("out/cq.json"), &dir);
    let error = entries
        .iter()
        .find(|e| e["severity"] == "critical")
        .unwrap_or_else(|| panic!("{entries:?}"));
    assert_eq!(error["location"]["path"], "k8s/app.yaml");
    assert_eq!(error["location"]["lines"]["begin"], 17);
    assert_eq!(error["check_name"], "kstep/render");
    assert!(
        error["description"].as_str().unwrap().contains("IMAGE"),
        "{error}"
    );
    let warning = entries
        .iter()
        .find(|e| e["severity"] == "minor")
        .unwrap_or_else(|| panic!("{entries:?}"));
    assert!(
        warning["description"]
            .as_str()
            .unwrap()
            .contains("extensions/v1beta1 was removed in Kubernetes"),
        "{warning}"
    );
    assert_eq!(warning["location"]["lines"]["begin"], 1);
    let failure = failure_of(&dir.join("out/junit.xml"), "kstep render", "kstep render");
    assert!(failure.contains("k8s/app.yaml:17:"), "{failure}");
    // The same input gives the same fingerprints (the merge request compares them).
    let first: Vec<Value> = entries.iter().map(|e| e["fingerprint"].clone()).collect();
    kstep_in(&dir, &args, &[]).fails_with(2);
    let again: Vec<Value> = codequality(&dir.join("out/cq.json"), &dir)
        .iter()
        .map(|e| e["fingerprint"].clone())
        .collect();
    assert_eq!(first, again);
    // With --upgrade-api-versions the removed apiVersion is rewritten: a note where it was.
    dir.write("k8s/app.yaml", "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: web\nspec:\n  rules: []\n");
    kstep_reporting(
        &dir,
        &["render", "-f", "k8s/app.yaml", "--upgrade-api-versions"],
        "upgraded",
        &[],
    )
    .ok();
    let entries = codequality(&dir.join("upgraded.json"), &dir);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["severity"], "info");
    assert_eq!(entries[0]["location"]["lines"]["begin"], 1);
    assert!(
        entries[0]["description"].as_str().unwrap().contains(
            "extensions/v1beta1 was removed in Kubernetes 1.22; upgraded to networking.k8s.io/v1"
        ),
        "{entries:?}"
    );

    // A successful render: an empty Code Quality report, a passed testcase.
    let run = kstep_reporting(&dir, &["render", "-f", "k8s/secret.yaml"], "ok", &[]);
    run.ok();
    assert!(codequality(&dir.join("ok.json"), &dir).is_empty());
    let (_, cases) = junit(&dir.join("ok.xml"));
    assert!(case(&cases, "kstep render").failure.is_none());
    hide(
        &dir,
        &["out/cq.json", "out/junit.xml", "ok.json", "ok.xml"],
        &[SECRET],
    );
}

#[test]
fn a_report_that_cannot_be_written_fails_the_command() {
    let dir = TempDir::new("report-unwritable");
    dir.write(
        "a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    );
    let run = kstep_in(
        &dir,
        &[
            "render",
            "-f",
            "a.yaml",
            "--report",
            "junit=no/such/dir/r.xml",
        ],
        &[],
    );
    run.exits_with(1)
        .stderr(Has("cannot write the report no/such/dir/r.xml"));
    let run = kstep_in(
        &dir,
        &["render", "-f", "a.yaml", "--report", "sarif=r.json"],
        &[],
    );
    run.fails_with(2).stderr(Has("unknown report"));
}

#[test]
fn dotenv_check_reports_each_problem_at_its_line() {
    let dir = TempDir::new("report-dotenv");
    dir.write(
        "deploy.env",
        "IMAGE=registry.example/app:1\nexport TAG=1\nBAD KEY=x\n",
    );
    let run = kstep_reporting(&dir, &["dotenv", "check", "deploy.env"], "r", &[]);
    run.fails_with(2);
    let entries = codequality(&dir.join("r.json"), &dir);
    let lines: Vec<u64> = entries
        .iter()
        .map(|e| e["location"]["lines"]["begin"].as_u64().unwrap())
        .collect();
    assert!(lines.contains(&2) && lines.contains(&3), "{entries:?}");
    assert!(
        entries
            .iter()
            .all(|e| e["check_name"] == "kstep/dotenv" && e["location"]["path"] == "deploy.env")
    );
    let failure = failure_of(
        &dir.join("r.xml"),
        "kstep dotenv check",
        "kstep dotenv check",
    );
    assert!(failure.contains("deploy.env:3:"), "{failure}");

    // A valid file: nothing to report, a passed check.
    dir.write("ok.env", "IMAGE=registry.example/app:1\n");
    kstep_reporting(&dir, &["dotenv", "check", "ok.env"], "ok", &[]).ok();
    assert!(codequality(&dir.join("ok.json"), &dir).is_empty());
    assert!(
        case(&junit(&dir.join("ok.xml")).1, "kstep dotenv check")
            .failure
            .is_none()
    );
}

/// A project with the example policy step and a hostile one, for `run` and `step run`.
fn step_project(test: &str) -> TempDir {
    let dir = TempDir::new(test);
    fs::create_dir_all(dir.join("steps")).unwrap();
    fs::create_dir_all(dir.join("k8s")).unwrap();
    fs::copy(
        fixture("kstep-example-deny-latest"),
        dir.join("steps/deny_latest.wasm"),
    )
    .unwrap();
    fs::copy(
        fixture("kstep-fixture-step-hostile"),
        dir.join("steps/hostile.wasm"),
    )
    .unwrap();
    dir.write(
        "k8s/app.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      \
         containers:\n        - name: web\n          image: nginx:latest\n          resources:\n            \
         limits: {cpu: 100m, memory: 64Mi}\n",
    );
    dir.write(
        "k8s/secret.yaml",
        format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {SECRET}\n"),
    );
    dir
}

#[test]
fn run_reports_custom_step_findings_and_a_testcase_per_step() {
    let dir = step_project("report-run");
    dir.write(
        "kstep.yaml",
        "steps:\n  - render: k8s/\n  - wasm: steps/hostile.wasm\n    name: leaky\n    with: {do: log-documents}\n    \
         secrets: true\n  - wasm: steps/deny_latest.wasm\n    name: deny-latest\n  - apply:\n",
    );
    let run = kstep_reporting(&dir, &["run", "--dry-run"], "r", &[]);
    run.fails_with(2);
    let entries = codequality(&dir.join("r.json"), &dir);
    let denied = entries
        .iter()
        .find(|e| e["check_name"] == "step/deny-latest")
        .unwrap_or_else(|| panic!("{entries:?}"));
    assert_eq!(denied["severity"], "critical");
    assert_eq!(denied["location"]["path"], "k8s/app.yaml");
    assert_eq!(denied["location"]["lines"]["begin"], 1);
    assert!(
        denied["description"]
            .as_str()
            .unwrap()
            .contains("(at /spec/template/spec/containers/0/image)"),
        "{denied}"
    );
    // The step granted the Secret's values returned them as findings: masked in the reports
    // as in the log.
    assert!(
        entries
            .iter()
            .any(|e| e["check_name"] == "step/leaky" && e["severity"] == "info")
    );
    let (suite, cases) = junit(&dir.join("r.xml"));
    assert_eq!(suite, "kstep run");
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["render", "leaky", "deny-latest", "apply"]);
    assert!(case(&cases, "render").failure.is_none());
    let failure = case(&cases, "deny-latest").failure.clone().unwrap();
    assert!(failure.contains("floating tag `latest`"), "{failure}");
    assert!(case(&cases, "apply").skipped);
    for text in hide(&dir, &["r.json", "r.xml"], &[SECRET]) {
        assert!(text.contains("[MASKED]"), "{text}");
    }

    // An invalid pipeline file: its errors at their lines, one failed testcase.
    dir.write(
        "bad.yaml",
        "steps:\n  - wasm: steps/deny_latest.wasm\n    limit: {cpu: 1s}\n",
    );
    kstep_reporting(&dir, &["run", "bad.yaml"], "bad", &[]).fails_with(2);
    let entries = codequality(&dir.join("bad.json"), &dir);
    assert_eq!(entries[0]["check_name"], "kstep/pipeline");
    assert_eq!(entries[0]["location"]["path"], "bad.yaml");
    assert_eq!(entries[0]["location"]["lines"]["begin"], 3);
    let (_, cases) = junit(&dir.join("bad.xml"));
    assert!(
        case(&cases, "kstep run")
            .failure
            .as_ref()
            .unwrap()
            .contains("bad.yaml:3:")
    );
}

#[test]
fn step_run_reports_its_findings() {
    let dir = step_project("report-steprun");
    let run = kstep_reporting(
        &dir,
        &[
            "step",
            "run",
            "steps/deny_latest.wasm",
            "-f",
            "k8s/app.yaml",
        ],
        "r",
        &[],
    );
    run.fails_with(2);
    let entries = codequality(&dir.join("r.json"), &dir);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["check_name"], "step/deny_latest");
    let (suite, cases) = junit(&dir.join("r.xml"));
    assert_eq!(suite, "kstep step run");
    assert!(case(&cases, "render").failure.is_none());
    assert!(case(&cases, "deny_latest").failure.is_some());
}

#[test]
fn deploy_reports_render_errors_before_touching_the_cluster() {
    let dir = TempDir::new("report-deploy");
    broken_manifests(&dir);
    // A kubeconfig for a server that is never contacted: the render fails first.
    let kubeconfig = dir.write(
        "kubeconfig",
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n\
         contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  \
         user:\n    token: kstep-report-token-0a1b2c3d4e5f\n",
    );
    let run = kstep_reporting(
        &dir,
        &["deploy", "-f", "k8s/"],
        "r",
        &[("KUBECONFIG", &kubeconfig)],
    );
    run.exits_with(2);
    let entries = codequality(&dir.join("r.json"), &dir);
    assert!(
        entries
            .iter()
            .any(|e| e["severity"] == "critical" && e["location"]["path"] == "k8s/app.yaml")
    );
    let failure = failure_of(&dir.join("r.xml"), "kstep deploy", "render");
    assert!(failure.contains("k8s/app.yaml:17:"), "{failure}");
    hide(
        &dir,
        &["r.json", "r.xml"],
        &[SECRET, "kstep-report-token-0a1b2c3d4e5f"],
    );
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn deploy_reports_its_render_apply_and_rollout_checks() {
    let ns = crate::cluster::Namespace::create("report");
    let kubeconfig = crate::cluster::admin_kubeconfig();
    let dir = TempDir::new("report-deploy-cluster");
    dir.write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: plain\n",
    );
    let envs = [("KUBECONFIG", kubeconfig.as_str())];
    kstep_reporting(
        &dir,
        &["deploy", "-f", "cm.yaml", "-n", &ns.name],
        "ok",
        &envs,
    )
    .ok();
    let (suite, cases) = junit(&dir.join("ok.xml"));
    assert_eq!(suite, "kstep deploy");
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    // A ConfigMap has no rollout to wait for.
    assert_eq!(names, ["render", "apply"], "{cases:?}");
    assert!(cases.iter().all(|c| c.failure.is_none()), "{cases:?}");
    assert!(codequality(&dir.join("ok.json"), &dir).is_empty());

    // A workload: its rollout is a check too.
    let app = crate::support::test_fixture("deploy/app");
    let env = crate::support::test_fixture("deploy/docker.env");
    let args = [
        "deploy",
        "-f",
        app.to_str().unwrap(),
        "--env-file",
        env.to_str().unwrap(),
        "-n",
        &ns.name,
        "--timeout",
        "90s",
    ];
    kstep_reporting(&dir, &args, "app", &envs).ok();
    let (_, cases) = junit(&dir.join("app.xml"));
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["render", "apply", "rollout"], "{cases:?}");
    assert!(cases.iter().all(|c| c.failure.is_none()), "{cases:?}");

    // The server's dry run refuses a misspelt field: the apply check fails with why.
    fs::copy(
        crate::support::test_fixture("deploy/invalid.yaml"),
        dir.join("invalid.yaml"),
    )
    .unwrap();
    let run = kstep_reporting(
        &dir,
        &["deploy", "-f", "invalid.yaml", "-n", &ns.name],
        "bad",
        &envs,
    );
    run.exits_with(2);
    let failure = failure_of(&dir.join("bad.xml"), "kstep deploy", "apply");
    assert!(
        failure.starts_with("the server rejected 2 object(s) in the dry run"),
        "{failure}"
    );
    assert!(
        failure.contains("configmap/typo: datta: unknown field"),
        "{failure}"
    );
}
