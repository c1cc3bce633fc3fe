//! Fault injection through `kube::Client` over real HTTP: injected 5xx / 409 / 429 statuses,
//! per-user scoping, counted rules, kube's default retry honouring `Retry-After`, and latency in
//! paused virtual time.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use std::time::Duration;
use tfops_testcluster::{ClusterOptions, FaultRule, TestCluster, Verb};

fn secret(name: &str) -> Secret {
    let mut s = Secret::default();
    s.metadata.name = Some(name.into());
    s
}

fn code(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn injected_500_fires_n_times_then_stops() {
    let c = TestCluster::start(ClusterOptions::default()).await.unwrap();
    let id = c.faults().add(
        FaultRule::status(500)
            .verb(Verb::Create)
            .resource("secrets")
            .times(1),
    );
    let api: Api<Secret> = Api::namespaced(c.client("guard").unwrap(), "ns1");
    assert_eq!(
        code(
            api.create(&PostParams::default(), &secret("a"))
                .await
                .unwrap_err()
        ),
        500
    );
    assert!(
        api.get_opt("a").await.unwrap().is_none(),
        "failed create stored nothing"
    );
    api.create(&PostParams::default(), &secret("a"))
        .await
        .unwrap();
    assert_eq!(c.faults().hits(id), 1);
    let statuses: Vec<u16> = c
        .requests()
        .filter(|r| r.verb == Some(Verb::Create))
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [500, 201]);
}

#[tokio::test]
async fn faults_scoped_to_user_and_name() {
    let c = TestCluster::start(ClusterOptions::default()).await.unwrap();
    c.faults().add(
        FaultRule::status(409)
            .user("guard")
            .name("x")
            .message("injected conflict"),
    );
    let guard: Api<Secret> = Api::namespaced(c.client("guard").unwrap(), "ns1");
    let helm: Api<Secret> = Api::namespaced(c.client("helm").unwrap(), "ns1");
    helm.create(&PostParams::default(), &secret("x"))
        .await
        .unwrap();
    helm.get("x").await.unwrap();
    match guard.get("x").await.unwrap_err() {
        kube::Error::Api(s) => {
            assert_eq!(
                (s.code, s.reason.as_str(), s.message.as_str()),
                (409, "Conflict", "injected conflict")
            );
        }
        other => panic!("{other:?}"),
    }
    guard
        .create(&PostParams::default(), &secret("y"))
        .await
        .unwrap();
    c.faults().clear();
    guard.get("x").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn throttling_429_is_retried_by_kube_default_retry() {
    let c = TestCluster::start(ClusterOptions::default()).await.unwrap();
    c.faults().add(
        FaultRule::status(429)
            .verb(Verb::Get)
            .times(2)
            .retry_after(2),
    );
    let api: Api<Secret> = Api::namespaced(c.client("guard").unwrap(), "ns1");
    api.create(&PostParams::default(), &secret("a"))
        .await
        .unwrap();
    let t0 = tokio::time::Instant::now();
    api.get("a").await.unwrap();
    let gets: Vec<u16> = c
        .requests()
        .filter(|r| r.verb == Some(Verb::Get))
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(gets, [429, 429, 200]);
    // The client waited the advertised Retry-After (virtual time).
    assert!(t0.elapsed() >= Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn latency_uses_virtual_time() {
    let c = TestCluster::start(ClusterOptions::default()).await.unwrap();
    c.faults()
        .add(FaultRule::latency(Duration::from_secs(30)).verb(Verb::List));
    let api: Api<Secret> = Api::namespaced(c.client("guard").unwrap(), "ns1");
    let t0 = tokio::time::Instant::now();
    api.list(&Default::default()).await.unwrap();
    assert!(t0.elapsed() >= Duration::from_secs(30));
    // with a client-side timeout shorter than the latency, the caller sees the timeout
    let r = tokio::time::timeout(Duration::from_secs(5), api.list(&Default::default())).await;
    assert!(r.is_err());
}

#[tokio::test]
async fn service_unavailable_without_retry_after_is_retried_too() {
    let c = TestCluster::start(ClusterOptions::default()).await.unwrap();
    c.faults()
        .add(FaultRule::status(503).verb(Verb::Create).times(1));
    let api: Api<Secret> = Api::namespaced(c.client("guard").unwrap(), "ns1");
    api.create(&PostParams::default(), &secret("a"))
        .await
        .unwrap();
    assert_eq!(c.requests().count("guard", Verb::Create), 2);
}

#[tokio::test(start_paused = true)]
async fn in_memory_client_keeps_kube_retry_and_request_log() {
    let c = TestCluster::start(ClusterOptions::default()).await.unwrap();
    c.faults()
        .add(FaultRule::status(429).verb(Verb::Get).times(2));
    let api: Api<Secret> = Api::namespaced(c.client_in_memory("guard", "ns1"), "ns1");
    api.create(&PostParams::default(), &secret("a"))
        .await
        .unwrap();
    api.get("a").await.unwrap();
    let gets: Vec<u16> = c
        .requests()
        .filter(|r| r.user == "guard" && r.verb == Some(Verb::Get))
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(gets, [429, 429, 200]);
}
