//! Secrets against an adversary, through the real binary: credentials refused as template
//! sources, multi-line secrets a step prints masked everywhere it can write, server URLs with
//! user-info and credentials over plain http:// refused, and a leak hunt that searches all
//! output for every form the masker registers (`kstep::secrets::forms`).

use std::fs;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::support::Text::{Has, Lacks};
use crate::support::{
    Run, TempDir, assert_no_secret, cache_dir, fixture, kstep, kstep_command, positions,
    secret_forms, test_fixture,
};

const LEAK_TOKEN: &str = "kstepLeakTOKEN-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const LEAK_PASSWORD: &str = "kstepLeakPASSWORD-5e4d3c2b1a";
const JOB_TOKEN: &str = "glcbt-64_kstepJobTokenMarker9f3Qx";

/// The leak fixture: a token, a password and a client key, each a unique marker.
fn leak_kubeconfig() -> String {
    fs::read_to_string(test_fixture("kubeconfigs/leak.yaml")).unwrap()
}

/// The leak fixture's client key (PEM).
fn leak_key() -> String {
    let encoded = leak_kubeconfig()
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("client-key-data: ")
                .map(str::to_owned)
        })
        .unwrap();
    String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap()
}

/// A PEM-shaped key whose last line (8 characters) is too short to be registered alone: only
/// masking the output whole, before it is split into lines, hides it.
fn short_tailed_key() -> String {
    let body = STANDARD.encode(
        (0..100u8)
            .map(|i| i.wrapping_mul(37) ^ 0x5a)
            .collect::<Vec<_>>(),
    );
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    assert_eq!(lines.last().unwrap().len(), 8);
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

/// No form of `secrets` ([`secret_forms`]) in `run`'s output.
#[track_caller]
fn hides_every_form(run: &Run, secrets: &[&str]) {
    assert_no_secret("the run", &run.all_output(), &secret_forms(secrets));
}

#[test]
fn render_refuses_credentials_as_placeholder_sources() {
    let dir = TempDir::new("secrets-render");
    let file = dir.write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leak\ndata:\n  config: \"${KUBECONFIG}\"\n  note: fine\n  token: \"x-${CI_JOB_TOKEN:-none}\"\n",
    );
    let kubeconfig = STANDARD.encode(leak_kubeconfig());
    let run = kstep(
        &["render", "-f", &file],
        &[
            ("KUBECONFIG", kubeconfig.as_str()),
            ("CI_JOB_TOKEN", JOB_TOKEN),
        ],
        None,
    );
    run.fails_with(2)
        .stderr(Has("`${KUBECONFIG}`: KUBECONFIG holds a credential"))
        .stderr(Has("`${CI_JOB_TOKEN}`: CI_JOB_TOKEN holds a credential"));
    assert_eq!(positions(&run.stderr, &file), [(6, 12), (8, 13)], "{run:?}");
    hides_every_form(&run, &[&kubeconfig, &leak_kubeconfig(), JOB_TOKEN]);

    // Refused by name even when unset (the default was used): the same template would leak
    // in CI. Other variables render.
    let defaulted = dir.write(
        "defaulted.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\ndata:\n  k: \"${KSTEP_KUBECONFIG:-none}\"\n",
    );
    let run = kstep(&["render", "-f", &defaulted], &[], None);
    run.fails_with(2)
        .stderr(Has("KSTEP_KUBECONFIG holds a credential"));
    assert_eq!(positions(&run.stderr, &defaulted), [(6, 7)], "{run:?}");
    let ok = dir.write(
        "ok.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\ndata:\n  sha: \"${CI_COMMIT_SHA}\"\n",
    );
    kstep(
        &["render", "-f", &ok],
        &[("CI_COMMIT_SHA", "0123abcd"), ("CI_JOB_TOKEN", JOB_TOKEN)],
        None,
    )
    .ok()
    .stdout(Has("sha: \"0123abcd\""));
}

#[test]
fn a_variable_holding_a_registered_secret_or_a_jwt_is_refused() {
    let dir = TempDir::new("secrets-render-value");
    let file = dir.write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leak\ndata:\n  a: \"${COPY}\"\n  b: \"${OIDC}\"\n",
    );
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwcm9qZWN0In0.c2lnbmF0dXJlLXZhbHVl";
    // COPY holds the job token (registered from the environment at start), OIDC an ID token
    // under a name GitLab's convention does not give away.
    let run = kstep(
        &["render", "-f", &file],
        &[
            ("CI_JOB_TOKEN", JOB_TOKEN),
            ("COPY", &format!("prefix-{JOB_TOKEN}")),
            ("OIDC", jwt),
        ],
        None,
    );
    run.fails_with(2)
        .stderr(Has("COPY holds a credential"))
        .stderr(Has("OIDC holds a credential"));
    hides_every_form(&run, &[JOB_TOKEN, jwt]);
}

