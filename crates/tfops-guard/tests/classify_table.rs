//! Table test of the failure classifier on real destroy-time error messages collected from
//! provider, Terraform and tofu-controller issues (`tests/data/messages.yaml`, each with its
//! source URL and a human label), plus the figures per slice: `heldout-1` (`heldout: true`:
//! collected after the rules were first written, then used to tune them), each later named slice
//! (`slice: heldout-2`, …: collected and labelled by hand, labels committed before the classifier
//! was run on them) and all rows. Run with `--nocapture` to see the figures and, per slice, the
//! rows the classifier disagrees with.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use tfops_guard::classify::check::{check, Labelled, Report};
use tfops_guard::classify::{Classifier, FailureClass};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    source: String,
    reason: String,
    message: String,
    class: FailureClass,
    /// Expected provider of the matched rule (optional).
    #[serde(default)]
    provider: Option<String>,
    /// Expected code of the matched rule (optional).
    #[serde(default)]
    code: Option<String>,
    /// Collected after the rules were first written (the first held-out slice, `heldout-1`).
    #[serde(default)]
    heldout: bool,
    /// A later held-out slice this row belongs to (e.g. `heldout-2`).
    #[serde(default)]
    slice: Option<String>,
    /// Where the message comes from: aws, google, azure, kubernetes, helm, terraform,
    /// tofu-controller, other.
    #[serde(default)]
    origin: Option<String>,
    /// A documented disagreement: the human label stands (and counts in the figures), the
    /// classifier deliberately answers otherwise, for the reason given here.
    #[serde(default)]
    known_miss: Option<String>,
    /// Why the label (the labeller's reading of the thread; corrections say what changed).
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

fn rows() -> Vec<Row> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/messages.yaml");
    let text = std::fs::read_to_string(&path).expect("read messages.yaml");
    serde_saphyr::from_str(&text).expect("parse messages.yaml")
}

/// Agreement, unknown rate and permanent-classed-transient count over some rows (the same
/// measure `helm tfops explain --check` prints).
fn figures<'a>(c: &Classifier, rows: impl Iterator<Item = &'a Row>) -> Report {
    let labelled: Vec<Labelled> = rows
        .map(|r| Labelled {
            reason: r.reason.clone(),
            message: r.message.clone(),
            class: r.class,
            source: Some(r.source.clone()),
        })
        .collect();
    check(c, &labelled)
}

/// The slice a row belongs to: its named slice, `heldout-1`, or `tuning`.
fn slice_of(r: &Row) -> &str {
    match (&r.slice, r.heldout) {
        (Some(s), _) => s.as_str(),
        (None, true) => "heldout-1",
        (None, false) => "tuning",
    }
}

