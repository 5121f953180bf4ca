//! Whether a server-side apply would change nothing, decided from the live object alone.
//!
//! Server-side apply merges the applied configuration into the live object and removes the
//! fields the manager owned before but no longer applies. So when
//!
//! 1. the manager's one `Apply` entry in `managedFields` (for the same apiVersion) owns exactly
//!    the fields of the configuration — not one more (it would be removed), not one less (another
//!    writer took it: an `Update` that changes a value moves its ownership), and
//! 2. the live value of every one of those fields equals the configuration's,
//!
//! the apply is a no-op, and the server would answer with the live object unchanged. Checking
//! that costs one read instead of a dry run (the server validates every apply, a no-op
//! included, and a large CRD takes it as long as a real apply). The check needs no schema:
//! associative lists are matched through the keys recorded in `managedFields` (`k:{…}`), sets
//! through their values (`v:…`). Anything it cannot prove — a quantity the server normalised
//! (`0.5` vs `500m`), a defaulted field inside an atomic struct, a `null`, another entry of the
//! same manager — answers "not in sync", which only means the object takes the ordinary path
//! (dry run, then apply when it differs). One rule is Kubernetes' own: a Secret's `stringData`
//! is compared with the `data` the server made of it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

/// Whether applying `sent` (the whole object as it would be sent) with field manager
/// `manager` would leave `live` (the object as read from the server) unchanged.
pub fn in_sync(sent: &Value, live: &Value, manager: &str) -> bool {
    if live.pointer("/metadata/deletionTimestamp").is_some() {
        return false;
    }
    let Some(config) = configuration(sent) else {
        return false;
    };
    let Some(fields) = apply_entry(sent, live, manager) else {
        // Nothing to apply (a ServiceAccount with only a name) and nothing owned: the server
        // keeps no entry for an empty field set.
        return config.is_empty() && !has_entry(live, manager);
    };
    match secret_string_data(sent, live) {
        Some(live) => map_matches(fields, &config, &live),
        None => map_matches(fields, &config, live),
    }
}

/// A Secret's `stringData` is write-only: the server moves it into `data`, base64-encoded,
/// while the applier keeps owning `stringData`. Returns `live` with the `stringData` the
/// applied keys read as, for the comparison; `None` when `sent` has none.
fn secret_string_data(sent: &Value, live: &Value) -> Option<Value> {
    let is_secret = sent.get("apiVersion").and_then(Value::as_str) == Some("v1")
        && sent.get("kind").and_then(Value::as_str) == Some("Secret");
    let keys = sent.get("stringData").and_then(Value::as_object)?;
    if !is_secret {
        return None;
    }
    let data = live.get("data").and_then(Value::as_object);
    let decoded: Map<String, Value> = keys
        .keys()
        .filter_map(|key| {
            let encoded = data?.get(key)?.as_str()?;
            let bytes = STANDARD.decode(encoded).ok()?;
            Some((key.clone(), Value::String(String::from_utf8(bytes).ok()?)))
        })
        .collect();
    let mut live = live.clone();
    live.as_object_mut()?
        .insert("stringData".to_owned(), Value::Object(decoded));
    Some(live)
}

fn has_entry(live: &Value, manager: &str) -> bool {
    live.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|entries| {
            entries
                .iter()
                .any(|e| e.get("manager").and_then(Value::as_str) == Some(manager))
        })
}

/// The `fieldsV1` of `manager`'s only entry, when it is an `Apply` of `sent`'s apiVersion on the
/// main resource.
fn apply_entry<'a>(sent: &Value, live: &'a Value, manager: &str) -> Option<&'a Map<String, Value>> {
    let entries = live.pointer("/metadata/managedFields")?.as_array()?;
    let mut own = entries
        .iter()
        .filter(|e| e.get("manager").and_then(Value::as_str) == Some(manager));
    let entry = own.next()?;
    if own.next().is_some() {
        return None;
    }
    let is = |key: &str, want: Option<&str>| entry.get(key).and_then(Value::as_str) == want;
    let main_resource = entry
        .get("subresource")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    (is("operation", Some("Apply"))
        && is("fieldsType", Some("FieldsV1"))
        && is("apiVersion", sent.get("apiVersion").and_then(Value::as_str))
        && main_resource)
        .then(|| entry.get("fieldsV1").and_then(Value::as_object))
        .flatten()
}

