//! Container image references (the docker/distribution `reference` grammar) and `--image`
//! overrides.
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path
//! domain     := host [ ":" port ]            host: DNS name, IPv4 or [IPv6]
//! path       := component ( "/" component )*  component: [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest     := algorithm ":" hex             sha256: 64 lowercase hex digits
//! ```
//!
//! The first path element is a registry when it contains `.` or `:`, is `localhost`, or has an
//! upper-case letter (docker's `splitDockerDomain`); the tag is after the last `:` that follows
//! the last `/`, so `registry.local:5000/team/app` has a port and no tag.

use std::fmt;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host and port, as written (`registry.local:5000`), when there is one.
    pub domain: Option<String>,
    /// Repository path (`team/app`).
    pub path: String,
    /// Tag, when there is one.
    pub tag: Option<String>,
    /// Digest (`sha256:…`), when there is one.
    pub digest: Option<String>,
}

/// Why a text is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The empty string.
    #[error("the reference is empty")]
    Empty,
    /// Upper case in the repository path.
    #[error("the repository name must be lowercase")]
    Uppercase,
    /// A path component breaks the grammar.
    #[error("`{0}` is not a valid repository path component")]
    Component(String),
    /// A bad registry host or port.
    #[error("`{0}` is not a valid registry host[:port]")]
    Domain(String),
    /// A bad tag.
    #[error(
        "`{0}` is not a valid tag (letters, digits, `_`, `.`, `-`, at most 128, not starting with `.` or `-`)"
    )]
    Tag(String),
    /// A bad digest.
    #[error("`{0}` is not a valid digest ({1})")]
    Digest(String, &'static str),
    /// Longer than 255 characters.
    #[error("the repository name is longer than 255 characters")]
    TooLong,
    /// Whitespace or another character no part of a reference accepts.
    #[error("the reference contains whitespace or a control character")]
    Whitespace,
}

