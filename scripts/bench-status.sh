#!/usr/bin/env bash
# Benchmark `tfops status -A` over 1,000 Terraform CRs in 50 namespaces seeded into the
# project's in-process test API server (real HTTP). Builds in release mode; prints the time and
# the number of LIST requests, in-process and for the real binary end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin tfops
TFOPS_BIN="$PWD/target/release/tfops" cargo bench -p tfops-status --bench status_all
