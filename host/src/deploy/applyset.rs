//! ApplySets (KEP-3659): the inventory kubectl understands. A parent object (a Secret by
//! default, or a ConfigMap) in the target namespace records which group-kinds and namespaces
//! the set spans; every member carries the label `applyset.kubernetes.io/part-of: <id>`.
//! Pruning lists the members by that label and deletes those the current apply did not
//! contain: an object without this set's label is never deleted.
//!
//! The id, labels, annotations and field manager are kubectl's (`k8s.io/kubectl/pkg/cmd/apply/
//! applyset.go`), so `kubectl apply --applyset` and kstep can take turns on one set, except
//! that each refuses a set whose `tooling` annotation names the other (the spec asks for it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use futures::future;
use futures::stream::{self, StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::{ApiResource, Scope};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::api_error;
use super::objects::{self, NamespacePolicy, Object};

/// The parent's label holding the set's id.
pub const ID_LABEL: &str = "applyset.kubernetes.io/id";
/// The members' label naming their set's id.
pub const PART_OF_LABEL: &str = "applyset.kubernetes.io/part-of";
/// The parent's annotation naming the tool that manages the set (`kstep/v0.1.0`).
pub const TOOLING_ANNOTATION: &str = "applyset.kubernetes.io/tooling";
/// The parent's annotation listing the members' group-kinds (`ConfigMap,Deployment.apps`).
pub const GROUP_KINDS_ANNOTATION: &str = "applyset.kubernetes.io/contains-group-kinds";
/// The parent's annotation listing the members' namespaces other than the parent's.
pub const NAMESPACES_ANNOTATION: &str = "applyset.kubernetes.io/additional-namespaces";
/// kstep's annotation on a parent: when the set may be swept by `kstep gc` (RFC 3339, UTC),
/// written by an apply with `--expires-in` (see [`super::gc`]).
pub const EXPIRES_ANNOTATION: &str = "kstep.dev/expires-at";
/// The tool name in the tooling annotation; a set whose tooling names another tool is refused.
pub const TOOLING: &str = "kstep";
/// The field manager of the parent's labels and annotations (kubectl's is `kubectl-applyset`).
pub const FIELD_MANAGER: &str = "kstep-applyset";
/// Lists of members (one per group-kind and namespace) in flight at once.
const LISTS_IN_FLIGHT: usize = 8;

/// The kind of a set's parent object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentKind {
    /// `secrets/NAME` (the default, as for kubectl).
    Secret,
    /// `configmaps/NAME`.
    ConfigMap,
}

impl ParentKind {
    /// The kind's name.
    pub fn kind(self) -> &'static str {
        match self {
            ParentKind::Secret => "Secret",
            ParentKind::ConfigMap => "ConfigMap",
        }
    }

    fn resource(self) -> &'static str {
        match self {
            ParentKind::Secret => "secrets",
            ParentKind::ConfigMap => "configmaps",
        }
    }
}

/// `--applyset NAME`, `secrets/NAME` or `configmaps/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentRef {
    /// The parent's kind.
    pub kind: ParentKind,
    /// The parent's name.
    pub name: String,
}

impl FromStr for ParentRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (kind, name) = match text.split_once('/') {
            None => (ParentKind::Secret, text),
            Some(("secrets" | "secret", name)) => (ParentKind::Secret, name),
            Some(("configmaps" | "configmap" | "cm", name)) => (ParentKind::ConfigMap, name),
            Some((other, _)) => {
                return Err(format!(
                    "`{text}`: an ApplySet parent is `NAME` (a Secret), `secrets/NAME` or \
                     `configmaps/NAME`, not a `{other}`"
                ));
            }
        };
        if !is_dns_subdomain(name) {
            return Err(format!(
                "`{text}`: `{name}` is not a valid object name (lowercase letters, digits, `-` \
                 and `.`, at most 253 characters, starting and ending with a letter or digit)"
            ));
        }
        Ok(Self {
            kind,
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for ParentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.resource(), self.name)
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (1..=253).contains(&name.len())
        && edge(name.chars().next())
        && edge(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

/// The set's id, as kubectl computes it: `applyset-` + unpadded base64url of
/// SHA-256(`<name>.<namespace>.<Kind>.<group>`) + `-v1` (the parents kstep writes are in the
/// core group, hence the empty group).
pub fn id(name: &str, namespace: &str, kind: &str, group: &str) -> String {
    let digest = Sha256::digest(format!("{name}.{namespace}.{kind}.{group}").as_bytes());
    format!(
        "applyset-{}-v1",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// A group and kind, written as kubectl writes them: `Deployment.apps`, `ConfigMap`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKind {
    /// The API group (empty for the core group).
    pub group: String,
    /// The kind.
    pub kind: String,
}

impl fmt::Display for GroupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.group)
        }
    }
}

