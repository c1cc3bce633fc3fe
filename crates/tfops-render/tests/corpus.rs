//! Fidelity on the real corpus: every chart in `../shared/corpus/charts/` has no Terraform
//! content and must come out byte-identical. Skips when the corpus is absent.

use crate::common;

#[test]
fn every_corpus_chart_passes_through_byte_identical() {
    let dir = common::shared_dir().join("corpus/charts");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("SKIP: {} absent", dir.display());
        return;
    };
    let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    files.sort();
    let mut checked = 0;
    for path in files {
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let input = std::fs::read(&path).unwrap();
        for release in [None, Some("corpus")] {
            let r = tfops_render::render(&input, &common::opts(release, Some("ns")))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(r.output == input, "{} changed", path.display());
            assert!(
                r.warnings.is_empty(),
                "{}: {:?}",
                path.display(),
                r.warnings
            );
            assert_eq!(r.summary, tfops_render::Summary::default());
        }
        // Split → join is the identity on real data too.
        let segs = tfops_render::split::split(&input);
        let joined: Vec<u8> = segs
            .iter()
            .flat_map(|s| input[s.span.clone()].to_vec())
            .collect();
        assert!(joined == input);
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} corpus files found");
}

#[test]
fn corpus_chart_with_a_module_keeps_every_other_document_identical() {
    let path = common::shared_dir().join("corpus/charts/prometheus.yaml");
    let Ok(input) = std::fs::read(&path) else {
        eprintln!("SKIP: {} absent", path.display());
        return;
    };
    let module = b"---\n# Source: prometheus/templates/tf.yaml\napiVersion: tfops.dev/v1alpha1\nkind: TerraformModule\nmetadata:\n  name: bucket\nspec:\n  source:\n    oci: {url: oci://r.example/tf/bucket, tag: \"1.0.0\"}\n";
    let mut with = input.clone();
    if !with.ends_with(b"\n") {
        with.push(b'\n');
    }
    with.extend_from_slice(module);
    let r = tfops_render::render(&with, &common::opts(None, Some("monitoring"))).unwrap();
    // Everything before the module document is untouched, byte for byte.
    assert!(r.output.starts_with(&with[..with.len() - module.len()]));
    assert_eq!(r.summary.modules_expanded, 1);
    // Release found from the chart's app.kubernetes.io/instance labels.
    assert!(r.summary.release.is_some());
}
