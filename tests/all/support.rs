//! Helpers shared by the test modules: running the real `kstep` binary, checking what it
//! printed, scratch directories and the repository's fixtures.

use std::io::Write;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The built `kstep` binary.
pub fn kstep_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kstep")
}

/// A wasm32-wasip2 test fixture built by host/build.rs.
pub fn fixture(crate_name: &str) -> PathBuf {
    Path::new(env!("KSTEP_FIXTURES_DIR")).join(format!("{}.wasm", crate_name.replace('-', "_")))
}

/// The root of the repository (the workspace).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `tests/fixtures/<rel>` in the repository.
pub fn test_fixture(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(rel)
}

/// The result of one `kstep` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Assertions on a run; each returns the run, so that they chain (`run.ok().stderr(Has("…"))`).
/// They only check what they say: [`Run::exits_with`] does not look at stdout,
/// [`Run::fails_with`] does.
impl Run {
    /// Everything the process printed, for leak searches.
    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Asserts exit code 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.exits_with(0)
    }

    /// Asserts the exit code.
    #[track_caller]
    pub fn exits_with(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "{self:?}");
        self
    }

    /// Asserts a failure as the CLI reports one: exit `code` and nothing on stdout.
    #[track_caller]
    pub fn fails_with(&self, code: i32) -> &Self {
        self.exits_with(code);
        assert_eq!(self.stdout, "", "nothing may reach stdout: {self:?}");
        self
    }

    /// Asserts `check` on stderr.
    #[track_caller]
    pub fn stderr(&self, check: Text) -> &Self {
        check.assert("stderr", &self.stderr);
        self
    }

    /// Asserts `check` on stdout.
    #[track_caller]
    pub fn stdout(&self, check: Text) -> &Self {
        check.assert("stdout", &self.stdout);
        self
    }

    /// Asserts that stderr starts with the line every command that talks to a cluster prints
    /// first (which kubeconfig, context and server), then `check` on the rest of stderr.
    #[track_caller]
    pub fn stderr_after_kubeconfig(&self, check: Text) -> &Self {
        let (first, rest) = self.stderr.split_once('\n').unwrap_or((&self.stderr, ""));
        assert!(
            first.starts_with("Using the kubeconfig from ") && first.contains("; context "),
            "the first line of stderr names no kubeconfig:\n{}",
            self.stderr
        );
        check.assert("stderr after the kubeconfig line", rest);
        self
    }

    /// Asserts that none of `secrets` appears on stdout or stderr.
    #[track_caller]
    pub fn hides<S: AsRef<str>>(&self, secrets: &[S]) -> &Self {
        assert_no_secret("the run", &self.all_output(), secrets);
        self
    }
}

