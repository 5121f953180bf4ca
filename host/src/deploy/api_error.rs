//! API server errors in words a CI log reader can act on.
//!
//! The server's own message is kept (for a 403 it already names the identity, the verb, the
//! resource and the namespace: `User "system:serviceaccount:app:ci" cannot patch resource
//! "deployments" in API group "apps" in the namespace "prod"`), with the HTTP status and a hint.
//! Nothing here ever formats a request: headers (and the bearer token in them) never reach a
//! message.

use kube::core::Status;

use super::objects::Object;
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

/// One field the server refused, as its error names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The server's path to the field: `.spec.replicas` (strict field validation),
    /// `spec.template.spec.containers[0].image` (a 422's causes).
    pub path: String,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What the server said about a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Strict field validation: the schema has no such field.
    Unknown,
    /// Strict field validation: the value is not of the schema's type (`numeric`, `string`,
    /// `boolean`, `map`, `list`: the server's words).
    Type {
        /// The schema's type.
        expected: String,
        /// The server's own description of what it got (Go notation, a fallback).
        got: String,
    },
    /// Anything else (a 422 cause: `Invalid value: -1: must be greater than or equal to 0`).
    Other(String),
}

impl FieldProblem {
    /// Whether the problem is the field's presence (placed at its key) rather than its value.
    pub fn at_key(&self) -> bool {
        self.problem == Problem::Unknown
    }

    /// In words, the path first: `spec.replicas: type error: expected a number, got a string
    /// (…)`. `got` is the type of the value sent (`a string`, `a number`…, as the manifest step
    /// names them), when it is known.
    pub fn describe(&self, got: Option<&str>) -> String {
        let path = self.path.strip_prefix('.').unwrap_or(&self.path);
        match &self.problem {
            Problem::Unknown => format!(
                "{path}: unknown field: the API's schema has no such field (strict field \
                 validation; is it misspelt or misplaced?)"
            ),
            Problem::Type {
                expected,
                got: server_got,
            } => {
                let expected_words = match expected.as_str() {
                    "numeric (int or float)" | "numeric" => "a number",
                    "string" => "a string",
                    "boolean" => "a boolean (true or false)",
                    "map" => "a mapping",
                    "list" => "a sequence",
                    other => other,
                };
                let got_words = got.unwrap_or(server_got);
                let hint = match (expected_words, got) {
                    ("a string", Some("a number" | "a boolean" | "null")) => {
                        " (quote the value: unquoted, YAML reads `1.10`, `true` or `null` as \
                         another type)"
                    }
                    ("a number", Some("a string")) => " (write the number without quotes)",
                    _ => "",
                };
                format!("{path}: type error: expected {expected_words}, got {got_words}{hint}")
            }
            Problem::Other(message) => format!("{path}: {message}"),
        }
    }
}

/// The fields a refused object's error names, in the server's order: strict field validation's
/// (a 500 `failed to create typed patch object … .spec.replicas: expected numeric (int or
/// float), got string`, one or an `errors:` list) and a 422's causes. Empty when the error
/// names no field.
pub fn field_problems(error: &kube::Error) -> Vec<FieldProblem> {
    let Some(status) = status(error) else {
        return Vec::new();
    };
    if status.code == 500
        && let Some(rest) = status.message.strip_prefix(UNKNOWN_FIELD_PREFIX)
    {
        let detail = rest.split_once("): ").map_or(rest, |(_, d)| d);
        let lines: Vec<&str> = match detail.strip_prefix("errors:\n") {
            Some(list) => list.lines().map(str::trim).collect(),
            None => vec![detail.trim()],
        };
        return lines.into_iter().filter_map(typed_patch_problem).collect();
    }
    if status.code == 422
        && let Some(details) = &status.details
    {
        return details
            .causes
            .iter()
            .filter(|c| !c.field.is_empty())
            .map(|c| FieldProblem {
                path: c.field.clone(),
                problem: Problem::Other(format!("422 Invalid: {}", c.message)),
            })
            .collect();
    }
    Vec::new()
}

