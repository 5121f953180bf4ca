//! What kstep keeps secret, in which forms, and the masker that hides it in everything kstep
//! prints. Every rule about secrets lives here; `docs/security.md` says the same for users.
//!
//! - **Which values** are registered ([`register`] and its siblings): the kubeconfig as read
//!   ([`register_kubeconfig`]), every credential in it (tokens, passwords, client keys and
//!   certificates, credential-named exec and auth-provider settings: [`register_setting`]), the
//!   key and token files it refers to, tokens kstep is issued, the values of Secret manifests
//!   ([`register_secret_manifest`]), and GitLab's credential variables found in the environment
//!   (registered when the masker is first used). An exec plugin's output is never seen by
//!   kstep's code: kube-rs runs the plugin, and its errors are only ever shown through
//!   `kube::safe_chain`, which never displays them.
//! - **From which length**: [`MIN_SECRET_LEN`] for a value and each of its forms (GitLab's
//!   masked-variable minimum: shorter values would blank out ordinary words), and
//!   [`MIN_LINE_LEN`] for the lines of a multi-line value (a line is a fragment; the bar is
//!   higher so that `apiVersion: v1` in a registered kubeconfig is not masked everywhere).
//! - **In which forms** ([`forms`]): as written; JSON-, Go- and YAML-escaped; base64 standard
//!   and URL-safe, padded or not, whole, wrapped at 64 and 76 columns, and the stretch a value
//!   produces at each of the three byte alignments inside a larger encoded blob; and each line
//!   of a multi-line value.
//! - **Which variables never feed a template** ([`is_credential_variable`]).
//! - **What a custom step sees of a Secret manifest** ([`StandIns`]): stand-ins for its
//!   values, unless the step is granted them (`secrets: true`).
//!
//! The masker ([`mask`]) replaces every occurrence of every registered form, overlapping or
//! adjacent ones included: all matches are found in one pass (Aho-Corasick, overlapping
//! search), their ranges merged, and each merged range becomes one [`MASK`]. Callers mask a
//! whole output before splitting or cutting it into lines, so a multi-line secret is matched
//! whole. The registry is process-global on purpose: a secret must be masked on every path,
//! including error messages built deep in libraries, without threading a handle through all
//! of them.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
// The one rule for which exec and auth-provider settings hold credentials, shared with the
// kubeconfig step that reports them. Only this pure function is linked natively.
use kstep_kubeconfig::decode::is_secret_name;

/// What replaces a secret.
pub const MASK: &str = "[MASKED]";

/// Values (and forms) shorter than this are not masked: GitLab refuses to mask them too, and
/// they would blank out ordinary words (a Secret's `username: deployer` is 8).
pub const MIN_SECRET_LEN: usize = 8;

/// A line of a multi-line value is registered from this length, when it has no whitespace
/// (PEM and wrapped base64 lines do; YAML lines like `apiVersion: v1` do not).
pub const MIN_LINE_LEN: usize = 16;

/// Values longer than this are registered by their lines only: the automaton grows with the
/// total length of the forms (a 1 MiB kubeconfig would take hundreds of MiB), and the
/// credentials inside such a value are registered on their own anyway.
const MAX_WHOLE_LEN: usize = 64 << 10;

/// The columns base64 tools wrap at: PEM and OpenSSL (64), `base64` (76).
const WRAP_COLUMNS: [usize; 2] = [64, 76];

/// kstep's kubeconfig variables and GitLab's predefined variables that hold a credential
/// (`CI_REPOSITORY_URL` embeds the job token; the JWTs are deprecated but still set on older
/// instances).
const CREDENTIAL_VARIABLES: &[&str] = &[
    "KUBECONFIG",
    "KSTEP_KUBECONFIG",
    "CI_JOB_TOKEN",
    "CI_BUILD_TOKEN",
    "CI_JOB_JWT",
    "CI_JOB_JWT_V1",
    "CI_JOB_JWT_V2",
    "CI_REGISTRY_PASSWORD",
    "CI_DEPLOY_PASSWORD",
    "CI_DEPENDENCY_PROXY_PASSWORD",
    "CI_REPOSITORY_URL",
];

/// The suffix GitLab's documentation gives `id_tokens:` names (`VAULT_ID_TOKEN`); ID tokens
/// named otherwise are recognised by their value (a JWT).
const ID_TOKEN_SUFFIX: &str = "ID_TOKEN";

