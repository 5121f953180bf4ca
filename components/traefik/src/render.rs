//! Rendering the Traefik v3 manifests from values.
//!
//! Documents, in apply order: Namespace, ServiceAccount, ClusterRole, ClusterRoleBinding,
//! ConfigMap (static configuration, and the dashboard's dynamic configuration when it is on),
//! IngressClass, PVC (ACME only), Deployment, ClusterIP Service, LoadBalancer Service.
//! `docs/traefik.md` explains each choice; the comments here say why where the code alone
//! would not.

use crate::check;
use crate::extra_args;
use crate::map;
use crate::node::Node;
use crate::problem::Problem;
use crate::values::{Challenge, PullPolicy, Values};

/// The uid/gid Traefik runs as (the "nonroot" convention; the image does not need root on
/// ports ≥ 1024).
pub const RUN_AS: i64 = 65532;
/// Where the ConfigMap is mounted.
pub const CONFIG_DIR: &str = "/config";
/// The static configuration file Traefik is started with.
pub const STATIC_FILE: &str = "traefik.yaml";
/// The dashboard's dynamic configuration file (file provider).
pub const DYNAMIC_FILE: &str = "dynamic.yaml";
/// Where the dashboard's htpasswd Secret is mounted.
pub const AUTH_DIR: &str = "/etc/traefik/dashboard-auth";
/// The key of the htpasswd file in the dashboard Secret.
pub const AUTH_KEY: &str = "users";
/// The IngressClass controller name of Traefik's Ingress provider.
pub const CONTROLLER: &str = "traefik.io/ingress-controller";

const NAME: &str = "traefik";
const CONFIG_MAP: &str = "traefik-config";
const PVC: &str = "traefik-acme";
const LB_SERVICE: &str = "traefik-lb";
const DASHBOARD_MIDDLEWARE: &str = "dashboard-auth";

/// Output format of the manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A YAML stream, documents separated by `---`.
    Yaml,
    /// One JSON `v1/List` holding every manifest (what `kubectl apply -f` takes).
    Json,
}

/// The rendered manifests and the warnings about the values.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The manifests, in the requested format.
    pub manifests: String,
    /// Accepted, but worth a look.
    pub warnings: Vec<Problem>,
}

/// Parses, checks and renders `values` (YAML; empty means defaults).
///
/// # Errors
/// Every problem found in the values, with positions.
pub fn render(values: &str, format: Format) -> Result<Rendered, Vec<Problem>> {
    let values = crate::values::parse(values)?;
    let (documents, warnings) = manifests(&values)?;
    let manifests = match format {
        Format::Yaml => {
            let mut out = String::new();
            for doc in &documents {
                out.push_str("---\n");
                out.push_str(&doc.to_yaml().map_err(internal)?);
            }
            out
        }
        Format::Json => map! {
            "apiVersion" => "v1",
            "kind" => "List",
            "items" => Node::Seq(documents),
        }
        .to_json()
        .map_err(internal)?,
    };
    Ok(Rendered {
        manifests,
        warnings,
    })
}

fn internal(message: String) -> Vec<Problem> {
    vec![Problem::error(message, (0, 0))]
}

/// The manifests as trees, and the warnings.
///
/// # Errors
/// Every problem found in the values.
pub fn manifests(values: &Values) -> Result<(Vec<Node>, Vec<Problem>), Vec<Problem>> {
    let (mut errors, warnings) = check::check(values);
    let mut static_config = static_config(values);
    errors.extend(extra_args::merge(&mut static_config, &values.extra_args));
    if !errors.is_empty() {
        errors.sort_by_key(|p| (p.line, p.column));
        return Err(errors);
    }
    let dynamic = dynamic_config(values);
    let static_yaml = format!(
        "# Traefik v3 static configuration, rendered by kstep from its values.\n\
         # Traefik reads only this file: command-line flags are ignored when a file is used.\n{}",
        static_config.to_yaml().map_err(internal)?
    );
    let dynamic_yaml = match &dynamic {
        Some(d) => Some(format!(
            "# The dashboard, behind basic auth (file provider), rendered by kstep.\n{}",
            d.to_yaml().map_err(internal)?
        )),
        None => None,
    };
    let mut hash_input = static_yaml.clone();
    if let Some(d) = &dynamic_yaml {
        hash_input.push_str(d);
    }
    let config_hash = fnv1a64(hash_input.as_bytes());

    let ns = values.namespace.value.as_str();
    let mut docs = vec![
        namespace(values),
        map! {
            "apiVersion" => "v1",
            "kind" => "ServiceAccount",
            "metadata" => metadata(values, NAME, Some(ns)),
        },
        cluster_role(values),
        cluster_role_binding(values),
        config_map(values, static_yaml, dynamic_yaml),
        ingress_class(values),
    ];
    if values.acme.is_some() {
        docs.push(pvc(values));
    }
    docs.push(deployment(values, &format!("{config_hash:016x}")));
    docs.push(service(values, NAME, "ClusterIP"));
    docs.push(service(values, LB_SERVICE, "LoadBalancer"));
    Ok((docs, warnings))
}

