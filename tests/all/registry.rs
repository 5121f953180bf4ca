//! Steps in a real OCI registry: the CNCF distribution registry that `tests/registry/up.sh`
//! starts on 127.0.0.1 with TLS and htpasswd authentication, and signatures made by the real
//! `cosign` built from its Go module (`tests/registry/build.sh`).
//!
//! The tests are `#[ignore = "needs the test registry …"]` and read `target/test-registry/env`
//! (`KSTEP_TEST_REGISTRY`, its user, password file, CA and cosign). Every repository is unique
//! to its test, so they run in parallel. Every kstep run is searched for the registry password
//! and its encodings, and so are the files kstep wrote.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::support::Text::{Has, Lacks};
use crate::support::{
    Run, TempDir, assert_no_secret, fixture, kstep_command, repo_root, secret_forms,
};

const IGNORE: &str =
    "needs the test registry (tests/registry/up.sh, then `. target/test-registry/env`)";

/// The test registry and the tools around it (the end-to-end tests use it too).
pub struct Registry {
    pub host: String,
    pub user: String,
    pub password: String,
    pub ca: String,
    pub cosign: String,
}

pub fn registry() -> Registry {
    let var =
        |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {IGNORE}"));
    Registry {
        host: var("KSTEP_TEST_REGISTRY"),
        user: var("KSTEP_TEST_REGISTRY_USER"),
        password: fs::read_to_string(var("KSTEP_TEST_REGISTRY_PASSWORD_FILE"))
            .unwrap()
            .trim()
            .to_owned(),
        ca: var("KSTEP_TEST_REGISTRY_CA"),
        cosign: var("KSTEP_TEST_COSIGN"),
    }
}

/// A scratch project: its own cache of pulled steps, the registry's credentials as GitLab
/// gives them (`DOCKER_AUTH_CONFIG`) and its CA.
struct Project {
    dir: TempDir,
    reg: Registry,
    docker_auth: String,
}

impl Project {
    fn new(test: &str) -> Self {
        let reg = registry();
        let dir = TempDir::new(&format!("registry-{test}"));
        let docker_auth = docker_config(&reg.host, &reg.user, &reg.password);
        Self {
            dir,
            reg,
            docker_auth,
        }
    }

