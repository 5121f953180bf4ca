//! `kstep kubeconfig`: every fixture shape, every source form, round trips, every bad input,
//! the leak test (all commands and error paths, all output searched for every secret and its
//! base64 forms), connection errors, and `check` against the real control plane.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use kstep::runtime::{Runtime, cache::CompileCache};
use serde_json::Value;

use crate::cluster::{self, Cleanup, kubectl_ok};
use crate::support::Text::{Has, Lacks, StartsWith};
use crate::support::{Run, TempDir, cache_dir, kstep, kstep_command, test_fixture};

const LEAK_TOKEN: &str = "kstepLeakTOKEN-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const LEAK_PASSWORD: &str = "kstepLeakPASSWORD-5e4d3c2b1a";

fn fixture(name: &str) -> PathBuf {
    test_fixture(&format!("kubeconfigs/{name}"))
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

fn json(run: &Run) -> Value {
    run.ok();
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn show_json(args: &[&str], envs: &[(&str, &str)]) -> Value {
    let mut argv = vec!["kubeconfig", "show", "--output", "json"];
    argv.extend_from_slice(args);
    json(&kstep(&argv, envs, None))
}

/// Asserts a bad-input run: exit 2, nothing on stdout, `needle` on stderr.
#[track_caller]
fn invalid(run: &Run, needle: &str) {
    run.fails_with(2).stderr(Has(needle));
}

#[test]
fn component_imports_only_what_std_needs() {
    // Pure functions: no sockets, no HTTP, no host functions of kstep's: nothing to send a
    // credential with. The exact list is pinned so a new import is a reviewed change.
    let rt = Runtime::with_cache(Some(CompileCache::new(cache_dir()))).unwrap();
    let step = rt.builtin("kubeconfig").unwrap();
    let mut imports: Vec<String> = step
        .component()
        .component_type()
        .imports(rt.engine())
        .map(|(name, _)| name.split('@').next().unwrap().to_owned())
        .collect();
    imports.sort();
    let allowed = [
        "kstep:steps/types",
        "wasi:cli/environment",
        "wasi:cli/exit",
        "wasi:cli/stderr",
        "wasi:cli/stdin",
        "wasi:cli/stdout",
        "wasi:cli/terminal-input",
        "wasi:cli/terminal-output",
        "wasi:cli/terminal-stderr",
        "wasi:cli/terminal-stdin",
        "wasi:cli/terminal-stdout",
        "wasi:clocks/monotonic-clock",
        "wasi:clocks/wall-clock",
        "wasi:filesystem/preopens",
        "wasi:filesystem/types",
        "wasi:io/error",
        "wasi:io/poll",
        "wasi:io/streams",
        "wasi:random/insecure",
        "wasi:random/insecure-seed",
        "wasi:random/random",
    ];
    for import in &imports {
        assert!(
            allowed.contains(&import.as_str()),
            "unexpected import {import}: {imports:?}"
        );
    }
    assert!(
        imports
            .iter()
            .all(|i| !i.contains("sockets") && !i.contains("http"))
    );
}

#[test]
fn fixture_shapes() {
    let cases = [
        (
            "kind.yaml",
            "kind-kind",
            "https://127.0.0.1:41923",
            "client-certificate",
            "inline",
        ),
        (
            "k3s.yaml",
            "default",
            "https://127.0.0.1:6443",
            "client-certificate",
            "inline",
        ),
        (
            "minikube.yaml",
            "minikube",
            "https://192.168.49.2:8443",
            "client-certificate",
            "file",
        ),
        (
            "gke.yaml",
            "gke_kstep-demo_europe-west1_demo",
            "https://203.0.113.17",
            "exec",
            "inline",
        ),
        (
            "eks.yaml",
            "arn:aws:eks:eu-west-1:123456789012:cluster/demo",
            "https://0123456789ABCDEF0123456789ABCDEF.gr7.eu-west-1.eks.amazonaws.com",
            "exec",
            "inline",
        ),
        (
            "ovh.yaml",
            "gitlab-deployer@kubernetes",
            "https://abc123.c1.gra9.k8s.ovh.net",
            "token",
            "inline",
        ),
    ];
    for (file, context, server, auth, ca) in cases {
        let path = fixture(file);
        let s = show_json(&["--kubeconfig", path.to_str().unwrap()], &[]);
        assert_eq!(s["context"], context, "{file}");
        assert_eq!(s["server"], server, "{file}");
        assert_eq!(s["auth"]["kind"], auth, "{file}");
        assert_eq!(s["ca"]["kind"], ca, "{file}");
        assert_eq!(s["source"]["origin"], "flag", "{file}");
        assert_eq!(s["source"]["forms"][0], "yaml", "{file}");
        if ca == "inline" {
            let fp = s["ca"]["fingerprints"][0].as_str().unwrap();
            assert_eq!(fp.len(), 95, "{file}: {fp}");
        }
    }
    let minikube = kstep(
        &[
            "kubeconfig",
            "show",
            "--kubeconfig",
            fixture("minikube.yaml").to_str().unwrap(),
        ],
        &[],
        None,
    );
    minikube.stderr(Has("will not exist in a CI job"));
    minikube.stdout(Has("namespace  default\n"));
    let eks = kstep(
        &[
            "kubeconfig",
            "show",
            "--kubeconfig",
            fixture("eks.yaml").to_str().unwrap(),
        ],
        &[],
        None,
    );
    eks.stderr(Has("exec plugin `aws`"));
    eks.stdout(Has("auth       exec plugin `aws`"));
}

#[test]
fn gitlab_agent_kubeconfig_needs_context() {
    let path = fixture("gitlab-agent.yaml");
    let run = kstep(
        &["kubeconfig", "show"],
        &[("KUBECONFIG", path.to_str().unwrap())],
        None,
    );
    invalid(
        &run,
        "no current-context: choose one of its 2 context(s) with --context NAME, $KSTEP_CONTEXT or $KUBE_CONTEXT: `kstep/infra:production`, `kstep/infra:staging`",
    );
    run.stderr(Lacks("glcbt"));
    let s = show_json(
        &["--context", "kstep/infra:production"],
        &[("KUBECONFIG", path.to_str().unwrap())],
    );
    assert_eq!(s["user"], "agent:4242");
    assert_eq!(s["ca"]["kind"], "system");
    assert_eq!(s["source"]["form"], "file");
    // The context may come from the environment too.
    let s = show_json(
        &[],
        &[
            ("KUBECONFIG", path.to_str().unwrap()),
            ("KSTEP_CONTEXT", "kstep/infra:staging"),
        ],
    );
    assert_eq!(s["user"], "agent:4343");
    // Auto DevOps' KUBE_CONTEXT selects one too, below --context and KSTEP_CONTEXT.
    let s = show_json(
        &[],
        &[
            ("KUBECONFIG", path.to_str().unwrap()),
            ("KUBE_CONTEXT", "kstep/infra:production"),
        ],
    );
    assert_eq!(s["user"], "agent:4242");
    let s = show_json(
        &[],
        &[
            ("KUBECONFIG", path.to_str().unwrap()),
            ("KUBE_CONTEXT", "kstep/infra:production"),
            ("KSTEP_CONTEXT", "kstep/infra:staging"),
        ],
    );
    assert_eq!(s["user"], "agent:4343");
    // A name that is not there: the list of contexts, never a credential.
    let run = kstep(
        &["kubeconfig", "show"],
        &[
            ("KUBECONFIG", path.to_str().unwrap()),
            ("KUBE_CONTEXT", "kstep/infra:gone"),
        ],
        None,
    );
    invalid(
        &run,
        "context `kstep/infra:gone` does not exist; the kubeconfig has `kstep/infra:production`, `kstep/infra:staging`",
    );
    run.stderr(Lacks("glcbt"));
}

#[test]
fn source_forms_and_precedence() {
    let dir = TempDir::new("kubeconfig-sources");
    let ovh = fixture_text("ovh.yaml");
    let one_line = STANDARD.encode(&ovh);
    let wrapped: String = one_line
        .as_bytes()
        .chunks(76)
        .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    let json_text = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "j", "cluster": {"server": "https://json.example:6443"}}],
        "users": [{"name": "j", "user": {"token": "json-token-123456"}}],
        "contexts": [{"name": "j", "context": {"cluster": "j", "user": "j"}}],
        "current-context": "j"
    })
    .to_string();
    for (value, form, origin_form) in [
        (one_line.as_str(), "base64-one-line", "base64-one-line"),
        (wrapped.as_str(), "base64-wrapped", "base64-wrapped"),
        (ovh.as_str(), "yaml", "yaml"),
        (json_text.as_str(), "json", "json"),
    ] {
        let s = show_json(&[], &[("KUBECONFIG", value)]);
        assert_eq!(s["source"]["origin"], "KUBECONFIG");
        assert_eq!(s["source"]["form"], origin_form);
        assert_eq!(s["source"]["forms"][0], form);
    }
    // A path (File-type variable) and a kubectl-style list: the first file with the context wins.
    let kind = fixture("kind.yaml");
    let missing = dir.join("missing.yaml");
    let list = format!(
        "{}:{}:{}",
        missing.display(),
        kind.display(),
        fixture("ovh.yaml").display()
    );
    let run = kstep(
        &["kubeconfig", "show", "--output", "json"],
        &[("KUBECONFIG", &list)],
        None,
    );
    let s = json(&run);
    assert_eq!(s["source"]["form"], "file");
    assert_eq!(s["context"], "kind-kind");
    assert_eq!(s["contexts"].as_array().unwrap().len(), 2);
    run.stderr(Has("missing.yaml, which does not exist (skipped"));
    let s = show_json(
        &["--context", "gitlab-deployer@kubernetes"],
        &[("KUBECONFIG", &list)],
    );
    assert_eq!(s["auth"]["kind"], "token");
    // A file holding base64 (a File-type variable filled with the masked value).
    let b64_file = dir.join("kubeconfig.b64");
    std::fs::write(&b64_file, &one_line).unwrap();
    let s = show_json(&[], &[("KUBECONFIG", b64_file.to_str().unwrap())]);
    assert_eq!(s["source"]["forms"][0], "base64-one-line");
    // Precedence: flag > KSTEP_KUBECONFIG > KUBECONFIG; an empty variable counts as unset.
    let envs = [
        ("KSTEP_KUBECONFIG", one_line.as_str()),
        ("KUBECONFIG", kind.to_str().unwrap()),
    ];
    assert_eq!(
        show_json(&[], &envs)["source"]["origin"],
        "KSTEP_KUBECONFIG"
    );
    let s = show_json(
        &["--kubeconfig", fixture("k3s.yaml").to_str().unwrap()],
        &envs,
    );
    assert_eq!(
        (s["source"]["origin"].as_str(), s["context"].as_str()),
        (Some("flag"), Some("default"))
    );
    let s = show_json(
        &[],
        &[
            ("KSTEP_KUBECONFIG", ""),
            ("KUBECONFIG", kind.to_str().unwrap()),
        ],
    );
    assert_eq!(s["source"]["origin"], "KUBECONFIG");
    // Nothing at all.
    invalid(
        &kstep(&["kubeconfig", "show"], &[], None),
        "no kubeconfig: pass --kubeconfig PATH",
    );
    // The text summary names the form.
    let run = kstep(&["kubeconfig", "show"], &[("KUBECONFIG", &one_line)], None);
    run.stdout(StartsWith(
        "source     $KUBECONFIG: value of the variable (base64, one line)\n",
    ));
}

