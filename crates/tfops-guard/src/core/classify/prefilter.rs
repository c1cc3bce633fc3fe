//! `classify::prefilter` — how the built-in table is matched without compiling it up front.
//!
//! The build script (`crates/tfops-guard/build.rs`) splits every built-in pattern into its
//! top-level alternation branches and finds, per branch, literals of which every match must
//! contain one (ignoring ASCII case). At run time a [`Pattern`] matches a message by looking
//! for those literals in the lowercased message ([`Haystack`]); only a branch whose literal
//! occurs (or that has none) is compiled — once per process, on first use — and run. A branch
//! whose literals are *exact* (a finite set of plain strings) is decided by the literal search
//! alone. A match of any branch is a match of the pattern: the answer is the same as matching
//! the whole pattern, case-insensitively and without Unicode tables, against the message.
//!
//! Compiling the whole table (≈80 patterns, ≈13 KB of regex) took 15–25 ms per process, paid
//! by every `tfops explain`; now a message pays for the few branches its words point at.
//!
//! `rules.rs` is compiled into the build script too (`#[path]`), so it may only refer to
//! `super::FailureClass`; the build script reruns whenever it changes, so the analysis always
//! matches the table (`the_build_script_analysed_this_table`). A branch it cannot analyse is
//! always tried: slower, never wrong.

use std::sync::OnceLock;

use regex_automata::meta;
use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::util::syntax;

/// One branch as analysed by the build script: a byte span of the pattern text.
struct GeneratedBranch {
    start: usize,
    end: usize,
    /// Containing one of `literals` (ignoring ASCII case) is matching the branch.
    exact: bool,
    /// ASCII-lowercased; every match of the branch contains one. `None`: always tried.
    literals: Option<&'static [&'static [u8]]>,
}

/// One built-in pattern as analysed by the build script.
struct Generated {
    pattern_len: usize,
    branches: &'static [GeneratedBranch],
}

include!(concat!(env!("OUT_DIR"), "/builtin_prefilter.rs"));

/// The message a rule is matched against, its ASCII-lowercased copy for literal search, and
/// which byte pairs that copy holds: a literal with a pair the message lacks is ruled out by
/// a few bit tests, before any substring search (the table has ≈1 100 literals; most messages
/// hold very few of them).
#[derive(Debug)]
pub(super) struct Haystack<'a> {
    text: &'a [u8],
    lower: Vec<u8>,
    /// Bit `a * 256 + b` is set when `lower` holds the pair `ab`.
    pairs: Vec<u64>,
}

impl<'a> Haystack<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        let lower = text.as_bytes().to_ascii_lowercase();
        let mut pairs = vec![0u64; 65536 / 64];
        for w in lower.windows(2) {
            let bit = usize::from(w[0]) << 8 | usize::from(w[1]);
            if let Some(word) = pairs.get_mut(bit / 64) {
                *word |= 1 << (bit % 64);
            }
        }
        Haystack {
            text: text.as_bytes(),
            lower,
            pairs,
        }
    }

    fn has_pair(&self, a: u8, b: u8) -> bool {
        let bit = usize::from(a) << 8 | usize::from(b);
        self.pairs
            .get(bit / 64)
            .is_some_and(|word| word & (1 << (bit % 64)) != 0)
    }

    /// Whether `lower` contains `literal` (lowercase).
    fn contains(&self, literal: &[u8]) -> bool {
        literal.windows(2).all(|w| self.has_pair(w[0], w[1]))
            && memchr::memmem::find(&self.lower, literal).is_some()
    }

    fn contains_any(&self, literals: &[&[u8]]) -> bool {
        literals.iter().any(|l| self.contains(l))
    }
}

#[derive(Debug)]
struct Branch {
    text: &'static str,
    exact: bool,
    literals: Option<&'static [&'static [u8]]>,
    /// Compiled on first use; `None` if it does not compile (never for the built-in table:
    /// `every_builtin_pattern_compiles_and_is_documented`).
    regex: OnceLock<Option<meta::Regex>>,
}

