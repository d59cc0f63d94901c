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

# A single-node Ceph RGW on loopback under $1/cluster: the same layout and settings as
# Sources/LifeboatTesting/RGWServer.swift (see there, and ../shared/PROTOCOLS.md "Ceph RGW", for why
# each setting is there). Sets rgw_endpoint, rgw_pids, rgw_start_seconds and exports AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY and AWS_REGION for its user. It sets an EXIT trap that runs bench_stop_rgw.
bench_start_rgw() {
  rgw_cluster="$1/cluster"
  rgw_pids=()
  # Stopped on exit even when start-up fails half way (set -e ends the script there).
  trap bench_stop_rgw EXIT
  rm -rf "$rgw_cluster"
  mkdir -p "$rgw_cluster"/{run,log,mon,osd,rgw}
  local free_port='import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
  local mon_port rgw_port fsid conf started osd_uuid mkfs
  mon_port=$(python3 -c "$free_port"); rgw_port=$(python3 -c "$free_port")
  fsid=$(cat /proc/sys/kernel/random/uuid)
  conf="$rgw_cluster/ceph.conf"
  cat > "$conf" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
run dir = $rgw_cluster/run
admin socket = $rgw_cluster/run/\$name.asok
log file = $rgw_cluster/log/\$name.log
keyring = $rgw_cluster/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
paxos propose interval = 0.01
[mon.a]
mon data = $rgw_cluster/mon
[osd.0]
osd data = $rgw_cluster/osd
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 21474836480
osd memory target = 1073741824
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $rgw_cluster/rgw
CONF
  started=$(date +%s.%N)
  monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$rgw_cluster/monmap" >/dev/null
  ceph-authtool --create-keyring "$rgw_cluster/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  ceph-osd -c "$conf" -i 0 --mkfs --no-mon-config --osd-uuid "$osd_uuid" >"$rgw_cluster/log/mkfs.out" 2>&1 & mkfs=$!
  rgw_pids+=("$mkfs")
  ceph-mon -c "$conf" --mkfs -i a --monmap "$rgw_cluster/monmap"
  ceph-mon -c "$conf" -i a -f >"$rgw_cluster/log/mon.out" 2>&1 & rgw_pids+=($!)
  ceph -c "$conf" --connect-timeout 30 osd new "$osd_uuid" >/dev/null
  wait "$mkfs"
  ceph-osd -c "$conf" -i 0 -f >"$rgw_cluster/log/osd.out" 2>&1 & rgw_pids+=($!)
  export AWS_ACCESS_KEY_ID=LIFEBOATBENCH AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-east-1
  radosgw-admin -c "$conf" user create --uid bench --display-name bench \
    --access-key "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" >/dev/null
  radosgw -c "$conf" -n client.rgw -f >"$rgw_cluster/log/rgw.out" 2>&1 & rgw_pids+=($!)
  local deadline=$((SECONDS + 120))
  until curl -s -o /dev/null "http://127.0.0.1:$rgw_port/"; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "radosgw did not answer within 120 s; see $rgw_cluster/log" >&2; tail -5 "$rgw_cluster"/log/*.out >&2; return 1; }
    sleep 0.05
  done
  rgw_start_seconds=$(python3 -c "print(round($(date +%s.%N)-$started,1))")
  rgw_endpoint="http://127.0.0.1:$rgw_port"
}

# Stops the cluster bench_start_rgw started (SIGTERM, SIGKILL after 10 s) and removes it.
bench_stop_rgw() {
  [ -n "${rgw_cluster:-}" ] || return 0
  for pid in "${rgw_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${rgw_pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "${rgw_cluster:?}"
}