    /// A repository of this registry no other test uses, ending in `/name` (the step's name).
    fn repo(&self, name: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        format!(
            "oci://{}/kstep-tests/{}-{}/{name}",
            self.reg.host,
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn secrets(&self) -> Vec<String> {
        let basic = format!("{}:{}", self.reg.user, self.reg.password);
        secret_forms(&[self.reg.password.clone(), basic, self.docker_auth.clone()])
    }

    /// `kstep args…` in `dir` (default: the project) with only the registry's settings in its
    /// environment (and `envs`); asserts that the password shows nowhere.
    fn kstep_in(&self, dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let run: Run = kstep_command(args)
            .current_dir(dir)
            .env_clear()
            .env("KSTEP_CACHE_DIR", self.dir.join("cache"))
            .env("KSTEP_REGISTRY_CA_FILE", &self.reg.ca)
            .env("DOCKER_AUTH_CONFIG", &self.docker_auth)
            .envs(envs.iter().copied())
            .output()
            .unwrap()
            .into();
        run.hides(&self.secrets());
        run
    }

    fn kstep(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        self.kstep_in(&self.dir, args, envs)
    }

    /// Pushes the example step `krate` to `reference`; returns `oci://…@sha256:…`.
    fn push(&self, krate: &str, reference: &str) -> String {
        let component = fixture(krate);
        let run = self.kstep(
            &["step", "push", component.to_str().unwrap(), reference],
            &[],
        );
        run.ok();
        run.stdout.trim().to_owned()
    }

    /// Runs the real cosign with the registry's credentials (a docker config of its own) and
    /// CA; nothing leaves 127.0.0.1 (no transparency log, no signing config from the network).
    fn cosign(&self, args: &[&str]) -> std::process::Output {
        let docker = self.dir.join("docker");
        fs::create_dir_all(&docker).unwrap();
        fs::write(docker.join("config.json"), &self.docker_auth).unwrap();
        let out = Command::new(&self.reg.cosign)
            .args(args)
            .current_dir(&self.dir)
            .env_clear()
            .env("HOME", self.dir.join("home"))
            .env("DOCKER_CONFIG", &docker)
            .env("SSL_CERT_FILE", &self.reg.ca)
            .env("COSIGN_PASSWORD", "")
            .env("NO_PROXY", "127.0.0.1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cosign {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `cosign generate-key-pair` in `name/`: returns the public key's path.
    fn key_pair(&self, name: &str) -> String {
        let dir = self.dir.join(name);
        fs::create_dir_all(&dir).unwrap();
        self.cosign(&[
            "generate-key-pair",
            "--output-key-prefix",
            &format!("{name}/cosign"),
        ]);
        dir.join("cosign.pub").to_str().unwrap().to_owned()
    }

    /// Signs `pinned` (`oci://…@sha256:…`) with the key pair in `name/`, the way a publishing
    /// pipeline does offline: `cosign sign --key … --tlog-upload=false --use-signing-config=false`.
    fn sign(&self, name: &str, pinned: &str, extra: &[&str]) {
        let key = format!("{name}/cosign.key");
        let image = pinned.strip_prefix("oci://").unwrap();
        let mut args = vec![
            "sign",
            "--yes",
            "--key",
            &key,
            "--tlog-upload=false",
            "--use-signing-config=false",
        ];
        args.extend_from_slice(extra);
        args.push(image);
        self.cosign(&args);
    }

    /// GET on the registry as the test user: (headers, body).
    fn curl(&self, path: &str, accept: &str) -> (String, Vec<u8>) {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--fail",
                "--noproxy",
                "*",
                "-D",
                "-",
                "--cacert",
                &self.reg.ca,
            ])
            .args(["-H", &format!("Accept: {accept}")])
            .args(["-u", &format!("{}:{}", self.reg.user, self.reg.password)])
            .arg(format!("https://{}{path}", self.reg.host))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = out.stdout;
        let split = text
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("headers");
        (
            String::from_utf8_lossy(&text[..split]).to_lowercase(),
            text[split + 4..].to_vec(),
        )
    }

    /// Every file under the project, for the leak search.
    fn assert_files_hide_secrets(&self) {
        fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_dir() {
                    walk(&entry.path(), out);
                } else {
                    out.push(entry.path());
                }
            }
        }
        let mut files = Vec::new();
        walk(&self.dir, &mut files);
        // The docker configs the tests write (for cosign, for `docker login`'s file) hold the
        // credentials on purpose.
        let on_purpose = [self.dir.join("docker"), self.dir.join("home/.docker")];
        for file in files
            .iter()
            .filter(|f| !on_purpose.iter().any(|d| f.starts_with(d)))
        {
            let bytes = fs::read(file).unwrap();
            assert_no_secret(
                &file.display().to_string(),
                &String::from_utf8_lossy(&bytes),
                &self.secrets(),
            );
        }
    }
}

/// A docker config JSON as `docker login` (and GitLab's DOCKER_AUTH_CONFIG) write it.
fn docker_config(host: &str, user: &str, password: &str) -> String {
    let auth = STANDARD.encode(format!("{user}:{password}"));
    format!(r#"{{"auths": {{"{host}": {{"auth": "{auth}"}}}}}}"#)
}

fn sha256_hex(bytes: &[u8]) -> String {
    kstep::oci::digest_of(bytes)
        .strip_prefix("sha256:")
        .unwrap()
        .to_owned()
}

/// A project whose pipeline runs `step` on a Deployment with image `image`.
fn write_pipeline(dir: &Path, step: &str, extra: &str, image: &str) {
    fs::create_dir_all(dir.join("k8s")).unwrap();
    fs::write(
        dir.join("k8s/web.yaml"),
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    \
             matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    \
             spec:\n      containers:\n        - name: web\n          image: {image}\n          \
             resources:\n            limits: {{memory: 64Mi, cpu: 100m}}\n"
        ),
    )
    .unwrap();
    fs::write(
        dir.join("kstep.yaml"),
        format!("{extra}steps:\n  - render: k8s/\n  - wasm: {step}\n  - apply:\n"),
    )
    .unwrap();
}

