//! WIT glue: exports the core as the `kstep:builtin/kubeconfig` interface, converting between the
//! generated types and [`crate::connection`].

// wit-bindgen emits the canonical-ABI exports as `unsafe extern` functions.
#[allow(unsafe_code, missing_docs)]
mod bindings {
    // `generate_all`: the shared `kstep:steps/types` come from the public package.
    wit_bindgen::generate!({ path: "../../wit/builtin", world: "kubeconfig-step", generate_all });
    use super::Step;
    export!(Step);
}

use bindings::exports::kstep::builtin::kubeconfig as k;
use bindings::kstep::steps::types::{Diagnostic, Severity};

use crate::connection as c;

struct Step;

impl k::Guest for Step {
    fn decode(
        inputs: Vec<k::Input>,
        context: Option<String>,
    ) -> Result<k::Decoded, k::DecodeFailure> {
        let inputs: Vec<c::Input<'_>> = inputs
            .iter()
            .map(|i| c::Input {
                label: &i.label,
                dir: i.dir.as_deref(),
                data: &i.data,
            })
            .collect();
        crate::decode::decode(&inputs, context.as_deref())
            .map(|d| k::Decoded {
                forms: d.forms.into_iter().map(form).collect(),
                connection: connection_out(d.connection),
                contexts: d.contexts,
                ca_fingerprints: d.ca_fingerprints,
                warnings: d.warnings.into_iter().map(diagnostic).collect(),
                secrets: d.secrets,
            })
            .map_err(|f| k::DecodeFailure {
                diagnostics: f.diagnostics.into_iter().map(diagnostic).collect(),
                secrets: f.secrets,
            })
    }

    fn render(connection: k::Connection) -> String {
        // Serialising these plain types cannot fail; an empty string would be caught by the
        // host, which parses what it writes.
        crate::render::render(&connection_in(connection)).unwrap_or_default()
    }

    fn encode(kubeconfig: Vec<u8>) -> Result<String, Diagnostic> {
        crate::masked::encode(&kubeconfig).map_err(diagnostic)
    }
}

fn diagnostic(d: c::Diagnostic) -> Diagnostic {
    Diagnostic {
        severity: match d.severity {
            c::Severity::Error => Severity::Error,
            c::Severity::Warning => Severity::Warning,
        },
        message: d.message,
        source: d.source,
        line: d.line,
        column: d.column,
    }
}

fn form(f: c::Form) -> k::InputForm {
    match f {
        c::Form::Base64OneLine => k::InputForm::Base64OneLine,
        c::Form::Base64Wrapped => k::InputForm::Base64Wrapped,
        c::Form::Yaml => k::InputForm::Yaml,
        c::Form::Json => k::InputForm::Json,
    }
}

/// Converts a connection between the core's types (`c`) and the generated WIT types (`k`),
/// either way: the two are the same record field for field, so one body serves both
/// directions and a field added to one side cannot be forgotten in only one of them.
macro_rules! convert_connection {
    ($conn:expr, $from:ident => $to:ident) => {{
        let conn = $conn;
        let material = |m: $from::Material| match m {
            $from::Material::Data(d) => $to::Material::Data(d),
            $from::Material::File(f) => $to::Material::File(f),
        };
        $to::Connection {
            context: conn.context,
            cluster: conn.cluster,
            user: conn.user,
            server: conn.server,
            certificate_authority: conn.certificate_authority.map(material),
            insecure_skip_tls_verify: conn.insecure_skip_tls_verify,
            tls_server_name: conn.tls_server_name,
            proxy_url: conn.proxy_url,
            namespace: conn.namespace,
            auth: match conn.auth {
                $from::Auth::None => $to::Auth::None,
                $from::Auth::Token(t) => $to::Auth::Token(t),
                $from::Auth::TokenFile(f) => $to::Auth::TokenFile(f),
                $from::Auth::ClientCertificate(cc) => {
                    $to::Auth::ClientCertificate($to::ClientCertificate {
                        certificate: material(cc.certificate),
                        key: material(cc.key),
                    })
                }
                $from::Auth::Basic(b) => $to::Auth::Basic($to::BasicAuth {
                    username: b.username,
                    password: b.password,
                }),
                $from::Auth::Exec(e) => $to::Auth::Exec($to::ExecPlugin {
                    command: e.command,
                    args: e.args,
                    env: e.env,
                    api_version: e.api_version,
                    install_hint: e.install_hint,
                    provide_cluster_info: e.provide_cluster_info,
                    interactive_mode: e.interactive_mode,
                }),
                $from::Auth::AuthProvider(p) => $to::Auth::AuthProvider($to::AuthProvider {
                    name: p.name,
                    config: p.config,
                }),
            },
        }
    }};
}

fn connection_out(conn: c::Connection) -> k::Connection {
    convert_connection!(conn, c => k)
}

fn connection_in(conn: k::Connection) -> c::Connection {
    convert_connection!(conn, k => c)
}
