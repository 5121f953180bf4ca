//! Just enough PEM to check certificate and key data and fingerprint CA certificates.
//!
//! Errors describe the shape of the problem ("no `-----BEGIN` line", "block 2 is not base64"),
//! never the content: a client key is a secret.

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// One PEM block: its label (`CERTIFICATE`, `RSA PRIVATE KEY`…) and DER content.
#[derive(Debug)]
pub struct Block {
    /// The text after `-----BEGIN `.
    pub label: String,
    /// The decoded body.
    pub der: Vec<u8>,
}

/// What kind of PEM data a field must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// One or more `CERTIFICATE` blocks.
    Certificates,
    /// One private key block (`PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`).
    PrivateKey,
}

/// Parses `data` as PEM and checks it holds what `expect` says.
///
/// # Errors
/// A description of what is wrong, without content.
pub fn parse(data: &[u8], expect: Expect) -> Result<Vec<Block>, String> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Err(not_pem(data, expect));
    };
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            if blocks.is_empty() {
                return Err(not_pem(data, expect));
            }
            // Text between blocks (openssl's "Bag Attributes") is allowed, as Go's pem does.
            continue;
        };
        let number = blocks.len() + 1;
        let mut body = String::new();
        let mut ended = false;
        for line in lines.by_ref() {
            if let Some(end) = line
                .strip_prefix("-----END ")
                .and_then(|l| l.strip_suffix("-----"))
            {
                if end != label {
                    return Err(format!(
                        "PEM block {number} ends with a different label than it begins with"
                    ));
                }
                ended = true;
                break;
            }
            // RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`) mean an encrypted key.
            if line.contains(':') {
                return Err(format!(
                    "PEM block {number} is encrypted (has headers); Kubernetes clients need an \
                     unencrypted key"
                ));
            }
            body.push_str(line);
        }
        if !ended {
            return Err(format!(
                "PEM block {number} has no `-----END` line (truncated?)"
            ));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| format!("the body of PEM block {number} is not valid base64"))?;
        if der.is_empty() {
            return Err(format!("PEM block {number} is empty"));
        }
        blocks.push(Block {
            label: label.to_owned(),
            der,
        });
    }
    if blocks.is_empty() {
        return Err(not_pem(data, expect));
    }
    match expect {
        Expect::Certificates => {
            if let Some(i) = blocks.iter().position(|b| b.label != "CERTIFICATE") {
                return Err(format!(
                    "PEM block {} is a `{}`, not a `CERTIFICATE`",
                    i + 1,
                    safe_label(&blocks[i].label)
                ));
            }
        }
        Expect::PrivateKey => {
            let keys = blocks
                .iter()
                .filter(|b| b.label.ends_with("PRIVATE KEY"))
                .count();
            if keys != 1 {
                return Err(format!(
                    "expected one `PRIVATE KEY` PEM block, found {keys} (of {} blocks)",
                    blocks.len()
                ));
            }
            if blocks.iter().any(|b| b.label == "ENCRYPTED PRIVATE KEY") {
                return Err("the private key is encrypted; Kubernetes clients need an \
                            unencrypted key"
                    .into());
            }
        }
    }
    Ok(blocks)
}

fn not_pem(data: &[u8], expect: Expect) -> String {
    let what = match expect {
        Expect::Certificates => "`-----BEGIN CERTIFICATE-----`",
        Expect::PrivateKey => "`-----BEGIN … PRIVATE KEY-----`",
    };
    // DER starts with a SEQUENCE tag: say so, it is the usual mistake.
    let der_hint = if data.first() == Some(&0x30) {
        " (it looks like DER: convert it with `openssl x509 -inform der`)"
    } else {
        ""
    };
    format!("is not PEM: expected {what} after base64-decoding{der_hint}")
}

/// PEM labels are short upper-case words; anything else is not shown.
fn safe_label(label: &str) -> &str {
    if label.len() <= 40
        && label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b' ' || b.is_ascii_digit())
    {
        label
    } else {
        "unexpected block"
    }
}

/// `AB:CD:…`: SHA-256 of `der`, as `openssl x509 -noout -fingerprint -sha256` prints it.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n";

    #[test]
    fn certificates() {
        let blocks = parse(CERT.as_bytes(), Expect::Certificates).unwrap();
        assert_eq!(blocks[0].der, [0, 1, 2, 3]);
        let two = format!("{CERT}Bag Attributes\n{CERT}");
        assert_eq!(
            parse(two.as_bytes(), Expect::Certificates).unwrap().len(),
            2
        );
        let e = parse(b"hello", Expect::Certificates).unwrap_err();
        assert!(e.starts_with("is not PEM"), "{e}");
        let e = parse(&[0x30, 0x82, 0x01], Expect::Certificates).unwrap_err();
        assert!(e.contains("DER"), "{e}");
        let e = parse(b"-----BEGIN CERTIFICATE-----\nAAEC\n", Expect::Certificates).unwrap_err();
        assert!(e.contains("no `-----END`"), "{e}");
        let e = parse(
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            Expect::Certificates,
        )
        .unwrap_err();
        assert!(e.contains("not valid base64"), "{e}");
    }

    #[test]
    fn keys() {
        let key = "-----BEGIN EC PRIVATE KEY-----\nAAEC\n-----END EC PRIVATE KEY-----\n";
        assert!(parse(key.as_bytes(), Expect::PrivateKey).is_ok());
        let e = parse(CERT.as_bytes(), Expect::PrivateKey).unwrap_err();
        assert!(e.contains("found 0"), "{e}");
        let encrypted = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAEC\n-----END RSA PRIVATE KEY-----\n";
        assert!(
            parse(encrypted.as_bytes(), Expect::PrivateKey)
                .unwrap_err()
                .contains("encrypted")
        );
    }

    #[test]
    fn fingerprints_like_openssl() {
        assert_eq!(
            fingerprint(b"abc"),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }
}