#[test]
#[ignore = "needs the test registry (tests/registry/up.sh)"]
fn push_and_pull_round_trip_in_the_cncf_wasm_layout() {
    let p = Project::new("round-trip");
    let reference = format!("{}:1.0", p.repo("deny-latest"));
    let pinned = p.push("kstep-example-deny-latest", &reference);
    let component = fs::read(fixture("kstep-example-deny-latest")).unwrap();
    assert!(pinned.contains("@sha256:"), "{pinned}");

    // The registry serves the manifest kstep pushed, in the layout wkg and oras write.
    let repo = reference
        .strip_prefix(&format!("oci://{}/", p.reg.host))
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let (headers, body) = p.curl(
        &format!("/v2/{repo}/manifests/1.0"),
        "application/vnd.oci.image.manifest.v1+json",
    );
    let digest = pinned.split('@').nth(1).unwrap();
    assert_eq!(format!("sha256:{}", sha256_hex(&body)), digest);
    assert!(
        headers.contains(&format!("docker-content-digest: {digest}")),
        "{headers}"
    );
    assert!(
        headers.contains("content-type: application/vnd.oci.image.manifest.v1+json"),
        "{headers}"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    assert_eq!(
        layers[0]["digest"],
        format!("sha256:{}", sha256_hex(&component))
    );
    assert_eq!(layers[0]["size"], component.len());
    let (_, config) = p.curl(
        &format!(
            "/v2/{repo}/blobs/{}",
            manifest["config"]["digest"].as_str().unwrap()
        ),
        "*/*",
    );
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["architecture"], "wasm");

    // Pushing the same bytes again gives the same digest (the layout has no timestamp).
    assert_eq!(p.push("kstep-example-deny-latest", &reference), pinned);

    // Pulled by tag and by digest: byte-identical.
    for (source, out) in [(&reference, "by-tag.wasm"), (&pinned, "by-digest.wasm")] {
        let run = p.kstep(&["step", "pull", source, "-o", out], &[]);
        run.ok();
        assert_eq!(run.stdout.trim(), pinned);
        assert_eq!(fs::read(p.dir.join(out)).unwrap(), component);
    }

    // A core module or a missing tag is refused before anything is sent.
    let core = p.dir.write("core.wasm", b"\0asm\x01\0\0\0");
    p.kstep(&["step", "push", &core, &reference], &[])
        .fails_with(2)
        .stderr(Has("not a WebAssembly component"));
    p.kstep(&["step", "push", &core, &p.repo("x")], &[])
        .fails_with(2)
        .stderr(Has("name a tag"));
    // A tag that does not exist.
    p.kstep(&["step", "pull", &format!("{}:nope", p.repo("x"))], &[])
        .fails_with(1)
        .stderr(Has("resolving the tag"));
    p.assert_files_hide_secrets();
}

