//! `kstep dotenv parse | check | set` through the real binary, and `read_env_file` through the
//! library: exit codes, empty stdout on error, `FILE:LINE:COL` diagnostics, hostile inputs,
//! eval-safe shell output, atomic `set`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::Text::{Has, Lacks, StartsWith};
use crate::support::{Run, TempDir, cache_dir, kstep, kstep_bin, positions, run};

/// Asserts an invalid-input failure: exit 2, nothing on stdout, and every stderr line in
/// `FILE:…: message` form.
#[track_caller]
fn assert_invalid<'a>(r: &'a Run, file: &str) -> &'a Run {
    r.fails_with(2);
    assert!(!r.stderr.is_empty());
    for line in r.stderr.lines() {
        assert!(line.starts_with(&format!("{file}:")), "{line:?} in {r:?}");
    }
    r
}

#[test]
fn parse_gitlab_json_keeps_quotes_comments_and_last_duplicate_at_first_position() {
    let d = TempDir::new("dotenv-parse-json");
    let f = d.write(
        "docker.env",
        b"IMAGE=registry.local:5000/app:1\nTAG=\"v1\"\nNOTE=a # b\nIMAGE=registry.local:5000/app:2\n",
    );
    let r = run(&["dotenv", "parse", &f]);
    r.ok();
    assert_eq!(
        r.stdout,
        "{\"IMAGE\": \"registry.local:5000/app:2\", \"TAG\": \"\\\"v1\\\"\", \"NOTE\": \"a # b\"}\n"
    );
    // Kept quotes and the redefinition are warned about, on stderr.
    r.stderr(Has(&format!("{f}:2:5: warning:")))
        .stderr(Has(&format!("{f}:4:1: warning:")));
}

#[test]
fn parse_gitlab_refuses_blank_lines_comments_and_export_with_every_position() {
    let d = TempDir::new("dotenv-parse-invalid");
    let f = d.write(
        "bad.env",
        b"# built by CI\nA=1\nexport B=2\n  K-1 = 3\nC=4\n\n",
    );
    let r = run(&["dotenv", "parse", &f]);
    assert_invalid(&r, &f)
        .stderr(Has("Invalid Format"))
        .stderr(Has("`export` is not allowed"));
    assert_eq!(
        positions(&r.stderr, &f),
        vec![(1, 1), (3, 1), (4, 3), (6, 1)]
    );
    for output in ["json", "shell", "dotenv"] {
        assert_invalid(&run(&["dotenv", "parse", "--output", output, &f]), &f);
    }
}

#[test]
fn empty_file_crlf_and_utf16() {
    let d = TempDir::new("dotenv-encodings");
    let empty = d.write("empty.env", b"");
    let r = run(&["dotenv", "parse", &empty]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "{}\n"), "{r:?}");
    run(&["dotenv", "check", &empty])
        .ok()
        .stdout(Has("0 variables"));

    let crlf = d.write("crlf.env", b"A=1\r\nB=two words\r\n");
    let r = run(&["dotenv", "parse", &crlf]);
    assert_eq!(r.stdout, "{\"A\": \"1\", \"B\": \"two words\"}\n", "{r:?}");

    // Windows PowerShell's `>`: UTF-16LE with a byte-order mark.
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(
        "MY_ENV_VAR=true\r\nTEST2=é\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    let f = d.write("ps.env", &utf16);
    let r = run(&["dotenv", "parse", &f]);
    assert_eq!(
        r.stdout, "{\"MY_ENV_VAR\": \"true\", \"TEST2\": \"é\"}\n",
        "{r:?}"
    );
    run(&["dotenv", "check", &f]).ok().stderr(Has("UTF-16LE"));
}

#[test]
fn non_utf8_bytes_are_refused_with_their_offset() {
    let d = TempDir::new("dotenv-latin1");
    let f = d.write("latin1.env", b"A=1\nB=caf\xE9\n");
    for flavor in ["gitlab", "compose"] {
        assert_invalid(&run(&["dotenv", "parse", "--flavor", flavor, &f]), &f)
            .stderr(StartsWith(&format!("{f}:2:6: ")))
            .stderr(Has("byte 0xE9 at byte offset 9"));
    }
    assert_invalid(&run(&["dotenv", "check", &f]), &f)
        .stderr(Has("would guess the file's encoding"));
}

#[test]
fn nul_bytes() {
    let d = TempDir::new("dotenv-nul");
    // GitLab strips NULs around keys and values and keeps one inside a value.
    let f = d.write("nul.env", b"\0A=x\0y\0\n");
    let r = run(&["dotenv", "parse", &f]);
    assert_eq!(r.stdout, "{\"A\": \"x\\u0000y\"}\n", "{r:?}");
    // No shell variable can hold it: refused, not silently truncated.
    assert_invalid(&run(&["dotenv", "parse", "--output", "shell", &f]), &f).stderr(Has("NUL"));
}