/// Whether a variable's name says it holds a credential: kstep's kubeconfig variables,
/// GitLab's credential variables and ID tokens. A pipeline may not import such a variable
/// from the environment for its steps.
pub fn is_credential_name(name: &str) -> bool {
    CREDENTIAL_VARIABLES.contains(&name) || name.ends_with(ID_TOKEN_SUFFIX)
}

/// Whether a variable may never be the source of a template placeholder: its name says it
/// holds a credential ([`is_credential_name`]), its value is a JWT (an ID token under any
/// name), or its value holds a registered secret.
pub fn is_credential_variable(name: &str, value: &str) -> bool {
    is_credential_name(name) || is_jwt(value) || global().is_match(value)
}

/// A JSON Web Token: three base64url parts, the first a JSON object (`eyJ` is `{"`).
fn is_jwt(value: &str) -> bool {
    let parts: Vec<&str> = value.trim().split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts[..2].iter().all(|p| p.len() >= 4)
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

// ------------------------------------------------------------------------------ registration

/// Registers `secret` in all its [`forms`].
pub fn register(secret: &str) {
    global().add(secret);
}

/// Registers bytes read as a secret (a key or token file), as text.
pub fn register_bytes(secret: &[u8]) {
    register(&String::from_utf8_lossy(secret));
}

/// Registers a whole kubeconfig as read and trimmed, so that either form (and its encodings)
/// is masked wherever it shows up.
pub fn register_kubeconfig(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    register(&text);
    register(text.trim());
}

/// Registers a bearer token. The GitLab agent's token is `ci:<agent id>:<CI_JOB_TOKEN>`: the
/// job token alone is a secret too.
pub fn register_token(token: &str) {
    register(token);
    if let Some((_, job_token)) = token.strip_prefix("ci:").and_then(|t| t.split_once(':')) {
        register(job_token);
    }
}

/// Registers an exec-plugin environment value or an auth-provider setting when its name says
/// it is a credential. The others mostly hold plain values (`AWS_PROFILE=deploy`, a region):
/// masking them would blank out ordinary words.
pub fn register_setting(name: &str, value: &str) {
    if is_secret_name(name) {
        register(value);
    }
}

/// Whether `object` is a Secret manifest (`v1` `Secret`), whose `data` and `stringData`
/// values are secret.
pub fn is_secret_manifest(object: &serde_json::Value) -> bool {
    object.get("apiVersion").and_then(serde_json::Value::as_str) == Some("v1")
        && object.get("kind").and_then(serde_json::Value::as_str) == Some("Secret")
}

/// Registers the values of a Secret manifest ([`is_secret_manifest`]; anything else is
/// ignored): `stringData` values, and `data` values both as written (base64) and decoded.
pub fn register_secret_manifest(object: &serde_json::Value) {
    if !is_secret_manifest(object) {
        return;
    }
    let values = |key: &str| {
        object
            .get(key)
            .and_then(serde_json::Value::as_object)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(serde_json::Value::as_str)
    };
    for value in values("stringData") {
        register(value);
    }
    for encoded in values("data") {
        register(encoded);
        if let Ok(decoded) = STANDARD.decode(encoded) {
            register_bytes(&decoded);
        }
    }
}

/// The values of GitLab's credential variables in the environment (except the kubeconfig's,
/// which the credentials module reads, registers and may find to be a path). GitLab masks the
/// exact value of a masked variable only; kstep masks every form.
fn environment_credentials() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, _)| {
            is_credential_name(name) && name != "KUBECONFIG" && name != "KSTEP_KUBECONFIG"
        })
        .map(|(_, value)| value)
        .collect()
}

// ------------------------------------------------------------------------------- stand-ins

/// What a withheld Secret value becomes, numbered so that each stand-in names one value (in
/// `data`, the base64 of it, so the Secret stays valid).
const STAND_IN: &str = "withheld-by-kstep-";

/// The maps of a Secret manifest whose values are secret.
const SECRET_FIELDS: [&str; 2] = ["data", "stringData"];

