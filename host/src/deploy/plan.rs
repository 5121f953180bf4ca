//! `kstep plan` and plan files: what an apply would change, object by object, and the record
//! that lets a later `deploy --plan` / `apply --plan` apply exactly what was reviewed.
//!
//! The cluster part is the apply engine's own dry run ([`Session::apply`] with `dry_run`): the
//! server's dry-run answer is the live object with kstep's apply merged in, so comparing it with
//! the live object shows exactly what kstep's apply changes; fields other managers own are the
//! same on both sides and never show. Everything else is pure: normalising, hiding Secret
//! values, the unified diff, digests, the plan file and the comparison of two plans.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use similar::TextDiff;

use super::apply::Outcome;
use super::error::DeployError;
use super::events::{Event, Reporter};
use super::objects::{self, Object};
use super::session::{ApplyOptions, Session};

/// The plan file's format version, under the key [`FORMAT_KEY`].
pub const FORMAT_VERSION: u64 = 1;
/// The key that marks a plan file and holds its format version.
pub const FORMAT_KEY: &str = "kstep-plan";
/// A plan file larger than this is not one kstep wrote (about 200 bytes an object).
const MAX_PLAN_FILE: u64 = 64 << 20;
/// What a Secret value (or a copy of the values) becomes in a diff.
const HIDDEN: &str = "(hidden)";
/// What a changed Secret value becomes on the planned side of a diff.
const HIDDEN_CHANGED: &str = "(hidden, changed)";
/// Client-side `kubectl apply`'s copy of the whole object: on a Secret it holds the values.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Bookkeeping the server changes on its own; never a change kstep makes.
const BOOKKEEPING: [&str; 5] = [
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
];

/// Which object: what a plan file records and two plans are compared by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// API group (`""` for the core group).
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace (`None`: cluster-scoped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl Identity {
    /// The identity of `object` as it is sent (its namespace resolved).
    pub fn of(object: &Object) -> Self {
        Self {
            group: object.group.clone(),
            version: object.version.clone(),
            kind: object.kind.clone(),
            namespace: object.target_namespace().map(str::to_owned),
            name: object.name.clone(),
        }
    }

    /// `kind.group/name`, as kstep names objects everywhere.
    pub fn display_name(&self) -> String {
        objects::display_name(&self.group, &self.kind, &self.name)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_name())?;
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => Ok(()),
        }
    }
}

/// What applying an object would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// It does not exist yet.
    Create,
    /// It exists and kstep's fields would change it.
    Update,
    /// It exists and the apply would change nothing.
    Unchanged,
    /// A member of the ApplySet that the apply no longer contains: `--prune` deletes it.
    Delete,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
            Action::Delete => "delete",
        })
    }
}

/// The keys of a Secret's `data` that would change: names only, never values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SecretKeys {
    /// Keys the apply adds.
    pub added: Vec<String>,
    /// Keys whose value changes.
    pub changed: Vec<String>,
    /// Keys the apply removes.
    pub removed: Vec<String>,
}

impl SecretKeys {
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    /// `keys added: a; changed: b`.
    fn summary(&self) -> String {
        let parts: Vec<String> = [
            ("added", &self.added),
            ("changed", &self.changed),
            ("removed", &self.removed),
        ]
        .into_iter()
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(what, keys)| format!("{what}: {}", keys.join(", ")))
        .collect();
        format!("Secret keys {}", parts.join("; "))
    }
}

/// One object of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Which object.
    pub id: Identity,
    /// What the apply would do.
    pub action: Action,
    /// For an update: the unified diff, live → planned, of the fields kstep's apply changes
    /// (Secret values hidden).
    pub diff: Option<String>,
    /// For a Secret that would be created or updated: which keys.
    pub secret_keys: Option<SecretKeys>,
    /// SHA-256 of the object as kstep sends it ([`digest`]).
    pub digest: String,
    /// The live object's `resourceVersion` (`None` when it would be created).
    pub resource_version: Option<String>,
    /// A CRD or Namespace of the same run the object needs before the server can validate it.
    pub needs: Option<String>,
}

/// What an apply would change.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The namespace objects without one go to.
    pub namespace: String,
    /// The API server.
    pub server: String,
    /// Every object, in manifest order (those that need a CRD or Namespace of the run last).
    pub entries: Vec<Entry>,
}

