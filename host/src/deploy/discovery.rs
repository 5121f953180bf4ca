//! apiVersion + kind → the REST resource and its scope, from the server's discovery documents.
//!
//! One request per group-version actually used (`/api/v1`, `/apis/apps/v1`…), made
//! concurrently and cached for the run: a typical deploy touches four or five group-versions, so
//! this is cheaper than the full discovery walk and as cheap as aggregated discovery without its
//! multi-megabyte answer. Group-versions defined by CRDs of the same run are looked up again once
//! the CRDs are established ([`Resolver::refresh`]).

use std::collections::HashMap;

use futures::stream::{self, StreamExt as _};
use kube::Client;
use kube::core::GroupVersion;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};

use super::api_error;

/// What discovery says about a group/version/kind.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Served: the resource to talk to, and its scope.
    Found(ApiResource, Scope),
    /// The group-version is served, but has no such kind.
    UnknownKind,
    /// The group-version is not served at all.
    UnservedVersion,
}

/// Discovery results for the run.
pub struct Resolver {
    client: Client,
    concurrency: usize,
    /// apiVersion → its resources, or `None` when the server does not serve it.
    cache: HashMap<String, Option<Vec<(ApiResource, ApiCapabilities)>>>,
}

impl Resolver {
    /// An empty cache.
    pub fn new(client: Client, concurrency: usize) -> Self {
        Self {
            client,
            concurrency: concurrency.max(1),
            cache: HashMap::new(),
        }
    }

    /// Looks up every group-version in `versions` that is not cached yet, concurrently.
    ///
    /// # Errors
    /// Anything but "not served" (404): the server is unreachable or refuses the credentials.
    pub async fn prefetch<I>(&mut self, versions: I) -> Result<(), kube::Error>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut wanted: Vec<(String, String)> = versions
            .into_iter()
            .filter(|(g, v)| !self.cache.contains_key(&api_version(g, v)))
            .collect();
        wanted.sort();
        wanted.dedup();
        self.fetch(wanted).await
    }

    /// Looks `group`/`version` up again (after a CRD that defines it was established).
    ///
    /// # Errors
    /// As [`Resolver::prefetch`].
    pub async fn refresh(&mut self, group: &str, version: &str) -> Result<(), kube::Error> {
        self.fetch(vec![(group.to_owned(), version.to_owned())])
            .await
    }

    async fn fetch(&mut self, wanted: Vec<(String, String)>) -> Result<(), kube::Error> {
        let client = &self.client;
        let results: Vec<_> = stream::iter(wanted)
            .map(|(group, version)| async move {
                let gv = GroupVersion::gv(&group, &version);
                let result = kube::discovery::pinned_group(client, &gv).await;
                (api_version(&group, &version), result)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        for (key, result) in results {
            match result {
                Ok(group) => {
                    let version = key.rsplit('/').next().unwrap_or(&key).to_owned();
                    self.cache
                        .insert(key, Some(group.versioned_resources(&version)));
                }
                Err(e) if api_error::code(&e) == Some(404) => {
                    self.cache.insert(key, None);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// What the cache says about `group`/`version`/`kind` (call [`Resolver::prefetch`] first;
    /// an uncached group-version reads as not served).
    pub fn lookup(&self, group: &str, version: &str, kind: &str) -> Lookup {
        match self.cache.get(&api_version(group, version)) {
            Some(Some(resources)) => resources
                .iter()
                .find(|(r, _)| r.kind == kind)
                .map_or(Lookup::UnknownKind, |(r, caps)| {
                    Lookup::Found(r.clone(), caps.scope.clone())
                }),
            _ => Lookup::UnservedVersion,
        }
    }
}

/// `group/version`, or `version` for the core group.
pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// Why an apiVersion may not be served: the removals classic tutorials still run into.
pub fn removal_hint(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    Some(match (group, version, kind) {
        (
            "extensions" | "apps",
            "v1beta1" | "v1beta2",
            "Deployment" | "DaemonSet" | "ReplicaSet" | "StatefulSet",
        ) => "removed in Kubernetes 1.16; use apps/v1 (spec.selector is required)",
        ("extensions" | "networking.k8s.io", "v1beta1", "Ingress") => {
            "removed in Kubernetes 1.22; use networking.k8s.io/v1 (backend.service.name/port, pathType)"
        }
        ("rbac.authorization.k8s.io", "v1beta1", _) => {
            "removed in Kubernetes 1.22; use rbac.authorization.k8s.io/v1"
        }
        ("batch", "v1beta1", "CronJob") => "removed in Kubernetes 1.25; use batch/v1",
        ("policy", "v1beta1", "PodDisruptionBudget") => "removed in Kubernetes 1.25; use policy/v1",
        ("extensions" | "policy", "v1beta1", "PodSecurityPolicy") => {
            "removed in Kubernetes 1.25 (replaced by Pod Security Admission)"
        }
        ("autoscaling", "v2beta1" | "v2beta2", "HorizontalPodAutoscaler") => {
            "removed in Kubernetes 1.25/1.26; use autoscaling/v2"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_and_hints() {
        assert_eq!(api_version("", "v1"), "v1");
        assert_eq!(api_version("apps", "v1"), "apps/v1");
        assert!(
            removal_hint("extensions", "v1beta1", "Deployment")
                .is_some_and(|h| h.contains("apps/v1"))
        );
        assert!(removal_hint("apps", "v1", "Deployment").is_none());
    }
}
