//! The history of an ApplySet: every apply to a set (not a dry run) records a numbered
//! revision — the objects it applied, gzip-compressed, in a Secret the parent owns (Secret
//! manifests' values among them, so never in a ConfigMap), with what `kstep history` shows
//! (CI commit, pipeline, job, images, result) in an annotation, readable without the data.
//! Deleting the parent deletes its revisions (garbage collection of owned objects).

use std::io::{Read as _, Write as _};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::applyset::ApplySet;
use super::objects::Object;

/// The revisions' label naming their set's id.
pub const REVISION_OF_LABEL: &str = "kstep.dev/revision-of";
/// The revisions' label holding their number.
pub const REVISION_LABEL: &str = "kstep.dev/revision";
/// The revisions' annotation holding their [`Info`] as JSON.
pub const INFO_ANNOTATION: &str = "kstep.dev/revision-info";
/// The Secret type of a revision.
pub const SECRET_TYPE: &str = "kstep.dev/revision";
/// How many revisions a set keeps by default (`--history-limit`).
pub const DEFAULT_HISTORY_LIMIT: usize = 10;
/// The data key of the compressed objects.
const OBJECTS_KEY: &str = "objects.json.gz";
/// The most compressed object data a revision keeps: a Secret holds at most 1 MiB in all.
/// A larger revision is recorded without its objects (and cannot be rolled back to).
const MAX_STORED_BYTES: usize = 900 << 10;
/// A revision larger than this once decompressed is refused (a Secret holds at most 1 MiB
/// compressed; this bounds what a tampered one can make kstep allocate).
const MAX_OBJECTS_BYTES: u64 = 256 << 20;

/// How a revision's apply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Applied, and (when waited for) rolled out.
    Succeeded,
    /// Applied, and the rollout failed or timed out.
    Failed,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
        })
    }
}

/// What a revision records about itself (no object content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// Its number, from 1.
    pub revision: u32,
    /// How the apply ended.
    pub result: Status,
    /// `$CI_COMMIT_SHA`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// `$CI_PIPELINE_ID`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// `$CI_JOB_ID`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The container images of the applied workloads.
    #[serde(default)]
    pub images: Vec<String>,
    /// The revision this one restored, for a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u32>,
    /// Its objects were too large to keep (over 900 KiB compressed): no rollback to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub objects_dropped: bool,
    /// When it was recorded (the Secret's creation time; not stored in the annotation).
    #[serde(skip)]
    pub time: Option<String>,
}

impl Info {
    /// Revision `revision` with `result`, the images of `objects`, and the job's CI facts.
    pub fn new(
        revision: u32,
        result: Status,
        objects: &[Object],
        rollback_of: Option<u32>,
    ) -> Self {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            revision,
            result,
            commit: env("CI_COMMIT_SHA"),
            pipeline: env("CI_PIPELINE_ID"),
            job: env("CI_JOB_ID"),
            images: images(objects.iter().map(|o| &o.value)),
            rollback_of,
            objects_dropped: false,
            time: None,
        }
    }
}

/// Why the history cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    /// A request failed.
    #[error(transparent)]
    Api(#[from] kube::Error),
    /// No such revision.
    #[error("ApplySet {set} has no revision {revision} (`kstep history` lists them)")]
    NotFound {
        /// The set.
        set: String,
        /// The revision asked for.
        revision: u32,
    },
    /// The revision was too large to keep its objects.
    #[error(
        "revision {revision} of ApplySet {set} was too large to keep its objects (over 900 KiB \
         compressed): it cannot be rolled back to"
    )]
    Dropped {
        /// The set.
        set: String,
        /// The revision.
        revision: u32,
    },
    /// A revision that kstep cannot read back (written by another version, or altered).
    #[error("revision {revision} of ApplySet {set} cannot be read: {why}")]
    Corrupt {
        /// The set.
        set: String,
        /// The revision.
        revision: u32,
        /// What is wrong.
        why: String,
    },
}

/// The container images of pod templates (and Pods) among `objects`, sorted, once each.
pub fn images<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    let mut images = Vec::new();
    for object in objects {
        let spec = object
            .pointer("/spec/template/spec")
            .or_else(|| object.pointer("/spec/jobTemplate/spec/template/spec"))
            .or_else(|| {
                (object.get("kind").and_then(Value::as_str) == Some("Pod"))
                    .then(|| object.get("spec"))
                    .flatten()
            });
        let Some(spec) = spec else { continue };
        for list in ["initContainers", "containers"] {
            for container in spec
                .get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(image) = container.get("image").and_then(Value::as_str) {
                    images.push(image.to_owned());
                }
            }
        }
    }
    images.sort();
    images.dedup();
    images
}