impl Plan {
    /// How many objects would see `action`.
    pub fn count(&self, action: Action) -> usize {
        self.entries.iter().filter(|e| e.action == action).count()
    }

    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        self.entries.iter().any(|e| e.action != Action::Unchanged)
    }

    /// `2 to create, 1 to update, 7 unchanged` (and `, 1 to delete` with `--prune`).
    pub fn summary(&self) -> String {
        let mut text = format!(
            "{} to create, {} to update, {} unchanged",
            self.count(Action::Create),
            self.count(Action::Update),
            self.count(Action::Unchanged)
        );
        if self.count(Action::Delete) > 0 {
            text.push_str(&format!(", {} to delete", self.count(Action::Delete)));
        }
        text
    }

    /// The plan file: identities, digests, resourceVersions; no content.
    pub fn file(&self) -> PlanFile {
        PlanFile {
            format: FORMAT_VERSION,
            server: self.server.clone(),
            objects: self
                .entries
                .iter()
                .map(|e| FileObject {
                    group: e.id.group.clone(),
                    version: e.id.version.clone(),
                    kind: e.id.kind.clone(),
                    namespace: e.id.namespace.clone(),
                    name: e.id.name.clone(),
                    digest: e.digest.clone(),
                    resource_version: e.resource_version.clone(),
                })
                .collect(),
        }
    }

    /// The plan for a log: a headline, one line per object, each diff indented below its line.
    pub fn text(&self) -> String {
        let mut out = format!(
            "Plan for namespace {} on {}: {}\n",
            self.namespace,
            self.server,
            self.summary()
        );
        for e in &self.entries {
            let namespace = match &e.id.namespace {
                Some(ns) if *ns != self.namespace => format!(" (namespace {ns})"),
                _ => String::new(),
            };
            out.push_str(&format!(
                "  {:<10} {}{namespace}{}\n",
                e.action.to_string(),
                e.id.display_name(),
                note(e).map_or(String::new(), |n| format!(": {n}"))
            ));
            if let Some(diff) = &e.diff {
                for line in diff.lines() {
                    out.push_str(&format!("      {line}\n"));
                }
            }
        }
        out
    }

    /// The plan as a merge request comment shows it: a table of counts, then each update's diff
    /// in a collapsed `<details>` block.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "### kstep plan: namespace `{}` on `{}`\n\n| create | update | unchanged | delete |\n|---:|---:|---:|---:|\n| {} | {} | {} | {} |\n",
            self.namespace,
            self.server,
            self.count(Action::Create),
            self.count(Action::Update),
            self.count(Action::Unchanged),
            self.count(Action::Delete)
        );
        let changing: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.action != Action::Unchanged)
            .collect();
        if changing.is_empty() {
            out.push_str("\nNo changes.\n");
            return out;
        }
        out.push_str("\n| action | object | namespace | note |\n|---|---|---|---|\n");
        for e in &changing {
            out.push_str(&format!(
                "| {} | `{}` | {} | {} |\n",
                e.action,
                e.id.display_name(),
                e.id.namespace
                    .as_deref()
                    .map_or(String::new(), |n| format!("`{n}`")),
                note(e).unwrap_or_default()
            ));
        }
        for e in changing {
            let Some(diff) = &e.diff else { continue };
            let fence = fence_for(diff);
            out.push_str(&format!(
                "\n<details><summary>update <code>{}</code>{}</summary>\n\n{fence}diff\n{}{}{fence}\n\n</details>\n",
                e.id.display_name(),
                e.id.namespace.as_deref().map_or(String::new(), |n| format!(" in <code>{n}</code>")),
                diff,
                if diff.ends_with('\n') { "" } else { "\n" },
            ));
        }
        out
    }

    /// The plan for machines.
    pub fn json(&self) -> Value {
        json!({
            "namespace": self.namespace,
            "server": self.server,
            "changes": self.has_changes(),
            "summary": {
                "create": self.count(Action::Create),
                "update": self.count(Action::Update),
                "unchanged": self.count(Action::Unchanged),
                "delete": self.count(Action::Delete),
            },
            "objects": self.entries.iter().map(|e| {
                let mut o = json!({"action": e.action, "object": e.id.display_name()});
                let fields = [
                    ("group", json!(e.id.group)), ("version", json!(e.id.version)),
                    ("kind", json!(e.id.kind)), ("namespace", json!(e.id.namespace)),
                    ("name", json!(e.id.name)), ("diff", json!(e.diff)),
                    ("secret_keys", json!(e.secret_keys)), ("needs", json!(e.needs)),
                ];
                if let Some(map) = o.as_object_mut() {
                    for (key, value) in fields.into_iter().filter(|(_, v)| !v.is_null()) {
                        map.insert(key.to_owned(), value);
                    }
                }
                o
            }).collect::<Vec<_>>(),
        })
    }
}

