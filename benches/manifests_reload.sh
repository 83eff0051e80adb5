#!/usr/bin/env bash
# A reload of a large manifests file: starts headless-dns on a copy of FILE, waits for NAME to
# answer, renames EDITED over the copy (as an editor or `kubectl ... > tmp && mv` would), and
# prints the time until NAME answers ADDRESS (the edit), and the peak RSS (VmHWM) once loaded
# and once the reload has been read to its end (logged), 2 s later. Prints figures; not a test. Run it alternately with two builds.
#
#   python3 benches/gen_cluster.py /tmp/m1 100000 10      # 1,000,000 pods, 110,000 Services
#   sed 's/"10.0.0.1"/"10.250.0.1"/g' /tmp/m1/manifests.json > /tmp/m1/edited.json
#   benches/manifests_reload.sh target/release/headless-dns /tmp/m1/manifests.json \
#       /tmp/m1/edited.json svc-0-0.svc-0.ns-0.svc.cluster.local 10.250.0.1
set -euo pipefail
BIN=$1 FILE=$2 EDITED=$3 NAME=$4 ADDRESS=$5
PORT=${PORT:-15353} HTTP_PORT=${HTTP_PORT:-18053}
DIR=$(mktemp -d)
cp "$FILE" "$DIR/manifests.json"
cp "$EDITED" "$DIR/edited.json"
"$BIN" --manifests "$DIR/manifests.json" --listen "127.0.0.1:$PORT" --http-listen "127.0.0.1:$HTTP_PORT" >"$DIR/log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
answers() { dig +short +time=1 +tries=1 -p "$PORT" @127.0.0.1 "$NAME" A 2>/dev/null; }
until answers | grep -q '^[0-9]'; do
  kill -0 $PID 2>/dev/null || { echo "headless-dns exited:"; tail -5 "$DIR/log"; exit 1; }
  sleep 0.05
done
hwm() { awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' /proc/$PID/status; }
echo "loaded: peak $(hwm)"
sleep 2
START=$(date +%s.%N)
mv "$DIR/edited.json" "$DIR/manifests.json"
until answers | grep -qx "$ADDRESS"; do
  kill -0 $PID 2>/dev/null || { echo "headless-dns exited:"; tail -5 "$DIR/log"; exit 1; }
  sleep 0.05
done
END=$(date +%s.%N)
echo "edit answered $(echo "$END - $START" | bc) s after the rename"
until grep -q "manifests changed; reload" "$DIR/log"; do sleep 0.1; done
sleep 2
echo "reload read to its end: peak $(hwm)"
