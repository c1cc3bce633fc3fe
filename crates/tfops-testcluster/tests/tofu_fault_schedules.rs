//! Seeded random schedules of API faults (5xx/409/429 on the controller's requests, dropped
//! watches, latency) and destroy behaviours against the simulation: every CR whose destroy
//! eventually succeeds is gone in the end (the driver recovers from every fault), and a CR
//! whose source was deleted first never goes. `TFOPS_SIM_SCHEDULES` overrides the count (25).

use std::time::Duration;

use serde_json::{json, Value};
use tfops_testcluster::tofu::behavior::{Behavior, DestroyAttempt, FailStage, LockSpec};
use tfops_testcluster::tofu::fixtures::{as_applied, oci_source, service_account};
use tfops_testcluster::tofu::messages::samples;
use tfops_testcluster::tofu::{SimConfig, TofuSim, CONTROLLER_USER};
use tfops_testcluster::{ClusterOptions, FaultRule, TestCluster, Verb};

const NS: &str = "sched";
const TF: &str = "infra.contrib.fluxcd.io/v1alpha2";
const REV: &str = "main@sha1:00112233445566778899aabbccddeeff00112233";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn module(name: &str) -> Value {
    json!({
        "apiVersion": TF,
        "kind": "Terraform",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "interval": "10m", "approvePlan": "auto", "path": "./", "destroyResourcesOnDeletion": true,
            "sourceRef": {"kind": "OCIRepository", "name": format!("{name}-src")},
            "writeOutputsToSecret": {"name": format!("{name}-outputs")},
        }
    })
}

fn behavior(rng: &mut Rng) -> Behavior {
    let messages = [
        samples::AWS_THROTTLING,
        samples::AWS_DEPENDENCY_VIOLATION,
        samples::GCP_BACKEND_ERROR,
        samples::NETWORK_TIMEOUT,
    ];
    let mut b = Behavior {
        destroy_duration: Duration::from_secs(rng.pick(60)),
        reconcile_latency: Duration::from_millis(rng.pick(3) * 500),
        ..Behavior::default()
    };
    match rng.pick(4) {
        0 => {}
        1 => {
            let stage = if rng.pick(2) == 0 {
                FailStage::Plan
            } else {
                FailStage::Apply
            };
            let message = messages[rng.pick(messages.len() as u64) as usize];
            b.destroy = vec![DestroyAttempt::fail(stage, message, 1 + rng.pick(3) as u32)]
        }
        2 => b.nothing_to_destroy = true,
        _ => {
            b.lock = Some(LockSpec {
                id: format!("lock-{}", rng.pick(1000)),
                who: "runner@previous".into(),
                operation: "OperationTypeApply".into(),
                release_after: Some(Duration::from_secs(10 + rng.pick(120))),
            })
        }
    }
    b
}

fn fault(rng: &mut Rng) -> FaultRule {
    let verbs = [
        Verb::Get,
        Verb::Patch,
        Verb::Create,
        Verb::Delete,
        Verb::List,
    ];
    let resources = [
        "terraforms",
        "secrets",
        "leases",
        "serviceaccounts",
        "ocirepositories",
    ];
    let times = 1 + rng.pick(5) as usize;
    let rule = match rng.pick(6) {
        0 => FaultRule::drop_watch_after(1 + rng.pick(4) as usize),
        1 => FaultRule::latency(Duration::from_millis(100 * (1 + rng.pick(20)))).times(times),
        2 => FaultRule::status(429).times(times),
        3 => FaultRule::status(409).times(times),
        4 => FaultRule::status(503).times(times),
        _ => FaultRule::status(500).times(times),
    };
    let rule = rule.user(CONTROLLER_USER);
    if matches!(rule.verb, Some(Verb::Watch)) {
        return rule.resource("terraforms");
    }
    let rule = if rng.pick(3) > 0 {
        rule.verb(verbs[rng.pick(verbs.len() as u64) as usize])
    } else {
        rule
    };
    if rng.pick(2) == 0 {
        rule.resource(resources[rng.pick(resources.len() as u64) as usize])
    } else {
        rule
    }
}

async fn wait(cond: impl Fn() -> bool, polls: u64) -> bool {
    for _ in 0..polls {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    cond()
}

async fn schedule(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let cluster = TestCluster::start(ClusterOptions::default()).await.unwrap();
    let store = cluster.store();
    store.create(service_account(NS, "tf-runner")).unwrap();
    let n = 1 + rng.pick(3) as usize;
    let names: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    for name in &names {
        store
            .create(oci_source(NS, &format!("{name}-src"), REV))
            .unwrap();
        let applied =
            as_applied(&module(name), REV, &Behavior::default(), chrono::Utc::now()).unwrap();
        store.create(applied.terraform).unwrap();
        for s in applied.secrets {
            store.create(s).unwrap();
        }
    }
    // sometimes one CR whose source is deleted first: it must never go
    let blocked = (rng.pick(3) == 0).then(|| "stuck".to_string());
    if let Some(b) = &blocked {
        let applied =
            as_applied(&module(b), REV, &Behavior::default(), chrono::Utc::now()).unwrap();
        store.create(applied.terraform).unwrap();
    }
    let sim = TofuSim::start(
        cluster.client(CONTROLLER_USER).unwrap(),
        SimConfig::default(),
    );
    for name in &names {
        sim.set_behavior(NS, name, behavior(&mut rng));
    }
    for _ in 0..rng.pick(4) {
        cluster.faults().add(fault(&mut rng));
    }
    for name in names.iter().chain(blocked.iter()) {
        store.delete(TF, "Terraform", NS, name).unwrap();
    }
    let gone = |n: &str| store.get(TF, "Terraform", NS, n).is_none();
    let all_gone = wait(|| names.iter().all(|n| gone(n)), 7200).await;
    let left: Vec<Value> = names
        .iter()
        .filter_map(|n| store.get(TF, "Terraform", NS, n))
        .map(|t| json!({"name": t["metadata"]["name"], "status": t["status"], "finalizers": t["metadata"]["finalizers"]}))
        .collect();
    assert!(
        all_gone,
        "seed {seed}: not gone: {left:#?}\nstats: {:?}",
        names
            .iter()
            .map(|n| (n, sim.stats(NS, n)))
            .collect::<Vec<_>>()
    );
    if let Some(b) = &blocked {
        let t = store.get(TF, "Terraform", NS, b).expect("blocked CR stays");
        assert!(t["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "finalizers.tf.contrib.fluxcd.io")));
        assert_eq!(sim.stats(NS, b).destroy_attempts, 0, "seed {seed}");
    }
    sim.stop();
}

#[tokio::test(start_paused = true)]
async fn random_fault_schedules_converge() {
    let count: u64 = std::env::var("TFOPS_SIM_SCHEDULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    for seed in 0..count {
        schedule(seed).await;
    }
}
