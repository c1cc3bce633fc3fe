//! Shared rig for the guard's scenario and schedule tests: a real in-process API server
//! (`tfops-testcluster`, real HTTP) plus the tofu-controller simulation, releases seeded the
//! way the post-renderer generates them, and invariant checks over the store's history.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::{json, Value};
use tfops_guard::clock::Clock;
use tfops_guard::engine::{run_guard, GuardOptions, GuardReport};
use tfops_testcluster::store::HistoryEntry;
use tfops_testcluster::tofu::behavior::Behavior;
use tfops_testcluster::tofu::{SimConfig, TofuSim, BEHAVIOR_ANNOTATION, CONTROLLER_USER};
use tfops_testcluster::{ClusterOptions, EventType, TestCluster};

pub const NS: &str = "team-a";
pub const RELEASE: &str = "shop";
pub const TF: &str = "infra.contrib.fluxcd.io/v1alpha2";
pub const GUARD_USER: &str = "guard";
pub const TF_FINALIZER: &str = "finalizers.tf.contrib.fluxcd.io";
const REV: &str = "latest@sha256:3b1f5e2d9c7a4b6e8f0a1c3d5e7f9b2a4c6e8d0f1a3b5c7d9e1f3a5b7c9d1e3f";

/// One module of the seeded release.
#[derive(Debug, Clone, Default)]
pub struct Module {
    pub name: String,
    pub depends_on: Vec<String>,
    pub behavior: Behavior,
    /// `tfops.dev/*` policy annotations (on-failure, retries, timeout, uninstall-policy).
    pub annotations: Vec<(String, String)>,
    pub varsfrom_secret: Option<String>,
    pub suspend: bool,
}

impl Module {
    pub fn new(name: &str) -> Self {
        Module {
            name: name.to_owned(),
            ..Module::default()
        }
    }
    pub fn depends_on(mut self, d: &[&str]) -> Self {
        self.depends_on = d.iter().map(|s| (*s).to_owned()).collect();
        self
    }
    pub fn behavior(mut self, b: Behavior) -> Self {
        self.behavior = b;
        self
    }
    pub fn on_failure(self, v: &str) -> Self {
        self.annotate("tfops.dev/on-failure", v)
    }
    pub fn annotate(mut self, k: &str, v: &str) -> Self {
        self.annotations.push((k.to_owned(), v.to_owned()));
        self
    }
    pub fn vars_from(mut self, secret: &str) -> Self {
        self.varsfrom_secret = Some(secret.to_owned());
        self
    }
}

pub fn source(name: &str) -> Value {
    let mut v = tfops_testcluster::tofu::fixtures::oci_source(NS, name, REV);
    v["metadata"]["labels"] = json!({"tfops.dev/release": RELEASE});
    v
}

pub fn terraform(m: &Module) -> Value {
    let mut annotations = serde_json::Map::new();
    annotations.insert("tfops.dev/uninstall-policy".into(), json!("destroy"));
    annotations.insert("tfops.dev/on-failure".into(), json!("orphan"));
    annotations.insert("tfops.dev/retries".into(), json!("3"));
    annotations.insert("tfops.dev/timeout".into(), json!("10m"));
    annotations.insert("tfops.dev/guard".into(), json!("hook"));
    for (k, v) in &m.annotations {
        annotations.insert(k.clone(), json!(v));
    }
    annotations.insert(
        BEHAVIOR_ANNOTATION.into(),
        json!(serde_json::to_string(&m.behavior).unwrap()),
    );
    let mut spec = json!({
        "interval": "10m",
        "approvePlan": "auto",
        "path": "./modules/bucket",
        "sourceRef": {"kind": "OCIRepository", "name": format!("{}-src", m.name)},
        "destroyResourcesOnDeletion": true,
        "enableInventory": true,
        "writeOutputsToSecret": {"name": format!("{}-outputs", m.name)},
    });
    if !m.depends_on.is_empty() {
        spec["dependsOn"] = json!(m
            .depends_on
            .iter()
            .map(|d| json!({"name": d}))
            .collect::<Vec<_>>());
    }
    if let Some(s) = &m.varsfrom_secret {
        spec["varsFrom"] = json!([{"kind": "Secret", "name": s}]);
    }
    json!({
        "apiVersion": TF,
        "kind": "Terraform",
        "metadata": {
            "name": m.name, "namespace": NS,
            "labels": {"tfops.dev/release": RELEASE, "tfops.dev/module": m.name},
            "annotations": annotations,
        },
        "spec": spec,
    })
}

