//! Server-side apply of a set of objects, all or nothing at the validation stage.
//!
//! 1. Namespace policy on every object whose scope is known without asking (built-in kinds,
//!    kinds defined by CRDs in the set): refusals end the run before any request.
//! 2. Discovery of the group-versions used (reads only); policy on the rest.
//! 3. A server-side dry-run apply of EVERY object with strict field validation. Any rejection
//!    ends the run with every rejection reported; nothing has been changed. Objects that cannot
//!    be dry-run yet because their CRD or Namespace is part of the same run are validated right
//!    after that CRD/Namespace is applied, before anything else is.
//! 4. Takeovers ([`adopt`]): existing objects that client-side `kubectl apply` or Helm
//!    applied are read; Helm's are refused (nothing changed) unless `--adopt helm`; the others'
//!    ownership moves to kstep's field manager, and objects whose dry run conflicted only with
//!    the managers taken over are dry-run again.
//! 5. The real apply, phase by phase ([`Phase`]), each phase with bounded concurrency.
//!
//! created / configured / unchanged comes for free from the dry run: its answer carries the live
//! object's uid and resourceVersion (a fresh random uid when the object does not exist yet); the
//! real apply's answer either has another uid (created), another resourceVersion (configured) or
//! the same (unchanged: the server detected a no-op and wrote nothing). An existing object whose
//! dry-run answer is identical to the live object is not sent again ([`unchanged`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use futures::stream::{self, StreamExt as _};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{ApiResource, Scope};
use serde_json::Value;
use tokio::time::Instant;

use super::adopt::{self, HelmRelease, Verdict};
use super::discovery::{self, Lookup, Resolver};
use super::events::{Event, Reporter};
use super::in_sync;
use super::objects::{self, DefinedKind, InvalidObject, NamespacePolicy, Object, Phase, Refusal};
use super::{api_error, watch};

/// Objects of one resource and namespace from which their live versions are listed, not read
/// one by one.
const LIST_FROM: usize = 3;
/// The largest list page asked for; a namespace with more objects of the kind is read per
/// object instead.
const LIST_PAGE: u32 = 500;
/// How often discovery is asked again while a just-established CRD's version is not yet served.
const DISCOVERY_RETRY: Duration = Duration::from_millis(200);
/// How to apply.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which namespaces and scopes may be touched.
    pub policy: NamespacePolicy,
    /// Stop after the dry run and report what would happen.
    pub dry_run: bool,
    /// Take over fields other managers own (`--force-conflicts`).
    pub force_conflicts: bool,
    /// The server-side apply field manager.
    pub field_manager: String,
    /// Take over objects Helm manages (`--adopt helm`) instead of refusing them.
    pub adopt_helm: bool,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// How long to wait for CRDs of the run to be established.
    pub establish_timeout: Duration,
    /// Bound of each watch request (see [`watch::timeout_for`]).
    pub watch_timeout: Duration,
}

/// What applying one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did not exist.
    Created,
    /// It existed and changed.
    Configured,
    /// It existed and the apply changed nothing.
    Unchanged,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
        })
    }
}

/// One applied (or, with `--dry-run`, validated) object.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The object as sent.
    pub object: Object,
    /// Its REST resource.
    pub resource: ApiResource,
    /// What happened (with `--dry-run`: what would happen).
    pub outcome: Outcome,
    /// The server's answer.
    pub result: DynamicObject,
    /// With `--dry-run`: the object as the cluster holds it now, as read to compare with the
    /// answer (`None` when it does not exist, and after a real apply).
    pub live: Option<DynamicObject>,
}

/// A request the server refused.
#[derive(Debug)]
pub struct Rejection {
    /// The object.
    pub object: Object,
    /// The server's error.
    pub error: kube::Error,
}

impl Rejection {
    /// One line per field the server refused, at the field's own position when the source is
    /// known; one line at the document when its error names no field.
    pub fn lines(&self) -> Vec<String> {
        api_error::object_lines(&self.object, &self.error)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

/// Why an apply stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The namespace policy refused objects; no request was made for them.
    #[error("{} object(s) refused by the namespace policy; nothing was sent", .0.len())]
    Refused(Vec<Refusal>),
    /// Documents that cannot be applied (unknown kinds, duplicates…); nothing was changed.
    #[error("{} object(s) cannot be applied; nothing was changed", .0.len())]
    Invalid(Vec<InvalidObject>),
    /// The server's dry run rejected objects. `applied` is what a run that had to apply CRDs or
    /// Namespaces first did apply before the rejection (usually nothing).
    #[error("the server rejected {} object(s) in the dry run; {}", .rejections.len(), applied_summary(.applied))]
    Rejected {
        /// Every rejection.
        rejections: Vec<Rejection>,
        /// Applied before the dependent objects could be validated.
        applied: Vec<Applied>,
    },
    /// Applying failed part-way (the dry run passed; the server changed its mind: a webhook, a
    /// quota, a concurrent change).
    #[error("{} object(s) failed to apply; {} were applied", .failures.len(), .applied.len())]
    Failed {
        /// Every failure of the phase that failed.
        failures: Vec<Rejection>,
        /// Applied before the failure.
        applied: Vec<Applied>,
    },
    /// CRDs of the run did not become established in time.
    #[error("CustomResourceDefinition {0} was not established within {1:?}")]
    NotEstablished(String, Duration),
    /// Objects Helm manages, without `--adopt helm`; nothing was changed.
    #[error("{} object(s) are managed by Helm; nothing was changed (to take them over from Helm, apply with --adopt helm; see docs/migrating.md)", .0.len())]
    HelmManaged(Vec<HelmManaged>),
    /// Discovery or another read failed (unreachable server, credentials refused).
    #[error("{}", api_error::describe(.0))]
    Api(#[from] kube::Error),
}

/// An object refused because Helm manages it.
#[derive(Debug)]
pub struct HelmManaged {
    /// The object.
    pub object: Object,
    /// Its release.
    pub release: HelmRelease,
}

impl fmt::Display for HelmManaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: managed by Helm release {} in namespace {}",
            self.object.origin,
            self.object.display_name(),
            self.release.name,
            self.release.namespace
        )
    }
}

