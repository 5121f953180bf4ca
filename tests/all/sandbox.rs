//! The sandbox: every embedded step loads and runs; hostile components are contained and the
//! host survives each with the right exit code and message: CPU budget, wall-clock limit (a
//! guest blocked in a host call included), one memory cap for all memories and tables, caps on
//! instances and memories, and a compile cache that nobody else can plant code in.

use std::path::Path;
use std::time::{Duration, Instant};

use kstep::builtins::BUILTINS;
use kstep::runtime::{Limits, Runtime, StepError, cache::CompileCache};

use crate::support::Text::{Has, Lacks, StartsWith};
use crate::support::{Run, TempDir, cache_dir, fixture, kstep, kstep_command, test_fixture};

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
        rt.call(&step, &Limits::default(), async |_, _| Ok(()))
            .unwrap();
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
        .call(&step, &Limits::default(), async |store, instance| {
            let iface = instance.get_export_index(&mut *store, None, PROBE).unwrap();
            let func = instance
                .get_export_index(&mut *store, Some(&iface), "spin")
                .unwrap();
            let func = instance.get_typed_func::<(), ()>(&mut *store, func)?;
            func.call_async(&mut *store, ()).await
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
    let wasm = BUILTINS[0].wasm().unwrap();
    let wasm = wasm.as_slice();
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

/// `kstep step run` of the hostile custom step with `params` (`KEY=VALUE`) and `options`.
fn hostile_step(params: &[&str], options: &[&str], envs: &[(&str, &str)]) -> Run {
    let path = fixture("kstep-fixture-step-hostile");
    let mut argv = vec!["step", "run", path.to_str().unwrap()];
    for p in params {
        argv.extend(["-p", p]);
    }
    argv.extend_from_slice(options);
    kstep(&argv, envs, None)
}

/// Compiles the hostile custom step into the shared compile cache, so that the timed runs
/// measure the call, not a debug build's first compile.
fn warm_hostile_step() {
    hostile_step(&["do=set", "name=A", "value=b"], &[], &[]).ok();
}

/// Runs `f` and asserts it took at least `at_least` and less than `at_least` + 1 s.
#[track_caller]
fn within_a_second_of<T>(at_least: Duration, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= at_least && elapsed < at_least + Duration::from_secs(1),
        "{elapsed:?}"
    );
    out
}

#[test]
fn a_step_asleep_in_the_host_ends_at_its_wall_clock_limit() {
    // The sleep blocks in wasi:io/poll, where the CPU budget (epochs) cannot reach: only the
    // wall-clock limit ends it, and the process exits at once (no thread left blocked).
    warm_hostile_step();
    let run = within_a_second_of(Duration::from_secs(2), || {
        hostile_step(
            &["do=sleep", "secs=3600"],
            &["--wall", "2s", "--cpu", "60s"],
            &[],
        )
    });
    run.fails_with(1);
    run.stderr(Has(
        "step `kstep_fixture_step_hostile` exceeded its 2 s wall-clock limit",
    ));
}

#[test]
fn wasm_that_never_sleeps_is_held_to_the_wall_clock_limit_too() {
    // A CPU budget above the wall-clock limit: the guest spins in wasm, or polls the clock,
    // and still yields to the timer.
    warm_hostile_step();
    for action in ["do=spin", "do=poll"] {
        let run = within_a_second_of(Duration::from_secs(2), || {
            hostile_step(
                &[action, "secs=3600"],
                &["--wall", "2s", "--cpu", "60s"],
                &[],
            )
        });
        run.fails_with(1);
        run.stderr(Has("exceeded its 2 s wall-clock limit"));
    }
}

#[test]
fn the_wall_clock_limit_defaults_to_ten_seconds() {
    assert_eq!(Limits::default().wall, Duration::from_secs(10));
    let err = StepError::WallClock {
        step: "x".into(),
        limit: Limits::default().wall,
    };
    assert_eq!(
        err.to_string(),
        "step `x` exceeded its 10 s wall-clock limit"
    );
}

#[test]
fn limits_wall_in_kstep_yaml_stops_the_pipeline_before_anything_is_applied() {
    warm_hostile_step();
    let dir = TempDir::new("sandbox-wall");
    std::fs::copy(
        fixture("kstep-fixture-step-hostile"),
        dir.join("hostile.wasm"),
    )
    .unwrap();
    dir.write(
        "kstep.yaml",
        "steps:\n  - wasm: hostile.wasm\n    with: {do: sleep, secs: 3600}\n    \
         limits: {wall: 1500ms, cpu: 60s}\n  - apply:\n",
    );
    let run: Run = within_a_second_of(Duration::from_millis(1500), || {
        kstep_command(&["run", "--dry-run", "kstep.yaml"])
            .current_dir(&dir)
            .output()
            .unwrap()
            .into()
    });
    run.fails_with(1);
    run.stderr(Has("step `hostile` exceeded its 1500 ms wall-clock limit"));
    run.stderr(Has("nothing was applied"));
}

/// Assembles `tests/fixtures/hostile/wat/NAME.wat` into `dir/NAME.wasm`.
fn wat_fixture(dir: &Path, name: &str) -> String {
    let wasm = wat::parse_file(test_fixture(&format!("hostile/wat/{name}.wat"))).unwrap();
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, wasm).unwrap();
    path.to_str().unwrap().to_owned()
}

