//! apiVersions that current Kubernetes releases no longer serve, and the mechanical rewrites
//! to their replacements (`--upgrade-api-versions`).
//!
//! Source: the Kubernetes deprecated API migration guide. Only rewrites that need no judgement
//! are automatic; the others are reported with their replacement.

use crate::diag::Pos;
use crate::tree::{Map, Node, Value};

/// How a removed apiVersion is brought up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// Not mechanical: reported only.
    Manual,
    /// Same schema: only `apiVersion` changes.
    Rename,
    /// Deployment/DaemonSet/StatefulSet/ReplicaSet to `apps/v1`: `spec.selector` is required.
    Workload,
    /// Ingress to `networking.k8s.io/v1`: backends, `pathType`, `defaultBackend`, class.
    Ingress,
    /// PodDisruptionBudget to `policy/v1`: same fields, an empty selector now selects all.
    PodDisruptionBudget,
}

/// One removed (apiVersion, kinds) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// The removed apiVersion.
    pub api_version: &'static str,
    /// The kinds it was removed for.
    pub kinds: &'static [&'static str],
    /// The first Kubernetes release that no longer serves it.
    pub removed_in: &'static str,
    /// What to use instead (`None`: nothing, e.g. PodSecurityPolicy).
    pub replacement: Option<&'static str>,
    /// Whether kstep can rewrite it.
    pub rewrite: Rewrite,
    /// What changes besides the apiVersion, for the report.
    pub changes: &'static str,
}

const WORKLOADS: &[&str] = &["Deployment", "DaemonSet", "ReplicaSet", "StatefulSet"];
const RBAC: &[&str] = &["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"];

const fn removed(
    api_version: &'static str,
    kinds: &'static [&'static str],
    removed_in: &'static str,
    replacement: Option<&'static str>,
    rewrite: Rewrite,
    changes: &'static str,
) -> Removed {
    Removed {
        api_version,
        kinds,
        removed_in,
        replacement,
        rewrite,
        changes,
    }
}