#[test]
#[ignore = "needs the test registry (tests/registry/up.sh)"]
fn bad_credentials_are_a_clear_error_with_every_password_masked() {
    let p = Project::new("bad-credentials");
    let reference = format!("{}:1.0", p.repo("deny-latest"));
    let component = fixture("kstep-example-deny-latest");
    let component = component.to_str().unwrap();
    let wrong_password = "Wr0ng-registry-Passw0rd-4711";
    let wrong = docker_config(&p.reg.host, &p.reg.user, wrong_password);
    let mut secrets = p.secrets();
    secrets.extend(secret_forms(&[wrong_password, &wrong]));

    let run = p.kstep(
        &["step", "push", component, &reference],
        &[("DOCKER_AUTH_CONFIG", &wrong)],
    );
    run.fails_with(1)
        .stderr(Has("the registry refused the credentials"))
        .hides(&secrets);

    // GitLab's own registry variables, wrong password.
    let run = p.kstep(
        &["step", "push", component, &reference],
        &[
            ("DOCKER_AUTH_CONFIG", ""),
            ("CI_REGISTRY", &p.reg.host),
            ("CI_REGISTRY_USER", &p.reg.user),
            ("CI_REGISTRY_PASSWORD", wrong_password),
        ],
    );
    run.fails_with(1)
        .stderr(Has("the registry refused the credentials"))
        .hides(&secrets);

    // Right ones through CI_REGISTRY_*: works.
    p.kstep(
        &["step", "push", component, &reference],
        &[
            ("DOCKER_AUTH_CONFIG", ""),
            ("CI_REGISTRY", &p.reg.host),
            ("CI_REGISTRY_USER", &p.reg.user),
            ("CI_REGISTRY_PASSWORD", &p.reg.password),
        ],
    )
    .ok();

    // `docker login`'s file: ~/.docker/config.json, or $DOCKER_CONFIG/config.json.
    let home = p.dir.join("home");
    fs::create_dir_all(home.join(".docker")).unwrap();
    fs::write(home.join(".docker/config.json"), &p.docker_auth).unwrap();
    p.kstep(
        &["step", "pull", &reference, "-o", "from-home.wasm"],
        &[("DOCKER_AUTH_CONFIG", ""), ("HOME", home.to_str().unwrap())],
    )
    .ok();
    p.kstep(
        &["step", "pull", &reference, "-o", "from-docker-config.wasm"],
        &[
            ("DOCKER_AUTH_CONFIG", ""),
            ("DOCKER_CONFIG", home.join(".docker").to_str().unwrap()),
        ],
    )
    .ok();

    // No credentials at all.
    p.kstep(&["step", "pull", &reference], &[("DOCKER_AUTH_CONFIG", "")])
        .fails_with(1)
        .stderr(Has("refused the credentials"));

    // A registry whose certificate is not trusted.
    p.kstep(
        &["step", "pull", &reference],
        &[("KSTEP_REGISTRY_CA_FILE", "")],
    )
    .fails_with(1)
    .stderr(Has("certificate"));

    // A docker config that is not JSON: the message never quotes it.
    let broken = format!("{{\"auths\": {{\"{}\": {wrong_password}", p.reg.host);
    p.kstep(
        &["step", "pull", &reference],
        &[("DOCKER_AUTH_CONFIG", &broken)],
    )
    .fails_with(1)
    .stderr(Has("DOCKER_AUTH_CONFIG: not a docker config JSON"))
    .hides(&secrets);
    p.assert_files_hide_secrets();
}