/// `sent` without what server-side apply does not track: the identity (apiVersion, kind,
/// name, namespace). `None` when it holds something apply treats specially (`null` removes a
/// field; `generateName` creates a new object).
fn configuration(sent: &Value) -> Option<Map<String, Value>> {
    let mut config = sent.as_object()?.clone();
    config.remove("apiVersion");
    config.remove("kind");
    if let Some(metadata) = config.get_mut("metadata").and_then(Value::as_object_mut) {
        if metadata.contains_key("generateName") {
            return None;
        }
        metadata.remove("name");
        metadata.remove("namespace");
        if metadata.is_empty() {
            config.remove("metadata");
        }
    }
    (!contains_null(sent)).then_some(config)
}

fn contains_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.iter().any(contains_null),
        Value::Object(map) => map.values().any(contains_null),
        _ => false,
    }
}

/// The children of a `fieldsV1` node, without `.` (the node itself is owned).
fn children(node: &Map<String, Value>) -> impl Iterator<Item = (&str, &Value)> {
    node.iter()
        .filter(|(k, _)| k.as_str() != ".")
        .map(|(k, v)| (k.as_str(), v))
}

/// A map node: its `f:` children are exactly `config`'s keys, each matching.
fn map_matches(node: &Map<String, Value>, config: &Map<String, Value>, live: &Value) -> bool {
    let mut owned = 0;
    for (key, child) in children(node) {
        owned += 1;
        let Some(name) = key.strip_prefix("f:") else {
            return false;
        };
        let Some(value) = config.get(name) else {
            // Owned but no longer applied: the apply would remove it.
            return false;
        };
        if !node_matches(child, value, live.get(name)) {
            return false;
        }
    }
    owned == config.len()
}

/// One owned field: `config` is what would be applied there, `live` what is there.
fn node_matches(node: &Value, config: &Value, live: Option<&Value>) -> bool {
    let (Some(node), Some(live)) = (node.as_object(), live) else {
        return false;
    };
    match children(node).next().map(|(k, _)| k.split_once(':')) {
        // Owned as a whole (a scalar, an atomic list or struct, an empty map).
        None => config == live,
        Some(Some(("f", _))) => match (config.as_object(), live.is_object()) {
            (Some(config), true) => map_matches(node, config, live),
            _ => false,
        },
        Some(Some(("k" | "v" | "i", _))) => match (config.as_array(), live.as_array()) {
            (Some(config), Some(live)) => list_matches(node, config, live),
            _ => false,
        },
        Some(_) => false,
    }
}

/// A granular list: each owned item matches exactly one item of `config` and of `live`, and
/// every item of `config` is owned.
fn list_matches(node: &Map<String, Value>, config: &[Value], live: &[Value]) -> bool {
    let mut used = vec![false; config.len()];
    for (key, child) in children(node) {
        let Some((kind, id)) = key.split_once(':') else {
            return false;
        };
        let found = match kind {
            "k" => keyed(id, config, live),
            "v" => serde_json::from_str::<Value>(id).ok().and_then(|v| {
                let at = unique(config, |item| *item == v)?;
                live.contains(&v).then_some((at, &config[at]))
            }),
            "i" => id.parse::<usize>().ok().and_then(|at| {
                let live = live.get(at)?;
                config.get(at).map(|_| (at, live))
            }),
            _ => None,
        };
        let Some((at, live_item)) = found else {
            return false;
        };
        if std::mem::replace(&mut used[at], true) {
            return false;
        }
        let owned_as_whole = kind == "v";
        if !owned_as_whole && !node_matches(child, &config[at], Some(live_item)) {
            return false;
        }
    }
    used.iter().all(|u| *u)
}

/// The item of an associative list whose key fields are `id` (`{"name":"app"}`): its index in
/// `config` — where a key field may be missing because the server defaults it (a port's
/// `protocol`) — and the live item, which has them all.
fn keyed<'a>(id: &str, config: &[Value], live: &'a [Value]) -> Option<(usize, &'a Value)> {
    let keys: Map<String, Value> = serde_json::from_str(id).ok()?;
    let at = unique(config, |item| {
        keys.iter()
            .all(|(k, v)| item.get(k).is_none_or(|have| have == v))
            && keys.keys().any(|k| item.get(k).is_some())
    })?;
    let live_at = unique(live, |item| {
        keys.iter().all(|(k, v)| item.get(k) == Some(v))
    })?;
    Some((at, &live[live_at]))
}

