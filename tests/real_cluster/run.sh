#!/usr/bin/env bash
# The real-cluster tier: builds (or finds, cached) etcd, kube-apiserver, kube-controller-manager
# and CoreDNS at the versions in versions.env, then runs tests/real_cluster/ against them: one
# line per case, ending with `N passed, M failed`. Exits non-zero if a case fails or if the
# control plane cannot be built or started (the reason is printed).
#
#   tests/real_cluster/run.sh                 # every case
#   tests/real_cluster/run.sh parity rbac     # the cases whose names contain these words
#   REAL_CLUSTER_KEEP=1 tests/real_cluster/run.sh   # keep the work directory (logs, certs)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."

for tool in go openssl curl; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 1; }
done
if ! bin=$("$here/build.sh"); then
  echo "run.sh: the control plane could not be built (see above)" >&2
  exit 1
fi
cargo test --quiet --test real_cluster -- "$bin" "$@"
