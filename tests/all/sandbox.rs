//! The sandbox: every embedded step loads and runs; hostile components are contained and the
//! host survives each with the right exit code and message.

use std::time::{Duration, Instant};

use kstep::builtins::BUILTINS;
use kstep::runtime::{Limits, Runtime, StepError, cache::CompileCache};

use crate::support::Text::{Has, Lacks, StartsWith};
use crate::support::{TempDir, cache_dir, fixture, kstep};

const PROBE: &str = "kstep-test:probe/probe";

fn probe(function: &str, args: &[&str]) -> crate::support::Run {
    let export = format!("{PROBE}#{function}");
    let path = fixture("kstep-fixture-hostile");
    let mut argv = vec!["call", path.to_str().unwrap(), export.as_str()];
    argv.extend_from_slice(args);
    kstep(&argv, &[], None)
}

fn runtime() -> Runtime {
    Runtime::with_cache(Some(CompileCache::new(cache_dir()))).unwrap()
}

#[test]
fn every_builtin_loads_with_only_allowed_imports_and_runs() {
    let rt = runtime();
    for b in BUILTINS {
        let step = rt
            .builtin(b.name)
            .unwrap_or_else(|e| panic!("{}: {e}", b.name));
        let imports: Vec<String> = step
            .component()
            .component_type()
            .imports(rt.engine())
            .map(|(n, _)| n.to_owned())
            .collect();
        assert!(
            imports
                .iter()
                .all(|i| i.starts_with("wasi:") || i.starts_with("kstep:steps/types")),
            "{}: {imports:?}",
            b.name
        );
        assert!(
            imports.iter().all(|i| !i.starts_with("wasi:sockets")),
            "{}: {imports:?}",
            b.name
        );
        // Instantiating in a fresh sandboxed store proves every import is satisfied.
        rt.call(&step, &Limits::default(), |_, _| Ok(())).unwrap();
    }
}

#[test]
fn dotenv_builtin_is_callable_through_typed_bindings() {
    let rt = runtime();
    let entries = kstep::steps::dotenv::parse(
        &rt,
        b"IMAGE=registry.local:5000/app:1\n",
        kstep::steps::dotenv::Flavor::Gitlab,
        &Vec::new(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].value, "registry.local:5000/app:1");
}

#[test]
fn infinite_loop_is_stopped_by_the_cpu_budget() {
    let started = Instant::now();
    let run = probe("spin", &["--cpu", "500ms"]);
    run.exits_with(1);
    run.stderr(Has("exceeded its 500ms CPU budget"));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn default_cpu_budget_is_two_seconds() {
    let rt = runtime();
    let step = rt
        .load(
            "spinner",
            &std::fs::read(fixture("kstep-fixture-hostile")).unwrap(),
        )
        .unwrap();
    let started = Instant::now();
    let err = rt
        .call(&step, &Limits::default(), |store, instance| {
            let iface = instance.get_export_index(&mut *store, None, PROBE).unwrap();
            let func = instance
                .get_export_index(&mut *store, Some(&iface), "spin")
                .unwrap();
            let func = instance.get_typed_func::<(), ()>(&mut *store, func)?;
            func.call(&mut *store, ())
        })
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, StepError::CpuBudget { .. }), "{err}");
    assert_eq!(err.to_string(), "step `spinner` exceeded its 2s CPU budget");
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
}

#[test]
fn memory_growth_hits_the_cap() {
    let run = probe("grow", &["64", "--memory", "32MiB"]);
    run.exits_with(1);
    run.stderr(Has("exceeded its 32 MiB memory limit"));
    // Below the cap the same call succeeds: the limit, not the fixture, is what failed.
    let run = probe("grow", &["8", "--memory", "32MiB"]);
    assert_eq!((run.code, run.stdout.trim()), (0, "U32(8)"), "{run:?}");
}

#[test]
fn deep_recursion_is_a_clean_trap() {
    let run = probe("recurse", &["10000000"]);
    run.exits_with(1);
    run.stderr(Has("trapped"));
    run.stderr(Lacks("panicked"));
}

#[test]
fn files_and_environment_are_invisible() {
    let run = probe("read-file", &["/etc/passwd"]);
    run.ok();
    run.stdout(StartsWith("error:"));
    let run = kstep(
        &[
            "call",
            fixture("kstep-fixture-hostile").to_str().unwrap(),
            &format!("{PROBE}#read-env"),
        ],
        &[("KSTEP_TEST_VISIBLE", "should-not-be-seen")],
        None,
    );
    run.ok();
    assert_eq!(run.stdout.trim(), "", "the guest saw: {}", run.stdout);
}

