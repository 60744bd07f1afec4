#!/usr/bin/env bash
# CPU time per request of `cohort balancer` (issue 10's A/B figure; load-independent enough on a shared host,
# unlike req/s): two bench/backend.ts members, `wrk -t1 -c32` for 2 s warm-up and $SECONDS_RUN s measured
# while `perf stat -e task-clock` watches the balancer process. Needs wrk and perf.
# Usage: bench/cpu-per-request.sh [REPO_DIR] [PORT]   (REPO_DIR: a built checkout, default this one)
#        ACCESS=--no-access-log (default) or ACCESS= (access log on, to /dev/null)
#        WORKERS=N: `--workers N`; CPU then counts the primary (state owner) and every worker process
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="${1:-$here}"
port="${2:-18180}"
secs="${SECONDS_RUN:-5}"
access="${ACCESS---no-access-log}"
workers="${WORKERS:-}"
tmp="$(mktemp -d)"
trap 'kill $L $B1 $B2 2>/dev/null || true; rm -rf "$tmp"' EXIT
node "$here/dist/bench/backend.js" > "$tmp/b1" & B1=$!
NAME=b2 node "$here/dist/bench/backend.js" > "$tmp/b2" & B2=$!
sleep 0.7
p1=$(cat "$tmp/b1"); p2=$(cat "$tmp/b2")
node "$repo/bin/cohort.js" balancer --listen "127.0.0.1:$port" --member "b1=http://127.0.0.1:$p1" --member "b2=http://127.0.0.1:$p2" $access --log-level warn ${workers:+--workers $workers} > /dev/null 2>&1 & L=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
sleep 0.5
wrk -t1 -c32 -d2s "http://127.0.0.1:$port/" > /dev/null
# Every descendant: `cohort` re-executes Node once (its V8 flag), and --workers forks the engines below that.
descendants() { for c in $(pgrep -P "$1" || true); do echo "$c"; descendants "$c"; done; }
pids="$L"
for c in $(descendants "$L"); do pids="$pids,$c"; done
perf stat -e task-clock -p "$pids" -o "$tmp/perf" 2>"$tmp/perf.err" & P=$!
r=$(wrk -t1 -c32 -d"${secs}s" --latency "http://127.0.0.1:$port/")
kill -INT "$P" 2>/dev/null || cat "$tmp/perf.err" "$tmp/perf" >&2; wait "$P" 2>/dev/null || true
n=$(echo "$r" | awk '/requests in/ {print $1}')
ms=$(awk '/task-clock/ {gsub(",","",$1); print $1}' "$tmp/perf")
echo "$repo${workers:+ (workers $workers)}: requests=$n req/s=$(echo "$r" | awk '/Requests\/sec/ {print $2}') p99=$(echo "$r" | awk '$1=="99%" {print $2}') cpu-us/req=$(awk -v ms="$ms" -v n="$n" 'BEGIN {printf "%.1f", ms*1000/n}')"