/// The labels every object carries.
fn labels(values: &Values) -> Node {
    map! {
        "app.kubernetes.io/name" => NAME,
        "app.kubernetes.io/instance" => instance(values),
        "app.kubernetes.io/version" => values.image.tag.value.as_str(),
        "app.kubernetes.io/managed-by" => "kstep",
    }
}

/// The pod selector: never the version, which changes while the selector cannot.
fn selector(values: &Values) -> Node {
    map! {
        "app.kubernetes.io/name" => NAME,
        "app.kubernetes.io/instance" => instance(values),
    }
}

/// One install per namespace: cluster-scoped names carry the namespace.
fn instance(values: &Values) -> String {
    format!("{NAME}-{}", values.namespace.value)
}

fn metadata(values: &Values, name: &str, namespace: Option<&str>) -> Node {
    map! { "name" => name }
        .with_opt("namespace", namespace)
        .with("labels", labels(values))
}

fn namespace(values: &Values) -> Node {
    let mut meta = metadata(values, &values.namespace.value, None);
    // Traefik's pod meets the `restricted` Pod Security Standard; enforcing it keeps anything
    // less hardened out of the namespace that holds the cluster's edge.
    if let Some(labels) = meta.get("labels").cloned() {
        meta.set(
            "labels",
            labels
                .with("pod-security.kubernetes.io/enforce", "restricted")
                .with("pod-security.kubernetes.io/warn", "restricted"),
        );
    }
    map! { "apiVersion" => "v1", "kind" => "Namespace", "metadata" => meta }
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Node {
    map! {
        "apiGroups" => groups.to_vec(),
        "resources" => resources.to_vec(),
        "verbs" => verbs.to_vec(),
    }
}

/// Exactly what Traefik v3.6's providers watch (pkg/provider/kubernetes/{ingress,crd}/client.go):
/// informers need list and watch; the Ingress provider writes `ingresses/status` (the address
/// of the LoadBalancer Service). Nodes are watched cluster-wide unless
/// `disableClusterScopeResources` is set.
fn cluster_role(values: &Values) -> Node {
    let watch = ["list", "watch"];
    let mut core = vec!["services", "secrets", "nodes"];
    if values.kubernetes_crd {
        core.push("configmaps");
    }
    let mut rules = vec![
        rule(&[""], &core, &watch),
        rule(&["discovery.k8s.io"], &["endpointslices"], &watch),
        rule(
            &["networking.k8s.io"],
            &["ingresses", "ingressclasses"],
            &watch,
        ),
        rule(&["networking.k8s.io"], &["ingresses/status"], &["update"]),
    ];
    if values.kubernetes_crd {
        rules.push(rule(
            &["traefik.io"],
            &[
                "ingressroutes",
                "ingressroutetcps",
                "ingressrouteudps",
                "middlewares",
                "middlewaretcps",
                "serverstransports",
                "serverstransporttcps",
                "tlsoptions",
                "tlsstores",
                "traefikservices",
            ],
            &watch,
        ));
    }
    map! {
        "apiVersion" => "rbac.authorization.k8s.io/v1",
        "kind" => "ClusterRole",
        "metadata" => metadata(values, &instance(values), None),
        "rules" => Node::Seq(rules),
    }
}

fn cluster_role_binding(values: &Values) -> Node {
    map! {
        "apiVersion" => "rbac.authorization.k8s.io/v1",
        "kind" => "ClusterRoleBinding",
        "metadata" => metadata(values, &instance(values), None),
        "roleRef" => map! {
            "apiGroup" => "rbac.authorization.k8s.io",
            "kind" => "ClusterRole",
            "name" => instance(values),
        },
        "subjects" => vec![map! {
            "kind" => "ServiceAccount",
            "name" => NAME,
            "namespace" => values.namespace.value.as_str(),
        }],
    }
}

fn config_map(values: &Values, static_yaml: String, dynamic_yaml: Option<String>) -> Node {
    let mut data = map! { STATIC_FILE => static_yaml };
    if let Some(d) = dynamic_yaml {
        data.set(DYNAMIC_FILE, d);
    }
    map! {
        "apiVersion" => "v1",
        "kind" => "ConfigMap",
        "metadata" => metadata(values, CONFIG_MAP, Some(&values.namespace.value)),
        "data" => data,
    }
}

fn ingress_class(values: &Values) -> Node {
    let mut meta = metadata(values, &values.ingress_class.name.value, None);
    if values.ingress_class.default {
        meta.set(
            "annotations",
            map! { "ingressclass.kubernetes.io/is-default-class" => "true" },
        );
    }
    map! {
        "apiVersion" => "networking.k8s.io/v1",
        "kind" => "IngressClass",
        "metadata" => meta,
        "spec" => map! { "controller" => CONTROLLER },
    }
}

fn pvc(values: &Values) -> Node {
    let (size, class) = match &values.persistence {
        Some(p) => (
            p.value.size.value.clone(),
            p.value.storage_class.as_ref().map(|c| c.value.clone()),
        ),
        None => ("128Mi".to_owned(), None),
    };
    map! {
        "apiVersion" => "v1",
        "kind" => "PersistentVolumeClaim",
        "metadata" => metadata(values, PVC, Some(&values.namespace.value)),
        "spec" => map! {
            "accessModes" => vec!["ReadWriteOnce"],
            "resources" => map! { "requests" => map! { "storage" => size } },
        }
        .with_opt("storageClassName", class),
    }
}

/// The directory of the ACME storage file: the PVC's mount point.
fn storage_dir(storage: &str) -> &str {
    storage.rsplit_once('/').map_or("/data", |(dir, _)| dir)
}

fn image(values: &Values) -> String {
    format!(
        "{}:{}",
        values.image.repository.value,
        values.image.tag.value.trim()
    )
}

fn container_security() -> Node {
    map! {
        "allowPrivilegeEscalation" => false,
        "readOnlyRootFilesystem" => true,
        "capabilities" => map! { "drop" => vec!["ALL"] },
        "runAsNonRoot" => true,
        "runAsUser" => Node::Int(RUN_AS),
        "runAsGroup" => Node::Int(RUN_AS),
    }
}

fn probe(failure_threshold: i64) -> Node {
    map! {
        "httpGet" => map! { "path" => "/ping", "port" => "traefik", "scheme" => "HTTP" },
        "initialDelaySeconds" => Node::Int(2),
        "periodSeconds" => Node::Int(10),
        "timeoutSeconds" => Node::Int(2),
        "successThreshold" => Node::Int(1),
        "failureThreshold" => Node::Int(failure_threshold),
    }
}

fn resources(values: &Values) -> Node {
    let side = |q: &crate::values::Quantities| {
        Node::map()
            .with_opt("cpu", q.cpu.as_ref().map(|c| c.value.clone()))
            .with_opt("memory", q.memory.as_ref().map(|m| m.value.clone()))
    };
    let mut r = Node::map();
    for (name, q) in [
        ("requests", &values.resources.requests),
        ("limits", &values.resources.limits),
    ] {
        let s = side(q);
        if !s.is_empty_map() {
            r.set(name, s);
        }
    }
    r
}

/// The init container's script: `acme.json` must exist with mode 600 or Traefik refuses it
/// ("permissions … are too open"). Kubelet's `fsGroup` handling adds group permissions to the
/// files of some volume types on every mount, so this runs before every start. It runs as the
/// same non-root user as Traefik: on a fresh volume, `fsGroup` makes the directory writable.
pub fn acme_init_script(storage: &str) -> String {
    format!(
        "set -eu\n\
         f='{storage}'\n\
         [ -e \"$f\" ] || touch \"$f\"\n\
         chmod 600 \"$f\" || {{\n\
         \x20 echo \"kstep: cannot set mode 600 on $f (owner uid $(stat -c %u \"$f\"), this container runs as uid $(id -u)): chown it to $(id -u) once, or delete it to start afresh\" >&2\n\
         \x20 exit 1\n\
         }}\n"
    )
}

fn deployment(values: &Values, config_hash: &str) -> Node {
    let ns = values.namespace.value.as_str();
    let ep = &values.entry_points;
    let mut mounts = vec![
        map! { "name" => "config", "mountPath" => CONFIG_DIR, "readOnly" => true },
        // Traefik writes nothing else, but Go's os.TempDir users (plugins) expect /tmp.
        map! { "name" => "tmp", "mountPath" => "/tmp" },
    ];
    let mut volumes = vec![
        map! { "name" => "config", "configMap" => map! { "name" => CONFIG_MAP } },
        map! { "name" => "tmp", "emptyDir" => Node::map() },
    ];
    let mut init_containers = Vec::new();
    let mut env_from = Vec::new();
    if let Some(acme) = &values.acme {
        let storage = acme.value.storage.value.as_str();
        let dir = storage_dir(storage);
        mounts.push(map! { "name" => "acme", "mountPath" => dir });
        volumes.push(map! {
            "name" => "acme",
            "persistentVolumeClaim" => map! { "claimName" => PVC },
        });
        init_containers.push(map! {
            "name" => "acme-storage",
            // The Traefik image itself (Alpine: sh, touch, chmod, stat): nothing more to pull.
            "image" => image(values),
            "imagePullPolicy" => pull_policy(values.image.pull_policy),
            "command" => vec!["/bin/sh".to_owned(), "-c".to_owned(), acme_init_script(storage)],
            "securityContext" => container_security(),
            "resources" => map! {
                "requests" => map! { "cpu" => "10m", "memory" => "16Mi" },
                "limits" => map! { "memory" => "32Mi" },
            },
            "volumeMounts" => vec![map! { "name" => "acme", "mountPath" => dir }],
        });
        if let Some(secret) = &acme.value.dns_credentials_secret {
            env_from.push(map! { "secretRef" => map! { "name" => secret.value.as_str() } });
        }
    }
    if dashboard(values).is_some() {
        let secret = values
            .dashboard
            .as_ref()
            .and_then(|d| d.value.basic_auth_secret.as_ref())
            .map(|s| s.value.clone())
            .unwrap_or_default();
        mounts
            .push(map! { "name" => "dashboard-auth", "mountPath" => AUTH_DIR, "readOnly" => true });
        volumes.push(map! {
            "name" => "dashboard-auth",
            "secret" => map! {
                "secretName" => secret,
                "items" => vec![map! { "key" => AUTH_KEY, "path" => AUTH_KEY }],
                // Readable by the fsGroup (Traefik's group), by no one else.
                "defaultMode" => Node::Int(0o440),
            },
        });
    }
    let mut container = map! {
        "name" => NAME,
        "image" => image(values),
        "imagePullPolicy" => pull_policy(values.image.pull_policy),
        "args" => vec![format!("--configFile={CONFIG_DIR}/{STATIC_FILE}")],
        "ports" => vec![
            port("web", ep.web_port().number),
            port("websecure", ep.websecure_port().number),
            port("traefik", ep.traefik_port().number),
        ],
        // Ready means routing: /ping answers once the entry points are up, and with 503 while
        // Traefik shuts down (ping.terminatingStatusCode), so endpoints drain first.
        "readinessProbe" => probe(1),
        "livenessProbe" => probe(3),
        "resources" => resources(values),
        "securityContext" => container_security(),
        "volumeMounts" => Node::Seq(mounts),
    };
    if !env_from.is_empty() {
        container.set("envFrom", Node::Seq(env_from));
    }
    let mut pod_spec = map! {
        "serviceAccountName" => NAME,
        "automountServiceAccountToken" => true,
        "terminationGracePeriodSeconds" => Node::Int(60),
        "securityContext" => map! {
            "runAsNonRoot" => true,
            "runAsUser" => Node::Int(RUN_AS),
            "runAsGroup" => Node::Int(RUN_AS),
            // Volumes (the ACME PVC, the dashboard Secret) become accessible to Traefik's group;
            // OnRootMismatch skips the recursive chown/chmod when the volume is already right.
            "fsGroup" => Node::Int(RUN_AS),
            "fsGroupChangePolicy" => "OnRootMismatch",
            "seccompProfile" => map! { "type" => "RuntimeDefault" },
        },
    };
    if !init_containers.is_empty() {
        pod_spec.set("initContainers", Node::Seq(init_containers));
    }
    pod_spec.set("containers", vec![container]);
    pod_spec.set("volumes", Node::Seq(volumes));

    // A ReadWriteOnce volume attaches to one node at a time: a rolling update would start the
    // new pod before stopping the old one, and the new pod would wait forever for the volume
    // (and the old one is not removed until the new one is ready). Recreate stops first.
    let strategy = if values.acme.is_some() {
        map! { "type" => "Recreate" }
    } else {
        map! {
            "type" => "RollingUpdate",
            "rollingUpdate" => map! { "maxSurge" => Node::Int(1), "maxUnavailable" => Node::Int(0) },
        }
    };
    map! {
        "apiVersion" => "apps/v1",
        "kind" => "Deployment",
        "metadata" => metadata(values, NAME, Some(ns)),
        "spec" => map! {
            "replicas" => values.replicas.value,
            "revisionHistoryLimit" => Node::Int(5),
            "strategy" => strategy,
            "selector" => map! { "matchLabels" => selector(values) },
            "template" => map! {
                "metadata" => map! {
                    "labels" => labels(values),
                    // Static configuration is read once at start: a changed ConfigMap must
                    // restart the pods, which a changed template does.
                    "annotations" => map! { "checksum/config" => config_hash },
                },
                "spec" => pod_spec,
            },
        },
    }
}

fn pull_policy(p: PullPolicy) -> &'static str {
    match p {
        PullPolicy::IfNotPresent => "IfNotPresent",
        PullPolicy::Always => "Always",
        PullPolicy::Never => "Never",
    }
}

