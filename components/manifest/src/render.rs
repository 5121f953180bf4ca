//! The manifest step from end to end: sources in; checked, upgraded, image-overridden
//! documents and a report out.
//!
//! Order: read every source (substituting placeholders), expand `List` documents, check each
//! document's identity, report or upgrade removed apiVersions, apply `--image` overrides and
//! check every container image, reject duplicates, then write the output. Every problem of
//! every stage is collected, so one run reports them all.

use std::collections::HashMap;

use crate::diag::{Diagnostic, Pos, Severity};
use crate::emit;
use crate::image::{Reference, ReferenceError};
use crate::load::{self, Document as Loaded};
use crate::template::Resolution;
use crate::tree::{Node, Value};
use crate::upgrade::{self, Rewrite};

/// One input text (YAML or JSON, possibly several documents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The name it is reported under (a path, `<stdin>`).
    pub name: String,
    /// Its text.
    pub text: String,
}

/// `--image NAME=REF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOverride {
    /// A container name, or an image repository (registry, port and path; no tag or digest).
    pub name: String,
    /// The image to use: a full reference, with a tag, a digest or both.
    pub reference: String,
}

/// What text to produce besides the documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Documents only.
    #[default]
    None,
    /// A YAML multi-document stream.
    Yaml,
    /// One JSON array.
    Json,
}

/// Switches of a render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Rewrite removed apiVersions that have a mechanical replacement.
    pub upgrade_api_versions: bool,
    /// An `--image` override that matches no container is a warning, not an error.
    pub allow_unmatched_images: bool,
    /// Take the sources literally: no placeholders, every `$` is kept (`kstep apply`).
    pub literal: bool,
    /// The text to produce.
    pub output: OutputFormat,
    /// Fill each document's `json` (the deploy path applies them; `kstep render` prints
    /// `text` and leaves them empty, which saves a tenth of the work).
    pub document_json: bool,
}

impl Default for Options {
    /// Templating, no upgrades, unmatched images are errors, documents with their JSON, no
    /// text.
    fn default() -> Self {
        Self {
            upgrade_api_versions: false,
            allow_unmatched_images: false,
            literal: false,
            output: OutputFormat::None,
            document_json: true,
        }
    }
}

/// Everything a render needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The inputs, in order.
    pub sources: Vec<Source>,
    /// Variables (later pairs win).
    pub variables: Vec<(String, String)>,
    /// Image overrides.
    pub images: Vec<ImageOverride>,
    /// Switches.
    pub options: Options,
}