/// gzip of the JSON array of `objects`.
fn compress(objects: &[&Value]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    serde_json::to_writer(&mut encoder, objects)?;
    encoder.flush()?;
    encoder.finish()
}

/// The objects of a compressed revision, bounded.
fn decompress(bytes: &[u8]) -> Result<Vec<Value>, String> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_OBJECTS_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(|e| format!("not gzip: {e}"))?;
    if json.len() as u64 > MAX_OBJECTS_BYTES {
        return Err(format!(
            "larger than {} MiB once decompressed",
            MAX_OBJECTS_BYTES >> 20
        ));
    }
    serde_json::from_slice(&json).map_err(|e| format!("not a JSON list of objects: {e}"))
}

/// The history of one set.
pub struct History<'a> {
    set: &'a ApplySet,
    api: Api<Secret>,
}

impl<'a> History<'a> {
    /// The history of `set`.
    pub fn new(client: &Client, set: &'a ApplySet) -> Self {
        Self {
            set,
            api: Api::namespaced(client.clone(), &set.namespace),
        }
    }

    fn secret_name(&self, revision: u32) -> String {
        format!("{}.kstep.r{revision}", self.set.parent.name)
    }

    /// Every revision, oldest first (read from the annotations: no object is transferred).
    ///
    /// # Errors
    /// A failed request.
    pub async fn list(&self) -> Result<Vec<Info>, RevisionError> {
        let selector =
            ListParams::default().labels(&format!("{REVISION_OF_LABEL}={}", self.set.id));
        let list = self.api.list_metadata(&selector).await?;
        let mut infos: Vec<Info> = list
            .items
            .into_iter()
            .filter_map(|item| {
                let meta = item.metadata;
                let mut info: Info =
                    serde_json::from_str(meta.annotations?.get(INFO_ANNOTATION)?).ok()?;
                info.time = meta.creation_timestamp.map(|t| t.0.to_string());
                Some(info)
            })
            .collect();
        infos.sort_by_key(|i| i.revision);
        Ok(infos)
    }