/// A project with the hostile step, a pipeline that has it print `text` (or panic with it) and
/// then applies, and a kubeconfig (the leak fixture, context `cert` with `key` as its client
/// key) whose server refuses connections.
fn print_pipeline(test: &str, key: &str, action: &str) -> Run {
    let text = key;
    let dir = TempDir::new(test);
    fs::create_dir_all(dir.join("steps")).unwrap();
    fs::copy(
        fixture("kstep-fixture-step-hostile"),
        dir.join("steps/hostile.wasm"),
    )
    .unwrap();
    let original = STANDARD.encode(leak_key());
    let kubeconfig = dir.write(
        "kubeconfig.yaml",
        leak_kubeconfig()
            .replace("current-context: token", "current-context: cert")
            .replace(&original, &STANDARD.encode(key)),
    );
    let indented: String = text.lines().map(|l| format!("        {l}\n")).collect();
    let (key, verb) = match action {
        "print" => ("text", "print"),
        _ => ("why", "panic"),
    };
    dir.write(
        "kstep.yaml",
        format!(
            "steps:\n  - wasm: steps/hostile.wasm\n    with:\n      do: {verb}\n      {key}: |\n{indented}  - apply:\n"
        ),
    );
    kstep_command(&["run", "--kubeconfig", &kubeconfig])
        .current_dir(&dir)
        .env_clear()
        .env("KSTEP_CACHE_DIR", cache_dir())
        .output()
        .unwrap()
        .into()
}

#[test]
fn a_step_printing_a_multi_line_key_it_received_is_masked_everywhere() {
    for key in [leak_key(), short_tailed_key()] {
        let run = print_pipeline("secrets-print", &key, "print");
        // The step ran and printed (masked) on stdout, stderr, its log and a finding; then the
        // apply found nothing to apply.
        run.fails_with(2).stderr(Has("[hostile] [MASKED]\n"));
        assert!(run.stderr.matches("[MASKED]").count() >= 4, "{run:?}");
        hides_every_form(&run, &[&key]);
    }
}

#[test]
fn a_trap_s_last_words_are_masked_like_every_other_line() {
    let key = short_tailed_key();
    let run = print_pipeline("secrets-trap", &key, "panic");
    // The last words are the panic message, masked whole: not the key's last line.
    run.fails_with(1)
        .stderr(Has("trapped"))
        .stderr(Has("(the step gave up: [MASKED])"));
    hides_every_form(&run, &[&key]);
}

#[test]
fn step_run_masks_gitlab_credentials_from_the_environment() {
    // `kstep step run` reads no kubeconfig: the job token is masked because GitLab's
    // credential variables are registered when kstep starts, in every form.
    let encoded = STANDARD.encode(JOB_TOKEN);
    let run = kstep(
        &[
            "step",
            "run",
            fixture("kstep-fixture-step-hostile").to_str().unwrap(),
            "-p",
            "do=print",
            "-p",
            &format!("text=token {JOB_TOKEN} and {encoded}"),
        ],
        &[("CI_JOB_TOKEN", JOB_TOKEN)],
        None,
    );
    run.ok().stderr(Has("token [MASKED] and [MASKED]"));
    hides_every_form(&run, &[JOB_TOKEN]);
}

#[test]
fn a_server_url_with_user_info_is_refused_without_showing_it() {
    let dir = TempDir::new("secrets-userinfo");
    let file = dir.write(
        "kubeconfig.yaml",
        leak_kubeconfig().replace(
            "https://127.0.0.1:1",
            "https://deployer:urlPassw0rd-s3cret@127.0.0.1:1",
        ),
    );
    let manifest = dir.write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    );
    for args in [
        vec!["kubeconfig", "show", "--kubeconfig", &file],
        vec!["apply", "-f", &manifest, "--kubeconfig", &file],
    ] {
        let run = kstep(&args, &[], None);
        run.fails_with(2)
            .stderr(Has(&format!("{file}:6:13: ")))
            .stderr(Has("carries a user name or password"))
            .stderr(Has("the server is https://127.0.0.1:1"));
        hides_every_form(&run, &["urlPassw0rd-s3cret", "deployer:urlPassw0rd-s3cret"]);
    }
}

