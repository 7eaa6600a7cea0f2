#!/usr/bin/env bash
# Lambda@Edge trigger overhead: wrk against one ledge edge serving five distributions, in one run.
#
#   bench/triggers.sh            # needs nginx (origin), wrk, node and python3
#   EDGE_FLAGS="--edge-threads 1" bench/triggers.sh   # extra flags for ledge edge
#
# Scenarios (bench/lib/edge.sh: none, vreq-node, vreq-python, none-miss, all4-node; the same
# 1 KiB object; CONNS keep-alive connections, wrk with 2 threads (1 for CONNS=1)), each warmed up
# for WARMUP s (default 2) at the same load, not measured, then measured for DURATION s (default
# 5) in each of ROUNDS rounds (default 5) that run every scenario in turn.
# Each cell is the median over the rounds; "vs baseline" and "added p50" compare a scenario with
# its no-function baseline of the same round (every round's value in brackets).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-32}
WARMUP=${WARMUP:-2}
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p ledge
. bench/lib/edge.sh
start_origin
write_snapshot
start_edge edge ./target/release/ledge
LEDGE=$EDGE_PORT

SCENARIOS="none vreq-node vreq-python none-miss all4-node"
warm_up "$LEDGE" $SCENARIOS
# Rounds of every scenario in turn: a shared host drifts within minutes, and each scenario is
# compared with its baseline of the same round, so that a drift does not pass for a difference.
for r in $(seq "$ROUNDS"); do
  for s in $SCENARIOS; do echo "$r $s $(wrk_run "$LEDGE" "$s" "$DURATION")"; done
done > "$work/results"
python3 - "$work/results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    r, s, rps, p50, p99, errs = line.split()
    runs.setdefault(s, {})[r] = (float(rps), float(p50), float(p99), int(errs))
med = statistics.median
print("| scenario | req/s | p50 | p99 | non-2xx | vs baseline req/s | added p50 per trigger |")
print("|---|---|---|---|---|---|---|")
for s, base, triggers in [("none", None, 0), ("vreq-node", "none", 1), ("vreq-python", "none", 1),
                          ("none-miss", None, 0), ("all4-node", "none-miss", 4)]:
    rounds = runs[s]
    rps, p50, p99 = (med([v[i] for v in rounds.values()]) for i in range(3))
    errs = sum(v[3] for v in rounds.values())
    row = f"| {s} | {rps:.0f} | {p50:.0f} µs | {p99:.0f} µs | {errs} |"
    if base is None:
        print(row + " — | — |")
        continue
    ratios = [rounds[r][0] / runs[base][r][0] for r in rounds]
    added = [(rounds[r][1] - runs[base][r][1]) / triggers for r in rounds]
    print(row + f" **{med(ratios):.2f}** ({', '.join(f'{x:.2f}' for x in ratios)}) |"
          f" **{med(added):.0f} µs** ({', '.join(f'{x:.0f}' for x in added)}) |")
PY
# Workers started over the run, by interpreter (2 per version that ran on both edge threads is
# the expected count: more means a warm-up or a round started workers it did not need).
echo "workers at the end: $(ps -eo comm,args | awk -v w="$work" '($1 == "node" || $1 == "python3") && index($0, w) { print $1 }' | sort | uniq -c | awk '{printf "%s %s  ", $1, $2}')"
