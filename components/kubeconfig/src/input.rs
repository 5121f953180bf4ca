//! Recognising what an input is (one-line or wrapped base64, YAML, JSON) and decoding base64
//! with positions. Errors give byte positions, never the bytes: the input is the secret.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::connection::{Diagnostic, Form};

/// The largest input accepted. Real kubeconfigs are a few KiB; the cap bounds the work a
/// pathological value can cause (and GitLab variables stop at 10 000 characters anyway).
pub const MAX_INPUT: usize = 1 << 20;

/// Standard alphabet, padding optional (`base64 -w 0` pads; some tools do not).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// An input recognised and, for base64, decoded to the kubeconfig text.
#[derive(Debug)]
pub struct Text {
    /// What the input was.
    pub form: Form,
    /// The kubeconfig text (YAML or JSON).
    pub text: String,
}

/// Recognises `data` and returns the kubeconfig text in it.
///
/// # Errors
/// A diagnostic (position only) for an empty, oversized, non-text, or badly encoded input.
pub fn recognise(data: &[u8]) -> Result<Text, Diagnostic> {
    if data.len() > MAX_INPUT {
        return Err(Diagnostic::error(format!(
            "the kubeconfig is {} bytes; kstep accepts at most {} bytes (1 MiB): is this really a kubeconfig?",
            data.len(),
            MAX_INPUT
        )));
    }
    let text = utf8(data, "the input")?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Diagnostic::error(
            "the kubeconfig is empty (is the variable set for this job? protected variables are \
             only given to protected branches and tags)",
        ));
    }
    // Base64 has no `#`: a value of comments alone is a YAML file with nothing in it.
    if trimmed
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(Diagnostic::error(
            "the kubeconfig has only comments: no clusters, users or contexts",
        ));
    }
    if trimmed.starts_with('{') {
        return Ok(Text {
            form: Form::Json,
            text: text.to_owned(),
        });
    }
    // A kubeconfig is a mapping: YAML or JSON text always has a `:`; base64 never has one.
    if trimmed.contains(':') {
        return Ok(Text {
            form: Form::Yaml,
            text: text.to_owned(),
        });
    }
    let form = if trimmed.contains(|c: char| c.is_ascii_whitespace()) {
        Form::Base64Wrapped
    } else {
        Form::Base64OneLine
    };
    let decoded = decode_base64(text).map_err(|e| e.diagnostic)?;
    let decoded_text = utf8(&decoded, "the base64-decoded value").map_err(|_| {
        Diagnostic::error(format!(
            "the value is valid base64 but decodes to {} bytes of binary data, not a YAML or JSON \
             kubeconfig (was a compressed or encrypted file encoded?)",
            decoded.len()
        ))
    })?;
    let inner = decoded_text.trim();
    if inner.is_empty() {
        return Err(Diagnostic::error(
            "the value is valid base64 but decodes to nothing but whitespace",
        ));
    }
    if !inner.contains(':') && !inner.starts_with('{') {
        let twice = decode_base64(inner)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .is_some_and(|text| text.contains(':'));
        if twice {
            return Err(Diagnostic::error(
                "the value decodes to base64 again: it was encoded twice (encode the kubeconfig \
                 file once: `kstep kubeconfig encode FILE`)",
            ));
        }
        return Err(Diagnostic::error(
            "the value is valid base64 but decodes to text that is not a kubeconfig (no YAML \
             mapping, no JSON object)",
        ));
    }
    Ok(Text {
        form,
        text: decoded_text.to_owned(),
    })
}

/// `data` as UTF-8 without a leading byte-order mark.
fn utf8<'a>(data: &'a [u8], what: &str) -> Result<&'a str, Diagnostic> {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    std::str::from_utf8(data).map_err(|e| {
        let (line, column) = line_column(data, e.valid_up_to());
        Diagnostic::error(format!(
            "{what} is not UTF-8 text (byte {}): expected base64, YAML or JSON",
            e.valid_up_to() + 1
        ))
        .at(None, line, column)
    })
}

fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='
}

/// Why a value is not base64.
#[derive(Debug)]
pub struct Base64Error {
    /// What is wrong, at the line and column of the value (never the character).
    pub diagnostic: Diagnostic,
    /// The 1-based byte of the value it is about, when it is about one.
    pub byte: Option<usize>,
}

impl Base64Error {
    fn whole(message: impl Into<String>) -> Self {
        Self {
            diagnostic: Diagnostic::error(message),
            byte: None,
        }
    }