#[test]
fn a_100_mib_file_is_refused_fast_without_being_read() {
    let d = TempDir::new("dotenv-huge");
    let path = d.join("huge.env");
    // Sparse: 100 MiB long, no disk used; reading it would take noticeable time and memory.
    std::fs::File::create(&path)
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    let f = path.to_str().unwrap();
    let started = Instant::now();
    run(&["dotenv", "parse", f])
        .fails_with(2)
        .stderr(Has("104857600 bytes"))
        .stderr(Has("16777216 bytes")); // the limit is named
    run(&["dotenv", "check", f])
        .exits_with(2)
        .stderr(Has("Dotenv Artifact Too Big"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Through stdin, the stream is cut off one byte past the limit.
    let big = vec![b'A'; (16 << 20) + 10];
    kstep(&["dotenv", "parse", "-"], &[], Some(&big))
        .exits_with(2)
        .stderr(Has("16777216 bytes"));
}

#[test]
fn key_length_limit_is_255_characters() {
    let d = TempDir::new("dotenv-keys");
    let ok = d.write("ok.env", format!("{}=v\n", "K".repeat(255)));
    run(&["dotenv", "parse", &ok]).ok();
    let long = d.write("long.env", format!("{}=v\n", "K".repeat(256)));
    assert_invalid(&run(&["dotenv", "parse", &long]), &long)
        .stderr(Has("Key is too long (maximum is 255 characters)"));
}

#[test]
fn ten_thousand_lines() {
    let d = TempDir::new("dotenv-lines");
    let text: String = (0..10_000)
        .map(|i| format!("KEY_{i}=value {i}\n"))
        .collect();
    let f = d.write("many.env", &text);
    let r = run(&["dotenv", "parse", &f]);
    r.ok();
    let parsed: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(parsed.len(), 10_000);
    assert!(
        r.stdout.starts_with("{\"KEY_0\": \"value 0\", \"KEY_1\": "),
        "file order"
    );
    assert!(r.stdout.ends_with("\"KEY_9999\": \"value 9999\"}\n"));
    // GitLab refuses it twice over: size and count, the 21st variable on line 21.
    run(&["dotenv", "check", &f])
        .fails_with(2)
        .stderr(Has(&format!("{f}:21:1: variable number 21")))
        .stderr(Has("Dotenv Artifact Too Big"));
}

#[test]
fn check_lists_every_problem_and_gitlab_s_answer() {
    let d = TempDir::new("dotenv-check");
    let f = d.write("docker.env", b"IMAGE=app:1\n\nexport TAG=1\nbad key=2\n");
    let r = run(&["dotenv", "check", &f]);
    r.fails_with(2)
        .stderr(Has("GitLab would answer: \"Invalid Format\""));
    assert_eq!(positions(&r.stderr, &f), vec![(2, 1), (3, 1), (4, 1)]);
    let good = d.write("good.env", b"IMAGE=app:1\nTAG=1\n");
    run(&["dotenv", "check", &good])
        .ok()
        .stdout(Has("GitLab will accept"));
    run(&["dotenv", "check", "--max-vars", "1", &good])
        .exits_with(2)
        .stderr(Has("cannot have more than 1 variables"));
    // 18 bytes: GitLab's limit is exclusive.
    run(&["dotenv", "check", "--max-bytes", "18", &good])
        .exits_with(2)
        .stderr(Has("Maximum Allowable Size: 18"));
    run(&["dotenv", "check", "--max-bytes", "19", &good]).ok();
}

#[test]
fn missing_file_is_exit_2() {
    run(&["dotenv", "parse", "/nonexistent/kstep.env"])
        .fails_with(2)
        .stderr(Has("/nonexistent/kstep.env"));
}

#[test]
fn stdin_is_read_with_a_stdin_label() {
    kstep(&["dotenv", "parse", "-"], &[], Some(b"A=1\n\n"))
        .exits_with(2)
        .stderr(StartsWith("<stdin>:2:1: "));
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
    let d = TempDir::new("dotenv-shell");
    let marker = d.join("pwned");
    let m = marker.display();
    // Compose: double quotes give real newlines, backslashes and quotes; `$(` and backticks
    // are literal text to compose, and must stay literal through eval.
    let compose = format!(
        "NASTY=\"it's \\\"q\\\" $(touch {m}) `touch {m}` $$HOME \\\\ end\\nsecond line\"\n\
         SINGLE='$(touch {m})'\n"
    );
    let f = d.write("nasty.env", &compose);
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
    let f = d.write("gitlab.env", &gitlab);
    let (code, value) = eval_in_bash(&f, "gitlab", "V", &marker);
    assert_eq!(
        (code, value),
        (0, gitlab.trim_end().trim_start_matches("V=").to_owned())
    );
    assert!(!marker.exists());
    // Names that are not shell identifiers are refused, not mangled.
    let f = d.write("names.env", b"a.b=1\nc-d=2\n");
    let r = run(&[
        "dotenv", "parse", "--flavor", "compose", "--output", "shell", &f,
    ]);
    assert_invalid(&r, &f);
    assert_eq!(positions(&r.stderr, &f), vec![(1, 1), (2, 1)]);
}

#[test]
fn dotenv_output_is_gitlab_valid_or_refused() {
    let d = TempDir::new("dotenv-normalise");
    let f = d.write(
        "compose.env",
        b"# comment\nexport A=\"x y\" # c\nB: 'z'\n\n",
    );
    let r = run(&[
        "dotenv", "parse", "--flavor", "compose", "--output", "dotenv", &f,
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "A=x y\nB=z\n"), "{r:?}");
    let out = d.write("out.env", &r.stdout);
    run(&["dotenv", "check", &out]).ok();
    let f = d.write("multi.env", b"A=1\nM=\"two\nlines\"\nP=\"  padded\"\n");
    let r = run(&[
        "dotenv", "parse", "--flavor", "compose", "--output", "dotenv", &f,
    ]);
    assert_invalid(&r, &f);
    assert_eq!(positions(&r.stderr, &f), vec![(2, 1), (4, 1)]);
}

#[test]
fn compose_errors_have_positions() {
    let d = TempDir::new("dotenv-compose-errors");
    let f = d.write("open.env", b"A=1\nB=\"never closed\nC=3\n");
    assert_invalid(&run(&["dotenv", "parse", "--flavor", "compose", &f]), &f)
        .stderr(StartsWith(&format!("{f}:2:3: unterminated quoted value")))
        // The value is never quoted back.
        .stderr(Lacks("never closed"));
    let f = d.write("required.env", b"A=${NOPE:?set NOPE first}\n");
    let r = run(&[
        "dotenv",
        "parse",
        "--flavor",
        "compose",
        "--no-environment",
        &f,
    ]);
    assert_invalid(&r, &f).stderr(Has(
        "required variable NOPE is missing a value: set NOPE first",
    ));
}

#[test]
fn compose_interpolates_from_the_environment_first() {
    let d = TempDir::new("dotenv-compose-env");
    let f = d.write(
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
    let d = TempDir::new("dotenv-set");
    let f = d.join("docker.env");
    let fs = f.to_str().unwrap();
    run(&["dotenv", "set", fs, "IMAGE=registry.local:5000/app:1"]).ok();
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
    r.ok();
    assert_eq!(r.stdout, format!("{fs}: added TAG; replaced IMAGE\n"));
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "IMAGE=registry.local:5000/app:2\nTAG=1\n"
    );
    run(&["dotenv", "check", fs]).ok();
    // Only the file is in the directory: the temporary file was renamed, not left behind.
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    // Through a symlink, the target is updated and the link stays a link.
    let link = d.join("link.env");
    std::os::unix::fs::symlink(&f, &link).unwrap();
    run(&["dotenv", "set", link.to_str().unwrap(), "TAG=2"]).ok();
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
    let d = TempDir::new("dotenv-set-refuse");
    let f = d.write("docker.env", b"IMAGE=app:1\n");
    for value in ["SECRETMARKER\nsecond", " SECRETMARKER", "SECRETMARKER\t"] {
        let arg = format!("IMAGE={value}");
        run(&["dotenv", "set", &f, &arg])
            .fails_with(2)
            .stderr(StartsWith("argument 1: IMAGE: the value"))
            .hides(&["SECRETMARKER"]);
        assert_eq!(std::fs::read(&f).unwrap(), b"IMAGE=app:1\n", "untouched");
    }
    run(&["dotenv", "set", &f, "bad-key=1"])
        .exits_with(2)
        .stderr(Has("Key can contain only letters"));
    run(&["dotenv", "set", &f, "NOEQUALS"]).exits_with(2);
    // An invalid existing file is not "fixed" silently.
    let bad = d.write("bad.env", b"A=1\n\n");
    run(&["dotenv", "set", &bad, "B=2"])
        .exits_with(2)
        .stderr(Has(&format!("{bad}:2:1:")));
    assert_eq!(std::fs::read(d.join("bad.env")).unwrap(), b"A=1\n\n");
    // A secret-looking name is accepted with a warning.
    run(&["dotenv", "set", &f, "API_TOKEN=x"])
        .ok()
        .stderr(Has("looks like a secret"));
}

#[test]
fn set_with_the_arguments_reversed_says_the_file_comes_first() {
    let d = TempDir::new("dotenv-set-reversed");
    let f = d.write("docker.env", b"IMAGE=app:1\n");
    let run = run(&["dotenv", "set", "IMAGE=SECRETMARKER:1", &f]);
    run.fails_with(2)
        .stderr(Has(&format!(
            "The file comes first: kstep dotenv set {f} IMAGE=…"
        )))
        .hides(&["SECRETMARKER"]);
    assert_eq!(std::fs::read(&f).unwrap(), b"IMAGE=app:1\n", "untouched");
    assert!(!d.join("IMAGE=SECRETMARKER:1").exists());
}

#[test]
fn read_env_file_api_for_other_commands() {
    use kstep::steps::dotenv::{EnvFileError, Flavor, read_env_file, read_env_file_with};
    let d = TempDir::new("dotenv-api");
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
