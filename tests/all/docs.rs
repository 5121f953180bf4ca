//! Every `kstep …` command the documentation shows (README.md, docs/*.md, ci-templates/) is
//! checked against the real binary, so the docs cannot drift from the command line:
//!
//! - an example (a line of a code block, a CI template's script line, a `# kstep …` comment of
//!   a template file) is run by bash in a scratch directory holding the files examples name
//!   (`k8s/`, `docker.env`, a kubeconfig…), with `kstep` on the PATH a wrapper around the built
//!   binary. What needs a cluster, or files the docs only name (a step's `.wasm`), is parsed
//!   only: the wrapper appends `--help`, which clap honours after parsing every argument before
//!   it (an unknown flag or a bad value still exits 2). The rest runs for real and must exit 0;
//! - a synopsis (`[--flag X]`, `FILE|DIR`, `…`) and a command quoted in the prose are checked
//!   word by word: its subcommands exist and `kstep SUB --help` lists every flag it names.
//!
//! A failure lists every example that fails, where it is written and what kstep said.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

use crate::support::{TempDir, cache_dir, copy_dir, kstep_bin, repo_root, test_fixture};

/// Subcommands run for real: they need no cluster and only files the scratch directory has.
/// Everything else (`deploy`, `apply`, `serviceaccount create`, `kubeconfig check`, `run`,
/// `step run`, `warm`, `demo`) is parsed only.
const WRAPPER: &str = r#"#!/bin/sh
case "$1 $2" in
  "render "*|"dotenv "*|"traefik "*|"version "*|"components "*|"kubeconfig encode"|"kubeconfig show"|"kubeconfig decode") mode=run ;;
  *) mode=parse ;;
esac
if [ "$mode" = parse ]; then set -- "$@" --help; fi
err=$(mktemp)
"$KSTEP_DOCS_BIN" "$@" 2> "$err"
code=$?
printf '%s exit %s: kstep %s\n' "$mode" "$code" "$*" >> "$KSTEP_DOCS_LOG"
cat "$err" >&2
rm -f "$err"
exit $code
"#;

/// A documented command and where it is written.
#[derive(Debug)]
struct Example {
    /// `docs/deploy.md:42`.
    place: String,
    /// The command line as written (continuations joined), from `kstep` on; for a template's
    /// script line, the whole line.
    line: String,
    /// Variables a CI template's job sets, in order (GitLab expands them like a shell).
    variables: Vec<(String, String)>,
}

#[test]
fn every_documented_command_parses_and_runs() {
    let root = repo_root();
    let mut runs = Vec::new();
    let mut words = Vec::new();
    for file in documentation(&root) {
        let text = std::fs::read_to_string(&file).unwrap();
        let rel = file.strip_prefix(&root).unwrap().display().to_string();
        if rel.ends_with(".md") {
            let (fenced, inline) = markdown_commands(&rel, &text);
            for e in fenced {
                if is_synopsis(&e.line) {
                    words.push(e);
                } else {
                    runs.push(e);
                }
            }
            words.extend(inline);
        } else {
            runs.extend(template_commands(&rel, &text));
        }
    }
    // The extraction itself is checked: the docs have a few dozen of each.
    assert!(runs.len() >= 20, "{} examples: {runs:#?}", runs.len());
    assert!(words.len() >= 60, "{} mentions: {words:#?}", words.len());

    let mut failures = String::new();
    let scratch = Scratch::new();
    for e in &runs {
        if let Err(why) = scratch.run(e) {
            let _ = writeln!(failures, "{}: `{}`\n{why}", e.place, e.line);
        }
    }
    let mut help = HelpCache::default();
    for e in &words {
        if let Err(why) = help.check_words(&e.line) {
            let _ = writeln!(failures, "{}: `{}`: {why}", e.place, e.line);
        }
    }
    assert!(
        failures.is_empty(),
        "documented commands that fail:\n{failures}"
    );
}

/// README.md, docs/*.md and every file under ci-templates/.
fn documentation(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut stack = vec![root.join("ci-templates")];
    let mut templates = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "md" || e == "yml" || e == "yaml")
            {
                templates.push(path);
            }
        }
    }
    templates.sort();
    files.extend(templates);
    files
}

