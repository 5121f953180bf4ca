//! Taking over objects another tool applied, before kstep applies them: the ownership that
//! client-side `kubectl apply` (or Helm) recorded in `metadata.managedFields` moves to kstep's
//! server-side apply field manager, the way kubectl's own client-side → server-side upgrade
//! does it (`k8s.io/client-go/util/csaupgrade`): the other managers' field sets are merged into
//! kstep's `Apply` entry and their entries removed, sent as one patch guarded by the live
//! resourceVersion (kubectl sends a JSON patch replacing `managedFields` and `resourceVersion`;
//! a JSON merge patch with both does the same — a list is replaced whole, a stale
//! resourceVersion is a 409 — with the client kstep already has).
//!
//! Unlike kubectl, kstep also removes the `kubectl.kubernetes.io/last-applied-configuration`
//! annotation: kstep never updates it, and a stale copy would make a later client-side
//! `kubectl apply` compute its deletions from a configuration that is no longer the live one.
//! Without it, such a `kubectl apply` falls back to a two-way merge (it warns and re-creates
//! the annotation) and takes the fields it sets back; kstep's next deploy takes them over again.
//!
//! [`plan`] is pure (unit-tested here); the request is in `deploy::apply`.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// The field manager of client-side `kubectl apply`.
pub const CSA_MANAGER: &str = "kubectl-client-side-apply";
/// The field manager of Helm.
pub const HELM_MANAGER: &str = "helm";
/// The annotation client-side `kubectl apply` keeps its last configuration in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The label Helm (and GitLab Auto Deploy's chart) puts on what it manages.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Helm's release annotations.
pub const HELM_RELEASE_NAME: &str = "meta.helm.sh/release-name";
/// See [`HELM_RELEASE_NAME`].
pub const HELM_RELEASE_NAMESPACE: &str = "meta.helm.sh/release-namespace";

/// The Helm release a live object belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmRelease {
    /// The release name (`?` when only the label says Helm).
    pub name: String,
    /// The release namespace (`?` when not recorded).
    pub namespace: String,
}

/// What to do with an existing object before applying it.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Nothing another tool owns: apply as is.
    Nothing,
    /// Take it over with this plan.
    Adopt(Plan),
    /// Helm manages it and `--adopt helm` was not given.
    RefuseHelm(HelmRelease),
}

/// A takeover of one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The managers whose fields move to kstep's manager, sorted.
    pub managers: Vec<String>,
    /// The Helm release whose label and annotations are removed, if any.
    pub helm: Option<HelmRelease>,
    /// The JSON merge patch (RFC 7386) that does it.
    pub patch: Value,
}

/// Whether a live (or dry-run) object shows anything [`plan`] would act on; cheap, used to
/// decide whether the live object must be read.
pub fn has_marks(object: &Value) -> bool {
    helm_release(object).is_some() || !csa_managers(&entries(object)).is_empty()
}

/// The managers that applied client-side: `kubectl-client-side-apply` and any other manager
/// whose `Update` owns the last-applied annotation (`kubectl create --save-config`, a CSA with
/// `--field-manager`), as kubectl's migration finds them.
fn csa_managers(entries: &[Value]) -> BTreeSet<String> {
    entries
        .iter()
        .filter(|e| str_of(e, "operation") == "Update" && subresource(e).is_empty())
        .filter(|e| {
            str_of(e, "manager") == CSA_MANAGER
                || e.pointer("/fieldsV1/f:metadata/f:annotations")
                    .and_then(Value::as_object)
                    .is_some_and(|a| a.contains_key(&format!("f:{LAST_APPLIED}")))
        })
        .map(|e| str_of(e, "manager").to_owned())
        .collect()
}

