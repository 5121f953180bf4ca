//! From bytes to text the way each implementation does it, and positions in that text.
//!
//! GitLab (`Gitlab::EncodingHelper#encode_utf8_with_replacement_character`, then `strip_bom`):
//! bytes that are valid UTF-8 are used as they are; otherwise CharlockHolmes (ICU) guesses the
//! encoding and converts. A UTF-16 or UTF-32 file with a byte-order mark is detected with
//! certainty (ICU gives it confidence 100, and CharlockHolmes' binary sniffing lets a BOM
//! through), so kstep converts those exactly like GitLab. Anything else that is not UTF-8 is a
//! statistical guess on GitLab's side (Latin-1? Shift_JIS?) or a silent U+FFFD replacement:
//! kstep refuses it and names the first bad byte, rather than guess what GitLab would guess.
//!
//! compose-go reads the bytes as a Go string and strips one UTF-8 BOM; kstep requires UTF-8.

use std::borrow::Cow;

use crate::{Problem, to_u32};

/// The encoding a file was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 without a byte-order mark.
    Utf8,
    /// UTF-8 with a byte-order mark (removed).
    Utf8Bom,
    /// UTF-16 little-endian with a byte-order mark (Windows PowerShell's `>`).
    Utf16Le,
    /// UTF-16 big-endian with a byte-order mark.
    Utf16Be,
    /// UTF-32 little-endian with a byte-order mark.
    Utf32Le,
    /// UTF-32 big-endian with a byte-order mark.
    Utf32Be,
}

impl Encoding {
    /// The usual name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Utf8 => "UTF-8",
            Self::Utf8Bom => "UTF-8 with BOM",
            Self::Utf16Le => "UTF-16LE",
            Self::Utf16Be => "UTF-16BE",
            Self::Utf32Le => "UTF-32LE",
            Self::Utf32Be => "UTF-32BE",
        }
    }
}

/// A file's text, with its byte-order mark removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The text.
    pub text: Cow<'a, str>,
    /// What it was read as.
    pub encoding: Encoding,
}

/// Decodes like GitLab does before parsing a dotenv artifact (see the module docs).
///
/// # Errors
/// The position of the first byte that is not UTF-8, for input that is neither UTF-8 nor
/// UTF-16/32 with a byte-order mark.
pub fn decode_gitlab(bytes: &[u8]) -> Result<Decoded<'_>, Problem> {
    let valid = match std::str::from_utf8(bytes) {
        Ok(text) => return Ok(strip_utf8_bom(text)),
        Err(e) => e.valid_up_to(),
    };
    // Longest BOM first: FF FE 00 00 is UTF-32LE, not UTF-16LE followed by U+0000.
    type Convert = fn(&[u8]) -> String;
    let boms: [(&[u8], Convert, Encoding); 4] = [
        (
            b"\xFF\xFE\x00\x00",
            |b| utf32(b, u32::from_le_bytes),
            Encoding::Utf32Le,
        ),
        (
            b"\x00\x00\xFE\xFF",
            |b| utf32(b, u32::from_be_bytes),
            Encoding::Utf32Be,
        ),
        (
            b"\xFF\xFE",
            |b| utf16(b, u16::from_le_bytes),
            Encoding::Utf16Le,
        ),
        (
            b"\xFE\xFF",
            |b| utf16(b, u16::from_be_bytes),
            Encoding::Utf16Be,
        ),
    ];
    let converted = boms.iter().find_map(|(bom, convert, encoding)| {
        bytes
            .strip_prefix(*bom)
            .map(|rest| (convert(rest), *encoding))
    });
    // The byte-order mark was cut off above. GitLab gets the same: ICU converts it to U+FEFF
    // and strip_bom removes that one (and only that one).
    converted
        .map(|(text, encoding)| Decoded {
            text: Cow::Owned(text),
            encoding,
        })
        .ok_or_else(|| {
            not_utf8(
                bytes,
                valid,
                " (GitLab would guess an encoding and convert the file, or replace the byte \
                 with U+FFFD; save the file as UTF-8)",
            )
        })
}

/// Decodes UTF-8, removing one byte-order mark (compose-go's `bytes.TrimPrefix(data, utf8BOM)`).
///
/// # Errors
/// The position of the first byte that is not UTF-8.
pub fn decode_utf8(bytes: &[u8]) -> Result<Decoded<'_>, Problem> {
    std::str::from_utf8(bytes)
        .map(strip_utf8_bom)
        .map_err(|e| not_utf8(bytes, e.valid_up_to(), ""))
}

