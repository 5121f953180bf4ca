//! Property tests (fuzzing on stable) of both dotenv flavors: on any input, the parsers return
//! (no panic, no hang) and every error points at a line and column inside the input; `check`
//! refuses what GitLab refuses; what `render` and `set` write, GitLab reads back as intended.
//!
//! Inputs are built from the syntax's own pieces (names, `=`, quotes, `${…}` forms, comments,
//! line ends, BOMs, odd whitespace) as well as arbitrary bytes, so most cases reach deep into
//! the parsers instead of failing on the first byte. Sizes are bounded: a case takes
//! milliseconds. The number of cases: `components/proptest_config.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../proptest_config.rs"]
mod proptest_config;

use kstep_dotenv::text::Encoding;
use kstep_dotenv::{Entry, Problem, compose, gitlab};
use proptest::prelude::*;

const PIECES: &[&str] = &[
    "A",
    "B",
    "KEY",
    "a_1",
    "é",
    "1",
    "_",
    ".",
    "-",
    "export ",
    "export",
    "=",
    "==",
    ":",
    " = ",
    "\"",
    "'",
    "\\",
    "\\\"",
    "\\'",
    "\\n",
    "\\0101",
    "$",
    "$$",
    "${",
    "}",
    "{",
    "${A}",
    "${U}",
    "${E:-d}",
    "${U-d}",
    "${U:?m}",
    "${U?}",
    "${A:+p}",
    "${U:-${A}}",
    "${A:-{x}}",
    "$A",
    "#",
    " #",
    "# c\n",
    " ",
    "\t",
    "\n",
    "\n",
    "\r\n",
    "\r",
    "\u{b}",
    "\u{c}",
    "\0",
    "\u{a0}",
    "\u{85}",
    "\u{2028}",
    "\u{feff}",
    "\u{3000}",
    "🛹",
    "v",
    "w x",
];

/// Text made of syntax pieces and the odd arbitrary character.
fn dotenv_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => proptest::sample::select(PIECES).prop_map(str::to_owned),
        1 => any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..48).prop_map(|pieces| pieces.concat())
}

/// The bytes of a dotenv file: text in UTF-8 (with or without BOM), UTF-16LE or BE with BOM,
/// or noise.
fn dotenv_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => dotenv_text().prop_map(String::into_bytes),
        1 => dotenv_text().prop_map(|t| [b"\xEF\xBB\xBF".as_slice(), t.as_bytes()].concat()),
        1 => dotenv_text().prop_map(|t| {
            let mut bytes = vec![0xFF, 0xFE];
            bytes.extend(t.encode_utf16().flat_map(u16::to_le_bytes));
            bytes
        }),
        1 => dotenv_text().prop_map(|t| {
            let mut bytes = vec![0xFE, 0xFF];
            bytes.extend(t.encode_utf16().flat_map(u16::to_be_bytes));
            bytes
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..256),
    ]
}

/// Lines of `bytes`: one more than its `\n` bytes (for UTF-16, an upper bound: other characters
/// may hold a 0x0A byte too).
fn line_count(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.iter().filter(|&&b| b == b'\n').count() + 1).unwrap()
}

/// An error's position is on one of the input's lines, at a column ≥ 1.
fn assert_positioned(problem: &Problem, bytes: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(
        problem.line >= 1 && problem.line <= line_count(bytes) && problem.column >= 1,
        "{problem:?} in {} line(s)",
        line_count(bytes)
    );
    Ok(())
}