fn applied_summary(applied: &[Applied]) -> String {
    if applied.is_empty() {
        "nothing was applied".into()
    } else {
        let names: Vec<String> = applied.iter().map(|a| a.object.display_name()).collect();
        format!(
            "only the definitions they need were applied ({})",
            names.join(", ")
        )
    }
}

impl ApplyError {
    /// The lines to print, `FILE:LINE:COL: kind/name: message` each.
    pub fn details(&self) -> Vec<String> {
        match self {
            ApplyError::Refused(r) => r.iter().map(ToString::to_string).collect(),
            ApplyError::Invalid(i) => i.iter().map(ToString::to_string).collect(),
            ApplyError::Rejected { rejections, .. } => {
                rejections.iter().flat_map(Rejection::lines).collect()
            }
            ApplyError::Failed { failures, .. } => {
                failures.iter().flat_map(Rejection::lines).collect()
            }
            ApplyError::HelmManaged(h) => h.iter().map(ToString::to_string).collect(),
            ApplyError::NotEstablished(..) | ApplyError::Api(_) => Vec::new(),
        }
    }

    /// Whether the problem is in the input (exit 2) rather than in the cluster or the
    /// credentials (exit 1).
    pub fn is_invalid_input(&self) -> bool {
        match self {
            ApplyError::Refused(_) | ApplyError::Invalid(_) | ApplyError::HelmManaged(_) => true,
            ApplyError::Rejected { rejections, .. } => rejections
                .iter()
                .all(|r| api_error::is_invalid_object(&r.error)),
            _ => false,
        }
    }
}

