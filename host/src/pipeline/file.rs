//! The pipeline file (`kstep.yaml`): its YAML schema, and the checks that turn it into a
//! [`Pipeline`] with every path resolved and every error reported at its line and column.
//!
//! ```yaml
//! env: [CI_COMMIT_SHA, CI_PIPELINE_URL]   # imported from the job's environment, by name only
//! variables: {NAMESPACE: demo}            # literal variables
//! steps:
//!   - dotenv: build.env                   # built-in: variables from a dotenv file
//!   - render: k8s/                        # built-in: manifests, ${VAR} substituted
//!   - wasm: steps/deny_latest.wasm        # a custom step (a component)
//!     with: {required-limits: [memory]}   #   its parameters
//!     variables: [CI_COMMIT_SHA]          #   the only variables it sees
//!     read: policies                      #   one read-only project subdirectory
//!     secrets: true                       #   sees Secret values (else stand-ins)
//!     limits: {cpu: 2s, memory: 64MiB, wall: 30s}
//!   - wasm: oci://registry.example.com/group/steps/deny-latest:1.2
//!     verify: {key: cosign.pub}           #   a step by reference, its cosign signature checked
//!   - apply: {}                           # host action
//!   - wait: {timeout: 5m}                 # host action
//! ```
//!
//! A top-level `verify: {key: FILE}` applies to every step by reference that has none.
//!
//! Unknown keys, a step with zero or two kinds, keys that do not belong to a step's kind and
//! grants that leave the project are errors, all collected and reported as `FILE:LINE:COL:`.
//! YAML 1.1 booleans (`yes`, `on`, `y`) stay strings: parameters reach steps as written.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use serde_saphyr::{Location, MessageFormatter as _, Spanned};

use crate::deploy::applyset::ParentRef;
use crate::duration;
use crate::oci::StepRef;
use crate::runtime::{GrantedDir, Limits};
use crate::steps::custom::is_variable_name;
use crate::units::parse_size;

/// The largest pipeline file kstep reads.
pub const MAX_PIPELINE_BYTES: u64 = 1 << 20;

/// A 1-based position in the pipeline file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pos {
    /// Line.
    pub line: u64,
    /// Column.
    pub column: u64,
}

impl From<Location> for Pos {
    fn from(l: Location) -> Self {
        Self {
            line: l.line(),
            column: l.column(),
        }
    }
}

/// One problem in the pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// Where.
    pub pos: Pos,
    /// What.
    pub message: String,
}

/// The problems of a pipeline file, printed `FILE:LINE:COL: message`, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FileErrors {
    /// The file as the user named it.
    pub file: String,
    /// Every problem, in file order.
    pub errors: Vec<FileError>,
}

impl fmt::Display for FileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if e.pos.line == 0 {
                write!(f, "{}: {}", self.file, e.message)?;
            } else {
                write!(
                    f,
                    "{}:{}:{}: {}",
                    self.file, e.pos.line, e.pos.column, e.message
                )?;
            }
        }
        Ok(())
    }
}

/// A checked pipeline file.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// The file as the user named it (for messages).
    pub file: String,
    /// The project: the directory of the pipeline file, canonical. Relative paths start here.
    pub project: PathBuf,
    /// Names to import from the process environment.
    pub env: Vec<String>,
    /// Literal variables.
    pub variables: Vec<(String, String)>,
    /// The steps, in order.
    pub steps: Vec<StepSpec>,
}

impl Pipeline {
    /// The steps by reference (`wasm: oci://…`), with their entries' positions.
    pub fn references(&self) -> impl Iterator<Item = (&StepRef, &StepSpec)> {
        self.steps.iter().filter_map(|step| match &step.kind {
            KindSpec::Wasm(WasmSpec {
                source: StepSource::Oci(reference),
                ..
            }) => Some((reference, step)),
            _ => None,
        })
    }
}

/// One step of the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSpec {
    /// `name:`, else derived from the kind (`dotenv`, the component's file stem…).
    pub name: String,
    /// Where the entry starts.
    pub pos: Pos,
    /// What it does.
    pub kind: KindSpec,
}

/// What a step does, with its kind's settings.
#[derive(Debug, Clone, PartialEq)]
pub enum KindSpec {
    /// Built-in: variables from a dotenv file.
    Dotenv(DotenvSpec),
    /// Built-in: manifests rendered with the pipeline's variables.
    Render(RenderSpec),
    /// Built-in: Traefik manifests from a values file.
    Traefik(TraefikSpec),
    /// A custom step.
    Wasm(WasmSpec),
    /// Host action: server-side apply of the documents.
    Apply(ApplySpec),
    /// Host action: wait for the rollouts of what was applied.
    Wait(WaitSpec),
}

impl KindSpec {
    /// The key that selects this kind.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Dotenv(_) => "dotenv",
            Self::Render(_) => "render",
            Self::Traefik(_) => "traefik",
            Self::Wasm(_) => "wasm",
            Self::Apply(_) => "apply",
            Self::Wait(_) => "wait",
        }
    }
}

/// `dotenv:` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvSpec {
    /// The file.
    pub file: PathBuf,
    /// `compose` reads Docker Compose `.env` syntax; default `gitlab`.
    pub compose: bool,
}

/// `render:` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderSpec {
    /// Manifest files or directories, in order.
    pub files: Vec<PathBuf>,
    /// Image overrides: container name or image repository → reference (variables substituted).
    pub images: Vec<(String, String)>,
    /// Rewrite removed apiVersions that have a mechanical replacement.
    pub upgrade_api_versions: bool,
}

/// `traefik:` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraefikSpec {
    /// The values file.
    pub values: PathBuf,
}

/// Where a custom step's component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepSource {
    /// A file (`wasm: steps/x.wasm`).
    File(PathBuf),
    /// A registry (`wasm: oci://REGISTRY/REPO:TAG`), pinned by `kstep.lock`.
    Oci(StepRef),
}