#[test]
fn credentials_over_plain_http_are_refused_unless_accepted() {
    let dir = TempDir::new("secrets-http");
    let file = dir.write(
        "kubeconfig.yaml",
        leak_kubeconfig().replace("https://127.0.0.1:1", "http://127.0.0.1:1"),
    );
    let manifest = dir.write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    );
    let refused = |run: &Run| {
        run.fails_with(2)
            .stderr(Has(&format!(
                "{file}:6:13: cluster `leak` uses plain http://"
            )))
            .stderr(Has("--insecure-plain-http"));
        hides_every_form(run, &[LEAK_TOKEN]);
    };
    refused(&kstep(
        &["apply", "-f", &manifest, "--kubeconfig", &file],
        &[],
        None,
    ));
    refused(&kstep(
        &["kubeconfig", "check", "--kubeconfig", &file],
        &[],
        None,
    ));
    // Accepted: kstep connects (and finds nothing listening), with the warning.
    let run = kstep(
        &[
            "apply",
            "-f",
            &manifest,
            "--kubeconfig",
            &file,
            "--insecure-plain-http",
            "--request-timeout",
            "2s",
        ],
        &[],
        None,
    );
    run.exits_with(1)
        .stderr(Has("warning: cluster `leak` uses plain http://"))
        .stderr(Has("cannot reach http://127.0.0.1:1"));
    hides_every_form(&run, &[LEAK_TOKEN]);
    // Reading the kubeconfig without connecting only warns.
    kstep(&["kubeconfig", "show", "--kubeconfig", &file], &[], None)
        .ok()
        .stderr(Has("plain http://"));
    // Anonymous access sends no credentials: nothing to refuse.
    let anonymous = dir.write(
        "anonymous.yaml",
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:1'}\ncontexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
    );
    kstep(
        &[
            "apply",
            "-f",
            &manifest,
            "--kubeconfig",
            &anonymous,
            "--request-timeout",
            "2s",
        ],
        &[],
        None,
    )
    .exits_with(1)
    .stderr(Has("cannot reach http://127.0.0.1:1"))
    .stderr(Lacks("--insecure-plain-http"));
}

#[test]
fn leak_hunt_no_form_of_any_credential_in_any_output() {
    // Every context of the leak fixture, through the commands that read or use it, on their
    // success and error paths; the kubeconfig given as a file and as base64 in the variable.
    let dir = TempDir::new("secrets-hunt");
    let kubeconfig = leak_kubeconfig();
    let file = dir.write("kubeconfig.yaml", &kubeconfig);
    let encoded = STANDARD.encode(&kubeconfig);
    let plain = dir.write(
        "plain.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    );
    let templated = dir.write(
        "templated.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  k: \"${KSTEP_KUBECONFIG}\"\n",
    );
    let written = dir.join("decoded.yaml");
    let written = written.to_str().unwrap();
    let key = leak_key();
    let secrets = [LEAK_TOKEN, LEAK_PASSWORD, key.as_str(), kubeconfig.as_str()];
    let connecting: [&[&str]; 6] = [
        &["kubeconfig", "show"],
        &["kubeconfig", "show", "--output", "json"],
        &["kubeconfig", "check", "--timeout", "2s"],
        &["kubeconfig", "decode", "--write", written],
        &["apply", "-f", &plain, "--request-timeout", "2s"],
        // The kubeconfig itself as a manifest: refused, without quoting it.
        &["apply", "-f", &file, "--request-timeout", "2s"],
    ];
    for context in ["token", "basic", "cert"] {
        for (flag, env) in [
            (vec!["--kubeconfig", file.as_str()], vec![]),
            (vec![], vec![("KSTEP_KUBECONFIG", encoded.as_str())]),
        ] {
            for command in connecting {
                let mut args = command.to_vec();
                args.extend(&flag);
                args.extend(["--context", context]);
                let run = kstep(&args, &env, None);
                assert!((0..=3).contains(&run.code), "{args:?}: {run:?}");
                hides_every_form(&run, &secrets);
            }
            for command in [
                vec!["render", "-f", &templated],
                vec!["deploy", "-f", &templated, "--context", context],
            ] {
                let run = kstep(&command, &env, None);
                assert!((1..=2).contains(&run.code), "{command:?}: {run:?}");
                hides_every_form(&run, &secrets);
            }
        }
    }
}
