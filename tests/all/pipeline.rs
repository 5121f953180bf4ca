//! Pipelines (`kstep run`) and custom steps (`kstep step run`): the example steps end to end,
//! a policy step that blocks a bad manifest before anything is applied, and hostile custom
//! steps that the sandbox contains — each run is the real binary, which must exit with a clean
//! code and a message that says what happened.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cluster::{self, Namespace, kubectl_ok};
use crate::support::Text::{EndsWith, Has, Lacks, StartsWith};
use crate::support::{Run, TempDir, copy_dir, fixture, repo_root};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A copy of `tests/fixtures/steps/project` with the built components under `steps/`.
struct Project {
    dir: TempDir,
}

impl Project {
    fn new(test: &str) -> Self {
        let dir = TempDir::new(&format!("pipeline-{test}"));
        copy_dir(&repo_root().join("tests/fixtures/steps/project"), &dir);
        fs::create_dir_all(dir.join("steps")).unwrap();
        for (krate, name) in [
            ("kstep-example-deny-latest", "deny_latest"),
            ("kstep-example-ci-labels", "ci_labels"),
            ("kstep-fixture-step-hostile", "hostile"),
            ("kstep-fixture-step-socket", "socket"),
            ("kstep-fixture-step-future-version", "future"),
            ("kstep-fixture-hostile", "not_a_step"),
        ] {
            fs::copy(fixture(krate), dir.join(format!("steps/{name}.wasm"))).unwrap();
        }
        Self { dir }
    }

    fn write(&self, name: &str, text: &str) -> &Self {
        self.dir.write(name, text);
        self
    }

    /// Runs `kstep args…` in the project with only `envs` (and the compile cache) in its
    /// environment, so CI variables of the machine running the tests cannot leak in.
    fn kstep(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        crate::support::kstep_in(&self.dir, args, envs)
    }

    /// A pipeline of one hostile step doing `with`, then an `apply` it must never reach.
    fn hostile(&self, with: &str, extra: &str) -> Run {
        self.write(
            "hostile.yaml",
            &format!("steps:\n  - wasm: steps/hostile.wasm\n    with: {with}\n{extra}  - apply:\n"),
        );
        self.kstep(&["run", "--dry-run", "hostile.yaml"], &[])
    }
}

/// A contained failure: exit 1 or 2 (never a crash or a signal), nothing applied.
#[track_caller]
fn assert_contained(run: &Run, code: i32) -> &Run {
    run.fails_with(code)
        .stderr(Lacks("panicked (this is a bug)"))
}

fn ci_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("CI_COMMIT_SHA", SHA),
        (
            "CI_PIPELINE_URL",
            "https://gitlab.example/team/app/-/pipelines/42",
        ),
        ("CI_PROJECT_PATH", "team/app"),
    ]
}

// ---- The example steps end to end. ----

#[test]
fn example_steps_run_end_to_end_through_kstep_run() {
    let p = Project::new("examples");
    let run = p.kstep(&["run", "--dry-run", "-o", "json"], &ci_env());
    run.ok();
    for line in [
        "step 1/6: dotenv",
        "step 3/6: ci-labels",
        "[ci-labels] stamped 2 object(s) with 1 label(s) and 2 annotation(s)",
        "[deny-latest] checked 1 container(s) in 1 workload(s): 0 problem(s)",
        "kstep.yaml:15:5: dry run: stopping before `apply`",
    ] {
        run.stderr(Has(line));
    }
    let docs: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let deployment = &docs[0];
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.local:5000/team/app:1.2.0"
    );
    assert_eq!(
        deployment["metadata"]["labels"]["ci.gitlab.com/commit-sha"],
        SHA
    );
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/name"],
        "web"
    );
    assert_eq!(
        deployment["metadata"]["annotations"]["ci.gitlab.com/project"],
        "team/app"
    );
    assert_eq!(
        deployment["metadata"]["annotations"]["ci.gitlab.com/pipeline-url"],
        "https://gitlab.example/team/app/-/pipelines/42"
    );
    assert_eq!(
        docs[1]["metadata"]["labels"]["ci.gitlab.com/commit-sha"],
        SHA
    );

    // The default output is a YAML stream kubectl reads.
    let run = p.kstep(&["run", "--dry-run"], &ci_env());
    run.ok();
    run.stdout(StartsWith("---\napiVersion: apps/v1\n"));
    assert_eq!(run.stdout.matches("\n---\n").count(), 1, "{}", run.stdout);
}