/// `verify:`: the key a step by reference must be signed with (cosign).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySpec {
    /// The public key file (PEM).
    pub key: PathBuf,
    /// Where `verify:` is written.
    pub pos: Pos,
}

/// A custom step's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WasmSpec {
    /// The component.
    pub source: StepSource,
    /// The signature it must carry (steps by reference only).
    pub verify: Option<VerifySpec>,
    /// `with:`, a JSON object.
    pub params: Map<String, Value>,
    /// The variables it may see, with where each is listed.
    pub variables: Vec<(String, Pos)>,
    /// The directory it may read.
    pub read: Option<GrantedDir>,
    /// Whether it sees the values of Secret manifests (`secrets: true`); otherwise it gets
    /// stand-ins ([`crate::secrets::StandIns`]).
    pub secrets: bool,
    /// Its CPU and memory limits.
    pub limits: Limits,
}

/// `apply:` settings (the namespace policy of `kstep apply`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplySpec {
    /// The namespace of objects that name none (default: the kubeconfig context's).
    pub namespace: Option<String>,
    /// Other namespaces objects may name.
    pub allow_namespaces: Vec<String>,
    /// Allow cluster-scoped objects.
    pub allow_cluster_scoped: bool,
    /// Take over fields other managers own.
    pub force_conflicts: bool,
    /// The server-side apply field manager (`None`: kstep's default).
    pub field_manager: Option<String>,
    /// The ApplySet the documents belong to.
    pub applyset: Option<ParentRef>,
    /// Delete the set's members this apply no longer contains.
    pub prune: bool,
}

/// `wait:` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitSpec {
    /// How long to wait for all rollouts.
    pub timeout: Duration,
    /// A pod stuck in a failure state this long fails the rollout early.
    pub failure_grace: Duration,
}

impl Default for WaitSpec {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            failure_grace: Duration::from_secs(30),
        }
    }
}

/// Parses and checks the text of a pipeline file. `file` names it in messages; `project` is the
/// directory relative paths start from (canonical).
///
/// # Errors
/// Every problem found, with its position.
pub fn parse(file: &str, project: &Path, text: &str) -> Result<Pipeline, FileErrors> {
    let fail = |errors: Vec<FileError>| FileErrors {
        file: file.to_owned(),
        errors,
    };
    let options = serde_saphyr::options! {
        strict_booleans: true,
    };
    // Unknown keys first, from the event stream: the typed parse below ignores them, so that
    // one misspelt key does not hide every other problem.
    let unknown = unknown_keys(text);
    let mut checker = Checker {
        project,
        errors: unknown
            .iter()
            .map(|u| FileError {
                pos: u.pos,
                message: u.message(),
            })
            .collect(),
        unknown_in_root: unknown.iter().any(|u| u.place == Place::Root),
        unknown_in_steps: unknown
            .iter()
            .filter_map(|u| match u.place {
                Place::Step(i) => Some(i),
                _ => None,
            })
            .collect(),
    };
    let pipeline = match serde_saphyr::from_str_with_options::<RawFile>(text, options) {
        Ok(raw) => Some(checker.pipeline(file, raw)),
        Err(e) => {
            checker.errors.push(FileError {
                pos: e.location().map(Pos::from).unwrap_or_default(),
                message: serde_saphyr::DefaultMessageFormatter
                    .format_message(&e)
                    .into_owned(),
            });
            None
        }
    };
    match pipeline {
        Some(pipeline) if checker.errors.is_empty() => Ok(pipeline),
        _ => {
            checker.errors.sort_by_key(|e| (e.pos.line, e.pos.column));
            Err(fail(checker.errors))
        }
    }
}

/// Where a mapping is in the pipeline file, for the unknown-key check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The top level ([`RawFile`]).
    Root,
    /// The `steps:` sequence.
    Steps,
    /// Step number N, 0-based ([`RawStep`]).
    Step(usize),
    /// The settings of a step's kind, or its limits: these keys, nothing checked below.
    Settings(&'static [&'static str]),
    /// Free-form (`variables`, `with`, `images`…) or not a mapping of the schema.
    Free,
}

impl Place {
    /// The keys a mapping here may have (`None`: any).
    fn fields(self) -> Option<&'static [&'static str]> {
        match self {
            Self::Root => Some(fields_of::<RawFile>()),
            Self::Step(_) => Some(fields_of::<RawStep>()),
            Self::Settings(fields) => Some(fields),
            Self::Steps | Self::Free => None,
        }
    }

    /// The place of the value of `key` in a mapping here.
    fn value_of(self, key: &str) -> Self {
        match (self, key) {
            (Self::Root, "steps") => Self::Steps,
            (Self::Root | Self::Step(_), "verify") => Self::Settings(fields_of::<RawVerify>()),
            (Self::Step(_), "dotenv") => Self::Settings(fields_of::<RawDotenv>()),
            (Self::Step(_), "render") => Self::Settings(fields_of::<RawRender>()),
            (Self::Step(_), "traefik") => Self::Settings(fields_of::<RawTraefik>()),
            (Self::Step(_), "apply") => Self::Settings(fields_of::<RawApply>()),
            (Self::Step(_), "wait") => Self::Settings(fields_of::<RawWait>()),
            (Self::Step(_), "limits") => Self::Settings(fields_of::<RawLimits>()),
            _ => Self::Free,
        }
    }
}

/// A key the schema does not know.
struct Unknown {
    pos: Pos,
    key: String,
    place: Place,
}

impl Unknown {
    /// serde's wording, as when it stopped at the first unknown key.
    fn message(&self) -> String {
        format!(
            "unknown field `{}`, expected one of {}",
            self.key,
            self.place.fields().unwrap_or_default().join(", ")
        )
    }
}

