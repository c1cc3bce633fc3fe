//! Fault injection: rules that match requests (user / verb / resource / namespace / name /
//! subresource) and, N times or always, answer with an error status (500/503/409/429 with
//! `Retry-After`, …), add latency (tokio sleep, so paused virtual time works) or end a watch
//! stream after K events; [`Faults::drop_watches_now`] ends every open watch at once.

use crate::requests::Verb;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a matching rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this HTTP status and a `Status` body (429 adds `Retry-After`).
    Status {
        /// HTTP status code.
        code: u16,
        /// Optional message (default: a generic one naming the fault).
        message: Option<String>,
        /// `Retry-After` seconds for 429/503 (default 1 for 429).
        retry_after: Option<u64>,
    },
    /// Sleep this long (tokio time) before handling the request normally.
    Latency(Duration),
    /// End a watch stream after this many events (the client should resume).
    DropWatchAfter(usize),
}

/// A fault rule: all `Some` criteria must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// Bearer-token user.
    pub user: Option<String>,
    /// Verb.
    pub verb: Option<Verb>,
    /// Plural resource (`terraforms`, `secrets`).
    pub resource: Option<String>,
    /// Subresource (`status`; "" = main endpoint only).
    pub subresource: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// Action.
    pub action: FaultAction,
    /// How many more times the rule fires (None = always).
    pub remaining: Option<usize>,
}

impl FaultRule {
    fn with_action(action: FaultAction) -> Self {
        Self {
            user: None,
            verb: None,
            resource: None,
            subresource: None,
            namespace: None,
            name: None,
            action,
            remaining: None,
        }
    }

    /// Answer matching requests with HTTP `code` (500, 503, 409, 429, …).
    pub fn status(code: u16) -> Self {
        Self::with_action(FaultAction::Status {
            code,
            message: None,
            retry_after: (code == 429).then_some(1),
        })
    }

    /// Delay matching requests.
    pub fn latency(d: Duration) -> Self {
        Self::with_action(FaultAction::Latency(d))
    }

    /// End matching watch streams after `k` events.
    pub fn drop_watch_after(k: usize) -> Self {
        Self::with_action(FaultAction::DropWatchAfter(k)).verb(Verb::Watch)
    }

    /// Only for this user.
    pub fn user(mut self, u: &str) -> Self {
        self.user = Some(u.to_string());
        self
    }

    /// Only for this verb.
    pub fn verb(mut self, v: Verb) -> Self {
        self.verb = Some(v);
        self
    }

    /// Only for this plural resource.
    pub fn resource(mut self, r: &str) -> Self {
        self.resource = Some(r.to_string());
        self
    }

    /// Only for this subresource ("" = main endpoint).
    pub fn subresource(mut self, s: &str) -> Self {
        self.subresource = Some(s.to_string());
        self
    }

    /// Only in this namespace.
    pub fn namespace(mut self, n: &str) -> Self {
        self.namespace = Some(n.to_string());
        self
    }

    /// Only for this object name.
    pub fn name(mut self, n: &str) -> Self {
        self.name = Some(n.to_string());
        self
    }

    /// Fire `n` times, then stop.
    pub fn times(mut self, n: usize) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Custom message for a status fault.
    pub fn message(mut self, m: &str) -> Self {
        if let FaultAction::Status { message, .. } = &mut self.action {
            *message = Some(m.to_string());
        }
        self
    }

    /// `Retry-After` seconds for a status fault.
    pub fn retry_after(mut self, secs: u64) -> Self {
        if let FaultAction::Status { retry_after, .. } = &mut self.action {
            *retry_after = Some(secs);
        }
        self
    }

    fn matches(&self, req: &FaultRequest<'_>) -> bool {
        self.user.as_deref().is_none_or(|u| u == req.user)
            && self.verb.is_none_or(|v| Some(v) == req.verb)
            && self.resource.as_deref().is_none_or(|r| r == req.resource)
            && self
                .subresource
                .as_deref()
                .is_none_or(|s| s == req.subresource)
            && self.namespace.as_deref().is_none_or(|n| n == req.namespace)
            && self.name.as_deref().is_none_or(|n| n == req.name)
    }
}

/// The request attributes faults match on.
#[derive(Debug, Clone, Copy)]
pub struct FaultRequest<'a> {
    /// User.
    pub user: &'a str,
    /// Verb.
    pub verb: Option<Verb>,
    /// Plural resource.
    pub resource: &'a str,
    /// Subresource.
    pub subresource: &'a str,
    /// Namespace.
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
}

/// Identifier of an installed rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultId(u64);

