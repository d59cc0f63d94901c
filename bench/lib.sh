# Shared by the bench/ scripts (sourced). Every timed step runs at least three times; figures are
# reported as "median (min–max)" with the machine's load beside them, because this host is shared
# and single runs mislead in either direction.

# The load now: "load 1.52/1.80/2.01, 3 runnable" (1/5/15-minute averages; runnable processes).
bench_load() {
  read -r one five fifteen running _ < /proc/loadavg
  echo "load ${one}/${five}/${fifteen}, ${running%%/*} runnable"
}

# Runs a command under /usr/bin/time after `sync`: sets $secs (wall, 2 decimals) and $rss (peak KiB).
# Output goes to $BENCH_LOG (default /dev/null); a failing command stops the script.
bench_time() {
  local log start end
  log=$(mktemp)
  sync
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$log" "$@" >"${BENCH_LOG:-/dev/null}" 2>&1 || { echo "failed: $*" >&2; cat "${BENCH_LOG:-/dev/null}" >&2; rm -f "$log"; return 1; }
  end=$(date +%s.%N)
  secs=$(python3 -c "print('%.2f' % ($end-$start))")
  rss=$(tail -n1 "$log")
  rm -f "$log"
}

# "median (min–max)" of numbers given as arguments.
bench_stats() {
  python3 - "$@" <<'PY'
import statistics, sys
v = sorted(float(x) for x in sys.argv[1:])
print("%.2f (%.2f–%.2f)" % (statistics.median(v), v[0], v[-1]))
PY
}

# The median alone (for ratios).
bench_median() {
  python3 -c 'import statistics,sys; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"
}

# The largest of the numbers (peak RSS over the runs), as MiB.
bench_max_mib() {
  python3 -c 'import sys; print(max(int(x) for x in sys.argv[1:]) // 1024)' "$@"
}