#[test]
fn foreign_imports_are_refused_at_load() {
    let path = fixture("kstep-fixture-forbidden-import");
    let run = kstep(&["call", path.to_str().unwrap(), "run"], &[], None);
    run.exits_with(2);
    run.stderr(Has("imports `kstep-test:probe/exfiltrate`"));
}

#[test]
fn secrets_printed_by_a_component_are_masked() {
    let secret = "glpat-Zx9secretTOKENvalue";
    let path = fixture("kstep-fixture-hostile");
    let text = format!("token={secret}");
    let run = kstep(
        &[
            "call",
            "--mask-env",
            "KSTEP_TEST_SECRET",
            path.to_str().unwrap(),
            &format!("{PROBE}#echo"),
            &text,
        ],
        &[("KSTEP_TEST_SECRET", secret)],
        None,
    );
    run.ok();
    assert!(!run.all_output().contains(secret), "{run:?}");
    run.stdout(Has("token=[MASKED]"));
    assert_eq!(run.stderr.matches("[MASKED]").count(), 2, "{}", run.stderr);
}

#[test]
fn a_warm_cache_compiles_nothing() {
    let dir = TempDir::new("sandbox-cache");
    let rt = Runtime::with_cache(Some(CompileCache::new(dir.to_path_buf()))).unwrap();
    let wasm = BUILTINS[0].wasm;
    assert_eq!(
        rt.warm(wasm).unwrap(),
        kstep::runtime::cache::Warmed::Compiled
    );
    assert_eq!(rt.warm(wasm).unwrap(), kstep::runtime::cache::Warmed::Hit);
    let entries = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(entries, 1);
    // A corrupt entry is replaced, not trusted.
    let entry = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&entry, b"garbage").unwrap();
    rt.load("again", wasm).unwrap();
    assert_ne!(std::fs::read(&entry).unwrap(), b"garbage");
}

#[test]
fn cli_reports_version_and_components() {
    let run = kstep(&["version"], &[], None);
    assert_eq!(run.code, 0);
    run.stdout(StartsWith(&format!(
        "kstep {}\nwasmtime 48.",
        env!("CARGO_PKG_VERSION")
    )));
    for b in BUILTINS {
        run.stdout(Has(&format!("sha256:{}", b.sha256)));
    }
    let run = kstep(&["components", "--output", "json"], &[], None);
    let list: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), BUILTINS.len());
    assert_eq!(kstep(&["no-such-command"], &[], None).code, 2);
}

#[test]
fn as_the_image_entrypoint_shells_and_absolute_paths_run_as_is() {
    let entry = [("KSTEP_ENTRYPOINT", "1")];
    let run = kstep(&["sh", "-c", "echo from-the-shell; exit 7"], &entry, None);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (7, "from-the-shell\n"),
        "{run:?}"
    );
    let run = kstep(&["/bin/echo", "absolute"], &entry, None);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "absolute\n"),
        "{run:?}"
    );
    let run = kstep(&["version"], &entry, None);
    run.stdout(StartsWith("kstep "));
    assert_eq!(kstep(&["/no/such/program"], &entry, None).code, 127);
    // Outside the image, kstep never executes its arguments.
    let run = kstep(&["sh", "-c", "echo nope"], &[], None);
    run.exits_with(2);
    run.stdout(Lacks("nope"));
}

#[test]
fn demo_renders_the_reference_workflow_offline() {
    let run = kstep(&["demo"], &[], None);
    // The image from the dotenv artifact replaced the IMAGE word; removed apiVersions upgraded.
    run.ok()
        .stdout(Has(
            "image: registry.gitlab.com/example/blog:4f2c9e1a-1843-7761",
        ))
        .stdout(Lacks("image: IMAGE"))
        .stdout(Lacks("extensions/v1beta1\nkind"))
        .stdout(Has("apiVersion: apps/v1"))
        .stdout(Has("apiVersion: networking.k8s.io/v1"));
    // Services before workloads before Ingress.
    let order: Vec<usize> = ["services ", "workloads ", "other objects "]
        .iter()
        .map(|p| {
            run.stdout
                .find(&format!("#   {p}"))
                .unwrap_or_else(|| panic!("{p}: {}", run.stdout))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", run.stdout);
}