/// The short note after an object's line: the Secret keys, what it needs.
fn note(e: &Entry) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(keys) = e.secret_keys.as_ref().filter(|k| !k.is_empty()) {
        parts.push(keys.summary());
    }
    if let Some(needs) = &e.needs {
        parts.push(format!(
            "needs {needs} of this run (validated when applied)"
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// A code fence longer than any run of backticks in `text`, so the text cannot close it.
fn fence_for(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// The plan of one object from its dry-run answer and its live version (`None`: it does not
/// exist).
pub fn entry(object: &Object, dry: &Value, live: Option<&Value>) -> Entry {
    let secret = object.group.is_empty() && object.kind == "Secret";
    let mut entry = Entry {
        id: Identity::of(object),
        action: Action::Create,
        diff: None,
        secret_keys: None,
        digest: digest(&object.value),
        resource_version: None,
        needs: None,
    };
    let mut after = reviewed(dry.clone());
    let Some(live) = live else {
        if secret {
            entry.secret_keys = Some(hide_secret_values(&mut Value::Null, &mut after));
        }
        return entry;
    };
    entry.resource_version = live
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut before = reviewed(live.clone());
    if secret {
        entry.secret_keys =
            Some(hide_secret_values(&mut before, &mut after)).filter(|k| !k.is_empty());
    }
    if before == after {
        entry.action = Action::Unchanged;
        entry.secret_keys = None;
    } else {
        entry.action = Action::Update;
        entry.diff = Some(unified_diff(&before, &after, &entry.id));
    }
    entry
}

/// What a plan compares: [`comparable`], and without kstep's stamps, which are the pipeline's
/// and not the manifests' (a plan reviews the manifests; the deploy stamps after the check).
fn reviewed(value: Value) -> Value {
    let mut value = comparable(value);
    super::stamp::remove_stamps(&mut value);
    value
}

/// `value` without what the server changes on its own: the bookkeeping metadata
/// (`managedFields`, `resourceVersion`, `generation`, `uid`, `creationTimestamp`) and `status`.
pub fn comparable(mut value: Value) -> Value {
    if let Some(o) = value.as_object_mut() {
        o.remove("status");
        if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in BOOKKEEPING {
                meta.remove(key);
            }
        }
    }
    value
}

/// Replaces every value of a Secret's `data` and `stringData` (and client-side kubectl's copy of
/// the object) in `before` and `after` with [`HIDDEN`] or, where it changes, [`HIDDEN_CHANGED`]
/// on the `after` side; returns the keys of `data`/`stringData` that change.
fn hide_secret_values(before: &mut Value, after: &mut Value) -> SecretKeys {
    let mut keys = SecretKeys::default();
    for field in ["data", "stringData"] {
        let old = take_map(before, &[field]);
        let new = take_map(after, &[field]);
        let (hidden_old, hidden_new) = hide_pair(&old, &new, &mut keys);
        put_map(before, &[field], hidden_old);
        put_map(after, &[field], hidden_new);
    }
    let mut old = take_map(before, &["metadata", "annotations"]);
    let mut new = take_map(after, &["metadata", "annotations"]);
    let was = old.as_ref().and_then(|m| m.get(LAST_APPLIED)).cloned();
    let now = new.as_ref().and_then(|m| m.get(LAST_APPLIED)).cloned();
    if let Some(m) = old.as_mut().filter(|_| was.is_some()) {
        m.insert(LAST_APPLIED.into(), HIDDEN.into());
    }
    if let Some(m) = new.as_mut().filter(|_| now.is_some()) {
        let mark = if was.is_some() && was != now {
            HIDDEN_CHANGED
        } else {
            HIDDEN
        };
        m.insert(LAST_APPLIED.into(), mark.into());
    }
    put_map(before, &["metadata", "annotations"], old);
    put_map(after, &["metadata", "annotations"], new);
    for list in [&mut keys.added, &mut keys.changed, &mut keys.removed] {
        list.sort();
        list.dedup();
    }
    keys
}

/// One map of an object (`data`, `metadata.annotations`), if it has it.
type Fields = Option<Map<String, Value>>;

/// The two sides of one Secret map with their values hidden, recording which keys change.
fn hide_pair(old: &Fields, new: &Fields, keys: &mut SecretKeys) -> (Fields, Fields) {
    let empty = Map::new();
    let (o, n) = (
        old.as_ref().unwrap_or(&empty),
        new.as_ref().unwrap_or(&empty),
    );
    let hide = |m: &Map<String, Value>| -> Map<String, Value> {
        m.keys().map(|k| (k.clone(), Value::from(HIDDEN))).collect()
    };
    let mut hidden_new = hide(n);
    for (key, value) in n {
        match o.get(key) {
            None => keys.added.push(key.clone()),
            Some(was) if was != value => {
                keys.changed.push(key.clone());
                hidden_new.insert(key.clone(), HIDDEN_CHANGED.into());
            }
            Some(_) => {}
        }
    }
    keys.removed
        .extend(o.keys().filter(|k| !n.contains_key(*k)).cloned());
    (old.as_ref().map(hide), new.as_ref().map(|_| hidden_new))
}

fn take_map(value: &mut Value, path: &[&str]) -> Fields {
    let (last, parents) = path.split_last()?;
    let mut current = value;
    for key in parents {
        current = current.get_mut(*key)?;
    }
    match current.as_object_mut()?.remove(*last)? {
        Value::Object(m) => Some(m),
        // Not a map (a malformed object): nothing to compare key by key, nothing shown.
        _ => Some(Map::new()),
    }
}

fn put_map(value: &mut Value, path: &[&str], map: Fields) {
    let (Some(map), Some((last, parents))) = (map, path.split_last()) else {
        return;
    };
    let mut current = value;
    for key in parents {
        let Some(next) = current.get_mut(*key) else {
            return;
        };
        current = next;
    }
    if let Some(o) = current.as_object_mut() {
        o.insert((*last).to_owned(), Value::Object(map));
    }
}

/// The unified diff of two normalised objects, rendered as YAML (keys sorted).
fn unified_diff(before: &Value, after: &Value, id: &Identity) -> String {
    let (old, new) = (yaml(before), yaml(after));
    TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live {id}"), &format!("planned {id}"))
        .to_string()
}

/// `value` as YAML; as pretty JSON in the unlikely case the YAML emitter refuses it.
fn yaml(value: &Value) -> String {
    serde_saphyr::to_string(value)
        .or_else(|_| serde_json::to_string_pretty(value).map(|t| t + "\n"))
        .unwrap_or_default()
}

/// `sha256:HEX` of `value`'s compact JSON. serde_json's maps are ordered by key, so the digest
/// depends on the content only, not on the order of the manifest's keys.
pub fn digest(value: &Value) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let hash = Sha256::digest(&bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in hash {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// A plan file: what `kstep plan --out` writes and `--plan` checks against. Identities,
/// digests and resourceVersions only; never an object's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// The format version ([`FORMAT_VERSION`]).
    #[serde(rename = "kstep-plan")]
    pub format: u64,
    /// The API server the plan was computed against.
    pub server: String,
    /// Every object, in plan order.
    pub objects: Vec<FileObject>,
}

/// One object of a plan file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileObject {
    /// API group (`""` for the core group).
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace (absent: cluster-scoped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// [`digest`] of the object as sent.
    pub digest: String,
    /// The live object's `resourceVersion` (absent: it did not exist).
    #[serde(
        rename = "resourceVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_version: Option<String>,
}

impl FileObject {
    fn key(&self) -> (&str, &str, Option<&str>, &str) {
        (
            &self.group,
            &self.kind,
            self.namespace.as_deref(),
            &self.name,
        )
    }

    fn label(&self) -> String {
        let name = objects::display_name(&self.group, &self.kind, &self.name);
        match &self.namespace {
            Some(ns) => format!("{name} in namespace {ns}"),
            None => name,
        }
    }
}

impl PlanFile {
    /// The file's bytes: pretty JSON, one key per line (readable in a merge request).
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Parses a plan file; `label` names it in errors (`FILE:LINE:COL: …`).
    ///
    /// # Errors
    /// Not JSON, not a plan file, another format version, a field missing or of the wrong type.
    pub fn parse(text: &str, label: &str) -> Result<Self, String> {
        let at = |e: &serde_json::Error| {
            let message = e.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m)
                .to_owned();
            format!("{label}:{}:{}: {message}", e.line(), e.column())
        };
        let value: Value = serde_json::from_str(text).map_err(|e| at(&e))?;
        match value.get(FORMAT_KEY) {
            None => {
                return Err(format!(
                    "{label}: not a kstep plan file (no \"{FORMAT_KEY}\" key; `kstep plan --out FILE` writes one)"
                ));
            }
            Some(v) if v.as_u64() == Some(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "{label}: plan file format {v}; this kstep reads format {FORMAT_VERSION} (make the plan with the same kstep version)"
                ));
            }
        }
        serde_json::from_str(text).map_err(|e| format!("{}: not a valid plan file", at(&e)))
    }
}

/// Why `now` is not what `planned` reviewed: one line per object (which one and why), in the
/// plan's order; empty when they match.
pub fn compare(planned: &PlanFile, now: &PlanFile) -> Vec<String> {
    let mut problems = Vec::new();
    if planned.server != now.server {
        problems.push(format!(
            "the plan was made against {}, this run targets {}",
            planned.server, now.server
        ));
    }
    let current: BTreeMap<_, &FileObject> = now.objects.iter().map(|o| (o.key(), o)).collect();
    for p in &planned.objects {
        let Some(n) = current.get(&p.key()) else {
            problems.push(format!(
                "{}: in the plan, but not among the objects rendered now",
                p.label()
            ));
            continue;
        };
        if p.digest != n.digest || p.version != n.version {
            problems.push(format!(
                "{}: its content differs from the plan's (the manifests, variables or images changed since)",
                p.label()
            ));
        }
        match (&p.resource_version, &n.resource_version) {
            (Some(a), Some(b)) if a != b => problems.push(format!(
                "{}: changed in the cluster since the plan (resourceVersion {a} then, {b} now)",
                p.label()
            )),
            (None, Some(_)) => problems.push(format!(
                "{}: created in the cluster since the plan",
                p.label()
            )),
            (Some(_), None) => problems.push(format!(
                "{}: deleted from the cluster since the plan",
                p.label()
            )),
            _ => {}
        }
    }
    let planned_keys: BTreeMap<_, ()> = planned.objects.iter().map(|o| (o.key(), ())).collect();
    for n in &now.objects {
        if !planned_keys.contains_key(&n.key()) {
            problems.push(format!("{}: not in the plan", n.label()));
        }
    }
    problems
}

/// Reads and parses the plan file at `path`.
///
/// # Errors
/// [`DeployError::Plan`] (exit 2): unreadable, too big, not a plan file.
pub fn load(path: &Path) -> Result<PlanFile, DeployError> {
    let label = path.display().to_string();
    let invalid = |headline: String| DeployError::Plan {
        headline,
        details: Vec::new(),
    };
    let bytes = crate::fsutil::read_capped(path, false, MAX_PLAN_FILE)
        .map_err(|e| invalid(format!("{label}: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| invalid(format!("{label}: not UTF-8 text")))?;
    PlanFile::parse(&text, &label).map_err(invalid)
}

/// Computes the plan of `objects`: the apply engine's dry run (nothing changes), each answer
/// compared with the live object. Reports warnings and would-be takeovers; the dry run's own
/// events are not the plan's.
///
/// # Errors
/// As a dry run: refusals, invalid objects, rejections, an unreachable server; a live object
/// that could not be read.
pub async fn compute(
    session: &Session<'_>,
    objects: Vec<Object>,
    options: &ApplyOptions,
    reporter: &dyn Reporter,
) -> Result<Plan, DeployError> {
    let options = ApplyOptions {
        dry_run: true,
        ..options.clone()
    };
    let collect = Collect {
        outer: reporter,
        deferred: Mutex::new(Vec::new()),
    };
    let mut objects = objects;
    // With a set: its labels are part of what would change, another set's members are
    // refused, and adopted objects are reported, as the apply would.
    let set = session.applyset(&options);
    let before = match &set {
        Some(set) => Some(session.open_set(set, &mut objects, true, &collect).await?.0),
        None => None,
    };
    // Not waited for in a dry run: CRDs of the run are never established by it.
    let (applied, _) = session
        .apply(objects, &options, Duration::ZERO, &collect)
        .await?;
    let mut entries = Vec::with_capacity(applied.len());
    for a in &applied {
        let live = match &a.live {
            Some(live) => Some(serde_json::to_value(live).unwrap_or(Value::Null)),
            None if a.outcome == Outcome::Created => None,
            None => {
                return Err(DeployError::Runtime(format!(
                    "{}: the server's dry run says it exists, but it could not be read",
                    a.object.display_name()
                )));
            }
        };
        let dry = serde_json::to_value(&a.result).unwrap_or(Value::Null);
        entries.push(entry(&a.object, &dry, live.as_ref()));
    }
    let deferred = collect
        .deferred
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (object, needs) in deferred {
        let mut e = entry(&object, &object.value, None);
        e.needs = Some(needs);
        entries.push(e);
    }
    if let (Some(set), Some(before), true) = (&set, &before, options.prune) {
        let policy = session.policy(&options);
        let (stale, _) = session
            .stale_members(set, before, &applied, &policy)
            .await?;
        entries.extend(stale.into_iter().map(|m| Entry {
            id: Identity {
                group: m.resource.group.clone(),
                version: m.resource.version.clone(),
                kind: m.resource.kind.clone(),
                namespace: m.namespace.clone(),
                name: m.name.clone(),
            },
            action: Action::Delete,
            diff: None,
            secret_keys: None,
            digest: String::new(),
            resource_version: None,
            needs: None,
        }));
    }
    Ok(Plan {
        namespace: session.namespace(&options),
        server: session.connection().server.clone(),
        entries,
    })
}

/// `--plan FILE`: computes the plan of `objects` again and refuses, before any change, when it
/// is not the one in `planned` (another object set, another digest, a live object changed
/// since); reports [`Event::PlanMatched`] when it is.
///
/// # Errors
/// [`DeployError::Plan`] (exit 2) naming every object that differs and why; what
/// [`compute`] returns.
pub async fn verify(
    session: &Session<'_>,
    objects: &[Object],
    options: &ApplyOptions,
    planned: &PlanFile,
    path: &Path,
    reporter: &dyn Reporter,
) -> Result<(), DeployError> {
    let now = compute(session, objects.to_vec(), options, &Silent).await?;
    let problems = compare(planned, &now.file());
    if !problems.is_empty() {
        return Err(DeployError::Plan {
            headline: format!(
                "{}: the plan no longer matches ({} difference(s)); nothing was changed: make and review a new plan",
                path.display(),
                problems.len()
            ),
            details: problems,
        });
    }
    reporter.report(Event::PlanMatched {
        path,
        objects: now.entries.len(),
    });
    Ok(())
}

/// Passes warnings and would-be takeovers on, keeps the objects a dry run could not validate
/// yet, and drops the dry run's other events.
struct Collect<'a> {
    outer: &'a dyn Reporter,
    deferred: Mutex<Vec<(Object, String)>>,
}

impl Reporter for Collect<'_> {
    fn report(&self, event: Event<'_>) {
        match event {
            Event::ObjectDeferred { object, needs } => self
                .deferred
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((object.clone(), needs.to_owned())),
            Event::Warning(_) | Event::Adopted { .. } | Event::AdoptedIntoSet { .. } => {
                self.outer.report(event);
            }
            _ => {}
        }
    }
}

/// Drops every event: the check of `--plan` runs before the apply, which reports for itself.
struct Silent;

impl Reporter for Silent {
    fn report(&self, _: Event<'_>) {}
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::deploy::objects::Origin;

    fn object(value: Value) -> Object {
        Object::new(
            value,
            Origin {
                source: "k8s/app.yaml".into(),
                index: 1,
                item: 0,
                line: 1,
                column: 1,
                text: None,
            },
        )
        .unwrap()
    }

    fn deployment(image: &str, replicas: u32) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "app", "uid": "u1", "resourceVersion": "41",
                         "generation": 3, "creationTimestamp": "2026-01-01T00:00:00Z",
                         "managedFields": [{"manager": "kstep"}],
                         "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "web", "image": image}
            ]}}},
            "status": {"readyReplicas": 1}
        })
    }

    #[test]
    fn create_update_unchanged() {
        let sent = object(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "app"}}));
        let created = entry(&sent, &deployment("web:2", 1), None);
        assert_eq!(created.action, Action::Create);
        assert_eq!(created.resource_version, None);
        assert_eq!(created.diff, None);

        let live = deployment("web:1", 1);
        // The dry run's answer: bookkeeping and status move on their own, never a change.
        let mut same = deployment("web:1", 1);
        same["metadata"]["managedFields"] = json!([{"manager": "kstep", "time": "later"}]);
        same["status"] = json!({"readyReplicas": 0});
        let unchanged = entry(&sent, &same, Some(&live));
        assert_eq!(unchanged.action, Action::Unchanged);
        assert_eq!(unchanged.resource_version.as_deref(), Some("41"));

        let updated = entry(&sent, &deployment("web:2", 1), Some(&live));
        assert_eq!(updated.action, Action::Update);
        let diff = updated.diff.unwrap();
        assert!(diff.starts_with("--- live deployment.apps/web in namespace app\n+++ planned deployment.apps/web in namespace app\n@@"), "{diff}");
        assert!(diff.contains("\n-      - image: web:1\n"), "{diff}");
        assert!(diff.contains("\n+      - image: web:2\n"), "{diff}");
        // Only the changed line and its context: no bookkeeping, no status.
        for absent in ["resourceVersion", "managedFields", "readyReplicas", "uid:"] {
            assert!(!diff.contains(absent), "{absent} in {diff}");
        }
        assert_eq!(
            diff.lines().filter(|l| l.starts_with(['+', '-'])).count(),
            4
        );
    }

    #[test]
    fn secret_values_never_reach_the_diff() {
        let sent = object(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "app"}, "stringData": {"password": "MARKER-new"}}));
        let live = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "creds", "namespace": "app", "resourceVersion": "7",
                         "labels": {"team": "a"},
                         "annotations": {LAST_APPLIED: "{\"stringData\":{\"password\":\"MARKER-old\"}}"}},
            "data": {"password": "TUFSS0VSLW9sZA==", "gone": "TUFSS0VSLWdvbmU=", "same": "c2FtZQ=="}});
        let mut dry = live.clone();
        dry["data"] = json!({"password": "TUFSS0VSLW5ldw==", "token": "TUFSS0VSLXRva2Vu", "same": "c2FtZQ=="});
        dry["metadata"]["labels"]["team"] = json!("b");
        let e = entry(&sent, &dry, Some(&live));
        assert_eq!(e.action, Action::Update);
        assert_eq!(
            e.secret_keys,
            Some(SecretKeys {
                added: vec!["token".into()],
                changed: vec!["password".into()],
                removed: vec!["gone".into()],
            })
        );
        let plan = Plan {
            namespace: "app".into(),
            server: "https://127.0.0.1:6443".into(),
            entries: vec![e.clone()],
        };
        let everything = format!(
            "{}{}{}{}",
            plan.text(),
            plan.markdown(),
            plan.json(),
            plan.file().to_json()
        );
        for value in ["MARKER", "TUFSS0VS", "c2FtZQ"] {
            assert!(!everything.contains(value), "{value} in {everything}");
        }
        let diff = e.diff.unwrap();
        assert!(
            diff.contains("-  password: (hidden)\n+  password: (hidden, changed)\n"),
            "{diff}"
        );
        assert!(diff.contains("+    team: b\n"), "{diff}");
        assert!(plan.text().contains(
            "  update     secret/creds: Secret keys added: token; changed: password; removed: gone\n"
        ), "{}", plan.text());

        // Only the values changed: still an update, still no value.
        let mut only_values = live.clone();
        only_values["data"]["same"] = json!("b3RoZXI=");
        let e = entry(&sent, &only_values, Some(&live));
        assert_eq!(e.action, Action::Update);
        assert_eq!(e.secret_keys.unwrap().changed, ["same"]);
        // Nothing changed: unchanged, no keys.
        let e = entry(&sent, &live, Some(&live));
        assert_eq!((e.action, e.secret_keys), (Action::Unchanged, None));
        // Created: the keys, no values.
        let e = entry(&sent, &dry, None);
        assert_eq!(e.secret_keys.unwrap().added, ["password", "same", "token"]);
    }

    #[test]
    fn digests_depend_on_content_only() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": 2, "x": 3}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a": {"x": 3, "y": 2}, "b": 1}"#).unwrap();
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(digest(&a), digest(&json!({"b": 2, "a": {"y": 2, "x": 3}})));
        assert_eq!(
            digest(&json!({})),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    fn file_object(kind: &str, name: &str, digest: &str, rv: Option<&str>) -> FileObject {
        FileObject {
            group: String::new(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: Some("app".into()),
            name: name.into(),
            digest: digest.into(),
            resource_version: rv.map(str::to_owned),
        }
    }

    fn plan_file(objects: Vec<FileObject>) -> PlanFile {
        PlanFile {
            format: FORMAT_VERSION,
            server: "https://127.0.0.1:6443".into(),
            objects,
        }
    }

    #[test]
    fn comparing_plans_names_each_object_and_why() {
        let planned = plan_file(vec![
            file_object("ConfigMap", "same", "sha256:1", Some("5")),
            file_object("ConfigMap", "edited", "sha256:2", Some("6")),
            file_object("ConfigMap", "touched", "sha256:3", Some("7")),
            file_object("ConfigMap", "dropped", "sha256:4", None),
            file_object("ConfigMap", "appeared", "sha256:5", None),
            file_object("ConfigMap", "vanished", "sha256:6", Some("8")),
        ]);
        assert!(compare(&planned, &planned).is_empty());
        let now = plan_file(vec![
            file_object("ConfigMap", "same", "sha256:1", Some("5")),
            file_object("ConfigMap", "edited", "sha256:X", Some("6")),
            file_object("ConfigMap", "touched", "sha256:3", Some("9")),
            file_object("ConfigMap", "appeared", "sha256:5", Some("1")),
            file_object("ConfigMap", "vanished", "sha256:6", None),
            file_object("ConfigMap", "new", "sha256:7", None),
        ]);
        assert_eq!(
            compare(&planned, &now),
            [
                "configmap/edited in namespace app: its content differs from the plan's (the manifests, variables or images changed since)",
                "configmap/touched in namespace app: changed in the cluster since the plan (resourceVersion 7 then, 9 now)",
                "configmap/dropped in namespace app: in the plan, but not among the objects rendered now",
                "configmap/appeared in namespace app: created in the cluster since the plan",
                "configmap/vanished in namespace app: deleted from the cluster since the plan",
                "configmap/new in namespace app: not in the plan",
            ]
        );
        let mut elsewhere = planned.clone();
        elsewhere.server = "https://prod:6443".into();
        assert_eq!(
            compare(&planned, &elsewhere),
            [
                "the plan was made against https://127.0.0.1:6443, this run targets https://prod:6443"
            ]
        );
    }

    #[test]
    fn plan_files_round_trip_and_bad_ones_are_explained() {
        let file = plan_file(vec![
            file_object("ConfigMap", "a", "sha256:1", Some("5")),
            file_object("Secret", "b", "sha256:2", None),
        ]);
        let text = file.to_json();
        assert!(text.starts_with("{\n  \"kstep-plan\": 1,\n"), "{text}");
        assert!(!text.contains("\"resourceVersion\": null"), "{text}");
        assert_eq!(PlanFile::parse(&text, "plan.json").unwrap(), file);
        assert_eq!(
            PlanFile::parse("{\n  \"objects\": [}", "plan.json").unwrap_err(),
            "plan.json:2:15: expected value"
        );
        assert_eq!(
            PlanFile::parse("{\"objects\": []}", "plan.json").unwrap_err(),
            "plan.json: not a kstep plan file (no \"kstep-plan\" key; `kstep plan --out FILE` writes one)"
        );
        assert!(
            PlanFile::parse("{\"kstep-plan\": 2}", "p")
                .unwrap_err()
                .starts_with("p: plan file format 2; this kstep reads format 1")
        );
        assert_eq!(
            PlanFile::parse(
                "{\"kstep-plan\": 1,\n \"server\": \"s\",\n \"objects\": [{\"name\": 1}]}",
                "p"
            )
            .unwrap_err(),
            "p:3:23: invalid type: integer `1`, expected a string: not a valid plan file"
        );
    }

    #[test]
    fn text_and_markdown() {
        let live = deployment("web:1", 1);
        let sent = object(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "app"}}));
        let mut cm = object(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "other"}}));
        cm.value["data"] = json!({"k": "```"});
        let plan = Plan {
            namespace: "app".into(),
            server: "https://127.0.0.1:6443".into(),
            entries: vec![
                entry(&sent, &deployment("web:2", 1), Some(&live)),
                entry(&cm, &cm.value.clone(), None),
                entry(&sent, &live, Some(&live)),
            ],
        };
        assert!(plan.has_changes());
        let text = plan.text();
        assert!(text.starts_with("Plan for namespace app on https://127.0.0.1:6443: 1 to create, 1 to update, 1 unchanged\n  update     deployment.apps/web\n      --- live"), "{text}");
        assert!(
            text.contains("\n  create     configmap/settings (namespace other)\n"),
            "{text}"
        );
        assert!(
            text.ends_with("\n  unchanged  deployment.apps/web\n"),
            "{text}"
        );
        let md = plan.markdown();
        assert!(
            md.contains(
                "| create | update | unchanged | delete |\n|---:|---:|---:|---:|\n| 1 | 1 | 1 | 0 |\n"
            ),
            "{md}"
        );
        assert!(
            md.contains("| update | `deployment.apps/web` | `app` |  |\n"),
            "{md}"
        );
        assert!(md.contains("<details><summary>update <code>deployment.apps/web</code> in <code>app</code></summary>\n\n```diff\n--- live"), "{md}");
        assert!(md.ends_with("```\n\n</details>\n"), "{md}");
        assert_eq!(fence_for("a ```` b"), "`````");
        let json = plan.json();
        assert_eq!(
            json["summary"],
            json!({"create": 1, "update": 1, "unchanged": 1, "delete": 0})
        );
        assert_eq!(json["objects"][1]["namespace"], "other");
        assert!(json["objects"][1].get("diff").is_none());
        let quiet = Plan {
            entries: vec![entry(&sent, &live, Some(&live))],
            ..plan
        };
        assert!(!quiet.has_changes());
        assert!(quiet.markdown().ends_with("\nNo changes.\n"));
    }
}
