#!/usr/bin/env bash
# User-space instructions per request of `cohort balancer`, counted by valgrind's callgrind: the same count on
# any x86_64 machine for the same build, whatever else the machine is doing (req/s and CPU time are not; see
# docs/performance.md). Two bench/backend.ts members, `h2load --h1` (HTTP/1.1 keep-alive, a fixed number of
# requests on 16 connections): $WARM requests unmeasured (JIT), then the counters are zeroed and $N requests
# counted. Needs valgrind (callgrind_control) and h2load (Debian: valgrind, nghttp2-client).
# Usage: bench/instructions-per-request.sh [REPO_DIR] [PORT]   (REPO_DIR: a built checkout, default this one)
#        ACCESS=--no-access-log (default) or ACCESS= (the default access log on, to /dev/null)
#        N=5000 WARM=8000
# Prints: instructions per request (all threads of the balancer process; V8's compiler threads included).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="${1:-$here}"
port="${2:-18180}"
n="${N:-5000}"
warm="${WARM:-8000}"
access="${ACCESS---no-access-log}"
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 2; }
command -v h2load >/dev/null || { echo "needs h2load (apt-get install nghttp2-client)" >&2; exit 2; }
tmp="$(mktemp -d)"
L=""; B1=""; B2=""
trap 'kill $L $B1 $B2 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
node "$here/dist/bench/backend.js" > "$tmp/b1" & B1=$!
NAME=b2 node "$here/dist/bench/backend.js" > "$tmp/b2" & B2=$!
sleep 0.7
p1=$(cat "$tmp/b1"); p2=$(cat "$tmp/b2")
# --max-semi-space-size=64 as the `cohort` command runs the balancer (no re-exec under valgrind).
valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" node --max-semi-space-size=64 "$repo/bin/cohort.js" balancer \
  --listen "127.0.0.1:$port" --member "b1=http://127.0.0.1:$p1" --member "b2=http://127.0.0.1:$p2" $access --log-level warn \
  > "$tmp/balancer.log" 2>&1 & L=$!
up=0
for _ in $(seq 240); do curl -s -m 1 -o /dev/null "http://127.0.0.1:$port/" && { up=1; break; }; sleep 0.5; done
[ "$up" = 1 ] || { echo "the balancer did not start under valgrind" >&2; cat "$tmp/balancer.log" >&2; exit 1; }
h2load --h1 -n "$warm" -c 16 "http://127.0.0.1:$port/" > /dev/null
callgrind_control -z "$L" > /dev/null
done_line=$(h2load --h1 -n "$n" -c 16 "http://127.0.0.1:$port/" | grep -E '^requests:')
callgrind_control -d "$L" > /dev/null
sleep 1
f=$(ls -tr "$tmp"/cg.* | tail -1)
total=$(callgrind_annotate "$f" 2>/dev/null | grep -m1 'PROGRAM TOTALS' | awk '{ gsub(",", "", $1); print $1 }')
echo "$done_line"
echo "instructions per request: $((total / n)) ($total for $n requests; $repo)"