fn port(name: &str, number: u32) -> Node {
    map! { "name" => name, "containerPort" => number, "protocol" => "TCP" }
}

/// `web` and `websecure` only: the `traefik` entry point (ping, API) stays inside the pod.
fn service(values: &Values, name: &str, kind: &str) -> Node {
    let ep = &values.entry_points;
    map! {
        "apiVersion" => "v1",
        "kind" => "Service",
        "metadata" => metadata(values, name, Some(&values.namespace.value)),
        "spec" => map! {
            "type" => kind,
            "selector" => selector(values),
            "ports" => vec![
                map! {
                    "name" => "web",
                    "port" => ep.web_service_port().number,
                    "targetPort" => "web",
                    "protocol" => "TCP",
                },
                map! {
                    "name" => "websecure",
                    "port" => ep.websecure_service_port().number,
                    "targetPort" => "websecure",
                    "protocol" => "TCP",
                },
            ],
        },
    }
}

/// The dashboard's host and Secret, when both are set.
fn dashboard(values: &Values) -> Option<(&str, &str)> {
    let d = &values.dashboard.as_ref()?.value;
    Some((
        &d.host.as_ref()?.value,
        &d.basic_auth_secret.as_ref()?.value,
    ))
}

/// The router's / entry point's TLS settings.
fn tls(values: &Values) -> Node {
    match &values.acme {
        Some(acme) => map! { "certResolver" => acme.value.resolver.value.as_str() },
        None => Node::map(),
    }
}