/// The keys of the schema's mappings that it does not know, in file order. Reads the first
/// document's events (a YAML error is left to the typed parse, which reports it). Content
/// reached through an alias or a merge key is checked where it is defined only.
fn unknown_keys(text: &str) -> Vec<Unknown> {
    use serde_saphyr::granit_parser::{Event, Parser};

    enum Frame {
        /// A mapping; `key`: `None` while a key is awaited, else the key whose value is next
        /// (`Some(None)` after a key that is not a plain string).
        Map {
            place: Place,
            key: Option<Option<String>>,
        },
        Seq {
            place: Place,
            next: usize,
        },
    }
    let mut found = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut documents = 0;
    let mut parser = Parser::new_from_str(text);
    while let Some(Ok((event, span))) = parser.next_event() {
        let scalar = match &event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    break;
                }
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                continue;
            }
            Event::Scalar(value, ..) => Some(value.to_string()),
            Event::Alias(_) | Event::MappingStart(..) | Event::SequenceStart(..) => None,
            _ => continue,
        };
        // This node's place, and whether it is a key.
        let place = match stack.last_mut() {
            None => Place::Root,
            Some(Frame::Seq { place, next }) => {
                let item = *next;
                *next += 1;
                match place {
                    Place::Steps => Place::Step(item),
                    _ => Place::Free,
                }
            }
            Some(Frame::Map { place, key }) => match key.take() {
                Some(k) => k.map_or(Place::Free, |k| place.value_of(&k)),
                None => {
                    if let (Some(k), Some(fields)) = (&scalar, place.fields())
                        && k != "<<"
                        && !fields.contains(&k.as_str())
                    {
                        found.push(Unknown {
                            pos: Pos {
                                line: span.start.line() as u64,
                                column: span.start.col() as u64 + 1,
                            },
                            key: k.clone(),
                            place: *place,
                        });
                    }
                    *key = Some(scalar.clone());
                    Place::Free
                }
            },
        };
        match event {
            Event::MappingStart(..) => stack.push(Frame::Map { place, key: None }),
            Event::SequenceStart(..) => stack.push(Frame::Seq { place, next: 0 }),
            _ => {}
        }
    }
    found
}