#[test]
fn a_policy_step_refuses_a_floating_image_and_the_pipeline_stops_before_apply() {
    let p = Project::new("policy");
    p.write("build.env", "IMAGE=nginx:latest\n");
    let run = p.kstep(&["run", "--dry-run"], &ci_env());
    assert_contained(&run, 2);
    run.stderr(Has(
        "k8s/app.yaml:1:1: Deployment `web`: container `app`: image `nginx:latest` uses the floating \
         tag `latest`; pin a version or a digest (at /spec/template/spec/containers/0/image) [step deny-latest]",
    ));
    run.stderr(Has(
        "kstep.yaml:10:5: step `deny-latest`: refused the documents (1 error(s))",
    ));
    run.stderr(EndsWith("the pipeline stops here; nothing was applied\n"));
    run.stderr(Lacks("dry run: stopping"));

    // No tag at all, and no limits: two findings, both reported.
    p.write("build.env", "IMAGE=registry.local:5000/team/app\n");
    let manifest = fs::read_to_string(p.dir.join("k8s/app.yaml")).unwrap();
    p.write(
        "k8s/app.yaml",
        &manifest.replace("              cpu: 100m\n", ""),
    );
    let run = p.kstep(&["run", "--dry-run"], &ci_env());
    assert_contained(&run, 2);
    run.stderr(Has("has no tag, which means `latest`"));
    run.stderr(Has("container `app`: has no cpu limit (resources.limits) (at /spec/template/spec/containers/0/resources/limits)"));
    run.stderr(Has("refused the documents (2 error(s))"));
}

#[test]
fn built_in_steps_feed_custom_steps() {
    let p = Project::new("traefik");
    p.write("traefik-values.yaml", "");
    p.write(
        "traefik.yaml",
        "steps:\n  - traefik: traefik-values.yaml\n  - wasm: steps/deny_latest.wasm\n    with: {required-limits: [memory]}\n  - apply:\n",
    );
    let run = p.kstep(&["run", "--dry-run", "-o", "json", "traefik.yaml"], &[]);
    run.ok();
    let docs: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let kinds: Vec<&str> = docs
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"Deployment") && kinds.contains(&"ClusterRole"),
        "{kinds:?}"
    );
    run.stderr(Has(
        "[deny_latest] checked 1 container(s) in 1 workload(s): 0 problem(s)",
    ));

    // Findings about a document of a built-in step point at its source.
    p.write(
        "traefik.yaml",
        "steps:\n  - traefik: traefik-values.yaml\n  - wasm: steps/deny_latest.wasm\n",
    );
    let run = p.kstep(&["run", "--dry-run", "traefik.yaml"], &[]);
    assert_contained(&run, 2);
    run.stderr(Has("traefik-values.yaml (traefik) (document "));
}

#[test]
fn a_pipeline_without_apply_says_its_documents_were_not_applied() {
    let p = Project::new("noapply");
    p.write(
        "render.yaml",
        "steps:\n  - dotenv: build.env\n  - render: k8s/\n",
    );
    let run = p.kstep(&["run", "render.yaml"], &[]);
    run.ok();
    assert!(run.stdout.is_empty(), "{run:?}");
    run.stderr(EndsWith("the pipeline has no `apply`: its 2 document(s) were not applied (`--dry-run` prints them)\n"));
}

#[test]
fn a_pipeline_with_host_actions_needs_its_kubeconfig_before_any_step_runs() {
    let p = Project::new("nokube");
    let run = p.kstep(&["run"], &ci_env());
    assert_contained(&run, 2);
    run.stderr(Has("no kubeconfig"));
    run.stderr(Has(
        "the pipeline did not start; nothing was run or applied",
    ));
    run.stderr(Lacks("step 1/6"));
}

