//! `kstep step test DIR`: the example steps' shipped cases pass, a case that expects what the
//! step does not do fails with why (exit 1, JUnit failure), and invalid case files are named
//! at their line and column before anything runs (exit 2).

use std::fs;
use std::path::Path;

use crate::support::Text::{Has, Lacks};
use crate::support::{Run, TempDir, copy_dir, fixture, repo_root};

fn kstep_in(dir: &Path, args: &[&str]) -> Run {
    crate::support::kstep_in(dir, args, &[])
}

#[test]
fn the_example_steps_pass_their_shipped_cases() {
    let root = repo_root();
    for (krate, dir, cases) in [
        (
            "kstep-example-deny-latest",
            "components/examples/deny-latest/tests",
            &["floating-tag", "missing-limits", "pinned"][..],
        ),
        (
            "kstep-example-ci-labels",
            "components/examples/ci-labels/tests",
            &["pod-templates", "stamps-ci-metadata"][..],
        ),
    ] {
        let step = fixture(krate);
        let run = kstep_in(
            &root,
            &["step", "test", dir, "--step", step.to_str().unwrap()],
        );
        run.ok();
        for case in cases {
            run.stdout(Has(&format!("{case}  ")));
        }
        run.stdout(Has(&format!("{} passed, 0 failed", cases.len())))
            .stdout(Lacks("FAIL"));
    }
}

/// A copy of the deny-latest cases, to break.
fn cases(test: &str) -> TempDir {
    let dir = TempDir::new(test);
    copy_dir(
        &repo_root().join("components/examples/deny-latest/tests"),
        &dir.join("cases"),
    );
    fs::copy(
        fixture("kstep-example-deny-latest"),
        dir.join("deny_latest.wasm"),
    )
    .unwrap();
    dir
}

#[test]
fn a_case_that_does_not_match_fails_with_why_and_in_the_junit_report() {
    let dir = cases("steptest-fail");
    // The pinned case now expects a finding the step does not make, and a refusal; the
    // floating-tag case names the step in its file instead of --step.
    dir.write(
        "cases/pinned/case.yaml",
        "variables: {TAG: \"1.4.2\"}\nmanifests: [deployment.yaml]\nexpect:\n  findings:\n    \
         - severity: warning\n      document: Deployment/web\n      message: nope\n",
    );
    let floating = fs::read_to_string(dir.join("cases/floating-tag/case.yaml")).unwrap();
    dir.write(
        "cases/floating-tag/case.yaml",
        format!("step: ../../deny_latest.wasm\n{floating}"),
    );
    let run = kstep_in(
        &dir,
        &[
            "step",
            "test",
            "cases",
            "--step",
            "deny_latest.wasm",
            "--report",
            "junit=j.xml",
        ],
    );
    run.exits_with(1)
        .stdout(Has("floating-tag    pass\n"))
        .stdout(Has("pinned          FAIL\n"))
        .stdout(Has(
            "  - expected finding not made: warning in Deployment/web containing \"nope\"\n",
        ))
        .stdout(Has("2 passed, 1 failed"));
    // Without --step, a case runs the step its file names; one that names none cannot run.
    kstep_in(&dir, &["step", "test", "cases/floating-tag"])
        .ok()
        .stdout(Has("1 passed, 0 failed"));
    let run = kstep_in(&dir, &["step", "test", "cases/pinned"]);
    run.fails_with(2).stderr(Has(
        "cases/pinned/case.yaml: no `step:`, and no --step given",
    ));
    let junit = fs::read_to_string(dir.join("j.xml")).unwrap();
    assert!(
        junit.contains("<testsuite name=\"kstep step test\" tests=\"3\" failures=\"1\""),
        "{junit}"
    );
    assert!(junit.contains("<testcase name=\"pinned\""), "{junit}");
    assert!(junit.contains("expected finding not made"), "{junit}");

    // An unexpected finding and a wrong output variable are named too.
    dir.write(
        "cases/pinned/case.yaml",
        "variables: {TAG: latest}\nmanifests: [deployment.yaml]\nexpect:\n  refused: false\n  \
         variables: {DEPLOY_TIER: gold}\n",
    );
    let run = kstep_in(
        &dir,
        &["step", "test", "cases/pinned", "--step", "deny_latest.wasm"],
    );
    run.exits_with(1)
        .stdout(Has("the step refused the documents"))
        .stdout(Has("0 passed, 1 failed"));
}

#[test]
fn invalid_case_files_are_named_at_their_line_and_column_before_anything_runs() {
    let dir = cases("steptest-invalid");
    dir.write(
        "cases/pinned/case.yaml",
        "manifests: [deployment.yaml, missing.yaml]\nexpect:\n  findings:\n    - severity: fatal\n",
    );
    dir.write(
        "cases/missing-limits/case.yaml",
        "manifest: [deployment.yaml]\n",
    );
    dir.write(
        "cases/floating-tag/case.yaml",
        "step: https://registry.example/steps/deny.wasm\n",
    );
    let run = kstep_in(
        &dir,
        &["step", "test", "cases", "--step", "deny_latest.wasm"],
    );
    run.fails_with(2)
        .stderr(Has("cases/pinned/case.yaml:1:30: manifest `missing.yaml`: no such file"))
        .stderr(Has("cases/pinned/case.yaml:4:17: severity `fatal`: expected error, warning or info"))
        .stderr(Has("cases/missing-limits/case.yaml:1:1: "))
        .stderr(Has("cases/floating-tag/case.yaml:1:7: `https://registry.example/steps/deny.wasm`: a step is a .wasm file or an oci:// reference"))
        // Nothing ran.
        .stderr(Lacks("case floating-tag"));
    let run = kstep_in(&dir, &["step", "test", "nowhere"]);
    run.fails_with(2).stderr(Has("nowhere: "));
}

#[test]
#[ignore = "builds the scaffolded step with cargo for wasm32-wasip2 (a minute or two)"]
fn a_scaffolded_rust_step_builds_and_passes_its_cases() {
    let dir = TempDir::new("stepnew");
    kstep_in(&dir, &["step", "new", "deny-pods", "--lang", "rust"])
        .ok()
        .stdout(Has("Created deny-pods"));
    // Nothing is overwritten.
    kstep_in(&dir, &["step", "new", "deny-pods", "--lang", "python"])
        .fails_with(2)
        .stderr(Has("deny-pods: already exists"));
    let step = dir.join("deny-pods");
    for file in [
        "wit/step.wit",
        "wit/types.wit",
        ".gitlab-ci.yml",
        "tests/allowed/case.yaml",
    ] {
        assert!(step.join(file).is_file(), "{file}");
    }
    // The build script, with a target directory shared by the test runs.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stepnew-target");
    let build = std::process::Command::new(step.join("build.sh"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    kstep_in(
        &step,
        &["step", "test", "tests", "--step", "deny-pods.wasm"],
    )
    .ok()
    .stdout(Has("2 passed, 0 failed"));
    // The Python scaffold has its own build script and the same cases.
    kstep_in(&dir, &["step", "new", "py-step", "--lang", "python"]).ok();
    assert!(dir.join("py-step/app.py").is_file());
    assert!(dir.join("py-step/tests/denied-kind/case.yaml").is_file());
}
