//! Job runner: when a `batch/v1` Job whose first container runs `tfops …` (the guard hook) is
//! created, run the real binary (path from `ClusterOptions::job_bin`) as that Job — its
//! command tail, args and literal env, `KUBECONFIG` pointing at this cluster as the Job's
//! ServiceAccount — then set the Job's status (`Complete` / `Failed` conditions) so Helm's hook
//! wait finishes. `activeDeadlineSeconds` is enforced (`DeadlineExceeded`); like the real Job
//! controller, nothing runs while the Job's ServiceAccount is missing.

use crate::clock::Clock;
use crate::registry;
use crate::store::{Store, WriteMode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One finished Job run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    /// Job namespace.
    pub namespace: String,
    /// Job name.
    pub name: String,
    /// The command line run (binary first).
    pub argv: Vec<String>,
    /// Exit code (None when killed at the deadline or not startable).
    pub exit_code: Option<i32>,
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
}

/// Shared list of finished runs.
#[derive(Clone, Default)]
pub struct JobRuns {
    inner: Arc<Mutex<Vec<JobRun>>>,
}

impl JobRuns {
    /// All finished runs so far.
    pub fn all(&self) -> Vec<JobRun> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn push(&self, r: JobRun) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).push(r);
    }
}

/// Whether this Job runs `tfops`.
fn tfops_container(job: &Value) -> Option<&Value> {
    let c = job.pointer("/spec/template/spec/containers/0")?;
    let cmd0 = c.pointer("/command/0").and_then(Value::as_str)?;
    let base = cmd0.rsplit('/').next().unwrap_or(cmd0);
    (base == "tfops").then_some(c)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Renders a kubeconfig for (user, namespace).
pub(crate) type KubeconfigFor = Arc<dyn Fn(&str, &str) -> Option<String> + Send + Sync>;

/// Spawn the runner on the current runtime. `kubeconfig_for(user, ns)` renders a kubeconfig.
pub(crate) fn spawn(store: Store, bin: PathBuf, runs: JobRuns, kubeconfig_for: KubeconfigFor) {
    tokio::spawn(async move {
        let Some(rt) = registry::lookup("batch/v1", "jobs") else {
            return;
        };
        let mut changes = store.subscribe();
        let mut started: BTreeSet<String> = BTreeSet::new();
        loop {
            changes.borrow_and_update();
            let (jobs, _) = store.list_in(rt, &Default::default());
            for job in jobs {
                let uid = job
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if started.contains(&uid)
                    || job
                        .get("status")
                        .is_some_and(|s| s.get("startTime").is_some())
                {
                    continue;
                }
                let Some(container) = tfops_container(&job) else {
                    continue;
                };
                let ns = job
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let name = job
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let sa = job
                    .pointer("/spec/template/spec/serviceAccountName")
                    .and_then(Value::as_str)
                    .unwrap_or("default");
                // Like the real Job controller: no pod (so no run) while the ServiceAccount is
                // missing; re-checked on every store change.
                let sa_exists = sa == "default"
                    || registry::lookup("v1", "serviceaccounts")
                        .is_some_and(|sart| store.get_in(sart, &ns, sa).is_ok());
                if !sa_exists {
                    continue;
                }
                started.insert(uid);
                let user = format!("system:serviceaccount:{ns}:{sa}");
                let mut argv: Vec<String> = strings(container.get("command"))
                    .into_iter()
                    .skip(1)
                    .collect();
                argv.extend(strings(container.get("args")));
                let env: Vec<(String, String)> = container
                    .get("env")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| {
                                Some((
                                    e.get("name")?.as_str()?.to_string(),
                                    e.get("value")?.as_str()?.to_string(),
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let deadline = job
                    .pointer("/spec/activeDeadlineSeconds")
                    .and_then(Value::as_u64)
                    .map(Duration::from_secs);
                let kc = kubeconfig_for(&user, &ns);
                tokio::spawn(run_job(
                    store.clone(),
                    rt,
                    RunSpec {
                        ns,
                        name,
                        bin: bin.clone(),
                        argv,
                        env,
                        deadline,
                        kubeconfig: kc,
                    },
                    runs.clone(),
                ));
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    });
}

struct RunSpec {
    ns: String,
    name: String,
    bin: PathBuf,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    deadline: Option<Duration>,
    kubeconfig: Option<String>,
}

fn set_status(
    store: &Store,
    rt: &'static registry::ResourceType,
    ns: &str,
    name: &str,
    status: Value,
) {
    if let Ok(mut job) = store.get_in(rt, ns, name) {
        job["status"] = status;
        if let Some(m) = job.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        let _ = store.update_in(rt, ns, name, job, WriteMode::Status);
    }
}

async fn run_job(store: Store, rt: &'static registry::ResourceType, spec: RunSpec, runs: JobRuns) {
    let clock: Clock = store.clock();
    let start = clock.now_rfc3339();
    set_status(
        &store,
        rt,
        &spec.ns,
        &spec.name,
        json!({"startTime": start, "active": 1, "ready": 1}),
    );
    let dir = std::env::temp_dir().join(format!(
        "tfops-testcluster-job-{}-{}-{}",
        std::process::id(),
        spec.ns,
        spec.name
    ));
    let kc_path = dir.join("kubeconfig");
    let prepared = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(&kc_path, spec.kubeconfig.clone().unwrap_or_default()));
    let mut argv_full = vec![spec.bin.display().to_string()];
    argv_full.extend(spec.argv.iter().cloned());
    let mut run = JobRun {
        namespace: spec.ns.clone(),
        name: spec.name.clone(),
        argv: argv_full,
        exit_code: None,
        stdout: String::new(),
        stderr: String::new(),
    };
    let mut deadline_exceeded = false;
    if let Err(e) = prepared {
        run.stderr = format!("preparing kubeconfig: {e}");
    } else {
        let mut cmd = tokio::process::Command::new(&spec.bin);
        cmd.args(&spec.argv)
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("KUBECONFIG", &kc_path)
            .env_remove("HELM_KUBECONTEXT")
            .env("HELM_NAMESPACE", &spec.ns)
            .env("POD_NAMESPACE", &spec.ns)
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        let out = cmd.output();
        // The child runs in real time, so its deadline is real time too (a paused test clock
        // would otherwise auto-advance past it while the process runs).
        let (expired_tx, expired_rx) = tokio::sync::oneshot::channel::<()>();
        if let Some(d) = spec.deadline {
            std::thread::spawn(move || {
                std::thread::sleep(d);
                let _ = expired_tx.send(());
            });
        }
        let res = tokio::select! {
            o = out => Some(o),
            Ok(()) = expired_rx => None,
        };
        match res {
            None => {
                deadline_exceeded = true;
                run.stderr = "killed: activeDeadlineSeconds exceeded".to_string();
            }
            Some(Err(e)) => run.stderr = format!("starting {}: {e}", spec.bin.display()),
            Some(Ok(o)) => {
                run.exit_code = o.status.code();
                run.stdout = String::from_utf8_lossy(&o.stdout).into_owned();
                run.stderr = String::from_utf8_lossy(&o.stderr).into_owned();
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let now = clock.now_rfc3339();
    let status = if run.exit_code == Some(0) {
        json!({
            "startTime": start, "completionTime": now, "succeeded": 1, "ready": 0,
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now}
            ]
        })
    } else {
        let (reason, message) = if deadline_exceeded {
            (
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            )
        } else {
            (
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            )
        };
        json!({
            "startTime": start, "failed": 1, "ready": 0,
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": reason, "message": message, "lastProbeTime": now, "lastTransitionTime": now},
                {"type": "Failed", "status": "True", "reason": reason, "message": message, "lastProbeTime": now, "lastTransitionTime": now}
            ]
        })
    };
    tracing::info!(namespace = %spec.ns, job = %spec.name, exit = ?run.exit_code, "job finished");
    runs.push(run);
    set_status(&store, rt, &spec.ns, &spec.name, status);
}