/// Every removal kstep knows.
pub const REMOVED: &[Removed] = &[
    removed(
        "extensions/v1beta1",
        &["Deployment", "DaemonSet", "ReplicaSet"],
        "1.16",
        Some("apps/v1"),
        Rewrite::Workload,
        "spec.selector required",
    ),
    removed(
        "apps/v1beta1",
        &["Deployment", "StatefulSet"],
        "1.16",
        Some("apps/v1"),
        Rewrite::Workload,
        "spec.selector required",
    ),
    removed(
        "apps/v1beta2",
        WORKLOADS,
        "1.16",
        Some("apps/v1"),
        Rewrite::Workload,
        "spec.selector required",
    ),
    removed(
        "extensions/v1beta1",
        &["NetworkPolicy"],
        "1.16",
        Some("networking.k8s.io/v1"),
        Rewrite::Rename,
        "none",
    ),
    removed(
        "extensions/v1beta1",
        &["PodSecurityPolicy"],
        "1.16",
        None,
        Rewrite::Manual,
        "PodSecurityPolicy is gone (1.25): use Pod Security Admission",
    ),
    removed(
        "extensions/v1beta1",
        &["Ingress"],
        "1.22",
        Some("networking.k8s.io/v1"),
        Rewrite::Ingress,
        "backend service name/port, pathType, defaultBackend, ingressClassName",
    ),
    removed(
        "networking.k8s.io/v1beta1",
        &["Ingress"],
        "1.22",
        Some("networking.k8s.io/v1"),
        Rewrite::Ingress,
        "backend service name/port, pathType, defaultBackend, ingressClassName",
    ),
    removed(
        "networking.k8s.io/v1beta1",
        &["IngressClass"],
        "1.22",
        Some("networking.k8s.io/v1"),
        Rewrite::Rename,
        "none",
    ),
    removed(
        "rbac.authorization.k8s.io/v1beta1",
        RBAC,
        "1.22",
        Some("rbac.authorization.k8s.io/v1"),
        Rewrite::Rename,
        "none",
    ),
    removed(
        "rbac.authorization.k8s.io/v1alpha1",
        RBAC,
        "1.22",
        Some("rbac.authorization.k8s.io/v1"),
        Rewrite::Rename,
        "none",
    ),
    removed(
        "scheduling.k8s.io/v1beta1",
        &["PriorityClass"],
        "1.22",
        Some("scheduling.k8s.io/v1"),
        Rewrite::Rename,
        "none",
    ),
    removed(
        "coordination.k8s.io/v1beta1",
        &["Lease"],
        "1.22",
        Some("coordination.k8s.io/v1"),
        Rewrite::Rename,
        "none",
    ),
    removed(
        "apiregistration.k8s.io/v1beta1",
        &["APIService"],
        "1.22",
        Some("apiregistration.k8s.io/v1"),
        Rewrite::Rename,
        "none",
    ),
    removed(
        "storage.k8s.io/v1beta1",
        &["CSIDriver", "CSINode", "StorageClass", "VolumeAttachment"],
        "1.22",
        Some("storage.k8s.io/v1"),
        Rewrite::Rename,
        "none",
    ),
    removed(
        "apiextensions.k8s.io/v1beta1",
        &["CustomResourceDefinition"],
        "1.22",
        Some("apiextensions.k8s.io/v1"),
        Rewrite::Manual,
        "a structural schema per version is required",
    ),
    removed(
        "admissionregistration.k8s.io/v1beta1",
        &[
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ],
        "1.22",
        Some("admissionregistration.k8s.io/v1"),
        Rewrite::Manual,
        "sideEffects and admissionReviewVersions are required, defaults changed",
    ),
    removed(
        "certificates.k8s.io/v1beta1",
        &["CertificateSigningRequest"],
        "1.22",
        Some("certificates.k8s.io/v1"),
        Rewrite::Manual,
        "spec.signerName is required",
    ),
    removed(
        "batch/v1beta1",
        &["CronJob"],
        "1.25",
        Some("batch/v1"),
        Rewrite::Rename,
        "none",
    ),
    removed(
        "policy/v1beta1",
        &["PodDisruptionBudget"],
        "1.25",
        Some("policy/v1"),
        Rewrite::PodDisruptionBudget,
        "an empty spec.selector selects every pod",
    ),
    removed(
        "policy/v1beta1",
        &["PodSecurityPolicy"],
        "1.25",
        None,
        Rewrite::Manual,
        "PodSecurityPolicy is gone: use Pod Security Admission",
    ),
    removed(
        "autoscaling/v2beta1",
        &["HorizontalPodAutoscaler"],
        "1.25",
        Some("autoscaling/v2"),
        Rewrite::Manual,
        "metric targets are restructured",
    ),
    removed(
        "autoscaling/v2beta2",
        &["HorizontalPodAutoscaler"],
        "1.26",
        Some("autoscaling/v2"),
        Rewrite::Rename,
        "none",
    ),
    removed(
        "discovery.k8s.io/v1beta1",
        &["EndpointSlice"],
        "1.25",
        Some("discovery.k8s.io/v1"),
        Rewrite::Manual,
        "topology becomes zone/hints",
    ),
    removed(
        "events.k8s.io/v1beta1",
        &["Event"],
        "1.25",
        Some("events.k8s.io/v1"),
        Rewrite::Manual,
        "deprecated fields renamed",
    ),
    removed(
        "node.k8s.io/v1beta1",
        &["RuntimeClass"],
        "1.25",
        Some("node.k8s.io/v1"),
        Rewrite::Rename,
        "none",
    ),
    removed(
        "storage.k8s.io/v1beta1",
        &["CSIStorageCapacity"],
        "1.27",
        Some("storage.k8s.io/v1"),
        Rewrite::Rename,
        "none",
    ),
    removed(
        "flowcontrol.apiserver.k8s.io/v1beta1",
        &["FlowSchema", "PriorityLevelConfiguration"],
        "1.26",
        Some("flowcontrol.apiserver.k8s.io/v1"),
        Rewrite::Manual,
        "fields renamed",
    ),
    removed(
        "flowcontrol.apiserver.k8s.io/v1beta2",
        &["FlowSchema", "PriorityLevelConfiguration"],
        "1.29",
        Some("flowcontrol.apiserver.k8s.io/v1"),
        Rewrite::Manual,
        "fields renamed",
    ),
    removed(
        "flowcontrol.apiserver.k8s.io/v1beta3",
        &["FlowSchema", "PriorityLevelConfiguration"],
        "1.32",
        Some("flowcontrol.apiserver.k8s.io/v1"),
        Rewrite::Manual,
        "fields renamed",
    ),
];