/// The Secret values withheld from a custom step that is not granted them (`secrets: true`):
/// [`StandIns::withhold`] replaces each value of a Secret manifest's `data` and `stringData`
/// with a stand-in under the same key, and [`StandIns::restore`] puts the real value back
/// wherever the step returned a stand-in unchanged, so a step that only labels documents
/// leaves the Secrets intact.
#[derive(Debug, Default)]
pub struct StandIns {
    /// Stand-in → the field it stands in ([`SECRET_FIELDS`]) and the real value.
    values: HashMap<String, (&'static str, serde_json::Value)>,
}

impl StandIns {
    /// Replaces every value of the Secret manifests in `documents` with a stand-in.
    pub fn withhold(documents: &mut [serde_json::Value]) -> Self {
        let mut values = HashMap::new();
        for (field, value) in secret_values_mut(documents).filter(|(_, v)| !v.is_null()) {
            let text = format!("{STAND_IN}{}", values.len());
            let stand_in = if field == "data" {
                STANDARD.encode(text)
            } else {
                text
            };
            let real = std::mem::replace(value, serde_json::Value::String(stand_in.clone()));
            values.insert(stand_in, (field, real));
        }
        Self { values }
    }

    /// How many values were withheld.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether nothing was withheld.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Puts the real values back into `documents` (what the step returned): in every Secret
    /// manifest, a `data` or `stringData` value that is a stand-in of that same field. A value
    /// the step changed is kept as the step left it; a stand-in anywhere else (a ConfigMap, a
    /// `data` stand-in moved to `stringData`) stays a stand-in.
    pub fn restore(&self, documents: &mut [serde_json::Value]) {
        if self.values.is_empty() {
            return;
        }
        for (field, value) in secret_values_mut(documents) {
            if let Some((from, real)) = value.as_str().and_then(|s| self.values.get(s))
                && *from == field
            {
                *value = real.clone();
            }
        }
    }
}

/// Every value under `data` and `stringData` of the Secret manifests in `documents`, with the
/// field it is in.
fn secret_values_mut(
    documents: &mut [serde_json::Value],
) -> impl Iterator<Item = (&'static str, &mut serde_json::Value)> {
    documents
        .iter_mut()
        .filter(|d| is_secret_manifest(d))
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|object| {
            object.iter_mut().filter_map(|(key, map)| {
                let field = SECRET_FIELDS.into_iter().find(|f| f == key)?;
                Some((field, map.as_object_mut()?))
            })
        })
        .flat_map(|(field, map)| map.values_mut().map(move |value| (field, value)))
}

// ------------------------------------------------------------------------------------ forms

/// Every form of `value` that is registered, each at least [`MIN_SECRET_LEN`] long (lines at
/// least [`MIN_LINE_LEN`]); empty when `value` is too short.
pub fn forms(value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if value.len() < MIN_SECRET_LEN {
        return out;
    }
    let mut seen = HashSet::new();
    let mut push = |form: String, min: usize| {
        if form.len() >= min && seen.insert(form.clone()) {
            out.push(form);
        }
    };
    for line in value.lines().map(str::trim) {
        if line.len() < value.len() && !line.contains(char::is_whitespace) {
            push(line.to_owned(), MIN_LINE_LEN);
        }
    }
    if value.len() > MAX_WHOLE_LEN {
        return out;
    }
    push(value.to_owned(), MIN_SECRET_LEN);
    for style in [Escape::Json, Escape::GoJson, Escape::GoQuoted] {
        push(escape(value, style), MIN_SECRET_LEN);
    }
    // As the manifest step's emitter writes it (its core is linked natively for this rule).
    push(
        kstep_manifest::emit::double_quoted_body(value),
        MIN_SECRET_LEN,
    );
    let bytes = value.as_bytes();
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        push(engine.encode(bytes), MIN_SECRET_LEN);
    }
    let encoded = STANDARD.encode(bytes);
    for columns in WRAP_COLUMNS {
        if encoded.len() > columns {
            for chunk in encoded.as_bytes().chunks(columns) {
                push(String::from_utf8_lossy(chunk).into_owned(), MIN_LINE_LEN);
            }
        }
    }
    // The stretch of base64 wholly determined by the value's bits, wherever a larger blob puts
    // it: one per byte alignment.
    for shift in 0..3 {
        let mut padded = vec![0u8; shift];
        padded.extend_from_slice(bytes);
        let start = (8 * shift).div_ceil(6);
        let end = 8 * padded.len() / 6;
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            if let Some(core) = engine.encode(&padded).get(start..end) {
                push(core.to_owned(), MIN_SECRET_LEN);
            }
        }
    }
    out
}