#[test]
fn round_trips_encode_decode_show() {
    let dir = TempDir::new("kubeconfig-round-trip");
    for name in [
        "kind.yaml",
        "k3s.yaml",
        "gke.yaml",
        "eks.yaml",
        "ovh.yaml",
        "leak.yaml",
    ] {
        let path = fixture(name);
        let encode = kstep(&["kubeconfig", "encode", path.to_str().unwrap()], &[], None);
        assert_eq!(encode.code, 0, "{name}: {encode:?}");
        let value = encode.stdout.trim_end_matches('\n');
        assert!(
            !value.contains('\n') && value.len() >= 8 && value.len() <= 10_000,
            "{name}"
        );
        assert_eq!(
            STANDARD.decode(value).unwrap(),
            std::fs::read(&path).unwrap(),
            "{name}"
        );
        let direct = show_json(&["--kubeconfig", path.to_str().unwrap()], &[]);
        let via_variable = show_json(&[], &[("KUBECONFIG", value)]);
        for field in ["context", "server", "namespace", "user", "auth", "ca"] {
            assert_eq!(direct[field], via_variable[field], "{name}: {field}");
        }
        // decode --write: the minimal kubeconfig, 0600, which decodes to the same connection.
        let written = dir.join(format!("{name}.out"));
        let decode = kstep(
            &["kubeconfig", "decode", "--write", written.to_str().unwrap()],
            &[("KUBECONFIG", value)],
            None,
        );
        assert_eq!(decode.code, 0, "{name}: {decode:?}");
        assert_eq!(decode.stdout, "");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&written).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        let again = show_json(&["--kubeconfig", written.to_str().unwrap()], &[]);
        for field in ["context", "server", "namespace", "user", "auth", "ca"] {
            assert_eq!(direct[field], again[field], "{name}: {field}");
        }
        // --minify keeps only the selected context, and still round-trips.
        let minified = kstep(
            &[
                "kubeconfig",
                "encode",
                "--minify",
                written.to_str().unwrap(),
            ],
            &[],
            None,
        );
        minified.ok();
        let text = String::from_utf8(STANDARD.decode(minified.stdout.trim()).unwrap()).unwrap();
        assert_eq!(
            text.lines().filter(|l| l.starts_with("- name:")).count(),
            3,
            "{text}"
        );
    }
    // Wrapped base64 on stdin is normalised to one line.
    let one_line = STANDARD.encode(fixture_text("ovh.yaml"));
    let wrapped: String = one_line
        .as_bytes()
        .chunks(64)
        .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    let run = kstep(
        &["kubeconfig", "encode", "-"],
        &[],
        Some(wrapped.as_bytes()),
    );
    assert_eq!(run.stdout, format!("{one_line}\n"), "{run:?}");
}

