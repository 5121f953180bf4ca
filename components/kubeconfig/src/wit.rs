//! WIT glue: exports the core as the `kstep:steps/kubeconfig` interface, converting between the
//! generated types and [`crate::connection`].

// wit-bindgen emits the canonical-ABI exports as `unsafe extern` functions.
#[allow(unsafe_code, missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "kubeconfig-step" });
    use super::Step;
    export!(Step);
}

use bindings::exports::kstep::steps::kubeconfig as k;
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

fn material_out(m: c::Material) -> k::Material {
    match m {
        c::Material::Data(d) => k::Material::Data(d),
        c::Material::File(f) => k::Material::File(f),
    }
}

fn material_in(m: k::Material) -> c::Material {
    match m {
        k::Material::Data(d) => c::Material::Data(d),
        k::Material::File(f) => c::Material::File(f),
    }
}

fn connection_out(conn: c::Connection) -> k::Connection {
    k::Connection {
        context: conn.context,
        cluster: conn.cluster,
        user: conn.user,
        server: conn.server,
        certificate_authority: conn.certificate_authority.map(material_out),
        insecure_skip_tls_verify: conn.insecure_skip_tls_verify,
        tls_server_name: conn.tls_server_name,
        proxy_url: conn.proxy_url,
        namespace: conn.namespace,
        auth: match conn.auth {
            c::Auth::None => k::Auth::None,
            c::Auth::Token(t) => k::Auth::Token(t),
            c::Auth::TokenFile(f) => k::Auth::TokenFile(f),
            c::Auth::ClientCertificate(cc) => k::Auth::ClientCertificate(k::ClientCertificate {
                certificate: material_out(cc.certificate),
                key: material_out(cc.key),
            }),
            c::Auth::Basic(b) => k::Auth::Basic(k::BasicAuth {
                username: b.username,
                password: b.password,
            }),
            c::Auth::Exec(e) => k::Auth::Exec(k::ExecPlugin {
                command: e.command,
                args: e.args,
                env: e.env,
                api_version: e.api_version,
                install_hint: e.install_hint,
                provide_cluster_info: e.provide_cluster_info,
                interactive_mode: e.interactive_mode,
            }),
            c::Auth::AuthProvider(p) => k::Auth::AuthProvider(k::AuthProvider {
                name: p.name,
                config: p.config,
            }),
        },
    }
}

fn connection_in(conn: k::Connection) -> c::Connection {
    c::Connection {
        context: conn.context,
        cluster: conn.cluster,
        user: conn.user,
        server: conn.server,
        certificate_authority: conn.certificate_authority.map(material_in),
        insecure_skip_tls_verify: conn.insecure_skip_tls_verify,
        tls_server_name: conn.tls_server_name,
        proxy_url: conn.proxy_url,
        namespace: conn.namespace,
        auth: match conn.auth {
            k::Auth::None => c::Auth::None,
            k::Auth::Token(t) => c::Auth::Token(t),
            k::Auth::TokenFile(f) => c::Auth::TokenFile(f),
            k::Auth::ClientCertificate(cc) => c::Auth::ClientCertificate(c::ClientCertificate {
                certificate: material_in(cc.certificate),
                key: material_in(cc.key),
            }),
            k::Auth::Basic(b) => c::Auth::Basic(c::BasicAuth {
                username: b.username,
                password: b.password,
            }),
            k::Auth::Exec(e) => c::Auth::Exec(c::ExecPlugin {
                command: e.command,
                args: e.args,
                env: e.env,
                api_version: e.api_version,
                install_hint: e.install_hint,
                provide_cluster_info: e.provide_cluster_info,
                interactive_mode: e.interactive_mode,
            }),
            k::Auth::AuthProvider(p) => c::Auth::AuthProvider(c::AuthProvider {
                name: p.name,
                config: p.config,
            }),
        },
    }
}