/// How a string is escaped inside a quoted string of some format.
#[derive(Debug, Clone, Copy)]
enum Escape {
    /// JSON as serde_json writes it (`\n`, `\b`, `\u001b`).
    Json,
    /// JSON as Go's encoding/json writes it: also `<`, `>`, `&`, U+2028 and U+2029 as `\u…`.
    GoJson,
    /// Go's `%q` (`strconv.Quote`), the quoting of API server messages: `\a`, `\x1b`.
    GoQuoted,
}

/// The body of `value` quoted in `style`, without the quotes.
fn escape(value: &str, style: Escape) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{7}' if matches!(style, Escape::GoQuoted) => out.push_str("\\a"),
            '\u{b}' if matches!(style, Escape::GoQuoted) => out.push_str("\\v"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' if matches!(style, Escape::GoJson) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if needs_escape(c, style) => {
                let code = c as u32;
                let _ = match style {
                    Escape::GoQuoted if code < 0x80 => write!(out, "\\x{code:02x}"),
                    _ if code > 0xffff => write!(out, "\\U{code:08x}"),
                    _ => write!(out, "\\u{code:04x}"),
                };
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether `c` (not one of the characters with a short escape) is written as a code point.
fn needs_escape(c: char, style: Escape) -> bool {
    match style {
        Escape::Json | Escape::GoJson => c < ' ',
        Escape::GoQuoted => c.is_control(),
    }
}

// ----------------------------------------------------------------------------------- masker

/// A fixed set of secrets, ready to mask with.
#[derive(Debug, Default)]
pub struct Masker {
    automaton: Automaton,
}

#[derive(Debug, Default)]
enum Automaton {
    /// Nothing registered.
    #[default]
    Empty,
    /// Every form.
    Forms(AhoCorasick),
    /// The automaton could not be built (more states than it can number, far beyond the
    /// registration caps): everything is masked rather than nothing.
    Failed,
}

impl Masker {
    /// A masker for `secrets` alone (in all their [`forms`]), for output that must not go
    /// through the global registry (`kstep kubeconfig encode` prints a credential on stdout on
    /// purpose and masks its warnings only).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut forms = FormSet::default();
        for secret in secrets {
            forms.add(secret);
        }
        forms.masker()
    }

    /// `text` with every occurrence of every form replaced by [`MASK`], overlapping and
    /// adjacent occurrences merged into one.
    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let automaton = match &self.automaton {
            Automaton::Empty => return Cow::Borrowed(text),
            Automaton::Failed if text.is_empty() => return Cow::Borrowed(text),
            Automaton::Failed => return Cow::Borrowed(MASK),
            Automaton::Forms(automaton) => automaton,
        };
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        // Overlapping search reports every match of every form, in order of their ends.
        for m in automaton.find_overlapping_iter(text) {
            ranges.push((m.start(), m.end()));
        }
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        ranges.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut current: Option<(usize, usize)> = None;
        for (start, end) in ranges {
            match &mut current {
                Some((_, current_end)) if start <= *current_end => {
                    *current_end = (*current_end).max(end);
                }
                _ => {
                    if let Some((s, e)) = current.replace((start, end)) {
                        out.push_str(&text[copied..s]);
                        out.push_str(MASK);
                        copied = e;
                    }
                }
            }
        }
        if let Some((s, e)) = current {
            out.push_str(&text[copied..s]);
            out.push_str(MASK);
            copied = e;
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }

    /// Whether `text` holds any form.
    fn is_match(&self, text: &str) -> bool {
        match &self.automaton {
            Automaton::Empty => false,
            Automaton::Failed => true,
            Automaton::Forms(a) => a.is_match(text),
        }
    }
}

/// Registered forms, without duplicates.
#[derive(Debug, Default)]
struct FormSet {
    forms: HashSet<String>,
}

impl FormSet {
    /// Adds the forms of `secret`; whether any was new.
    fn add(&mut self, secret: &str) -> bool {
        let mut added = false;
        for form in forms(secret) {
            added |= self.forms.insert(form);
        }
        added
    }

    fn masker(&self) -> Masker {
        if self.forms.is_empty() {
            return Masker::default();
        }
        // Standard semantics: the only kind with overlapping search.
        let automaton = match AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(&self.forms)
        {
            Ok(automaton) => Automaton::Forms(automaton),
            Err(_) => Automaton::Failed,
        };
        Masker { automaton }
    }
}

/// The process-wide registry: the forms, and the masker built from them (rebuilt after a
/// registration, on the next use).
#[derive(Debug)]
struct Registry {
    state: RwLock<(FormSet, Option<Arc<Masker>>)>,
}