impl GroupKind {
    /// Parses `Kind` or `Kind.group` (kubectl's `schema.ParseGroupKind`: the kind ends at the
    /// first dot).
    pub fn parse(text: &str) -> Self {
        match text.split_once('.') {
            Some((kind, group)) => Self {
                group: group.to_owned(),
                kind: kind.to_owned(),
            },
            None => Self {
                group: String::new(),
                kind: text.to_owned(),
            },
        }
    }
}

/// What a parent records: the members' group-kinds and their namespaces besides the parent's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// The group-kinds of the members.
    pub group_kinds: BTreeSet<GroupKind>,
    /// The namespaces of members other than the parent's.
    pub namespaces: BTreeSet<String>,
}

impl Inventory {
    /// The inventory of `objects` (namespaces resolved), `parent_namespace` left out.
    pub fn of<'a>(objects: impl IntoIterator<Item = &'a Object>, parent_namespace: &str) -> Self {
        let mut inventory = Self::default();
        for object in objects {
            inventory.group_kinds.insert(GroupKind {
                group: object.group.clone(),
                kind: object.kind.clone(),
            });
            if let Some(ns) = object.target_namespace().or(object.namespace.as_deref())
                && ns != parent_namespace
            {
                inventory.namespaces.insert(ns.to_owned());
            }
        }
        inventory
    }

    /// The inventory of live `members`, `parent_namespace` left out.
    pub fn of_members(members: &[Member], parent_namespace: &str) -> Self {
        let mut inventory = Self::default();
        for member in members {
            inventory.group_kinds.insert(GroupKind {
                group: member.resource.group.clone(),
                kind: member.resource.kind.clone(),
            });
            if let Some(ns) = member
                .namespace
                .as_deref()
                .filter(|ns| *ns != parent_namespace)
            {
                inventory.namespaces.insert(ns.to_owned());
            }
        }
        inventory
    }

    /// Both inventories together.
    pub fn union(&self, other: &Inventory) -> Inventory {
        Inventory {
            group_kinds: self
                .group_kinds
                .union(&other.group_kinds)
                .cloned()
                .collect(),
            namespaces: self.namespaces.union(&other.namespaces).cloned().collect(),
        }
    }

    fn from_annotations(annotations: &BTreeMap<String, String>) -> Self {
        let list = |key: &str| {
            annotations
                .get(key)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        Self {
            group_kinds: list(GROUP_KINDS_ANNOTATION)
                .iter()
                .map(|s| GroupKind::parse(s))
                .collect(),
            namespaces: list(NAMESPACES_ANNOTATION).into_iter().collect(),
        }
    }

    fn annotations(&self) -> (String, String) {
        let kinds: Vec<String> = self.group_kinds.iter().map(ToString::to_string).collect();
        let namespaces: Vec<&str> = self.namespaces.iter().map(String::as_str).collect();
        (kinds.join(","), namespaces.join(","))
    }
}

/// Why a set cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ApplySetError {
    /// The parent exists and another tool manages it.
    #[error(
        "ApplySet {parent} in namespace {namespace} is managed by {tooling}, not kstep: kstep \
         does not change another tool's set (choose another --applyset name)"
    )]
    OtherTool {
        /// The parent.
        parent: ParentRef,
        /// Its namespace.
        namespace: String,
        /// Its tooling annotation.
        tooling: String,
    },
    /// The parent exists but is not a valid ApplySet parent.
    #[error("{parent} in namespace {namespace} exists and is not this ApplySet's parent: {why}")]
    NotAParent {
        /// The parent.
        parent: ParentRef,
        /// Its namespace.
        namespace: String,
        /// What is missing or wrong.
        why: String,
    },
    /// A request failed.
    #[error("ApplySet {parent}: {}", api_error::describe(.error))]
    Api {
        /// The parent.
        parent: ParentRef,
        /// The server's error.
        error: kube::Error,
    },
}