/// Decides what to do with the live object `live` before applying it with `field_manager`.
pub fn plan(live: &Value, field_manager: &str, adopt_helm: bool) -> Verdict {
    let helm = helm_release(live);
    if let Some(release) = &helm
        && !adopt_helm
    {
        return Verdict::RefuseHelm(release.clone());
    }
    let entries = entries(live);
    let mut from = csa_managers(&entries);
    from.remove(field_manager);
    if from.is_empty() && helm.is_none() {
        return Verdict::Nothing;
    }
    if helm.is_some() && entries.iter().any(|e| str_of(e, "manager") == HELM_MANAGER) {
        from.insert(HELM_MANAGER.to_owned());
    }

    let mut removed: Vec<(&str, &str)> = Vec::new();
    // Only with its client-side owners: the annotation of an object `kubectl apply
    // --server-side` migrated is kept up to date by the server and stays.
    if !from.is_empty() && annotations(live).contains_key(LAST_APPLIED) {
        removed.push(("annotations", LAST_APPLIED));
    }
    if helm.is_some() {
        if labels(live).contains_key(MANAGED_BY) {
            removed.push(("labels", MANAGED_BY));
        }
        for key in [HELM_RELEASE_NAME, HELM_RELEASE_NAMESPACE] {
            if annotations(live).contains_key(key) {
                removed.push(("annotations", key));
            }
        }
    }
    let managed = take_over(&entries, &from, field_manager, &removed);
    let mut metadata = json!({
        "managedFields": managed,
        "resourceVersion": live.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null),
    });
    for (map, key) in &removed {
        // `null` deletes a key in a merge patch.
        metadata[*map][*key] = Value::Null;
    }
    Verdict::Adopt(Plan {
        managers: from.into_iter().collect(),
        helm,
        patch: json!({ "metadata": metadata }),
    })
}

/// The managed fields after `to` took over the fields of the managers `from` (their entries
/// with no subresource), and with the metadata fields `removed` (`(map, key)`) owned by nobody.
///
/// As csaupgrade: `to`'s `Apply` entry (or else the first entry of `from`, renamed) receives
/// the union of the `from` entries of the same apiVersion; every `from` entry goes.
pub fn take_over(
    entries: &[Value],
    from: &BTreeSet<String>,
    to: &str,
    removed: &[(&str, &str)],
) -> Vec<Value> {
    let is_from = |e: &Value| from.contains(str_of(e, "manager")) && subresource(e).is_empty();
    let mut entries: Vec<Value> = entries.to_vec();
    let target = entries
        .iter()
        .position(|e| {
            str_of(e, "manager") == to
                && str_of(e, "operation") == "Apply"
                && subresource(e).is_empty()
        })
        .or_else(|| {
            let i = entries.iter().position(is_from)?;
            if let Some(e) = entries[i].as_object_mut() {
                e.insert("manager".into(), Value::String(to.to_owned()));
                e.insert("operation".into(), Value::String("Apply".into()));
            }
            Some(i)
        });
    if let Some(t) = target {
        let api_version = str_of(&entries[t], "apiVersion").to_owned();
        let mut fields = entries[t].get("fieldsV1").cloned().unwrap_or(json!({}));
        for e in entries.iter().filter(|e| is_from(e)) {
            if str_of(e, "apiVersion") == api_version
                && let Some(other) = e.get("fieldsV1")
            {
                union(&mut fields, other);
            }
        }
        if let Some(e) = entries[t].as_object_mut() {
            e.insert("fieldsV1".into(), fields);
        }
    }
    entries.retain(|e| !is_from(e));
    for e in &mut entries {
        if let Some(map) = e
            .pointer_mut("/fieldsV1/f:metadata")
            .and_then(Value::as_object_mut)
        {
            for (kind, key) in removed {
                if let Some(m) = map
                    .get_mut(&format!("f:{kind}"))
                    .and_then(Value::as_object_mut)
                {
                    m.remove(&format!("f:{key}"));
                }
            }
        }
    }
    entries
}

/// Merges the field set `other` into `into` (FieldsV1 trees: every value is an object).
fn union(into: &mut Value, other: &Value) {
    if let (Some(into), Some(other)) = (into.as_object_mut(), other.as_object()) {
        for (key, value) in other {
            match into.get_mut(key) {
                Some(existing) => union(existing, value),
                None => {
                    into.insert(key.clone(), value.clone());
                }
            }
        }
    }
}

