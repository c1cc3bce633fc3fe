//! `progress` — what a running guard shows while it waits (destroys take minutes): one JSON
//! line per decision for the guard Job's log, and for `helm tfops uninstall` a live display —
//! one line per CR with its state and the budget left (indicatif) on a terminal, plain lines
//! otherwise (each action, and every 30 s the state of each CR still waiting). Everything goes to stderr, so stdout keeps only the report (`-o json` shows no
//! progress at all).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tfops_api::duration::format_duration;
use tfops_guard::engine::{DecisionRecord, Observer};

/// One JSON object per action decision (waits left out), on stderr: the guard Job's log.
pub fn json_lines() -> Observer {
    Observer::new(|r: &DecisionRecord| {
        if !r.is_action() {
            return;
        }
        if let Ok(line) = serde_json::to_string(r) {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        }
    })
}

/// The state a CR is in after `r`, in a few words.
pub fn state_of(r: &DecisionRecord) -> String {
    let failure = match (&r.class, &r.rule) {
        (Some(c), Some(rule)) => Some(format!("{c}: {rule}")),
        (Some(c), None) => Some(c.to_string()),
        _ => None,
    };
    let in_parens = failure
        .as_ref()
        .map(|f| format!(" ({f})"))
        .unwrap_or_default();
    match (r.decision.as_str(), &r.outcome) {
        ("done", Some(o)) if r.attempts > 0 => match &failure {
            Some(f) => format!("{o} after {} failed attempt(s), the last {f}", r.attempts),
            None => format!("{o} after {} failed attempt(s)", r.attempts),
        },
        ("done", Some(o)) => o.clone(),
        ("wait", _) => format!("waiting: {}", r.why),
        ("retry", _) if r.attempts == 0 => {
            "reconcile requested (no failure counted yet)".to_owned()
        }
        ("retry", _) => format!("retry after {} failed attempt(s){in_parens}", r.attempts),
        ("delete", _) => "deleting: the controller runs the destroy".to_owned(),
        (d, _) => format!("{d}{in_parens}"),
    }
}

/// How often plain progress repeats the state of the CRs still waiting.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// The periodic line for a CR whose last record was `r`, `elapsed` into a run of `budget`.
pub fn heartbeat_line(r: &DecisionRecord, elapsed: Duration, budget: Duration) -> String {
    let state = if r.decision == "wait" {
        state_of(r)
    } else {
        format!("{} (still)", state_of(r))
    };
    line(elapsed, budget.saturating_sub(elapsed), r, &state)
}

/// A plain progress line for an action decision (`None` for waits).
pub fn plain_line(r: &DecisionRecord) -> Option<String> {
    r.is_action()
        .then(|| line(r.elapsed, r.budget_left, r, &state_of(r)))
}

/// `[elapsed, left] namespace/name: state`, times in whole seconds.
fn line(elapsed: Duration, left: Duration, r: &DecisionRecord, state: &str) -> String {
    let secs = |d: Duration| format_duration(Duration::from_secs(d.as_secs()));
    format!(
        "[{:>6} elapsed, {:>6} left] {}/{}: {state}",
        secs(elapsed),
        secs(left),
        r.namespace,
        r.name
    )
}

/// The live display of `helm tfops uninstall`; dropping it (or [`Live::finish`]) clears it.
pub struct Live {
    inner: Option<Arc<Mutex<Bars>>>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

struct Bars {
    multi: MultiProgress,
    header: ProgressBar,
    crs: BTreeMap<(String, String), ProgressBar>,
}

impl Live {
    /// No display (`-o json`).
    pub fn none() -> (Live, Option<Observer>) {
        (
            Live {
                inner: None,
                ticker: None,
            },
            None,
        )
    }

    /// Plain lines on stderr: one per action decision, and every [`HEARTBEAT`] one per CR
    /// still waiting (its state and the budget left), so a long destroy is never silent.
    pub fn plain(budget: Duration) -> (Live, Option<Observer>) {
        let waiting: Arc<Mutex<BTreeMap<(String, String), DecisionRecord>>> = Arc::default();
        let for_observer = waiting.clone();
        let observer = Observer::new(move |r: &DecisionRecord| {
            if let Ok(mut w) = for_observer.lock() {
                let key = (r.namespace.clone(), r.name.clone());
                if r.decision == "done" {
                    w.remove(&key);
                } else {
                    w.insert(key, r.clone());
                }
            }
            if let Some(line) = plain_line(r) {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{line}");
            }
        });
        let started = tokio::time::Instant::now();
        let ticker = tokio::spawn(async move {
            let mut every = tokio::time::interval_at(started + HEARTBEAT, HEARTBEAT);
            loop {
                every.tick().await;
                let elapsed = started.elapsed();
                let lines: Vec<String> = match waiting.lock() {
                    Ok(w) => w
                        .values()
                        .map(|r| heartbeat_line(r, elapsed, budget))
                        .collect(),
                    Err(_) => continue,
                };
                let mut err = std::io::stderr().lock();
                for line in lines {
                    let _ = writeln!(err, "{line}");
                }
            }
        });
        (
            Live {
                inner: None,
                ticker: Some(ticker),
            },
            Some(observer),
        )
    }

