//! End to end: the example pipelines of `ci-templates/examples/` run by a real GitLab CI
//! pipeline runner, gitlab-ci-local (pinned in `tests/e2e/`), in shell-executor mode against the
//! test cluster — the default branch's (plan, production deploy of that plan, Traefik), a merge
//! request's (plan, review app), its stop job, the scheduled sweeper, and the fan-out over
//! regions, checking the cluster after each; a step published (pushed, cosign-signed) by one
//! project's pipeline and run, locked and verified, by another's; a broken dotenv report failing its job; the
//! README's pipeline being the example, every template being run; and the runner image's
//! entrypoint driven the way GitLab's docker executor drives it.
//!
//! The example `.gitlab-ci.yml` runs unmodified: its `include: project:` is served from
//! gitlab-ci-local's include cache, seeded with this checkout's template (nothing is fetched),
//! `hugo` and `buildah` are stubs that record their arguments (no registry here), and `kstep`
//! is the binary under test. The deploy job gets its kubeconfig the way the reference workflow
//! stores it (a masked base64 variable made by `kstep serviceaccount create`), the Traefik job
//! gets the admin's as a File-type variable. Every job log is searched for every secret.
//!
//! `KSTEP_E2E_KEEP=1` keeps the work directories (under the cargo target tmpdir) for debugging.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::cluster::{self, Cleanup, exists, kubectl_ok, kubectl_stdin_ok};
use crate::support::{cache_dir, copy_dir, fixture, kstep, kstep_bin, repo_root};

/// The fake GitLab instance and project (never contacted: only its name is used).
const ORIGIN: &str = "https://gitlab.example.com/group/project.git";
/// What `include: project:` in the example names; the include cache is seeded under it.
const INCLUDE_PROJECT: &str = "kstep/kstep";
const INCLUDE_REF: &str = "v0.1.0";
const REGISTRY_IMAGE: &str = "registry.example.com/group/project";
const REGISTRY_PASSWORD: &str = "e2eRegistryPassword-9f8e7d6c5b4a";
/// A pipeline never takes this long here (about a minute); past it, something hangs.
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(600);

/// The pinned gitlab-ci-local, or a panic that says how to install it.
fn gitlab_ci_local() -> PathBuf {
    let bin = repo_root().join("tests/e2e/node_modules/.bin/gitlab-ci-local");
    assert!(
        bin.exists(),
        "gitlab-ci-local is not installed: run `(cd tests/e2e && npm ci)` (needs Node.js >= 20, \
         git and rsync)"
    );
    bin
}

/// A work directory for one test, removed at the end unless `KSTEP_E2E_KEEP=1`.
struct Workdir {
    path: PathBuf,
    /// Unique per run: namespaces and names derive from it.
    suffix: String,
}

impl Workdir {
    fn new(test: &str) -> Self {
        Self::under(Path::new(env!("CARGO_TARGET_TMPDIR")), test)
    }