#[test]
#[ignore = "needs the test registry (tests/registry/up.sh)"]
fn the_lock_pins_digests_and_locked_runs_refuse_moved_tags_and_tampered_blobs() {
    let p = Project::new("lock");
    let reference = format!("{}:1.2", p.repo("deny-latest"));
    let first = p.push("kstep-example-deny-latest", &reference);
    let first_digest = first.split('@').nth(1).unwrap().to_owned();
    write_pipeline(&p.dir, &reference, "", "registry.example/web:1.0");

    // Locked (the default with CI set) and not in the lock: refused, nothing pulled.
    p.kstep(&["run", "--dry-run"], &[("CI", "true")])
        .fails_with(2)
        .stderr(Has(&format!("{reference} is not in ")))
        .stderr(Has("run `kstep step lock`"));
    // Unlocked: resolved now, with a warning.
    p.kstep(&["run", "--dry-run"], &[])
        .ok()
        .stderr(Has("resolved now: not in the lock"));

    p.kstep(&["step", "lock"], &[])
        .ok()
        .stderr(Has(&format!("{reference} -> {first_digest} (added)")));
    let lock = fs::read_to_string(p.dir.join("kstep.lock")).unwrap();
    assert!(
        lock.contains(&format!("- reference: {reference}\n")),
        "{lock}"
    );
    assert!(
        lock.contains(&format!("digest: {first_digest}\n")),
        "{lock}"
    );
    assert!(lock.contains("resolved-from: https://"), "{lock}");

    let run = p.kstep(&["run", "--dry-run"], &[("CI", "true")]);
    run.ok()
        .stderr(Has(&format!(
            "{reference} is {first_digest} (from the lock, tag checked, cached)"
        )))
        .stderr(Has("[deny-latest] checked 1 container(s)"));

    // The step works: a Deployment on `latest` is refused by the pulled step.
    write_pipeline(&p.dir, &reference, "", "registry.example/web:latest");
    p.kstep(&["run", "--dry-run"], &[("CI", "true")])
        .fails_with(2)
        .stderr(Has("[step deny-latest]"));
    write_pipeline(&p.dir, &reference, "", "registry.example/web:1.0");

    // The tag moves to another component: a locked run names both digests.
    let moved = p.push("kstep-example-ci-labels", &reference);
    let moved_digest = moved.split('@').nth(1).unwrap();
    p.kstep(&["run", "--dry-run", "--locked"], &[])
        .fails_with(2)
        .stderr(Has(&format!(
            "{reference} now points to {moved_digest}, but {} pins {first_digest}",
            p.dir.join("kstep.lock").display()
        )));
    // Unlocked, the lock's digest still runs, without asking where the tag points.
    p.kstep(&["run", "--dry-run", "--locked=false"], &[("CI", "true")])
        .ok()
        .stderr(Has(&format!(
            "{reference} is {first_digest} (from the lock, cached)"
        )));
    // Relocking accepts the move, and says so.
    p.kstep(&["step", "lock"], &[]).ok().stderr(Has(&format!(
        "{reference} -> {moved_digest} (was {first_digest})"
    )));

    // A tampered cached component is refused, on every load.
    let wasm = fs::read(fixture("kstep-example-ci-labels")).unwrap();
    p.kstep(&["run", "--dry-run"], &[]).ok();
    let blob = p.dir.join("cache/oci/blobs/sha256").join(sha256_hex(&wasm));
    assert!(blob.is_file(), "{}", blob.display());
    let mut evil = wasm.clone();
    let last = evil.len() - 1;
    evil[last] ^= 1;
    fs::write(&blob, &evil).unwrap();
    for _ in 0..2 {
        p.kstep(&["run", "--dry-run"], &[])
            .fails_with(2)
            .stderr(Has(&format!("the cached component {}", blob.display())))
            .stderr(Has("refused (tampered with or corrupt)"))
            .stderr(Lacks("[ci-labels]"));
    }
    fs::remove_file(&blob).unwrap();
    p.kstep(&["run", "--dry-run"], &[])
        .ok()
        .stderr(Has("pulled"));

    // A lock pinning a digest the registry does not have.
    let missing = format!("sha256:{}", "0".repeat(64));
    let lock = fs::read_to_string(p.dir.join("kstep.lock")).unwrap();
    fs::write(
        p.dir.join("kstep.lock"),
        lock.replace(moved_digest, &missing),
    )
    .unwrap();
    p.kstep(&["run", "--dry-run", "--locked=false"], &[])
        .fails_with(1)
        .stderr(Has(&format!("@{missing}: pulling the manifest")));
    // A reference pinned by digest in the pipeline needs no lock entry.
    write_pipeline(&p.dir, &first, "", "registry.example/web:1.0");
    p.kstep(&["run", "--dry-run"], &[("CI", "true")])
        .ok()
        .stderr(Has("pinned in the pipeline file"));
    p.assert_files_hide_secrets();
}