#[test]
fn encode_rules() {
    let dir = TempDir::new("kubeconfig-encode-rules");
    // Too long for a GitLab variable: the message names the rule and the way out.
    let mut big = fixture_text("kind.yaml");
    for i in 0..40 {
        big.push_str(&format!("# padding line {i} {}\n", "x".repeat(200)));
    }
    let path = dir.join("big.yaml");
    std::fs::write(&path, &big).unwrap();
    let run = kstep(&["kubeconfig", "encode", path.to_str().unwrap()], &[], None);
    invalid(&run, "a GitLab variable holds at most 10000");
    run.stderr(Has("File-type variable"));
    run.stderr(Has("--minify"));
    // --minify drops the padding and fits.
    let run = kstep(
        &["kubeconfig", "encode", "--minify", path.to_str().unwrap()],
        &[],
        None,
    );
    run.ok();
    // A kubeconfig that does not work is not encoded.
    let broken = dir.join("broken.yaml");
    std::fs::write(
        &broken,
        fixture_text("leak.yaml").replace("current-context: token", "current-context: gone"),
    )
    .unwrap();
    invalid(
        &kstep(
            &["kubeconfig", "encode", broken.to_str().unwrap()],
            &[],
            None,
        ),
        "context `gone` does not exist",
    );
    // A kubeconfig without current-context is checked with --context.
    let agent = fixture("gitlab-agent.yaml");
    let run = kstep(
        &["kubeconfig", "encode", agent.to_str().unwrap()],
        &[],
        None,
    );
    invalid(&run, "--context NAME");
    let run = kstep(
        &[
            "kubeconfig",
            "encode",
            "--context",
            "kstep/infra:staging",
            agent.to_str().unwrap(),
        ],
        &[],
        None,
    );
    run.ok();
    invalid(
        &kstep(
            &["kubeconfig", "encode", dir.join("nope").to_str().unwrap()],
            &[],
            None,
        ),
        "No such file",
    );
}