    fn under(root: &Path, test: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let suffix = format!("{}-{}", std::process::id(), nanos % 100_000);
        let path = root.join("kstep-e2e").join(format!("{test}-{suffix}"));
        fs::create_dir_all(&path).unwrap();
        Self { path, suffix }
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if std::env::var_os("KSTEP_E2E_KEEP").is_some_and(|v| v == "1") {
            eprintln!("kept {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=kstep e2e",
            "-c",
            "user.email=e2e@example.com",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Turns `dir` into the project gitlab-ci-local expects: a git repository on `main` with a
/// remote `origin` (and its HEAD, so no remote is queried), and the kstep template in the
/// include cache where `include: project: kstep/kstep` looks for it. Returns the commit sha.
fn make_project(dir: &Path) -> String {
    git(dir, &["init", "-q"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "e2e"]);
    git(dir, &["remote", "add", "origin", ORIGIN]);
    git(dir, &["update-ref", "refs/remotes/origin/main", "HEAD"]);
    git(
        dir,
        &[
            "symbolic-ref",
            "refs/remotes/origin/HEAD",
            "refs/remotes/origin/main",
        ],
    );
    let cached = dir
        .join(".gitlab-ci-local/includes/gitlab.example.com")
        .join(INCLUDE_PROJECT)
        .join(INCLUDE_REF)
        .join("ci-templates/kstep.gitlab-ci.yml");
    fs::create_dir_all(cached.parent().unwrap()).unwrap();
    fs::copy(
        repo_root().join("ci-templates/kstep.gitlab-ci.yml"),
        &cached,
    )
    .unwrap();
    git(dir, &["rev-parse", "HEAD"])
}

/// `hugo` and `buildah` stand-ins: they record their arguments in `$KSTEP_E2E_STUB_LOG`
/// (buildah's `--password-stdin` is read and dropped, as the real one would consume it).
fn write_stubs(dir: &Path) -> PathBuf {
    let stubs = dir.join("stubs");
    fs::create_dir_all(&stubs).unwrap();
    let scripts = [
        (
            "hugo",
            "#!/bin/sh\necho \"hugo $*\" >> \"$KSTEP_E2E_STUB_LOG\"\nmkdir -p public\n\
             echo '<h1>blog</h1>' > public/index.html\n",
        ),
        (
            "buildah",
            "#!/bin/sh\ncase \" $* \" in *' --password-stdin '*) cat > /dev/null;; esac\n\
             echo \"buildah $*\" >> \"$KSTEP_E2E_STUB_LOG\"\n",
        ),
    ];
    for (name, text) in scripts {
        let path = stubs.join(name);
        fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    stubs
}

/// What one gitlab-ci-local run left behind.
struct Pipeline {
    code: i32,
    /// gitlab-ci-local's own stdout and stderr.
    output: String,
    /// Each job's log (`.gitlab-ci-local/output/<job>.log`).
    logs: BTreeMap<String, String>,
    elapsed: Duration,
}

impl Pipeline {
    fn log(&self, job: &str) -> &str {
        self.logs
            .get(job)
            .unwrap_or_else(|| panic!("no log for job {job}:\n{}", self.output))
    }

    /// Whether gitlab-ci-local's summary lists `job` as passed (` PASS  job`).
    fn passed(&self, job: &str) -> bool {
        self.summary_is(job, "PASS")
    }

    /// Whether gitlab-ci-local's summary lists `job` as failed (` FAIL  job`).
    fn failed(&self, job: &str) -> bool {
        self.summary_is(job, "FAIL")
    }

    fn summary_is(&self, job: &str, status: &str) -> bool {
        self.output.lines().any(|l| {
            l.trim()
                .strip_prefix(status)
                .is_some_and(|rest| rest.trim() == job)
        })
    }

    /// Each job's wall-clock time as gitlab-ci-local reports it (`JOB finished in 1.2 s`),
    /// printed for docs/ci.md.
    fn print_job_times(&self) {
        for line in self.output.lines() {
            if let Some((job, time)) = line.split_once(" finished in ") {
                eprintln!("job time: {:<32} {}", job.trim(), time.trim());
            }
        }
    }

    /// Everything the runner printed or logged, for leak searches.
    fn everything(&self) -> String {
        let mut all = self.output.clone();
        for log in self.logs.values() {
            all.push_str(log);
        }
        all
    }
}

/// Runs gitlab-ci-local in `project` (shell executor, each job in its own copy of the project
/// as on a real runner) with kstep and `stubs` first on PATH.
fn run_pipeline(project: &Path, stubs: &Path, args: &[&str]) -> Pipeline {
    let kstep_dir = Path::new(kstep_bin()).parent().unwrap();
    let path = std::env::join_paths(
        [kstep_dir.to_path_buf(), stubs.to_path_buf()]
            .into_iter()
            .chain(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            )),
    )
    .unwrap();
    let work = project.parent().unwrap();
    let home = work.join("gcl-home");
    fs::create_dir_all(&home).unwrap();
    let stdout = work.join("gitlab-ci-local.out");
    let started = Instant::now();
    // gitlab-ci-local refuses an absolute --cwd: it runs in the project directory instead.
    let mut command = Command::new(gitlab_ci_local());
    // Its own process group, so a timeout stops the jobs' processes too.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .arg("--home")
        .arg(&home)
        .args(["--force-shell-executor", "--shell-isolation", "--no-color"])
        .args(["--max-job-name-padding", "0"])
        .args(args)
        .current_dir(project)
        // The jobs must get their credentials from the pipeline's variables only.
        .env_remove("KUBECONFIG")
        .env_remove("KSTEP_KUBECONFIG")
        .env_remove("KSTEP_CONTEXT")
        .env("PATH", path)
        .env("KSTEP_CACHE_DIR", cache_dir())
        .env("KSTEP_E2E_STUB_LOG", work.join("stubs.log"))
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout).unwrap())
        .stderr(Stdio::from(
            fs::OpenOptions::new().append(true).open(&stdout).unwrap(),
        ))
        .spawn()
        .expect("start gitlab-ci-local");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > PIPELINE_TIMEOUT {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "gitlab-ci-local did not finish in {PIPELINE_TIMEOUT:?}:\n{}",
                fs::read_to_string(&stdout).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let elapsed = started.elapsed();
    let mut logs = BTreeMap::new();
    if let Ok(entries) = fs::read_dir(project.join(".gitlab-ci-local/output")) {
        for entry in entries {
            let path = entry.unwrap().path();
            let job = path.file_stem().unwrap().to_string_lossy().into_owned();
            logs.insert(job, fs::read_to_string(&path).unwrap());
        }
    }
    Pipeline {
        code: status.code().unwrap_or(-1),
        output: fs::read_to_string(&stdout).unwrap(),
        logs,
        elapsed,
    }
}

/// A report file (`artifacts:reports`) a job left, wherever gitlab-ci-local keeps it among the
/// job's artifacts.
fn job_report(project: &Path, job: &str, file: &str) -> String {
    fn find(dir: &Path, file: &str) -> Option<PathBuf> {
        for entry in fs::read_dir(dir).ok()? {
            let path = entry.ok()?.path();
            if path.is_dir() {
                if let Some(found) = find(&path, file) {
                    return Some(found);
                }
            } else if path.file_name().is_some_and(|n| n == file) {
                return Some(path);
            }
        }
        None
    }
    let artifacts = project.join(".gitlab-ci-local/artifacts").join(job);
    let path =
        find(&artifacts, file).unwrap_or_else(|| panic!("no {file} among {}", artifacts.display()));
    fs::read_to_string(&path).unwrap()
}

/// The dotenv report a job published, as gitlab-ci-local stored it.
fn dotenv_report(project: &Path, job: &str, file: &str) -> BTreeMap<String, String> {
    let path = project
        .join(".gitlab-ci-local/artifacts")
        .join(job)
        .join(".gitlab-ci-reports/dotenv")
        .join(file);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

/// Asserts that none of `secrets` occurs in `text`, naming the secret without printing it.
fn assert_no_secret(text: &str, secrets: &[(&str, &str)]) {
    for (what, secret) in secrets {
        assert!(secret.len() >= 8, "{what}: too short to search for");
        assert!(
            !text.contains(secret),
            "the pipeline output contains {what}"
        );
    }
}

/// The value of `key: VALUE` on the first line that has it (for kubeconfig fields).
fn yaml_field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().trim_matches('"'))
        .unwrap_or_else(|| panic!("no `{key}:` in the kubeconfig"))
}

/// Writes the project's CI/CD variables (JSON is YAML) where gitlab-ci-local reads them.
fn write_variables(project: &Path, variables: &serde_json::Value) {
    fs::write(
        project.join(".gitlab-ci-local-variables.yml"),
        serde_json::to_string_pretty(variables).unwrap(),
    )
    .unwrap();
}

/// The id label of the ApplySet parent Secret `name` in `namespace`.
fn set_id(namespace: &str, name: &str) -> String {
    kubectl_ok(&[
        "get",
        "secret",
        name,
        "-n",
        namespace,
        "-o",
        "jsonpath={.metadata.labels.applyset\\.kubernetes\\.io/id}",
    ])
}

/// `kstep serviceaccount create` as the example's README does it once: a namespace-scoped
/// identity for `namespace` (created). Returns the masked-variable value and the kubeconfig.
fn deploy_identity(work: &Workdir, namespace: &str) -> (String, String) {
    let sa_dir = work.path.join(format!("serviceaccount-{namespace}"));
    let sa_dir_arg = sa_dir.to_string_lossy().into_owned();
    let run = kstep(
        &[
            "serviceaccount",
            "create",
            "--namespace",
            namespace,
            "--name",
            "gitlab-example",
            "--create-namespace",
            "--out-dir",
            &sa_dir_arg,
        ],
        &[("KUBECONFIG", &cluster::admin_kubeconfig())],
        None,
    );
    assert_eq!(run.code, 0, "{run:?}");
    let masked = fs::read_to_string(sa_dir.join("KUBECONFIG.b64")).unwrap();
    let decoded = fs::read_to_string(sa_dir.join("kubeconfig")).unwrap();
    (masked.trim().to_owned(), decoded)
}

#[test]
#[ignore = "needs a cluster and gitlab-ci-local (tests/cluster/up.sh; cd tests/e2e && npm ci)"]
fn example_pipeline_deploys_through_gitlab_ci_local() {
    let admin_kubeconfig = cluster::admin_kubeconfig();
    gitlab_ci_local();
    let work = Workdir::new("example");
    let namespace = format!("kstep-e2e-{}", work.suffix);
    let traefik_namespace = format!("{namespace}-traefik");
    let project = work.path.join("project");
    let _cleanup = Cleanup::default()
        // What the Traefik job applies, as rendered by prepare_traefik_namespace.
        .file(&work.path.join("traefik-rendered.json"))
        .file(&work.path.join("traefik-storage.json"))
        .object("namespace", &namespace)
        .object("namespace", &traefik_namespace);

    // The one-time setup of the example's README: a namespace-scoped identity for GitLab.
    let (masked, decoded) = deploy_identity(&work, &namespace);
    let masked = masked.as_str();
    // The blog is already running, deployed the reference workflow's way (`sed` on the image,
    // client-side `kubectl apply`): the pipeline's first kstep deploy must take it over.
    let blog = fs::read_to_string(repo_root().join("ci-templates/examples/k8s/blog.yaml"))
        .unwrap()
        .replace("${IMAGE}", &format!("{REGISTRY_IMAGE}:reference-workflow"))
        .replace("${BLOG_HOST:-blog.example.com}", "blog.example.com");
    kubectl_stdin_ok(&["apply", "-n", &namespace, "-f", "-"], &blog);
    let admin = fs::read_to_string(&admin_kubeconfig).unwrap();

    // The example, unmodified, plus the project's CI/CD variables. Traefik goes into this
    // test's own namespace and IngressClass: the cluster is shared.
    let example = repo_root().join("ci-templates/examples");
    copy_dir(&example, &project);
    let pipeline_text = fs::read_to_string(project.join(".gitlab-ci.yml")).unwrap();
    assert!(
        pipeline_text.contains(&format!("project: {INCLUDE_PROJECT}"))
            && pipeline_text.contains(&format!("ref: {INCLUDE_REF}")),
        "the example no longer includes {INCLUDE_PROJECT}@{INCLUDE_REF}: update this test"
    );
    let values = e2e_traefik_values(
        &fs::read_to_string(example.join("traefik-values.yaml")).unwrap(),
        &traefik_namespace,
        &format!("traefik-{}", work.suffix),
        &format!("kstep-e2e-{}", work.suffix),
    );
    fs::write(project.join("e2e-traefik-values.yaml"), values).unwrap();
    let sha = make_project(&project);
    write_variables(
        &project,
        &serde_json::json!({
            // As in the reference workflow: a masked variable holding the base64 kubeconfig.
            "KUBECONFIG": masked,
            // The admin's kubeconfig for the Traefik job, as a File-type variable.
            "TRAEFIK_KUBECONFIG": { "type": "file", "values": { "*": admin } },
            "CI_REGISTRY_IMAGE": REGISTRY_IMAGE,
            "CI_REGISTRY_USER": "gitlab-ci-token",
            "CI_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
            "KSTEP_TRAEFIK_VALUES": "e2e-traefik-values.yaml",
            "KSTEP_TRAEFIK_NAMESPACE": traefik_namespace,
        }),
    );
    let stubs = write_stubs(&work.path);
    let has_claim = prepare_traefik_namespace(&project, &traefik_namespace, &work);

    let pipeline = run_pipeline(
        &project,
        &stubs,
        &[
            "--manual",
            "deploy",
            "--manual",
            "traefik",
            "--ignore-predefined-vars",
            "CI_REGISTRY_IMAGE,CI_REGISTRY_USER,CI_REGISTRY_PASSWORD",
        ],
    );
    assert_eq!(
        pipeline.code, 0,
        "the pipeline failed:\n{}",
        pipeline.output
    );
    for job in ["publish", "image-ref", "build", "plan", "deploy", "traefik"] {
        assert!(
            pipeline.passed(job),
            "job {job} did not pass:\n{}",
            pipeline.output
        );
        // The leak search below covers every job's log.
        assert!(!pipeline.log(job).is_empty(), "job {job} logged nothing");
    }
    eprintln!("example pipeline: {:?}", pipeline.elapsed);
    pipeline.print_job_times();
    // Review apps and their sweeper run in merge request and scheduled pipelines only.
    for job in ["review", "review-stop", "review-gc"] {
        assert!(
            !pipeline.logs.contains_key(job),
            "{job} ran on the default branch"
        );
    }

    // No secret anywhere: neither the masked value (gitlab-ci-local masks nothing, so this is
    // stricter than GitLab), nor the token or any other part of either decoded kubeconfig.
    let token = yaml_field(&decoded, "token");
    assert_no_secret(
        &pipeline.everything(),
        &[
            ("the masked KUBECONFIG value", masked),
            ("the ServiceAccount token", token),
            ("the decoded kubeconfig", decoded.trim()),
            (
                "the cluster CA",
                yaml_field(&decoded, "certificate-authority-data"),
            ),
            ("the admin kubeconfig", admin.trim()),
            (
                "the admin client key",
                yaml_field(&admin, "client-key-data"),
            ),
            (
                "the admin client certificate",
                yaml_field(&admin, "client-certificate-data"),
            ),
            ("the registry password", REGISTRY_PASSWORD),
        ],
    );

    // IMAGE: computed once, in the format of the reference workflow, and it is what was built,
    // pushed and rolled out.
    let report = dotenv_report(&project, "image-ref", "kstep-image.env");
    let image = report
        .get("IMAGE")
        .expect("IMAGE in the dotenv report")
        .clone();
    let tag = image
        .strip_prefix(&format!("{REGISTRY_IMAGE}:"))
        .unwrap_or_else(|| panic!("IMAGE={image}: not in {REGISTRY_IMAGE}"));
    let parts: Vec<&str> = tag.split('-').collect();
    assert!(
        parts.len() == 3
            && parts[0] == &sha[..8]
            && parts[1..]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
        "IMAGE={image}: expected <short sha {}>-<pipeline id>-<job id>",
        &sha[..8]
    );
    let stub_log = fs::read_to_string(work.path.join("stubs.log")).unwrap();
    assert!(stub_log.contains("hugo"), "{stub_log}");
    assert!(
        stub_log.contains(&format!("buildah build --pull -t {image} ."))
            && stub_log.contains(&format!("buildah push {image}")),
        "the image job did not get IMAGE from the dotenv report:\n{stub_log}"
    );

    let deployed = kubectl_ok(&[
        "get",
        "deployment",
        "blog",
        "-n",
        &namespace,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image} {.spec.replicas} \
         {.status.updatedReplicas} {.status.availableReplicas} {.metadata.generation} \
         {.status.observedGeneration}",
    ]);
    let fields: Vec<&str> = deployed.split(' ').collect();
    assert_eq!(fields[0], image, "the Deployment runs another image");
    assert!(
        fields[1] == fields[2] && fields[1] == fields[3] && fields[4] == fields[5],
        "the Deployment has not rolled out: replicas, updated, available, generation, \
         observed = {fields:?}"
    );
    // Stamped for GitLab's deploy board (on by default inside GitLab CI): the Deployment and
    // its pod template carry the project and environment slugs, and the pipeline.
    let stamps = kubectl_ok(&[
        "get",
        "deployment",
        "blog",
        "-n",
        &namespace,
        "-o",
        "jsonpath={.metadata.annotations.app\\.gitlab\\.com/env} \
         {.spec.template.metadata.annotations.app\\.gitlab\\.com/env} \
         {.spec.template.metadata.annotations.app\\.gitlab\\.com/app} \
         {.metadata.annotations.kstep\\.dev/pipeline-id}",
    ]);
    let stamps: Vec<&str> = stamps.split(' ').collect();
    assert_eq!(stamps[..2], ["production", "production"], "{stamps:?}");
    assert!(!stamps[2].is_empty() && !stamps[3].is_empty(), "{stamps:?}");
    let deploy_log = pipeline.log("deploy");
    assert!(deploy_log.contains("kstep deploy"), "{deploy_log}");
    // Production applied exactly the plan job's plan, as the ApplySet `blog` with a revision
    // to roll back to.
    assert!(
        deploy_log.contains("Plan plan.json matches:"),
        "{deploy_log}"
    );
    assert!(
        deploy_log.contains("Recorded revision 1 of ApplySet secrets/blog"),
        "{deploy_log}"
    );
    assert!(
        pipeline.log("plan").contains("kstep plan"),
        "{}",
        pipeline.log("plan")
    );
    let part_of = kubectl_ok(&[
        "get",
        "deployment",
        "blog",
        "-n",
        &namespace,
        "-o",
        "jsonpath={.metadata.labels.applyset\\.kubernetes\\.io/part-of}",
    ]);
    let set_id = set_id(&namespace, "blog");
    assert!(
        !set_id.is_empty() && part_of == set_id,
        "{part_of} / {set_id}"
    );
    // The reference workflow's client-side ownership was taken over, not fought with.
    assert!(
        deploy_log.contains("kubectl-client-side-apply"),
        "the deploy did not say it took the fields over:\n{deploy_log}"
    );
    let managers = kubectl_ok(&[
        "get",
        "deployment",
        "blog",
        "-n",
        &namespace,
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    assert!(
        !managers.contains("kubectl-client-side-apply"),
        "managers left: {managers}"
    );
    let deploy_report = dotenv_report(&project, "deploy", "kstep-deploy.env");
    assert_eq!(
        deploy_report.get("DEPLOYED_IMAGE"),
        Some(&image),
        "{deploy_report:?}"
    );
    assert_eq!(
        deploy_report.get("DEPLOYED_NAMESPACE"),
        Some(&namespace),
        "{deploy_report:?}"
    );
    // The environment's URL comes from the blog's Ingress (its host, TLS by Traefik's
    // certificate resolver) through the report: gitlab-ci-local expands `environment:url`
    // before the job runs, GitLab after, from this report.
    assert_eq!(
        deploy_report.get("DEPLOYED_URL").map(String::as_str),
        Some("https://blog.example.com"),
        "{deploy_report:?}"
    );
    assert!(
        pipeline.output.contains("environment: { name: production"),
        "the deploy job's environment:\n{}",
        pipeline.output
    );

    // Traefik: rendered from the example's values and rolled out.
    let traefik = kubectl_ok(&[
        "get",
        "deployment",
        "-n",
        &traefik_namespace,
        "-o",
        "jsonpath={range .items[*]}{.spec.template.spec.containers[0].image} \
         {.status.updatedReplicas} {.spec.replicas}{\"\\n\"}{end}",
    ]);
    let traefik: Vec<&str> = traefik.split_whitespace().collect();
    assert!(
        traefik.len() == 3 && traefik[0].contains("traefik:v3") && traefik[1] == traefik[2],
        "Traefik did not roll out: {traefik:?}"
    );
    if has_claim {
        let phase = kubectl_ok(&[
            "get",
            "pvc",
            "-n",
            &traefik_namespace,
            "-o",
            "jsonpath={.items[*].status.phase}",
        ]);
        assert_eq!(phase, "Bound", "Traefik's ACME volume");
    }

    // The next commit's image cannot be pulled: the production deploy fails (exit 3) and rolls
    // back to the last good revision, whose image runs again.
    let pipeline = run_pipeline(
        &project,
        &stubs,
        &[
            "--manual",
            "deploy",
            "--variable",
            &format!("KSTEP_IMAGE_REPOSITORY={REGISTRY_IMAGE}-does-not-exist"),
            "--variable",
            "KSTEP_TIMEOUT=60s",
            "--ignore-predefined-vars",
            "CI_REGISTRY_IMAGE,CI_REGISTRY_USER,CI_REGISTRY_PASSWORD",
        ],
    );
    pipeline.print_job_times();
    assert!(pipeline.failed("deploy"), "{}", pipeline.output);
    let log = pipeline.log("deploy");
    assert!(
        log.contains("rolled back to revision 1: applied and rolled out"),
        "{log}"
    );
    let running = kubectl_ok(&[
        "get",
        "deployment",
        "blog",
        "-n",
        &namespace,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(running, image, "the failed image is still deployed");
}

/// A Secret the review test adds to the blog's manifests: its value must be in no artifact.
const PLAN_SECRET: &str = "e2ePlanSecretValue-7c6b5a4d3e2f";

/// gitlab-ci-local's arguments for a pipeline of `source` (`merge_request_event`, `schedule`),
/// then `extra`.
fn source_args<'a>(source: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut args = vec![
        "--variable".to_owned(),
        format!("CI_PIPELINE_SOURCE={source}"),
        "--ignore-predefined-vars".to_owned(),
        "CI_PIPELINE_SOURCE,CI_REGISTRY_IMAGE,CI_REGISTRY_USER,CI_REGISTRY_PASSWORD".to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

fn namespace_exists(name: &str) -> bool {
    !kubectl_ok(&["get", "namespace", "--ignore-not-found", "-o", "name", name]).is_empty()
}

/// Waits (bounded) until the namespace `name` is gone: the namespace controller empties it
/// first.
fn namespace_gone(name: &str) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if !namespace_exists(name) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

#[test]
#[ignore = "needs a cluster and gitlab-ci-local (tests/cluster/up.sh; cd tests/e2e && npm ci)"]
fn merge_request_pipeline_plans_deploys_a_review_app_stops_and_sweeps_it() {
    let admin = fs::read_to_string(cluster::admin_kubeconfig()).unwrap();
    gitlab_ci_local();
    let work = Workdir::new("review");
    let namespace = format!("kstep-e2e-{}", work.suffix);
    let branch = format!("feature/e2e-{}", work.suffix);
    // CI_COMMIT_REF_SLUG: lowercase, runs of other characters as one `-`.
    let slug = branch.replace('/', "-");
    let set = format!("review-{slug}");
    let project = work.path.join("project");
    let _cleanup = Cleanup::default().object("namespace", &namespace);
    let (masked, decoded) = deploy_identity(&work, &namespace);

    // The example, unmodified, with one more manifest: a Secret, whose value no plan shows.
    copy_dir(&repo_root().join("ci-templates/examples"), &project);
    fs::write(
        project.join("k8s/e2e-secret.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: blog-e2e\nstringData:\n  \
             password: {PLAN_SECRET}\n"
        ),
    )
    .unwrap();
    make_project(&project);
    git(&project, &["checkout", "-q", "-b", &branch]);
    write_variables(
        &project,
        &serde_json::json!({
            "KUBECONFIG": masked,
            // An identity that may create namespaces, for the review apps' own ones.
            "REVIEW_KUBECONFIG": { "type": "file", "values": { "*": admin } },
            // Where the namespace-scoped identity deploys, and the review sets' home.
            "KSTEP_NAMESPACE": namespace,
            "CI_REGISTRY_IMAGE": REGISTRY_IMAGE,
            "CI_REGISTRY_USER": "gitlab-ci-token",
            "CI_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
        }),
    );
    let stubs = write_stubs(&work.path);
    let run = |source: &str, extra: &[&str]| {
        let args = source_args(source, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let pipeline = run_pipeline(&project, &stubs, &args);
        assert_eq!(
            pipeline.code, 0,
            "the {source} pipeline failed:\n{}",
            pipeline.output
        );
        pipeline.print_job_times();
        pipeline
    };
    let mut everything = String::new();

    // The merge request pipeline: image, plan of production, review app.
    let pipeline = run("merge_request_event", &[]);
    everything.push_str(&pipeline.everything());
    for job in ["publish", "image-ref", "build", "plan", "review"] {
        assert!(pipeline.passed(job), "{job}:\n{}", pipeline.output);
    }
    for job in ["deploy", "traefik", "review-stop", "review-gc"] {
        assert!(
            !pipeline.logs.contains_key(job),
            "{job} ran:\n{}",
            pipeline.output
        );
    }
    // The plan, as the merge request links it: Markdown and the plan file, no Secret value.
    let artifacts = project.join(".gitlab-ci-local/artifacts/plan");
    let plan_md = fs::read_to_string(artifacts.join("plan.md")).unwrap();
    let plan_json = fs::read_to_string(artifacts.join("plan.json")).unwrap();
    let plan: serde_json::Value = serde_json::from_str(&plan_json).unwrap();
    assert!(plan.get("kstep-plan").is_some(), "{plan_json}");
    assert!(plan_md.contains("blog"), "{plan_md}");
    assert!(plan_md.contains("blog-e2e"), "{plan_md}");
    let encoded = base64::engine::general_purpose::STANDARD.encode(PLAN_SECRET);
    for (what, text) in [("plan.md", &plan_md), ("plan.json", &plan_json)] {
        assert!(
            !text.contains(PLAN_SECRET) && !text.contains(&encoded),
            "{what} holds the Secret's value"
        );
    }
    // The review job's Code Quality and JUnit reports, as GitLab would collect them.
    let quality: serde_json::Value =
        serde_json::from_str(&job_report(&project, "review", "gl-code-quality.json")).unwrap();
    assert!(quality.is_array(), "{quality}");
    let junit = job_report(&project, "review", "kstep-junit.xml");
    for check in ["<testsuite", "<testcase", "apply", "rollout"] {
        assert!(
            junit.contains(check),
            "{check} missing from the JUnit report:\n{junit}"
        );
    }
    // The review app: its own namespace, its own set with every member, an expiry, a URL.
    let report = dotenv_report(&project, "review", "kstep-deploy.env");
    let review_ns = report
        .get("DEPLOYED_NAMESPACE")
        .expect("DEPLOYED_NAMESPACE")
        .clone();
    let _review_cleanup = Cleanup::default().object("namespace", &review_ns);
    let env_slug = review_ns
        .strip_prefix("blog-")
        .unwrap_or_else(|| panic!("review namespace {review_ns}"));
    assert!(env_slug.starts_with("review-"), "{review_ns}");
    assert_eq!(
        report.get("DEPLOYED_URL").map(String::as_str),
        Some(format!("https://{env_slug}.review.blog.example.com").as_str()),
        "{report:?}"
    );
    assert!(
        pipeline
            .output
            .contains(&format!("environment: {{ name: review/{slug}")),
        "{}",
        pipeline.output
    );
    let id = set_id(&review_ns, &set);
    assert!(id.starts_with("applyset-"), "{id}");
    let members = kubectl_ok(&[
        "get",
        "deployment,service,ingress,secret",
        "-n",
        &review_ns,
        "-l",
        &format!("applyset.kubernetes.io/part-of={id}"),
        "-o",
        "name",
    ]);
    for member in [
        "deployment.apps/blog",
        "service/blog",
        "ingress.networking.k8s.io/blog",
        "secret/blog-e2e",
    ] {
        assert!(
            members.contains(member),
            "{member} not in the set:\n{members}"
        );
    }
    let expires = kubectl_ok(&[
        "get",
        "secret",
        &format!("{set}-namespace"),
        "-n",
        &namespace,
        "-o",
        "jsonpath={.metadata.annotations.kstep\\.dev/expires-at}",
    ]);
    assert!(expires.ends_with('Z'), "{expires}");

    // The nightly sweep finds nothing expired and leaves the review app alone.
    let pipeline = run("schedule", &[]);
    everything.push_str(&pipeline.everything());
    assert!(pipeline.passed("review-gc"), "{}", pipeline.output);
    for job in ["publish", "image-ref", "plan", "review", "deploy"] {
        assert!(!pipeline.passed(job), "{job} ran:\n{}", pipeline.output);
    }
    assert!(
        pipeline.log("review-gc").contains("0 expired ApplySet(s)"),
        "{}",
        pipeline.log("review-gc")
    );
    assert!(namespace_exists(&review_ns));

    // The stop job (the merge request was merged): set and namespace gone; once more, a no-op.
    let pipeline = run("merge_request_event", &["review-stop"]);
    everything.push_str(&pipeline.everything());
    assert!(pipeline.passed("review-stop"), "{}", pipeline.output);
    assert!(namespace_gone(&review_ns), "{review_ns} is still there");
    assert!(!exists(&namespace, "secret", &format!("{set}-namespace")));
    let pipeline = run("merge_request_event", &["review-stop"]);
    everything.push_str(&pipeline.everything());
    assert!(
        pipeline
            .log("review-stop")
            .contains("does not exist: nothing to delete"),
        "{}",
        pipeline.log("review-stop")
    );

    // A review app whose stop job never ran: the sweep deletes it once its time is over.
    let pipeline = run(
        "merge_request_event",
        &["--variable", "KSTEP_REVIEW_TTL=1s"],
    );
    everything.push_str(&pipeline.everything());
    assert!(pipeline.passed("review"), "{}", pipeline.output);
    assert!(namespace_exists(&review_ns));
    std::thread::sleep(Duration::from_secs(2));
    let pipeline = run("schedule", &[]);
    everything.push_str(&pipeline.everything());
    let log = pipeline.log("review-gc");
    assert!(
        log.contains(&format!("secrets/{set}-namespace in namespace {namespace}")),
        "{log}"
    );
    assert!(namespace_gone(&review_ns), "{review_ns} is still there");
    assert!(!exists(&namespace, "secret", &format!("{set}-namespace")));

    assert_no_secret(
        &everything,
        &[
            ("the masked KUBECONFIG value", masked.as_str()),
            ("the ServiceAccount token", yaml_field(&decoded, "token")),
            (
                "the admin client key",
                yaml_field(&admin, "client-key-data"),
            ),
            ("the Secret value", PLAN_SECRET),
            ("the registry password", REGISTRY_PASSWORD),
        ],
    );
}

#[test]
#[ignore = "needs a cluster and gitlab-ci-local (tests/cluster/up.sh; cd tests/e2e && npm ci)"]
fn regions_pipeline_deploys_each_cell_with_its_own_credentials() {
    gitlab_ci_local();
    let work = Workdir::new("regions");
    let base = format!("kstep-e2e-{}", work.suffix);
    let regions = ["eu", "us"];
    let mut cleanup = Cleanup::default();
    // One namespace-scoped identity per "cluster", each stored for its environment only.
    let mut values = serde_json::Map::new();
    let mut secrets = Vec::new();
    for region in regions {
        let namespace = format!("{base}-{region}");
        cleanup = cleanup.object("namespace", &namespace);
        let (masked, decoded) = deploy_identity(&work, &namespace);
        values.insert(format!("production/{region}"), masked.clone().into());
        secrets.push((masked, yaml_field(&decoded, "token").to_owned()));
    }
    let _cleanup = cleanup;
    let project = work.path.join("project");
    copy_dir(&repo_root().join("ci-templates/examples"), &project);
    make_project(&project);
    write_variables(
        &project,
        &serde_json::json!({
            "KUBECONFIG": { "type": "variable", "values": values },
            "CI_REGISTRY_IMAGE": REGISTRY_IMAGE,
        }),
    );
    let stubs = write_stubs(&work.path);
    let pipeline = run_pipeline(
        &project,
        &stubs,
        &[
            "--file",
            "regions.gitlab-ci.yml",
            "--ignore-predefined-vars",
            "CI_REGISTRY_IMAGE",
        ],
    );
    assert_eq!(pipeline.code, 0, "{}", pipeline.output);
    pipeline.print_job_times();
    let image = dotenv_report(&project, "image-ref", "kstep-image.env")["IMAGE"].clone();
    for region in regions {
        let namespace = format!("{base}-{region}");
        assert!(
            pipeline
                .output
                .contains(&format!("environment: {{ name: production/{region}")),
            "{}",
            pipeline.output
        );
        // Each cell deployed with its own environment's credentials, into its own set.
        let deployed = kubectl_ok(&[
            "get",
            "deployment",
            "blog",
            "-n",
            &namespace,
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image} \
             {.metadata.labels.applyset\\.kubernetes\\.io/part-of}",
        ]);
        let id = set_id(&namespace, &format!("group-project-{region}"));
        assert_eq!(deployed, format!("{image} {id}"), "{region}");
    }
    let secrets: Vec<(&str, &str)> = secrets
        .iter()
        .flat_map(|(m, t)| [("a masked KUBECONFIG", m.as_str()), ("a token", t.as_str())])
        .collect();
    assert_no_secret(&pipeline.everything(), &secrets);
}

/// What an admin does once before the first Traefik job (the values file says so): the
/// namespace with the dashboard's users Secret. And, because this cluster has no volume
/// provisioner, a PersistentVolume for Traefik's ACME claim, in a StorageClass without a
/// provisioner that binds when the pod is scheduled (as for local volumes), so the scheduler
/// never sees the pod before its claim can be bound. Everything derives from what
/// `kstep traefik render` makes of the values. Returns whether there is a claim.
fn prepare_traefik_namespace(project: &Path, namespace: &str, work: &Workdir) -> bool {
    let values = project.join("e2e-traefik-values.yaml");
    let values = values.to_string_lossy();
    let run = kstep(
        &["traefik", "render", "--values", &values, "--output", "json"],
        &[],
        None,
    );
    assert_eq!(run.code, 0, "{run:?}");
    fs::write(work.path.join("traefik-rendered.json"), &run.stdout).unwrap();
    let list: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let items = list["items"].as_array().expect("a v1/List");
    kubectl_ok(&["create", "namespace", namespace]);
    let secret = items
        .iter()
        .flat_map(|d| {
            d["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .find_map(|v| v["secret"]["secretName"].as_str());
    if let Some(secret) = secret {
        // An htpasswd line; its content does not matter to a kwok pod.
        let users = "users=admin:$2y$05$e2e.e2e.e2e.e2e.e2e.e2OQ5jRyH0C2mL3Dq7yH1YpV8tJz6r1bS";
        kubectl_ok(&[
            "-n",
            namespace,
            "create",
            "secret",
            "generic",
            secret,
            "--from-literal",
            users,
        ]);
    }
    let Some(pvc) = items.iter().find(|d| d["kind"] == "PersistentVolumeClaim") else {
        return false;
    };
    let class = pvc["spec"]["storageClassName"]
        .as_str()
        .expect("the e2e values name a storage class");
    let storage = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": { "name": class },
                "provisioner": "kubernetes.io/no-provisioner",
                "volumeBindingMode": "WaitForFirstConsumer",
            },
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": { "name": format!("{namespace}-acme") },
                "spec": {
                    "capacity": { "storage": pvc["spec"]["resources"]["requests"]["storage"] },
                    "accessModes": pvc["spec"]["accessModes"],
                    "storageClassName": class,
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": { "path": "/tmp/kstep-e2e-acme" },
                    "claimRef": { "namespace": namespace, "name": pvc["metadata"]["name"] },
                },
            },
        ],
    });
    let file = work.path.join("traefik-storage.json");
    fs::write(&file, storage.to_string()).unwrap();
    kubectl_ok(&["apply", "-f", &file.to_string_lossy()]);
    true
}

/// The example's Traefik values with this test's cluster-scoped names, the cluster being shared:
/// `namespace:` and `ingressClass:` (made non-default) are replaced or added at the top level,
/// and `persistence:`'s `storageClass:` is replaced (OVH's `cinder-classic` does not exist here).
fn e2e_traefik_values(
    example: &str,
    namespace: &str,
    ingress_class: &str,
    storage_class: &str,
) -> String {
    let mut out = String::new();
    let mut block = String::new();
    for line in example.lines() {
        if !line.starts_with([' ', '\t', '#']) && !line.trim().is_empty() {
            block = line.split(':').next().unwrap_or_default().to_owned();
        }
        if block == "namespace" || block == "ingressClass" {
            continue;
        }
        if block == "persistence" && line.trim_start().starts_with("storageClass:") {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!("{indent}storageClass: {storage_class}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!(
        "namespace: {namespace}\ningressClass:\n  name: {ingress_class}\n  default: false\n"
    ));
    out
}

#[test]
#[ignore = "needs gitlab-ci-local (cd tests/e2e && npm ci)"]
fn broken_dotenv_report_fails_the_image_job_as_gitlab_would() {
    gitlab_ci_local();
    let work = Workdir::new("broken-dotenv");
    let project = work.path.join("project");
    fs::create_dir_all(&project).unwrap();
    // Two ways hand-written jobs break the report. gitlab-ci-local's own dotenv reader would
    // accept both (it ignores comments and `export`); GitLab refuses the whole upload.
    fs::write(
        project.join(".gitlab-ci.yml"),
        format!(
            "include:\n  - project: {INCLUDE_PROJECT}\n    ref: {INCLUDE_REF}\n    file: \
             /ci-templates/kstep.gitlab-ci.yml\n\
             stages: [image, deploy]\n\
             export-before:\n  stage: image\n  extends: .kstep-image-ref\n  script:\n    \
             - echo \"export BUILD_DATE=2026-01-01\" >> kstep-image.env\n    \
             - !reference [.kstep-image-ref, script]\n\
             comment-after:\n  stage: image\n  extends: .kstep-image-ref\n  script:\n    \
             - !reference [.kstep-image-ref, script]\n    \
             - echo \"# pushed by $CI_JOB_NAME\" >> kstep-image.env\n    \
             - kstep dotenv check kstep-image.env\n\
             deploy:\n  stage: deploy\n  needs: [export-before, comment-after]\n  script:\n    \
             - echo \"deploying $IMAGE\"\n"
        ),
    )
    .unwrap();
    make_project(&project);
    write_variables(
        &project,
        &serde_json::json!({ "CI_REGISTRY_IMAGE": REGISTRY_IMAGE }),
    );
    let stubs = write_stubs(&work.path);
    let pipeline = run_pipeline(
        &project,
        &stubs,
        &["--ignore-predefined-vars", "CI_REGISTRY_IMAGE"],
    );
    assert_ne!(
        pipeline.code, 0,
        "the pipeline passed:\n{}",
        pipeline.output
    );
    for job in ["export-before", "comment-after"] {
        assert!(
            pipeline.failed(job),
            "{job} did not fail:\n{}",
            pipeline.output
        );
    }
    assert!(
        !pipeline.logs.contains_key("deploy") && !pipeline.output.contains("deploying"),
        "the job that needs the report ran:\n{}",
        pipeline.output
    );
    // Each failure names the file, the line and GitLab's rule.
    let log = pipeline.log("export-before");
    assert!(log.contains("kstep-image.env:1:"), "{log}");
    assert!(log.contains("export"), "{log}");
    assert!(
        log.contains("GitLab would already refuse this file"),
        "{log}"
    );
    let log = pipeline.log("comment-after");
    assert!(log.contains("kstep-image.env:2:"), "{log}");
    assert!(
        log.contains("GitLab will refuse this dotenv report"),
        "{log}"
    );
}

/// What GitLab's docker executor passes as the container command: a shell-detection script
/// (gitlab-runner `shells/bash.go`, `BashDetectShellScript`); the job script follows on stdin.
const DOCKER_EXECUTOR_DETECT_SHELL: &str = "if [ -x /usr/local/bin/bash ]; then\n\texec \
     /usr/local/bin/bash \nelif [ -x /usr/bin/bash ]; then\n\texec /usr/bin/bash \nelif [ -x \
     /bin/bash ]; then\n\texec /bin/bash \nelif [ -x /usr/local/bin/sh ]; then\n\texec \
     /usr/local/bin/sh \nelif [ -x /usr/bin/sh ]; then\n\texec /usr/bin/sh \nelif [ -x /bin/sh \
     ]; then\n\texec /bin/sh \nelif [ -x /busybox/sh ]; then\n\texec /busybox/sh \nelse\n\techo \
     shell not found\n\texit 1\nfi\n\n";

#[test]
fn runner_image_entrypoint_runs_a_gitlab_docker_executor_job() {
    // The image's ENTRYPOINT is kstep with KSTEP_ENTRYPOINT=1; GitLab starts the container with
    // `sh -c <detect script>` and writes the job script to its stdin, without `entrypoint: [""]`.
    // In the image kstep is /usr/local/bin/kstep; here its directory goes first on PATH.
    let path = std::env::join_paths(
        std::iter::once(Path::new(kstep_bin()).parent().unwrap().to_path_buf()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ),
    )
    .unwrap();
    let path = path.to_string_lossy();
    let job = b"set -e\nkstep version | head -n 1\necho job-done\nexit 3\n";
    let run = kstep(
        &["sh", "-c", DOCKER_EXECUTOR_DETECT_SHELL],
        &[("KSTEP_ENTRYPOINT", "1"), ("PATH", &path)],
        Some(job),
    );
    assert_eq!(
        run.code, 3,
        "the job's exit code must reach the runner: {run:?}"
    );
    assert!(run.stdout.starts_with("kstep "), "{run:?}");
    assert!(run.stdout.ends_with("job-done\n"), "{run:?}");
    // `docker run IMAGE deploy …` style: anything else is a kstep command.
    let run = kstep(
        &["dotenv", "check", "/nonexistent.env"],
        &[("KSTEP_ENTRYPOINT", "1")],
        None,
    );
    assert_eq!(run.code, 2, "{run:?}");
}

#[test]
fn runner_image_compile_cache_is_read_only_for_the_job_user() {
    // An image built FROM kstep's bakes its custom steps as root (`RUN kstep warm
    // steps/*.wasm`) into the 0755 cache directory of the Dockerfile and runs jobs as an
    // unprivileged user: that user must hit every entry without being able to write.
    #[cfg(unix)]
    {
        // Under the system temp dir, not the cargo target dir: the job user must be able to
        // reach the cache and the binary, and a target dir under /root (0700) is out of reach.
        let work = Workdir::under(&std::env::temp_dir(), "image-cache");
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout == b"0\n");
        let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
        if !is_root || !setpriv {
            eprintln!("skipped: needs root and setpriv (util-linux) to act as another user");
            return;
        }
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        fs::set_permissions(&work.path, fs::Permissions::from_mode(0o755)).unwrap();
        let step = work.path.join("hostile.wasm");
        fs::copy(fixture("kstep-fixture-step-hostile"), &step).unwrap();
        fs::set_permissions(&step, fs::Permissions::from_mode(0o644)).unwrap();
        let step_arg = step.to_string_lossy().into_owned();
        // The entry is what `kstep warm` writes; it is taken from the test run's shared cache
        // (warmed here if needed) so this test compiles nothing of its own.
        let warm = kstep(&["warm", &step_arg], &[], None);
        assert_eq!(warm.code, 0, "{warm:?}");
        let cache = work.path.join("cache");
        fs::DirBuilder::new().mode(0o755).create(&cache).unwrap();
        for entry in fs::read_dir(cache_dir()).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name().to_string_lossy().ends_with(".cwasm") {
                let target = cache.join(entry.file_name());
                fs::copy(entry.path(), &target).unwrap();
                fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
        let cache_arg = cache.to_string_lossy().into_owned();
        let binary = work.path.join("kstep");
        fs::copy(kstep_bin(), &binary).unwrap();
        fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).unwrap();
        let as_nobody = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&binary)
            .args(["warm", &step_arg])
            .env("KSTEP_CACHE_DIR", &cache_arg)
            .env("HOME", "/nonexistent")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&as_nobody.stdout);
        assert!(as_nobody.status.success(), "{as_nobody:?}");
        assert!(
            stdout.contains(&format!("{step_arg} already cached")),
            "the job user missed the baked cache:\n{stdout}"
        );
        // The built-in steps never come from the cache.
        assert!(
            stdout.contains("manifest    precompiled into the binary"),
            "{stdout}"
        );
    }
}

#[test]
fn readme_pipeline_is_the_example_and_every_template_is_run() {
    // The pasteable pipeline of ci-templates/README.md is the example the e2e tests run.
    let root = repo_root().join("ci-templates");
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let example = fs::read_to_string(root.join("examples/.gitlab-ci.yml")).unwrap();
    assert!(
        readme.contains(&format!("```yaml\n{example}```")),
        "ci-templates/README.md no longer shows examples/.gitlab-ci.yml verbatim"
    );
    // The examples extend only hidden jobs the template defines, and between them (directly
    // or through another template) every one of them: the e2e tests run both files.
    let template: serde_json::Map<String, serde_json::Value> =
        serde_saphyr::from_str(&fs::read_to_string(root.join("kstep.gitlab-ci.yml")).unwrap())
            .unwrap();
    let mut used = std::collections::BTreeSet::new();
    for file in ["examples/.gitlab-ci.yml", "examples/regions.gitlab-ci.yml"] {
        let jobs: serde_json::Map<String, serde_json::Value> =
            serde_saphyr::from_str(&fs::read_to_string(root.join(file)).unwrap()).unwrap();
        for (name, job) in &jobs {
            let mut parent = job.get("extends").and_then(|e| e.as_str());
            while let Some(p) = parent {
                let hidden = template
                    .get(p)
                    .unwrap_or_else(|| panic!("{file}: {name} extends {p}, not a template"));
                used.insert(p.to_owned());
                parent = hidden.get("extends").and_then(|e| e.as_str());
            }
        }
    }
    let unused: Vec<&String> = template.keys().filter(|k| !used.contains(*k)).collect();
    assert!(
        unused.is_empty(),
        "templates no example (so no e2e test) runs: {unused:?}"
    );
}

/// A step published by one project's pipeline — pushed to the registry with `kstep step push`,
/// signed with the real cosign — runs in another project's pipeline by the digest its
/// `kstep.lock` pins, its signature verified; when the publisher moves the tag, the consumer's
/// pipeline (locked, as inside CI by default) refuses to run it. The registry password shows in
/// no job log.
#[test]
#[ignore = "needs the test registry and gitlab-ci-local (tests/registry/up.sh; cd tests/e2e && npm ci)"]
fn a_step_published_by_one_pipeline_runs_verified_in_another() {
    gitlab_ci_local();
    let reg = crate::registry::registry();
    let work = Workdir::new("steps");
    let repository = format!("{}/platform-{}/steps/deny-latest", reg.host, work.suffix);
    // cosign is on the jobs' PATH, as in a publishing job's image.
    let tools = work.path.join("tools");
    fs::create_dir_all(&tools).unwrap();
    std::os::unix::fs::symlink(&reg.cosign, tools.join("cosign")).unwrap();
    // The project's CI/CD variables: GitLab's own registry variables, kstep's CA for this
    // registry, and cosign's (its key password, the CA, no network beyond the registry).
    let variables = serde_json::json!({
        "CI_REGISTRY": reg.host,
        "CI_REGISTRY_USER": reg.user,
        "CI_REGISTRY_PASSWORD": reg.password,
        "KSTEP_REGISTRY_CA_FILE": reg.ca,
        "SSL_CERT_FILE": reg.ca,
        "COSIGN_PASSWORD": "",
        "STEP_REPOSITORY": repository,
    });

    // The platform team's project: the step and cosign's key pair.
    let publisher = work.path.join("publisher");
    fs::create_dir_all(&publisher).unwrap();
    let keys = Command::new(&reg.cosign)
        .args(["generate-key-pair", "--output-key-prefix", "cosign"])
        .current_dir(&publisher)
        .env("COSIGN_PASSWORD", "")
        .output()
        .unwrap();
    assert!(keys.status.success(), "{keys:?}");
    let publish = |step_crate: &str| {
        fs::copy(fixture(step_crate), publisher.join("step.wasm")).unwrap();
        fs::write(
            publisher.join(".gitlab-ci.yml"),
            "publish-step:\n  variables:\n    DOCKER_CONFIG: $CI_PROJECT_DIR/.docker\n  script:\n    \
             - kstep step push step.wasm \"oci://${STEP_REPOSITORY}:1.0\" > pushed.txt\n    \
             - echo \"$CI_REGISTRY_PASSWORD\" | cosign login \"$CI_REGISTRY\" -u \"$CI_REGISTRY_USER\" --password-stdin\n    \
             - cosign sign --yes --key cosign.key --tlog-upload=false --use-signing-config=false \"$(sed 's|^oci://||' pushed.txt)\"\n",
        )
        .unwrap();
        if !publisher.join(".git").exists() {
            make_project(&publisher);
        } else {
            git(&publisher, &["add", "-A"]);
            git(&publisher, &["commit", "-q", "-m", "another step"]);
        }
        write_variables(&publisher, &variables);
        let pipeline = run_pipeline(&publisher, &tools, &[]);
        assert!(
            pipeline.passed("publish-step"),
            "{}\n{}",
            pipeline.output,
            pipeline.log("publish-step")
        );
        pipeline
    };
    let first = publish("kstep-example-deny-latest");

    // A product team's project uses it by tag; its kstep.lock, written by `kstep step lock`
    // on a developer's machine and committed, pins the digest.
    let consumer = work.path.join("consumer");
    fs::create_dir_all(consumer.join("k8s")).unwrap();
    fs::copy(publisher.join("cosign.pub"), consumer.join("platform.pub")).unwrap();
    fs::write(
        consumer.join("k8s/web.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    \
         matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    \
         spec:\n      containers:\n        - name: web\n          image: registry.example/web:1.0\n          \
         resources:\n            limits: {memory: 64Mi, cpu: 100m}\n",
    )
    .unwrap();
    fs::write(
        consumer.join("kstep.yaml"),
        format!(
            "verify: {{key: platform.pub}}\nsteps:\n  - render: k8s/\n  - wasm: oci://{repository}:1.0\n"
        ),
    )
    .unwrap();
    fs::write(
        consumer.join(".gitlab-ci.yml"),
        "check:\n  script:\n    - kstep run --dry-run\n",
    )
    .unwrap();
    let pipeline_file = consumer.join("kstep.yaml");
    let lock = kstep(
        &["step", "lock", pipeline_file.to_str().unwrap()],
        &[
            ("KSTEP_REGISTRY_CA_FILE", &reg.ca),
            ("CI_REGISTRY", &reg.host),
            ("CI_REGISTRY_USER", &reg.user),
            ("CI_REGISTRY_PASSWORD", &reg.password),
        ],
        None,
    );
    lock.ok();
    make_project(&consumer);
    write_variables(&consumer, &variables);
    let pipeline = run_pipeline(&consumer, &tools, &[]);
    let log = pipeline.log("check");
    assert!(pipeline.passed("check"), "{}\n{log}", pipeline.output);
    assert!(log.contains("signature verified"), "{log}");
    assert!(log.contains("(from the lock, tag checked"), "{log}");
    assert!(
        log.contains("[deny-latest] checked 1 container(s)"),
        "{log}"
    );

    // The publisher moves the tag to another step: the locked consumer refuses it.
    let second = publish("kstep-example-ci-labels");
    let pipeline = run_pipeline(&consumer, &tools, &[]);
    let log = pipeline.log("check");
    assert!(pipeline.failed("check"), "{}\n{log}", pipeline.output);
    assert!(log.contains("kstep.lock"), "{log}");
    assert!(!log.contains("[deny-latest] checked"), "{log}");

    let password = reg.password.as_str();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", reg.user));
    for (what, text) in [
        ("publisher, first", first.everything()),
        ("publisher, second", second.everything()),
        ("consumer", pipeline.everything()),
    ] {
        assert!(
            !text.contains(password),
            "{what}: the registry password shows"
        );
        assert!(
            !text.contains(&basic),
            "{what}: the registry credentials show"
        );
    }
}