/// What to print about `object`, refused with `error`: one line per field the error names, at
/// the field's own `FILE:LINE:COL` when the source is known (`k8s/app.yaml:9:13:
/// deployment.apps/web: spec.replicas: type error: expected a number, got a string …`), else
/// one line at the document.
pub fn object_lines(object: &Object, error: &kube::Error) -> Vec<String> {
    let fields = field_problems(error);
    if fields.is_empty() {
        return vec![format!(
            "{}: {}: {}",
            object.origin,
            object.display_name(),
            describe(error)
        )];
    }
    // The type of what was sent, read from the object itself: the server describes it in Go.
    let sent = serde_json::to_string(&object.value).unwrap_or_default();
    fields
        .iter()
        .map(|f| {
            let got = match f.problem {
                Problem::Type { .. } => kstep_manifest::locate::field(&sent, 1, 0, &f.path)
                    .filter(|l| l.exact)
                    .map(|l| l.type_name),
                _ => None,
            };
            format!(
                "{}: {}: {}",
                object.origin.field(&f.path, f.at_key()),
                object.display_name(),
                f.describe(got)
            )
        })
        .collect()
}

/// `.spec.replicas: expected numeric (int or float), got string` or `.datta: field not declared
/// in schema`.
fn typed_patch_problem(line: &str) -> Option<FieldProblem> {
    let (path, message) = line.split_once(": ")?;
    if !path.starts_with('.') {
        return None;
    }
    let problem = if message == "field not declared in schema" {
        Problem::Unknown
    } else if let Some((expected, got)) = message
        .strip_prefix("expected ")
        .and_then(|m| m.split_once(", got "))
    {
        Problem::Type {
            expected: expected.to_owned(),
            got: got.to_owned(),
        }
    } else {
        Problem::Other(message.to_owned())
    };
    Some(FieldProblem {
        path: path.to_owned(),
        problem,
    })
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
    fn strict_validation_errors_are_split_per_field() {
        let s = status(
            500,
            "",
            "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): errors:\n  .spec.replicas: expected numeric (int or float), got string\n  .spec.template.spec.containers[name=\"web\"].ports[containerPort=\"80\",protocol=\"TCP\"].containerPort: expected numeric (int or float), got string\n  .spec.nope: field not declared in schema",
        );
        let fields = field_problems(&kube::Error::Api(Box::new(s)));
        assert_eq!(fields.len(), 3, "{fields:?}");
        assert_eq!(
            fields[0].describe(Some("a string")),
            "spec.replicas: type error: expected a number, got a string (write the number without quotes)"
        );
        assert!(fields[1].path.ends_with("].containerPort"), "{fields:?}");
        assert!(fields[2].at_key() && !fields[0].at_key());
        assert!(
            fields[2]
                .describe(None)
                .starts_with("spec.nope: unknown field: ")
        );

        let s = status(
            500,
            "",
            "failed to create typed patch object (default/c; /v1, Kind=ConfigMap): .data.V: expected string, got &value.valueUnstructured{Value:1.1}",
        );
        let fields = field_problems(&kube::Error::Api(Box::new(s)));
        assert_eq!(
            fields[0].describe(Some("a number")),
            "data.V: type error: expected a string, got a number (quote the value: unquoted, YAML reads `1.10`, `true` or `null` as another type)"
        );
        // The type of the value sent unknown (its path not found in it): the server's words.
        assert_eq!(
            fields[0].describe(None),
            "data.V: type error: expected a string, got &value.valueUnstructured{Value:1.1}"
        );
    }

    #[test]
    fn invalid_causes_name_their_fields() {
        let s: Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 422, "reason": "Invalid",
            "message": "Deployment.apps \"web\" is invalid: […]",
            "details": {"name": "web", "kind": "deployments", "causes": [
                {"reason": "FieldValueInvalid", "message": "Invalid value: -1: must be greater than or equal to 0", "field": "spec.replicas"},
                {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.template.spec.containers[0].image"},
            ]},
        }))
        .unwrap();
        let fields = field_problems(&kube::Error::Api(Box::new(s)));
        assert_eq!(
            fields.iter().map(|f| f.describe(None)).collect::<Vec<_>>(),
            [
                "spec.replicas: 422 Invalid: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.spec.containers[0].image: 422 Invalid: Required value",
            ]
        );
        assert!(
            field_problems(&kube::Error::Api(Box::new(status(403, "Forbidden", "no")))).is_empty()
        );
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
