#!/bin/sh
# Install/update hook of the `tfops` Helm plugin: makes sure plugin/tfops.sh finds a tfops
# binary. Nothing is built when one is already there ($TFOPS_BIN, bin/tfops,
# target/release/tfops); otherwise builds it with cargo (`cargo build --release --bin tfops`).
root=$(cd "$(dirname "$0")/.." && pwd -P) || exit 1
if [ -n "${TFOPS_BIN:-}" ]; then
  if [ -x "$TFOPS_BIN" ]; then
    echo "helm-tfops: using TFOPS_BIN=$TFOPS_BIN"
    exit 0
  fi
  echo "helm-tfops: TFOPS_BIN=$TFOPS_BIN is not an executable file" >&2
  exit 1
fi
for candidate in "$root/bin/tfops" "$root/target/release/tfops"; do
  if [ -x "$candidate" ]; then
    echo "helm-tfops: using $candidate"
    exit 0
  fi
done
if command -v cargo >/dev/null 2>&1; then
  echo "helm-tfops: building tfops (cargo build --release --bin tfops) in $root"
  (cd "$root" && cargo build --release --locked --bin tfops) || {
    echo "helm-tfops: the build failed; fix it and run 'helm plugin update tfops', or set TFOPS_BIN" >&2
    exit 1
  }
  exit 0
fi
if command -v tfops >/dev/null 2>&1; then
  echo "helm-tfops: using $(command -v tfops)"
  exit 0
fi
echo "helm-tfops: no tfops binary and no cargo to build one: install Rust (https://rustup.rs) and run 'helm plugin update tfops', or set TFOPS_BIN" >&2
exit 1