/// The bad inputs the issue lists, through the variable (base64 and raw) and a file.
#[test]
fn bad_inputs() {
    let dir = TempDir::new("kubeconfig-bad-inputs");
    let leak = fixture_text("leak.yaml");
    let b64 = STANDARD.encode(&leak);
    let mut bad_b64 = b64.clone();
    bad_b64.insert(200, '*');
    let ca_line = leak
        .lines()
        .find(|l| l.contains("certificate-authority-data"))
        .unwrap();
    let cases: Vec<(String, String, &str)> = vec![
        (
            "invalid base64".into(),
            bad_b64,
            "$KUBECONFIG:1:201: invalid base64 at byte 201: not a base64 character",
        ),
        (
            "base64 of non-YAML".into(),
            STANDARD.encode("plain words, nothing else"),
            "decodes to text that is not a kubeconfig",
        ),
        (
            "base64 of broken YAML".into(),
            STANDARD.encode("clusters: [oops\n"),
            "$KUBECONFIG (base64-decoded):",
        ),
        (
            "YAML syntax error".into(),
            leak.replace("contexts:\n", "contexts: \"\n"),
            "$KUBECONFIG:",
        ),
        (
            "missing current-context".into(),
            leak.replace("current-context: token\n", ""),
            "has no current-context",
        ),
        (
            "missing cluster".into(),
            leak.replace(
                "{cluster: leak, user: token, namespace: leak}",
                "{cluster: lost, user: token}",
            ),
            "names cluster `lost`, which is not defined (clusters: `leak`)",
        ),
        (
            "missing user".into(),
            leak.replace(
                "{cluster: leak, user: token, namespace: leak}",
                "{cluster: leak, user: ghost}",
            ),
            "names user `ghost`, which is not defined",
        ),
        (
            "empty token".into(),
            leak.replace(LEAK_TOKEN, "\"\""),
            "user `token` has an empty token",
        ),
        (
            "not PEM".into(),
            leak.replace(
                ca_line,
                &format!(
                    "    certificate-authority-data: {}",
                    STANDARD.encode("not a certificate")
                ),
            ),
            "certificate-authority-data is not PEM",
        ),
        (
            "twice encoded".into(),
            STANDARD.encode(&b64),
            "encoded twice",
        ),
    ];
    for (what, value, needle) in &cases {
        let run = kstep(&["kubeconfig", "show"], &[("KUBECONFIG", value)], None);
        invalid(&run, needle);
        assert!(!run.stderr.contains(LEAK_TOKEN), "{what}: {run:?}");
    }
    // Line and column for YAML errors, in the file they are in.
    let path = dir.join("syntax.yaml");
    std::fs::write(&path, leak.replace("contexts:\n", "contexts: [\n")).unwrap();
    let run = kstep(
        &["kubeconfig", "show", "--kubeconfig", path.to_str().unwrap()],
        &[],
        None,
    );
    assert_eq!(run.code, 2);
    let expected = format!("{}:", path.display());
    assert!(
        run.stderr.lines().any(|l| l.starts_with(&expected)
            && l.split(':').nth(1).unwrap().parse::<u32>().unwrap() > 10),
        "{run:?}"
    );
    // 10 MiB: refused before it is read, as a file and on stdin.
    let huge = dir.join("huge.yaml");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(10 << 20).unwrap();
    invalid(
        &kstep(
            &["kubeconfig", "show", "--kubeconfig", huge.to_str().unwrap()],
            &[],
            None,
        ),
        "at most 1048576 bytes",
    );
    invalid(
        &kstep(
            &["kubeconfig", "show"],
            &[("KUBECONFIG", huge.to_str().unwrap())],
            None,
        ),
        "at most 1048576 bytes",
    );
    invalid(&encode_huge_stdin(), "at most 1048576 bytes");
    // A mistyped path in the variable.
    let run = kstep(
        &["kubeconfig", "show"],
        &[("KUBECONFIG", "/builds/group/project.tmp/KUBECONFIG")],
        None,
    );
    invalid(&run, "looks like a path, but no such file exists");
}

#[test]
fn a_path_that_names_no_file_is_said_first() {
    let dir = TempDir::new("kubeconfig-missing-path");
    for (value, says) in [
        ("missing.yaml", "no such file exists (relative to "),
        ("/nonexistent/kc", "no such file exists"),
        ("./kube/config", "no such file exists"),
        ("~/.kube/config", "`~` is not expanded there"),
        (
            dir.to_str().unwrap(),
            "it is a directory, not a kubeconfig file",
        ),
    ] {
        let run = kstep(&["kubeconfig", "show"], &[("KUBECONFIG", value)], None);
        run.fails_with(2);
        // First, and alone: no base64 or binary-data diagnosis of a file name.
        let first = run.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!(
                "error: $KUBECONFIG is `{value}`, which looks like a path, but"
            )) && first.contains(says),
            "{value}: {}",
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "{value}: {}", run.stderr);
        assert!(!run.stderr.contains("base64"), "{value}: {}", run.stderr);
    }
    // A kubeconfig of comments only is not "invalid base64".
    let run = kstep(
        &["kubeconfig", "show"],
        &[("KUBECONFIG", "# paste the kubeconfig here\n# TODO\n")],
        None,
    );
    invalid(&run, "the kubeconfig has only comments");
    run.stderr(Lacks("base64"));
}

