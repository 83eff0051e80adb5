#!/usr/bin/env bash
# headless-dns beside CoreDNS, both following one real kube-apiserver that holds the cluster
# dnsperf.sh generates (SERVICES headless Services x PODS pods, plus SERVICES/10 ClusterIP
# Services), written through the API as a kubelet and users would.
#
#   benches/coredns.sh                                   # 1,000 x 10 = 10,000 pods
#   MIXES= P99_MIXES= FLIPS=0 SERVICES=10000 benches/coredns.sh   # 100,000 pods: start and RSS
#
# The control plane is the real-cluster tier's (tests/real_cluster/build.sh, cached). Both
# servers run on SERVER_CPU from their start; dnsperf, the control plane and the bench's own
# probes on CLIENT_CPU. Printed for both: start to the first complete answer (START_ROUNDS
# starts each, alternating) with RSS then and the peak until then, queries/s per mix and the
# ratio (median of ROUNDS, A B A B), server CPU per query, p99 at FIXED_QPS, watch event ->
# answer latency over FLIPS readiness flips (each way), and RSS at the end. Settings as
# dnsperf.sh: ROUNDS, DURATION, FIXED_QPS (default 10000), CPU_SECONDS, MIXES, P99_MIXES,
# SERVER_CPU, CLIENT_CPU. WATCH_LIST=1 turns on kube-apiserver's WatchList gate and starts
# headless-dns a fourth way, with `--initial-list stream`.
set -euo pipefail
SERVICES=${SERVICES:-1000}
PODS=${PODS:-10}
cd "$(dirname "$0")/.."

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

bin=$(tests/real_cluster/build.sh)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 benches/gen_cluster.py "$work" "$SERVICES" "$PODS" >&2
cargo bench --quiet --bench coredns -- "$bin" "$work"
