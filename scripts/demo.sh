#!/usr/bin/env bash
# `make demo`: the whole story in about a minute, no cluster needed. It starts the project's test
# API server with the tofu-controller v0.16.5 simulation and a source-controller stand-in
# (crates/tfops-testcluster, the same parts the tests use), installs the plugins into throw-away
# Helm homes for Helm 4.1.4 and 3.16.1, and then, with real Helm and the real tfops binary:
#   1. installs charts-example/bucket-iam through the post-renderer; `helm tfops status` shows
#      the two modules Ready;
#   2. without the guard (`helm uninstall --no-hooks`, what plain Helm does): the uninstall times
#      out, the Terraform CRs stay with their finalizers, their source and runner
#      ServiceAccount already gone — the deadlock; `helm tfops doctor` says why;
#   3. with the guard (plain `helm uninstall`: Helm 4 runs the injected pre-delete Job): the
#      IAM module's destroy fails twice with a transient error and is retried, the bucket's fails
#      permanently (not empty) and is orphaned into the ledger; the uninstall finishes;
#   4. the cause is fixed (the simulated bucket is emptied): `helm tfops orphans destroy`;
#   5. the same release on Helm 3 with `helm tfops uninstall` (the guard client-side).
# It checks every claim and exits non-zero when one does not hold (CI runs it as a smoke test).
#
# Usage: scripts/demo.sh [--keep]
#   --keep   leave the test cluster running at the end and print how to use it
# Environment: HELM4_BIN, HELM3_BIN (default .cache/helm/<version>/helm), TFOPS_BIN,
# TESTCLUSTER_BIN (default ${CARGO_TARGET_DIR:-target}/release/{tfops,testcluster}).
# The chart tour of the post-renderer alone is scripts/demo-render.sh.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "$0")/.." && pwd)
keep=0
for a in "$@"; do
  case $a in
    --keep) keep=1 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $a (try --help)" >&2; exit 1 ;;
  esac
done
target=${CARGO_TARGET_DIR:-$root/target}
helm4=${HELM4_BIN:-$root/.cache/helm/v4.1.4/helm}
helm3=${HELM3_BIN:-$root/.cache/helm/v3.16.1/helm}
export TFOPS_BIN=${TFOPS_BIN:-$target/release/tfops}
testcluster=${TESTCLUSTER_BIN:-$target/release/testcluster}
for f in "$helm4" "$helm3" "$TFOPS_BIN" "$testcluster"; do
  [ -x "$f" ] || { echo "demo: $f is missing: run 'make helm build' first (make demo does)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/tfops-demo.XXXXXX")
