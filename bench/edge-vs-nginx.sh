#!/usr/bin/env bash
# Edge proxy benchmark: ledge vs nginx proxy_cache in front of the same origin, in one run.
#
#   bench/edge-vs-nginx.sh            # needs nginx and wrk (apt-get install nginx wrk)
#
# The origin is an nginx serving static files on loopback. Both proxies get the same workload:
# cache hits on a 1 KiB and a 100 KiB object, and a miss path that always goes to the origin
# (ledge: the managed CachingDisabled policy; nginx: proxy_cache off). 64 keep-alive connections,
# wrk with 2 threads, DURATION seconds each (default 10). Prints one table with the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
cargo build --release -q -p ledge
. bench/lib/edge.sh
# The origin (bench/lib/edge.sh: one nginx worker, the 1 KiB object) gets a 100 KiB object and
# an uncached path too; the proxy under test runs all cores, like ledge.
start_origin
NGINX=$(free_port); LEDGE=$(free_port)
mkdir -p "$work/www/nocache" "$work/cache"
head -c 102400 /dev/urandom | base64 -w0 | head -c 102400 > "$work/www/100k.txt"
cp "$work/www/1k.txt" "$work/www/nocache/1k.txt"

cat > "$work/proxy.conf" <<NGINX
daemon off; user root; worker_processes auto; pid $work/proxy.pid; error_log $work/logs/proxy.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  proxy_cache_path $work/cache levels=1:2 keys_zone=edge:64m max_size=1g inactive=1h use_temp_path=off;
  upstream origin { server 127.0.0.1:$ORIGIN; keepalive 64; }
  server { listen 127.0.0.1:$NGINX;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_cache edge; proxy_cache_valid 200 1h; proxy_cache_lock on;
      add_header X-Cache \$upstream_cache_status; }
    location /nocache/ { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NGINX
nginx -c "$work/proxy.conf" -p "$work" & pids+=($!)

cat > "$work/snapshot.json" <<JSON
{"Version": 1, "Distributions": [{"Id": "EBENCH", "DomainName": "bench.ledge.localhost",
  "Config": {"Origins": [{"Id": "o", "DomainName": "127.0.0.1",
      "CustomOriginConfig": {"HTTPPort": $ORIGIN, "OriginProtocolPolicy": "http-only"}}],
    "DefaultCacheBehavior": {"TargetOriginId": "o", "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
    "CacheBehaviors": [{"PathPattern": "/nocache/*", "TargetOriginId": "o",
      "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"}],
    "Enabled": true}}]}
JSON
LEDGE_LOG=warn target/release/ledge edge --config-file "$work/snapshot.json" \
  --edge-listen 127.0.0.1:$LEDGE --data-dir "$work/ledge-data" > "$work/logs/ledge.out" 2>&1 & pids+=($!)

for port in $ORIGIN $NGINX $LEDGE; do
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" -H 'Host: bench.ledge.localhost' && break; sleep 0.1; done
done

# wrk prints latency percentiles with --latency; pick Requests/sec, 50% and 99%.
run() { # name url host
  local out; out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -H "Host: $3" "$2")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  local errs; errs=$(awk '/Non-2xx|Socket errors/' <<<"$out" | tr '\n' ' ')
  echo "$1|$rps|$p50|$p99|$errs"
}
to_us() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us/,"",v); print v} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else if (v ~ /s$/) {sub(/s/,"",v); print v*1000000} else print v }'; }

echo "| workload | nginx req/s | nginx p50 | nginx p99 | ledge req/s | ledge p50 | ledge p99 | ledge/nginx req/s |"
echo "|---|---|---|---|---|---|---|---|"
for w in "hit 1 KiB:/1k.txt" "hit 100 KiB:/100k.txt" "miss (CachingDisabled) 1 KiB:/nocache/1k.txt"; do
  name=${w%%:*}; path=${w#*:}
  # warm both caches
  curl -s -o /dev/null "http://127.0.0.1:$NGINX$path"; curl -s -o /dev/null -H 'Host: bench.ledge.localhost' "http://127.0.0.1:$LEDGE$path"
  IFS='|' read -r _ nr n50 n99 nerr < <(run nginx "http://127.0.0.1:$NGINX$path" localhost)
  IFS='|' read -r _ lr l50 l99 lerr < <(run ledge "http://127.0.0.1:$LEDGE$path" bench.ledge.localhost)
  ratio=$(awk -v a="$lr" -v b="$nr" 'BEGIN{printf "%.2f", a/b}')
  echo "| $name | $nr | $n50 | $n99 | $lr | $l50 | $l99 | ${ratio}x |"
  [ -z "$nerr$lerr" ] || echo "  (errors: nginx: $nerr ledge: $lerr)" >&2
done
echo
echo "ledge RSS after the run: $(ps -o rss= -p "${pids[2]}" | awk '{printf "%.1f MiB", $1/1024}')"
