#!/usr/bin/env bash
# Compares headless-dns with Knot DNS under dnsperf on the same machine, A B A B.
#
#   benches/dnsperf.sh                      # 1,000 headless Services x 10 pods
#   SERVICES=10000 benches/dnsperf.sh       # 100,000 pods (+1,000 ClusterIP Services)
#
# Both servers start on the whole machine (as a user would run them; the time to the first answer
# is measured then, by one probing process), then every thread of both is pinned to SERVER_CPU,
# dnsperf to CLIENT_CPU (one thread). For each query mix it prints queries/s of both, the ratio
# headless-dns/Knot (median of ROUNDS), server CPU per query, and p99 latency at a fixed
# FIXED_QPS (median of ROUNDS alternating runs); then both servers' RSS and the time from start
# to first answer. It installs dnsperf and knot if missing and stops every process it started.
#
# The mixes (MIXES, P99_MIXES): pods (A of pod names, one answer), svcs (A of headless Service
# names, PODS answers), mix (both, 10% names that do not exist), aaaa (AAAA of dual-stack pods),
# srv (SRV of a Service's port with EDNS, as resolvers ask: PODS targets and their addresses),
# srv512 (the same without EDNS, as old stub resolvers ask: past 512 bytes Knot answers an empty
# truncated message, headless-dns as many whole targets as fit, rotated, since musl <= 1.2.3 never
# retries over TCP -- see src/server/truncation.rs -- so the two do different work), ptr (reverse
# names of pods),
# cname (ExternalName Services whose target is in the zone: the CNAME and the target's address),
# edns (the mix with EDNS and a COOKIE option, as a forwarding resolver sends it), nx (names that
# do not exist, with EDNS: headless-dns's answers carry the reason), soa (SOA and NS of the zone);
# tcp-pods and tcp-srv (pods and srv over TCP: 8 connections, queries pipelined on each).
set -euo pipefail

SERVICES=${SERVICES:-1000}
PODS=${PODS:-10}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
FIXED_QPS=${FIXED_QPS:-20000}
CPU_SECONDS=${CPU_SECONDS:-5}
# The mixes measured for queries/s and CPU per query (empty: none), and for p99 latency.
MIXES=${MIXES-pods svcs mix aaaa srv srv512 ptr cname edns nx soa tcp-pods tcp-srv}
P99_MIXES=${P99_MIXES-$MIXES}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
HDNS_PORT=${HDNS_PORT:-5391}
KNOT_PORT=${KNOT_PORT:-5392}
HDNS_ARGS=${HDNS_ARGS:-}
# A prebuilt binary to measure (for A/B of two builds); default: build this tree's release binary.
HDNS_BIN=${HDNS_BIN:-}
# UDP threads of headless-dns: one per CPU in SERVER_CPU (it would otherwise count every CPU).
UDP_THREADS=${UDP_THREADS:-$(taskset -c "${SERVER_CPU}" nproc)}
# Extra dnsperf flags for every run, e.g. `-e` (EDNS0: negative answers then carry their reason).
DNSPERF_ARGS=${DNSPERF_ARGS:-}
# json: the cluster as one List (kubectl get -o json); yaml: multi-document YAML.
MANIFESTS=${MANIFESTS:-json}

cd "$(dirname "$0")/.."

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v knotd >/dev/null || need+=(knot)
command -v dig >/dev/null || need+=(bind9-dnsutils)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ -z "$HDNS_BIN" ]; then
  cargo build --release --quiet --bin headless-dns
  HDNS_BIN=target/release/headless-dns
fi
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

python3 benches/gen_cluster.py "$work" "$SERVICES" "$PODS" full
mkdir -p "$work/knot-db"
cat >"$work/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$KNOT_PORT
    rundir: $work
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: $work/knot-db
template:
  - id: default
    storage: $work
    semantic-checks: off
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: cluster.local
    file: $work/zone.txt
  - domain: in-addr.arpa
    file: $work/zone-reverse.txt
EOF