impl ApplySetError {
    /// Whether the input (the set's name) is at fault rather than the cluster.
    pub fn is_invalid_input(&self) -> bool {
        !matches!(self, ApplySetError::Api { .. })
    }
}

/// One set: its parent and id.
#[derive(Debug, Clone)]
pub struct ApplySet {
    /// The parent object.
    pub parent: ParentRef,
    /// The parent's (and the set's default) namespace.
    pub namespace: String,
    /// The set's id (the parent's `applyset.kubernetes.io/id` label).
    pub id: String,
    /// When `kstep gc` may delete it, recorded on the parent by every write of its inventory
    /// (an apply without one drops it: the last apply decides).
    pub expires_at: Option<String>,
}

/// A live member of a set, as listed by its label.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its REST resource.
    pub resource: ApiResource,
    /// Its namespace (`None` when cluster-scoped).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
}

impl Member {
    /// `deployment.apps/web`.
    pub fn display_name(&self) -> String {
        objects::display_name(&self.resource.group, &self.resource.kind, &self.name)
    }

    fn phase(&self) -> objects::Phase {
        objects::phase(&self.resource.group, &self.resource.kind)
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} in namespace {ns}", self.display_name()),
            None => write!(f, "{} (cluster-scoped)", self.display_name()),
        }
    }
}

impl ApplySet {
    /// The set `parent` in `namespace`.
    pub fn new(parent: ParentRef, namespace: &str) -> Self {
        let id = id(&parent.name, namespace, parent.kind.kind(), "");
        Self {
            parent,
            namespace: namespace.to_owned(),
            id,
            expires_at: None,
        }
    }

    /// The parent's API, Secret or ConfigMap alike (only its metadata is ever read).
    fn parent_api(&self, client: &Client) -> Api<DynamicObject> {
        let resource = match self.parent.kind {
            ParentKind::Secret => ApiResource::erase::<Secret>(&()),
            ParentKind::ConfigMap => ApiResource::erase::<ConfigMap>(&()),
        };
        Api::namespaced_with(client.clone(), &self.namespace, &resource)
    }

    fn api_error(&self, error: kube::Error) -> ApplySetError {
        ApplySetError::Api {
            parent: self.parent.clone(),
            error,
        }
    }

    /// Puts this set's `part-of` label on every object.
    pub fn label(&self, objects: &mut [Object]) {
        for object in objects {
            if let Some(meta) = object
                .value
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
            {
                let labels = meta
                    .entry("labels")
                    .or_insert_with(|| Value::Object(serde_json::Map::new()));
                if !labels.is_object() {
                    *labels = Value::Object(serde_json::Map::new());
                }
                if let Some(labels) = labels.as_object_mut() {
                    labels.insert(PART_OF_LABEL.into(), Value::String(self.id.clone()));
                }
            }
        }
    }

    /// Reads the parent's labels and annotations (never a Secret's data): `None` when it does
    /// not exist.
    ///
    /// # Errors
    /// A parent another tool manages, one whose id label is not this set's, a failed request.
    pub async fn fetch(&self, client: &Client) -> Result<Option<Inventory>, ApplySetError> {
        let meta = self
            .parent_api(client)
            .get_metadata_opt(&self.parent.name)
            .await
            .map_err(|e| self.api_error(e))?;
        let Some(meta) = meta.map(|m| m.metadata) else {
            return Ok(None);
        };
        let annotations = meta.annotations.unwrap_or_default();
        let labels = meta.labels.unwrap_or_default();
        let not_a_parent = |why: String| ApplySetError::NotAParent {
            parent: self.parent.clone(),
            namespace: self.namespace.clone(),
            why,
        };
        let Some(tooling) = annotations.get(TOOLING_ANNOTATION) else {
            return Err(not_a_parent(format!(
                "it has no {TOOLING_ANNOTATION} annotation"
            )));
        };
        if tooling.split('/').next() != Some(TOOLING) {
            return Err(ApplySetError::OtherTool {
                parent: self.parent.clone(),
                namespace: self.namespace.clone(),
                tooling: tooling.clone(),
            });
        }
        match labels.get(ID_LABEL) {
            Some(id) if *id == self.id => {}
            Some(id) => {
                return Err(not_a_parent(format!(
                    "its {ID_LABEL} label is {id}, expected {}",
                    self.id
                )));
            }
            None => return Err(not_a_parent(format!("it has no {ID_LABEL} label"))),
        }
        Ok(Some(Inventory::from_annotations(&annotations)))
    }

