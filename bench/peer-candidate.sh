#!/usr/bin/env bash
# Candidate command for ../shared/bench/peers/run.sh: runs `cohort balancer` in
# quick mode on $PORT over $BACKENDS (host:port,host:port), byrequests,
# with Cohort's defaults (sticky parsing, health state, metrics) and no access log.
# COHORT_ACCESS_LOG=on keeps the default access log (JSON lines on stdout);
# COHORT_WORKERS=N runs N engines (--workers N).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
args=()
i=1
IFS=',' read -ra bs <<< "$BACKENDS"
for b in "${bs[@]}"; do args+=(--member "b$i=http://$b"); i=$((i+1)); done
# Run as a user runs the `cohort` command, with the V8 flag it would re-execute Node for given up front
# (bin/cohort.js sees it in NODE_OPTIONS and does not re-execute): the engine then stays in the harness's
# process group, so the harness counts its CPU as the system under test's, not as "other CPU".
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--max-semi-space-size=64"
[ "${COHORT_ACCESS_LOG:-off}" = on ] || args+=(--no-access-log)
[ -z "${COHORT_WORKERS:-}" ] || args+=(--workers "$COHORT_WORKERS")
exec "$here/bin/cohort.js" balancer --listen "127.0.0.1:$PORT" "${args[@]}" --log-level warn
