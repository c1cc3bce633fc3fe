//! Cheap pre-scan of a split stream, without parsing documents: which documents may hold
//! Terraform content (candidates for a full parse), each document's chart source file (Helm 3
//! `# Source:` comment or Helm 4 filename annotation), and where a needle occurs.

use std::ops::Range;

use memchr::memmem;

use crate::meta::FILENAME_ANNOTATION;
use crate::split::Segment;

/// Substrings whose presence makes a document a candidate for Terraform content.
pub const CANDIDATE_NEEDLES: [&str; 2] =
    [tfops_api::names::TFOPS_PREFIX, tfops_api::names::TF_GROUP];

/// Per-document facts from the pre-scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocInfo {
    /// Helm 3 `# Source: <path>` comment among the document's leading comment lines.
    pub source_comment: Option<String>,
    /// Helm 4 `postrenderer.helm.sh/postrender-filename` annotation value.
    pub filename_annotation: Option<String>,
    /// Contains a candidate needle: must be parsed to know if it is ours.
    pub candidate: bool,
}

impl DocInfo {
    /// The chart source file: Helm 4 annotation first, then Helm 3 comment.
    pub fn source_file(&self) -> Option<&str> {
        self.filename_annotation
            .as_deref()
            .or(self.source_comment.as_deref())
    }
}

/// Offsets of every occurrence of `needle` in `input`.
pub fn positions(input: &[u8], needle: &str) -> Vec<usize> {
    memmem::find_iter(input, needle.as_bytes()).collect()
}

/// Index of the segment containing byte `offset` (segments tile the input in order).
pub fn segment_of(segments: &[Segment], offset: usize) -> Option<usize> {
    let i = segments.partition_point(|s| s.span.end <= offset);
    (i < segments.len() && segments[i].span.contains(&offset)).then_some(i)
}

/// Group needle positions by segment: for each segment, whether any occurs inside.
pub fn mark(segments: &[Segment], hits: &[usize], flags: &mut [bool]) {
    for &h in hits {
        if let Some(i) = segment_of(segments, h) {
            flags[i] = true;
        }
    }
}

/// The `# Source: ` comment among the leading blank/comment lines of `body`.
pub fn source_comment(body: &[u8]) -> Option<String> {
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let t = line.trim_ascii();
        if t.is_empty() {
            continue;
        }
        if !t.starts_with(b"#") {
            return None;
        }
        if let Some(rest) = t.strip_prefix(b"# Source: ") {
            return std::str::from_utf8(rest.trim_ascii())
                .ok()
                .map(str::to_string);
        }
    }
    None
}

/// Read a one-line YAML scalar (plain, single- or double-quoted), without a trailing comment.
pub fn line_scalar(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Some(inner) = raw.strip_prefix('\'') {
        let end = inner.rfind('\'')?;
        return Some(inner[..end].replace("''", "'"));
    }
    if raw.starts_with('"') {
        let end = raw.rfind('"')?;
        return serde_saphyr::from_str::<String>(&raw[..=end]).ok();
    }
    let value = match raw.find(" #") {
        Some(i) => &raw[..i],
        None => raw,
    };
    let value = value.trim_end();
    (!value.is_empty()).then(|| value.to_string())
}

/// The filename annotation of the document `span`, given an occurrence at `at`.
pub fn filename_at(input: &[u8], span: &Range<usize>, at: usize) -> Option<String> {
    let after = at + FILENAME_ANNOTATION.len();
    let line_end = memchr::memchr(b'\n', &input[after..span.end]).map_or(span.end, |i| after + i);
    let rest = std::str::from_utf8(&input[after..line_end]).ok()?;
    // The key may be quoted: `"postrenderer…filename": value`.
    let rest = rest.trim_start_matches(['"', '\'']);
    let value = rest.strip_prefix(':')?;
    line_scalar(value.trim_end_matches('\r'))
}

/// `apiVersion`, `kind` and `metadata.name` of a block-style document, read line by line
/// without parsing (best effort: flow-style documents yield `None`s).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// Top-level `apiVersion`.
    pub api_version: Option<String>,
    /// Top-level `kind`.
    pub kind: Option<String>,
    /// `metadata.name`.
    pub name: Option<String>,
}

impl Header {
    /// `Kind "name"` for messages, when the kind is known.
    pub fn label(&self) -> Option<String> {
        let kind = self.kind.as_deref()?;
        Some(match &self.name {
            Some(n) => format!("{kind} {n:?}"),
            None => kind.to_string(),
        })
    }
}

