//! `classify::normalise` — turns a raw Ready-condition message into the one line the rules are
//! matched against: ANSI escapes and Terraform's box-drawing gutter removed, diagnostic context
//! (`with aws_x.y,`, `on main.tf line N, in resource …:`, source excerpts) dropped, request ids
//! and UUIDs masked, gRPC `code = Unknown` / `code = Internal` wrappers unwrapped, JSON error
//! bodies (`{"error":{"code":"X","message":"Y"}}`, also when escaped inside another string)
//! written the way ARM's autorest prints them (`Code="X" Message="Y"`), whitespace collapsed,
//! and the "please retry … or report this issue" template providers copy from the Plugin
//! Framework's docs dropped.
//!
//! Pure and linear in the input: hand-written scanners plus five masking regexes, each
//! compiled once per process, lean, and only when a cheap test says the text could match it
//! (compiling all five the usual way cost ≈1 ms, a fifth of what one `tfops explain` may take).

use std::sync::LazyLock;

use regex_automata::meta::Regex;
use regex_automata::util::syntax;

/// ASCII-only (no Unicode tables; ids are ASCII), and only the engines a replace needs (no
/// literal prefilter, one-pass or full DFA): cheap to compile, and the same matches, in the
/// same order, as `regex::RegexBuilder::new(pattern).unicode(false)` finds.
fn ascii(pattern: &str) -> Option<Regex> {
    Regex::builder()
        .syntax(syntax::Config::new().unicode(false))
        .configure(
            Regex::config()
                .auto_prefilter(false)
                .onepass(false)
                .dfa(false),
        )
        .build(pattern)
        .ok()
}

/// Request / correlation ids (`request id: …`, `RequestID: …`, `HostID: …`, Azure activity ids).
const REQUEST_ID_PATTERN: &str = r#"(?i)\b(request[ _-]?id|host[ _-]?id|x-amz-request-id|x-amz-id-2|x-ms-request-id|x-ms-correlation-request-id|correlation[ _-]?id|tracking[ _-]?id|activity[ _-]?id|trace[ _-]?id)\s*[:=]\s*"?[A-Za-z0-9+/=._-]{6,}"?"#;
static REQUEST_ID: LazyLock<Option<Regex>> = LazyLock::new(|| ascii(REQUEST_ID_PATTERN));

/// Whether `text` holds an id label [`REQUEST_ID_PATTERN`] looks for: `request`, `host`,
/// `correlation`, `tracking`, `activity` or `trace` followed by `id` (after one ` `, `_` or
/// `-`, or directly), or `x-amz-id` — ASCII case ignored.
fn may_hold_request_id(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let lower = lower.as_bytes();
    let labelled = |word: &str| {
        memchr::memmem::find_iter(lower, word).any(|at| {
            let rest = lower.get(at + word.len()..).unwrap_or_default();
            let rest = [b" ", b"_", b"-"]
                .iter()
                .find_map(|sep| rest.strip_prefix(*sep))
                .unwrap_or(rest);
            rest.starts_with(b"id")
        })
    };
    [
        "request",
        "host",
        "correlation",
        "tracking",
        "activity",
        "trace",
    ]
    .iter()
    .any(|w| labelled(w))
        || memchr::memmem::find(lower, b"x-amz-id").is_some()
}

/// UUIDs anywhere (ids that carry no meaning for the class).
const UUID_PATTERN: &str = r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b";
static UUID: LazyLock<Option<Regex>> = LazyLock::new(|| ascii(UUID_PATTERN));

/// `rpc error: code = Unknown desc = ` / `code = Internal desc = ` carry no information: the
/// tofu-controller runner wraps every Terraform error in them (`runner/server*.go` use
/// `codes.Internal`), so the text inside decides. Meaningful codes (`Unavailable`,
/// `DeadlineExceeded`, …) stay.
const GRPC_UNKNOWN_PATTERN: &str = r"(?i)rpc error: code = (Unknown|Internal) desc = ";
static GRPC_UNKNOWN: LazyLock<Option<Regex>> = LazyLock::new(|| ascii(GRPC_UNKNOWN_PATTERN));
const GRPC_UNKNOWN_NEEDLES: &[&str] = &["rpc error: code = "];

/// A JSON error body's code field (`"code": "Conflict"`, `"error_code": 40001`,
/// `"errorCode": "X"`), rewritten as `Code="…"` so rules keyed on a code read every SDK's form
/// the same way.
const JSON_CODE_PATTERN: &str =
    r#"(?i)"(code|error_?code|errorCode)"\s*:\s*"?([A-Za-z0-9_.\-]+)"?"#;
