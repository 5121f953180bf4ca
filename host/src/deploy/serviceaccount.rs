//! The namespace-scoped CI identity: what the reference workflow does by hand
//! (`kubectl apply` of a ServiceAccount and a RoleBinding, fishing the token out of a Secret,
//! hand-editing a kubeconfig), for a current cluster.
//!
//! - [`cluster_role_exists`]: the ClusterRole is checked before anything is created;
//! - [`objects`]: the ServiceAccount and the RoleBinding (rbac/v1) to a ClusterRole, applied
//!   with the apply engine (dry run first, field manager `kstep`); for `--long-lived`, once
//!   [`wait_for_account`] has seen the ServiceAccount, the [`token_secret`] (the token
//!   controller deletes a token Secret whose ServiceAccount it cannot find);
//! - [`issue_token`]: a TokenRequest with a duration (what `kubectl create token` does), or the
//!   long-lived Secret's token once the token controller has filled it in (watched, not polled);
//!   the token is registered with the masker the moment it is received;
//! - [`verify`]: the new identity's view of the cluster: who the server says it is, what it may
//!   do (SelfSubjectAccessReview) and what it actually can (a dry-run apply in its namespace, a
//!   pod list in `kube-system` that must be refused).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::objects::{Object, Origin};
use super::{FIELD_MANAGER, api_error, watch};
use crate::output;

/// What to create.
#[derive(Debug, Clone)]
pub struct Request {
    /// The namespace the identity is confined to.
    pub namespace: String,
    /// The ServiceAccount's name.
    pub name: String,
    /// The ClusterRole bound in the namespace (`admin` by default).
    pub cluster_role: String,
    /// The token to issue.
    pub token: TokenKind,
}

/// Which kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A TokenRequest token valid for this long (the server may cap it).
    Bound(Duration),
    /// A `kubernetes.io/service-account-token` Secret: valid until the Secret is deleted.
    LongLived,
}

impl Request {
    /// The RoleBinding's name: `NAME-CLUSTERROLE`.
    pub fn role_binding_name(&self) -> String {
        format!("{}-{}", self.name, self.cluster_role)
    }

    /// The long-lived token Secret's name: `NAME-token`.
    pub fn secret_name(&self) -> String {
        format!("{}-token", self.name)
    }

    /// The identity the API server will see: `system:serviceaccount:NS:NAME`.
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }
}

fn origin(index: u32) -> Origin {
    Origin {
        source: "kstep serviceaccount create".into(),
        index,
        item: 0,
        line: 0,
        column: 0,
        text: None,
    }
}

/// Whether the ClusterRole to bind exists: `None` when the admin may not read ClusterRoles
/// (the RoleBinding can still be created; the verification then tells).
///
/// # Errors
/// The server failed or refused otherwise.
pub async fn cluster_role_exists(
    client: &Client,
    request: &Request,
) -> Result<Option<bool>, kube::Error> {
    let roles: Api<ClusterRole> = Api::all(client.clone());
    match roles.get_opt(&request.cluster_role).await {
        Ok(found) => Ok(Some(found.is_some())),
        Err(e) if api_error::code(&e) == Some(403) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The objects to apply first: optionally the Namespace, the ServiceAccount and the
/// RoleBinding.
///
/// # Errors
/// Never in practice: the documents are built here (an error would be a bug).
pub fn objects(
    request: &Request,
    create_namespace: bool,
) -> Result<Vec<Object>, super::objects::InvalidObject> {
    let labels = json!({"app.kubernetes.io/managed-by": "kstep"});
    let mut docs = Vec::new();
    if create_namespace {
        docs.push(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": request.namespace, "labels": labels},
        }));
    }
    docs.push(json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": request.name, "namespace": request.namespace, "labels": labels},
    }));
    docs.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": request.role_binding_name(), "namespace": request.namespace, "labels": labels},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": request.cluster_role},
        "subjects": [{"kind": "ServiceAccount", "name": request.name, "namespace": request.namespace}],
    }));
    docs.into_iter()
        .zip(1..)
        .map(|(value, i)| Object::new(value, origin(i)))
        .collect()
}