#[test]
fn home_kube_config_is_the_last_fallback() {
    let home = TempDir::new("kubeconfig-home");
    std::fs::create_dir_all(home.join(".kube")).unwrap();
    std::fs::copy(fixture("kind.yaml"), home.join(".kube/config")).unwrap();
    let home_dir = home.to_str().unwrap();
    let s = show_json(&[], &[("HOME", home_dir)]);
    assert_eq!(s["source"]["origin"], "home");
    assert_eq!(s["source"]["form"], "file");
    let run = kstep(&["kubeconfig", "show"], &[("HOME", home_dir)], None);
    run.ok();
    run.stdout(StartsWith("source     ~/.kube/config: file "));
    // The variables still come first.
    let s = show_json(
        &[],
        &[
            ("HOME", home_dir),
            ("KUBECONFIG", fixture("k3s.yaml").to_str().unwrap()),
        ],
    );
    assert_eq!(s["source"]["origin"], "KUBECONFIG");
    // Without it: the message names it.
    let empty = TempDir::new("kubeconfig-no-home");
    invalid(
        &kstep(
            &["kubeconfig", "show"],
            &[("HOME", empty.to_str().unwrap())],
            None,
        ),
        "or create ~/.kube/config",
    );
}

#[test]
#[cfg(unix)]
fn decode_write_creates_the_parent_directory_private() {
    use std::os::unix::fs::PermissionsExt as _;
    // `kstep kubeconfig decode --write "$CI_PROJECT_DIR/.kube/config"` in a fresh job.
    let project = TempDir::new("kubeconfig-write-dir");
    let target = project.join(".kube/config");
    let run = kstep(
        &[
            "kubeconfig",
            "decode",
            "--kubeconfig",
            fixture("kind.yaml").to_str().unwrap(),
            "--write",
            target.to_str().unwrap(),
        ],
        &[],
        None,
    );
    run.ok();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&project.join(".kube")), 0o700);
    assert_eq!(mode(&target), 0o600);
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .contains("kind: Config")
    );
}