    /// Creates or updates the parent with `inventory` (server-side apply, kstep's applyset
    /// field manager). Returns the parent's uid (what its revisions name as their owner).
    ///
    /// # Errors
    /// A failed request.
    pub async fn record(
        &self,
        client: &Client,
        inventory: &Inventory,
        dry_run: bool,
    ) -> Result<String, ApplySetError> {
        let (kinds, namespaces) = inventory.annotations();
        let mut patch = json!({
            "apiVersion": "v1",
            "kind": self.parent.kind.kind(),
            "metadata": {
                "name": self.parent.name,
                "namespace": self.namespace,
                "labels": {ID_LABEL: self.id},
                "annotations": {
                    TOOLING_ANNOTATION: format!("{TOOLING}/v{}", env!("CARGO_PKG_VERSION")),
                    GROUP_KINDS_ANNOTATION: kinds,
                    NAMESPACES_ANNOTATION: namespaces,
                },
            },
        });
        if let Some(at) = &self.expires_at {
            patch["metadata"]["annotations"][EXPIRES_ANNOTATION] = Value::String(at.clone());
        }
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = dry_run;
        let patch = Patch::Apply(&patch);
        let meta = self
            .parent_api(client)
            .patch_metadata(&self.parent.name, &params, &patch)
            .await
            .map_err(|e| self.api_error(e))?
            .metadata;
        Ok(meta.uid.unwrap_or_default())
    }

    /// Deletes the parent (objects it owns, such as kstep's revisions, go with it).
    ///
    /// # Errors
    /// A failed request (a parent already gone is not one).
    pub async fn delete_parent(&self, client: &Client) -> Result<(), ApplySetError> {
        let params = DeleteParams::background();
        let result = self
            .parent_api(client)
            .delete(&self.parent.name, &params)
            .await
            .map(drop);
        match result {
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            other => other.map_err(|e| self.api_error(e)),
        }
    }

    /// Lists the live members of the set recorded in `inventory`: objects of its group-kinds,
    /// in the parent's namespace and its other namespaces, that carry this set's label.
    /// `known` resolves group-kinds to resources without discovery (the resources the run
    /// just applied); group-kinds the server no longer serves have no members.
    ///
    /// # Errors
    /// A failed request.
    pub async fn members(
        &self,
        client: &Client,
        inventory: &Inventory,
        known: &[(ApiResource, Scope)],
    ) -> Result<Vec<Member>, ApplySetError> {
        let mut namespaces: Vec<&str> = vec![self.namespace.as_str()];
        namespaces.extend(inventory.namespaces.iter().map(String::as_str));
        let resolved = self
            .resolve(client, inventory.group_kinds.iter().cloned(), known)
            .await?;
        let lists: Vec<(ApiResource, Option<&str>)> = resolved
            .into_values()
            .flatten()
            .flat_map(|(resource, scope)| match scope {
                Scope::Cluster => vec![(resource, None)],
                Scope::Namespaced => namespaces
                    .iter()
                    .map(|ns| (resource.clone(), Some(*ns)))
                    .collect(),
            })
            .collect();
        let selector = ListParams::default().labels(&format!("{PART_OF_LABEL}={}", self.id));
        let listed: Vec<_> = stream::iter(lists)
            .map(|(resource, namespace)| {
                let selector = &selector;
                async move {
                    let list = api_for(client, &resource, namespace)
                        .list_metadata(selector)
                        .await
                        .map_err(|e| self.api_error(e))?;
                    Ok::<_, ApplySetError>((resource, namespace, list.items))
                }
            })
            .buffered(LISTS_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut members = Vec::new();
        for (resource, namespace, items) in listed {
            for item in items {
                let meta = item.metadata;
                // The selector already says so; checked again because this decides what is
                // deleted.
                let labelled = meta
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(PART_OF_LABEL))
                    .is_some_and(|v| *v == self.id);
                if let (true, Some(name), Some(uid)) = (labelled, meta.name, meta.uid) {
                    members.push(Member {
                        resource: resource.clone(),
                        namespace: namespace.map(str::to_owned),
                        name,
                        uid,
                    });
                }
            }
        }
        Ok(members)
    }