/// The `kubernetes.io/service-account-token` Secret of a long-lived token: apply it only once
/// the ServiceAccount exists ([`wait_for_account`]).
///
/// # Errors
/// Never in practice: the document is built here (an error would be a bug).
pub fn token_secret(request: &Request) -> Result<Object, super::objects::InvalidObject> {
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {
            "name": request.secret_name(), "namespace": request.namespace,
            "labels": {"app.kubernetes.io/managed-by": "kstep"},
            "annotations": {"kubernetes.io/service-account.name": request.name},
        },
    });
    Object::new(secret, origin(4))
}

/// Waits, watching the namespace's ServiceAccounts, until `request`'s exists (at once when it
/// already does).
///
/// # Errors
/// [`TokenError::NoAccount`] after `wait`; the list or watch failed.
pub async fn wait_for_account(
    client: &Client,
    request: &Request,
    wait: Duration,
) -> Result<(), TokenError> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &request.namespace,
        &ApiResource::erase::<ServiceAccount>(&()),
    );
    let is_it = |o: &DynamicObject| o.metadata.name.as_deref() == Some(request.name.as_str());
    let changes = watch::collection(api, None, watch::timeout_for(wait));
    let mut changes = std::pin::pin!(changes);
    let seen = tokio::time::timeout(wait, async {
        while let Some(change) = changes.next().await {
            match change? {
                watch::Change::Reset(all) if all.iter().any(is_it) => return Ok(()),
                watch::Change::Applied(o) if is_it(&o) => return Ok(()),
                _ => {}
            }
        }
        Err(TokenError::NoAccount(request.name.clone(), wait))
    })
    .await;
    seen.unwrap_or_else(|_| Err(TokenError::NoAccount(request.name.clone(), wait)))
}

/// A token the server issued.
pub struct Issued {
    /// The bearer token (registered with the masker).
    pub token: SecretString,
    /// When it expires (RFC 3339), for TokenRequest tokens.
    pub expires: Option<String>,
    /// A shorter lifetime than asked for, or other things to know.
    pub warnings: Vec<String>,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("token", &"[REDACTED]")
            .field("expires", &self.expires)
            .finish()
    }
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The server refused or failed.
    #[error("{}", api_error::describe(.0))]
    Api(#[from] kube::Error),
    /// The token controller did not fill the Secret in time.
    #[error(
        "Secret {name} was not filled with a token within {wait}: is kube-controller-manager \
         running with --service-account-private-key-file?",
        name = .0,
        wait = crate::duration::format(*.1)
    )]
    NotFilled(String, Duration),
    /// The answer had no token.
    #[error("the server's TokenRequest answer has no token")]
    Empty,
    /// The ServiceAccount was applied but not seen within the time allowed.
    #[error("ServiceAccount {name} did not appear within {wait}", name = .0, wait = crate::duration::format(*.1))]
    NoAccount(String, Duration),
}

/// Obtains the token: a TokenRequest, or the long-lived Secret's once filled (`wait` bounds
/// that wait). The token is registered with [`output::register_secret`] before this returns.
///
/// # Errors
/// [`TokenError`].
pub async fn issue_token(
    client: &Client,
    request: &Request,
    wait: Duration,
) -> Result<Issued, TokenError> {
    match request.token {
        TokenKind::Bound(duration) => {
            let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &request.namespace);
            let asked = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
            let answer = api
                .create_token_request(
                    &request.name,
                    &PostParams::default(),
                    &TokenRequest {
                        spec: Some(TokenRequestSpec {
                            expiration_seconds: Some(asked),
                            ..TokenRequestSpec::default()
                        }),
                        ..TokenRequest::default()
                    },
                )
                .await?;
            let status = answer.status.ok_or(TokenError::Empty)?;
            let token = status
                .token
                .filter(|t| !t.is_empty())
                .ok_or(TokenError::Empty)?;
            output::register_secret(&token);
            let mut warnings = Vec::new();
            let expires = status.expiration_timestamp.map(|t| t.0);
            if let Some(expires) = expires {
                let granted = expires.as_second() - now_seconds();
                if granted + 120 < asked {
                    warnings.push(format!(
                        "the server capped the token's lifetime: asked for {}, it expires at \
                         {expires} (--service-account-max-token-expiration); use --long-lived for \
                         a token that lives as long as its Secret",
                        crate::duration::format(duration)
                    ));
                }
            }
            Ok(Issued {
                token: SecretString::from(token),
                expires: expires.map(|e| e.to_string()),
                warnings,
            })
        }
        TokenKind::LongLived => {
            let resource = ApiResource::erase::<Secret>(&());
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &request.namespace, &resource);
            let name = request.secret_name();
            let deadline = Instant::now() + wait;
            let filled = watch::until(&api, &name, deadline, watch::timeout_for(wait), |secret| {
                // Registered as soon as seen, even in an object this closure then discards.
                secret_token(secret).is_some_and(|t| {
                    output::register_secret(&t);
                    true
                })
            })
            .await?;
            let secret = filled.map_err(|_| TokenError::NotFilled(name.clone(), wait))?;
            let token = secret_token(&secret).ok_or(TokenError::Empty)?;
            output::register_secret(&token);
            Ok(Issued {
                token: SecretString::from(token),
                expires: None,
                warnings: Vec::new(),
            })
        }
    }
}