    /// Records `info` with `objects`, owned by the parent (uid `parent_uid`), then deletes the
    /// oldest revisions beyond `limit`.
    ///
    /// # Errors
    /// A failed request.
    pub async fn record(
        &self,
        parent_uid: &str,
        mut info: Info,
        objects: &[Object],
        limit: usize,
    ) -> Result<Info, RevisionError> {
        let values: Vec<&Value> = objects.iter().map(|o| &o.value).collect();
        let mut data = compress(&values).map_err(|e| RevisionError::Corrupt {
            set: self.set.parent.to_string(),
            revision: info.revision,
            why: e.to_string(),
        })?;
        if data.len() > MAX_STORED_BYTES {
            data.clear();
            info.objects_dropped = true;
        }
        let annotation = serde_json::to_string(&info).map_err(|e| RevisionError::Corrupt {
            set: self.set.parent.to_string(),
            revision: info.revision,
            why: e.to_string(),
        })?;
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(self.secret_name(info.revision)),
                namespace: Some(self.set.namespace.clone()),
                labels: Some(
                    [
                        (REVISION_OF_LABEL.to_owned(), self.set.id.clone()),
                        (REVISION_LABEL.to_owned(), info.revision.to_string()),
                    ]
                    .into(),
                ),
                annotations: Some([(INFO_ANNOTATION.to_owned(), annotation)].into()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: self.set.parent.kind.kind().into(),
                    name: self.set.parent.name.clone(),
                    uid: parent_uid.to_owned(),
                    ..OwnerReference::default()
                }]),
                ..ObjectMeta::default()
            },
            type_: Some(SECRET_TYPE.into()),
            data: Some([(OBJECTS_KEY.to_owned(), k8s_openapi::ByteString(data))].into()),
            ..Secret::default()
        };
        self.api.create(&PostParams::default(), &secret).await?;
        let all = self.list().await?;
        let excess = all.len().saturating_sub(limit.max(1));
        for old in &all[..excess] {
            match self
                .api
                .delete(&self.secret_name(old.revision), &DeleteParams::default())
                .await
            {
                Ok(_) | Err(kube::Error::Api(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(info)
    }

    /// The objects revision `revision` applied, and its info.
    ///
    /// # Errors
    /// No such revision, an unreadable one, a failed request.
    pub async fn load(&self, revision: u32) -> Result<(Info, Vec<Value>), RevisionError> {
        let corrupt = |why: String| RevisionError::Corrupt {
            set: self.set.parent.to_string(),
            revision,
            why,
        };
        let Some(secret) = self.api.get_opt(&self.secret_name(revision)).await? else {
            return Err(RevisionError::NotFound {
                set: self.set.parent.to_string(),
                revision,
            });
        };
        let labels = secret.metadata.labels.unwrap_or_default();
        if labels.get(REVISION_OF_LABEL) != Some(&self.set.id) {
            return Err(corrupt("it does not belong to this set".into()));
        }
        let info: Info = secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(INFO_ANNOTATION))
            .and_then(|a| serde_json::from_str(a).ok())
            .ok_or_else(|| corrupt(format!("no valid {INFO_ANNOTATION} annotation")))?;
        if info.objects_dropped {
            return Err(RevisionError::Dropped {
                set: self.set.parent.to_string(),
                revision,
            });
        }
        let data = secret
            .data
            .as_ref()
            .and_then(|d| d.get(OBJECTS_KEY))
            .ok_or_else(|| corrupt(format!("no {OBJECTS_KEY}")))?;
        let objects = decompress(&data.0).map_err(corrupt)?;
        Ok((info, objects))
    }
}

/// The number the next revision gets.
pub fn next(history: &[Info]) -> u32 {
    history.iter().map(|i| i.revision).max().unwrap_or(0) + 1
}

/// The newest revision that succeeded, before `before` when given.
pub fn last_good(history: &[Info], before: Option<u32>) -> Option<&Info> {
    history
        .iter()
        .filter(|i| {
            i.result == Status::Succeeded
                && !i.objects_dropped
                && before.is_none_or(|b| i.revision < b)
        })
        .max_by_key(|i| i.revision)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn info(revision: u32, result: Status) -> Info {
        Info {
            revision,
            result,
            commit: None,
            pipeline: None,
            job: None,
            images: Vec::new(),
            rollback_of: None,
            objects_dropped: false,
            time: None,
        }
    }

    #[test]
    fn numbering_and_last_good() {
        let history = [
            info(1, Status::Succeeded),
            info(2, Status::Succeeded),
            info(3, Status::Failed),
        ];
        assert_eq!(next(&history), 4);
        assert_eq!(next(&[]), 1);
        assert_eq!(last_good(&history, None).map(|i| i.revision), Some(2));
        assert_eq!(last_good(&history, Some(2)).map(|i| i.revision), Some(1));
        assert_eq!(last_good(&history, Some(1)), None);
        let mut dropped = info(4, Status::Succeeded);
        dropped.objects_dropped = true;
        let history = [info(1, Status::Succeeded), dropped];
        assert_eq!(last_good(&history, None).map(|i| i.revision), Some(1));
    }

    #[test]
    fn images_of_workloads() {
        let objects = [
            json!({"kind": "Deployment", "spec": {"template": {"spec": {
                "initContainers": [{"image": "init:1"}],
                "containers": [{"image": "web:2"}, {"image": "sidecar:1"}]}}}}),
            json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"image": "web:2"}]}}}}}}),
            json!({"kind": "Pod", "spec": {"containers": [{"image": "debug:1"}]}}),
            json!({"kind": "ConfigMap", "data": {"image": "not-an-image"}}),
        ];
        assert_eq!(
            images(objects.iter()),
            ["debug:1", "init:1", "sidecar:1", "web:2"]
        );
    }

    #[test]
    fn objects_round_trip_and_bombs_are_refused() {
        let objects = [json!({"kind": "ConfigMap", "data": {"a": "b"}})];
        let refs: Vec<&Value> = objects.iter().collect();
        let bytes = compress(&refs).unwrap();
        assert_eq!(decompress(&bytes).unwrap(), objects);
        assert!(decompress(b"not gzip").is_err());
    }

    #[test]
    fn info_annotation_has_no_time_and_reads_back() {
        let mut i = info(7, Status::Failed);
        i.rollback_of = Some(5);
        i.time = Some("2026-12-07T00:00:00Z".into());
        let text = serde_json::to_string(&i).unwrap();
        assert!(!text.contains("2026"));
        let back: Info = serde_json::from_str(&text).unwrap();
        assert_eq!(back.rollback_of, Some(5));
        assert_eq!(back.result, Status::Failed);
    }
}