#[derive(Default)]
struct FaultState {
    next_id: u64,
    rules: Vec<(FaultId, FaultRule, usize)>,
}

/// Shared handle on the fault rules.
#[derive(Clone)]
pub struct Faults {
    inner: Arc<Mutex<FaultState>>,
    drops: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            drops: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }
}

impl Faults {
    /// End every watch stream open right now (clients see the stream close and must resume).
    pub fn drop_watches_now(&self) {
        self.drops.send_modify(|n| *n += 1);
    }

    /// Notifications for [`Self::drop_watches_now`] (used by watch streams).
    pub fn watch_drops(&self) -> tokio::sync::watch::Receiver<u64> {
        self.drops.subscribe()
    }

    /// Install a rule; rules are checked in installation order.
    pub fn add(&self, rule: FaultRule) -> FaultId {
        let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        st.next_id += 1;
        let id = FaultId(st.next_id);
        st.rules.push((id, rule, 0));
        id
    }

    /// Remove a rule.
    pub fn remove(&self, id: FaultId) {
        let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        st.rules.retain(|(i, _, _)| *i != id);
    }

    /// Remove every rule.
    pub fn clear(&self) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rules
            .clear();
    }

    /// How many times a rule fired.
    pub fn hits(&self, id: FaultId) -> usize {
        let st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        st.rules
            .iter()
            .find(|(i, _, _)| *i == id)
            .map(|r| r.2)
            .unwrap_or(0)
    }

    /// The actions that fire for this request (consuming one use of each counted rule):
    /// every matching latency, the first matching status, the first matching watch drop.
    pub fn take(&self, req: &FaultRequest<'_>) -> Vec<FaultAction> {
        let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        let mut have_status = false;
        let mut have_drop = false;
        for (_, rule, hits) in st.rules.iter_mut() {
            if rule.remaining == Some(0) || !rule.matches(req) {
                continue;
            }
            let fire = match rule.action {
                FaultAction::Latency(_) => true,
                FaultAction::Status { .. } => !have_status,
                FaultAction::DropWatchAfter(_) => !have_drop && req.verb == Some(Verb::Watch),
            };
            if !fire {
                continue;
            }
            match rule.action {
                FaultAction::Status { .. } => have_status = true,
                FaultAction::DropWatchAfter(_) => have_drop = true,
                FaultAction::Latency(_) => {}
            }
            if let Some(r) = rule.remaining.as_mut() {
                *r -= 1;
            }
            *hits += 1;
            out.push(rule.action.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(user: &'a str, verb: Verb, resource: &'a str) -> FaultRequest<'a> {
        FaultRequest {
            user,
            verb: Some(verb),
            resource,
            subresource: "",
            namespace: "ns",
            name: "x",
        }
    }

    #[test]
    fn counted_rules_expire() {
        let f = Faults::default();
        let id = f.add(
            FaultRule::status(503)
                .user("guard")
                .verb(Verb::Patch)
                .times(2),
        );
        assert!(f.take(&req("other", Verb::Patch, "terraforms")).is_empty());
        assert!(f.take(&req("guard", Verb::Get, "terraforms")).is_empty());
        assert_eq!(f.take(&req("guard", Verb::Patch, "terraforms")).len(), 1);
        assert_eq!(f.take(&req("guard", Verb::Patch, "terraforms")).len(), 1);
        assert!(f.take(&req("guard", Verb::Patch, "terraforms")).is_empty());
        assert_eq!(f.hits(id), 2);
    }

    #[test]
    fn latency_stacks_with_status_and_only_one_status() {
        let f = Faults::default();
        f.add(FaultRule::latency(Duration::from_secs(1)));
        f.add(FaultRule::status(500).resource("secrets"));
        f.add(FaultRule::status(429).resource("secrets"));
        let acts = f.take(&req("u", Verb::Create, "secrets"));
        assert_eq!(acts.len(), 2);
        assert!(matches!(acts[1], FaultAction::Status { code: 500, .. }));
        f.clear();
        assert!(f.take(&req("u", Verb::Create, "secrets")).is_empty());
    }

    #[test]
    fn drop_watch_only_for_watches() {
        let f = Faults::default();
        f.add(
            FaultRule::drop_watch_after(3)
                .resource("terraforms")
                .times(1),
        );
        assert!(f.take(&req("u", Verb::List, "terraforms")).is_empty());
        assert_eq!(
            f.take(&req("u", Verb::Watch, "terraforms")),
            vec![FaultAction::DropWatchAfter(3)]
        );
        assert!(f.take(&req("u", Verb::Watch, "terraforms")).is_empty());
    }
}