    /// A problem with the length or the padding of the whole value, placed at its last
    /// character (`i`, 0-based, in `bytes`): where a value that was cut ends.
    fn at_end(bytes: &[u8], i: usize, message: impl Into<String>) -> Self {
        let (line, column) = line_column(bytes, i);
        Self {
            diagnostic: Diagnostic::error(message).at(None, line, column),
            byte: None,
        }
    }

    /// A problem at byte `i` (0-based) of `bytes`.
    fn at(bytes: &[u8], i: usize, message: &str) -> Self {
        let (line, column) = line_column(bytes, i);
        Self {
            diagnostic: Diagnostic::error(format!("invalid base64 at byte {}: {message}", i + 1))
                .at(None, line, column),
            byte: Some(i + 1),
        }
    }
}

/// Decodes standard base64, ignoring whitespace anywhere (wrapped output of `base64`).
///
/// # Errors
/// The 1-based byte position (and line/column) of the first problem, never the character.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, Base64Error> {
    let bytes = text.as_bytes();
    // Positions in `text` of the characters kept, so decoder offsets map back to the input.
    let mut positions = Vec::with_capacity(bytes.len());
    let mut compact = String::with_capacity(bytes.len());
    let mut padding_at: Option<usize> = None;
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_whitespace() {
            continue;
        }
        let bad = |message: &str| Base64Error::at(bytes, i, message);
        if !is_base64_char(b) {
            let hint = match b {
                b'-' | b'_' => " (URL-safe base64 is not accepted: use `base64 -w 0`)",
                _ => "",
            };
            return Err(bad(&format!("not a base64 character{hint}")));
        }
        match (b, padding_at) {
            (b'=', None) => padding_at = Some(i),
            (b'=', Some(_)) => {}
            (_, Some(_)) => {
                return Err(bad(
                    "data after the `=` padding (were two values pasted together?)",
                ));
            }
            _ => {}
        }
        positions.push(i);
        compact.push(char::from(b));
    }
    if compact.is_empty() {
        return Err(Base64Error::whole("the value is empty"));
    }
    BASE64.decode(compact.as_bytes()).map_err(|e| {
        let at = |offset: usize| positions.get(offset).copied().unwrap_or(bytes.len());
        let last = positions.last().copied().unwrap_or(0);
        match e {
            base64::DecodeError::InvalidLength(n) => Base64Error::at_end(
                bytes,
                last,
                format!(
                    "invalid base64: {n} characters cannot be base64 (one too many or missing): \
                     was the value cut when it was copied?"
                ),
            ),
            base64::DecodeError::InvalidLastSymbol(offset, _) => Base64Error::at(
                bytes,
                at(offset),
                "the last character does not end a base64 value (was the value truncated?)",
            ),
            base64::DecodeError::InvalidByte(offset, _) => {
                Base64Error::at(bytes, at(offset), "misplaced padding")
            }
            base64::DecodeError::InvalidPadding => Base64Error::at_end(
                bytes,
                last,
                "invalid base64: wrong amount of `=` padding at the end",
            ),
        }
    })
}