static JSON_CODE: LazyLock<Option<Regex>> = LazyLock::new(|| ascii(JSON_CODE_PATTERN));
const JSON_CODE_NEEDLES: &[&str] = &["code\""];

/// A JSON error body's message field, rewritten as `Message="`.
const JSON_MESSAGE_PATTERN: &str = r#"(?i)"(message|error_?msg|errorMessage|detail|msg)"\s*:\s*""#;
static JSON_MESSAGE: LazyLock<Option<Regex>> = LazyLock::new(|| ascii(JSON_MESSAGE_PATTERN));
const JSON_MESSAGE_NEEDLES: &[&str] = &["message\"", "msg\"", "detail\""];

/// Whether `text` contains one of `needles` (lowercase), ASCII case ignored.
fn contains_any(text: &str, needles: &[&str]) -> bool {
    let lower = text.to_ascii_lowercase();
    needles
        .iter()
        .any(|n| memchr::memmem::find(lower.as_bytes(), n.as_bytes()).is_some())
}

/// Whether `text` holds `8 hex - 4 hex -`, as every UUID does.
fn may_hold_uuid(text: &str) -> bool {
    let hex = |b: &[u8]| b.iter().all(u8::is_ascii_hexdigit);
    text.as_bytes()
        .windows(14)
        .any(|w| w[8] == b'-' && w[13] == b'-' && hex(&w[..8]) && hex(&w[9..13]))
}

/// A normalising regex, and a test any text it matches passes.
struct Mask {
    re: &'static LazyLock<Option<Regex>>,
    may_match: fn(&str) -> bool,
    with: &'static str,
}

/// The masks, in the order they apply.
static MASKS: [Mask; 5] = [
    Mask {
        re: &REQUEST_ID,
        may_match: may_hold_request_id,
        with: "$1: <id>",
    },
    Mask {
        re: &UUID,
        may_match: may_hold_uuid,
        with: "<uuid>",
    },
    Mask {
        re: &GRPC_UNKNOWN,
        may_match: |t| contains_any(t, GRPC_UNKNOWN_NEEDLES),
        with: "",
    },
    Mask {
        re: &JSON_CODE,
        may_match: |t| contains_any(t, JSON_CODE_NEEDLES),
        with: "Code=\"$2\"",
    },
    Mask {
        re: &JSON_MESSAGE,
        may_match: |t| contains_any(t, JSON_MESSAGE_NEEDLES),
        with: "Message=\"",
    },
];

/// Undo one level of string escaping: JSON bodies quoted inside another JSON string or a Go
/// `%q` arrive as `{\"code\":\"X\"}` with literal `\n`; the rules read the plain text. Only
/// text with an escaped quote is touched (a Windows path keeps its backslashes).
fn unescape(s: &str) -> String {
    if !s.contains("\\\"") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('"') => {
                chars.next();
                out.push('"');
            }
            Some('n' | 'r' | 't') => {
                chars.next();
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Terraform diagnostic context lines: `with aws_s3_bucket.this,` and `on main.tf line 3, in
/// resource "aws_s3_bucket" "this":` (the source excerpt after it: [`is_source_excerpt`]).
fn is_context_line(line: &str) -> bool {
    let t = line.trim();
    if let Some(addr) = t.strip_prefix("with ").and_then(|a| a.strip_suffix(',')) {
        // `with module.x.aws_y.z,` — one address, nothing else
        if !addr.is_empty() && !addr.contains(char::is_whitespace) {
            return true;
        }
    }
    if let Some(rest) = t.strip_prefix("on ") {
        // `on main.tf line 12, in resource "x" "y":`
        let mut words = rest.split_whitespace();
        let _file = words.next();
        if words.next() == Some("line")
            && words
                .next()
                .is_some_and(|n| n.trim_end_matches([',', ':']).parse::<u32>().is_ok())
        {
            return true;
        }
    }
    false
}

/// A source excerpt (`12: resource "aws_s3_bucket" "b" {`), only ever right after the
/// `on FILE line N` context line; elsewhere `409: Operation failed…` is message text.
fn is_source_excerpt(line: &str) -> bool {
    let t = line.trim();
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    digits > 0 && t[digits..].starts_with(": ")
}

/// Remove ANSI CSI / OSC escape sequences.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('[') => {
                chars.next();
                // parameters and intermediates, then one final byte in @..~
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                chars.next();
                // OSC: until BEL or ESC \
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {
                chars.next();
            }
        }
    }
    out
}