/// `data.token` of a token Secret, decoded.
fn secret_token(secret: &DynamicObject) -> Option<String> {
    let encoded = secret.data.pointer("/data/token")?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let token = String::from_utf8(bytes).ok()?;
    (!token.is_empty()).then_some(token)
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// One verification with the new identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub what: String,
    /// What a namespace-scoped deploy identity must get.
    pub expected: String,
    /// What it got.
    pub actual: String,
}

impl Check {
    /// Whether `actual` is what was expected.
    pub fn ok(&self) -> bool {
        self.expected == self.actual
    }
}

/// The checks as a table, one row per check, with a header.
pub fn table(checks: &[Check]) -> String {
    let width = checks
        .iter()
        .map(|c| c.what.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let value_width = checks
        .iter()
        .flat_map(|c| [c.expected.len(), c.actual.len()])
        .max()
        .unwrap_or(8)
        .max(8);
    let mut out = format!(
        "  {:<width$}  {:<value_width$}  RESULT\n",
        "CHECK", "EXPECTED"
    );
    for c in checks {
        out.push_str(&format!(
            "  {:<width$}  {:<value_width$}  {:<value_width$}  {}\n",
            c.what,
            c.expected,
            c.actual,
            if c.ok() { "ok" } else { "FAILED" }
        ));
    }
    out
}

/// Checks what `client` (the new identity) may and can do: it is `request.username()`, it may
/// create and patch Deployments in its namespace, a dry-run apply of one is accepted there, and
/// it may not list pods in `kube-system` (the review says so, and a real request gets 403).
///
/// # Errors
/// A request that failed other than as expected (unreachable server, 401).
pub async fn verify(client: &Client, request: &Request) -> Result<Vec<Check>, kube::Error> {
    let ns = &request.namespace;
    let mut checks = Vec::new();

    let reviews: Api<SelfSubjectReview> = Api::all(client.clone());
    let who = match reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
    {
        Ok(review) => review
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)
            .unwrap_or_else(|| "unknown".into()),
        Err(e) if matches!(api_error::code(&e), Some(404 | 403)) => {
            "unknown (no SelfSubjectReview)".into()
        }
        Err(e) => return Err(e),
    };
    // The username is in the table's title: the row says whether it matched.
    let this = "this ServiceAccount";
    checks.push(Check {
        what: "identity (SelfSubjectReview)".into(),
        expected: this.into(),
        actual: if who == request.username() {
            this.into()
        } else {
            who
        },
    });

    for (verb, group, resource, namespace, expected) in [
        ("create", "apps", "deployments", ns.as_str(), true),
        ("patch", "apps", "deployments", ns.as_str(), true),
        ("list", "", "pods", "kube-system", false),
    ] {
        let allowed = access_review(client, verb, group, resource, namespace).await?;
        let shown = if group.is_empty() {
            resource.to_owned()
        } else {
            format!("{resource}.{group}")
        };
        checks.push(Check {
            what: format!("may {verb} {shown} in {namespace} (review)"),
            expected: allowed_word(expected).into(),
            actual: allowed_word(allowed).into(),
        });
    }

    // A real request in the namespace: a dry-run apply changes nothing.
    let deployments: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<Deployment>(&()));
    let probe = probe_deployment(ns);
    let applied = deployments
        .patch(
            "kstep-verify",
            &PatchParams::apply(FIELD_MANAGER).dry_run(),
            &Patch::Apply(&probe),
        )
        .await;
    checks.push(Check {
        what: format!("apply a Deployment in {ns} (server dry run)"),
        expected: "accepted".into(),
        actual: match &applied {
            Ok(_) => "accepted".into(),
            Err(e) => match api_error::code(e) {
                Some(code) => format!("refused ({code})"),
                None => return Err(clone_error(e)),
            },
        },
    });

    // And a real request outside it.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let listed = pods.list(&ListParams::default().limit(1)).await;
    checks.push(Check {
        what: "list pods in kube-system (request)".into(),
        expected: "403 Forbidden".into(),
        actual: match &listed {
            Ok(_) => "allowed".into(),
            Err(e) => match api_error::code(e) {
                Some(403) => "403 Forbidden".into(),
                Some(code) => format!("{code}"),
                None => return Err(clone_error(e)),
            },
        },
    });
    Ok(checks)
}

