#!/usr/bin/env bash
# The tour: a canary Istio upgrade, start to finish, then an ambient mesh's
# ztunnel upgraded node by node, on the simulated cluster.
#
#   ./mesh-sim/tour.sh            # from the repository root
#
# Builds the plugin and mesh-sim, starts mesh-sim with the `canary` scenario
# (two istiod revisions, namespaces on either, blue/green ingress gateways),
# puts the plugin on PATH as kubectl-mesh_upgrade and drives the upgrade
# through the real kubectl's plugin discovery: status, relabel, restart,
# gateway switch, status again. Then it starts the `ambient` scenario (three
# nodes whose ztunnels run 1.22.3 under a 1.23.1 OnDelete template) and rolls
# ztunnel one node at a time: status, the plan, the roll, status again.
# Everything runs on 127.0.0.1 and stops when the script ends.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v kubectl >/dev/null || { echo "tour: kubectl is not on PATH" >&2; exit 1; }

echo "# building the plugin and mesh-sim (first time: a few minutes)" >&2
cargo build --quiet --bin kubectl-mesh_upgrade -p kubectl-mesh-upgrade
cargo build --quiet --bin mesh-sim -p mesh-sim

work="$(mktemp -d)"
mkdir -p "$work/bin"
cp target/debug/kubectl-mesh_upgrade "$work/bin/"
sim_pid=""
cleanup() {
    if [ -n "$sim_pid" ]; then
        kill "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Starts mesh-sim with scenario $1 (stopping the one before) and points
# KUBECONFIG at it.
start_sim() {
    if [ -n "$sim_pid" ]; then
        kill "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
    fi
    rm -f "$work/sim.log"
    target/debug/mesh-sim serve --scenario "$1" --kubeconfig "$work/kubeconfig-$1" >"$work/sim.log" 2>&1 &
    sim_pid=$!
    for _ in $(seq 100); do
        grep -q '^kubeconfig:' "$work/sim.log" 2>/dev/null && break
        kill -0 "$sim_pid" 2>/dev/null || { cat "$work/sim.log" >&2; exit 1; }
        sleep 0.1
    done
    grep -q '^kubeconfig:' "$work/sim.log" || { echo "tour: mesh-sim did not start" >&2; cat "$work/sim.log" >&2; exit 1; }
    export KUBECONFIG="$work/kubeconfig-$1"
}

start_sim canary
export PATH="$work/bin:$PATH"

# Commands in bold only on a terminal that shows it (no escape bytes in a pipe).
bold="" plain=""
if [ -t 1 ] && [ "${TERM:-dumb}" != dumb ] && [ -z "${NO_COLOR:-}" ]; then
    bold=$'\033[1m' plain=$'\033[0m'
fi
step() {
    printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"
    "$@" || echo "(exit code $?)"
}

step kubectl get namespaces -L istio-injection -L istio.io/rev
step kubectl mesh-upgrade status -A
# Canary step 1: move a namespace to the new revision (and see what it would do first).
step kubectl mesh-upgrade relabel -n shop --to 1-22-3 --dry-run
step kubectl mesh-upgrade relabel -n shop --to 1-22-3 --yes
# Canary step 2: restart exactly the workloads whose sidecars are now stale.
step kubectl mesh-upgrade restart-sidecars -n shop,pay --delete-pods --yes
# Canary step 3: blue/green ingress cut-over, checked, with a way back.
step kubectl mesh-upgrade gateway-switch -n istio-gateways --to 1-22-3 --yes
# Canary step 4: the Gateway API ingress Gateway moves by its istio.io/rev; istiod
# re-renders and rolls it, and the move is verified (or put back).
step kubectl mesh-upgrade gateway-switch -n edge --gateway public --to 1-22-3 --yes
step kubectl mesh-upgrade status -A
echo
echo "# the way back: kubectl mesh-upgrade gateway-switch -n edge --gateway public --rollback --yes; kubectl mesh-upgrade gateway-switch -n istio-gateways --rollback --yes; kubectl mesh-upgrade relabel -n shop --undo --yes"

# Ambient mode: istiod 1-23-1 runs beside 1-22-3, the ztunnel DaemonSet's
# template moved to 1.23.1 with updateStrategy OnDelete, and every node still
# runs its 1.22.3 ztunnel.
echo
echo "# ambient mode: a new cluster (scenario ambient)"
start_sim ambient
step kubectl get nodes
step kubectl mesh-upgrade status -A
# The plan: nodes in order, the pods each drain evicts and the budgets that pace them.
step kubectl mesh-upgrade ztunnel-roll --dry-run
# One node at a time: cordon, evict, replace ztunnel, wait until Ready, uncordon.
step kubectl mesh-upgrade ztunnel-roll --yes
step kubectl get nodes
step kubectl mesh-upgrade status -A
echo
echo "# Ctrl-C during a roll leaves no node cordoned unsaid: the report names it, with kubectl uncordon <node>; running ztunnel-roll again finishes it"
