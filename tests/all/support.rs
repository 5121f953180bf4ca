//! Helpers shared by the test modules: running the real `kstep` binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The built `kstep` binary.
pub fn kstep_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kstep")
}

/// A wasm32-wasip2 test fixture built by host/build.rs.
pub fn fixture(crate_name: &str) -> PathBuf {
    Path::new(env!("KSTEP_FIXTURES_DIR")).join(format!("{}.wasm", crate_name.replace('-', "_")))
}

/// The result of one `kstep` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Everything the process printed, for leak searches.
    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `kstep args…` with `envs`, an isolated compile cache and `stdin`.
pub fn kstep(args: &[&str], envs: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(kstep_bin());
    cmd.args(args)
        .env_remove("KUBECONFIG")
        .env_remove("KSTEP_KUBECONFIG")
        .env("KSTEP_CACHE_DIR", cache_dir())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn kstep");
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    finish(child.wait_with_output().unwrap())
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// One compile cache for the whole test run, inside the target directory.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("kstep-cache")
}
