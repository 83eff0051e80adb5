#!/usr/bin/env bash
# Start-up from a large manifests file: the time from starting headless-dns on FILE to the first
# answer for NAME (give the file's last object, so that the answer means the whole file was
# read), the peak RSS while loading (VmHWM) and the RSS after (VmRSS, then again 15 s later).
# Prints figures; not a test. Run it alternately with two builds to compare them.
#
#   python3 benches/gen_cluster.py /tmp/m1 100000 10      # 1,000,000 pods, 110,000 Services
#   benches/manifests_start.sh target/release/headless-dns /tmp/m1/manifests.json \
#       svc-99999-3.svc-99999.ns-999.svc.cluster.local
set -euo pipefail
BIN=$1 FILE=$2 NAME=$3
PORT=${PORT:-15353} HTTP_PORT=${HTTP_PORT:-18053}
LOG=$(mktemp)
"$BIN" --manifests "$FILE" --listen "127.0.0.1:$PORT" --http-listen "127.0.0.1:$HTTP_PORT" >"$LOG" 2>&1 &
PID=$!
# Waited for, so that the next run (builds alternate) does not find the port still taken.
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -f "$LOG"' EXIT
START=$(date +%s.%N)
until dig +short +time=1 +tries=1 -p "$PORT" @127.0.0.1 "$NAME" A 2>/dev/null | grep -q '^[0-9]'; do
  if ! kill -0 $PID 2>/dev/null; then
    echo "headless-dns exited:"; tail -5 "$LOG"; exit 1
  fi
  sleep 0.05
done
END=$(date +%s.%N)
rss() { awk '/VmHWM|VmRSS/ {printf "%s %.0f MiB  ", $1, $2 / 1024}' /proc/$PID/status; }
echo "first answer after $(echo "$END - $START" | bc) s; $(rss)"
sleep 15
echo "15 s later: $(rss)"
