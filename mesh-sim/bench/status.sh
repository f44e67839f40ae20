#!/usr/bin/env bash
# Benchmark `kubectl mesh-upgrade status -A -o json` against
# `kubectl get pods -A -o json` on the same generated mesh-sim cluster.
#
#   mesh-sim/bench/status.sh                 # 50,000 pods, 5 runs of each
#   PODS=5000 RUNS=3 mesh-sim/bench/status.sh
#
# Both commands go through the real kubectl (the plugin via kubectl's plugin
# discovery), write to /dev/null, and are timed by GNU time. Prints the median
# wall time of each, their ratio (target: status within 1.5x) and the
# plugin's peak resident memory (target: under 300 MB).
set -euo pipefail

PODS="${PODS:-50000}"
RUNS="${RUNS:-5}"
KUBECTL="${KUBECTL:-/usr/bin/kubectl}"
TIME=/usr/bin/time

cd "$(dirname "$0")/../.."
[ -x "$KUBECTL" ] || { echo "mesh-sim/bench/status.sh: kubectl not found at $KUBECTL" >&2; exit 1; }
[ -x "$TIME" ] || { echo "mesh-sim/bench/status.sh: GNU time not found at $TIME" >&2; exit 1; }

echo "building (release)..." >&2
cargo build --quiet --release -p kubectl-mesh-upgrade --bin kubectl-mesh_upgrade
cargo build --quiet --release -p mesh-sim --example generated_cluster

work="$(mktemp -d)"
mkdir -p "$work/bin"
cp target/release/kubectl-mesh_upgrade "$work/bin/"

echo "generating a cluster of about $PODS pods..." >&2
started=$(date +%s)
coproc SIM { exec target/release/examples/generated_cluster "$PODS" "$work/kubeconfig"; }
sim_pid=$SIM_PID
sim_in=${SIM[1]}
cleanup() {
    # Closing the simulator's stdin stops it; then wait for that one process.
    exec {sim_in}>&- 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
read -r ready <&"${SIM[0]}"
[ "$ready" = "ready" ] || { echo "mesh-sim/bench/status.sh: the simulator did not start" >&2; exit 1; }
echo "cluster ready in $(( $(date +%s) - started ))s" >&2

export KUBECONFIG="$work/kubeconfig"
export PATH="$work/bin:$PATH"

# One timed run: prints "<seconds> <peak KB>".
measure() {
    "$TIME" -f "%e %M" -o "$work/time" "$@" > /dev/null
    cat "$work/time"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: > "$work/status"
: > "$work/pods"
for run in $(seq "$RUNS"); do
    measure "$KUBECTL" mesh-upgrade status -A -o json >> "$work/status"
    measure "$KUBECTL" get pods -A -o json >> "$work/pods"
    echo "run $run: status $(tail -1 "$work/status" | cut -d' ' -f1)s, get pods $(tail -1 "$work/pods" | cut -d' ' -f1)s" >&2
done

status_median=$(cut -d' ' -f1 "$work/status" | median)
pods_median=$(cut -d' ' -f1 "$work/pods" | median)
status_peak_kb=$(cut -d' ' -f2 "$work/status" | sort -n | tail -1)
pods_peak_kb=$(cut -d' ' -f2 "$work/pods" | sort -n | tail -1)
pod_count=$("$KUBECTL" get pods -A --no-headers | wc -l)

awk -v pods="$pod_count" -v runs="$RUNS" -v s="$status_median" -v k="$pods_median" \
    -v sm="$status_peak_kb" -v km="$pods_peak_kb" 'BEGIN {
    printf "pods in the cluster:                        %d\n", pods
    printf "runs of each command:                       %d\n", runs
    printf "kubectl mesh-upgrade status -A -o json:     median %.2fs, peak %.0f MB\n", s, sm / 1024
    printf "kubectl get pods -A -o json:                median %.2fs, peak %.0f MB\n", k, km / 1024
    printf "ratio status / get pods (target <= 1.5):    %.2f\n", (k > 0 ? s / k : 0)
}'
