//! `classify::normalise` — turns a raw Ready-condition message into the one line the rules are
//! matched against: ANSI escapes and Terraform's box-drawing gutter removed, diagnostic context
//! (`with aws_x.y,`, `on main.tf line N, in resource …:`, source excerpts) dropped, request ids
//! and UUIDs masked, gRPC `code = Unknown` / `code = Internal` wrappers unwrapped, JSON error
//! bodies (`{"error":{"code":"X","message":"Y"}}`, also when escaped inside another string)
//! written the way ARM's autorest prints them (`Code="X" Message="Y"`), whitespace collapsed.
//!
//! Pure and linear in the input: hand-written scanners plus a few compiled-once regexes.

use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};

/// ASCII-only (no Unicode tables): cheap to compile, and ids are ASCII.
fn ascii(pattern: &str) -> Option<Regex> {
    RegexBuilder::new(pattern).unicode(false).build().ok()
}

/// Request / correlation ids (`request id: …`, `RequestID: …`, `HostID: …`, Azure activity ids).
static REQUEST_ID: LazyLock<Option<Regex>> = LazyLock::new(|| {
    ascii(
        r#"(?i)\b(request[ _-]?id|host[ _-]?id|x-amz-request-id|x-amz-id-2|x-ms-request-id|x-ms-correlation-request-id|correlation[ _-]?id|tracking[ _-]?id|activity[ _-]?id|trace[ _-]?id)\s*[:=]\s*"?[A-Za-z0-9+/=._-]{6,}"?"#,
    )
});

/// UUIDs anywhere (ids that carry no meaning for the class).
static UUID: LazyLock<Option<Regex>> = LazyLock::new(|| {
    ascii(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
});

/// `rpc error: code = Unknown desc = ` / `code = Internal desc = ` carry no information: the
/// tofu-controller runner wraps every Terraform error in them (`runner/server*.go` use
/// `codes.Internal`), so the text inside decides. Meaningful codes (`Unavailable`,
/// `DeadlineExceeded`, …) stay.
static GRPC_UNKNOWN: LazyLock<Option<Regex>> =
    LazyLock::new(|| ascii(r"(?i)rpc error: code = (Unknown|Internal) desc = "));

/// A JSON error body's code field (`"code": "Conflict"`, `"error_code": 40001`,
/// `"errorCode": "X"`), rewritten as `Code="…"` so rules keyed on a code read every SDK's form
/// the same way.
static JSON_CODE: LazyLock<Option<Regex>> =
    LazyLock::new(|| ascii(r#"(?i)"(code|error_?code|errorCode)"\s*:\s*"?([A-Za-z0-9_.\-]+)"?"#));

/// A JSON error body's message field, rewritten as `Message="`.
static JSON_MESSAGE: LazyLock<Option<Regex>> =
    LazyLock::new(|| ascii(r#"(?i)"(message|error_?msg|errorMessage|detail|msg)"\s*:\s*""#));

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

fn replace(re: &LazyLock<Option<Regex>>, s: String, with: &str) -> String {
    match re.as_ref() {
        Some(re) if re.is_match(&s) => re.replace_all(&s, with).into_owned(),
        _ => s,
    }
}

/// The normalised, single-line form of `message` that rules are matched against.
pub fn normalise(message: &str) -> String {
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
    let kept = replace(&REQUEST_ID, kept, "$1: <id>");
    let kept = replace(&UUID, kept, "<uuid>");
    let kept = replace(&GRPC_UNKNOWN, kept, "");
    let kept = replace(&JSON_CODE, kept, "Code=\"$2\"");
    let kept = replace(&JSON_MESSAGE, kept, "Message=\"");
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
    fn every_normalising_regex_compiles() {
        assert!(REQUEST_ID.is_some() && UUID.is_some() && GRPC_UNKNOWN.is_some());
        assert!(JSON_CODE.is_some() && JSON_MESSAGE.is_some());
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
