# Shared set-up of the edge benchmarks (sourced by bench/triggers.sh, bench/ab.sh and
# bench/edge-vs-nginx.sh):
# a work directory removed on exit, an nginx origin serving a 1 KiB object, the bench's
# function packages and config snapshot, ledge edges serving it, and wrk runs.
#
# The snapshot's five distributions (same 1 KiB object at /1k.txt, Host <name>.ledge.localhost):
#   none        CachingOptimized, no function (cache hits)
#   vreq-node   the same with a no-op viewer-request function in Node.js (returns the request)
#   vreq-python the same in Python
#   none-miss   CachingDisabled, no function (every request goes to the origin)
#   all4-node   CachingDisabled with no-op Node.js functions on all four triggers

for tool in nginx wrk node python3; do command -v $tool >/dev/null || { echo "install $tool first" >&2; exit 1; }; done

work=$(mktemp -d)
chmod 755 "$work" # function workers run as unprivileged users: the data dirs must be reachable
pids=()
bench_cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"; }
trap bench_cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The origin: one nginx worker on loopback. Sets ORIGIN (its port).
start_origin() {
  ORIGIN=$(free_port)
  mkdir -p "$work/www" "$work/logs"
  head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 > "$work/www/1k.txt"
  cat > "$work/origin.conf" <<NGINX
daemon off; user root; worker_processes 1; pid $work/origin.pid; error_log $work/logs/origin.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$ORIGIN; root $work/www;
    location / { add_header Cache-Control "max-age=3600"; } } }
NGINX
  nginx -c "$work/origin.conf" -p "$work" & pids+=($!)
}

# Function packages (no-op handlers) in $work/packages and $work/snapshot.json, written by one
# small Python program.
write_snapshot() {
  mkdir -p "$work/packages"
  python3 - "$work" "$ORIGIN" <<'PY'
import hashlib, io, json, sys, zipfile
work, origin = sys.argv[1], int(sys.argv[2])
def package(filename, code):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(filename, code)
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    open(f"{work}/packages/{sha}.zip", "wb").write(data)
    return sha
node_req = package("index.js", "exports.handler = async (e) => e.Records[0].cf.request;")
node_resp = package("index.js", "exports.handler = async (e) => e.Records[0].cf.response;")
py_req = package("lambda_function.py", "def handler(event, context):\n    return event['Records'][0]['cf']['request']\n")
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
}

# start_edge NAME BINARY: a ledge edge serving the snapshot from $work/NAME (default flags plus
# EDGE_FLAGS). Sets EDGE_PORT, EDGE_PID and EDGE_DATA.
start_edge() {
  EDGE_DATA="$work/$1"
  mkdir -p "$EDGE_DATA"
  cp -r "$work/packages" "$EDGE_DATA/"
  EDGE_PORT=$(free_port)
  LEDGE_LOG=warn "$2" edge --config-file "$work/snapshot.json" --data-dir "$EDGE_DATA" \
    --edge-listen "127.0.0.1:$EDGE_PORT" ${EDGE_FLAGS:-} > "$work/logs/$1.out" 2> "$work/logs/$1.err" & pids+=($!)
  EDGE_PID=$!
  for _ in $(seq 100); do curl -fs -o /dev/null -H 'Host: none.ledge.localhost' "http://127.0.0.1:$EDGE_PORT/1k.txt" && return; sleep 0.1; done
  echo "the edge $1 did not start: $(cat "$work/logs/$1.err")" >&2; exit 1
}

# wrk_run PORT SCENARIO SECONDS [EDGE_PID DATA_DIR] → "req/s p50_us p99_us non2xx" (and, with
# the edge, its CPU, its workers' CPU and wrk's CPU in µs per request, and idle %).
wrk_run() { python3 "$(dirname "${BASH_SOURCE[0]}")/wrk_cpu.py" "$1" "$2.ledge.localhost" "$3" "$CONNS" "${@:4}"; }

# Warm-up at the same concurrency, not measured: the targets are about warm functions, and a
# version's workers (one per edge thread) start on the first requests that need them.
warm_up() { # PORT SCENARIO...
  local port=$1; shift
  for s in "$@"; do
    curl -fs -o /dev/null -H "Host: $s.ledge.localhost" "http://127.0.0.1:$port/1k.txt" # fills the cache
    wrk_run "$port" "$s" "$WARMUP" > /dev/null
  done
}
