#!/usr/bin/env bash
# README command (b) from a fresh clone, timed: the figure of BENCHMARKS.md's "The test
# suite's wall time". Clones the current commit into a new temporary folder, runs
# `bash scripts/test.sh` there under /usr/bin/time with `vmstat 5` beside it, and prints the
# whole command's wall time, pytest's line, the set-up before pytest, the share of time
# the CPUs were idle while pytest ran, and the CPU seconds of the servers and workers that
# no test reaps (benchmarks/_daemon_cpu.py: the Cassandra nodes, PostgreSQL, MariaDB).
#
#   bash benchmarks/bench_test_suite.sh [WORK_DIR]        (default: a new /tmp/l1db-suite.XXXX)
#
# A figure that counts is taken on a quiet machine: nothing else running, load average
# below 1 at the start (it is printed), and the servers stopped first, as on a fresh
# machine: `cassandra_nodes stop`, `pg_ctlcluster VERSION main stop`, mariadbd stopped.
# The clone keeps its servers running afterwards, as scripts/test.sh always does.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${1:-$(mktemp -d /tmp/l1db-suite.XXXX)}"
[ -e "$WORK/clone" ] && { echo "bench_test_suite: $WORK/clone exists; give a new folder" >&2; exit 1; }
command -v vmstat >/dev/null || { echo "bench_test_suite: vmstat (procps) is needed" >&2; exit 1; }

git clone -q "$ROOT" "$WORK/clone"
echo "commit $(git -C "$WORK/clone" log --oneline -1)"
echo "machine $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; start $(date -u +%FT%TZ); load $(cut -d' ' -f1-3 /proc/loadavg)"
vmstat -n 5 >"$WORK/vmstat.log" &
VMSTAT=$!
python3 "$ROOT/benchmarks/_daemon_cpu.py" --out "$WORK/daemon-cpu.txt" >/dev/null &
DAEMONS=$!
trap 'kill $VMSTAT $DAEMONS 2>/dev/null || true' EXIT
start=$(date +%s)
status=0
(cd "$WORK/clone" && /usr/bin/time -v bash scripts/test.sh) >"$WORK/test.log" 2>&1 || status=$?
end=$(date +%s)
kill $VMSTAT 2>/dev/null || true
kill -TERM $DAEMONS 2>/dev/null && wait $DAEMONS || true

echo "exit status $status; log in $WORK/test.log"
echo "whole command: $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s"
grep -E "^=+ .*(passed|failed|error).* =+$" "$WORK/test.log" | tail -1 || true
# pytest's own seconds, from its summary line: the set-up is the rest.
pytest_s=$(grep -oE "in [0-9.]+s \(" "$WORK/test.log" | tail -1 | grep -oE "[0-9.]+" || echo "")
if [ -n "$pytest_s" ]; then
    echo "set-up before pytest: about $(( end - start - ${pytest_s%.*} )) s"
fi
# vmstat: the idle column (id) of every sample after the header lines.
awk '$1 ~ /^[0-9]+$/ {n++; idle += $15; if ($15 <= 5) busy++}
     END {if (n) printf "CPU idle: mean %.0f %% over %d samples of 5 s; %.0f %% of them with both cores busy (idle <= 5 %%)\n", idle / n, n, 100 * busy / n}' \
    "$WORK/vmstat.log"
awk '$1 ~ /^[0-9]+$/ {n++; busy += $13 + $14} END {if (n) printf "CPU busy: about %.0f CPU-s in all (us + sy of the 5 s samples, all cores)\n", busy / 100 * 5 * '"$(nproc)"'}' \
    "$WORK/vmstat.log"
cat "$WORK/daemon-cpu.txt" 2>/dev/null || true
exit "$status"