#[test]
fn kstep_step_run_runs_one_step_for_its_developer() {
    let p = Project::new("steprun");
    p.write(
        "ci.env",
        &format!("CI_COMMIT_SHA={SHA}\nCI_PIPELINE_ID=42\n"),
    );
    let run = p.kstep(
        &[
            "step",
            "run",
            "steps/ci_labels.wasm",
            "-f",
            "k8s/",
            "--env-file",
            "build.env",
            "--env-file",
            "ci.env",
            "-p",
            "pod-templates=true",
        ],
        &[],
    );
    run.ok();
    run.stdout(Has(&format!("ci.gitlab.com/commit-sha: {SHA}")));
    assert!(
        run.stdout.contains("ci.gitlab.com/pipeline-id: '42'")
            || run.stdout.contains("ci.gitlab.com/pipeline-id: \"42\""),
        "{}",
        run.stdout
    );
    // pod-templates=true reached the step as a boolean: the pod template is stamped too.
    assert_eq!(
        run.stdout.matches("ci.gitlab.com/pipeline-id").count(),
        3,
        "{}",
        run.stdout
    );

    p.write("bad.env", "IMAGE=nginx\n");
    let run = p.kstep(
        &[
            "step",
            "run",
            "steps/deny_latest.wasm",
            "-f",
            "k8s/",
            "--env-file",
            "bad.env",
            "-p",
            "required-limits=[memory]",
        ],
        &[],
    );
    assert_contained(&run, 2);
    run.stderr(Has(
        "k8s/app.yaml:1:1: Deployment `web`: container `app`: image `nginx` has no tag",
    ));

    let run = p.kstep(
        &[
            "step",
            "run",
            "steps/deny_latest.wasm",
            "-p",
            "require-digest=yes",
        ],
        &[],
    );
    assert_contained(&run, 2);
    run.stderr(Has(
        "kstep step run: step `deny_latest`: failed: `require-digest` must be true or false",
    ));
}

// ---- The pipeline file. ----

#[test]
fn pipeline_file_errors_are_positioned_and_nothing_runs() {
    let p = Project::new("fileerrors");
    p.write(
        "bad.yaml",
        "steps:\n  - dotenv: build.env\n  - wasm: steps/deny_latest.wasm\n    limit: {cpu: 1s}\n",
    );
    let run = p.kstep(&["run", "--dry-run", "bad.yaml"], &[]);
    assert_contained(&run, 2);
    run.stderr(StartsWith(
        "bad.yaml:4:5: unknown field `limit`, expected one of",
    ));
    run.stderr(Lacks("step 1/"));

    p.write(
        "bad.yaml",
        "env: [KUBECONFIG, CI_JOB_TOKEN]\nsteps:\n  - wasm: steps/deny_latest.wasm\n    read: ../\n  - apply: {namespace: x}\n    with: {}\n",
    );
    let run = p.kstep(&["run", "--dry-run", "bad.yaml"], &[]);
    assert_contained(&run, 2);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stderr);
    for (line, start) in lines.iter().zip([
        "bad.yaml:1:7: `KUBECONFIG` holds credentials",
        "bad.yaml:1:19: `CI_JOB_TOKEN` holds credentials",
        "bad.yaml:4:11: `read: ../`: `..` is not allowed",
        "bad.yaml:6:11: `with` applies to custom steps (`wasm:`), not to `apply`",
    ]) {
        assert!(line.starts_with(start), "{start:?}:\n{}", run.stderr);
    }

    let run = p.kstep(&["run", "missing.yaml"], &[]);
    assert_contained(&run, 2);
    run.stderr(StartsWith("missing.yaml: "));
}

#[test]
fn every_problem_of_a_pipeline_file_is_reported_in_one_run() {
    // Nine problems, three of them misspelt keys: one run shows them all (it took four).
    let p = Project::new("nineproblems");
    p.write(
        "bad.yaml",
        "env: [KUBECONFIG, 'A B']\nsteps:\n  - rendr: k8s/\n  - dotenv: build.env\n    nmae: x\n    \
         with: {x: 1}\n  - wasm: steps/deny_latest.wasm\n    limits: {cpu: 2 parsecs}\n    \
         read: ../\n  - wait: {timeout: 90, wat: 1}\n",
    );
    let run = p.kstep(&["run", "--dry-run", "bad.yaml"], &[]);
    assert_contained(&run, 2);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 9, "{}", run.stderr);
    for (line, start) in lines.iter().zip([
        "bad.yaml:1:7: `KUBECONFIG` holds credentials",
        "bad.yaml:1:19: `A B` is not a variable name",
        "bad.yaml:3:5: unknown field `rendr`, expected one of name, dotenv, render,",
        "bad.yaml:5:5: unknown field `nmae`, expected one of name,",
        "bad.yaml:6:11: `with` applies to custom steps",
        "bad.yaml:8:19: `2 parsecs`: unknown unit `parsecs`",
        "bad.yaml:9:11: `read: ../`: `..` is not allowed",
        "bad.yaml:10:21: `90` needs a unit",
        "bad.yaml:10:25: unknown field `wat`, expected one of timeout, failure-grace",
    ]) {
        assert!(line.starts_with(start), "{start:?}:\n{}", run.stderr);
    }
}

