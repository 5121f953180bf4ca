//! Sweeping expired ApplySets (`kstep gc`): review apps whose stop job never ran (a deleted
//! branch, a failed pipeline) are found by the expiry an apply with `--expires-in` recorded on
//! their parent ([`applyset::EXPIRES_ANNOTATION`]), and torn down with
//! [`Session::teardown`], the engine `kstep delete` uses.
//!
//! Only parents kstep manages (tooling `kstep/…`, the id label of their own name), whose name
//! starts with the sweep's prefix, and which carry an expiry, are ever candidates: a set
//! deployed without `--expires-in` (production) is never swept, whatever its name.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};

use super::applyset::{
    self, ApplySet, EXPIRES_ANNOTATION, ID_LABEL, ParentKind, ParentRef, TOOLING_ANNOTATION,
};
use super::error::DeployError;
use super::session::Session;

/// Which parents a sweep looks at.
#[derive(Debug, Clone)]
pub struct Criteria {
    /// The namespace to look in; `None` for every namespace.
    pub namespace: Option<String>,
    /// Only sets whose name starts with this (`review-`).
    pub prefix: String,
    /// Only parents matching this label selector as well.
    pub selector: Option<String>,
}

/// A set a sweep found, with its expiry.
#[derive(Debug, Clone)]
pub struct Found {
    /// The set.
    pub set: ApplySet,
    /// When it expires (expired).
    pub expires_at: Timestamp,
}

/// What a sweep found among the sets it may touch.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Expired: to delete, oldest expiry first.
    pub expired: Vec<Found>,
    /// Not expired yet.
    pub alive: Vec<Found>,
    /// Sets that match but whose expiry cannot be read (named, left alone).
    pub unreadable: Vec<String>,
}

/// The expiry an apply with `--expires-in ttl` records: now plus `ttl`, in whole seconds, as
/// RFC 3339 UTC (`2026-12-14T07:00:00Z`).
pub fn expiry(ttl: Duration) -> String {
    let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    let at = Timestamp::now().as_second().saturating_add(ttl);
    // Beyond jiff's range (year 9999) is as good as never.
    Timestamp::from_second(at)
        .unwrap_or(Timestamp::MAX)
        .to_string()
}

/// How one parent's metadata classifies for a sweep.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Not a candidate: another tool's, not an ApplySet parent, another name, no expiry.
    Ignored,
    /// A candidate with its expiry.
    Expires(Timestamp),
    /// A candidate whose expiry annotation is not a timestamp.
    Unreadable(String),
}

/// Whether `meta`, the parent `parent` in `namespace`, is a set the sweep may touch, and when
/// it expires.
fn classify(meta: &ObjectMeta, parent: &ParentRef, namespace: &str, prefix: &str) -> Verdict {
    let annotations = meta.annotations.clone().unwrap_or_default();
    let ours = annotations
        .get(TOOLING_ANNOTATION)
        .is_some_and(|t| t.split('/').next() == Some(applyset::TOOLING));
    // The id label must be the one of this very parent: a copied label is not a set.
    let id = applyset::id(&parent.name, namespace, parent.kind.kind(), "");
    let is_parent = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(ID_LABEL))
        .is_some_and(|v| *v == id);
    if !ours || !is_parent || !parent.name.starts_with(prefix) {
        return Verdict::Ignored;
    }
    match annotations.get(EXPIRES_ANNOTATION) {
        None => Verdict::Ignored,
        Some(text) => text
            .parse::<Timestamp>()
            .map_or_else(|_| Verdict::Unreadable(text.clone()), Verdict::Expires),
    }
}