/// A loopback TCP relay in front of the test API server that disables Nagle on both legs and
/// re-arms TCP_QUICKACK after every read. Without it, the server's streamed watch chunks wait
/// for delayed ACKs (~40 ms of real time each burst), and a paused test clock jumps ahead
/// while those bytes are in flight. Still real HTTP end to end; only socket options differ.
pub async fn start_relay(upstream: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((down, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(up) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = down.set_nodelay(true);
                let _ = up.set_nodelay(true);
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                tokio::join!(pump(dr, uw), pump(ur, dw));
            });
        }
    });
    addr
}

async fn pump(mut r: tokio::net::tcp::OwnedReadHalf, mut w: tokio::net::tcp::OwnedWriteHalf) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let _ = r.as_ref().set_quickack(true);
        if w.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = w.shutdown().await;
}

/// A `kube::Client` for `user` (bearer token, as the test cluster expects) through `relay`.
pub fn relay_client(relay: std::net::SocketAddr, user: &str) -> kube::Client {
    let uri: http::Uri = format!("http://{relay}").parse().unwrap();
    let mut cfg = kube::Config::new(uri);
    cfg.default_namespace = "default".to_string();
    cfg.auth_info.token = Some(user.to_string().into());
    cfg.connect_timeout = None;
    cfg.read_timeout = None;
    cfg.write_timeout = None;
    kube::Client::try_from(cfg).unwrap()
}

pub struct Rig {
    pub cluster: TestCluster,
    pub sim: Option<TofuSim>,
    pub relay: std::net::SocketAddr,
}

impl Rig {
    pub async fn start() -> Rig {
        Rig::start_with(SimConfig::default()).await
    }