#[test]
fn durations_take_a_unit_and_read_back_what_kstep_prints() {
    let p = Project::new("durations");
    p.write(
        "wait.yaml",
        "steps:\n  - dotenv: build.env\n  - render: k8s/\n  - wait: {timeout: 1m30s, failure-grace: 5m00s}\n",
    );
    // Parsed: the dry run gets as far as the documents.
    let run = p.kstep(&["run", "--dry-run", "wait.yaml"], &[]);
    run.ok();
    for (flag, ok) in [
        ("1m30s", true),
        ("1h5m", true),
        ("500ms", true),
        ("90", false),
    ] {
        let run = p.kstep(&["run", "--request-timeout", flag, "missing.yaml"], &[]);
        run.exits_with(2);
        assert_eq!(
            run.stderr.contains("invalid value"),
            !ok,
            "{flag}: {}",
            run.stderr
        );
        if !ok {
            run.stderr(Has("`90` needs a unit"));
        }
    }
}

#[test]
fn a_step_gets_only_the_variables_its_entry_lists() {
    let p = Project::new("variables");
    p.write(
        "vars.yaml",
        "env: [VISIBLE, HIDDEN]\nvariables: {LITERAL: x}\nsteps:\n  - wasm: steps/hostile.wasm\n    with: {do: env}\n    variables: [VISIBLE, UNSET]\n",
    );
    let secret = "glpat-Zx9secretTOKENvalue";
    let run = p.kstep(
        &["run", "--dry-run", "vars.yaml"],
        &[
            ("VISIBLE", "yes"),
            ("HIDDEN", "no"),
            ("KUBECONFIG", secret),
            ("KSTEP_TEST_SECRET", secret),
        ],
    );
    run.ok();
    let seen: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("[step hostile]"))
        .collect();
    assert_eq!(
        seen,
        [
            "vars.yaml:4:5: note: variable VISIBLE=yes [step hostile]",
            "vars.yaml:4:5: note: directory None [step hostile]",
        ],
        "{}",
        run.stderr
    );
    run.stderr(Has(
        "vars.yaml:6:26: warning: not set, so not passed to step `hostile`: UNSET",
    ));
    run.hides(&[secret]);
}

#[test]
fn a_credential_the_host_holds_never_reaches_a_step() {
    let p = Project::new("credential");
    let token = "kstep-test-token-Zq81nVb4Rt0x";
    p.write(
        "kubeconfig.yaml",
        &format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster: {{server: 'https://127.0.0.1:1'}}\n\
             contexts:\n- name: c\n  context: {{cluster: k, user: u}}\nusers:\n- name: u\n  user: {{token: {token}}}\n"
        ),
    );
    // The token smuggled through a dotenv file, listed for the step.
    p.write("smuggle.env", &format!("SMUGGLED={token}\n"));
    p.write(
        "smuggle.yaml",
        "steps:\n  - dotenv: smuggle.env\n  - wasm: steps/hostile.wasm\n    with: {do: env}\n    variables: [SMUGGLED]\n  - apply:\n",
    );
    let run = p.kstep(
        &["run", "smuggle.yaml", "--kubeconfig", "kubeconfig.yaml"],
        &[],
    );
    assert_contained(&run, 2);
    run.stderr(Has("smuggle.yaml:5:17: variable `SMUGGLED` contains a secret kstep masks; it is never passed to a step"));
    // The step must not have run.
    run.stderr(Lacks("[step hostile]"));
    run.hides(&[token]);
}

// ---- Hostile custom steps. ----