/// The removal that applies to (`api_version`, `kind`), if any.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static Removed> {
    REMOVED
        .iter()
        .find(|r| r.api_version == api_version && r.kinds.contains(&kind))
}

/// Something that stops a rewrite, at a position of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeError {
    /// Where.
    pub pos: Pos,
    /// Why.
    pub message: String,
}

fn fail(pos: Pos, message: impl Into<String>) -> UpgradeError {
    UpgradeError {
        pos,
        message: message.into(),
    }
}

/// Rewrites `root` (a document of kind `kind` under the removed version `rule`) to the
/// replacement. Returns notes for the report (what changed, which defaults differ).
///
/// # Errors
/// What makes the document impossible to convert mechanically (every problem found).
pub fn upgrade(
    root: &mut Node,
    kind: &str,
    rule: &Removed,
) -> Result<Vec<String>, Vec<UpgradeError>> {
    let Some(to) = rule.replacement else {
        return Err(vec![fail(
            root.pos,
            "there is no replacement to upgrade to",
        )]);
    };
    let mut notes = Vec::new();
    let mut errors = Vec::new();
    match rule.rewrite {
        Rewrite::Manual => {
            return Err(vec![fail(
                root.pos,
                format!(
                    "{} needs a manual migration: {}",
                    rule.api_version, rule.changes
                ),
            )]);
        }
        Rewrite::Rename => {}
        Rewrite::Workload => workload(root, kind, rule.api_version, &mut notes, &mut errors),
        Rewrite::Ingress => ingress(root, &mut notes, &mut errors),
        Rewrite::PodDisruptionBudget => {
            if let Some(Value::Map(m)) = root.get_path(&["spec", "selector"]).map(|n| &n.value)
                && m.is_empty()
            {
                notes.push("spec.selector is empty: in policy/v1 that selects every pod of the namespace (none in v1beta1)".into());
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if let Some(v) = root.get_path_mut(&["apiVersion"]) {
        v.value = Value::Str(to.to_owned());
    }
    Ok(notes)
}

fn workload(
    root: &mut Node,
    kind: &str,
    from: &str,
    notes: &mut Vec<String>,
    errors: &mut Vec<UpgradeError>,
) {
    let root_pos = root.pos;
    let Some(spec) = root.get_path_mut(&["spec"]).and_then(Node::as_map_mut) else {
        errors.push(fail(root_pos, "spec is missing or not a mapping"));
        return;
    };
    let labels = spec
        .get("template")
        .and_then(|t| t.get_path(&["metadata", "labels"]))
        .and_then(Node::as_map)
        .cloned()
        .unwrap_or_default();
    match spec.get("selector") {
        None => {
            if labels.is_empty() {
                errors.push(fail(
                    root_pos,
                    "cannot add spec.selector (required by apps/v1): spec.template.metadata.labels is empty",
                ));
                return;
            }
            let at = spec.get("template").map_or(root_pos, |t| t.pos);
            let mut selector = Map::default();
            selector.insert("matchLabels", Node::new(Value::Map(labels), at));
            spec.insert_before("template", "selector", Node::new(Value::Map(selector), at));
            notes.push("added spec.selector.matchLabels from the template labels (required, and immutable, in apps/v1)".into());
        }
        Some(selector) => {
            if let Some(match_labels) = selector.get_path(&["matchLabels"]).and_then(Node::as_map) {
                for e in &match_labels.entries {
                    if labels.get(&e.key).map(|n| &n.value) != Some(&e.value.value) {
                        errors.push(fail(
                            e.key_pos,
                            format!("spec.selector.matchLabels `{}` does not match the template labels (apps/v1 rejects that)", e.key),
                        ));
                    }
                }
            }
        }
    }
    if kind == "Deployment" {
        if spec.remove("rollbackTo").is_some() {
            notes.push(
                "removed spec.rollbackTo (not in apps/v1; use `kubectl rollout undo`)".into(),
            );
        }
        let unset: Vec<&str> = [
            "revisionHistoryLimit",
            "progressDeadlineSeconds",
            "strategy",
        ]
        .into_iter()
        .filter(|k| !spec.contains(k))
        .collect();
        if !unset.is_empty() {
            notes.push(format!(
                "unset {} now take the apps/v1 defaults (revisionHistoryLimit 10, \
                 progressDeadlineSeconds 600, RollingUpdate 25%/25%): set them to keep the old \
                 behaviour",
                unset.join(", ")
            ));
        }
    }
    if kind == "DaemonSet" {
        if spec.remove("templateGeneration").is_some() {
            notes.push("removed spec.templateGeneration (not in apps/v1)".into());
        }
        if from == "extensions/v1beta1" && !spec.contains("updateStrategy") {
            notes.push(
                "updateStrategy now defaults to RollingUpdate (extensions/v1beta1: OnDelete)"
                    .into(),
            );
        }
    }
    if kind == "StatefulSet" && from == "apps/v1beta1" && !spec.contains("updateStrategy") {
        notes.push("updateStrategy now defaults to RollingUpdate (apps/v1beta1: OnDelete)".into());
    }
}

const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

fn ingress(root: &mut Node, notes: &mut Vec<String>, errors: &mut Vec<UpgradeError>) {
    let root_pos = root.pos;
    let class = root
        .get_path_mut(&["metadata", "annotations"])
        .and_then(Node::as_map_mut)
        .and_then(|a| a.remove(CLASS_ANNOTATION));
    if root
        .get_path(&["metadata", "annotations"])
        .and_then(Node::as_map)
        .is_some_and(Map::is_empty)
        && let Some(meta) = root.get_path_mut(&["metadata"]).and_then(Node::as_map_mut)
    {
        meta.remove("annotations");
    }
    let Some(spec) = root.get_path_mut(&["spec"]).and_then(Node::as_map_mut) else {
        if class.is_some() {
            errors.push(fail(
                root_pos,
                "spec is missing: nowhere to put spec.ingressClassName",
            ));
        }
        return;
    };
    if let Some(class) = class {
        match (spec.get("ingressClassName").map(|n| &n.value), class.value.as_str()) {
            (None, Some(name)) => {
                spec.insert_at(0, "ingressClassName", class.value.clone());
                notes.push(format!("annotation {CLASS_ANNOTATION} became spec.ingressClassName `{name}`: an IngressClass of that name must exist"));
            }
            (Some(Value::Str(existing)), Some(name)) if existing == name => {
                notes.push(format!("removed annotation {CLASS_ANNOTATION} (spec.ingressClassName says the same)"));
            }
            _ => errors.push(fail(
                class.key_pos,
                format!("annotation {CLASS_ANNOTATION} conflicts with spec.ingressClassName (networking.k8s.io/v1 accepts one of them)"),
            )),
        }
    }
    if let Some(backend) = spec.remove("backend") {
        if spec.contains("defaultBackend") {
            errors.push(fail(
                backend.key_pos,
                "both spec.backend and spec.defaultBackend are set",
            ));
        } else {
            let mut node = backend.value;
            convert_backend(&mut node, errors);
            spec.insert_before("rules", "defaultBackend", node);
            notes.push("spec.backend became spec.defaultBackend".into());
        }
    }
    let mut added_path_type = false;
    let mut converted = false;
    if let Some(rules) = spec.get_mut("rules").and_then(Node::as_seq_mut) {
        for rule in rules {
            let Some(paths) = rule
                .get_path_mut(&["http", "paths"])
                .and_then(Node::as_seq_mut)
            else {
                continue;
            };
            for path in paths {
                let pos = path.pos;
                let Some(p) = path.as_map_mut() else {
                    errors.push(fail(pos, "an Ingress path must be a mapping"));
                    continue;
                };
                if let Some(b) = p.get_mut("backend") {
                    converted |= convert_backend(b, errors);
                }
                if !p.contains("pathType") {
                    let at = p.get("path").map_or(pos, |n| n.pos);
                    p.insert_after("path", "pathType", Node::str("ImplementationSpecific", at));
                    added_path_type = true;
                }
            }
        }
    }
    if converted {
        notes.push(
            "backend serviceName/servicePort became service.name/service.port.number|name".into(),
        );
    }
    if added_path_type {
        notes.push(
            "added pathType ImplementationSpecific where missing (what v1beta1 defaulted to)"
                .into(),
        );
    }
}

/// `{serviceName, servicePort}` → `{service: {name, port: {number|name}}}`; returns whether it
/// changed anything.
fn convert_backend(backend: &mut Node, errors: &mut Vec<UpgradeError>) -> bool {
    let pos = backend.pos;
    let Some(map) = backend.as_map_mut() else {
        errors.push(fail(pos, "an Ingress backend must be a mapping"));
        return false;
    };
    let name = map.remove("serviceName");
    let port = map.remove("servicePort");
    let (name, port) = match (name, port) {
        (None, None) => return false,
        (Some(n), Some(p)) => (n, p),
        (Some(e), None) | (None, Some(e)) => {
            errors.push(fail(
                e.key_pos,
                "an Ingress backend needs both serviceName and servicePort",
            ));
            return false;
        }
    };
    if map.contains("resource") {
        errors.push(fail(
            name.key_pos,
            "an Ingress backend has both a service and a resource",
        ));
        return false;
    }
    let port_pos = port.value.pos;
    let port_value = match &port.value.value {
        Value::Int(_) | Value::UInt(_) => ("number", port.value.clone()),
        Value::Str(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            match s.parse::<i64>() {
                Ok(n) => ("number", Node::new(Value::Int(n), port_pos)),
                Err(_) => ("name", port.value.clone()),
            }
        }
        Value::Str(_) => ("name", port.value.clone()),
        _ => {
            errors.push(fail(
                port_pos,
                format!(
                    "servicePort is {}: expected a port number or name",
                    port.value.type_name()
                ),
            ));
            return false;
        }
    };
    let mut port_map = Map::default();
    port_map.insert(port_value.0, port_value.1);
    let mut service = Map::default();
    service.insert("name", name.value);
    service.insert("port", Node::new(Value::Map(port_map), port_pos));
    let mut converted = Map::default();
    converted.insert("service", Node::new(Value::Map(service), pos));
    for e in std::mem::take(&mut map.entries) {
        converted.entries.push(e);
    }
    *map = converted;
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Node {
        let loaded = crate::load::load("t.yaml", text, None);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        loaded.documents.into_iter().next().unwrap().root
    }

    fn up(text: &str) -> Result<(String, Vec<String>), Vec<String>> {
        let mut root = doc(text);
        let api = root.str_at(&["apiVersion"]).unwrap().to_owned();
        let kind = root.str_at(&["kind"]).unwrap().to_owned();
        let rule = lookup(&api, &kind).unwrap();
        match upgrade(&mut root, &kind, rule) {
            Ok(notes) => Ok((serde_json::to_string(&root).unwrap(), notes)),
            Err(e) => Err(e
                .into_iter()
                .map(|e| format!("{}: {}", e.pos, e.message))
                .collect()),
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(
            lookup("extensions/v1beta1", "Deployment")
                .unwrap()
                .removed_in,
            "1.16"
        );
        assert_eq!(
            lookup("extensions/v1beta1", "Ingress").unwrap().removed_in,
            "1.22"
        );
        assert!(lookup("apps/v1", "Deployment").is_none());
        assert!(lookup("extensions/v1beta1", "StatefulSet").is_none());
        assert!(
            lookup("policy/v1beta1", "PodSecurityPolicy")
                .unwrap()
                .replacement
                .is_none()
        );
    }

    #[test]
    fn workload_gets_a_selector() {
        let (json, notes) = up("apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  replicas: 1\n  template:\n    metadata:\n      labels: {app: a}\n").unwrap();
        assert_eq!(
            json,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"a"}},"template":{"metadata":{"labels":{"app":"a"}}}}}"#
        );
        assert!(notes[0].contains("added spec.selector"));
        assert!(
            notes[1].starts_with(
                "unset revisionHistoryLimit, progressDeadlineSeconds, strategy now take"
            )
        );
    }

    #[test]
    fn workload_errors() {
        let e = up("apiVersion: apps/v1beta2\nkind: DaemonSet\nmetadata: {name: a}\nspec:\n  template: {}\n").unwrap_err();
        assert_eq!(
            e,
            vec![
                "1:1: cannot add spec.selector (required by apps/v1): spec.template.metadata.labels is empty"
            ]
        );
        let e = up("apiVersion: apps/v1beta1\nkind: StatefulSet\nmetadata: {name: a}\nspec:\n  selector:\n    matchLabels: {app: b}\n  template:\n    metadata:\n      labels: {app: a}\n").unwrap_err();
        assert_eq!(
            e,
            vec![
                "6:19: spec.selector.matchLabels `app` does not match the template labels (apps/v1 rejects that)"
            ]
        );
    }

    #[test]
    fn ingress_is_converted() {
        let text = "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: web\n  annotations:\n    kubernetes.io/ingress.class: traefik\nspec:\n  backend:\n    serviceName: default\n    servicePort: 80\n  rules:\n  - host: a.example\n    http:\n      paths:\n      - path: /\n        backend:\n          serviceName: web\n          servicePort: admin\n      - backend:\n          serviceName: api\n          servicePort: \"8080\"\n        pathType: Prefix\n        path: /api\n";
        let (json, notes) = up(text).unwrap();
        assert_eq!(
            json,
            r#"{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"web"},"spec":{"ingressClassName":"traefik","defaultBackend":{"service":{"name":"default","port":{"number":80}}},"rules":[{"host":"a.example","http":{"paths":[{"path":"/","pathType":"ImplementationSpecific","backend":{"service":{"name":"web","port":{"name":"admin"}}}},{"backend":{"service":{"name":"api","port":{"number":8080}}},"pathType":"Prefix","path":"/api"}]}}]}}"#
        );
        assert_eq!(notes.len(), 4, "{notes:?}");
    }

    #[test]
    fn ingress_conflicts() {
        let e = up("apiVersion: networking.k8s.io/v1beta1\nkind: Ingress\nmetadata:\n  name: web\n  annotations:\n    kubernetes.io/ingress.class: a\nspec:\n  ingressClassName: b\n").unwrap_err();
        assert_eq!(
            e,
            vec![
                "6:5: annotation kubernetes.io/ingress.class conflicts with spec.ingressClassName (networking.k8s.io/v1 accepts one of them)"
            ]
        );
        let e = up("apiVersion: networking.k8s.io/v1beta1\nkind: Ingress\nmetadata: {name: web}\nspec:\n  backend: {serviceName: a}\n").unwrap_err();
        assert_eq!(
            e,
            vec!["5:13: an Ingress backend needs both serviceName and servicePort"]
        );
    }

    #[test]
    fn renames_and_manual() {
        let (json, notes) = up("apiVersion: rbac.authorization.k8s.io/v1beta1\nkind: RoleBinding\nmetadata: {name: a}\n").unwrap();
        assert_eq!(
            json,
            r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"a"}}"#
        );
        assert!(notes.is_empty());
        let (_, notes) = up("apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: a}\nspec:\n  selector: {}\n").unwrap();
        assert!(notes[0].contains("selects every pod"));
        assert!(up("apiVersion: autoscaling/v2beta1\nkind: HorizontalPodAutoscaler\nmetadata: {name: a}\n").is_err());
    }
}