impl Branch {
    fn regex(&self) -> Option<&meta::Regex> {
        self.regex.get_or_init(|| compile(self.text).ok()).as_ref()
    }

    /// Where this branch matches in the haystack's text.
    fn span(&self, hay: &Haystack<'_>) -> Option<std::ops::Range<usize>> {
        match self.literals {
            Some(lits) if self.exact => lits.iter().find_map(|l| {
                memchr::memmem::find(&hay.lower, l).map(|start| start..start + l.len())
            }),
            Some(lits) if !hay.contains_any(lits) => None,
            // the cached regex is built for `is_match` only (no capture states, so no
            // offsets); `explain` pays for one branch compiled for `find`
            _ if self.regex().is_some_and(|r| r.is_match(hay.text)) => {
                compile_with(self.text, true)
                    .ok()
                    .and_then(|r| r.find(hay.text))
                    .map(|m| m.range())
            }
            _ => None,
        }
    }

    fn is_match(&self, hay: &Haystack<'_>) -> bool {
        match self.literals {
            Some(lits) if self.exact => hay.contains_any(lits),
            Some(lits) if !hay.contains_any(lits) => false,
            _ => self.regex().is_some_and(|r| r.is_match(hay.text)),
        }
    }
}

/// Compile one built-in pattern or branch: case-insensitive, no Unicode tables, on bytes —
/// the same language `regex::bytes::RegexBuilder::new(p).case_insensitive(true)
/// .unicode(false)` accepts. Only the engines an `is_match` needs are built (lazy DFA, with
/// the PikeVM behind it); no literal prefilter (the literal search already ran).
pub(super) fn compile(pattern: &str) -> Result<meta::Regex, Box<meta::BuildError>> {
    compile_with(pattern, false)
}

/// [`compile`], or with the capture states a `find` needs to report where it matched.
fn compile_with(pattern: &str, offsets: bool) -> Result<meta::Regex, Box<meta::BuildError>> {
    meta::Regex::builder()
        .syntax(
            syntax::Config::new()
                .case_insensitive(true)
                .unicode(false)
                .utf8(false),
        )
        .configure(
            meta::Regex::config()
                .utf8_empty(false)
                .which_captures(if offsets {
                    WhichCaptures::Implicit
                } else {
                    WhichCaptures::None
                })
                .auto_prefilter(false)
                .onepass(false)
                .backtrack(false)
                .dfa(false)
                // for offsets, the PikeVM alone: a lazy DFA would need a reverse NFA too
                .hybrid(!offsets),
        )
        .build(pattern)
        .map_err(Box::new)
}

/// A built-in rule's pattern, split into branches that are compiled on first use.
#[derive(Debug)]
pub(super) struct Pattern {
    branches: Vec<Branch>,
}

impl Pattern {
    /// The pattern of built-in rule `index`, split as the build script found. Should the
    /// analysis not line up with `text`, the whole pattern is one branch, always tried.
    pub(super) fn new(text: &'static str, index: usize) -> Self {
        let whole = || Pattern {
            branches: vec![Branch {
                text,
                exact: false,
                literals: None,
                regex: OnceLock::new(),
            }],
        };
        let Some(Some(generated)) = GENERATED.get(index) else {
            return whole();
        };
        if generated.pattern_len != text.len() {
            return whole();
        }
        let mut branches = Vec::with_capacity(generated.branches.len());
        for b in generated.branches {
            let Some(branch_text) = text.get(b.start..b.end) else {
                return whole();
            };
            branches.push(Branch {
                text: branch_text,
                exact: b.exact,
                literals: b.literals,
                regex: OnceLock::new(),
            });
        }
        if branches.is_empty() {
            return whole();
        }
        Pattern { branches }
    }