    /// The REST resource and scope of each group-kind (`None`: not served): `known` ones as
    /// they are, the others from discovery, each API group asked once, all concurrently.
    async fn resolve(
        &self,
        client: &Client,
        kinds: impl IntoIterator<Item = GroupKind>,
        known: &[(ApiResource, Scope)],
    ) -> Result<BTreeMap<GroupKind, Option<(ApiResource, Scope)>>, ApplySetError> {
        let known_as = |gk: &GroupKind| {
            known
                .iter()
                .find(|(r, _)| r.group == gk.group && r.kind == gk.kind)
                .cloned()
        };
        let kinds: BTreeSet<GroupKind> = kinds.into_iter().collect();
        let groups: BTreeSet<&str> = kinds
            .iter()
            .filter(|gk| known_as(gk).is_none())
            .map(|gk| gk.group.as_str())
            .collect();
        let discovered: BTreeMap<&str, Option<kube::discovery::ApiGroup>> =
            future::try_join_all(groups.into_iter().map(|group| async move {
                match kube::discovery::group(client, group).await {
                    Ok(found) => Ok((group, Some(found))),
                    Err(kube::Error::Api(s)) if s.code == 404 => Ok((group, None)),
                    Err(e) => Err(self.api_error(e)),
                }
            }))
            .await?
            .into_iter()
            .collect();
        Ok(kinds
            .iter()
            .map(|gk| {
                let found = known_as(gk).or_else(|| {
                    discovered
                        .get(gk.group.as_str())?
                        .as_ref()?
                        .recommended_kind(&gk.kind)
                        .map(|(resource, caps)| (resource, caps.scope))
                });
                (gk.clone(), found)
            })
            .collect())
    }
}

/// The API of `resource` in `namespace` (`None`: cluster-scoped).
fn api_for(client: &Client, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

/// What an object of an apply already is, with respect to a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// It does not exist yet, or is already a member.
    Ours,
    /// It exists outside any set: the apply adopts it into this one.
    Adopted,
    /// It is a member of another set (that set's id, and its parent when found).
    Foreign {
        /// The other set's id.
        id: String,
        /// `secrets/NAME`, when its parent is in the object's namespace.
        parent: Option<String>,
    },
}