    /// A rig whose simulation uses `config` (its namespace is forced to the test's).
    pub async fn start_with(config: SimConfig) -> Rig {
        let cluster = TestCluster::start(ClusterOptions::default()).await.unwrap();
        cluster
            .store()
            .create(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "tf-runner", "namespace": NS}}))
            .unwrap();
        let relay = start_relay(cluster.addr()).await;
        let sim = TofuSim::start(
            relay_client(relay, CONTROLLER_USER),
            SimConfig {
                namespace: Some(NS.to_owned()),
                no_events: true,
                ..config
            },
        );
        Rig {
            cluster,
            sim: Some(sim),
            relay,
        }
    }

    /// Seed modules (and their sources; varsFrom Secrets), wait until every one is Ready.
    pub async fn release(&self, modules: &[Module]) {
        for m in modules {
            self.cluster
                .store()
                .create(source(&format!("{}-src", m.name)))
                .unwrap();
            if let Some(s) = &m.varsfrom_secret {
                self.cluster
                    .store()
                    .create(json!({"apiVersion": "v1", "kind": "Secret",
                        "metadata": {"name": s, "namespace": NS}, "data": {"region": "ZXUtd2VzdC0x"}}))
                    .unwrap();
            }
            self.cluster.store().create(terraform(m)).unwrap();
        }
        let names: Vec<String> = modules.iter().map(|m| m.name.clone()).collect();
        let ok = self
            .wait(
                || {
                    names
                        .iter()
                        .all(|n| ready(&self.tf(n)) == Some("True".into()))
                },
                900,
            )
            .await;
        assert!(
            ok,
            "release never became Ready: {:#?}",
            names.iter().map(|n| self.tf(n)).collect::<Vec<_>>()
        );
        for m in modules.iter().filter(|m| m.suspend) {
            self.cluster
                .store()
                .patch_merge(
                    TF,
                    "Terraform",
                    NS,
                    &m.name,
                    &json!({"spec": {"suspend": true}}),
                )
                .unwrap();
        }
    }

    pub fn tf(&self, name: &str) -> Value {
        self.cluster
            .store()
            .get(TF, "Terraform", NS, name)
            .unwrap_or(Value::Null)
    }

    pub fn gone(&self, name: &str) -> bool {
        self.tf(name).is_null()
    }

    pub fn secret(&self, ns: &str, name: &str) -> Option<Value> {
        self.cluster.store().get("v1", "Secret", ns, name)
    }

    pub fn ledger_entries(&self, ns: &str) -> Vec<Value> {
        self.cluster
            .store()
            .list_selected("v1", "Secret", ns, "tfops.dev/ledger")
            .unwrap()
    }

    /// The decoded `entry.json` of the ledger Secret about CR `name`.
    pub fn ledger_entry(&self, ns: &str, name: &str) -> Option<Value> {
        self.ledger_entries(ns).into_iter().find_map(|s| {
            let raw = s["data"]["entry.json"].as_str()?;
            let bytes = b64(raw);
            let v: Value = serde_json::from_slice(&bytes).ok()?;
            (v["name"] == name).then_some(v)
        })
    }

    pub fn guard_events(&self, name: &str) -> Vec<(String, String)> {
        self.cluster
            .store()
            .list("v1", "Event", NS)
            .into_iter()
            .filter(|e| {
                e["involvedObject"]["name"] == name && e["source"]["component"] == "tfops-guard"
            })
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or("").to_owned(),
                    e["message"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    pub async fn wait(&self, cond: impl Fn() -> bool, max_secs: u64) -> bool {
        tfops_testcluster::vtime::poll_each_second(cond, max_secs).await
    }

    pub fn guard_client(&self) -> kube::Client {
        relay_client(self.relay, GUARD_USER)
    }

    /// Run the guard with `opts`; returns the report and the virtual time it took.
    pub async fn guard(&self, opts: GuardOptions) -> (GuardReport, Duration) {
        let start = tokio::time::Instant::now();
        let report = run_guard(self.guard_client(), opts, Clock::start())
            .await
            .expect("guard run");
        (report, start.elapsed())
    }

    pub fn guard_requests(&self) -> usize {
        self.cluster.requests().count_user(GUARD_USER)
    }
}

pub fn opts(budget_secs: u64) -> GuardOptions {
    GuardOptions::new(RELEASE, NS, Duration::from_secs(budget_secs))
}

pub fn ready(tf: &Value) -> Option<String> {
    tf["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["status"].as_str())
        .map(str::to_owned)
}

pub fn b64(s: &str) -> Vec<u8> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let Some(v) = T.iter().position(|t| *t == c) else {
            continue;
        };
        buf = (buf << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

fn has_tf_finalizer(obj: &Value) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == TF_FINALIZER))
}

/// For CR `name`: the history index at which its controller finalizer went away (removed
/// from the list, or the object deleted while holding it), if it did.
pub fn finalizer_removed_at(history: &[HistoryEntry], name: &str) -> Option<usize> {
    history.iter().position(|h| {
        h.rt.kind == "Terraform"
            && h.name == name
            && h.previous.as_ref().is_some_and(has_tf_finalizer)
            && (!has_tf_finalizer(&h.object) || h.event == EventType::Deleted)
    })
}

/// The history index at which a ledger Secret about CR `name` was created.
pub fn ledger_created_at(history: &[HistoryEntry], name: &str) -> Option<usize> {
    history.iter().position(|h| {
        h.rt.kind == "Secret"
            && h.event == EventType::Added
            && h.object["metadata"]["labels"]["tfops.dev/ledger"].is_string()
            && h.object["data"]["entry.json"]
                .as_str()
                .and_then(|raw| serde_json::from_slice::<Value>(&b64(raw)).ok())
                .is_some_and(|e| e["name"] == name)
    })
}

/// The write-ahead invariant for one CR that left without a destroy.
pub fn assert_ledger_before_release(rig: &Rig, name: &str) {
    let h = rig.cluster.store().history();
    let l = ledger_created_at(&h, name).unwrap_or_else(|| panic!("no ledger entry for {name}"));
    let f = finalizer_removed_at(&h, name)
        .unwrap_or_else(|| panic!("finalizer of {name} never removed"));
    assert!(
        l < f,
        "ledger for {name} written at {l}, after its finalizer went at {f}"
    );
}