/// The index of the only item satisfying `pred`.
fn unique(items: &[Value], pred: impl Fn(&Value) -> bool) -> Option<usize> {
    let mut found = items.iter().enumerate().filter(|(_, item)| pred(item));
    let (at, _) = found.next()?;
    found.next().is_none().then_some(at)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use serde_json::json;

    use super::*;

    /// A Deployment as applied, and as the API server returns it: defaults filled in, the
    /// controller's status, kstep's managedFields entry as the server records it.
    fn deployment() -> (Value, Value) {
        let sent = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "app", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "web", "image": "nginx:1.27",
                        "ports": [{"containerPort": 8080}],
                        "args": ["--port", "8080"],
                        "env": [{"name": "A", "value": "1"}]
                    }]}
                }
            }
        });
        let live = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "web", "namespace": "app", "uid": "u", "resourceVersion": "7",
                "generation": 1, "labels": {"app": "web"},
                "annotations": {"deployment.kubernetes.io/revision": "1"},
                "managedFields": [
                    {"manager": "kstep", "operation": "Apply", "apiVersion": "apps/v1",
                     "time": "2026-12-07T07:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {
                            "f:replicas": {},
                            "f:selector": {},
                            "f:template": {
                                "f:metadata": {"f:labels": {"f:app": {}}},
                                "f:spec": {"f:containers": {
                                    "k:{\"name\":\"web\"}": {
                                        ".": {}, "f:name": {}, "f:image": {}, "f:args": {},
                                        "f:env": {"k:{\"name\":\"A\"}": {
                                            ".": {}, "f:name": {}, "f:value": {}}},
                                        "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {
                                            ".": {}, "f:containerPort": {}}}
                                    }
                                }}
                            }
                        }
                    }},
                    {"manager": "kube-controller-manager", "operation": "Update",
                     "apiVersion": "apps/v1", "subresource": "status", "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:status": {"f:replicas": {}}}}
                ]
            },
            "spec": {
                "replicas": 2, "revisionHistoryLimit": 10,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "web", "image": "nginx:1.27",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "args": ["--port", "8080"],
                        "env": [{"name": "A", "value": "1"}],
                        "imagePullPolicy": "IfNotPresent"
                    }], "restartPolicy": "Always"}
                }
            },
            "status": {"replicas": 2}
        });
        (sent, live)
    }

    #[test]
    fn an_object_as_last_applied_is_in_sync() {
        let (sent, live) = deployment();
        assert!(in_sync(&sent, &live, "kstep"));
    }

    #[test]
    fn another_manager_is_not_this_one() {
        let (sent, live) = deployment();
        assert!(!in_sync(&sent, &live, "kubectl"));
    }

    #[test]
    fn a_changed_value_is_not_in_sync() {
        let (mut sent, live) = deployment();
        sent["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
        assert!(!in_sync(&sent, &live, "kstep"));
        let (mut sent, live) = deployment();
        sent["spec"]["template"]["spec"]["containers"][0]["args"][1] = json!("9090");
        assert!(!in_sync(&sent, &live, "kstep"), "atomic list");
    }

    #[test]
    fn a_value_changed_in_the_cluster_is_not_in_sync() {
        // An `Update` that changed a value kstep owns would also have moved its ownership; the
        // value check alone must catch it too.
        let (sent, mut live) = deployment();
        live["spec"]["replicas"] = json!(5);
        assert!(!in_sync(&sent, &live, "kstep"));
    }

    #[test]
    fn a_field_kstep_no_longer_sends_would_be_removed() {
        let (mut sent, live) = deployment();
        sent["metadata"]["labels"]
            .as_object_mut()
            .map(|l| l.remove("app"));
        assert!(!in_sync(&sent, &live, "kstep"));
        let (mut sent, live) = deployment();
        sent["spec"]["template"]["spec"]["containers"][0]["env"] = json!([]);
        assert!(!in_sync(&sent, &live, "kstep"), "a list item dropped");
    }

    #[test]
    fn a_field_kstep_does_not_own_is_not_in_sync() {
        let (mut sent, live) = deployment();
        sent["spec"]["revisionHistoryLimit"] = json!(10);
        assert!(
            !in_sync(&sent, &live, "kstep"),
            "same value, owned by no one"
        );
        let (mut sent, live) = deployment();
        sent["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .expect("env is a list")
            .push(json!({"name": "B", "value": "2"}));
        assert!(!in_sync(&sent, &live, "kstep"), "a new list item");
    }

    #[test]
    fn ownership_lost_to_another_writer_is_not_in_sync() {
        let (sent, mut live) = deployment();
        let fields = &mut live["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"];
        fields.as_object_mut().map(|f| f.remove("f:replicas"));
        assert!(!in_sync(&sent, &live, "kstep"));
    }

    #[test]
    fn what_the_entry_is_matters() {
        let (sent, live) = deployment();
        let mut other_version = live.clone();
        other_version["metadata"]["managedFields"][0]["apiVersion"] = json!("apps/v1beta2");
        assert!(!in_sync(&sent, &other_version, "kstep"));
        let mut update = live.clone();
        update["metadata"]["managedFields"][0]["operation"] = json!("Update");
        assert!(!in_sync(&sent, &update, "kstep"));
        let mut twice = live.clone();
        let entry = twice["metadata"]["managedFields"][0].clone();
        twice["metadata"]["managedFields"]
            .as_array_mut()
            .expect("managedFields is a list")
            .push(entry);
        assert!(!in_sync(&sent, &twice, "kstep"));
        let mut deleting = live;
        deleting["metadata"]["deletionTimestamp"] = json!("2026-12-07T07:01:00Z");
        assert!(!in_sync(&sent, &deleting, "kstep"));
    }

    #[test]
    fn what_apply_treats_specially_is_never_in_sync() {
        let (mut sent, live) = deployment();
        sent["spec"]["paused"] = Value::Null;
        assert!(!in_sync(&sent, &live, "kstep"));
    }

    #[test]
    fn a_normalised_quantity_is_not_proven() {
        let sent = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c"}, "data": {"cpu": 0.5}});
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "managedFields": [{"manager": "kstep",
                "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {"f:cpu": {}}}}]},
            "data": {"cpu": "500m"}});
        assert!(!in_sync(&sent, &live, "kstep"));
    }

    #[test]
    fn a_secret_s_string_data_is_compared_with_its_data() {
        let sent = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "s"}, "stringData": {"password": "hunter2"}});
        let live = |encoded: &str| {
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "s", "managedFields": [{"manager": "kstep",
                "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:stringData": {"f:password": {}}, "f:type": {}}}]},
            "data": {"password": encoded}})
        };
        assert!(in_sync(&sent, &live("aHVudGVyMg=="), "kstep"));
        assert!(
            !in_sync(&sent, &live("aHVudGVyMw=="), "kstep"),
            "changed in the cluster"
        );
        assert!(!in_sync(&sent, &live("%%%"), "kstep"), "not base64");
    }

    #[test]
    fn nothing_applied_and_nothing_owned() {
        let sent = json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "a", "namespace": "n"}});
        let mut live = json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "a", "namespace": "n", "uid": "u"}});
        assert!(in_sync(&sent, &live, "kstep"));
        live["metadata"]["managedFields"] = json!([{"manager": "kstep", "operation": "Apply",
            "apiVersion": "v1", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}}]);
        live["metadata"]["labels"] = json!({"app": "a"});
        assert!(
            !in_sync(&sent, &live, "kstep"),
            "the apply would remove the label"
        );
    }

    #[test]
    fn sets_and_ambiguous_keys() {
        let sent = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "n", "finalizers": ["a/b", "c/d"]}});
        let live = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "n", "finalizers": ["c/d", "a/b", "e/f"],
                "managedFields": [{"manager": "kstep", "operation": "Apply",
                "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {
                    "f:metadata": {"f:finalizers": {"v:\"a/b\"": {}, "v:\"c/d\"": {}}}}}]}});
        assert!(in_sync(&sent, &live, "kstep"));
        let mut fewer = sent.clone();
        fewer["metadata"]["finalizers"] = json!(["a/b"]);
        assert!(!in_sync(&fewer, &live, "kstep"));

        // Two configured items match the same key (one with a defaulted field): not proven.
        let (mut sent, live) = deployment();
        sent["spec"]["template"]["spec"]["containers"][0]["ports"] =
            json!([{"containerPort": 8080}, {"containerPort": 8080, "protocol": "TCP"}]);
        assert!(!in_sync(&sent, &live, "kstep"));
    }
}