/// The command lines of code blocks, and the `kstep …` code spans of the prose.
fn markdown_commands(rel: &str, text: &str) -> (Vec<Example>, Vec<Example>) {
    let mut fenced: Vec<Example> = Vec::new();
    let mut prose = String::new();
    let mut in_block = false;
    let mut pending: Option<(usize, String)> = None;
    // A YAML block is a CI file: its commands see the variables it sets.
    let mut block = String::new();
    let mut block_start = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            prose.push('\n');
            if in_block {
                block.clear();
                block_start = fenced.len();
            } else {
                let variables = ci_variables(&block);
                for e in &mut fenced[block_start..] {
                    e.variables.clone_from(&variables);
                }
            }
            continue;
        }
        if in_block {
            block.push_str(line);
            block.push('\n');
        }
        if !in_block {
            prose.push_str(line);
            prose.push('\n');
            continue;
        }
        prose.push('\n');
        let (start, mut joined) = match pending.take() {
            Some((start, head)) => (start, format!("{head} {}", line.trim())),
            None => (i + 1, line.to_owned()),
        };
        if let Some(head) = joined.strip_suffix('\\') {
            joined = head.trim_end().to_owned();
            pending = Some((start, joined));
            continue;
        }
        if let Some(command) = command_of(&joined) {
            fenced.push(Example {
                place: format!("{rel}:{start}"),
                line: command,
                variables: Vec::new(),
            });
        }
    }
    let mut inline = Vec::new();
    let mut rest = prose.as_str();
    let mut line = 1;
    while let Some(open) = rest.find('`') {
        line += rest[..open].matches('\n').count();
        let after = &rest[open + 1..];
        let Some(close) = after.find('`') else { break };
        let span = &after[..close];
        if let Some(command) = span.strip_prefix("kstep ") {
            inline.push(Example {
                place: format!("{rel}:{line}"),
                line: format!(
                    "kstep {}",
                    command.split_whitespace().collect::<Vec<_>>().join(" ")
                ),
                variables: Vec::new(),
            });
        }
        line += span.matches('\n').count();
        rest = &after[close + 1..];
    }
    (fenced, inline)
}

/// The `variables:` a block of GitLab CI YAML sets, globally or in a job (none when the block
/// is not such YAML).
fn ci_variables(block: &str) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(top)) = serde_saphyr::from_str(block) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let scopes = std::iter::once(&top).chain(top.values().filter_map(serde_json::Value::as_object));
    for scope in scopes {
        for (name, value) in scope
            .get("variables")
            .and_then(|v| v.as_object())
            .into_iter()
            .flatten()
        {
            if let Some(value) = value.as_str() {
                out.push((name.clone(), value.to_owned()));
            }
        }
    }
    out
}

/// The command of a code-block line that runs kstep: the line from its first `kstep` (or
/// `PATH/kstep`) in command position, diff and list markers and `$ ` prompts dropped.
fn command_of(line: &str) -> Option<String> {
    let mut l = line.trim_start();
    l = l.strip_prefix('+').unwrap_or(l).trim_start();
    l = l.strip_prefix("- ").unwrap_or(l).trim_start();
    l = l.strip_prefix("$ ").unwrap_or(l);
    let first = l.split_whitespace().next()?;
    if first == "kstep" || first.ends_with("/kstep") {
        return Some(format!("kstep{}", &l[first.len()..]));
    }
    None
}

/// A synopsis or a sketch rather than a command: optional parts, alternatives, elisions.
fn is_synopsis(line: &str) -> bool {
    let code = strip_comment(line);
    let bytes = code.as_bytes();
    code.contains('[')
        || code.contains('…')
        || bytes
            .windows(3)
            .any(|w| w[1] == b'|' && w[0] != b' ' && w[2] != b' ')
}

/// `line` without a trailing ` # comment` (outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '#') if prev.is_whitespace() => return line[..i].trim_end(),
            _ => {}
        }
        prev = c;
    }
    line
}