impl Reference {
    /// Parses `text` with the full grammar.
    ///
    /// # Errors
    /// [`ReferenceError`] naming the part that is wrong.
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        if text.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ReferenceError::Whitespace);
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(parse_digest(digest)?)),
            None => (text, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                if !valid_tag(tag) {
                    return Err(ReferenceError::Tag(tag.to_owned()));
                }
                (&rest[..last_slash + i], Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        if name.len() > 255 {
            return Err(ReferenceError::TooLong);
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                if !valid_domain(first) {
                    return Err(ReferenceError::Domain(first.to_owned()));
                }
                (Some(first.to_owned()), path)
            }
            _ => (None, name),
        };
        for component in path.split('/') {
            if component.chars().any(|c| c.is_ascii_uppercase()) {
                return Err(ReferenceError::Uppercase);
            }
            if !valid_component(component) {
                return Err(ReferenceError::Component(component.to_owned()));
            }
        }
        Ok(Self {
            domain,
            path: path.to_owned(),
            tag,
            digest,
        })
    }

    /// The repository as written: `[domain/]path`.
    pub fn repository(&self) -> String {
        match &self.domain {
            Some(d) => format!("{d}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// The repository as the container runtime resolves it: `nginx`, `library/nginx`,
    /// `docker.io/library/nginx` and `index.docker.io/library/nginx` are the same.
    pub fn canonical_repository(&self) -> String {
        let domain = match self.domain.as_deref() {
            None | Some("index.docker.io") => "docker.io",
            Some(d) => d,
        };
        if domain == "docker.io" && !self.path.contains('/') {
            format!("docker.io/library/{}", self.path)
        } else {
            format!("{domain}/{}", self.path)
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn valid_tag(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    tag.len() <= 128
        && chars.next().is_some_and(word)
        && chars.all(|c| word(c) || c == '.' || c == '-')
}

fn valid_component(component: &str) -> bool {
    // [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        // [IPv6]:port
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty()
            || !v6
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => return !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
                None => return false,
            },
        }
    } else {
        match domain.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    host.split('.').all(label_ok)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_digest(digest: &str) -> Result<String, ReferenceError> {
    let bad = |why| ReferenceError::Digest(digest.to_owned(), why);
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or(bad("expected algorithm:hex"))?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.split(['-', '_', '+', '.']).all(|part| {
            let mut c = part.chars();
            c.next().is_some_and(|f| f.is_ascii_alphabetic())
                && c.all(|c| c.is_ascii_alphanumeric())
        });
    if !algorithm_ok {
        return Err(bad("bad algorithm"));
    }
    let expected = match algorithm {
        "sha256" => Some(64),
        "sha384" => Some(96),
        "sha512" => Some(128),
        _ => None,
    };
    match expected {
        Some(n) if hex.len() != n => return Err(bad("wrong length for its algorithm")),
        Some(_)
            if !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            return Err(bad("expected lowercase hex digits"));
        }
        None if hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            return Err(bad("expected at least 32 hex digits"));
        }
        _ => {}
    }
    Ok(digest.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parts(text: &str) -> (Option<String>, String, Option<String>, Option<String>) {
        let r = Reference::parse(text).unwrap();
        assert_eq!(r.to_string(), text, "round trip");
        (r.domain, r.path, r.tag, r.digest)
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn the_brief_examples() {
        assert_eq!(parts("nginx"), (None, "nginx".into(), None, None));
        assert_eq!(parts("nginx:1.27"), (None, "nginx".into(), s("1.27"), None));
        let d = format!("sha256:{HEX}");
        assert_eq!(
            parts(&format!("library/nginx@{d}")),
            (None, "library/nginx".into(), None, s(&d))
        );
        assert_eq!(
            parts("registry.local:5000/team/app:2.0"),
            (s("registry.local:5000"), "team/app".into(), s("2.0"), None)
        );
        assert_eq!(
            parts("registry.local:5000/team/app"),
            (s("registry.local:5000"), "team/app".into(), None, None)
        );
        assert_eq!(
            parts(&format!("ghcr.io/org/app:1.0@{d}")),
            (s("ghcr.io"), "org/app".into(), s("1.0"), s(&d))
        );
    }

    #[test]
    fn more_of_the_grammar() {
        assert_eq!(parts("localhost/app").0, s("localhost"));
        assert_eq!(parts("localhost:5000/app:v1").0, s("localhost:5000"));
        // No slash: `localhost:5000` is the repository `localhost` with tag `5000`.
        assert_eq!(
            parts("localhost:5000"),
            (None, "localhost".into(), s("5000"), None)
        );
        assert_eq!(parts("[::1]:5000/app").0, s("[::1]:5000"));
        assert_eq!(parts("127.0.0.1:5000/a/b/c").1, "a/b/c");
        assert_eq!(parts("Registry/app").0, s("Registry"));
        assert_eq!(parts("team/app").0, None);
        assert_eq!(parts("a__b/c-d---e.f_g:_tag.x-y").1, "a__b/c-d---e.f_g");
        assert_eq!(
            parts("gitlab.registry/group/project:abc1234-42-7").2,
            s("abc1234-42-7")
        );
        assert_eq!(
            Reference::parse("registry.local:5000/team/app:2.0")
                .unwrap()
                .repository(),
            "registry.local:5000/team/app"
        );
    }

    #[test]
    fn rejections() {
        use ReferenceError as E;
        assert_eq!(Reference::parse(""), Err(E::Empty));
        assert_eq!(Reference::parse("IMAGE"), Err(E::Uppercase));
        assert_eq!(Reference::parse("team/App"), Err(E::Uppercase));
        assert_eq!(Reference::parse("a b"), Err(E::Whitespace));
        assert!(matches!(Reference::parse("app:.bad"), Err(E::Tag(_))));
        assert!(matches!(
            Reference::parse(&format!("app:{}", "x".repeat(129))),
            Err(E::Tag(_))
        ));
        assert!(matches!(
            Reference::parse("app@sha256:abc"),
            Err(E::Digest(..))
        ));
        assert!(matches!(
            Reference::parse(&format!("app@sha256:{}", HEX.to_uppercase())),
            Err(E::Digest(..))
        ));
        assert!(matches!(Reference::parse("-app"), Err(E::Component(_))));
        assert!(matches!(Reference::parse("a..b"), Err(E::Component(_))));
        assert!(matches!(Reference::parse("a___b"), Err(E::Component(_))));
        assert!(matches!(Reference::parse("app/"), Err(E::Component(_))));
        assert!(matches!(Reference::parse("reg-.io/app"), Err(E::Domain(_))));
        assert!(matches!(
            Reference::parse("reg.io:port/app"),
            Err(E::Domain(_))
        ));
        assert!(matches!(
            Reference::parse(&"a".repeat(256)),
            Err(E::TooLong)
        ));
        assert!(Reference::parse(&format!("app@sha512:{}", "a".repeat(128))).is_ok());
        assert!(Reference::parse(&format!("app@blake3:{}", "a".repeat(32))).is_ok());
    }

    #[test]
    fn canonical_repositories() {
        let c = |t: &str| Reference::parse(t).unwrap().canonical_repository();
        assert_eq!(c("nginx"), "docker.io/library/nginx");
        assert_eq!(c("library/nginx:1"), "docker.io/library/nginx");
        assert_eq!(c("docker.io/nginx"), "docker.io/library/nginx");
        assert_eq!(
            c("index.docker.io/library/nginx"),
            "docker.io/library/nginx"
        );
        assert_eq!(
            c("registry.local:5000/team/app:2.0"),
            "registry.local:5000/team/app"
        );
        assert_ne!(
            c("registry.local:5000/team/app"),
            c("registry.local:5000/team/app2")
        );
        assert_ne!(
            c("registry.local:5000/team/app"),
            c("registry.local:5001/team/app")
        );
    }
}