fn helm_release(object: &Value) -> Option<HelmRelease> {
    let annotations = annotations(object);
    let name = annotations.get(HELM_RELEASE_NAME).and_then(Value::as_str);
    let by_helm = labels(object).get(MANAGED_BY).and_then(Value::as_str) == Some("Helm");
    if name.is_none() && !by_helm {
        return None;
    }
    let namespace = annotations
        .get(HELM_RELEASE_NAMESPACE)
        .and_then(Value::as_str);
    Some(HelmRelease {
        name: name.unwrap_or("?").to_owned(),
        namespace: namespace.unwrap_or("?").to_owned(),
    })
}

fn metadata_map<'a>(object: &'a Value, key: &str) -> &'a Map<String, Value> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    object
        .get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_object)
        .unwrap_or(&EMPTY)
}

fn annotations(object: &Value) -> &Map<String, Value> {
    metadata_map(object, "annotations")
}

fn labels(object: &Value) -> &Map<String, Value> {
    metadata_map(object, "labels")
}

fn entries(object: &Value) -> Vec<Value> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn str_of<'a>(entry: &'a Value, key: &str) -> &'a str {
    entry.get(key).and_then(Value::as_str).unwrap_or("")
}

fn subresource(entry: &Value) -> &str {
    str_of(entry, "subresource")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn csa_live() -> Value {
        json!({"metadata": {
        "name": "web", "resourceVersion": "240",
        "annotations": {LAST_APPLIED: "{}"},
        "labels": {"a": "1"},
        "managedFields": [
            {"manager": CSA_MANAGER, "operation": "Update", "apiVersion": "apps/v1",
             "fieldsType": "FieldsV1", "fieldsV1": {
                "f:metadata": {"f:annotations": {".": {}, format!("f:{LAST_APPLIED}"): {}},
                               "f:labels": {".": {}, "f:a": {}}},
                "f:spec": {"f:replicas": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
             "subresource": "status", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}
        ]}})
    }

    #[test]
    fn client_side_apply_ownership_moves_to_the_field_manager() {
        let Verdict::Adopt(plan) = plan(&csa_live(), "kstep", false) else {
            panic!("expected a takeover")
        };
        assert_eq!(plan.managers, vec![CSA_MANAGER.to_owned()]);
        assert_eq!(plan.helm, None);
        let metadata = &plan.patch["metadata"];
        let managed = metadata["managedFields"].as_array().unwrap();
        assert_eq!(managed.len(), 2);
        assert_eq!(managed[0]["manager"], "kstep");
        assert_eq!(managed[0]["operation"], "Apply");
        // The annotation is removed and owned by nobody; everything else moved.
        assert_eq!(
            managed[0]["fieldsV1"],
            json!({"f:metadata": {"f:annotations": {".": {}}, "f:labels": {".": {}, "f:a": {}}},
                   "f:spec": {"f:replicas": {}}})
        );
        // The status subresource's manager is left alone.
        assert_eq!(managed[1]["manager"], "kube-controller-manager");
        assert_eq!(metadata["resourceVersion"], "240");
        assert_eq!(metadata["annotations"], json!({LAST_APPLIED: null}));
        assert_eq!(metadata.as_object().unwrap().len(), 3);
    }

    #[test]
    fn union_into_an_existing_apply_entry_of_the_same_api_version_only() {
        let entries = vec![
            json!({"manager": "kstep", "operation": "Apply", "apiVersion": "v1",
                   "fieldsV1": {"f:data": {"f:a": {}}}}),
            json!({"manager": CSA_MANAGER, "operation": "Update", "apiVersion": "v1",
                   "fieldsV1": {"f:data": {"f:b": {}}, "f:metadata": {"f:labels": {"f:x": {}}}}}),
            json!({"manager": CSA_MANAGER, "operation": "Update", "apiVersion": "v1beta1",
                   "fieldsV1": {"f:data": {"f:c": {}}}}),
        ];
        let from = BTreeSet::from([CSA_MANAGER.to_owned()]);
        let out = take_over(&entries, &from, "kstep", &[]);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0]["fieldsV1"],
            json!({"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:x": {}}}})
        );
    }

    #[test]
    fn nothing_to_do_for_server_side_applied_objects() {
        let live = json!({"metadata": {"resourceVersion": "1", "managedFields": [
            {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "fieldsV1": {"f:data": {}}}
        ]}});
        assert!(!has_marks(&live));
        assert_eq!(plan(&live, "kubectl", false), Verdict::Nothing);
        assert_eq!(plan(&live, "kstep", false), Verdict::Nothing);
    }

    #[test]
    fn a_create_save_config_manager_owning_the_annotation_counts() {
        let live = json!({"metadata": {"resourceVersion": "1",
            "annotations": {LAST_APPLIED: "{}"},
            "managedFields": [{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1",
                "fieldsV1": {"f:metadata": {"f:annotations": {format!("f:{LAST_APPLIED}"): {}}}}}]}});
        assert!(has_marks(&live));
        let Verdict::Adopt(plan) = plan(&live, "kstep", false) else {
            panic!()
        };
        assert_eq!(plan.managers, vec!["kubectl-create".to_owned()]);
    }

    #[test]
    fn helm_objects_are_refused_unless_adopted() {
        let live = json!({"metadata": {"resourceVersion": "9",
            "labels": {MANAGED_BY: "Helm", "app": "web"},
            "annotations": {HELM_RELEASE_NAME: "web", HELM_RELEASE_NAMESPACE: "prod"},
            "managedFields": [{"manager": "helm", "operation": "Update", "apiVersion": "apps/v1",
                "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}, format!("f:{MANAGED_BY}"): {}}}}}]}});
        assert!(has_marks(&live));
        let release = HelmRelease {
            name: "web".into(),
            namespace: "prod".into(),
        };
        assert_eq!(
            plan(&live, "kstep", false),
            Verdict::RefuseHelm(release.clone())
        );
        let Verdict::Adopt(plan) = plan(&live, "kstep", true) else {
            panic!()
        };
        assert_eq!(plan.managers, vec!["helm".to_owned()]);
        assert_eq!(plan.helm, Some(release));
        let metadata = &plan.patch["metadata"];
        assert_eq!(
            metadata["managedFields"][0]["fieldsV1"],
            json!({"f:metadata": {"f:labels": {"f:app": {}}}})
        );
        assert_eq!(metadata["labels"], json!({MANAGED_BY: null}));
        assert_eq!(
            metadata["annotations"],
            json!({HELM_RELEASE_NAME: null, HELM_RELEASE_NAMESPACE: null})
        );
    }

    #[test]
    fn an_annotation_an_apply_manager_owns_is_left_alone() {
        let live = json!({"metadata": {"resourceVersion": "1",
            "annotations": {LAST_APPLIED: "{}"},
            "managedFields": [{"manager": "kubectl-last-applied", "operation": "Apply", "apiVersion": "v1",
                "fieldsV1": {"f:metadata": {"f:annotations": {format!("f:{LAST_APPLIED}"): {}}}}}]}});
        assert!(!has_marks(&live));
        assert_eq!(plan(&live, "kubectl", false), Verdict::Nothing);
    }

    #[test]
    fn only_the_label_says_helm() {
        let live = json!({"metadata": {"labels": {MANAGED_BY: "Helm"}}});
        assert_eq!(
            plan(&live, "kstep", false),
            Verdict::RefuseHelm(HelmRelease {
                name: "?".into(),
                namespace: "?".into()
            })
        );
        let other = json!({"metadata": {"labels": {MANAGED_BY: "kapp"}}});
        assert!(!has_marks(&other));
    }
}