#[test]
fn a_cpu_loop_is_stopped_by_the_step_budget() {
    let p = Project::new("spin");
    let started = Instant::now();
    let run = p.hostile("{do: spin}", "    limits: {cpu: 500ms}\n");
    assert_contained(&run, 1);
    run.stderr(Has(
        "hostile.yaml:2:5: step `hostile` exceeded its 500ms CPU budget",
    ));
    run.stderr(EndsWith("the pipeline stops here; nothing was applied\n"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_memory_bomb_hits_the_step_limit() {
    let p = Project::new("grow");
    let run = p.hostile("{do: grow, mib: 512}", "    limits: {memory: 32MiB}\n");
    assert_contained(&run, 1);
    run.stderr(Has("step `hostile` exceeded its 32 MiB memory limit"));
    // Under the limit the same step succeeds: the limit is what stopped it.
    let run = p.hostile("{do: grow, mib: 8}", "    limits: {memory: 32MiB}\n");
    run.ok();
}

#[test]
fn huge_stdout_is_capped_and_reported() {
    let p = Project::new("stdout");
    let run = p.hostile("{do: stdout, mib: 4}", "");
    assert_contained(&run, 1);
    run.stderr(Has("failed printing to stdout"));
    run.stderr(Has(
        "it wrote 1 MiB or more on stdout, where kstep stops capturing",
    ));
    run.stderr(Has("more line(s) on its stdout not shown"));
    assert!(
        run.stderr.len() < 64 << 10,
        "{} bytes forwarded",
        run.stderr.len()
    );
}

#[test]
fn a_log_flood_is_capped_and_logs_cannot_forge_host_lines() {
    let p = Project::new("logs");
    let run = p.hostile("{do: log-flood, lines: 100000, bytes: 20}", "");
    run.ok();
    run.stderr(Has("[hostile] log limit reached (1000 lines or 256 KiB per run): further log lines are dropped"));
    assert!(
        run.stderr.lines().count() < 1010,
        "{}",
        run.stderr.lines().count()
    );

    let run = p.hostile("{do: log-flood, lines: 1, bytes: 1000000}", "");
    run.ok();
    assert!(run.stderr.len() < 8 << 10, "{} bytes", run.stderr.len());

    let run = p.hostile("{do: log-forge}", "");
    run.ok();
    run.stderr(Has(
        "[hostile] error: first\n[hostile] error: error: forged host message\\u{1b}[2J\n",
    ));
    run.stderr(Lacks("\u{1b}"));
}

#[test]
fn a_huge_result_is_refused() {
    let p = Project::new("huge");
    let run = p.hostile(
        "{do: huge-output, mib: 40}",
        "    limits: {memory: 256MiB}\n",
    );
    assert_contained(&run, 1);
    run.stderr(Has("step `hostile` returned an unusable result: 40 MiB of documents and variables, more than the 32 MiB a step may return"));
    let run = p.hostile("{do: not-json}", "");
    assert_contained(&run, 1);
    run.stderr(Has("returned an unusable result: document 0 is not JSON"));
}

#[test]
fn a_panicking_or_failing_step_is_reported_with_its_words() {
    let p = Project::new("panic");
    let run = p.hostile("{do: panic, why: cannot go on}", "");
    assert_contained(&run, 1);
    run.stderr(Has("step `hostile` trapped: wasm trap: wasm `unreachable` instruction executed (the step gave up: cannot go on)"));
    let run = p.hostile("{do: fail, why: parameter x is missing}", "");
    assert_contained(&run, 2);
    run.stderr(Has(
        "hostile.yaml:2:5: step `hostile`: failed: parameter x is missing",
    ));
}

#[test]
fn environment_files_and_ungranted_directories_are_invisible() {
    let p = Project::new("invisible");
    let run = p.hostile("{do: env}", "");
    run.ok();
    run.stderr(Lacks("note: env ")).stderr(Lacks("note: arg "));
    for path in [
        "/",
        ".",
        "/etc/passwd",
        "/private/token.txt",
        "/policies",
        "private/token.txt",
        "../private/token.txt",
    ] {
        let run = p.hostile(&format!("{{do: read, path: \"{path}\"}}"), "");
        run.ok()
            .stderr(Has(&format!("note: cannot read {path}: ")))
            .stderr(Lacks("not for steps"));
    }
}

#[test]
fn a_granted_directory_is_readable_read_only_and_closed_at_its_edge() {
    let p = Project::new("grant");
    #[cfg(unix)]
    std::os::unix::fs::symlink("../private", p.dir.join("policies/escape")).unwrap();
    let grant = "    read: policies\n";
    let run = p.hostile("{do: env}", grant);
    run.stderr(Has("note: directory Some(\"/policies\")"));
    let run = p.hostile("{do: read, path: /policies}", grant);
    run.stderr(Has("note: listed /policies: [escape, registries.txt]"));
    let run = p.hostile("{do: read, path: /policies/registries.txt}", grant);
    run.stderr(Has(
        "note: read /policies/registries.txt: registry.local:5000\\n",
    ));
    for path in [
        "/policies/escape/token.txt",
        "/policies/../private/token.txt",
        "/private/token.txt",
    ] {
        let run = p.hostile(&format!("{{do: read, path: \"{path}\"}}"), grant);
        run.ok()
            .stderr(Has(&format!("note: cannot read {path}: ")))
            .stderr(Lacks("not for steps"));
    }
    let run = p.hostile("{do: write, path: /policies/registries.txt}", grant);
    run.stderr(Has("note: cannot write /policies/registries.txt: "));
    assert_eq!(
        fs::read_to_string(p.dir.join("policies/registries.txt")).unwrap(),
        "registry.local:5000\n"
    );

    // A grant that leads outside the project is refused before anything runs.
    #[cfg(unix)]
    std::os::unix::fs::symlink(p.dir.parent().unwrap(), p.dir.join("outside")).unwrap();
    let run = p.hostile("{do: env}", "    read: outside\n");
    assert_contained(&run, 2);
    run.stderr(StartsWith(
        "hostile.yaml:4:11: `read: outside` leads outside the project",
    ));
}

#[test]
fn components_outside_the_contract_are_refused_before_anything_runs() {
    let p = Project::new("refused");
    for (component, message) in [
        (
            "socket",
            "step `socket` is refused: it imports `wasi:sockets/",
        ),
        (
            "future",
            "step `future` is built for kstep:steps@0.2.0 (it uses `kstep:steps/log@0.2.0`), but this kstep \
             implements kstep:steps@0.1.0 and runs steps built for kstep:steps@0.1.x",
        ),
        (
            "not_a_step",
            "step `not_a_step` could not be loaded: it does not export `kstep:steps/step@0.1.0`",
        ),
    ] {
        p.write(
            "refused.yaml",
            &format!("steps:\n  - dotenv: build.env\n  - wasm: steps/{component}.wasm\n"),
        );
        let run = p.kstep(&["run", "--dry-run", "refused.yaml"], &[]);
        assert_contained(&run, 2)
            .stderr(StartsWith(&format!("refused.yaml:3:5: {message}")))
            .stderr(EndsWith(
                "the pipeline did not start; nothing was run or applied\n",
            ))
            .stderr(Lacks("step 1/"));
    }
}

// ---- The real cluster. ----

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn a_policy_step_blocks_a_bad_manifest_and_nothing_is_applied_to_the_cluster() {
    let kubeconfig = cluster::admin_kubeconfig();
    let ns = Namespace::create("pipeline");
    let p = Project::new("cluster");
    let pipeline = fs::read_to_string(p.dir.join("kstep.yaml"))
        .unwrap()
        .replace(
            "  - apply:\n",
            &format!("  - apply: {{namespace: {}}}\n", ns.name),
        );
    p.write("kstep.yaml", &pipeline);
    let mut env = ci_env();
    env.push(("KUBECONFIG", &kubeconfig));

    p.write("build.env", "IMAGE=nginx:latest\n");
    let run = p.kstep(&["run"], &env);
    assert_contained(&run, 2);
    run.stderr(Has("[step deny-latest]"))
        .stderr(Has("nothing was applied"));
    assert_eq!(
        kubectl_ok(&["get", "deployments,services", "-n", &ns.name, "-o", "name"]),
        "",
        "nothing may have been applied"
    );

    // Fixed, the same pipeline applies and waits for the rollout.
    p.write("build.env", "IMAGE=registry.local:5000/team/app:1.2.0\n");
    let run = p.kstep(&["run"], &env);
    run.ok();
    run.stderr_after_kubeconfig(Has(""));
    run.stdout(Has("Applied 2 object(s)"));
    run.stdout(Has("Rolled out 1 workload(s)"));
    let label = kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-n",
        &ns.name,
        "-o",
        "jsonpath={.metadata.labels.ci\\.gitlab\\.com/commit-sha}",
    ]);
    assert_eq!(label, SHA);
    run.hides(&["client-key-data"]);
}

// ---- A step written in Python (componentize-py). ----

#[test]
#[ignore = "needs the Python example built: components/examples/require-labels-py/build.sh (~1 min), and its \
            first compile takes minutes in a debug build"]
fn a_python_step_runs_through_the_same_host() {
    let wasm = std::env::var("KSTEP_EXAMPLE_PY_WASM").map_or_else(
        |_| repo_root().join("target/wasm-examples/require_labels.wasm"),
        PathBuf::from,
    );
    assert!(
        wasm.is_file(),
        "{} is missing: run components/examples/require-labels-py/build.sh",
        wasm.display()
    );
    let p = Project::new("python");
    fs::copy(&wasm, p.dir.join("steps/require_labels.wasm")).unwrap();
    p.write(
        "py.yaml",
        "steps:\n  - dotenv: build.env\n  - render: k8s/\n  - wasm: steps/require_labels.wasm\n    with: {labels: [app.kubernetes.io/name, team]}\n  - apply:\n",
    );
    let run = p.kstep(&["run", "--dry-run", "py.yaml"], &[]);
    assert_contained(&run, 2);
    run.stderr(Has(
        "[require_labels] checked 2 document(s) for 2 label(s): 2 problem(s)",
    ));
    run.stderr(Has("k8s/app.yaml:1:1: Deployment `web` has no label team (at /metadata/labels) [step require_labels]"));
    p.write("py.yaml", "steps:\n  - dotenv: build.env\n  - render: k8s/\n  - wasm: steps/require_labels.wasm\n  - apply:\n");
    let run = p.kstep(&["run", "--dry-run", "py.yaml"], &[]);
    run.ok();
    run.stdout(StartsWith("---\napiVersion: apps/v1\n"));
}

#[test]
fn secret_values_never_reach_the_log_through_a_custom_step() {
    // A render step, then a step that logs, prints and returns every document it gets: the
    // Secret's values were registered when it was rendered, so every path is masked.
    use base64::Engine as _;
    let p = Project::new("secretlog");
    let password = "kstep-pipeline-password-9f8e7d";
    let token = "kstep-data-token-1a2b3c4d";
    let encoded = base64::engine::general_purpose::STANDARD.encode(token);
    p.write(
        "db-secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {password}\ndata:\n  token: {encoded}\n"
        ),
    );
    p.write(
        "secrets.yaml",
        "steps:\n  - render: db-secret.yaml\n  - wasm: steps/hostile.wasm\n    with: {do: log-documents}\n  - apply:\n",
    );
    let leaks = |run: &Run| {
        let all = run.all_output();
        for form in [password, token, encoded.as_str()] {
            assert!(!all.contains(form), "{form} leaked: {run:?}");
        }
        assert!(all.contains("[MASKED]"), "{run:?}");
    };
    let run = p.kstep(&["run", "--dry-run", "secrets.yaml"], &[]);
    run.ok();
    leaks(&run);

    // The same step by itself, for its developer.
    let run = p.kstep(
        &[
            "step",
            "run",
            "steps/hostile.wasm",
            "-p",
            "do=log-documents",
            "-f",
            "db-secret.yaml",
        ],
        &[],
    );
    run.ok();
    leaks(&run);
}