/// The script lines of a CI template's jobs (with each job's variables, its `extends` chain
/// first), and the `# kstep …` lines of its comments.
fn template_commands(rel: &str, text: &str) -> Vec<Example> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        // `#   kstep traefik render …`, not a sentence that starts with kstep.
        if let Some(comment) = line.trim_start().strip_prefix('#')
            && let Some(command) = comment.trim_start().strip_prefix("kstep ")
            && command.split(' ').next().is_some_and(|w| {
                !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
            })
        {
            let command = format!("kstep {command}");
            if !is_synopsis(&command) {
                out.push(Example {
                    place: format!("{rel}:{}", i + 1),
                    line: command,
                    variables: Vec::new(),
                });
            }
        }
    }
    if !rel.ends_with(".gitlab-ci.yml") {
        return out;
    }
    let jobs: serde_json::Map<String, serde_json::Value> = serde_saphyr::from_str(text).unwrap();
    let variables_of = |job: &str| -> Vec<(String, String)> {
        let mut chain = vec![job.to_owned()];
        while let Some(parent) = jobs[chain.last().unwrap()]["extends"].as_str() {
            chain.push(parent.to_owned());
        }
        let mut vars = Vec::new();
        for name in chain.iter().rev() {
            if let Some(v) = jobs[name]["variables"].as_object() {
                for (k, v) in v {
                    vars.push((k.clone(), v.as_str().unwrap_or_default().to_owned()));
                }
            }
        }
        vars
    };
    for (name, job) in &jobs {
        for key in ["before_script", "script", "after_script"] {
            for line in job[key].as_array().into_iter().flatten() {
                let line = line.as_str().unwrap();
                if line.contains("kstep ") {
                    let at = text
                        .lines()
                        .position(|l| {
                            l.contains(
                                line.split_whitespace()
                                    .take(4)
                                    .collect::<Vec<_>>()
                                    .join(" ")
                                    .as_str(),
                            )
                        })
                        .map_or(0, |i| i + 1);
                    out.push(Example {
                        place: format!("{rel}:{at} ({name})"),
                        // A conditional step (`if [ … ]; then kstep …; fi`) is checked
                        // as if its condition held.
                        line: line
                            .strip_prefix("if ")
                            .and_then(|l| l.split_once("; then ")?.1.strip_suffix("; fi"))
                            .unwrap_or(line)
                            .to_owned(),
                        variables: variables_of(name),
                    });
                }
            }
        }
    }
    out
}

/// The scratch project examples run in.
struct Scratch {
    dir: TempDir,
    kubeconfig_b64: String,
}

impl Scratch {
    fn new() -> Self {
        let root = repo_root();
        let dir = TempDir::new("docs-examples");
        copy_dir(&root.join("ci-templates/examples/k8s"), &dir.join("k8s"));
        std::os::unix::fs::symlink(root.join("ci-templates"), dir.join("ci-templates")).unwrap();
        std::fs::copy(
            root.join("ci-templates/examples/traefik-values.yaml"),
            dir.join("traefik-values.yaml"),
        )
        .unwrap();
        std::fs::copy(
            test_fixture("traefik/traefik.toml"),
            dir.join("traefik.toml"),
        )
        .unwrap();
        std::fs::copy(
            test_fixture("manifests/reference/deployment.yml"),
            dir.join("deployment.yml"),
        )
        .unwrap();
        for env in ["docker.env", "build.env"] {
            dir.write(env, "IMAGE=registry.example/team/blog:1.0\n");
        }
        let kubeconfig = std::fs::read(test_fixture("kubeconfigs/kind.yaml")).unwrap();
        std::fs::create_dir_all(dir.join("home/.kube")).unwrap();
        std::fs::write(dir.join("home/.kube/config"), &kubeconfig).unwrap();
        std::fs::write(dir.join("admin.yaml"), &kubeconfig).unwrap();
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let wrapper = dir.join("bin/kstep");
        std::fs::write(&wrapper, WRAPPER).unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            kubeconfig_b64: base64::engine::general_purpose::STANDARD.encode(&kubeconfig),
            dir,
        }
    }

    /// Runs `example` with bash; every kstep it started must have exited 0.
    fn run(&self, example: &Example) -> Result<(), String> {
        let log = self.dir.join("kstep.log");
        let _ = std::fs::remove_file(&log);
        let mut script =
            String::from("wl-copy() { cat > /dev/null; }\nexport CI_PROJECT_DIR=\"$PWD\"\n");
        for (name, value) in &example.variables {
            let escaped: String = value
                .chars()
                .flat_map(|c| {
                    let escape = matches!(c, '"' | '\\' | '`');
                    escape.then_some('\\').into_iter().chain([c])
                })
                .collect();
            let _ = writeln!(script, "export {name}=\"{escaped}\"");
        }
        script.push_str(&example.line);
        script.push('\n');
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.dir.join("home"))
            .env("KSTEP_CACHE_DIR", cache_dir())
            .env("KSTEP_DOCS_BIN", kstep_bin())
            .env("KSTEP_DOCS_LOG", &log)
            .env("KSTEP_KUBECONFIG", &self.kubeconfig_b64)
            .env("IMAGE", "registry.example/team/blog:1.0")
            .env("CI_REGISTRY_IMAGE", "registry.example/team/blog")
            .env("CI_COMMIT_SHA", "0123456789abcdef0123456789abcdef01234567")
            .env("CI_COMMIT_SHORT_SHA", "01234567")
            .env("CI_PIPELINE_ID", "100")
            .env("CI_JOB_ID", "200")
            .env("CI_COMMIT_REF_SLUG", "feature-x")
            .env("CI_APPLICATION_REPOSITORY", "registry.example/team/blog")
            .env("CI_APPLICATION_TAG", "1.0")
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        if log.is_empty() {
            return Err(format!("  kstep was not run:\n{said}"));
        }
        if log.lines().all(|l| l.contains(" exit 0: ")) {
            return Ok(());
        }
        Err(format!(
            "  {}\n  it said: {}",
            log.trim_end().replace('\n', "\n  "),
            said.trim_end().replace('\n', "\n  ")
        ))
    }
}

