#!/usr/bin/env bash
# Two ledge binaries side by side on the trigger bench's distributions: which is faster, and
# where each spends its CPU per request.
#
#   bench/ab.sh A_BINARY B_BINARY                 # e.g. a copy of target/release/ledge from before a change
#   PAIRS=16 SCENARIOS="vreq-node none" bench/ab.sh old/ledge target/release/ledge
#
# One origin, two edges (A started first), every scenario warmed up on both. Then for each
# scenario, PAIRS (default 12) pairs of wrk runs of DURATION s (default 3) at CONNS connections
# (default 32), in ABBA order: a shared host drifts within minutes, and on this project's 2-core
# machines an A/A run of 8 pairs still differed by up to 3.4 % — use at least 12 pairs to see
# 5 %. Prints every run (req/s; CPU µs per request of the edge, its workers and wrk; idle %) and
# per scenario the medians, B/A of req/s and of total CPU per request, and how many pairs B won.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { sed -n 2,13p "$0" >&2; exit 2; }
A_BIN=$(realpath "$1"); B_BIN=$(realpath "$2")
PAIRS=${PAIRS:-12}
DURATION=${DURATION:-3}
CONNS=${CONNS:-32}
WARMUP=${WARMUP:-2}
SCENARIOS=${SCENARIOS:-"vreq-node vreq-python"}
. bench/lib/edge.sh
start_origin
write_snapshot
start_edge a "$A_BIN"; A_PORT=$EDGE_PORT A_PID=$EDGE_PID A_DATA=$EDGE_DATA
start_edge b "$B_BIN"; B_PORT=$EDGE_PORT B_PID=$EDGE_PID B_DATA=$EDGE_DATA
warm_up "$A_PORT" $SCENARIOS
warm_up "$B_PORT" $SCENARIOS

run() { # EDGE SCENARIO
  if [ "$1" = a ]; then echo "a $2 $(wrk_run "$A_PORT" "$2" "$DURATION" "$A_PID" "$A_DATA")"
  else echo "b $2 $(wrk_run "$B_PORT" "$2" "$DURATION" "$B_PID" "$B_DATA")"; fi
}
echo "edge scenario req/s p50 p99 non-2xx edge_us workers_us wrk_us idle%"
for s in $SCENARIOS; do
  for i in $(seq "$PAIRS"); do
    if (( i % 2 )); then run a "$s"; run b "$s"; else run b "$s"; run a "$s"; fi
  done
done | tee "$work/results"
python3 - "$work/results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    if line.startswith("edge "):
        continue
    edge, s, rps, _p50, _p99, _errs, e, w, k, _idle = line.split()
    runs.setdefault(s, {}).setdefault(edge, []).append((float(rps), float(e), float(w), float(k)))
med = statistics.median
print("\n| scenario | edge | req/s | edge µs | workers µs | wrk µs | total µs/req |")
print("|---|---|---|---|---|---|---|")
for s, by in runs.items():
    for edge in "ab":
        rows = by[edge]
        cols = [med(r[i] for r in rows) for i in range(4)]
        total = med(r[1] + r[2] + r[3] for r in rows)
        print(f"| {s} | {edge.upper()} | {cols[0]:.0f} | {cols[1]:.1f} | {cols[2]:.1f} | {cols[3]:.1f} | {total:.1f} |")
print()
for s, by in runs.items():
    a, b = by["a"], by["b"]
    rps = [y[0] / x[0] for x, y in zip(a, b)]
    cpu = [sum(y[1:]) / sum(x[1:]) for x, y in zip(a, b)]
    print(f"{s}: B/A req/s {med(rps):.3f} (B higher in {sum(r > 1 for r in rps)} of {len(rps)} pairs),"
          f" total CPU per request {med(cpu):.3f} (B lower in {sum(c < 1 for c in cpu)})")
PY