fn clone_error(e: &kube::Error) -> kube::Error {
    match e {
        kube::Error::Api(s) => kube::Error::Api(s.clone()),
        other => kube::Error::Service(other.to_string().into()),
    }
}

fn allowed_word(allowed: bool) -> &'static str {
    if allowed { "allowed" } else { "denied" }
}

async fn access_review(
    client: &Client,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: &str,
) -> Result<bool, kube::Error> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(group.to_owned()),
                resource: Some(resource.to_owned()),
                verb: Some(verb.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = api.create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// A minimal valid Deployment for the dry-run probe.
fn probe_deployment(namespace: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "kstep-verify", "namespace": namespace},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "kstep-verify"}},
            "template": {
                "metadata": {"labels": {"app": "kstep-verify"}},
                "spec": {"containers": [{"name": "probe", "image": "registry.invalid/kstep-verify:0"}]}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn request(token: TokenKind) -> Request {
        Request {
            namespace: "example".into(),
            name: "gitlab-example".into(),
            cluster_role: "admin".into(),
            token,
        }
    }

    #[test]
    fn objects_like_the_reference_workflow() {
        let objects =
            objects(&request(TokenKind::Bound(Duration::from_secs(3600))), false).unwrap();
        let names: Vec<String> = objects.iter().map(Object::display_name).collect();
        assert_eq!(
            names,
            [
                "serviceaccount/gitlab-example",
                "rolebinding.rbac.authorization.k8s.io/gitlab-example-admin"
            ]
        );
        let binding = &objects[1].value;
        assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
        assert_eq!(binding["roleRef"]["name"], "admin");
        assert_eq!(binding["subjects"][0]["namespace"], "example");
        // The token Secret is not among them: it comes after the ServiceAccount exists.
        let long = super::objects(&request(TokenKind::LongLived), true).unwrap();
        let kinds: Vec<&str> = long.iter().map(|o| o.kind.as_str()).collect();
        assert_eq!(kinds, ["Namespace", "ServiceAccount", "RoleBinding"]);
        let secret = token_secret(&request(TokenKind::LongLived)).unwrap();
        assert_eq!(secret.value["type"], "kubernetes.io/service-account-token");
        assert_eq!(
            secret.value["metadata"]["annotations"]["kubernetes.io/service-account.name"],
            "gitlab-example"
        );
    }

    #[test]
    fn check_table() {
        let checks = vec![
            Check {
                what: "may create deployments.apps in example (review)".into(),
                expected: "allowed".into(),
                actual: "allowed".into(),
            },
            Check {
                what: "list pods in kube-system (request)".into(),
                expected: "403 Forbidden".into(),
                actual: "allowed".into(),
            },
        ];
        let t = table(&checks);
        assert!(t.lines().nth(1).unwrap().ends_with("ok"), "{t}");
        assert!(t.lines().nth(2).unwrap().ends_with("FAILED"), "{t}");
    }

    #[test]
    fn secret_tokens_are_decoded() {
        let secret: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"token": base64::engine::general_purpose::STANDARD.encode("abc.def.ghi")}
        }))
        .unwrap();
        assert_eq!(secret_token(&secret).as_deref(), Some("abc.def.ghi"));
        let empty: DynamicObject = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}),
        )
        .unwrap();
        assert_eq!(secret_token(&empty), None);
    }
}