fn environment() -> Vec<(String, String)> {
    [("A", "a"), ("E", ""), ("SP", "x y")]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

proptest! {
    #![proptest_config(proptest_config::config(1000))]

    #[test]
    fn compose_errors_have_positions(bytes in dotenv_bytes()) {
        if let Err(problem) = compose::parse(&bytes, &environment()) {
            assert_positioned(&problem, &bytes)?;
        }
    }

    #[test]
    fn gitlab_errors_have_positions(bytes in dotenv_bytes()) {
        if let Err(problems) = gitlab::parse(&bytes) {
            prop_assert!(!problems.is_empty());
            for problem in &problems {
                assert_positioned(problem, &bytes)?;
            }
        }
    }

    #[test]
    fn gitlab_check_agrees_with_gitlab_and_positions_errors(
        bytes in dotenv_bytes(),
        max_bytes in 1_u64..300,
        max_vars in 0_u32..6,
    ) {
        let report = gitlab::check(&bytes, gitlab::Limits { max_bytes, max_vars });
        // kstep refuses what GitLab refuses; beyond that, only bytes that are not UTF-8 (where
        // GitLab would guess an encoding).
        if report.gitlab_message.is_some() || report.encoding.is_some() {
            prop_assert_eq!(report.accepted(), report.gitlab_message.is_none(), "{:?}", report);
        }
        // The size of a file whose bytes are not its text (UTF-16/32, or not text at all) is
        // about the whole file: it has no line.
        let bytes_are_text = matches!(report.encoding, Some(Encoding::Utf8 | Encoding::Utf8Bom));
        for problem in report.problems.iter().filter(|p| p.is_error()) {
            if bytes_are_text || !problem.message.contains("GitLab accepts a dotenv report smaller") {
                assert_positioned(problem, &bytes)?;
            }
        }
    }

    #[test]
    fn gitlab_render_round_trips(bytes in dotenv_bytes()) {
        // Whatever GitLab accepts, kstep writes back so that GitLab reads the same variables,
        // except values no job can receive unchanged (NUL, edge whitespace), which it refuses.
        if let Ok(parsed) = gitlab::parse(&bytes) {
            let entries: Vec<Entry> = parsed
                .entries
                .into_iter()
                .filter(|e| gitlab::value_problem(&e.value).is_none())
                .collect();
            let text = gitlab::render(&entries).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            let again = gitlab::parse(text.as_bytes())
                .map_err(|e| TestCaseError::fail(format!("{text:?}: {e:?}")))?;
            let pairs = |entries: &[Entry]| {
                entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect::<Vec<_>>()
            };
            prop_assert_eq!(pairs(&again.entries), pairs(&entries), "{:?}", text);
        }
    }

}

proptest! {
    // Costlier cases (a whole file rewritten and checked, deep nesting): fewer of them.
    #![proptest_config(proptest_config::config(200))]

    #[test]
    fn gitlab_set_errors_name_their_argument_or_line(
        existing in proptest::option::of(dotenv_bytes()),
        pairs in proptest::collection::vec((dotenv_text(), dotenv_text()), 0..4),
    ) {
        match gitlab::set(existing.as_deref(), &pairs, gitlab::Limits::default()) {
            Ok(outcome) => {
                // The result is a file GitLab accepts, holding the new values.
                let parsed = gitlab::parse(outcome.text.as_bytes())
                    .map_err(|e| TestCaseError::fail(format!("{:?}: {e:?}", outcome.text)))?;
                for (key, value) in &pairs {
                    let last = pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v);
                    let got = parsed.entries.iter().find(|e| &e.key == key).map(|e| &e.value);
                    prop_assert_eq!(got, last, "{} = {:?}", key, value);
                }
            }
            Err(problems) => {
                prop_assert!(!problems.is_empty());
                // An argument is named; the result (its size, its count) has no line; a problem
                // of the existing file is on one of its lines.
                for problem in &problems {
                    let about_the_result = problem.message.starts_with("the result would break a limit")
                        || problem.message.starts_with("nothing to set");
                    if problem.source.is_none() && !about_the_result {
                        assert_positioned(problem, existing.as_deref().unwrap_or_default())?;
                    }
                }
            }
        }
    }

    #[test]
    fn compose_survives_deep_nesting(depth in 0_usize..2_000, quoted in any::<bool>()) {
        // Defaults inside defaults: recursion must neither overflow the stack nor take long.
        let value = format!("{}x{}", "${U:-".repeat(depth), "}".repeat(depth));
        let text = if quoted { format!("K=\"{value}\"") } else { format!("K={value}") };
        if let Err(problem) = compose::parse(text.as_bytes(), &environment()) {
            assert_positioned(&problem, text.as_bytes())?;
        }
    }
}