/// Cheap header scan of one document body.
pub fn header(body: &[u8]) -> Header {
    let mut h = Header::default();
    let mut in_meta = false;
    let mut child_indent: Option<usize> = None;
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let Some((key, value)) = trimmed.split_once(':') else {
            if indent == 0 {
                in_meta = false;
            }
            continue;
        };
        if indent == 0 {
            in_meta = key == "metadata";
            child_indent = None;
            match key {
                "apiVersion" => h.api_version = line_scalar(value),
                "kind" => h.kind = line_scalar(value),
                _ => {}
            }
        } else if in_meta {
            let ci = *child_indent.get_or_insert(indent);
            if indent == ci && key == "name" && h.name.is_none() {
                h.name = line_scalar(value);
            }
        }
        if h.api_version.is_some() && h.kind.is_some() && h.name.is_some() {
            break;
        }
    }
    h
}

/// Result of looking for a label in a document without parsing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelScan {
    /// Found in the block-style `metadata.labels`.
    Found(String),
    /// The document's `metadata.labels` is block style and has no such label.
    Absent,
    /// Flow style or otherwise unreadable line by line: parse the document to know.
    Unknown,
}

/// Look for `metadata.labels[key]` in a block-style document body, line by line.
pub fn metadata_label(body: &[u8], key: &str) -> LabelScan {
    metadata_value(body, Some("labels"), key)
}

/// Look for `metadata.namespace` in a block-style document body, line by line.
pub fn metadata_namespace(body: &[u8]) -> LabelScan {
    metadata_value(body, None, "namespace")
}

