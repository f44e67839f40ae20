#!/usr/bin/env bash
# The chaos run: every writing verb of kubectl mesh-upgrade, through the real
# kubectl's plugin discovery, against fresh mesh-sim clusters that answer
# 429/500/503, conflict, cut watches, slow down, store a write then fail,
# or whose plugin run is interrupted; each case's end state is checked.
# Prints the table (verb x fault set x seeds) and writes it to $OUT
# (default target/chaos.md). Needs kubectl on PATH. See
# mesh-sim/examples/chaos.rs for the cases and the checks.
#
#   mesh-sim/bench/chaos.sh [--seeds 20] [--jobs 2] [--verb V] [--faults NAME]
#   PROFILE=dev mesh-sim/bench/chaos.sh --small    # debug builds, one seed per case
#
# CHAOS_KEEP=1 keeps the directory (request log, fault file, kubeconfig,
# the plugin's stderr) of every wrong case.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-target/chaos.md}
PROFILE=${PROFILE:-release}
command -v kubectl >/dev/null || { echo "chaos: kubectl is not on PATH" >&2; exit 1; }
case "$PROFILE" in
  release) dir=target/release ;;
  dev) dir=target/debug ;;
  *) echo "chaos: PROFILE is release or dev" >&2; exit 2 ;;
esac
cargo build --locked --profile "$PROFILE" -p kubectl-mesh-upgrade --bin kubectl-mesh_upgrade
cargo build --locked --profile "$PROFILE" -p mesh-sim --bin mesh-sim --example chaos
mkdir -p "$(dirname "$OUT")"
"$dir/examples/chaos" \
    --plugin "$dir/kubectl-mesh_upgrade" \
    --mesh-sim "$dir/mesh-sim" \
    --kubectl "$(command -v kubectl)" \
    --out "$OUT" "$@"
echo "written to $OUT"
