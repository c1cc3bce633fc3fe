#!/usr/bin/env bash
# `make demo-render` (after `make helm build`): the post-renderer's chart tour. Installs the helm-tfops plugins into a throw-away Helm
# home for Helm 4.1.4 and for Helm 3.16.1, runs `helm tfops setup`, renders every chart of
# charts-example/ through real Helm with `--post-renderer tfops-render` and the catalog config,
# and prints what the post-renderer injected.
# Environment: HELM4_BIN, HELM3_BIN (default .cache/helm/<version>/helm), TFOPS_BIN (default
# target/release/tfops), KEEP=1 keeps the temp folder (rendered manifests) for a closer look.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "$0")/.." && pwd)
helm4=${HELM4_BIN:-$root/.cache/helm/v4.1.4/helm}
helm3=${HELM3_BIN:-$root/.cache/helm/v3.16.1/helm}
export TFOPS_BIN=${TFOPS_BIN:-$root/target/release/tfops}
catalog=$root/charts-example/catalog.yaml

for f in "$helm4" "$helm3" "$TFOPS_BIN"; do
  [ -x "$f" ] || { echo "demo: $f is missing: run 'make helm build' first (make demo does)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/tfops-demo.XXXXXX")
if [ "${KEEP:-}" = 1 ]; then
  echo "demo: keeping $work"
else
  trap 'rm -rf "$work"' EXIT
fi

bold=$'\e[1m'; dim=$'\e[2m'; reset=$'\e[0m'
[ -t 1 ] || { bold=; dim=; reset=; }

# Objects of a rendered stream, one "Kind/name[ (hook)]" per line. Helm's output is regular:
# top-level `kind:`, `metadata:` with `name:` two spaces in, and hook annotations.
objects() {
  awk '
    function flush() {
      if (kind != "") print kind "/" name (hook != "" ? "  [helm.sh/hook: " hook "]" : "")
      kind = ""; name = ""; hook = ""; inmeta = 0
    }
    /^---/ { flush(); next }
    /^kind:/ { kind = $2; next }
    /^metadata:/ { inmeta = 1; next }
    /^[^ #]/ { inmeta = 0 }
    inmeta && /^  name:/ { name = $2; gsub(/"/, "", name) }
    /^    helm.sh\/hook:/ { hook = $2; gsub(/"/, "", hook) }
    END { flush() }
  ' "$1" | sort
}

# helm home per version, isolated from the user's own Helm set-up
setup_home() { # version-dir
  local h=$work/$1
  mkdir -p "$h/cache" "$h/config" "$h/data/plugins" "$h/home/.local/bin"
  export HOME=$h/home HELM_CACHE_HOME=$h/cache HELM_CONFIG_HOME=$h/config HELM_DATA_HOME=$h/data \
    HELM_PLUGINS=$h/data/plugins PATH=$h/home/.local/bin:$ORIG_PATH
}
ORIG_PATH=$PATH
ns=tfops-demo

render_chart() { # helm chart release
  local helm=$1 chart=$2 release=$3 out=$work/$4-$2
  "$helm" template "$release" "$root/charts-example/$chart" -n "$ns" >"$out.plain.yaml"
  # stderr opened for appending: tfops-render can add what helm keeps to itself (warnings)
  : >"$out.err"
  if ! "$helm" template "$release" "$root/charts-example/$chart" -n "$ns" \
      --post-renderer tfops-render --post-renderer-args "--config=$catalog" \
      >"$out.yaml" 2>>"$out.err"; then
    echo "  ${bold}$chart${reset}: FAILED"; sed 's/^/    /' "$out.err"; return 1
  fi
  echo "  ${bold}$chart${reset} (release $release)"
  objects "$out.plain.yaml" >"$out.plain.objects"
  objects "$out.yaml" >"$out.objects"
  local declared
  declared=$(grep -c '^TerraformModule/' "$out.plain.objects" || true)
  if cmp -s "$out.plain.yaml" "$out.yaml"; then
    echo "    no Terraform content: output byte-identical to plain 'helm template'"
    return 0
  fi
  if [ "$declared" = 0 ] && cmp -s "$out.plain.objects" "$out.objects" && ! grep -q '^Terraform/' "$out.objects"; then
    echo "    no Terraform content: passed through unchanged (Helm 4 re-serialises any post-renderer's output)"
    return 0
  fi
  [ "$declared" = 0 ] || echo "    ${dim}$declared TerraformModule declaration(s) expanded (not sent to the API server)${reset}"
  comm -23 "$out.objects" <(sed 's/  \[.*//' "$out.plain.objects") | sed "s/^/    + /"
  while read -r obj; do
    if grep -q '^Terraform/' <<<"$obj" && grep -qx "$obj" "$out.plain.objects"; then
      echo "    ~ $obj  (adopted: labels, policy annotations, guard)"
    fi
  done <"$out.objects"
  if [ -s "$out.err" ]; then sed 's/^/    stderr: /' "$out.err"; fi
  if [ "$chart" = orders-app ] && grep -q '^Job/' "$out.objects"; then
    echo "    ${dim}the guard Job:${reset}"
    document Job "$out.yaml" | sed 's/^/      /'
  fi
}

# The first document of kind $1 in stream $2.
document() {
  awk -v kind="$1" '
    /^---/ { if (found) exit; doc = ""; next }
    { doc = doc $0 "\n" }
    $0 == "kind: " kind { found = 1 }
    END { if (found) printf "%s", doc }
  ' "$2"
}

status=0
for pair in "v4.1.4:$helm4" "v3.16.1:$helm3"; do
  version=${pair%%:*}; helm=${pair#*:}
  setup_home "$version"
  echo
  echo "${bold}== Helm $version ==${reset}"
  "$helm" plugin install "$root" >/dev/null
  echo "  \$ helm tfops setup"
  "$helm" tfops setup | sed 's/^/    /'
  echo "  \$ helm plugin list"
  "$helm" plugin list | sed 's/^/    /'
  for chart in orders-app bucket-iam legacy-terraform plain-app; do
    render_chart "$helm" "$chart" "demo-${chart%%-*}" "$version" || status=1
  done
done

echo
if [ "$status" = 0 ]; then
  echo "${bold}Summary${reset}: on Helm 4 the guard (ServiceAccount, Role, RoleBinding and the pre-delete hook Job"
  echo "running 'tfops guard') is part of every release with Terraform; Helm 3 never runs hooks a"
  echo "post-renderer adds, so there the CRs are marked 'tfops.dev/guard: client' and the warning says to"
  echo "uninstall with 'helm tfops uninstall'."
else
  echo "demo: some charts failed to render (see above)" >&2
fi
echo "The guard at work (real Helm 4 and 3, the plugins, the test API server, simulated tofu-controller):"
echo "  make demo"
echo "On a real cluster (kind + Flux + tofu-controller v0.16.5): scripts/real-cluster.sh up && scripts/real-cluster.sh demo"
exit "$status"