/// Look for `metadata.<key>` (`map` = `None`) or `metadata.<map>.<key>` line by line.
fn metadata_value(body: &[u8], map: Option<&str>, key: &str) -> LabelScan {
    #[derive(PartialEq)]
    enum State {
        Top,
        Meta(Option<usize>),
        Labels(usize, Option<usize>),
    }
    let mut state = State::Top;
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Ok(line) = std::str::from_utf8(line) else {
            return LabelScan::Unknown;
        };
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if indent == 0 && (trimmed.starts_with('{') || trimmed.starts_with('[')) {
            return LabelScan::Unknown;
        }
        let (k, v) = match trimmed.split_once(':') {
            Some((k, v)) => (k.trim_matches(|c| c == '"' || c == '\''), v.trim()),
            None => (trimmed, ""),
        };
        let opens_block = v.is_empty() || v.starts_with('#');
        if indent == 0 {
            if k == "metadata" {
                if !opens_block {
                    return LabelScan::Unknown;
                }
                state = State::Meta(None);
            } else if matches!(state, State::Meta(_) | State::Labels(..)) {
                return LabelScan::Absent;
            }
            continue;
        }
        match state {
            State::Top => {}
            State::Meta(child) => {
                let ci = child.unwrap_or(indent);
                state = State::Meta(Some(ci));
                if indent == ci && map.is_none() && k == key {
                    return match line_scalar(v) {
                        Some(value) if !value.starts_with(['{', '[', '&', '*', '!', '|', '>']) => {
                            LabelScan::Found(value)
                        }
                        _ => LabelScan::Unknown,
                    };
                }
                if indent == ci && Some(k) == map {
                    if !opens_block {
                        return LabelScan::Unknown;
                    }
                    state = State::Labels(ci, None);
                }
            }
            State::Labels(ci, grand) => {
                if indent <= ci {
                    state = State::Meta(Some(ci));
                    if indent == ci && Some(k) == map {
                        return LabelScan::Unknown;
                    }
                    continue;
                }
                let gi = grand.unwrap_or(indent);
                state = State::Labels(ci, Some(gi));
                if indent == gi && k == key {
                    return match line_scalar(v) {
                        Some(value) => LabelScan::Found(value),
                        None => LabelScan::Unknown,
                    };
                }
            }
        }
    }
    LabelScan::Absent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::split;

    #[test]
    fn finds_source_comment_only_in_the_leading_comments() {
        assert_eq!(
            source_comment(b"\n# Source: c/templates/a.yaml\napiVersion: v1\n").as_deref(),
            Some("c/templates/a.yaml")
        );
        assert_eq!(source_comment(b"apiVersion: v1\n# Source: x\n"), None);
        assert_eq!(
            source_comment(b"# other\r\n# Source: y.yaml\r\n").as_deref(),
            Some("y.yaml")
        );
    }

    #[test]
    fn line_scalars() {
        assert_eq!(line_scalar(" c/t/a.yaml").as_deref(), Some("c/t/a.yaml"));
        assert_eq!(line_scalar(" 'it''s.yaml'").as_deref(), Some("it's.yaml"));
        assert_eq!(line_scalar(r#" "a\tb.yaml""#).as_deref(), Some("a\tb.yaml"));
        assert_eq!(line_scalar(" a.yaml # note").as_deref(), Some("a.yaml"));
        assert_eq!(line_scalar("  "), None);
    }

    #[test]
    fn filename_annotation_lookup() {
        let input = b"---\nmetadata:\n  annotations:\n    postrenderer.helm.sh/postrender-filename: 'c/templates/db.yaml'\n  name: x\n";
        let segs = split(input);
        let hits = positions(input, FILENAME_ANNOTATION);
        assert_eq!(hits.len(), 1);
        assert_eq!(segment_of(&segs, hits[0]), Some(0));
        assert_eq!(
            filename_at(input, &segs[0].span, hits[0]).as_deref(),
            Some("c/templates/db.yaml")
        );
    }

    #[test]
    fn marks_segments() {
        let input = b"a: 1\n---\nb: tfops.dev/x\n---\nc: 3\n";
        let segs = split(input);
        let mut flags = vec![false; segs.len()];
        mark(&segs, &positions(input, "tfops.dev/"), &mut flags);
        assert_eq!(flags, [false, true, false]);
    }

    #[test]
    fn header_scan() {
        let h = header(b"# Source: x\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    name: not-this\n  name: 'cm'\ndata:\n  name: nope\n");
        assert_eq!(h.api_version.as_deref(), Some("v1"));
        assert_eq!(h.kind.as_deref(), Some("ConfigMap"));
        assert_eq!(h.name.as_deref(), Some("cm"));
        assert_eq!(h.label().as_deref(), Some("ConfigMap \"cm\""));
        let h = header(b"kind: TerraformModule\nmetadata: {name: db}\n");
        assert_eq!(h.label().as_deref(), Some("TerraformModule"));
        assert_eq!(header(b"- a\n- b\n"), Header::default());
    }

    #[test]
    fn metadata_label_scan() {
        let k = "app.kubernetes.io/instance";
        let doc = b"apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  labels:    \n    helm.sh/chart: x\n    app.kubernetes.io/instance: shop\nspec:\n  selector:\n    app.kubernetes.io/instance: other\n";
        assert_eq!(metadata_label(doc, k), LabelScan::Found("shop".into()));
        let only_selector = b"kind: Service\nmetadata:\n  name: a\n  labels:\n    x: y\nspec:\n  selector:\n    app.kubernetes.io/instance: other\n";
        assert_eq!(metadata_label(only_selector, k), LabelScan::Absent);
        let nested_deeper = b"metadata:\n  annotations:\n    a: b\n  labels:\n    \"app.kubernetes.io/instance\": 'q'\n";
        assert_eq!(
            metadata_label(nested_deeper, k),
            LabelScan::Found("q".into())
        );
        assert_eq!(
            metadata_label(
                b"metadata: {name: a, labels: {app.kubernetes.io/instance: s}}\n",
                k
            ),
            LabelScan::Unknown
        );
        assert_eq!(
            metadata_label(b"metadata:\n  labels: {app.kubernetes.io/instance: s}\n", k),
            LabelScan::Unknown
        );
        assert_eq!(
            metadata_label(b"{\"metadata\": {}}\n", k),
            LabelScan::Unknown
        );
        assert_eq!(
            metadata_label(b"# Source: x\nkind: A\nmetadata:\n  name: b\n", k),
            LabelScan::Absent
        );
        let template_labels = b"metadata:\n  name: a\nspec:\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/instance: t\n";
        assert_eq!(metadata_label(template_labels, k), LabelScan::Absent);
    }

    #[test]
    fn metadata_namespace_scan() {
        assert_eq!(
            metadata_namespace(
                b"kind: A\nmetadata:\n  labels:\n    namespace: no\n  namespace: prod\n"
            ),
            LabelScan::Found("prod".into())
        );
        assert_eq!(
            metadata_namespace(b"kind: A\nmetadata:\n  name: a\nspec:\n  namespace: x\n"),
            LabelScan::Absent
        );
        assert_eq!(
            metadata_namespace(b"metadata: {namespace: a}\n"),
            LabelScan::Unknown
        );
    }
}
