//! `kstep dotenv parse | check | set` through the real binary, and `read_env_file` through the
//! library: exit codes, empty stdout on error, `FILE:LINE:COL` diagnostics, hostile inputs,
//! eval-safe shell output, atomic `set`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{Run, cache_dir, kstep, kstep_bin};

/// A fresh directory for one test.
fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("dotenv-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

fn run(args: &[&str]) -> Run {
    kstep(args, &[], None)
}

/// Asserts an invalid-input failure: exit 2, nothing on stdout, and every stderr line in
/// `FILE:…: message` form.
fn assert_invalid(r: &Run, file: &str) {
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.stdout, "", "{r:?}");
    assert!(!r.stderr.is_empty());
    for line in r.stderr.lines() {
        assert!(line.starts_with(&format!("{file}:")), "{line:?} in {r:?}");
    }
}

/// The `LINE:COL` pairs of the `FILE:LINE:COL: ` diagnostics in `stderr`.
fn positions(stderr: &str, file: &str) -> Vec<(u32, u32)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{file}:")))
        .filter_map(|rest| {
            let mut parts = rest.splitn(3, ':');
            let line = parts.next()?.parse().ok()?;
            let column = parts.next()?.parse().ok()?;
            Some((line, column))
        })
        .collect()
}

#[test]
fn parse_gitlab_json_keeps_quotes_comments_and_last_duplicate_at_first_position() {
    let d = dir("parse-json");
    let f = write(
        &d,
        "docker.env",
        b"IMAGE=registry.local:5000/app:1\nTAG=\"v1\"\nNOTE=a # b\nIMAGE=registry.local:5000/app:2\n",
    );
    let r = run(&["dotenv", "parse", &f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "{\"IMAGE\": \"registry.local:5000/app:2\", \"TAG\": \"\\\"v1\\\"\", \"NOTE\": \"a # b\"}\n"
    );
    // Kept quotes and the redefinition are warned about, on stderr.
    assert!(
        r.stderr.contains(&format!("{f}:2:5: warning:")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("{f}:4:1: warning:")),
        "{}",
        r.stderr
    );
}

#[test]
fn parse_gitlab_refuses_blank_lines_comments_and_export_with_every_position() {
    let d = dir("parse-invalid");
    let f = write(
        &d,
        "bad.env",
        b"# built by CI\nA=1\nexport B=2\n  K-1 = 3\nC=4\n\n",
    );
    let r = run(&["dotenv", "parse", &f]);
    assert_invalid(&r, &f);
    assert_eq!(
        positions(&r.stderr, &f),
        vec![(1, 1), (3, 1), (4, 3), (6, 1)]
    );
    assert!(r.stderr.contains("Invalid Format"));
    assert!(r.stderr.contains("`export` is not allowed"));
    for output in ["json", "shell", "dotenv"] {
        let r = run(&["dotenv", "parse", "--output", output, &f]);
        assert_invalid(&r, &f);
    }
}

#[test]
fn empty_file_crlf_and_utf16() {
    let d = dir("encodings");
    let empty = write(&d, "empty.env", b"");
    let r = run(&["dotenv", "parse", &empty]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "{}\n"), "{r:?}");
    let r = run(&["dotenv", "check", &empty]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("0 variables"));

    let crlf = write(&d, "crlf.env", b"A=1\r\nB=two words\r\n");
    let r = run(&["dotenv", "parse", &crlf]);
    assert_eq!(r.stdout, "{\"A\": \"1\", \"B\": \"two words\"}\n", "{r:?}");

    // Windows PowerShell's `>`: UTF-16LE with a byte-order mark.
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(
        "MY_ENV_VAR=true\r\nTEST2=é\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    let f = write(&d, "ps.env", &utf16);
    let r = run(&["dotenv", "parse", &f]);
    assert_eq!(
        r.stdout, "{\"MY_ENV_VAR\": \"true\", \"TEST2\": \"é\"}\n",
        "{r:?}"
    );
    let r = run(&["dotenv", "check", &f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("UTF-16LE"), "{r:?}");
}

#[test]
fn non_utf8_bytes_are_refused_with_their_offset() {
    let d = dir("latin1");
    let f = write(&d, "latin1.env", b"A=1\nB=caf\xE9\n");
    for flavor in ["gitlab", "compose"] {
        let r = run(&["dotenv", "parse", "--flavor", flavor, &f]);
        assert_invalid(&r, &f);
        assert!(r.stderr.starts_with(&format!("{f}:2:6: ")), "{r:?}");
        assert!(r.stderr.contains("byte 0xE9 at byte offset 9"), "{r:?}");
    }
    let r = run(&["dotenv", "check", &f]);
    assert_invalid(&r, &f);
    assert!(
        r.stderr.contains("would guess the file's encoding"),
        "{r:?}"
    );
}

#[test]
fn nul_bytes() {
    let d = dir("nul");
    // GitLab strips NULs around keys and values and keeps one inside a value.
    let f = write(&d, "nul.env", b"\0A=x\0y\0\n");
    let r = run(&["dotenv", "parse", &f]);
    assert_eq!(r.stdout, "{\"A\": \"x\\u0000y\"}\n", "{r:?}");
    // No shell variable can hold it: refused, not silently truncated.
    let r = run(&["dotenv", "parse", "--output", "shell", &f]);
    assert_invalid(&r, &f);
    assert!(r.stderr.contains("NUL"), "{r:?}");
}

#[test]
fn a_100_mib_file_is_refused_fast_without_being_read() {
    let d = dir("huge");
    let path = d.join("huge.env");
    // Sparse: 100 MiB long, no disk used; reading it would take noticeable time and memory.
    std::fs::File::create(&path)
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    let f = path.to_str().unwrap();
    let started = Instant::now();
    let r = run(&["dotenv", "parse", f]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.stdout, "");
    assert!(r.stderr.contains("104857600 bytes"), "{r:?}");
    assert!(
        r.stderr.contains("16777216 bytes"),
        "the limit is named: {r:?}"
    );
    let r = run(&["dotenv", "check", f]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("Dotenv Artifact Too Big"), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Through stdin, the stream is cut off one byte past the limit.
    let big = vec![b'A'; (16 << 20) + 10];
    let r = kstep(&["dotenv", "parse", "-"], &[], Some(&big));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("16777216 bytes"), "{r:?}");
}

#[test]
fn key_length_limit_is_255_characters() {
    let d = dir("keys");
    let ok = write(&d, "ok.env", format!("{}=v\n", "K".repeat(255)).as_bytes());
    assert_eq!(run(&["dotenv", "parse", &ok]).code, 0);
    let long = write(
        &d,
        "long.env",
        format!("{}=v\n", "K".repeat(256)).as_bytes(),
    );
    let r = run(&["dotenv", "parse", &long]);
    assert_invalid(&r, &long);
    assert!(
        r.stderr
            .contains("Key is too long (maximum is 255 characters)"),
        "{r:?}"
    );
}

#[test]
fn ten_thousand_lines() {
    let d = dir("lines");
    let text: String = (0..10_000)
        .map(|i| format!("KEY_{i}=value {i}\n"))
        .collect();
    let f = write(&d, "many.env", text.as_bytes());
    let r = run(&["dotenv", "parse", &f]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let parsed: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(parsed.len(), 10_000);
    assert!(
        r.stdout.starts_with("{\"KEY_0\": \"value 0\", \"KEY_1\": "),
        "file order"
    );
    assert!(r.stdout.ends_with("\"KEY_9999\": \"value 9999\"}\n"));
    // GitLab refuses it twice over: size and count, the 21st variable on line 21.
    let r = run(&["dotenv", "check", &f]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr.contains(&format!("{f}:21:1: variable number 21")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Dotenv Artifact Too Big"));
}

#[test]
fn check_lists_every_problem_and_gitlab_s_answer() {
    let d = dir("check");
    let f = write(
        &d,
        "docker.env",
        b"IMAGE=app:1\n\nexport TAG=1\nbad key=2\n",
    );
    let r = run(&["dotenv", "check", &f]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.stdout, "");
    assert_eq!(positions(&r.stderr, &f), vec![(2, 1), (3, 1), (4, 1)]);
    assert!(
        r.stderr.contains("GitLab would answer: \"Invalid Format\""),
        "{r:?}"
    );
    let good = write(&d, "good.env", b"IMAGE=app:1\nTAG=1\n");
    let r = run(&["dotenv", "check", &good]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("GitLab will accept"), "{r:?}");
    let r = run(&["dotenv", "check", "--max-vars", "1", &good]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("cannot have more than 1 variables"),
        "{r:?}"
    );
    // 18 bytes: GitLab's limit is exclusive.
    let r = run(&["dotenv", "check", "--max-bytes", "18", &good]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("Maximum Allowable Size: 18"), "{r:?}");
    let r = run(&["dotenv", "check", "--max-bytes", "19", &good]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn missing_file_is_exit_2() {
    let r = run(&["dotenv", "parse", "/nonexistent/kstep.env"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.stdout, "");
    assert!(r.stderr.contains("/nonexistent/kstep.env"), "{r:?}");
}

#[test]
fn stdin_is_read_with_a_stdin_label() {
    let r = kstep(&["dotenv", "parse", "-"], &[], Some(b"A=1\n\n"));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.starts_with("<stdin>:2:1: "), "{r:?}");
    let r = kstep(&["dotenv", "parse", "-"], &[], Some(b"A=1\n"));
    assert_eq!(r.stdout, "{\"A\": \"1\"}\n");
}

/// Runs `eval "$(kstep dotenv parse --output shell …)"` in bash and prints `$name`.
fn eval_in_bash(file: &str, flavor: &str, name: &str, marker: &Path) -> (i32, String) {
    let script = format!(
        "set -e; eval \"$(\"$KSTEP\" dotenv parse --flavor {flavor} --no-environment --output shell '{file}')\"; \
         printf %s \"${name}\"; test ! -e '{}'",
        marker.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .env("KSTEP", kstep_bin())
        .env("KSTEP_CACHE_DIR", cache_dir())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn shell_output_is_eval_safe() {
    let d = dir("shell");
    let marker = d.join("pwned");
    let m = marker.display();
    // Compose: double quotes give real newlines, backslashes and quotes; `$(` and backticks
    // are literal text to compose, and must stay literal through eval.
    let compose = format!(
        "NASTY=\"it's \\\"q\\\" $(touch {m}) `touch {m}` $$HOME \\\\ end\\nsecond line\"\n\
         SINGLE='$(touch {m})'\n"
    );
    let f = write(&d, "nasty.env", compose.as_bytes());
    let (code, value) = eval_in_bash(&f, "compose", "NASTY", &marker);
    assert_eq!(code, 0, "{value}");
    assert_eq!(
        value,
        format!("it's \"q\" $(touch {m}) `touch {m}` $HOME \\ end\nsecond line")
    );
    let (code, value) = eval_in_bash(&f, "compose", "SINGLE", &marker);
    assert_eq!((code, value), (0, format!("$(touch {m})")));
    // GitLab flavor: the value is the raw text, quotes and all.
    let gitlab = format!("V='$(touch {m})'\"`touch {m}`\" ; touch {m}\n");
    let f = write(&d, "gitlab.env", gitlab.as_bytes());
    let (code, value) = eval_in_bash(&f, "gitlab", "V", &marker);
    assert_eq!(
        (code, value),
        (0, gitlab.trim_end().trim_start_matches("V=").to_owned())
    );
    assert!(!marker.exists());
    // Names that are not shell identifiers are refused, not mangled.
    let f = write(&d, "names.env", b"a.b=1\nc-d=2\n");
    let r = run(&[
        "dotenv", "parse", "--flavor", "compose", "--output", "shell", &f,
    ]);
    assert_invalid(&r, &f);
    assert_eq!(positions(&r.stderr, &f), vec![(1, 1), (2, 1)]);
}

#[test]
fn dotenv_output_is_gitlab_valid_or_refused() {
    let d = dir("normalise");
    let f = write(
        &d,
        "compose.env",
        b"# comment\nexport A=\"x y\" # c\nB: 'z'\n\n",
    );
    let r = run(&[
        "dotenv", "parse", "--flavor", "compose", "--output", "dotenv", &f,
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "A=x y\nB=z\n"), "{r:?}");
    let out = write(&d, "out.env", r.stdout.as_bytes());
    assert_eq!(run(&["dotenv", "check", &out]).code, 0);
    let f = write(&d, "multi.env", b"A=1\nM=\"two\nlines\"\nP=\"  padded\"\n");
    let r = run(&[
        "dotenv", "parse", "--flavor", "compose", "--output", "dotenv", &f,
    ]);
    assert_invalid(&r, &f);
    assert_eq!(positions(&r.stderr, &f), vec![(2, 1), (4, 1)]);
}

#[test]
fn compose_errors_have_positions() {
    let d = dir("compose-errors");
    let f = write(&d, "open.env", b"A=1\nB=\"never closed\nC=3\n");
    let r = run(&["dotenv", "parse", "--flavor", "compose", &f]);
    assert_invalid(&r, &f);
    assert!(
        r.stderr
            .starts_with(&format!("{f}:2:3: unterminated quoted value")),
        "{r:?}"
    );
    // The value is never quoted back.
    assert!(!r.stderr.contains("never closed"), "{r:?}");
    let f = write(&d, "required.env", b"A=${NOPE:?set NOPE first}\n");
    let r = run(&[
        "dotenv",
        "parse",
        "--flavor",
        "compose",
        "--no-environment",
        &f,
    ]);
    assert_invalid(&r, &f);
    assert!(
        r.stderr
            .contains("required variable NOPE is missing a value: set NOPE first")
    );
}

#[test]
fn compose_interpolates_from_the_environment_first() {
    let d = dir("compose-env");
    let f = write(
        &d,
        "app.env",
        b"HOST=localhost\nURL=\"http://${HOST}:${PORT:-8080}\"\nINHERITED\n",
    );
    let r = kstep(
        &["dotenv", "parse", "--flavor", "compose", &f],
        &[("HOST", "ci.example"), ("INHERITED", "from-env")],
        None,
    );
    assert_eq!(
        r.stdout,
        "{\"HOST\": \"localhost\", \"URL\": \"http://ci.example:8080\", \"INHERITED\": \"from-env\"}\n",
        "{r:?}"
    );
    let r = kstep(
        &[
            "dotenv",
            "parse",
            "--flavor",
            "compose",
            "--no-environment",
            &f,
        ],
        &[("HOST", "ci.example")],
        None,
    );
    assert_eq!(
        r.stdout, "{\"HOST\": \"localhost\", \"URL\": \"http://localhost:8080\"}\n",
        "{r:?}"
    );
}

#[test]
fn set_creates_replaces_and_keeps_the_file_gitlab_valid() {
    let d = dir("set");
    let f = d.join("docker.env");
    let fs = f.to_str().unwrap();
    let r = run(&["dotenv", "set", fs, "IMAGE=registry.local:5000/app:1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "IMAGE=registry.local:5000/app:1\n"
    );
    let r = run(&[
        "dotenv",
        "set",
        fs,
        "TAG=1",
        "IMAGE=registry.local:5000/app:2",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, format!("{fs}: added TAG; replaced IMAGE\n"));
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "IMAGE=registry.local:5000/app:2\nTAG=1\n"
    );
    assert_eq!(run(&["dotenv", "check", fs]).code, 0);
    // Only the file is in the directory: the temporary file was renamed, not left behind.
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    // Through a symlink, the target is updated and the link stays a link.
    let link = d.join("link.env");
    std::os::unix::fs::symlink(&f, &link).unwrap();
    let r = run(&["dotenv", "set", link.to_str().unwrap(), "TAG=2"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "IMAGE=registry.local:5000/app:2\nTAG=2\n"
    );
}

#[test]
fn set_refuses_what_gitlab_cannot_carry_and_never_echoes_the_value() {
    let d = dir("set-refuse");
    let f = write(&d, "docker.env", b"IMAGE=app:1\n");
    for value in ["SECRETMARKER\nsecond", " SECRETMARKER", "SECRETMARKER\t"] {
        let arg = format!("IMAGE={value}");
        let r = run(&["dotenv", "set", &f, &arg]);
        assert_eq!(r.code, 2, "{r:?}");
        assert_eq!(r.stdout, "");
        assert!(
            r.stderr.starts_with("argument 1: IMAGE: the value"),
            "{r:?}"
        );
        assert!(!r.all_output().contains("SECRETMARKER"), "{r:?}");
        assert_eq!(std::fs::read(&f).unwrap(), b"IMAGE=app:1\n", "untouched");
    }
    let r = run(&["dotenv", "set", &f, "bad-key=1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("Key can contain only letters"), "{r:?}");
    let r = run(&["dotenv", "set", &f, "NOEQUALS"]);
    assert_eq!(r.code, 2, "{r:?}");
    // An invalid existing file is not "fixed" silently.
    let bad = write(&d, "bad.env", b"A=1\n\n");
    let r = run(&["dotenv", "set", &bad, "B=2"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains(&format!("{bad}:2:1:")), "{r:?}");
    assert_eq!(std::fs::read(d.join("bad.env")).unwrap(), b"A=1\n\n");
    // A secret-looking name is accepted with a warning.
    let r = run(&["dotenv", "set", &f, "API_TOKEN=x"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("looks like a secret"), "{r:?}");
}

#[test]
fn read_env_file_api_for_other_commands() {
    use kstep::steps::dotenv::{EnvFileError, Flavor, read_env_file, read_env_file_with};
    let d = dir("api");
    let runtime = kstep::runtime::Runtime::with_cache(None).unwrap();
    let f = d.join("docker.env");
    std::fs::write(&f, b"IMAGE=app:1\nTAG=2\n").unwrap();
    assert_eq!(
        read_env_file(&runtime, &f, Flavor::Gitlab).unwrap(),
        vec![
            ("IMAGE".to_owned(), "app:1".to_owned()),
            ("TAG".to_owned(), "2".to_owned())
        ]
    );
    let c = d.join("app.env");
    std::fs::write(&c, b"A=${X:-def}\n").unwrap();
    assert_eq!(
        read_env_file_with(&runtime, &c, Flavor::Compose, &[("X".into(), "x".into())]).unwrap(),
        vec![("A".to_owned(), "x".to_owned())]
    );
    std::fs::write(&f, b"IMAGE=app:1\n\n").unwrap();
    match read_env_file(&runtime, &f, Flavor::Gitlab) {
        Err(EnvFileError::Invalid { lines }) => {
            assert_eq!(lines.len(), 1);
            assert!(
                lines[0].starts_with(&format!("{}:2:1: ", f.display())),
                "{lines:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let huge = d.join("huge.env");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    assert!(matches!(
        read_env_file(&runtime, &huge, Flavor::Gitlab),
        Err(EnvFileError::TooBig {
            size: 104_857_600,
            ..
        })
    ));
}