/// `kstep kubeconfig encode -` fed 10 MiB: kstep stops reading after the limit, so the writer
/// gets a broken pipe, which is expected here.
fn encode_huge_stdin() -> Run {
    use std::io::Write as _;
    let mut child = kstep_command(&["kubeconfig", "encode", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..10 {
            if stdin.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out.into()
}

/// A free port on 127.0.0.1 nobody listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn leak_fixture_for(server: &str) -> String {
    fixture_text("leak.yaml").replace("https://127.0.0.1:1", server)
}

#[test]
fn check_unreachable_server() {
    let dir = TempDir::new("kubeconfig-check-unreachable");
    let path = dir.join("kubeconfig");
    let port = closed_port();
    std::fs::write(
        &path,
        leak_fixture_for(&format!("https://127.0.0.1:{port}")),
    )
    .unwrap();
    let run = kstep(
        &[
            "kubeconfig",
            "check",
            "--timeout",
            "5s",
            "--kubeconfig",
            path.to_str().unwrap(),
        ],
        &[],
        None,
    );
    run.exits_with(1);
    assert_eq!(run.stdout, "");
    run.stderr(Has(&format!(
        "cannot reach https://127.0.0.1:{port}: connection refused"
    )));
    assert!(!run.all_output().contains(LEAK_TOKEN));
}

/// A TLS server whose certificate the kubeconfig's CA did not sign (`openssl s_server`).
struct TlsServer {
    child: Child,
    port: u16,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn foreign_tls_server(dir: &Path) -> Option<TlsServer> {
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=not-the-cluster",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(dir.join("tls.key"))
        .arg("-out")
        .arg(dir.join("tls.crt"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    let port = closed_port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(dir.join("tls.crt"))
        .arg("-key")
        .arg(dir.join("tls.key"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = TlsServer { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(server);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}

#[test]
fn check_tls_failure() {
    let dir = TempDir::new("kubeconfig-check-tls");
    // openssl is required by the test suite anyway (tests/cluster); a skip would hide the case.
    let server = foreign_tls_server(&dir).expect("`openssl s_server` could not be started");
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        leak_fixture_for(&format!("https://127.0.0.1:{}", server.port)),
    )
    .unwrap();
    for context in ["token", "basic", "cert"] {
        let run = kstep(
            &[
                "kubeconfig",
                "check",
                "--timeout",
                "5s",
                "--context",
                context,
                "--kubeconfig",
                path.to_str().unwrap(),
            ],
            &[],
            None,
        );
        run.exits_with(1);
        run.stderr(Has("TLS failure with https://127.0.0.1:"));
        assert!(
            run.stderr.contains("UnknownIssuer") || run.stderr.contains("certificate"),
            "{run:?}"
        );
        for secret in leak_secrets() {
            assert!(!run.all_output().contains(&secret), "{context}: {run:?}");
        }
    }
}

/// Every secret of leak.yaml in every form that could betray it.
fn leak_secrets() -> Vec<String> {
    let text = fixture_text("leak.yaml");
    let field = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap()
            .split_once(": ")
            .unwrap()
            .1
            .to_owned()
    };
    let key_data = field("client-key-data");
    let cert_data = field("client-certificate-data");
    let key_pem = String::from_utf8(STANDARD.decode(&key_data).unwrap()).unwrap();
    let cert_pem = String::from_utf8(STANDARD.decode(&cert_data).unwrap()).unwrap();
    let key_body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let mut plain = vec![
        LEAK_TOKEN.to_owned(),
        LEAK_PASSWORD.to_owned(),
        key_data,
        cert_data,
        key_pem.trim().to_owned(),
        cert_pem.trim().to_owned(),
        key_body,
        text.clone(),
    ];
    // Two lines of the key body: enough to find a partial print.
    plain.extend(
        key_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .take(2)
            .map(str::to_owned),
    );
    let mut all = Vec::new();
    for secret in plain {
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            all.push(engine.encode(&secret));
        }
        // The stretch of base64 a secret produces inside a larger encoded blob, at each alignment.
        for shift in 0..3 {
            let mut padded = vec![b'\0'; shift];
            padded.extend_from_slice(secret.as_bytes());
            let encoded = STANDARD_NO_PAD.encode(&padded);
            let start = (8 * shift).div_ceil(6) + 1;
            let end = (8 * padded.len() / 6).saturating_sub(1);
            if end > start + 12 {
                all.push(encoded[start..end].to_owned());
            }
        }
        all.push(secret);
    }
    all
}

fn assert_no_leak(what: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{what} leaked a secret ({} chars):\n{text}",
            secret.len()
        );
    }
}

/// Runs every command and error path with the leak fixture and searches all output.
#[test]
fn nothing_leaks() {
    let dir = TempDir::new("kubeconfig-leak");
    let secrets = leak_secrets();
    let text = fixture_text("leak.yaml");
    let b64 = STANDARD.encode(&text);
    let key_data = text
        .lines()
        .find(|l| l.contains("client-key-data"))
        .unwrap()
        .split_once(": ")
        .unwrap()
        .1
        .to_owned();
    let port = closed_port();
    // Variants: good, and broken in every way that makes kstep talk about the input.
    let mut variants: Vec<(String, String)> = vec![
        ("good".into(), text.clone()),
        (
            "context name is the token".into(),
            text.replace(
                "current-context: token",
                &format!("current-context: {LEAK_TOKEN}"),
            ),
        ),
        (
            "user ref is the token".into(),
            text.replace("user: token,", &format!("user: {LEAK_TOKEN},")),
        ),
        (
            "truncated key".into(),
            text.replace(&key_data, &key_data[..key_data.len() - 9]),
        ),
        (
            "token in flow".into(),
            text.replace(
                &format!("token: {LEAK_TOKEN}"),
                &format!("token: [{LEAK_TOKEN}"),
            ),
        ),
        (
            "unclosed quote".into(),
            text.replace(
                &format!("password: {LEAK_PASSWORD}"),
                &format!("password: \"{LEAK_PASSWORD}"),
            ),
        ),
        (
            "token with newline".into(),
            text.replace(
                &format!("token: {LEAK_TOKEN}"),
                &format!("token: \"{LEAK_TOKEN}\\n\""),
            ),
        ),
        (
            "kind is the token".into(),
            text.replace("kind: Config", &format!("kind: {LEAK_TOKEN}")),
        ),
        (
            "duplicate user".into(),
            text.replace("- name: basic\n", "- name: token\n"),
        ),
        (
            "server closed".into(),
            text.replace("https://127.0.0.1:1", &format!("https://127.0.0.1:{port}")),
        ),
        (
            "no current-context".into(),
            text.replace("current-context: token\n", ""),
        ),
        (
            "tab indentation".into(),
            text.replace("  user:\n    token:", "  user:\n\ttoken:"),
        ),
    ];
    let mut bad_b64 = b64.clone();
    bad_b64.insert(300, '!');
    variants.push(("bad base64".into(), bad_b64));
    let mut runs: Vec<(String, Run)> = Vec::new();
    for (name, content) in &variants {
        let path = dir.join(format!("{}.yaml", name.replace(' ', "-")));
        std::fs::write(&path, content).unwrap();
        let encoded = STANDARD.encode(content);
        let wrapped: String = encoded
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect();
        type Source<'a> = (String, Vec<String>, Vec<(&'a str, String)>);
        let sources: Vec<Source> = vec![
            (
                "file".into(),
                vec!["--kubeconfig".into(), path.display().to_string()],
                vec![],
            ),
            (
                "raw variable".into(),
                vec![],
                vec![("KUBECONFIG", content.clone())],
            ),
            (
                "base64 variable".into(),
                vec![],
                vec![("KSTEP_KUBECONFIG", encoded.clone())],
            ),
            (
                "wrapped base64 variable".into(),
                vec![],
                vec![("KUBECONFIG", wrapped.clone())],
            ),
            (
                "path variable".into(),
                vec![],
                vec![("KUBECONFIG", path.display().to_string())],
            ),
        ];
        for (source, flags, envs) in &sources {
            let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            // Each context and command at least once per variant and source; every
            // combination would be ~1000 runs for no more paths through the code.
            let out = dir.join("out.yaml").display().to_string();
            let mut plan: Vec<(Vec<&str>, Option<&str>)> = vec![
                (vec!["show"], None),
                (vec!["show", "--output", "json"], Some("cert")),
                (vec!["decode", "--write", &out], Some("basic")),
                (vec!["decode", "--write", &out], None),
                (vec!["show"], Some("nope")),
            ];
            if name.starts_with("server closed") || name.starts_with("good") {
                for context in [None, Some("basic"), Some("cert")] {
                    plan.push((vec!["check", "--timeout", "3s"], context));
                }
            }
            for (command, context) in plan {
                let mut args: Vec<&str> = vec!["kubeconfig"];
                args.extend(command);
                args.extend(flags.iter().map(String::as_str));
                if let Some(ctx) = context {
                    args.extend(["--context", ctx]);
                }
                let run = kstep(&args, &envs, None);
                runs.push((format!("{name} / {source} / {args:?}"), run));
            }
        }
        // encode prints the value on stdout (requested); its stderr must still be clean.
        let run = kstep(
            &["kubeconfig", "encode", &path.display().to_string()],
            &[],
            None,
        );
        runs.push((
            format!("{name} / encode stderr"),
            Run {
                code: run.code,
                stdout: String::new(),
                stderr: run.stderr,
            },
        ));

        let run = kstep(
            &["kubeconfig", "encode", "-"],
            &[],
            Some(wrapped.as_bytes()),
        );
        runs.push((
            format!("{name} / encode - stderr"),
            Run {
                code: run.code,
                stdout: String::new(),
                stderr: run.stderr,
            },
        ));
    }
    assert!(runs.len() > 200, "{}", runs.len());
    let mut codes = std::collections::BTreeMap::new();
    for (what, run) in &runs {
        *codes.entry(run.code).or_insert(0) += 1;
        assert_no_leak(what, &run.all_output(), &secrets);
    }
    // The runs covered successes, invalid input and connection failures.
    assert!(
        codes.contains_key(&0) && codes.contains_key(&1) && codes.contains_key(&2),
        "{codes:?}"
    );
    // The written kubeconfig is the only place the secrets are, and it is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let out = dir.join("out.yaml");
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

// ------------------------------------------------------------------------- against a cluster

fn cluster_kubeconfig() -> PathBuf {
    PathBuf::from(cluster::admin_kubeconfig())
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn check_against_the_cluster() {
    let admin = cluster_kubeconfig();
    let run = kstep(
        &[
            "kubeconfig",
            "check",
            "--kubeconfig",
            admin.to_str().unwrap(),
        ],
        &[],
        None,
    );
    run.ok();
    run.stderr(StartsWith(&format!(
        "Using the kubeconfig from --kubeconfig: file {} (YAML); context kstep-test, server https://127.0.0.1:",
        admin.display()
    )));
    run.stdout(Has("(Kubernetes v1."));
    run.stdout(Has("groups: system:masters"));
    run.stdout(Has("namespace  default (exists)"));
    run.stdout(Has("deployments.apps               yes"));
    let report = json(&kstep(
        &[
            "kubeconfig",
            "check",
            "--output",
            "json",
            "--kubeconfig",
            admin.to_str().unwrap(),
        ],
        &[],
        None,
    ));
    assert!(
        report["canApply"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["allowed"] == true),
        "{report}"
    );
    // Through the variable, base64-encoded, as in CI.
    let value = STANDARD.encode(std::fs::read(&admin).unwrap());
    let run = kstep(&["kubeconfig", "check"], &[("KUBECONFIG", &value)], None);
    run.ok().stderr(StartsWith(
        "Using the kubeconfig from $KUBECONFIG: value of the variable (base64, one line); context kstep-test, server https://127.0.0.1:",
    ));
    // The admin key must not appear anywhere.
    let admin_text = std::fs::read_to_string(&admin).unwrap();
    let key = admin_text
        .lines()
        .find(|l| l.contains("client-key-data"))
        .unwrap()
        .split_once(": ")
        .unwrap()
        .1;
    assert!(!run.all_output().contains(key));
    assert!(!run.all_output().contains(&value));
}

/// A `name: value` field of the admin kubeconfig (server, CA and client key data).
fn admin_field(name: &str) -> String {
    let admin = std::fs::read_to_string(cluster_kubeconfig()).unwrap();
    admin
        .lines()
        .find(|l| l.trim_start().starts_with(name))
        .unwrap()
        .split_once(": ")
        .unwrap()
        .1
        .trim()
        .to_owned()
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn gitlab_agent_contexts_against_the_cluster() {
    // The GitLab agent's shape: one context per agent, named `project/path:agent`, no
    // current-context. One agent's credentials work on the test cluster, the other's do not.
    let dir = TempDir::new("kubeconfig-agent");
    let bogus = "ci:77:glcbt-64_kstepBogusAgentJobTokenQ7x";
    let key = admin_field("client-key-data");
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: gitlab\n  cluster:\n    server: {}\n    certificate-authority-data: {}\n\
         users:\n- name: agent:76\n  user:\n    client-certificate-data: {}\n    client-key-data: {key}\n\
         - name: agent:77\n  user:\n    token: {bogus}\n\
         contexts:\n- name: group/agents:review\n  context: {{cluster: gitlab, user: agent:77}}\n\
         - name: group/agents:test\n  context: {{cluster: gitlab, user: agent:76, namespace: default}}\n",
        admin_field("server"),
        admin_field("certificate-authority-data"),
        admin_field("client-certificate-data"),
    );
    let path = dir.join("agent-kubeconfig");
    std::fs::write(&path, &kubeconfig).unwrap();
    let path = path.to_str().unwrap();
    let no_leak = |run: &Run| {
        for secret in [key.as_str(), bogus, "glcbt-64_kstepBogusAgentJobTokenQ7x"] {
            assert!(!run.all_output().contains(secret), "{run:?}");
        }
    };
    // None selected: exit 2 with the context names, before any request.
    let run = kstep(&["kubeconfig", "check"], &[("KUBECONFIG", path)], None);
    run.exits_with(2);
    run.stderr(Has(
        "choose one of its 2 context(s) with --context NAME, $KSTEP_CONTEXT or $KUBE_CONTEXT: \
         `group/agents:review`, `group/agents:test`",
    ));
    no_leak(&run);
    // Auto DevOps' KUBE_CONTEXT picks the working agent, and the log says where it came from.
    let run = kstep(
        &["kubeconfig", "check"],
        &[("KUBECONFIG", path), ("KUBE_CONTEXT", "group/agents:test")],
        None,
    );
    run.ok();
    run.stderr(Has(
        "context group/agents:test (from $KUBE_CONTEXT), server https://127.0.0.1:",
    ));
    run.stdout(Has("deployments.apps               yes"));
    no_leak(&run);
    // ... and a deploy command reaches the cluster with it.
    let ns = cluster::Namespace::create("agent");
    let ns = ns.name.as_str();
    let manifest = dir.join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-agent\ndata:\n  a: b\n",
    )
    .unwrap();
    let run = kstep(
        &["apply", "-f", manifest.to_str().unwrap(), "-n", ns],
        &[("KUBECONFIG", path), ("KUBE_CONTEXT", "group/agents:test")],
        None,
    );
    run.ok();
    no_leak(&run);
    assert_eq!(
        kubectl_ok(&[
            "-n",
            ns,
            "get",
            "configmap",
            "from-agent",
            "-o",
            "jsonpath={.data.a}"
        ]),
        "b"
    );
    // --context (or $KSTEP_CONTEXT) wins over KUBE_CONTEXT: the other agent is refused.
    let run = kstep(
        &["kubeconfig", "check"],
        &[
            ("KUBECONFIG", path),
            ("KUBE_CONTEXT", "group/agents:test"),
            ("KSTEP_CONTEXT", "group/agents:review"),
        ],
        None,
    );
    run.exits_with(1);
    run.stderr(Has("context group/agents:review, server"));
    run.stderr(Has("401 Unauthorized"));
    no_leak(&run);
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn check_bogus_token_is_401_without_the_token() {
    let field = admin_field;
    let token = "kstepBogusTOKEN-9a8b7c6d5e4f3a2b1c0d";
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {}\n\
         users:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n",
        field("server"),
        field("certificate-authority-data"),
    );
    let b64 = STANDARD.encode(&kubeconfig);
    let run = kstep(&["kubeconfig", "check"], &[("KUBECONFIG", &b64)], None);
    run.exits_with(1);
    run.stderr(Has("rejected the credentials (401 Unauthorized)"));
    run.stderr(Has("the token is expired, revoked"));
    for secret in [
        token.to_owned(),
        b64.clone(),
        STANDARD.encode(token),
        kubeconfig.clone(),
    ] {
        assert!(!run.all_output().contains(&secret), "{run:?}");
    }
}

#[test]
#[ignore = "needs a cluster (tests/cluster/up.sh)"]
fn check_namespace_scoped_service_account() {
    // A ServiceAccount with `admin` in its own namespace only: apply is allowed there, and
    // `check` in kube-system says which verbs are missing (403 territory).
    let ns = format!("kstep-kc-{}", std::process::id());
    let k = kubectl_ok;
    k(&["create", "namespace", &ns]);
    let _cleanup = Cleanup::default().object("namespace", &ns);
    k(&["-n", &ns, "create", "serviceaccount", "deployer"]);
    k(&[
        "-n",
        &ns,
        "create",
        "rolebinding",
        "deployer-admin",
        "--clusterrole=admin",
        &format!("--serviceaccount={ns}:deployer"),
    ]);
    let token = k(&["-n", &ns, "create", "token", "deployer", "--duration=10m"])
        .trim()
        .to_owned();
    let field = admin_field;
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {}\n\
         users:\n- name: deployer\n  user:\n    token: {token}\ncontexts:\n- name: d\n  context: {{cluster: c, user: deployer, namespace: {ns}}}\ncurrent-context: d\n",
        field("server"),
        field("certificate-authority-data"),
    );
    let b64 = STANDARD.encode(&kubeconfig);
    let run = kstep(&["kubeconfig", "check"], &[("KUBECONFIG", &b64)], None);
    run.ok();
    run.stdout(Has(&format!(
        "identity   system:serviceaccount:{ns}:deployer"
    )));
    run.stdout(Has("deployments.apps               yes"));
    let dir = TempDir::new("kubeconfig-sa");
    let other = dir.join("kube-system.yaml");
    std::fs::write(
        &other,
        kubeconfig.replace(&format!("namespace: {ns}"), "namespace: kube-system"),
    )
    .unwrap();
    let run = kstep(
        &[
            "kubeconfig",
            "check",
            "--kubeconfig",
            other.to_str().unwrap(),
        ],
        &[],
        None,
    );
    run.ok();
    run.stdout(Has(
        "deployments.apps               no (cannot get, create, patch)",
    ));
    run.stdout(Has("not allowed to check that it exists"));
    let output = run.all_output();
    assert!(!output.contains(&token) && !output.contains(&b64));
}