/// One output document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Canonical compact JSON (empty unless [`Options::document_json`]).
    pub json: String,
    /// The source it came from.
    pub source: String,
    /// 1-based document index in the source.
    pub index: u32,
    /// 1-based item of a `List` document, 0 otherwise.
    pub item: u32,
    /// Where the document starts.
    pub pos: Pos,
    /// `apiVersion` (after any upgrade).
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace`, when set.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

/// One expanded placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubstitutionReport {
    /// The variable.
    pub variable: String,
    /// Where.
    pub source: String,
    /// Where.
    pub pos: Pos,
    /// Whether the placeholder's default was used.
    pub defaulted: bool,
}

/// One container whose image an override replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageChange {
    /// Where.
    pub source: String,
    /// Where (the `image` field, or the container).
    pub pos: Pos,
    /// The workload's kind.
    pub kind: String,
    /// The workload's name.
    pub name: String,
    /// The container's name.
    pub container: String,
    /// An init container.
    pub init: bool,
    /// The image before.
    pub old: String,
    /// The image after.
    pub new: String,
    /// The override's NAME.
    pub by: String,
}

/// A document under a removed apiVersion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersionReport {
    /// Where.
    pub source: String,
    /// Where.
    pub pos: Pos,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// The removed apiVersion.
    pub old: String,
    /// Its replacement, if there is one.
    pub new: Option<String>,
    /// The Kubernetes release that removed it.
    pub removed_in: String,
    /// Whether kstep rewrote the document.
    pub upgraded: bool,
    /// What changed, what to check.
    pub notes: Vec<String>,
}

/// What a render did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Expanded placeholders.
    pub substitutions: Vec<SubstitutionReport>,
    /// Replaced images.
    pub images: Vec<ImageChange>,
    /// Removed apiVersions found (upgraded or not).
    pub api_versions: Vec<ApiVersionReport>,
    /// Warnings.
    pub warnings: Vec<Diagnostic>,
}

/// A successful render.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rendered {
    /// The documents, in input order.
    pub documents: Vec<Document>,
    /// The YAML stream or JSON array, when asked for.
    pub text: Option<String>,
    /// What happened.
    pub report: Report,
}

/// A document being processed.
struct Work {
    source: usize,
    index: u32,
    item: u32,
    root: Node,
    identity: Option<Identity>,
}

#[derive(Debug, Clone)]
struct Identity {
    api_version: String,
    kind: String,
    namespace: Option<String>,
    name: String,
}

/// A parsed `--image`.
struct Override {
    name: String,
    /// The canonical repository NAME denotes, when NAME is a valid repository.
    repository: Option<String>,
    reference: String,
    matched: usize,
}

/// Renders `request`.
///
/// # Errors
/// Every error found (with the warnings), ordered by source and position.
pub fn render(request: &Request) -> Result<Rendered, Vec<Diagnostic>> {
    let variables: HashMap<String, String> = request.variables.iter().cloned().collect();
    let mut diagnostics = Vec::new();
    let mut overrides = parse_overrides(&request.images, &mut diagnostics);
    let mut report = Report::default();
    let mut work = Vec::new();
    // Whether some container may have gone unseen (text lost to a YAML error, a document
    // without apiVersion or kind, a container name from a missing variable): then an unmatched
    // `--image` proves nothing, and "no container is named" would only be a consequence.
    let mut incomplete = false;
    let mut empty = Vec::new();
    for (s, source) in request.sources.iter().enumerate() {
        let variables = (!request.options.literal).then_some(&variables);
        let loaded = load::load(&source.name, &source.text, variables);
        incomplete |= loaded.lost;
        if loaded.documents.is_empty() && loaded.diagnostics.is_empty() {
            empty.push(s);
        }
        diagnostics.extend(loaded.diagnostics);
        report.substitutions.extend(
            loaded
                .substitutions
                .into_iter()
                .map(|u| SubstitutionReport {
                    variable: u.variable,
                    source: source.name.clone(),
                    pos: u.pos,
                    defaulted: u.resolution == Resolution::Default,
                }),
        );
        for document in loaded.documents {
            expand_list(s, document, &source.name, &mut work, &mut diagnostics);
        }
    }
    // Nothing at all is an error (as kubectl's "no objects passed to apply"); one empty file
    // among others, a warning.
    let nothing = work.is_empty() && diagnostics.is_empty();
    for s in empty {
        let source = &request.sources[s];
        let what = if source.text.trim().is_empty() {
            "the file is empty"
        } else {
            "the file has no documents, only comments or `---`"
        };
        diagnostics.push(if nothing {
            Diagnostic::error(&source.name, Pos::default(), what)
        } else {
            Diagnostic::warning(&source.name, Pos::default(), what)
        });
    }
    for w in &mut work {
        let source = &request.sources[w.source].name;
        match identity(&w.root) {
            Ok(id) => w.identity = Some(id),
            Err(errors) => {
                for (pos, message) in errors {
                    diagnostics.push(Diagnostic::error(
                        source,
                        pos,
                        document_message(w, &message),
                    ));
                }
            }
        }
        if w.identity.is_some() {
            api_version(
                w,
                source,
                request.options.upgrade_api_versions,
                &mut report,
                &mut diagnostics,
            );
        }
        // Even without a name (`${APP}` unset), a workload's containers are known: an override
        // that names one of them is matched.
        incomplete |= !images(w, source, &mut overrides, &mut report, &mut diagnostics);
    }
    duplicates(&work, &request.sources, &mut diagnostics);
    for o in overrides.iter().filter(|o| o.matched == 0 && !incomplete) {
        let message = format!(
            "--image {}={}: no container is named `{}` or uses that repository",
            o.name, o.reference, o.name
        );
        if request.options.allow_unmatched_images {
            diagnostics.push(Diagnostic::warning("--image", Pos::default(), message));
        } else {
            diagnostics.push(Diagnostic::error(
                "--image",
                Pos::default(),
                format!("{message} (pass --allow-unmatched to accept that)"),
            ));
        }
    }
    sort(&mut diagnostics, &request.sources);
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        return Err(diagnostics);
    }
    report.warnings = diagnostics;
    let text = match request.options.output {
        OutputFormat::None => None,
        OutputFormat::Yaml => Some(to_yaml(work.iter().map(|w| &w.root))),
        OutputFormat::Json => Some(to_json(work.iter().map(|w| &w.root).collect())?),
    };
    let mut documents = Vec::with_capacity(work.len());
    for w in work {
        let Some(id) = w.identity else { continue };
        documents.push(Document {
            json: if request.options.document_json {
                serde_json::to_string(&w.root).map_err(|e| vec![internal(&e.to_string())])?
            } else {
                String::new()
            },
            source: request.sources[w.source].name.clone(),
            index: w.index,
            item: w.item,
            pos: w.root.pos,
            api_version: id.api_version,
            kind: id.kind,
            namespace: id.namespace,
            name: id.name,
        });
    }
    Ok(Rendered {
        documents,
        text,
        report,
    })
}

fn internal(message: &str) -> Diagnostic {
    Diagnostic::error("", Pos::default(), format!("internal error: {message}"))
}

/// "document 2 (Deployment web)" style prefix for messages about a whole document.
fn document_message(w: &Work, message: &str) -> String {
    if w.item > 0 {
        format!("document {} item {}: {message}", w.index, w.item)
    } else {
        format!("document {}: {message}", w.index)
    }
}

fn sort(diagnostics: &mut [Diagnostic], sources: &[Source]) {
    let rank = |d: &Diagnostic| {
        sources
            .iter()
            .position(|s| s.name == d.source)
            .map_or(0, |i| i + 1)
    };
    diagnostics.sort_by_key(|d| (rank(d), d.pos));
}

fn parse_overrides(images: &[ImageOverride], diagnostics: &mut Vec<Diagnostic>) -> Vec<Override> {
    let mut out: Vec<Override> = Vec::new();
    for image in images {
        let arg = format!("--image {}={}", image.name, image.reference);
        let bad = |diagnostics: &mut Vec<Diagnostic>, message: String| {
            diagnostics.push(Diagnostic::error(
                "--image",
                Pos::default(),
                format!("{arg}: {message}"),
            ));
        };
        let repository = match Reference::parse(&image.name) {
            Ok(r) if r.tag.is_none() && r.digest.is_none() => Some(r.canonical_repository()),
            Ok(_) => {
                bad(
                    diagnostics,
                    "NAME must be a container name or a repository without tag or digest".into(),
                );
                continue;
            }
            Err(e) => {
                bad(
                    diagnostics,
                    format!("NAME is neither a container name nor a repository: {e}"),
                );
                continue;
            }
        };
        match Reference::parse(&image.reference) {
            Ok(r) => {
                if r.digest.is_none() && r.tag.as_deref().is_none_or(|t| t == "latest") {
                    diagnostics.push(Diagnostic::warning(
                        "--image",
                        Pos::default(),
                        format!(
                            "{arg}: without a digest or a tag other than `latest`, a new push does not change the \
                             manifest, so pods do not roll"
                        ),
                    ));
                }
            }
            Err(ReferenceError::Empty) => {
                // `--image web=$IMAGE` in a job where IMAGE is unset or empty.
                bad(
                    diagnostics,
                    "the image reference is empty: is the variable it comes from (as in \
                     `--image NAME=$IMAGE`) unset or empty in this job?"
                        .into(),
                );
                continue;
            }
            Err(e) => {
                bad(
                    diagnostics,
                    format!("REF is not a valid image reference: {e}"),
                );
                continue;
            }
        }
        if out.iter().any(|o| o.name == image.name) {
            bad(diagnostics, format!("`{}` is overridden twice", image.name));
            continue;
        }
        out.push(Override {
            name: image.name.clone(),
            repository,
            reference: image.reference.clone(),
            matched: 0,
        });
    }
    out
}

/// `kind: List` (and `*List`) documents stand for their items, as with kubectl.
fn expand_list(
    source: usize,
    document: Loaded,
    name: &str,
    work: &mut Vec<Work>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let kind = document.root.get_path(&["kind"]);
    let is_list = kind
        .and_then(Node::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && document.root.get_path(&["items"]).is_some();
    if !is_list {
        work.push(Work {
            source,
            index: document.index,
            item: 0,
            root: document.root,
            identity: None,
        });
        return;
    }
    if kind.is_some_and(|k| k.substituted) {
        // The document's shape must never depend on a variable.
        diagnostics.push(Diagnostic::error(
            name,
            kind.map_or(document.root.pos, |k| k.pos),
            format!(
                "document {}: the kind of a List cannot come from a placeholder",
                document.index
            ),
        ));
        return;
    }
    let Some(Value::Map(mut root)) = Some(document.root.value) else {
        return;
    };
    let Some(items) = root.remove("items") else {
        return;
    };
    let Value::Seq(items) = items.value.value else {
        diagnostics.push(Diagnostic::error(
            name,
            items.value.pos,
            format!("document {}: List items must be a sequence", document.index),
        ));
        return;
    };
    for (i, item) in items.into_iter().enumerate() {
        let item_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if item.as_map().is_none() {
            diagnostics.push(Diagnostic::error(
                name,
                item.pos,
                format!(
                    "document {} item {item_no} is {}: List items must be mappings",
                    document.index,
                    item.type_name()
                ),
            ));
            continue;
        }
        work.push(Work {
            source,
            index: document.index,
            item: item_no,
            root: item,
            identity: None,
        });
    }
}

fn identity(root: &Node) -> Result<Identity, Vec<(Pos, String)>> {
    let mut errors = Vec::new();
    let mut text = |parent: &Node, key: &str, what: &str, required: bool| -> Option<String> {
        match parent.as_map().and_then(|m| m.get(key)) {
            None if required => {
                errors.push((parent.pos, format!("{what} is missing")));
                None
            }
            None => None,
            Some(Node {
                value: Value::Str(s),
                pos,
                ..
            }) => {
                if s.is_empty() {
                    errors.push((*pos, format!("{what} is empty")));
                }
                Some(s.clone())
            }
            // The missing variable is the problem, already reported.
            Some(other) if other.unresolved => None,
            Some(other) => {
                errors.push((
                    other.pos,
                    format!("{what} must be a string, not {}", other.type_name()),
                ));
                None
            }
        }
    };
    let api_version = text(root, "apiVersion", "apiVersion", true);
    let kind = text(root, "kind", "kind", true);
    let (name, namespace) = match root.get_path(&["metadata"]) {
        Some(m) if m.as_map().is_some() => (
            text(m, "name", "metadata.name", true),
            text(m, "namespace", "metadata.namespace", false),
        ),
        Some(m) if m.unresolved => (None, None),
        Some(m) => {
            errors.push((
                m.pos,
                format!("metadata must be a mapping, not {}", m.type_name()),
            ));
            (None, None)
        }
        None => {
            errors.push((root.pos, "metadata is missing".to_owned()));
            (None, None)
        }
    };
    match (api_version, kind, name) {
        (Some(api_version), Some(kind), Some(name)) if errors.is_empty() => Ok(Identity {
            api_version,
            kind,
            namespace,
            name,
        }),
        _ => Err(errors),
    }
}

fn api_version(
    w: &mut Work,
    source: &str,
    upgrade: bool,
    report: &mut Report,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let Some(id) = w.identity.as_mut() else {
        return;
    };
    let Some(rule) = upgrade::lookup(&id.api_version, &id.kind) else {
        return;
    };
    let pos = w
        .root
        .get_path(&["apiVersion"])
        .map_or(w.root.pos, |n| n.pos);
    let what = format!("{} `{}`", id.kind, id.name);
    let replacement = rule
        .replacement
        .map_or_else(|| "no replacement".to_owned(), |r| format!("use {r}"));
    let mut entry = ApiVersionReport {
        source: source.to_owned(),
        pos,
        kind: id.kind.clone(),
        name: id.name.clone(),
        old: rule.api_version.to_owned(),
        new: rule.replacement.map(str::to_owned),
        removed_in: rule.removed_in.to_owned(),
        upgraded: false,
        notes: Vec::new(),
    };
    if !upgrade || rule.rewrite == Rewrite::Manual {
        let hint = match (rule.rewrite, upgrade) {
            (Rewrite::Manual, _) => format!(" (migrate by hand: {})", rule.changes),
            (_, false) => " (--upgrade-api-versions rewrites it)".to_owned(),
            _ => String::new(),
        };
        diagnostics.push(Diagnostic::warning(
            source,
            pos,
            format!(
                "{what}: {} was removed in Kubernetes {}: {replacement}{hint}",
                rule.api_version, rule.removed_in
            ),
        ));
        report.api_versions.push(entry);
        return;
    }
    match upgrade::upgrade(&mut w.root, &id.kind, rule) {
        Ok(notes) => {
            entry.upgraded = true;
            entry.notes = notes;
            id.api_version = rule.replacement.unwrap_or(rule.api_version).to_owned();
            report.api_versions.push(entry);
        }
        Err(errors) => {
            for e in errors {
                diagnostics.push(Diagnostic::error(
                    source,
                    e.pos,
                    format!(
                        "{what}: cannot upgrade {} to {}: {}",
                        rule.api_version,
                        rule.replacement.unwrap_or("-"),
                        e.message
                    ),
                ));
            }
        }
    }
}

/// Where the pod spec of each built-in workload kind lives.
fn pod_spec_path(group: &str, kind: &str) -> Option<&'static [&'static str]> {
    let path: &'static [&'static str] = match kind {
        "Pod" => &["spec"],
        "PodTemplate" => &["template", "spec"],
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => &["spec", "template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    };
    matches!(group, "" | "apps" | "batch" | "extensions").then_some(path)
}

fn group(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

/// Applies the overrides to `w`'s containers and checks their images. Returns whether every
/// container could be matched against the overrides (not when a name is unknown).
fn images(
    w: &mut Work,
    source: &str,
    overrides: &mut [Override],
    report: &mut Report,
    diagnostics: &mut Vec<Diagnostic>,
) -> bool {
    let mut complete = true;
    let (api_version, kind, name) = match &w.identity {
        Some(id) => (id.api_version.clone(), id.kind.clone(), id.name.clone()),
        None => match (w.root.str_at(&["apiVersion"]), w.root.str_at(&["kind"])) {
            (Some(api_version), Some(kind)) => (
                api_version.to_owned(),
                kind.to_owned(),
                w.root
                    .str_at(&["metadata", "name"])
                    .unwrap_or("?")
                    .to_owned(),
            ),
            // What containers it has is unknown.
            _ => return false,
        },
    };
    let Some(path) = pod_spec_path(group(&api_version), &kind) else {
        return complete;
    };
    let Some(pod) = w.root.get_path_mut(path).and_then(Node::as_map_mut) else {
        return complete;
    };
    for (list, init) in [("initContainers", true), ("containers", false)] {
        let Some(containers) = pod.get_mut(list).and_then(Node::as_seq_mut) else {
            continue;
        };
        for container in containers {
            let container_pos = container.pos;
            let Some(c) = container.as_map_mut() else {
                complete = false;
                if container.unresolved {
                    continue;
                }
                diagnostics.push(Diagnostic::error(
                    source,
                    container_pos,
                    format!("{kind} `{name}`: a container must be a mapping"),
                ));
                continue;
            };
            let name_node = c.get("name");
            complete &= name_node.is_none_or(|n| !n.unresolved);
            let cname = name_node.and_then(Node::as_str).unwrap_or("").to_owned();
            let label = format!(
                "{} `{}` {} `{cname}`",
                kind,
                name,
                if init { "init container" } else { "container" }
            );
            let image = c.get("image");
            let image_pos = image.map_or(container_pos, |n| n.pos);
            let old = match image.map(|n| (&n.value, n.unresolved)) {
                // A missing variable (reported): matched by container name only.
                None | Some((_, true)) => None,
                Some((Value::Str(s), _)) => Some(s.clone()),
                Some(_) => {
                    let t = image.map_or("null", Node::type_name);
                    diagnostics.push(Diagnostic::error(
                        source,
                        image_pos,
                        format!("{label}: image must be a string, not {t}"),
                    ));
                    continue;
                }
            };
            let parsed = old.as_deref().map(Reference::parse);
            let repository = match &parsed {
                Some(Ok(r)) => Some(r.canonical_repository()),
                _ => None,
            };
            let matching: Vec<usize> = overrides
                .iter()
                .enumerate()
                .filter(|(_, o)| {
                    o.name == cname || (o.repository.is_some() && o.repository == repository)
                })
                .map(|(i, _)| i)
                .collect();
            match matching.as_slice() {
                [] => {
                    if let (Some(text), Some(Err(e))) = (&old, parsed) {
                        diagnostics.push(Diagnostic::error(
                            source,
                            image_pos,
                            format!(
                                "{label}: `{text}` is not a valid image reference: {e}{}",
                                placeholder_hint(text, &cname)
                            ),
                        ));
                    }
                }
                [i] => {
                    let o = &mut overrides[*i];
                    o.matched += 1;
                    c.insert("image", Node::str(o.reference.clone(), image_pos));
                    report.images.push(ImageChange {
                        source: source.to_owned(),
                        pos: image_pos,
                        kind: kind.clone(),
                        name: name.clone(),
                        container: cname.clone(),
                        init,
                        old: old.unwrap_or_default(),
                        new: o.reference.clone(),
                        by: o.name.clone(),
                    });
                }
                many => {
                    // Each of them matched (this container): the conflict is the one problem.
                    for i in many {
                        overrides[*i].matched += 1;
                    }
                    let names: Vec<String> = many
                        .iter()
                        .map(|i| format!("`{}`", overrides[*i].name))
                        .collect();
                    diagnostics.push(Diagnostic::error(
                        source,
                        image_pos,
                        format!(
                            "{label}: matched by several --image overrides ({}): keep one",
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    complete
}

/// The classic `image: IMAGE` left for `sed` is not a reference; say what to do instead.
fn placeholder_hint(text: &str, container: &str) -> String {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        format!(" (a placeholder left for sed? pass --image {container}=REF, or write ${{{text}}})")
    } else {
        String::new()
    }
}

fn duplicates(work: &[Work], sources: &[Source], diagnostics: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<(&str, &str, &str, &str), (usize, Pos)> = HashMap::new();
    for w in work {
        let Some(id) = &w.identity else { continue };
        let key = (
            group(&id.api_version),
            id.kind.as_str(),
            id.namespace.as_deref().unwrap_or_default(),
            id.name.as_str(),
        );
        match seen.get(&key) {
            Some((s, pos)) => diagnostics.push(Diagnostic::error(
                &sources[w.source].name,
                w.root.pos,
                format!(
                    "{} `{}`{} is defined twice (first at {}:{})",
                    id.kind,
                    id.name,
                    id.namespace
                        .as_deref()
                        .map(|n| format!(" in namespace `{n}`"))
                        .unwrap_or_default(),
                    sources[*s].name,
                    pos
                ),
            )),
            None => {
                seen.insert(key, (w.source, w.root.pos));
            }
        }
    }
}

fn to_yaml<'a>(roots: impl Iterator<Item = &'a Node>) -> String {
    let mut out = String::new();
    for root in roots {
        emit::document(&mut out, root);
    }
    out
}

fn to_json(roots: Vec<&Node>) -> Result<String, Vec<Diagnostic>> {
    let mut text =
        serde_json::to_string_pretty(&roots).map_err(|e| vec![internal(&e.to_string())])?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/manifests"
    );
    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn fixture(path: &str) -> Source {
        Source {
            name: path.to_owned(),
            text: std::fs::read_to_string(format!("{FIXTURES}/{path}")).unwrap(),
        }
    }

    fn reference_sources() -> Vec<Source> {
        [
            "reference/gitlab-integration.yml",
            "reference/deployment.yml",
            "reference/traefik/rbac.yml",
            "reference/traefik/traefik-toml-configmap.yml",
            "reference/traefik/traefik-certificates-pvc.yml",
            "reference/traefik/traefik-deployment.yml",
            "reference/traefik/traefik-service-clusterip.yml",
            "reference/traefik/traefik-service-loadbalancer.yml",
            "reference/traefik/traefik-api-ingress.yml",
        ]
        .into_iter()
        .map(fixture)
        .collect()
    }

    fn source(text: &str) -> Vec<Source> {
        vec![Source {
            name: "m.yaml".into(),
            text: text.into(),
        }]
    }

    fn image(name: &str, reference: &str) -> ImageOverride {
        ImageOverride {
            name: name.into(),
            reference: reference.into(),
        }
    }

    fn messages(diagnostics: &[Diagnostic]) -> Vec<String> {
        diagnostics.iter().map(ToString::to_string).collect()
    }

    fn doc(r: &Rendered, kind: &str, name: &str) -> serde_json::Value {
        let d = r
            .documents
            .iter()
            .find(|d| d.kind == kind && d.name == name)
            .unwrap();
        serde_json::from_str(&d.json).unwrap()
    }

    #[test]
    fn the_reference_workflow_comes_out_current() {
        let r = render(&Request {
            sources: reference_sources(),
            images: vec![image(
                "blog",
                "registry.gitlab.com/group/project:3f2a9c1-42-7",
            )],
            options: Options {
                upgrade_api_versions: true,
                ..Options::default()
            },
            ..Request::default()
        })
        .unwrap_or_else(|e| panic!("{:#?}", messages(&e)));
        assert_eq!(r.documents.len(), 14);
        for d in &r.documents {
            assert!(
                upgrade::lookup(&d.api_version, &d.kind).is_none(),
                "{} {} {}",
                d.api_version,
                d.kind,
                d.name
            );
        }
        assert!(
            r.report.warnings.is_empty(),
            "{:?}",
            messages(&r.report.warnings)
        );
        let upgraded: Vec<(&str, &str, &str)> = r
            .report
            .api_versions
            .iter()
            .map(|a| (a.kind.as_str(), a.old.as_str(), a.removed_in.as_str()))
            .collect();
        assert_eq!(
            upgraded,
            vec![
                ("RoleBinding", "rbac.authorization.k8s.io/v1beta1", "1.22"),
                ("Deployment", "extensions/v1beta1", "1.16"),
                ("Ingress", "extensions/v1beta1", "1.22"),
                ("ClusterRole", "rbac.authorization.k8s.io/v1beta1", "1.22"),
                (
                    "ClusterRoleBinding",
                    "rbac.authorization.k8s.io/v1beta1",
                    "1.22"
                ),
                ("Deployment", "extensions/v1beta1", "1.16"),
                ("Ingress", "extensions/v1beta1", "1.22"),
            ]
        );
        assert!(r.report.api_versions.iter().all(|a| a.upgraded));
        let blog = doc(&r, "Deployment", "blog");
        assert_eq!(blog["apiVersion"], "apps/v1");
        assert_eq!(
            blog["spec"]["selector"],
            serde_json::json!({"matchLabels": {"app": "blog"}})
        );
        assert_eq!(
            blog["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.gitlab.com/group/project:3f2a9c1-42-7"
        );
        let ingress = doc(&r, "Ingress", "blog");
        assert_eq!(
            ingress["spec"],
            serde_json::json!({
                "ingressClassName": "traefik",
                "rules": [{"host": "www.example.org", "http": {"paths": [{
                    "path": "/", "pathType": "ImplementationSpecific",
                    "backend": {"service": {"name": "blog", "port": {"number": 80}}}
                }]}}]
            })
        );
        assert_eq!(ingress["metadata"].get("annotations"), None);
        let ui = doc(&r, "Ingress", "traefik-web-ui");
        assert_eq!(
            ui["spec"]["rules"][0]["http"]["paths"][0]["backend"],
            serde_json::json!({"service": {"name": "traefik-ingress-service", "port": {"name": "admin"}}})
        );
        let traefik = doc(&r, "Deployment", "traefik-ingress-controller");
        assert_eq!(traefik["apiVersion"], "apps/v1");
        assert_eq!(
            traefik["spec"]["template"]["spec"]["containers"][0]["image"],
            "traefik:1.7.7"
        );
        let config = doc(&r, "ConfigMap", "traefik-conf");
        assert!(
            config["data"]["traefik.toml"]
                .as_str()
                .unwrap()
                .starts_with("defaultEntryPoints = [\"http\", \"https\"]\n\nlogLevel")
        );
        assert_eq!(r.report.images.len(), 1);
        assert_eq!(r.report.images[0].old, "IMAGE");
    }

    #[test]
    fn removed_versions_are_reported_without_the_flag() {
        let r = render(&Request {
            sources: vec![
                fixture("reference/traefik/traefik-api-ingress.yml"),
                fixture("reference/traefik/traefik-deployment.yml"),
            ],
            ..Request::default()
        })
        .unwrap();
        assert_eq!(
            messages(&r.report.warnings),
            vec![
                "reference/traefik/traefik-api-ingress.yml:2:13: warning: Ingress `traefik-web-ui`: extensions/v1beta1 was removed in Kubernetes 1.22: use networking.k8s.io/v1 (--upgrade-api-versions rewrites it)",
                "reference/traefik/traefik-deployment.yml:3:13: warning: Deployment `traefik-ingress-controller`: extensions/v1beta1 was removed in Kubernetes 1.16: use apps/v1 (--upgrade-api-versions rewrites it)",
            ]
        );
        assert_eq!(r.documents[0].api_version, "extensions/v1beta1");
        assert!(r.report.api_versions.iter().all(|a| !a.upgraded));
    }

    #[test]
    fn the_sed_placeholder_is_caught() {
        let e = render(&Request {
            sources: vec![fixture("reference/deployment.yml")],
            ..Request::default()
        })
        .unwrap_err();
        let errors: Vec<String> = messages(&e)
            .into_iter()
            .filter(|m| m.contains("error"))
            .collect();
        assert_eq!(
            errors,
            vec![
                "reference/deployment.yml:19:16: error: Deployment `blog` container `blog`: `IMAGE` is not a valid image reference: the repository name must be lowercase (a placeholder left for sed? pass --image blog=REF, or write ${IMAGE})"
            ]
        );
    }

    fn template(
        vars: &[(&str, &str)],
        images: Vec<ImageOverride>,
        options: Options,
    ) -> Result<Rendered, Vec<String>> {
        render(&Request {
            sources: vec![fixture("templates/app.yaml")],
            variables: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            images,
            options,
        })
        .map_err(|e| messages(&e))
    }

    #[test]
    fn images_match_by_container_name_or_exact_repository() {
        let d = format!("registry.local:5000/team/app:2.0@sha256:{HEX}");
        let r = template(
            &[("APP", "web"), ("VERSION", "1.10")],
            vec![image("registry.local:5000/team/app", &d)],
            Options::default(),
        )
        .unwrap();
        let changed: Vec<(&str, &str, bool)> = r
            .report
            .images
            .iter()
            .map(|c| (c.kind.as_str(), c.container.as_str(), c.init))
            .collect();
        assert_eq!(
            changed,
            vec![
                ("Deployment", "migrate", true),
                ("Deployment", "web", false),
                ("CronJob", "report", false)
            ]
        );
        let web = doc(&r, "Deployment", "web");
        assert_eq!(
            web["spec"]["template"]["spec"]["containers"][1]["image"],
            "nginx:1.27"
        );
        assert_eq!(web["metadata"]["labels"]["version"], "1.10");
        assert_eq!(web["spec"]["replicas"], 2);

        // By container name, and the Docker Hub spelling of a repository.
        let r = template(
            &[("APP", "web"), ("VERSION", "1")],
            vec![
                image("web", "registry.local:5000/team/app:3"),
                image("docker.io/library/nginx", "nginx:1.28"),
            ],
            Options::default(),
        )
        .unwrap();
        let web = doc(&r, "Deployment", "web");
        assert_eq!(
            web["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.local:5000/team/app:3"
        );
        assert_eq!(
            web["spec"]["template"]["spec"]["containers"][1]["image"],
            "nginx:1.28"
        );
        assert_eq!(
            web["spec"]["template"]["spec"]["initContainers"][0]["image"],
            "registry.local:5000/team/app:1.0"
        );
    }

    #[test]
    fn repository_matching_is_exact() {
        for name in [
            "registry.local:5000/team/ap",
            "registry.local:5000/team",
            "registry.local/team/app",
            "team/app",
            "app",
        ] {
            let e = template(
                &[("APP", "web"), ("VERSION", "1")],
                vec![image(name, "x:1")],
                Options::default(),
            )
            .unwrap_err();
            assert!(
                e.iter().any(|m| m.contains("no container is named")),
                "{name}: {e:?}"
            );
        }
        // Not a regular expression: `.*` is not even a repository.
        let e = template(
            &[("APP", "web"), ("VERSION", "1")],
            vec![image("registry.local:5000/team/app.*", "x:1")],
            Options::default(),
        )
        .unwrap_err();
        assert!(
            e[0].contains("NAME is neither a container name nor a repository"),
            "{e:?}"
        );
        let r = template(
            &[("APP", "web"), ("VERSION", "1")],
            vec![image("nothing", "x:1")],
            Options {
                allow_unmatched_images: true,
                ..Options::default()
            },
        )
        .unwrap();
        assert!(
            r.report
                .warnings
                .iter()
                .any(|w| w.message.contains("no container is named `nothing`"))
        );
    }

    /// Renders `text` as `m.yaml` with `vars` and `images`; the error messages.
    fn errors_of(text: &str, vars: &[(&str, &str)], images: Vec<ImageOverride>) -> Vec<String> {
        let e = render(&Request {
            sources: source(text),
            variables: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            images,
            options: Options::default(),
        })
        .unwrap_err();
        messages(&e)
            .into_iter()
            .filter(|m| m.contains("error:"))
            .collect()
    }

    const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${APP}-report\n\
        spec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: ${IMAGE}\n";

    #[test]
    fn only_the_root_cause_is_reported() {
        // One container matched by two overrides: the conflict, not "no container is named".
        let e = errors_of(
            DEPLOYMENT,
            &[("APP", "a"), ("IMAGE", "nginx:1")],
            vec![image("web", "x:1"), image("nginx", "y:1")],
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("matched by several --image overrides (`web`, `nginx`)"),
            "{e:?}"
        );
        // IMAGE unset, --image web=…: the container exists; only the variable is missing.
        let e = errors_of(DEPLOYMENT, &[("APP", "a")], vec![image("web", "x:1")]);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("m.yaml:10:16: error:") && e[0].contains("`IMAGE`"),
            "{e:?}"
        );
        // APP unset in `${APP}-report`: the variable, not "metadata.name must be a string", nor
        // (the document having no identity) "no container is named web".
        let e = errors_of(
            DEPLOYMENT,
            &[("IMAGE", "nginx:1")],
            vec![image("web", "x:1")],
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("m.yaml:4:9: error:") && e[0].contains("`APP`"),
            "{e:?}"
        );
        // A container named by a missing variable could be any: no "no container is named".
        let named = DEPLOYMENT.replace("name: web", "name: ${C}");
        let e = errors_of(
            &named,
            &[("APP", "a"), ("IMAGE", "n:1")],
            vec![image("api", "x:1")],
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("`C`"), "{e:?}");
        // A true mismatch is still reported, also next to a missing variable elsewhere.
        let e = errors_of(DEPLOYMENT, &[("IMAGE", "n:1")], vec![image("api", "x:1")]);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].contains("no container is named `api`"), "{e:?}");
        let e = errors_of(
            DEPLOYMENT,
            &[("APP", "a"), ("IMAGE", "nginx:1")],
            vec![image("api", "x:1")],
        );
        assert!(e[0].contains("no container is named `api`"), "{e:?}");
    }

    #[test]
    fn empty_files_are_named() {
        let only = render(&Request {
            sources: source("# nothing yet\n---\n"),
            ..Request::default()
        })
        .unwrap_err();
        assert_eq!(
            messages(&only),
            ["m.yaml: error: the file has no documents, only comments or `---`"]
        );
        let mut sources = source(DEPLOYMENT);
        sources.push(Source {
            name: "empty.yaml".into(),
            text: String::new(),
        });
        let r = render(&Request {
            sources,
            variables: vec![("APP".into(), "a".into()), ("IMAGE".into(), "n:1".into())],
            ..Request::default()
        })
        .unwrap();
        assert_eq!(
            messages(&r.report.warnings),
            ["empty.yaml: warning: the file is empty"]
        );
    }

    #[test]
    fn an_empty_image_reference_hints_at_its_variable() {
        let e = errors_of(
            DEPLOYMENT,
            &[("APP", "a"), ("IMAGE", "nginx:1")],
            vec![image("web", "")],
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("--image web=: the image reference is empty")
                && e[0].contains("unset or empty in this job"),
            "{e:?}"
        );
    }

    #[test]
    fn override_errors() {
        let e = template(
            &[("APP", "web"), ("VERSION", "1")],
            vec![
                image("web", "Bad:ref"),
                image("nginx:1", "x:1"),
                image("web", "y:1"),
            ],
            Options::default(),
        )
        .unwrap_err();
        assert_eq!(
            e[0],
            "--image: error: --image web=Bad:ref: REF is not a valid image reference: the repository name must be lowercase"
        );
        assert_eq!(
            e[1],
            "--image: error: --image nginx:1=x:1: NAME must be a container name or a repository without tag or digest"
        );
        let e = template(
            &[("APP", "web"), ("VERSION", "1")],
            vec![
                image("web", "a:1"),
                image("registry.local:5000/team/app", "b:1"),
            ],
            Options::default(),
        )
        .unwrap_err();
        assert!(
            e.iter().any(|m| m.contains(
                "matched by several --image overrides (`web`, `registry.local:5000/team/app`)"
            )),
            "{e:?}"
        );
        let r = template(
            &[("APP", "web"), ("VERSION", "1")],
            vec![image("sidecar", "nginx")],
            Options::default(),
        )
        .unwrap();
        assert!(r.report.warnings[0].message.contains("pods do not roll"));
    }

    #[test]
    fn every_missing_variable_with_its_location() {
        let e = template(&[], vec![], Options::default()).unwrap_err();
        let missing: Vec<&String> = e.iter().filter(|m| m.contains("is not set")).collect();
        let places: Vec<&str> = missing
            .iter()
            .map(|m| m.split(": error").next().unwrap())
            .collect();
        assert_eq!(
            places,
            vec![
                "templates/app.yaml:5:9",
                "templates/app.yaml:8:10",
                "templates/app.yaml:9:15",
                "templates/app.yaml:14:12",
                "templates/app.yaml:18:14",
                "templates/app.yaml:25:15",
                "templates/app.yaml:38:9",
                "templates/app.yaml:53:9",
            ]
        );
        assert!(
            missing
                .iter()
                .all(|m| m.contains("`APP`") || m.contains("`VERSION`"))
        );
    }

    #[test]
    fn identity_and_duplicates() {
        let e = render(&Request {
            sources: source(
                "kind: Pod\nmetadata: {}\n---\napiVersion: 1\nkind: Pod\nmetadata:\n  name: a\n",
            ),
            ..Request::default()
        })
        .unwrap_err();
        assert_eq!(
            messages(&e),
            vec![
                "m.yaml:1:1: error: document 1: apiVersion is missing",
                "m.yaml:2:11: error: document 1: metadata.name is missing",
                "m.yaml:4:13: error: document 2: apiVersion must be a string, not a number",
            ]
        );
        let two = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: z}\n";
        let e = render(&Request {
            sources: source(two),
            ..Request::default()
        })
        .unwrap_err();
        assert_eq!(
            messages(&e),
            vec![
                "m.yaml:5:1: error: ConfigMap `a` in namespace `x` is defined twice (first at m.yaml:1:1)"
            ]
        );
        // The YAML 1.1 trap, as kubectl falls into it: the namespace `y` is a boolean.
        let e = render(&Request {
            sources: source("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: y}\n"),
            ..Request::default()
        })
        .unwrap_err();
        assert_eq!(
            messages(&e),
            vec![
                "m.yaml:3:32: warning: `y` is the boolean true for kubectl (YAML 1.1) but a string for YAML 1.2 readers; kstep follows kubectl: write `true`, or quote it for a string",
                "m.yaml:3:32: error: document 1: metadata.namespace must be a string, not a boolean",
            ]
        );
        // An extensions/v1beta1 Deployment and an apps/v1 one are the same object once upgraded.
        let old_and_new = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}}\n---\napiVersion: apps/v1beta2\nkind: Deployment\nmetadata: {name: a}\nspec:\n  template: {metadata: {labels: {a: b}}}\n";
        let e = render(&Request {
            sources: source(old_and_new),
            options: Options {
                upgrade_api_versions: true,
                ..Options::default()
            },
            ..Request::default()
        })
        .unwrap_err();
        assert!(messages(&e)[0].contains("Deployment `a` is defined twice"));
    }

    #[test]
    fn lists_are_expanded() {
        let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b}\n";
        let r = render(&Request {
            sources: source(list),
            ..Request::default()
        })
        .unwrap();
        let names: Vec<(&str, u32, u32)> = r
            .documents
            .iter()
            .map(|d| (d.name.as_str(), d.index, d.item))
            .collect();
        assert_eq!(names, vec![("a", 1, 1), ("b", 1, 2)]);
        let e = render(&Request {
            sources: source("apiVersion: v1\nkind: ${K}\nitems: []\nmetadata: {name: x}\n"),
            variables: vec![("K".into(), "List".into())],
            ..Request::default()
        })
        .unwrap_err();
        assert_eq!(
            messages(&e),
            vec![
                "m.yaml:2:7: error: document 1: the kind of a List cannot come from a placeholder"
            ]
        );
    }

    /// The output, read back by an independent reader (serde-saphyr's own deserializer, and
    /// serde_json), gives the documents' JSON exactly.
    #[test]
    fn yaml_and_json_output_read_back_identically() {
        let vars = [
            ("APP", "web"),
            ("VERSION", "1.10"),
            ("WHO", "a: b # c\n---\nkind: Secret"),
            ("FLAG", "on"),
        ];
        let mut sources = reference_sources();
        sources.push(fixture("templates/app.yaml"));
        for output in [OutputFormat::Yaml, OutputFormat::Json] {
            let r = render(&Request {
                sources: sources.clone(),
                variables: vars
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                images: vec![image("blog", "registry.gitlab.com/group/project:1")],
                options: Options {
                    output,
                    upgrade_api_versions: true,
                    ..Options::default()
                },
            })
            .unwrap_or_else(|e| panic!("{:?}", messages(&e)));
            let text = r.text.unwrap();
            let again: Vec<serde_json::Value> = match output {
                OutputFormat::Yaml => serde_saphyr::from_multiple(&text).unwrap(),
                _ => serde_json::from_str(&text).unwrap(),
            };
            let before: Vec<serde_json::Value> = r
                .documents
                .iter()
                .map(|d| serde_json::from_str(&d.json).unwrap())
                .collect();
            assert_eq!(before, again, "{output:?}:\n{text}");
        }
        let r = template(
            &vars,
            vec![],
            Options {
                output: OutputFormat::Yaml,
                ..Options::default()
            },
        )
        .unwrap();
        let text = r.text.unwrap();
        assert!(
            text.starts_with(
                "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("version: '1.10'") || text.contains("version: \"1.10\""),
            "{text}"
        );
        assert!(
            text.contains("value: 'on'") || text.contains("value: \"on\""),
            "{text}"
        );
        assert!(text.contains("settings.toml: |"), "{text}");
    }
}
