//! Kubernetes client set-up from the environment Helm gives its plugins:
//! `KUBECONFIG`, `HELM_KUBECONTEXT`, `HELM_NAMESPACE` (and the in-cluster service account
//! when running as the pre-delete hook Job).

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// A client plus the namespace commands default to.
#[derive(Clone)]
pub struct KubeEnv {
    pub client: Client,
    pub namespace: String,
}

/// Errors building a client from the environment.
#[derive(Debug, thiserror::Error)]
pub enum KubeEnvError {
    #[error("reading kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("inferring Kubernetes config (no kubeconfig and not in a cluster): {0}")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("creating Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

impl KubeEnv {
    /// Build from Helm's plugin environment. `namespace_override` (a `-n` flag) wins over
    /// `HELM_NAMESPACE`, which wins over the kubeconfig context's namespace.
    pub async fn from_env(namespace_override: Option<&str>) -> Result<Self, KubeEnvError> {
        let context = std::env::var("HELM_KUBECONTEXT")
            .ok()
            .filter(|s| !s.is_empty());
        let config = if std::env::var_os("KUBECONFIG").is_some() || context.is_some() {
            let kubeconfig = Kubeconfig::read()?;
            let options = KubeConfigOptions {
                context,
                ..KubeConfigOptions::default()
            };
            Config::from_custom_kubeconfig(kubeconfig, &options).await?
        } else {
            Config::infer().await?
        };
        let namespace = namespace_override
            .map(str::to_owned)
            .or_else(|| {
                std::env::var("HELM_NAMESPACE")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config)?;
        Ok(Self { client, namespace })
    }
}