/// The keys serde accepts for `T`: the `fields` its derived `Deserialize` hands to
/// `deserialize_struct`. The unknown-key check reads the schema from the structs themselves,
/// so the two cannot drift apart.
fn fields_of<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    #[derive(Debug)]
    struct Stop;
    impl fmt::Display for Stop {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("probe")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: fmt::Display>(_: M) -> Self {
            Self
        }
    }
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            *self.0 = fields;
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// Reads `path` and parses it; the project is its directory.
///
/// # Errors
/// Unreadable or too big (no position), or the problems [`parse`] finds.
pub fn load(path: &Path) -> Result<Pipeline, FileErrors> {
    let file = path.display().to_string();
    let whole = |message: String| FileErrors {
        file: file.clone(),
        errors: vec![FileError {
            pos: Pos::default(),
            message,
        }],
    };
    let bytes = crate::fsutil::read_capped(path, true, MAX_PIPELINE_BYTES)
        .map_err(|e| whole(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        whole(format!(
            "not UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let project = dir
        .canonicalize()
        .map_err(|e| whole(format!("cannot resolve its directory: {e}")))?;
    parse(&file, &project, &text)
}

struct Checker<'a> {
    project: &'a Path,
    errors: Vec<FileError>,
    /// A top-level key is unknown (a misspelt `steps:`?): "no steps" would only repeat it.
    unknown_in_root: bool,
    /// Steps (0-based) with an unknown key (a misspelt kind?): "needs one of" would repeat it.
    unknown_in_steps: Vec<usize>,
}

impl Checker<'_> {
    fn error(&mut self, pos: impl Into<Pos>, message: impl Into<String>) {
        self.errors.push(FileError {
            pos: pos.into(),
            message: message.into(),
        });
    }

    fn pipeline(&mut self, file: &str, raw: RawFile) -> Pipeline {
        let mut env = Vec::new();
        for name in raw.env {
            if !is_variable_name(&name.value) {
                self.error(
                    name.referenced,
                    format!("`{}` is not a variable name", name.value),
                );
            } else if crate::secrets::is_credential_name(&name.value) {
                self.error(
                    name.referenced,
                    format!(
                        "`{}` holds credentials: kstep never hands it to a step (the host reads \
                         the kubeconfig itself for `apply`)",
                        name.value
                    ),
                );
            } else {
                env.push(name.value);
            }
        }
        let mut variables = Vec::new();
        for (name, value) in raw.variables {
            if is_variable_name(&name) {
                variables.push((name, value.value));
            } else {
                self.error(value.referenced, format!("`{name}` is not a variable name"));
            }
        }
        if raw.steps.is_empty() && !self.unknown_in_root {
            self.error(Pos { line: 1, column: 1 }, "the pipeline has no steps");
        }
        let default_verify = raw.verify.map(|v| self.verify(v));
        let mut steps: Vec<StepSpec> = raw
            .steps
            .into_iter()
            .enumerate()
            .filter_map(|(i, s)| self.step(i, s))
            .collect();
        for step in &mut steps {
            if let KindSpec::Wasm(w) = &mut step.kind
                && matches!(w.source, StepSource::Oci(_))
                && w.verify.is_none()
            {
                w.verify.clone_from(&default_verify);
            }
        }
        Pipeline {
            file: file.to_owned(),
            project: self.project.to_path_buf(),
            env,
            variables,
            steps,
        }
    }

    fn step(&mut self, index: usize, raw: Spanned<RawStep>) -> Option<StepSpec> {
        let pos = Pos::from(raw.referenced);
        let raw = raw.value;
        let mut kinds: Vec<(&str, Pos)> = Vec::new();
        let mut note = |key, loc: Option<Location>| {
            if let Some(loc) = loc {
                kinds.push((key, loc.into()));
            }
        };
        note("dotenv", raw.dotenv.as_ref().map(|s| s.referenced));
        note("render", raw.render.as_ref().map(|s| s.referenced));
        note("traefik", raw.traefik.as_ref().map(|s| s.referenced));
        note("wasm", raw.wasm.as_ref().map(|s| s.referenced));
        note("apply", raw.apply.as_ref().map(|s| s.referenced));
        note("wait", raw.wait.as_ref().map(|s| s.referenced));
        kinds.sort_by_key(|(_, pos)| (pos.line, pos.column));
        match kinds.as_slice() {
            [] => {
                if self.unknown_in_steps.contains(&index) {
                    return None;
                }
                self.error(
                    pos,
                    "a step needs one of `dotenv`, `render`, `traefik`, `wasm` (a custom step), \
                     `apply` or `wait`",
                );
                return None;
            }
            [_] => {}
            [(first, _), (second, at), ..] => {
                self.error(
                    *at,
                    format!("a step has one kind: `{first}` and `{second}` cannot be combined (start a new `-` entry)"),
                );
                return None;
            }
        }
        let is_wasm = raw.wasm.is_some();
        // Keys that only make sense for custom steps.
        if !is_wasm {
            let kind = kinds[0].0;
            for (key, loc) in [
                ("with", raw.with.as_ref().map(|s| s.referenced)),
                ("variables", raw.variables.as_ref().map(|s| s.referenced)),
                ("read", raw.read.as_ref().map(|s| s.referenced)),
                ("secrets", raw.secrets.as_ref().map(|s| s.referenced)),
                ("limits", raw.limits.as_ref().map(|s| s.referenced)),
                ("verify", raw.verify.as_ref().map(|s| s.referenced)),
            ] {
                if let Some(loc) = loc {
                    self.error(
                        loc,
                        format!("`{key}` applies to custom steps (`wasm:`), not to `{kind}`"),
                    );
                }
            }
        }
        let kind = if let Some(spec) = raw.dotenv {
            KindSpec::Dotenv(self.dotenv(spec))
        } else if let Some(spec) = raw.render {
            KindSpec::Render(self.render(spec))
        } else if let Some(spec) = raw.traefik {
            let values = &spec.value.0.values;
            KindSpec::Traefik(TraefikSpec {
                values: self.path(&values.value, or_outer(values.referenced, spec.referenced)),
            })
        } else if let Some(spec) = raw.apply {
            let spec = spec.value.unwrap_or_default();
            let applyset = spec
                .applyset
                .and_then(|a| match a.value.parse::<ParentRef>() {
                    Ok(parent) => Some(parent),
                    Err(e) => {
                        self.error(a.referenced, e);
                        None
                    }
                });
            let prune = match spec.prune {
                Some(p) if p.value && applyset.is_none() => {
                    self.error(
                        p.referenced,
                        "`prune` needs `applyset`: only the members of an ApplySet can be pruned",
                    );
                    false
                }
                p => p.is_some_and(|p| p.value),
            };
            KindSpec::Apply(ApplySpec {
                applyset,
                prune,
                namespace: spec.namespace.map(|n| n.value),
                allow_namespaces: spec.allow_namespaces.into_iter().map(|n| n.value).collect(),
                allow_cluster_scoped: spec.allow_cluster_scoped.is_some_and(|f| f.value),
                force_conflicts: spec.force_conflicts.is_some_and(|f| f.value),
                field_manager: spec.field_manager.and_then(|m| {
                    match crate::deploy::session::check_field_manager(&m.value) {
                        Ok(()) => Some(m.value),
                        Err(e) => {
                            self.error(m.referenced, e);
                            None
                        }
                    }
                }),
            })
        } else if let Some(spec) = raw.wait {
            let spec = spec.value.unwrap_or_default();
            let mut wait = WaitSpec::default();
            for (value, slot) in [
                (spec.timeout, &mut wait.timeout),
                (spec.failure_grace, &mut wait.failure_grace),
            ] {
                if let Some(v) = value {
                    match duration::parse(&v.value) {
                        Ok(d) => *slot = d,
                        Err(e) => self.error(v.referenced, e),
                    }
                }
            }
            KindSpec::Wait(wait)
        } else if let Some(path) = raw.wasm {
            let mut spec = self.wasm(path, raw.with, raw.variables, raw.read, raw.limits);
            spec.secrets = raw.secrets.is_some_and(|s| s.value);
            if let Some(verify) = raw.verify {
                let at = verify.referenced;
                spec.verify = Some(self.verify(verify));
                if matches!(spec.source, StepSource::File(_)) {
                    self.error(
                        at,
                        "`verify` applies to steps by reference (`wasm: oci://…`): a file in \
                         the project is reviewed with it",
                    );
                }
            }
            KindSpec::Wasm(spec)
        } else {
            return None;
        };
        let name = match raw.name {
            Some(name)
                if name.value.trim().is_empty() || name.value.chars().any(char::is_control) =>
            {
                self.error(
                    name.referenced,
                    "a step name must be a non-empty single line",
                );
                name.value
            }
            Some(name) => name.value,
            None => match &kind {
                KindSpec::Wasm(WasmSpec {
                    source: StepSource::File(path),
                    ..
                }) => path
                    .file_stem()
                    .map_or_else(|| "wasm".into(), |s| s.to_string_lossy().into_owned()),
                KindSpec::Wasm(WasmSpec {
                    source: StepSource::Oci(reference),
                    ..
                }) => reference.name().to_owned(),
                other => other.key().to_owned(),
            },
        };
        Some(StepSpec { name, pos, kind })
    }

    fn dotenv(&mut self, spec: Spanned<Shorthand<RawDotenv>>) -> DotenvSpec {
        let raw = spec.value.0;
        let compose = match raw.flavor {
            None => false,
            Some(f) => match f.value.as_str() {
                "gitlab" => false,
                "compose" => true,
                other => {
                    self.error(
                        f.referenced,
                        format!("unknown dotenv flavor `{other}` (use `gitlab` or `compose`)"),
                    );
                    false
                }
            },
        };
        DotenvSpec {
            file: self.path(
                &raw.file.value,
                or_outer(raw.file.referenced, spec.referenced),
            ),
            compose,
        }
    }

    fn render(&mut self, spec: Spanned<Shorthand<RawRender>>) -> RenderSpec {
        let raw = spec.value.0;
        if raw.files.is_empty() {
            self.error(
                spec.referenced,
                "`render` needs at least one manifest file or directory",
            );
        }
        let files = raw
            .files
            .iter()
            .map(|f| self.path(&f.value, or_outer(f.referenced, spec.referenced)))
            .collect();
        RenderSpec {
            files,
            images: raw
                .images
                .into_iter()
                .map(|(name, reference)| (name, reference.value))
                .collect(),
            upgrade_api_versions: raw.upgrade_api_versions.is_some_and(|u| u.value),
        }
    }

    fn wasm(
        &mut self,
        path: Spanned<String>,
        with: Option<Spanned<Value>>,
        variables: Option<Spanned<Vec<Spanned<String>>>>,
        read: Option<Spanned<String>>,
        limits: Option<Spanned<RawLimits>>,
    ) -> WasmSpec {
        let params = match with.map(|w| (w.value, w.referenced)) {
            None | Some((Value::Null, _)) => Map::new(),
            Some((Value::Object(map), _)) => map,
            Some((_, loc)) => {
                self.error(loc, "`with` must be a mapping of parameters");
                Map::new()
            }
        };
        let mut names = Vec::new();
        for name in variables.map(|v| v.value).unwrap_or_default() {
            if is_variable_name(&name.value) {
                names.push((name.value, name.referenced.into()));
            } else {
                self.error(
                    name.referenced,
                    format!("`{}` is not a variable name", name.value),
                );
            }
        }
        let read = read.and_then(|r| self.grant(&r.value, r.referenced));
        let mut out = Limits::default();
        if let Some(limits) = limits {
            if let Some(cpu) = limits.value.cpu {
                match duration::parse(&cpu.value) {
                    Ok(d) => out.cpu = d,
                    Err(e) => self.error(cpu.referenced, e),
                }
            }
            if let Some(memory) = limits.value.memory {
                match parse_size(&memory.value) {
                    Ok(m) => out.memory = m,
                    Err(e) => self.error(memory.referenced, e),
                }
            }
            if let Some(wall) = limits.value.wall {
                match duration::parse(&wall.value) {
                    Ok(d) => out.wall = d,
                    Err(e) => self.error(wall.referenced, e),
                }
            }
        }
        let source = if path.value.starts_with("oci://") {
            match path.value.parse::<StepRef>() {
                Ok(reference) => StepSource::Oci(reference),
                Err(e) => {
                    self.error(path.referenced, e.to_string());
                    StepSource::File(PathBuf::new())
                }
            }
        } else {
            if !path.value.ends_with(".wasm") {
                self.error(
                    path.referenced,
                    format!(
                        "`{}`: a custom step is a `.wasm` component or an `oci://` reference",
                        path.value
                    ),
                );
            }
            StepSource::File(self.path(&path.value, path.referenced))
        };
        WasmSpec {
            source,
            verify: None,
            params,
            variables: names,
            read,
            secrets: false,
            limits: out,
        }
    }

    fn verify(&mut self, raw: Spanned<RawVerify>) -> VerifySpec {
        VerifySpec {
            key: self.path(
                &raw.value.key.value,
                or_outer(raw.value.key.referenced, raw.referenced),
            ),
            pos: raw.referenced.into(),
        }
    }

    /// A path relative to the project (absolute paths are kept).
    fn path(&mut self, text: &str, loc: Location) -> PathBuf {
        if text.is_empty() {
            self.error(loc, "empty path");
        }
        self.project.join(text)
    }

    fn grant(&mut self, text: &str, loc: Location) -> Option<GrantedDir> {
        check_grant(self.project, text)
            .map_err(|message| self.error(loc, message))
            .ok()
    }
}

/// Checks a `read:` grant: a relative path to an existing subdirectory of `project` (canonical)
/// that stays inside it once symlinks are resolved. The guest sees it at `/` + the relative
/// path.
///
/// # Errors
/// Why the grant is refused.
pub fn check_grant(project: &Path, text: &str) -> Result<GrantedDir, String> {
    let relative = Path::new(text);
    if relative.is_absolute() {
        return Err(format!(
            "`read: {text}`: give a directory relative to the project (the directory of the pipeline file)"
        ));
    }
    if relative
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(format!(
            "`read: {text}`: `..` is not allowed: a step may only read inside the project"
        ));
    }
    let parts: Vec<String> = relative
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        return Err(format!(
            "`read: {text}`: grant a subdirectory, not the whole project"
        ));
    }
    let host = project
        .join(relative)
        .canonicalize()
        .map_err(|e| format!("`read: {text}`: {e}"))?;
    if !host.starts_with(project) || host == project {
        return Err(format!(
            "`read: {text}` leads outside the project (through a symbolic link); a step may only read inside it"
        ));
    }
    if !host.is_dir() {
        return Err(format!("`read: {text}` is not a directory"));
    }
    Ok(GrantedDir {
        host,
        guest: format!("/{}", parts.join("/")),
    })
}