impl Session<'_> {
    /// Lists the ApplySet parents (Secrets and ConfigMaps with an id label) that `criteria`
    /// selects and sorts kstep's, with an expiry, into expired at `now` and not.
    ///
    /// # Errors
    /// A failed listing (a namespace-scoped identity cannot list every namespace).
    pub async fn sweep(&self, criteria: &Criteria, now: Timestamp) -> Result<Sweep, DeployError> {
        let selector = match &criteria.selector {
            Some(s) => format!("{ID_LABEL},{s}"),
            None => ID_LABEL.to_owned(),
        };
        let params = ListParams::default().labels(&selector);
        let mut parents: Vec<(ParentKind, ObjectMeta)> = Vec::new();
        let listed = async {
            let secrets: Api<Secret> = match &criteria.namespace {
                Some(ns) => Api::namespaced(self.client().clone(), ns),
                None => Api::all(self.client().clone()),
            };
            for s in secrets.list_metadata(&params).await?.items {
                parents.push((ParentKind::Secret, s.metadata));
            }
            let maps: Api<ConfigMap> = match &criteria.namespace {
                Some(ns) => Api::namespaced(self.client().clone(), ns),
                None => Api::all(self.client().clone()),
            };
            for m in maps.list_metadata(&params).await?.items {
                parents.push((ParentKind::ConfigMap, m.metadata));
            }
            Ok::<_, kube::Error>(())
        }
        .await;
        listed.map_err(|e| {
            let place = criteria
                .namespace
                .as_deref()
                .map_or("every namespace".to_owned(), |ns| format!("namespace {ns}"));
            DeployError::Runtime(crate::kube_client::explain(
                &e,
                self.connection(),
                &format!("listing ApplySet parents in {place}"),
            ))
        })?;
        let mut sweep = Sweep::default();
        for (kind, meta) in parents {
            let (Some(name), Some(namespace)) = (meta.name.clone(), meta.namespace.clone()) else {
                continue;
            };
            let parent = ParentRef { kind, name };
            match classify(&meta, &parent, &namespace, &criteria.prefix) {
                Verdict::Ignored => {}
                Verdict::Unreadable(text) => sweep.unreadable.push(format!(
                    "{parent} in namespace {namespace}: {EXPIRES_ANNOTATION} is `{text}`, not \
                     an RFC 3339 time"
                )),
                Verdict::Expires(expires_at) => {
                    let found = Found {
                        set: ApplySet::new(parent, &namespace),
                        expires_at,
                    };
                    if expires_at <= now {
                        sweep.expired.push(found);
                    } else {
                        sweep.alive.push(found);
                    }
                }
            }
        }
        sweep.expired.sort_by_key(|f| f.expires_at);
        sweep.alive.sort_by_key(|f| f.expires_at);
        Ok(sweep)
    }

    /// Whether `found` is still expired at `now`: read again just before its teardown, so that
    /// a review app deployed again since the listing (a push, renewing its expiry) is kept.
    ///
    /// # Errors
    /// A failed request.
    pub async fn still_expired(&self, found: &Found, now: Timestamp) -> Result<bool, DeployError> {
        let set = &found.set;
        let name = &set.parent.name;
        let meta = match set.parent.kind {
            ParentKind::Secret => Api::<Secret>::namespaced(self.client().clone(), &set.namespace)
                .get_metadata_opt(name)
                .await
                .map(|m| m.map(|m| m.metadata)),
            ParentKind::ConfigMap => {
                Api::<ConfigMap>::namespaced(self.client().clone(), &set.namespace)
                    .get_metadata_opt(name)
                    .await
                    .map(|m| m.map(|m| m.metadata))
            }
        }
        .map_err(|e| {
            DeployError::Runtime(crate::kube_client::explain(
                &e,
                self.connection(),
                &format!(
                    "reading ApplySet {} in namespace {}",
                    set.parent, set.namespace
                ),
            ))
        })?;
        // Gone since the listing counts as expired: the teardown then finds nothing to do.
        Ok(meta.is_none_or(|m| {
            matches!(
                classify(&m, &set.parent, &set.namespace, ""),
                Verdict::Expires(at) if at <= now
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::BTreeMap;

    use super::*;

    fn meta(name: &str, id_of: &str, tooling: &str, expires: Option<&str>) -> ObjectMeta {
        let mut annotations = BTreeMap::new();
        annotations.insert(TOOLING_ANNOTATION.to_owned(), tooling.to_owned());
        if let Some(at) = expires {
            annotations.insert(EXPIRES_ANNOTATION.to_owned(), at.to_owned());
        }
        let mut labels = BTreeMap::new();
        labels.insert(ID_LABEL.to_owned(), applyset::id(id_of, "ns", "Secret", ""));
        ObjectMeta {
            name: Some(name.to_owned()),
            annotations: Some(annotations),
            labels: Some(labels),
            ..ObjectMeta::default()
        }
    }

    fn verdict(meta: &ObjectMeta, prefix: &str) -> Verdict {
        let parent: ParentRef = meta.name.as_deref().unwrap().parse().unwrap();
        classify(meta, &parent, "ns", prefix)
    }

    #[test]
    fn only_kstep_sets_with_the_prefix_and_an_expiry_are_candidates() {
        let at = "2026-12-07T07:00:00Z";
        let expected = Verdict::Expires(at.parse().unwrap());
        let review = meta("review-a", "review-a", "kstep/v0.1.0", Some(at));
        assert_eq!(verdict(&review, "review-"), expected);
        assert_eq!(verdict(&review, ""), expected);
        assert_eq!(verdict(&review, "prod"), Verdict::Ignored);
        // kubectl's set, a set without expiry, a copied id label: never.
        let kubectl = meta("review-b", "review-b", "kubectl/v1.36", Some(at));
        assert_eq!(verdict(&kubectl, "review-"), Verdict::Ignored);
        let production = meta("review-c", "review-c", "kstep/v0.1.0", None);
        assert_eq!(verdict(&production, "review-"), Verdict::Ignored);
        let copied = meta("review-d", "review-a", "kstep/v0.1.0", Some(at));
        assert_eq!(verdict(&copied, "review-"), Verdict::Ignored);
        let bad = meta("review-e", "review-e", "kstep/v0.1.0", Some("next week"));
        assert_eq!(
            verdict(&bad, "review-"),
            Verdict::Unreadable("next week".into())
        );
    }

    #[test]
    fn expiry_is_now_plus_the_ttl_in_whole_seconds() {
        let before = Timestamp::now().as_second();
        let at: Timestamp = expiry(Duration::from_secs(3600)).parse().unwrap();
        assert!((before + 3600..=before + 3602).contains(&at.as_second()));
        assert_eq!(at.subsec_nanosecond(), 0);
        assert!(expiry(Duration::from_secs(3600)).ends_with('Z'));
        // Far beyond the calendar: the latest time there is, not an error.
        let never: Timestamp = expiry(Duration::MAX).parse().unwrap();
        assert!(never > "9999-01-01T00:00:00Z".parse().unwrap());
    }
}
