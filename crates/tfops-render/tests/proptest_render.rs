//! Property tests of the whole render: streams without Terraform content come back
//! byte-identical; with modules mixed in, every untouched document survives byte-for-byte,
//! in order, and the output is deterministic.

use crate::common;

use proptest::prelude::*;
use tfops_render::render;

fn plain_doc() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}".prop_map(|n| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}\ndata:\n  k: \"on\"\n  mode: 0644\n")),
        "[a-z]{1,8}".prop_map(|n| format!("# Source: c/templates/{n}.yaml\napiVersion: v1\nkind: Service\nmetadata: {{name: {n}, labels: {{app.kubernetes.io/instance: rel}}}}\nspec: {{ports: [{{port: 80}}]}}\n")),
        Just("# just a comment\n".to_string()),
        Just("\n".to_string()),
        Just("text: |\n  ---not a marker\n  kind: TerraformModule is only text\n".to_string()),
        Just("anchors: &a {x: 1}\nref: *a\n".to_string()),
        Just("crlf: yes\r\nother: no\r\n".to_string()),
    ]
}

fn marker() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("---\n"),
        Just("--- # doc\n"),
        Just("---\r\n"),
        Just("")
    ]
}

fn module_doc(i: usize) -> String {
    format!("# Source: c/templates/m{i}.yaml\napiVersion: tfops.dev/v1alpha1\nkind: TerraformModule\nmetadata: {{name: m{i}}}\nspec: {{source: {{oci: {{url: oci://r/x, tag: \"1\"}}}}}}\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_terraform_content_is_identity(docs in proptest::collection::vec((marker(), plain_doc()), 0..12), end in prop_oneof![Just(""), Just("...\n")]) {
        let mut input = String::new();
        for (i, (m, d)) in docs.iter().enumerate() {
            // The first document may go without a marker; later ones need one.
            input.push_str(if i == 0 || !m.is_empty() { m } else { "---\n" });
            input.push_str(d);
        }
        input.push_str(end);
        let r = render(input.as_bytes(), &common::opts(None, None)).unwrap();
        prop_assert_eq!(r.output, input.into_bytes());
        prop_assert!(r.warnings.is_empty());
    }

    #[test]
    fn untouched_documents_survive_and_output_is_deterministic(
        docs in proptest::collection::vec(plain_doc(), 1..10),
        module_at in proptest::collection::vec(any::<bool>(), 1..10),
    ) {
        let mut input = String::new();
        let mut plain = Vec::new();
        let mut modules = 0;
        for (i, d) in docs.iter().enumerate() {
            if module_at.get(i).copied().unwrap_or(false) {
                input.push_str("---\n");
                input.push_str(&module_doc(i));
                modules += 1;
            }
            let piece = format!("---\n{d}");
            plain.push(piece.clone());
            input.push_str(&piece);
        }
        let o = common::opts(Some("rel"), Some("ns"));
        let a = render(input.as_bytes(), &o).unwrap();
        let b = render(input.as_bytes(), &o).unwrap();
        prop_assert_eq!(&a.output, &b.output);
        prop_assert_eq!(a.summary.modules_expanded, modules);
        // Untouched documents appear in order, byte-for-byte.
        let out = String::from_utf8(a.output).unwrap();
        let mut from = 0;
        for p in &plain {
            let at = out[from..].find(p.as_str());
            prop_assert!(at.is_some(), "missing {:?}", p);
            from += at.unwrap_or(0) + p.len();
        }
        // Every output document parses.
        let parsed = common::docs(out.as_bytes());
        prop_assert!(parsed.len() >= modules * 4);
    }
}