/// Every match of `re` in `text` replaced by `with` (`$1` etc. are expanded), as
/// `regex::Regex::replace_all` does; `None` when nothing matched.
fn replace_all(re: &Regex, text: &str, with: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut matched = false;
    for caps in re.captures_iter(text) {
        let m = caps.get_match()?;
        out.push_str(text.get(last..m.start())?);
        caps.interpolate_string_into(text, with, &mut out);
        last = m.end();
        matched = true;
    }
    if !matched {
        return None;
    }
    out.push_str(text.get(last..)?);
    Some(out)
}

/// `mask` applied to `s`; its regex is compiled (if not yet) only when `s` may match it.
fn replace(mask: &Mask, s: String) -> String {
    if !(mask.may_match)(&s) {
        return s;
    }
    match mask
        .re
        .as_ref()
        .and_then(|re| replace_all(re, &s, mask.with))
    {
        Some(replaced) => replaced,
        None => s,
    }
}

/// The normalised, single-line form of `message` that rules are matched against.
pub fn normalise(message: &str) -> String {
    let kept = MASKS
        .iter()
        .fold(flatten(message), |kept, m| replace(m, kept));
    drop_boilerplate(collapse(&kept))
}

/// The example error text of the Terraform Plugin Framework's documentation, which providers
/// copy into their resources ("Unable to Delete Resource: An unexpected error occurred …
/// Please retry the operation or report this issue to the provider developers."): template
/// text, not the service saying a retry helps, so no built-in rule may read it as "please
/// retry" (catalog rules also see the raw message).
const FRAMEWORK_BOILERPLATE: &str =
    "please retry the operation or report this issue to the provider developers";

/// `text` without [`FRAMEWORK_BOILERPLATE`] (ASCII case ignored) and the full stop after it,
/// the pieces around it joined by one space; `text` itself when it holds none.
fn drop_boilerplate(text: String) -> String {
    let lower = text.to_ascii_lowercase();
    let mut parts: Vec<&str> = Vec::new();
    let mut from = 0;
    // ASCII lowercasing keeps every byte offset, so `at` is a boundary in `text` too.
    for (at, _) in lower.match_indices(FRAMEWORK_BOILERPLATE) {
        parts.push(text[from..at].trim());
        let end = at + FRAMEWORK_BOILERPLATE.len();
        from = if text[end..].starts_with('.') {
            end + 1
        } else {
            end
        };
    }
    if parts.is_empty() {
        return text;
    }
    parts.push(text[from..].trim());
    parts.retain(|p| !p.is_empty());
    parts.join(" ")
}