// ---- Secret values: stand-ins for a custom step unless it is granted `secrets: true`. ----

/// A `stringData` value and the decoded `data` value of the test Secret: unique markers.
const STRING_MARKER: &str = "kstepGrantStringMarker-7c1d9e";
const DATA_MARKER: &str = "kstepGrantDataMarker-4e2b8a";

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A project with `db.yaml`: a Secret carrying the markers, and a ConfigMap.
fn secret_project(test: &str) -> Project {
    let p = Project::new(test);
    p.write(
        "db.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {STRING_MARKER}\ndata:\n  token: {}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: plain\n",
            base64(DATA_MARKER)
        ),
    );
    p
}

/// What step `name` saw, as its `reveal` action logged it (hex, which the masker cannot catch):
/// the documents it got, as JSON text.
fn seen_by(run: &Run, name: &str) -> String {
    let prefix = format!("[{name}] hex ");
    let seen: String = run
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|hex| {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            String::from_utf8(bytes).unwrap() + "\n"
        })
        .collect();
    assert!(!seen.is_empty(), "step `{name}` revealed nothing: {run:?}");
    seen
}

/// Step `name` saw stand-ins, not the markers; the ConfigMap as it is.
#[track_caller]
fn saw_stand_ins(run: &Run, name: &str) {
    let seen = seen_by(run, name);
    for marker in [STRING_MARKER, DATA_MARKER, &base64(DATA_MARKER)] {
        assert!(!seen.contains(marker), "`{name}` saw {marker}: {seen}");
    }
    assert!(seen.contains("\"password\":\"withheld-by-kstep-"), "{seen}");
    assert!(seen.contains(&base64("withheld-by-kstep-")[..16]), "{seen}");
    assert!(seen.contains("\"mode\":\"plain\""), "{seen}");
}

