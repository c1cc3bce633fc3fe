//! Build script of `tfops-guard`: analyses the built-in classifier table
//! (`src/core/classify/rules.rs`) once, at build time, so that a process never parses the whole
//! table to classify one message (`tfops explain` must answer in a few milliseconds).
//!
//! For every built-in pattern it writes `$OUT_DIR/builtin_prefilter.rs`, read by
//! `src/core/classify/prefilter.rs`:
//! - the pattern's top-level alternation branches (byte spans into the pattern text), so that
//!   only the branches a message can match are ever compiled;
//! - per branch, literals (ASCII-lowercased) of which every match of the branch must contain
//!   one, found with `regex-syntax`'s literal extractor (prefix, suffix, or inside a
//!   concatenation); none when no such literal set exists (the branch is then always tried);
//! - whether those literals are *exact*: the branch is a finite set of plain strings (no
//!   look-around, no class negation, no inline flags), so containing one of them (ignoring ASCII
//!   case) is the same as matching the branch, and no regex needs compiling at all.
//!
//! The rule table is compiled into this script with `#[path]`; `rules.rs` may only refer to
//! `super::FailureClass` (and its variants), which the shim below provides. Any pattern this
//! script cannot analyse becomes one branch without literals: always tried, never wrong.

use std::fmt::Write as _;
use std::path::PathBuf;

use regex_syntax::ast::{self, Ast};
use regex_syntax::hir::literal::{ExtractKind, Extractor, Seq};
use regex_syntax::hir::{Hir, HirKind};

#[allow(dead_code)]
#[path = "src/core/classify"]
mod classify {
    /// Stand-in for `tfops_api::FailureClass` (only the variants are used by the table).
    #[derive(Debug, Clone, Copy)]
    pub enum FailureClass {
        Transient,
        Permanent,
        BlockedByMissingDependency,
        Unknown,
    }

    pub mod rules;
}

/// What the build script found about one branch.
struct Branch {
    start: usize,
    end: usize,
    exact: bool,
    literals: Option<Vec<Vec<u8>>>,
}

