//! [`TestCluster`]: starts the in-process API server on `127.0.0.1:<ephemeral>` on the current
//! tokio runtime and hands out `kube::Client`s (real HTTP, bearer token = user name),
//! kubeconfigs, and handles on the store, the fault rules and the request log.

use crate::faults::Faults;
use crate::jobs::{self, JobRuns};
use crate::requests::RequestLog;
use crate::server::{self, ServerState};
use crate::store::{Store, StoreConfig};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors starting the cluster or building clients.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Binding or serving failed.
    #[error("test cluster I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Building a kube client failed.
    #[error("building kube client: {0}")]
    Kube(#[from] kube::Error),
    /// The server URL did not parse.
    #[error("invalid server URL {0}")]
    Url(String),
    /// A CRD file could not be read or stored.
    #[error("seeding CRDs: {0}")]
    Crd(String),
    /// Serialising the kubeconfig failed.
    #[error("serialising kubeconfig: {0}")]
    Yaml(String),
}

/// Options for [`TestCluster::start`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Create a namespace on first use instead of answering 404 (default: true, for
    /// convenience; set false to test the real API's "namespaces \"x\" not found").
    pub auto_create_namespaces: bool,
    /// Changes kept for watch resume; older resourceVersions get 410 Gone (default 100 000).
    pub history_limit: usize,
    /// Interval between watch bookmarks when the client allows them (default 60 s).
    pub bookmark_interval: Duration,
    /// Port to bind (default 0 = ephemeral).
    pub port: u16,
    /// Run Jobs whose container command is `tfops …` with this binary (see [`crate::jobs`]);
    /// None (default) leaves Jobs pending. The standalone binary takes it from
    /// `--job-bin` / env `TFOPS_TESTCLUSTER_JOB_BIN`.
    pub job_bin: Option<PathBuf>,
    /// Seed every CustomResourceDefinition (`*.yaml`) in this directory at start, so writes of
    /// those resources are pruned and validated against the real schemas (see [`crate::crd`]).
    /// None (default): no schema validation.
    pub crds_dir: Option<PathBuf>,
}

impl ClusterOptions {
    /// The workspace's shared real CRDs (`<workspace>/../shared/crds`: tofu-controller v0.16.5
    /// Terraform, Flux sources), when that folder exists.
    pub fn shared_crds_dir() -> Option<PathBuf> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crds");
        p.is_dir().then_some(p)
    }

    /// These options with [`Self::crds_dir`] set to [`Self::shared_crds_dir`] (unchanged when
    /// the folder is absent — check `crds_dir.is_some()` to skip).
    pub fn with_shared_crds(mut self) -> Self {
        self.crds_dir = Self::shared_crds_dir();
        self
    }
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            auto_create_namespaces: true,
            history_limit: 100_000,
            bookmark_interval: Duration::from_secs(60),
            port: 0,
            job_bin: None,
            crds_dir: None,
        }
    }
}