/// The v3 static configuration.
pub fn static_config(values: &Values) -> Node {
    let ep = &values.entry_points;
    let mut web = map! {
        "address" => format!(":{}", ep.web_port().number),
        "asDefault" => true,
    };
    if values.redirect_to_https {
        web.set(
            "http",
            map! {
                "redirections" => map! {
                    "entryPoint" => map! { "to" => "websecure", "scheme" => "https", "permanent" => true },
                },
            },
        );
    }
    let websecure = map! {
        "address" => format!(":{}", ep.websecure_port().number),
        "asDefault" => true,
        "http" => map! { "tls" => tls(values) },
    };
    let mut ingress = map! {
        // Ingresses report the LoadBalancer's address in their status.
        "ingressEndpoint" => map! {
            "publishedService" => format!("{}/{LB_SERVICE}", values.namespace.value),
        },
    };
    if values.allow_external_name_services {
        ingress.set("allowExternalNameServices", true);
    }
    let mut providers = map! { "kubernetesIngress" => ingress };
    if values.kubernetes_crd {
        let mut crd = Node::map();
        if values.allow_external_name_services {
            crd.set("allowExternalNameServices", true);
        }
        providers.set("kubernetesCRD", crd);
    }
    if dashboard(values).is_some() {
        providers.set(
            "file",
            // No watch: a changed ConfigMap restarts the pods (checksum/config annotation).
            map! { "filename" => format!("{CONFIG_DIR}/{DYNAMIC_FILE}"), "watch" => false },
        );
    }
    let mut config = map! {
        // No calls home from the cluster's edge.
        "global" => map! { "checkNewVersion" => false, "sendAnonymousUsage" => false },
        "log" => map! { "level" => values.log_level.value.to_ascii_uppercase() },
        "entryPoints" => map! {
            "web" => web,
            "websecure" => websecure,
            "traefik" => map! { "address" => format!(":{}", ep.traefik_port().number) },
        },
        "ping" => map! { "entryPoint" => "traefik" },
    };
    if dashboard(values).is_some() {
        // Never `insecure`: the dashboard is reached only through the authenticated router of
        // the dynamic configuration.
        config.set("api", map! { "dashboard" => true });
    }
    config.set("providers", providers);
    if values.insecure_skip_verify.value {
        config.set("serversTransport", map! { "insecureSkipVerify" => true });
    }
    if let Some(acme) = &values.acme {
        let a = &acme.value;
        let challenge = match a.challenge {
            Challenge::Http => ("httpChallenge", map! { "entryPoint" => "web" }),
            Challenge::Tls => ("tlsChallenge", Node::map()),
            Challenge::Dns => (
                "dnsChallenge",
                map! {}.with_opt("provider", a.dns_provider.as_ref().map(|p| p.value.clone())),
            ),
        };
        let acme_node = map! {
            "email" => a.email.value.as_str(),
            "storage" => a.storage.value.as_str(),
        }
        .with_opt("caServer", a.ca_server.as_ref().map(|c| c.value.clone()))
        .with(challenge.0, challenge.1);
        config.set(
            "certificatesResolvers",
            map! { a.resolver.value.as_str() => map! { "acme" => acme_node } },
        );
    }
    config
}

