//! Watches through `kube::Client` / `kube::runtime::watcher` over real HTTP: event order,
//! resume from a resourceVersion, 410 Gone, bookmarks, streaming lists, dropped streams, and
//! paused virtual time with a sleeping controller task.

use futures::{StreamExt, TryStreamExt};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use std::time::Duration;
use tfops_testcluster::{ClusterOptions, FaultRule, TestCluster, Verb};

fn tf_ar() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "infra.contrib.fluxcd.io",
        "v1alpha2",
        "Terraform",
    ))
}

fn tf(name: &str, release: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "infra.contrib.fluxcd.io/v1alpha2",
        "kind": "Terraform",
        "metadata": {"name": name, "labels": {"tfops.dev/release": release}},
        "spec": {"path": "./m"}
    }))
    .unwrap()
}

fn rv_of(o: &DynamicObject) -> String {
    o.metadata.resource_version.clone().unwrap()
}

async fn setup() -> (TestCluster, Api<DynamicObject>) {
    let c = TestCluster::start(ClusterOptions::default()).await.unwrap();
    let api = Api::namespaced_with(c.client("w").unwrap(), "ns1", &tf_ar());
    (c, api)
}

#[tokio::test(start_paused = true)]
async fn watcher_sees_a_sleeping_controller_in_paused_time() {
    let (c, api) = setup().await;
    api.create(&PostParams::default(), &tf("net", "r1"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &tf("other", "r2"))
        .await
        .unwrap();
    // A "controller" that waits 10 virtual minutes, then reports status.
    let ctl_api: Api<DynamicObject> =
        Api::namespaced_with(c.client("tofu-controller").unwrap(), "ns1", &tf_ar());
    let started = tokio::time::Instant::now();
    let ctl = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(600)).await;
        let p = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Done"}]}});
        ctl_api
            .patch_status("net", &PatchParams::default(), &Patch::Merge(&p))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        ctl_api.delete("net", &Default::default()).await.unwrap();
    });
    let cfg = watcher::Config::default().labels("tfops.dev/release=r1");
    let mut stream = watcher::watcher(api.clone(), cfg).boxed();
    let mut seen = Vec::new();
    while let Some(ev) = stream.try_next().await.unwrap() {
        match ev {
            Event::InitApply(o) => seen.push(format!("init {}", o.metadata.name.unwrap())),
            Event::Apply(o) => {
                let ready = o.data.pointer("/status/conditions/0/status").cloned();
                seen.push(format!("apply {} {:?}", o.metadata.name.unwrap(), ready));
            }
            Event::Delete(o) => {
                seen.push(format!("delete {}", o.metadata.name.unwrap()));
                break;
            }
            Event::Init | Event::InitDone => {}
        }
    }
    ctl.await.unwrap();
    assert_eq!(
        seen,
        vec![
            "init net".to_string(),
            "apply net Some(String(\"True\"))".to_string(),
            "delete net".to_string()
        ]
    );
    // Virtual time moved by the controller's sleeps.
    assert!(started.elapsed() >= Duration::from_secs(660));
    // Status timestamps follow virtual time too.
    let ns = c.store().get("v1", "Namespace", "", "ns1").unwrap();
    assert!(ns["metadata"]["creationTimestamp"].is_string());
}