/// What [`Run::stderr`] or [`Run::stdout`] must hold: `run.stderr(Has("…"))`.
#[derive(Debug)]
pub enum Text<'a> {
    /// Contains this.
    Has(&'a str),
    /// Does not contain this.
    Lacks(&'a str),
    /// Starts with this.
    StartsWith(&'a str),
    /// Ends with this.
    EndsWith(&'a str),
}

impl Text<'_> {
    #[track_caller]
    fn assert(&self, stream: &str, text: &str) {
        let holds = match *self {
            Self::Has(s) => text.contains(s),
            Self::Lacks(s) => !text.contains(s),
            Self::StartsWith(s) => text.starts_with(s),
            Self::EndsWith(s) => text.ends_with(s),
        };
        assert!(holds, "{stream}: not {self:?}:\n{text}");
    }
}

/// Asserts that none of `secrets` occurs in `text` (`what` names the text). The message shows
/// the text, which is where to look, and which secret by its position and length.
#[track_caller]
pub fn assert_no_secret<S: AsRef<str>>(what: &str, text: &str, secrets: &[S]) {
    for (i, secret) in secrets.iter().enumerate() {
        let secret = secret.as_ref();
        assert!(
            !text.contains(secret),
            "{what} leaks secret #{i} ({} chars):\n{text}",
            secret.len()
        );
    }
}

/// Every form the masker registers for each of `secrets` (`kstep::secrets::forms`), and every
/// line of a multi-line secret that is a piece of content (PEM or base64) of 8 characters or
/// more: what a leak search looks for.
pub fn secret_forms<S: AsRef<str>>(secrets: &[S]) -> Vec<String> {
    let mut forms: Vec<String> = Vec::new();
    for secret in secrets {
        let secret = secret.as_ref();
        forms.extend(kstep::secrets::forms(secret));
        forms.extend(
            secret
                .lines()
                .map(str::trim)
                .filter(|l| l.len() >= kstep::secrets::MIN_SECRET_LEN && !l.starts_with("-----"))
                // Base64 and PEM lines; not a kubeconfig's `clusters:`.
                .filter(|l| !l.contains([' ', ':']))
                .map(str::to_owned),
        );
    }
    assert!(!forms.is_empty(), "no form to look for");
    forms
}

/// `kstep args…` as a command: no kubeconfig from the machine running the tests (no variable,
/// no `~/.kube/config`: no HOME), none of the GitLab CI variables kstep reads when the suite
/// itself runs in a GitLab job (a test sets them when it means to), the shared compile cache,
/// stdin closed and the output captured.
pub fn kstep_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(kstep_bin());
    cmd.args(args)
        .env_remove("KUBECONFIG")
        .env_remove("KSTEP_KUBECONFIG")
        .env_remove("KSTEP_CONTEXT")
        .env_remove("KUBE_CONTEXT")
        .env_remove("HOME");
    for variable in [
        "GITLAB_CI",
        "CI_PROJECT_PATH_SLUG",
        "CI_ENVIRONMENT_SLUG",
        "CI_PIPELINE_ID",
        "CI_COMMIT_SHA",
        "CI_JOB_ID",
        "CI_JOB_URL",
    ] {
        cmd.env_remove(variable);
    }
    cmd.env("KSTEP_CACHE_DIR", cache_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `kstep args…` with `envs`, an isolated compile cache and `stdin`.
pub fn kstep(args: &[&str], envs: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
    let mut cmd = kstep_command(args);
    cmd.envs(envs.iter().copied());
    let Some(bytes) = stdin else {
        return cmd.output().expect("run kstep").into();
    };
    let mut child = cmd.stdin(Stdio::piped()).spawn().expect("spawn kstep");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    child.wait_with_output().unwrap().into()
}

/// Runs `kstep args…` in `dir` with only `envs` (and the compile cache) in its environment.
pub fn kstep_in(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Run {
    kstep_command(args)
        .current_dir(dir)
        .env_clear()
        .env("KSTEP_CACHE_DIR", cache_dir())
        .envs(envs.iter().copied())
        .output()
        .unwrap()
        .into()
}

/// `kstep args…` with no environment variables and no stdin.
pub fn run(args: &[&str]) -> Run {
    kstep(args, &[], None)
}

/// One compile cache for the whole test run, inside the target directory.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("kstep-cache")
}

/// The `LINE:COL` pairs of the `FILE:LINE:COL: ` diagnostics in `stderr`.
pub fn positions(stderr: &str, file: &str) -> Vec<(u32, u32)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{file}:")))
        .filter_map(|rest| {
            let mut parts = rest.splitn(3, ':');
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
        .collect()
}

/// A fresh directory of one test under the cargo target tmpdir, unique to this call (tests
/// run in parallel, some make several). Removed on drop, except when the test is failing: then
/// it stays for a look.
pub struct TempDir(PathBuf);

impl TempDir {
    /// `<target tmpdir>/<name>-<pid>-<n>`, empty.
    pub fn new(name: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Writes `contents` to the file `name` in the directory and returns its path as text
    /// (what a command line takes).
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Copies the directory tree `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