fn call(component: &str, args: &[&str]) -> Run {
    let mut argv = vec!["call", component];
    argv.extend_from_slice(args);
    kstep(&argv, &[], None)
}

#[test]
fn all_linear_memories_count_against_one_cap() {
    let dir = TempDir::new("sandbox-multi-memory");
    let wasm = wat_fixture(&dir, "multi-memory");
    // Four memories of 16 MiB each: under a per-memory cap of 32 MiB, over a total of 32 MiB.
    let run = call(&wasm, &["grow", "256", "--memory", "32MiB"]);
    run.fails_with(1);
    run.stderr(Has(
        "step `multi-memory` exceeded its 32 MiB memory limit (growing a linear memory",
    ));
    // Four memories of 4 MiB: the same fixture runs under the cap.
    let run = call(&wasm, &["grow", "64", "--memory", "32MiB"]);
    assert_eq!((run.code, run.stdout.trim()), (0, "U32(260)"), "{run:?}");
}

#[test]
fn tables_count_against_the_memory_cap() {
    let dir = TempDir::new("sandbox-table");
    let wasm = wat_fixture(&dir, "table-growth");
    let run = call(&wasm, &["grow", "4000000", "--memory", "32MiB"]);
    run.fails_with(1);
    run.stderr(Has(
        "step `table-growth` exceeded its 32 MiB memory limit (growing a table",
    ));
    let run = call(&wasm, &["grow", "1000", "--memory", "32MiB"]);
    assert_eq!((run.code, run.stdout.trim()), (0, "U32(1001)"), "{run:?}");
}

#[test]
fn instances_and_memories_are_counted() {
    let dir = TempDir::new("sandbox-counts");
    let run = call(&wat_fixture(&dir, "many-instances"), &["noop"]);
    run.fails_with(1);
    run.stderr(Has(
        "step `many-instances` exceeded its limit of 64 instances",
    ));
    let run = call(&wat_fixture(&dir, "many-memories"), &["noop"]);
    run.fails_with(1);
    run.stderr(Has(
        "step `many-memories` exceeded its limit of 16 memories",
    ));
}

#[test]
fn builtins_run_precompiled_without_any_cache() {
    let rt = Runtime::with_cache(None).unwrap();
    for b in BUILTINS {
        let step = rt.builtin(b.name).unwrap();
        assert!(step.precompiled(), "{} was compiled at run time", b.name);
    }
    // Through the binary: the cache directory is neither read nor written for built-ins.
    let cache = TempDir::new("sandbox-builtin-cache");
    let kubeconfig = test_fixture("kubeconfigs/kind.yaml");
    let run = kstep(
        &[
            "kubeconfig",
            "show",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
        &[("KSTEP_CACHE_DIR", cache.to_str().unwrap())],
        None,
    );
    run.ok();
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
}

#[cfg(unix)]
#[test]
fn a_cache_others_could_write_is_ignored_with_one_warning() {
    use std::os::unix::fs::PermissionsExt as _;
    let chmod = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let cache = TempDir::new("sandbox-untrusted-cache");
    chmod(&cache, 0o700);
    let envs = [("KSTEP_CACHE_DIR", cache.to_str().unwrap())];
    let step = || hostile_step(&["do=set", "name=A", "value=b"], &[], &envs);
    let run = step();
    run.ok().stderr(Lacks("warning"));
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];

    // An entry anyone may write could hold anything: ignored, said once, replaced.
    chmod(entry, 0o666);
    let run = step();
    run.ok();
    run.stderr(Has("warning: ignoring the compile cache"));
    run.stderr(Has("it is writable by group or others (mode 666)"));
    assert_eq!(run.stderr.matches("warning:").count(), 1, "{}", run.stderr);
    step().ok().stderr(Lacks("warning"));

    // An entry of another user (only root can make one here).
    if std::os::unix::fs::chown(entry, Some(4242), None).is_ok() {
        let run = step();
        run.ok().stderr(Has("it is owned by uid 4242"));
    }

    // A directory others may write: nothing in it is trusted, nothing is written to it.
    std::fs::remove_file(entry).unwrap();
    chmod(&cache, 0o777);
    let run = step();
    run.ok();
    run.stderr(Has("it is writable by group or others (mode 777)"));
    assert_eq!(run.stderr.matches("warning:").count(), 1, "{}", run.stderr);
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
}