/// Escapes, gutters and diagnostic context removed; lines joined.
fn flatten(message: &str) -> String {
    let text = unescape(&strip_ansi(message));
    let mut kept = String::with_capacity(text.len());
    let mut in_context = false;
    for line in text.split(['\n', '\r']) {
        // Box drawing (U+2500–U+257F) is Terraform's diagnostic gutter: `│ Error: …`, `╷`, `╵`.
        let line: String = line
            .chars()
            .map(|c| {
                if ('\u{2500}'..='\u{257f}').contains(&c) || c.is_control() {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        if is_context_line(&line) {
            in_context = true;
            continue;
        }
        if in_context && is_source_excerpt(&line) {
            continue;
        }
        in_context = false;
        kept.push_str(&line);
        kept.push(' ');
    }
    kept
}

/// Whitespace runs collapsed to one space, none at either end.
fn collapse(kept: &str) -> String {
    let mut out = String::with_capacity(kept.len());
    for word in kept.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_frameworks_retry_or_report_sentence_is_dropped() {
        assert_eq!(
            normalise(
                "Error: Unable to Delete Resource\n\nAn unexpected error occurred while attempting to delete the resource. Please\nretry the operation or report this issue to the provider developers.\n\nError: Cannot invoke \"x.getType()\" because the return value is null"
            ),
            "Error: Unable to Delete Resource An unexpected error occurred while attempting to delete the resource. Error: Cannot invoke \"x.getType()\" because the return value is null"
        );
        // twice, at the end, and nothing else touched
        assert_eq!(
            normalise("a. Please retry the operation or report this issue to the provider developers. b. PLEASE RETRY THE OPERATION OR REPORT THIS ISSUE TO THE PROVIDER DEVELOPERS"),
            "a. b."
        );
        assert_eq!(
            normalise("please retry in a minute"),
            "please retry in a minute"
        );
        // first, again later, and nothing left at either end
        assert_eq!(
            normalise("Please retry the operation or report this issue to the provider developers. b. Please retry the operation or report this issue to the provider developers"),
            "b."
        );
        assert_eq!(
            normalise(
                "Please retry the operation or report this issue to the provider developers."
            ),
            ""
        );
    }

    #[test]
    fn every_normalising_regex_compiles() {
        assert!(REQUEST_ID.is_some() && UUID.is_some() && GRPC_UNKNOWN.is_some());
        assert!(JSON_CODE.is_some() && JSON_MESSAGE.is_some());
    }

    /// Every match of a mask (but the UUID one, below) starts with one of the prefixes
    /// `regex-syntax` extracts from its pattern (ASCII case aside), and each of those passes the
    /// mask's gate — so does any text holding one: the gate never skips a text the regex would
    /// have changed.
    #[test]
    fn mask_gates_pass_every_prefix_a_match_can_start_with() {
        for (pattern, mask) in [
            (REQUEST_ID_PATTERN, &MASKS[0]),
            (GRPC_UNKNOWN_PATTERN, &MASKS[2]),
            (JSON_CODE_PATTERN, &MASKS[3]),
            (JSON_MESSAGE_PATTERN, &MASKS[4]),
        ] {
            // parsed case-sensitively: a case-insensitive match is one of these up to case
            let cs = pattern.strip_prefix("(?i)").expect("a (?i) pattern");
            let hir = regex_syntax::ParserBuilder::new()
                .unicode(false)
                .utf8(false)
                .build()
                .parse(cs)
                .expect("parses");
            let seq = regex_syntax::hir::literal::Extractor::new().extract(&hir);
            let prefixes = seq.literals().expect("finitely many prefixes");
            assert!(!prefixes.is_empty(), "{pattern}");
            for p in prefixes {
                let p = String::from_utf8_lossy(p.as_bytes());
                assert!((mask.may_match)(&p), "{pattern}: {p:?}");
            }
        }
    }

    /// `normalise` as it was: every mask compiled by the `regex` crate and always applied.
    fn reference(message: &str) -> String {
        let patterns = [
            REQUEST_ID_PATTERN,
            UUID_PATTERN,
            GRPC_UNKNOWN_PATTERN,
            JSON_CODE_PATTERN,
            JSON_MESSAGE_PATTERN,
        ];
        let mut kept = flatten(message);
        for (pattern, mask) in patterns.iter().zip(&MASKS) {
            let re = regex::RegexBuilder::new(pattern)
                .unicode(false)
                .build()
                .expect("compiles");
            kept = re.replace_all(&kept, mask.with).into_owned();
        }
        drop_boilerplate(collapse(&kept))
    }

    fn masks_agree(message: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        proptest::prop_assert_eq!(normalise(message), reference(message), "{:?}", message);
        Ok(())
    }

    /// Gated, lean masks normalise every row of the table as `normalise` did before.
    #[test]
    fn gated_masks_change_nothing_on_the_table() {
        #[derive(serde::Deserialize)]
        struct Row {
            message: String,
        }
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/messages.yaml");
        let text = std::fs::read_to_string(&path).expect("read messages.yaml");
        let rows: Vec<Row> = serde_saphyr::from_str(&text).expect("parse messages.yaml");
        for r in &rows {
            masks_agree(&r.message).unwrap();
        }
    }

    proptest::proptest! {
        // 256 cases by default (about 2.5 s in a debug build); more with PROPTEST_CASES.
        #![proptest_config(proptest::test_runner::Config::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
        ))]
        /// Gated, lean masks agree with the reference on messages built from what the masks
        /// look for.
        #[test]
        fn gated_masks_change_nothing(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    "(?i)(request|host|x-amz|x-ms|correlation|tracking|activity|trace)[ _-]?(id|request-id|id-2|correlation-request-id)[ :=]{0,3}\"?[A-Za-z0-9+/=._-]{0,12}\"?",
                    "[0-9a-fA-F]{7,9}-[0-9a-fA-F]{3,5}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{11,13}",
                    "(?i)rpc error: code = (Unknown|Internal|Unavailable) desc = ",
                    r#"(?i)[{\\]{0,2}"(code|error_?code|errorCode|message|error_?msg|errorMessage|detail|msg)\\?"[ ]?:[ ]?\\?"?[A-Za-z0-9_.-]{0,8}"#,
                    r#"[ ,:{}"\\\n]{0,3}"#,
                    "\\PC{0,10}",
                ],
                1..10,
            ),
        ) {
            masks_agree(&pieces.concat())?;
        }

        /// Every UUID passes the UUID gate, wherever it is.
        #[test]
        fn uuid_gate_passes_every_uuid(
            before in "\\PC{0,10}",
            uuid in "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
            after in "\\PC{0,10}",
        ) {
            let text = format!("{before}{uuid}{after}");
            proptest::prop_assert!(may_hold_uuid(&text), "{:?}", text);
        }
    }

    #[test]
    fn terraform_diagnostic_becomes_one_line_without_context() {
        let m = "\u{1b}[31m╷\u{1b}[0m\n│ \u{1b}[1mError: \u{1b}[0mdeleting S3 Bucket (b): operation error S3: DeleteBucket, https response error StatusCode: 409, RequestID: 9Q6GZ6XB4NK3W8PA, HostID: abc/def+ghi=, api error BucketNotEmpty: The bucket you tried to delete is not empty\n│ \n│   with aws_s3_bucket.throttling_logs,\n│   on main.tf line 12, in resource \"aws_s3_bucket\" \"throttling_logs\":\n│   12: resource \"aws_s3_bucket\" \"throttling_logs\" {\n│ \n╵";
        let n = normalise(m);
        assert_eq!(
            n,
            "Error: deleting S3 Bucket (b): operation error S3: DeleteBucket, https response error StatusCode: 409, RequestID: <id>, HostID: <id>, api error BucketNotEmpty: The bucket you tried to delete is not empty"
        );
        assert!(
            !n.contains("throttling"),
            "resource names must be dropped: {n}"
        );
    }

    #[test]
    fn request_ids_and_uuids_are_masked() {
        let n = normalise("DependencyViolation: x\n\tstatus code: 400, request id: 719afa5c-eb05-4032-9780-70656e0f4f73");
        assert_eq!(
            n,
            "DependencyViolation: x status code: 400, request id: <id>"
        );
        assert_eq!(
            normalise("op 0429abcd-5030-4503-9500-500000000429 failed"),
            "op <uuid> failed"
        );
    }

    #[test]
    fn grpc_unknown_wrapper_is_unwrapped_but_meaningful_codes_stay() {
        assert_eq!(
            normalise("rpc error: code = Unknown desc = error running Destroy: exit status 1"),
            "error running Destroy: exit status 1"
        );
        assert_eq!(
            normalise("Apply error: rpc error: code = Internal desc = exit status 1"),
            "Apply error: exit status 1"
        );
        assert_eq!(
            normalise("rpc error: code = Unavailable desc = connection error"),
            "rpc error: code = Unavailable desc = connection error"
        );
    }

    #[test]
    fn json_error_bodies_read_like_autorest() {
        assert_eq!(
            normalise("unexpected status 409 with response: {\"error\": {\"code\": \"Conflict\", \"message\": \"Another operation is in progress\"}}"),
            "unexpected status 409 with response: {\"error\": {Code=\"Conflict\", Message=\"Another operation is in progress\"}}"
        );
        // escaped once more inside another string, with literal \n
        assert_eq!(
            normalise(
                r#"Message="VMSSAgentPoolReconciler retry failed: {\n  \"code\": \"PodDrainFailure\"\n }""#
            ),
            r#"Message="VMSSAgentPoolReconciler retry failed: { Code="PodDrainFailure" }""#
        );
        assert_eq!(
            normalise(
                r#"{"success":false,"errors":[{"code":10100,"message":"More than 1200 requests"}]}"#
            ),
            r#"{"success":false,"errors":[{Code="10100",Message="More than 1200 requests"}]}"#
        );
        // a backslash that escapes nothing stays
        assert_eq!(normalise(r"C:\temp\x"), r"C:\temp\x");
    }

    #[test]
    fn urls_and_plain_lines_are_kept() {
        assert_eq!(
            normalise("Get \"https://10.0.0.1:443/api\": dial tcp 10.0.0.1:443: i/o timeout"),
            "Get \"https://10.0.0.1:443/api\": dial tcp 10.0.0.1:443: i/o timeout"
        );
        assert_eq!(normalise("with a lot of words,"), "with a lot of words,");
        assert_eq!(
            normalise("googleapi: Error\n      409: Operation failed"),
            "googleapi: Error 409: Operation failed"
        );
    }
}