#[test]
fn a_custom_step_sees_stand_ins_for_secret_values_unless_granted() {
    let p = secret_project("standins");
    // A blind step that returns the documents unchanged, an example policy step that labels
    // them, then a step granted the values: it must see the real ones, put back by the host.
    p.write(
        "kstep.yaml",
        "env: [CI_COMMIT_SHA]\nsteps:\n  - render: db.yaml\n  - wasm: steps/hostile.wasm\n    name: blind\n    with: {do: reveal}\n  - wasm: steps/ci_labels.wasm\n    name: labels\n    variables: [CI_COMMIT_SHA]\n  - wasm: steps/hostile.wasm\n    name: granted\n    with: {do: reveal}\n    secrets: true\n  - apply:\n",
    );
    let run = p.kstep(&["run", "--dry-run", "-o", "json"], &ci_env());
    run.ok();
    saw_stand_ins(&run, "blind");
    let granted = seen_by(&run, "granted");
    assert!(granted.contains(STRING_MARKER), "{granted}");
    assert!(granted.contains(&base64(DATA_MARKER)), "{granted}");
    assert!(granted.contains(SHA), "the labels step ran: {granted}");
    // One line says which step was given the values; none for the others.
    run.stderr(Has(
        "kstep.yaml:10:5: step `granted`: sees the values of 1 Secret(s): it is granted `secrets: true`\n",
    ));
    assert_eq!(
        run.stderr.matches("sees the values of").count(),
        1,
        "{run:?}"
    );
    // Printed, the values are masked.
    crate::support::assert_no_secret(
        "kstep run",
        &run.all_output(),
        &crate::support::secret_forms(&[STRING_MARKER, DATA_MARKER]),
    );

    // A step that writes a Secret value keeps its change; the value it did not touch is the
    // real one again.
    p.write(
        "kstep.yaml",
        "steps:\n  - render: db.yaml\n  - wasm: steps/hostile.wasm\n    name: writer\n    with: {do: set-secret, key: password, value: written-by-the-step-5b3f}\n  - wasm: steps/hostile.wasm\n    name: granted\n    with: {do: reveal}\n    secrets: true\n  - apply:\n",
    );
    let run = p.kstep(&["run", "--dry-run"], &[]);
    run.ok();
    let granted = seen_by(&run, "granted");
    assert!(
        granted.contains("\"password\":\"written-by-the-step-5b3f\""),
        "{granted}"
    );
    // The value a step wrote into a Secret is masked like a rendered one where the dry run
    // prints the documents.
    run.stdout(Has("password: [MASKED]"));
    crate::support::assert_no_secret(
        "kstep run --dry-run",
        &run.all_output(),
        &crate::support::secret_forms(&["written-by-the-step-5b3f", STRING_MARKER, DATA_MARKER]),
    );
    assert!(!granted.contains(STRING_MARKER), "{granted}");
    assert!(granted.contains(&base64(DATA_MARKER)), "{granted}");
}

