#!/usr/bin/env bash
# All benchmarks (figures only; no test asserts timings):
#   1. post-renderer throughput on the largest corpus charts, side by side with `kubectl kustomize`
#   2. `tfops status -A` over 1,000 Terraform CRs in 50 namespaces against the test API server
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/bench-render.sh"
echo
"$here/bench-status.sh"