# The query file of a mix, and what dnsperf sends besides.
mix_file() {
  case $1 in
    edns) echo "$work/q-mix.txt" ;;
    srv512) echo "$work/q-srv.txt" ;;
    tcp-*) echo "$work/q-${1#tcp-}.txt" ;;
    *) echo "$work/q-$1.txt" ;;
  esac
}
mix_args() {
  case $1 in
    edns) echo "-c 1 -e -E 10:0123456789abcdef" ;;
    nx | srv) echo "-c 1 -e" ;;
    tcp-*) echo "-m tcp -c 8" ;;
    *) echo "-c 1" ;;
  esac
}

now_ms() { date +%s%3N; }

# Waits until the server on port $1 answers a name from the cluster with an address; prints the
# milliseconds since $2. One process asks every 10 ms: a dig started each time would take CPU
# from the loading server (at 100k pods, 0.4-0.8 s of its start).
wait_for_answers() {
  local port=$1 start=$2 name
  name=$(head -1 "$work/q-pods.txt" | cut -d' ' -f1)
  python3 - "$port" "$name" "$start" <<'PROBE'
import socket, struct, sys, time
port, name, start = int(sys.argv[1]), sys.argv[2].rstrip("."), int(sys.argv[3])
query = struct.pack(">6H", 0x4844, 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))
query += b"\0" + struct.pack(">2H", 1, 1)
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
probe.settimeout(0.01)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        probe.sendto(query, ("127.0.0.1", port))
        reply = probe.recv(4096)
    except OSError:  # nothing listening yet (or no reply within 10 ms)
        time.sleep(0.01)
        continue
    # Our ID, NOERROR, and at least one answer.
    if reply[:2] == query[:2] and reply[3] & 0x0F == 0 and struct.unpack(">H", reply[6:8])[0]:
        print(int(time.time() * 1000) - start)
        sys.exit(0)
sys.exit(f"server on port {port} never answered")
PROBE
}

start=$(now_ms)
# shellcheck disable=SC2086
"$HDNS_BIN" --manifests "$work/manifests.$MANIFESTS" --udp-threads "$UDP_THREADS" \
  --listen "127.0.0.1:$HDNS_PORT" --http-listen 127.0.0.1:0 $HDNS_ARGS 2>"$work/headless-dns.log" &
hdns_pid=$!
pids+=("$hdns_pid")
hdns_start_ms=$(wait_for_answers "$HDNS_PORT" "$start")

start=$(now_ms)
knotd -c "$work/knot.conf" 2>"$work/knot.log" &
knot_pid=$!
pids+=("$knot_pid")
knot_start_ms=$(wait_for_answers "$KNOT_PORT" "$start")
# Every thread of both servers on SERVER_CPU (knotd also pins its UDP worker to a CPU of its
# choosing, CPU 0 on two cores, which this overrides), and show where they are.
taskset -a -p -c "$SERVER_CPU" "$knot_pid" >/dev/null
taskset -a -p -c "$SERVER_CPU" "$hdns_pid" >/dev/null
threads_cpus() {
  local t list=()
  for t in /proc/"$1"/task/*; do list+=("$(taskset -p -c "${t##*/}" | awk '{print $NF}')"); done
  echo "${list[*]}"
}

# Queries/s of dnsperf's run against port $1 with mix $2.
qps() {
  # shellcheck disable=SC2046
  taskset -c "$CLIENT_CPU" dnsperf $DNSPERF_ARGS $(mix_args "$2") -s 127.0.0.1 -p "$1" -d "$(mix_file "$2")" \
    -l "$DURATION" -T 1 -q 500 2>/dev/null | awk '/Queries per second/ {print int($4)}'
}

# p99 latency in ms at a fixed rate: dnsperf -v reports every response's latency. It writes to a
# file: through a pipe, dnsperf stalls on the pipe and its latencies grow a hundredfold.
p99_at_fixed_rate() {
  # shellcheck disable=SC2046
  taskset -c "$CLIENT_CPU" dnsperf $DNSPERF_ARGS $(mix_args "$2") -s 127.0.0.1 -p "$1" -d "$(mix_file "$2")" \
    -l 5 -T 1 -Q "$FIXED_QPS" -v >"$work/verbose.txt" 2>/dev/null
  awk '$1 == ">" {print $NF}' "$work/verbose.txt" | sort -g |
    awk '{v[NR] = $1} END {if (NR == 0) print "n/a"; else printf "%.3f", v[int(NR * 0.99)] * 1000}'
}

