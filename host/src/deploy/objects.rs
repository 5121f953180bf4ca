//! The objects `kstep apply` sends: a rendered document with its origin and identity, the phase
//! it is applied in, and the namespace policy that is checked before any request is made.
//!
//! Everything here is pure (no I/O), so ordering and policy are unit-tested without a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use kube::discovery::Scope;
use serde_json::Value;

/// Where a document came from, for every message about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file (as given on the command line) or `<stdin>`; in a pipeline, a file (relative
    /// to the working directory when it is below it), `FILE (traefik)` or `output of step
    /// `NAME``.
    pub source: String,
    /// 1-based document index in the source.
    pub index: u32,
    /// 1-based item of a `List` document, 0 otherwise.
    pub item: u32,
    /// 1-based line where the document starts (0: unknown).
    pub line: u32,
    /// 1-based column (0: unknown).
    pub column: u32,
    /// The text of the source, when the document was rendered from one: where a field the
    /// server refuses is written ([`Origin::field`]).
    pub text: Option<SourceText>,
}

/// The text of a manifest source, shared by the documents rendered from it. Its `Debug` shows
/// the length only: the text of a Secret manifest holds its values.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceText(pub Arc<str>);

impl fmt::Debug for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceText({} bytes)", self.0.len())
    }
}

impl Origin {
    /// Where the field at `path` (as the API server names it: `.spec.replicas`,
    /// `spec.template.spec.containers[0].image`) is written: at its key (`at_key`, for a field
    /// that should not be there) or at its value. A field missing from the source is placed at
    /// its deepest ancestor's key. The document's own position when the source text is not
    /// known (a step's output) or holds no such document.
    pub fn field(&self, path: &str, at_key: bool) -> Origin {
        let located = match &self.text {
            Some(text) if self.line > 0 => {
                kstep_manifest::locate::field(&text.0, self.index, self.item, path)
            }
            _ => None,
        };
        let Some(l) = located else {
            return self.clone();
        };
        let pos = if at_key || !l.exact {
            l.key.unwrap_or(l.value)
        } else {
            l.value
        };
        if pos.line == 0 {
            return self.clone();
        }
        Origin {
            line: pos.line,
            column: pos.column,
            ..self.clone()
        }
    }
}

impl fmt::Display for Origin {
    /// `FILE:LINE:COL` when the position is known, else `SOURCE (document N)` (and ` item M`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}", self.source, self.line, self.column.max(1))
        } else {
            write!(f, "{} (document {})", self.source, self.index)?;
            if self.item > 0 {
                write!(f, " item {}", self.item)?;
            }
            Ok(())
        }
    }
}

impl From<&crate::steps::manifest::Document> for Origin {
    /// Where the manifest step found a rendered document.
    fn from(d: &crate::steps::manifest::Document) -> Self {
        Self {
            source: d.source.clone(),
            index: d.index,
            item: d.item,
            line: d.line,
            column: d.column,
            text: None,
        }
    }
}