/// The slices in the table, in order of first appearance.
fn slices(rows: &[Row]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        let s = slice_of(r);
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

#[test]
fn table_has_enough_real_messages_with_sources() {
    let rows = rows();
    assert!(rows.len() >= 200, "only {} messages", rows.len());
    for r in &rows {
        assert!(
            r.source.starts_with("https://"),
            "row without a source URL: {r:?}"
        );
        assert!(!r.message.trim().is_empty(), "empty message: {r:?}");
    }
    let mut per_class: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *per_class.entry(r.class.as_str()).or_default() += 1;
    }
    for class in ["transient", "permanent", "blocked-by-missing-dependency"] {
        assert!(
            per_class.get(class).copied().unwrap_or(0) >= 5,
            "too few {class} rows: {per_class:?}"
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for r in &rows {
        assert!(
            seen.insert((r.source.as_str(), r.message.as_str())),
            "duplicate row: {} {:?}",
            r.source,
            r.message
        );
    }
    for slice in slices(&rows).iter().filter(|s| s.starts_with("heldout")) {
        let n = rows.iter().filter(|r| slice_of(r) == slice).count();
        assert!(n >= 40, "held-out slice {slice} has only {n} messages");
    }
    for r in &rows {
        assert!(
            !(r.heldout && r.slice.is_some()),
            "{}: a row is in one slice",
            r.source
        );
    }
    let mut per_origin: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        let o = r.origin.clone().unwrap_or_else(|| origin_of(&r.source));
        *per_origin.entry(o).or_default() += 1;
    }
    for o in [
        "aws",
        "google",
        "azure",
        "kubernetes",
        "terraform",
        "tofu-controller",
    ] {
        assert!(
            per_origin.get(o).copied().unwrap_or(0) >= 5,
            "too few {o} messages: {per_origin:?}"
        );
    }
}

/// Origin from the source URL when a row does not name it.
fn origin_of(source: &str) -> String {
    let s = source.to_ascii_lowercase();
    for (needle, origin) in [
        ("tofu-controller", "tofu-controller"),
        ("tf-controller", "tofu-controller"),
        ("provider-aws", "aws"),
        ("aws", "aws"),
        ("provider-google", "google"),
        ("google", "google"),
        ("gke", "google"),
        ("gcp", "google"),
        ("azure", "azure"),
        ("azurerm", "azure"),
        ("provider-helm", "helm"),
        ("kubernetes", "kubernetes"),
        ("hashicorp/terraform/", "terraform"),
        ("opentofu", "terraform"),
    ] {
        if s.contains(needle) {
            return origin.to_string();
        }
    }
    "other".to_string()
}

#[test]
fn builtin_classifier_matches_the_table() {
    let c = Classifier::builtin();
    // Per rule: how many rows it matches are labelled transient, and permanent.
    let classified: Vec<_> = rows()
        .into_iter()
        .map(|r| {
            let got = c.classify(&r.reason, &r.message);
            (r, got)
        })
        .collect();
    let mut labels_by_rule: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (r, got) in &classified {
        let e = labels_by_rule
            .entry(got.rule_name().to_string())
            .or_default();
        match r.class {
            FailureClass::Transient => e.0 += 1,
            FailureClass::Permanent => e.1 += 1,
            _ => {}
        }
    }
    let mut wrong = Vec::new();
    for (r, got) in &classified {
        if let Some(why) = &r.known_miss {
            assert!(
                !why.trim().is_empty(),
                "{}: known_miss needs a reason",
                r.source
            );
            assert!(
                got.class != r.class,
                "{}: the classifier now agrees — drop known_miss",
                r.source
            );
            // A permanent error classed transient is an accepted miss only where the rule's
            // own evidence is mostly transient: more rows it matches are labelled transient
            // than permanent (the same text labelled both ways by different readers).
            if r.class == FailureClass::Permanent && got.class == FailureClass::Transient {
                let (t, p) = labels_by_rule
                    .get(got.rule_name())
                    .copied()
                    .unwrap_or_default();
                assert!(
                    t > p,
                    "{}: permanent classed transient by {} ({t} transient / {p} permanent rows): make the rule lean permanent",
                    r.source,
                    got.rule_name()
                );
            }
            continue;
        }
        let m = got.rule.as_ref();
        let provider_ok = r
            .provider
            .as_ref()
            .is_none_or(|p| m.is_some_and(|m| &m.provider == p));
        let code_ok = r
            .code
            .as_ref()
            .is_none_or(|code| m.is_some_and(|m| &m.code == code));
        if got.class != r.class
            || (r.class != FailureClass::Unknown && got.rule.is_none())
            || !provider_ok
            || !code_ok
        {
            wrong.push(format!(
                "{} ({}): expected {} {:?}/{:?}, got {} by rule {} ({:?}/{:?})\n    {}",
                r.source,
                r.reason,
                r.class,
                r.provider,
                r.code,
                got.class,
                got.rule_name(),
                m.map(|m| &m.provider),
                m.map(|m| &m.code),
                r.message.lines().next().unwrap_or("")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} misclassified:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn figures_meet_the_targets() {
    let c = Classifier::builtin();
    let rows = rows();
    let mut report: Vec<(String, Report)> = slices(&rows)
        .into_iter()
        .filter(|s| s.starts_with("heldout"))
        .map(|s| {
            let f = figures(&c, rows.iter().filter(|r| slice_of(r) == s));
            (s, f)
        })
        .collect();
    report.push(("all".to_string(), figures(&c, rows.iter())));
    for (slice, f) in &report {
        println!("{slice}: {}", f.summary());
    }
    // No permanent error classed transient, in any slice. The agreement and unknown targets
    // are asserted on all rows: a held-out slice stops being held out once rules are tuned on
    // it, so its honest figure is the one measured before (recorded in messages.yaml); after
    // tuning, every disagreement left in a slice is a documented `known_miss` (asserted by
    // `builtin_classifier_matches_the_table`) and its figures are printed above.
    //
    // Permanent classed transient: none in slices 1–5, 7, 8, 12 and 15 (heldout-15's two, an
    // Azure VM "marked for deletion" by the same destroy, were relabelled transient by an
    // inter-reader study: messages.yaml notes). heldout-6, -9, -10, -11 and -14 (labelled by
    // readers of the threads who had not seen the rules; heldout-14 holds the 15 rows
    // collected as heldout-13 too, heldout-15 the 24 collected as heldout-16) have 9 rows
    // whose text reads as a timeout, a 5xx, an operation in progress or a mid-transition
    // state, as in far more rows labelled transient (a bare `context deadline exceeded` from
    // a pod stuck terminating, "internal error: context has no deadline" from a provider bug,
    // a 409 concurrent IAM policy change):
    // making those rules permanent would misclass far more rows than it fixes. (A namespace
    // whose destroy ran out of time is its own rule now, `kubernetes-namespace-delete-timeout`:
    // three readers labelled it permanent.) heldout-17 (measured out of the table at stop 16:
    // 7 permanent classed transient; joined the table after) keeps 2: two waits that ran out
    // of time — its three tool timeouts that name a finalizer "stuck" or "not lifted" are a
    // rule now, a 412 naming an organisation policy constraint is no longer read as an
    // operation in progress, and a request that timed out towards a cluster already gone is
    // `deployment-endpoint-timeout`. heldout-18 (measured out of the table at stop 17, labels
    // checked by two more blind readers: 55 of 56 unanimous) keeps 3: waits that ran out of
    // time and a bare `context deadline exceeded` (its 500 whose body is a TLS handshake
    // timeout towards a cluster's address is `deployment-endpoint-timeout` now). heldout-19
    // (measured out of the table at stop 18: 68.2 %, 1 permanent classed transient; it also
    // holds the 36 rows collected as heldout-20, measured after: 91.7 %, none, and the 28
    // collected as heldout-21 at stop 19: 3 in its first part, before the rules they led to)
    // keeps that one: an ECS capacity provider wait that ran out of time while a config still
    // referenced it. heldout-22 (55 rows collected at stop 20, measured at 6287d71 before
    // anyone read them: 74.5 %, 2 permanent classed transient) keeps 1: an OpenStack security
    // group wait that ran out of time while ports outside the config held it (its other one,
    // an AWS delete waiter that loses its resource, is `delete-waiter-lost-resource` now, which
    // also took heldout-11's Azure container group). heldout-23 (48 rows, measured at fd2c789:
    // 83.3 %, 6) keeps 4: a Transit Gateway state refusal whose attachment sat outside the test
    // (two table rows with the same words were attachments the same destroy was deleting), two
    // 5xx bodies that name a precondition or nothing (a Proxmox container not running, a
    // CloudStack code 530), and an IONOS wait that ran out of time (its Plugin Framework
    // "please retry … or report" template is no longer read as a retry hint, and a FortiOS CLI
    // refusal inside a 500 is `fortios-cli-command-failed`). `builtin_classifier_matches_the_table` checks each
    // is documented and that its rule's own rows are mostly transient.
    // Each slice's count is a ceiling: a change that adds one fails here.
    let ceiling = |slice: &str| match slice {
        "heldout-6" => 2,
        "heldout-9" => 4,
        "heldout-10" => 2,
        "heldout-11" => 1,
        "heldout-17" => 2,
        "heldout-18" => 3,
        "heldout-19" => 1,
        "heldout-22" => 1,
        "heldout-23" => 4,
        "all" => 20,
        _ => 0,
    };
    for (slice, f) in &report {
        assert!(
            f.permanent_as_transient <= ceiling(slice),
            "{slice}: {}",
            f.summary()
        );
    }
    // On all rows (tuned on, so not the issue's held-out measure): a floor that bounds how many
    // documented misses may pile up (every other row must agree, see above). It is 86 %, not
    // 95 %, and it moved down as fresh slices (which score below tuned rows) joined the table: where a text cannot tell a transient cause from a permanent one the rule leans
    // permanent (a permanent error retried burns the whole budget) — above all the generic
    // in-use rule, which the first slices' labellers read as transient and the readers of
    // heldout-6, -7 and -9 as permanent 14 times in 20 (heldout-8, read after that change:
    // 0 permanent classed transient) — and those transient-labelled rows are documented
    // misses. A rule is never changed to reach a table threshold.
    if let Some((_, f)) = report.last() {
        assert!(f.agreement_pct() >= 86.0, "all: {}", f.summary());
        assert!(f.unknown_pct() <= 3.0, "all: {}", f.summary());
    }
}

/// One reader's label of a message from its text alone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReaderLabel {
    class: FailureClass,
    /// `sure`, or `lean` where the text leaves it open.
    confidence: String,
    #[allow(dead_code)]
    why: String,
}

/// A held-out row labelled by two readers who saw only its message (`text-only-readers.yaml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TextOnlyRow {
    /// Which reading: `random-120` (drawn from all held-out slices) or a fresh slice.
    set: String,
    /// The classifier's class for the row as measured before any rule was written from it
    /// (fresh slices only).
    #[serde(default)]
    measured: Option<FailureClass>,
    source: String,
    message: String,
    reader_a: ReaderLabel,
    reader_b: ReaderLabel,
}

/// How much of a thread-derived label the message text decides: two readers labelled held-out
/// rows from the text alone (`text-only-readers.yaml`, per set). Their agreement with the
/// thread is what a careful human gets without the thread (the bar for any text classifier),
/// their agreement with each other says the text reads one way. Prints the figures per set;
/// asserts the data joins the table, and that the classifier sends no more permanent errors
/// to the transient path than either reader does (it leans permanent where the text cannot
/// tell).
#[test]
fn text_only_readers_show_what_the_text_decides() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/text-only-readers.yaml");
    let text = std::fs::read_to_string(&path).expect("read text-only-readers.yaml");
    let readers: Vec<TextOnlyRow> = serde_saphyr::from_str(&text).expect("parse");
    let table = rows();
    let c = Classifier::builtin();
    let mut sets: Vec<&str> = Vec::new();
    for r in &readers {
        if !sets.contains(&r.set.as_str()) {
            sets.push(&r.set);
        }
    }
    assert!(!sets.is_empty(), "no rows");
    for set in sets {
        let rows: Vec<&TextOnlyRow> = readers.iter().filter(|r| r.set == set).collect();
        assert!(rows.len() >= 40, "{set}: only {} rows", rows.len());
        let (mut a_ok, mut b_ok, mut ab, mut c_ok) = (0usize, 0usize, 0usize, 0usize);
        let (mut a_pt, mut b_pt, mut c_pt) = (0usize, 0usize, 0usize);
        let (mut m_n, mut m_ok, mut m_pt) = (0usize, 0usize, 0usize);
        let (mut both_sure, mut both_sure_ok) = (0usize, 0usize);
        for r in &rows {
            let joined: Vec<&Row> = table
                .iter()
                .filter(|t| t.source == r.source && t.message == r.message)
                .collect();
            assert_eq!(joined.len(), 1, "{}: joins no one table row", r.source);
            let row = joined[0];
            assert!(
                slice_of(row).starts_with("heldout"),
                "{}: not a held-out row",
                r.source
            );
            for l in [&r.reader_a, &r.reader_b] {
                assert!(
                    matches!(l.class, FailureClass::Transient | FailureClass::Permanent),
                    "{}: {:?}",
                    r.source,
                    l.class
                );
                assert!(
                    ["sure", "lean"].contains(&l.confidence.as_str()),
                    "{}: confidence {}",
                    r.source,
                    l.confidence
                );
            }
            let got = c.classify(&row.reason, &row.message).class;
            let p_as_t = |class: FailureClass| {
                usize::from(
                    row.class == FailureClass::Permanent && class == FailureClass::Transient,
                )
            };
            a_ok += usize::from(r.reader_a.class == row.class);
            b_ok += usize::from(r.reader_b.class == row.class);
            ab += usize::from(r.reader_a.class == r.reader_b.class);
            c_ok += usize::from(got == row.class);
            a_pt += p_as_t(r.reader_a.class);
            b_pt += p_as_t(r.reader_b.class);
            c_pt += p_as_t(got);
            if let Some(m) = r.measured {
                m_n += 1;
                m_ok += usize::from(m == row.class);
                m_pt += p_as_t(m);
            }
            if r.reader_a.confidence == "sure"
                && r.reader_b.confidence == "sure"
                && r.reader_a.class == r.reader_b.class
            {
                both_sure += 1;
                both_sure_ok += usize::from(r.reader_a.class == row.class);
            }
        }
        let n = rows.len();
        let pct = |k: usize, of: usize| 100.0 * k as f64 / of.max(1) as f64;
        println!(
            "text only, {set} ({n} held-out rows): reader A agrees with the thread {:.1} % ({a_ok}), reader B {:.1} % ({b_ok}), A and B with each other {:.1} % ({ab}); permanent classed transient A {a_pt}, B {b_pt}; both sure and agreeing: {both_sure} rows, thread agrees {:.1} % ({both_sure_ok})",
            pct(a_ok, n),
            pct(b_ok, n),
            pct(ab, n),
            pct(both_sure_ok, both_sure)
        );
        println!(
            "classifier now on {set} (tuned on these rows, so not held out): {:.1} % ({c_ok}), permanent classed transient {c_pt}",
            pct(c_ok, n)
        );
        if m_n > 0 {
            assert_eq!(m_n, n, "{set}: a measured class on some rows only");
            println!(
                "classifier as measured on {set}, before any rule was written from it: {:.1} % ({m_ok}), permanent classed transient {m_pt}",
                pct(m_ok, n)
            );
        }
        // A floor, not the measure: the classifier is tuned on these rows. It catches a change
        // that makes the table lean transient where a careful reader of the text would not.
        assert!(
            c_pt <= a_pt.min(b_pt),
            "{set}: the classifier sends {c_pt} permanent errors to the transient path, a text-only reader {}",
            a_pt.min(b_pt)
        );
    }
}

/// Reports (does not assert) every row the classifier disagrees with, per slice, with the rule
/// that answered — documented `known_miss` rows included, marked as such.
#[test]
fn disagreements_are_listed_per_slice() {
    let c = Classifier::builtin();
    let rows = rows();
    for slice in slices(&rows) {
        for r in rows.iter().filter(|r| slice_of(r) == slice) {
            let got = c.classify(&r.reason, &r.message);
            if got.class != r.class {
                println!(
                    "{slice}: {} ({}) labelled {}, classified {} by {}{}\n    {}",
                    r.source,
                    r.reason,
                    r.class,
                    got.class,
                    got.rule_name(),
                    if r.known_miss.is_some() {
                        " [known miss]"
                    } else {
                        ""
                    },
                    r.message.lines().next().unwrap_or("")
                );
            }
        }
    }
}

#[test]
fn catalog_rules_override_the_table() {
    // A platform team decides that S3 buckets left non-empty are retried (a cleanup job
    // empties them) — the catalog rule must win over the built-in `bucket-not-empty` rule.
    let c = Classifier::from_json(
        r#"[{"pattern": "BucketNotEmpty", "reason": "TFExecApplyFailed", "class": "transient"}]"#,
        "test catalog",
    )
    .unwrap();
    let row = rows()
        .into_iter()
        .find(|r| r.message.contains("BucketNotEmpty") && r.reason == "TFExecApplyFailed")
        .expect("a BucketNotEmpty row");
    let got = c.classify(&row.reason, &row.message);
    assert_eq!(got.class, FailureClass::Transient);
    assert_eq!(got.rule_name(), "catalog[0]");
    // Other rows are unaffected.
    let b = Classifier::builtin();
    for r in rows()
        .iter()
        .filter(|r| !r.message.contains("BucketNotEmpty"))
    {
        assert_eq!(
            c.classify(&r.reason, &r.message),
            b.classify(&r.reason, &r.message),
            "{}",
            r.source
        );
    }
}

/// Reports (does not assert) how long classification and `explain` take: preparing the built-in
/// table is paid once; the first message whose words point at a pattern branch pays for
/// compiling that branch, once per process (the first pass below); later calls only normalise,
/// search the table's literals and run the branches they point at (the second pass).
/// `cargo test -p tfops-guard --test main latency -- --nocapture` prints the figures.
#[test]
fn latency_is_reported() {
    use std::time::{Duration, Instant};
    use tfops_guard::explain::{explain, Request};
    use tfops_guard::policy::Policy;

    let rows = rows();
    let t0 = Instant::now();
    Classifier::warm_up();
    let compile = t0.elapsed();
    let c = Classifier::builtin();
    let mut worst = Duration::ZERO;
    let t1 = Instant::now();
    for r in &rows {
        let t = Instant::now();
        let e = explain(
            &Request {
                reason: r.reason.clone(),
                message: r.message.clone(),
                policy: Policy::default(),
                attempts: 1,
                elapsed: Duration::from_secs(20),
                budget: None,
            },
            &c,
        )
        .expect("explain");
        assert_eq!(e.class, c.classify(&r.reason, &r.message).class);
        worst = worst.max(t.elapsed());
    }
    let total = t1.elapsed();
    let t2 = Instant::now();
    let mut worst_classify = Duration::ZERO;
    for r in &rows {
        let t = Instant::now();
        let _ = c.classify(&r.reason, &r.message);
        worst_classify = worst_classify.max(t.elapsed());
    }
    let classify_total = t2.elapsed();
    println!(
        "latency: classify over {} messages (second pass): mean {:?}, worst {worst_classify:?}",
        rows.len(),
        classify_total / u32::try_from(rows.len()).unwrap_or(1)
    );
    println!(
        "latency: table prepared once in {compile:?}; explain over {} messages (first pass, compiling branches as needed): mean {:?}, worst {worst:?}",
        rows.len(),
        total / u32::try_from(rows.len()).unwrap_or(1)
    );
}
