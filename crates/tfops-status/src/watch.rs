//! `status --watch`: keep the selection's `Terraform` CRs and ledger Secrets in memory from two
//! watch streams (each starting with one LIST) and hand a fresh [`Snapshot`] to the caller after
//! every change, once both streams have listed.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use futures::{stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::DynamicObject;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use serde_json::Value;

use crate::fetch::{terraform_resource, FetchError, Namespaces, Selection, Snapshot};
use crate::ledger::{selector as ledger_selector, LedgerItem};

/// Objects of one watch stream, with the re-list buffer.
struct Mirror<T> {
    items: BTreeMap<(String, String), T>,
    buffer: Option<BTreeMap<(String, String), T>>,
    ready: bool,
}

impl<T> Mirror<T> {
    fn new() -> Self {
        Self {
            items: BTreeMap::new(),
            buffer: None,
            ready: false,
        }
    }

    /// Apply one event; true when the visible set changed.
    fn apply(&mut self, ev: Event<((String, String), T)>) -> bool {
        match ev {
            Event::Init => {
                self.buffer = Some(BTreeMap::new());
                false
            }
            Event::InitApply((k, v)) => {
                self.buffer.get_or_insert_with(BTreeMap::new).insert(k, v);
                false
            }
            Event::InitDone => {
                self.items = self.buffer.take().unwrap_or_default();
                self.ready = true;
                true
            }
            Event::Apply((k, v)) => {
                self.items.insert(k, v);
                true
            }
            Event::Delete((k, _)) => {
                self.items.remove(&k);
                true
            }
        }
    }
}

enum Change {
    Terraform(Event<((String, String), Value)>),
    Ledger(Event<((String, String), Box<Secret>)>),
}

fn key_of(meta: &kube::api::ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

fn map_event<K, T>(
    ev: Event<K>,
    f: impl Fn(K) -> ((String, String), T),
) -> Event<((String, String), T)> {
    match ev {
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
        Event::InitApply(k) => Event::InitApply(f(k)),
        Event::Apply(k) => Event::Apply(f(k)),
        Event::Delete(k) => Event::Delete(f(k)),
    }
}

fn dyn_to_value(o: DynamicObject) -> ((String, String), Value) {
    let key = key_of(&o.metadata);
    let mut v = serde_json::to_value(&o).unwrap_or(Value::Null);
    if v.get("kind").is_none() {
        v["apiVersion"] = Value::from(tfops_api::names::TF_API_VERSION);
        v["kind"] = Value::from("Terraform");
    }
    (key, v)
}

/// Watch the selection; call `on_change` with a fresh snapshot after every change until it
/// returns `Break`. Watch errors are retried by the watcher with backoff.
pub async fn watch<F>(client: &Client, sel: &Selection, mut on_change: F) -> Result<(), FetchError>
where
    F: FnMut(&Snapshot) -> ControlFlow<()>,
{
    let ar = terraform_resource();
    let (tf_api, secret_api): (Api<DynamicObject>, Api<Secret>) = match &sel.namespaces {
        Namespaces::One(ns) => (
            Api::namespaced_with(client.clone(), ns, &ar),
            Api::namespaced(client.clone(), ns),
        ),
        Namespaces::All => (Api::all_with(client.clone(), &ar), Api::all(client.clone())),
    };
    let tf_cfg = watcher::Config::default().labels(&sel.terraform_selector());
    let ledger_cfg = watcher::Config::default().labels(&ledger_selector(sel.release.as_deref()));
    let tf_stream = watcher::watcher(tf_api, tf_cfg)
        .map(|r| r.map(|ev| Change::Terraform(map_event(ev, dyn_to_value))));
    let ledger_stream = watcher::watcher(secret_api, ledger_cfg).map(|r| {
        r.map(|ev| {
            Change::Ledger(map_event(ev, |s: Secret| {
                (key_of(&s.metadata), Box::new(s))
            }))
        })
    });
    let mut events = std::pin::pin!(stream::select(tf_stream, ledger_stream));

    let mut tfs: Mirror<Value> = Mirror::new();
    let mut ledger: Mirror<Box<Secret>> = Mirror::new();
    while let Some(next) = events.next().await {
        let changed = match next {
            Ok(Change::Terraform(ev)) => tfs.apply(ev),
            Ok(Change::Ledger(ev)) => ledger.apply(ev),
            Err(err) => {
                tracing::warn!("watch error (retrying): {err}");
                false
            }
        };
        if !changed || !tfs.ready || !ledger.ready {
            continue;
        }
        let mut snap = Snapshot {
            terraforms: tfs.items.values().cloned().collect(),
            ..Snapshot::default()
        };
        for s in ledger.items.values() {
            match LedgerItem::from_secret(s) {
                Ok(i) => snap.ledger.push(i),
                Err(e) => snap.ledger_errors.push(e),
            }
        }
        if let Namespaces::One(ns) = &sel.namespaces {
            snap.ledger.retain(|l| &l.entry().namespace == ns);
        }
        if on_change(&snap).is_break() {
            break;
        }
    }
    Ok(())
}