/// The dashboard's dynamic configuration (file provider), when the dashboard is on: a router
/// for the host on `websecure` to `api@internal`, behind a basicAuth middleware whose users
/// file is the mounted Secret. Kept CRD-free so it works with the Ingress provider alone.
pub fn dynamic_config(values: &Values) -> Option<Node> {
    let (host, _secret) = dashboard(values)?;
    Some(map! {
        "http" => map! {
            "routers" => map! {
                "dashboard" => map! {
                    "rule" => format!("Host(`{host}`)"),
                    "entryPoints" => vec!["websecure"],
                    "service" => "api@internal",
                    "middlewares" => vec![DASHBOARD_MIDDLEWARE],
                    "tls" => tls(values),
                },
            },
            "middlewares" => map! {
                DASHBOARD_MIDDLEWARE => map! {
                    "basicAuth" => map! {
                        "usersFile" => format!("{AUTH_DIR}/{AUTH_KEY}"),
                        // The Authorization header is not passed on to the API.
                        "removeHeader" => true,
                    },
                },
            },
        },
    })
}

/// FNV-1a: the config checksum only has to change when the configuration does.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn docs(values: &str) -> Vec<Node> {
        manifests(&crate::values::parse(values).unwrap()).unwrap().0
    }

    fn kind<'a>(docs: &'a [Node], kind: &str, name: &str) -> &'a Node {
        docs.iter()
            .find(|d| {
                d.get("kind").and_then(Node::as_str) == Some(kind)
                    && d.at("metadata.name").and_then(Node::as_str) == Some(name)
            })
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    fn static_of(docs: &[Node]) -> Node {
        let text = kind(docs, "ConfigMap", CONFIG_MAP)
            .at("data")
            .and_then(|d| d.get(STATIC_FILE))
            .and_then(Node::as_str)
            .unwrap()
            .to_owned();
        assert!(text.starts_with("# Traefik v3 static configuration"));
        let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        serde_json::from_value::<serde_json::Value>(v)
            .map(json_to_node)
            .unwrap()
    }

    fn json_to_node(v: serde_json::Value) -> Node {
        match v {
            serde_json::Value::Object(m) => {
                Node::Map(m.into_iter().map(|(k, v)| (k, json_to_node(v))).collect())
            }
            serde_json::Value::Array(a) => Node::Seq(a.into_iter().map(json_to_node).collect()),
            serde_json::Value::String(s) => Node::Str(s),
            serde_json::Value::Bool(b) => Node::Bool(b),
            serde_json::Value::Number(n) => Node::Int(n.as_i64().unwrap()),
            serde_json::Value::Null => Node::map(),
        }
    }

    fn kinds(docs: &[Node]) -> Vec<String> {
        docs.iter()
            .map(|d| d.get("kind").and_then(Node::as_str).unwrap().to_owned())
            .collect()
    }

    #[test]
    fn defaults() {
        let d = docs("");
        assert_eq!(
            kinds(&d),
            [
                "Namespace",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "ConfigMap",
                "IngressClass",
                "Deployment",
                "Service",
                "Service"
            ]
        );
        let s = static_of(&d);
        assert_eq!(
            s.at("entryPoints.web.address").and_then(Node::as_str),
            Some(":8000")
        );
        assert_eq!(
            s.at("entryPoints.web.http.redirections.entryPoint.to")
                .and_then(Node::as_str),
            Some("websecure")
        );
        assert_eq!(
            s.at("entryPoints.web.http.redirections.entryPoint.permanent"),
            Some(&Node::Bool(true))
        );
        assert_eq!(
            s.at("ping.entryPoint").and_then(Node::as_str),
            Some("traefik")
        );
        assert_eq!(s.get("api"), None, "no API without a dashboard");
        assert_eq!(s.get("certificatesResolvers"), None);
        assert_eq!(
            s.at("providers.kubernetesIngress.ingressEndpoint.publishedService")
                .and_then(Node::as_str),
            Some("traefik/traefik-lb")
        );
        let dep = kind(&d, "Deployment", NAME);
        assert_eq!(
            dep.at("spec.strategy.type").and_then(Node::as_str),
            Some("RollingUpdate")
        );
        assert_eq!(dep.at("spec.template.spec.initContainers"), None);
        let Some(Node::Seq(containers)) = dep.at("spec.template.spec.containers") else {
            panic!()
        };
        let c = &containers[0];
        assert_eq!(
            c.get("image").and_then(Node::as_str),
            Some("docker.io/traefik:v3.6.12")
        );
        assert_eq!(
            c.at("securityContext.readOnlyRootFilesystem"),
            Some(&Node::Bool(true))
        );
        assert_eq!(
            c.at("readinessProbe.httpGet.path").and_then(Node::as_str),
            Some("/ping")
        );
        let lb = kind(&d, "Service", LB_SERVICE);
        assert_eq!(
            lb.at("spec.type").and_then(Node::as_str),
            Some("LoadBalancer")
        );
        let Some(Node::Seq(ports)) = lb.at("spec.ports") else {
            panic!()
        };
        assert_eq!(
            ports.len(),
            2,
            "the traefik entry point is never on a Service"
        );
        let cr = kind(&d, "ClusterRole", "traefik-traefik");
        let text = cr.to_yaml().unwrap();
        assert!(text.contains("endpointslices") && text.contains("ingresses/status"));
        assert!(
            !text.contains("traefik.io") && !text.contains("configmaps"),
            "{text}"
        );
        let ic = kind(&d, "IngressClass", "traefik");
        assert_eq!(
            ic.at("spec.controller").and_then(Node::as_str),
            Some(CONTROLLER)
        );
    }

    #[test]
    fn acme() {
        let d = docs(
            "acme:\n  email: ops@example.com\npersistence:\n  size: 1Gi\n  storageClass: cinder-classic\n",
        );
        let pvc = kind(&d, "PersistentVolumeClaim", PVC);
        assert_eq!(
            pvc.at("spec.resources.requests.storage")
                .and_then(Node::as_str),
            Some("1Gi")
        );
        assert_eq!(
            pvc.at("spec.storageClassName").and_then(Node::as_str),
            Some("cinder-classic")
        );
        let dep = kind(&d, "Deployment", NAME);
        assert_eq!(
            dep.at("spec.strategy.type").and_then(Node::as_str),
            Some("Recreate")
        );
        let Some(Node::Seq(init)) = dep.at("spec.template.spec.initContainers") else {
            panic!()
        };
        let text = init[0].to_yaml().unwrap();
        assert!(text.contains("chmod 600"), "{text}");
        assert!(text.contains("/data/acme.json"), "{text}");
        let s = static_of(&d);
        assert_eq!(
            s.at("certificatesResolvers.letsencrypt.acme.httpChallenge.entryPoint")
                .and_then(Node::as_str),
            Some("web")
        );
        assert_eq!(
            s.at("entryPoints.websecure.http.tls.certResolver")
                .and_then(Node::as_str),
            Some("letsencrypt")
        );
    }

    #[test]
    fn dashboard_only_with_host_and_secret() {
        let d = docs("dashboard:\n  host: traefik.example.com\n  basicAuthSecret: dash-users\n");
        let cm = kind(&d, "ConfigMap", CONFIG_MAP);
        let dynamic = cm
            .at("data")
            .and_then(|d| d.get(DYNAMIC_FILE))
            .and_then(Node::as_str)
            .unwrap();
        assert!(dynamic.contains("Host(`traefik.example.com`)"), "{dynamic}");
        assert!(
            dynamic.contains("api@internal") && dynamic.contains("usersFile"),
            "{dynamic}"
        );
        let s = static_of(&d);
        assert_eq!(s.at("api.dashboard"), Some(&Node::Bool(true)));
        assert_eq!(s.at("api.insecure"), None);
        assert_eq!(
            s.at("providers.file.filename").and_then(Node::as_str),
            Some("/config/dynamic.yaml")
        );
        let dep = kind(&d, "Deployment", NAME).to_yaml().unwrap();
        assert!(dep.contains("secretName: dash-users"), "{dep}");
        // Not given both: no dashboard at all.
        let d = docs("dashboard: {}\n");
        assert!(static_of(&d).get("api").is_none());
        assert!(
            kind(&d, "ConfigMap", CONFIG_MAP)
                .at("data")
                .unwrap()
                .get(DYNAMIC_FILE)
                .is_none()
        );
    }

    #[test]
    fn crd_rules_only_when_enabled() {
        let d = docs("kubernetesCRD: true\nallowExternalNameServices: true\n");
        let text = kind(&d, "ClusterRole", "traefik-traefik")
            .to_yaml()
            .unwrap();
        assert!(
            text.contains("traefik.io")
                && text.contains("ingressroutes")
                && text.contains("configmaps")
        );
        let s = static_of(&d);
        assert_eq!(
            s.at("providers.kubernetesCRD.allowExternalNameServices"),
            Some(&Node::Bool(true))
        );
    }

    #[test]
    fn config_change_changes_the_pod_template() {
        let hash = |v: &str| {
            kind(&docs(v), "Deployment", NAME)
                .at("spec.template.metadata.annotations")
                .and_then(|a| a.get("checksum/config"))
                .cloned()
                .unwrap()
        };
        assert_eq!(hash(""), hash(""));
        assert_ne!(hash(""), hash("logLevel: DEBUG\n"));
    }

    #[test]
    fn extra_args_land_in_the_file() {
        let d = docs("extraArgs:\n  - --accesslog.format=json\n");
        assert_eq!(
            static_of(&d).at("accesslog.format").and_then(Node::as_str),
            Some("json")
        );
        let e = manifests(&crate::values::parse("extraArgs:\n  - --log.level=DEBUG\n").unwrap())
            .unwrap_err();
        assert_eq!((e[0].line, e[0].column), (2, 5));
    }

    #[test]
    fn formats() {
        let y = render("", Format::Yaml).unwrap().manifests;
        assert_eq!(y.matches("---\n").count(), 9);
        let j = render("", Format::Json).unwrap().manifests;
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["kind"], "List");
        assert_eq!(v["items"].as_array().unwrap().len(), 9);
        // Every YAML document parses back to the same object as its JSON twin.
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&y).unwrap();
        assert_eq!(serde_json::Value::Array(docs), v["items"]);
    }

    #[test]
    fn all_errors_at_once() {
        let e = render(
            "replicas: 0\nimage:\n  tag: latest\nlogLevel: loud\n",
            Format::Yaml,
        )
        .unwrap_err();
        assert_eq!(e.iter().map(|p| p.line).collect::<Vec<_>>(), [1, 3, 4]);
    }
}
