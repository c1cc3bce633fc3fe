//! Watch streams: newline-delimited JSON `{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR,
//! "object": …}` with resourceVersion resume, bookmarks, `sendInitialEvents`, 410 Gone as an
//! ERROR event, `timeoutSeconds`, and fault-injected early ends.

use crate::registry::ResourceType;
use crate::store::{EventType, Filter, Store};
use axum::body::{Body, Bytes};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;

/// Parameters of one watch request.
#[derive(Debug, Clone)]
pub struct WatchParams {
    /// `resourceVersion` query parameter (None/""/"0" = start with the current state).
    pub resource_version: Option<String>,
    /// `allowWatchBookmarks=true`.
    pub allow_bookmarks: bool,
    /// `sendInitialEvents=true`.
    pub send_initial_events: bool,
    /// `timeoutSeconds`.
    pub timeout: Duration,
    /// End the stream after this many events (fault injection).
    pub drop_after: Option<usize>,
    /// Interval between periodic bookmarks.
    pub bookmark_interval: Duration,
    /// Ends the stream when it changes (fault injection: drop all watches now).
    pub drops: tokio::sync::watch::Receiver<u64>,
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

fn bookmark(rt: &ResourceType, version: &str, rv: u64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version(version), "metadata": meta}})
}

/// Start a watch and return the streaming body.
pub fn watch_body(
    store: Store,
    rt: &'static ResourceType,
    version: String,
    filter: Filter,
    params: WatchParams,
) -> Body {
    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(run(store, rt, version, filter, params, tx));
    let stream =
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|o| o.map(Ok::<_, Infallible>)));
    Body::from_stream(stream)
}

async fn run(
    store: Store,
    rt: &'static ResourceType,
    version: String,
    filter: Filter,
    mut params: WatchParams,
    tx: mpsc::Sender<Bytes>,
) {
    let av = rt.api_version(&version);
    let with_av = |mut o: Value| {
        o["apiVersion"] = json!(av);
        o
    };
    let mut changes = store.subscribe();
    changes.borrow_and_update();
    let deadline = tokio::time::Instant::now() + params.timeout;
    let mut sent = 0usize;
    let limit = params.drop_after.unwrap_or(usize::MAX);
    let requested = params.resource_version.as_deref().unwrap_or("");
    let mut last = match requested {
        "" | "0" => {
            let (items, rv) = store.snapshot(rt, &filter);
            for o in items {
                if sent >= limit {
                    return;
                }
                if tx
                    .send(line(&json!({"type": "ADDED", "object": with_av(o)})))
                    .await
                    .is_err()
                {
                    return;
                }
                sent += 1;
            }
            if params.send_initial_events
                && tx
                    .send(line(&bookmark(rt, &version, rv, true)))
                    .await
                    .is_err()
            {
                return;
            }
            rv
        }
        s => match s.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                let e =
                    crate::error::ApiError::bad_request(format!("invalid resource version: {s}"));
                let _ = tx
                    .send(line(&json!({"type": "ERROR", "object": e.status_body()})))
                    .await;
                return;
            }
        },
    };
    if params.send_initial_events && !matches!(requested, "" | "0") {
        // Initial events requested with a resourceVersion: the current state, then the end marker.
        let (items, rv) = store.snapshot(rt, &filter);
        for o in items {
            if tx
                .send(line(&json!({"type": "ADDED", "object": with_av(o)})))
                .await
                .is_err()
            {
                return;
            }
        }
        if tx
            .send(line(&bookmark(rt, &version, rv, true)))
            .await
            .is_err()
        {
            return;
        }
        last = rv;
    }
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + params.bookmark_interval,
        params.bookmark_interval,
    );
    loop {
        changes.borrow_and_update();
        match store.events_after(rt, last, &filter) {
            Err(e) => {
                let _ = tx
                    .send(line(&json!({"type": "ERROR", "object": e.status_body()})))
                    .await;
                return;
            }
            Ok((events, latest)) => {
                for (ty, obj) in events {
                    if sent >= limit {
                        return;
                    }
                    let rv = obj
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<u64>().ok())
                        .unwrap_or(latest);
                    let ty: &str = match ty {
                        EventType::Added => "ADDED",
                        EventType::Modified => "MODIFIED",
                        EventType::Deleted => "DELETED",
                    };
                    if tx
                        .send(line(&json!({"type": ty, "object": with_av(obj)})))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    sent += 1;
                    last = last.max(rv);
                }
                last = last.max(latest);
            }
        }
        if sent >= limit {
            return;
        }
        tokio::select! {
            r = changes.changed() => {
                if r.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                if params.allow_bookmarks {
                    let _ = tx.send(line(&bookmark(rt, &version, last, false))).await;
                }
                return;
            }
            _ = tick.tick() => {
                if params.allow_bookmarks && tx.send(line(&bookmark(rt, &version, last, false))).await.is_err() {
                    return;
                }
            }
            _ = tx.closed() => return,
            _ = params.drops.changed() => return,
        }
    }
}