/// A running in-process test cluster. Dropping it stops accepting connections.
pub struct TestCluster {
    addr: SocketAddr,
    store: Store,
    faults: Faults,
    log: RequestLog,
    job_runs: JobRuns,
    app: axum::Router,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestCluster {
    /// Bind 127.0.0.1 and serve on the current tokio runtime.
    pub async fn start(opts: ClusterOptions) -> Result<Self, ClusterError> {
        let store = Store::new(StoreConfig {
            auto_create_namespaces: opts.auto_create_namespaces,
            history_limit: opts.history_limit,
        });
        if let Some(dir) = &opts.crds_dir {
            seed_crds(&store, dir)?;
        }
        let faults = Faults::default();
        let log = RequestLog::default();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
        let addr = listener.local_addr()?;
        let app: axum::Router = server::router(ServerState {
            store: store.clone(),
            faults: faults.clone(),
            log: log.clone(),
            bookmark_interval: opts.bookmark_interval,
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app_for_clients = app.clone();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!("test cluster server stopped: {e}");
            }
        });
        let cluster = Self {
            addr,
            store,
            faults,
            log,
            job_runs: JobRuns::default(),
            app: app_for_clients,
            shutdown: Some(tx),
        };
        if let Some(bin) = opts.job_bin {
            let url = cluster.url();
            let render = move |user: &str, ns: &str| kubeconfig_doc(&url, user, ns).ok();
            jobs::spawn(
                cluster.store.clone(),
                bin,
                cluster.job_runs.clone(),
                std::sync::Arc::new(render),
            );
        }
        Ok(cluster)
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A `kube::Client` talking real HTTP/1.1 to this cluster as `user` (bearer token = user
    /// name), default namespace "default", over an in-memory connection (see
    /// [`Self::client_in_memory`]; robust under paused virtual time). kube's default retry of
    /// 429/503/504 is on. [`Self::client_over_tcp`] goes through the loopback socket instead.
    pub fn client(&self, user: &str) -> Result<kube::Client, ClusterError> {
        Ok(self.client_in_memory(user, "default"))
    }

    /// Like [`Self::client`] with another default namespace.
    pub fn client_in(&self, user: &str, namespace: &str) -> Result<kube::Client, ClusterError> {
        Ok(self.client_in_memory(user, namespace))
    }

    /// A `kube::Client` over the loopback TCP socket (what a kubeconfig gives), as `user`.
    /// Client-side timeouts are disabled so paused virtual time cannot fire them; kube's
    /// default retry stays on. Under a paused clock prefer [`Self::client`].
    pub fn client_over_tcp(
        &self,
        user: &str,
        namespace: &str,
    ) -> Result<kube::Client, ClusterError> {
        let uri: http::Uri = self
            .url()
            .parse()
            .map_err(|_| ClusterError::Url(self.url()))?;
        let mut cfg = kube::Config::new(uri);
        cfg.default_namespace = namespace.to_string();
        cfg.auth_info.token = Some(user.to_string().into());
        cfg.connect_timeout = None;
        cfg.read_timeout = None;
        cfg.write_timeout = None;
        Ok(kube::Client::try_from(cfg)?)
    }

    /// Like [`Self::client_in`] but over an in-memory HTTP/1.1 transport (no loopback socket):
    /// robust under a paused test clock, where a socket's in-flight bytes can lose the race
    /// against tokio's auto-advance (e.g. a watcher's idle timeout). Same request log, faults
    /// and kube default retry policy (429/503/504).
    pub fn client_in_memory(&self, user: &str, namespace: &str) -> kube::Client {
        let svc = crate::transport::InMemory {
            app: self.app.clone(),
            bearer: http::HeaderValue::from_str(&format!("Bearer {user}")).ok(),
        };
        let retry = tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::server_retry());
        let svc = tower::ServiceBuilder::new().layer(retry).service(svc);
        kube::Client::new(svc, namespace.to_string())
    }

    /// A kubeconfig (YAML) for `user` with default namespace `namespace`; context and
    /// cluster are named `tfops-testcluster`. The user is both the bearer token and `as`
    /// (impersonation): Go clients (Helm) do not send bearer tokens over plain HTTP, but do
    /// send `Impersonate-User`, so the request log names the user either way.
    pub fn kubeconfig_yaml(&self, user: &str, namespace: &str) -> Result<String, ClusterError> {
        kubeconfig_doc(&self.url(), user, namespace)
    }

    /// Write [`Self::kubeconfig_yaml`] to `path` (mode 0600, so Helm does not warn).
    pub fn write_kubeconfig(
        &self,
        path: impl AsRef<Path>,
        user: &str,
        namespace: &str,
    ) -> Result<(), ClusterError> {
        let y = self.kubeconfig_yaml(user, namespace)?;
        std::fs::write(path.as_ref(), y)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path.as_ref(), std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    }

    /// Direct access to the objects (seeding and assertions, bypassing HTTP).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Fault injection rules.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The request log.
    pub fn requests(&self) -> &RequestLog {
        &self.log
    }

    /// Jobs run by the Job runner so far (with their output).
    pub fn job_runs(&self) -> Vec<jobs::JobRun> {
        self.job_runs.all()
    }

    /// Stop accepting connections (also done on drop).
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Seed every `*.yaml` CRD document of `dir` into the store.
fn seed_crds(store: &Store, dir: &Path) -> Result<(), ClusterError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("yaml"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
            .map_err(|e| ClusterError::Crd(format!("{}: {e}", f.display())))?;
        for d in docs
            .into_iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition")
        {
            store
                .create(d)
                .map_err(|e| ClusterError::Crd(format!("{}: {e}", f.display())))?;
        }
    }
    Ok(())
}

fn kubeconfig_doc(url: &str, user: &str, namespace: &str) -> Result<String, ClusterError> {
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "tfops-testcluster", "cluster": {"server": url}}],
        "users": [{"name": user, "user": {"token": user, "as": user}}],
        "contexts": [{
            "name": "tfops-testcluster",
            "context": {"cluster": "tfops-testcluster", "user": user, "namespace": namespace}
        }],
        "current-context": "tfops-testcluster",
        "preferences": {},
    });
    serde_saphyr::to_string(&doc).map_err(|e| ClusterError::Yaml(e.to_string()))
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}