/// An object ready to be sent.
#[derive(Debug, Clone)]
struct Planned {
    object: Object,
    resource: ApiResource,
    scope: Scope,
    /// The CRD or Namespace of the same run this object waits for, if any.
    waits_for: Option<Dependency>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Dependency {
    Crd(String),
    Namespace(String),
}

/// The pre-apply state the dry run revealed.
#[derive(Debug, Clone, Default)]
struct Before {
    uid: Option<String>,
    resource_version: Option<String>,
}

impl Planned {
    fn api(&self, client: &Client) -> Api<DynamicObject> {
        match (&self.scope, self.object.target_namespace()) {
            (Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(client.clone(), ns, &self.resource)
            }
            _ => Api::all_with(client.clone(), &self.resource),
        }
    }
}

/// Applies `objects` (in document order; reported in that order within each phase).
///
/// Reports each object as its phase completes: `created`, `configured` or `unchanged` (what
/// would happen, with `--dry-run`).
///
/// # Errors
/// See [`ApplyError`]: policy refusals and invalid documents before any request; dry-run
/// rejections before any change; apply failures with what was applied.
pub async fn apply(
    client: &Client,
    objects: Vec<Object>,
    options: &Options,
    reporter: &dyn Reporter,
) -> Result<Vec<Applied>, ApplyError> {
    let concurrency = options.concurrency.max(1);
    let defined = objects::defined_kinds(&objects);
    let namespaces_in_run: BTreeSet<String> = objects
        .iter()
        .filter(|o| o.group.is_empty() && o.kind == "Namespace")
        .map(|o| o.name.clone())
        .collect();

    // 1. Policy on everything whose scope is known without a request.
    let mut objects = objects;
    let mut refusals = Vec::new();
    let mut unknown_scope = Vec::new();
    for (i, object) in objects.iter_mut().enumerate() {
        match known_scope(object, &defined) {
            Some(scope) => {
                if let Err(r) = options.policy.resolve(object, &scope) {
                    refusals.push(r);
                }
            }
            None => unknown_scope.push(i),
        }
    }
    if !refusals.is_empty() {
        return Err(ApplyError::Refused(refusals));
    }

    // 2. Discovery (reads only), then policy on the kinds only the server knows.
    let mut resolver = Resolver::new(client.clone(), concurrency);
    resolver
        .prefetch(objects.iter().map(|o| (o.group.clone(), o.version.clone())))
        .await?;
    let mut invalid = Vec::new();
    let mut planned = Vec::with_capacity(objects.len());
    for (i, mut object) in objects.into_iter().enumerate() {
        let defined_here = defined
            .iter()
            .find(|d| d.group == object.group && d.kind == object.kind);
        let (resource, scope, mut waits_for) =
            match resolver.lookup(&object.group, &object.version, &object.kind) {
                Lookup::Found(resource, scope) => (resource, scope, None),
                _ if defined_here.is_some_and(|d| d.versions.contains(&object.version)) => {
                    let Some(d) = defined_here else { continue };
                    (
                        guess_resource(&object, d),
                        d.scope.clone(),
                        Some(Dependency::Crd(d.crd_name.clone())),
                    )
                }
                lookup => {
                    invalid.push(not_served(&object, &lookup, defined_here));
                    continue;
                }
            };
        if unknown_scope.contains(&i)
            && let Err(r) = options.policy.resolve(&mut object, &scope)
        {
            refusals.push(r);
            continue;
        }
        if waits_for.is_none()
            && let Some(ns) = object.target_namespace()
            && namespaces_in_run.contains(ns)
            && object.phase() != Phase::Definitions
        {
            // Only deferred if the dry run says the namespace does not exist yet.
            waits_for = Some(Dependency::Namespace(ns.to_owned()));
        }
        planned.push(Planned {
            object,
            resource,
            scope,
            waits_for,
        });
    }
    if !refusals.is_empty() {
        return Err(ApplyError::Refused(refusals));
    }
    let all: Vec<Object> = planned.iter().map(|p| p.object.clone()).collect();
    invalid.extend(objects::duplicates(&all));
    if !invalid.is_empty() {
        return Err(ApplyError::Invalid(invalid));
    }

    // 3. Read every object that can exist already; those the apply would leave as they are
    //    ([`in_sync`]) need no dry run: the server's answer would be the live object. The
    //    others are dry-run now.
    let params = params(options);
    let mut before: BTreeMap<usize, Before> = BTreeMap::new();
    let readable: Vec<usize> = (0..planned.len())
        .filter(|&i| !matches!(planned[i].waits_for, Some(Dependency::Crd(_))))
        .collect();
    let live = read_existing(client, &planned, &readable, concurrency).await;
    let synced: Vec<(usize, DynamicObject)> = live
        .iter()
        .filter_map(|(i, read)| match read {
            Ok(Some(object)) if is_in_sync(&planned[*i], object, options) => {
                Some((*i, object.clone()))
            }
            _ => None,
        })
        .collect();
    let now: Vec<usize> = readable
        .into_iter()
        .filter(|i| !synced.iter().any(|(s, _)| s == i))
        .collect();
    let (mut dry, mut failed) = dry_run(client, &planned, &now, &params, concurrency).await;
    dry.extend(synced);
    // Objects in a Namespace this run creates cannot be dry-run yet: not a rejection.
    failed.retain(|(i, error)| match &planned[*i].waits_for {
        Some(Dependency::Namespace(ns)) => !api_error::is_missing_namespace(error, ns),
        _ => true,
    });
    for (i, result) in &dry {
        // The namespace exists already: nothing to wait for.
        if matches!(planned[*i].waits_for, Some(Dependency::Namespace(_))) {
            planned[*i].waits_for = None;
        }
        before.insert(*i, before_of(result));
    }
    let (takeovers, mut dry, failed) =
        plan_takeovers(client, &planned, dry, failed, &live, options, concurrency).await?;
    if !failed.is_empty() {
        return Err(ApplyError::Rejected {
            rejections: rejections(&planned, failed),
            applied: Vec::new(),
        });
    }

    let retry: Vec<usize> = takeovers
        .iter()
        .filter(|t| t.retry)
        .map(|t| t.index)
        .collect();
    reporter.report(Event::DryRunAccepted {
        accepted: dry.len() + retry.len(),
        deferred: planned.iter().filter(|p| p.waits_for.is_some()).count(),
    });
    if options.dry_run {
        for t in &takeovers {
            report_takeover(t, &planned[t.index].object, options, true, reporter);
        }
        // Nothing may change in a dry run: the objects that conflicted only with the managers
        // to be taken over are validated as the takeover would let them apply.
        let (ok, failed) = run_patches(
            client,
            &planned,
            &retry,
            &params.dry_run.clone().force(),
            concurrency,
        )
        .await;
        if !failed.is_empty() {
            return Err(ApplyError::Rejected {
                rejections: rejections(&planned, failed),
                applied: Vec::new(),
            });
        }
        dry.extend(ok);
        return Ok(dry_run_report(
            &planned,
            dry,
            live,
            &options.policy.default_namespace,
            reporter,
        ));
    }

    // 4. Takeovers, then the dry run of what conflicted only with the managers taken over.
    if !takeovers.is_empty() {
        for (i, result) in take_over(client, &planned, &takeovers, concurrency).await? {
            let t = takeovers.iter().find(|t| t.index == i);
            if let Some(t) = t {
                report_takeover(t, &planned[i].object, options, false, reporter);
            }
            before.insert(i, before_of(&result));
        }
        let (_, failed) = dry_run(client, &planned, &retry, &params, concurrency).await;
        if !failed.is_empty() {
            return Err(ApplyError::Rejected {
                rejections: rejections(&planned, failed),
                applied: Vec::new(),
            });
        }
    }

    // 5. Apply, phase by phase; objects the apply would not change are not sent again.
    let mut noop = unchanged(&planned, &dry, live, &takeovers);
    let mut applied: Vec<Applied> = Vec::with_capacity(planned.len());
    let mut validated_deferred = planned.iter().all(|p| p.waits_for.is_none());
    for phase in Phase::ALL {
        if phase > Phase::Definitions && !validated_deferred {
            validated_deferred = true;
            let deferred = validate_deferred(
                client,
                &mut resolver,
                &mut planned,
                &defined,
                options,
                &params,
                concurrency,
            )
            .await?;
            match deferred {
                Ok(results) => {
                    for (i, result) in results {
                        before.insert(i, before_of(&result));
                    }
                }
                Err(rejections) => {
                    return Err(ApplyError::Rejected {
                        rejections,
                        applied,
                    });
                }
            }
        }
        let (indices, same): (Vec<usize>, Vec<usize>) = (0..planned.len())
            .filter(|&i| planned[i].object.phase() == phase)
            .partition(|i| !noop.contains_key(i));
        if indices.is_empty() && same.is_empty() {
            continue;
        }
        let (mut ok, failed) =
            run_patches(client, &planned, &indices, &params.apply, concurrency).await;
        ok.extend(same.iter().filter_map(|i| noop.remove_entry(i)));
        let mut phase_applied: Vec<(usize, Applied)> = ok
            .into_iter()
            .map(|(i, result)| {
                let p = &planned[i];
                let outcome = outcome(before.get(&i), &result);
                (
                    i,
                    Applied {
                        object: p.object.clone(),
                        resource: p.resource.clone(),
                        outcome,
                        result,
                        live: None,
                    },
                )
            })
            .collect();
        phase_applied.sort_by_key(|(i, _)| *i);
        for (_, a) in &phase_applied {
            reporter.report(Event::ObjectApplied {
                applied: a,
                default_namespace: &options.policy.default_namespace,
                dry_run: false,
            });
        }
        applied.extend(phase_applied.into_iter().map(|(_, a)| a));
        if !failed.is_empty() {
            return Err(ApplyError::Failed {
                failures: rejections(&planned, failed),
                applied,
            });
        }
    }
    Ok(applied)
}

/// The objects whose dry-run answer is the live object itself — same resourceVersion, same
/// managed fields, same content — so that applying them would change nothing: reading them is
/// far cheaper than sending them again (the server validates every apply, a no-op included,
/// and large CRDs take it long). `live` was read before the dry run: an object that changed in
/// between has another resourceVersion, and is applied; a failed read only means it is applied.
fn unchanged(
    planned: &[Planned],
    dry: &[(usize, DynamicObject)],
    mut live: Live,
    takeovers: &[Takeover],
) -> BTreeMap<usize, DynamicObject> {
    dry.iter()
        .filter(|(i, answer)| {
            planned[*i].waits_for.is_none()
                && !takeovers.iter().any(|t| t.index == *i)
                && answer
                    .metadata
                    .resource_version
                    .as_deref()
                    .is_some_and(|v| !v.is_empty())
        })
        .filter_map(|(i, answer)| match live.remove(i) {
            Some(Ok(Some(live)))
                if serde_json::to_value(&live).ok() == serde_json::to_value(answer).ok() =>
            {
                Some((*i, live))
            }
            _ => None,
        })
        .collect()
}

/// Reads the live version of each of `planned[indices]`: one list for each resource and
/// namespace with several objects to apply (a fresh namespace costs a few empty lists, not a
/// read per object), a read for each of the rest. A list that fails (an identity that may get
/// but not list) or that does not fit in one page falls back to reading the objects it did not
/// show.
async fn read_existing(
    client: &Client,
    planned: &[Planned],
    indices: &[usize],
    concurrency: usize,
) -> Live {
    let mut groups: BTreeMap<(&str, &str, Option<&str>), Vec<usize>> = BTreeMap::new();
    for &i in indices {
        let p = &planned[i];
        let namespace = match p.scope {
            Scope::Namespaced => p.object.target_namespace(),
            Scope::Cluster => None,
        };
        groups
            .entry((&p.resource.api_version, &p.resource.plural, namespace))
            .or_default()
            .push(i);
    }
    let (listed, single): (Vec<_>, Vec<_>) = groups
        .into_values()
        .partition(|members| members.len() >= LIST_FROM);
    let lists: Vec<(Vec<usize>, Option<Vec<DynamicObject>>)> = stream::iter(listed)
        .map(|members| async move {
            let p = &planned[members[0]];
            let page = p
                .api(client)
                .list(&kube::api::ListParams::default().limit(LIST_PAGE))
                .await
                .ok()
                .filter(|page| page.metadata.continue_.as_deref().is_none_or(str::is_empty));
            (members, page.map(|page| page.items))
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut live = Live::new();
    let mut unread: Vec<usize> = single.into_iter().flatten().collect();
    for (members, items) in lists {
        let Some(items) = items else {
            unread.extend(members);
            continue;
        };
        let mut by_name: BTreeMap<String, DynamicObject> = items
            .into_iter()
            .filter_map(|item| Some((item.metadata.name.clone()?, item)))
            .collect();
        for i in members {
            let p = &planned[i];
            let found = by_name.remove(&p.object.name).map(|mut item| {
                // List items come without their type; a read has it.
                item.types = Some(kube::api::TypeMeta {
                    api_version: p.resource.api_version.clone(),
                    kind: p.resource.kind.clone(),
                });
                item
            });
            live.insert(i, Ok(found));
        }
    }
    live.extend(read_live(client, planned, unread, concurrency).await);
    live
}

/// Live objects by index in `planned`, as [`read_existing`] read them.
type Live = BTreeMap<usize, Result<Option<DynamicObject>, kube::Error>>;

/// Whether applying `p` would leave `live` as it is ([`in_sync`]). Objects another tool
/// applied are never, whatever their fields: their takeover is decided on the dry run.
fn is_in_sync(p: &Planned, live: &DynamicObject, options: &Options) -> bool {
    serde_json::to_value(live).is_ok_and(|live| {
        !adopt::has_marks(&live) && in_sync::in_sync(&p.object.value, &live, &options.field_manager)
    })
}

/// The live version of each of `planned[indices]` (`None`: it does not exist), read
/// `concurrency` at a time.
async fn read_live(
    client: &Client,
    planned: &[Planned],
    indices: impl IntoIterator<Item = usize>,
    concurrency: usize,
) -> Vec<(usize, Result<Option<DynamicObject>, kube::Error>)> {
    stream::iter(indices)
        .map(|i| async move {
            let p = &planned[i];
            (i, p.api(client).get_opt(&p.object.name).await)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// The scope of `object` without asking the server.
fn known_scope(object: &Object, defined: &[DefinedKind]) -> Option<Scope> {
    objects::builtin_scope(&object.group, &object.kind).or_else(|| {
        defined
            .iter()
            .find(|d| d.group == object.group && d.kind == object.kind)
            .map(|d| d.scope.clone())
    })
}

/// The REST resource of a kind whose CRD is in the run but not yet served: from the CRD itself.
fn guess_resource(object: &Object, defined: &DefinedKind) -> ApiResource {
    let plural = defined
        .crd_name
        .split_once('.')
        .map_or_else(|| object.kind.to_ascii_lowercase(), |(p, _)| p.to_owned());
    ApiResource {
        group: object.group.clone(),
        version: object.version.clone(),
        api_version: object.api_version(),
        kind: object.kind.clone(),
        plural,
    }
}

fn not_served(object: &Object, lookup: &Lookup, defined: Option<&DefinedKind>) -> InvalidObject {
    let api_version = object.api_version();
    let mut message = match lookup {
        Lookup::UnknownKind => format!(
            "the server serves {api_version} but has no kind {} in it",
            object.kind
        ),
        _ => format!("the server does not serve apiVersion {api_version}"),
    };
    if let Some(hint) = discovery::removal_hint(&object.group, &object.version, &object.kind) {
        message.push_str(&format!(" ({} {hint})", object.kind));
    } else if let Some(d) = defined {
        message.push_str(&format!(
            " (CustomResourceDefinition {} in this run serves versions: {})",
            d.crd_name,
            d.versions.join(", ")
        ));
    }
    InvalidObject {
        origin: object.origin.clone(),
        message: format!("{}: {message}", object.display_name()),
    }
}

struct Params {
    dry_run: PatchParams,
    apply: PatchParams,
}

fn params(options: &Options) -> Params {
    let mut apply = PatchParams::apply(&options.field_manager).validation_strict();
    if options.force_conflicts {
        apply = apply.force();
    }
    Params {
        dry_run: apply.clone().dry_run(),
        apply,
    }
}

/// One object whose ownership moves to kstep's field manager before it is applied.
#[derive(Debug)]
struct Takeover {
    index: usize,
    plan: adopt::Plan,
    /// Its dry run conflicted only with the managers taken over: dry-run again after.
    retry: bool,
}

/// Decides the takeover ([`adopt::plan`]) of every object whose dry run shows another tool's
/// marks or conflicted, from its live version (`live`, read before the dry run; read again
/// only where that read found nothing). Returns the takeovers, the dry-run
/// answers of the objects not to be retried, and the failures that remain rejections.
///
/// # Errors
/// [`ApplyError::HelmManaged`] without `--adopt helm`; a failed read.
async fn plan_takeovers(
    client: &Client,
    planned: &[Planned],
    dry: Vec<(usize, DynamicObject)>,
    failed: Vec<(usize, kube::Error)>,
    live: &Live,
    options: &Options,
    concurrency: usize,
) -> Result<
    (
        Vec<Takeover>,
        Vec<(usize, DynamicObject)>,
        Vec<(usize, kube::Error)>,
    ),
    ApplyError,
> {
    let marked = |o: &DynamicObject| serde_json::to_value(o).is_ok_and(|v| adopt::has_marks(&v));
    let mut candidates: Vec<usize> = dry
        .iter()
        .filter(|(_, o)| marked(o))
        .map(|(i, _)| *i)
        .collect();
    candidates.extend(
        failed
            .iter()
            .filter(|(_, e)| !conflict_managers(e).is_empty())
            .map(|(i, _)| *i),
    );
    if candidates.is_empty() {
        return Ok((Vec::new(), dry, failed));
    }
    let known = |i: &usize| match live.get(i) {
        Some(Ok(Some(object))) => Some(object.clone()),
        _ => None,
    };
    let unread: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|i| !matches!(live.get(i), Some(Ok(Some(_)))))
        .collect();
    let mut found = read_live(client, planned, unread, concurrency).await;
    found.extend(
        candidates
            .iter()
            .filter_map(|i| known(i).map(|object| (*i, Ok(Some(object))))),
    );
    let mut takeovers = Vec::new();
    let mut helm = Vec::new();
    for (i, result) in found {
        let Some(live) = result? else { continue };
        let value = serde_json::to_value(&live).unwrap_or(Value::Null);
        match adopt::plan(&value, &options.field_manager, options.adopt_helm) {
            Verdict::Nothing => {}
            Verdict::RefuseHelm(release) => helm.push(HelmManaged {
                object: planned[i].object.clone(),
                release,
            }),
            Verdict::Adopt(plan) => {
                let retry = failed.iter().any(|(f, e)| {
                    *f == i
                        && conflict_managers(e)
                            .iter()
                            .all(|m| plan.managers.contains(m))
                });
                takeovers.push(Takeover {
                    index: i,
                    plan,
                    retry,
                });
            }
        }
    }
    if !helm.is_empty() {
        helm.sort_by_key(|h| position(planned, &h.object));
        return Err(ApplyError::HelmManaged(helm));
    }
    takeovers.sort_by_key(|t| t.index);
    let failed = failed
        .into_iter()
        .filter(|(i, _)| !takeovers.iter().any(|t| t.index == *i && t.retry))
        .collect();
    Ok((takeovers, dry, failed))
}

/// The managers a server-side apply conflicted with (`conflict with "NAME" using …`), from
/// the server's 409 message; empty for any other error.
fn conflict_managers(error: &kube::Error) -> Vec<String> {
    let Some(status) = api_error::status(error).filter(|s| s.code == 409) else {
        return Vec::new();
    };
    let mut managers = Vec::new();
    for part in status.message.split("with \"").skip(1) {
        if let Some((name, _)) = part.split_once('"') {
            managers.push(name.to_owned());
        }
    }
    managers
}

/// Sends the takeover patches; answers `(index, object after the takeover)`.
async fn take_over(
    client: &Client,
    planned: &[Planned],
    takeovers: &[Takeover],
    concurrency: usize,
) -> Result<Vec<(usize, DynamicObject)>, ApplyError> {
    let merge = PatchParams::default();
    let work = takeovers
        .iter()
        .map(|t| (t.index, &merge, Patch::Merge(&t.plan.patch)))
        .collect();
    let (mut ok, failed) = patch_each(client, planned, work, concurrency).await;
    if failed.is_empty() {
        // Reported in manifest order.
        ok.sort_by_key(|(i, _)| *i);
        Ok(ok)
    } else {
        Err(ApplyError::Failed {
            failures: rejections(planned, failed),
            applied: Vec::new(),
        })
    }
}

fn report_takeover(
    t: &Takeover,
    object: &Object,
    options: &Options,
    dry_run: bool,
    reporter: &dyn Reporter,
) {
    reporter.report(Event::Adopted {
        object,
        managers: &t.plan.managers,
        helm_release: t.plan.helm.as_ref().map(|h| h.name.as_str()),
        field_manager: &options.field_manager,
        dry_run,
    });
}

type Results = (Vec<(usize, DynamicObject)>, Vec<(usize, kube::Error)>);

async fn run_patches(
    client: &Client,
    planned: &[Planned],
    indices: &[usize],
    params: &PatchParams,
    concurrency: usize,
) -> Results {
    let work = indices
        .iter()
        .map(|&i| (i, params, Patch::Apply(&planned[i].object.value)))
        .collect();
    patch_each(client, planned, work, concurrency).await
}

/// Sends each `(index in planned, params, patch)`, `concurrency` at a time.
async fn patch_each(
    client: &Client,
    planned: &[Planned],
    work: Vec<(usize, &PatchParams, Patch<&Value>)>,
    concurrency: usize,
) -> Results {
    let results: Vec<(usize, Result<DynamicObject, kube::Error>)> = stream::iter(work)
        .map(|(i, params, patch)| async move {
            let p = &planned[i];
            (i, p.api(client).patch(&p.object.name, params, &patch).await)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (i, r) in results {
        match r {
            Ok(o) => ok.push((i, o)),
            Err(e) => failed.push((i, e)),
        }
    }
    (ok, failed)
}

async fn dry_run(
    client: &Client,
    planned: &[Planned],
    indices: &[usize],
    params: &Params,
    concurrency: usize,
) -> Results {
    run_patches(client, planned, indices, &params.dry_run, concurrency).await
}

/// After the Definitions phase: waits for the run's CRDs to be established, looks their
/// group-versions up again and dry-runs the objects that needed them (and those whose
/// Namespace did not exist).
async fn validate_deferred(
    client: &Client,
    resolver: &mut Resolver,
    planned: &mut [Planned],
    defined: &[DefinedKind],
    options: &Options,
    params: &Params,
    concurrency: usize,
) -> Result<Result<Vec<(usize, DynamicObject)>, Vec<Rejection>>, ApplyError> {
    let crds: BTreeSet<String> = planned
        .iter()
        .filter_map(|p| match &p.waits_for {
            Some(Dependency::Crd(name)) => Some(name.clone()),
            _ => None,
        })
        .collect();
    let crd_resource = ApiResource::erase::<CustomResourceDefinition>(&());
    let crd_api: Api<DynamicObject> = Api::all_with(client.clone(), &crd_resource);
    let deadline = Instant::now() + options.establish_timeout;
    for name in &crds {
        let established = watch::until(&crd_api, name, deadline, options.watch_timeout, |crd| {
            condition_true(&crd.data, "Established")
        })
        .await?;
        if established.is_err() {
            return Err(ApplyError::NotEstablished(
                name.clone(),
                options.establish_timeout,
            ));
        }
    }
    let mut kinds = BTreeSet::new();
    for p in planned.iter() {
        if matches!(p.waits_for, Some(Dependency::Crd(_))) {
            kinds.insert((
                p.object.group.clone(),
                p.object.version.clone(),
                p.object.kind.clone(),
            ));
        }
    }
    // A CRD reports Established a moment before the API server's discovery serves its
    // group-version (discovery cannot be watched): look again, briefly, until it is served or
    // the establish deadline passes; an unserved version after that is reported below.
    for (group, version, kind) in &kinds {
        loop {
            resolver.refresh(group, version).await?;
            let served = matches!(resolver.lookup(group, version, kind), Lookup::Found(..));
            if served || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(DISCOVERY_RETRY).await;
        }
    }
    let mut invalid = Vec::new();
    for p in planned.iter_mut() {
        if matches!(p.waits_for, Some(Dependency::Crd(_))) {
            match resolver.lookup(&p.object.group, &p.object.version, &p.object.kind) {
                Lookup::Found(resource, scope) => {
                    p.resource = resource;
                    p.scope = scope;
                }
                lookup => {
                    let d = defined
                        .iter()
                        .find(|d| d.group == p.object.group && d.kind == p.object.kind);
                    invalid.push(not_served(&p.object, &lookup, d));
                }
            }
        }
    }
    if !invalid.is_empty() {
        return Err(ApplyError::Invalid(invalid));
    }
    let indices: Vec<usize> = (0..planned.len())
        .filter(|&i| planned[i].waits_for.is_some())
        .collect();
    let (ok, failed) = dry_run(client, planned, &indices, params, concurrency).await;
    if failed.is_empty() {
        Ok(Ok(ok))
    } else {
        Ok(Err(rejections(planned, failed)))
    }
}

/// The refused requests (`(index in planned, error)`) as [`Rejection`]s, in manifest order.
fn rejections(planned: &[Planned], mut failed: Vec<(usize, kube::Error)>) -> Vec<Rejection> {
    failed.sort_by_key(|(i, _)| *i);
    failed
        .into_iter()
        .map(|(i, error)| Rejection {
            object: planned[i].object.clone(),
            error,
        })
        .collect()
}

/// With `--dry-run`: compares each dry-run answer with the live object read before it to say
/// what would happen, and prints it.
fn dry_run_report(
    planned: &[Planned],
    mut dry: Vec<(usize, DynamicObject)>,
    mut live: Live,
    default_ns: &str,
    reporter: &dyn Reporter,
) -> Vec<Applied> {
    dry.sort_by_key(|(i, _)| *i);
    let mut out = Vec::new();
    let deferred: Vec<&Planned> = planned.iter().filter(|p| p.waits_for.is_some()).collect();
    for (i, result) in dry {
        let current = live.remove(&i);
        let outcome = match &current {
            Some(Ok(Some(current))) => {
                if same_content(current, &result) {
                    Outcome::Unchanged
                } else {
                    Outcome::Configured
                }
            }
            Some(Ok(None)) => Outcome::Created,
            Some(Err(_)) | None => before_outcome(&result),
        };
        let p = &planned[i];
        let applied = Applied {
            object: p.object.clone(),
            resource: p.resource.clone(),
            outcome,
            result,
            live: current.and_then(Result::ok).flatten(),
        };
        out.push(applied);
    }
    let mut by_phase = out.clone();
    by_phase.sort_by_key(|a| (a.object.phase(), position(planned, &a.object)));
    for a in &by_phase {
        reporter.report(Event::ObjectApplied {
            applied: a,
            default_namespace: default_ns,
            dry_run: true,
        });
    }
    for p in deferred {
        let needs = match &p.waits_for {
            Some(Dependency::Crd(n)) => format!("CustomResourceDefinition {n}"),
            Some(Dependency::Namespace(n)) => format!("Namespace {n}"),
            None => String::new(),
        };
        reporter.report(Event::ObjectDeferred {
            object: &p.object,
            needs: &needs,
        });
    }
    out
}

fn before_outcome(dry: &DynamicObject) -> Outcome {
    if dry
        .metadata
        .resource_version
        .as_deref()
        .is_none_or(str::is_empty)
    {
        Outcome::Created
    } else {
        Outcome::Configured
    }
}

/// Whether two versions of an object have the same content, apart from bookkeeping the server
/// changes on every write.
fn same_content(a: &DynamicObject, b: &DynamicObject) -> bool {
    strip(a) == strip(b)
}

fn strip(o: &DynamicObject) -> Value {
    super::plan::comparable(serde_json::to_value(o).unwrap_or(Value::Null))
}

fn before_of(dry: &DynamicObject) -> Before {
    Before {
        uid: dry.metadata.uid.clone(),
        resource_version: dry
            .metadata
            .resource_version
            .clone()
            .filter(|v| !v.is_empty()),
    }
}

/// created / configured / unchanged from the dry run's view of the object before, and the
/// apply's answer.
fn outcome(before: Option<&Before>, after: &DynamicObject) -> Outcome {
    let Some(before) = before else {
        return Outcome::Configured;
    };
    if before.resource_version.is_none() || before.uid != after.metadata.uid {
        Outcome::Created
    } else if before.resource_version == after.metadata.resource_version {
        Outcome::Unchanged
    } else {
        Outcome::Configured
    }
}

fn position(planned: &[Planned], object: &Object) -> usize {
    planned
        .iter()
        .position(|p| p.object.origin == object.origin && p.object.name == object.name)
        .unwrap_or(usize::MAX)
}

/// `condition[type] == "True"` in `status.conditions` of a raw object.
pub fn condition_true(data: &Value, kind: &str) -> bool {
    data.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(kind)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// One log line per object: `  created      deployment.apps/web`, with the namespace when it is
/// not the run's default one.
pub fn line(applied: &Applied, default_namespace: &str, dry_run: bool) -> String {
    let namespace = match applied.object.target_namespace() {
        Some(ns) if ns != default_namespace => format!(" (namespace {ns})"),
        _ => String::new(),
    };
    let suffix = if dry_run { " (dry run)" } else { "" };
    format!(
        "  {:<12} {}{namespace}{suffix}\n",
        applied.outcome.to_string(),
        applied.object.display_name()
    )
}

/// `3 created, 1 configured, 8 unchanged`.
pub fn summary(applied: &[Applied]) -> String {
    let count = |o: Outcome| applied.iter().filter(|a| a.outcome == o).count();
    format!(
        "{} created, {} configured, {} unchanged",
        count(Outcome::Created),
        count(Outcome::Configured),
        count(Outcome::Unchanged)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn dynamic(uid: &str, rv: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "uid": uid, "resourceVersion": rv},
        }))
        .unwrap()
    }

    #[test]
    fn outcomes_from_uid_and_resource_version() {
        let new = Before {
            uid: Some("dry-random".into()),
            resource_version: None,
        };
        assert_eq!(
            outcome(Some(&new), &dynamic("real", "10")),
            Outcome::Created
        );
        let existing = Before {
            uid: Some("u1".into()),
            resource_version: Some("7".into()),
        };
        assert_eq!(
            outcome(Some(&existing), &dynamic("u1", "7")),
            Outcome::Unchanged
        );
        assert_eq!(
            outcome(Some(&existing), &dynamic("u1", "9")),
            Outcome::Configured
        );
        // Deleted and recreated between the dry run and the apply.
        assert_eq!(
            outcome(Some(&existing), &dynamic("u2", "9")),
            Outcome::Created
        );
    }

    #[test]
    fn bookkeeping_is_not_content() {
        let mut a = dynamic("u", "1");
        let b = dynamic("u", "2");
        assert!(same_content(&a, &b));
        a.data = json!({"data": {"k": "v"}});
        assert!(!same_content(&a, &b));
    }

    #[test]
    fn log_lines() {
        let object = Object::new(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "other"}}),
            objects::Origin {
                source: "a.yaml".into(),
                index: 1,
                item: 0,
                line: 1,
                column: 1,
                text: None,
            },
        )
        .unwrap();
        let applied = Applied {
            object,
            resource: ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
            outcome: Outcome::Configured,
            result: dynamic("u", "1"),
            live: None,
        };
        assert_eq!(
            line(&applied, "app", false),
            "  configured   deployment.apps/web (namespace other)\n"
        );
        assert_eq!(
            line(&applied, "other", true),
            "  configured   deployment.apps/web (dry run)\n"
        );
        assert_eq!(summary(&[applied]), "0 created, 1 configured, 0 unchanged");
    }

    #[test]
    fn conflicting_managers_from_the_409_message() {
        let status = |code: u16, message: &str| {
            kube::Error::Api(Box::new(
                kube::core::Status::failure(message, "Conflict").with_code(code),
            ))
        };
        assert_eq!(
            conflict_managers(&status(
                409,
                "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.template.spec.containers[name=\"web\"].image"
            )),
            vec!["kubectl-client-side-apply".to_owned()]
        );
        assert_eq!(
            conflict_managers(&status(
                409,
                "Apply failed with 2 conflicts: conflicts with \"helm\" using apps/v1:\n- .spec.replicas\nconflicts with \"hpa\" using apps/v1:\n- .spec.x"
            )),
            vec!["helm".to_owned(), "hpa".to_owned()]
        );
        assert!(conflict_managers(&status(422, "with \"x\"")).is_empty());
    }

    #[test]
    fn conditions() {
        let crd = json!({"status": {"conditions": [
            {"type": "NamesAccepted", "status": "True"},
            {"type": "Established", "status": "True"}
        ]}});
        assert!(condition_true(&crd, "Established"));
        assert!(!condition_true(&json!({}), "Established"));
    }
}