/// A shorthand position (`dotenv: FILE`) has no span of its own: use the key's.
fn or_outer(inner: Location, outer: Location) -> Location {
    if inner.line() == 0 { outer } else { inner }
}

// ---- The raw YAML schema. `Spanned` keeps positions for the checks above. ----

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    env: Vec<Spanned<String>>,
    #[serde(default)]
    variables: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    steps: Vec<Spanned<RawStep>>,
    verify: Option<Spanned<RawVerify>>,
}

#[derive(Deserialize)]
struct RawVerify {
    key: Spanned<String>,
}

#[derive(Deserialize)]
struct RawStep {
    name: Option<Spanned<String>>,
    dotenv: Option<Spanned<Shorthand<RawDotenv>>>,
    render: Option<Spanned<Shorthand<RawRender>>>,
    traefik: Option<Spanned<Shorthand<RawTraefik>>>,
    wasm: Option<Spanned<String>>,
    // `- apply:` (no value) is an apply with defaults, not an absent key.
    #[serde(default, deserialize_with = "present")]
    apply: Option<Spanned<Option<RawApply>>>,
    #[serde(default, deserialize_with = "present")]
    wait: Option<Spanned<Option<RawWait>>>,
    with: Option<Spanned<Value>>,
    variables: Option<Spanned<Vec<Spanned<String>>>>,
    read: Option<Spanned<String>>,
    secrets: Option<Spanned<bool>>,
    limits: Option<Spanned<RawLimits>>,
    verify: Option<Spanned<RawVerify>>,
}