    /// An indicatif display on stderr: a header with the budget left, one line per CR.
    pub fn terminal(release: &str, budget: Duration) -> (Live, Option<Observer>) {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let header = multi.add(ProgressBar::new(budget.as_secs().max(1)));
        let style = ProgressStyle::with_template(
            "{spinner} guard {prefix}: [{bar:24}] {elapsed} of the budget used, {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        header.set_style(style);
        header.set_prefix(release.to_owned());
        header.set_message(format!("{} left", format_duration(budget)));
        header.enable_steady_tick(Duration::from_millis(200));
        let bars = Arc::new(Mutex::new(Bars {
            multi,
            header,
            crs: BTreeMap::new(),
        }));
        let for_ticker = bars.clone();
        let started = tokio::time::Instant::now();
        let ticker = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                let used = started.elapsed();
                if let Ok(b) = for_ticker.lock() {
                    b.header.set_position(used.as_secs());
                    b.header.set_message(format!(
                        "{} left",
                        format_duration(Duration::from_secs(budget.saturating_sub(used).as_secs()))
                    ));
                }
            }
        });
        let for_observer = bars.clone();
        let observer = Observer::new(move |r: &DecisionRecord| {
            let Ok(mut b) = for_observer.lock() else {
                return;
            };
            let key = (r.namespace.clone(), r.name.clone());
            let bar = match b.crs.get(&key) {
                Some(bar) => bar.clone(),
                None => {
                    let bar = b.multi.add(ProgressBar::new_spinner());
                    let style = ProgressStyle::with_template("  {spinner} {prefix}: {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner());
                    bar.set_style(style);
                    bar.set_prefix(format!("{}/{}", r.namespace, r.name));
                    bar.enable_steady_tick(Duration::from_millis(200));
                    b.crs.insert(key, bar.clone());
                    bar
                }
            };
            if r.decision == "done" {
                bar.finish_with_message(state_of(r));
            } else {
                bar.set_message(state_of(r));
            }
        });
        (
            Live {
                inner: Some(bars),
                ticker: Some(ticker),
            },
            Some(observer),
        )
    }

    /// Stop the display (the report follows on stdout).
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Some(bars) = self.inner.take() {
            if let Ok(b) = bars.lock() {
                for bar in b.crs.values() {
                    if !bar.is_finished() {
                        bar.abandon();
                    }
                }
                b.header.finish_and_clear();
            }
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfops_api::FailureClass;

    fn record(decision: &str) -> DecisionRecord {
        DecisionRecord {
            elapsed: Duration::from_secs(12),
            budget_left: Duration::from_secs(228),
            namespace: "shop".into(),
            name: "shop-bucket".into(),
            module: "bucket".into(),
            decision: decision.into(),
            outcome: None,
            attempts: 1,
            class: Some(FailureClass::Transient),
            rule: Some("throttling (aws Throttling)".into()),
            why: "the controller's destroy is running".into(),
        }
    }

    #[test]
    fn plain_lines_name_the_cr_the_state_and_the_budget_and_skip_waits() {
        let mut precise = record("delete");
        precise.elapsed = Duration::from_millis(12_345);
        precise.budget_left = Duration::from_millis(227_655);
        assert!(plain_line(&precise)
            .unwrap()
            .starts_with("[   12s elapsed,  3m47s left]"));
        assert_eq!(
            plain_line(&record("retry")).unwrap(),
            "[   12s elapsed,  3m48s left] shop/shop-bucket: retry after 1 failed attempt(s) (transient: throttling (aws Throttling))"
        );
        assert!(plain_line(&record("wait")).is_none());
        let mut done = record("done");
        done.outcome = Some("orphaned".into());
        done.class = Some(FailureClass::Permanent);
        done.rule = Some("bucket-not-empty (aws BucketNotEmpty)".into());
        assert!(plain_line(&done).unwrap().ends_with(
            "shop/shop-bucket: orphaned after 1 failed attempt(s), the last permanent: bucket-not-empty (aws BucketNotEmpty)"
        ));
    }

    #[test]
    fn heartbeats_repeat_the_state_with_the_budget_left_at_that_time() {
        let line = heartbeat_line(
            &record("wait"),
            Duration::from_secs(95),
            Duration::from_secs(240),
        );
        assert_eq!(
            line,
            "[ 1m35s elapsed,  2m25s left] shop/shop-bucket: waiting: the controller's destroy is running"
        );
        assert!(
            heartbeat_line(&record("delete"), Duration::ZERO, Duration::ZERO)
                .ends_with("deleting: the controller runs the destroy (still)")
        );
    }

    #[test]
    fn states_read_like_a_sentence() {
        assert_eq!(
            state_of(&record("wait")),
            "waiting: the controller's destroy is running"
        );
        assert_eq!(
            state_of(&record("delete")),
            "deleting: the controller runs the destroy"
        );
        let mut d = record("done");
        d.outcome = Some("destroyed".into());
        assert_eq!(
            state_of(&d),
            "destroyed after 1 failed attempt(s), the last transient: throttling (aws Throttling)"
        );
        d.attempts = 0;
        d.class = None;
        assert_eq!(state_of(&d), "destroyed");
    }
}
