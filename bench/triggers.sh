#!/usr/bin/env bash
# Lambda@Edge trigger overhead: wrk against one ledge edge serving five distributions, in one run.
#
#   bench/triggers.sh            # needs nginx (origin), wrk, node and python3
#   EDGE_FLAGS="--edge-threads 1" bench/triggers.sh   # extra flags for ledge edge
#
# Scenarios (same 1 KiB object; CONNS keep-alive connections, wrk with 2 threads (1 for CONNS=1)), each
# warmed up for WARMUP s (default 2) at the same load, not measured, then measured for DURATION s
# (default 5) in each of ROUNDS rounds (default 5) that run every scenario in turn:
#   none        CachingOptimized, no function (cache hits)
#   vreq-node   the same with a no-op viewer-request function in Node.js (returns the request)
#   vreq-python the same in Python
#   none-miss   CachingDisabled, no function (every request goes to the origin)
#   all4-node   CachingDisabled with no-op Node.js functions on all four triggers
# Each cell is the median over the rounds; "vs baseline" and "added p50" compare a scenario with
# its no-function baseline of the same round (every round's value in brackets).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-32}
WARMUP=${WARMUP:-2}
THREADS=$(( CONNS < 2 ? CONNS : 2 ))
for tool in nginx wrk node python3; do command -v $tool >/dev/null || { echo "install $tool first" >&2; exit 1; }; done

[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p ledge
work=$(mktemp -d)
chmod 755 "$work" # function workers run as unprivileged users: the data dir must be reachable
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ORIGIN=$(free_port); LEDGE=$(free_port)

mkdir -p "$work/www" "$work/logs" "$work/data/packages"
head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 > "$work/www/1k.txt"
cat > "$work/origin.conf" <<NGINX
daemon off; user root; worker_processes 1; pid $work/origin.pid; error_log $work/logs/origin.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$ORIGIN; root $work/www;
    location / { add_header Cache-Control "max-age=3600"; } } }
NGINX
nginx -c "$work/origin.conf" -p "$work" & pids+=($!)

# Function packages (no-op handlers) and the snapshot, written by one small Python program.
python3 - "$work" "$ORIGIN" <<'PY'
import hashlib, io, json, sys, zipfile
work, origin = sys.argv[1], int(sys.argv[2])
def package(name, filename, code):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(filename, code)
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    open(f"{work}/data/packages/{sha}.zip", "wb").write(data)
    return sha
node_req = package("n", "index.js", "exports.handler = async (e) => e.Records[0].cf.request;")
node_resp = package("r", "index.js", "exports.handler = async (e) => e.Records[0].cf.response;")
py_req = package("p", "lambda_function.py", "def handler(event, context):\n    return event['Records'][0]['cf']['request']\n")
arn = lambda n: f"arn:aws:lambda:us-east-1:111122223333:function:{n}:1"
functions = [
    {"Arn": arn("noop-node"), "CodeSha256": node_req, "Runtime": "nodejs20.x", "Handler": "index.handler"},
    {"Arn": arn("noop-node-resp"), "CodeSha256": node_resp, "Runtime": "nodejs20.x", "Handler": "index.handler"},
    {"Arn": arn("noop-python"), "CodeSha256": py_req, "Runtime": "python3.12", "Handler": "lambda_function.handler"},
]
OPT, DIS = "658327ea-f89d-4fab-a63d-7e88639e58f6", "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
def dist(i, name, policy, assoc):
    return {"Id": f"EBENCH{i}", "DomainName": f"{name}.ledge.localhost",
            "Config": {"Origins": [{"Id": "o", "DomainName": "127.0.0.1",
                "CustomOriginConfig": {"HTTPPort": origin, "OriginProtocolPolicy": "http-only"}}],
              "DefaultCacheBehavior": {"TargetOriginId": "o", "CachePolicyId": policy,
                "LambdaFunctionAssociations": [{"LambdaFunctionARN": arn(f), "EventType": t} for t, f in assoc]},
              "Enabled": True}}
dists = [
    dist(0, "none", OPT, []),
    dist(1, "vreq-node", OPT, [("viewer-request", "noop-node")]),
    dist(2, "vreq-python", OPT, [("viewer-request", "noop-python")]),
    dist(3, "none-miss", DIS, []),
    dist(4, "all4-node", DIS, [("viewer-request", "noop-node"), ("origin-request", "noop-node"),
                               ("origin-response", "noop-node-resp"), ("viewer-response", "noop-node-resp")]),
]
json.dump({"Version": 1, "Distributions": dists, "Functions": functions}, open(f"{work}/snapshot.json", "w"))
PY

LEDGE_LOG=warn ./target/release/ledge edge --config-file "$work/snapshot.json" --data-dir "$work/data" \
  --edge-listen "127.0.0.1:$LEDGE" ${EDGE_FLAGS:-} > "$work/logs/ledge.out" 2> "$work/logs/ledge.err" & pids+=($!)
for _ in $(seq 100); do curl -fs -o /dev/null -H 'Host: none.ledge.localhost' "http://127.0.0.1:$LEDGE/1k.txt" && break; sleep 0.1; done

measure() { # name seconds → "req/s p50_us p99_us non2xx"
  wrk -t"$THREADS" -c"$CONNS" -d"$2s" --latency -H "Host: $1.ledge.localhost" "http://127.0.0.1:$LEDGE/1k.txt" > "$work/wrk.$1"
  python3 - "$work/wrk.$1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def us(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    if not m:
        sys.exit("cannot parse wrk output:\n" + t)
    n, u = m.groups()
    return float(n) * {"us": 1, "ms": 1e3, "s": 1e6}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = us(re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1)); p99 = us(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(f"{rps:.0f} {p50:.0f} {p99:.0f} {errs.group(1) if errs else 0}")
PY
}

SCENARIOS="none vreq-node vreq-python none-miss all4-node"
# Warm-up at the same concurrency, not measured: the targets are about warm functions, and a
# version's workers (one per edge thread) start on the first requests that need them.
for s in $SCENARIOS; do
  curl -fs -o /dev/null -H "Host: $s.ledge.localhost" "http://127.0.0.1:$LEDGE/1k.txt" # fills the cache
  measure "$s" "$WARMUP" > /dev/null
done
# Rounds of every scenario in turn: a shared host drifts within minutes, and each scenario is
# compared with its baseline of the same round, so that a drift does not pass for a difference.
for r in $(seq "$ROUNDS"); do
  for s in $SCENARIOS; do echo "$r $s $(measure "$s" "$DURATION")"; done
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