    /// Whether the pattern matches the haystack (as the whole pattern would).
    pub(super) fn is_match(&self, hay: &Haystack<'_>) -> bool {
        self.in_order().any(|b| b.is_match(hay))
    }

    /// The branches in the order they are tried: exact ones first (they cost a substring
    /// search and never a compile), then the others.
    fn in_order(&self) -> impl Iterator<Item = &Branch> {
        let exact = self.branches.iter().filter(|b| b.exact);
        exact.chain(self.branches.iter().filter(|b| !b.exact))
    }

    /// The text the pattern matches in the haystack (the first matching branch, exact ones
    /// first, as [`Self::is_match`] tries them), for `explain`.
    pub(super) fn matched<'h>(&self, hay: &Haystack<'h>) -> Option<&'h str> {
        let span = self.in_order().find_map(|b| b.span(hay))?;
        std::str::from_utf8(hay.text.get(span)?).ok()
    }

    /// Each branch: its text, whether exact, its literals.
    #[cfg(test)]
    pub(super) fn branches(
        &self,
    ) -> impl Iterator<Item = (&'static str, bool, Option<&'static [&'static [u8]]>)> + '_ {
        self.branches.iter().map(|b| (b.text, b.exact, b.literals))
    }
}

/// Whether the build script's analysis lines up with the table (tests).
#[cfg(test)]
pub(super) fn generated_lines_up(patterns: &[Option<&str>]) -> bool {
    GENERATED.len() == patterns.len()
        && GENERATED.iter().zip(patterns).all(|(g, p)| match (g, p) {
            (None, None) => true,
            (Some(g), Some(p)) => {
                g.pattern_len == p.len()
                    && !g.branches.is_empty()
                    && g.branches.iter().all(|b| p.get(b.start..b.end).is_some())
            }
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    //! The prefilter is never wrong: against a reference that compiles every built-in pattern
    //! whole (as the table was matched before) and tests it directly, rule by rule and for the
    //! whole classification, on every row of `tests/data/messages.yaml`, on strings generated
    //! from the branches themselves, and on random and hostile input.

    use std::sync::LazyLock;

    use proptest::prelude::*;
    use regex_syntax::hir::{Hir, HirKind};

    use super::super::{normalise, rules, Classification, Classifier, FailureClass, BUILTIN};
    use super::*;

    /// Every built-in pattern compiled whole, as the `RegexSet` over the table compiled it.
    static REFERENCE: LazyLock<Vec<Option<regex::bytes::Regex>>> = LazyLock::new(|| {
        rules::BUILTIN
            .iter()
            .map(|d| {
                d.pattern.map(|p| {
                    regex::bytes::RegexBuilder::new(p)
                        .case_insensitive(true)
                        .unicode(false)
                        .size_limit(1 << 24)
                        .dfa_size_limit(1 << 24)
                        .build()
                        .unwrap_or_else(|e| panic!("{}: {e}", d.name))
                })
            })
            .collect()
    });

    /// The reference classification of the built-in table: first rule in table order whose
    /// reason fits, whose whole pattern matches the normalised message and whose guard agrees.
    fn reference(reason: &str, message: &str) -> Classification {
        let normal = normalise::normalise(message);
        for (rule, re) in BUILTIN.rules.iter().zip(REFERENCE.iter()) {
            if rule.reason.as_deref().is_some_and(|r| r != reason) {
                continue;
            }
            if re.as_ref().is_none_or(|re| re.is_match(normal.as_bytes()))
                && rule.guard.is_none_or(|g| g(&normal))
            {
                return Classification {
                    class: rule.class,
                    rule: Some(rule.matched()),
                };
            }
        }
        Classification {
            class: FailureClass::Unknown,
            rule: None,
        }
    }

    /// Every rule's pattern, prefiltered, against its reference; `text` is already normalised
    /// (or any text: the equivalence holds on any bytes).
    fn assert_rules_agree(text: &str) -> Result<(), TestCaseError> {
        let hay = Haystack::new(text);
        for ((d, p), re) in rules::BUILTIN
            .iter()
            .zip(&BUILTIN.patterns)
            .zip(REFERENCE.iter())
        {
            if let (Some(p), Some(re)) = (p, re) {
                prop_assert_eq!(
                    p.is_match(&hay),
                    re.is_match(text.as_bytes()),
                    "rule {} on {:?}",
                    d.name,
                    text
                );
            }
        }
        Ok(())
    }

    fn assert_classifier_agrees(reason: &str, message: &str) -> Result<(), TestCaseError> {
        prop_assert_eq!(
            Classifier::builtin().classify(reason, message),
            reference(reason, message),
            "{:?} / {:?}",
            reason,
            message
        );
        Ok(())
    }

    #[derive(serde::Deserialize)]
    struct Row {
        reason: String,
        message: String,
    }

    static ROWS: LazyLock<Vec<Row>> = LazyLock::new(|| {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/messages.yaml");
        let text = std::fs::read_to_string(&path).expect("read messages.yaml");
        serde_saphyr::from_str(&text).expect("parse messages.yaml")
    });

    #[test]
    fn the_build_script_analysed_this_table() {
        let patterns: Vec<Option<&str>> = rules::BUILTIN.iter().map(|d| d.pattern).collect();
        assert!(generated_lines_up(&patterns));
        // A branch without literals is tried on every message that reaches its rule: correct,
        // but it costs a compile per process. Reported (`--nocapture`), not asserted.
        for (d, p) in rules::BUILTIN.iter().zip(&BUILTIN.patterns) {
            for (text, _, lits) in p.iter().flat_map(|p| p.branches()) {
                if lits.is_none() {
                    println!("{}: branch without literals, always tried: {text}", d.name);
                }
            }
        }
    }

    #[test]
    fn every_branch_compiles_and_matches_its_own_literals() {
        for (d, p) in rules::BUILTIN.iter().zip(&BUILTIN.patterns) {
            let Some(p) = p else { continue };
            let whole = REFERENCE
                .iter()
                .zip(rules::BUILTIN)
                .find(|(_, r)| r.name == d.name)
                .and_then(|(re, _)| re.as_ref())
                .expect("reference");
            for (text, exact, lits) in p.branches() {
                let branch = compile(text).unwrap_or_else(|e| panic!("{}: {text}: {e}", d.name));
                if !exact {
                    continue;
                }
                // An exact literal, in any case, is a match of its branch and of the pattern.
                for lit in lits.unwrap_or_default() {
                    for variant in [lit.to_vec(), lit.to_ascii_uppercase()] {
                        assert!(branch.is_match(&variant), "{}: {text} / {lit:?}", d.name);
                        assert!(whole.is_match(&variant), "{}: {lit:?}", d.name);
                    }
                }
            }
        }
    }

    #[test]
    fn prefilter_agrees_with_the_reference_on_every_table_row() {
        let c = Classifier::builtin();
        for row in ROWS.iter() {
            assert_rules_agree(&normalise::normalise(&row.message)).unwrap();
            assert_rules_agree(&row.message).unwrap();
            assert_eq!(
                c.classify(&row.reason, &row.message),
                reference(&row.reason, &row.message),
                "{:?}",
                row.message
            );
            // every row under every reason of the table (reason-limited rules)
            for reason in [
                "",
                "ArtifactFailed",
                "VarsGenerationFailed",
                "TFExecPlanFailed",
            ] {
                assert_eq!(
                    c.classify(reason, &row.message),
                    reference(reason, &row.message)
                );
            }
        }
    }

    /// `hir` without its look-around assertions (which string generation cannot produce).
    fn without_looks(hir: &Hir) -> Hir {
        match hir.kind() {
            HirKind::Look(_) => Hir::empty(),
            HirKind::Concat(parts) => Hir::concat(parts.iter().map(without_looks).collect()),
            HirKind::Alternation(alts) => {
                Hir::alternation(alts.iter().map(without_looks).collect())
            }
            HirKind::Capture(c) => without_looks(&c.sub),
            HirKind::Repetition(r) => {
                let mut r = r.clone();
                r.sub = Box::new(without_looks(&r.sub));
                Hir::repetition(r)
            }
            _ => hir.clone(),
        }
    }

    /// Strings matching (look-arounds aside) one branch of some built-in pattern.
    fn branch_samples() -> BoxedStrategy<String> {
        let mut strategies = Vec::new();
        for p in BUILTIN.patterns.iter().flatten() {
            for (text, _, _) in p.branches() {
                let hir = regex_syntax::ParserBuilder::new()
                    .unicode(false)
                    .utf8(false)
                    .build()
                    .parse(text)
                    .expect("branch parses");
                let s = proptest::string::bytes_regex_parsed(&without_looks(&hir))
                    .expect("branch generates")
                    .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
                    .boxed();
                strategies.push(s);
            }
        }
        proptest::strategy::Union::new(strategies).boxed()
    }

    /// The literals the build script found, as they are.
    fn literal_samples() -> BoxedStrategy<String> {
        let lits: Vec<String> = BUILTIN
            .patterns
            .iter()
            .flatten()
            .flat_map(|p| p.branches().filter_map(|(_, _, l)| l))
            .flatten()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        proptest::sample::select(lits).boxed()
    }

    /// A message: pieces of branches, literals, table rows, words and noise; half of them with
    /// random case.
    fn messages() -> impl Strategy<Value = String> {
        let rows: Vec<String> = ROWS.iter().map(|r| r.message.clone()).collect();
        let piece = prop_oneof![
            4 => branch_samples(),
            2 => literal_samples(),
            1 => proptest::sample::select(rows),
            2 => "[ :=\"'/(),.\\n_-]{0,3}",
            1 => "\\PC{0,12}",
            1 => "[A-Za-z0-9]{1,8}",
        ];
        (
            proptest::collection::vec(piece, 1..8),
            proptest::option::of(proptest::collection::vec(any::<bool>(), 64)),
        )
            .prop_map(|(pieces, flips)| {
                let message = pieces.concat();
                let Some(flips) = flips else { return message };
                message
                    .chars()
                    .zip(flips.iter().cycle())
                    .map(|(c, up)| {
                        if *up {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    })
                    .collect()
            })
    }

    fn reasons() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("TFExecApplyFailed".to_string()),
            Just("ArtifactFailed".to_string()),
            Just("VarsGenerationFailed".to_string()),
            Just("DeletionBlockedByDependantsReason".to_string()),
            "\\PC{0,20}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        /// On generated messages every rule's prefiltered pattern answers as its reference,
        /// and so does the whole classification.
        #[test]
        fn prefilter_agrees_with_the_reference_on_generated_messages(
            message in messages(),
            reason in reasons(),
        ) {
            assert_rules_agree(&message)?;
            assert_rules_agree(&normalise::normalise(&message))?;
            assert_classifier_agrees(&reason, &message)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4))]
        /// Hostile input: ~100 KB of generated pieces, unicode, control characters, escapes.
        #[test]
        fn prefilter_agrees_with_the_reference_on_hostile_input(
            unit in proptest::collection::vec(
                prop_oneof![
                    messages(),
                    "\\PC{0,40}",
                    "[\\n\\r\\t \u{1b}\\[│╷╵0-9;m]{0,40}",
                ],
                1..8,
            ),
            reason in reasons(),
        ) {
            let unit = unit.concat();
            let repeat = if unit.is_empty() { 0 } else { 100_000 / unit.len() + 1 };
            let message = unit.repeat(repeat);
            assert_rules_agree(&normalise::normalise(&message))?;
            assert_classifier_agrees(&reason, &message)?;
        }
    }
}
