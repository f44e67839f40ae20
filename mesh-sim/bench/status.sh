#!/usr/bin/env bash
# The read benchmark of `kubectl mesh-upgrade status -A -o json`, at several
# cluster sizes, against two references measured in the same run on the same
# generated mesh-sim cluster:
#
# - the floor: every page of the pod LIST (limit=500 + continue) fetched over
#   one HTTPS connection and not decoded (mesh-sim/examples/floor.rs): no
#   client reads the pods faster than the server sends them;
# - the floor in protobuf: the same pages asked for as the plugin asks for
#   pods (`Accept: application/vnd.kubernetes.protobuf, application/json`,
#   `floor --protobuf`): the floor for a client that reads protobuf. The
#   simulated API server encodes each pod's protobuf once and keeps it, as
#   an API server serves from objects it holds; one undecoded LIST before
#   the timed runs lets it do so;
# - `kubectl get pods -A -o json` through the real kubectl (skipped above
#   KUBECTL_MAX pods: it needs many GB there).
#
# Beside status, each run times `restart-sidecars -A --dry-run -o json`:
# the same LISTs and the restart plan, nothing written (its read phase).
#
# Then the write-scale benchmark: 2,000 stale Deployments in 100 namespaces,
# `restart-sidecars -A --concurrency 20` (mesh-sim/examples/restart_bench.rs):
# requests by verb from the simulated API server's log, requests per
# restarted workload, wall time, the plugin's own CPU seconds and peak memory.
#
#   mesh-sim/bench/status.sh                         # 10k, 50k, 150k pods; 3 runs each; writes
#   SIZES=50000 RUNS=5 WRITES=0 mesh-sim/bench/status.sh
#   PLUGIN=path/to/kubectl-mesh_upgrade mesh-sim/bench/status.sh   # another build of the plugin
#
# Every command writes to /dev/null and is timed by GNU time (wall seconds,
# peak resident memory, the command's CPU seconds); the simulated API
# server's CPU seconds during each command are read from /proc. Each size
# gets a fresh cluster and the runs take turns (floor, floor in protobuf,
# scan, status, kubectl, floor, ...), so a change in the machine's load touches every
# command alike. Medians are printed, with the ratios status / floor
# (target <= 1.5), status / the protobuf floor and status / kubectl; the plugin's peak memory is the
# highest of its runs (target <= 150 MB at 150,000 pods).
#
# A third reference shows what bounds the ratio on the machine it runs on:
# the floor's client also scanning every page's JSON with serde_json
# (`floor --scan`, nothing kept, on a second thread while the next page is
# fetched). Client and server share the machine's cores, so no client that
# reads the pods' JSON can finish before (server CPU + scanning client's
# CPU) / cores, nor before the floor; the script prints that bound beside
# the ratios.
set -euo pipefail

SIZES="${SIZES:-10000 50000 150000}"
RUNS="${RUNS:-3}"
KUBECTL_MAX="${KUBECTL_MAX:-50000}"
WRITES="${WRITES:-1}"
KUBECTL="${KUBECTL:-/usr/bin/kubectl}"
TIME=/usr/bin/time

cd "$(dirname "$0")/../.."
[ -x "$KUBECTL" ] || { echo "mesh-sim/bench/status.sh: kubectl not found at $KUBECTL" >&2; exit 1; }
[ -x "$TIME" ] || { echo "mesh-sim/bench/status.sh: GNU time not found at $TIME" >&2; exit 1; }

echo "building (release)..." >&2
if [ -z "${PLUGIN:-}" ]; then
    cargo build --quiet --release -p kubectl-mesh-upgrade --bin kubectl-mesh_upgrade
    PLUGIN=target/release/kubectl-mesh_upgrade
fi
cargo build --quiet --release -p mesh-sim --example generated_cluster --example floor --example restart_bench

work="$(mktemp -d)"
mkdir -p "$work/bin"
cp "$PLUGIN" "$work/bin/kubectl-mesh_upgrade"
sim_pid=""
sim_in=""
stop_sim() {
    # Closing the simulator's stdin stops it; then wait for that one process.
    if [ -n "$sim_pid" ]; then
        exec {sim_in}>&-
        wait "$sim_pid" || true
        sim_pid=""
    fi
}
trap 'stop_sim; rm -rf "$work"' EXIT

export PATH="$work/bin:$PATH"

# The simulated API server's CPU seconds so far (user + system).
sim_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$sim_pid/stat"; }