#[test]
#[ignore = "needs the test registry (tests/registry/up.sh)"]
fn cosign_signatures_are_verified_with_the_pipelines_key() {
    let p = Project::new("cosign");
    let public = p.key_pair("publisher");
    let other = p.key_pair("stranger");

    // A publishing pipeline: push, then sign the digest with cosign's defaults (offline).
    let signed_ref = format!("{}:1.0", p.repo("deny-latest"));
    let signed = p.push("kstep-example-deny-latest", &signed_ref);
    p.sign("publisher", &signed, &[]);
    let unsigned_ref = format!("{}:1.0", p.repo("unsigned"));
    p.push("kstep-example-deny-latest", &unsigned_ref);

    // Another project uses the step by tag, locked and verified.
    let consumer = TempDir::new("registry-cosign-consumer");
    fs::copy(&public, consumer.join("cosign.pub")).unwrap();
    fs::copy(&other, consumer.join("stranger.pub")).unwrap();
    let run_with = |step: &str, extra: &str| {
        write_pipeline(&consumer, step, extra, "registry.example/web:1.0");
        p.kstep_in(&consumer, &["step", "lock"], &[]).ok();
        p.kstep_in(&consumer, &["run", "--dry-run"], &[("CI", "true")])
    };
    run_with(&signed_ref, "verify: {key: cosign.pub}\n")
        .ok()
        .stderr(Has("signature verified"))
        .stderr(Has("[deny-latest] checked 1 container(s)"));

    // Unsigned: exit 2, nothing ran.
    run_with(&unsigned_ref, "verify: {key: cosign.pub}\n")
        .fails_with(2)
        .stderr(Has("no valid cosign signature for sha256:"))
        .stderr(Has("the step is not signed"))
        .stderr(Lacks("[deny-latest]"));
    // Signed, but with another key than the pipeline trusts.
    run_with(&signed_ref, "verify: {key: stranger.pub}\n")
        .fails_with(2)
        .stderr(Has("signed with another key"));

    // The step's own `verify:` wins over the pipeline's.
    write_pipeline(
        &consumer,
        &signed_ref,
        "verify: {key: stranger.pub}\n",
        "x:1",
    );
    let yaml = fs::read_to_string(consumer.join("kstep.yaml")).unwrap();
    fs::write(
        consumer.join("kstep.yaml"),
        yaml.replace(
            &format!("  - wasm: {signed_ref}\n"),
            &format!("  - wasm: {signed_ref}\n    verify: {{key: cosign.pub}}\n"),
        ),
    )
    .unwrap();
    p.kstep_in(&consumer, &["run", "--dry-run"], &[("CI", "true")])
        .ok()
        .stderr(Has("signature verified"));

    // Cosign's legacy format (`sha256-<hex>.sig` tag, simple signing) verifies too.
    let legacy_ref = format!("{}:1.0", p.repo("legacy"));
    let legacy = p.push("kstep-example-deny-latest", &legacy_ref);
    p.sign("publisher", &legacy, &["--new-bundle-format=false"]);
    run_with(&legacy_ref, "verify: {key: cosign.pub}\n")
        .ok()
        .stderr(Has("signature verified"));
    p.assert_files_hide_secrets();
}