# Server CPU time (user + system, in clock ticks) of process $1.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Microseconds of server CPU per query over CPU_SECONDS of mix $3 against pid $1 / port $2:
# steadier than queries/s on a shared machine, where the other tenants' load moves wall time.
# (/proc counts in clock ticks of 10 ms: the run must be seconds long to resolve microseconds.)
cpu_us_per_query() {
  local before after queries hz
  hz=$(getconf CLK_TCK)
  before=$(cpu_ticks "$1")
  # shellcheck disable=SC2046
  queries=$(taskset -c "$CLIENT_CPU" dnsperf $DNSPERF_ARGS $(mix_args "$3") -s 127.0.0.1 -p "$2" -d "$(mix_file "$3")" \
    -l "$CPU_SECONDS" -T 1 -q 500 2>/dev/null | awk '/Queries completed/ {print $3}')
  after=$(cpu_ticks "$1")
  awk -v t=$((after - before)) -v q="$queries" -v hz="$hz" 'BEGIN {printf "%.2f", (q > 0 ? t / hz * 1e6 / q : 0)}'
}

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# Runs measurement $1 (a function of port and query file) ROUNDS times on each server, A B A B,
# with the queries of mix $2; the results are left in a_runs and b_runs.
alternate() {
  a_runs=() b_runs=()
  for _ in $(seq 1 "$ROUNDS"); do
    a_runs+=("$("$1" "$HDNS_PORT" "$2")")
    b_runs+=("$("$1" "$KNOT_PORT" "$2")")
  done
}

echo
echo "cluster: $SERVICES headless Services x $PODS pods (+$((SERVICES / 10 > 0 ? SERVICES / 10 : 1)) ClusterIP); $ROUNDS rounds of ${DURATION}s, A B A B"
echo "server CPU $SERVER_CPU, dnsperf CPU $CLIENT_CPU; $(nproc) CPUs; $(uname -r)"
echo "CPUs allowed per thread: headless-dns $(threads_cpus "$hdns_pid"); knot $(threads_cpus "$knot_pid")"
printf '%-8s %14s %14s %8s   %s\n' mix "headless q/s" "knot q/s" ratio "rounds (headless/knot)"
for mix in $MIXES; do
  alternate qps "$mix"
  a=$(printf '%s\n' "${a_runs[@]}" | median)
  b=$(printf '%s\n' "${b_runs[@]}" | median)
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
  printf '%-8s %14s %14s %8s   %s / %s\n' "$mix" "$a" "$b" "$ratio" "${a_runs[*]}" "${b_runs[*]}"
done
echo
printf '%-8s %22s %22s %8s\n' mix "headless CPU us/query" "knot CPU us/query" "ratio"
for mix in $MIXES; do
  a=$(cpu_us_per_query "$hdns_pid" "$HDNS_PORT" "$mix")
  b=$(cpu_us_per_query "$knot_pid" "$KNOT_PORT" "$mix")
  printf '%-8s %22s %22s %8s\n' "$mix" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", (a > 0 ? b / a : 0)}')"
done
echo "(ratio: knot's CPU per query / headless-dns's, so above 1.0 means headless-dns does less work)"
# One 5 s run's p99 moves with any stall of the shared host: A B A B, and the median of each.
echo
printf '%-8s %22s %22s   %s\n' mix "headless p99 (ms)" "knot p99 (ms)" "rounds (headless/knot)"
for mix in $P99_MIXES; do
  alternate p99_at_fixed_rate "$mix"
  printf '%-8s %22s %22s   %s / %s\n' "$mix" "$(printf '%s\n' "${a_runs[@]}" | median)" \
    "$(printf '%s\n' "${b_runs[@]}" | median)" "${a_runs[*]}" "${b_runs[*]}"
done
echo "(p99 latency at a fixed $FIXED_QPS q/s, median of $ROUNDS runs of 5 s each)"
echo "RSS after the runs: headless-dns $(rss_mb "$hdns_pid") MB, knot $(rss_mb "$knot_pid") MB"
echo "start to first answer: headless-dns ${hdns_start_ms} ms (manifests.$MANIFESTS), knot ${knot_start_ms} ms"