impl Registry {
    fn add(&self, secret: &str) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.0.add(secret) {
            state.1 = None;
        }
    }

    fn masker(&self) -> Arc<Masker> {
        {
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(masker) = &state.1 {
                return Arc::clone(masker);
            }
        }
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let (forms, cached) = &mut *state;
        Arc::clone(cached.get_or_insert_with(|| Arc::new(forms.masker())))
    }

    fn is_match(&self, text: &str) -> bool {
        self.masker().is_match(text)
    }
}

fn global() -> &'static Registry {
    static GLOBAL: LazyLock<Registry> = LazyLock::new(|| {
        let mut forms = FormSet::default();
        for value in environment_credentials() {
            forms.add(&value);
        }
        Registry {
            state: RwLock::new((forms, None)),
        }
    });
    &GLOBAL
}

/// `text` with every registered secret, in every form, replaced by [`MASK`].
pub fn mask(text: &str) -> Cow<'_, str> {
    global().masker().mask(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn masks_plain_and_embedded_base64() {
        let secret = "s3cr3t-token-value";
        register(secret);
        assert_eq!(mask(&format!("a {secret} b")), "a [MASKED] b");
        assert_eq!(mask(&STANDARD.encode(secret)), MASK);
        for prefix in ["", "x", "xy", "xyz"] {
            let blob = STANDARD.encode(format!("{prefix}token: {secret}\nmore"));
            let masked = mask(&blob);
            assert!(
                !masked.contains(&STANDARD_NO_PAD.encode(secret)[4..12]),
                "{prefix:?}"
            );
            assert!(masked.contains(MASK), "{prefix:?}");
        }
        assert_eq!(mask("nothing here"), "nothing here");
    }

    #[test]
    fn short_values_are_not_masked() {
        register("abc1234");
        assert_eq!(mask("abc1234 abcd"), "abc1234 abcd");
        assert!(forms("abc1234").is_empty());
    }

    #[test]
    fn overlapping_and_adjacent_secrets_leave_nothing_visible() {
        let masker = Masker::new(["AAAAbbbbCCCC", "CCCCddddEEEE", "zzzzyyyyxxxx"]);
        // Overlapping: one mask over both.
        assert_eq!(masker.mask("<AAAAbbbbCCCCddddEEEE>"), "<[MASKED]>");
        // Adjacent: merged too.
        assert_eq!(masker.mask("AAAAbbbbCCCCzzzzyyyyxxxx."), "[MASKED].");
        // One inside another.
        let inner = Masker::new(["0123456789abcdef", "456789ab"]);
        assert_eq!(
            inner.mask("x0123456789abcdefx 456789ab"),
            "x[MASKED]x [MASKED]"
        );
    }

    #[test]
    fn escaped_and_url_safe_forms_are_registered() {
        let secret = "pa\"ss\\wo\nrd\u{1b}<&>?~~~";
        let forms = forms(secret);
        for expected in [
            serde_json::to_string(secret)
                .unwrap()
                .trim_matches('"')
                .to_owned(),
            "pa\\\"ss\\\\wo\\nrd\\u001b\\u003c\\u0026\\u003e?~~~".to_owned(),
            "pa\\\"ss\\\\wo\\nrd\\x1b<&>?~~~".to_owned(),
            URL_SAFE.encode(secret),
            URL_SAFE_NO_PAD.encode(secret),
        ] {
            assert!(forms.contains(&expected), "{expected}");
        }
        // YAML as the manifest step writes it: the same text the step's emitter produces.
        let yaml = kstep_manifest::emit::double_quoted_body(secret);
        assert_eq!(yaml, "pa\\\"ss\\\\wo\\nrd\\u001b<&>?~~~");
    }

    #[test]
    fn escaped_forms_are_what_the_manifest_step_writes() {
        use crate::steps::manifest::{self, Options, OutputFormat, Request, Source};
        // The forms must be what the step really writes: render through it.
        let runtime = crate::runtime::Runtime::new().unwrap();
        let secret = "tab\there \"quoted\" back\\slash bell\u{7} esc\u{1b} del\u{7f} nel\u{85}";
        for (output, form) in [
            (
                OutputFormat::YamlOnly,
                kstep_manifest::emit::double_quoted_body(secret),
            ),
            (OutputFormat::JsonOnly, escape(secret, Escape::Json)),
        ] {
            let request = Request {
                sources: vec![Source {
                    name: "cm.yaml".into(),
                    text: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  k: \"${V}\"\n".into(),
                }],
                variables: vec![("V".into(), secret.into())],
                images: vec![],
                options: Options {
                    upgrade_api_versions: false,
                    allow_unmatched_images: false,
                    literal: false,
                    output,
                },
            };
            let rendered = manifest::render(&runtime, &request).unwrap().unwrap();
            let text = rendered.text.unwrap();
            assert!(text.contains(&form), "{output:?}: {form:?} not in {text:?}");
        }
    }

    #[test]
    fn lines_of_a_multi_line_secret_are_registered_when_long_enough() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\r\nshort==\n-----END PRIVATE KEY-----\n";
        let pem_forms = forms(pem);
        assert!(pem_forms.contains(&"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC".to_owned()));
        assert!(!pem_forms.iter().any(|f| f == "short=="));
        assert!(
            !pem_forms
                .iter()
                .any(|f| f.starts_with("-----BEGIN") && f.len() < 40)
        );
        // A kubeconfig's YAML lines have spaces: never registered alone.
        let kubeconfig = "apiVersion: v1\nkind: Config\nusers:\n- name: ci\n  user:\n    token: tok3n-value-1234\n";
        assert!(
            !forms(kubeconfig)
                .iter()
                .any(|f| f.starts_with("apiVersion") && f.len() < kubeconfig.len() - 1)
        );
    }

    #[test]
    fn wrapped_base64_is_masked_line_by_line() {
        let secret = "k".repeat(200);
        register(&secret);
        let encoded = STANDARD.encode(&secret);
        for columns in WRAP_COLUMNS {
            let wrapped: Vec<&str> = encoded
                .as_bytes()
                .chunks(columns)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            let text = wrapped.join("\n");
            let masked = mask(&text);
            for line in masked.lines() {
                assert!(line == MASK || line.len() < MIN_LINE_LEN, "{line}");
            }
        }
    }

    #[test]
    fn secret_manifests_register_decoded_and_written_values() {
        let manifest = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "stringData": {"password": "manifest-string-secret", "short": "abc"},
            "data": {"token": STANDARD.encode("manifest-data-secret")},
        });
        register_secret_manifest(&manifest);
        let text = format!(
            "manifest-string-secret manifest-data-secret {} abc",
            STANDARD.encode("manifest-data-secret")
        );
        assert_eq!(mask(&text), "[MASKED] [MASKED] [MASKED] abc");
        // Not a Secret: nothing registered.
        register_secret_manifest(&serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "configmap-plain-value"}
        }));
        assert_eq!(mask("configmap-plain-value"), "configmap-plain-value");
    }

    #[test]
    fn secret_values_are_withheld_and_restored_when_returned_unchanged() {
        let data = STANDARD.encode("real-data-value");
        let original = vec![
            serde_json::json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                "stringData": {"password": "real-string-value", "user": "deployer", "none": null},
                "data": {"token": data},
            }),
            serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                "data": {"k": "plain-configmap-value"},
            }),
        ];
        let mut given = original.clone();
        let stand_ins = StandIns::withhold(&mut given);
        assert_eq!(stand_ins.len(), 3);
        let text = serde_json::to_string(&given).unwrap();
        for real in ["real-string-value", "deployer", data.as_str()] {
            assert!(!text.contains(real), "{real} in {text}");
        }
        // Keys kept, `data` still base64, nulls and other kinds untouched.
        let stand_in = given[0]["data"]["token"].as_str().unwrap().to_owned();
        assert!(
            String::from_utf8(STANDARD.decode(&stand_in).unwrap())
                .unwrap()
                .starts_with(STAND_IN)
        );
        assert!(given[0]["stringData"]["none"].is_null());
        assert_eq!(given[1], original[1]);

        // Returned unchanged (with a label added): the real values come back.
        let mut returned = given.clone();
        returned[0]["metadata"]["labels"] = serde_json::json!({"team": "a"});
        stand_ins.restore(&mut returned);
        assert_eq!(returned[0]["stringData"], original[0]["stringData"]);
        assert_eq!(returned[0]["data"], original[0]["data"]);

        // Changed values stay changed; stand-ins moved out of their field or into another
        // kind stay stand-ins.
        let mut returned = given.clone();
        let password = given[0]["stringData"]["password"].clone();
        returned[0]["stringData"]["password"] = "changed-by-step".into();
        returned[0]["stringData"]["moved"] = stand_in.clone().into();
        returned[1]["data"]["copied"] = password.clone();
        stand_ins.restore(&mut returned);
        assert_eq!(returned[0]["stringData"]["password"], "changed-by-step");
        assert_eq!(returned[0]["stringData"]["moved"], stand_in.as_str());
        assert_eq!(returned[0]["stringData"]["user"], "deployer");
        assert_eq!(returned[1]["data"]["copied"], password);
    }

    #[test]
    fn agent_tokens_register_the_job_token() {
        register_token("ci:4242:glcbt-64_agentJobTokenValue");
        assert_eq!(mask("glcbt-64_agentJobTokenValue"), MASK);
    }

    #[test]
    fn settings_are_registered_by_name() {
        register_setting("AWS_SECRET_ACCESS_KEY", "setting-secret-value");
        register_setting("AWS_PROFILE", "deployment-profile");
        assert_eq!(mask("setting-secret-value"), MASK);
        assert_eq!(mask("deployment-profile"), "deployment-profile");
    }

    #[test]
    fn credential_variables() {
        for name in [
            "KUBECONFIG",
            "CI_JOB_TOKEN",
            "CI_REPOSITORY_URL",
            "VAULT_ID_TOKEN",
        ] {
            assert!(is_credential_variable(name, ""), "{name}");
        }
        assert!(!is_credential_variable("CI_COMMIT_SHA", "0123456789abcdef"));
        assert!(is_credential_variable(
            "MY_OIDC",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
        ));
        register("registered-for-variables");
        assert!(is_credential_variable(
            "DATABASE_URL",
            "postgres://u:registered-for-variables@db"
        ));
        assert!(!is_credential_variable(
            "IMAGE",
            "registry.example/app:1.2.3"
        ));
    }

    /// Random secrets, random surrounding text, random write boundaries: whatever a guest
    /// writes, no registered form survives the path guest output takes (captured in a
    /// `MemoryOutputPipe`, then [`crate::output::guest_text`]).
    mod property {
        use proptest::prelude::*;
        use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
        use wasmtime_wasi_io::bytes::Bytes;
        use wasmtime_wasi_io::streams::OutputStream as _;

        use super::super::*;

        /// Letters, digits, base64 and URL punctuation, quotes, backslashes, whitespace,
        /// control characters and non-ASCII; no `[`, which would let a secret forge [`MASK`].
        const ALPHABET: &[char] = &[
            'a', 'b', 'c', 'x', 'y', 'z', 'A', 'B', 'Q', 'Z', '0', '1', '7', '9', '+', '/', '=',
            '-', '_', '.', ':', '@', '"', '\\', '\'', ' ', '\t', '\u{1b}', '\u{7}', '<', '&', 'é',
            '€', '🔑',
        ];

        fn text(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
            proptest::collection::vec(proptest::sample::select(ALPHABET), len)
                .prop_map(|chars| chars.into_iter().collect())
        }

        /// One line of secret characters, or a PEM-like multi-line block.
        fn secret() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => text(8..40),
                1 => proptest::collection::vec("[A-Za-z0-9+/]{8,64}", 1..5).prop_map(|lines| {
                    format!("-----BEGIN KEY-----\n{}\n-----END KEY-----\n", lines.join("\n"))
                }),
            ]
        }

        /// One to three secrets; a later one may start with the end of the one before, so
        /// that their occurrences overlap.
        fn secrets() -> impl Strategy<Value = Vec<String>> {
            proptest::collection::vec((secret(), 0usize..12, any::<bool>()), 1..4).prop_map(
                |parts| {
                    let mut out: Vec<String> = Vec::new();
                    for (secret, k, overlap) in parts {
                        let secret = match out.last() {
                            Some(previous) if overlap => {
                                let chars: Vec<char> = previous.chars().collect();
                                let tail: String =
                                    chars[chars.len().saturating_sub(k)..].iter().collect();
                                tail + &secret
                            }
                            _ => secret,
                        };
                        out.push(secret);
                    }
                    out
                },
            )
        }

        /// What a piece of the guest's output is.
        #[derive(Debug, Clone)]
        enum Piece {
            Noise(String),
            /// Form `form` (modulo their number) of secret `secret`.
            Form(usize, usize),
            /// Secret `secret` followed by the next one without their common part (overlap).
            Chain(usize),
            /// base64 of noise, the secret and noise (any alignment).
            Embedded(usize, String, String),
        }

        fn piece() -> impl Strategy<Value = Piece> {
            prop_oneof![
                text(0..20).prop_map(Piece::Noise),
                Just(Piece::Noise("\n".into())),
                (any::<usize>(), any::<usize>()).prop_map(|(s, f)| Piece::Form(s, f)),
                any::<usize>().prop_map(Piece::Chain),
                (any::<usize>(), text(0..4), text(0..4))
                    .prop_map(|(s, a, b)| Piece::Embedded(s, a, b)),
            ]
        }

        fn render(pieces: &[Piece], secrets: &[String]) -> String {
            let mut out = String::new();
            for piece in pieces {
                match piece {
                    Piece::Noise(text) => out.push_str(text),
                    Piece::Form(s, f) => {
                        let forms = forms(&secrets[s % secrets.len()]);
                        if !forms.is_empty() {
                            out.push_str(&forms[f % forms.len()]);
                        }
                    }
                    Piece::Chain(s) => {
                        let first = &secrets[s % secrets.len()];
                        let next = &secrets[(s + 1) % secrets.len()];
                        out.push_str(first);
                        let common = (0..=first.len().min(next.len()))
                            .rev()
                            .find(|&k| {
                                first.is_char_boundary(first.len() - k)
                                    && next.is_char_boundary(k)
                                    && first.ends_with(&next[..k])
                            })
                            .unwrap_or(0);
                        out.push_str(&next[common..]);
                    }
                    Piece::Embedded(s, before, after) => {
                        let blob = format!("{before}{}{after}", secrets[s % secrets.len()]);
                        out.push_str(&STANDARD.encode(blob));
                    }
                }
            }
            out
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

            #[test]
            fn no_registered_form_survives_guest_output(
                secrets in secrets(),
                pieces in proptest::collection::vec(piece(), 1..12),
                cuts in proptest::collection::vec(any::<usize>(), 0..8),
            ) {
                for secret in &secrets {
                    register(secret);
                }
                let written = render(&pieces, &secrets);
                // The guest writes in chunks cut anywhere, even inside a character.
                let bytes = written.as_bytes();
                let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
                cuts.push(0);
                cuts.push(bytes.len());
                cuts.sort_unstable();
                let mut pipe = MemoryOutputPipe::new(1 << 20);
                for pair in cuts.windows(2) {
                    pipe.write(Bytes::copy_from_slice(&bytes[pair[0]..pair[1]])).unwrap();
                }
                let shown = crate::output::guest_text("step", &pipe.contents());
                for secret in &secrets {
                    for form in forms(secret) {
                        prop_assert!(
                            !shown.contains(&form),
                            "form {form:?} of {secret:?} in {shown:?}"
                        );
                    }
                    // Nor any line of a multi-line secret, even one too short to be registered
                    // alone: the output is masked whole before it is split.
                    for line in secret.lines().filter(|l| l.len() >= MIN_SECRET_LEN && !l.starts_with("-----")) {
                        prop_assert!(!shown.contains(line), "line {line:?} of {secret:?} in {shown:?}");
                    }
                }
            }

            #[test]
            fn every_occurrence_is_masked_and_overlaps_merged(
                secrets in secrets(),
                pieces in proptest::collection::vec(piece(), 1..12),
            ) {
                let text = render(&pieces, &secrets);
                let masker = Masker::new(secrets.iter().map(String::as_str));
                // The oracle: every byte inside any occurrence of any form, found by trying
                // every start; each run of such bytes is one mask.
                let bytes = text.as_bytes();
                let mut covered = vec![false; bytes.len()];
                for form in secrets.iter().flat_map(|s| forms(s)) {
                    for start in 0..bytes.len() {
                        if bytes[start..].starts_with(form.as_bytes()) {
                            covered[start..start + form.len()].fill(true);
                        }
                    }
                }
                let mut expected = Vec::new();
                for (i, &byte) in bytes.iter().enumerate() {
                    if !covered[i] {
                        expected.push(byte);
                    } else if i == 0 || !covered[i - 1] {
                        expected.extend_from_slice(MASK.as_bytes());
                    }
                }
                prop_assert_eq!(masker.mask(&text).into_owned(), String::from_utf8(expected).unwrap());
            }
        }
    }
}