/// Literals of a finite sequence, ASCII-lowercased, deduplicated, and with every literal that
/// contains another one dropped (if it occurs, so does the shorter one). `None` when the
/// sequence is infinite or empty, or (unless `allow_empty`) holds the empty string.
fn literals_of(seq: &Seq, allow_empty: bool) -> Option<Vec<Vec<u8>>> {
    let lits = seq.literals()?;
    if lits.is_empty() || (!allow_empty && lits.iter().any(|l| l.as_bytes().is_empty())) {
        return None;
    }
    let mut out: Vec<Vec<u8>> = lits
        .iter()
        .map(|l| l.as_bytes().to_ascii_lowercase())
        .collect();
    out.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    out.dedup();
    let mut kept: Vec<Vec<u8>> = Vec::with_capacity(out.len());
    for lit in out {
        if !kept.iter().any(|k| contains(&lit, k)) {
            kept.push(lit);
        }
    }
    Some(kept)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Better literal set: longer shortest literal first (rarer), then fewer literals.
fn better(a: &[Vec<u8>], b: &[Vec<u8>]) -> bool {
    let min = |s: &[Vec<u8>]| s.iter().map(Vec::len).min().unwrap_or(0);
    (min(a), std::cmp::Reverse(a.len())) > (min(b), std::cmp::Reverse(b.len()))
}

fn extract(hir: &Hir, kind: ExtractKind) -> Seq {
    let mut e = Extractor::new();
    e.kind(kind);
    e.extract(hir)
}

/// A set of literals one of which every match of `hir` contains, the best found.
fn required(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let mut best: Option<Vec<Vec<u8>>> = None;
    let mut consider = |c: Option<Vec<Vec<u8>>>| {
        if let Some(c) = c {
            if best.as_ref().is_none_or(|b| better(&c, b)) {
                best = Some(c);
            }
        }
    };
    consider(literals_of(&extract(hir, ExtractKind::Prefix), false));
    consider(literals_of(&extract(hir, ExtractKind::Suffix), false));
    match hir.kind() {
        // every match of a concatenation contains a match of each part
        HirKind::Concat(parts) => {
            for part in parts {
                consider(required(part));
            }
        }
        HirKind::Capture(c) => consider(required(&c.sub)),
        HirKind::Repetition(r) if r.min >= 1 => consider(required(&r.sub)),
        // every match of an alternation matches one of its branches
        HirKind::Alternation(alts) => {
            let mut union = Vec::new();
            let mut all = true;
            for alt in alts {
                match required(alt) {
                    Some(lits) => union.extend(lits),
                    None => {
                        all = false;
                        break;
                    }
                }
            }
            if all {
                consider(literals_of(&Seq::new(union), false));
            }
        }
        _ => {}
    }
    best
}

/// Text that may change what a literal means once the pattern is matched case-insensitively:
/// inline flags, class negation (`[^a]` ignoring case excludes `A` too), anchors.
fn has_case_sensitive_syntax(text: &str) -> bool {
    ["(?", "^", "\\W", "\\D", "\\S", "\\B", "\\P", "\\p"]
        .iter()
        .any(|s| text.contains(s))
}

fn analyse_branch(pattern: &str, start: usize, end: usize) -> Branch {
    let whole = Branch {
        start,
        end,
        exact: false,
        literals: None,
    };
    let Some(text) = pattern.get(start..end) else {
        return whole;
    };
    // Parsed case-sensitively: a match ignoring ASCII case is, letter for letter, a match of
    // the case-sensitive pattern up to case, so its literals are found ignoring case.
    let Ok(hir) = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(text)
    else {
        return whole;
    };
    let prefix = extract(&hir, ExtractKind::Prefix);
    if !has_case_sensitive_syntax(text)
        && hir.properties().look_set().is_empty()
        && prefix.is_finite()
        && prefix.is_exact()
    {
        if let Some(literals) = literals_of(&prefix, true) {
            return Branch {
                start,
                end,
                exact: true,
                literals: Some(literals),
            };
        }
    }
    Branch {
        literals: required(&hir),
        ..whole
    }
}

/// A top-level flag directive (`(?i)` outside a group) applies to the branches after it: such
/// a pattern is not split.
fn sets_flags(branch: &Ast) -> bool {
    match branch {
        Ast::Flags(_) => true,
        Ast::Concat(c) => c.asts.iter().any(|a| matches!(a, Ast::Flags(_))),
        _ => false,
    }
}

fn analyse(pattern: &str) -> Vec<Branch> {
    let whole = || vec![analyse_branch(pattern, 0, pattern.len())];
    let Ok(parsed) = ast::parse::Parser::new().parse(pattern) else {
        return whole();
    };
    match &parsed {
        Ast::Alternation(alt) if !alt.asts.iter().any(sets_flags) => alt
            .asts
            .iter()
            .map(|b| analyse_branch(pattern, b.span().start.offset, b.span().end.offset))
            .collect(),
        _ => whole(),
    }
}

fn byte_string(bytes: &[u8]) -> String {
    let mut s = String::from("b\"");
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(char::from(b));
            }
            0x20..=0x7e => s.push(char::from(b)),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('"');
    s
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/core/classify/rules.rs");
    let mut out = String::from(
        "// @generated by crates/tfops-guard/build.rs from src/core/classify/rules.rs.\n\
         /// Per built-in rule, in table order: its pattern's length and branches.\n\
         static GENERATED: &[Option<Generated>] = &[\n",
    );
    for def in classify::rules::BUILTIN {
        let Some(pattern) = def.pattern else {
            out.push_str("    None,\n");
            continue;
        };
        let _ = writeln!(
            out,
            "    // {}\n    Some(Generated {{ pattern_len: {}, branches: &[",
            def.name,
            pattern.len()
        );
        for b in analyse(pattern) {
            let literals = match &b.literals {
                Some(lits) => format!(
                    "Some(&[{}])",
                    lits.iter()
                        .map(|l| byte_string(l))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => "None".to_string(),
            };
            let _ = writeln!(
                out,
                "        GeneratedBranch {{ start: {}, end: {}, exact: {}, literals: {literals} }},",
                b.start, b.end, b.exact
            );
        }
        out.push_str("    ] }),\n");
    }
    out.push_str("];\n");
    let dir = std::env::var_os("OUT_DIR").map(PathBuf::from);
    let Some(dir) = dir else {
        println!("cargo:warning=OUT_DIR is not set");
        std::process::exit(1);
    };
    if let Err(e) = std::fs::write(dir.join("builtin_prefilter.rs"), out) {
        println!("cargo:warning=writing builtin_prefilter.rs: {e}");
        std::process::exit(1);
    }
}