/// `kstep … --help` texts, by subcommand path.
#[derive(Default)]
struct HelpCache(HashMap<Vec<String>, String>);

impl HelpCache {
    fn help(&mut self, path: &[String]) -> Result<&str, String> {
        if !self.0.contains_key(path) {
            let out = Command::new(kstep_bin())
                .args(path)
                .arg("--help")
                .env_remove("KUBECONFIG")
                .env_remove("KSTEP_KUBECONFIG")
                .output()
                .unwrap();
            if !out.status.success() {
                return Err(format!(
                    "`kstep {} --help` fails: {}",
                    path.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim_end()
                ));
            }
            self.0.insert(
                path.to_vec(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            );
        }
        Ok(&self.0[path])
    }

    /// The subcommands `help` lists.
    fn subcommands(help: &str) -> Vec<String> {
        help.lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }

    /// Checks `kstep WORDS…`: the subcommand path exists and lists every flag named.
    fn check_words(&mut self, line: &str) -> Result<(), String> {
        let code = strip_comment(line);
        let mut tokens = code
            .split_whitespace()
            .skip(1)
            .map(|t| t.replace("\\|", "|"))
            .peekable();
        let mut path: Vec<String> = Vec::new();
        // `kstep sh -c …`: the image's entrypoint runs other commands as they are.
        if tokens.peek().is_some_and(|t| t == "sh") {
            return Ok(());
        }
        while let Some(token) = tokens.peek() {
            let level = self.help(&path)?.to_owned();
            let known = Self::subcommands(&level);
            if known.is_empty() {
                break;
            }
            let alternatives: Vec<&str> = token.split('|').collect();
            let hidden = |cache: &mut Self, a: &str| {
                // A hidden subcommand (`call`) has help of its own, unlike a value.
                let mut with = path.clone();
                with.push(a.to_owned());
                cache.help(&with).is_ok_and(|h| h != level)
            };
            if !alternatives
                .iter()
                .all(|a| known.iter().any(|k| k == a) || hidden(self, a))
            {
                if path.is_empty() {
                    return Err(format!("no subcommand `{token}`"));
                }
                break;
            }
            let token = tokens.next().unwrap();
            for a in token.split('|').skip(1) {
                let mut other = path.clone();
                other.push(a.to_owned());
                self.help(&other)?;
            }
            path.push(token.split('|').next().unwrap().to_owned());
        }
        let help = self.help(&path)?.to_owned();
        for token in tokens {
            let flag: String = token
                .trim_start_matches('[')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if !flag.starts_with('-') || flag.len() < 2 || flag == "--" || flag == "-" {
                continue;
            }
            let listed = help.match_indices(&flag).any(|(i, _)| {
                let before = help[..i].chars().next_back();
                let after = help[i + flag.len()..].chars().next();
                before.is_none_or(|c| c == ' ' || c == ',' || c == '[')
                    && after.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'))
            });
            if !listed {
                return Err(format!(
                    "`kstep {} --help` lists no `{flag}`",
                    path.join(" ")
                ));
            }
        }
        Ok(())
    }
}