impl ApplySet {
    /// For each of `objects`, whether it is new or already ours, an existing object to adopt,
    /// or another set's member: one metadata list per group-kind and namespace (only for
    /// `--applyset` runs).
    ///
    /// # Errors
    /// A failed request.
    pub async fn claims(
        &self,
        client: &Client,
        objects: &[Object],
    ) -> Result<Vec<Claim>, ApplySetError> {
        let group_kind = |o: &Object| GroupKind {
            group: o.group.clone(),
            kind: o.kind.clone(),
        };
        let resources = self
            .resolve(client, objects.iter().map(group_kind), &[])
            .await?;
        // The namespace an object is listed in (`None`: cluster-scoped), by its kind's scope.
        let namespace_of = |object: &Object| match resources.get(&group_kind(object)) {
            Some(Some((_, Scope::Namespaced))) => Some(
                object
                    .namespace
                    .clone()
                    .unwrap_or_else(|| self.namespace.clone()),
            ),
            _ => None,
        };
        let keys: BTreeSet<(GroupKind, Option<String>)> = objects
            .iter()
            .map(|o| (group_kind(o), namespace_of(o)))
            .collect();
        let live: BTreeMap<(GroupKind, Option<String>), BTreeMap<String, Option<String>>> =
            stream::iter(keys)
                .map(|(gk, namespace)| {
                    let resource = resources.get(&gk).cloned().flatten();
                    async move {
                        // A kind the server does not serve has no objects yet.
                        let Some((resource, _)) = resource else {
                            return Ok(((gk, namespace), BTreeMap::new()));
                        };
                        let list = api_for(client, &resource, namespace.as_deref())
                            .list_metadata(&ListParams::default())
                            .await
                            .map_err(|e| self.api_error(e))?;
                        let names = list
                            .items
                            .into_iter()
                            .filter_map(|item| {
                                let part_of = item
                                    .metadata
                                    .labels
                                    .as_ref()
                                    .and_then(|l| l.get(PART_OF_LABEL))
                                    .cloned();
                                item.metadata.name.map(|n| (n, part_of))
                            })
                            .collect();
                        Ok::<_, ApplySetError>(((gk, namespace), names))
                    }
                })
                .buffer_unordered(LISTS_IN_FLIGHT)
                .try_collect()
                .await?;
        let mut parents: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut claims = Vec::with_capacity(objects.len());
        for object in objects {
            let namespace = namespace_of(object);
            let claim = match live
                .get(&(group_kind(object), namespace.clone()))
                .and_then(|m| m.get(&object.name))
            {
                None => Claim::Ours,
                Some(None) => Claim::Adopted,
                Some(Some(id)) if *id == self.id => Claim::Ours,
                Some(Some(id)) => {
                    if !parents.contains_key(id) {
                        let parent = self
                            .parent_of(client, id, namespace.as_deref().unwrap_or(&self.namespace))
                            .await?;
                        parents.insert(id.clone(), parent);
                    }
                    Claim::Foreign {
                        id: id.clone(),
                        parent: parents.get(id).cloned().flatten(),
                    }
                }
            };
            claims.push(claim);
        }
        Ok(claims)
    }

    /// The parent (`secrets/NAME`, `configmaps/NAME`) of the set `id` in `namespace`, if there.
    async fn parent_of(
        &self,
        client: &Client,
        id: &str,
        namespace: &str,
    ) -> Result<Option<String>, ApplySetError> {
        let selector = ListParams::default().labels(&format!("{ID_LABEL}={id}"));
        let secrets = Api::<Secret>::namespaced(client.clone(), namespace)
            .list_metadata(&selector)
            .await
            .map_err(|e| self.api_error(e))?;
        if let Some(name) = secrets.items.into_iter().find_map(|s| s.metadata.name) {
            return Ok(Some(format!("secrets/{name}")));
        }
        let maps = Api::<ConfigMap>::namespaced(client.clone(), namespace)
            .list_metadata(&selector)
            .await
            .map_err(|e| self.api_error(e))?;
        Ok(maps
            .items
            .into_iter()
            .find_map(|m| m.metadata.name)
            .map(|name| format!("configmaps/{name}")))
    }
}

/// The members to delete, in the order to delete them: the reverse of the apply order
/// (Ingresses and workloads before the Services and configuration they use, definitions
/// last), by name within a phase.
pub fn deletion_order(mut members: Vec<Member>) -> Vec<Member> {
    members.sort_by(|a, b| {
        b.phase()
            .cmp(&a.phase())
            .then_with(|| a.namespace.cmp(&b.namespace))
            .then_with(|| a.display_name().cmp(&b.display_name()))
    });
    members
}

/// Splits `members` into those the namespace policy lets this run delete and the others.
pub fn within_policy(members: Vec<Member>, policy: &NamespacePolicy) -> (Vec<Member>, Vec<Member>) {
    members.into_iter().partition(|m| match &m.namespace {
        Some(ns) => policy.allows(ns),
        None => policy.allow_cluster_scoped,
    })
}