# One timed run of a command: appends "<wall seconds> <peak KB> <CPU
# seconds> <server CPU seconds>" to file $1; its stdout goes to $OUT
# (default /dev/null).
measure() {
    local into=$1
    shift
    local before
    before=$(sim_cpu)
    "$TIME" -f "%e %M %U %S" -o "$work/time" "$@" > "${OUT:-/dev/null}"
    tail -1 "$work/time" | awk -v before="$before" -v after="$(sim_cpu)" \
        '{ printf "%s %s %.2f %.2f\n", $1, $2, $3 + $4, after - before }' >> "$into"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
peak_mb() { cut -d' ' -f2 "$1" | sort -n | tail -1 | awk '{ printf "%.0f", $1 / 1024 }'; }
runs_of() { cut -d' ' -f1 "$1" | paste -sd' ' | sed 's/ /, /g'; }
# Median of column $2 (3: CPU seconds, 4: the server's CPU seconds) of file $1.
median_of() { cut -d' ' -f"$2" "$1" | median; }
cores=$(nproc)

summary="$work/summary"
restart_summary="$work/restart-summary"
printf '| pods | floor | restart-sidecars -A --dry-run -o json | peak memory | / floor |\n|---:|---:|---:|---:|---:|\n' > "$restart_summary"
printf '| pods | floor | floor in protobuf | status -A -o json | status peak memory | kubectl get pods -A -o json | kubectl peak memory | status / floor | status / protobuf floor | status / kubectl | floor + scan | bound for a scanning client / floor |\n' > "$summary"
printf '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n' >> "$summary"

for size in $SIZES; do
    echo "generating a cluster of about $size pods..." >&2
    started=$(date +%s)
    coproc SIM { exec target/release/examples/generated_cluster "$size" "$work/kubeconfig"; }
    sim_pid=$SIM_PID
    sim_in=${SIM[1]}
    read -r ready pods <&"${SIM[0]}"
    [ "$ready" = "ready" ] || { echo "mesh-sim/bench/status.sh: the simulator did not start" >&2; exit 1; }
    echo "cluster ready in $(( $(date +%s) - started ))s" >&2
    export KUBECONFIG="$work/kubeconfig"

    with_kubectl=$(( size <= KUBECTL_MAX ))
    : > "$work/floor"; : > "$work/protobuf"; : > "$work/scan"; : > "$work/status"; : > "$work/kubectl"; : > "$work/restart"
    # The server encodes each pod's protobuf on the first LIST that asks.
    target/release/examples/floor "$KUBECONFIG" --protobuf > /dev/null
    for run in $(seq "$RUNS"); do
        OUT="$work/floor-line" measure "$work/floor" target/release/examples/floor "$KUBECONFIG"
        OUT="$work/protobuf-line" measure "$work/protobuf" target/release/examples/floor "$KUBECONFIG" --protobuf
        measure "$work/scan" target/release/examples/floor "$KUBECONFIG" --scan
        measure "$work/status" "$KUBECTL" mesh-upgrade status -A -o json
        measure "$work/restart" "$KUBECTL" mesh-upgrade restart-sidecars -A --dry-run -o json
        line="run $run: floor $(tail -1 "$work/floor" | cut -d' ' -f1)s, in protobuf $(tail -1 "$work/protobuf" | cut -d' ' -f1)s, scan $(tail -1 "$work/scan" | cut -d' ' -f1)s, status $(tail -1 "$work/status" | cut -d' ' -f1)s, restart-sidecars --dry-run $(tail -1 "$work/restart" | cut -d' ' -f1)s"
        if [ "$with_kubectl" = 1 ]; then
            measure "$work/kubectl" "$KUBECTL" get pods -A -o json
            line="$line, kubectl get pods $(tail -1 "$work/kubectl" | cut -d' ' -f1)s"
        fi
        echo "$line" >&2
    done
    floor_line=$(awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
        END { printf "%d pages, %.0f MB", v["pages"], v["bytes"] / 1e6 }' "$work/floor-line")
    protobuf_line=$(awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
        END { printf "%d pages, %.0f MB", v["pages"], v["bytes"] / 1e6 }' "$work/protobuf-line")
    sim_kb=$(awk '/VmHWM/ { print $2 }' "/proc/$sim_pid/status" 2>/dev/null || echo 0)
    stop_sim

    floor_median=$(cut -d' ' -f1 "$work/floor" | median)
    protobuf_median=$(cut -d' ' -f1 "$work/protobuf" | median)
    status_median=$(cut -d' ' -f1 "$work/status" | median)
    kubectl_median=$(cut -d' ' -f1 "$work/kubectl" | median)
    status_peak=$(peak_mb "$work/status")
    echo
    echo "== $pods pods (about $size asked for; mesh-sim peak resident memory $(( sim_kb / 1024 )) MB)"
    echo "floor, every pod page over one HTTPS connection, undecoded ($floor_line):"
    echo "    median ${floor_median}s   (runs: $(runs_of "$work/floor"))"
    scan_median=$(cut -d' ' -f1 "$work/scan" | median)
    echo "    CPU: the client $(median_of "$work/floor" 3)s, the server $(median_of "$work/floor" 4)s"
    echo "floor in protobuf, the same pages asked for in protobuf ($protobuf_line):"
    echo "    median ${protobuf_median}s   (runs: $(runs_of "$work/protobuf"))"
    echo "    CPU: the client $(median_of "$work/protobuf" 3)s, the server $(median_of "$work/protobuf" 4)s"
    echo "floor + scan, the same with every page's JSON scanned by serde_json, nothing kept:"
    echo "    median ${scan_median}s   (runs: $(runs_of "$work/scan"))"
    echo "    CPU: the client $(median_of "$work/scan" 3)s, the server $(median_of "$work/scan" 4)s"
    echo "kubectl mesh-upgrade status -A -o json:"
    echo "    median ${status_median}s, peak ${status_peak} MB   (runs: $(runs_of "$work/status"))"
    echo "    CPU: the plugin $(median_of "$work/status" 3)s, the server $(median_of "$work/status" 4)s (kubectl's own start included)"
    restart_median=$(cut -d' ' -f1 "$work/restart" | median)
    restart_peak=$(peak_mb "$work/restart")
    echo "kubectl mesh-upgrade restart-sidecars -A --dry-run -o json (its read and plan, nothing written):"
    echo "    median ${restart_median}s, peak ${restart_peak} MB   (runs: $(runs_of "$work/restart"))"
    echo "    CPU: the plugin $(median_of "$work/restart" 3)s, the server $(median_of "$work/restart" 4)s"
    printf '| %s | %s s | %s s | %s MB | %s |\n' "$pods" "$floor_median" "$restart_median" "$restart_peak" \
        "$(awk -v s="$restart_median" -v f="$floor_median" 'BEGIN { printf "%.2f", s / f }')" >> "$restart_summary"
    if [ "$with_kubectl" = 1 ]; then
        kubectl_peak=$(peak_mb "$work/kubectl")
        echo "kubectl get pods -A -o json:"
        echo "    median ${kubectl_median}s, peak ${kubectl_peak} MB   (runs: $(runs_of "$work/kubectl"))"
        vs_kubectl=$(awk -v s="$status_median" -v k="$kubectl_median" 'BEGIN { printf "%.3f", s / k }')
        kubectl_cells="${kubectl_median} s | ${kubectl_peak} MB"
    else
        echo "kubectl get pods -A -o json: skipped above $KUBECTL_MAX pods (it needs many GB)"
        vs_kubectl="-"
        kubectl_cells="skipped | -"
    fi
    vs_floor=$(awk -v s="$status_median" -v f="$floor_median" 'BEGIN { printf "%.2f", s / f }')
    vs_protobuf=$(awk -v s="$status_median" -v f="$protobuf_median" 'BEGIN { printf "%.2f", s / f }')
    # No client that scans the pods' JSON finishes before the floor, or
    # before its and the server's CPU seconds have run on this machine's
    # cores (the scanning client's CPU is a lower bound on any such client).
    bound=$(awk -v c="$(median_of "$work/scan" 3)" -v s="$(median_of "$work/scan" 4)" -v n="$cores" -v f="$floor_median" \
        'BEGIN { b = (c + s) / n; if (f > b) b = f; printf "%.2f", b }')
    vs_bound=$(awk -v b="$bound" -v f="$floor_median" 'BEGIN { printf "%.2f", b / f }')
    echo "ratio status / floor (target <= 1.5):   $vs_floor"
    echo "ratio status / floor in protobuf:       $vs_protobuf"
    echo "ratio status / kubectl get pods:        $vs_kubectl"
    echo "least time for any client that scans the pods' JSON on $cores cores: ${bound}s, $vs_bound x the floor"
    printf '| %s | %s s | %s s | %s s | %s MB | %s | **%s** | %s | %s | %s s | %s |\n' \
        "$pods" "$floor_median" "$protobuf_median" "$status_median" "$status_peak" "$kubectl_cells" "$vs_floor" "$vs_protobuf" "$vs_kubectl" "$scan_median" "$vs_bound" >> "$summary"
done

echo
echo "status -A -o json, medians of $RUNS runs per size:"
echo
cat "$summary"
echo
echo "the read phase of restart-sidecars (-A --dry-run: every LIST, the plan, nothing written), medians of $RUNS runs:"
echo
cat "$restart_summary"

if [ "$WRITES" = 1 ]; then
    echo
    echo "write scale: restart-sidecars -A --concurrency 20 on 2,000 stale Deployments in 100 namespaces..." >&2
    echo
    target/release/examples/restart_bench --plugin "$PLUGIN" \
        --stale 2000 --up-to-date 0 --namespaces 100 --runs 20
fi
