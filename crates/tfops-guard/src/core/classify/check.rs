//! `classify::check` — the classifier measured against labelled messages (pure): agreement,
//! `unknown` rate, permanent errors classed transient, and each disagreement with the rule that
//! answered. Used by `helm tfops explain --check FILE` (a platform team checks the knowledge base
//! and its catalog rules against errors it has seen) and by the table test.

use serde::{Deserialize, Serialize};

use super::{Classifier, FailureClass};

/// One labelled message (the YAML/JSON row format of `--check` and `messages.yaml`; other keys
/// are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labelled {
    /// Ready condition reason the message arrives with ("" or null when unknown).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub reason: String,
    pub message: String,
    /// The class a careful human gives it.
    pub class: FailureClass,
    /// Where the message comes from (an issue URL, a ticket), shown with a disagreement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// A row the classifier answers differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Disagreement {
    /// Position in the input (0-based).
    pub index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub expected: FailureClass,
    pub got: FailureClass,
    /// The rule that answered (`no rule matched` for unknown).
    pub rule: String,
}

/// Figures over a set of labelled messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub total: usize,
    pub agree: usize,
    /// Classed `unknown` while the label is a class.
    pub unknown: usize,
    /// Labelled permanent, classed transient: the error that burns the whole budget.
    pub permanent_as_transient: usize,
    pub disagreements: Vec<Disagreement>,
}

/// Serialised with the percentages next to the counts (`-o json`).
impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Report", 7)?;
        st.serialize_field("total", &self.total)?;
        st.serialize_field("agree", &self.agree)?;
        st.serialize_field("agreementPct", &self.agreement_pct())?;
        st.serialize_field("unknown", &self.unknown)?;
        st.serialize_field("unknownPct", &self.unknown_pct())?;
        st.serialize_field("permanentAsTransient", &self.permanent_as_transient)?;
        st.serialize_field("disagreements", &self.disagreements)?;
        st.end()
    }
}

impl Report {
    /// Agreement in percent (100 for no rows: nothing disagrees).
    pub fn agreement_pct(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            pct(self.agree, self.total)
        }
    }

    /// `unknown` rate in percent.
    pub fn unknown_pct(&self) -> f64 {
        pct(self.unknown, self.total)
    }

    /// One line of figures.
    pub fn summary(&self) -> String {
        format!(
            "{} messages, agreement {:.1} % ({}), unknown {:.1} % ({}), permanent classed transient {}",
            self.total,
            self.agreement_pct(),
            self.agree,
            self.unknown_pct(),
            self.unknown,
            self.permanent_as_transient
        )
    }
}

fn pct(n: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        // usize → f64 is exact for any count this handles.
        n as f64 * 100.0 / total as f64
    }
}

/// Classify every row and compare with its label.
pub fn check(classifier: &Classifier, rows: &[Labelled]) -> Report {
    let mut report = Report {
        total: rows.len(),
        ..Report::default()
    };
    for (index, row) in rows.iter().enumerate() {
        let got = classifier.classify(&row.reason, &row.message);
        if got.class == row.class {
            report.agree += 1;
            continue;
        }
        if got.class == FailureClass::Unknown {
            report.unknown += 1;
        }
        if row.class == FailureClass::Permanent && got.class == FailureClass::Transient {
            report.permanent_as_transient += 1;
        }
        report.disagreements.push(Disagreement {
            index,
            source: row.source.clone(),
            expected: row.class,
            got: got.class,
            rule: got.rule_name().to_string(),
        });
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(message: &str, class: FailureClass) -> Labelled {
        Labelled {
            reason: "TFExecApplyFailed".into(),
            message: message.into(),
            class,
            source: Some(format!("src:{message}")),
        }
    }

    #[test]
    fn counts_agreement_unknown_and_permanent_classed_transient() {
        let rows = [
            row("Throttling: Rate exceeded", FailureClass::Transient),
            row(
                "BucketNotEmpty: The bucket you tried to delete is not empty",
                FailureClass::Permanent,
            ),
            // labelled permanent, classed transient
            row("Throttling: Rate exceeded", FailureClass::Permanent),
            // labelled transient, names no cause: unknown
            row("Error: operation failed", FailureClass::Transient),
        ];
        let r = check(&Classifier::builtin(), &rows);
        assert_eq!(
            (r.total, r.agree, r.unknown, r.permanent_as_transient),
            (4, 2, 1, 1)
        );
        assert_eq!(r.agreement_pct(), 50.0);
        assert_eq!(r.unknown_pct(), 25.0);
        let idx: Vec<_> = r.disagreements.iter().map(|d| d.index).collect();
        assert_eq!(idx, [2, 3]);
        assert_eq!(r.disagreements[0].rule, "throttling");
        assert_eq!(r.disagreements[1].rule, "no rule matched");
        assert_eq!(
            r.summary(),
            "4 messages, agreement 50.0 % (2), unknown 25.0 % (1), permanent classed transient 1"
        );
    }

    #[test]
    fn no_rows_is_full_agreement() {
        let r = check(&Classifier::builtin(), &[]);
        assert_eq!(
            (r.total, r.agreement_pct(), r.unknown_pct()),
            (0, 100.0, 0.0)
        );
    }

    #[test]
    fn rows_parse_from_yaml_ignoring_other_keys() {
        let rows: Vec<Labelled> = serde_saphyr::from_str(
            "- source: https://example.org/1\n  reason: TFExecApplyFailed\n  message: \"x\"\n  class: permanent\n  origin: aws\n- message: y\n  class: blocked-by-missing-dependency\n- message: z\n  reason: null\n  class: transient\n",
        )
        .expect("parse");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].reason, "");
        assert_eq!(rows[2].reason, "");
        assert_eq!(rows[1].class, FailureClass::BlockedByMissingDependency);
    }
}