#[test]
fn kstep_step_run_withholds_secret_values_unless_given_secrets() {
    let p = secret_project("standins-steprun");
    let args = [
        "step",
        "run",
        "steps/hostile.wasm",
        "-p",
        "do=reveal",
        "-f",
        "db.yaml",
    ];
    let run = p.kstep(&args, &[]);
    run.ok().stderr(Lacks("sees the values of"));
    saw_stand_ins(&run, "hostile");
    let mut granted = args.to_vec();
    granted.push("--secrets");
    let run = p.kstep(&granted, &[]);
    run.ok().stderr(Has(
        "kstep step run: step `hostile`: sees the values of 1 Secret(s)",
    ));
    let seen = seen_by(&run, "hostile");
    assert!(seen.contains(STRING_MARKER), "{seen}");
    crate::support::assert_no_secret(
        "kstep step run",
        &run.all_output(),
        &crate::support::secret_forms(&[STRING_MARKER, DATA_MARKER]),
    );
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn a_secret_passed_through_blind_steps_is_applied_with_its_real_values() {
    let kubeconfig = cluster::admin_kubeconfig();
    let ns = Namespace::create("standins");
    let p = secret_project("standins-cluster");
    p.write(
        "kstep.yaml",
        &format!(
            "env: [CI_COMMIT_SHA]\nsteps:\n  - render: db.yaml\n  - wasm: steps/hostile.wasm\n    name: blind\n    with: {{do: reveal}}\n  - wasm: steps/ci_labels.wasm\n    name: labels\n    variables: [CI_COMMIT_SHA]\n  - apply: {{namespace: {}}}\n",
            ns.name
        ),
    );
    let mut env = ci_env();
    env.push(("KUBECONFIG", &kubeconfig));
    let run = p.kstep(&["run"], &env);
    run.ok();
    saw_stand_ins(&run, "blind");
    crate::support::assert_no_secret(
        "kstep run",
        &run.all_output(),
        &crate::support::secret_forms(&[STRING_MARKER, DATA_MARKER]),
    );
    let secret = cluster::kubectl_json(&["get", "secret", "db", "-n", &ns.name]);
    assert_eq!(secret["data"]["password"], base64(STRING_MARKER));
    assert_eq!(secret["data"]["token"], base64(DATA_MARKER));
    assert_eq!(
        secret["metadata"]["labels"]["ci.gitlab.com/commit-sha"],
        SHA
    );
}
