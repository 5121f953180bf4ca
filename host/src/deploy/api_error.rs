//! API server errors in words a CI log reader can act on.
//!
//! The server's own message is kept (for a 403 it already names the identity, the verb, the
//! resource and the namespace: `User "system:serviceaccount:app:ci" cannot patch resource
//! "deployments" in API group "apps" in the namespace "prod"`), with the HTTP status and a hint.
//! Nothing here ever formats a request: headers (and the bearer token in them) never reach a
//! message.

use kube::core::Status;

use crate::credentials::Auth;
use crate::kube_client::safe_chain;

/// The server's `Status` of a failed request, if the failure came from the server.
pub fn status(error: &kube::Error) -> Option<&Status> {
    match error {
        kube::Error::Api(status) => Some(status),
        _ => None,
    }
}

/// The HTTP status code of a failed request, if the server answered.
pub fn code(error: &kube::Error) -> Option<u16> {
    status(error).map(|s| s.code)
}

/// One line describing `error`.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => describe_status(status),
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            format!(
                "cannot reach the API server: {}",
                safe_chain(error, &Auth::None)
            )
        }
        other => safe_chain(other, &Auth::None),
    }
}

/// The prefix of the server's answer to a server-side apply with a field its schema does not
/// have: it comes back as a 500 (an apiserver quirk), but it is the manifest that is wrong.
const UNKNOWN_FIELD_PREFIX: &str = "failed to create typed patch object";

/// Whether the server refused the object itself (invalid, unknown field, bad request) rather
/// than the request, the credentials or the cluster's state.
pub fn is_invalid_object(error: &kube::Error) -> bool {
    status(error).is_some_and(|s| {
        matches!(s.code, 400 | 422)
            || (s.code == 500 && s.message.starts_with(UNKNOWN_FIELD_PREFIX))
    })
}

/// One line describing a failed `Status` from the server.
pub fn describe_status(status: &Status) -> String {
    if status.code == 500
        && let Some(rest) = status.message.strip_prefix(UNKNOWN_FIELD_PREFIX)
    {
        // `failed to create typed patch object (ns/name; /v1, Kind=ConfigMap): .datta: field
        // not declared in schema`: the object is already named by the caller.
        let detail = rest.split_once("): ").map_or(rest, |(_, d)| d);
        return format!("unknown field (strict field validation): {detail}");
    }
    let message = if status.message.is_empty() {
        status.reason.clone()
    } else {
        status.message.clone()
    };
    match status.code {
        401 => format!(
            "401 Unauthorized: the API server did not accept the credentials (an expired or \
             revoked token, a deleted ServiceAccount, or a kubeconfig for another cluster): \
             {message}"
        ),
        403 => format!(
            "403 Forbidden: {message} (the kubeconfig's identity lacks this permission; a \
             namespace-scoped CI identity may only act in its own namespace)"
        ),
        409 if message.contains("conflict") && message.contains("Apply failed") => format!(
            "409 Conflict: {message} (another field manager owns these fields; change them \
             with that tool, or take them over with --force-conflicts)"
        ),
        404 if status
            .details
            .as_ref()
            .is_some_and(|d| d.kind == "namespaces") =>
        {
            format!(
                "404 NotFound: {message} (create the namespace first, with an admin identity or \
                 `kstep serviceaccount create --create-namespace`)"
            )
        }
        0 => message,
        code => {
            let reason = if status.reason.is_empty() {
                String::new()
            } else {
                format!(" {}", status.reason)
            };
            format!("{code}{reason}: {message}")
        }
    }
}

/// Whether a dry-run failure means only that a Namespace from the same run does not exist yet.
pub fn is_missing_namespace(error: &kube::Error, namespace: &str) -> bool {
    status(error).is_some_and(|s| {
        s.code == 404
            && s.details
                .as_ref()
                .is_some_and(|d| d.kind == "namespaces" && d.name == namespace)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn status(code: u16, reason: &str, message: &str) -> Status {
        serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": code, "reason": reason, "message": message,
        }))
        .unwrap()
    }

    #[test]
    fn an_exec_plugin_failure_during_a_request_hides_its_output() {
        // kube-rs re-runs an exec plugin to refresh an expired token mid-run; its error (and
        // every message wrapping it) carries the plugin's output, e.g. a fresh token.
        use std::os::unix::process::ExitStatusExt as _;
        let error = kube::Error::Auth(kube::client::AuthError::AuthExecRun {
            cmd: "aws eks get-token".into(),
            out: Box::new(std::process::Output {
                status: std::process::ExitStatus::from_raw(3 << 8),
                stdout: b"fresh-token-4f7a9c".to_vec(),
                stderr: Vec::new(),
            }),
        });
        let text = describe(&error);
        assert!(!text.contains("fresh-token"), "{text}");
        assert!(
            text.starts_with("the exec plugin failed (exit status: 3)"),
            "{text}"
        );
    }

    #[test]
    fn forbidden_keeps_the_servers_words() {
        let m = describe_status(&status(
            403,
            "Forbidden",
            "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:app:ci\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"prod\"",
        ));
        assert!(m.starts_with("403 Forbidden: deployments.apps \"web\" is forbidden: User \"system:serviceaccount:app:ci\""), "{m}");
    }

    #[test]
    fn missing_namespace_has_a_hint() {
        let s: Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 404, "reason": "NotFound",
            "message": "namespaces \"nope\" not found",
            "details": {"name": "nope", "kind": "namespaces"},
        }))
        .unwrap();
        assert!(describe_status(&s).contains("create the namespace first"));
        let e = kube::Error::Api(Box::new(s));
        assert!(is_missing_namespace(&e, "nope"));
        assert!(!is_missing_namespace(&e, "other"));
    }

    #[test]
    fn unknown_fields_are_the_manifests_fault() {
        let s = status(
            500,
            "",
            "failed to create typed patch object (app/c2; /v1, Kind=ConfigMap): .datta: field not declared in schema",
        );
        assert_eq!(
            describe_status(&s),
            "unknown field (strict field validation): .datta: field not declared in schema"
        );
        assert!(is_invalid_object(&kube::Error::Api(Box::new(s))));
        let internal = status(500, "InternalError", "etcd is down");
        assert!(!is_invalid_object(&kube::Error::Api(Box::new(internal))));
    }

    #[test]
    fn unauthorized_and_conflict_have_hints() {
        assert!(describe_status(&status(401, "Unauthorized", "Unauthorized")).contains("expired"));
        let m = describe_status(&status(
            409,
            "Conflict",
            "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas",
        ));
        assert!(m.contains("--force-conflicts"), "{m}");
        assert_eq!(
            describe_status(&status(422, "Invalid", "spec.x: Invalid value")),
            "422 Invalid: spec.x: Invalid value"
        );
    }
}