cluster_pid=
cleanup() {
  if [ -n "$cluster_pid" ] && [ "$keep" = 0 ]; then kill "$cluster_pid" 2>/dev/null || true; wait "$cluster_pid" 2>/dev/null || true; fi
  [ "$keep" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

bold=$'\e[1m'; dim=$'\e[2m'; red=$'\e[31m'; green=$'\e[32m'; reset=$'\e[0m'
[ -t 1 ] || { bold=; dim=; red=; green=; reset=; }

catalog=$root/charts-example/catalog.yaml
chart=$root/charts-example/bucket-iam
t0=$SECONDS
results=()   # "step|claim|ok/FAILED|seconds"
failed=0
step_start=$SECONDS

# step N TITLE: start a step
step() { step_start=$SECONDS; echo; echo "${bold}[$1/5] $2${reset}"; }
# verdict CLAIM OK?: record the result of the current step
verdict() {
  local label=$1 claim=$2 ok=$3 took=$((SECONDS - step_start))
  if [ "$ok" = 1 ]; then
    echo "  ${green}ok${reset}: $claim ${dim}(${took}s)${reset}"
    results+=("$label|$claim|ok|$took")
  else
    echo "  ${red}FAILED${reset}: $claim" >&2
    results+=("$label|$claim|FAILED|$took")
    failed=1
  fi
}
# show CMD...: print the command as a user types it (with the short helm/chart names), run it
show() {
  local shown="$*"
  shown=${shown//$helm4/helm}; shown=${shown//$helm3/helm}
  shown=${shown//$root\//}
  echo "  ${dim}\$${reset} $shown"
}
indent() { sed 's/^/    /'; }
# run CMD...: show it, run it with its output (stdout and stderr) indented as it comes; sets
# $code (its exit code) and $out (its output)
run() {
  show "$@"
  set +e
  "$@" 2>&1 | tee "$work/last.out" | indent
  code=${PIPESTATUS[0]}
  set -e
  out=$(cat "$work/last.out")
}

# --- the test cluster -------------------------------------------------------------------------
cat >"$work/scenario.yaml" <<'EOF'
# Demo: a GitRepository-backed bucket and an IAM binding per release (charts-example/bucket-iam).
# In both namespaces the IAM module's destroy fails twice with AWS throttling (transient), and the
# bucket's fails with BucketNotEmpty (permanent) until the behaviours file says it was emptied.
namespace: shop
sourceController: true
controller:
  defaultBehavior:
    destroyDuration: 2s
behaviors:
  - name: shop-bucket-iam
    behavior: &iam
      destroyDuration: 3s
      destroy:
        - {outcome: fail, times: 2, message: "Error: deleting IAM Role Policy Attachment (shop-reader/arn:aws:iam::123456789012:policy/shop-read): operation error IAM: DetachRolePolicy, https response error StatusCode: 400, RequestID: 5f1c2d3e, api error Throttling: Rate exceeded"}
        - {outcome: succeed}
  - name: shop-bucket
    behavior: &bucket
      destroyDuration: 3s
      destroy:
        - {outcome: fail, forever: true, message: "Error: deleting S3 Bucket (shop-invoices): operation error S3: DeleteBucket, https response error StatusCode: 409, RequestID: 9A1B7C3D, api error BucketNotEmpty: The bucket you tried to delete is not empty"}
  - {name: shop-bucket-iam, namespace: shop-h3, behavior: *iam}
  - {name: shop-bucket, namespace: shop-h3, behavior: *bucket}
objects:
  # installed with tofu-controller on a real cluster; the runner ServiceAccounts bind to it
  - apiVersion: rbac.authorization.k8s.io/v1
    kind: ClusterRole
    metadata: {name: tf-runner-role}
    rules:
      - {apiGroups: [""], resources: [configmaps, secrets], verbs: ["*"]}
      - {apiGroups: [coordination.k8s.io], resources: [leases], verbs: ["*"]}
      - {apiGroups: [infra.contrib.fluxcd.io], resources: [terraforms], verbs: [get, list, patch]}
EOF
export KUBECONFIG=$work/kubeconfig
mkdir -p "$work/job-logs"
"$testcluster" --scenario "$work/scenario.yaml" --kubeconfig-out "$KUBECONFIG" \
  --job-bin "$TFOPS_BIN" --job-logs "$work/job-logs" --behaviors-file "$work/behaviors.yaml" \
  >"$work/testcluster.out" 2>"$work/testcluster.err" &
cluster_pid=$!
for _ in $(seq 100); do [ -s "$KUBECONFIG" ] && break; sleep 0.1; done
[ -s "$KUBECONFIG" ] || { echo "demo: the test cluster did not start:" >&2; cat "$work/testcluster.err" >&2; exit 1; }
echo "${bold}helm-tfops demo${reset}: real Helm 4.1.4 and 3.16.1 with the plugins, against the project's test API"
echo "server + tofu-controller v0.16.5 simulation ($(sed -n 1p "$work/testcluster.out" | sed 's/.*listening on //'); no cluster needed)"

# --- Helm homes -------------------------------------------------------------------------------
ORIG_PATH=$PATH
use_helm() { # version-dir: an isolated Helm home with the plugins installed
  local h=$work/$1
  export HOME=$h/home HELM_CACHE_HOME=$h/cache HELM_CONFIG_HOME=$h/config HELM_DATA_HOME=$h/data \
    HELM_PLUGINS=$h/data/plugins PATH=$h/home/.local/bin:$ORIG_PATH
  if [ ! -d "$h" ]; then
    mkdir -p "$h/cache" "$h/config" "$h/data/plugins" "$h/home/.local/bin"
    "$2" plugin install "$root" >/dev/null
    "$2" tfops setup >/dev/null
  fi
}

# wait_ready HELM RELEASE NS: until `helm tfops status` exits 0 (every module Ready), 60 s at most
wait_ready() {
  for _ in $(seq 120); do
    "$1" tfops status "$2" -n "$3" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

# install HELM RELEASE NS
install() {
  show "$1" install "$2" "$chart" -n "$3" --post-renderer tfops-render --post-renderer-args "--config=$catalog"
  "$1" install "$2" "$chart" -n "$3" --post-renderer tfops-render --post-renderer-args "--config=$catalog" \
    >"$work/install-$2-$3.out" 2>&1 || { indent <"$work/install-$2-$3.out"; return 1; }
}

# decisions LOG: the guard's per-CR final decisions from its JSON lines, one per line
decisions() {
  grep '"decision":"done"' "$1" | sed -E \
    -e 's/.*"name":"([^"]*)".*"outcome":"([^"]*)".*"attempts":([0-9]+)(.*)/\1|\2|\3|\4/' |
  while IFS='|' read -r name outcome attempts rest; do
    class=$(sed -nE 's/.*"class":"([^"]*)".*/\1/p' <<<"$rest")
    rule=$(sed -nE 's/.*"rule":"([^"]*)".*/\1/p' <<<"$rest")
    printf '%-18s %-10s failed attempts: %s%s\n' "$name" "$outcome" "$attempts" \
      "${class:+, last failure $class${rule:+: $rule}}"
  done
}

# --- 1. install -------------------------------------------------------------------------------
use_helm helm3 "$helm3"
use_helm helm4 "$helm4"
step 1 "Install releases with Terraform modules through the post-renderer tfops-render"
echo "  ${dim}'shop' shows the guard (step 3), 'plain' plain Helm (step 2), 'shop' on Helm 3 step 5${reset}"
ok=0
if install "$helm4" shop shop && install "$helm4" plain shop &&
   (use_helm helm3 "$helm3"; install "$helm3" shop shop-h3) &&
   wait_ready "$helm4" shop shop && wait_ready "$helm4" plain shop && wait_ready "$helm4" shop shop-h3; then
  run "$helm4" tfops status shop -n shop
  ok=1
fi
verdict "install" "every module of the three releases applied and Ready" "$ok"

# --- 2. without the guard ---------------------------------------------------------------------
step 2 "Without tfops: plain Helm deletes the CRs, their source and runner ServiceAccount in one batch"
run "$helm4" uninstall plain -n shop --no-hooks --wait --timeout 10s
plain_code=$code plain_out=$out
show "$helm4" tfops doctor plain -n shop
"$helm4" tfops doctor plain -n shop >"$work/doctor.out" 2>&1 || true
grep -E '^Terraform|BLOCKING' "$work/doctor.out" | indent
ok=0
if [ "$plain_code" != 0 ] && grep -q 'still exists' <<<"$plain_out" &&
   grep -q 'source-missing' "$work/doctor.out" && grep -q 'runner-sa-missing' "$work/doctor.out"; then
  ok=1
fi
verdict "no guard" "helm uninstall timed out (exit $plain_code); both CRs stuck with their finalizers, source and ServiceAccount gone" "$ok"

# --- 3. with the guard ------------------------------------------------------------------------
step 3 "With tfops: helm uninstall runs the guard (pre-delete hook Job) first"
run "$helm4" uninstall shop -n shop --timeout 5m
uninstall_code=$code
guard_log=$work/job-logs/shop.shop-tfops-guard.log
for _ in $(seq 20); do [ -s "$guard_log" ] && break; sleep 0.2; done
echo "  ${dim}the guard's decisions (its Job log, one JSON line per decision):${reset}"
touch "$guard_log"
decided=$(decisions "$guard_log")
indent <<<"$decided"
echo "  ${dim}why the IAM failure was retried and the bucket's was not (the classifier, as the guard ran it):${reset}"
iam_error="Error: deleting IAM Role Policy Attachment (shop-reader/arn:aws:iam::123456789012:policy/shop-read): operation error IAM: DetachRolePolicy, https response error StatusCode: 400, RequestID: 5f1c2d3e, api error Throttling: Rate exceeded"
show "$helm4" tfops explain --reason TFExecApplyFailed --message "\"$iam_error\""
"$helm4" tfops explain --reason TFExecApplyFailed --message "$iam_error" 2>&1 | grep -E '^(class|matched|why|next):' | indent
run "$helm4" tfops orphans list -n shop
ok=0
if [ "$uninstall_code" = 0 ] &&
   grep -qE '^shop-bucket-iam +destroyed +failed attempts: [1-9].*transient' <<<"$decided" &&
   grep -qE '^shop-bucket +orphaned .*permanent' <<<"$decided" &&
   grep -qE 'shop-bucket +orphaned +open' <<<"$out"; then
  ok=1
fi
verdict "guard" "uninstall finished (exit $uninstall_code): IAM retried then destroyed, bucket orphaned with its reason in the ledger" "$ok"

# --- 4. fix and clean up the orphan -----------------------------------------------------------
step 4 "The cause is fixed (the bucket was emptied): destroy the orphan from the ledger"
cat >"$work/behaviors.yaml" <<'EOF'
- {name: shop-bucket, behavior: {destroyDuration: 3s, destroy: [{outcome: succeed}]}}
EOF
for _ in $(seq 20); do grep -q 'behaviour of shop/shop-bucket changed' "$work/testcluster.err" && break; sleep 0.2; done
run "$helm4" tfops orphans destroy shop-bucket -n shop
destroy_code=$code
run "$helm4" tfops orphans list -n shop
ok=0
if [ "$destroy_code" = 0 ] && grep -qE 'shop-bucket +orphaned +destroyed' <<<"$out"; then
  ok=1
fi
verdict "recovery" "orphans destroy re-created the CR, the destroy ran, the ledger entry says destroyed" "$ok"

# --- 5. Helm 3 --------------------------------------------------------------------------------
use_helm helm3 "$helm3"
step 5 "Helm 3 (it never runs hooks a post-renderer adds): helm tfops uninstall runs the guard client-side"
run "$helm3" tfops uninstall shop -n shop-h3 --timeout 5m
h3_code=$code
run "$helm3" tfops orphans list -n shop-h3
ok=0
if [ "$h3_code" = 0 ] && ! "$helm3" status shop -n shop-h3 >/dev/null 2>&1 &&
   grep -qE 'shop-bucket +orphaned +open' <<<"$out"; then
  ok=1
fi
verdict "helm 3" "helm tfops uninstall finished: same decisions, release gone, the bucket in the ledger" "$ok"

# --- summary ----------------------------------------------------------------------------------
echo
echo "${bold}Summary${reset} ($((SECONDS - t0))s)"
printf '  %-3s %-10s %-7s %5s  %s\n' "#" "step" "result" "time" "claim"
i=0
for r in "${results[@]}"; do
  i=$((i + 1))
  IFS='|' read -r label claim res took <<<"$r"
  printf '  %-3s %-10s %-7s %4ss  %s\n' "$i" "$label" "$res" "$took" "$claim"
done
if [ "$keep" = 1 ]; then
  echo
  echo "${bold}The test cluster keeps running${reset} (pid $cluster_pid; stop it with: kill $cluster_pid)."
  echo "  export KUBECONFIG=$KUBECONFIG"
  echo "  export HELM_DATA_HOME=$work/helm4/data HELM_CONFIG_HOME=$work/helm4/config HELM_CACHE_HOME=$work/helm4/cache HELM_PLUGINS=$work/helm4/data/plugins"
  echo "  $helm4 tfops status -A; $helm4 tfops orphans list -A; $helm4 tfops doctor plain -n shop"
  echo "  (release 'plain' in namespace shop is still deadlocked: 'helm tfops uninstall plain -n shop' clears"
  echo "  it; its IAM module says on-failure=block, so the guard first stops and says what to do)"
fi
echo "On a real cluster (kind + Flux + tofu-controller v0.16.5): scripts/real-cluster.sh up && scripts/real-cluster.sh demo"
exit "$failed"