fn present<'de, D, T>(d: D) -> Result<Option<Spanned<Option<T>>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Spanned::<Option<T>>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct RawDotenv {
    file: Spanned<String>,
    flavor: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawRender {
    files: Vec<Spanned<String>>,
    #[serde(default)]
    images: BTreeMap<String, Spanned<String>>,
    upgrade_api_versions: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
struct RawTraefik {
    values: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct RawApply {
    namespace: Option<Spanned<String>>,
    #[serde(default)]
    allow_namespaces: Vec<Spanned<String>>,
    allow_cluster_scoped: Option<Spanned<bool>>,
    force_conflicts: Option<Spanned<bool>>,
    field_manager: Option<Spanned<String>>,
    applyset: Option<Spanned<String>>,
    prune: Option<Spanned<bool>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct RawWait {
    timeout: Option<Spanned<String>>,
    failure_grace: Option<Spanned<String>>,
}

#[derive(Deserialize)]
struct RawLimits {
    cpu: Option<Spanned<String>>,
    memory: Option<Spanned<String>>,
    wall: Option<Spanned<String>>,
}

/// A kind's settings, or the shorthand for its main path(s): `dotenv: FILE`, `render: DIR`,
/// `render: [A, B]`.
struct Shorthand<T>(T);

trait FromPaths: Sized {
    fn from_paths(paths: Vec<String>) -> Option<Self>;
}

fn unspanned(s: String) -> Spanned<String> {
    Spanned {
        value: s,
        referenced: Location::UNKNOWN,
        defined: Location::UNKNOWN,
    }
}

impl FromPaths for RawDotenv {
    fn from_paths(mut paths: Vec<String>) -> Option<Self> {
        (paths.len() == 1).then(|| Self {
            file: unspanned(paths.remove(0)),
            flavor: None,
        })
    }
}

impl FromPaths for RawRender {
    fn from_paths(paths: Vec<String>) -> Option<Self> {
        Some(Self {
            files: paths.into_iter().map(unspanned).collect(),
            images: BTreeMap::new(),
            upgrade_api_versions: None,
        })
    }
}

impl FromPaths for RawTraefik {
    fn from_paths(mut paths: Vec<String>) -> Option<Self> {
        (paths.len() == 1).then(|| Self {
            values: unspanned(paths.remove(0)),
        })
    }
}

impl<'de, T: Deserialize<'de> + FromPaths> Deserialize<'de> for Shorthand<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de> + FromPaths> Visitor<'de> for V<T> {
            type Value = Shorthand<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a path, or a mapping of settings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::from_paths(vec![v.to_owned()])
                    .map(Shorthand)
                    .ok_or_else(|| E::custom("expected a path"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut paths = Vec::new();
                while let Some(p) = seq.next_element::<String>()? {
                    paths.push(p);
                }
                T::from_paths(paths)
                    .map(Shorthand)
                    .ok_or_else(|| de::Error::custom("expected one path, not a list"))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Shorthand)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn project() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kstep-pipeline-file-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("policies/nested")).unwrap();
        dir.canonicalize().unwrap()
    }

    fn errors(text: &str) -> String {
        parse("kstep.yaml", &project(), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_full_pipeline_parses() {
        let p = parse(
            "kstep.yaml",
            &project(),
            "env: [CI_COMMIT_SHA]\nvariables: {NS: demo, ON: on}\nsteps:\n\
             - dotenv: build.env\n\
             - dotenv: {file: .env, flavor: compose}\n\
             - render: [k8s/, extra.yaml]\n\
             - wasm: steps/deny.wasm\n  name: policy\n  with: {tags: [y, on], n: 2}\n  variables: [CI_COMMIT_SHA]\n  read: policies/nested/\n  secrets: true\n  limits: {cpu: 500ms, memory: 32MiB, wall: 30s}\n\
             - apply:\n\
             - wait: {timeout: 2m}\n",
        )
        .unwrap();
        assert_eq!(p.env, ["CI_COMMIT_SHA"]);
        assert_eq!(
            p.variables,
            [("NS".into(), "demo".into()), ("ON".into(), "on".into())]
        );
        let kinds: Vec<&str> = p.steps.iter().map(|s| s.kind.key()).collect();
        assert_eq!(
            kinds,
            ["dotenv", "dotenv", "render", "wasm", "apply", "wait"]
        );
        assert_eq!(p.steps[0].name, "dotenv");
        assert_eq!(p.steps[0].pos, Pos { line: 4, column: 3 });
        let KindSpec::Dotenv(d) = &p.steps[1].kind else {
            panic!()
        };
        assert!(d.compose);
        let KindSpec::Wasm(w) = &p.steps[3].kind else {
            panic!()
        };
        assert_eq!(p.steps[3].name, "policy");
        assert_eq!(
            w.source,
            StepSource::File(p.project.join("steps/deny.wasm"))
        );
        assert_eq!(
            Value::Object(w.params.clone()),
            serde_json::json!({"tags": ["y", "on"], "n": 2})
        );
        assert_eq!(
            w.variables,
            [(
                "CI_COMMIT_SHA".into(),
                Pos {
                    line: 10,
                    column: 15
                }
            )]
        );
        assert!(w.secrets);
        let read = w.read.as_ref().unwrap();
        assert_eq!(read.guest, "/policies/nested");
        assert_eq!(read.host, p.project.join("policies/nested"));
        assert_eq!(
            (w.limits.cpu, w.limits.memory, w.limits.wall),
            (
                Duration::from_millis(500),
                32 << 20,
                Duration::from_secs(30)
            )
        );
        assert_eq!(p.steps[4].kind, KindSpec::Apply(ApplySpec::default()));
        assert_eq!(
            p.steps[5].kind,
            KindSpec::Wait(WaitSpec {
                timeout: Duration::from_secs(120),
                ..WaitSpec::default()
            })
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_their_position() {
        assert_eq!(
            errors("steps:\n  - wasm: a.wasm\n    limits:\n      cpux: 2s\n"),
            "kstep.yaml:4:7: unknown field `cpux`, expected one of cpu, memory, wall"
        );
        assert!(errors("stepz: []\n").starts_with("kstep.yaml:1:1: unknown field `stepz`"));
        assert!(
            errors("steps:\n  - dotenv: {file: a, flavr: x}\n")
                .starts_with("kstep.yaml:2:23: unknown field `flavr`")
        );
    }

    #[test]
    fn unknown_keys_are_collected_with_every_other_problem() {
        // Three misspelt keys used to take three runs before the rest showed.
        let text = "env: [KUBECONFIG]\nsteps:\n\
                    - rendr: k8s/\n\
                    - dotenv: a.env\n  nmae: x\n  with: {x: 1}\n\
                    - wait: {timeout: 90, wat: 1}\n\
                    - wasm: b.wasm\n  limits: {cpu: 2 parsecs}\n";
        let out = errors(text);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 7, "{out}");
        for (line, start) in [
            (0, "kstep.yaml:1:7: `KUBECONFIG` holds credentials"),
            (
                1,
                "kstep.yaml:3:3: unknown field `rendr`, expected one of name, dotenv,",
            ),
            (
                2,
                "kstep.yaml:5:3: unknown field `nmae`, expected one of name,",
            ),
            (3, "kstep.yaml:6:9: `with` applies to custom steps"),
            (4, "kstep.yaml:7:19: `90` needs a unit"),
            (
                5,
                "kstep.yaml:7:23: unknown field `wat`, expected one of timeout, failure-grace",
            ),
            (6, "kstep.yaml:9:17: `2 parsecs`: unknown unit"),
        ] {
            assert!(lines[line].starts_with(start), "{start}\n{out}");
        }
        // The misspelt kind is the one problem of its step: no "a step needs one of" too.
        assert!(!out.contains("a step needs one of"), "{out}");
        // Nor "no steps" after a misspelt `steps:`.
        assert_eq!(
            errors("stepz:\n  - apply:\n"),
            "kstep.yaml:1:1: unknown field `stepz`, expected one of env, variables, steps, verify"
        );
        // Keys of free-form mappings are not checked.
        assert!(
            parse(
                "kstep.yaml",
                &project(),
                "variables: {ANY: x}\nsteps:\n  - render: {files: [k8s], images: {web: x}}\n  \
                 - wasm: a.wasm\n    with: {anything: [1]}\n"
            )
            .is_ok()
        );
    }

    #[test]
    fn the_secrets_grant_is_a_custom_step_boolean() {
        let p = parse("kstep.yaml", &project(), "steps:\n  - wasm: a.wasm\n").unwrap();
        let KindSpec::Wasm(w) = &p.steps[0].kind else {
            panic!()
        };
        assert!(!w.secrets, "not granted by default");
        assert_eq!(
            errors("steps:\n  - render: k8s\n    secrets: true\n"),
            "kstep.yaml:3:14: `secrets` applies to custom steps (`wasm:`), not to `render`"
        );
        assert!(
            errors("steps:\n  - wasm: a.wasm\n    secrets: yes\n").starts_with("kstep.yaml:3:14: "),
        );
        assert!(
            errors("steps:\n  - wasm: a.wasm\n    secret: true\n")
                .starts_with("kstep.yaml:3:5: unknown field `secret`, expected one of ")
        );
    }

    #[test]
    fn steps_by_reference_and_their_keys() {
        let p = parse(
            "kstep.yaml",
            &project(),
            "verify: {key: keys/team.pub}\nsteps:\n  - wasm: oci://r.example:5000/group/steps/deny-latest:1.2\n  \
             - wasm: oci://r.example/other:1\n    verify: {key: own.pub}\n  - wasm: local.wasm\n",
        )
        .unwrap();
        let refs: Vec<(String, &str)> = p
            .references()
            .map(|(r, s)| (r.to_string(), s.name.as_str()))
            .collect();
        assert_eq!(
            refs,
            [
                (
                    "oci://r.example:5000/group/steps/deny-latest:1.2".into(),
                    "deny-latest"
                ),
                ("oci://r.example/other:1".into(), "other"),
            ]
        );
        let keys: Vec<Option<PathBuf>> = p
            .steps
            .iter()
            .map(|s| match &s.kind {
                KindSpec::Wasm(w) => w.verify.as_ref().map(|v| v.key.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            keys,
            [
                Some(p.project.join("keys/team.pub")),
                Some(p.project.join("own.pub")),
                None
            ]
        );
        assert_eq!(
            errors("steps:\n  - wasm: oci://r.example/x\n"),
            "kstep.yaml:2:11: `oci://r.example/x`: name a tag (`:1.2`) or a digest (`@sha256:…`)"
        );
        assert_eq!(
            errors("steps:\n  - wasm: a.wasm\n    verify: {key: k.pub}\n"),
            "kstep.yaml:3:13: `verify` applies to steps by reference (`wasm: oci://…`): a file in \
             the project is reviewed with it"
        );
        assert!(
            errors("steps:\n  - wasm: oci://r.example/x:1\n    verify: {kee: k.pub}\n")
                .starts_with("kstep.yaml:3:14: unknown field `kee`, expected one of key"),
        );
        assert!(
            errors("steps:\n  - render: k8s\n    verify: {key: k}\n")
                .contains("`verify` applies to custom steps (`wasm:`), not to `render`")
        );
    }

    #[test]
    fn durations_as_kstep_prints_them() {
        let p = parse(
            "kstep.yaml",
            &project(),
            "steps:\n  - wait: {timeout: 1m30s, failure-grace: 5m00s}\n",
        )
        .unwrap();
        assert_eq!(
            p.steps[0].kind,
            KindSpec::Wait(WaitSpec {
                timeout: Duration::from_secs(90),
                failure_grace: Duration::from_secs(300),
            })
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let text = "env: [KUBECONFIG, 'A B']\nsteps:\n\
                    - dotenv: a.env\n  with: {x: 1}\n\
                    - wasm: a.wasm\n  render: k8s\n\
                    - name: lonely\n\
                    - wasm: b.wasm\n  read: ../outside\n  limits: {cpu: 2 parsecs}\n  with: [1]\n";
        let out = errors(text);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 8, "{out}");
        assert!(
            lines[0].starts_with("kstep.yaml:1:7: `KUBECONFIG` holds credentials"),
            "{out}"
        );
        assert!(
            lines[1].starts_with("kstep.yaml:1:19: `A B` is not a variable name"),
            "{out}"
        );
        assert!(
            lines[2].starts_with(
                "kstep.yaml:4:9: `with` applies to custom steps (`wasm:`), not to `dotenv`"
            ),
            "{out}"
        );
        assert!(
            lines[3].starts_with(
                "kstep.yaml:6:11: a step has one kind: `wasm` and `render` cannot be combined"
            ),
            "{out}"
        );
        assert!(
            lines[4].starts_with("kstep.yaml:7:3: a step needs one of"),
            "{out}"
        );
        assert!(
            lines[5].starts_with("kstep.yaml:9:9: `read: ../outside`: `..` is not allowed"),
            "{out}"
        );
        assert!(
            lines[6].starts_with("kstep.yaml:10:17: `2 parsecs`: unknown unit"),
            "{out}"
        );
        assert!(
            lines[7].starts_with("kstep.yaml:11:9: `with` must be a mapping"),
            "{out}"
        );
    }

    #[test]
    fn grants_stay_inside_the_project() {
        let project = project();
        let outside = project
            .parent()
            .unwrap()
            .join(format!("kstep-outside-{}", std::process::id()));
        std::fs::create_dir_all(&outside).unwrap();
        let link = project.join("escape");
        let _ = std::fs::remove_file(&link);
        #[cfg(unix)]
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        for (grant, message) in [
            (
                "escape",
                "leads outside the project (through a symbolic link)",
            ),
            ("/etc", "give a directory relative to the project"),
            (".", "grant a subdirectory, not the whole project"),
            ("missing", "No such file or directory"),
        ] {
            let out = errors(&format!("steps:\n  - wasm: a.wasm\n    read: {grant}\n"));
            assert!(
                out.starts_with("kstep.yaml:3:11: ") && out.contains(message),
                "{grant}: {out}"
            );
        }
    }

    #[test]
    fn apply_field_manager() {
        let p = parse(
            "kstep.yaml",
            &project(),
            "steps:\n  - apply: {field-manager: kubectl}\n",
        )
        .unwrap();
        let KindSpec::Apply(a) = &p.steps[0].kind else {
            panic!()
        };
        assert_eq!(a.field_manager.as_deref(), Some("kubectl"));
        assert_eq!(
            errors("steps:\n  - apply:\n      field-manager: ''\n"),
            "kstep.yaml:3:22: ``: a field manager is 1 to 128 printable ASCII characters"
        );
    }

    #[test]
    fn apply_applyset_and_prune() {
        let p = parse(
            "kstep.yaml",
            &project(),
            "steps:\n  - apply: {applyset: configmaps/app, prune: true}\n",
        )
        .unwrap();
        let KindSpec::Apply(a) = &p.steps[0].kind else {
            panic!()
        };
        assert_eq!(
            a.applyset.as_ref().map(ToString::to_string).as_deref(),
            Some("configmaps/app")
        );
        assert!(a.prune);
        assert_eq!(
            errors("steps:\n  - apply:\n      prune: true\n"),
            "kstep.yaml:3:14: `prune` needs `applyset`: only the members of an ApplySet can be pruned"
        );
        assert!(
            errors("steps:\n  - apply: {applyset: deployments/app}\n")
                .starts_with("kstep.yaml:2:23: `deployments/app`: an ApplySet parent is")
        );
    }

    #[test]
    fn yaml_errors_carry_positions() {
        assert!(errors("steps:\n  - wasm: [\n").starts_with("kstep.yaml:2:"));
        assert!(errors("steps:\n  - dotenv: [a, b]\n").contains("expected one path, not a list"));
        assert_eq!(
            errors("steps: []\n"),
            "kstep.yaml:1:1: the pipeline has no steps"
        );
    }
}
