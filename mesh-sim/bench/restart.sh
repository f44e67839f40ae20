#!/usr/bin/env bash
# The restart benchmark: the seeds' bash loop (real kubectl) against
# `kubectl mesh-upgrade restart-sidecars` at --concurrency 1 and 10, each on
# a fresh mesh-sim cluster of 200 stale and 50 up-to-date Deployments of 3
# replicas. Prints a table and writes it to $OUT (default
# target/bench-restart.md). Needs kubectl on PATH.
#
#   mesh-sim/bench/restart.sh [--stale N] [--up-to-date N] [--replicas R]
#
# What is measured and how (see mesh-sim/examples/restart_bench.rs):
# - wall time: from the start until every pod runs the new proxy; the loop
#   does not wait, so its clock runs until the simulated cluster has settled
#   with every pod on the new proxy; the plugin's until it exits (it waits
#   for each rollout and verifies), then confirmed the same way;
# - requests by verb: from the simulated API server's request log, so
#   kubectl's discovery requests count too ("discovery");
# - restarted needlessly: Deployments patched although every pod already ran
#   the new proxy when the run started.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-target/bench-restart.md}  # mesh-sim/bench/restart.md holds the committed figures
command -v kubectl >/dev/null || { echo "bench-restart: kubectl is not on PATH" >&2; exit 1; }
cargo build --release -p kubectl-mesh-upgrade --bin kubectl-mesh_upgrade
cargo build --release -p mesh-sim --example restart_bench
mkdir -p "$(dirname "$OUT")"
target/release/examples/restart_bench \
    --plugin target/release/kubectl-mesh_upgrade \
    --loop mesh-sim/bench/seed-restart-loop.sh \
    --out "$OUT" "$@"
echo "written to $OUT"
