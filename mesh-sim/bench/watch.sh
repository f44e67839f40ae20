#!/usr/bin/env bash
# `kubectl mesh-upgrade status -A --watch` on a big generated cluster while a
# burst of rollouts runs: the view's peak memory, its CPU while the burst
# runs, how many screens it drew and which requests it made.
#
#   mesh-sim/bench/watch.sh                          # 50,000 pods, 10 namespaces restarted
#   PODS=50000 BURST_NAMESPACES=20 FORMAT=json mesh-sim/bench/watch.sh
#
# Steps (release builds, everything on 127.0.0.1):
#   1. mesh-sim serve --generate --pods $PODS, with a request log and the
#      read-only `observer` user, whom the view runs as (so its requests are
#      told apart from the burst's);
#   2. the view, through the real kubectl, timed by GNU time, stdout to a file
#      (FORMAT=table: a pipe's changed rows; FORMAT=json: one document per change);
#   3. once it watches pods: the burst, `restart-sidecars --all --yes
#      --concurrency 50` over the first $BURST_NAMESPACES namespaces (every
#      workload in them rolled out, 100 a namespace), which returns when every
#      rollout is done and verified;
#   4. five more seconds for the last screen, then Ctrl-C (SIGINT).
# CPU is the view's user+system time from /proc between the burst's start and
# end, over the burst's wall time (1.00 = one core).
set -euo pipefail

PODS="${PODS:-50000}"
BURST_NAMESPACES="${BURST_NAMESPACES:-10}"
FORMAT="${FORMAT:-table}"
KUBECTL="${KUBECTL:-/usr/bin/kubectl}"
TIME=/usr/bin/time

cd "$(dirname "$0")/../.."
[ -x "$KUBECTL" ] || { echo "watch.sh: kubectl not found at $KUBECTL" >&2; exit 1; }
[ -x "$TIME" ] || { echo "watch.sh: GNU time not found at $TIME" >&2; exit 1; }

PROFILE="${PROFILE:-release}"   # PROFILE=dev: debug builds, to try the script quickly
echo "building ($PROFILE)..." >&2
if [ "$PROFILE" = dev ]; then
    build=(cargo build --quiet) dir=target/debug
else
    build=(cargo build --quiet --release) dir=target/release
fi
"${build[@]}" -p kubectl-mesh-upgrade --bin kubectl-mesh_upgrade
"${build[@]}" -p mesh-sim --bin mesh-sim

work="$(mktemp -d)"
mkdir -p "$work/bin"
cp "$dir/kubectl-mesh_upgrade" "$work/bin/"
export PATH="$work/bin:$PATH"
sim_pid=""
view_pid=""
cleanup() {
    [ -n "$view_pid" ] && kill -INT "$view_pid" 2>/dev/null || true
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # what, command...
    local what=$1
    shift
    for _ in $(seq 1200); do
        "$@" && return 0
        sleep 0.5
    done
    echo "watch.sh: gave up waiting for $what" >&2
    exit 1
}

echo "starting mesh-sim with about $PODS pods..." >&2
"$dir/mesh-sim" serve --generate --pods "$PODS" \
    --kubeconfig "$work/kubeconfig" --observer-kubeconfig "$work/observer" \
    --request-log "$work/requests.jsonl" > "$work/sim.log" 2>&1 &
sim_pid=$!
wait_for "mesh-sim" grep -q '^kubeconfig:' "$work/sim.log"
export KUBECONFIG="$work/kubeconfig"

output=()
[ "$FORMAT" = json ] && output=(-o json)
started=$(date +%s.%N)
KUBECONFIG="$work/observer" "$TIME" -f "%e %U %S %M" -o "$work/time" \
    "$KUBECTL" mesh-upgrade status -A --watch -v=2 "${output[@]}" > "$work/view.out" 2> "$work/view.err" &
time_pid=$!
wait_for "the view to start" pgrep -P "$time_pid" > /dev/null
view_pid=$(pgrep -P "$time_pid")
wait_for "the view to watch pods" sh -c "grep '\"user\":\"observer\"' '$work/requests.jsonl' | grep 'watch=true' | grep -q '/pods'"
first_screen=$(echo "$(date +%s.%N) - $started" | bc)
rss_first=$(awk '/VmRSS/ { print $2 }' "/proc/$view_pid/status")

ticks() { awk '{ print $14 + $15 }' "/proc/$view_pid/stat"; }
hz=$(getconf CLK_TCK)
namespaces=$("$KUBECTL" get namespaces -o name | sed 's|namespace/||' | grep '^bench-' | head -n "$BURST_NAMESPACES" | paste -sd,)
echo "burst: restart-sidecars --all over $namespaces" >&2
cpu0=$(ticks)
t0=$(date +%s.%N)
"$KUBECTL" mesh-upgrade restart-sidecars -n "$namespaces" --all --yes --concurrency 50 > "$work/burst.out" 2> "$work/burst.err"
t1=$(date +%s.%N)
cpu1=$(ticks)
restarted=$(grep -c ' restarted ' "$work/burst.out" || true)
sleep 5
rss_peak=$(awk '/VmHWM/ { print $2 }' "/proc/$view_pid/status")
kill -INT "$view_pid"
set +e
wait "$time_pid"
code=$?
set -e
view_pid=""
# GNU time's last line (a line before it says the command was interrupted).
read -r wall user sys max_kb < <(tail -n 1 "$work/time")

burst_wall=$(echo "$t1 - $t0" | bc)
burst_cpu=$(echo "($cpu1 - $cpu0) / $hz" | bc -l)
# -v=2 logs each screen built after the first: "N changes applied, the screen took M ms".
screens=$(grep -c 'changes applied, the screen took' "$work/view.err" || true)
build_ms=$(grep -o 'the screen took [0-9]*' "$work/view.err" | awk '{ print $4 }' | sort -n |
    awk '{ v[NR] = $1 } END { if (NR) printf "%d/%d", v[int((NR + 1) / 2)], v[NR] }')
view_requests() { grep '"user":"observer"' "$work/requests.jsonl"; }
lists=$(view_requests | grep -v 'watch=true' | grep -c 'limit=' || true)
watches=$(view_requests | grep -c 'watch=true' || true)
first_watch=$(view_requests | grep -n 'watch=true' | head -1 | cut -d: -f1)
late_lists=$(view_requests | tail -n "+$first_watch" | grep -v 'watch=true' | grep -c 'limit=' || true)

printf '\nstatus -A --watch (%s) on %s pods; burst: %s workloads restarted in %s namespaces\n' \
    "$FORMAT" "$PODS" "$restarted" "$BURST_NAMESPACES"
printf '| first screen | RSS after it | peak RSS | burst wall time | view CPU during the burst | CPU share | screens (build ms median/max) | LIST pages | WATCH requests | LISTs after the first WATCH | exit |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
printf '| %.1f s | %.0f MB | %.0f MB | %.1f s | %.1f s | %.2f | %s (%s) | %s | %s | %s | %s |\n' \
    "$first_screen" "$(echo "$rss_first / 1024" | bc -l)" "$(echo "$max_kb / 1024" | bc -l)" \
    "$burst_wall" "$burst_cpu" "$(echo "$burst_cpu / $burst_wall" | bc -l)" \
    "$screens" "$build_ms" "$lists" "$watches" "$late_lists" "$code"
echo "(peak RSS from /proc VmHWM before Ctrl-C: $((rss_peak / 1024)) MB; whole run: ${wall} s wall, ${user} s user, ${sys} s system)"