/// 1-based line and column (in characters) of byte `offset` of `bytes`.
pub fn line_column(bytes: &[u8], offset: usize) -> (u32, u32) {
    let before = bytes.get(..offset).unwrap_or(bytes);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = before
        .get(line_start..)
        .map_or(0, |s| s.iter().filter(|&&b| (b & 0xc0) != 0x80).count())
        + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    const YAML: &str = "apiVersion: v1\nkind: Config\n";

    #[test]
    fn forms() {
        assert_eq!(recognise(YAML.as_bytes()).unwrap().form, Form::Yaml);
        assert_eq!(
            recognise(b"  {\"kind\": \"Config\"}").unwrap().form,
            Form::Json
        );
        let one = STANDARD.encode(YAML);
        let text = recognise(one.as_bytes()).unwrap();
        assert_eq!((text.form, text.text.as_str()), (Form::Base64OneLine, YAML));
        let wrapped = format!("{}\n{}\n", &one[..8], &one[8..]);
        let text = recognise(wrapped.as_bytes()).unwrap();
        assert_eq!((text.form, text.text.as_str()), (Form::Base64Wrapped, YAML));
        // No padding, a BOM, CRLF wrapping: all accepted.
        let bare = one.trim_end_matches('=');
        assert_eq!(recognise(bare.as_bytes()).unwrap().text, YAML);
        let crlf = format!("\u{feff}{}\r\n{}\r\n", &one[..4], &one[4..]);
        assert_eq!(recognise(crlf.as_bytes()).unwrap().text, YAML);
    }

    #[test]
    fn comments_alone_are_not_called_base64() {
        for text in [
            "# kubeconfig goes here\n",
            "# TODO: paste it\n\n  # later\n",
        ] {
            let e = recognise(text.as_bytes()).unwrap_err();
            assert_eq!(
                e.message,
                "the kubeconfig has only comments: no clusters, users or contexts"
            );
        }
    }

    #[test]
    fn base64_errors_give_positions_not_content() {
        let one = STANDARD.encode(YAML);
        let bad = format!("{}*{}", &one[..10], &one[10..]);
        let e = recognise(bad.as_bytes()).unwrap_err();
        assert_eq!(
            e.message,
            "invalid base64 at byte 11: not a base64 character"
        );
        assert_eq!((e.line, e.column), (1, 11));
        let wrapped = format!("{}\n{}!{}", &one[..8], &one[8..12], &one[12..]);
        let e = recognise(wrapped.as_bytes()).unwrap_err();
        assert_eq!((e.line, e.column), (2, 5), "{e:?}");
        let e = recognise(format!("{one}{one}").as_bytes()).unwrap_err();
        assert!(e.message.contains("after the `=` padding"), "{e:?}");
        let e = recognise(b"YWJjZA-_").unwrap_err();
        assert!(e.message.contains("URL-safe"), "{e:?}");
        let e = recognise(&one.as_bytes()[..one.len() - 3]).unwrap_err();
        assert!(e.message.contains("invalid base64"), "{e:?}");
    }

    #[test]
    fn base64_errors_carry_the_byte_when_there_is_one() {
        let e = decode_base64("YWJj\n*ZA").unwrap_err();
        assert_eq!(e.byte, Some(6));
        assert_eq!((e.diagnostic.line, e.diagnostic.column), (2, 1));
        // `YWJjZB==`: the last symbol has bits set that padding would drop.
        assert_eq!(decode_base64("YWJjZB==").unwrap_err().byte, Some(6));
        assert_eq!(decode_base64("YWJjZ").unwrap_err().byte, None);
        assert_eq!(decode_base64(" \n").unwrap_err().byte, None);
    }

    #[test]
    fn base64_length_errors_point_at_the_end_of_the_value() {
        // Found by tests/properties.rs: these had no position at all (line 0).
        for (text, at) in [("/", (1, 1)), ("YWJj\nZ \n", (2, 1)), ("YWJjZ", (1, 5))] {
            let e = decode_base64(text).unwrap_err();
            assert_eq!(e.byte, None, "{text:?}");
            assert_eq!(
                (e.diagnostic.line, e.diagnostic.column),
                at,
                "{text:?}: {e:?}"
            );
            assert!(
                e.diagnostic.message.starts_with("invalid base64: "),
                "{e:?}"
            );
        }
        let e = recognise(b"YWJj\nYWJjZ").unwrap_err();
        assert_eq!((e.line, e.column), (2, 5), "{e:?}");
    }

    #[test]
    fn decoded_content_is_checked() {
        let e = recognise(STANDARD.encode([0xff, 0xfe, 0x00, 0x81]).as_bytes()).unwrap_err();
        assert!(e.message.contains("binary data"), "{e:?}");
        let twice = STANDARD.encode(STANDARD.encode(YAML));
        let e = recognise(twice.as_bytes()).unwrap_err();
        assert!(e.message.contains("encoded twice"), "{e:?}");
        let e = recognise(STANDARD.encode("hello world, not yaml at all").as_bytes());
        // Has no colon and no brace: base64 of plain text is not a kubeconfig.
        assert!(e.unwrap_err().message.contains("not a kubeconfig"));
        assert!(recognise(b" \n\t").unwrap_err().message.contains("empty"));
    }

    #[test]
    fn size_cap() {
        let big = vec![b'a'; MAX_INPUT + 1];
        let e = recognise(&big).unwrap_err();
        assert!(e.message.contains("at most 1048576 bytes"), "{e:?}");
    }

    #[test]
    fn positions() {
        assert_eq!(line_column(b"ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é\nx".as_bytes(), 1), (1, 2));
        assert_eq!(line_column(b"x", 0), (1, 1));
    }
}
