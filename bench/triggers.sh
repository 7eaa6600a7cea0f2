#!/usr/bin/env bash
# Lambda@Edge trigger overhead: wrk against one ledge edge serving five distributions, in one run.
#
#   bench/triggers.sh            # needs nginx (origin), wrk, node and python3
#   EDGE_FLAGS="--pin-threads true" bench/triggers.sh   # extra flags for ledge edge
#
# Scenarios (same 1 KiB object; CONNS keep-alive connections, wrk with 2 threads (1 for CONNS=1), DURATION s each
# after WARMUP s (default 2) of the same load that is not measured):
#   none        CachingOptimized, no function (cache hits)
#   vreq-node   the same with a no-op viewer-request function in Node.js (returns the request)
#   vreq-python the same in Python
#   none-miss   CachingDisabled, no function (every request goes to the origin)
#   all4-node   CachingDisabled with no-op Node.js functions on all four triggers
# "added p50" compares each function scenario with its no-function baseline, per trigger.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
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

run() { # name → "req/s p50_us p99_us"
  local host="$1.ledge.localhost"
  curl -fs -o /dev/null -H "Host: $host" "http://127.0.0.1:$LEDGE/1k.txt" # fills the cache
  # Warm-up at the same concurrency, not measured: the targets are about warm functions, and
  # a version's workers (one per edge thread) start on the first requests that need them.
  wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -H "Host: $host" "http://127.0.0.1:$LEDGE/1k.txt" > /dev/null
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -H "Host: $host" "http://127.0.0.1:$LEDGE/1k.txt" > "$work/wrk.$1"
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

declare -A R
for s in none vreq-node vreq-python none-miss all4-node; do R[$s]=$(run $s); done
echo "| scenario | req/s | p50 | p99 | non-2xx | vs baseline req/s | added p50 per trigger |"
echo "|---|---|---|---|---|---|---|"
row() { # scenario baseline triggers
  read -r rps p50 p99 errs <<< "${R[$1]}"
  if [ -z "$2" ]; then echo "| $1 | $rps | ${p50} µs | ${p99} µs | $errs | — | — |"; return; fi
  read -r brps bp50 _ _ <<< "${R[$2]}"
  python3 -c "print('| $1 | $rps | ${p50} µs | ${p99} µs | $errs | %.2f | %.0f µs |' % ($rps/$brps, ($p50-$bp50)/$3))"
}
row none "" 0; row vreq-node none 1; row vreq-python none 1; row none-miss "" 0; row all4-node none-miss 4
