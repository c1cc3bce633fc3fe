#!/bin/sh
# Runs the tfops binary for the Helm plugins (`helm tfops …` and the `tfops-render`
# post-renderer). Looks for it in this order:
#   $TFOPS_BIN, <plugin root>/bin/tfops (what the install hook plugin/install-binary.sh puts
#   there: the release binary, or a link to a source build), <plugin root>/target/release/tfops
#   (`make build`), `tfops` on PATH.
root=$(cd "$(dirname "$0")/.." && pwd -P) || exit 1
if [ -n "${TFOPS_BIN:-}" ]; then
  bin=$TFOPS_BIN
elif [ -x "$root/bin/tfops" ]; then
  bin=$root/bin/tfops
elif [ -x "$root/target/release/tfops" ]; then
  bin=$root/target/release/tfops
elif command -v tfops >/dev/null 2>&1; then
  bin=$(command -v tfops)
else
  echo "helm-tfops: the tfops binary was not found (looked at \$TFOPS_BIN, $root/bin/tfops, $root/target/release/tfops and PATH); run 'make build' in $root or set TFOPS_BIN" >&2
  exit 127
fi
exec "$bin" "$@"