#[tokio::test]
async fn watch_resumes_from_resource_version_in_order() {
    let (_c, api) = setup().await;
    let a = api
        .create(&PostParams::default(), &tf("a", "r1"))
        .await
        .unwrap();
    let from = rv_of(&a);
    api.create(&PostParams::default(), &tf("b", "r1"))
        .await
        .unwrap();
    let p = json!({"spec": {"path": "./changed"}});
    api.patch("a", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    api.delete("b", &Default::default()).await.unwrap();
    let wp = WatchParams::default().timeout(5);
    let mut s = api.watch(&wp, &from).await.unwrap().boxed();
    let mut got = Vec::new();
    for _ in 0..3 {
        match s.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(o) => got.push(format!("ADDED {}", o.metadata.name.unwrap())),
            WatchEvent::Modified(o) => got.push(format!("MODIFIED {}", o.metadata.name.unwrap())),
            WatchEvent::Deleted(o) => got.push(format!("DELETED {}", o.metadata.name.unwrap())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, ["ADDED b", "MODIFIED a", "DELETED b"]);
}

#[tokio::test]
async fn watch_from_compacted_resource_version_gets_410() {
    let (c, api) = setup().await;
    let a = api
        .create(&PostParams::default(), &tf("a", "r1"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &tf("b", "r1"))
        .await
        .unwrap();
    c.store().compact_history();
    let mut s = api
        .watch(&WatchParams::default().timeout(5), &rv_of(&a))
        .await
        .unwrap()
        .boxed();
    match s.try_next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn bookmarks_and_timeout() {
    let (c, api) = setup().await;
    let a = api
        .create(&PostParams::default(), &tf("a", "r1"))
        .await
        .unwrap();
    // unrelated change: bookmark should carry a newer resourceVersion
    let other: Api<DynamicObject> = Api::namespaced_with(c.client("w").unwrap(), "ns1", &tf_ar());
    other
        .create(&PostParams::default(), &tf("z", "r9"))
        .await
        .unwrap();
    let mut wp = WatchParams::default()
        .labels("tfops.dev/release=r1")
        .timeout(130);
    wp.bookmarks = true;
    let events: Vec<WatchEvent<DynamicObject>> = api
        .watch(&wp, &rv_of(&a))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let bookmarks: Vec<u64> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Bookmark(b) => b.metadata.resource_version.parse::<u64>().unwrap(),
            other => panic!("only bookmarks expected, got {other:?}"),
        })
        .collect();
    // periodic at 60 s and 120 s, then one at the 130 s timeout
    assert_eq!(bookmarks.len(), 3);
    assert!(bookmarks
        .iter()
        .all(|rv| *rv > rv_of(&a).parse::<u64>().unwrap()));
}

#[tokio::test(start_paused = true)]
async fn dropped_watch_is_resumed_by_the_watcher_without_losing_events() {
    let (c, api) = setup().await;
    c.faults().add(
        FaultRule::drop_watch_after(2)
            .resource("terraforms")
            .times(1),
    );
    let writer: Api<DynamicObject> =
        Api::namespaced_with(c.client("writer").unwrap(), "ns1", &tf_ar());
    let mut stream = watcher::watcher(api.clone(), watcher::Config::default()).boxed();
    // initial list is empty
    loop {
        if let Event::InitDone = stream.try_next().await.unwrap().unwrap() {
            break;
        }
    }
    let w = tokio::spawn(async move {
        for i in 0..5 {
            writer
                .create(&PostParams::default(), &tf(&format!("m{i}"), "r1"))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut names = Vec::new();
    while names.len() < 5 {
        if let Event::Apply(o) = stream.try_next().await.unwrap().unwrap() {
            names.push(o.metadata.name.unwrap());
        }
    }
    w.await.unwrap();
    assert_eq!(names, ["m0", "m1", "m2", "m3", "m4"]);
    assert!(
        c.requests().count("w", Verb::Watch) >= 2,
        "the watch was re-opened"
    );
}

#[tokio::test]
async fn streaming_list_initial_events() {
    let (_c, api) = setup().await;
    api.create(&PostParams::default(), &tf("a", "r1"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &tf("b", "r1"))
        .await
        .unwrap();
    let cfg = watcher::Config::default().streaming_lists();
    let mut s = watcher::watcher(api.clone(), cfg).boxed();
    let mut init = Vec::new();
    loop {
        match s.try_next().await.unwrap().unwrap() {
            Event::InitApply(o) => init.push(o.metadata.name.unwrap()),
            Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(init, ["a", "b"]);
    api.create(&PostParams::default(), &tf("c", "r1"))
        .await
        .unwrap();
    loop {
        if let Event::Apply(o) = s.try_next().await.unwrap().unwrap() {
            assert_eq!(o.metadata.name.as_deref(), Some("c"));
            break;
        }
    }
}

#[tokio::test]
async fn watch_without_resource_version_starts_with_current_state() {
    let (_c, api) = setup().await;
    api.create(&PostParams::default(), &tf("a", "r1"))
        .await
        .unwrap();
    let mut s = api
        .watch(&WatchParams::default().timeout(5), "0")
        .await
        .unwrap()
        .boxed();
    match s.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("a")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn drop_watches_now_ends_open_streams_and_watcher_resumes() {
    let (c, api) = setup().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let consumer = tokio::spawn(async move {
        let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
        while let Some(ev) = stream.try_next().await.unwrap() {
            if let Event::Apply(o) = ev {
                if tx.send(o.metadata.name.unwrap()).is_err() {
                    return;
                }
            }
        }
    });
    // wait until the watch is open, then cut it
    while c.requests().count("w", Verb::Watch) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.faults().drop_watches_now();
    let writer: Api<DynamicObject> =
        Api::namespaced_with(c.client("writer").unwrap(), "ns1", &tf_ar());
    writer
        .create(&PostParams::default(), &tf("after-drop", "r1"))
        .await
        .unwrap();
    assert_eq!(rx.recv().await.as_deref(), Some("after-drop"));
    assert!(
        c.requests().count("w", Verb::Watch) >= 2,
        "re-watched after the drop"
    );
    consumer.abort();
}

/// KNOWN ISSUE (kept ignored, run with `--ignored`): under a paused tokio clock, a watch whose
/// first event is already available when the stream opens is not seen by the client before the
/// next timer fires. tokio's auto-advance polls I/O once with a zero timeout and then advances
/// the clock even when that poll delivered the loopback bytes, so a client timer (here the
/// test's 100 s timeout; in `kube::runtime::watcher` its 295 s idle timeout, which then
/// re-watches from the old resourceVersion) can win the race. Real time is unaffected. This is
/// why `TestCluster::client` uses an in-memory transport; this test keeps the loopback socket
/// (`client_over_tcp`, what kubeconfig-based clients get) to document the race.
#[tokio::test(start_paused = true)]
#[ignore]
async fn known_issue_paused_time_first_event_of_a_resumed_watch() {
    let c = TestCluster::start(ClusterOptions::default()).await.unwrap();
    let api: Api<DynamicObject> =
        Api::namespaced_with(c.client_over_tcp("w", "ns1").unwrap(), "ns1", &tf_ar());
    let o = api
        .create(&PostParams::default(), &tf("a", "r1"))
        .await
        .unwrap();
    let rv = rv_of(&o);
    let p = json!({"spec": {"path": "./changed"}});
    api.patch("a", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    let mut s = api
        .watch(&WatchParams::default().timeout(290), &rv)
        .await
        .unwrap()
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(100), s.try_next()).await;
    assert!(
        first.is_ok(),
        "first event not received before the client's timer"
    );
}

/// The same situation as the known issue above, through `client_in_memory`: delivered.
#[tokio::test(start_paused = true)]
async fn in_memory_client_sees_the_first_event_in_paused_time() {
    let c = TestCluster::start(ClusterOptions::default()).await.unwrap();
    for i in 0..20 {
        let api: Api<DynamicObject> =
            Api::namespaced_with(c.client_in_memory("mem", "ns1"), "ns1", &tf_ar());
        let name = format!("a{i}");
        let o = api
            .create(&PostParams::default(), &tf(&name, "r1"))
            .await
            .unwrap();
        let p = json!({"spec": {"path": "./changed"}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&p))
            .await
            .unwrap();
        let mut s = api
            .watch(&WatchParams::default().timeout(290), &rv_of(&o))
            .await
            .unwrap()
            .boxed();
        let first = tokio::time::timeout(Duration::from_secs(100), s.try_next()).await;
        match first {
            Ok(Ok(Some(WatchEvent::Modified(m)))) => assert_eq!(m.metadata.name, Some(name)),
            other => panic!("round {i}: {other:?}"),
        }
    }
    assert!(c.requests().count("mem", Verb::Watch) == 20);
}

/// A kube watcher over the in-memory client in paused time: events keep flowing across long
/// idle periods (idle timeouts, re-watches) without loss.
#[tokio::test(start_paused = true)]
async fn in_memory_watcher_across_idle_periods() {
    let c = TestCluster::start(ClusterOptions::default()).await.unwrap();
    let api: Api<DynamicObject> = Api::all_with(c.client_in_memory("sim", "default"), &tf_ar());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let w = tokio::spawn(async move {
        let mut s = watcher::watcher(api, watcher::Config::default()).boxed();
        while let Some(ev) = s.next().await {
            if let Ok(Event::Apply(o)) | Ok(Event::InitApply(o)) = ev {
                let _ = tx.send(o.data["spec"]["path"].as_str().unwrap_or("").to_string());
            }
        }
    });
    let writer: Api<DynamicObject> =
        Api::namespaced_with(c.client_in_memory("w", "ns1"), "ns1", &tf_ar());
    writer
        .create(&PostParams::default(), &tf("a", "r1"))
        .await
        .unwrap();
    assert_eq!(rx.recv().await.as_deref(), Some("./m"));
    for i in 0..5 {
        tokio::time::sleep(Duration::from_secs(400)).await;
        let p = json!({"spec": {"path": format!("./v{i}")}});
        writer
            .patch("a", &PatchParams::default(), &Patch::Merge(&p))
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(100), async {
            loop {
                if rx.recv().await.as_deref() == Some(format!("./v{i}").as_str()) {
                    return;
                }
            }
        })
        .await;
        assert!(got.is_ok(), "update {i} not delivered");
    }
    w.abort();
}