/// Deletes `member` (background propagation, as `kubectl apply --prune` does); one already
/// gone counts as deleted. With `dry_run`, the server validates the deletion and nothing is
/// deleted.
///
/// # Errors
/// The server's error.
pub async fn delete(client: &Client, member: &Member, dry_run: bool) -> Result<(), kube::Error> {
    let api: Api<DynamicObject> = match &member.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &member.resource),
        None => Api::all_with(client.clone(), &member.resource),
    };
    let mut params = DeleteParams::background();
    params.dry_run = dry_run;
    // Only the object listed: were it replaced since, by another with the same name, the
    // precondition fails instead of deleting the newcomer.
    params.preconditions = Some(kube::api::Preconditions {
        uid: Some(member.uid.clone()),
        resource_version: None,
    });
    match api.delete(&member.name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether `member` still exists (the same object: same uid).
///
/// # Errors
/// The server's error.
pub async fn exists(client: &Client, member: &Member) -> Result<bool, kube::Error> {
    let api: Api<DynamicObject> = match &member.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &member.resource),
        None => Api::all_with(client.clone(), &member.resource),
    };
    Ok(api
        .get_metadata_opt(&member.name)
        .await?
        .is_some_and(|m| m.metadata.uid.as_deref() == Some(member.uid.as_str())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn id_is_kubectls() {
        // sha256("app.ns.Secret.") in unpadded base64url; the cluster test checks it against
        // kubectl itself.
        let digest = Sha256::digest(b"app.ns.Secret.");
        let expected = format!(
            "applyset-{}-v1",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
        );
        assert_eq!(id("app", "ns", "Secret", ""), expected);
        assert!(!expected.contains('='));
        assert_ne!(id("app", "ns", "ConfigMap", ""), expected);
    }

    #[test]
    fn parent_references() {
        let secret: ParentRef = "app".parse().unwrap();
        assert_eq!(secret.kind, ParentKind::Secret);
        assert_eq!(secret.to_string(), "secrets/app");
        let cm: ParentRef = "configmaps/app".parse().unwrap();
        assert_eq!(cm.kind, ParentKind::ConfigMap);
        assert_eq!("secrets/app".parse::<ParentRef>().unwrap(), secret);
        assert!("deployments/app".parse::<ParentRef>().is_err());
        assert!("Bad_Name".parse::<ParentRef>().is_err());
        assert!("secrets/".parse::<ParentRef>().is_err());
    }

    #[test]
    fn annotations_round_trip() {
        let mut annotations = BTreeMap::new();
        annotations.insert(
            GROUP_KINDS_ANNOTATION.to_owned(),
            "ConfigMap,Deployment.apps,Ingress.networking.k8s.io".to_owned(),
        );
        annotations.insert(NAMESPACES_ANNOTATION.to_owned(), String::new());
        let inventory = Inventory::from_annotations(&annotations);
        assert_eq!(inventory.group_kinds.len(), 3);
        assert!(inventory.group_kinds.contains(&GroupKind {
            group: "networking.k8s.io".into(),
            kind: "Ingress".into()
        }));
        assert!(inventory.namespaces.is_empty());
        let (kinds, namespaces) = inventory.annotations();
        assert_eq!(kinds, "ConfigMap,Deployment.apps,Ingress.networking.k8s.io");
        assert_eq!(namespaces, "");
    }

    fn member(group: &str, kind: &str, name: &str) -> Member {
        Member {
            resource: ApiResource {
                group: group.into(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: kind.into(),
                plural: String::new(),
            },
            namespace: Some("ns".into()),
            name: name.into(),
            uid: String::new(),
        }
    }

    #[test]
    fn deletes_in_reverse_apply_order() {
        let order = deletion_order(vec![
            member("", "ConfigMap", "config"),
            member("networking.k8s.io", "Ingress", "web"),
            member("apps", "Deployment", "web"),
            member("", "Service", "web"),
        ]);
        let kinds: Vec<&str> = order.iter().map(|m| m.resource.kind.as_str()).collect();
        assert_eq!(kinds, ["Ingress", "Deployment", "Service", "ConfigMap"]);
    }

    #[test]
    fn policy_limits_what_is_deleted() {
        let policy = NamespacePolicy {
            default_namespace: "ns".into(),
            allowed: BTreeSet::new(),
            allow_cluster_scoped: false,
        };
        let mut elsewhere = member("", "ConfigMap", "other");
        elsewhere.namespace = Some("other".into());
        let mut cluster = member("rbac.authorization.k8s.io", "ClusterRole", "r");
        cluster.namespace = None;
        let (allowed, refused) = within_policy(
            vec![member("", "ConfigMap", "a"), elsewhere, cluster],
            &policy,
        );
        assert_eq!(allowed.len(), 1);
        assert_eq!(refused.len(), 2);
    }
}