fn strip_utf8_bom(text: &str) -> Decoded<'_> {
    match text.strip_prefix('\u{feff}') {
        Some(rest) => Decoded {
            text: Cow::Borrowed(rest),
            encoding: Encoding::Utf8Bom,
        },
        None => Decoded {
            text: Cow::Borrowed(text),
            encoding: Encoding::Utf8,
        },
    }
}

/// The problem for the first invalid UTF-8 byte of `bytes`, which is byte `valid`
/// (`Utf8Error::valid_up_to`).
fn not_utf8(bytes: &[u8], valid: usize, hint: &str) -> Problem {
    // The prefix is valid UTF-8 by construction.
    let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
    let (line, column) = position(prefix, prefix.len());
    let byte = bytes.get(valid).copied().unwrap_or_default();
    Problem::error(
        line,
        column,
        format!("not valid UTF-8: byte 0x{byte:02X} at byte offset {valid}{hint}"),
    )
}

/// ICU converts unpaired surrogates and a dangling odd byte to U+FFFD.
fn utf16(bytes: &[u8], word: fn([u8; 2]) -> u16) -> String {
    let chunks = bytes.chunks_exact(2);
    let dangling = !chunks.remainder().is_empty();
    let units = chunks.map(|c| word([c[0], c[1]]));
    let mut text: String = char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    if dangling {
        text.push(char::REPLACEMENT_CHARACTER);
    }
    text
}

fn utf32(bytes: &[u8], word: fn([u8; 4]) -> u32) -> String {
    let chunks = bytes.chunks_exact(4);
    let dangling = !chunks.remainder().is_empty();
    let mut text: String = chunks
        .map(|c| char::from_u32(word([c[0], c[1], c[2], c[3]])).unwrap_or('\u{fffd}'))
        .collect();
    if dangling {
        text.push(char::REPLACEMENT_CHARACTER);
    }
    text
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
pub fn position(text: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (to_u32(line), to_u32(column))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn utf8_and_bom() {
        let d = decode_gitlab(b"\xEF\xBB\xBFA=b").unwrap();
        assert_eq!((d.text.as_ref(), d.encoding), ("A=b", Encoding::Utf8Bom));
        // Only one BOM is removed, like GitLab's delete_prefix.
        let d = decode_gitlab("\u{feff}\u{feff}A=b".as_bytes()).unwrap();
        assert_eq!(d.text.as_ref(), "\u{feff}A=b");
    }

    #[test]
    fn utf16_and_utf32_with_bom() {
        let mut le = vec![0xFF, 0xFE];
        le.extend("A=é\r\n".encode_utf16().flat_map(u16::to_le_bytes));
        let d = decode_gitlab(&le).unwrap();
        assert_eq!(
            (d.text.as_ref(), d.encoding),
            ("A=é\r\n", Encoding::Utf16Le)
        );
        let mut be = vec![0xFE, 0xFF];
        be.extend("B=1".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode_gitlab(&be).unwrap().text, "B=1");
        let mut le32 = vec![0xFF, 0xFE, 0, 0];
        le32.extend("C=🛹".chars().flat_map(|c| u32::from(c).to_le_bytes()));
        assert_eq!(decode_gitlab(&le32).unwrap().text, "C=🛹");
        // A dangling byte and an unpaired surrogate become U+FFFD, as ICU substitutes them.
        assert_eq!(
            decode_gitlab(&[0xFF, 0xFE, 0x00, 0xD8, b'A', 0, b'x'])
                .unwrap()
                .text,
            "\u{fffd}A\u{fffd}"
        );
    }

    #[test]
    fn invalid_utf8_names_the_byte_and_position() {
        let e = decode_gitlab(b"A=1\nB=caf\xE9\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 6));
        assert!(
            e.message.contains("byte 0xE9 at byte offset 9"),
            "{}",
            e.message
        );
        let e = decode_utf8(b"\xFF\xFEA").unwrap_err();
        assert_eq!((e.line, e.column), (1, 1));
        // UTF-16 without a BOM but with a non-ASCII character is not guessed.
        assert!(decode_gitlab(b"A\0=\0\xE9\0").is_err());
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(position("ab\ncdé f", 9), (2, 6));
        assert_eq!(position("", 0), (1, 1));
    }
}
