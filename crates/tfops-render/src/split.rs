//! Stream splitter: cuts a YAML stream into documents with exact byte spans, on `---`
//! document-start lines (also `--- # comment`, `--- !tag`…) and `...` document-end lines,
//! CRLF tolerant. The spans tile the input exactly, so joining them gives the input back.

use std::ops::Range;

/// One document of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The whole span: start marker line (if any) + body + end marker line (if any).
    pub span: Range<usize>,
    /// The `---` line including its line break, when the document starts with one.
    pub start_marker: Option<Range<usize>>,
    /// The content between the markers.
    pub body: Range<usize>,
    /// The `...` line including its line break, when the document ends with one.
    pub end_marker: Option<Range<usize>>,
}

/// Kind of a line with respect to document markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Start,
    End,
    None,
}

fn marker_of(line: &[u8]) -> Marker {
    // `line` excludes the line break; a trailing `\r` is tolerated.
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let kind = if line.starts_with(b"---") {
        Marker::Start
    } else if line.starts_with(b"...") {
        Marker::End
    } else {
        return Marker::None;
    };
    match line.get(3) {
        None | Some(b' ') | Some(b'\t') => kind,
        _ => Marker::None,
    }
}

/// Split `input` into segments. Every byte belongs to exactly one segment, in order. An
/// empty input gives no segment.
pub fn split(input: &[u8]) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut seg_start = 0usize;
    let mut start_marker: Option<Range<usize>> = None;
    let mut body_start = 0usize;
    let mut pos = 0usize;
    let n = input.len();
    while pos < n {
        let line_end = memchr::memchr(b'\n', &input[pos..]).map_or(n, |i| pos + i);
        let next = (line_end + 1).min(n);
        // Fast path: a marker line starts with '-' or '.'.
        let first = input[pos];
        if first == b'-' || first == b'.' {
            match marker_of(&input[pos..line_end]) {
                Marker::Start => {
                    if pos > seg_start {
                        segments.push(Segment {
                            span: seg_start..pos,
                            start_marker: start_marker.take(),
                            body: body_start..pos,
                            end_marker: None,
                        });
                    }
                    seg_start = pos;
                    start_marker = Some(pos..next);
                    body_start = next;
                }
                Marker::End => {
                    segments.push(Segment {
                        span: seg_start..next,
                        start_marker: start_marker.take(),
                        body: body_start..pos,
                        end_marker: Some(pos..next),
                    });
                    seg_start = next;
                    body_start = next;
                }
                Marker::None => {}
            }
        }
        pos = next;
    }
    if n > seg_start {
        segments.push(Segment {
            span: seg_start..n,
            start_marker,
            body: body_start..n,
            end_marker: None,
        });
    }
    segments
}

/// True when the body holds nothing but blank lines and comments.
pub fn is_blank(body: &[u8]) -> bool {
    body.split(|b| *b == b'\n').all(|line| {
        let t = line.trim_ascii_start();
        t.is_empty() || t.starts_with(b"#")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bodies(input: &str) -> Vec<&str> {
        split(input.as_bytes())
            .iter()
            .map(|s| &input[s.body.clone()])
            .collect()
    }

    fn join(input: &[u8], segs: &[Segment]) -> Vec<u8> {
        segs.iter()
            .flat_map(|s| input[s.span.clone()].to_vec())
            .collect()
    }

    #[test]
    fn empty_input_has_no_segment() {
        assert!(split(b"").is_empty());
    }

    #[test]
    fn no_marker_is_one_document() {
        assert_eq!(bodies("a: 1\nb: 2\n"), vec!["a: 1\nb: 2\n"]);
        assert!(split(b"a: 1\n")[0].start_marker.is_none());
    }

    #[test]
    fn leading_marker() {
        let s = split(b"---\na: 1\n---\nb: 2\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].start_marker, Some(0..4));
        assert_eq!(s[0].body, 4..9);
        assert_eq!(s[1].start_marker, Some(9..13));
        assert_eq!(s[1].body, 13..18);
    }

    #[test]
    fn marker_with_comment_or_tag() {
        assert_eq!(
            bodies("--- # Source: x\na: 1\n--- !t\nb\n---\tz\n"),
            vec!["a: 1\n", "b\n", ""]
        );
    }

    #[test]
    fn dashes_that_are_not_markers() {
        // `----`, `---x`, indented `---`, list items.
        let text = "a: |\n  ---\n----\n---x: 1\n- item\n -- x\n";
        assert_eq!(bodies(text), vec![text]);
    }

    #[test]
    fn end_markers() {
        let s = split(b"a: 1\n...\nb: 2\n...\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].end_marker, Some(5..9));
        assert_eq!(s[0].body, 0..5);
        assert_eq!(s[1].body, 9..14);
        assert_eq!(s[1].end_marker, Some(14..18));
        let s = split(b"---\na\n...\n---\nb\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].start_marker, Some(10..14));
    }

    #[test]
    fn crlf_tolerant() {
        let s = split(b"---\r\na: 1\r\n--- \r\nb: 2\r\n...\r\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].start_marker, Some(0..5));
        assert_eq!(s[1].start_marker, Some(11..17));
        assert_eq!(s[1].end_marker, Some(23..28));
    }

    #[test]
    fn marker_without_trailing_newline() {
        let s = split(b"a: 1\n---");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].start_marker, Some(5..8));
        assert_eq!(s[1].body, 8..8);
    }

    #[test]
    fn consecutive_markers_give_empty_documents() {
        let s = split(b"---\n---\na\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].body, 4..4);
    }

    #[test]
    fn blank_detection() {
        assert!(is_blank(b"\n# Source: x\n  \n"));
        assert!(!is_blank(b"# c\na: 1\n"));
    }

    proptest! {
        #[test]
        fn split_then_join_is_identity(parts in proptest::collection::vec(
            prop_oneof![
                Just("---\n".to_string()), Just("--- # c\n".to_string()), Just("...\n".to_string()),
                Just("---\r\n".to_string()), Just("----\n".to_string()), Just("a: 1\n".to_string()),
                Just("# Source: x.yaml\n".to_string()), Just("  ---\n".to_string()), Just("\n".to_string()),
                "[a-z:\\- .\r\n]{0,12}",
            ], 0..24)) {
            let input = parts.concat();
            let segs = split(input.as_bytes());
            prop_assert_eq!(join(input.as_bytes(), &segs), input.as_bytes().to_vec());
            for w in segs.windows(2) {
                prop_assert_eq!(w[0].span.end, w[1].span.start);
            }
            for s in &segs {
                prop_assert!(!s.span.is_empty());
                prop_assert!(s.span.start <= s.body.start && s.body.end <= s.span.end);
            }
        }

        #[test]
        fn arbitrary_bytes_tile(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            let segs = split(&input);
            prop_assert_eq!(join(&input, &segs), input);
        }
    }
}
