#!/bin/bash
# Where the default cluster's host processes spend their CPU under RESP load, every thread
# included (LMDB's write thread, V8's compiler and GC threads, the kernel): `kvs up` (3 processes,
# 3 shard groups) in a private network namespace, one redis-benchmark per shard group on one RESP
# door each, and `perf record -g` of the 3 host processes after a warm-up. Prints the largest
# inclusive items. Needs root (unshare, perf), perf, redis-benchmark, and a build (make build).
#   bench/perf-hosts.sh [set|get] [requests per door] [warm-up s] [profile s]
# Not a test; docs/processes.md has a run.
set -euo pipefail
if [ "${PERF_HOSTS_IN_NETNS:-}" != 1 ]; then
  exec unshare -n env PERF_HOSTS_IN_NETNS=1 bash -c 'ip link set lo up; exec "$0" "$@"' "$0" "$@"
fi
TEST=${1:-set}
REQUESTS=${2:-60000}
WARMUP_S=${3:-20}
PROFILE_S=${4:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mktemp -d /tmp/kvs-perf-hosts-XXXXXX)
echo "# bench/perf-hosts.sh $TEST $REQUESTS $WARMUP_S $PROFILE_S: $(nproc) cores, $(uname -r), $(node --version), $(git -C "$ROOT" rev-parse --short HEAD), $(date -u +%FT%TZ)"
# JIT-compiled JavaScript functions get names in the profile.
NODE_OPTIONS=--perf-basic-prof node "$ROOT/bin/kvs.js" up --data "$OUT/data" --base-port 27001 > "$OUT/up.log" 2>&1 &
UP=$!
trap 'kill -INT $UP 2>/dev/null; wait $UP 2>/dev/null; rm -rf "$OUT"' EXIT
for _ in $(seq 1 120); do grep -q "ready in" "$OUT/up.log" && break; sleep 0.5; done
grep -q "ready in" "$OUT/up.log" || { cat "$OUT/up.log"; exit 1; }
# One RESP door per shard group, each on a different replica (and so a different process).
DOORS=$(node -e '
const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const groups = [...new Set(c.replicas.filter((r) => r.role !== "placement").map((r) => r.group))].sort((a, b) => a - b);
console.log(groups.map((g, i) => { const rs = c.replicas.filter((r) => r.group === g); return rs[i % rs.length].endpoints.resp.split(":").pop(); }).join(" "));
' "$OUT/data/cluster.json")
PIDS=""
for port in $DOORS; do
  redis-benchmark -p "$port" -c 17 -d 100 -r 100000 -t "$TEST" -n "$REQUESTS" -q > "$OUT/rb-$port.txt" 2>&1 &
  PIDS="$PIDS $!"
done
sleep "$WARMUP_S"
HOSTS=$(pgrep -P "$UP" -f "kvs.js host" | paste -sd, -)
perf record -F 999 -g -o "$OUT/perf.data" -p "$HOSTS" -- sleep "$PROFILE_S" > "$OUT/perf.log" 2>&1
wait $PIDS
cat "$OUT"/rb-*.txt | tr '\r' '\n' | grep -i "requests per second"
echo "# inclusive share of all samples of the host processes (every thread):"
perf report -i "$OUT/perf.data" --children --sort sym --stdio -g none 2>/dev/null |
  grep -E 'WriteWorker::Write$|mdb_txn_commit$|mdb_cursor_put$|fdatasync$|OptimizingCompileDispatcher::CompileTask::RunInternal$|ConcurrentMarking::RunMajor$|ScavengerCollector::JobTask::ProcessItems$|sock_write_iter$|sock_read_iter$|uv__io_poll$' |
  awk '{ printf "  %-8s %s\n", $1, $4 }'