/// The bundle cosign stored, altered after signing, is refused: by the signature check (the
/// statement rewritten, the signature kept), and, served by the registry in place of the real
/// one, by the digest check before that.
#[test]
#[ignore = "needs the test registry (tests/registry/up.sh)"]
fn a_tampered_cosign_payload_is_refused() {
    let p = Project::new("cosign-tamper");
    let public = p.key_pair("publisher");
    let reference = format!("{}:1.0", p.repo("deny-latest"));
    let pinned = p.push("kstep-example-deny-latest", &reference);
    p.sign("publisher", &pinned, &[]);
    let digest = pinned.split('@').nth(1).unwrap();
    let repo = reference
        .strip_prefix(&format!("oci://{}/", p.reg.host))
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .0
        .to_owned();

    // distribution 3.1 has no referrers API: cosign wrote the referrers tag schema's index
    // (tag `sha256-<hex>`), whose one entry is the bundle's manifest.
    let (_, index) = p.curl(
        &format!("/v2/{repo}/manifests/{}", digest.replace(':', "-")),
        "application/vnd.oci.image.index.v1+json",
    );
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    let referrer = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let (_, manifest) = p.curl(
        &format!("/v2/{repo}/manifests/{referrer}"),
        "application/vnd.oci.image.manifest.v1+json",
    );
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["subject"]["digest"], digest);
    assert_eq!(
        manifest["artifactType"],
        kstep::oci::cosign::BUNDLE_MEDIA_TYPE
    );
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let (_, bundle) = p.curl(&format!("/v2/{repo}/blobs/{layer}"), "*/*");

    let key = kstep::oci::cosign::PublicKey::read(Path::new(&public)).unwrap();
    kstep::oci::cosign::check_bundle(&bundle, &key, digest).unwrap();

    // The statement rewritten to name another step, signature kept.
    let other = format!("sha256:{}", "e".repeat(64));
    let mut value: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
    let payload = STANDARD
        .decode(value["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let hex = digest.strip_prefix("sha256:").unwrap();
    let altered = String::from_utf8(payload)
        .unwrap()
        .replace(hex, &"e".repeat(64));
    value["dsseEnvelope"]["payload"] = STANDARD.encode(altered).into();
    let tampered = serde_json::to_vec(&value).unwrap();
    let e = kstep::oci::cosign::check_bundle(&tampered, &key, &other).unwrap_err();
    assert!(e.contains("altered after signing"), "{e}");
    // The untouched bundle does not vouch for another digest.
    let e = kstep::oci::cosign::check_bundle(&bundle, &key, &other).unwrap_err();
    assert!(e.contains("another digest"), "{e}");

    // End to end: verified, then the registry serves the altered bundle: exit 2, nothing ran.
    let consumer = TempDir::new("registry-tamper-consumer");
    fs::copy(&public, consumer.join("cosign.pub")).unwrap();
    write_pipeline(&consumer, &reference, "verify: {key: cosign.pub}\n", "x:1");
    p.kstep_in(&consumer, &["step", "lock"], &[]).ok();
    p.kstep_in(&consumer, &["run", "--dry-run"], &[("CI", "true")])
        .ok()
        .stderr(Has("signature verified"));
    let layer_hex = layer.strip_prefix("sha256:").unwrap();
    let stored = Path::new(&std::env::var("KSTEP_TEST_REGISTRY_DATA").unwrap())
        .join("docker/registry/v2/blobs/sha256")
        .join(&layer_hex[..2])
        .join(layer_hex)
        .join("data");
    assert!(stored.is_file(), "{}", stored.display());
    fs::write(&stored, &tampered).unwrap();
    p.kstep_in(&consumer, &["run", "--dry-run"], &[("CI", "true")])
        .fails_with(2)
        .stderr(Has(&format!("has digest sha256:{}", sha256_hex(&tampered))))
        .stderr(Has("refused (tampered with or corrupt)"))
        .stderr(Lacks("[deny-latest]"));
}

/// Needs no registry: the key is read before any request.
#[test]
fn a_key_that_cannot_be_used_is_reported_where_verify_names_it() {
    let dir = TempDir::new("registry-bad-key");
    fs::write(
        dir.join("bad.pub"),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    for (key, message) in [
        ("missing.pub", "missing.pub: cannot read"),
        ("bad.pub", "bad.pub: not an ECDSA P-256 public key"),
    ] {
        fs::write(
            dir.join("kstep.yaml"),
            format!("steps:\n  - wasm: oci://127.0.0.1:9/steps/x:1\n    verify: {{key: {key}}}\n"),
        )
        .unwrap();
        let run: Run = kstep_command(&["run", "--dry-run"])
            .current_dir(&dir)
            .env("KSTEP_CACHE_DIR", dir.join("cache"))
            .output()
            .unwrap()
            .into();
        run.fails_with(2)
            .stderr(Has("kstep.yaml:3:13: step `x`: "))
            .stderr(Has(message))
            .stderr(Has("the pipeline did not start"));
    }
}

/// `kstep step test` runs a step's cases against the step as published — by tag or by digest,
/// pulled and checked against its digest — and another step under the same cases fails them.
#[test]
#[ignore = "needs the test registry (tests/registry/up.sh)"]
fn step_test_runs_the_cases_against_a_published_step() {
    let p = Project::new("step-test");
    let reference = format!("{}:1.0", p.repo("deny-latest"));
    let pinned = p.push("kstep-example-deny-latest", &reference);
    let cases = repo_root().join("components/examples/deny-latest/tests");
    let cases = cases.to_str().unwrap();
    for step in [&reference, &pinned] {
        p.kstep(&["step", "test", cases, "--step", step], &[])
            .ok()
            .stdout(Has(" 0 failed\n"));
    }
    let other = p.push(
        "kstep-example-ci-labels",
        &format!("{}:1.0", p.repo("ci-labels")),
    );
    p.kstep(&["step", "test", cases, "--step", &other], &[])
        .exits_with(1)
        .stdout(Has("FAIL"));
}