/// One object to apply.
#[derive(Debug, Clone)]
pub struct Object {
    /// The document, as it will be sent (the namespace policy fills `metadata.namespace`).
    pub value: Value,
    /// Where it came from.
    pub origin: Origin,
    /// API group (empty for the core group).
    pub group: String,
    /// API version within the group.
    pub version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` as written in the document.
    pub namespace: Option<String>,
}

/// A document that is not an object kstep can apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct InvalidObject {
    /// Where.
    pub origin: Origin,
    /// What is wrong.
    pub message: String,
}

impl Object {
    /// Checks that `value` has the identity server-side apply needs.
    ///
    /// # Errors
    /// A missing or non-string `apiVersion`, `kind` or `metadata.name` (apply cannot use
    /// `generateName`).
    pub fn new(value: Value, origin: Origin) -> Result<Self, InvalidObject> {
        let invalid = |message: String| InvalidObject {
            origin: origin.clone(),
            message,
        };
        let text = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
        let Some(api_version) = text("/apiVersion").filter(|s| !s.is_empty()) else {
            return Err(invalid("the document has no apiVersion".into()));
        };
        let Some(kind) = text("/kind").filter(|s| !s.is_empty()) else {
            return Err(invalid("the document has no kind".into()));
        };
        let name = match text("/metadata/name").filter(|s| !s.is_empty()) {
            Some(name) => name.to_owned(),
            None if text("/metadata/generateName").is_some() => {
                return Err(invalid(format!(
                    "{kind} has only metadata.generateName: apply needs a fixed metadata.name"
                )));
            }
            None => return Err(invalid(format!("{kind} has no metadata.name"))),
        };
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), api_version.to_owned()),
        };
        if version.is_empty() || version.contains('/') {
            return Err(invalid(format!("`{api_version}` is not an apiVersion")));
        }
        let namespace = text("/metadata/namespace")
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Ok(Self {
            kind: kind.to_owned(),
            name,
            namespace,
            group,
            version,
            value,
            origin,
        })
    }

    /// `apiVersion` as written.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// kubectl's way of naming an object: `deployment.apps/web`, `service/web`.
    pub fn display_name(&self) -> String {
        display_name(&self.group, &self.kind, &self.name)
    }

    /// The namespace the object is applied in (after [`NamespacePolicy::resolve`]).
    pub fn target_namespace(&self) -> Option<&str> {
        self.value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }

    /// The apply phase of this object.
    pub fn phase(&self) -> Phase {
        phase(&self.group, &self.kind)
    }
}

/// `kind.group/name` in lower case, as kubectl prints it.
pub fn display_name(group: &str, kind: &str, name: &str) -> String {
    let kind = kind.to_ascii_lowercase();
    if group.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}.{group}/{name}")
    }
}

/// When an object is applied relative to the others. Objects of one phase are applied
/// concurrently; a phase starts when the previous one has been applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// CustomResourceDefinitions and Namespaces: what other objects need to exist at all.
    Definitions,
    /// ServiceAccounts, RBAC, ConfigMaps, Secrets, volumes, quotas, policies: what pods refer to.
    Configuration,
    /// Services (before the pods that would otherwise miss their environment variables).
    Services,
    /// Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, Pods.
    Workloads,
    /// Ingresses, autoscalers, disruption budgets, custom resources, everything else.
    Rest,
}

impl Phase {
    /// Every phase, in apply order.
    pub const ALL: [Phase; 5] = [
        Phase::Definitions,
        Phase::Configuration,
        Phase::Services,
        Phase::Workloads,
        Phase::Rest,
    ];

    /// A short name for logs.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Definitions => "definitions",
            Phase::Configuration => "configuration",
            Phase::Services => "services",
            Phase::Workloads => "workloads",
            Phase::Rest => "other objects",
        }
    }
}

/// The apply phase of a kind.
pub fn phase(group: &str, kind: &str) -> Phase {
    match (group, kind) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") | ("", "Namespace") => {
            Phase::Definitions
        }
        (
            "",
            "ServiceAccount"
            | "ConfigMap"
            | "Secret"
            | "PersistentVolume"
            | "PersistentVolumeClaim"
            | "LimitRange"
            | "ResourceQuota",
        )
        | (
            "rbac.authorization.k8s.io",
            "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding",
        )
        | ("storage.k8s.io", "StorageClass")
        | ("scheduling.k8s.io", "PriorityClass")
        | ("networking.k8s.io", "NetworkPolicy")
        | ("node.k8s.io", "RuntimeClass") => Phase::Configuration,
        ("", "Service" | "Endpoints") | ("discovery.k8s.io", "EndpointSlice") => Phase::Services,
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job" | "CronJob")
        | ("", "Pod" | "ReplicationController") => Phase::Workloads,
        _ => Phase::Rest,
    }
}

/// The scope of built-in kinds, known without asking the server. `None`: ask discovery.
pub fn builtin_scope(group: &str, kind: &str) -> Option<Scope> {
    let cluster = matches!(
        (group, kind),
        (
            "",
            "Namespace" | "Node" | "PersistentVolume" | "ComponentStatus"
        ) | (
            "rbac.authorization.k8s.io",
            "ClusterRole" | "ClusterRoleBinding"
        ) | ("apiextensions.k8s.io", "CustomResourceDefinition")
            | (
                "storage.k8s.io",
                "StorageClass" | "CSIDriver" | "CSINode" | "VolumeAttachment"
            )
            | ("scheduling.k8s.io", "PriorityClass")
            | ("networking.k8s.io", "IngressClass")
            | (
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration"
                    | "MutatingWebhookConfiguration"
                    | "ValidatingAdmissionPolicy"
                    | "ValidatingAdmissionPolicyBinding"
            )
            | ("apiregistration.k8s.io", "APIService")
            | ("certificates.k8s.io", "CertificateSigningRequest")
            | ("node.k8s.io", "RuntimeClass")
            | (
                "flowcontrol.apiserver.k8s.io",
                "FlowSchema" | "PriorityLevelConfiguration"
            )
    );
    if cluster {
        return Some(Scope::Cluster);
    }
    let namespaced = matches!(
        (group, kind),
        (
            "",
            "Pod"
                | "Service"
                | "Endpoints"
                | "ConfigMap"
                | "Secret"
                | "ServiceAccount"
                | "PersistentVolumeClaim"
                | "LimitRange"
                | "ResourceQuota"
                | "ReplicationController"
                | "Event"
                | "PodTemplate"
        ) | (
            "apps",
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ControllerRevision"
        ) | ("batch", "Job" | "CronJob")
            | ("rbac.authorization.k8s.io", "Role" | "RoleBinding")
            | ("networking.k8s.io", "Ingress" | "NetworkPolicy")
            | ("autoscaling", "HorizontalPodAutoscaler")
            | ("policy", "PodDisruptionBudget")
            | ("discovery.k8s.io", "EndpointSlice")
            | ("coordination.k8s.io", "Lease")
            | ("events.k8s.io", "Event")
    );
    namespaced.then_some(Scope::Namespaced)
}

/// A kind defined by a CustomResourceDefinition among the objects being applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinedKind {
    /// `spec.group`.
    pub group: String,
    /// `spec.names.kind`.
    pub kind: String,
    /// `spec.scope`.
    pub scope: Scope,
    /// The name of the CRD (`plural.group`), to wait for it to be established.
    pub crd_name: String,
    /// `spec.versions[].name` that are served.
    pub versions: Vec<String>,
}

/// The kinds the CRDs among `objects` define.
pub fn defined_kinds(objects: &[Object]) -> Vec<DefinedKind> {
    objects
        .iter()
        .filter(|o| o.group == "apiextensions.k8s.io" && o.kind == "CustomResourceDefinition")
        .filter_map(|o| {
            let spec = o.value.get("spec")?;
            let group = spec.get("group")?.as_str()?.to_owned();
            let kind = spec.pointer("/names/kind")?.as_str()?.to_owned();
            let scope = match spec.get("scope").and_then(Value::as_str) {
                Some("Cluster") => Scope::Cluster,
                _ => Scope::Namespaced,
            };
            let versions = spec
                .get("versions")
                .and_then(Value::as_array)
                .map(|vs| {
                    vs.iter()
                        .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
                        .filter_map(|v| v.get("name")?.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            Some(DefinedKind {
                group,
                kind,
                scope,
                crd_name: o.name.clone(),
                versions,
            })
        })
        .collect()
}

/// Which namespaces and scopes a run may touch.
#[derive(Debug, Clone)]
pub struct NamespacePolicy {
    /// Where objects without a namespace go (`--namespace`, else the kubeconfig context's).
    pub default_namespace: String,
    /// Other namespaces explicitly allowed (`--allow-namespace`).
    pub allowed: BTreeSet<String>,
    /// `--allow-cluster-scoped`.
    pub allow_cluster_scoped: bool,
}

/// An object the namespace policy refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Where the object came from.
    pub origin: Origin,
    /// `kind.group/name`.
    pub object: String,
    /// Why, and which flag would allow it.
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.origin, self.object, self.message)
    }
}

impl NamespacePolicy {
    /// Whether objects may go into `namespace`.
    pub fn allows(&self, namespace: &str) -> bool {
        namespace == self.default_namespace || self.allowed.contains(namespace)
    }

    /// Applies the policy to `object`, whose scope is `scope`: a namespaced object without a
    /// namespace gets the default one; a cluster-scoped object loses a stray
    /// `metadata.namespace` (the server ignores it; kubectl drops it too).
    ///
    /// # Errors
    /// An object in a namespace that is not allowed, or a cluster-scoped object without
    /// `--allow-cluster-scoped`.
    pub fn resolve(&self, object: &mut Object, scope: &Scope) -> Result<(), Refusal> {
        let refuse = |message: String| Refusal {
            origin: object.origin.clone(),
            object: object.display_name(),
            message,
        };
        match scope {
            Scope::Cluster => {
                if !self.allow_cluster_scoped {
                    return Err(refuse(format!(
                        "{} is cluster-scoped; a namespace-scoped identity cannot apply it \
                         (pass --allow-cluster-scoped if this identity may)",
                        object.kind
                    )));
                }
                if let Some(meta) = object
                    .value
                    .get_mut("metadata")
                    .and_then(Value::as_object_mut)
                {
                    meta.remove("namespace");
                }
                Ok(())
            }
            Scope::Namespaced => {
                let namespace = object
                    .namespace
                    .clone()
                    .unwrap_or_else(|| self.default_namespace.clone());
                if !self.allows(&namespace) {
                    return Err(refuse(format!(
                        "is in namespace \"{namespace}\", not the target namespace \"{}\" \
                         (pass --allow-namespace {namespace} to allow it)",
                        self.default_namespace
                    )));
                }
                if let Some(meta) = object
                    .value
                    .get_mut("metadata")
                    .and_then(Value::as_object_mut)
                {
                    meta.insert("namespace".into(), Value::String(namespace));
                }
                Ok(())
            }
        }
    }
}

/// Objects that appear twice (same group, kind, namespace, name): applying both would make the
/// result depend on timing. Returns one message per duplicate.
pub fn duplicates(objects: &[Object]) -> Vec<InvalidObject> {
    let mut seen: BTreeMap<(String, String, Option<String>, String), &Origin> = BTreeMap::new();
    let mut out = Vec::new();
    for o in objects {
        let key = (
            o.group.clone(),
            o.kind.clone(),
            o.target_namespace().map(str::to_owned),
            o.name.clone(),
        );
        if let Some(first) = seen.get(&key) {
            out.push(InvalidObject {
                origin: o.origin.clone(),
                message: format!("{} is also defined at {first}", o.display_name()),
            });
        } else {
            seen.insert(key, &o.origin);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn origin(index: u32) -> Origin {
        Origin {
            source: "k8s/app.yaml".into(),
            index,
            item: 0,
            line: 0,
            column: 0,
            text: None,
        }
    }

    /// An object from `value`, as the first document of `k8s/app.yaml` (other modules' tests
    /// use it too).
    pub(crate) fn object(value: Value) -> Object {
        Object::new(value, origin(1)).unwrap()
    }

    fn policy() -> NamespacePolicy {
        NamespacePolicy {
            default_namespace: "app".into(),
            allowed: BTreeSet::new(),
            allow_cluster_scoped: false,
        }
    }

    #[test]
    fn identity_and_display() {
        let o = object(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}),
        );
        assert_eq!((o.group.as_str(), o.version.as_str()), ("apps", "v1"));
        assert_eq!(o.display_name(), "deployment.apps/web");
        let s = object(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}));
        assert_eq!(s.display_name(), "service/web");
        assert_eq!(s.api_version(), "v1");
    }

    #[test]
    fn invalid_documents_are_named() {
        let e = Object::new(json!({"kind": "Service"}), origin(2)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "k8s/app.yaml (document 2): the document has no apiVersion"
        );
        let e = Object::new(
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"generateName": "x-"}}),
            origin(1),
        )
        .unwrap_err();
        assert!(e.message.contains("generateName"), "{e}");
        let e = Object::new(
            json!({"apiVersion": "a/b/c", "kind": "X", "metadata": {"name": "x"}}),
            origin(1),
        )
        .unwrap_err();
        assert!(e.message.contains("not an apiVersion"), "{e}");
    }

    #[test]
    fn origin_with_position() {
        let o = Origin {
            line: 12,
            column: 1,
            ..origin(2)
        };
        assert_eq!(o.to_string(), "k8s/app.yaml:12:1");
    }

    #[test]
    fn a_field_is_placed_at_its_own_line_in_the_source() {
        let text = "# a comment\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  V: 1.10\n---\nkind: ConfigMap\ndatta: {}\n";
        let o = Origin {
            line: 2,
            column: 1,
            text: Some(SourceText(Arc::from(text))),
            ..origin(1)
        };
        assert_eq!(o.field(".data.V", false).to_string(), "k8s/app.yaml:7:6");
        assert_eq!(o.field(".data.V", true).to_string(), "k8s/app.yaml:7:3");
        // Missing: its deepest ancestor's key.
        assert_eq!(o.field(".data.W", false).to_string(), "k8s/app.yaml:6:1");
        let second = Origin {
            index: 2,
            line: 9,
            ..o.clone()
        };
        assert_eq!(
            second.field(".datta", true).to_string(),
            "k8s/app.yaml:10:1"
        );
        // No text (a step's output) or no such document: the document's own position.
        let without = Origin {
            text: None,
            ..o.clone()
        };
        assert_eq!(
            without.field(".data.V", false).to_string(),
            "k8s/app.yaml:2:1"
        );
        let third = Origin { index: 3, ..o };
        assert_eq!(
            third.field(".data.V", false).to_string(),
            "k8s/app.yaml:2:1"
        );
        assert!(
            !format!("{third:?}").contains("ConfigMap"),
            "Debug shows no text"
        );
    }

    #[test]
    fn phases_order_dependencies_first() {
        assert!(phase("apiextensions.k8s.io", "CustomResourceDefinition") < phase("", "ConfigMap"));
        assert!(phase("", "Namespace") < phase("rbac.authorization.k8s.io", "RoleBinding"));
        assert!(phase("", "Secret") < phase("", "Service"));
        assert!(phase("", "Service") < phase("apps", "Deployment"));
        assert!(phase("apps", "Deployment") < phase("networking.k8s.io", "Ingress"));
        assert_eq!(phase("example.com", "Widget"), Phase::Rest);
        // A kind with a core-group name in another group is not the core kind.
        assert_eq!(phase("example.com", "Service"), Phase::Rest);
    }

    #[test]
    fn namespaced_objects_get_the_default_namespace() {
        let mut o =
            object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
        policy().resolve(&mut o, &Scope::Namespaced).unwrap();
        assert_eq!(o.target_namespace(), Some("app"));
    }

    #[test]
    fn other_namespaces_need_an_explicit_allowance() {
        let mut o = object(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "kube-system"}}),
        );
        let refusal = policy().resolve(&mut o, &Scope::Namespaced).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "k8s/app.yaml (document 1): configmap/c: is in namespace \"kube-system\", not the \
             target namespace \"app\" (pass --allow-namespace kube-system to allow it)"
        );
        let mut allowed = policy();
        allowed.allowed.insert("kube-system".into());
        allowed.resolve(&mut o, &Scope::Namespaced).unwrap();
        assert_eq!(o.target_namespace(), Some("kube-system"));
        // Writing the target namespace explicitly is fine.
        let mut same = object(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "app"}}),
        );
        policy().resolve(&mut same, &Scope::Namespaced).unwrap();
    }

    #[test]
    fn cluster_scoped_objects_need_an_explicit_allowance() {
        let mut o = object(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r", "namespace": "app"}}),
        );
        let refusal = policy().resolve(&mut o, &Scope::Cluster).unwrap_err();
        assert!(
            refusal.message.contains("--allow-cluster-scoped"),
            "{refusal}"
        );
        let mut allowed = policy();
        allowed.allow_cluster_scoped = true;
        allowed.resolve(&mut o, &Scope::Cluster).unwrap();
        assert_eq!(o.target_namespace(), None, "stray namespace dropped");
    }

    #[test]
    fn builtin_scopes() {
        assert_eq!(builtin_scope("", "Namespace"), Some(Scope::Cluster));
        assert_eq!(builtin_scope("apps", "Deployment"), Some(Scope::Namespaced));
        assert_eq!(builtin_scope("example.com", "Widget"), None);
    }

    #[test]
    fn crds_in_the_set_define_kinds() {
        let crd = object(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Cluster",
                "names": {"kind": "Widget", "plural": "widgets"},
                "versions": [{"name": "v1", "served": true}, {"name": "v0", "served": false}]
            }
        }));
        let kinds = defined_kinds(&[crd]);
        assert_eq!(
            kinds,
            vec![DefinedKind {
                group: "example.com".into(),
                kind: "Widget".into(),
                scope: Scope::Cluster,
                crd_name: "widgets.example.com".into(),
                versions: vec!["v1".into()],
            }]
        );
    }

    #[test]
    fn duplicates_are_reported_with_both_places() {
        let mut a =
            object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
        let mut b = a.clone();
        b.origin = origin(3);
        policy().resolve(&mut a, &Scope::Namespaced).unwrap();
        policy().resolve(&mut b, &Scope::Namespaced).unwrap();
        let d = duplicates(&[a, b]);
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].to_string(),
            "k8s/app.yaml (document 3): configmap/c is also defined at k8s/app.yaml (document 1)"
        );
    }
}
