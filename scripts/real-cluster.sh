#!/usr/bin/env bash
# Runs helm-tfops end to end on a REAL cluster: kind + Flux source-controller + tofu-controller
# v0.16.5, then installs and uninstalls a charts-example release with the plugin.
#
# This cannot run on the project's CI machines (no container runtime, no network beyond package
# registries); the automated tests use the in-process test API server and tofu-controller
# simulation instead (crates/tfops-testcluster). Use this script on a workstation to check the
# same flows against the real controller.
#
# Needs on PATH: docker (or podman with KIND_EXPERIMENTAL_PROVIDER), kind, kubectl, helm (3 or 4),
# and the tfops binary (`make build`). Optional: flux CLI (otherwise Flux's install manifest is
# applied with kubectl).
#
# Usage:
#   scripts/real-cluster.sh up        # create the cluster, install Flux source-controller + tofu-controller
#   scripts/real-cluster.sh demo      # install charts-example/bucket-iam with the post-renderer, show status,
#                                     # then uninstall through the guard (hook on Helm 4, client side on Helm 3)
#   scripts/real-cluster.sh down      # delete the cluster
# Environment:
#   CLUSTER=tfops-real  TOFU_VERSION=v0.16.5  TOFU_CHART_VERSION=(chart matching TOFU_VERSION; empty = latest)
#   FLUX_VERSION=v2.4.0  NAMESPACE=tfops-demo  CHART=charts-example/bucket-iam
#   GUARD_IMAGE=(image with the tfops binary, loaded into kind; built from ./Dockerfile.guard when unset)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cluster=${CLUSTER:-tfops-real}
tofu_version=${TOFU_VERSION:-v0.16.5}
tofu_chart_version=${TOFU_CHART_VERSION:-}
flux_version=${FLUX_VERSION:-v2.4.0}
ns=${NAMESPACE:-tfops-demo}
chart=${CHART:-charts-example/bucket-iam}
helm=${HELM_BIN:-helm}

need() { command -v "$1" >/dev/null || { echo "real-cluster: '$1' is required on PATH" >&2; exit 1; }; }

up() {
  need kind; need kubectl; need "$helm"
  kind get clusters | grep -qx "$cluster" || kind create cluster --name "$cluster" --wait 120s
  kubectl config use-context "kind-$cluster"
  if command -v flux >/dev/null; then
    flux install --components=source-controller
  else
    kubectl apply -f "https://github.com/fluxcd/flux2/releases/download/${flux_version}/install.yaml"
    # Only source-controller is needed; scale the others down to keep the cluster small.
    for d in helm-controller kustomize-controller notification-controller; do
      kubectl -n flux-system scale deployment "$d" --replicas=0 || true
    done
  fi
  "$helm" repo add tofu-controller https://flux-iac.github.io/tofu-controller >/dev/null
  "$helm" repo update tofu-controller >/dev/null
  args=(upgrade --install tofu-controller tofu-controller/tofu-controller -n flux-system --wait
        --set "image.tag=${tofu_version}" --set "runner.image.tag=${tofu_version}")
  [ -n "$tofu_chart_version" ] && args+=(--version "$tofu_chart_version")
  "$helm" "${args[@]}"
  kubectl -n flux-system rollout status deployment/tofu-controller --timeout=180s
  echo "real-cluster: ready (context kind-$cluster)"
}

demo() {
  need kubectl; need "$helm"; need tfops
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
  "$helm" plugin list | grep -q '^tfops' || "$helm" plugin install "$root"
  "$helm" tfops setup
  major=$("$helm" version --template '{{.Version}}' | sed 's/^v\([0-9]*\).*/\1/')
  if [ "$major" -ge 4 ]; then renderer=(--post-renderer tfops-render); else renderer=(--post-renderer "$(command -v tfops-render)"); fi
  "$helm" upgrade --install demo "$root/$chart" -n "$ns" "${renderer[@]}" --post-renderer-args "--release=demo"
  kubectl -n "$ns" wait terraform --all --for=condition=Ready --timeout=600s || true
  "$helm" tfops status demo -n "$ns" || true
  "$helm" tfops doctor demo -n "$ns" || true
  if [ "$major" -ge 4 ]; then
    "$helm" uninstall demo -n "$ns" --timeout 10m   # the pre-delete guard Job runs first
  else
    "$helm" tfops uninstall demo -n "$ns" --timeout 10m
  fi
  kubectl -n "$ns" get terraform,secrets -l tfops.dev/release=demo
  "$helm" tfops orphans list -n "$ns" || true
}

down() { need kind; kind delete cluster --name "$cluster"; }

case "${1:-}" in
  up) up ;;
  demo) demo ;;
  down) down ;;
  *) sed -n '2,30p' "$0"; exit 2 ;;
esac
